//! What the tests that move partitions share (`cluster_rebalance.rs`,
//! `cluster_rebalance_chaos.rs`): the vectors they write, routers without
//! the anti-entropy pass (only moves and catch-ups put copies in line),
//! waiting for a balanced placement, clients that search, read, upsert and
//! delete through whichever router is current, and the checker run once
//! the cluster is quiet.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ruvector_api::partition_of;
use serde_json::{Value, json};

use super::{Acked, Process, Unacked, Written, call, send, writer_tracking};

pub const DIM: usize = 4;

/// Partitions of a collection created through a router over three or four
/// shards (about eight per shard, a power of two).
pub const PARTITIONS: u32 = 32;

/// A distinct pseudo-random vector per (id, salt) (splitmix64).
pub fn vector(id: u64, salt: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|d| {
            let mut z = (id << 8 ^ salt << 40 ^ d).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

pub fn upsert_body(ids: impl IntoIterator<Item = u64>, salt: u64) -> String {
    let vectors: Vec<Value> = ids.into_iter().map(|id| json!({"id": id, "vector": vector(id, salt)})).collect();
    json!({ "vectors": vectors }).to_string()
}

/// The vector of a `GET .../vectors/{id}` answer, as f32.
pub fn stored(body: &Value) -> Option<Vec<f32>> {
    body["vector"].as_array()?.iter().map(|x| x.as_f64().map(|x| x as f32)).collect()
}

/// A router over `shards` keeping `replicas` copies, without the
/// anti-entropy pass, with `extra` arguments and environment.
pub fn router_with(shards: &[String], replicas: usize, extra: &[&str], env: &[(&str, &str)]) -> Process {
    let list = shards.join(",");
    let copies = replicas.to_string();
    let mut args = vec!["router", "--addr", "127.0.0.1:0", "--shards", &list, "--replication-factor", &copies];
    args.extend_from_slice(extra);
    let mut vars = vec![("RUVECTOR_ROUTER__REPAIR_INTERVAL_MS", "0")];
    vars.extend_from_slice(env);
    let r = Process::start_with_env(&args, &vars);
    r.wait_ready();
    r
}

pub fn router(shards: &[String], replicas: usize) -> Process {
    router_with(shards, replicas, &[], &[])
}

pub fn router_draining(shards: &[String], replicas: usize, drain: &str) -> Process {
    router_with(shards, replicas, &["--drain", drain], &[])
}

/// Creates collection `name` (dimension 4, L2) through `router_url` and
/// loads ids `0..n` with salt 0.
pub fn create_and_load(router_url: &str, name: &str, n: u64) {
    let create = call(
        "POST",
        &format!("{router_url}/collections"),
        Some(&json!({"name": name, "dimension": DIM, "metric": "l2"}).to_string()),
    );
    assert_eq!(create.status, 201, "{}", create.body);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let up =
            call("POST", &format!("{router_url}/collections/{name}/vectors"), Some(&upsert_body(chunk.to_vec(), 0)));
        assert_eq!(up.status, 201, "{}", up.body);
    }
}

/// `GET /cluster` of a router.
pub fn cluster(router_url: &str) -> Value {
    call("GET", &format!("{router_url}/cluster"), None).body
}

/// Partitions the router reports moving.
pub fn moving(router_url: &str) -> u64 {
    cluster(router_url)["moving"].as_u64().expect("moving")
}

/// The copies of every partition of `name` as the router reports them, by
/// index in `shards`, once every copy is ready, each partition has
/// `replicas` of them and the first `active` shards hold their share each
/// (the others none); `None` while partitions still move.
pub fn settled(
    router_url: &str,
    name: &str,
    shards: &[String],
    active: usize,
    replicas: usize,
) -> Option<Vec<Vec<usize>>> {
    let c = cluster(router_url);
    let placed = c["collections"].as_array()?.iter().find(|c| c["name"] == name)?.clone();
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
    // The first `active` shards hold P·R/active copies each (±1), the
    // others none.
    let copies = PARTITIONS as usize * replicas;
    let (low, high) = (copies / active, copies.div_ceil(active));
    let balanced = (0..shards.len()).all(|s| {
        let held = rows.iter().filter(|r| r.contains(&s)).count();
        if s < active { (low..=high).contains(&held) } else { held == 0 }
    });
    let whole = rows.len() == PARTITIONS as usize && rows.iter().all(|r| r.len() == replicas);
    (ready && balanced && whole).then_some(rows)
}

/// Polls `done` for up to two minutes; on timeout fails with the router's
/// `/cluster`.
pub fn wait_until(router_url: &str, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(120) {
            panic!("not {what} within 120 s: {}", cluster(router_url));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{what} after {:.1} s", start.elapsed().as_secs_f64());
}

/// The router URL clients use; switched when a new router takes over.
pub type Current = Arc<Mutex<String>>;

pub fn current(url: &Current) -> String {
    url.lock().expect("url").clone()
}

/// Points the clients at `next`, then stops `old` gracefully (its
/// in-flight requests finish): what a rolling router upgrade does.
pub fn hand_over(url: &Current, old: Process, next: Process) -> Process {
    *url.lock().expect("url") = next.url.clone();
    // Requests already sent to `old` are on their way; give them a moment
    // before the shutdown starts (it drains them anyway).
    std::thread::sleep(Duration::from_millis(300));
    let status = old.terminate();
    assert!(status.success(), "router exited {status:?}");
    next
}

/// What [`Clients`] saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub reads: u64,
    /// Reads answered 503 (some partition had no copy to read).
    pub reads_unavailable: u64,
    /// Reads answered anything else than the right answer or a 503: a
    /// wrong vector or hit list, a duplicate, a 404 of a loaded id, another
    /// error, a broken connection.
    pub reads_wrong: u64,
    pub writes: Written,
    pub acked: Acked,
    pub unacked: Unacked,
}

impl Outcome {
    /// Failed writes that were not 503s.
    pub fn writes_wrong(&self) -> u64 {
        self.writes.failed - self.writes.unavailable
    }

    /// Asserts that not one request failed.
    #[track_caller]
    pub fn assert_no_failure(&self) {
        let (reads, writes) = (self.reads_unavailable + self.reads_wrong, self.writes.failed);
        assert_eq!(reads, 0, "{reads} of {} reads failed: {self}", self.reads);
        assert_eq!(writes, 0, "{writes} of {} writes failed: {self}", self.writes.requests);
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} reads ({} unavailable, {} wrong), {} writes ({} unavailable, {} other failures)",
            self.reads,
            self.reads_unavailable,
            self.reads_wrong,
            self.writes.requests,
            self.writes.unavailable,
            self.writes_wrong()
        )
    }
}

