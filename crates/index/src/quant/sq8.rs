//! SQ8: scalar quantization to one byte per component.
//!
//! Training learns, per dimension `d`, a range `[lo_d, lo_d + 255·Δ_d]` from
//! the sample's [`CLIP`] and `1 − CLIP` quantiles (outliers are clamped, which
//! spends the 256 levels where the data is). A component `x_d` is stored as
//! `c_d = round((x_d − lo_d) / Δ_d)` clamped to `0..=255`, and read back as
//! `x̂_d = lo_d + Δ_d·c_d`; the reconstruction error of an in-range component
//! is at most `Δ_d / 2`.
//!
//! Distances between an `f32` query and a code never decode the code:
//! per query the index precomputes
//!
//! * dot / cosine: `w_d = q_d·Δ_d` and `b = Σ q_d·lo_d`, so `q·x̂ = b + Σ w_d·c_d`;
//! * euclidean / manhattan: `r_d = q_d − lo_d`, so `q_d − x̂_d = r_d − Δ_d·c_d`,
//!
//! and the inner loop widens 8 bytes to 8 floats and does one or two FMAs.
//! The AVX2 kernels are chosen at runtime and property-tested against the
//! scalar reference.

use crate::Metric;

/// Share of the sample clipped at each end of every dimension's range
/// (`0.0` would be plain min/max): keeps a handful of outliers from
/// stretching a dimension's 256 levels. With rescoring, SQ8 recall@10 on
/// MiniLM-384 equals full precision at this setting (`quant_bench`
/// example); min/max was not compared separately.
pub(crate) const CLIP: f64 = 0.0001;

/// A trained scalar quantizer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sq8 {
    metric: Metric,
    /// `lo_d`: the value of code 0, per dimension.
    lo: Vec<f32>,
    /// `Δ_d`: the step between consecutive codes, per dimension (0 for a
    /// constant dimension).
    delta: Vec<f32>,
}

/// The per-query tables of an SQ8 distance (see the module docs).
#[derive(Debug)]
pub(crate) struct Sq8Query {
    metric: Metric,
    /// `w_d` (dot, cosine) or `r_d` (euclidean, manhattan).
    w: Vec<f32>,
    /// `Δ_d` (euclidean, manhattan only).
    delta: Vec<f32>,
    /// `b` (dot, cosine only).
    bias: f32,
    kernels: &'static Sq8Kernels,
}

impl Sq8 {
    /// Learns the per-dimension ranges from `samples` (`n × dim`, prepared
    /// vectors, `n ≥ 1`).
    pub(crate) fn train(metric: Metric, dim: usize, samples: &[f32]) -> Sq8 {
        let n = samples.len() / dim.max(1);
        let mut lo = vec![0f32; dim];
        let mut delta = vec![0f32; dim];
        let mut column = Vec::with_capacity(n);
        let low_rank = ((n as f64 * CLIP) as usize).min(n.saturating_sub(1));
        let high_rank = n.saturating_sub(1 + low_rank);
        for d in 0..dim {
            column.clear();
            column.extend(samples.iter().skip(d).step_by(dim).copied());
            if column.is_empty() {
                continue;
            }
            column.sort_unstable_by(f32::total_cmp);
            let (min, max) = (column[low_rank], column[high_rank.max(low_rank)]);
            lo[d] = min;
            delta[d] = (max - min) / 255.0;
        }
        Sq8 { metric, lo, delta }
    }

    /// Rebuilds a quantizer from stored parameters.
    pub(crate) fn from_parts(metric: Metric, lo: Vec<f32>, delta: Vec<f32>) -> Sq8 {
        Sq8 { metric, lo, delta }
    }

    pub(crate) fn lo(&self) -> &[f32] {
        &self.lo
    }

    pub(crate) fn delta(&self) -> &[f32] {
        &self.delta
    }

    /// Bytes per code: one per dimension.
    pub(crate) fn code_len(&self) -> usize {
        self.lo.len()
    }

