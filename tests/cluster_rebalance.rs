//! Growing and shrinking a cluster online, through real processes: a
//! collection loaded through a router over three shards; the router
//! replaced by one with a fourth shard (what `helm upgrade --set
//! shards.replicas=4` does), then by one draining it, then by one without
//! it — while clients search, read, upsert, re-upsert and delete. The new
//! shard gets the collection by itself, partitions move to it (new copy
//! filled, then the old one dropped) and off it again, and afterwards
//! every acknowledged write is present once, on every copy, every
//! acknowledged delete is absent, sizes are exact and the placement is
//! balanced — with no failed request.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruvector_api::partition_of;
use serde_json::{Value, json};
use support::{Acked, Process, call, send, writer};

const DIM: usize = 4;
const NAME: &str = "grow";

/// A distinct pseudo-random vector per (id, salt) (splitmix64).
fn vector(id: u64, salt: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|d| {
            let mut z = (id << 8 ^ salt << 40 ^ d).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn upsert_body(ids: impl IntoIterator<Item = u64>, salt: u64) -> String {
    let vectors: Vec<Value> = ids.into_iter().map(|id| json!({"id": id, "vector": vector(id, salt)})).collect();
    json!({ "vectors": vectors }).to_string()
}

fn stored(body: &Value) -> Option<Vec<f32>> {
    body["vector"].as_array()?.iter().map(|x| x.as_f64().map(|x| x as f32)).collect()
}

fn router(shards: &[String], replicas: usize) -> Process {
    let list = shards.join(",");
    let r = Process::start_with_env(
        &["router", "--addr", "127.0.0.1:0", "--shards", &list, "--replication-factor", &replicas.to_string()],
        &[("RUVECTOR_ROUTER__REPAIR_INTERVAL_MS", "0")],
    );
    r.wait_ready();
    r
}

/// The copies of every partition as the router reports them, by shard
/// index, once every copy is ready, each partition has `replicas` of them
/// and every shard holds its share; `None` while partitions still move.
fn settled(router_url: &str, shards: &[String], active: usize, replicas: usize) -> Option<Vec<Vec<usize>>> {
    let c = call("GET", &format!("{router_url}/cluster"), None).body;
    let placed = c["collections"].as_array()?.iter().find(|c| c["name"] == NAME)?.clone();
    let rows: Vec<Vec<usize>> = placed["copies"]
        .as_array()?
        .iter()
        .map(|row| {
            row.as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| shards.iter().position(|s| Some(s.as_str()) == a.as_str()))
                .collect()
        })
        .collect();
    let ready =
        placed["states"].as_array()?.iter().all(|row| row.as_array().is_some_and(|r| r.iter().all(|s| s == "ready")));
    // The first `active` shards hold 32·R/active copies each (±1), the
    // others none.
    let (low, high) = (32 * replicas / active, (32 * replicas).div_ceil(active));
    let balanced = (0..shards.len()).all(|s| {
        let held = rows.iter().filter(|r| r.contains(&s)).count();
        if s < active { (low..=high).contains(&held) } else { held == 0 }
    });
    (ready && balanced && rows.iter().all(|r| r.len() == replicas)).then_some(rows)
}

/// Polls `done` for up to two minutes; on timeout fails with the router's
/// `/cluster`.
fn wait_until(router_url: &str, what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(120) {
            let c = call("GET", &format!("{router_url}/cluster"), None).body;
            panic!("not {what} within 120 s: {c}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{what} after {:.1} s", start.elapsed().as_secs_f64());
}

/// The router URL clients use; switched when a new router takes over.
type Current = Arc<Mutex<String>>;

fn current(url: &Current) -> String {
    url.lock().expect("url").clone()
}

/// Starts `next`, points the clients at it, then stops `old` gracefully
/// (its in-flight requests finish): what a rolling router upgrade does.
fn hand_over(url: &Current, old: Process, next: Process) -> Process {
    *url.lock().expect("url") = next.url.clone();
    std::thread::sleep(Duration::from_millis(300));
    let status = old.terminate();
    assert!(status.success(), "router exited {status:?}");
    next
}

fn router_draining(shards: &[String], replicas: usize, drain: &str) -> Process {
    let list = shards.join(",");
    let r = Process::start_with_env(
        &[
            "router",
            "--addr",
            "127.0.0.1:0",
            "--shards",
            &list,
            "--replication-factor",
            &replicas.to_string(),
            "--drain",
            drain,
        ],
        &[("RUVECTOR_ROUTER__REPAIR_INTERVAL_MS", "0")],
    );
    r.wait_ready();
    r
}

/// 3 → 4 → 3 shards under load: the router is replaced by one with a
/// fourth shard (partitions move onto it), then by one draining it
/// (partitions move off), then by one without it, and the fourth shard
/// stops. Clients search, read, upsert and delete throughout.
fn three_to_four_to_three(replicas: usize, chaos: bool) {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let mut nodes: Vec<Option<Process>> = dirs.iter().map(|d| Some(Process::node(d.path()))).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.as_ref().expect("up").url.clone()).collect();
    let n = 3000u64;
    let first = router(&urls[..3], replicas);
    let create = call(
        "POST",
        &format!("{}/collections", first.url),
        Some(&json!({"name": NAME, "dimension": DIM, "metric": "l2"}).to_string()),
    );
    assert_eq!(create.status, 201, "{}", create.body);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let up =
            call("POST", &format!("{}/collections/{NAME}/vectors", first.url), Some(&upsert_body(chunk.to_vec(), 0)));
        assert_eq!(up.status, 201, "{}", up.body);
    }
    assert_eq!(call("GET", &format!("{}/collections/{NAME}", urls[3]), None).status, 404, "shard 4 knows nothing yet");

    let url: Current = Arc::new(Mutex::new(first.url.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, read_failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let readers: Vec<_> = (0..2u64)
        .map(|c| {
            let (stop, reads, failures, url) = (stop.clone(), reads.clone(), read_failures.clone(), url.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = (i * 104_729 + c) % n;
                    let base = current(&url);
                    let reply = if c == 0 {
                        let body = json!({"vector": vector(id, 0), "k": 5, "ef": 200}).to_string();
                        send("POST", &format!("{base}/collections/{NAME}/search"), Some(&body))
                    } else {
                        send("GET", &format!("{base}/collections/{NAME}/vectors/{id}"), None)
                    };
                    let ok = reply.as_ref().is_ok_and(|r| {
                        r.status == 200
                            && if c == 0 {
                                let hits: Vec<u64> =
                                    r.body.as_array().into_iter().flatten().filter_map(|h| h["id"].as_u64()).collect();
                                let mut unique = hits.clone();
                                unique.sort_unstable();
                                unique.dedup();
                                hits.len() == 5 && unique.len() == 5 && hits[0] == id
                            } else {
                                stored(&r.body) == Some(vector(id, 0))
                            }
                    });
                    reads.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("read {id}: {:?}", reply.map(|r| (r.status, r.body)));
                    }
                }
            })
        })
        .collect();
    let acked: Acked = Arc::default();
    let writers: Vec<_> = [10_000u64, 20_000]
        .into_iter()
        .map(|base| {
            let (stop, acked, url) = (stop.clone(), acked.clone(), url.clone());
            std::thread::spawn(move || writer(|| current(&url), NAME, upsert_body, (base, 300), &stop, &acked))
        })
        .collect();
    let some_reads = || {
        let at = reads.load(Ordering::Relaxed);
        support::wait_for(Duration::from_secs(30), || reads.load(Ordering::Relaxed) > at + 30);
    };
    some_reads();

    // 3 → 4: the router comes back with a fourth shard.
    let mut r = hand_over(&url, first, router(&urls, replicas));
    if chaos {
        // Mid-move: the target shard is SIGKILLed and restarted on its
        // volume, then the router driving the move is SIGKILLed (clients
        // already on its successor).
        wait_until(&r.url, "a move under way", || {
            call("GET", &format!("{}/cluster", r.url), None).body["moving"].as_u64().is_some_and(|m| m > 0)
        });
        nodes[3].take().expect("up").kill();
        some_reads();
        let address = urls[3].trim_start_matches("http://").to_owned();
        let restarted = Process::start(&["serve", "--addr", &address, "--data", support::path_str(dirs[3].path())]);
        nodes[3] = Some(restarted);
        some_reads();
        let next = router(&urls, replicas);
        *url.lock().expect("url") = next.url.clone();
        std::thread::sleep(Duration::from_millis(300));
        r.kill();
        r = next;
    }
    wait_until(&r.url, "balanced over four shards", || settled(&r.url, &urls, 4, replicas).is_some());
    some_reads();
    // 4 → 3: drain the fourth, then drop it from the list and stop it.
    let r = hand_over(&url, r, router_draining(&urls, replicas, &urls[3]));
    wait_until(&r.url, "the fourth shard drained", || {
        let c = call("GET", &format!("{}/cluster", r.url), None).body;
        c["shards"][3]["removable"] == true && settled(&r.url, &urls, 3, replicas).is_some()
    });
    // The operator's view: `ruvector cluster --wait` returns once nothing
    // moves and says the fourth shard may go.
    let out = std::process::Command::new(support::binary())
        .args(["cluster", "--url", &r.url, "--wait", "--timeout-secs", "60"])
        .output()
        .expect("run ruvector cluster");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("{}  drained: may be removed", urls[3])), "{text}");
    assert!(text.contains("moving partitions 0"), "{text}");
    let r = hand_over(&url, r, router(&urls[..3], replicas));
    let status = nodes[3].take().expect("up").terminate();
    assert!(status.success());
    some_reads();
    stop.store(true, Ordering::Relaxed);
    for t in readers {
        t.join().expect("reader");
    }
    let (mut writes, mut write_failures) = (0, 0);
    for w in writers {
        let (d, f) = w.join().expect("writer");
        writes += d;
        write_failures += f;
    }
    let (reads, read_failures) = (reads.load(Ordering::Relaxed), read_failures.load(Ordering::Relaxed));
    eprintln!("R={replicas}: {reads} reads ({read_failures} failed), {writes} writes ({write_failures} failed)");
    assert_eq!(read_failures, 0, "{read_failures} of {reads} reads failed while partitions moved");
    assert_eq!(write_failures, 0, "{write_failures} of {writes} writes failed while partitions moved");

    // Every acknowledged write on every copy, every acknowledged delete
    // absent, the original vectors intact, sizes exact.
    let rows = settled(&r.url, &urls[..3], 3, replicas).expect("settled over three shards");
    let acked = acked.lock().expect("acked");
    let expected: Vec<(u64, Option<u64>)> =
        (0..n).map(|id| (id, Some(0))).chain(acked.iter().map(|(&id, &s)| (id, s))).collect();
    let mut live = 0u64;
    for (id, state) in expected {
        let row = &rows[partition_of(NAME, id, 32) as usize];
        let routed = call("GET", &format!("{}/collections/{NAME}/vectors/{id}", r.url), None);
        match state {
            Some(salt) => {
                live += 1;
                assert_eq!(stored(&routed.body), Some(vector(id, salt)), "id {id}: {}", routed.body);
                for &s in row {
                    let direct = call("GET", &format!("{}/collections/{NAME}/vectors/{id}", urls[s]), None);
                    assert_eq!(stored(&direct.body), Some(vector(id, salt)), "id {id} on shard {s}: {}", direct.body);
                }
            }
            None => assert_eq!(routed.status, 404, "deleted id {id}: {}", routed.body),
        }
    }
    let info = call("GET", &format!("{}/collections/{NAME}", r.url), None).body;
    assert_eq!(info["size"], live, "{info}");
    // Each shard holds exactly its partitions' vectors: moved-away data is gone.
    let total: u64 = urls[..3]
        .iter()
        .map(|u| call("GET", &format!("{u}/collections/{NAME}"), None).body["size"].as_u64().expect("size"))
        .sum();
    assert_eq!(total, live * replicas as u64, "copies across shards");
}

#[test]
fn one_copy_grows_to_four_shards_and_shrinks_back_online() {
    three_to_four_to_three(1, false);
}

#[test]
fn two_copies_grow_to_four_shards_and_shrink_back_online() {
    three_to_four_to_three(2, false);
}

/// The same with the move's target shard and then the router driving the
/// move SIGKILLed mid-move: the move resumes; nothing is lost.
#[test]
fn one_copy_survives_the_target_and_the_router_killed_mid_move() {
    three_to_four_to_three(1, true);
}

#[test]
fn two_copies_survive_the_target_and_the_router_killed_mid_move() {
    three_to_four_to_three(2, true);
}
