//! The HTTP layer: the route table ([`app`]), extractors whose rejections
//! are JSON errors, and handlers that only extract, call the
//! [`crate::service::Service`] and map.
//!
//! Outermost first, a request passes through: a tracing span; a panic guard
//! (a panic becomes 500 `internal` JSON); request metrics by route template;
//! `json_method_not_allowed` (axum's bare 405 gets a JSON body, its `Allow`
//! header kept); the body limit (`Limits::max_body_bytes`, 413 JSON);
//! routing — matched routes are tagged with their template, collection
//! routes check the API key, and anything else gets the 404 JSON fallback.
//!
//! Routes: the node's client API (see `ruvector_api`) plus `GET /cluster`
//! ([`crate::ClusterStatus`]) and `POST /cluster/repair`
//! ([`crate::RepairReport`]); `GET /openapi.json` lists exactly these
//! (`crate::openapi`). `GET /health` is the router's own liveness;
//! `GET /ready` is 200 while at least one shard is ready.

use std::any::Any;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use ruvector_api::http_serve::read_body;
use ruvector_api::{
    ApiError, BatchSearchRequest, CountRequest, CountResponse, CreateCollectionRequest, DeleteByFilterRequest,
    DeleteByFilterResponse, IdsQuery, PARTIAL_HEADER, PayloadIndexRequest, SearchRequest, StatusResponse,
    UpsertRequest, parse_json, parse_vector_id,
};
use serde::de::DeserializeOwned;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::error::HttpError;
use crate::service::Searched;
use crate::shard::Credentials;
use crate::{RouterState, auth, metrics};

/// The HTTP app over `state`; [`crate::serve`] runs it, tests can drive it
/// on port 0 or with `tower::ServiceExt::oneshot`.
pub fn app(state: RouterState) -> Router {
    let body_limit = state.limits().max_body_bytes;
    let collections = Router::new()
        .route("/collections", get(list_collections).post(create_collection))
        .route("/collections/{name}", get(get_collection).delete(delete_collection))
        .route("/collections/{name}/vectors", post(upsert_vectors))
        .route("/collections/{name}/vectors/{id}", get(get_vector).delete(delete_vector))
        .route("/collections/{name}/search", post(search))
        .route("/collections/{name}/search/batch", post(search_batch))
        .route("/collections/{name}/ids", get(list_ids))
        .route("/collections/{name}/payload_indexes", post(create_payload_index))
        .route("/collections/{name}/payload_indexes/{key}", delete(delete_payload_index))
        .route("/collections/{name}/count", post(count))
        .route("/collections/{name}/delete", post(delete_by_filter))
        .route("/cluster", get(cluster))
        .route("/cluster/repair", post(repair))
        .route_layer(from_fn_with_state(state.clone(), auth::require_key));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi))
        .merge(collections)
        .route_layer(CatchPanicLayer::custom(panic_response))
        .route_layer(from_fn(metrics::tag_route))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(map_response(json_method_not_allowed))
        .layer(from_fn_with_state(state.clone(), metrics::track_http))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http().on_failure(()))
        .with_state(state)
}

/// Gives axum's empty 405 a JSON body, keeping its `Allow` header.
async fn json_method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED || response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut json = HttpError(ApiError::MethodNotAllowed).into_response();
    // axum drops its own `Allow` when the method router sits under route
    // layers; the route template (tagged by `metrics::tag_route`) gives it,
    // looked up in the served document (which lists exactly these routes).
    let allow = parts.headers.get(header::ALLOW).cloned().or_else(|| {
        let route = parts.extensions.get::<metrics::RouteLabel>()?;
        crate::openapi::allowed_methods(&route.0).cloned()
    });
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
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

/// A JSON request body of type `T`, at most `Limits::max_body_bytes` long
/// and read within `Limits::body_read_timeout_ms`: over the limit → 413,
/// too slow → 408 (`ruvector_api::http_serve::read_body`); unreadable →
/// 400 `bad_request`; not JSON / wrong
/// shape → 400 via `ruvector_api::parse_json` (the `Content-Type` is
/// ignored, as the seed did).
#[derive(Debug)]
struct JsonBody<T>(T);

impl<T: DeserializeOwned> FromRequest<RouterState> for JsonBody<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &RouterState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state.limits()).await?;
        Ok(JsonBody(parse_json(&bytes)?))
    }
}

/// Path parameters; undecodable → 400 `bad_request`.
#[derive(Debug)]
struct ApiPath<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(ApiPath(t)),
            Err(r) if r.status().is_server_error() => Err(HttpError(ApiError::internal(r.body_text()))),
            Err(r) => Err(HttpError(ApiError::BadRequest(format!("invalid path: {}", r.body_text())))),
        }
    }
}

/// Query parameters; undecodable → 400 `bad_request`.
#[derive(Debug)]
struct ApiQuery<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| ApiQuery(t))
            .map_err(|r| HttpError(ApiError::BadRequest(format!("invalid query string: {}", r.body_text()))))
    }
}

type ApiResult<T> = Result<T, HttpError>;

async fn health() -> Json<StatusResponse> {
    Json(StatusResponse::ok())
}

async fn ready(State(state): State<RouterState>) -> ApiResult<Json<StatusResponse>> {
    Ok(Json(state.service().ready().await?))
}