    /// Writes the code of `v` into `out` (both of length `dim`).
    pub(crate) fn encode(&self, v: &[f32], out: &mut [u8]) {
        for (((o, &x), &lo), &delta) in out.iter_mut().zip(v).zip(&self.lo).zip(&self.delta) {
            *o = if delta > 0.0 { ((x - lo) / delta).round().clamp(0.0, 255.0) as u8 } else { 0 };
        }
    }

    /// Writes the reconstruction `x̂` of `code` into `out`.
    #[cfg(test)]
    pub(crate) fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (((o, &c), &lo), &delta) in out.iter_mut().zip(code).zip(&self.lo).zip(&self.delta) {
            *o = lo + delta * f32::from(c);
        }
    }

    /// Precomputes the tables for the prepared query `q`.
    pub(crate) fn query(&self, q: &[f32]) -> Sq8Query {
        self.query_with(q, Sq8Kernels::get())
    }

    fn query_with(&self, q: &[f32], kernels: &'static Sq8Kernels) -> Sq8Query {
        match self.metric {
            Metric::Cosine | Metric::DotProduct => Sq8Query {
                metric: self.metric,
                w: q.iter().zip(&self.delta).map(|(q, d)| q * d).collect(),
                delta: Vec::new(),
                bias: q.iter().zip(&self.lo).map(|(q, lo)| q * lo).sum(),
                kernels,
            },
            Metric::Euclidean | Metric::Manhattan => Sq8Query {
                metric: self.metric,
                w: q.iter().zip(&self.lo).map(|(q, lo)| q - lo).collect(),
                delta: self.delta.clone(),
                bias: 0.0,
                kernels,
            },
        }
    }
}

impl Sq8Query {
    /// The ranking distance (see [`crate::Metric`]) from the query to the
    /// vector whose code is `code`.
    #[inline]
    pub(crate) fn distance(&self, code: &[u8]) -> f32 {
        match self.metric {
            Metric::Cosine => 1.0 - (self.bias + (self.kernels.dot)(&self.w, code)),
            Metric::DotProduct => -(self.bias + (self.kernels.dot)(&self.w, code)),
            Metric::Euclidean => (self.kernels.l2)(&self.w, &self.delta, code),
            Metric::Manhattan => (self.kernels.l1)(&self.w, &self.delta, code),
        }
    }
}

/// `Σ w_d·c_d`; `w.len() == c.len()`.
pub(crate) type DotU8 = fn(&[f32], &[u8]) -> f32;
/// `Σ f(r_d − Δ_d·c_d)` with `f` = square or absolute value; equal lengths.
pub(crate) type DiffU8 = fn(&[f32], &[f32], &[u8]) -> f32;

/// The SQ8 kernels of one instruction set.
#[derive(Debug)]
pub(crate) struct Sq8Kernels {
    dot: DotU8,
    l2: DiffU8,
    l1: DiffU8,
}

impl Sq8Kernels {
    const SCALAR: Sq8Kernels = Sq8Kernels { dot: scalar::dot, l2: scalar::l2, l1: scalar::l1 };

    #[cfg(target_arch = "x86_64")]
    const AVX2: Sq8Kernels = Sq8Kernels {
        // SAFETY (all three): only reachable through `get`/`available`,
        // which check AVX2 and FMA first; the callers pass equal lengths.
        dot: |w, c| unsafe { x86::dot(w, c) },
        l2: |r, d, c| unsafe { x86::l2(r, d, c) },
        l1: |r, d, c| unsafe { x86::l1(r, d, c) },
    };

    fn has_avx2() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The fastest kernels this CPU supports.
    pub(crate) fn get() -> &'static Sq8Kernels {
        #[cfg(target_arch = "x86_64")]
        {
            if Self::has_avx2() {
                return &Self::AVX2;
            }
        }
        &Self::SCALAR
    }

    /// Every kernel table this CPU can run, scalar first.
    #[cfg(test)]
    fn available() -> Vec<&'static Sq8Kernels> {
        let mut all = vec![&Self::SCALAR];
        #[cfg(target_arch = "x86_64")]
        {
            if Self::has_avx2() {
                all.push(&Self::AVX2);
            }
        }
        all
    }
}

