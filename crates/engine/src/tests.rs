//! Engine tests: semantics of every operation, restart equality, crash
//! simulation at every sync point, and a concurrency stress against a
//! brute-force oracle.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use ruvector_storage::{Fs, SimFs};

use crate::{CollectionConfig, Engine, EngineConfig, EngineError, Metric, Neighbor, Point};

fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    (0..n).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect()
}

fn point(id: u64, vector: Vec<f32>) -> Point {
    Point { id, vector, payload: None, version: 0 }
}

fn sim_engine(fs: &Arc<SimFs>) -> Result<Engine, EngineError> {
    let mut config = EngineConfig::new("/data");
    config.insert_threads = 1;
    // Small segments, so checkpoints really delete log files, and
    // compaction as soon as deltas outgrow the full checkpoint.
    config.wal_segment_bytes = 400;
    config.compact_min_bytes = 0;
    Engine::open_with_fs(config, Arc::clone(fs) as Arc<dyn Fs>)
}

fn l2(dim: usize) -> CollectionConfig {
    CollectionConfig::new(dim, Metric::Euclidean)
}

#[test]
fn collection_lifecycle_and_point_semantics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(EngineConfig::new(dir.path())).expect("open");
    engine.create_collection("b", l2(2)).expect("create");
    engine.create_collection("a", CollectionConfig::new(2, Metric::Cosine)).expect("create");
    assert!(matches!(engine.create_collection("a", l2(2)), Err(EngineError::CollectionExists(_))));
    assert!(matches!(engine.create_collection("../x", l2(2)), Err(EngineError::InvalidName(_))));
    let names: Vec<String> = engine.collections().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a", "b"]);

    let payload = br#"{"tag":"x"}"#.to_vec();
    engine
        .upsert(
            "b",
            vec![
                Point { id: 1, vector: vec![0.0, 0.0], payload: Some(payload.clone()), version: 0 },
                point(2, vec![1.0, 0.0]),
            ],
        )
        .expect("upsert");
    assert_eq!(
        engine.get("b", 1).expect("get"),
        Some(Point { id: 1, vector: vec![0.0, 0.0], payload: Some(payload), version: 0 })
    );
    // Upsert replaces vector and payload.
    engine.upsert("b", vec![point(1, vec![5.0, 5.0])]).expect("upsert");
    assert_eq!(engine.get("b", 1).expect("get"), Some(point(1, vec![5.0, 5.0])));
    assert_eq!(engine.collection("b").expect("info").size, 2);

    // All or nothing: a bad vector anywhere rejects the whole batch.
    for bad in [
        vec![point(3, vec![1.0, 1.0]), point(4, vec![1.0])],
        vec![point(3, vec![1.0, 1.0]), point(4, vec![f32::NAN, 1.0])],
        vec![point(3, vec![1.0, 1.0]), point(3, vec![2.0, 1.0])],
        vec![],
    ] {
        assert!(engine.upsert("b", bad).expect_err("rejected").is_client_error());
    }
    assert!(matches!(engine.upsert("a", vec![point(1, vec![0.0, 0.0])]), Err(EngineError::InvalidVector { .. })));
    assert_eq!(engine.collection("b").expect("info").size, 2);
    assert_eq!(engine.get("b", 3).expect("get"), None);

    let hits = engine.search("b", &[4.0, 4.0], 10, None).expect("search");
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [1, 2]);
    assert!(engine.search("b", &[4.0], 1, None).expect_err("dim").is_client_error());
    assert!(engine.search("b", &[4.0, 4.0], 0, None).expect_err("k=0").is_client_error());

    assert!(engine.delete("b", 2).expect("delete"));
    assert!(!engine.delete("b", 2).expect("delete again"));
    assert_eq!(engine.ids("b", None, 10).expect("ids"), [1]);
    engine.drop_collection("b").expect("drop");
    assert!(matches!(engine.search("b", &[0.0, 0.0], 1, None), Err(EngineError::CollectionNotFound(_))));
    assert!(matches!(engine.drop_collection("b"), Err(EngineError::CollectionNotFound(_))));
    // The name can be used again, empty.
    engine.create_collection("b", l2(3)).expect("create again");
    assert_eq!(engine.collection("b").expect("info").size, 0);
}

