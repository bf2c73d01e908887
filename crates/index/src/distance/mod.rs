//! Distance kernels over `f32` slices, chosen once per process by CPU feature.
//!
//! [`Kernels::get`] returns the best implementation this CPU supports:
//! AVX-512F, then AVX2+FMA, then the portable [`scalar`] reference. Callers on
//! a hot path fetch the table once and keep the function pointers; the free
//! functions [`dot`], [`l2_squared`] and [`l1`] are the convenient form.
//! Every SIMD path is property-tested against the scalar reference.

pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use std::sync::OnceLock;

/// Signature shared by every kernel: both slices have the same length.
pub type KernelFn = fn(&[f32], &[f32]) -> f32;

/// Which instruction set a [`Kernels`] table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable code (the compiler may still auto-vectorise it).
    Scalar,
    /// AVX2 with fused multiply-add.
    Avx2Fma,
    /// AVX-512 Foundation.
    Avx512,
}

/// A table of distance kernels for one instruction set.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    /// The instruction set these kernels use.
    pub isa: Isa,
    /// Inner product.
    pub dot: KernelFn,
    /// Squared Euclidean distance.
    pub l2_squared: KernelFn,
    /// Manhattan (L1) distance.
    pub l1: KernelFn,
}

impl Kernels {
    /// The portable reference kernels.
    pub const SCALAR: Kernels =
        Kernels { isa: Isa::Scalar, dot: scalar::dot, l2_squared: scalar::l2_squared, l1: scalar::l1 };

    /// The fastest kernels this CPU supports, detected on first use.
    pub fn get() -> &'static Kernels {
        static DETECTED: OnceLock<Kernels> = OnceLock::new();
        DETECTED.get_or_init(Self::detect)
    }

    /// Every kernel table this CPU can run, scalar first (used by tests and
    /// benchmarks to compare the paths).
    pub fn available() -> Vec<Kernels> {
        let mut all = vec![Self::SCALAR];
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(k) = Self::avx2() {
                all.push(k);
            }
            if let Some(k) = Self::avx512() {
                all.push(k);
            }
        }
        all
    }

    fn detect() -> Kernels {
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(k) = Self::avx512().or_else(Self::avx2) {
                return k;
            }
        }
        Self::SCALAR
    }

    #[cfg(target_arch = "x86_64")]
    fn avx2() -> Option<Kernels> {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return None;
        }
        // SAFETY: the features the kernels are compiled for were just
        // detected; the kernels require equal lengths, which every caller of
        // a `KernelFn` guarantees.
        Some(Kernels {
            isa: Isa::Avx2Fma,
            dot: |a, b| unsafe { x86::dot_avx2(a, b) },
            l2_squared: |a, b| unsafe { x86::l2_squared_avx2(a, b) },
            l1: |a, b| unsafe { x86::l1_avx2(a, b) },
        })
    }

    #[cfg(target_arch = "x86_64")]
    fn avx512() -> Option<Kernels> {
        if !is_x86_feature_detected!("avx512f") {
            return None;
        }
        // SAFETY: as for `avx2`.
        Some(Kernels {
            isa: Isa::Avx512,
            dot: |a, b| unsafe { x86::dot_avx512(a, b) },
            l2_squared: |a, b| unsafe { x86::l2_squared_avx512(a, b) },
            l1: |a, b| unsafe { x86::l1_avx512(a, b) },
        })
    }
}

/// Inner product `a · b`.
///
/// # Panics
/// If the slices differ in length.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    (Kernels::get().dot)(a, b)
}

/// Squared Euclidean distance.
///
/// # Panics
/// If the slices differ in length.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_squared: length mismatch");
    (Kernels::get().l2_squared)(a, b)
}

/// Manhattan (L1) distance.
///
/// # Panics
/// If the slices differ in length.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l1: length mismatch");
    (Kernels::get().l1)(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Relative tolerance against the scalar reference: SIMD sums in a
    /// different order, so allow rounding proportional to the magnitude of
    /// the terms summed (not of the result, which may cancel to ~0).
    fn close(simd: f32, reference: f32, magnitude: f32) -> bool {
        (simd - reference).abs() <= 1e-5 * magnitude.max(1.0)
    }

    fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (1usize..=2048).prop_flat_map(|n| {
            (proptest::collection::vec(-100.0f32..100.0, n), proptest::collection::vec(-100.0f32..100.0, n))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_isa_matches_scalar((a, b) in pair()) {
            let abs_dot: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
            let l2 = scalar::l2_squared(&a, &b);
            let l1v = scalar::l1(&a, &b);
            for k in Kernels::available() {
                let d = (k.dot)(&a, &b);
                prop_assert!(close(d, scalar::dot(&a, &b), abs_dot), "{:?} dot {} vs {}", k.isa, d, scalar::dot(&a, &b));
                let e = (k.l2_squared)(&a, &b);
                prop_assert!(close(e, l2, l2), "{:?} l2 {} vs {}", k.isa, e, l2);
                let m = (k.l1)(&a, &b);
                prop_assert!(close(m, l1v, l1v), "{:?} l1 {} vs {}", k.isa, m, l1v);
            }
        }
    }

    #[test]
    fn every_length_up_to_80_exactly_on_integers() {
        // Small integers are exact in f32, so every path must agree exactly,
        // which pins down the tail handling for each remainder mod 8 and 16.
        for n in 0..=80usize {
            let a: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| (i % 5) as f32 - 2.0).collect();
            for k in Kernels::available() {
                assert_eq!((k.dot)(&a, &b), scalar::dot(&a, &b), "{:?} n={n}", k.isa);
                assert_eq!((k.l2_squared)(&a, &b), scalar::l2_squared(&a, &b), "{:?} n={n}", k.isa);
                assert_eq!((k.l1)(&a, &b), scalar::l1(&a, &b), "{:?} n={n}", k.isa);
            }
        }
    }

    #[test]
    fn detected_isa_is_the_best_available() {
        let best = Kernels::available().last().map(|k| k.isa);
        assert_eq!(Some(Kernels::get().isa), best);
    }
}
