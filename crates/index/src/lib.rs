//! `ruvector-index`: the in-memory search core of ruvector.
//!
//! * [`distance`] — SIMD distance kernels (AVX-512, AVX2+FMA, scalar) chosen
//!   at runtime;
//! * [`Metric`] — cosine, euclidean, dot product and manhattan, with the
//!   reported-distance semantics documented on the type;
//! * [`Hnsw`] — a hierarchical navigable small world graph (Malkov &
//!   Yashunin, 2016) that supports concurrent search, parallel batch insert,
//!   upsert, deletes that repair the graph, and serialisation;
//! * [`Scorer`] — the seam through which a quantised store can drive the
//!   same graph;
//! * [`Quantization`] — SQ8 or PQ (Jégou et al.) codes that searches walk
//!   the graph on once trained, rescoring the best `oversampling · k`
//!   candidates with full vectors (see [`HnswOptions`]); full vectors may
//!   live in a file mapping the OS can evict.
//!
//! The crate knows nothing about files, HTTP or async runtimes.
//!
//! # Example
//!
//! ```
//! use ruvector_index::{Hnsw, HnswParams, Metric};
//!
//! let index = Hnsw::new(3, Metric::Euclidean, HnswParams::default())?;
//! index.insert(1, &[0.0, 0.0, 0.0])?;
//! index.insert(2, &[1.0, 0.0, 0.0])?;
//! index.insert_batch(&[(3, &[5.0, 5.0, 5.0][..]), (4, &[0.0, 2.0, 0.0][..])], 2)?;
//!
//! let hits = index.search(&[0.9, 0.1, 0.0], 2)?;
//! assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![2, 1]);
//!
//! index.delete(2);
//! assert_eq!(index.search(&[0.9, 0.1, 0.0], 1)?[0].id, 1);
//!
//! // Snapshot and restore without rebuilding the graph.
//! let mut bytes = Vec::new();
//! index.write_to(&mut bytes)?;
//! let restored = Hnsw::read_from(&bytes[..])?;
//! assert_eq!(restored.len(), 3);
//!
//! // Search on SQ8 codes, trained once 1,000 vectors are live (or on demand).
//! use ruvector_index::{HnswOptions, Quantization};
//! let options = HnswOptions { quantization: Quantization::Sq8, training_size: 1_000, ..HnswOptions::default() };
//! let quantized = Hnsw::with_options(3, Metric::Euclidean, HnswParams::default(), options)?;
//! quantized.insert_batch(&[(1, &[0.0, 0.0, 0.0][..]), (2, &[1.0, 0.0, 0.0][..])], 1)?;
//! quantized.train_quantizer()?;
//! quantized.set_oversampling(8)?;
//! assert_eq!(quantized.search(&[0.9, 0.1, 0.0], 1)?[0].id, 2);
//! # Ok::<(), ruvector_index::IndexError>(())
//! ```

pub mod distance;
mod error;
mod hnsw;
mod metric;
mod quant;
mod scorer;
mod store;
mod visited;

pub use error::IndexError;
pub use hnsw::{Backlog, Hnsw, HnswOptions, HnswParams, IdFilter, IndexDelta, MaintenanceWork, Neighbor};
pub use metric::{Metric, UnknownMetric};
pub use quant::Quantization;
pub use scorer::Scorer;
