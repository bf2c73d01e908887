//! [`RouterConfig`]: what the router is told at startup, with serde
//! defaults so that a figment/TOML/env layer can fill in only what it knows.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `addr` | `127.0.0.1:8080` | listen address; `:8080` means `0.0.0.0:8080` |
//! | `shards` | `[]` (must be set) | shard base URLs; `host:port` without a scheme means `http://host:port` |
//! | `connect_timeout_ms` | 1000 | TCP connect timeout per shard request |
//! | `request_timeout_ms` | 10000 | whole-request timeout per shard request |
//! | `vnodes` | 2048 | virtual nodes per shard on the placement ring |
//! | `api_key` | none | read-write key (checked here, forwarded to shards) |
//! | `read_only_api_key` | none | read-only key (checked here, forwarded to shards) |
//! | `collection_cache_ms` | 5000 | how long a collection's dimension/metric is cached (0: never) |
//! | `health_interval_ms` | 1000 | period of the background sync in [`crate::serve`]: shard health, assignments, catch-up of filling copies (0: off) |
//! | `limits` | `Limits::default()` | the same request limits as a node (`[limits]` table), client timers included (`header_read_timeout_ms` 60000: request head, and idle connections; `body_read_timeout_ms` 120000: whole body, else 408) |
//! | `replication_factor` | 1 | copies of every partition (on distinct shards) of collections created through a router |
//! | `repair_interval_ms` | 30000 | period of the anti-entropy pass (0: off) |
//! | `tombstone_grace_ms` | 300000 | a tombstone held by every copy of its partition is purged once older than this (bounds how late a write may arrive) |
//! | `tombstone_horizon_ms` | 86400000 | tombstones older than this are purged even while a copy of their partition is down; such a copy rejoins by dropping what its peers deleted (0: never) |
//! | `drain` | `[]` | shards (addresses from `shards`) to empty: their partitions move to the others; `GET /cluster` says when they may be removed |
//! | `write_quorum` | 1 | durable copies a write needs before it is acknowledged (1..=`replication_factor`) |
//!
//! Invariant after [`RouterConfig::shard_addresses`] succeeded: at least one
//! shard, every address an `http://` URL with a host and nothing after the
//! port, no duplicates. Placement is keyed by these normalised addresses,
//! so every router given the same list (in any order) places ids alike.

use std::time::Duration;

use reqwest::Url;
use ruvector_api::Limits;
use serde::{Deserialize, Deserializer, Serialize};

use crate::RouterError;

/// Accepts `["a", "b"]` or `"a,b"`.
fn list_or_comma_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shards {
        List(Vec<String>),
        Joined(String),
    }
    Ok(match Shards::deserialize(d)? {
        Shards::List(list) => list,
        Shards::Joined(joined) => {
            joined.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
    })
}