#[test]
fn restart_gives_identical_results_with_and_without_a_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    let queries: Vec<Vec<f32>> = (0..20).map(|_| (0..8).map(|_| rng.random::<f32>()).collect()).collect();
    let before = {
        let engine = Engine::open(EngineConfig::new(dir.path())).expect("open");
        engine.create_collection("c", l2(8)).expect("create");
        for batch in 0..5u64 {
            let points =
                (0..200).map(|i| point(batch * 200 + i, (0..8).map(|_| rng.random::<f32>()).collect())).collect();
            engine.upsert("c", points).expect("upsert");
            if batch == 2 {
                // Reachability first: an insert may (rarely) leave a node
                // without an in-link until the maintenance's reachability
                // pass, and a graph checkpointed in that state searches
                // inexactly after the restart until maintenance runs again.
                engine.maintain_fully().expect("maintain");
                engine.checkpoint().expect("checkpoint");
            }
        }
        for id in (0..1000).step_by(7) {
            engine.delete("c", id).expect("delete");
        }
        // With ef above the size and every node reachable, searches are
        // exact whatever the graph's shape (concurrent linking makes it
        // vary from run to run).
        engine.maintain_fully().expect("maintain");
        queries.iter().map(|q| engine.search("c", q, 10, Some(2000)).expect("search")).collect::<Vec<_>>()
        // Dropped without shutdown: the log after the checkpoint is replayed.
    };
    let engine = Engine::open(EngineConfig::new(dir.path())).expect("reopen");
    let after: Vec<_> = queries.iter().map(|q| engine.search("c", q, 10, Some(2000)).expect("search")).collect();
    assert_eq!(before, after, "the replayed tail is searched by scan");
    engine.maintain_fully().expect("maintain");
    let after: Vec<_> = queries.iter().map(|q| engine.search("c", q, 10, Some(2000)).expect("search")).collect();
    assert_eq!(before, after);
    engine.shutdown().expect("shutdown");
    drop(engine);
    let engine = Engine::open(EngineConfig::new(dir.path())).expect("reopen after shutdown");
    let again: Vec<_> = queries.iter().map(|q| engine.search("c", q, 10, Some(2000)).expect("search")).collect();
    assert_eq!(before, again);
    assert_eq!(engine.collection("c").expect("info").size, 1000 - 143);
}

/// The oracle's view of the data: collection → id → vector.
type Model = BTreeMap<String, BTreeMap<u64, Vec<f32>>>;

#[derive(Debug, Clone)]
enum Op {
    Create(String),
    Drop(String),
    Upsert(String, Vec<(u64, Vec<f32>)>),
    Delete(String, u64),
    Checkpoint,
    /// Background upkeep (linking, delete repair), then a background-style
    /// checkpoint.
    Maintain,
}

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Create(name) => {
            model.entry(name.clone()).or_default();
        }
        Op::Drop(name) => {
            model.remove(name);
        }
        Op::Upsert(name, points) => {
            if let Some(c) = model.get_mut(name) {
                for (id, v) in points {
                    c.insert(*id, v.clone());
                }
            }
        }
        Op::Delete(name, id) => {
            if let Some(c) = model.get_mut(name) {
                c.remove(id);
            }
        }
        Op::Checkpoint | Op::Maintain => {}
    }
}

