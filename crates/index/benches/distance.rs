//! Distance kernels on 384-dimensional f32 vectors (the MiniLM size the
//! project is benchmarked on): every kernel table this CPU supports, against
//! the `simsimd` crate and a naive iterator loop, so the choice of
//! hand-written `std::arch` kernels is justified by measurement.
//!
//! Run: `cargo bench -p ruvector-index --bench distance`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use ruvector_index::distance::Kernels;
use simsimd::SpatialSimilarity;

const DIM: usize = 384;

fn vectors() -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let a = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let b = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    (a, b)
}

fn naive_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn naive_l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn bench_dot(c: &mut Criterion) {
    let (a, b) = vectors();
    let mut group = c.benchmark_group("dot_384");
    for k in Kernels::available() {
        group.bench_function(format!("ruvector_{:?}", k.isa), |bench| {
            bench.iter(|| (k.dot)(black_box(&a), black_box(&b)))
        });
    }
    group.bench_function("simsimd", |bench| bench.iter(|| f32::dot(black_box(&a), black_box(&b))));
    group.bench_function("naive_iter", |bench| bench.iter(|| naive_dot(black_box(&a), black_box(&b))));
    group.finish();
}

fn bench_l2(c: &mut Criterion) {
    let (a, b) = vectors();
    let mut group = c.benchmark_group("l2sq_384");
    for k in Kernels::available() {
        group.bench_function(format!("ruvector_{:?}", k.isa), |bench| {
            bench.iter(|| (k.l2_squared)(black_box(&a), black_box(&b)))
        });
    }
    group.bench_function("simsimd", |bench| bench.iter(|| f32::l2sq(black_box(&a), black_box(&b))));
    group.bench_function("naive_iter", |bench| bench.iter(|| naive_l2(black_box(&a), black_box(&b))));
    group.finish();
}

criterion_group!(benches, bench_dot, bench_l2);
criterion_main!(benches);
