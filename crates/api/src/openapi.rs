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
//!
//! Responses carry OpenAPI *links* ([`Links`]) saying where a created
//! thing can be used next (the created collection's name into its routes,
//! an upserted id into get and delete, an upserted vector into a search):
//! clients and stateful testers (schemathesis) follow them.
//!
//! Unsigned integers are documented as such ([`UnsignedFormats`]): an id
//! is `format: uint64` (up to 2^64 − 1, what the API accepts), not `int64`,
//! which would tell clients and fuzzers that 2^63 and above are invalid.
#![allow(dead_code, reason = "path markers exist only for their #[utoipa::path] attributes")]

use serde_json::{Value, json};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Schema};
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
    modifiers(&BearerAuth, &Links, &UnsignedFormats),
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

/// Spells unsigned integer formats `uint8` … `uint64`, and the keys of
/// maps keyed by integers as strings of digits. utoipa (with
/// `non_strict_integers`, which maps `u64` to its own format rather than
/// `int64`) writes them `u-int64`, a name no tool knows; this modifier
/// renames them in every schema of the document (components, parameters,
/// request and response bodies), wherever they nest. Add it to every `#[openapi(modifiers)]`
/// whose paths or schemas hold unsigned integers.
#[derive(Debug)]
pub struct UnsignedFormats;

impl Modify for UnsignedFormats {
    fn modify(&self, openapi: &mut Document) {
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(spell_unsigned);
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                spell_unsigned_in(operation);
            }
        }
    }
}

fn spell_unsigned_in(operation: &mut Operation) {
    let parameters = operation.parameters.iter_mut().flatten().filter_map(|p| p.schema.as_mut());
    parameters.for_each(spell_unsigned);
    let requests = operation.request_body.iter_mut().flat_map(|body| body.content.values_mut());
    requests.filter_map(|content| content.schema.as_mut()).for_each(spell_unsigned);
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            let contents = response.content.values_mut();
            contents.filter_map(|content| content.schema.as_mut()).for_each(spell_unsigned);
        }
    }
}

