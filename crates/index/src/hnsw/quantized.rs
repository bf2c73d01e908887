//! Quantized search: the graph walked on codes, the best candidates
//! rescored on full-precision vectors.
//!
//! Owns [`HnswOptions`] (quantization, training, oversampling, vector file),
//! training ([`Hnsw::train_quantizer`], also run automatically once the
//! index first holds `training_size` live vectors), and the search path
//! used once a quantizer is trained:
//!
//! 1. the query is turned into a [`QuantQuery`] table (SQ8 weights or PQ
//!    ADC table) and [`CodeScorer`] drives the ordinary HNSW search, so
//!    traversal reads only codes;
//! 2. the best `R = max(k, oversampling·k)` candidates (beam width
//!    `max(ef, R)`) are rescored with exact distances on full vectors;
//! 3. the `k` nearest by exact distance are returned, with exact distances.
//!
//! Invariants: once `Inner::quant` is set, every non-free slot below `used`
//! holds the code of its vector (training encodes all of them while the
//! write gate is held exclusively; inserts encode before publishing). Insert
//! linking, delete repair and `get` keep using full vectors.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rand::SeedableRng;
use rand::seq::index;

use super::search::Candidate;
use super::{ExactScorer, FREE, Hnsw, Inner, LIVE, Neighbor};
use crate::quant::{CodeStore, QuantQuery, Quantization, Quantizer, parallel_map};
use crate::{IndexError, Scorer};

/// Options of [`Hnsw::with_options`] beyond the graph parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HnswOptions {
    /// Vectors to make room for up front (see [`Hnsw::with_capacity`]).
    pub capacity: usize,
    /// The quantizer searches run on once trained. Default: none.
    pub quantization: Quantization,
    /// Vectors sampled to train the quantizer, and the live count at which
    /// it is trained automatically. Default 10,000.
    pub training_size: usize,
    /// Train automatically when the live count first reaches
    /// `training_size` (checked after each insert or batch). Default true.
    pub auto_train: bool,
    /// Full vectors rescored per result: a search for `k` rescores the best
    /// `oversampling · k` candidates by code distance. Default 4.
    pub oversampling: usize,
    /// Keep full-precision vectors in a shared mapping of this file (created
    /// or truncated) instead of anonymous memory, so the OS can evict them;
    /// see [`Hnsw::release_vector_memory`]. Default: none.
    pub vector_file: Option<PathBuf>,
    /// Leave upkeep (delete repair, linking staged vectors, the
    /// reachability pass, quantizer training) to calls of
    /// [`Hnsw::maintain`] instead of doing it in the mutating thread.
    /// Default false.
    pub background_maintenance: bool,
}

impl Default for HnswOptions {
    fn default() -> Self {
        HnswOptions {
            capacity: 0,
            quantization: Quantization::None,
            training_size: 10_000,
            auto_train: true,
            oversampling: 4,
            vector_file: None,
            background_maintenance: false,
        }
    }
}

impl HnswOptions {
    /// Largest accepted oversampling factor.
    pub const MAX_OVERSAMPLING: usize = 256;

    pub(super) fn validate(&self, dim: usize) -> Result<(), IndexError> {
        self.quantization.validate(dim)?;
        validate_oversampling(self.oversampling)?;
        if self.training_size == 0 {
            return Err(IndexError::InvalidParameter { name: "training_size", reason: "must be at least 1".into() });
        }
        Ok(())
    }
}

fn validate_oversampling(oversampling: usize) -> Result<(), IndexError> {
    if !(1..=HnswOptions::MAX_OVERSAMPLING).contains(&oversampling) {
        return Err(IndexError::InvalidParameter {
            name: "oversampling",
            reason: format!("must be between 1 and {}, got {oversampling}", HnswOptions::MAX_OVERSAMPLING),
        });
    }
    Ok(())
}

/// A trained quantizer and the codes of every slot.
#[derive(Debug)]
pub(super) struct Quantized {
    pub(super) quantizer: Arc<Quantizer>,
    pub(super) codes: CodeStore,
}

