//! Portable reference kernels.
//!
//! These are the oracle the SIMD paths are tested against and the fallback on
//! CPUs without AVX2/FMA. They use eight independent accumulators so the
//! compiler can keep several floating-point chains in flight (and
//! auto-vectorise them) while summing in a fixed, documented order.

const LANES: usize = 8;

/// Inner product `a · b`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let chunks = a.len() / LANES * LANES;
    for (ca, cb) in a[..chunks].chunks_exact(LANES).zip(b[..chunks].chunks_exact(LANES)) {
        for lane in 0..LANES {
            acc[lane] += ca[lane] * cb[lane];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in a[chunks..].iter().zip(&b[chunks..]) {
        sum += x * y;
    }
    sum
}

/// Squared Euclidean distance `Σ (a_i − b_i)²`.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let chunks = a.len() / LANES * LANES;
    for (ca, cb) in a[..chunks].chunks_exact(LANES).zip(b[..chunks].chunks_exact(LANES)) {
        for lane in 0..LANES {
            let d = ca[lane] - cb[lane];
            acc[lane] += d * d;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in a[chunks..].iter().zip(&b[chunks..]) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

/// Manhattan distance `Σ |a_i − b_i|`.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let chunks = a.len() / LANES * LANES;
    for (ca, cb) in a[..chunks].chunks_exact(LANES).zip(b[..chunks].chunks_exact(LANES)) {
        for lane in 0..LANES {
            acc[lane] += (ca[lane] - cb[lane]).abs();
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in a[chunks..].iter().zip(&b[chunks..]) {
        sum += (x - y).abs();
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_known_values() {
        let a = [1.0, 2.0, 3.0];
        let b = [4.0, -5.0, 6.0];
        assert_eq!(dot(&a, &b), 4.0 - 10.0 + 18.0);
        assert_eq!(l2_squared(&a, &b), 9.0 + 49.0 + 9.0);
        assert_eq!(l1(&a, &b), 3.0 + 7.0 + 3.0);
        assert_eq!(dot(&[], &[]), 0.0);
    }
}
