//! HNSW build and search on a synthetic, clustered 384-d data set small
//! enough for a criterion run (10k vectors). The end-to-end numbers on the
//! real 100k set come from `ruvector bench` (see BENCHMARKS.md); this bench
//! tracks regressions in the graph code between commits.
//!
//! Run: `cargo bench -p ruvector-index --bench hnsw`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use ruvector_index::{Hnsw, HnswParams, Metric};

const DIM: usize = 384;
const N: usize = 10_000;
const CLUSTERS: usize = 64;

/// Points scattered around random centres, so the graph has structure
/// like real embeddings rather than the uniform cube.
fn clustered(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> =
        (0..CLUSTERS).map(|_| (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..CLUSTERS)];
            c.iter().map(|x| x + rng.random_range(-0.3f32..0.3)).collect()
        })
        .collect()
}

fn build(data: &[Vec<f32>], threads: usize) -> Hnsw {
    let index = Hnsw::with_capacity(DIM, Metric::Cosine, HnswParams::default(), data.len()).expect("valid params");
    let batch: Vec<(u64, &[f32])> = data.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())).collect();
    index.insert_batch(&batch, threads).expect("valid batch");
    index
}

fn bench_search(c: &mut Criterion) {
    let data = clustered(N, 1);
    let queries = clustered(256, 2);
    let index = build(&data, 2);
    let mut group = c.benchmark_group("search_10k_384");
    for ef in [32usize, 64, 128] {
        group.bench_function(format!("ef{ef}_k10"), |bench| {
            let mut i = 0;
            bench.iter(|| {
                i = (i + 1) % queries.len();
                index.search_with_ef(black_box(&queries[i]), 10, ef).expect("valid query")
            })
        });
    }
    group.finish();
}

fn bench_build(c: &mut Criterion) {
    let data = clustered(2_000, 3);
    let mut group = c.benchmark_group("build_2k_384");
    group.sample_size(10);
    for threads in [1usize, 2] {
        group.bench_function(format!("threads{threads}"), |bench| {
            bench.iter_batched(|| (), |()| build(black_box(&data), threads), BatchSize::PerIteration)
        });
    }
    group.finish();
}

criterion_group!(benches, bench_search, bench_build);
criterion_main!(benches);