/// Portable reference kernels.
mod scalar {
    pub(super) fn dot(w: &[f32], c: &[u8]) -> f32 {
        w.iter().zip(c).map(|(w, &c)| w * f32::from(c)).sum()
    }

    pub(super) fn l2(r: &[f32], delta: &[f32], c: &[u8]) -> f32 {
        r.iter()
            .zip(delta)
            .zip(c)
            .map(|((r, d), &c)| {
                let e = r - d * f32::from(c);
                e * e
            })
            .sum()
    }

    pub(super) fn l1(r: &[f32], delta: &[f32], c: &[u8]) -> f32 {
        r.iter().zip(delta).zip(c).map(|((r, d), &c)| (r - d * f32::from(c)).abs()).sum()
    }
}

/// AVX2+FMA kernels: 8 codes per step (`vpmovzxbd` + `vcvtdq2ps`), four
/// independent accumulators over blocks of 32, scalar tail.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Eight codes at `p` as floats.
    ///
    /// # Safety
    /// `p..p + 8` is readable.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn widen(p: *const u8) -> __m256 {
        // SAFETY: the caller guarantees 8 readable bytes.
        let bytes = unsafe { _mm_loadl_epi64(p.cast::<__m128i>()) };
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes))
    }

    /// `Σ w_d·c_d`.
    ///
    /// # Safety
    /// AVX2 and FMA are available and `w.len() == c.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot(w: &[f32], c: &[u8]) -> f32 {
        debug_assert_eq!(w.len(), c.len());
        let n = w.len().min(c.len());
        let (pw, pc) = (w.as_ptr(), c.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): i + 8·k + 8 <= n in every loop.
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let x = unsafe { widen(pc.add(i + 8 * k)) };
                *a = _mm256_fmadd_ps(unsafe { _mm256_loadu_ps(pw.add(i + 8 * k)) }, x, *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = unsafe { widen(pc.add(i)) };
            acc[0] = _mm256_fmadd_ps(unsafe { _mm256_loadu_ps(pw.add(i)) }, x, acc[0]);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        for j in i..n {
            sum += w[j] * f32::from(c[j]);
        }
        sum
    }

    macro_rules! diff_kernel {
        ($name:ident, $doc:literal, $step:ident, |$s:ident| $tail:expr) => {
            #[doc = $doc]
            ///
            /// # Safety
            /// AVX2 and FMA are available and all three slices have one length.
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn $name(r: &[f32], delta: &[f32], c: &[u8]) -> f32 {
                debug_assert!(r.len() == c.len() && delta.len() == c.len());
                let n = r.len().min(delta.len()).min(c.len());
                let (pr, pd, pc) = (r.as_ptr(), delta.as_ptr(), c.as_ptr());
                let mut accs = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                // SAFETY (all loads): i + 8·k + 8 <= n in every loop.
                while i + 32 <= n {
                    for (k, acc) in accs.iter_mut().enumerate() {
                        let x = unsafe { widen(pc.add(i + 8 * k)) };
                        let d = unsafe { _mm256_loadu_ps(pd.add(i + 8 * k)) };
                        let e = _mm256_fnmadd_ps(d, x, unsafe { _mm256_loadu_ps(pr.add(i + 8 * k)) });
                        *acc = $step(e, *acc);
                    }
                    i += 32;
                }
                while i + 8 <= n {
                    let x = unsafe { widen(pc.add(i)) };
                    let d = unsafe { _mm256_loadu_ps(pd.add(i)) };
                    let e = _mm256_fnmadd_ps(d, x, unsafe { _mm256_loadu_ps(pr.add(i)) });
                    accs[0] = $step(e, accs[0]);
                    i += 8;
                }
                let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(accs[0], accs[1]), _mm256_add_ps(accs[2], accs[3])));
                for j in i..n {
                    let $s = r[j] - delta[j] * f32::from(c[j]);
                    sum += $tail;
                }
                sum
            }
        };
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn square_step(e: __m256, acc: __m256) -> __m256 {
        _mm256_fmadd_ps(e, e, acc)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn abs_step(e: __m256, acc: __m256) -> __m256 {
        _mm256_add_ps(acc, _mm256_andnot_ps(_mm256_set1_ps(-0.0), e))
    }

    diff_kernel!(l2, "`Σ (r_d − Δ_d·c_d)²`.", square_step, |s| s * s);
    diff_kernel!(l1, "`Σ |r_d − Δ_d·c_d|`.", abs_step, |s| s.abs());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn sample(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n * dim).map(|i| rng.random_range(-1.0f32..1.0) * (1.0 + (i % dim) as f32 * 0.1)).collect()
    }

    #[test]
    fn reconstruction_error_is_at_most_half_a_step() {
        let dim = 24;
        let data = sample(2000, dim, 5);
        let sq = Sq8::train(Metric::Euclidean, dim, &data);
        let mut code = vec![0u8; dim];
        let mut back = vec![0f32; dim];
        for v in data.chunks_exact(dim) {
            sq.encode(v, &mut code);
            sq.decode(&code, &mut back);
            for d in 0..dim {
                let hi = sq.lo[d] + 255.0 * sq.delta[d];
                let clamped = v[d].clamp(sq.lo[d], hi);
                assert!((back[d] - clamped).abs() <= sq.delta[d] * 0.5 + 1e-5, "dim {d}: {} vs {}", back[d], v[d]);
            }
        }
    }

    #[test]
    fn code_distances_match_decoded_distances_for_every_metric() {
        let dim = 37;
        let data = sample(500, dim, 9);
        let kernels = Kernels::get();
        for metric in Metric::ALL {
            let sq = Sq8::train(metric, dim, &data);
            let q = &data[..dim];
            let table = sq.query(q);
            let mut code = vec![0u8; dim];
            let mut back = vec![0f32; dim];
            for v in data.chunks_exact(dim).take(50) {
                sq.encode(v, &mut code);
                sq.decode(&code, &mut back);
                let want = metric.ranking_distance(kernels, q, &back);
                let got = table.distance(&code);
                assert!((got - want).abs() <= 1e-3 * want.abs().max(1.0), "{metric}: {got} vs {want}");
            }
        }
    }

    use crate::distance::Kernels;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn simd_kernels_match_scalar(
            (w, d, c) in (1usize..=600).prop_flat_map(|n| (
                proptest::collection::vec(-10.0f32..10.0, n),
                proptest::collection::vec(0.0f32..0.1, n),
                proptest::collection::vec(any::<u8>(), n),
            ))
        ) {
            let magnitude: f32 = w.iter().zip(&c).map(|(w, &c)| (w * f32::from(c)).abs()).sum::<f32>() + 1.0;
            let want_dot = scalar::dot(&w, &c);
            let want_l2 = scalar::l2(&w, &d, &c);
            let want_l1 = scalar::l1(&w, &d, &c);
            for k in Sq8Kernels::available() {
                let got = (k.dot)(&w, &c);
                prop_assert!((got - want_dot).abs() <= 1e-5 * magnitude, "dot {} vs {}", got, want_dot);
                let got = (k.l2)(&w, &d, &c);
                prop_assert!((got - want_l2).abs() <= 1e-5 * want_l2.max(1.0) * 4.0, "l2 {} vs {}", got, want_l2);
                let got = (k.l1)(&w, &d, &c);
                prop_assert!((got - want_l1).abs() <= 1e-5 * want_l1.max(1.0) * 4.0, "l1 {} vs {}", got, want_l1);
            }
        }
    }
}
