//! Tests of staging (search before linking), background maintenance and
//! incremental snapshots (a full snapshot plus deltas reproduces the index).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::Quantization;

fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect()
}

fn background(quantization: Quantization, training_size: usize) -> Hnsw {
    let params = HnswParams { m: 6, ef_construction: 40, ef_search: 20, seed: 11 };
    let options = HnswOptions { background_maintenance: true, quantization, training_size, ..HnswOptions::default() };
    Hnsw::with_options(8, Metric::Euclidean, params, options).expect("index")
}

fn stage(index: &Hnsw, data: &[(u64, Vec<f32>)]) -> Vec<u32> {
    let batch: Vec<(u64, &[f32])> = data.iter().map(|(id, v)| (*id, v.as_slice())).collect();
    index.stage_batch(&batch).expect("stage")
}

#[test]
fn staged_vectors_are_found_before_they_are_linked_and_maintenance_links_them() {
    let index = background(Quantization::None, 10_000);
    let data: Vec<(u64, Vec<f32>)> = vectors(300, 8, 1).into_iter().enumerate().map(|(i, v)| (i as u64, v)).collect();
    stage(&index, &data);
    assert_eq!(index.unlinked(), 300);
    assert_eq!(index.max_level(), 0, "nothing linked yet");
    for (id, v) in data.iter().take(20) {
        let hit = index.search_with_ef(v, 1, 10).expect("search");
        assert_eq!(hit[0].id, *id, "a staged vector is found by the exact scan");
    }
    // A bounded slice links at most what it is given.
    let work = index.maintain(100).expect("maintain");
    assert_eq!(work.linked, 100);
    assert_eq!(index.unlinked(), 200);
    index.maintain_fully().expect("maintain");
    assert_eq!(index.unlinked(), 0);
    index.check_invariants().expect("invariants");
    for (id, v) in data.iter().take(20) {
        assert_eq!(index.search_with_ef(v, 1, 50).expect("search")[0].id, *id);
    }
}

#[test]
fn background_mode_leaves_repair_to_maintain() {
    let index = background(Quantization::None, 10_000);
    let data: Vec<(u64, Vec<f32>)> = vectors(200, 8, 2).into_iter().enumerate().map(|(i, v)| (i as u64, v)).collect();
    let slots = stage(&index, &data);
    index.link_slots(&slots, 2);
    for id in 0..50 {
        assert!(index.delete(id));
    }
    assert_eq!(index.backlog().pending_deletes, 50, "a delete does not repair in background mode");
    let work = index.maintain(0).expect("maintain");
    assert_eq!(work.repaired, 50);
    assert_eq!(index.backlog().pending_deletes, 0);
    index.check_invariants().expect("invariants");
}

/// Loads `base` then `deltas` into a new index.
fn load(base: &[u8], deltas: &[Vec<u8>]) -> Hnsw {
    let index = Hnsw::read_base(base, None).expect("base");
    for d in deltas {
        index.apply_delta(&d[..]).expect("delta");
    }
    index.finish_loading().expect("finish");
    index
}

fn assert_same(a: &Hnsw, b: &Hnsw, seed: u64) {
    assert_eq!(a.ids(), b.ids());
    assert_eq!(a.len(), b.len());
    assert_eq!(a.unlinked(), b.unlinked());
    assert_eq!(a.pending_deletes(), b.pending_deletes());
    assert_eq!(a.is_quantizer_trained(), b.is_quantizer_trained());
    for id in a.ids() {
        assert_eq!(a.get(id), b.get(id), "vector of {id}");
    }
    for q in vectors(20, 8, seed) {
        assert_eq!(a.search_with_ef(&q, 10, 40).expect("a"), b.search_with_ef(&q, 10, 40).expect("b"));
    }
}

#[test]
fn a_full_snapshot_plus_deltas_reproduces_the_index() {
    for (quantization, training_size) in [(Quantization::None, 10_000), (Quantization::Sq8, 250)] {
        let index = background(quantization, training_size);
        let all = vectors(700, 8, 3);
        let data = |from: usize, to: usize| -> Vec<(u64, Vec<f32>)> {
            (from..to).map(|i| (i as u64, all[i].clone())).collect()
        };
        let slots = stage(&index, &data(0, 200));
        index.link_slots(&slots, 1);
        let mut base = Vec::new();
        index.write_to(&mut base).expect("base");
        assert_eq!(index.delta_estimate(), 0, "a full snapshot clears the changes");

        // Delta 1: inserts (linked), replacements, deletes, repair, training.
        let slots = stage(&index, &data(200, 400));
        index.link_slots(&slots, 2);
        let replaced: Vec<(u64, Vec<f32>)> = (0..30).map(|i| (i as u64, all[600 + i].clone())).collect();
        let slots = stage(&index, &replaced);
        index.link_slots(&slots, 1);
        for id in 100..140 {
            index.delete(id);
        }
        index.maintain_fully().expect("maintain");
        let mut d1 = Vec::new();
        let stats = index.write_delta(&mut d1).expect("delta 1");
        assert!(stats.vectors >= 230 && stats.slots >= 230, "{stats:?}");

        // Delta 2: staged but unlinked vectors and unrepaired deletes.
        stage(&index, &data(400, 450));
        index.delete(150);
        let mut d2 = Vec::new();
        index.write_delta(&mut d2).expect("delta 2");
        assert!(d2.len() < d1.len(), "a delta holds what changed");

        let loaded = load(&base, &[d1, d2]);
        assert_same(&index, &loaded, 4);
        assert_eq!(loaded.unlinked(), 50);
        loaded.maintain_fully().expect("maintain loaded");
        loaded.check_invariants().expect("invariants");

        // An empty delta changes nothing; a damaged one is refused.
        let mut d3 = Vec::new();
        index.write_delta(&mut d3).expect("delta 3");
        let mut bad = d3.clone();
        let last = bad.len() - 5;
        bad[last] ^= 0x10;
        let fresh = Hnsw::read_base(&base[..], None).expect("base");
        assert!(matches!(fresh.apply_delta(&bad[..]), Err(IndexError::Corrupt(_))));
    }
}

