//! [`AppState`]: what every handler shares — the engine (once recovery has
//! finished), the limits, the API keys and the metrics.
//!
//! `/ready` also waits for every partition routers assigned this node to
//! have caught up (see `membership`).
//!
//! The engine slot starts empty when [`crate::serve`] binds the listener
//! before recovery; until [`AppState::set_engine`] fills it, collection
//! routes and `/ready` answer 503 `{"error":"recovering","code":"unavailable"}`.
//! It is filled at most once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use ruvector_api::{ApiError, Limits};
use ruvector_engine::Engine;

use crate::ServerConfig;
use crate::error::ServerError;
use crate::membership::Membership;
use crate::metrics::Metrics;
use ruvector_api::ApiKeys;

/// The shared state of the HTTP app. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: OnceLock<Arc<Engine>>,
    limits: Limits,
    auth: ApiKeys,
    metrics: Metrics,
    membership: OnceLock<Membership>,
    shutting_down: AtomicBool,
    release_grace: std::time::Duration,
}

impl AppState {
    /// State for a node whose engine is still being opened.
    pub fn new(config: &ServerConfig) -> Result<AppState, ServerError> {
        let auth = crate::auth::keys(config.api_key.as_deref(), config.read_only_api_key.as_deref())?;
        let metrics = Metrics::new().map_err(|e| ServerError::Config(format!("metrics registry: {e}")))?;
        Ok(AppState {
            inner: Arc::new(Inner {
                engine: OnceLock::new(),
                limits: config.limits,
                auth,
                metrics,
                membership: OnceLock::new(),
                shutting_down: AtomicBool::new(false),
                release_grace: std::time::Duration::from_millis(config.release_grace_ms),
            }),
        })
    }

    /// State for a node whose engine is open (tests, embedding).
    pub fn with_engine(config: &ServerConfig, engine: Arc<Engine>) -> Result<AppState, ServerError> {
        let state = AppState::new(config)?;
        state.set_engine(engine);
        Ok(state)
    }

    /// Makes the node ready. Later calls are ignored (the first engine
    /// stays).
    pub fn set_engine(&self, engine: Arc<Engine>) {
        if self.inner.engine.set(engine).is_err() {
            tracing::warn!("set_engine called twice; keeping the first engine");
        }
        self.inner.metrics.set_ready(!self.inner.shutting_down.load(Ordering::Acquire));
    }

    /// Loads the node's cluster assignment from `data_dir` (before the
    /// node serves its first request). Without it the node keeps an empty
    /// one in memory.
    pub(crate) fn load_membership(&self, data_dir: &std::path::Path) -> Result<(), ServerError> {
        let membership = Membership::load(data_dir).map_err(ServerError::Config)?;
        if self.inner.membership.set(membership).is_err() {
            tracing::warn!("cluster assignment loaded twice; keeping the first");
        }
        Ok(())
    }

    /// What routers assigned this node.
    pub(crate) fn membership(&self) -> &Membership {
        self.inner.membership.get_or_init(Membership::default)
    }

    /// The engine, once recovery has finished.
    pub fn engine(&self) -> Option<&Arc<Engine>> {
        self.inner.engine.get()
    }

    /// Marks the node as shutting down: `/ready` answers 503 from now on,
    /// so load balancers stop sending new requests.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        self.inner.metrics.set_ready(false);
    }

    /// The engine, or 503 while recovering.
    pub(crate) fn ready_engine(&self) -> Result<Arc<Engine>, ApiError> {
        self.engine().cloned().ok_or_else(|| ApiError::Unavailable("recovering".to_owned()))
    }

    /// `Ok` when `/ready` should answer 200.
    pub(crate) fn readiness(&self) -> Result<(), ApiError> {
        self.ready_engine()?;
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(ApiError::Unavailable("shutting down".to_owned()));
        }
        // A rolling restart must not stop the next copy of a partition
        // while this one is still catching up.
        match self.membership().filling() {
            0 => Ok(()),
            n => Err(ApiError::Unavailable(format!("catching up: {n} partition copies are filling"))),
        }
    }

    /// How long moved-away data is kept before it is dropped.
    pub(crate) fn release_grace(&self) -> std::time::Duration {
        self.inner.release_grace
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) fn auth(&self) -> &ApiKeys {
        &self.inner.auth
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}
