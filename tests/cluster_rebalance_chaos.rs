//! Partitions moving under faults, through real processes: what
//! `cluster_rebalance.rs` does once, here at random stages and with random
//! victims (a seeded suite a failure can be replayed from); a router
//! SIGSTOPped through a whole drain or grow, then asked at once; and the
//! API suite through routers while partitions move.
//!
//! `RUVECTOR_CHAOS_SEED` picks the seed (printed either way),
//! `RUVECTOR_CHAOS_RUNS` the number of randomized runs (default 2; a
//! longer run uses 20 or more). `RUVECTOR_TEST_LOG=info` shows what the
//! routers and shards did (each line tagged with its process).
//! `RUVECTOR_SLEEPER_SYNC_MS` sets the sleeping router's sync period
//! (default 1000; e.g. 600000 leaves its view to the fence alone).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::rebalance::{
    Clients, Current, Expected, check, cluster, create_and_load, hand_over, moving, router, router_draining,
    router_with, settled, stored, upsert_body, vector, wait_quiet, wait_until,
};
use support::{Acked, Process, Unacked, call, path_str, send};

/// Ids loaded before anything moves: enough that moving a quarter of them
/// (snapshots, catch-up, last merge, one partition at a time) spans a
/// second or two in a debug build, so a random delay lands mid-move.
const LOADED: u64 = 3000;

/// The longest random delay between the kill's [`Anchor`] and the kill.
const MAX_KILL_DELAY_MS: u64 = 1500;

/// The longest a killed process stays down.
const MAX_DOWNTIME_MS: u64 = 1000;

/// splitmix64: the test's only source of randomness, so a seed replays a
/// run's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64
}

/// What a run SIGKILLs mid-move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    /// A shard giving up a partition that is moving.
    Source,
    /// The new (fourth) shard.
    Target,
    /// The router driving the moves (clients use another router).
    Driver,
}

/// When the random delay before the kill starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// When the driving router has added the first new copies.
    Started,
    /// When no new copy is filling any more (the moves are finishing:
    /// old copies merged and dropped at the driver's next syncs).
    Copied,
}

impl Anchor {
    fn describe(self) -> &'static str {
        match self {
            Anchor::Started => "new copies are added",
            Anchor::Copied => "the new copies are filled",
        }
    }
}

/// A list of shard addresses in a move of `/cluster`.
fn shards_in(m: &Value, key: &str) -> Vec<String> {
    m[key].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

/// Shard addresses (as `/cluster` names them) a move's copies leave.
fn sources(m: &Value) -> Vec<String> {
    let target = shards_in(m, "target");
    shards_in(m, "now").into_iter().filter(|s| !target.contains(s)).collect()
}

/// Where a move of `/cluster` stands: `waiting` (its new copies not added
/// yet), `filling` (added, being filled) or `finishing`.
fn stage_of(m: &Value) -> &'static str {
    let now = shards_in(m, "now");
    if m["state"] == "finishing" {
        "finishing"
    } else if shards_in(m, "target").iter().all(|s| now.contains(s)) {
        "filling"
    } else {
        "waiting"
    }
}

/// How many moves of a `/cluster` answer are at `stage`.
fn at_stage(c: &Value, stage: &str) -> usize {
    c["moves"].as_array().into_iter().flatten().filter(|m| stage_of(m) == stage).count()
}

/// A compact picture of the moves in flight, for the log.
fn moves_summary(c: &Value) -> String {
    format!(
        "moving {}, {} waiting, {} filling, {} finishing, epoch {}",
        c["moving"],
        at_stage(c, "waiting"),
        at_stage(c, "filling"),
        at_stage(c, "finishing"),
        c["epoch"]
    )
}