impl Quantized {
    /// The copy for arrays grown to `capacity` (first `used` codes kept).
    pub(super) fn grown(&self, capacity: usize, used: usize) -> Result<Quantized, IndexError> {
        Ok(Quantized { quantizer: Arc::clone(&self.quantizer), codes: self.codes.grown(capacity, used)? })
    }

    /// Encodes the (published or owned) vector of `slot` into its code.
    ///
    /// # Safety
    /// The caller owns `slot` (reserved and unpublished, or exclusive access).
    pub(super) unsafe fn encode_slot(&self, inner: &Inner, slot: u32) {
        // SAFETY: by the caller's contract.
        let code = unsafe { self.codes.slot_mut(slot) };
        self.quantizer.encode(inner.vector(slot), code);
    }
}

/// The query-side scorer over codes.
pub(super) struct CodeScorer<'a> {
    codes: &'a CodeStore,
    query: &'a QuantQuery,
}

impl<'a> CodeScorer<'a> {
    pub(super) fn new(codes: &'a CodeStore, query: &'a QuantQuery) -> Self {
        CodeScorer { codes, query }
    }
}

impl Scorer for CodeScorer<'_> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        // SAFETY: the graph hands out only published slots, whose codes are
        // written before publication (module invariants).
        self.query.distance(unsafe { self.codes.get(node) })
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        self.codes.prefetch(node);
    }
}

impl Hnsw {
    /// Creates an empty index with the given [`HnswOptions`]: capacity,
    /// quantization, training and oversampling, and where full vectors live.
    pub fn with_options(
        dim: usize,
        metric: crate::Metric,
        params: super::HnswParams,
        options: HnswOptions,
    ) -> Result<Self, IndexError> {
        Self::build(dim, metric, params, options)
    }

    /// The configured quantization (whether trained or not).
    pub fn quantization(&self) -> Quantization {
        *self.quantization.lock()
    }

    /// Switches to another quantization: validates it, drops any trained
    /// quantizer and its codes (searches use full vectors again), and
    /// leaves training to [`Hnsw::train_quantizer`] or auto-training.
    /// Mutations wait meanwhile.
    pub fn set_quantization(&self, quantization: Quantization) -> Result<(), IndexError> {
        quantization.validate(self.dim)?;
        let _gate = self.write_gate.write();
        *self.quantization.lock() = quantization;
        self.inner.write().quant = None;
        Ok(())
    }

    /// Whether a quantizer is trained, i.e. searches run on codes.
    pub fn is_quantizer_trained(&self) -> bool {
        self.inner.read().quant.is_some()
    }

    /// Full vectors rescored per requested result.
    pub fn oversampling(&self) -> usize {
        self.oversampling.load(Ordering::Relaxed)
    }

    /// Sets how many candidates per requested result are rescored with full
    /// vectors (1 to [`HnswOptions::MAX_OVERSAMPLING`]).
    pub fn set_oversampling(&self, oversampling: usize) -> Result<(), IndexError> {
        validate_oversampling(oversampling)?;
        self.oversampling.store(oversampling, Ordering::Relaxed);
        Ok(())
    }

    /// Trains (or retrains) the configured quantizer on up to
    /// `training_size` live vectors sampled with the index seed, encodes
    /// every vector, and switches searches to codes. Searches continue
    /// meanwhile; mutations wait.
    pub fn train_quantizer(&self) -> Result<(), IndexError> {
        self.train(true)
    }