/// A delta whose header lies (billions of slots, of slot records, of
/// vectors) is an error before anything is sized from it, with its
/// checksum left as is and with one recomputed to match the lie; the index
/// it was applied to is untouched by a delta that fails its checksum.
#[test]
fn lying_delta_headers_are_errors_not_allocations() {
    let index = background(Quantization::None, 10_000);
    let data: Vec<(u64, Vec<f32>)> = vectors(40, 8, 9).into_iter().enumerate().map(|(i, v)| (i as u64, v)).collect();
    stage(&index, &data[..20]);
    let mut base = Vec::new();
    index.write_to(&mut base).expect("base");
    stage(&index, &data[20..]);
    let mut delta = Vec::new();
    index.write_delta(&mut delta).expect("delta");
    // Header: magic 8, version 4, dim 4, m 4, used 4 (at 20), entry 8,
    // inserts 8, trained + pad 4, then (untrained) slot records 4 (at 44);
    // the vector count follows the slot records.
    let vector_count_at = delta.len() - 4 - 20 * (4 + 8 * 4) - 4;
    assert_eq!(delta[vector_count_at..vector_count_at + 4], 20u32.to_le_bytes(), "layout as documented");
    let huge = (u32::MAX - 1).to_le_bytes();
    for (what, at) in [("used slots", 20), ("slot records", 44), ("vectors", vector_count_at)] {
        let mut lying = delta.clone();
        lying[at..at + 4].copy_from_slice(&huge);
        let fresh = Hnsw::read_base(&base[..], None).expect("base");
        let err = fresh.apply_delta(&lying).expect_err(what);
        assert!(matches!(err, IndexError::Corrupt(_)), "{what}: {err}");
        assert!(err.to_string().contains("checksum"), "{what}: {err}");
        fresh.finish_loading().expect("untouched");
        assert_eq!(fresh.len(), 20, "{what}: a refused delta changes nothing");
        // The same lie with a checksum that matches it.
        let body = lying.len() - 4;
        let crc = crc32fast::hash(&lying[..body]);
        lying[body..].copy_from_slice(&crc.to_le_bytes());
        let fresh = Hnsw::read_base(&base[..], None).expect("base");
        let err = fresh.apply_delta(&lying).expect_err(what);
        assert!(matches!(err, IndexError::Corrupt(_)), "{what}: {err}");
        assert!(err.to_string().contains("announces"), "{what}: {err}");
    }
    for short in [0, 3, 4, 20] {
        let fresh = Hnsw::read_base(&base[..], None).expect("base");
        assert!(matches!(fresh.apply_delta(&delta[..short]), Err(IndexError::Corrupt(_))), "{short} bytes");
    }
    // The honest delta still applies.
    let loaded = load(&base, &[delta]);
    assert_eq!(loaded.len(), 40);
}

#[test]
fn small_batches_grow_the_arrays_geometrically() {
    let index = background(Quantization::None, 10_000);
    let all = vectors(3000, 8, 5);
    let mut capacities = Vec::new();
    for (i, v) in all.iter().enumerate() {
        index.stage_batch(&[(i as u64, v.as_slice())]).expect("stage");
        let capacity = index.inner.read().capacity();
        if capacities.last() != Some(&capacity) {
            capacities.push(capacity);
        }
    }
    assert!(capacities.len() <= 4, "one copy per 1.5x of growth, not per batch: {capacities:?}");
}

#[test]
fn replacing_the_only_vector_keeps_it_searchable_before_any_repair() {
    let index = background(Quantization::None, 10_000);
    let v = vectors(3, 8, 6);
    let slots = stage(&index, &[(1, v[0].clone())]);
    index.link_slots(&slots, 1);
    // Replace it: the old node (the entry point) is deleted, not repaired.
    let slots = stage(&index, &[(1, v[1].clone())]);
    index.link_slots(&slots, 1);
    assert_eq!(index.backlog().pending_deletes, 1);
    let hits = index.search_with_ef(&v[1], 1, 10).expect("search");
    assert_eq!(hits.len(), 1, "the new vector is reachable");
    assert_eq!(hits[0].id, 1);
    assert_eq!(index.get(1), Some(v[1].clone()));
}
