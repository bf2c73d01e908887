//! Replicas through real processes: routers with `--replication-factor 2`
//! over three `ruvector serve` shards on loopback ports. Every id lives on
//! two shards; searches and reads go on while any one shard is down, also
//! through a rolling restart under load; conflicting writes through two
//! routers leave identical copies.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruvector_api::partition_of;
use ruvector_router::Ring;
use serde_json::{Value, json};
use support::{Acked, Process, Reply, call, path_str, send, wait_all_ready, writer};

const DIM: usize = 4;

struct Shards {
    dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Option<Process>>,
    urls: Vec<String>,
}

impl Shards {
    fn start(n: usize) -> Shards {
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().expect("tempdir")).collect();
        let nodes: Vec<Option<Process>> = dirs.iter().map(|d| Some(Process::node(d.path()))).collect();
        let urls = nodes.iter().map(|n| n.as_ref().expect("up").url.clone()).collect();
        Shards { dirs, nodes, urls }
    }

    fn restart(&mut self, i: usize) {
        self.nodes[i] = Some(start_node_at(self.dirs[i].path(), &self.urls[i]));
    }
}

fn start_node_at(dir: &Path, url: &str) -> Process {
    let p = Process::start(&["serve", "--addr", url.trim_start_matches("http://"), "--data", path_str(dir)]);
    p.wait_ready();
    p
}

/// A router with two copies and no anti-entropy pass (tests that want one
/// ask `POST /cluster/repair`): only the catch-up restores copies.
fn router(shards: &[String], extra: &[&str]) -> Process {
    let list = shards.join(",");
    let mut args = vec!["router", "--addr", "127.0.0.1:0", "--shards", &list, "--replication-factor", "2"];
    args.extend_from_slice(extra);
    let r = Process::start_with_env(&args, &[("RUVECTOR_ROUTER__REPAIR_INTERVAL_MS", "0")]);
    r.wait_ready();
    r
}

fn vector(id: u64, salt: u64) -> Vec<f32> {
    (0..DIM as u64).map(|d| (((id * 31 + d * 7 + salt * 13) % 97) as f32) / 97.0 - 0.5).collect()
}

fn upsert_body(ids: impl IntoIterator<Item = u64>, salt: u64) -> String {
    let vectors: Vec<Value> = ids.into_iter().map(|id| json!({"id": id, "vector": vector(id, salt)})).collect();
    json!({ "vectors": vectors }).to_string()
}

/// The vector of a `GET .../vectors/{id}` answer, as f32 (JSON carries
/// the shortest decimal form of each f32).
fn stored(body: &Value) -> Option<Vec<f32>> {
    body["vector"].as_array()?.iter().map(|x| x.as_f64().map(|x| x as f32)).collect()
}

fn hit_ids(body: &Value) -> Vec<u64> {
    body.as_array().expect("hits").iter().map(|h| h["id"].as_u64().expect("id")).collect()
}

/// Which shards (indexes) hold `id`, asked directly.
fn holders(shards: &[String], collection: &str, id: u64) -> Vec<usize> {
    (0..shards.len())
        .filter(|&i| call("GET", &format!("{}/collections/{collection}/vectors/{id}", shards[i]), None).status == 200)
        .collect()
}

