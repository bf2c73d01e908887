//! Errors: [`RouterError`] (why [`crate::serve`] or [`crate::RouterState::new`]
//! failed) and [`HttpError`], the one response type of every failed request.
//!
//! Invariant: a 5xx body never carries internal detail. `ApiError::Internal`
//! shows a generic message; its detail is logged here, where the error
//! becomes a response. A shard outage is `ApiError::Unavailable`, whose
//! message (naming the shard and the cause, e.g. "connection refused") is
//! meant for the client.

use axum::Json;
use axum::response::{IntoResponse, Response};
use ruvector_api::ApiError;

/// Why the router could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The configuration is unusable (no shards, a bad URL, an empty key…).
    #[error("invalid router configuration: {0}")]
    Config(String),
    /// The HTTP client for the shards could not be built.
    #[error("cannot build the shard HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The metrics registry rejected a metric (a bug).
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as bound (after `:port` expansion).
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing the startup line, or serving connections, failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// An [`ApiError`] as an HTTP response: its status and `{"error","code"}`.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let Some(detail) = e.internal_detail() {
            tracing::error!(%detail, "internal error");
        } else if !e.is_client_error() {
            tracing::warn!(error = %e, code = e.code(), "request failed");
        }
        (e.status(), Json(e.body())).into_response()
    }
}
