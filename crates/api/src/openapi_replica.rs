//! The replication routes of a node, which only a node serves: routers
//! call them on their shards to push the placement, move partition copies
//! between `filling` and `ready` ([`AssignmentRequest`],
//! [`PartitionStateRequest`]), and compare and repair copies ([`Digests`],
//! [`Stamps`], [`PurgeRequest`]). A node used on its own does not need
//! them.
//!
//! [`ReplicaDoc`] documents them; [`node_openapi`] is the document a node
//! serves at `GET /openapi.json`: [`ApiDoc`] merged with [`ReplicaDoc`].
//!
//! ```
//! let node = ruvector_api::node_openapi();
//! assert!(node.paths.paths.contains_key("/cluster/assignment"));
//! assert!(node.paths.paths.contains_key("/collections/{name}/search"));
//! ```
//!
//! As in [`crate::openapi`], the functions below are markers for their
//! `#[utoipa::path]` attributes; the handlers live in the server crate.
#![allow(dead_code, reason = "path markers exist only for their #[utoipa::path] attributes")]

use utoipa::OpenApi;
use utoipa::openapi::path::HttpMethod;

use crate::openapi::{CREATED_NAME, UnsignedFormats, add_link};
use crate::{
    ApiDoc, AssignedPartition, AssignmentRequest, CollectionAssignment, CollectionHolding, Digests, DigestsQuery,
    ErrorBody, HeldPartition, ImportReport, PartitionDigest, PartitionGeneration, PartitionState,
    PartitionStateRequest, PartitionStateResponse, PurgeRequest, PurgeResponse, RouterSeen, ShardAssignment, Stamps,
    StampsQuery, StatusResponse, VersionStamp,
};

/// The OpenAPI document of the node-only replication routes (tag
/// `replication`); a node serves it merged into [`ApiDoc`], see
/// [`node_openapi`].
#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        started,
        digests,
        stamps,
        purge_tombstones,
        export_partition,
        import_partition,
        get_assignment,
        put_assignment,
        set_partition_state
    ),
    components(schemas(
        AssignedPartition,
        AssignmentRequest,
        CollectionAssignment,
        CollectionHolding,
        Digests,
        HeldPartition,
        ImportReport,
        PartitionDigest,
        PartitionGeneration,
        PartitionState,
        PartitionStateRequest,
        PartitionStateResponse,
        PurgeRequest,
        PurgeResponse,
        RouterSeen,
        ShardAssignment,
        Stamps,
        VersionStamp,
    )),
    modifiers(&UnsignedFormats),
    tags(
        (name = "replication", description = "Node only: placement, partition states, digests, stamps, partition snapshots and tombstone purges. Used by routers on their shards; a node used on its own does not need them.")
    )
)]
pub struct ReplicaDoc;

/// The document a node serves at `GET /openapi.json`: the client API
/// ([`ApiDoc`]) and the replication routes ([`ReplicaDoc`]).
///
/// A created collection links to its replication routes too (they answer
/// 400 unless it was created with `partitions`).
pub fn node_openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi().merge_from(ReplicaDoc::openapi());
    let created = ("/collections", &HttpMethod::Post, "201");
    for target in ["digests", "stamps", "purge_tombstones", "export_partition"] {
        add_link(&mut doc, created, target, &[("name", CREATED_NAME)], None);
    }
    doc
}

/// Startup: 200 once the node has recovered its data, whether or not its
/// partitions have caught up (`/ready` also waits for that) — what a startup
/// probe or a compose healthcheck asks, since catching up needs a router.
#[utoipa::path(get, path = "/started", tag = "service",
    responses(
        (status = 200, description = "Recovered", body = StatusResponse),
        (status = 503, description = "Recovering", body = ErrorBody),
    ))]
fn started() {}

