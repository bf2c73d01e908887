//! Tests of quantized search: recall against brute force on clustered data
//! (seeds printed in failures), snapshot round trips, upsert and delete with
//! codes, auto-training, the vector file, and reading format version 1.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::Quantization;

/// `n` points around 20 random centres in `[-1, 1]^dim`.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..20).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..centres.len())];
            c.iter().map(|x| x + rng.random_range(-0.25f32..0.25)).collect()
        })
        .collect()
}

fn truth(data: &[Vec<f32>], q: &[f32], k: usize, metric: Metric) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = data.iter().enumerate().map(|(i, v)| (metric.distance(q, v), i as u64)).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|p| p.1).collect()
}

fn build(data: &[Vec<f32>], metric: Metric, options: HnswOptions) -> Hnsw {
    let params = HnswParams { m: 12, ef_construction: 100, ..HnswParams::default() };
    let index = Hnsw::with_options(data[0].len(), metric, params, options).expect("valid options");
    let batch: Vec<(u64, &[f32])> = data.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())).collect();
    index.insert_batch(&batch, 1).expect("valid batch");
    index
}

fn recall(index: &Hnsw, data: &[Vec<f32>], queries: &[Vec<f32>], metric: Metric, ef: usize) -> f64 {
    let mut hits = 0;
    for q in queries {
        let want = truth(data, q, 10, metric);
        let got = index.search_with_ef(q, 10, ef).expect("valid query");
        hits += got.iter().filter(|n| want.contains(&n.id)).count();
    }
    hits as f64 / (10 * queries.len()) as f64
}

fn options(quantization: Quantization) -> HnswOptions {
    HnswOptions { quantization, training_size: 1000, ..HnswOptions::default() }
}

#[test]
fn quantized_recall_is_close_to_full_precision() {
    let (data_seed, query_seed) = (21, 22);
    let data = clustered(3000, 48, data_seed);
    let queries = clustered(60, 48, query_seed);
    for metric in Metric::ALL {
        let exact = recall(&build(&data, metric, HnswOptions::default()), &data, &queries, metric, 64);
        let sq8 = build(&data, metric, options(Quantization::Sq8));
        assert!(sq8.is_quantizer_trained(), "auto-training at 1000 vectors");
        let sq8_recall = recall(&sq8, &data, &queries, metric, 64);
        // PQ loses more per code than SQ8: rescore more candidates.
        let pq_options =
            HnswOptions { oversampling: 10, ..options(Quantization::Pq { subspaces: 24, centroids: 256 }) };
        let pq = build(&data, metric, pq_options);
        let pq_recall = recall(&pq, &data, &queries, metric, 64);
        eprintln!("{metric} (seeds {data_seed}/{query_seed}): f32 {exact:.3} sq8 {sq8_recall:.3} pq {pq_recall:.3}");
        assert!(sq8_recall >= exact - 0.03, "{metric}: SQ8 recall {sq8_recall} vs f32 {exact}");
        assert!(pq_recall >= exact - 0.05, "{metric}: PQ recall {pq_recall} vs f32 {exact}");
    }
}

#[test]
fn distances_are_exact_after_rescoring() {
    let data = clustered(500, 16, 3);
    let index = build(&data, Metric::Euclidean, options(Quantization::Pq { subspaces: 4, centroids: 256 }));
    assert!(index.is_quantizer_trained() || index.len() < 1000);
    index.train_quantizer().expect("trains");
    for hit in index.search(&data[7], 5).expect("valid") {
        let want = Metric::Euclidean.distance(&data[7], &data[hit.id as usize]);
        assert!((hit.distance - want).abs() < 1e-5, "{} vs {want}", hit.distance);
    }
}

#[test]
fn search_before_training_uses_full_vectors() {
    let data = clustered(200, 16, 4);
    let index = build(&data, Metric::Cosine, options(Quantization::Sq8));
    assert!(!index.is_quantizer_trained(), "200 < training size 1000");
    assert_eq!(index.search(&data[3], 1).expect("valid")[0].id, 3);
    assert_eq!(index.code_bytes(), 0);
    index.train_quantizer().expect("trains");
    assert!(index.is_quantizer_trained());
    assert_eq!(index.code_bytes(), 200 * 16);
    assert_eq!(index.search(&data[3], 1).expect("valid")[0].id, 3);
    index.set_quantization(Quantization::Pq { subspaces: 4, centroids: 256 }).expect("valid");
    assert!(!index.is_quantizer_trained());
    index.train_quantizer().expect("trains");
    assert_eq!(index.code_bytes(), 200 * 4);
    assert_eq!(index.search(&data[3], 1).expect("valid")[0].id, 3);
}

#[test]
fn invalid_quantization_options_are_rejected() {
    let p = HnswParams::default();
    let pq = |subspaces, centroids| HnswOptions {
        quantization: Quantization::Pq { subspaces, centroids },
        ..HnswOptions::default()
    };
    assert!(Hnsw::with_options(30, Metric::Cosine, p, pq(7, 256)).is_err());
    assert!(Hnsw::with_options(32, Metric::Cosine, p, pq(8, 16)).is_err());
    assert!(Hnsw::with_options(32, Metric::Cosine, p, pq(8, 256)).is_ok());
    let zero = HnswOptions { oversampling: 0, ..HnswOptions::default() };
    assert!(Hnsw::with_options(32, Metric::Cosine, p, zero).is_err());
    let plain = Hnsw::new(4, Metric::Cosine, p).expect("valid");
    assert!(plain.train_quantizer().is_err(), "no quantization configured");
    assert!(plain.set_quantization(Quantization::Pq { subspaces: 3, centroids: 256 }).is_err());
    assert!(plain.set_oversampling(0).is_err());
    plain.set_oversampling(8).expect("valid");
    assert_eq!(plain.oversampling(), 8);
}

