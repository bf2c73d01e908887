//! Unit and property tests of the index against brute force and against the
//! graph invariants (degree bounds, no link to a deleted node, every live
//! node reachable from the entry point).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

impl Hnsw {
    /// Checks the structural invariants; returns a description of the first
    /// violation.
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        let inner = self.inner.read();
        let used = inner.used() as u32;
        let live: Vec<u32> = (0..used).filter(|&s| inner.is_live(s)).collect();
        let mut ids = Vec::new();
        for s in 0..used {
            let state = inner.state(s);
            if state == FREE {
                continue;
            }
            for level in 0..=inner.graph.level(s) {
                inner.graph.neighbours_into(s, level, &mut ids);
                if ids.len() > inner.graph.max_degree(level) {
                    return Err(format!("slot {s} level {level}: degree {} too high", ids.len()));
                }
                for &n in &ids {
                    if n >= used || inner.state(n) == FREE {
                        return Err(format!("slot {s} level {level}: link to free slot {n}"));
                    }
                    if state == LIVE && self.pending_deletes() == 0 && inner.state(n) != LIVE {
                        return Err(format!("slot {s} level {level}: link to deleted slot {n}"));
                    }
                    if n == s {
                        return Err(format!("slot {s}: self link"));
                    }
                    if inner.graph.level(n) < level {
                        return Err(format!("slot {s}: link to {n} above its level"));
                    }
                }
            }
        }
        let Some(entry) = self.entry_point() else {
            return if live.is_empty() { Ok(()) } else { Err("no entry point".into()) };
        };
        if !inner.is_live(entry.node) && self.pending_deletes() == 0 {
            return Err("entry point is not live".into());
        }
        if inner.graph.level(entry.node) != entry.level {
            return Err("entry level mismatch".into());
        }
        // Every live node must be reachable on layer 0 from the entry point.
        let mut seen = HashSet::from([entry.node]);
        let mut queue = VecDeque::from([entry.node]);
        while let Some(n) = queue.pop_front() {
            inner.graph.neighbours_into(n, 0, &mut ids);
            for &m in &ids {
                if seen.insert(m) {
                    queue.push_back(m);
                }
            }
        }
        if let Some(lost) = live.iter().find(|s| !seen.contains(s)) {
            return Err(format!("live slot {lost} unreachable from the entry point"));
        }
        if live.len() != self.len() {
            return Err(format!("len {} but {} live slots", self.len(), live.len()));
        }
        Ok(())
    }
}

fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect()
}

fn exact(data: &[(u64, Vec<f32>)], query: &[f32], k: usize, metric: Metric) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = data.iter().map(|(id, v)| (metric.distance(query, v), *id)).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

fn small_params() -> HnswParams {
    HnswParams { m: 6, ef_construction: 40, ef_search: 20, seed: 7 }
}

#[test]
fn exact_results_when_ef_covers_the_index() {
    for metric in Metric::ALL {
        let vectors = random_vectors(300, 12, 1);
        let index = Hnsw::new(12, metric, small_params()).expect("index");
        let data: Vec<(u64, Vec<f32>)> = vectors.into_iter().enumerate().map(|(i, v)| (i as u64 * 3, v)).collect();
        let batch: Vec<(u64, &[f32])> = data.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        index.insert_batch(&batch, 2).expect("insert");
        for q in random_vectors(20, 12, 2) {
            let got: Vec<u64> = index.search_with_ef(&q, 10, 400).expect("search").iter().map(|h| h.id).collect();
            assert_eq!(got, exact(&data, &q, 10, metric), "metric {metric}");
        }
        index.check_invariants().expect("invariants");
    }
}

/// An id predicate is applied inside the walk: with a beam covering the
/// index, the results are exactly the nearest accepted vectors, also when
/// the predicate rejects the query's whole neighbourhood or all but a few.
#[test]
fn searches_with_a_predicate_return_the_nearest_accepted_vectors() {
    let vectors = random_vectors(400, 8, 11);
    let index = Hnsw::new(8, Metric::Euclidean, small_params()).expect("index");
    let data: Vec<(u64, Vec<f32>)> = vectors.into_iter().enumerate().map(|(i, v)| (i as u64, v)).collect();
    let batch: Vec<(u64, &[f32])> = data.iter().map(|(id, v)| (*id, v.as_slice())).collect();
    index.insert_batch(&batch, 2).expect("insert");
    type Accept = fn(u64) -> bool;
    let predicates: [(&str, Accept); 3] =
        [("odd", |id| id % 2 == 1), ("one in fifty", |id| id % 50 == 7), ("none", |_| false)];
    for (what, accept) in predicates {
        let kept: Vec<(u64, Vec<f32>)> = data.iter().filter(|(id, _)| accept(*id)).cloned().collect();
        for q in random_vectors(15, 8, 12) {
            let got: Vec<u64> =
                index.search_where(&q, 5, 500, Some(&accept)).expect("search").iter().map(|h| h.id).collect();
            assert_eq!(got, exact(&kept, &q, 5, Metric::Euclidean), "{what}");
        }
    }
}

