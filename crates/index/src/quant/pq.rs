//! PQ: product quantization (Jégou, Douze & Schmid, "Product quantization
//! for nearest neighbor search", TPAMI 2011).
//!
//! The `D`-dimensional space is cut into `M` subspaces of `D* = D/M`
//! consecutive components (`M` must divide `D`). Each subspace has its own
//! codebook of `k* = 256` centroids learnt by k-means on the training
//! sample, so a vector is stored as `M` bytes: the index of the nearest
//! centroid in each subspace.
//!
//! Search uses asymmetric distance computation (ADC, §3.1 of the paper): for
//! one query the index fills a table `T[m][j] = f(q_m, c_{m,j})` of
//! `M × 256` floats, and the distance to a code `(j_1, …, j_M)` is
//! `bias + Σ_m T[m][j_m]`. This is exact for the reconstructed vector under
//! every metric the index supports, because all of them are sums over
//! components: `f` is the squared L2 (euclidean), `|·|₁` (manhattan) or the
//! negated inner product (dot; cosine adds `bias = 1` on normalised vectors).

use super::kmeans;
use crate::{IndexError, Metric};

/// `k*`: centroids per subspace; codes are bytes.
pub(crate) const CENTROIDS: usize = 256;
/// Lloyd iterations per codebook (k-means stops earlier when stable).
const KMEANS_ITERATIONS: usize = 20;

/// A trained product quantizer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pq {
    metric: Metric,
    /// `D`.
    dim: usize,
    /// `M`.
    subspaces: usize,
    /// `D* = D / M`.
    dsub: usize,
    /// `M × k* × D*` floats: codebook `m`, centroid `j` starts at
    /// `(m·k* + j)·D*`.
    codebooks: Vec<f32>,
}

/// The ADC lookup table of one query.
#[derive(Debug)]
pub(crate) struct PqQuery {
    /// `M × k*` floats, `T[m][j]` at `m·k* + j`.
    table: Vec<f32>,
    bias: f32,
}

impl Pq {
    /// Checks that `subspaces` and `centroids` are usable for `dim`.
    pub(crate) fn validate(dim: usize, subspaces: usize, centroids: usize) -> Result<(), IndexError> {
        if centroids != CENTROIDS {
            return Err(IndexError::InvalidParameter {
                name: "centroids",
                reason: format!(
                    "only {CENTROIDS} centroids per subspace (one-byte codes) are supported, got {centroids}"
                ),
            });
        }
        if subspaces == 0 || subspaces > dim || !dim.is_multiple_of(subspaces) {
            return Err(IndexError::InvalidParameter {
                name: "subspaces",
                reason: format!("must divide the dimension {dim}, got {subspaces}"),
            });
        }
        Ok(())
    }

    /// Learns the `M` codebooks from `samples` (`n × dim`, prepared
    /// vectors), one k-means per subspace, spread over the available cores.
    pub(crate) fn train(
        metric: Metric,
        dim: usize,
        subspaces: usize,
        samples: &[f32],
        seed: u64,
    ) -> Result<Pq, IndexError> {
        Self::validate(dim, subspaces, CENTROIDS)?;
        let dsub = dim / subspaces;
        let n = samples.len() / dim;
        let train_one = |m: usize| -> Vec<f32> {
            let sub: Vec<f32> =
                (0..n).flat_map(|i| samples[i * dim + m * dsub..i * dim + (m + 1) * dsub].iter().copied()).collect();
            kmeans::kmeans(
                &sub,
                dsub,
                CENTROIDS,
                KMEANS_ITERATIONS,
                seed ^ (m as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            )
        };
        let books = super::parallel_map(subspaces, train_one);
        Ok(Pq { metric, dim, subspaces, dsub, codebooks: books.concat() })
    }

    /// Rebuilds a quantizer from stored codebooks.
    pub(crate) fn from_parts(
        metric: Metric,
        dim: usize,
        subspaces: usize,
        codebooks: Vec<f32>,
    ) -> Result<Pq, IndexError> {
        Self::validate(dim, subspaces, CENTROIDS)?;
        if codebooks.len() != dim * CENTROIDS {
            return Err(IndexError::Corrupt(format!(
                "PQ codebooks hold {} floats, expected {}",
                codebooks.len(),
                dim * CENTROIDS
            )));
        }
        Ok(Pq { metric, dim, subspaces, dsub: dim / subspaces, codebooks })
    }

    pub(crate) fn codebooks(&self) -> &[f32] {
        &self.codebooks
    }

    /// Bytes per code: one per subspace.
    pub(crate) fn code_len(&self) -> usize {
        self.subspaces
    }

    fn codebook(&self, m: usize) -> &[f32] {
        let len = CENTROIDS * self.dsub;
        &self.codebooks[m * len..(m + 1) * len]
    }

    /// Writes the code of `v` (length `D`) into `out` (length `M`): the
    /// nearest centroid of each subspace under L2.
    pub(crate) fn encode(&self, v: &[f32], out: &mut [u8]) {
        debug_assert_eq!(v.len(), self.dim);
        for (m, (o, sub)) in out.iter_mut().zip(v.chunks_exact(self.dsub)).enumerate() {
            *o = kmeans::nearest(self.codebook(m), self.dsub, sub).0 as u8;
        }
    }

    /// Writes the reconstruction of `code` into `out`.
    #[cfg(test)]
    pub(crate) fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (m, (o, &j)) in out.chunks_exact_mut(self.dsub).zip(code).enumerate() {
            let j = j as usize;
            o.copy_from_slice(&self.codebook(m)[j * self.dsub..(j + 1) * self.dsub]);
        }
    }

