//! The router's OpenAPI document, served at `GET /openapi.json`
//! ([`router_openapi`]): the client API every node serves
//! (`ruvector_api::ApiDoc`) plus the routes only a router serves,
//! `GET /cluster` and `POST /cluster/repair` ([`RouterDoc`]). A node's
//! replication routes (`/cluster/assignment`, digests, stamps, …) are not
//! listed: the router does not serve them.
//!
//! The document is also where the `Allow` header of a 405 comes from
//! ([`allowed_methods`]): the routes served are exactly the ones listed, so
//! the two cannot drift apart.
//!
//! The functions below are markers for their `#[utoipa::path]` attributes;
//! the handlers live in `http.rs`.
#![allow(dead_code, reason = "path markers exist only for their #[utoipa::path] attributes")]

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::HeaderValue;
use ruvector_api::openapi::UnsignedFormats;
use ruvector_api::{ApiDoc, ErrorBody, OpenApi, PartitionState};

use crate::{ClusterStatus, CollectionPlacement, MoveStatus, RepairReport, ShardStatus};

/// The OpenAPI document of the router-only routes (tag `cluster`); the
/// router serves it merged into `ApiDoc`, see [`router_openapi`].
#[derive(Debug, OpenApi)]
#[openapi(
    paths(cluster_status, repair),
    components(schemas(ClusterStatus, CollectionPlacement, MoveStatus, PartitionState, RepairReport, ShardStatus)),
    modifiers(&UnsignedFormats),
    tags(
        (name = "cluster", description = "Router only: the shards, where partitions live, and anti-entropy repair")
    )
)]
pub(crate) struct RouterDoc;

/// The document the router serves at `GET /openapi.json`.
pub(crate) fn router_openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(RouterDoc::openapi())
}

/// The `Allow` header for a route template of the router's document (as
/// axum's `MatchedPath` spells it): the methods it lists, with `HEAD`
/// wherever `GET` is (axum answers it). `None` for a template the
/// document does not list.
pub(crate) fn allowed_methods(template: &str) -> Option<&'static HeaderValue> {
    static ALLOW: OnceLock<HashMap<String, HeaderValue>> = OnceLock::new();
    ALLOW
        .get_or_init(|| {
            router_openapi()
                .paths
                .paths
                .iter()
                .filter_map(|(path, item)| {
                    let mut methods = Vec::new();
                    for (listed, name) in [
                        (item.get.is_some(), "GET,HEAD"),
                        (item.post.is_some(), "POST"),
                        (item.put.is_some(), "PUT"),
                        (item.patch.is_some(), "PATCH"),
                        (item.delete.is_some(), "DELETE"),
                    ] {
                        if listed {
                            methods.push(name);
                        }
                    }
                    let value = HeaderValue::from_str(&methods.join(",")).ok()?;
                    Some((path.clone(), value))
                })
                .collect()
        })
        .get(template)
}

/// Every configured shard's status and where each partitioned
/// collection's copies live, with their states. Needs a key (either)
/// when keys are configured: shard addresses and the layout are not public.
#[utoipa::path(get, path = "/cluster", tag = "cluster", security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The cluster as the shards report it now", body = ClusterStatus),
        (status = 401, description = "Missing or invalid API key", body = ruvector_api::ErrorBody),
    ))]
fn cluster_status() {}

/// Runs one anti-entropy pass now: for every partitioned collection, the
/// copies of each partition are compared by digest and those that
/// disagree are sent what they lack. Shards that are down are skipped
/// (listed in `errors`) and repaired by a later pass.
#[utoipa::path(post, path = "/cluster/repair", tag = "cluster", security((), ("api_key" = [])),
    responses(
        (status = 200, description = "What the pass did", body = RepairReport),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Read-only API key", body = ErrorBody),
    ))]
fn repair() {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        let json = router_openapi().to_pretty_json().expect("document serializes");
        serde_json::from_str(&json).expect("document is valid JSON")
    }

    /// Every operation of `doc`, as (path, method).
    fn operations(doc: &Value) -> BTreeSet<(String, String)> {
        let paths = doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
                methods.into_iter().map(move |method| (path.clone(), method))
            })
            .collect()
    }

    #[test]
    fn the_router_document_lists_the_client_api_and_the_cluster_routes() {
        let doc = doc();
        let listed = operations(&doc);
        let common = operations(&serde_json::to_value(ApiDoc::openapi()).expect("serializes"));
        let mut expected = common.clone();
        expected.insert(("/cluster".to_owned(), "get".to_owned()));
        expected.insert(("/cluster/repair".to_owned(), "post".to_owned()));
        assert_eq!(listed, expected);
        assert!(common.contains(&("/collections/{name}/search".to_owned(), "post".to_owned())));
        // A node's replication routes are not the router's.
        for path in ["/cluster/assignment", "/cluster/partitions", "/collections/{name}/digests"] {
            assert!(doc["paths"][path].is_null(), "{path} listed");
        }
        assert_eq!(doc["paths"]["/cluster"]["get"]["tags"][0], "cluster");
        assert!(doc["paths"]["/cluster"]["get"]["security"].is_array(), "/cluster takes a key");
        assert!(doc["paths"]["/cluster/repair"]["post"]["responses"]["403"].is_object());
    }

    #[test]
    fn the_router_document_references_the_cluster_schemas() {
        let doc = doc();
        let ok_ref = |path: &str, method: &str| {
            doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].clone()
        };
        assert_eq!(ok_ref("/cluster", "get"), "#/components/schemas/ClusterStatus");
        assert_eq!(ok_ref("/cluster/repair", "post"), "#/components/schemas/RepairReport");
        for schema in [
            "ClusterStatus",
            "CollectionPlacement",
            "MoveStatus",
            "ShardStatus",
            "PartitionState",
            "RepairReport",
            "ErrorBody",
        ] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema} missing");
        }
        assert!(doc["components"]["schemas"]["SyncReport"].is_null(), "SyncReport is not served");
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
        assert!(!doc.to_string().contains("u-int"), "unsigned formats are spelled uintN");
        let states = &doc["components"]["schemas"]["CollectionPlacement"]["properties"]["states"];
        assert_eq!(states["type"], "array", "{states}");
        assert_eq!(states["items"]["type"], "array", "{states}");
    }
}