/// The router's configuration. Every field has a default (see the module
/// docs), except that `shards` must not be empty.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Listen address, default `127.0.0.1:8080`; `:8080` means `0.0.0.0:8080`.
    pub addr: String,
    /// Shard base URLs, e.g. `http://ruvector-shard-0.ruvector-shard-headless:8080`;
    /// a list, or one comma-separated string (handy in environment variables).
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub shards: Vec<String>,
    /// TCP connect timeout per shard request in milliseconds, default 1000.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout per shard request in milliseconds, default 10 000.
    pub request_timeout_ms: u64,
    /// Virtual nodes per shard on the hash ring, default 2048 (100k ids over
    /// 3 shards land within ±3 % of the mean; see `ring`'s docs).
    pub vnodes: usize,
    /// The read-write API key; when set (or `read_only_api_key` is), every
    /// collection route needs a key, exactly as on a node.
    pub api_key: Option<String>,
    /// The read-only API key (reads and searches only).
    pub read_only_api_key: Option<String>,
    /// How long a collection's dimension and metric (used to validate
    /// upserts and searches at the router) are cached, in milliseconds.
    /// Default 5000; 0 disables the cache.
    pub collection_cache_ms: u64,
    /// Period of the background sync with every shard, in milliseconds:
    /// it probes their health (the shard up/down gauge and `GET /cluster`
    /// stay fresh without traffic), pushes their assignments and catches up
    /// filling copies. Default 1000; 0 disables it (copies then stay
    /// filling after a restart: only for tests).
    pub health_interval_ms: u64,
    /// Request limits, as on a node.
    pub limits: Limits,
    /// Copies of every partition, each on a distinct shard (capped at the
    /// shard count). Default 1. With 2 or more, searches and reads go on
    /// while a shard is down.
    pub replication_factor: usize,
    /// Copies that must durably apply a write before it is acknowledged;
    /// `None` (default) means one. Every copy is sent the write in
    /// parallel and the router waits for all that are up, so the quorum
    /// only matters while a copy is down or failing: with 1, writes go on
    /// and that copy is caught up when it is back (see
    /// docs/ARCHITECTURE.md); with `replication_factor`, they fail instead.
    pub write_quorum: Option<usize>,
    /// Milliseconds between anti-entropy passes that bring diverged copies
    /// back in line (0: off; `POST /cluster/repair` runs one on demand).
    /// Default 30 000.
    pub repair_interval_ms: u64,
    /// Age (ms) after which a tombstone that every copy of its partition
    /// holds is purged by the anti-entropy pass. It must exceed the longest
    /// a write can be in flight (request timeouts): a write older than a
    /// purged tombstone would otherwise bring the vector back. Default
    /// 300 000 (5 minutes).
    pub tombstone_grace_ms: u64,
    /// Age (ms) after which tombstones are purged even while a copy of their
    /// partition is unreachable (0: never). A copy that comes back later
    /// drops every vector older than the purge that its peers lack (they
    /// were deleted meanwhile) — and so loses writes only it had
    /// acknowledged before going down. Default 86 400 000 (one day).
    pub tombstone_horizon_ms: u64,
    /// Shards to empty before they are removed (scale-in): addresses that
    /// are also in `shards`. They stay in the cluster (their copies are
    /// read and written) while the placement moves every partition they
    /// hold to the other shards; `GET /cluster` marks them `removable`
    /// once they hold nothing. Default empty.
    pub drain: Vec<String>,
    /// Largest shard response body the router reads (bytes): a shard that
    /// sends more is treated as failed for that request, so a misbehaving
    /// shard cannot exhaust the router's memory. Default 268 435 456
    /// (256 MiB, four times the default request body limit).
    pub max_shard_response_bytes: usize,
}

impl RouterConfig {
    /// Default `addr`.
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:8080";
    /// Default `connect_timeout_ms`.
    pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 1000;
    /// Default `request_timeout_ms`.
    pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
    /// Default `vnodes`.
    pub const DEFAULT_VNODES: usize = 2048;
    /// Largest accepted `vnodes` (the ring has `vnodes × shards` entries).
    pub const MAX_VNODES: usize = 65_536;
    /// Default `collection_cache_ms`.
    pub const DEFAULT_COLLECTION_CACHE_MS: u64 = 5000;
    /// Default `health_interval_ms`.
    pub const DEFAULT_HEALTH_INTERVAL_MS: u64 = 1000;
    /// Default `max_shard_response_bytes`.
    pub const DEFAULT_MAX_SHARD_RESPONSE_BYTES: usize = 256 << 20;

    /// Copies a write needs: `write_quorum`, or one.
    pub fn write_acks(&self) -> usize {
        self.write_quorum.unwrap_or(1)
    }

    /// A configuration with every default and the given shards.
    pub fn with_shards(shards: impl IntoIterator<Item = impl Into<String>>) -> Self {
        RouterConfig { shards: shards.into_iter().map(Into::into).collect(), ..RouterConfig::default() }
    }

    /// The address to bind: `:port` becomes `0.0.0.0:port`.
    pub fn bind_addr(&self) -> String {
        match self.addr.strip_prefix(':') {
            Some(port) => format!("0.0.0.0:{port}"),
            None => self.addr.clone(),
        }
    }

