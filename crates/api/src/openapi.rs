//! The OpenAPI 3.1 documents of the REST API, generated with `utoipa`.
//!
//! [`ApiDoc`] is the client API that both a node and the router serve.
//! Each process returns its own document as JSON at `GET /openapi.json`,
//! listing exactly the routes it serves:
//!
//! - a node: [`node_openapi`](crate::node_openapi) — [`ApiDoc`] plus the
//!   replication routes routers call on shards
//!   ([`ReplicaDoc`](crate::ReplicaDoc));
//! - the router: [`ApiDoc`] plus its `/cluster` routes (`RouterDoc` in the
//!   router crate).
//!
//! ```
//! use utoipa::OpenApi;
//! let json = ruvector_api::ApiDoc::openapi().to_json().expect("serializable");
//! assert!(json.contains("/collections/{name}/search"));
//! ```
//!
//! The functions below are *markers*: they carry one `#[utoipa::path]`
//! each and are never called; the handlers live in the server and router
//! crates. Every route lists its request, success and error bodies; every
//! error body is an [`ErrorBody`]. Routes that need an API key (when keys
//! are configured) accept it as `Authorization: Bearer <key>`.
#![allow(dead_code, reason = "path markers exist only for their #[utoipa::path] attributes")]

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    BatchSearchRequest, CollectionInfo, Condition, CountRequest, CountResponse, CreateCollectionRequest,
    DeleteByFilterRequest, DeleteByFilterResponse, DeleteQuery, ErrorBody, Filter, IdsPage, IdsQuery, Limits, Metric,
    PayloadIndexRequest, PayloadIndexType, Quantization, Range, SearchHit, SearchRequest, StatusResponse,
    UpsertRequest, ValidBatchSearch, ValidCreate, ValidSearch, ValidUpsert, VectorInput, VectorRecord,
};

/// The client API's OpenAPI document, common to a node and the router:
/// `ApiDoc::openapi()`.
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
        create_payload_index,
        delete_payload_index,
        count,
        delete_by_filter,
    ),
    components(schemas(
        BatchSearchRequest,
        CollectionInfo,
        Condition,
        CountRequest,
        CountResponse,
        CreateCollectionRequest,
        DeleteByFilterRequest,
        DeleteByFilterResponse,
        PayloadIndexRequest,
        PayloadIndexType,
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
///
/// A shard of a cluster also answers 503 while any partition copy it holds
/// is catching up; a router is ready while at least one shard is.
#[utoipa::path(get, path = "/ready", tag = "service",
    responses(
        (status = 200, description = "Ready to serve", body = StatusResponse),
        (status = 503, description = "Recovering, shutting down, or (a shard) catching up", body = ErrorBody),
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
        (status = 507, description = "The data volume is full: nothing was written (`insufficient_storage`); reads still work, writes resume once there is room", body = ErrorBody),
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
        (status = 421, description = "Only on a shard of a cluster: an id's partition is not held by this shard (`partition_not_held`)", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
        (status = 507, description = "The data volume is full: nothing was written (`insufficient_storage`); reads still work, writes resume once there is room", body = ErrorBody),
    ))]
fn upsert_vectors() {}

/// Fetches one vector with its payload.
///
/// On a shard of a cluster, a copy that is catching up answers 421
/// `partition_not_ready` unless the request carries the header
/// `x-ruvector-catch-up` (sent by a router's catch-up, which may read a
/// copy that is itself filling).
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
        (status = 421, description = "Only on a shard of a cluster: the id's partition is not held by this shard (`partition_not_held`) or is catching up (`partition_not_ready`)", body = ErrorBody),
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
        (status = 421, description = "Only on a shard of a cluster: the id's partition is not held by this shard (`partition_not_held`)", body = ErrorBody),
        (status = 503, description = "Not ready / the owning shard is down", body = ErrorBody),
        (status = 507, description = "The data volume is full: nothing was written (`insufficient_storage`); reads still work, writes resume once there is room", body = ErrorBody),
    ))]
fn delete_vector() {}