async fn metrics_text(State(state): State<RouterState>) -> ApiResult<Response> {
    let text = state.metrics().render().map_err(|e| ApiError::internal(format!("rendering metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// `POST /cluster/repair`: one anti-entropy pass, now.
async fn repair(State(state): State<RouterState>) -> Json<crate::RepairReport> {
    Json(state.service().repair().await)
}

async fn cluster(State(state): State<RouterState>) -> Json<crate::ClusterStatus> {
    Json(state.service().cluster().await)
}

/// `GET /openapi.json`: the client API and the router's `/cluster` routes.
async fn openapi() -> ApiResult<Response> {
    let json = crate::openapi::router_openapi().to_json().map_err(|e| ApiError::internal(format!("openapi: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

async fn not_found(method: Method, uri: axum::http::Uri) -> HttpError {
    HttpError(ApiError::not_found_route(method.as_str(), uri.path()))
}

/// Evaluates `$op` (an operation's future); when a shard refuses it as
/// routed by an older placement (`stale_placement`: partitions moved),
/// refreshes the router's view from the shards and evaluates it again (up
/// to three more times). A placement refusal left after that is a 503.
macro_rules! fenced {
    ($service:expr, $op:expr) => {{
        let mut result = $op.await;
        // While partitions move the epoch can rise again between the
        // refresh and the retry: a few tries.
        for _ in 0..3 {
            match &result {
                Err(e) if e.code() == "stale_placement" => {
                    $service.note_stale().await;
                    result = $op.await;
                }
                _ => break,
            }
        }
        // Still refused after refreshes: the placement keeps changing or
        // a partition's holders are out of reach. The client retries.
        result.map_err(|e| match e.code() {
            "stale_placement" | "partition_not_held" => {
                ApiError::Unavailable(format!("the placement is changing; retry: {e}"))
            }
            _ => e,
        })
    }};
}

async fn list_collections(State(state): State<RouterState>, headers: HeaderMap) -> ApiResult<Response> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    let list = fenced!(service, service.list_collections(&credentials))?;
    Ok(Json(list).into_response())
}

async fn create_collection(
    State(state): State<RouterState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateCollectionRequest>,
) -> ApiResult<(StatusCode, Json<StatusResponse>)> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    let created = fenced!(service, service.create_collection(request.clone(), &credentials))?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_collection(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    let info = fenced!(service, service.collection_info(&name, &credentials))?;
    Ok(Json(info).into_response())
}

async fn delete_collection(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<StatusResponse>> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    Ok(Json(fenced!(service, service.delete_collection(&name, &credentials))?))
}

async fn upsert_vectors(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    JsonBody(request): JsonBody<UpsertRequest>,
) -> ApiResult<(StatusCode, Json<StatusResponse>)> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    let inserted = fenced!(service, service.upsert(&name, request.clone(), &credentials))?;
    Ok((StatusCode::CREATED, Json(inserted)))
}

async fn get_vector(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_vector_id(&id)?;
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    let record = fenced!(service, service.get_vector(&name, id, &credentials))?;
    Ok(Json(record).into_response())
}

async fn delete_vector(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<StatusResponse>> {
    let id = parse_vector_id(&id)?;
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    Ok(Json(fenced!(service, service.delete_vector(&name, id, &credentials))?))
}

/// A search answer: the bare JSON array, plus `x-ruvector-partial: true`
/// when some shard's results are missing.
fn searched<T: serde::Serialize>(s: Searched<T>) -> Response {
    let mut response = Json(s.hits).into_response();
    if s.partial {
        response.headers_mut().insert(PARTIAL_HEADER, HeaderValue::from_static("true"));
    }
    response
}

async fn search(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    JsonBody(request): JsonBody<SearchRequest>,
) -> ApiResult<Response> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    Ok(searched(fenced!(service, service.search(&name, request.clone(), &credentials))?))
}

async fn search_batch(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    JsonBody(request): JsonBody<BatchSearchRequest>,
) -> ApiResult<Response> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    Ok(searched(fenced!(service, service.search_batch(&name, request.clone(), &credentials))?))
}

async fn create_payload_index(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    JsonBody(request): JsonBody<PayloadIndexRequest>,
) -> ApiResult<(StatusCode, Json<StatusResponse>)> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    let created = fenced!(service, service.declare_payload_index(&name, request.clone(), &credentials))?;
    Ok(if created {
        (StatusCode::CREATED, Json(StatusResponse::created()))
    } else {
        (StatusCode::OK, Json(StatusResponse::unchanged()))
    })
}

async fn delete_payload_index(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath((name, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<StatusResponse>> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    Ok(Json(fenced!(service, service.drop_payload_index(&name, &key, &credentials))?))
}

async fn count(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    JsonBody(request): JsonBody<CountRequest>,
) -> ApiResult<Json<CountResponse>> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    Ok(Json(fenced!(service, service.count(&name, request.clone(), &credentials))?))
}

async fn delete_by_filter(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    JsonBody(request): JsonBody<DeleteByFilterRequest>,
) -> ApiResult<Json<DeleteByFilterResponse>> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    Ok(Json(fenced!(service, service.delete_by_filter(&name, request.clone(), &credentials))?))
}

async fn list_ids(
    State(state): State<RouterState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<IdsQuery>,
) -> ApiResult<Response> {
    let (service, credentials) = (state.service(), Credentials::from_client(&headers));
    let page = fenced!(service, service.ids(&name, query.clone(), &credentials))?;
    Ok(Json(page).into_response())
}
