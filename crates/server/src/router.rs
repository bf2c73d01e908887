//! The route table and the middleware stack: [`app`].
//!
//! Outermost first, a request passes through:
//!
//! 1. `TraceLayer` — a tracing span per request;
//! 2. a panic guard — a panic anywhere below becomes 500 `internal` JSON;
//! 3. `track_http` — request count and latency by route template;
//! 4. `json_method_not_allowed` — axum's bare 405 gets a JSON body (its
//!    `Allow` header is kept);
//! 5. `DefaultBodyLimit` — `Limits::max_body_bytes` (413 via [`crate::extract`]);
//! 6. routing; on a matched route: `tag_route` (labels the response with
//!    the route template), a second panic guard (so the panicking route is
//!    still labelled), and on collection routes the API-key check;
//!    unmatched paths go to the 404 JSON fallback.

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use ruvector_api::ApiError;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::error::HttpError;
use crate::{AppState, auth, handlers, membership, metrics};

/// The HTTP app over `state`. `serve` runs it; tests drive it with
/// `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    build(state, Router::new())
}

/// [`app`] with `extra` routes under the same middleware (tests).
fn build(state: AppState, extra: Router<AppState>) -> Router {
    let body_limit = state.limits().max_body_bytes;
    let collections = Router::new()
        .route("/collections", get(handlers::list_collections).post(handlers::create_collection))
        .route("/collections/{name}", get(handlers::get_collection).delete(handlers::delete_collection))
        .route("/collections/{name}/vectors", post(handlers::upsert_vectors))
        .route("/collections/{name}/vectors/{id}", get(handlers::get_vector).delete(handlers::delete_vector))
        .route("/collections/{name}/search", post(handlers::search))
        .route("/collections/{name}/search/batch", post(handlers::search_batch))
        .route("/collections/{name}/payload_indexes", post(handlers::create_payload_index))
        .route("/collections/{name}/payload_indexes/{key}", delete(handlers::delete_payload_index))
        .route("/collections/{name}/count", post(handlers::count))
        .route("/collections/{name}/delete", post(handlers::delete_by_filter))
        .route("/collections/{name}/ids", get(handlers::list_ids))
        .route("/collections/{name}/digests", get(handlers::digests))
        .route("/collections/{name}/stamps", get(handlers::stamps))
        .route("/collections/{name}/tombstones/purge", post(handlers::purge_tombstones))
        .route(
            "/collections/{name}/partitions/{partition}/snapshot",
            get(handlers::export_partition).post(handlers::import_partition),
        )
        .route_layer(from_fn_with_state(state.clone(), membership::fence))
        .route_layer(from_fn_with_state(state.clone(), auth::require_key));
    // What routers use to learn and change the placement: never fenced by
    // the epoch (a router behind must be able to catch up through them).
    let cluster = Router::new()
        .route("/cluster/assignment", get(handlers::get_assignment).put(handlers::put_assignment))
        .route("/cluster/partitions", post(handlers::set_partition_state))
        .route_layer(from_fn_with_state(state.clone(), auth::require_key));
    Router::new()
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/started", get(handlers::started))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi))
        .merge(collections)
        .merge(cluster)
        .merge(extra)
        .route_layer(CatchPanicLayer::custom(panic_response))
        .route_layer(from_fn(metrics::tag_route))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(map_response(json_method_not_allowed))
        .layer(from_fn_with_state(state.clone(), metrics::track_http))
        .layer(CatchPanicLayer::custom(panic_response))
        // Errors are logged where they are turned into responses (error.rs);
        // the trace layer only opens a span per request.
        .layer(TraceLayer::new_for_http().on_failure(()))
        .with_state(state)
}

/// Gives axum's empty 405 a JSON body. (`Router::layer` wraps each
/// route's method router from the inside, so axum adds the `Allow` header
/// after this runs; any header already present is kept.)
async fn json_method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED || response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut json = HttpError(ApiError::MethodNotAllowed).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name, value.clone());
        }
    }
    json
}

/// A panic in a handler: 500 JSON, the message only in the log.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    HttpError(ApiError::internal(format!("handler panicked: {message}"))).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::ServerConfig;

    async fn boom() -> &'static str {
        panic!("secret detail")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_json_and_is_counted() {
        let state = AppState::new(&ServerConfig::default()).expect("state");
        let app = build(state.clone(), Router::new().route("/boom", get(boom)));
        let response = app.clone().oneshot(Request::get("/boom").body(Body::empty()).expect("req")).await.expect("ok");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], br#"{"error":"internal server error","code":"internal"}"#);
        let health = app.oneshot(Request::get("/health").body(Body::empty()).expect("req")).await.expect("ok");
        assert_eq!(health.status(), StatusCode::OK);
        let text = state.metrics().render(None).expect("render");
        assert!(text.contains(r#"ruvector_http_requests_total{method="GET",route="/boom",status="500"} 1"#), "{text}");
    }
}