/// One randomized run (see [`randomized_kills_during_moves`]); returns a
/// one-line summary.
fn chaos_run(seed: u64) -> String {
    let mut rng = Rng(seed);
    let replicas = 1 + rng.below(2) as usize;
    let victim = [Victim::Source, Victim::Target, Victim::Driver][rng.below(3) as usize];
    let anchor = [Anchor::Started, Anchor::Copied][rng.below(2) as usize];
    let delay = Duration::from_millis(rng.below(MAX_KILL_DELAY_MS + 1));
    let downtime = Duration::from_millis(rng.below(MAX_DOWNTIME_MS + 1));
    let pick = rng.next();
    eprintln!(
        "R={replicas}; SIGKILL the {victim:?} {} ms after {}, back {} ms later",
        delay.as_millis(),
        anchor.describe(),
        downtime.as_millis()
    );

    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let mut nodes: Vec<Option<Process>> = dirs.iter().map(|d| Some(Process::node(d.path()))).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.as_ref().expect("up").url.clone()).collect();
    let first = router(&urls[..3], replicas);
    create_and_load(&first.url, NAME, LOADED);
    let url: Current = Arc::new(Mutex::new(first.url.clone()));
    let clients = Clients::start(&url, NAME, LOADED);
    clients.some_reads();

    // Two routers with the fourth shard: the clients' one, then the one
    // that drives the moves (it started last). The clients' one has the
    // fourth shard drained, i.e. wants the placement as it is: it moves
    // nothing before the driver starts, so the moves start with it.
    let front = hand_over(&url, first, router_draining(&urls, replicas, &urls[3]));
    let driver_start = now_ms();
    let mut driver = router(&urls, replicas);
    wait_until(&driver.url, "the newest router driving", || {
        urls.iter().all(|u| {
            call("GET", &format!("{u}/cluster/assignment"), None).body["planner"]
                .as_u64()
                .is_some_and(|p| p >= driver_start)
        })
    });
    wait_until(&driver.url, "a move planned", || moving(&driver.url) > 0);
    let seen = cluster(&driver.url);
    // Moves may wait a few seconds first (the shards still remember the
    // router over three shards).
    wait_until(&driver.url, "new copies added", || {
        let c = cluster(&driver.url);
        c["moving"] == 0 || at_stage(&c, "waiting") < c["moves"].as_array().map_or(0, Vec::len)
    });
    if anchor == Anchor::Copied {
        wait_until(&driver.url, "every new copy filled", || {
            let c = cluster(&driver.url);
            at_stage(&c, "waiting") + at_stage(&c, "filling") == 0
        });
    }
    std::thread::sleep(delay);
    let at_kill = cluster(&driver.url);
    let stage = moves_summary(&at_kill);
    let killed = match victim {
        Victim::Target => Some(3),
        Victim::Source => {
            // A source of a move in flight, else (all done) of one seen.
            let in_flight: Vec<String> = at_kill["moves"].as_array().into_iter().flatten().flat_map(sources).collect();
            let candidates = if in_flight.is_empty() {
                seen["moves"].as_array().into_iter().flatten().flat_map(sources).collect()
            } else {
                in_flight
            };
            assert!(!candidates.is_empty(), "no move with a source: {seen}");
            let address = &candidates[(pick % candidates.len() as u64) as usize];
            Some(urls.iter().position(|u| u == address).expect("a known shard"))
        }
        Victim::Driver => None,
    };
    let victim_name = killed.map_or("the driving router".to_owned(), |s| format!("shard {s} ({victim:?})"));
    eprintln!("SIGKILL {victim_name} at {stage}");
    if let Some(killed) = killed {
        nodes[killed].take().expect("up").kill();
        std::thread::sleep(downtime);
        let address = urls[killed].trim_start_matches("http://");
        nodes[killed] = Some(Process::start(&["serve", "--addr", address, "--data", path_str(dirs[killed].path())]));
    } else {
        driver.kill();
        std::thread::sleep(downtime);
        driver = router(&urls, replicas);
    }
    wait_until(&driver.url, "balanced over four shards", || settled(&driver.url, NAME, &urls, 4, replicas).is_some());
    clients.some_reads();
    let outcome = clients.stop();
    eprintln!("{outcome}");
    // The data first (a failure below says more with it checked).
    let rows = wait_quiet(&driver.url, &[&front.url, &driver.url], NAME, &urls, 4, replicas);
    check(&front.url, NAME, &urls, &rows, &Expected::with_writes(LOADED, &outcome.acked, &outcome.unacked));
    assert_eq!(outcome.reads_wrong, 0, "wrong answers: {outcome}");
    assert_eq!(outcome.writes_wrong(), 0, "writes failed other than unavailable: {outcome}");
    if replicas == 1 && victim != Victim::Driver {
        // The only copy of some partitions was down for a while: 503s for
        // them are the documented answer, nothing else.
    } else {
        outcome.assert_no_failure();
    }
    format!("R={replicas}, {victim_name} killed at {stage}: {outcome}")
}