/// Pages through the ids of a collection, ascending.
#[utoipa::path(get, path = "/collections/{name}/ids", tag = "vectors", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name"), IdsQuery),
    responses(
        (status = 200, description = "One page; `next_after` is null on the last. On a shard of a cluster, header `x-ruvector-unready-partitions` lists the partitions left out because their copy here is catching up.", body = IdsPage),
        (status = 400, description = "Bad `after` or `limit` (`invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn list_ids() {}

/// k-nearest-neighbour search; results nearest first.
///
/// An optional `filter` keeps only vectors whose payload matches; the
/// answer holds min(k, matching vectors) hits, every one matching. When
/// the payload indexes show few matches (at most `exact_filter_max`,
/// default 2500) they are all scored exactly; otherwise the graph walk
/// checks the filter before scoring, looking through non-matching
/// neighbours, and falls back to exact scoring when that would be cheaper
/// or the walk comes back short. Conditions on keys without a payload
/// index are evaluated per vector (slower).
#[utoipa::path(post, path = "/collections/{name}/search", tag = "search", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name")),
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Hits, nearest first (a bare array). Through the router with `allow_partial`, header `x-ruvector-partial: true` marks a result missing some shards. On a shard of a cluster, header `x-ruvector-unready-partitions` lists the partitions left out because their copy here is catching up.", body = Vec<SearchHit>),
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
        (status = 200, description = "One hit list per search, in request order. On a shard of a cluster, header `x-ruvector-unready-partitions` lists the partitions left out because their copy here is catching up.", body = Vec<Vec<SearchHit>>),
        (status = 400, description = "Malformed JSON or an invalid search, named by index (`invalid_batch`, …)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn search_batch() {}

/// Declares a payload index, built over the stored payloads before the
/// answer; it makes filters on the key fast.
#[utoipa::path(post, path = "/collections/{name}/payload_indexes", tag = "collections", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name")),
    request_body = PayloadIndexRequest,
    responses(
        (status = 201, description = "Built", body = StatusResponse, example = json!({"status": "created"})),
        (status = 200, description = "The same index existed", body = StatusResponse, example = json!({"status": "unchanged"})),
        (status = 400, description = "Missing or bad key or type (`invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down (retrying is safe)", body = ErrorBody),
        (status = 507, description = "The data volume is full: nothing was written (`insufficient_storage`); reads still work, writes resume once there is room", body = ErrorBody),
    ))]
fn create_payload_index() {}

/// Drops a payload index (filters on the key keep working, evaluated per
/// vector).
#[utoipa::path(delete, path = "/collections/{name}/payload_indexes/{key}", tag = "collections", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name"), ("key" = String, Path, description = "The indexed payload key")),
    responses(
        (status = 200, description = "Dropped", body = StatusResponse, example = json!({"status": "deleted"})),
        (status = 400, description = "Bad key (`invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 404, description = "No such collection or index", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down (retrying is safe)", body = ErrorBody),
    ))]
fn delete_payload_index() {}

/// Counts the vectors that pass a filter (all without one).
#[utoipa::path(post, path = "/collections/{name}/count", tag = "search", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name")),
    request_body = CountRequest,
    responses(
        (status = 200, description = "The count (a shard of a cluster adds it per partition, and header `x-ruvector-unready-partitions` for partitions left out)", body = CountResponse),
        (status = 400, description = "Malformed JSON or filter (`invalid_filter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down", body = ErrorBody),
    ))]
fn count() {}

/// Deletes, durably, every vector that passes a filter (which must have a
/// condition).
#[utoipa::path(post, path = "/collections/{name}/delete", tag = "vectors", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name"), DeleteQuery),
    request_body = DeleteByFilterRequest,
    responses(
        (status = 200, description = "How many were deleted", body = DeleteByFilterResponse),
        (status = 400, description = "Missing, malformed or empty filter (`invalid_filter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 503, description = "Not ready / a shard is down (retrying is safe)", body = ErrorBody),
        (status = 507, description = "The data volume is full: nothing was written (`insufficient_storage`); reads still work, writes resume once there is room", body = ErrorBody),
    ))]
fn delete_by_filter() {}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::{CATCH_UP_HEADER, UNREADY_HEADER};

    /// The operations of the common client API, as (path, method).
    pub(crate) const COMMON_ROUTES: [(&str, &str); 18] = [
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
        ("/collections/{name}/payload_indexes", "post"),
        ("/collections/{name}/payload_indexes/{key}", "delete"),
        ("/collections/{name}/count", "post"),
        ("/collections/{name}/delete", "post"),
    ];

    /// `document` as JSON.
    pub(crate) fn to_json(document: &utoipa::openapi::OpenApi) -> Value {
        let json = document.to_pretty_json().expect("document serializes");
        serde_json::from_str(&json).expect("document is valid JSON")
    }

    /// Every operation `document` lists, as (path, method).
    pub(crate) fn operations(document: &Value) -> BTreeSet<(String, String)> {
        const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
        let paths = document["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
                methods.into_iter().map(move |method| (path.clone(), method))
            })
            .inspect(|(path, method)| assert!(METHODS.contains(&method.as_str()), "{path}: unexpected key {method}"))
            .collect()
    }

    /// `routes` as the set [`operations`] returns.
    pub(crate) fn route_set(routes: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        routes.iter().map(|&(path, method)| (path.to_owned(), method.to_owned())).collect()
    }

    fn doc() -> Value {
        to_json(&ApiDoc::openapi())
    }

    #[test]
    fn every_route_is_listed() {
        assert_eq!(operations(&doc()), route_set(&COMMON_ROUTES));
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

    #[test]
    fn shard_only_answers_are_described() {
        let doc = doc();
        for (path, method) in [
            ("/collections/{name}/vectors", "post"),
            ("/collections/{name}/vectors/{id}", "get"),
            ("/collections/{name}/vectors/{id}", "delete"),
        ] {
            let misdirected =
                doc["paths"][path][method]["responses"]["421"]["description"].as_str().unwrap_or_default();
            assert!(misdirected.contains("partition_not_held"), "{method} {path}: {misdirected}");
        }
        let get = &doc["paths"]["/collections/{name}/vectors/{id}"]["get"];
        let misdirected = get["responses"]["421"]["description"].as_str().unwrap_or_default();
        assert!(misdirected.contains("partition_not_ready"), "{misdirected}");
        assert!(get["description"].as_str().unwrap_or_default().contains(CATCH_UP_HEADER));
        for (path, method) in [
            ("/collections/{name}/search", "post"),
            ("/collections/{name}/search/batch", "post"),
            ("/collections/{name}/ids", "get"),
        ] {
            let ok = doc["paths"][path][method]["responses"]["200"]["description"].as_str().unwrap_or_default();
            assert!(ok.contains(UNREADY_HEADER), "{method} {path}: {ok}");
        }
    }
}