#[test]
fn snapshot_round_trip_with_quantization_gives_identical_results() {
    let data = clustered(1500, 32, 5);
    let queries = clustered(20, 32, 6);
    for q in [Quantization::Sq8, Quantization::Pq { subspaces: 8, centroids: 256 }] {
        let index = build(&data, Metric::Euclidean, options(q));
        index.set_oversampling(3).expect("valid");
        assert!(index.is_quantizer_trained());
        let mut bytes = Vec::new();
        index.write_to(&mut bytes).expect("write");
        let restored = Hnsw::read_from(&bytes[..]).expect("read");
        assert!(restored.is_quantizer_trained());
        assert_eq!(restored.quantization(), q);
        assert_eq!(restored.oversampling(), 3);
        for query in &queries {
            assert_eq!(index.search(query, 10).expect("valid"), restored.search(query, 10).expect("valid"));
        }
        let mut again = Vec::new();
        restored.write_to(&mut again).expect("write");
        assert_eq!(bytes, again, "{q:?}: a restored index writes the same bytes");
        let mut damaged = bytes.clone();
        let at = damaged.len() - 100;
        damaged[at] ^= 1;
        assert!(Hnsw::read_from(&damaged[..]).is_err());
    }
}

#[test]
fn version_1_snapshots_still_load() {
    let data = clustered(300, 8, 7);
    let index = build(&data, Metric::Cosine, HnswOptions::default());
    let mut v2 = Vec::new();
    index.write_to(&mut v2).expect("write");
    // A version-1 file is version 2 without the 28-byte quantization
    // section of an unquantized index.
    let body_end = v2.len() - 4 - 28;
    let mut v1 = v2[..body_end].to_vec();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&v1);
    v1.extend_from_slice(&crc.to_le_bytes());
    let restored = Hnsw::read_from(&v1[..]).expect("version 1 loads");
    assert_eq!(restored.quantization(), Quantization::None);
    assert_eq!(index.search(&data[0], 5).expect("valid"), restored.search(&data[0], 5).expect("valid"));
}

#[test]
fn upserts_and_deletes_work_with_codes() {
    let data = clustered(1200, 24, 8);
    for q in [Quantization::Sq8, Quantization::Pq { subspaces: 6, centroids: 256 }] {
        let index = build(&data, Metric::Euclidean, options(q));
        assert!(index.is_quantizer_trained());
        // Delete a third, upsert another third onto their mirror images
        // (new places, inside the range the quantizer was trained on).
        for id in 0..400u64 {
            assert!(index.delete(id));
        }
        let moved: Vec<Vec<f32>> = (400..800).map(|i| data[i].iter().map(|x| -x).collect()).collect();
        for (i, v) in moved.iter().enumerate() {
            index.insert(400 + i as u64, v).expect("valid");
        }
        index.repair_deletes();
        index.check_invariants().expect("graph invariants");
        assert_eq!(index.len(), 800);
        for id in [0u64, 100, 399] {
            assert!(index.search(&data[id as usize], 10).expect("valid").iter().all(|n| n.id >= 400));
        }
        for (i, v) in moved.iter().enumerate().step_by(37) {
            let hit = index.search(v, 1).expect("valid")[0];
            assert_eq!(hit.id, 400 + i as u64, "{q:?}: upserted vector is found at its new place");
            assert!(hit.distance < 1e-4);
        }
        // Slots freed by the repair are reused by new inserts, with codes.
        for i in 0..300u64 {
            index.insert(10_000 + i, &data[i as usize]).expect("valid");
        }
        assert_eq!(index.search(&data[5], 1).expect("valid")[0].id, 10_005);
    }
}

#[test]
fn file_backed_vectors_give_the_same_results() {
    let dir = std::env::temp_dir().join(format!("ruvector-quant-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let data = clustered(1500, 32, 9);
    let queries = clustered(10, 32, 10);
    let in_memory = build(&data, Metric::Cosine, options(Quantization::Sq8));
    let file = HnswOptions { vector_file: Some(dir.join("vectors.f32")), ..options(Quantization::Sq8) };
    let on_file = build(&data, Metric::Cosine, file);
    on_file.release_vector_memory().expect("madvise");
    for q in &queries {
        assert_eq!(in_memory.search(q, 10).expect("valid"), on_file.search(q, 10).expect("valid"));
    }
    let mut bytes = Vec::new();
    on_file.write_to(&mut bytes).expect("write");
    let restored = Hnsw::read_from_with_vector_file(&bytes[..], Some(dir.join("restored.f32"))).expect("read");
    assert_eq!(restored.search(&queries[0], 10).expect("valid"), on_file.search(&queries[0], 10).expect("valid"));
    drop((on_file, restored));
    let _ = std::fs::remove_dir_all(&dir);
}