const NAME: &str = "chaos";

/// Seeded random runs of a grow from three shards to four under
/// searches, reads, upserts and deletes, each with one SIGKILL mid-move:
/// the source of a moving partition, the new shard, or the driving router
/// (clients use another router), after a random delay from the first move
/// seen or from the new copies being filled (so kills land while copies
/// fill, while moves finish, and after), back after a random downtime (a
/// shard on its address and volume; a router as a new process with the
/// same shard list); one or two copies. No answer may be wrong; with two
/// copies, or a router killed, no request may fail (with one copy, a 503
/// while a partition's only copy is down is the documented answer).
/// Afterwards every acknowledged write is on every copy, every
/// acknowledged delete gone, sizes exact, placement balanced.
#[test]
fn randomized_kills_during_moves() {
    let seed = env_u64("RUVECTOR_CHAOS_SEED").unwrap_or_else(|| {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        t.as_secs() ^ u64::from(t.subsec_nanos()) << 20 ^ u64::from(std::process::id()) << 44
    });
    let runs = env_u64("RUVECTOR_CHAOS_RUNS").unwrap_or(2);
    eprintln!("chaos: seed {seed}, {runs} runs (replay: RUVECTOR_CHAOS_SEED={seed} RUVECTOR_CHAOS_RUNS={runs})");
    let mut seeds = Rng(seed);
    let mut failed = Vec::new();
    for run in 0..runs {
        // Run 0 uses the seed itself, so any run replays alone.
        let run_seed = if run == 0 { seed } else { seeds.next() };
        eprintln!("chaos run {run}: seed {run_seed} (alone: RUVECTOR_CHAOS_SEED={run_seed} RUVECTOR_CHAOS_RUNS=1)");
        let start = Instant::now();
        match std::panic::catch_unwind(|| chaos_run(run_seed)) {
            Ok(summary) => {
                eprintln!(
                    "chaos run {run}: seed {run_seed}: passed in {:.1} s: {summary}",
                    start.elapsed().as_secs_f64()
                )
            }
            Err(_) => {
                eprintln!("chaos run {run}: seed {run_seed}: FAILED after {:.1} s", start.elapsed().as_secs_f64());
                failed.push(run_seed);
            }
        }
    }
    assert!(failed.is_empty(), "chaos seed {seed}: runs with seeds {failed:?} failed (replay each alone, see above)");
}

/// Which change a sleeping router sleeps through.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Four shards, the fourth drained.
    Drain,
    /// Four shards, the fourth drained from the start, then not any more:
    /// three shards grown to four.
    Grow,
}