fn run(engine: &Engine, op: &Op) -> Result<(), EngineError> {
    match op {
        Op::Create(name) => engine.create_collection(name, l2(4)),
        Op::Drop(name) => engine.drop_collection(name),
        Op::Upsert(name, points) => {
            engine.upsert(name, points.iter().map(|(id, v)| point(*id, v.clone())).collect()).map(|_| ())
        }
        Op::Delete(name, id) => engine.delete(name, *id).map(|_| ()),
        Op::Checkpoint => engine.checkpoint(),
        Op::Maintain => {
            engine.maintain_fully()?;
            engine.checkpoint_due()
        }
    }
}

fn workload(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let names = ["x", "y"];
    let mut ops = vec![Op::Create("x".into())];
    for _ in 0..len {
        let name = names[rng.random_range(0..2)].to_string();
        let op = match rng.random_range(0..100) {
            0..4 => Op::Create(name),
            4..6 => Op::Drop(name),
            6..10 => Op::Checkpoint,
            10..12 => Op::Maintain,
            12..30 => Op::Delete(name, rng.random_range(0..40)),
            _ => {
                let mut ids: Vec<u64> = (0..rng.random_range(1..6)).map(|_| rng.random_range(0..40)).collect();
                ids.sort_unstable();
                ids.dedup();
                Op::Upsert(
                    name,
                    ids.into_iter().map(|id| (id, (0..4).map(|_| rng.random::<f32>()).collect())).collect(),
                )
            }
        };
        ops.push(op);
    }
    ops
}

fn snapshot(engine: &Engine) -> Model {
    engine
        .collections()
        .into_iter()
        .map(|info| {
            let ids = engine.ids(&info.name, None, usize::MAX).expect("ids");
            let points = ids
                .into_iter()
                .map(|id| (id, engine.get(&info.name, id).expect("get").expect("listed id present").vector))
                .collect();
            (info.name, points)
        })
        .collect()
}

/// Cuts the power at every sync point of a randomized workload; after each
/// crash the recovered state must be the state after every acknowledged
/// operation, plus possibly the one operation in flight at the cut.
#[test]
fn no_acknowledged_write_is_lost_at_any_sync_point() {
    for seed in 0..6u64 {
        let ops = workload(seed, 80);
        // Count the sync points of an uninterrupted run.
        let total = {
            let fs = Arc::new(SimFs::new());
            let engine = sim_engine(&fs).expect("open");
            for op in &ops {
                let _ = run(&engine, op);
            }
            fs.sync_points()
        };
        assert!(total > 20, "workload too small: {total} sync points");
        for cut in 0..=total {
            let fs = Arc::new(SimFs::new());
            let mut acknowledged = Model::new();
            let mut in_flight = None;
            {
                let engine = sim_engine(&fs).expect("open");
                fs.fail_after_syncs(Some(cut));
                for op in &ops {
                    let mut next = acknowledged.clone();
                    apply(&mut next, op);
                    match run(&engine, op) {
                        Ok(()) => acknowledged = next,
                        Err(e) if e.is_client_error() => {}
                        Err(_) => {
                            in_flight = Some(next);
                            break;
                        }
                    }
                }
            }
            fs.crash(Some(seed * 1000 + cut));
            let engine = sim_engine(&fs).unwrap_or_else(|e| panic!("seed {seed} cut {cut}: recovery failed: {e}"));
            let recovered = snapshot(&engine);
            assert!(
                recovered == acknowledged || in_flight.as_ref() == Some(&recovered),
                "seed {seed} cut {cut}/{total}: recovered {recovered:?}\nacknowledged {acknowledged:?}\nin flight {in_flight:?}"
            );
        }
    }
}