#[test]
fn two_copies_keep_reads_and_searches_up_while_a_shard_is_down() {
    let mut shards = Shards::start(3);
    let r = router(&shards.urls, &[]);
    let create = call("POST", &format!("{}/collections", r.url), Some(r#"{"name":"rep","dimension":4,"metric":"l2"}"#));
    assert_eq!(create.status, 201, "{}", create.body);
    let info = call("GET", &format!("{}/collections/rep", r.url), None).body;
    assert_eq!(info["partitions"], 32, "default: a power of two, about 8 per shard");

    let n = 600u64;
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let up = call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(chunk.to_vec(), 0)));
        assert_eq!(up.status, 201, "{}", up.body);
    }
    // Every vector counted once, stored twice, on the copies placement says.
    assert_eq!(call("GET", &format!("{}/collections/rep", r.url), None).body["size"], n);
    let ring = Ring::new(&shards.urls, 16);
    let cluster = call("GET", &format!("{}/cluster", r.url), None).body;
    assert_eq!((cluster["replication_factor"].as_u64(), cluster["write_quorum"].as_u64()), (Some(2), Some(1)));
    let placed = &cluster["collections"][0];
    assert_eq!((placed["name"].as_str(), placed["partitions"].as_u64()), (Some("rep"), Some(32)));
    for p in 0..32u32 {
        let expected: Vec<&str> = ring.copies("rep", 32, p, 2).iter().map(|&s| shards.urls[s].as_str()).collect();
        assert_eq!(placed["copies"][p as usize], json!(expected), "partition {p}");
        assert_eq!(placed["states"][p as usize], json!(["ready", "ready"]), "partition {p}");
    }
    // Each shard knows what it holds, and refuses what it does not (421,
    // never a 404 that would say the vector does not exist).
    let id = 7u64;
    let copies = ring.copies("rep", 32, partition_of("rep", id, 32), 2);
    let stranger = (0..3).find(|s| !copies.contains(s)).expect("a shard without the id");
    let misdirected = call("GET", &format!("{}/collections/rep/vectors/{id}", shards.urls[stranger]), None);
    assert_eq!((misdirected.status, misdirected.body["code"].as_str()), (421, Some("partition_not_held")));
    let assignment = call("GET", &format!("{}/cluster/assignment", shards.urls[stranger]), None).body;
    let held = assignment["collections"][0]["held"].as_array().expect("held").len();
    assert!((20..=22).contains(&held), "{held} of 64 copies on one of 3 shards");
    let mut total = 0;
    for url in &shards.urls {
        let size = call("GET", &format!("{url}/collections/rep"), None).body["size"].as_u64().expect("size");
        assert!((250..=550).contains(&size), "{url} holds {size} of {} copies", 2 * n);
        total += size;
    }
    assert_eq!(total, 2 * n);
    for id in [0, 17, 333, 599] {
        let mut expected = ring.copies("rep", 32, partition_of("rep", id, 32), 2);
        expected.sort_unstable();
        assert_eq!(holders(&shards.urls, "rep", id), expected, "id {id}");
    }

    let query = json!({"vector": vector(42, 0), "k": 10, "ef": 2000}).to_string();
    let before = call("POST", &format!("{}/collections/rep/search", r.url), Some(&query));
    assert_eq!(before.status, 200);
    assert_eq!(hit_ids(&before.body)[0], 42);

    // Any one shard down: the same answers, not partial.
    for down in 0..3 {
        shards.nodes[down].take().expect("up").kill();
        let s = call("POST", &format!("{}/collections/rep/search", r.url), Some(&query));
        assert_eq!(s.status, 200, "shard {down} down: {}", s.body);
        assert!(s.headers.get("x-ruvector-partial").is_none());
        assert_eq!(s.body, before.body, "shard {down} down");
        for id in (0..n).step_by(37) {
            let got = call("GET", &format!("{}/collections/rep/vectors/{id}", r.url), None);
            assert_eq!(got.status, 200, "id {id} with shard {down} down: {}", got.body);
            assert_eq!(stored(&got.body), Some(vector(id, 0)));
        }
        let info = call("GET", &format!("{}/collections/rep", r.url), None);
        assert_eq!((info.status, info.body["size"].as_u64()), (200, Some(n)), "info with shard {down} down");
        let ids = call("GET", &format!("{}/collections/rep/ids?limit=10000", r.url), None);
        assert_eq!(ids.body["ids"].as_array().map(Vec::len), Some(n as usize), "ids with shard {down} down");
        shards.restart(down);
    }
    // With a write quorum of every copy, writes to a partition whose copy
    // is down are refused (503), never acknowledged. (The live copy may
    // have applied its part: an unacknowledged write may or may not land,
    // as anywhere; the catch-up brings the copies back in line.) The
    // default quorum of one takes them.
    let strict = router(&shards.urls, &["--write-quorum", "2"]);
    shards.nodes[2].take().expect("up").kill();
    let on_down: Vec<u64> =
        (1000..1100).filter(|&id| ring.copies("rep", 32, partition_of("rep", id, 32), 2).contains(&2)).collect();
    let w = call("POST", &format!("{}/collections/rep/vectors", strict.url), Some(&upsert_body(on_down.clone(), 0)));
    assert_eq!((w.status, w.body["code"].as_str()), (503, Some("unavailable")), "{}", w.body);
    let w = call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(on_down, 0)));
    assert_eq!(w.status, 201, "one copy is enough by default: {}", w.body);
    drop(strict);
    let elsewhere: Vec<u64> =
        (1000..1100).filter(|&id| !ring.copies("rep", 32, partition_of("rep", id, 32), 2).contains(&2)).collect();
    let w = call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(elsewhere, 0)));
    assert_eq!(w.status, 201, "writes whose copies are all up go on: {}", w.body);
    shards.restart(2);
    let metrics = call("GET", &format!("{}/metrics", r.url), None).body;
    assert!(
        metrics.as_str().is_some_and(|m| m.contains("ruvector_router_failovers_total{op=\"search\"}")),
        "{metrics}"
    );

    // Two shards down: some partition has no copy left.
    shards.nodes[0].take().expect("up").kill();
    shards.nodes[1].take().expect("up").kill();
    let s = call("POST", &format!("{}/collections/rep/search", r.url), Some(&query));
    assert_eq!(s.status, 503);
    let partial = json!({"vector": vector(42, 0), "k": 10, "allow_partial": true}).to_string();
    let s = call("POST", &format!("{}/collections/rep/search", r.url), Some(&partial));
    assert_eq!(s.status, 200);
    assert_eq!(s.headers.get("x-ruvector-partial").and_then(|v| v.to_str().ok()), Some("true"));
}