/// Clients of a collection loaded with ids `0..n` (salt 0), through the
/// router [`Current`] names: one searching for loaded vectors (5 distinct
/// hits, the vector itself first), one reading them by id, and two
/// writers over ids nobody else uses (`10_000..10_300`, `20_000..20_300`)
/// upserting, re-upserting and deleting ([`writer_tracking`]). Stopped
/// (and joined) when dropped.
pub struct Clients {
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
    readers: Vec<JoinHandle<(u64, u64)>>,
    writers: Vec<JoinHandle<Written>>,
    acked: Acked,
    unacked: Unacked,
}

/// Failures a reader prints in full (503s may come by the thousand while
/// a partition's only copy is down).
const PRINTED_UNAVAILABLE: u64 = 3;

fn read_loop(url: &Current, name: &str, n: u64, search: bool, stop: &AtomicBool, reads: &AtomicU64) -> (u64, u64) {
    let (mut unavailable, mut wrong) = (0u64, 0u64);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let id = (i * 104_729 + u64::from(search)) % n;
        let base = current(url);
        let reply = if search {
            let body = json!({"vector": vector(id, 0), "k": 5, "ef": 200}).to_string();
            send("POST", &format!("{base}/collections/{name}/search"), Some(&body))
        } else {
            send("GET", &format!("{base}/collections/{name}/vectors/{id}"), None)
        };
        let right = reply.as_ref().is_ok_and(|r| {
            r.status == 200
                && if search {
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
        if right {
            continue;
        }
        let what = if search { "search for" } else { "read" };
        if reply.as_ref().is_ok_and(|r| r.status == 503) {
            unavailable += 1;
            if unavailable <= PRINTED_UNAVAILABLE {
                eprintln!("{what} {id} (503s are printed {PRINTED_UNAVAILABLE} times): {:?}", reply.map(|r| r.body));
            }
        } else {
            wrong += 1;
            eprintln!("{what} {id}: {:?}", reply.map(|r| (r.status, r.body)));
        }
    }
    (unavailable, wrong)
}

impl Clients {
    pub fn start(url: &Current, name: &str, n: u64) -> Clients {
        assert!(n <= 10_000, "the loaded ids stay clear of the writers'");
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let readers = [true, false]
            .into_iter()
            .map(|search| {
                let (stop, reads, url, name) = (stop.clone(), reads.clone(), url.clone(), name.to_owned());
                std::thread::spawn(move || read_loop(&url, &name, n, search, &stop, &reads))
            })
            .collect();
        let (acked, unacked) = (Acked::default(), Unacked::default());
        let writers = [10_000u64, 20_000]
            .into_iter()
            .map(|base| {
                let (stop, url, name) = (stop.clone(), url.clone(), name.to_owned());
                let (acked, unacked) = (acked.clone(), unacked.clone());
                std::thread::spawn(move || {
                    writer_tracking(|| current(&url), &name, upsert_body, (base, 300), &stop, &acked, &unacked)
                })
            })
            .collect();
        Clients { stop, reads, readers, writers, acked, unacked }
    }

    /// Waits until the readers made 30 more requests (answered or not).
    pub fn some_reads(&self) {
        let at = self.reads.load(Ordering::Relaxed);
        super::wait_for(Duration::from_secs(30), || self.reads.load(Ordering::Relaxed) > at + 30);
    }

    /// Stops every client and tallies what they saw.
    pub fn stop(mut self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut out = Outcome {
            reads: self.reads.load(Ordering::Relaxed),
            acked: self.acked.clone(),
            unacked: self.unacked.clone(),
            ..Outcome::default()
        };
        for r in std::mem::take(&mut self.readers) {
            let (unavailable, wrong) = r.join().expect("reader");
            out.reads_unavailable += unavailable;
            out.reads_wrong += wrong;
        }
        out.reads = self.reads.load(Ordering::Relaxed);
        for w in std::mem::take(&mut self.writers) {
            let w = w.join().expect("writer");
            out.writes.requests += w.requests;
            out.writes.failed += w.failed;
            out.writes.unavailable += w.unavailable;
        }
        out
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        for w in self.writers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A gauge or counter without labels from a Prometheus text page.
pub fn metric(router_url: &str, name: &str) -> Option<f64> {
    let page = call("GET", &format!("{router_url}/metrics"), None).body;
    page.as_str()?.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until the cluster is quiet and returns the copies of every
/// partition of `name` (by index in `shards`): the placement `driver`
/// reports is settled (see [`settled`]), every shard is ready (no copy
/// filling) and leaves no partition out of its reads (none filling, no
/// moved-away data still to drop), and none of `routers` holds missed
/// writes it has yet to mark for catching up.
pub fn wait_quiet(
    driver: &str,
    routers: &[&str],
    name: &str,
    shards: &[String],
    active: usize,
    replicas: usize,
) -> Vec<Vec<usize>> {
    let probe = json!({"vector": vector(0, 0), "k": 1}).to_string();
    let mut rows = None;
    wait_until(driver, "quiet", || {
        rows = settled(driver, name, shards, active, replicas);
        rows.is_some()
            && shards.iter().all(|s| {
                call("GET", &format!("{s}/ready"), None).status == 200 && {
                    let r = call("POST", &format!("{s}/collections/{name}/search"), Some(&probe));
                    r.status == 200
                        && r.headers
                            .get(ruvector_api::UNREADY_HEADER)
                            .is_none_or(|v| v.to_str().unwrap_or("x").trim().is_empty())
                }
            })
            && routers.iter().all(|r| metric(r, "ruvector_router_missed_write_backlog") == Some(0.0))
    });
    rows.expect("settled")
}

/// The states every id may be in: ids `0..loaded` as loaded (salt 0),
/// then as the last acknowledged write left them (`Some(salt)`, `None`:
/// deleted), or as any write after it that was not acknowledged (it may
/// have landed).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub loaded: u64,
    pub acked: HashMap<u64, Option<u64>>,
    pub unacked: HashMap<u64, Vec<Option<u64>>>,
}

impl Expected {
    pub fn loaded(n: u64) -> Expected {
        Expected { loaded: n, ..Expected::default() }
    }

    pub fn with_writes(n: u64, acked: &Acked, unacked: &Unacked) -> Expected {
        Expected {
            loaded: n,
            acked: acked.lock().expect("acked").clone(),
            unacked: unacked.lock().expect("unacked").clone(),
        }
    }

    /// Every id that may hold a vector, with its possible states.
    fn states(&self) -> BTreeMap<u64, Vec<Option<u64>>> {
        let mut all: BTreeMap<u64, Vec<Option<u64>>> = (0..self.loaded).map(|id| (id, vec![Some(0)])).collect();
        for (&id, &state) in &self.acked {
            all.insert(id, vec![state]);
        }
        for (id, states) in &self.unacked {
            // An id only ever written without acknowledgement may be absent.
            all.entry(*id).or_insert_with(|| vec![None]).extend(states);
        }
        all
    }
}

/// The full check, once the cluster is quiet ([`wait_quiet`]): through
/// `router_url`, every id is in one of the states `expected` allows (an
/// acknowledged write present with its exact vector, an acknowledged
/// delete absent), and every copy `rows` names answers exactly the same;
/// the collection's size is the number of live ids, and the shards hold
/// exactly `replicas` copies of each (moved-away data is gone).
pub fn check(router_url: &str, name: &str, shards: &[String], rows: &[Vec<usize>], expected: &Expected) {
    let states: Vec<(u64, Vec<Option<u64>>)> = expected.states().into_iter().collect();
    let replicas = rows[0].len() as u64;
    let live = AtomicU64::new(0);
    // Four checkers: the requests are independent and the processes have
    // threads to spare.
    std::thread::scope(|scope| {
        for part in states.chunks(states.len().div_ceil(4)) {
            let live = &live;
            scope.spawn(move || {
                for (id, allowed) in part {
                    let id = *id;
                    let routed = call("GET", &format!("{router_url}/collections/{name}/vectors/{id}"), None);
                    let found = match routed.status {
                        200 => {
                            let v = stored(&routed.body);
                            let salt = allowed.iter().flatten().find(|&&s| v == Some(vector(id, s)));
                            assert!(salt.is_some(), "id {id} may be {allowed:?}, the router answers {}", routed.body);
                            live.fetch_add(1, Ordering::Relaxed);
                            v
                        }
                        404 => {
                            assert!(allowed.contains(&None), "id {id} must be {allowed:?}: {}", routed.body);
                            None
                        }
                        s => panic!("id {id}: the router answers {s}: {}", routed.body),
                    };
                    for &s in &rows[partition_of(name, id, PARTITIONS) as usize] {
                        let direct = call("GET", &format!("{}/collections/{name}/vectors/{id}", shards[s]), None);
                        assert_eq!(
                            (direct.status, stored(&direct.body)),
                            (routed.status, found.clone()),
                            "id {id} on shard {s} differs from the router's answer: {}",
                            direct.body
                        );
                    }
                }
            });
        }
    });
    let live = live.into_inner();
    let info = call("GET", &format!("{router_url}/collections/{name}"), None).body;
    assert_eq!(info["size"], live, "{info}");
    // Each shard holds exactly its partitions' vectors: moved-away data is gone.
    let sizes: Vec<u64> = shards
        .iter()
        .map(|u| call("GET", &format!("{u}/collections/{name}"), None).body["size"].as_u64().expect("size"))
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), live * replicas, "copies across shards: {sizes:?}");
    eprintln!("checked {} ids ({live} live) on {replicas} copies", states.len());
}