#[test]
fn concurrent_writers_and_searchers_end_consistent_with_brute_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(Engine::open(EngineConfig::new(dir.path())).expect("open"));
    engine.create_collection("s", l2(8)).expect("create");
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                let mut rng = rand::rngs::SmallRng::seed_from_u64(t);
                for round in 0..40u64 {
                    // Each thread owns ids ≡ t (mod 4), so the final state is determined.
                    let points = (0..10)
                        .map(|i| point((round * 10 + i) * 4 + t, (0..8).map(|_| rng.random::<f32>()).collect()))
                        .collect();
                    engine.upsert("s", points).expect("upsert");
                    engine.delete("s", (round * 10) * 4 + t).expect("delete");
                    let q: Vec<f32> = (0..8).map(|_| rng.random::<f32>()).collect();
                    assert!(engine.search("s", &q, 5, None).expect("search").len() <= 5);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let model = snapshot(&engine);
    let points = &model["s"];
    assert_eq!(points.len(), 4 * 40 * 9);
    let q = vec![0.5f32; 8];
    let mut exact: Vec<(f32, u64)> = points
        .iter()
        .map(|(id, v)| (v.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt(), *id))
        .collect();
    exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let hits = engine.search("s", &q, 10, Some(2000)).expect("search");
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), exact.iter().take(10).map(|e| e.1).collect::<Vec<_>>());
}

#[test]
fn collection_config_is_the_configuration_it_was_created_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(EngineConfig::new(dir.path())).expect("open");
    let config = CollectionConfig { ef_search: 77, ..CollectionConfig::new(3, Metric::Cosine) };
    engine.create_collection("c", config).expect("create");
    assert_eq!(engine.collection_config("c").expect("config"), config);
    assert_eq!(engine.collection_config("c").expect("config"), engine.collection("c").expect("info").config);
    assert!(matches!(engine.collection_config("nope"), Err(EngineError::CollectionNotFound(_))));
}

fn collection_files(dir: &std::path::Path, name: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("collections").join(name))
        .expect("collection dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Checkpoints write deltas of what changed, a restart loads the chain and
/// stages the log tail without linking it, and compaction merges deltas
/// into one full checkpoint with the same content.
#[test]
fn deltas_log_tail_staging_and_compaction_keep_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.compact_min_bytes = u64::MAX;
    let vectors = random_vectors(900, 8, 21);
    let queries = random_vectors(20, 8, 22);
    let search_all = |engine: &Engine| -> Vec<Vec<Neighbor>> {
        queries.iter().map(|q| engine.search("c", q, 10, Some(900)).expect("search")).collect()
    };
    let expected = {
        let engine = Engine::open(config.clone()).expect("open");
        engine.create_collection("c", l2(8)).expect("create");
        let batch = |from: usize, to: usize| (from..to).map(|i| point(i as u64, vectors[i].clone())).collect();
        engine.upsert("c", batch(0, 500)).expect("upsert");
        engine.checkpoint().expect("delta 1");
        engine.upsert("c", batch(500, 700)).expect("upsert");
        for id in 0..50 {
            engine.delete("c", id).expect("delete");
        }
        engine.maintain_fully().expect("maintain");
        engine.checkpoint().expect("delta 2");
        // The log tail: single-vector writes after the last checkpoint.
        for (i, v) in vectors.iter().enumerate().skip(700) {
            engine.upsert("c", vec![point(i as u64, v.clone())]).expect("upsert");
        }
        search_all(&engine)
    };
    let files = collection_files(dir.path(), "c");
    assert_eq!(files.iter().filter(|f| f.starts_with("delta-")).count(), 2, "{files:?}");
    assert_eq!(files.iter().filter(|f| f.starts_with("checkpoint-")).count(), 1, "{files:?}");

    let engine = Engine::open(config.clone()).expect("reopen");
    let info = engine.collection("c").expect("info");
    assert_eq!(info.size, 850);
    assert_eq!(info.unlinked, 200, "the replayed tail is staged, not linked");
    assert_eq!(search_all(&engine), expected, "staged vectors are searched exactly");
    engine.maintain_fully().expect("maintain");
    assert_eq!(engine.collection("c").expect("info").unlinked, 0);
    assert_eq!(search_all(&engine), expected);
    engine.checkpoint().expect("delta 3");
    drop(engine);

    config.compact_min_bytes = 0;
    let engine = Engine::open(config.clone()).expect("reopen");
    engine.upsert("c", vec![point(5, vectors[5].clone())]).expect("upsert");
    engine.checkpoint().expect("checkpoint and compact");
    let files = collection_files(dir.path(), "c");
    assert_eq!(files.len(), 1, "compaction leaves one full checkpoint: {files:?}");
    drop(engine);
    let engine = Engine::open(config).expect("reopen");
    assert_eq!(engine.collection("c").expect("info").size, 851);
    assert_eq!(engine.get("c", 5).expect("get").map(|p| p.vector), Some(vectors[5].clone()));
    assert_eq!(engine.get("c", 700).expect("get").map(|p| p.vector), Some(vectors[700].clone()));
}

