//! Recall of the HNSW index on real data: the first 10,000 vectors of the
//! shared `pypi-minilm-100k` set (384-d MiniLM sentence embeddings) against
//! an exact brute-force top-10, with a fixed, printed seed.
//!
//! The data set lives outside the repository (`../shared/data` above the
//! workspace, or `$RUVECTOR_DATASET`); without it the test says so and
//! passes vacuously, unless `RUVECTOR_REQUIRE_DATASET=1` makes it fail.

use ruvector_dataset::{brute_force, read_fvecs, recall_at_k, shared_minilm_dir};
use ruvector_index::{Hnsw, HnswParams, Metric};

const SLICE: usize = 10_000;
const QUERIES: usize = 300;
const SEED: u64 = 0x5eed_0010;

fn mean_recall(index: &Hnsw, queries: &ruvector_dataset::Matrix<f32>, truth: &[Vec<u64>], ef: usize) -> f64 {
    let total: f64 = queries
        .iter()
        .zip(truth)
        .map(|(q, t)| {
            let hits = index.search_with_ef(q, 10, ef).expect("valid query");
            let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
            recall_at_k(&ids, t, 10)
        })
        .sum();
    total / queries.rows() as f64
}

#[test]
fn recall_at_10_on_a_minilm_slice_reaches_095_at_ef_64() {
    let Some(dir) = shared_minilm_dir() else {
        assert!(
            std::env::var_os("RUVECTOR_REQUIRE_DATASET").is_none(),
            "RUVECTOR_REQUIRE_DATASET is set but the pypi-minilm-100k data set was not found"
        );
        eprintln!("SKIPPED: pypi-minilm-100k not found (set RUVECTOR_DATASET)");
        return;
    };
    let base = read_fvecs(&dir.join("base.fvecs"), Some(SLICE)).expect("read base");
    let queries = read_fvecs(&dir.join("query.fvecs"), Some(QUERIES)).expect("read queries");
    let truth = brute_force(&base, &queries, 10, |a, b| Metric::Cosine.distance(a, b));

    let params = HnswParams { seed: SEED, ..HnswParams::default() };
    eprintln!("seed {SEED:#x}, M={}, ef_construction={}", params.m, params.ef_construction);
    let index = Hnsw::with_capacity(base.dim, Metric::Cosine, params, SLICE).expect("params");
    let batch: Vec<(u64, &[f32])> = base.iter().enumerate().map(|(i, v)| (i as u64, v)).collect();
    index.insert_batch(&batch, 2).expect("insert");
    assert_eq!(index.len(), SLICE);

    let at_64 = mean_recall(&index, &queries, &truth, 64);
    let at_200 = mean_recall(&index, &queries, &truth, 200);
    eprintln!("recall@10: ef=64 {at_64:.4}, ef=200 {at_200:.4}");
    assert!(at_64 >= 0.95, "recall@10 at ef=64 is {at_64:.4} (seed {SEED:#x})");
    assert!(at_200 >= at_64 - 0.005, "a wider beam must not lose recall: {at_200:.4} < {at_64:.4}");

    // Churn: delete a fifth of the slice, insert it again under new ids,
    // repair, and check recall holds (ids map back to rows).
    let churned: Vec<usize> = (0..SLICE).step_by(5).collect();
    for &row in &churned {
        assert!(index.delete(row as u64));
    }
    let again: Vec<(u64, &[f32])> = churned.iter().map(|&r| ((r + SLICE) as u64, base.row(r))).collect();
    index.insert_batch(&again, 2).expect("reinsert");
    index.repair_deletes();
    let total: f64 = queries
        .iter()
        .zip(&truth)
        .map(|(q, t)| {
            let hits = index.search_with_ef(q, 10, 64).expect("valid query");
            let ids: Vec<u64> = hits.iter().map(|h| h.id % SLICE as u64).collect();
            recall_at_k(&ids, t, 10)
        })
        .sum();
    let after_churn = total / queries.rows() as f64;
    eprintln!("recall@10 after 20 % churn: ef=64 {after_churn:.4}");
    assert!(after_churn >= at_64 - 0.01, "churn lost recall: {after_churn:.4} vs {at_64:.4}");
}
