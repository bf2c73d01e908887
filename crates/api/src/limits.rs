//! Request limits shared by the node and the router.
//!
//! [`Limits`] deserializes with every field optional (missing fields take the
//! documented default), so it can sit in the CLI's figment config as a
//! `[limits]` table. Unknown fields are rejected to catch typos.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Upper bounds on what one request may ask for.
///
/// The defaults are chosen so that no single valid request can take a node
/// down: a batch of `max_batch` vectors of `max_dimension` floats already
/// needs about 650 MB of `f32`, which is why `max_body_bytes` (64 MiB) is the
/// limit that binds first for large vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest collection dimension. Default 16 384: above every current
    /// embedding model (OpenAI's largest is 3 072) with margin.
    pub max_dimension: usize,
    /// Most vectors in one upsert batch. Default 10 000.
    pub max_batch: usize,
    /// Most searches in one batch search. Default 1 024.
    pub max_search_batch: usize,
    /// Largest `k` of a search. Default 10 000.
    pub max_k: usize,
    /// Largest `ef` / `ef_search` / `ef_construction`. Default 65 536.
    pub max_ef: usize,
    /// Largest HNSW `M` (layer 0 uses 2·M). Default 128.
    pub max_m: usize,
    /// Largest request body in bytes (enforced by the server before
    /// parsing). Default 64 MiB.
    pub max_body_bytes: usize,
    /// Most ids one `GET /collections/{name}/ids` page may return (and the
    /// largest accepted `limit`). Default 10 000.
    pub max_page: usize,
    /// The page size when `limit` is not given. Default 1 000.
    pub default_page: usize,
    /// Milliseconds a client has to send a complete request head (request
    /// line and headers), counted from when the server starts waiting for
    /// one: on a new connection, and on a kept-alive connection once the
    /// previous response is sent. So it is also how long an idle
    /// connection stays open. Past it the connection is closed without an
    /// answer. Default 60 000.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a client has to send a whole request body, counted from
    /// when the handler starts reading it; past it the answer is 408
    /// `request_timeout` and the connection is closed. Default 120 000 (a
    /// `max_body_bytes` body at about 4 Mbit/s). The partition snapshot a
    /// router streams to a shard is exempt (it is as long as the data).
    pub body_read_timeout_ms: u64,
}

impl Limits {
    /// Default `max_dimension`.
    pub const DEFAULT_MAX_DIMENSION: usize = 16_384;
    /// Default `max_batch`.
    pub const DEFAULT_MAX_BATCH: usize = 10_000;
    /// Default `max_search_batch`.
    pub const DEFAULT_MAX_SEARCH_BATCH: usize = 1_024;
    /// Default `max_k`.
    pub const DEFAULT_MAX_K: usize = 10_000;
    /// Default `max_ef`.
    pub const DEFAULT_MAX_EF: usize = 65_536;
    /// Default `max_m`.
    pub const DEFAULT_MAX_M: usize = 128;
    /// Default `max_body_bytes` (64 MiB).
    pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
    /// Default `max_page`.
    pub const DEFAULT_MAX_PAGE: usize = 10_000;
    /// Default `default_page`.
    pub const DEFAULT_PAGE: usize = 1_000;
    /// Default `header_read_timeout_ms`.
    pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 60_000;
    /// Default `body_read_timeout_ms`.
    pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 120_000;

    /// `header_read_timeout_ms` as a duration.
    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.header_read_timeout_ms)
    }

    /// `body_read_timeout_ms` as a duration.
    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.body_read_timeout_ms)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_dimension: Self::DEFAULT_MAX_DIMENSION,
            max_batch: Self::DEFAULT_MAX_BATCH,
            max_search_batch: Self::DEFAULT_MAX_SEARCH_BATCH,
            max_k: Self::DEFAULT_MAX_K,
            max_ef: Self::DEFAULT_MAX_EF,
            max_m: Self::DEFAULT_MAX_M,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            max_page: Self::DEFAULT_MAX_PAGE,
            default_page: Self::DEFAULT_PAGE,
            header_read_timeout_ms: Self::DEFAULT_HEADER_READ_TIMEOUT_MS,
            body_read_timeout_ms: Self::DEFAULT_BODY_READ_TIMEOUT_MS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_defaults() {
        let l: Limits = serde_json::from_str(r#"{"max_k": 5}"#).expect("parse");
        assert_eq!(l, Limits { max_k: 5, ..Limits::default() });
        let l: Limits = serde_json::from_str("{}").expect("parse");
        assert_eq!(l, Limits::default());
        assert_eq!(l.max_body_bytes, 67_108_864);
        assert_eq!((l.header_read_timeout_ms, l.body_read_timeout_ms), (60_000, 120_000));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<Limits>(r#"{"max_kk": 5}"#).is_err());
    }
}