fn versioned(id: u64, x: f32, version: u64) -> Point {
    Point { id, vector: vec![x, 0.0], payload: None, version }
}

/// What a collection answers about ids 1..=4 after the versioned workload
/// of `versions_order_writes_and_survive_every_kind_of_restart`.
fn check_versioned_state(engine: &Engine) {
    use crate::DeleteOutcome::*;
    let got = |id| engine.get("v", id).expect("get").map(|p| (p.vector[0], p.version));
    assert_eq!(got(1), Some((5.0, 5)), "id 1 keeps its newest write");
    assert_eq!(got(2), None, "id 2 stays deleted");
    assert_eq!(got(3), None, "id 3's tombstone refused the older upsert");
    assert_eq!(got(4), Some((4.0, 0)), "an unversioned write forgets the version");
    assert_eq!(engine.collection("v").expect("info").tombstones, 2);
    // Old writes stay no-ops: nothing is logged, nothing changes.
    assert_eq!(
        engine.upsert("v", vec![versioned(1, 9.0, 4), versioned(2, 9.0, 6), versioned(3, 9.0, 8)]).expect("upsert"),
        0
    );
    assert_eq!(engine.delete_versioned("v", 1, 5).expect("delete"), Stale);
    assert_eq!((got(1), got(2), got(3)), (Some((5.0, 5)), None, None));
}

#[test]
fn versions_order_writes_and_survive_every_kind_of_restart() {
    use crate::DeleteOutcome::*;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.compact_min_bytes = u64::MAX;
    {
        let engine = Engine::open(config.clone()).expect("open");
        engine.create_collection("v", l2(2)).expect("create");
        assert_eq!(engine.upsert("v", vec![versioned(1, 3.0, 3), versioned(2, 2.0, 2)]).expect("upsert"), 2);
        engine.checkpoint().expect("full checkpoint");
        // Newer applies, older or equal is skipped (and the batch's others still apply).
        assert_eq!(engine.upsert("v", vec![versioned(1, 5.0, 5), versioned(2, 1.0, 1)]).expect("upsert"), 1);
        assert_eq!(engine.upsert("v", vec![versioned(1, 4.0, 5)]).expect("upsert"), 0, "equal version");
        assert_eq!(engine.delete_versioned("v", 2, 1).expect("delete"), Stale);
        assert_eq!(engine.delete_versioned("v", 2, 6).expect("delete"), Deleted);
        engine.checkpoint().expect("delta checkpoint");
        // A delete arriving before the upsert it follows: the tombstone wins.
        assert_eq!(engine.delete_versioned("v", 3, 8).expect("delete"), Tombstoned);
        assert_eq!(engine.upsert("v", vec![versioned(3, 7.0, 7)]).expect("upsert"), 0);
        assert_eq!(engine.upsert("v", vec![versioned(4, 1.0, 10)]).expect("upsert"), 1);
        assert_eq!(engine.upsert("v", vec![point(4, vec![4.0, 0.0])]).expect("upsert"), 1);
        assert_eq!(engine.delete_versioned("v", 99, 0).expect("delete"), Absent);
        check_versioned_state(&engine);
    }
    // Full checkpoint + delta + log tail.
    let engine = Engine::open(config.clone()).expect("reopen");
    check_versioned_state(&engine);
    engine.checkpoint().expect("delta of the tail");
    drop(engine);
    // Full + two deltas, then compacted into one full checkpoint.
    let engine = Engine::open(config.clone()).expect("reopen");
    check_versioned_state(&engine);
    drop(engine);
    config.compact_min_bytes = 0;
    let engine = Engine::open(config.clone()).expect("reopen");
    engine.upsert("v", vec![versioned(5, 1.0, 1)]).expect("upsert");
    engine.checkpoint().expect("checkpoint and compact");
    assert_eq!(collection_files(dir.path(), "v").len(), 1, "compacted");
    drop(engine);
    let engine = Engine::open(config).expect("reopen");
    check_versioned_state(&engine);
}

