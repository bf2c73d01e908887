//! Errors: [`ServerError`] (why [`crate::serve`] stopped) and the HTTP side —
//! [`HttpError`], the one response type of every failed request, and
//! [`api_error`], the single exhaustive `EngineError` → `ApiError` mapping.
//!
//! Invariant: a 5xx body never carries internal detail. The detail is
//! logged here, where the error is turned into a response, and the client
//! sees `ApiError`'s generic message.

use axum::Json;
use axum::response::{IntoResponse, Response};
use ruvector_api::ApiError;
use ruvector_engine::EngineError;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is unusable (e.g. an empty API key).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as configured (after `:port` expansion).
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing the startup line, or serving connections, failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Recovery of the data directory failed: the node does not serve a
    /// partial state.
    #[error("recovery failed: {0}")]
    Recovery(EngineError),
    /// The final checkpoint on shutdown failed (the log still holds every
    /// acknowledged write; the next start replays it).
    #[error("shutdown checkpoint failed: {0}")]
    Shutdown(EngineError),
    /// A blocking task of the server panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// An [`ApiError`] as an HTTP response: its status and `{"error","code"}`.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl From<EngineError> for HttpError {
    fn from(e: EngineError) -> Self {
        HttpError(api_error(e))
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let Some(detail) = e.internal_detail() {
            tracing::error!(detail, "internal error");
        } else if e.status().is_server_error() {
            tracing::warn!(error = %e, "request failed");
        }
        (e.status(), Json(e.body())).into_response()
    }
}

/// The single mapping of engine errors to API errors. Exhaustive, no
/// catch-all arm: a new engine error must be classified here.
///
/// The server validates every request with `ruvector_api` before calling the
/// engine, so the client-error arms are a second line of defence (e.g. a
/// collection dropped between validation and the call).
pub fn api_error(e: EngineError) -> ApiError {
    match e {
        EngineError::CollectionNotFound(name) => ApiError::not_found_collection(&name),
        EngineError::CollectionExists(name) => ApiError::collection_exists(&name),
        e @ EngineError::InvalidName(_) => ApiError::InvalidName(e.to_string()),
        e @ EngineError::InvalidParameter { .. } => ApiError::InvalidParameter(e.to_string()),
        EngineError::InvalidVector { position, id, source } => {
            vector_error(&format!("vectors[{position}].vector (id {id})"), &source)
        }
        EngineError::InvalidQuery(source) => vector_error("vector", &source),
        EngineError::DuplicateId(id) => ApiError::DuplicateId(format!("vectors: duplicate id {id}")),
        EngineError::EmptyBatch => ApiError::InvalidBatch("vectors: must contain at least one vector".to_owned()),
        e @ (EngineError::Storage(_) | EngineError::Index(_) | EngineError::Damaged(_)) => {
            ApiError::internal(e.to_string())
        }
        EngineError::NoSpace(_) => ApiError::InsufficientStorage(
            "the data volume is full: the write was not applied; reads and searches still work, writes resume once there is room"
                .into(),
        ),
        EngineError::ReadOnly(_) => ApiError::Unavailable(
            "the data volume is read-only: the write was not applied; reads and searches still work, writes resume once it is writable"
                .into(),
        ),
        e @ EngineError::Failed(_) => {
            tracing::error!(error = %e, "write refused");
            ApiError::Unavailable(
                "the node stopped accepting writes after a storage failure; it needs a restart".into(),
            )
        }
    }
}

/// A rejected vector: a dimension mismatch keeps its own code.
fn vector_error(at: &str, source: &ruvector_index::IndexError) -> ApiError {
    match source {
        ruvector_index::IndexError::DimensionMismatch { expected, got } => {
            ApiError::dimension_mismatch(at, *expected, *got)
        }
        other => ApiError::InvalidVector(format!("{at}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use ruvector_index::IndexError;

    use super::*;

    #[test]
    fn client_errors_stay_client_errors_and_server_errors_hide_detail() {
        let cases = [
            (EngineError::CollectionNotFound("a".into()), 404),
            (EngineError::CollectionExists("a".into()), 409),
            (EngineError::InvalidName("a/b".into()), 400),
            (EngineError::InvalidParameter { name: "k", reason: "bad".into() }, 400),
            (
                EngineError::InvalidVector {
                    position: 2,
                    id: 9,
                    source: IndexError::DimensionMismatch { expected: 3, got: 2 },
                },
                400,
            ),
            (EngineError::InvalidQuery(IndexError::ZeroVector), 400),
            (EngineError::DuplicateId(4), 400),
            (EngineError::EmptyBatch, 400),
            (EngineError::Index(IndexError::Corrupt("/secret/path".into())), 500),
            (EngineError::Failed("fsync /secret/path".into()), 503),
            (EngineError::NoSpace("/secret/path: ENOSPC".into()), 507),
            (EngineError::ReadOnly("/secret/path: EROFS".into()), 503),
        ];
        for (e, status) in cases {
            let client = e.is_client_error();
            let api = api_error(e);
            assert_eq!(api.status_u16(), status, "{api:?}");
            assert_eq!(api.is_client_error(), client, "{api:?}");
            assert!(!api.body().error.contains("/secret"), "{api:?}");
        }
        let e = EngineError::InvalidVector {
            position: 2,
            id: 9,
            source: IndexError::DimensionMismatch { expected: 3, got: 2 },
        };
        assert_eq!(api_error(e).code(), "dimension_mismatch");
    }
}