    /// The shard URLs, normalised (see the module invariant), in the
    /// configured order.
    pub fn shard_addresses(&self) -> Result<Vec<String>, RouterError> {
        if self.shards.is_empty() {
            return Err(RouterError::Config("shards: at least one shard URL is required".to_owned()));
        }
        let mut out: Vec<String> = Vec::with_capacity(self.shards.len());
        for (i, raw) in self.shards.iter().enumerate() {
            let address =
                normalize_shard(raw).map_err(|why| RouterError::Config(format!("shards[{i}] {raw:?}: {why}")))?;
            if let Some(j) = out.iter().position(|a| *a == address) {
                return Err(RouterError::Config(format!("shards[{i}] {raw:?}: the same shard as shards[{j}]")));
            }
            out.push(address);
        }
        Ok(out)
    }

    /// The shards to drain, normalised: each must be one of `shards`, and
    /// enough must stay for `replication_factor` copies.
    pub fn drain_addresses(&self) -> Result<Vec<String>, RouterError> {
        let shards = self.shard_addresses()?;
        let mut out = Vec::with_capacity(self.drain.len());
        for raw in &self.drain {
            let address = normalize_shard(raw).map_err(|e| RouterError::Config(format!("drain entry {raw:?}: {e}")))?;
            if !shards.contains(&address) {
                return Err(RouterError::Config(format!("drain entry {address} is not one of the shards")));
            }
            if !out.contains(&address) {
                out.push(address);
            }
        }
        if shards.len() - out.len() < self.replication_factor {
            return Err(RouterError::Config(format!(
                "draining {} of {} shards leaves fewer than replication_factor {} to hold the copies",
                out.len(),
                shards.len(),
                self.replication_factor
            )));
        }
        Ok(out)
    }

    /// Checks everything but the shard list (see [`Self::shard_addresses`]).
    pub(crate) fn validate(&self) -> Result<(), RouterError> {
        let bad = |m: String| Err(RouterError::Config(m));
        if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return bad("connect_timeout_ms and request_timeout_ms must be positive".to_owned());
        }
        if !(1..=Self::MAX_VNODES).contains(&self.vnodes) {
            return bad(format!("vnodes must be between 1 and {}, got {}", Self::MAX_VNODES, self.vnodes));
        }
        if self.replication_factor == 0 {
            return bad("replication_factor must be at least 1".to_owned());
        }
        if !self.shards.is_empty() && self.replication_factor > self.shards.len() {
            return bad(format!(
                "replication_factor {} exceeds the {} configured shards (copies live on distinct shards)",
                self.replication_factor,
                self.shards.len()
            ));
        }
        if let Some(w) = self.write_quorum
            && !(1..=self.replication_factor).contains(&w)
        {
            return bad(format!(
                "write_quorum must be between 1 and replication_factor {}, got {w}",
                self.replication_factor
            ));
        }
        if self.tombstone_horizon_ms != 0 && self.tombstone_horizon_ms < self.tombstone_grace_ms {
            return bad(format!(
                "tombstone_horizon_ms ({}) must be 0 or at least tombstone_grace_ms ({})",
                self.tombstone_horizon_ms, self.tombstone_grace_ms
            ));
        }
        for (name, key) in [("api_key", &self.api_key), ("read_only_api_key", &self.read_only_api_key)] {
            if key.as_deref().is_some_and(|k| k.trim().is_empty()) {
                return bad(format!("{name} must not be empty"));
            }
        }
        Ok(())
    }

    /// `connect_timeout_ms` as a duration.
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// `request_timeout_ms` as a duration.
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// `http://host[:port]` without a trailing slash; a bare `host:port` gets
/// `http://`. Only plain HTTP (the router is built without TLS).
fn normalize_shard(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("http://{raw}") };
    let url = Url::parse(&with_scheme).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!("scheme {:?} is not supported (shards are reached over plain http)", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".to_owned());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("expected only scheme, host and port (no path, query or credentials)".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            addr: Self::DEFAULT_ADDR.to_owned(),
            shards: Vec::new(),
            connect_timeout_ms: Self::DEFAULT_CONNECT_TIMEOUT_MS,
            request_timeout_ms: Self::DEFAULT_REQUEST_TIMEOUT_MS,
            vnodes: Self::DEFAULT_VNODES,
            api_key: None,
            read_only_api_key: None,
            collection_cache_ms: Self::DEFAULT_COLLECTION_CACHE_MS,
            health_interval_ms: Self::DEFAULT_HEALTH_INTERVAL_MS,
            limits: Limits::default(),
            replication_factor: 1,
            write_quorum: None,
            repair_interval_ms: 30_000,
            tombstone_grace_ms: 300_000,
            tombstone_horizon_ms: 86_400_000,
            drain: Vec::new(),
            max_shard_response_bytes: Self::DEFAULT_MAX_SHARD_RESPONSE_BYTES,
        }
    }
}

