//! Lloyd's k-means with k-means++ seeding (Arthur & Vassilvitskii, 2007),
//! the codebook trainer of the product quantizer.
//!
//! Deterministic: the same data, `k`, iteration bound and seed give the same
//! centroids. Invariants of the result: exactly `k · dim` finite floats, even
//! when there are fewer distinct points than `k` (centroids are then
//! repeated), and no empty cluster survives an iteration (an empty cluster
//! is re-seeded with the point farthest from its centroid).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Squared Euclidean distance; the sub-vectors are short, so a plain loop
/// that the compiler vectorises beats a dispatched kernel call.
#[inline]
pub(crate) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The nearest of the `centroids` (`k × dim`, flat) to `point`, and its
/// squared distance. Ties go to the lower index.
#[inline]
pub(crate) fn nearest(centroids: &[f32], dim: usize, point: &[f32]) -> (usize, f32) {
    let mut best = (0usize, f32::INFINITY);
    for (j, c) in centroids.chunks_exact(dim).enumerate() {
        let d = l2_sq(point, c);
        if d < best.1 {
            best = (j, d);
        }
    }
    best
}

/// Clusters the `n × dim` points in `data` into `k` centroids; returns them
/// flat (`k × dim`). Runs at most `iterations` Lloyd steps, stopping early
/// when no assignment changes.
pub(crate) fn kmeans(data: &[f32], dim: usize, k: usize, iterations: usize, seed: u64) -> Vec<f32> {
    debug_assert!(dim > 0 && k > 0 && data.len().is_multiple_of(dim));
    let n = data.len() / dim;
    let point = |i: usize| &data[i * dim..(i + 1) * dim];
    if n == 0 {
        return vec![0.0; k * dim];
    }
    if n <= k {
        // Every point is its own centroid; the rest repeat them.
        return (0..k).flat_map(|j| point(j % n).iter().copied()).collect();
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut centroids = plus_plus_init(data, dim, k, &mut rng);

    let mut assignment = vec![usize::MAX; n];
    let mut dist = vec![0f32; n];
    let mut sums = vec![0f64; k * dim];
    let mut counts = vec![0usize; k];
    for _ in 0..iterations {
        let mut changed = false;
        for (i, (a, dd)) in assignment.iter_mut().zip(dist.iter_mut()).enumerate() {
            let (j, d) = nearest(&centroids, dim, point(i));
            changed |= *a != j;
            *a = j;
            *dd = d;
        }
        if !changed {
            break;
        }
        sums.iter_mut().for_each(|s| *s = 0.0);
        counts.iter_mut().for_each(|c| *c = 0);
        for (i, &j) in assignment.iter().enumerate() {
            counts[j] += 1;
            for (s, &x) in sums[j * dim..(j + 1) * dim].iter_mut().zip(point(i)) {
                *s += f64::from(x);
            }
        }
        for j in 0..k {
            if counts[j] == 0 {
                // Re-seed an empty cluster with the worst-served point.
                let far = (0..n).max_by(|&a, &b| dist[a].total_cmp(&dist[b]).then(b.cmp(&a))).unwrap_or(0);
                centroids[j * dim..(j + 1) * dim].copy_from_slice(point(far));
                dist[far] = 0.0;
                continue;
            }
            let inv = 1.0 / counts[j] as f64;
            for (c, &s) in centroids[j * dim..(j + 1) * dim].iter_mut().zip(&sums[j * dim..(j + 1) * dim]) {
                *c = (s * inv) as f32;
            }
        }
    }
    centroids
}

/// k-means++ seeding: the first centre uniformly, each next one with
/// probability proportional to its squared distance to the nearest centre
/// chosen so far (`D²` weighting).
fn plus_plus_init(data: &[f32], dim: usize, k: usize, rng: &mut SmallRng) -> Vec<f32> {
    let n = data.len() / dim;
    let point = |i: usize| &data[i * dim..(i + 1) * dim];
    let mut centroids = Vec::with_capacity(k * dim);
    centroids.extend_from_slice(point(rng.random_range(0..n)));
    let mut d2: Vec<f32> = (0..n).map(|i| l2_sq(point(i), &centroids[..dim])).collect();
    for _ in 1..k {
        let total: f64 = d2.iter().map(|&d| f64::from(d)).sum();
        let pick = if total > 0.0 {
            let mut target = rng.random::<f64>() * total;
            let mut chosen = n - 1;
            for (i, &d) in d2.iter().enumerate() {
                target -= f64::from(d);
                if target <= 0.0 && d > 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            rng.random_range(0..n)
        };
        let start = centroids.len();
        centroids.extend_from_slice(point(pick));
        let c = &centroids[start..];
        for (i, d) in d2.iter_mut().enumerate() {
            *d = d.min(l2_sq(point(i), c));
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_on_separable_clusters() {
        // Four tight blobs far apart: every centroid must land in a blob and
        // every blob must get exactly one centroid.
        let centres = [[0.0f32, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]];
        let mut rng = SmallRng::seed_from_u64(11);
        let mut data = Vec::new();
        for i in 0..400 {
            let c = centres[i % 4];
            data.push(c[0] + rng.random_range(-1.0f32..1.0));
            data.push(c[1] + rng.random_range(-1.0f32..1.0));
        }
        let found = kmeans(&data, 2, 4, 50, 3);
        let mut hit = [0; 4];
        for c in found.chunks_exact(2) {
            let (j, d) = nearest(&centres.concat(), 2, c);
            assert!(d < 1.0, "centroid {c:?} is not inside a blob");
            hit[j] += 1;
        }
        assert_eq!(hit, [1, 1, 1, 1]);
        assert_eq!(found, kmeans(&data, 2, 4, 50, 3), "same seed, same centroids");
    }

    #[test]
    fn fewer_points_than_centroids_repeats_points() {
        let data = [1.0f32, 2.0, 3.0, 4.0];
        let c = kmeans(&data, 2, 5, 10, 1);
        assert_eq!(c.len(), 10);
        assert_eq!(&c[..4], &data);
        assert_eq!(&c[4..6], &data[..2]);
    }
}
