//! Replicas through real processes: routers with `--replication-factor 2`
//! over three `ruvector serve` shards on loopback ports. Every id lives on
//! two shards; searches and reads go on while any one shard is down, also
//! through a rolling restart under load; conflicting writes through two
//! routers leave identical copies.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ruvector_api::partition_of;
use ruvector_router::Ring;
use serde_json::{Value, json};
use support::{Process, call, path_str, send};

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

fn router(shards: &[String], extra: &[&str]) -> Process {
    let list = shards.join(",");
    let mut args = vec!["router", "--addr", "127.0.0.1:0", "--shards", &list, "--replication-factor", "2"];
    args.extend_from_slice(extra);
    let r = Process::start(&args);
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
    assert_eq!((cluster["replication_factor"].as_u64(), cluster["write_quorum"].as_u64()), (Some(2), Some(2)));
    let placed = &cluster["collections"][0];
    assert_eq!((placed["name"].as_str(), placed["partitions"].as_u64()), (Some("rep"), Some(32)));
    for p in 0..32u32 {
        let expected: Vec<&str> = ring.copies("rep", 32, p, 2).iter().map(|&s| shards.urls[s].as_str()).collect();
        assert_eq!(placed["copies"][p as usize], json!(expected), "partition {p}");
    }
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
    // Writes need every copy by default: with a copy down they are refused
    // (503), never acknowledged. (The live copy may have applied its part:
    // an unacknowledged write may or may not land, as anywhere; bringing
    // the copies back in line is the catch-up's job.)
    shards.nodes[2].take().expect("up").kill();
    let on_down: Vec<u64> =
        (1000..1100).filter(|&id| ring.copies("rep", 32, partition_of("rep", id, 32), 2).contains(&2)).collect();
    let w = call("POST", &format!("{}/collections/rep/vectors", r.url), Some(&upsert_body(on_down, 0)));
    assert_eq!((w.status, w.body["code"].as_str()), (503, Some("unavailable")), "{}", w.body);
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

/// A rolling restart (SIGTERM, start, wait ready; what `helm upgrade`
/// does) while two clients search and one reads: not one request fails.
#[test]
fn a_rolling_restart_under_load_fails_no_read() {
    let mut shards = Shards::start(3);
    let r = router(&shards.urls, &[]);
    let create =
        call("POST", &format!("{}/collections", r.url), Some(r#"{"name":"roll","dimension":4,"metric":"l2"}"#));
    assert_eq!(create.status, 201);
    let n = 300u64;
    assert_eq!(call("POST", &format!("{}/collections/roll/vectors", r.url), Some(&upsert_body(0..n, 1))).status, 201);

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..3u64)
        .map(|c| {
            let (stop, done, failed, url) = (stop.clone(), done.clone(), failed.clone(), r.url.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = (i * 7 + c) % n;
                    let ok = if c < 2 {
                        let body = json!({"vector": vector(id, 1), "k": 5}).to_string();
                        send("POST", &format!("{url}/collections/roll/search"), Some(&body))
                            .is_ok_and(|r| r.status == 200 && hit_ids(&r.body).len() == 5)
                    } else {
                        send("GET", &format!("{url}/collections/roll/vectors/{id}"), None)
                            .is_ok_and(|r| r.status == 200 && stored(&r.body) == Some(vector(id, 1)))
                    };
                    done.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for i in 0..3 {
        let before = done.load(Ordering::Relaxed);
        support::wait_for(Duration::from_secs(30), || done.load(Ordering::Relaxed) > before + 50);
        let status = shards.nodes[i].take().expect("up").terminate();
        assert!(status.success(), "shard {i} exited {status:?}");
        shards.restart(i);
    }
    let before = done.load(Ordering::Relaxed);
    support::wait_for(Duration::from_secs(30), || done.load(Ordering::Relaxed) > before + 50);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("rolling restart: {done} requests, {failed} failed");
    assert_eq!(failed, 0, "{failed} of {done} reads failed during the rolling restart");
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

/// With `--write-quorum 1`, writes go on while a copy is down; the copy
/// misses them, and the anti-entropy pass sends it everything it lacks —
/// upserts, overwrites and tombstones — until every copy agrees.
#[test]
fn a_copy_that_missed_writes_is_repaired_by_anti_entropy() {
    let mut shards = Shards::start(3);
    let r = router(&shards.urls, &["--write-quorum", "1"]);
    let create =
        call("POST", &format!("{}/collections", r.url), Some(r#"{"name":"heal","dimension":4,"metric":"l2"}"#));
    assert_eq!(create.status, 201);
    assert_eq!(call("POST", &format!("{}/collections/heal/vectors", r.url), Some(&upsert_body(0..400, 0))).status, 201);
    let nothing = call("POST", &format!("{}/cluster/repair", r.url), None).body;
    assert_eq!((nothing["partitions_diverged"].as_u64(), nothing["upserts"].as_u64()), (Some(0), Some(0)), "{nothing}");

    shards.nodes[1].take().expect("up").kill();
    for chunk in (400..1400u64).collect::<Vec<_>>().chunks(250) {
        let w = call("POST", &format!("{}/collections/heal/vectors", r.url), Some(&upsert_body(chunk.to_vec(), 0)));
        assert_eq!(w.status, 201, "one copy is enough: {}", w.body);
    }
    let overwrite = call("POST", &format!("{}/collections/heal/vectors", r.url), Some(&upsert_body(0..50, 9)));
    assert_eq!(overwrite.status, 201);
    for id in 100..140 {
        assert_eq!(call("DELETE", &format!("{}/collections/heal/vectors/{id}", r.url), None).status, 200);
    }
    shards.restart(1);
    assert!(copies_agree(&shards.urls, "heal", 32).is_err(), "the restarted copy missed writes");

    let report = call("POST", &format!("{}/cluster/repair", r.url), None).body;
    assert!(report["upserts"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert!(report["deletes"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    copies_agree(&shards.urls, "heal", 32).expect("copies agree after the pass");
    // A second pass finds nothing to do.
    let again = call("POST", &format!("{}/cluster/repair", r.url), None).body;
    assert_eq!(again["partitions_diverged"], 0, "{again}");

    // The healed copy alone serves exactly what was acknowledged.
    for i in [0, 2] {
        shards.nodes[i].take().expect("up").kill();
    }
    let ring = Ring::new(&shards.urls, 16);
    for id in (0..1400u64).step_by(7) {
        if !ring.copies("heal", 32, partition_of("heal", id, 32), 2).contains(&1) {
            continue;
        }
        let got = call("GET", &format!("{}/collections/heal/vectors/{id}", shards.urls[1]), None);
        if (100..140).contains(&id) {
            assert_eq!(got.status, 404, "deleted id {id}");
        } else {
            let salt = if id < 50 { 9 } else { 0 };
            assert_eq!(stored(&got.body), Some(vector(id, salt)), "id {id}");
        }
    }
}