#[test]
fn purged_tombstones_stay_purged_after_a_checkpoint_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.compact_min_bytes = u64::MAX;
    let engine = Engine::open(config.clone()).expect("open");
    engine.create_collection("t", l2(2)).expect("create");
    engine.upsert("t", (1..=6).map(|id| versioned(id, id as f32, 10)).collect()).expect("upsert");
    for (id, version) in [(1, 20), (2, 30), (3, 40), (7, 25)] {
        engine.delete_versioned("t", id, version).expect("delete");
    }
    engine.checkpoint().expect("full checkpoint with four tombstones");
    // Below 35, of odd ids only: 1 and 7 go; 2 (even) and 3 (too new) stay.
    assert_eq!(engine.purge_tombstones("t", 35, |id| id % 2 == 1).expect("purge"), 2);
    let stamps = |engine: &Engine| {
        let mut s = engine.stamps("t").expect("stamps");
        s.sort_unstable();
        s
    };
    let expected = vec![(2, 30, true), (3, 40, true), (4, 10, false), (5, 10, false), (6, 10, false)];
    assert_eq!(stamps(&engine), expected);
    assert_eq!(engine.collection("t").expect("info").tombstones, 2);
    assert_eq!(engine.purge_tombstones("t", 35, |_| false).expect("nothing picked"), 0);
    drop(engine);
    // The purge is in the log: replayed over the full checkpoint.
    let engine = Engine::open(config.clone()).expect("reopen");
    assert_eq!(stamps(&engine), expected);
    engine.checkpoint().expect("delta records the removals");
    drop(engine);
    let engine = Engine::open(config).expect("reopen");
    assert_eq!(stamps(&engine), expected);
    assert_eq!(engine.collection("t").expect("info").tombstones, 2);
}