/// Every acknowledged write is present once with its exact vector, every
/// acknowledged delete absent — through the router, and on every copy.
fn check_acked(router_url: &str, shards: &[String], acked: &Acked) {
    let ring = Ring::new(shards, 16);
    let acked = acked.lock().expect("acked");
    for (&id, &state) in acked.iter() {
        let routed = call("GET", &format!("{router_url}/collections/rep/vectors/{id}"), None);
        let copies = ring.copies("rep", 32, partition_of("rep", id, 32), 2);
        let direct: Vec<Reply> =
            copies.iter().map(|&s| call("GET", &format!("{}/collections/rep/vectors/{id}", shards[s]), None)).collect();
        for r in std::iter::once(&routed).chain(&direct) {
            match state {
                Some(salt) => {
                    assert_eq!(r.status, 200, "id {id} acknowledged with salt {salt}: {}", r.body);
                    assert_eq!(stored(&r.body), Some(vector(id, salt)), "id {id}");
                }
                None => assert_eq!(r.status, 404, "id {id} was deleted: {}", r.body),
            }
        }
    }
}

/// A rolling restart (SIGTERM, start, wait ready; what `helm upgrade`
/// does) while two clients search, one reads and two upsert and delete:
/// not one request fails; afterwards every acknowledged write is there,
/// every acknowledged delete gone, and the copies are identical.
#[test]
fn a_rolling_restart_under_reads_and_writes_fails_nothing() {
    let mut shards = Shards::start(3);
    let r = router(&shards.urls, &[]);
    let create = call("POST", &format!("{}/collections", r.url), Some(r#"{"name":"rep","dimension":4,"metric":"l2"}"#));
    assert_eq!(create.status, 201);
    let n = 300u64;
    assert_eq!(call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(0..n, 1))).status, 201);

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let readers: Vec<_> = (0..3u64)
        .map(|c| {
            let (stop, done, failed, url) = (stop.clone(), done.clone(), failed.clone(), r.url.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = (i * 7 + c) % n;
                    let reply = if c < 2 {
                        let body = json!({"vector": vector(id, 1), "k": 5}).to_string();
                        send("POST", &format!("{url}/collections/rep/search"), Some(&body))
                    } else {
                        send("GET", &format!("{url}/collections/rep/vectors/{id}"), None)
                    };
                    let ok = reply.as_ref().is_ok_and(|r| {
                        r.status == 200
                            && if c < 2 { hit_ids(&r.body).len() == 5 } else { stored(&r.body) == Some(vector(id, 1)) }
                    });
                    done.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
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
            let (stop, acked, url) = (stop.clone(), acked.clone(), r.url.clone());
            std::thread::spawn(move || writer(|| url.clone(), "rep", upsert_body, (base, 400), &stop, &acked))
        })
        .collect();
    for i in 0..3 {
        let before = done.load(Ordering::Relaxed);
        support::wait_for(Duration::from_secs(30), || done.load(Ordering::Relaxed) > before + 50);
        let status = shards.nodes[i].take().expect("up").terminate();
        assert!(status.success(), "shard {i} exited {status:?}");
        // Waits for the shard's /ready: recovered *and* caught up.
        shards.restart(i);
    }
    let before = done.load(Ordering::Relaxed);
    support::wait_for(Duration::from_secs(30), || done.load(Ordering::Relaxed) > before + 50);
    stop.store(true, Ordering::Relaxed);
    for c in readers {
        c.join().expect("reader");
    }
    let (mut writes, mut write_failures) = (0, 0);
    for w in writers {
        let (d, f) = w.join().expect("writer");
        writes += d;
        write_failures += f;
    }
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("rolling restart: {done} reads ({failed} failed), {writes} writes ({write_failures} failed)");
    assert_eq!(failed, 0, "{failed} of {done} reads failed during the rolling restart");
    assert_eq!(write_failures, 0, "{write_failures} of {writes} writes failed during the rolling restart");
    wait_all_ready(&r.url);
    copies_agree(&shards.urls, "rep", 32).expect("identical copies");
    check_acked(&r.url, &shards.urls, &acked);
}

/// How a copy is made to miss writes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// SIGKILL, restarted from its own volume.
    Kill,
    /// SIGSTOP, then SIGCONT: the process never knew it was gone.
    Pause,
    /// SIGKILL, its volume wiped, restarted empty: everything is copied.
    Wipe,
}

