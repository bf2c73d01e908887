//! The OpenAPI 3.1 document of the REST API, generated with `utoipa`.
//!
//! The server (and the router, which serves the same API) returns
//! `ApiDoc::openapi()` as JSON at `GET /openapi.json`:
//!
//! ```
//! use utoipa::OpenApi;
//! let json = ruvector_api::ApiDoc::openapi().to_json().expect("serializable");
//! assert!(json.contains("/collections/{name}/search"));
//! ```
//!
//! The functions below are *markers*: they carry one `#[utoipa::path]`
//! each and are never called; the handlers live in the server crate. Every
//! route lists its request, success and error bodies; every error body is an
//! [`ErrorBody`]. Routes that need an API key (when keys are configured)
//! accept it as `Authorization: Bearer <key>`.
#![allow(dead_code, reason = "path markers exist only for their #[utoipa::path] attributes")]

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    BatchSearchRequest, CollectionInfo, Condition, CreateCollectionRequest, DeleteQuery, ErrorBody, Filter, IdsPage,
    IdsQuery, Limits, Metric, Quantization, Range, SearchHit, SearchRequest, StatusResponse, UpsertRequest,
    ValidBatchSearch, ValidCreate, ValidSearch, ValidUpsert, VectorInput, VectorRecord,
};

/// The OpenAPI document: `ApiDoc::openapi()`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "ruvector",
        description = "Vector database REST API. Every error is `{\"error\": \"<message>\", \"code\": \"<machine_code>\"}`.",
        license(name = "MIT")
    ),
    paths(
        health,
        ready,
        metrics,
        openapi_json,
        list_collections,
        create_collection,
        get_collection,
        delete_collection,
        upsert_vectors,
        get_vector,
        delete_vector,
        search,
        search_batch,
        list_ids,
    ),
    components(schemas(
        BatchSearchRequest,
        CollectionInfo,
        Condition,
        CreateCollectionRequest,
        ErrorBody,
        Filter,
        IdsPage,
        Limits,
        Metric,
        Quantization,
        Range,
        SearchHit,
        SearchRequest,
        StatusResponse,
        UpsertRequest,
        ValidBatchSearch,
        ValidCreate,
        ValidSearch,
        ValidUpsert,
        VectorInput,
        VectorRecord,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "service", description = "Liveness, readiness, metrics, this document"),
        (name = "collections", description = "Create, list, inspect and drop collections"),
        (name = "vectors", description = "Upsert, get, delete and scroll vectors"),
        (name = "search", description = "Nearest-neighbour search")
    )
)]
pub struct ApiDoc;

/// Adds the optional `Authorization: Bearer <key>` scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key, when the node is configured with keys (read-write or read-only), as `Authorization: Bearer <key>` or in an `api-key: <key>` header. `/health`, `/ready`, `/metrics` and `/openapi.json` need no key; a read-only key may use GET routes and the two search routes.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "Alive", body = StatusResponse, example = json!({"status": "ok"}))))]
fn health() {}

/// Readiness: 503 until recovery has finished (or while shutting down).
#[utoipa::path(get, path = "/ready", tag = "service",
    responses(
        (status = 200, description = "Ready to serve", body = StatusResponse),
        (status = 503, description = "Recovering or shutting down", body = ErrorBody),
    ))]
fn ready() {}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain; version=0.0.4")))]
fn metrics() {}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
fn openapi_json() {}

