//! The node's configuration ([`ServerConfig`]) and its translation into the
//! engine's ([`EngineConfig`]).
//!
//! Every field has a default, so an empty TOML table (or `{}`) is a valid
//! configuration; the CLI layers its file, environment and flags on top.
//! Unknown fields are ignored here (the CLI may embed this struct in a
//! larger one); the nested `limits` table rejects unknown fields.

use std::path::PathBuf;

use ruvector_api::Limits;
use ruvector_engine::{EngineConfig, Fsync};
use serde::{Deserialize, Serialize};

/// Configuration of one node (`ruvector serve`). Its `Debug` output
/// redacts the API keys.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to listen on: `host:port`, `[v6]:port`, or `:port` meaning
    /// every interface (`0.0.0.0:port`, the seed's form). Port 0 picks a
    /// free port; the bound address is printed on stdout. Default
    /// `127.0.0.1:8080`.
    pub addr: String,
    /// Directory holding the write-ahead log and the collections. Created
    /// if missing. Default `./data`.
    pub data_dir: PathBuf,
    /// Read-write API key. When this or `read_only_api_key` is set, every
    /// collection route needs a key (header `api-key: <key>` or
    /// `Authorization: Bearer <key>`). Default: none.
    pub api_key: Option<String>,
    /// Read-only API key: allows `GET` routes and searches, answers 403 to
    /// writes. Default: none.
    pub read_only_api_key: Option<String>,
    /// Request limits (body size, batch sizes, `k`, `ef`, dimension, …).
    pub limits: Limits,
    /// Durability and checkpointing.
    pub storage: StorageConfig,
    /// On shutdown, how long to wait for in-flight requests before
    /// checkpointing anyway. Default 30.
    pub shutdown_timeout_secs: u64,
    /// In a cluster: how long the data of a partition moved off this node
    /// is kept (out of every read and write already) before it is
    /// dropped, so requests routed before the move ended finish on intact
    /// data. Milliseconds; default 5000.
    pub release_grace_ms: u64,
    /// A filtered search whose filter matches at most this many vectors
    /// (as the payload indexes count them) scores them all exactly instead
    /// of walking the graph. Default 2500 (calibrated: BENCHMARKS.md §10).
    pub exact_filter_max: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./data"),
            api_key: None,
            read_only_api_key: None,
            limits: Limits::default(),
            storage: StorageConfig::default(),
            shutdown_timeout_secs: 30,
            release_grace_ms: 5000,
            exact_filter_max: EngineConfig::DEFAULT_EXACT_FILTER_MAX,
        }
    }
}

/// Durability settings, passed to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `"always"` (default: a write is acknowledged only once its log
    /// record is on disk) or `{interval_ms = N}` (the log is synced every N
    /// ms and writes are acknowledged before that; a power cut can lose the
    /// last N ms of acknowledged writes, a process crash loses nothing).
    pub fsync: Fsync,
    /// Checkpoint once the log has grown by this many bytes. Default 256 MiB.
    pub checkpoint_wal_bytes: u64,
    /// Threads that link one upsert batch into the graph. Default: one per
    /// core.
    pub insert_threads: Option<usize>,
    /// Threads, at the lowest CPU priority, that link the vectors of a
    /// partition snapshot filling a new copy (a move or a rebuilt
    /// replica). Default: one per core.
    pub bulk_link_threads: Option<usize>,
    /// Seconds between background checkpoint rounds (0 disables them).
    /// Default 5. A round writes a delta of each changed collection whose
    /// delta is worth its bytes (see `docs/ARCHITECTURE.md`).
    pub checkpoint_interval_secs: u64,
    /// Merge a collection's checkpoint deltas into one full checkpoint once
    /// they outgrow it and reach this many bytes. Default 16 MiB.
    pub compact_min_bytes: u64,
    /// Size at which the write-ahead log starts a new segment file.
    /// Default 64 MiB (the log is cut by whole segments after checkpoints).
    pub wal_segment_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            fsync: Fsync::Always,
            checkpoint_wal_bytes: 256 << 20,
            insert_threads: None,
            bulk_link_threads: None,
            checkpoint_interval_secs: 5,
            compact_min_bytes: 16 << 20,
            wal_segment_bytes: 64 << 20,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |k: &Option<String>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("api_key", &redact(&self.api_key))
            .field("read_only_api_key", &redact(&self.read_only_api_key))
            .field("limits", &self.limits)
            .field("storage", &self.storage)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("release_grace_ms", &self.release_grace_ms)
            .field("exact_filter_max", &self.exact_filter_max)
            .finish()
    }
}