/// A router that is not driving is SIGSTOPped, a drain or grow runs to a
/// balanced placement through another router, and the sleeper is woken
/// with requests already waiting on its socket: reads of every id,
/// searches, upserts and deletes, routed by the placement it had before
/// (its periodic sync, overdue, runs at the same moment). Shards refuse
/// what it routes by its old placement (421 `stale_placement`): it must
/// learn the new placement and answer every request right.
fn router_sleeps_through(replicas: usize, change: Change) {
    let n = 2000u64;
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let nodes: Vec<Process> = dirs.iter().map(|d| Process::node(d.path())).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    // Started first, so it never drives once another router runs. Its
    // periodic sync may be changed (`RUVECTOR_SLEEPER_SYNC_MS`, e.g. to
    // 600000 so that only the fence can set it right). Before a grow, the
    // fourth shard is drained in every router's configuration (a router
    // that knows a shard other routers do not would drive the grow
    // itself); a router without the drain then grows the cluster.
    let sync_ms = std::env::var("RUVECTOR_SLEEPER_SYNC_MS").unwrap_or_else(|_| "1000".to_owned());
    let sync = [("RUVECTOR_ROUTER__HEALTH_INTERVAL_MS", sync_ms.as_str())];
    let (sleeper, driver, active) = match change {
        Change::Drain => {
            let sleeper = router_with(&urls, replicas, &[], &sync);
            create_and_load(&sleeper.url, NAME, n);
            sleep_when_synced(&sleeper, &urls);
            let driver = router_draining(&urls, replicas, &urls[3]);
            wait_until(&driver.url, "the fourth shard drained", || {
                cluster(&driver.url)["shards"][3]["removable"] == true
                    && settled(&driver.url, NAME, &urls, 3, replicas).is_some()
            });
            (sleeper, driver, 3)
        }
        Change::Grow => {
            let sleeper = router_with(&urls, replicas, &["--drain", &urls[3]], &sync);
            let old = router_draining(&urls, replicas, &urls[3]);
            create_and_load(&old.url, NAME, n);
            assert!(settled(&old.url, NAME, &urls, 3, replicas).is_some(), "placed over three shards");
            // The sleeper learns where the partitions are.
            let got = call("GET", &format!("{}/collections/{NAME}/vectors/1", sleeper.url), None);
            assert_eq!(stored(&got.body), Some(vector(1, 0)), "{}", got.body);
            sleep_when_synced(&sleeper, &urls[..3]);
            let driver = router(&urls, replicas);
            let status = old.terminate();
            assert!(status.success());
            wait_until(&driver.url, "balanced over four shards", || {
                settled(&driver.url, NAME, &urls, 4, replicas).is_some()
            });
            (sleeper, driver, 4)
        }
    };
    let epoch = cluster(&driver.url)["epoch"].clone();

    // Asked everything at once: reads of ids 0..n-300, searches, deletes of
    // n-300..n-200, re-upserts of n-200..n and new ids n..n+100.
    let base = sleeper.url.clone();
    let reads = {
        let base = base.clone();
        std::thread::spawn(move || {
            let mut wrong = Vec::new();
            for id in 0..n - 300 {
                let r = send("GET", &format!("{base}/collections/{NAME}/vectors/{id}"), None);
                if !r.as_ref().is_ok_and(|r| r.status == 200 && stored(&r.body) == Some(vector(id, 0))) {
                    wrong.push(format!("GET {id}: {:?}", r.map(|r| (r.status, r.body))));
                }
            }
            wrong
        })
    };
    let searches = {
        let base = base.clone();
        std::thread::spawn(move || {
            let mut wrong = Vec::new();
            for id in (0..n - 300).step_by(11) {
                let body = json!({"vector": vector(id, 0), "k": 5, "ef": 200}).to_string();
                let r = send("POST", &format!("{base}/collections/{NAME}/search"), Some(&body));
                let right = r.as_ref().is_ok_and(|r| {
                    let hits: Vec<u64> =
                        r.body.as_array().into_iter().flatten().filter_map(|h| h["id"].as_u64()).collect();
                    let mut unique = hits.clone();
                    unique.sort_unstable();
                    unique.dedup();
                    r.status == 200 && hits.len() == 5 && unique.len() == 5 && hits[0] == id
                });
                if !right {
                    wrong.push(format!("search {id}: {:?}", r.map(|r| (r.status, r.body))));
                }
            }
            wrong
        })
    };
    let (acked, unacked) = (Acked::default(), Unacked::default());
    let upserts = {
        let (base, acked, unacked) = (base.clone(), acked.clone(), unacked.clone());
        std::thread::spawn(move || {
            let mut wrong = Vec::new();
            for chunk in (n - 200..n + 100).collect::<Vec<_>>().chunks(10) {
                let r =
                    send("POST", &format!("{base}/collections/{NAME}/vectors"), Some(&upsert_body(chunk.to_vec(), 1)));
                let ok = r.as_ref().is_ok_and(|r| r.status == 201);
                for &id in chunk {
                    if ok {
                        acked.lock().expect("acked").insert(id, Some(1));
                    } else {
                        unacked.lock().expect("unacked").insert(id, vec![Some(1)]);
                    }
                }
                if !ok {
                    wrong.push(format!("upsert {chunk:?}: {:?}", r.map(|r| (r.status, r.body))));
                }
            }
            wrong
        })
    };
    let deletes = {
        let (acked, unacked) = (acked.clone(), unacked.clone());
        std::thread::spawn(move || {
            let mut wrong = Vec::new();
            for id in n - 300..n - 200 {
                let r = send("DELETE", &format!("{base}/collections/{NAME}/vectors/{id}"), None);
                if r.as_ref().is_ok_and(|r| r.status == 200) {
                    acked.lock().expect("acked").insert(id, None);
                } else {
                    unacked.lock().expect("unacked").insert(id, vec![None]);
                    wrong.push(format!("delete {id}: {:?}", r.map(|r| (r.status, r.body))));
                }
            }
            wrong
        })
    };
    // Let the first requests reach the sleeper's socket before it wakes,
    // so they are the first thing it handles.
    std::thread::sleep(Duration::from_millis(100));
    sleeper.signal("CONT");
    let wrong: Vec<String> =
        [reads, searches, upserts, deletes].into_iter().flat_map(|t| t.join().expect("client")).collect();
    for w in wrong.iter().take(20) {
        eprintln!("{w}");
    }
    let fenced = metric_lines(&sleeper.url, "ruvector_router_failovers_total{op=\"stale_placement\"}");
    eprintln!("the woken router: {} wrong answers; {fenced:?}; placement epoch {epoch}", wrong.len());

    // The data first (a failure below says more with it checked): through
    // the woken router and the driver, on every copy.
    let rows = wait_quiet(&driver.url, &[&sleeper.url, &driver.url], NAME, &urls, active, replicas);
    let expected = Expected::with_writes(n, &acked, &unacked);
    check(&sleeper.url, NAME, &urls, &rows, &expected);
    check(&driver.url, NAME, &urls, &rows, &expected);
    assert!(wrong.is_empty(), "{} wrong answers from the woken router (first ones above)", wrong.len());
    // It really was behind: shards refused it.
    let refused = fenced.iter().filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>();
    assert!(refused > 0.0, "the woken router was never refused as stale (placement epoch {epoch}): {fenced:?}");
}