#[test]
fn export_reads_stamped_writes_and_batched_versioned_deletes_survive_restart() {
    use crate::Exported;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EngineConfig::new(dir.path());
    let engine = Engine::open(config.clone()).expect("open");
    engine.create_collection("x", l2(2)).expect("create");
    let mut with_payload = versioned(1, 1.0, 10);
    with_payload.payload = Some(br#"{"lang":"en"}"#.to_vec());
    engine.upsert("x", vec![with_payload.clone(), versioned(2, 2.0, 10), versioned(3, 3.0, 10)]).expect("upsert");
    engine.upsert("x", vec![point(4, vec![4.0, 0.0])]).expect("unversioned");
    // 2 newer (applied), 3 not newer (skipped), 5 absent (a tombstone), 0 never.
    assert_eq!(engine.delete_versions("x", &[(2, 11), (3, 10), (5, 12), (1, 0)]).expect("deletes"), 2);
    let expected = vec![
        Exported::Point(with_payload),
        Exported::Tombstone { id: 2, version: 11 },
        Exported::Point(versioned(3, 3.0, 10)),
        Exported::Tombstone { id: 5, version: 12 },
    ];
    // Unstamped (4) and unknown (6) ids are left out.
    assert_eq!(engine.export("x", &[1, 2, 3, 4, 5, 6]).expect("export"), expected);
    drop(engine);
    let engine = Engine::open(config).expect("reopen");
    assert_eq!(engine.export("x", &[1, 2, 3, 4, 5, 6]).expect("export"), expected);
    assert_eq!(engine.collection("x").expect("info").size, 3);
}

/// A full disk: upserts fail with `NoSpace` and change nothing (the log
/// keeps no partial frame), the engine keeps serving reads and stays
/// writable, writes succeed again once there is room, and after a power
/// cut exactly the acknowledged writes are there.
#[test]
fn a_full_disk_refuses_writes_until_there_is_room_and_loses_nothing() {
    let fs = Arc::new(SimFs::new());
    let engine = sim_engine(&fs).expect("open");
    engine.create_collection("c", l2(8)).expect("create");
    let vectors = random_vectors(400, 8, 77);
    fs.set_space(Some(fs_used(&fs) + 20_000));
    let mut acked = Vec::new();
    let mut refused = 0;
    for (batch, chunk) in vectors.chunks(10).enumerate() {
        let points: Vec<Point> =
            chunk.iter().enumerate().map(|(i, v)| point((batch * 10 + i) as u64, v.clone())).collect();
        match engine.upsert("c", points) {
            Ok(_) => acked.extend((batch * 10..batch * 10 + chunk.len()).map(|i| i as u64)),
            Err(EngineError::NoSpace(_)) => refused += 1,
            Err(e) => panic!("batch {batch}: {e}"),
        }
    }
    assert!(refused > 0 && !acked.is_empty(), "{refused} refused, {} acked", acked.len());
    assert_eq!(engine.collection("c").expect("info").size, acked.len(), "refused batches changed nothing");
    let hits = engine.search("c", &vectors[0], 5, Some(50)).expect("searches still work");
    assert_eq!(hits[0].id, 0);
    // Room again: writes work without a restart.
    fs.set_space(None);
    let more: Vec<Point> = (0..10).map(|i| point(1000 + i, vectors[i as usize].clone())).collect();
    engine.upsert("c", more).expect("writes resume");
    acked.extend(1000..1010);
    drop(engine);
    fs.crash(None);
    let engine = sim_engine(&fs).expect("recover");
    let mut ids = engine.ids("c", None, 10_000).expect("ids");
    ids.sort_unstable();
    acked.sort_unstable();
    assert_eq!(ids, acked, "exactly the acknowledged writes after a power cut");
}

/// Bytes of file data on the simulated disk.
fn fs_used(fs: &SimFs) -> u64 {
    fs.used_bytes()
}

/// The full checkpoint files of a collection in `dir`.
fn full_checkpoints(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let dir = dir.join("collections").join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("collection dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("checkpoint-")))
        .collect();
    files.sort();
    files
}

/// A missing full checkpoint: when the log still holds the collection's
/// create record it is rebuilt from the log, and its next checkpoint is a
/// full one (before, it was a delta with no full checkpoint under it, so
/// the restart after that deleted the collection's files: total loss);
/// when the log no longer reaches back to the create, the engine refuses
/// to open, naming the collection's directory, instead of leaving the
/// collection out or loading only the log's tail of it.
#[test]
fn a_missing_checkpoint_is_rebuilt_from_the_log_or_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || Engine::open(EngineConfig::new(dir.path()));
    let vectors = random_vectors(40, 4, 3);
    {
        let engine = open().expect("open");
        engine.create_collection("a", l2(4)).expect("create");
        engine.upsert("a", (0..20).map(|i| point(i, vectors[i as usize].clone())).collect()).expect("upsert");
    }
    // The create record is still in the log: rebuilt from it.
    for file in full_checkpoints(dir.path(), "a") {
        std::fs::remove_file(file).expect("remove checkpoint");
    }
    {
        let engine = open().expect("rebuilt from the log");
        assert_eq!(engine.collection("a").expect("info").size, 20);
        engine.upsert("a", (20..30).map(|i| point(i, vectors[i as usize].clone())).collect()).expect("upsert");
        engine.checkpoint().expect("checkpoint");
        assert_eq!(full_checkpoints(dir.path(), "a").len(), 1, "the first checkpoint after the rebuild is full");
    }
    {
        let engine = open().expect("reopen");
        assert_eq!(engine.collection("a").expect("info").size, 30);
        for i in 0..30u64 {
            assert_eq!(engine.get("a", i).expect("get"), Some(point(i, vectors[i as usize].clone())), "id {i}");
        }
        // A second collection checkpointed later moves the replay start
        // past `a`'s create record.
        engine.create_collection("b", l2(4)).expect("create b");
        engine.upsert("a", vec![point(30, vectors[30].clone())]).expect("upsert");
        engine.checkpoint().expect("checkpoint");
        engine.upsert("b", vec![point(1, vectors[31].clone())]).expect("upsert b");
    }
    for file in full_checkpoints(dir.path(), "a") {
        std::fs::remove_file(file).expect("remove checkpoint");
    }
    let err = open().expect_err("refused: a's checkpoint is missing");
    let message = err.to_string();
    assert!(message.contains("collections/a") && message.contains("checkpoint is missing"), "{message}");
    // Refusing removed nothing: with the checkpoint back, all is there.
    assert!(dir.path().join("collections/a").is_dir());
}

/// Records of a collection whose whole directory is gone (no drop
/// follows them in the log) make recovery refuse, naming it.
#[test]
fn log_records_of_a_collection_without_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || Engine::open(EngineConfig::new(dir.path()));
    let vectors = random_vectors(4, 4, 5);
    {
        let engine = open().expect("open");
        engine.create_collection("a", l2(4)).expect("create");
        engine.create_collection("b", l2(4)).expect("create");
        engine.checkpoint().expect("checkpoint");
        engine.upsert("b", vec![point(1, vectors[0].clone())]).expect("upsert b");
        engine.upsert("a", vec![point(1, vectors[1].clone())]).expect("upsert a");
    }
    std::fs::remove_dir_all(dir.path().join("collections/a")).expect("remove a");
    let message = open().expect_err("refused").to_string();
    assert!(message.contains("collections/a") && message.contains("files are missing"), "{message}");
}

