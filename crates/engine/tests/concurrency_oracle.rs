//! The concurrency oracle: searches, upserts, deletes and checkpoints run
//! all at once against one engine (with the node's maintenance thread
//! linking, repairing and relinking in the background) for a while; then
//! every answer of a search at an exact `ef` (one that covers the whole
//! collection, so the graph walk visits every reachable point) is checked
//! against brute force over the state the writers' own models say the
//! collection must hold — on the live engine, and again after it is
//! dropped without a checkpoint and reopened from its log.
//!
//! While the run is on, searchers also look for points nobody touches
//! ("frozen" ones, loaded first) by their own vectors: each must come
//! back first at distance 0, whatever the writers are doing around it —
//! one searcher plainly, one through an id filter (as a shard reads).
//!
//! Length: `RUVECTOR_ORACLE_SECS` (default 20; BENCHMARKS/RELIABILITY
//! report longer runs).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng as StdRng;
use rand::{Rng, SeedableRng};
use ruvector_engine::{CollectionConfig, Engine, EngineConfig, Fsync, Metric, Point};

const NAME: &str = "oracle";
const DIM: usize = 16;
const FROZEN: u64 = 1500;
const WRITERS: u64 = 2;
/// Ids each writer owns: `WRITER_BASE * (w + 1) ..` this many.
const WRITER_IDS: u64 = 1000;
const WRITER_BASE: u64 = 100_000;
/// An `ef` above the largest possible collection size: an exact search.
const EXACT_EF: usize = 4096;
const K: usize = 10;

fn random_vector(rng: &mut StdRng) -> Vec<f32> {
    (0..DIM).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
}

fn frozen_vector(id: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(id ^ 0x5eed);
    random_vector(&mut rng)
}

fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn point(id: u64, vector: Vec<f32>) -> Point {
    Point { id, vector, payload: None, version: 0 }
}

fn seconds() -> u64 {
    std::env::var("RUVECTOR_ORACLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20)
}

/// One writer: upserts (batches of 1–8 of its own ids, new vectors) and
/// deletes, keeping the model of what its ids must hold.
fn write_loop(engine: &Engine, w: u64, stop: &AtomicBool, ops: &AtomicU64) -> HashMap<u64, Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(1000 + w);
    let base = WRITER_BASE * (w + 1);
    let mut model = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        if rng.random_bool(0.7) {
            // Distinct ids (a batch may not name one twice).
            let first = rng.random_range(0..WRITER_IDS);
            let batch: Vec<Point> = (0..rng.random_range(1..=8u64))
                .map(|i| point(base + (first + i * 37) % WRITER_IDS, random_vector(&mut rng)))
                .collect();
            let applied: Vec<(u64, Vec<f32>)> = batch.iter().map(|p| (p.id, p.vector.clone())).collect();
            engine.upsert(NAME, batch).expect("upsert");
            model.extend(applied);
        } else {
            let id = base + rng.random_range(0..WRITER_IDS);
            let was = engine.delete(NAME, id).expect("delete");
            assert_eq!(was, model.remove(&id).is_some(), "delete of {id}: the engine and the model disagree");
        }
        ops.fetch_add(1, Ordering::Relaxed);
    }
    model
}

/// One searcher: a frozen point looked for by its own vector must come
/// back first, at distance 0; answers are sorted and free of duplicates.
/// With `gated`, searches go through the id filter a shard applies to
/// partitions it may not serve (`Engine::search_where`): only even ids
/// pass, and an even frozen point is looked for.
fn search_loop(engine: &Engine, seed: u64, gated: bool, stop: &AtomicBool, searches: &AtomicU64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let even = |id: u64| id.is_multiple_of(2);
    while !stop.load(Ordering::Relaxed) {
        let id = rng.random_range(0..FROZEN) & if gated { !1 } else { !0 };
        let hits = if gated {
            let hits = engine.search_where(NAME, &frozen_vector(id), K, Some(EXACT_EF), &even).expect("search");
            assert!(hits.iter().all(|h| even(h.id)), "the gate let an odd id through: {hits:?}");
            hits
        } else {
            engine.search(NAME, &frozen_vector(id), K, Some(EXACT_EF)).expect("search")
        };
        assert_eq!(hits.first().map(|h| h.id), Some(id), "frozen point {id} not found first: {hits:?}");
        assert!(hits[0].distance.abs() < 1e-4, "frozen point {id} at distance {}", hits[0].distance);
        assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance), "unsorted: {hits:?}");
        let mut ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), hits.len(), "duplicate ids: {hits:?}");
        searches.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every search at the exact `ef` equals brute force over `model`; every