    /// Samples, trains and encodes; with `force` false, does nothing when a
    /// quantizer is already trained. The sample is copied and k-means runs
    /// without blocking mutations; only encoding every vector with the new
    /// quantizer holds the write gate exclusively.
    pub(super) fn train(&self, force: bool) -> Result<(), IndexError> {
        let kind = self.quantization();
        if kind == Quantization::None {
            return Err(IndexError::InvalidParameter {
                name: "quantization",
                reason: "the index has no quantization configured".into(),
            });
        }
        let samples = {
            let inner = self.inner.read();
            if !force && inner.quant.is_some() {
                return Ok(());
            }
            let live: Vec<u32> = (0..inner.used() as u32).filter(|&s| inner.state(s) == LIVE).collect();
            if live.is_empty() {
                return Err(IndexError::InvalidParameter {
                    name: "training_size",
                    reason: "no live vectors to train the quantizer on".into(),
                });
            }
            let mut chosen: Vec<u32> = if live.len() <= self.options.training_size {
                live
            } else {
                let mut rng = rand::rngs::SmallRng::seed_from_u64(self.params.seed);
                index::sample(&mut rng, live.len(), self.options.training_size).into_iter().map(|i| live[i]).collect()
            };
            chosen.sort_unstable();
            let mut samples = Vec::with_capacity(chosen.len() * self.dim);
            for &s in &chosen {
                samples.extend_from_slice(inner.vector(s));
            }
            samples
        };
        let Some(quantizer) = Quantizer::train(kind, self.metric, self.dim, &samples, self.params.seed)? else {
            return Ok(());
        };
        drop(samples);
        let _gate = self.write_gate.write();
        if self.quantization() != kind {
            // `set_quantization` changed it meanwhile; its caller trains anew.
            return Ok(());
        }
        let inner = self.inner.read();
        if !force && inner.quant.is_some() {
            return Ok(());
        }
        let used = inner.used();
        let codes = CodeStore::new(quantizer.code_len(), inner.capacity())?;
        let quant = Quantized { quantizer: Arc::new(quantizer), codes };
        const CHUNK: usize = 4096;
        parallel_map(used.div_ceil(CHUNK), |c| {
            for s in (c * CHUNK..((c + 1) * CHUNK).min(used)).map(|s| s as u32) {
                if inner.state(s) != FREE {
                    // SAFETY: the new code store is not shared yet; chunks
                    // are disjoint, so each slot has one writer.
                    unsafe { quant.encode_slot(&inner, s) };
                }
            }
        });
        // Every code is new: the next incremental snapshot writes them all.
        inner.changed_vectors.mark_all(used);
        drop(inner);
        let mut inner = self.inner.write();
        // `reserve` may have grown the arrays meanwhile (it does not take
        // the write gate); slots in use cannot have changed.
        let quant =
            if quant.codes.capacity() < inner.capacity() { quant.grown(inner.capacity(), used)? } else { quant };
        inner.quant = Some(quant);
        Ok(())
    }

    /// Drops full-precision vectors from resident memory when they live in
    /// a vector file ([`HnswOptions::vector_file`]); later accesses (rescoring,
    /// inserts, `get`) read them back on demand. A no-op otherwise.
    pub fn release_vector_memory(&self) -> Result<(), IndexError> {
        self.inner.read().vectors.release()?;
        Ok(())
    }

    /// Bytes of full-precision vector storage mapped (resident or not).
    pub fn vector_bytes(&self) -> usize {
        self.inner.read().vectors.mapped_bytes()
    }

    /// Bytes of quantized codes in use (`used slots × code length`).
    pub fn code_bytes(&self) -> usize {
        let inner = self.inner.read();
        inner.quant.as_ref().map_or(0, |q| inner.used() * q.codes.code_len())
    }

    /// Search on codes with full-precision rescoring (module docs).
    pub(super) fn search_quantized(
        &self,
        inner: &Inner,
        quant: &Quantized,
        prepared: &[f32],
        k: usize,
        ef: usize,
        accept: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Vec<Neighbor> {
        let table = quant.quantizer.query(prepared);
        let scorer = CodeScorer { codes: &quant.codes, query: &table };
        let rerank = k.saturating_mul(self.oversampling()).max(k);
        let hits = self.search_slots(inner, &scorer, rerank, ef.max(rerank), accept);
        let exact = ExactScorer { inner, query: prepared, metric: self.metric, kernels: self.kernels };
        let mut rescored: Vec<Candidate> = Vec::with_capacity(hits.len());
        for (i, c) in hits.iter().enumerate() {
            if let Some(next) = hits.get(i + 1) {
                exact.prefetch(next.node);
                exact.prefetch_all(next.node);
            }
            rescored.push(Candidate { distance: exact.distance(c.node), node: c.node });
        }
        rescored.sort_unstable();
        super::distinct_nearest(inner, &mut rescored, k);
        self.to_neighbors(inner, rescored, |d| self.metric.reported(d))
    }
}
