//! The `request_json` target: a request body through the parse and
//! validate steps a node's handler runs (`parse_json::<T>` then
//! `T::validate`), for every JSON body of the API.
//!
//! Properties: a rejected body is a 4xx (never a 5xx, never a panic); an
//! accepted one, where the API has a `Valid*` form, serializes to a body
//! that parses and validates to the same value — that is what the router
//! sends to the shards.

use ruvector_api::{
    ApiError, AssignmentRequest, BatchSearchRequest, CountRequest, CreateCollectionRequest, DeleteByFilterRequest,
    Limits, Metric, PartitionStateRequest, PayloadIndexRequest, PurgeRequest, SearchRequest, UpsertRequest, parse_json,
    validate_collection_name,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Bytes, Outcome};

/// The bodies, in the order of the route selector byte.
pub const ROUTES: [&str; 10] = [
    "create_collection",
    "upsert",
    "search",
    "search_batch",
    "payload_index",
    "count",
    "delete_by_filter",
    "purge",
    "assignment",
    "partition_state",
];

/// The input [`check`] reads: route index, collection dimension (1 + `dim`
/// modulo 8), metric index, body.
pub fn encode(route: &str, dim: u8, metric: u8, body: &[u8]) -> Vec<u8> {
    let r = ROUTES.iter().position(|x| *x == route).expect("a known route") as u8;
    let mut out = vec![r, dim, metric];
    out.extend_from_slice(body);
    out
}

fn rejected(route: &str, e: &ApiError) -> Outcome {
    assert!(e.status().is_client_error(), "{route}: a bad body must be a 4xx, got {}: {e}", e.status());
    Outcome::Refused
}

/// Parses and validates `body` as `R`; when valid, checks that the valid
/// form `V` serializes to a body that gives the same `V` again.
fn round_trip<R, V>(route: &str, body: &[u8], validate: impl Fn(R) -> Result<V, ApiError>) -> Outcome
where
    R: DeserializeOwned,
    V: Serialize + PartialEq + std::fmt::Debug,
{
    let valid = match parse_json::<R>(body).and_then(&validate) {
        Ok(valid) => valid,
        Err(e) => return rejected(route, &e),
    };
    let text = serde_json::to_vec(&valid).expect("a valid request serializes");
    let again = parse_json::<R>(&text).and_then(&validate).unwrap_or_else(|e| {
        panic!("{route}: the serialized valid request {} is refused: {e}", String::from_utf8_lossy(&text))
    });
    assert_eq!(again, valid, "{route}: changed through {}", String::from_utf8_lossy(&text));
    Outcome::Accepted
}

/// Parses and validates `body` as `R` where there is no `Valid*` form.
fn accepted<R: DeserializeOwned>(route: &str, body: &[u8], validate: impl Fn(R) -> Result<(), ApiError>) -> Outcome {
    match parse_json::<R>(body).and_then(validate) {
        Ok(()) => Outcome::Accepted,
        Err(e) => rejected(route, &e),
    }
}

/// `request_json`: `route | dim | metric | body`.
pub(crate) fn check(data: &[u8]) -> Outcome {
    let mut b = Bytes::new(data);
    let route = ROUTES[b.u8() as usize % ROUTES.len()];
    let dim = 1 + b.u8() as usize % 8;
    let metric = Metric::ALL[b.u8() as usize % Metric::ALL.len()];
    let body = b.rest();
    let limits = Limits::default();
    match route {
        "create_collection" => round_trip(route, body, |r: CreateCollectionRequest| r.validate(&limits)),
        "upsert" => round_trip(route, body, |r: UpsertRequest| r.validate(dim, metric, &limits)),
        "search" => round_trip(route, body, |r: SearchRequest| r.validate(dim, &limits)),
        "search_batch" => round_trip(route, body, |r: BatchSearchRequest| r.validate(dim, &limits)),
        "payload_index" => round_trip(route, body, |r: PayloadIndexRequest| r.validate()),
        "count" => round_trip(route, body, |r: CountRequest| r.validate()),
        "delete_by_filter" => accepted(route, body, |r: DeleteByFilterRequest| r.validate().map(drop)),
        "purge" => accepted(route, body, |r: PurgeRequest| r.validate(1 + dim as u32 * 8)),
        "assignment" => accepted(route, body, |r: AssignmentRequest| r.validate()),
        _ => accepted(route, body, |r: PartitionStateRequest| validate_collection_name(&r.collection)),
    }
}