/// point reads back as written; the size matches.
fn check_against_brute_force(engine: &Engine, model: &HashMap<u64, Vec<f32>>, when: &str) {
    assert_eq!(engine.collection(NAME).expect("info").size, model.len(), "{when}: size");
    for (id, vector) in model {
        let got = engine.get(NAME, *id).expect("get").unwrap_or_else(|| panic!("{when}: {id} missing"));
        assert_eq!(&got.vector, vector, "{when}: vector of {id}");
    }
    let mut rng = StdRng::seed_from_u64(77);
    let stored: Vec<&Vec<f32>> = model.values().collect();
    for q in 0..400 {
        // Half the queries are stored vectors, half random points.
        let query =
            if q % 2 == 0 { stored[rng.random_range(0..stored.len())].clone() } else { random_vector(&mut rng) };
        let hits = engine.search(NAME, &query, K, Some(EXACT_EF)).expect("search");
        let mut truth: Vec<(f32, u64)> = model.iter().map(|(&id, v)| (squared_l2(&query, v), id)).collect();
        truth.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        truth.truncate(K);
        assert_eq!(hits.len(), truth.len(), "{when}: query {q}: {} hits", hits.len());
        let kth = truth[K - 1].0;
        for (rank, (hit, (want_distance, want_id))) in hits.iter().zip(&truth).enumerate() {
            // Equal ids, or a tie at the same distance (within rounding).
            let got_distance = squared_l2(&query, &model[&hit.id]);
            assert!(
                hit.id == *want_id || (got_distance - want_distance).abs() <= 1e-5 * (1.0 + kth),
                "{when}: query {q} rank {rank}: got {} at {got_distance}, brute force {want_id} at {want_distance}",
                hit.id
            );
        }
    }
}

#[test]
fn concurrent_searches_writes_and_checkpoints_match_brute_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    // Small segments and frequent checkpoints: log rollover, checkpoint
    // deltas and compaction all happen during the run.
    config.wal_segment_bytes = 256 << 10;
    config.checkpoint_wal_bytes = 512 << 10;
    config.compact_min_bytes = 64 << 10;
    // Syncs batched every 20 ms: more writes per second, so more churn for
    // the searches to meet (a process that survives loses nothing).
    config.fsync = Fsync::IntervalMs(20);
    let engine = Arc::new(Engine::open(config.clone()).expect("open"));
    engine.create_collection(NAME, CollectionConfig::new(DIM, Metric::Euclidean)).expect("create");
    let frozen: Vec<Point> = (0..FROZEN).map(|id| point(id, frozen_vector(id))).collect();
    for chunk in frozen.chunks(500) {
        engine.upsert(NAME, chunk.to_vec()).expect("load");
    }
    engine.start_maintenance(Duration::from_millis(5)).expect("maintenance thread");

    let stop = Arc::new(AtomicBool::new(false));
    let (writes, searches, checkpoints) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (engine, stop, writes) = (engine.clone(), stop.clone(), writes.clone());
            std::thread::spawn(move || write_loop(&engine, w, &stop, &writes))
        })
        .collect();
    let searchers: Vec<_> = (0..2u64)
        .map(|s| {
            let (engine, stop, searches) = (engine.clone(), stop.clone(), searches.clone());
            std::thread::spawn(move || search_loop(&engine, 500 + s, s == 1, &stop, &searches))
        })
        .collect();
    let checkpointer = {
        let (engine, stop, checkpoints) = (engine.clone(), stop.clone(), checkpoints.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                engine.checkpoint().expect("checkpoint");
                checkpoints.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let started = Instant::now();
    let length = Duration::from_secs(seconds());
    // Stop early if a thread failed (its assertion is reported below).
    let mut ended_early = false;
    while started.elapsed() < length {
        if searchers.iter().chain(std::iter::once(&checkpointer)).any(|h| h.is_finished())
            || writers.iter().any(|h| h.is_finished())
        {
            ended_early = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for s in searchers {
        s.join().expect("a searcher failed");
    }
    checkpointer.join().expect("the checkpointer failed");
    let mut model: HashMap<u64, Vec<f32>> = frozen.into_iter().map(|p| (p.id, p.vector)).collect();
    for w in writers {
        model.extend(w.join().expect("a writer failed"));
    }
    assert!(!ended_early, "a thread ended early");
    eprintln!(
        "oracle: {:.0} s, {} writes, {} searches, {} checkpoints; final size {}",
        started.elapsed().as_secs_f64(),
        writes.load(Ordering::Relaxed),
        searches.load(Ordering::Relaxed),
        checkpoints.load(Ordering::Relaxed),
        model.len()
    );
    assert!(searches.load(Ordering::Relaxed) > 0 && writes.load(Ordering::Relaxed) > 0, "nothing ran");

    check_against_brute_force(&engine, &model, "live");
    // Dropped without a final checkpoint: the reopened engine replays its
    // log tail over the last checkpoint.
    drop(engine);
    let reopened = Engine::open(config).expect("reopen");
    check_against_brute_force(&reopened, &model, "reopened");
}