/// Shard 1 misses writes (`fault`) while a client keeps writing through a
/// router with the default quorum of one; it comes back, catches up before
/// it serves reads, and then holds exactly what was acknowledged.
fn catches_up_after(fault: Fault) {
    let mut shards = Shards::start(3);
    // A short request timeout bounds the wait on the paused shard; no
    // anti-entropy pass, so the catch-up alone must restore the copy.
    let r = {
        let list = shards.urls.join(",");
        let p = Process::start_with_env(
            &["router", "--addr", "127.0.0.1:0", "--shards", &list, "--replication-factor", "2"],
            &[("RUVECTOR_ROUTER__REQUEST_TIMEOUT_MS", "1500"), ("RUVECTOR_ROUTER__REPAIR_INTERVAL_MS", "0")],
        );
        p.wait_ready();
        p
    };
    let create = call("POST", &format!("{}/collections", r.url), Some(r#"{"name":"rep","dimension":4,"metric":"l2"}"#));
    assert_eq!(create.status, 201);
    assert_eq!(call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(0..400, 0))).status, 201);
    let acked: Acked = Arc::new(Mutex::new((0..400).map(|id| (id, Some(0))).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let writing = {
        let (stop, acked, url) = (stop.clone(), acked.clone(), r.url.clone());
        std::thread::spawn(move || writer(|| url.clone(), "rep", upsert_body, (0, 1000), &stop, &acked))
    };
    let count = || acked.lock().expect("acked").len();
    let grows = |by: usize| {
        let before = count();
        support::wait_for(Duration::from_secs(60), || count() >= before + by);
    };
    grows(50);
    let paused = match fault {
        Fault::Kill | Fault::Wipe => {
            shards.nodes[1].take().expect("up").kill();
            if fault == Fault::Wipe {
                std::fs::remove_dir_all(shards.dirs[1].path()).expect("wipe");
                std::fs::create_dir(shards.dirs[1].path()).expect("recreate");
            }
            None
        }
        Fault::Pause => {
            let node = shards.nodes[1].take().expect("up");
            node.signal("STOP");
            Some(node)
        }
    };
    grows(200);
    match paused {
        Some(node) => {
            node.signal("CONT");
            shards.nodes[1] = Some(node);
        }
        None => shards.restart(1),
    }
    grows(100);
    stop.store(true, Ordering::Relaxed);
    let (writes, failures) = writing.join().expect("writer");
    eprintln!("{fault:?}: {writes} writes, {failures} failed");
    assert_eq!(failures, 0, "{failures} of {writes} writes failed with one copy of each partition up");
    wait_all_ready(&r.url);
    // Writes in flight when the writer stopped have landed by now; a copy
    // that missed one is filling until the next sync catches it up.
    copies_agree(&shards.urls, "rep", 32).expect("identical copies");
    let metrics = call("GET", &format!("{}/metrics", r.url), None).body;
    let text = metrics.as_str().unwrap_or_default();
    assert!(text.contains("ruvector_router_catchup_duration_seconds_count"), "{text}");
    // The caught-up copy alone serves exactly what was acknowledged.
    for i in [0, 2] {
        shards.nodes[i].take().expect("up").kill();
    }
    let ring = Ring::new(&shards.urls, 16);
    for (&id, &state) in acked.lock().expect("acked").iter() {
        if !ring.copies("rep", 32, partition_of("rep", id, 32), 2).contains(&1) {
            continue;
        }
        let got = call("GET", &format!("{}/collections/rep/vectors/{id}", shards.urls[1]), None);
        match state {
            Some(salt) => assert_eq!(stored(&got.body), Some(vector(id, salt)), "id {id}: {}", got.body),
            None => assert_eq!(got.status, 404, "deleted id {id}: {}", got.body),
        }
    }
}

#[test]
fn a_killed_copy_catches_up_before_it_is_read() {
    catches_up_after(Fault::Kill);
}

#[test]
fn a_paused_copy_catches_up_before_it_is_read() {
    catches_up_after(Fault::Pause);
}

#[test]
fn a_wiped_copy_is_refilled_from_its_peers() {
    catches_up_after(Fault::Wipe);
}

/// Two routers write different values to the same ids at once; each write
/// carries its router's version, so both copies of every id end up with
/// the same, newest write.
#[test]
fn conflicting_writes_through_two_routers_leave_identical_copies() {
    let shards = Shards::start(3);
    let a = router(&shards.urls, &[]);
    let b = router(&shards.urls, &[]);
    let create =
        call("POST", &format!("{}/collections", a.url), Some(r#"{"name":"race","dimension":4,"metric":"l2"}"#));
    assert_eq!(create.status, 201);
    let ids: Vec<u64> = (0..40).collect();
    let writers: Vec<_> = [(a.url.clone(), 1u64), (b.url.clone(), 2u64)]
        .into_iter()
        .map(|(url, salt)| {
            let ids = ids.clone();
            std::thread::spawn(move || {
                for round in 0..15u64 {
                    for chunk in ids.chunks(8) {
                        let body = upsert_body(chunk.to_vec(), salt * 100 + round);
                        let r = call("POST", &format!("{url}/collections/race/vectors"), Some(&body));
                        assert_eq!(r.status, 201, "{}", r.body);
                    }
                    let del = call("DELETE", &format!("{url}/collections/race/vectors/{}", round % 40), None);
                    assert!(del.status == 200 || del.status == 404, "{}", del.body);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let ring = Ring::new(&shards.urls, 16);
    for id in ids {
        let copies = ring.copies("race", 32, partition_of("race", id, 32), 2);
        let seen: Vec<(u16, Value, Value)> = copies
            .iter()
            .map(|&s| {
                let r = call("GET", &format!("{}/collections/race/vectors/{id}", shards.urls[s]), None);
                (r.status, r.body["vector"].clone(), r.body["version"].clone())
            })
            .collect();
        assert_eq!(seen[0], seen[1], "id {id}: the copies differ");
        let routed = call("GET", &format!("{}/collections/race/vectors/{id}", b.url), None);
        assert_eq!(routed.status, seen[0].0);
    }
}

#[test]
fn the_node_api_suite_passes_through_a_router_with_two_copies() {
    let shards = Shards::start(3);
    let r = router(&shards.urls, &[]);
    support::api_suite::run(&r.url, "r2_");
}

/// Every partition's copies hold the same stamps (compared by digest).
fn copies_agree(shards: &[String], collection: &str, partitions: u32) -> Result<(), String> {
    let ring = Ring::new(shards, 16);
    let digests: Vec<Value> =
        shards.iter().map(|u| call("GET", &format!("{u}/collections/{collection}/digests"), None).body).collect();
    for p in 0..partitions {
        let copies = ring.copies(collection, partitions, p, 2);
        let seen: Vec<&Value> = copies.iter().map(|&s| &digests[s]["partitions"][p as usize]).collect();
        if seen[0] != seen[1] {
            return Err(format!("partition {p}: {} vs {}", seen[0], seen[1]));
        }
    }
    Ok(())
}

/// Divergence that no request saw (a copy's disk restored from an old
/// snapshot, a bug): one copy is written behind the router's back, with
/// versioned writes; the anti-entropy pass finds the partitions whose
/// digests differ and gives every copy the newest write of each id —
/// upserts, overwrites and tombstones — until every copy agrees.
#[test]
fn anti_entropy_repairs_copies_that_diverged_silently() {
    let shards = Shards::start(3);
    let r = router(&shards.urls, &[]);
    let create = call("POST", &format!("{}/collections", r.url), Some(r#"{"name":"rep","dimension":4,"metric":"l2"}"#));
    assert_eq!(create.status, 201);
    assert_eq!(call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(0..400, 0))).status, 201);
    let nothing = call("POST", &format!("{}/cluster/repair", r.url), None).body;
    assert_eq!((nothing["partitions_diverged"].as_u64(), nothing["upserts"].as_u64()), (Some(0), Some(0)), "{nothing}");

    // Shard 1 alone gets new ids and overwrites (newer versions), and
    // tombstones for ids it holds.
    let ring = Ring::new(&shards.urls, 16);
    let on_1 = |id: &u64| ring.copies("rep", 32, partition_of("rep", *id, 32), 2).contains(&1);
    let version = u64::MAX / 2;
    let fresh: Vec<Value> = (1000..1300u64)
        .filter(on_1)
        .chain((0..50).filter(on_1))
        .map(|id| json!({"id": id, "vector": vector(id, 9), "version": version}))
        .collect();
    let body = json!({ "vectors": fresh }).to_string();
    assert_eq!(call("POST", &format!("{}/collections/rep/vectors", shards.urls[1]), Some(&body)).status, 201);
    let doomed: Vec<u64> = (100..160).filter(on_1).collect();
    for id in &doomed {
        let url = format!("{}/collections/rep/vectors/{id}?version={version}", shards.urls[1]);
        assert_eq!(call("DELETE", &url, None).status, 200);
    }
    assert!(copies_agree(&shards.urls, "rep", 32).is_err(), "shard 1 diverged");

    let report = call("POST", &format!("{}/cluster/repair", r.url), None).body;
    assert!(report["upserts"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert!(report["deletes"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    copies_agree(&shards.urls, "rep", 32).expect("copies agree after the pass");
    let again = call("POST", &format!("{}/cluster/repair", r.url), None).body;
    assert_eq!(again["partitions_diverged"], 0, "{again}");
    for id in (1000..1300u64).filter(on_1).chain((0..50).filter(on_1)) {
        let got = call("GET", &format!("{}/collections/rep/vectors/{id}", r.url), None);
        assert_eq!(stored(&got.body), Some(vector(id, 9)), "id {id}");
    }
    for id in doomed {
        assert_eq!(call("GET", &format!("{}/collections/rep/vectors/{id}", r.url), None).status, 404, "id {id}");
    }

    // The copy that alone holds newer writes restarts: it is filling, and
    // its catch-up copies *from* it to its peers before it turns ready.
    let newer: Vec<Value> = (2000..2200u64)
        .filter(on_1)
        .map(|id| json!({"id": id, "vector": vector(id, 11), "version": version + 1}))
        .collect();
    let body = json!({ "vectors": newer }).to_string();
    assert_eq!(call("POST", &format!("{}/collections/rep/vectors", shards.urls[1]), Some(&body)).status, 201);
    let mut shards = shards;
    let status = shards.nodes[1].take().expect("up").terminate();
    assert!(status.success());
    shards.restart(1);
    copies_agree(&shards.urls, "rep", 32).expect("copies agree after the catch-up");
    for id in (2000..2200u64).filter(on_1) {
        let got = call("GET", &format!("{}/collections/rep/vectors/{id}", r.url), None);
        assert_eq!(stored(&got.body), Some(vector(id, 11)), "id {id}");
    }
}

/// Tombstones held by every copy of their partition in digests `count -
/// live`, summed over one shard's partitions.
fn tombstones_on(shard: &str, collection: &str) -> u64 {
    let d = call("GET", &format!("{shard}/collections/{collection}/digests"), None).body;
    d["partitions"]
        .as_array()
        .expect("digests")
        .iter()
        .map(|p| p["count"].as_u64().unwrap_or(0) - p["live"].as_u64().unwrap_or(0))
        .sum()
}

/// Tombstones are purged once every copy holds them (past the grace);
/// while a copy is down they are kept until the horizon, then purged
/// anyway — and the copy, back after the horizon, drops the vectors its
/// peers deleted meanwhile instead of bringing them back, and gets the
/// writes it missed.
#[test]
fn tombstones_are_purged_and_a_copy_back_past_the_horizon_resurrects_nothing() {
    let mut shards = Shards::start(3);
    let list = shards.urls.join(",");
    let r = Process::start_with_env(
        &["router", "--addr", "127.0.0.1:0", "--shards", &list, "--replication-factor", "2"],
        &[
            ("RUVECTOR_ROUTER__REPAIR_INTERVAL_MS", "0"),
            ("RUVECTOR_ROUTER__TOMBSTONE_GRACE_MS", "1"),
            ("RUVECTOR_ROUTER__TOMBSTONE_HORIZON_MS", "1"),
        ],
    );
    r.wait_ready();
    let create = call("POST", &format!("{}/collections", r.url), Some(r#"{"name":"rep","dimension":4,"metric":"l2"}"#));
    assert_eq!(create.status, 201);
    assert_eq!(call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(0..400, 0))).status, 201);
    let tombstones = |shards: &Shards| shards.urls.iter().map(|u| tombstones_on(u, "rep")).sum::<u64>();

    // Every copy up: deletes (of present and absent ids) leave tombstones
    // on both copies, and one pass purges them all.
    for id in (0..20).chain(5000..5010) {
        let status = call("DELETE", &format!("{}/collections/rep/vectors/{id}", r.url), None).status;
        assert!(status == 200 || status == 404);
    }
    assert_eq!(tombstones(&shards), 60, "30 deletes × 2 copies");
    std::thread::sleep(Duration::from_millis(5));
    let pass = call("POST", &format!("{}/cluster/repair", r.url), None).body;
    assert_eq!(pass["tombstones_purged"], 60, "{pass}");
    assert_eq!(tombstones(&shards), 0);
    for id in 0..20 {
        assert_eq!(call("GET", &format!("{}/collections/rep/vectors/{id}", r.url), None).status, 404);
    }

    // Shard 1 down: deletes and new writes it misses; past the horizon the
    // live copies purge their tombstones anyway.
    shards.nodes[1].take().expect("up").kill();
    for id in 100..200 {
        assert_eq!(call("DELETE", &format!("{}/collections/rep/vectors/{id}", r.url), None).status, 200);
    }
    assert_eq!(
        call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(400..500, 3))).status,
        201
    );
    std::thread::sleep(Duration::from_millis(5));
    let pass = call("POST", &format!("{}/cluster/repair", r.url), None).body;
    assert!(pass["tombstones_purged"].as_u64().is_some_and(|n| n > 0), "{pass}");
    let ring = Ring::new(&shards.urls, 16);
    let on_1: Vec<u64> =
        (100..200).filter(|&id| ring.copies("rep", 32, partition_of("rep", id, 32), 2).contains(&1)).collect();
    assert!(!on_1.is_empty());

    // Back (its volume still holds the deleted vectors): it catches up
    // without bringing them back.
    shards.restart(1);
    wait_all_ready(&r.url);
    copies_agree(&shards.urls, "rep", 32).expect("identical copies");
    for id in 100..200 {
        assert_eq!(call("GET", &format!("{}/collections/rep/vectors/{id}", r.url), None).status, 404, "id {id}");
    }
    for &id in &on_1 {
        let direct = call("GET", &format!("{}/collections/rep/vectors/{id}", shards.urls[1]), None);
        assert_eq!(direct.status, 404, "id {id} on the returning copy: {}", direct.body);
    }
    for id in 400..500 {
        let got = call("GET", &format!("{}/collections/rep/vectors/{id}", r.url), None);
        assert_eq!(stored(&got.body), Some(vector(id, 3)), "id {id}");
    }
    let info = call("GET", &format!("{}/collections/rep", r.url), None).body;
    assert_eq!(info["size"], 400 - 20 - 100 + 100, "{info}");
    let again = call("POST", &format!("{}/cluster/repair", r.url), None).body;
    assert_eq!((again["partitions_diverged"].as_u64(), again["upserts"].as_u64()), (Some(0), Some(0)), "{again}");
}

/// A shard that restarts with no router running has recovered its data
/// (`/started` 200) but is not ready (`/ready` 503, "catching up") and
/// serves no read of its partitions (421); a router that comes up catches
/// it up and `/ready` turns 200.
#[test]
fn a_restarted_copy_is_started_but_not_ready_until_a_router_catches_it_up() {
    let mut shards = Shards::start(3);
    let r = router(&shards.urls, &[]);
    let create = call("POST", &format!("{}/collections", r.url), Some(r#"{"name":"rep","dimension":4,"metric":"l2"}"#));
    assert_eq!(create.status, 201);
    assert_eq!(call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(0..100, 0))).status, 201);
    drop(r);
    let status = shards.nodes[1].take().expect("up").terminate();
    assert!(status.success());
    let node = Process::start(&[
        "serve",
        "--addr",
        shards.urls[1].trim_start_matches("http://"),
        "--data",
        path_str(shards.dirs[1].path()),
    ]);
    support::wait_for(Duration::from_secs(60), || call("GET", &format!("{}/started", node.url), None).status == 200);
    let ready = call("GET", &format!("{}/ready", node.url), None);
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body["error"].as_str().is_some_and(|e| e.contains("catching up")), "{}", ready.body);
    let ring = Ring::new(&shards.urls, 16);
    let id =
        (0..100u64).find(|&id| ring.copies("rep", 32, partition_of("rep", id, 32), 2).contains(&1)).expect("an id");
    let read = call("GET", &format!("{}/collections/rep/vectors/{id}", node.url), None);
    assert_eq!((read.status, read.body["code"].as_str()), (421, Some("partition_not_ready")), "{}", read.body);
    let search = call(
        "POST",
        &format!("{}/collections/rep/search", node.url),
        Some(&json!({"vector": vector(id, 0), "k": 3}).to_string()),
    );
    assert_eq!(search.status, 200);
    assert!(search.headers.get("x-ruvector-unready-partitions").is_some(), "the filling partitions are named");
    let _router = router(&shards.urls, &[]);
    node.wait_ready();
    assert_eq!(call("GET", &format!("{}/collections/rep/vectors/{id}", node.url), None).status, 200);
}

/// Payload indexes, count and delete by filter with two copies while a
/// shard is down: the count stays exact (one copy per partition), the
/// delete succeeds on the copies up and is recorded as missed by the one
/// down, which the catch-up gives the tombstones when it is back — the
/// copies agree and nothing that matched is found on any of them.
#[test]
fn delete_by_filter_with_a_shard_down_reaches_every_copy() {
    let mut shards = Shards::start(3);
    let r = router(&shards.urls, &[]);
    let base = format!("{}/collections/f", r.url);
    let create = r#"{"name":"f","dimension":4,"metric":"l2","payload_indexes":{"tag":"keyword"}}"#;
    assert_eq!(call("POST", &format!("{}/collections", r.url), Some(create)).status, 201);
    let vectors: Vec<Value> = (0..600u64)
        .map(|id| json!({"id": id, "vector": vector(id, 0), "payload": {"tag": if id % 3 == 0 { "x" } else { "y" }}}))
        .collect();
    let r1 = call("POST", &format!("{base}/vectors"), Some(&json!({ "vectors": vectors }).to_string()));
    assert_eq!(r1.status, 201, "{}", r1.body);
    let count = |filter: &str| -> u64 {
        let r = call("POST", &format!("{base}/count"), Some(&format!(r#"{{"filter":{filter}}}"#)));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["count"].as_u64().expect("count")
    };
    let is_x = r#"{"must":[{"key":"tag","eq":"x"}]}"#;
    assert_eq!(count(is_x), 200);
    assert_eq!(call("POST", &format!("{base}/count"), Some("{}")).body["count"], 600);

    shards.nodes[2].take().expect("up").kill();
    assert_eq!(count(is_x), 200, "one copy of every partition answers");
    let deleted = call("POST", &format!("{base}/delete"), Some(&format!(r#"{{"filter":{is_x}}}"#)));
    assert_eq!((deleted.status, deleted.body["deleted"].clone()), (200, json!(200)), "{}", deleted.body);
    assert_eq!(count(is_x), 0);
    assert_eq!(call("POST", &format!("{base}/count"), Some("{}")).body["count"], 400);

    shards.restart(2);
    wait_all_ready(&r.url);
    copies_agree(&shards.urls, "f", 32).expect("identical copies after the catch-up");
    for shard in &shards.urls {
        let r = call("POST", &format!("{shard}/collections/f/count"), Some(&format!(r#"{{"filter":{is_x}}}"#)));
        assert_eq!(r.body["count"], 0, "shard {shard} still holds matching points: {}", r.body);
    }
    assert_eq!(count(is_x), 0);
    let search =
        call("POST", &format!("{base}/search"), Some(&format!(r#"{{"vector":[0,0,0,0],"k":5,"filter":{is_x}}}"#)));
    assert_eq!(hit_ids(&search.body), Vec::<u64>::new());
    // A retried delete is harmless.
    let again = call("POST", &format!("{base}/delete"), Some(&format!(r#"{{"filter":{is_x}}}"#)));
    assert_eq!(again.body["deleted"], 0, "{}", again.body);
}
