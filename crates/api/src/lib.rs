//! ruvector's REST API, transport-agnostic: wire types (serde), their
//! validation, the error body and the OpenAPI documents ([`ApiDoc`], the
//! client API; [`node_openapi`], what a node serves).
//!
//! Shared by the single-node server and the cluster router, so both apply
//! exactly the same rules. This crate knows nothing about the engine or the
//! index (the router must never depend on them) and nothing about the HTTP
//! framework: handlers parse with [`parse_json`], call a `validate` function,
//! and map an [`ApiError`] with [`ApiError::status`] and [`ApiError::body`].
//! The one exception, behind the `serve` feature, is `http_serve`: the
//! HTTP/1.1 accept loop with the client timeouts both binaries use.
//!
//! The pattern for every request body: a lenient `*Request` type is
//! deserialized (it accepts bad values so that validation can name them),
//! then `validate` turns it into a `Valid*` type with defaults applied and
//! every limit checked. `Valid*` types serialize back to a body any node
//! accepts, which is what the router forwards to shards.
//!
//! | route | request | validation | success |
//! |---|---|---|---|
//! | `GET /health` | — | — | 200 [`StatusResponse`] `{"status":"ok"}` |
//! | `GET /collections` | — | — | 200 `[`[`CollectionInfo`]`]` sorted by name |
//! | `POST /collections` | [`CreateCollectionRequest`] | [`CreateCollectionRequest::validate`] → [`ValidCreate`] | 201 `{"status":"created"}` |
//! | `GET /collections/{name}` | — | [`validate_collection_name`] | 200 [`CollectionInfo`] |
//! | `DELETE /collections/{name}` | — | [`validate_collection_name`] | 200 `{"status":"deleted"}` |
//! | `POST /collections/{name}/vectors` | [`UpsertRequest`] | [`UpsertRequest::validate`] → [`ValidUpsert`] | 201 `{"status":"inserted N vectors"}` |
//! | `GET /collections/{name}/vectors/{id}` | — | [`parse_vector_id`] | 200 [`VectorRecord`] |
//! | `DELETE /collections/{name}/vectors/{id}` | — | [`parse_vector_id`] | 200 `{"status":"deleted"}` |
//! | `GET /collections/{name}/ids?after=&limit=` | [`IdsQuery`] | [`IdsQuery::validate`] | 200 [`IdsPage`] |
//! | `POST /collections/{name}/search` | [`SearchRequest`] | [`SearchRequest::validate`] → [`ValidSearch`] | 200 `[`[`SearchHit`]`]` |
//! | `POST /collections/{name}/search/batch` | [`BatchSearchRequest`] | [`BatchSearchRequest::validate`] | 200 `[[`[`SearchHit`]`]]` |
//! | `POST /collections/{name}/payload_indexes` | [`PayloadIndexRequest`] | [`PayloadIndexRequest::validate`] → [`ValidPayloadIndex`] | 201 `{"status":"created"}` (200 `unchanged`) |
//! | `DELETE /collections/{name}/payload_indexes/{key}` | — | [`validate_payload_key`] | 200 `{"status":"deleted"}` |
//! | `POST /collections/{name}/count` | [`CountRequest`] | [`CountRequest::validate`] | 200 [`CountResponse`] |
//! | `POST /collections/{name}/delete` | [`DeleteByFilterRequest`] | [`DeleteByFilterRequest::validate`] | 200 [`DeleteByFilterResponse`] |
//!
//! Unknown JSON fields are ignored (as the seed server did), except inside
//! a [`Filter`] and in [`Limits`], where a typo would silently change
//! meaning. Errors: see [`error`](crate::ApiError) for the status/code table.

pub mod auth;
mod collection;
mod error;
mod filter;
#[cfg(feature = "serve")]
pub mod http_serve;
mod json;
mod limits;
mod membership;
mod metric;
pub mod openapi;
pub mod openapi_replica;
mod partition;
mod payload_index;
mod search;
mod snapshot;
mod status;
mod vectors;

pub use auth::{API_KEY_HEADER, Access, ApiKeys};
pub use collection::{
    CollectionInfo, CreateCollectionRequest, DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_M,
    DEFAULT_PQ_CENTROIDS, MAX_NAME_LEN, MAX_OVERSAMPLING, Quantization, ValidCreate, validate_collection_name,
};
pub use error::{ApiError, ErrorBody};
pub use filter::{Condition, Filter, MAX_CONDITIONS, MAX_IN_VALUES, Range};
pub use json::{ComponentProblem, IdInput, VectorProblem, VectorValues, json_error, parse_json, parse_vector_id};
pub use limits::Limits;
pub use membership::{
    AssignedPartition, AssignmentRequest, CATCH_UP_HEADER, CollectionAssignment, CollectionHolding, EPOCH_HEADER,
    HeldPartition, MAX_PLACEMENT_LEN, PLACEMENT_HEADER, PLANNER_LEASE_MS, PartitionGeneration, PartitionState,
    PartitionStateRequest, PartitionStateResponse, RouterSeen, ShardAssignment, UNREADY_HEADER, format_unready,
    parse_unready,
};
pub use metric::Metric;
pub use openapi::ApiDoc;
pub use openapi_replica::{ReplicaDoc, node_openapi};
pub use partition::{
    Digests, DigestsQuery, ImportReport, MAX_PARTITIONS, PartitionDigest, PurgeRequest, PurgeResponse, Stamps,
    StampsQuery, VersionStamp, parse_partition, partition_of, stamp_hash, valid_partitions,
};
pub use payload_index::{
    CountRequest, CountResponse, DeleteByFilterRequest, DeleteByFilterResponse, MAX_PAYLOAD_INDEXES,
    MAX_PAYLOAD_KEY_BYTES, PayloadIndexRequest, PayloadIndexType, ValidPayloadIndex, validate_payload_indexes,
    validate_payload_key,
};
pub use search::{
    BatchSearchRequest, DEFAULT_K, PARTIAL_HEADER, SearchHit, SearchRequest, ValidBatchSearch, ValidSearch,
};
pub use snapshot::{SNAPSHOT_MEDIA_TYPE, SnapshotError, SnapshotReader, SnapshotRecord, SnapshotWriter};
pub use status::StatusResponse;
pub use utoipa::OpenApi;
pub use vectors::{
    DeleteQuery, IdsPage, IdsQuery, MAX_NORM, UpsertRequest, ValidIdsQuery, ValidUpsert, VectorInput, VectorRecord,
};
