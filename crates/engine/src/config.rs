//! Configuration: of the engine (where data lives, durability, limits) and
//! of one collection (what is fixed at creation and persisted with it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ruvector_index::{HnswOptions, HnswParams, Metric, Quantization};
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::payload_index::PayloadIndexKind;

/// How vectors are compressed for graph traversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum QuantizationConfig {
    /// Full-precision vectors only.
    #[default]
    None,
    /// Scalar quantisation to one byte per dimension.
    Sq8,
    /// Product quantisation: `subspaces` codes of one byte each.
    Pq {
        /// Number of subspaces; must divide the dimension.
        subspaces: usize,
        /// Centroids per subspace (only 256 is supported: one byte per code).
        #[serde(default = "default_centroids")]
        centroids: usize,
    },
}

impl From<QuantizationConfig> for Quantization {
    fn from(q: QuantizationConfig) -> Quantization {
        match q {
            QuantizationConfig::None => Quantization::None,
            QuantizationConfig::Sq8 => Quantization::Sq8,
            QuantizationConfig::Pq { subspaces, centroids } => Quantization::Pq { subspaces, centroids },
        }
    }
}

fn default_centroids() -> usize {
    256
}

/// A collection's fixed configuration, persisted in its checkpoints and in
/// the log record that created it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// Vector dimension.
    pub dimension: usize,
    /// Distance metric.
    #[serde(with = "metric_name")]
    pub metric: Metric,
    /// HNSW `M`.
    pub m: usize,
    /// HNSW `efConstruction`.
    pub ef_construction: usize,
    /// Default search beam width.
    pub ef_search: usize,
    /// Quantisation used by searches.
    #[serde(default)]
    pub quantization: QuantizationConfig,
    /// With quantisation: `oversampling · k` candidates (rounded up) are
    /// rescored with full vectors. Default 4 (the index's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversampling: Option<f32>,
    /// Partitions a cluster cuts the collection into (recorded for the
    /// routers; the engine itself does not use it). `None` for a
    /// collection created without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
}

impl CollectionConfig {
    /// A configuration with the default HNSW parameters.
    pub fn new(dimension: usize, metric: Metric) -> Self {
        let p = HnswParams::default();
        CollectionConfig {
            dimension,
            metric,
            m: p.m,
            ef_construction: p.ef_construction,
            ef_search: p.ef_search,
            quantization: QuantizationConfig::None,
            oversampling: None,
            partitions: None,
        }
    }

    /// The index options this configuration stands for.
    pub fn index_options(&self) -> HnswOptions {
        let defaults = HnswOptions::default();
        HnswOptions {
            quantization: self.quantization.into(),
            oversampling: self.oversampling.map_or(defaults.oversampling, |o| o.ceil() as usize),
            ..defaults
        }
    }

    /// The index parameters this configuration stands for.
    pub fn hnsw_params(&self) -> HnswParams {
        HnswParams {
            m: self.m,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
            ..HnswParams::default()
        }
    }

    /// Checks the values against the engine's limits.
    pub(crate) fn validate(&self, limits: &Limits) -> Result<(), EngineError> {
        let invalid = |name, reason: String| Err(EngineError::InvalidParameter { name, reason });
        if self.dimension == 0 || self.dimension > limits.max_dimension {
            return invalid(
                "dimension",
                format!("must be between 1 and {}, got {}", limits.max_dimension, self.dimension),
            );
        }
        if !(2..=HnswParams::MAX_M).contains(&self.m) {
            return invalid("m", format!("must be between 2 and {}, got {}", HnswParams::MAX_M, self.m));
        }
        for (name, value) in [("ef_construction", self.ef_construction), ("ef_search", self.ef_search)] {
            if !(1..=HnswParams::MAX_EF).contains(&value) {
                return invalid(name, format!("must be between 1 and {}, got {value}", HnswParams::MAX_EF));
            }
        }
        if let Some(o) = self.oversampling
            && !(o.is_finite() && (1.0..=HnswOptions::MAX_OVERSAMPLING as f32).contains(&o))
        {
            return invalid(
                "oversampling",
                format!("must be between 1 and {}, got {o}", HnswOptions::MAX_OVERSAMPLING),
            );
        }
        if let QuantizationConfig::Pq { subspaces, centroids } = self.quantization {
            if subspaces == 0 || !self.dimension.is_multiple_of(subspaces) {
                return invalid(
                    "quantization.subspaces",
                    format!("must divide the dimension {}, got {subspaces}", self.dimension),
                );
            }
            if centroids != 256 {
                return invalid("quantization.centroids", format!("only 256 is supported, got {centroids}"));
            }
        }
        Ok(())
    }
}

/// A collection's configuration as the log and the checkpoints store it:
/// the fixed part and the declared payload indexes (which may grow).
/// Files written before payload indexes existed hold none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredConfig {
    #[serde(flatten)]
    pub(crate) config: CollectionConfig,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) payload_indexes: BTreeMap<String, PayloadIndexKind>,
}

/// Longest payload key a payload index may be declared on.
pub const MAX_PAYLOAD_KEY_BYTES: usize = 256;

/// Most payload indexes per collection.
pub const MAX_PAYLOAD_INDEXES: usize = 64;