/// Per-partition digests of this copy: what routers compare.
///
/// Only for a collection created with partitions (through a router); one
/// created without answers 400 `invalid_parameter`.
#[utoipa::path(get, path = "/collections/{name}/digests", tag = "replication", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$"), DigestsQuery),
    responses(
        (status = 200, description = "One digest per partition, in partition order", body = Digests),
        (status = 400, description = "Invalid name (`invalid_name`), bad `before`, or a collection without partitions (`invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
fn digests() {}

/// Every version stamp of one partition of this copy, ascending by id.
///
/// Only for a collection created with partitions (through a router); one
/// created without answers 400 `invalid_parameter`.
#[utoipa::path(get, path = "/collections/{name}/stamps", tag = "replication", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$"), StampsQuery),
    responses(
        (status = 200, description = "The partition's stamps and its purge bound", body = Stamps),
        (status = 400, description = "Invalid name (`invalid_name`), a missing or out-of-range `partition`, or a collection without partitions (`invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
fn stamps() {}

/// Forgets this copy's tombstones older than `before` in the given
/// partitions, and remembers the bound (`purged_before` in stamps).
///
/// Only for a collection created with partitions (through a router); one
/// created without answers 400 `invalid_parameter`.
#[utoipa::path(post, path = "/collections/{name}/tombstones/purge", tag = "replication", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$")),
    request_body = PurgeRequest,
    responses(
        (status = 200, description = "Tombstones forgotten", body = PurgeResponse),
        (status = 400, description = "Malformed JSON (`invalid_json`, `invalid_body`), invalid name (`invalid_name`), a partition out of range or a collection without partitions (`invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
fn purge_tombstones() {}

/// This copy's newest versioned write of every id in one partition (live
/// points with vectors and payloads, and tombstones), streamed as a
/// partition snapshot (`application/x-ruvector-partition`: a header,
/// CRC-32-checked frames of records, a trailer with the count; see
/// `ruvector_api::SnapshotWriter`). Routers pipe it into a new copy.
#[utoipa::path(get, path = "/collections/{name}/partitions/{partition}/snapshot", tag = "replication", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$"), ("partition" = u32, Path, description = "Partition number")),
    responses(
        (status = 200, description = "The partition snapshot, streamed", content_type = "application/x-ruvector-partition", body = Vec<u8>),
        (status = 400, description = "Invalid name (`invalid_name`), a partition out of range or a collection without partitions (`invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 421, description = "This shard does not hold the partition (`partition_not_held`), or the request's placement epoch is older (`stale_placement`)", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
fn export_partition() {}

/// Applies a partition snapshot as it arrives, as versioned writes: each
/// record changes this copy only when newer than what it holds, so it may
/// be applied beside live writes, twice, or again after being cut off.
/// Each frame is verified before any of its records is applied.
#[utoipa::path(post, path = "/collections/{name}/partitions/{partition}/snapshot", tag = "replication", security((), ("api_key" = [])),
    params(("name" = String, Path, description = "Collection name", pattern = "^[A-Za-z0-9_-]{1,255}$"), ("partition" = u32, Path, description = "Partition number")),
    request_body(content = Vec<u8>, content_type = "application/x-ruvector-partition", description = "A partition snapshot of this partition, with the collection's dimension"),
    responses(
        (status = 200, description = "Applied", body = ImportReport),
        (status = 400, description = "A damaged, cut-off or misdirected snapshot (`bad_request`, naming the byte offset), or vectors the collection refuses; what complete frames held before the problem stays applied", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 421, description = "This shard does not hold the partition (`partition_not_held`), or the request's placement epoch is older (`stale_placement`)", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
fn import_partition() {}

/// The partitions this shard holds, per partitioned collection, with
/// their peers and states.
#[utoipa::path(get, path = "/cluster/assignment", tag = "replication", security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The assignment; `placement` and `held` are null before a router assigned anything", body = ShardAssignment),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
fn get_assignment() {}

/// Sets this shard's part of the placement for the listed collections
/// (others are left as they are) and keeps it in the data directory.
///
/// Newly held partitions start filling, unless the collection is `fresh`.
#[utoipa::path(put, path = "/cluster/assignment", tag = "replication", security((), ("api_key" = [])),
    request_body = AssignmentRequest,
    responses(
        (status = 200, description = "The assignment now in force", body = ShardAssignment),
        (status = 400, description = "Malformed JSON (`invalid_json`, `invalid_body`), invalid name (`invalid_name`), bad placement, partitions or peers, or a partition count that differs from the collection's (`invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 404, description = "A listed collection does not exist on this node", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 421, description = "An epoch older than the shard's, or a planner claim older than the fresh claim of a router started later (`stale_placement`): nothing changed", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
fn put_assignment() {}

/// Moves held partitions of a collection to `filling` or `ready`.
///
/// A move to `ready` names the generation its catch-up started from and is
/// skipped for a partition whose generation changed since; partitions not
/// held are skipped too. The response lists the partitions now in the
/// requested state.
#[utoipa::path(post, path = "/cluster/partitions", tag = "replication", security((), ("api_key" = [])),
    request_body = PartitionStateRequest,
    responses(
        (status = 200, description = "The partitions now in the requested state", body = PartitionStateResponse),
        (status = 400, description = "Malformed JSON (`invalid_json`, `invalid_body`) or invalid name (`invalid_name`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 421, description = "No partitions of the collection are assigned to this shard (`partition_not_held`)", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
fn set_partition_state() {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::tests::{COMMON_ROUTES, checked_links, operations, route_set, to_json};

    /// The routes only a node serves.
    const REPLICA_ROUTES: [(&str, &str); 8] = [
        ("/collections/{name}/digests", "get"),
        ("/collections/{name}/stamps", "get"),
        ("/collections/{name}/partitions/{partition}/snapshot", "get"),
        ("/collections/{name}/partitions/{partition}/snapshot", "post"),
        ("/collections/{name}/tombstones/purge", "post"),
        ("/cluster/assignment", "get"),
        ("/cluster/assignment", "put"),
        ("/cluster/partitions", "post"),
    ];

    #[test]
    fn the_node_document_lists_every_route_a_node_serves() {
        let doc = to_json(&node_openapi());
        let started = [("/started", "get")];
        let expected: Vec<(&str, &str)> =
            COMMON_ROUTES.iter().chain(&REPLICA_ROUTES).chain(&started).copied().collect();
        assert_eq!(operations(&doc), route_set(&expected));
        let node_only: Vec<(&str, &str)> = REPLICA_ROUTES.iter().chain(&started).copied().collect();
        assert_eq!(operations(&to_json(&ReplicaDoc::openapi())), route_set(&node_only));
        assert_eq!(doc["paths"]["/started"]["get"]["tags"][0], "service");
        for (path, method) in REPLICA_ROUTES {
            assert_eq!(doc["paths"][path][method]["tags"][0], "replication", "{method} {path}");
        }
        assert_eq!(doc["info"]["title"], "ruvector");
        let tags: Vec<&str> = doc["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(tags, ["service", "collections", "vectors", "search", "replication"]);
    }

    #[test]
    fn a_created_collection_links_to_its_replication_routes() {
        let links = checked_links(&to_json(&node_openapi()));
        for target in ["digests", "stamps", "purge_tombstones", "export_partition", "search"] {
            let link = ("create_collection".to_owned(), "201".to_owned(), target.to_owned());
            assert!(links.contains(&link), "{target}: {links:?}");
        }
    }

    #[test]
    fn the_node_document_references_the_replication_schemas() {
        let doc = to_json(&node_openapi());
        let body_ref = |path: &str, method: &str| {
            doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"].clone()
        };
        assert_eq!(body_ref("/cluster/assignment", "put"), "#/components/schemas/AssignmentRequest");
        assert_eq!(body_ref("/cluster/partitions", "post"), "#/components/schemas/PartitionStateRequest");
        assert_eq!(body_ref("/collections/{name}/tombstones/purge", "post"), "#/components/schemas/PurgeRequest");
        let ok_ref = |path: &str, method: &str| {
            doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].clone()
        };
        assert_eq!(ok_ref("/collections/{name}/digests", "get"), "#/components/schemas/Digests");
        assert_eq!(ok_ref("/collections/{name}/stamps", "get"), "#/components/schemas/Stamps");
        assert_eq!(ok_ref("/cluster/assignment", "get"), "#/components/schemas/ShardAssignment");
        assert_eq!(ok_ref("/cluster/partitions", "post"), "#/components/schemas/PartitionStateResponse");
        for schema in [
            "AssignedPartition",
            "AssignmentRequest",
            "CollectionAssignment",
            "CollectionHolding",
            "Digests",
            "HeldPartition",
            "PartitionDigest",
            "PartitionGeneration",
            "PartitionState",
            "PartitionStateRequest",
            "PartitionStateResponse",
            "PurgeRequest",
            "PurgeResponse",
            "ShardAssignment",
            "Stamps",
            "VersionStamp",
            // The client API's schemas survive the merge.
            "ErrorBody",
            "SearchRequest",
        ] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema} missing");
        }
        let parameter_names = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(parameter_names("/collections/{name}/digests"), ["name", "before"]);
        assert_eq!(parameter_names("/collections/{name}/stamps"), ["name", "partition"]);
        let stale = &doc["paths"]["/cluster/assignment"]["put"]["responses"]["421"]["description"];
        assert!(stale.as_str().is_some_and(|d| d.contains("stale_placement")), "{stale}");
        let misdirected = &doc["paths"]["/cluster/partitions"]["post"]["responses"]["421"]["description"];
        assert!(misdirected.as_str().is_some_and(|d| d.contains("partition_not_held")), "{misdirected}");
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    }
}
