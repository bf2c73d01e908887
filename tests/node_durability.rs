//! Durability of a real node: SIGKILL under concurrent writes, several
//! cycles; every acknowledged upsert and delete must be there afterwards
//! with its exact vector. Then a graceful SIGTERM restart keeps everything.
//! And a log tail replayed after a SIGKILL is searchable at `/ready` and
//! linked into the graph by the maintenance thread afterwards.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::json;
use support::{Process, call, send, wait_for};

const DIM: usize = 8;
const WRITERS: u64 = 4;
const IDS_PER_WRITER: u64 = 200;

/// What a writer knows: the last acknowledged state of each of its ids
/// (`None` = deleted), and the ids of operations that failed (their outcome
/// is unknown: the process died while they were in flight) and have not
/// been acknowledged since.
#[derive(Debug, Default)]
struct Ledger {
    acked: HashMap<u64, Option<Vec<f32>>>,
    in_doubt: Vec<u64>,
}

fn writer(url: String, t: u64, seed: u64, stop: Arc<AtomicBool>, acks: Arc<AtomicUsize>, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let vectors = format!("{url}/collections/d/vectors");
    while !stop.load(Ordering::Relaxed) {
        let ids: Vec<u64> = {
            let mut ids: Vec<u64> =
                (0..rng.random_range(1..8)).map(|_| t * IDS_PER_WRITER + rng.random_range(0..IDS_PER_WRITER)).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        if rng.random_range(0..4) == 0 {
            let id = ids[0];
            match send("DELETE", &format!("{vectors}/{id}"), None) {
                Ok(r) if r.status == 200 || r.status == 404 => {
                    let mut l = ledger.lock().expect("ledger");
                    l.acked.insert(id, None);
                    l.in_doubt.retain(|&d| d != id);
                }
                _ => {
                    ledger.lock().expect("ledger").in_doubt.push(id);
                    return;
                }
            }
        } else {
            let points: Vec<(u64, Vec<f32>)> =
                ids.iter().map(|&id| (id, (0..DIM).map(|_| rng.random_range(-10.0f32..10.0)).collect())).collect();
            let body =
                json!({"vectors": points.iter().map(|(id, v)| json!({"id": id, "vector": v})).collect::<Vec<_>>()});
            match send("POST", &vectors, Some(&body.to_string())) {
                Ok(r) if r.status == 201 => {
                    let mut l = ledger.lock().expect("ledger");
                    for (id, v) in points {
                        l.in_doubt.retain(|&d| d != id);
                        l.acked.insert(id, Some(v));
                    }
                }
                _ => {
                    ledger.lock().expect("ledger").in_doubt.extend(ids);
                    return;
                }
            }
        }
        acks.fetch_add(1, Ordering::Relaxed);
    }
}

fn verify(url: &str, ledgers: &[Arc<Mutex<Ledger>>]) -> usize {
    let mut checked = 0;
    for ledger in ledgers {
        let l = ledger.lock().expect("ledger");
        for (id, expected) in &l.acked {
            if l.in_doubt.contains(id) {
                continue;
            }
            let r = call("GET", &format!("{url}/collections/d/vectors/{id}"), None);
            match expected {
                Some(v) => {
                    assert_eq!(r.status, 200, "acknowledged id {id} lost: {}", r.body);
                    let got: Vec<f32> = serde_json::from_value(r.body["vector"].clone()).expect("vector");
                    assert_eq!(&got, v, "id {id} has another vector");
                }
                None => assert_eq!(r.status, 404, "acknowledged delete of {id} lost"),
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn sigkill_under_concurrent_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let mut node = Process::node(data);
    let created =
        call("POST", &format!("{}/collections", node.url), Some(r#"{"name":"d","dimension":8,"metric":"euclidean"}"#));
    assert_eq!(created.status, 201);
    let ledgers: Vec<Arc<Mutex<Ledger>>> = (0..WRITERS).map(|_| Arc::default()).collect();
    for cycle in 0..4u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..WRITERS)
            .map(|t| {
                let (url, stop, acks, ledger) =
                    (node.url.clone(), Arc::clone(&stop), Arc::clone(&acks), Arc::clone(&ledgers[t as usize]));
                std::thread::spawn(move || writer(url, t, cycle * 100 + t, stop, acks, ledger))
            })
            .collect();
        // Kill in the middle of the writes, after a varying amount of work.
        let target = 50 + 40 * cycle as usize;
        wait_for(Duration::from_secs(120), || acks.load(Ordering::Relaxed) >= target);
        node.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("writer");
        }
        node = Process::node(data);
        let checked = verify(&node.url, &ledgers);
        assert!(checked > 0, "cycle {cycle}: nothing was verified");
        eprintln!(
            "cycle {cycle}: {} acknowledged batches, {checked} ids verified after SIGKILL",
            acks.load(Ordering::Relaxed)
        );
    }
    // A graceful stop checkpoints; everything is still there afterwards.
    let status = node.terminate();
    assert!(status.success(), "SIGTERM exit status {status:?}");
    let node = Process::node(data);
    verify(&node.url, &ledgers);
}

/// `ruvector_maintenance_backlog{collection="d",kind=KIND}` from `/metrics`.
fn backlog(url: &str, kind: &str) -> Option<u64> {
    let text = call("GET", &format!("{url}/metrics"), None).body;
    let text = text.as_str()?.to_owned();
    let series = format!("ruvector_maintenance_backlog{{collection=\"d\",kind=\"{kind}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_replayed_log_tail_is_searchable_at_once_and_linked_in_the_background() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No background checkpoint: every write stays in the log tail.
    let env = [("RUVECTOR_STORAGE__CHECKPOINT_INTERVAL_SECS", "0")];
    let node = Process::node_with_env(dir.path(), &env);
    let created =
        call("POST", &format!("{}/collections", node.url), Some(r#"{"name":"d","dimension":8,"metric":"euclidean"}"#));
    assert_eq!(created.status, 201);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(77);
    let vectors: Vec<Vec<f32>> = (0..300).map(|_| (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect();
    for (id, v) in vectors.iter().enumerate() {
        let body = json!({"vectors": [{"id": id, "vector": v}]}).to_string();
        let r = call("POST", &format!("{}/collections/d/vectors", node.url), Some(&body));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    node.kill();

    let node = Process::node_with_env(dir.path(), &env);
    let nearest = |v: &Vec<f32>| -> u64 {
        let body = json!({"vector": v, "k": 1, "ef": 400}).to_string();
        let r = call("POST", &format!("{}/collections/d/search", node.url), Some(&body));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body[0]["id"].as_u64().expect("an id")
    };
    for id in (0..300).step_by(13) {
        assert_eq!(nearest(&vectors[id]), id as u64, "replayed vector {id} found at /ready");
    }
    wait_for(Duration::from_secs(60), || backlog(&node.url, "unlinked") == Some(0));
    for id in (0..300).step_by(13) {
        assert_eq!(nearest(&vectors[id]), id as u64, "vector {id} found once linked");
    }
    let info = call("GET", &format!("{}/collections/d", node.url), None);
    assert_eq!(info.body["size"], 300);
}