/// Renames the unsigned formats anywhere in `schema`.
fn spell_unsigned(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            if let Some(SchemaFormat::KnownFormat(known)) = &object.format {
                let spelled = match known {
                    KnownFormat::UInt8 => Some("uint8"),
                    KnownFormat::UInt16 => Some("uint16"),
                    KnownFormat::UInt32 => Some("uint32"),
                    KnownFormat::UInt64 => Some("uint64"),
                    _ => None,
                };
                if let Some(spelled) = spelled {
                    object.format = Some(SchemaFormat::Custom(spelled.to_owned()));
                }
            }
            // A map with integer keys (`BTreeMap<u32, _>`) has JSON keys
            // that are strings of digits; utoipa says `propertyNames` are
            // integers, which no JSON object satisfies.
            if let Some(Schema::Object(names)) = object.property_names.as_deref()
                && matches!(names.schema_type, SchemaType::Type(Type::Integer))
            {
                let digits = ObjectBuilder::new().schema_type(Type::String).pattern(Some("^(0|[1-9][0-9]*)$"));
                object.property_names = Some(Box::new(digits.build().into()));
            }
            object.properties.values_mut().for_each(spell_unsigned);
            if let Some(additional) = object.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(schema) = additional
            {
                spell_unsigned(schema);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                spell_unsigned(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(spell_unsigned),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(spell_unsigned),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(spell_unsigned),
        _ => {}
    }
}

/// The links between the client API's operations (see the module doc).
struct Links;

/// The name a create request gave its collection.
pub(crate) const CREATED_NAME: &str = "$request.body#/name";
/// The collection named in the request's path.
pub(crate) const PATH_NAME: &str = "$request.path.name";

impl Modify for Links {
    fn modify(&self, openapi: &mut Document) {
        for target in [
            "get_collection",
            "delete_collection",
            "upsert_vectors",
            "search",
            "search_batch",
            "list_ids",
            "count",
            "delete_by_filter",
            "create_payload_index",
        ] {
            add_link(openapi, ("/collections", &HttpMethod::Post, "201"), target, &[("name", CREATED_NAME)], None);
        }
        let upserted = ("/collections/{name}/vectors", &HttpMethod::Post, "201");
        let first_id = [("name", PATH_NAME), ("id", "$request.body#/vectors/0/id")];
        add_link(openapi, upserted, "get_vector", &first_id, None);
        add_link(openapi, upserted, "delete_vector", &first_id, None);
        add_link(openapi, upserted, "count", &[("name", PATH_NAME)], None);
        let first_vector = json!({"vector": "$request.body#/vectors/0/vector"});
        add_link(openapi, upserted, "search", &[("name", PATH_NAME)], Some(first_vector));
        add_link(
            openapi,
            ("/collections/{name}/payload_indexes", &HttpMethod::Post, "201"),
            "delete_payload_index",
            &[("name", PATH_NAME), ("key", "$request.body#/key")],
            None,
        );
    }
}

/// Adds to the `status` response of `method path` in `doc` a link, named
/// after `target`, to the operation `target` with `parameters` (runtime
/// expressions) and an optional request body. A missing operation or
/// response is a programming error, caught by the tests below.
pub(crate) fn add_link(
    doc: &mut Document,
    (path, method, status): (&str, &HttpMethod, &str),
    target: &str,
    parameters: &[(&str, &str)],
    body: Option<Value>,
) {
    let item = doc.paths.paths.get_mut(path);
    let operation = item.and_then(|item| match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        _ => None,
    });
    let response = operation.and_then(|op| op.responses.responses.get_mut(status));
    let Some(RefOr::T(response)) = response else {
        debug_assert!(false, "no {status} response on {path} to link from");
        return;
    };
    // utoipa 5.5 serializes `Link::operation_id` and `request_body` under
    // those snake_case names, which OpenAPI does not know (`operationId`,
    // `requestBody`); its flattened extension map writes them correctly.
    let mut spelled = Extensions::default();
    spelled.insert("operationId".to_owned(), Value::from(target));
    if let Some(body) = body {
        spelled.insert("requestBody".to_owned(), body);
    }
    let link = parameters
        .iter()
        .fold(LinkBuilder::new(), |link, &(name, value)| link.parameter(name, value))
        .extensions(Some(spelled))
        .build();
    response.links.insert(target.to_owned(), RefOr::T(link));
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$")),
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$")),
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$")),
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
        ("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$"),
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
        ("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$"),
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$"), IdsQuery),
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$")),
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$")),
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$")),
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$"), ("key" = String, Path, description = "The indexed payload key")),
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$")),
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
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$"), DeleteQuery),
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

    /// Checks every link of `document`: its target operation exists and
    /// takes each parameter the link sets. Returns the links as
    /// (source operation id, status, target operation id).
    pub(crate) fn checked_links(document: &Value) -> BTreeSet<(String, String, String)> {
        let mut operations = std::collections::BTreeMap::new();
        for item in document["paths"].as_object().expect("paths").values() {
            for operation in item.as_object().expect("path item").values() {
                let id = operation["operationId"].as_str().expect("operationId").to_owned();
                assert!(operations.insert(id.clone(), operation.clone()).is_none(), "operationId {id} twice");
            }
        }
        let mut links = BTreeSet::new();
        for (source, operation) in &operations {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let Some(listed) = response["links"].as_object() else { continue };
                for link in listed.values() {
                    let target = link["operationId"].as_str().expect("link operationId");
                    let target_op = operations.get(target).unwrap_or_else(|| panic!("{source}: no operation {target}"));
                    let params: Vec<&str> = target_op["parameters"]
                        .as_array()
                        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
                        .unwrap_or_default();
                    for name in link["parameters"].as_object().map(|p| p.keys().collect()).unwrap_or(Vec::new()) {
                        assert!(params.contains(&name.as_str()), "{source} -> {target}: no parameter {name}");
                    }
                    if !link["requestBody"].is_null() {
                        assert!(target_op["requestBody"].is_object(), "{source} -> {target}: takes no body");
                    }
                    links.insert((source.clone(), status.clone(), target.to_owned()));
                }
            }
        }
        links
    }

    #[test]
    fn unsigned_integers_are_documented_as_unsigned() {
        let doc = doc();
        let text = doc.to_string();
        let at = text.find("u-int").map(|i| &text[i.saturating_sub(300)..i + 20]);
        assert!(at.is_none(), "a u-intN format is left: {at:?}");
        let id = &doc["components"]["schemas"]["VectorInput"]["properties"]["id"];
        assert_eq!((id["format"].as_str(), id["minimum"].as_u64()), (Some("uint64"), Some(0)), "{id}");
        let params = &doc["paths"]["/collections/{name}/ids"]["get"]["parameters"];
        assert_eq!(params[1]["schema"]["format"], "uint64", "{params}");
        let per_partition = &doc["components"]["schemas"]["CountResponse"]["properties"]["partitions"];
        assert_eq!(per_partition["propertyNames"], json!({"type": "string", "pattern": "^(0|[1-9][0-9]*)$"}));
        let hit = &doc["components"]["schemas"]["SearchHit"]["properties"]["id"];
        assert_eq!(hit["format"], "uint64", "{hit}");
    }

    #[test]
    fn created_things_link_to_where_they_are_used() {
        let links = checked_links(&doc());
        let link = |source: &str, status: &str, target: &str| (source.to_owned(), status.to_owned(), target.to_owned());
        for target in ["get_collection", "upsert_vectors", "search", "list_ids", "count", "delete_by_filter"] {
            assert!(links.contains(&link("create_collection", "201", target)), "{target}: {links:?}");
        }
        for target in ["get_vector", "delete_vector", "search"] {
            assert!(links.contains(&link("upsert_vectors", "201", target)), "{target}: {links:?}");
        }
        assert!(links.contains(&link("create_payload_index", "201", "delete_payload_index")));
        let doc = doc();
        let search = &doc["paths"]["/collections/{name}/vectors"]["post"]["responses"]["201"]["links"]["search"];
        assert_eq!(search["requestBody"], json!({"vector": "$request.body#/vectors/0/vector"}));
        assert_eq!(search["parameters"]["name"], PATH_NAME);
        assert_eq!(search["operationId"], "search");
        assert!(search["operation_id"].is_null() && search["request_body"].is_null(), "{search}");
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