/// SIGSTOPs `router` once it routes by a placement epoch (its requests
/// carry it, so shards can refuse them once the placement moves on): once
/// every shard holding the collection has an epoch and the router has
/// synced since (it learns the epoch from the shards). With
/// `RUVECTOR_SLEEPER_SYNC_MS` set, at once.
fn sleep_when_synced(router: &Process, shards: &[String]) {
    if std::env::var_os("RUVECTOR_SLEEPER_SYNC_MS").is_none() {
        support::wait_for(Duration::from_secs(30), || {
            shards.iter().all(|s| {
                call("GET", &format!("{s}/cluster/assignment"), None).body["epoch"].as_u64().is_some_and(|e| e > 0)
            })
        });
        // No route shows a router's own epoch; its syncs are counted. Three
        // more reads of every shard: a whole sync began after the epoch was
        // there, and the next read shows that it ended.
        let syncs = || -> Vec<f64> {
            shards
                .iter()
                .map(|s| {
                    let line =
                        format!("ruvector_router_shard_request_duration_seconds_count{{op=\"sync\",shard=\"{s}\"}}");
                    metric_lines(&router.url, &line)
                        .first()
                        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                        .unwrap_or(0.0)
                })
                .collect()
        };
        let before = syncs();
        support::wait_for(Duration::from_secs(30), || syncs().iter().zip(&before).all(|(now, was)| *now >= was + 3.0));
    }
    router.signal("STOP");
}