    /// Fills the ADC table for the prepared query `q`.
    pub(crate) fn query(&self, q: &[f32]) -> PqQuery {
        let mut table = Vec::with_capacity(self.subspaces * CENTROIDS);
        for (m, qm) in q.chunks_exact(self.dsub).enumerate() {
            for c in self.codebook(m).chunks_exact(self.dsub) {
                table.push(match self.metric {
                    Metric::Euclidean => kmeans::l2_sq(qm, c),
                    Metric::Manhattan => qm.iter().zip(c).map(|(a, b)| (a - b).abs()).sum(),
                    Metric::Cosine | Metric::DotProduct => -qm.iter().zip(c).map(|(a, b)| a * b).sum::<f32>(),
                });
            }
        }
        let bias = if self.metric == Metric::Cosine { 1.0 } else { 0.0 };
        PqQuery { table, bias }
    }
}

impl PqQuery {
    /// The ranking distance from the query to the vector coded as `code`:
    /// `bias + Σ_m T[m][code_m]`, four independent sums to hide load latency.
    #[inline]
    pub(crate) fn distance(&self, code: &[u8]) -> f32 {
        let t = &self.table[..code.len() * CENTROIDS];
        let mut acc = [0f32; 4];
        let mut chunks = code.chunks_exact(4);
        let mut base = 0;
        for c in &mut chunks {
            acc[0] += t[base + c[0] as usize];
            acc[1] += t[base + CENTROIDS + c[1] as usize];
            acc[2] += t[base + 2 * CENTROIDS + c[2] as usize];
            acc[3] += t[base + 3 * CENTROIDS + c[3] as usize];
            base += 4 * CENTROIDS;
        }
        for &c in chunks.remainder() {
            acc[0] += t[base + c as usize];
            base += CENTROIDS;
        }
        self.bias + (acc[0] + acc[1]) + (acc[2] + acc[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::Kernels;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn sample(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn subspaces_must_divide_the_dimension_and_centroids_be_256() {
        assert!(Pq::validate(384, 48, 256).is_ok());
        assert!(Pq::validate(384, 5, 256).is_err());
        assert!(Pq::validate(384, 0, 256).is_err());
        assert!(Pq::validate(8, 16, 256).is_err());
        assert!(Pq::validate(384, 48, 16).is_err());
    }

    #[test]
    fn adc_equals_the_distance_to_the_reconstruction() {
        let dim = 16;
        let data = sample(1000, dim, 3);
        for metric in Metric::ALL {
            let pq = Pq::train(metric, dim, 4, &data, 7).expect("valid");
            let q = &data[dim..2 * dim];
            let table = pq.query(q);
            let mut code = vec![0u8; 4];
            let mut back = vec![0f32; dim];
            for v in data.chunks_exact(dim).take(40) {
                pq.encode(v, &mut code);
                pq.decode(&code, &mut back);
                let want = metric.ranking_distance(Kernels::get(), q, &back);
                let got = table.distance(&code);
                assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{metric}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn quantization_error_shrinks_with_more_subspaces() {
        let dim = 32;
        let data = sample(3000, dim, 4);
        let mse = |subspaces: usize| -> f32 {
            let pq = Pq::train(Metric::Euclidean, dim, subspaces, &data, 1).expect("valid");
            let mut code = vec![0u8; subspaces];
            let mut back = vec![0f32; dim];
            let mut total = 0.0;
            for v in data.chunks_exact(dim) {
                pq.encode(v, &mut code);
                pq.decode(&code, &mut back);
                total += kmeans::l2_sq(v, &back);
            }
            total / 3000.0
        };
        let (coarse, fine) = (mse(2), mse(16));
        let energy: f32 = data.chunks_exact(dim).map(|v| v.iter().map(|x| x * x).sum::<f32>()).sum::<f32>() / 3000.0;
        assert!(fine < coarse, "finer PQ must reconstruct better: {fine} vs {coarse}");
        assert!(fine < 0.25 * energy, "PQ-16 error {fine} too large against energy {energy}");
    }
}