/// A missing newest delta whose log records were already cut: the
/// manifest written before every cut says which checkpoint position each
/// collection reached, so recovery refuses (naming the collection and the
/// position) instead of loading the older chain without those writes.
#[test]
fn a_missing_newest_delta_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || {
        let mut config = EngineConfig::new(dir.path());
        config.wal_segment_bytes = 400;
        Engine::open(config)
    };
    let vectors = random_vectors(30, 4, 7);
    {
        let engine = open().expect("open");
        engine.create_collection("a", l2(4)).expect("create");
        engine.create_collection("b", l2(4)).expect("create b");
        for i in 0..20u64 {
            engine.upsert("a", vec![point(i, vectors[i as usize].clone())]).expect("upsert");
        }
        engine.checkpoint().expect("checkpoint: a delta of a");
        for i in 20..30u64 {
            engine.upsert("b", vec![point(i, vectors[i as usize].clone())]).expect("upsert b");
        }
        engine.checkpoint().expect("checkpoint: the log is cut past a's writes");
    }
    let deltas: Vec<_> = std::fs::read_dir(dir.path().join("collections/a"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("delta-")))
        .collect();
    assert_eq!(deltas.len(), 1, "{deltas:?}");
    let saved = std::fs::read(&deltas[0]).expect("read");
    std::fs::remove_file(&deltas[0]).expect("remove delta");
    let message = open().expect_err("refused").to_string();
    assert!(message.contains("collections/a") && message.contains("is missing"), "{message}");
    // Put back, everything is there.
    std::fs::write(&deltas[0], saved).expect("restore");
    let engine = open().expect("reopen");
    assert_eq!(engine.collection("a").expect("a").size, 20);
    assert_eq!(engine.collection("b").expect("b").size, 10);
}