#[test]
fn reported_distances_match_the_metric() {
    let index = Hnsw::new(2, Metric::Euclidean, small_params()).expect("index");
    index.insert(1, &[3.0, 4.0]).expect("insert");
    let hit = index.search(&[0.0, 0.0], 1).expect("search")[0];
    assert_eq!(hit, Neighbor { id: 1, distance: 5.0 });

    let cosine = Hnsw::new(2, Metric::Cosine, small_params()).expect("index");
    cosine.insert(1, &[2.0, 0.0]).expect("insert");
    cosine.insert(2, &[0.0, 5.0]).expect("insert");
    let hits = cosine.search(&[1.0, 1.0], 2).expect("search");
    assert!((hits[0].distance - (1.0 - std::f32::consts::FRAC_1_SQRT_2)).abs() < 1e-6);
    assert_eq!(cosine.get(1), Some(vec![1.0, 0.0]), "cosine stores normalised vectors");
}

#[test]
fn invalid_input_is_rejected_and_changes_nothing() {
    let index = Hnsw::new(3, Metric::Cosine, small_params()).expect("index");
    index.insert(1, &[1.0, 0.0, 0.0]).expect("insert");
    assert!(matches!(index.insert(2, &[1.0, 0.0]), Err(IndexError::DimensionMismatch { expected: 3, got: 2 })));
    assert!(matches!(index.insert(2, &[1.0, f32::NAN, 0.0]), Err(IndexError::NonFinite { position: 1 })));
    assert!(matches!(index.insert(2, &[0.0, 0.0, 0.0]), Err(IndexError::ZeroVector)));
    let batch = [(5, &[1.0, 1.0, 1.0][..]), (6, &[1.0, f32::INFINITY, 1.0][..])];
    assert!(index.insert_batch(&batch, 2).is_err());
    let dup = [(5, &[1.0, 1.0, 1.0][..]), (5, &[1.0, 2.0, 1.0][..])];
    assert!(matches!(index.insert_batch(&dup, 2), Err(IndexError::DuplicateId(5))));
    assert_eq!(index.len(), 1);
    assert!(index.search(&[1.0, 0.0], 1).is_err());
    assert!(Hnsw::new(0, Metric::Cosine, small_params()).is_err());
    assert!(Hnsw::new(3, Metric::Cosine, HnswParams { m: 1, ..small_params() }).is_err());
    assert!(index.search(&[1.0, 0.0, 0.0], 0).expect("k = 0").is_empty());
}

#[test]
fn upsert_replaces_the_old_vector() {
    let index = Hnsw::new(2, Metric::Euclidean, small_params()).expect("index");
    for i in 0..50u64 {
        index.insert(i, &[i as f32, 0.0]).expect("insert");
    }
    index.insert(7, &[100.0, 100.0]).expect("upsert");
    assert_eq!(index.len(), 50);
    assert_eq!(index.get(7), Some(vec![100.0, 100.0]));
    let near_seven: Vec<u64> = index.search(&[7.0, 0.0], 3).expect("search").iter().map(|h| h.id).collect();
    assert!(!near_seven.contains(&7), "the old vector of id 7 must be gone: {near_seven:?}");
    assert_eq!(index.search(&[100.0, 100.0], 1).expect("search")[0].id, 7);
    index.repair_deletes();
    index.check_invariants().expect("invariants");
}

