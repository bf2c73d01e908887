//! x86-64 SIMD kernels: AVX-512F and AVX2+FMA.
//!
//! Every function here is `unsafe` only because it is compiled for a CPU
//! feature the caller must have checked at runtime (see
//! [`super::Kernels::detect`]); the memory accesses themselves stay within
//! the two slices, whose lengths must be equal.
//!
//! Layout of each kernel: four independent vector accumulators over blocks of
//! `4 × LANES` floats (enough to hide FMA latency), then single-register
//! steps, then the tail — masked loads on AVX-512, scalar on AVX2.

use std::arch::x86_64::*;

/// Horizontal sum of eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum256(v: __m256) -> f32 {
    let hi = _mm256_extractf128_ps::<1>(v);
    let lo = _mm256_castps256_ps128(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

macro_rules! avx2_kernel {
    ($name:ident, $doc:literal, |$acc:ident, $x:ident, $y:ident| $step:expr, |$sx:ident, $sy:ident| $tail:expr) => {
        #[doc = $doc]
        ///
        /// # Safety
        /// The CPU must support AVX2 and FMA, and `a.len() == b.len()`.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
            debug_assert_eq!(a.len(), b.len());
            let n = a.len();
            let pa = a.as_ptr();
            let pb = b.as_ptr();
            let mut accs = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            // SAFETY (all loads below): i + 8·k stays below n in every loop.
            while i + 32 <= n {
                for (k, acc) in accs.iter_mut().enumerate() {
                    let $x = unsafe { _mm256_loadu_ps(pa.add(i + 8 * k)) };
                    let $y = unsafe { _mm256_loadu_ps(pb.add(i + 8 * k)) };
                    let $acc = *acc;
                    *acc = $step;
                }
                i += 32;
            }
            while i + 8 <= n {
                let $x = unsafe { _mm256_loadu_ps(pa.add(i)) };
                let $y = unsafe { _mm256_loadu_ps(pb.add(i)) };
                let $acc = accs[0];
                accs[0] = $step;
                i += 8;
            }
            let sum01 = _mm256_add_ps(accs[0], accs[1]);
            let sum23 = _mm256_add_ps(accs[2], accs[3]);
            let mut sum = hsum256(_mm256_add_ps(sum01, sum23));
            for j in i..n {
                let $sx = a[j];
                let $sy = b[j];
                sum += $tail;
            }
            sum
        }
    };
}

avx2_kernel!(dot_avx2, "Inner product with AVX2+FMA.", |acc, x, y| _mm256_fmadd_ps(x, y, acc), |x, y| x * y);

avx2_kernel!(
    l2_squared_avx2,
    "Squared L2 distance with AVX2+FMA.",
    |acc, x, y| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, acc)
    },
    |x, y| (x - y) * (x - y)
);

avx2_kernel!(
    l1_avx2,
    "L1 distance with AVX2.",
    |acc, x, y| {
        let d = _mm256_sub_ps(x, y);
        _mm256_add_ps(acc, _mm256_andnot_ps(_mm256_set1_ps(-0.0), d))
    },
    |x, y| (x - y).abs()
);

macro_rules! avx512_kernel {
    ($name:ident, $doc:literal, |$acc:ident, $x:ident, $y:ident| $step:expr) => {
        #[doc = $doc]
        ///
        /// # Safety
        /// The CPU must support AVX-512F, and `a.len() == b.len()`.
        #[target_feature(enable = "avx512f")]
        pub unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
            debug_assert_eq!(a.len(), b.len());
            let n = a.len();
            let pa = a.as_ptr();
            let pb = b.as_ptr();
            let mut accs = [_mm512_setzero_ps(); 4];
            let mut i = 0;
            // SAFETY (all loads below): full loads stay below n; the tail
            // load is masked to the `n - i` remaining lanes, and masked-off
            // lanes are not accessed.
            while i + 64 <= n {
                for (k, acc) in accs.iter_mut().enumerate() {
                    let $x = unsafe { _mm512_loadu_ps(pa.add(i + 16 * k)) };
                    let $y = unsafe { _mm512_loadu_ps(pb.add(i + 16 * k)) };
                    let $acc = *acc;
                    *acc = $step;
                }
                i += 64;
            }
            while i + 16 <= n {
                let $x = unsafe { _mm512_loadu_ps(pa.add(i)) };
                let $y = unsafe { _mm512_loadu_ps(pb.add(i)) };
                let $acc = accs[0];
                accs[0] = $step;
                i += 16;
            }
            if i < n {
                let mask: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as __mmask16;
                let $x = unsafe { _mm512_maskz_loadu_ps(mask, pa.add(i)) };
                let $y = unsafe { _mm512_maskz_loadu_ps(mask, pb.add(i)) };
                let $acc = accs[1];
                accs[1] = $step;
            }
            let sum01 = _mm512_add_ps(accs[0], accs[1]);
            let sum23 = _mm512_add_ps(accs[2], accs[3]);
            _mm512_reduce_add_ps(_mm512_add_ps(sum01, sum23))
        }
    };
}

avx512_kernel!(dot_avx512, "Inner product with AVX-512F.", |acc, x, y| _mm512_fmadd_ps(x, y, acc));

avx512_kernel!(l2_squared_avx512, "Squared L2 distance with AVX-512F.", |acc, x, y| {
    let d = _mm512_sub_ps(x, y);
    _mm512_fmadd_ps(d, d, acc)
});

avx512_kernel!(l1_avx512, "L1 distance with AVX-512F.", |acc, x, y| {
    _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(x, y)))
});
