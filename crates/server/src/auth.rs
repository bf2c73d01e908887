//! The API-key middleware of a node, over `ruvector_api::auth` (the same
//! rules as the router; see there). `/health`, `/ready`, `/metrics` and
//! `/openapi.json` are outside this layer, so probes and Prometheus scrapes
//! need no secret; `/metrics` reveals collection names and sizes, so keep
//! the port off untrusted networks.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ruvector_api::{Access, ApiKeys};

use crate::AppState;
use crate::error::{HttpError, ServerError};

pub use ruvector_api::API_KEY_HEADER;

/// The configured keys; a blank key is a configuration error.
pub(crate) fn keys(read_write: Option<&str>, read_only: Option<&str>) -> Result<ApiKeys, ServerError> {
    let keys = ApiKeys::new(read_write, read_only).map_err(|e| ServerError::Config(e.to_string()))?;
    if keys.read_only_only() {
        tracing::warn!("only read_only_api_key is configured: every write will be refused");
    }
    Ok(keys)
}

/// Middleware on the collection routes (a `route_layer`, so the matched
/// route template is known).
pub(crate) async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("", |p| p.as_str());
    let access = Access::of(req.method(), route);
    match state.auth().check(req.headers(), access) {
        Ok(()) => next.run(req).await,
        Err(e) => HttpError(e).into_response(),
    }
}