#[test]
fn deleting_everything_then_reinserting_works() {
    let index = Hnsw::new(4, Metric::Euclidean, small_params()).expect("index");
    let vectors = random_vectors(100, 4, 3);
    for (i, v) in vectors.iter().enumerate() {
        index.insert(i as u64, v).expect("insert");
    }
    for i in 0..100u64 {
        assert!(index.delete(i));
        assert!(!index.delete(i), "second delete of {i} reports absent");
    }
    index.repair_deletes();
    assert!(index.is_empty());
    assert!(index.search(&vectors[0], 5).expect("search").is_empty());
    index.check_invariants().expect("invariants");
    for (i, v) in vectors.iter().enumerate() {
        index.insert(1000 + i as u64, v).expect("reinsert");
    }
    assert_eq!(index.search(&vectors[5], 1).expect("search")[0].id, 1005);
    index.check_invariants().expect("invariants");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random inserts and deletes keep every invariant, never return a
    /// deleted id, and return min(k, live) results.
    #[test]
    fn deletes_repair_the_graph(
        n in 20usize..250,
        delete_share in 0.05f64..0.9,
        seed in any::<u64>(),
        threshold_repair in any::<bool>(),
    ) {
        let dim = 8;
        let vectors = random_vectors(n, dim, seed);
        let index = Hnsw::new(dim, Metric::Euclidean, HnswParams { seed, ..small_params() }).expect("index");
        let batch: Vec<(u64, &[f32])> = vectors.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())).collect();
        index.insert_batch(&batch, 2).expect("insert");
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut deleted = HashSet::new();
        for i in 0..n as u64 {
            if rng.random_bool(delete_share) {
                prop_assert!(index.delete(i));
                deleted.insert(i);
            }
        }
        if !threshold_repair {
            index.repair_deletes();
        }
        // Searches exclude deleted ids whether or not repair has run.
        let live = n - deleted.len();
        for q in random_vectors(5, dim, seed ^ 1) {
            let hits = index.search_with_ef(&q, 10, 64).expect("search");
            prop_assert_eq!(hits.len(), live.min(10));
            prop_assert!(hits.iter().all(|h| !deleted.contains(&h.id)));
        }
        index.repair_deletes();
        prop_assert_eq!(index.pending_deletes(), 0);
        if let Err(e) = index.check_invariants() {
            return Err(TestCaseError::fail(e));
        }
        // Exact after repair when ef covers the index.
        let data: Vec<(u64, Vec<f32>)> = vectors.iter().enumerate()
            .filter(|(i, _)| !deleted.contains(&(*i as u64)))
            .map(|(i, v)| (i as u64, v.clone())).collect();
        for q in random_vectors(3, dim, seed ^ 2) {
            let got: Vec<u64> = index.search_with_ef(&q, 5, 1000).expect("search").iter().map(|h| h.id).collect();
            prop_assert_eq!(got, exact(&data, &q, 5, Metric::Euclidean));
        }
    }
}

#[test]
fn snapshot_round_trip_gives_identical_results() {
    let index = Hnsw::new(16, Metric::Cosine, small_params()).expect("index");
    let vectors = random_vectors(500, 16, 9);
    for (i, v) in vectors.iter().enumerate() {
        index.insert(i as u64 + 10, v).expect("insert");
    }
    for i in (10..200).step_by(3) {
        index.delete(i);
    }
    let mut bytes = Vec::new();
    index.write_to(&mut bytes).expect("write");
    let restored = Hnsw::read_from(&bytes[..]).expect("read");
    assert_eq!(restored.len(), index.len());
    assert_eq!(restored.pending_deletes(), index.pending_deletes());
    assert_eq!(restored.max_level(), index.max_level());
    for q in random_vectors(30, 16, 10) {
        assert_eq!(restored.search(&q, 10).expect("a"), index.search(&q, 10).expect("b"));
    }
    restored.check_invariants().expect("invariants");
    // The restored index keeps working.
    restored.insert(5, &vectors[0]).expect("insert");
    restored.repair_deletes();
    restored.check_invariants().expect("invariants after repair");
}

#[test]
fn damaged_snapshots_are_rejected() {
    let index = Hnsw::new(4, Metric::Euclidean, small_params()).expect("index");
    for (i, v) in random_vectors(50, 4, 4).iter().enumerate() {
        index.insert(i as u64, v).expect("insert");
    }
    let mut bytes = Vec::new();
    index.write_to(&mut bytes).expect("write");
    for position in [0, 9, 40, bytes.len() / 2, bytes.len() - 1] {
        let mut flipped = bytes.clone();
        flipped[position] ^= 0x10;
        assert!(Hnsw::read_from(&flipped[..]).is_err(), "bit flip at {position} accepted");
    }
    assert!(matches!(Hnsw::read_from(&bytes[..bytes.len() - 7]), Err(IndexError::Corrupt(_))));
    let mut future = bytes.clone();
    future[8] = 99;
    assert!(matches!(Hnsw::read_from(&future[..]), Err(IndexError::UnsupportedVersion(99))));
}

