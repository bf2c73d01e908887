//! `ruvector-engine`: what every node embeds — a catalog of durable
//! collections of vectors.
//!
//! * [`Engine`] — the catalog and the node's write-ahead log; every
//!   operation of the REST API has a method here, so the HTTP layer only
//!   converts and maps errors.
//! * A collection (internal) is a configuration, an HNSW index (which also
//!   maps external ids to graph slots) and the payloads.
//! * Durability: a write is checked completely, logged, then applied; it is
//!   acknowledged once its log record is durable (see [`Fsync`]).
//!   Checkpoints write a whole collection so a restart loads instead of
//!   rebuilding; recovery loads the newest checkpoint of each collection and
//!   replays the log after it. See `docs/ARCHITECTURE.md` for the layout.
//!
//! ```
//! use ruvector_engine::{CollectionConfig, Engine, EngineConfig, Point};
//! use ruvector_index::Metric;
//!
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::open(EngineConfig::new(dir.path()))?;
//! engine.create_collection("docs", CollectionConfig::new(2, Metric::Euclidean))?;
//! engine.upsert("docs", vec![
//!     Point { id: 1, vector: vec![0.0, 0.0], payload: None, version: 0 },
//!     Point { id: 2, vector: vec![3.0, 4.0], payload: None, version: 0 },
//! ])?;
//! let hits = engine.search("docs", &[3.0, 3.0], 1, None)?;
//! assert_eq!(hits[0].id, 2);
//! drop(engine);
//!
//! // Everything acknowledged is there after a restart.
//! let engine = Engine::open(EngineConfig::new(dir.path()))?;
//! assert_eq!(engine.collection("docs")?.size, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod collection;
mod config;
mod engine;
mod error;
mod filtered;
mod payload_index;
mod persist;

pub use collection::{CollectionInfo, Point};
pub use config::{
    CollectionConfig, EngineConfig, Fsync, Limits, MAX_PAYLOAD_INDEXES, MAX_PAYLOAD_KEY_BYTES, QuantizationConfig,
};
pub use engine::{DeleteOutcome, Engine, EngineObserver, Exported};
pub use error::EngineError;
pub use filtered::{Candidates, FilterPlan, FilteredHits, Gate, PayloadFilter};
pub use payload_index::{IndexedTest, PayloadIndexKind, PayloadIndexes};
pub use roaring::RoaringTreemap;
pub use ruvector_index::{Metric, Neighbor};
#[cfg(test)]
mod filtered_tests;
#[cfg(test)]
mod tests;