impl std::fmt::Debug for RouterConfig {
    /// Keys are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |k: &Option<String>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("RouterConfig")
            .field("addr", &self.addr)
            .field("shards", &self.shards)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("vnodes", &self.vnodes)
            .field("replication_factor", &self.replication_factor)
            .field("write_quorum", &self.write_quorum)
            .field("api_key", &redact(&self.api_key))
            .field("read_only_api_key", &redact(&self.read_only_api_key))
            .field("collection_cache_ms", &self.collection_cache_ms)
            .field("health_interval_ms", &self.health_interval_ms)
            .field("repair_interval_ms", &self.repair_interval_ms)
            .field("tombstone_grace_ms", &self.tombstone_grace_ms)
            .field("tombstone_horizon_ms", &self.tombstone_horizon_ms)
            .field("drain", &self.drain)
            .field("limits", &self.limits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c: RouterConfig = serde_json::from_str(r#"{"shards":["http://a:1"]}"#).expect("parse");
        assert_eq!(c, RouterConfig::with_shards(["http://a:1"]));
        assert_eq!(c.addr, "127.0.0.1:8080");
        assert_eq!((c.connect_timeout_ms, c.request_timeout_ms, c.vnodes), (1000, 10_000, 2048));
        assert_eq!(c.limits, Limits::default());
        assert!(serde_json::from_str::<RouterConfig>(r#"{"shard":[]}"#).is_err());
        let c: RouterConfig = serde_json::from_str(r#"{"limits":{"max_k":5}}"#).expect("parse");
        assert_eq!(c.limits.max_k, 5);
    }

    #[test]
    fn bind_addr() {
        let c = RouterConfig { addr: ":9000".into(), ..RouterConfig::default() };
        assert_eq!(c.bind_addr(), "0.0.0.0:9000");
        assert_eq!(RouterConfig::default().bind_addr(), "127.0.0.1:8080");
    }

    #[test]
    fn shard_addresses_are_normalised_and_checked() {
        let c = RouterConfig::with_shards(["http://Shard-0.svc:8080/", "shard-1.svc:8080", " http://127.0.0.1:9 "]);
        assert_eq!(
            c.shard_addresses().expect("valid"),
            ["http://shard-0.svc:8080", "http://shard-1.svc:8080", "http://127.0.0.1:9"]
        );
        for bad in [
            vec![],
            vec!["https://a:1"],
            vec!["http://a:1/x"],
            vec!["http://a:1", "a:1"],
            vec!["http://"],
            vec!["http://u:p@a:1"],
        ] {
            assert!(RouterConfig::with_shards(bad.clone()).shard_addresses().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validation_and_redaction() {
        let mut c = RouterConfig::with_shards(["a:1"]);
        assert!(c.validate().is_ok());
        c.vnodes = 0;
        assert!(c.validate().is_err());
        c.vnodes = 1;
        c.api_key = Some(" ".into());
        assert!(c.validate().is_err());
        c.api_key = Some("s3cret".into());
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