/// A header whose counts lie (billions of slots, an absurd dimension) is
/// an error before anything is sized from it — never an allocation of
/// what it claims — from bytes in memory and from a stream alike.
#[test]
fn lying_headers_are_errors_not_allocations() {
    let index = Hnsw::new(4, Metric::Euclidean, small_params()).expect("index");
    for (i, v) in random_vectors(20, 4, 4).iter().enumerate() {
        index.insert(i as u64, v).expect("insert");
    }
    let mut bytes = Vec::new();
    index.write_to(&mut bytes).expect("write");
    // Header: magic 8, version 4, dim 4 (at 12), metric + pad 4, m 4,
    // ef_construction 4, ef_search 4, seed 8, used 4 (at 40).
    let mut many = bytes.clone();
    many[40..44].copy_from_slice(&(u32::MAX - 1).to_le_bytes());
    let err = Hnsw::read_base_bytes(&many, None).expect_err("billions of slots");
    assert!(err.to_string().contains("announces"), "{err}");
    assert!(matches!(Hnsw::read_from(&many[..]), Err(IndexError::Corrupt(_))));
    let mut wide = bytes.clone();
    wide[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(Hnsw::read_base_bytes(&wide, None), Err(IndexError::Corrupt(_))));
    assert!(matches!(Hnsw::read_from(&wide[..]), Err(IndexError::Corrupt(_))));
    // The honest snapshot still loads both ways.
    let from_bytes = Hnsw::read_base_bytes(&bytes, None).expect("bytes");
    from_bytes.finish_loading().expect("finish");
    assert_eq!(from_bytes.len(), 20);
    assert_eq!(Hnsw::read_from(&bytes[..]).expect("stream").len(), 20);
}

#[test]
fn concurrent_searches_inserts_and_deletes_match_brute_force_at_the_end() {
    let dim = 8;
    let index = Arc::new(Hnsw::new(dim, Metric::Euclidean, small_params()).expect("index"));
    let vectors = Arc::new(random_vectors(2000, dim, 11));
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (index, vectors) = (index.clone(), vectors.clone());
            s.spawn(move || {
                for i in (t as usize..2000).step_by(2) {
                    index.insert(i as u64, &vectors[i]).expect("insert");
                    if i % 5 == 0 {
                        assert!(index.delete(i as u64));
                    }
                }
            });
        }
        let (index, vectors) = (index.clone(), vectors.clone());
        s.spawn(move || {
            for q in vectors.iter().take(500) {
                let hits = index.search(q, 5).expect("search");
                assert!(hits.iter().all(|h| h.id % 5 != 0 || index.contains(h.id)));
            }
        });
    });
    index.repair_deletes();
    index.check_invariants().expect("invariants");
    let data: Vec<(u64, Vec<f32>)> =
        vectors.iter().enumerate().filter(|(i, _)| i % 5 != 0).map(|(i, v)| (i as u64, v.clone())).collect();
    assert_eq!(index.len(), data.len());
    for q in random_vectors(10, dim, 12) {
        let got: Vec<u64> = index.search_with_ef(&q, 10, 2000).expect("search").iter().map(|h| h.id).collect();
        assert_eq!(got, exact(&data, &q, 10, Metric::Euclidean));
    }
}

/// Two threads linking a batch of points on a line (the worst case for
/// lost links: each node keeps about two neighbours) leave every node
/// reachable without any reachability pass: a node's own list, set after
/// other threads already linked back through it, keeps those links.
#[test]
fn concurrent_linking_of_a_line_leaves_every_node_reachable() {
    for round in 0..12u64 {
        let options = HnswOptions { background_maintenance: true, ..HnswOptions::default() };
        let index = Hnsw::with_options(1, Metric::Euclidean, HnswParams::default(), options).expect("index");
        let points: Vec<(u64, Vec<f32>)> = (0..600u64).map(|i| (i, vec![i as f32])).collect();
        let batch: Vec<(u64, &[f32])> = points.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        let slots = index.stage_batch(&batch).expect("stage");
        index.link_slots(&slots, 2);
        assert_eq!(index.unlinked(), 0);
        let found = index.search_with_ef(&[100.2], 600, 600).expect("search").len();
        assert_eq!(found, 600, "round {round}: {} of 600 nodes unreachable", 600 - found);
    }
}