/// Lists all collections, sorted by name.
#[utoipa::path(get, path = "/collections", tag = "collections", security((), ("api_key" = [])),
    responses(
        (status = 200, description = "All collections, sorted by name", body = Vec<CollectionInfo>),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn list_collections() {}

/// Creates a collection.
#[utoipa::path(post, path = "/collections", tag = "collections", security((), ("api_key" = [])),
    request_body = CreateCollectionRequest,
    responses(
        (status = 201, description = "Created", body = StatusResponse, example = json!({"status": "created"})),
        (status = 400, description = "Malformed JSON (`invalid_json`, `invalid_body`) or invalid settings (`invalid_name`, `invalid_dimension`, `invalid_metric`, `invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 409, description = "A collection of that name exists (`collection_exists`)", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn create_collection() {}

/// Describes one collection.
#[utoipa::path(get, path = "/collections/{name}", tag = "collections", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name")),
    responses(
        (status = 200, description = "The collection", body = CollectionInfo),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn get_collection() {}

/// Drops a collection and all its vectors.
#[utoipa::path(delete, path = "/collections/{name}", tag = "collections", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name")),
    responses(
        (status = 200, description = "Deleted", body = StatusResponse, example = json!({"status": "deleted"})),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn delete_collection() {}

/// Inserts or overwrites a batch of vectors (all-or-nothing).
#[utoipa::path(post, path = "/collections/{name}/vectors", tag = "vectors", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name")),
    request_body = UpsertRequest,
    responses(
        (status = 201, description = "Stored (durably)", body = StatusResponse, example = json!({"status": "inserted 3 vectors"})),
        (status = 400, description = "Malformed JSON or an invalid item, named by index and field (`invalid_batch`, `invalid_id`, `duplicate_id`, `dimension_mismatch`, `invalid_vector`, `invalid_payload`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn upsert_vectors() {}

/// Fetches one vector with its payload.
#[utoipa::path(get, path = "/collections/{name}/vectors/{id}", tag = "vectors", security((), ("api_key" = [])),
    params(
        ("name" = String, Path, description = "Collection name"),
        ("id" = u64, Path, description = "Vector id"),
    ),
    responses(
        (status = 200, description = "The vector", body = VectorRecord),
        (status = 400, description = "Non-numeric id (`invalid_id`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection or vector", body = ErrorBody),
        (status = 503, description = "Not ready / the owning shard is down", body = ErrorBody),
    ))]
fn get_vector() {}

/// Deletes one vector.
#[utoipa::path(delete, path = "/collections/{name}/vectors/{id}", tag = "vectors", security((), ("api_key" = [])),
    params(
        ("name" = String, Path, description = "Collection name"),
        ("id" = u64, Path, description = "Vector id"),
        DeleteQuery,
    ),
    responses(
        (status = 200, description = "Deleted (a versioned delete: `deleted`, `tombstoned` or `stale`)", body = StatusResponse, example = json!({"status": "deleted"})),
        (status = 400, description = "Non-numeric id or version (`invalid_id`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 404, description = "No such collection or vector", body = ErrorBody),
        (status = 503, description = "Not ready / the owning shard is down", body = ErrorBody),
    ))]
fn delete_vector() {}

/// Pages through the ids of a collection, ascending.
#[utoipa::path(get, path = "/collections/{name}/ids", tag = "vectors", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name"), IdsQuery),
    responses(
        (status = 200, description = "One page; `next_after` is null on the last", body = IdsPage),
        (status = 400, description = "Bad `after` or `limit` (`invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn list_ids() {}

/// k-nearest-neighbour search; results nearest first.
///
/// An optional `filter` keeps only vectors whose payload matches. A node
/// applies it by post-filtering: it searches for 4·k candidates, keeps the
/// matching ones, and widens the search (×4 per round) until k matches are
/// found, the collection is exhausted, or 65 536 candidates were examined —
/// so a very selective filter may return fewer than k hits.
#[utoipa::path(post, path = "/collections/{name}/search", tag = "search", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name")),
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Hits, nearest first (a bare array). Through the router with `allow_partial`, header `x-ruvector-partial: true` marks a result missing some shards.", body = Vec<SearchHit>),
        (status = 400, description = "Malformed JSON or invalid query (`invalid_parameter` for k/ef, `dimension_mismatch`, `invalid_vector`, `invalid_filter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn search() {}

/// Several searches in one request; one hit list per search, in order.
#[utoipa::path(post, path = "/collections/{name}/search/batch", tag = "search", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name")),
    request_body = BatchSearchRequest,
    responses(
        (status = 200, description = "One hit list per search, in request order", body = Vec<Vec<SearchHit>>),
        (status = 400, description = "Malformed JSON or an invalid search, named by index (`invalid_batch`, …)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn search_batch() {}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        let json = ApiDoc::openapi().to_pretty_json().expect("document serializes");
        serde_json::from_str(&json).expect("document is valid JSON")
    }

    #[test]
    fn every_route_is_listed() {
        let doc = doc();
        let routes = [
            ("/health", "get"),
            ("/ready", "get"),
            ("/metrics", "get"),
            ("/openapi.json", "get"),
            ("/collections", "get"),
            ("/collections", "post"),
            ("/collections/{name}", "get"),
            ("/collections/{name}", "delete"),
            ("/collections/{name}/vectors", "post"),
            ("/collections/{name}/vectors/{id}", "get"),
            ("/collections/{name}/vectors/{id}", "delete"),
            ("/collections/{name}/search", "post"),
            ("/collections/{name}/search/batch", "post"),
            ("/collections/{name}/ids", "get"),
        ];
        let paths = doc["paths"].as_object().expect("paths");
        let listed: usize = paths.values().map(|p| p.as_object().map_or(0, |m| m.len())).sum();
        assert_eq!(listed, routes.len(), "unexpected extra operations: {:?}", paths.keys().collect::<Vec<_>>());
        for (path, method) in routes {
            assert!(doc["paths"][path][method].is_object(), "{method} {path} missing");
        }
    }

    #[test]
    fn bodies_and_errors_reference_the_schemas() {
        let doc = doc();
        let body_ref = |path: &str, method: &str| {
            doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"].clone()
        };
        assert_eq!(body_ref("/collections", "post"), "#/components/schemas/CreateCollectionRequest");
        assert_eq!(body_ref("/collections/{name}/vectors", "post"), "#/components/schemas/UpsertRequest");
        assert_eq!(body_ref("/collections/{name}/search", "post"), "#/components/schemas/SearchRequest");
        assert_eq!(body_ref("/collections/{name}/search/batch", "post"), "#/components/schemas/BatchSearchRequest");
        let err = &doc["paths"]["/collections"]["post"]["responses"]["409"]["content"]["application/json"]["schema"];
        assert_eq!(err["$ref"], "#/components/schemas/ErrorBody");
        for schema in ["ErrorBody", "CollectionInfo", "SearchHit", "VectorRecord", "IdsPage", "Quantization", "Filter"]
        {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema} missing");
        }
        let params = doc["paths"]["/collections/{name}/ids"]["get"]["parameters"].as_array().expect("params");
        let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, ["name", "after", "limit"]);
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    }
}
