//! The planner at its thresholds, and the payload indexes after restarts,
//! deletes, upserts and a late declaration: an engine-level filter (one
//! keyword equality, answered by the index when declared, else per point)
//! against a model.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use roaring::RoaringTreemap;
use serde_json::{Value, json};

use crate::{
    Candidates, CollectionConfig, Engine, EngineConfig, FilterPlan, IndexedTest, Metric, PayloadFilter,
    PayloadIndexKind, PayloadIndexes, Point,
};

/// `tag == value`.
struct TagIs(&'static str);

impl PayloadFilter for TagIs {
    fn candidates(&self, indexes: &PayloadIndexes) -> Candidates {
        let want = [json!(self.0)];
        match indexes.matching("tag", &IndexedTest::AnyOf(&want)) {
            Some(ids) => Candidates { ids: Some(ids), exact: true },
            None => Candidates { ids: None, exact: false },
        }
    }

    fn matches(&self, _id: u64, payload: Option<&[u8]>) -> bool {
        payload
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
            .is_some_and(|p| p.get("tag").and_then(Value::as_str) == Some(self.0))
    }
}

fn open(dir: &std::path::Path, exact_filter_max: usize) -> Engine {
    let mut config = EngineConfig::new(dir);
    config.insert_threads = 1;
    config.exact_filter_max = exact_filter_max;
    Engine::open(config).expect("open")
}

/// Point `i` at x = i on a line, tagged `a` when `i % 10 == 0`, else `b`.
fn line(n: u64) -> Vec<Point> {
    (0..n)
        .map(|i| Point {
            id: i,
            vector: vec![i as f32, 0.0],
            payload: Some(json!({"tag": if i % 10 == 0 { "a" } else { "b" }}).to_string().into_bytes()),
            version: 0,
        })
        .collect()
}

#[test]
fn the_plan_switches_exactly_at_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 400 points: 40 tagged `a` (10 %), 360 `b`.
    for (threshold, plan) in [(40, FilterPlan::Exact), (39, FilterPlan::Walk)] {
        let engine = open(&dir.path().join(threshold.to_string()), threshold);
        let declared = BTreeMap::from([("tag".to_owned(), PayloadIndexKind::Keyword)]);
        engine.create_collection_with("c", CollectionConfig::new(2, Metric::Euclidean), &declared).expect("create");
        engine.upsert("c", line(400)).expect("upsert");
        engine.maintain_fully().expect("maintain");
        let found = engine.search_filtered("c", &[101.0, 0.0], 3, Some(64), &TagIs("a"), None).expect("search");
        let ids: Vec<u64> = found.hits.iter().map(|n| n.id).collect();
        assert_eq!(ids, [100, 110, 90], "threshold {threshold}");
        assert!(found.plan == plan || (plan == FilterPlan::Walk && found.plan == FilterPlan::Fallback));
        // k beyond the matches: all of them, whatever the plan.
        let all = engine.search_filtered("c", &[0.0, 0.0], 100, Some(64), &TagIs("a"), None).expect("search");
        assert_eq!(all.hits.len(), 40, "threshold {threshold}: min(k, S)");
        // A gate is one more filter.
        let odd_tens = |id: u64| id % 20 == 10;
        let gated = engine.search_filtered("c", &[0.0, 0.0], 100, None, &TagIs("a"), Some(&odd_tens)).expect("search");
        assert_eq!(gated.hits.len(), 20);
        assert!(gated.hits.iter().all(|n| n.id % 20 == 10));
        assert_eq!(engine.count_matching("c", &TagIs("a"), None).expect("count"), 40);
        assert_eq!(engine.count_matching("c", &TagIs("a"), Some(&odd_tens)).expect("count"), 20);
    }
}

#[test]
fn payload_indexes_stay_equal_to_the_payloads_through_writes_and_restarts() {
    let seed = 20_261_203u64;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let tags = ["a", "b", "c"];
    let mut model: BTreeMap<u64, Option<&str>> = BTreeMap::new();
    let check = |engine: &Engine, model: &BTreeMap<u64, Option<&str>>, when: &str| {
        for tag in ["a", "b", "c"] {
            let filter = TagIs(tag);
            let want: Vec<u64> = model.iter().filter(|(_, t)| **t == Some(tag)).map(|(&id, _)| id).collect();
            assert_eq!(engine.ids_matching("c", &filter, None).expect("ids"), want, "seed {seed} {when}: tag {tag}");
            assert_eq!(engine.count_matching("c", &filter, None).expect("count"), want.len() as u64);
        }
    };
    {
        let engine = open(dir.path(), 16);
        engine.create_collection("c", CollectionConfig::new(2, Metric::Euclidean)).expect("create");
        // Written before the index exists, then declared over them.
        for round in 0..6 {
            if round == 2 {
                assert!(engine.declare_payload_index("c", "tag", PayloadIndexKind::Keyword).expect("declare"));
                assert!(!engine.declare_payload_index("c", "tag", PayloadIndexKind::Keyword).expect("again"));
                check(&engine, &model, "after the late declaration");
            }
            if round == 4 {
                engine.checkpoint().expect("checkpoint");
            }
            let points: Vec<Point> = (0..40)
                .map(|_| rng.random_range(0..200u64))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|id| {
                    let tag = rng.random_bool(0.8).then(|| tags[rng.random_range(0..3)]);
                    model.insert(id, tag);
                    Point {
                        id,
                        vector: vec![id as f32, 1.0],
                        payload: tag.map(|t| json!({"tag": t}).to_string().into_bytes()),
                        version: 0,
                    }
                })
                .collect();
            engine.upsert("c", points).expect("upsert");
            for _ in 0..10 {
                let id = rng.random_range(0..200u64);
                engine.delete("c", id).expect("delete");
                model.remove(&id);
            }
            let deleted =
                engine.delete_matching("c", &TagIs("c"), Some(&|id: u64| id.is_multiple_of(7)), 0).expect("delete");
            for id in &deleted {
                assert_eq!(model.remove(id), Some(Some("c")), "seed {seed}: {id} deleted by the filter");
            }
            check(&engine, &model, &format!("round {round}"));
        }
        // Dropping the index keeps filters right (per point).
        assert!(engine.drop_payload_index("c", "tag").expect("drop"));
        check(&engine, &model, "without the index");
        assert!(engine.declare_payload_index("c", "tag", PayloadIndexKind::Keyword).expect("declare"));
    }
    // The log replayed over the checkpoint of round 4.
    let engine = open(dir.path(), 16);
    assert_eq!(
        engine.collection("c").expect("info").payload_indexes,
        BTreeMap::from([("tag".to_owned(), PayloadIndexKind::Keyword)])
    );
    check(&engine, &model, "after replay");
    engine.shutdown().expect("shutdown");
    drop(engine);
    let engine = open(dir.path(), 16);
    check(&engine, &model, "after a checkpoint");
    let all: RoaringTreemap = model.keys().copied().collect();
    assert_eq!(engine.collection("c").expect("info").size as u64, all.len());
}
