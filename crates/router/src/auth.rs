//! The API-key middleware of the router, over `ruvector_api::auth`: keys
//! are checked here exactly as a node checks them, then forwarded to the
//! shards unchanged (shards are configured with the same keys, so they
//! accept them). With no key configured every route is open, and whatever
//! key header the client sent is still forwarded. `/health`, `/ready`,
//! `/metrics` and `/openapi.json` are outside this layer; `/cluster`
//! (shard addresses, the layout) needs a key like any read.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ruvector_api::Access;

use crate::RouterState;
use crate::error::HttpError;

/// Middleware on the collection routes (a `route_layer`, so the matched
/// route template is known).
pub(crate) async fn require_key(State(state): State<RouterState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("", |p| p.as_str());
    let access = Access::of(req.method(), route);
    match state.auth().check(req.headers(), access) {
        Ok(()) => next.run(req).await,
        Err(e) => HttpError(e).into_response(),
    }
}