impl ServerConfig {
    /// The address to bind: `:port` becomes `0.0.0.0:port`; anything else
    /// is passed on as given (host names are resolved when binding).
    pub fn bind_addr(&self) -> String {
        let addr = self.addr.trim();
        match addr.strip_prefix(':') {
            Some(port) => format!("0.0.0.0:{port}"),
            None => addr.to_owned(),
        }
    }

    /// The engine's configuration. The engine's own limits follow the
    /// API's.
    pub fn engine_config(&self) -> EngineConfig {
        let mut config = EngineConfig::new(&self.data_dir);
        config.fsync = self.storage.fsync;
        config.checkpoint_wal_bytes = self.storage.checkpoint_wal_bytes;
        config.compact_min_bytes = self.storage.compact_min_bytes;
        config.wal_segment_bytes = self.storage.wal_segment_bytes.max(1);
        if let Some(threads) = self.storage.insert_threads {
            config.insert_threads = threads.max(1);
        }
        if let Some(threads) = self.storage.bulk_link_threads {
            config.bulk_threads = threads.max(1);
        }
        config.limits.max_dimension = self.limits.max_dimension;
        config.limits.max_batch = self.limits.max_batch;
        config.limits.max_k = self.limits.max_k;
        config.exact_filter_max = self.exact_filter_max;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_partial_tables() {
        let c: ServerConfig = serde_json::from_str("{}").expect("empty");
        assert_eq!(c, ServerConfig::default());
        assert_eq!(c.bind_addr(), "127.0.0.1:8080");
        let c: ServerConfig = serde_json::from_str(
            r#"{"addr":":9000","storage":{"fsync":{"interval_ms":5}},"limits":{"max_k":7},"other":1}"#,
        )
        .expect("partial");
        assert_eq!(c.bind_addr(), "0.0.0.0:9000");
        assert_eq!(c.storage.fsync, Fsync::IntervalMs(5));
        assert_eq!(c.limits.max_k, 7);
        assert_eq!(c.shutdown_timeout_secs, 30);
        let c: ServerConfig = serde_json::from_str(r#"{"storage":{"fsync":"always"}}"#).expect("always");
        assert_eq!(c.storage.fsync, Fsync::Always);
        assert!(serde_json::from_str::<ServerConfig>(r#"{"limits":{"max_kk":1}}"#).is_err());
    }

    #[test]
    fn keys_are_redacted_in_debug_output() {
        let c = ServerConfig {
            api_key: Some("secret-rw".into()),
            read_only_api_key: Some("secret-ro".into()),
            ..ServerConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn engine_config_follows_the_server_config() {
        let c = ServerConfig {
            data_dir: "/tmp/x".into(),
            storage: StorageConfig {
                fsync: Fsync::IntervalMs(3),
                checkpoint_wal_bytes: 99,
                insert_threads: Some(0),
                bulk_link_threads: Some(2),
                checkpoint_interval_secs: 1,
                compact_min_bytes: 7,
                wal_segment_bytes: 4096,
            },
            limits: Limits { max_dimension: 10, max_batch: 5, ..Limits::default() },
            ..ServerConfig::default()
        };
        let e = c.engine_config();
        assert_eq!(e.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!((e.fsync, e.checkpoint_wal_bytes, e.insert_threads), (Fsync::IntervalMs(3), 99, 1));
        assert_eq!((e.compact_min_bytes, e.bulk_threads, e.wal_segment_bytes), (7, 2, 4096));
        assert_eq!((e.limits.max_dimension, e.limits.max_batch), (10, 5));
        assert_eq!(e.limits.max_k, c.limits.max_k);
        assert_eq!(e.exact_filter_max, EngineConfig::DEFAULT_EXACT_FILTER_MAX);
    }
}