/// Checks a payload key a payload index is declared on: 1 to
/// [`MAX_PAYLOAD_KEY_BYTES`] bytes, dotted parts not empty.
pub(crate) fn validate_payload_key(key: &str) -> Result<(), EngineError> {
    let invalid = |reason: String| Err(EngineError::InvalidParameter { name: "payload_indexes", reason });
    if key.is_empty() || key.len() > MAX_PAYLOAD_KEY_BYTES {
        return invalid(format!("a key has 1 to {MAX_PAYLOAD_KEY_BYTES} bytes, got {}", key.len()));
    }
    if key.split('.').any(str::is_empty) {
        return invalid(format!("key {key:?}: a dotted path has no empty part"));
    }
    Ok(())
}

mod metric_name {
    use ruvector_index::Metric;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(metric: &Metric, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(metric.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Bounds on what one request may ask of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest vector dimension a collection may have.
    pub max_dimension: usize,
    /// Most vectors in one upsert batch.
    pub max_batch: usize,
    /// Largest `k` of a search.
    pub max_k: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_dimension: 4096, max_batch: 10_000, max_k: 10_000 }
    }
}

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// A write is acknowledged only after its log record is durable
    /// (concurrent writers share one `fsync`).
    #[default]
    Always,
    /// The log is synced at most this many milliseconds after a write, which
    /// is acknowledged before that: a power failure may lose up to that
    /// window of acknowledged writes (a process crash loses nothing, the
    /// operating system still holds the data).
    IntervalMs(u64),
}

/// Configuration of an [`crate::Engine`].
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Directory holding the log and the collections.
    pub data_dir: PathBuf,
    /// Durability of acknowledged writes.
    pub fsync: Fsync,
    /// Checkpoint the collections once the log has grown by this many bytes
    /// since the last checkpoint.
    pub checkpoint_wal_bytes: u64,
    /// A collection's checkpoint deltas are merged into a new full
    /// checkpoint once they total more than the full one and at least this
    /// many bytes. Default 16 MiB.
    pub compact_min_bytes: u64,
    /// Size at which the log starts a new segment file; whole segments are
    /// deleted once every collection has a checkpoint past them.
    pub wal_segment_bytes: u64,
    /// Threads used to link one upsert batch into the graph.
    pub insert_threads: usize,
    /// Threads, at the lowest CPU priority, that link bulk copies
    /// (`Engine::upsert_bulk`: partition snapshots filling a new copy).
    /// Default: one per core (they only take CPU nothing else wants).
    pub bulk_threads: usize,
    /// Request limits.
    pub limits: Limits,
    /// A filtered search whose filter matches at most this many vectors
    /// scores them all exactly instead of walking the graph (see the
    /// `filtered` module). Default [`EngineConfig::DEFAULT_EXACT_FILTER_MAX`].
    pub exact_filter_max: usize,
}

impl EngineConfig {
    /// The default of `exact_filter_max`, calibrated on the 100k × 384-d
    /// set (BENCHMARKS.md §10): scoring every match cost about as much as a
    /// filtered walk at 2,500 matches (exact won at 1,000, the walk at
    /// 4,000).
    pub const DEFAULT_EXACT_FILTER_MAX: usize = 2500;

    /// Defaults for a data directory: fsync always, checkpoint every 256 MiB
    /// of log, one insert thread per core.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            fsync: Fsync::Always,
            checkpoint_wal_bytes: 256 << 20,
            compact_min_bytes: 16 << 20,
            wal_segment_bytes: 64 << 20,
            insert_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            bulk_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            limits: Limits::default(),
            exact_filter_max: Self::DEFAULT_EXACT_FILTER_MAX,
        }
    }
}

/// Whether `name` may name a collection (it becomes a directory name).
pub(crate) fn validate_name(name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(EngineError::InvalidName(name.to_owned())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted_to_safe_directory_names() {
        for good in ["a", "docs_2024", "A-b_C", &"x".repeat(255)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "..", ".", "a b", "é", "a\0", &"x".repeat(256)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let mut c = CollectionConfig::new(8, Metric::Euclidean);
        c.quantization = QuantizationConfig::Pq { subspaces: 4, centroids: 256 };
        let json = serde_json::to_string(&c).expect("serialise");
        assert!(json.contains("\"metric\":\"euclidean\""), "{json}");
        let back: CollectionConfig = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, c);
    }

    #[test]
    fn validation_rejects_out_of_range_values() {
        let limits = Limits::default();
        let ok = CollectionConfig::new(8, Metric::Cosine);
        assert!(ok.validate(&limits).is_ok());
        for bad in [
            CollectionConfig { dimension: 0, ..ok },
            CollectionConfig { dimension: limits.max_dimension + 1, ..ok },
            CollectionConfig { m: 1, ..ok },
            CollectionConfig { ef_search: 0, ..ok },
            CollectionConfig { oversampling: Some(0.5), ..ok },
            CollectionConfig { oversampling: Some(f32::NAN), ..ok },
            CollectionConfig { quantization: QuantizationConfig::Pq { subspaces: 3, centroids: 256 }, ..ok },
            CollectionConfig { quantization: QuantizationConfig::Pq { subspaces: 4, centroids: 16 }, ..ok },
        ] {
            assert!(bad.validate(&limits).is_err(), "{bad:?}");
        }
    }
}