/// The lines of a router's metrics page that start with `prefix`.
fn metric_lines(router_url: &str, prefix: &str) -> Vec<String> {
    let page = call("GET", &format!("{router_url}/metrics"), None).body;
    page.as_str().unwrap_or_default().lines().filter(|l| l.starts_with(prefix)).map(str::to_owned).collect()
}

#[test]
fn one_copy_router_sleeps_through_a_drain() {
    router_sleeps_through(1, Change::Drain);
}

#[test]
fn two_copies_router_sleeps_through_a_drain() {
    router_sleeps_through(2, Change::Drain);
}

#[test]
fn one_copy_router_sleeps_through_a_grow() {
    router_sleeps_through(1, Change::Grow);
}

#[test]
fn two_copies_router_sleeps_through_a_grow() {
    router_sleeps_through(2, Change::Grow);
}

/// The node API suite through routers while partitions of a large
/// collection move (three shards grown to four, two copies): passes of
/// the suite one after the other, alternately through a router that only
/// routes (refused as stale whenever a move step raises the placement
/// epoch) and through the one driving the moves, from the first move
/// planned until none is left and the shards have the epoch of the last
/// step. Every pass must pass; some must overlap the filling of the new
/// copies, and one must span a move step (the epoch rising: by
/// construction, as the passes cover the whole time).
#[test]
fn api_suite_passes_during_a_move() {
    let replicas = 2;
    let n = 6000u64;
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let nodes: Vec<Process> = dirs.iter().map(|d| Process::node(d.path())).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    // Started before any collection exists and before the routers that
    // drive, so it never drives.
    let front = router(&urls, replicas);
    let old = router(&urls[..3], replicas);
    create_and_load(&old.url, "big", n);
    let driver = router(&urls, replicas);
    let status = old.terminate();
    assert!(status.success());
    // From the first move planned on (moves may wait a few seconds first:
    // the shards still remember the router over three shards).
    wait_until(&driver.url, "a move planned", || moving(&driver.url) > 0);

    // Each pass runs between two readings of the driver's `/cluster`, the
    // end of one being the start of the next, so the passes cover the
    // whole move.
    let mut at = cluster(&driver.url);
    let first_epoch = at["epoch"].as_u64();
    let (mut passes, mut while_filling, mut across_a_step) = (0usize, [0usize; 2], 0usize);
    // Until nothing moves and the shards have the epoch of the last step.
    while at["moving"].as_u64().is_some_and(|m| m > 0) || at["epoch"].as_u64() <= first_epoch {
        let which = passes % 2;
        let started = Instant::now();
        support::api_suite::run([&front.url, &driver.url][which], &format!("mv{passes}_"));
        let next = cluster(&driver.url);
        // The pass overlapped the filling of new copies: they were not all
        // filled when it began, and some were added when it ended.
        let filling = at_stage(&at, "waiting") + at_stage(&at, "filling") > 0
            && (at_stage(&next, "filling") + at_stage(&next, "finishing") > 0 || next["moving"] == 0);
        let stepped = next["epoch"].as_u64() > at["epoch"].as_u64();
        eprintln!(
            "pass {passes} through the {} in {:.1} s: from {} to {}",
            ["front router", "driving router"][which],
            started.elapsed().as_secs_f64(),
            moves_summary(&at),
            moves_summary(&next)
        );
        while_filling[which] += usize::from(filling);
        across_a_step += usize::from(stepped);
        at = next;
        passes += 1;
        assert!(passes < 200, "the moves do not end: {at}");
    }
    eprintln!(
        "{passes} passes; while copies filled: {} through the front router, {} through the driver; \
         {across_a_step} across a move step",
        while_filling[0], while_filling[1]
    );
    assert!(while_filling.iter().sum::<usize>() > 0, "no pass while copies filled");
    assert!(across_a_step > 0, "no pass spanned a move step");
    wait_until(&driver.url, "balanced over four shards", || settled(&driver.url, "big", &urls, 4, replicas).is_some());
    let rows = wait_quiet(&driver.url, &[&front.url, &driver.url], "big", &urls, 4, replicas);
    check(&front.url, "big", &urls, &rows, &Expected::loaded(n));
}
