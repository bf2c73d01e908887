//! `ruvector-router`: the stateless cluster router. It serves the same REST
//! API as a single node (so every client works unchanged) over a set of
//! shard nodes (`ruvector serve`), knowing nothing about HNSW or files —
//! it depends on `ruvector-api` only, never on the engine, storage or index.
//!
//! - placement: partitions of each collection placed on shards by
//!   rendezvous hashing ([`Ring::placement`], the desired placement), and
//!   the placement *now* learned from the shards (`layout`), which routing
//!   follows while partitions move; older collections keep the per-id ring;
//! - collection create/delete: broadcast, idempotent (`decide`);
//! - upserts and deletes: validated once here, versioned, sent to every copy
//!   in parallel, acknowledged at `write_quorum`;
//! - get by id: the id's copies in preference order;
//! - search, batch search, id scroll: every shard concurrently, merged with
//!   `SearchHit::merge_top_k` / `IdsPage::merge`;
//! - the sync (`membership`): assignments, catch-up of filling copies, moves
//!   toward the desired placement; anti-entropy and tombstone purges
//!   (`repair`);
//! - failures: per-shard connect and request timeouts; a request whose
//!   partitions other copies cover survives a down shard; otherwise 503
//!   naming it, or, with `"allow_partial": true` in a search, the live
//!   shards' results and the `x-ruvector-partial: true` header;
//! - `/health` (own liveness), `/ready` (at least one shard has recovered),
//!   `/cluster` (shards, placement, moves), `/metrics` (Prometheus),
//!   `/openapi.json`.
//!
//! Entry points: [`serve`] (what the CLI runs) and [`app`] over a
//! [`RouterState`] (what tests run on port 0). Module map: `config`
//! (settings and defaults), `ring` (desired placement), `layout` (placement
//! now), `clock` (write versions), `membership` (the sync), `repair`
//! (anti-entropy), `shard` (the HTTP client and
//! shard health), `service` (the operations), `decide` (pure combination
//! rules), `cache` (collection shapes for validation), `auth`, `metrics`,
//! `http` (routes and handlers), `openapi` (the served document), `error`.

mod auth;
mod cache;
mod clock;
mod config;
mod decide;
mod error;
mod http;
mod layout;
mod membership;
mod metrics;
mod openapi;
mod repair;
mod ring;
mod service;
mod shard;

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

pub use config::RouterConfig;
pub use error::{HttpError, RouterError};
pub use http::app;
pub use membership::SyncReport;
pub use repair::RepairReport;
pub use ring::Ring;
pub use service::{ClusterStatus, CollectionPlacement, MoveStatus, ShardStatus};

use crate::metrics::Metrics;
use crate::service::Service;
use crate::shard::ShardClient;
use ruvector_api::ApiKeys;

/// Everything a request handler needs, shared by all of them (cheap to
/// clone). Built once from a [`RouterConfig`].
#[derive(Debug, Clone)]
pub struct RouterState {
    service: Arc<Service>,
    auth: Arc<ApiKeys>,
}

impl RouterState {
    /// Validates `config`, builds the ring, the shard client and the
    /// metrics. Talks to no shard (readiness is checked per request).
    pub fn new(config: RouterConfig) -> Result<Self, RouterError> {
        config.validate()?;
        let addresses = config.shard_addresses()?;
        let drain = config.drain_addresses()?;
        let ring = Ring::new(&addresses, config.vnodes);
        // The desired placement is over the shards that are not draining.
        let active = (!drain.is_empty()).then(|| {
            let kept: Vec<usize> = (0..addresses.len()).filter(|&i| !drain.contains(&addresses[i])).collect();
            let kept_addresses: Vec<String> = kept.iter().map(|&i| addresses[i].clone()).collect();
            (Ring::new(&kept_addresses, config.vnodes), kept)
        });
        let metrics = Metrics::new(&addresses)?;
        let client = ShardClient::new(addresses, &config)?;
        // Blank keys were refused when the configuration was checked.
        let auth = ApiKeys::new(config.api_key.as_deref(), config.read_only_api_key.as_deref())
            .map_err(|e| RouterError::Config(e.to_string()))?;
        if auth.read_only_only() {
            tracing::warn!("only read_only_api_key is configured: every write will be refused");
        }
        Ok(RouterState { service: Arc::new(Service::new(config, ring, active, client, metrics)), auth: Arc::new(auth) })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RouterConfig {
        &self.service.config
    }

    /// The placement ring (e.g. for tests that check where an id lives).
    pub fn ring(&self) -> &Ring {
        &self.service.ring
    }

    /// The normalised shard addresses, in configuration order (the ring's
    /// owner indexes point into this list).
    pub fn shard_addresses(&self) -> Vec<String> {
        (0..self.service.client.len()).map(|i| self.service.client.address(i).to_owned()).collect()
    }

    pub(crate) fn service(&self) -> &Service {
        &self.service
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.service.metrics
    }

    pub(crate) fn auth(&self) -> &ApiKeys {
        &self.auth
    }

    pub(crate) fn limits(&self) -> &ruvector_api::Limits {
        &self.service.config.limits
    }

    /// Syncs shards' assignments and catches up filling copies every
    /// `interval`, and at once when a request meets a filling copy or a
    /// write misses one, until dropped. The sync's reads of every shard
    /// double as the health probe: the shard-up gauge and `/cluster` stay
    /// fresh without traffic.
    async fn sync_loop(self, interval: Duration) {
        loop {
            self.service.sync().await;
            // A wake-up during the sync is kept by `Notify` for this wait.
            let _ = tokio::time::timeout(interval, self.service.wake.notified()).await;
        }
    }

    /// Runs an anti-entropy pass every `interval` until dropped.
    async fn repair_loop(self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            self.service.repair().await;
        }
    }
}

/// Binds `config.addr`, prints exactly one line to stdout,
/// `ruvector router listening on http://<bound addr>`, and serves
/// (HTTP/1.1, with the client timeouts of `limits`: see
/// `ruvector_api::http_serve`) until `shutdown` completes; then stops
/// accepting, lets in-flight requests finish, and returns.
pub async fn serve(
    config: RouterConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RouterError> {
    let state = RouterState::new(config)?;
    let addr = state.config().bind_addr();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| RouterError::Bind { addr: addr.clone(), source })?;
    let bound = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ruvector router listening on http://{bound}")?;
        out.flush()?;
    }
    tracing::info!(%bound, shards = ?state.shard_addresses(), "router started");
    let interval = state.config().health_interval_ms;
    let sync = (interval > 0).then(|| tokio::spawn(state.clone().sync_loop(Duration::from_millis(interval))));
    let every = state.config().repair_interval_ms;
    let repair = (every > 0).then(|| tokio::spawn(state.clone().repair_loop(Duration::from_millis(every))));
    let limits = *state.limits();
    let served = ruvector_api::http_serve::serve_http1(listener, app(state), &limits, shutdown).await;
    for task in [sync, repair].into_iter().flatten() {
        task.abort();
    }
    served?;
    tracing::info!("router stopped");
    Ok(())
}
