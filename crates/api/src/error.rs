//! The API error type and the JSON error body every failed request returns.
//!
//! Every error a client can see is one [`ApiError`] variant. The variant
//! decides three things, all in **one** exhaustive match
//! ([`ApiError::class`], no catch-all arm): the HTTP status, the stable
//! machine-readable `code`, and (through `Display`) the human message. The
//! body is always [`ErrorBody`]: `{"error":"<message>","code":"<code>"}` —
//! the seed's `error` string plus a stable code.
//!
//! | variant | status | code |
//! |---|---|---|
//! | [`ApiError::InvalidJson`] | 400 | `invalid_json` |
//! | [`ApiError::InvalidBody`] | 400 | `invalid_body` |
//! | [`ApiError::BadRequest`] | 400 | `bad_request` |
//! | [`ApiError::InvalidName`] | 400 | `invalid_name` |
//! | [`ApiError::InvalidDimension`] | 400 | `invalid_dimension` |
//! | [`ApiError::DimensionMismatch`] | 400 | `dimension_mismatch` |
//! | [`ApiError::InvalidMetric`] | 400 | `invalid_metric` |
//! | [`ApiError::InvalidVector`] | 400 | `invalid_vector` |
//! | [`ApiError::InvalidId`] | 400 | `invalid_id` |
//! | [`ApiError::DuplicateId`] | 400 | `duplicate_id` |
//! | [`ApiError::InvalidParameter`] | 400 | `invalid_parameter` |
//! | [`ApiError::InvalidFilter`] | 400 | `invalid_filter` |
//! | [`ApiError::InvalidPayload`] | 400 | `invalid_payload` |
//! | [`ApiError::InvalidBatch`] | 400 | `invalid_batch` |
//! | [`ApiError::Unauthorized`] | 401 | `unauthorized` |
//! | [`ApiError::Forbidden`] | 403 | `forbidden` |
//! | [`ApiError::NotFound`] | 404 | `not_found` |
//! | [`ApiError::MethodNotAllowed`] | 405 | `method_not_allowed` |
//! | [`ApiError::RequestTimeout`] | 408 | `request_timeout` |
//! | [`ApiError::CollectionExists`] | 409 | `collection_exists` |
//! | [`ApiError::PayloadTooLarge`] | 413 | `payload_too_large` |
//! | [`ApiError::PartitionNotHeld`] | 421 | `partition_not_held` |
//! | [`ApiError::PartitionNotReady`] | 421 | `partition_not_ready` |
//! | [`ApiError::StalePlacement`] | 421 | `stale_placement` |
//! | [`ApiError::Internal`] | 500 | `internal` |
//! | [`ApiError::Unavailable`] | 503 | `unavailable` |
//! | [`ApiError::InsufficientStorage`] | 507 | `insufficient_storage` |
//!
//! Invariants:
//! - a 4xx is the client's fault and its message says what to fix (for batch
//!   items it names the item index and field, e.g. `vectors[3].vector[7]`);
//! - a 5xx is the server's fault; [`ApiError::Internal`] never shows its
//!   detail to the client (the server logs [`ApiError::internal_detail`]).
//!
//! Message-carrying variants hold a plain `String` so that a router can turn
//! a shard's error body back into the same variant ([`ApiError::from_wire`])
//! and forward it unchanged. Use the constructors (`ApiError::not_found_collection`,
//! `ApiError::dimension_mismatch`, …) for consistent messages.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The JSON body of every error response: `{"error":"…","code":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": "vectors[2].vector: expected dimension 128, got 3", "code": "dimension_mismatch"}))]
pub struct ErrorBody {
    /// A human-readable message; for batch requests it names the offending
    /// item index and field.
    pub error: String,
    /// A stable machine-readable code (see the crate docs for the table).
    pub code: String,
}

/// Everything that can go wrong in a request, by whose fault it is.
///
/// See the module docs for the variant → status / code table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The body is not syntactically valid JSON (or is empty / truncated).
    #[error("malformed JSON: {0}")]
    InvalidJson(String),
    /// The body is JSON but not of the expected shape (wrong type, missing
    /// required field, unknown enum tag).
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// Any other malformed request (e.g. a bad query string).
    #[error("{0}")]
    BadRequest(String),
    /// A collection name that is empty or not `^[A-Za-z0-9_-]{1,255}$`.
    #[error("{0}")]
    InvalidName(String),
    /// A collection dimension that is missing, ≤ 0 or above the limit.
    #[error("{0}")]
    InvalidDimension(String),
    /// A vector whose length differs from the collection's dimension.
    #[error("{0}")]
    DimensionMismatch(String),
    /// A metric name that is not one of the known names or aliases.
    #[error("{0}")]
    InvalidMetric(String),
    /// A vector with a null, non-numeric, non-finite or out-of-f32-range
    /// component, a missing vector, or a zero vector under cosine.
    #[error("{0}")]
    InvalidVector(String),
    /// A vector id that is not a u64 (negative, fractional, a string, …).
    #[error("{0}")]
    InvalidId(String),
    /// The same id twice in one batch.
    #[error("{0}")]
    DuplicateId(String),
    /// Any other out-of-range or ill-typed parameter (`k`, `ef`, `m`,
    /// quantization settings, `limit`, …).
    #[error("{0}")]
    InvalidParameter(String),
    /// A malformed search filter.
    #[error("{0}")]
    InvalidFilter(String),
    /// A vector payload that is not a JSON object.
    #[error("{0}")]
    InvalidPayload(String),
    /// A batch (vectors or searches) that is missing, empty or above the limit.
    #[error("{0}")]
    InvalidBatch(String),
    /// No or an unknown API key.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// A valid API key that may not do this (a read-only key writing).
    #[error("this API key is not allowed to perform this operation")]
    Forbidden,
    /// A collection, vector or route that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A known route called with the wrong method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request body did not arrive within `Limits::body_read_timeout_ms`
    /// (a slow or stalled client); nothing was changed.
    #[error("{0}")]
    RequestTimeout(String),
    /// Creating a collection whose name is taken.
    #[error("{0}")]
    CollectionExists(String),
    /// A request body above `Limits::max_body_bytes`.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A shard asked about a partition placed elsewhere (421 Misdirected
    /// Request: the asker's placement is not this shard's). Never a 404:
    /// the vector may well exist, on another shard.
    #[error("{0}")]
    PartitionNotHeld(String),
    /// A shard asked to read a partition it holds but is still filling
    /// (catching up after a restart or missed writes): ask another copy.
    #[error("{0}")]
    PartitionNotReady(String),
    /// A router's request made under an older placement epoch than the
    /// shard's (the router has not seen a move yet): it refreshes its
    /// placement from the shards and retries.
    #[error("{0}")]
    StalePlacement(String),
    /// A fault of the server itself. The client sees only a generic message;
    /// `detail` is for the server's log.
    #[error("internal server error")]
    Internal {
        /// What went wrong, for logs only — never sent to the client.
        detail: String,
    },
    /// The node is not ready (recovering, shutting down) or a shard is down.
    #[error("{0}")]
    Unavailable(String),
    /// The data volume is full: the write was not applied (reads work;
    /// writes work again once there is room).
    #[error("{0}")]
    InsufficientStorage(String),
}

impl ApiError {
    /// The single variant → (status, code) mapping. Exhaustive, no catch-all.
    fn class(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
            ApiError::InvalidDimension(_) => (StatusCode::BAD_REQUEST, "invalid_dimension"),
            ApiError::DimensionMismatch(_) => (StatusCode::BAD_REQUEST, "dimension_mismatch"),
            ApiError::InvalidMetric(_) => (StatusCode::BAD_REQUEST, "invalid_metric"),
            ApiError::InvalidVector(_) => (StatusCode::BAD_REQUEST, "invalid_vector"),
            ApiError::InvalidId(_) => (StatusCode::BAD_REQUEST, "invalid_id"),
            ApiError::DuplicateId(_) => (StatusCode::BAD_REQUEST, "duplicate_id"),
            ApiError::InvalidParameter(_) => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            ApiError::InvalidFilter(_) => (StatusCode::BAD_REQUEST, "invalid_filter"),
            ApiError::InvalidPayload(_) => (StatusCode::BAD_REQUEST, "invalid_payload"),
            ApiError::InvalidBatch(_) => (StatusCode::BAD_REQUEST, "invalid_batch"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::CollectionExists(_) => (StatusCode::CONFLICT, "collection_exists"),
            ApiError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::PartitionNotHeld(_) => (StatusCode::MISDIRECTED_REQUEST, "partition_not_held"),
            ApiError::PartitionNotReady(_) => (StatusCode::MISDIRECTED_REQUEST, "partition_not_ready"),
            ApiError::StalePlacement(_) => (StatusCode::MISDIRECTED_REQUEST, "stale_placement"),
            ApiError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::InsufficientStorage(_) => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
        }
    }

    /// Every code [`ApiError::code`] can return, in table order.
    pub const CODES: [&'static str; 27] = [
        "invalid_json",
        "invalid_body",
        "bad_request",
        "invalid_name",
        "invalid_dimension",
        "dimension_mismatch",
        "invalid_metric",
        "invalid_vector",
        "invalid_id",
        "duplicate_id",
        "invalid_parameter",
        "invalid_filter",
        "invalid_payload",
        "invalid_batch",
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "request_timeout",
        "collection_exists",
        "payload_too_large",
        "partition_not_held",
        "partition_not_ready",
        "stale_placement",
        "internal",
        "unavailable",
        "insufficient_storage",
    ];

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.class().0
    }

    /// The HTTP status as a number (for callers that do not use `http`).
    pub fn status_u16(&self) -> u16 {
        self.class().0.as_u16()
    }

    /// The stable machine-readable code (the body's `code`).
    pub fn code(&self) -> &'static str {
        self.class().1
    }

    /// The JSON body to send. For [`ApiError::Internal`] the message is
    /// generic; the detail stays out.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.to_string(), code: self.code().to_owned() }
    }

    /// Whether the client caused this error (a 4xx).
    pub fn is_client_error(&self) -> bool {
        self.status().is_client_error()
    }

    /// For logging: the detail of an [`ApiError::Internal`], else `None`.
    pub fn internal_detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal { detail } => Some(detail),
            _ => None,
        }
    }

    /// An internal error with a detail for the server log.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::Internal { detail: detail.into() }
    }

    /// `collection "x" not found`.
    pub fn not_found_collection(name: &str) -> Self {
        ApiError::NotFound(format!("collection {name:?} not found"))
    }

    /// `vector 7 not found in collection "x"`.
    pub fn not_found_vector(collection: &str, id: u64) -> Self {
        ApiError::NotFound(format!("vector {id} not found in collection {collection:?}"))
    }

    /// `no route for GET /x`.
    pub fn not_found_route(method: &str, path: &str) -> Self {
        ApiError::NotFound(format!("no route for {method} {path}"))
    }

    /// `collection "x" already exists`.
    pub fn collection_exists(name: &str) -> Self {
        ApiError::CollectionExists(format!("collection {name:?} already exists"))
    }

    /// `<at>: expected dimension <expected>, got <got>`.
    pub fn dimension_mismatch(at: &str, expected: usize, got: usize) -> Self {
        ApiError::DimensionMismatch(format!("{at}: expected dimension {expected}, got {got}"))
    }

    /// Rebuilds an error from a status and body received from another node
    /// (a shard), so a router can forward it with the same status and code.
    ///
    /// Unknown codes map by status class: other 4xx → `BadRequest`,
    /// 503/502/504 → `Unavailable`, anything else → `Internal` (whose detail
    /// keeps the upstream message for the log).
    pub fn from_wire(status: u16, body: ErrorBody) -> Self {
        let ErrorBody { error: msg, code } = body;
        match code.as_str() {
            "invalid_json" => ApiError::InvalidJson(strip(&msg, "malformed JSON: ")),
            "invalid_body" => ApiError::InvalidBody(strip(&msg, "invalid request body: ")),
            "bad_request" => ApiError::BadRequest(msg),
            "invalid_name" => ApiError::InvalidName(msg),
            "invalid_dimension" => ApiError::InvalidDimension(msg),
            "dimension_mismatch" => ApiError::DimensionMismatch(msg),
            "invalid_metric" => ApiError::InvalidMetric(msg),
            "invalid_vector" => ApiError::InvalidVector(msg),
            "invalid_id" => ApiError::InvalidId(msg),
            "duplicate_id" => ApiError::DuplicateId(msg),
            "invalid_parameter" => ApiError::InvalidParameter(msg),
            "invalid_filter" => ApiError::InvalidFilter(msg),
            "invalid_payload" => ApiError::InvalidPayload(msg),
            "invalid_batch" => ApiError::InvalidBatch(msg),
            "unauthorized" => ApiError::Unauthorized,
            "forbidden" => ApiError::Forbidden,
            "not_found" => ApiError::NotFound(msg),
            "method_not_allowed" => ApiError::MethodNotAllowed,
            "request_timeout" => ApiError::RequestTimeout(msg),
            "collection_exists" => ApiError::CollectionExists(msg),
            "payload_too_large" => ApiError::PayloadTooLarge { limit: trailing_number(&msg).unwrap_or(0) },
            "partition_not_held" => ApiError::PartitionNotHeld(msg),
            "partition_not_ready" => ApiError::PartitionNotReady(msg),
            "stale_placement" => ApiError::StalePlacement(msg),
            "unavailable" => ApiError::Unavailable(msg),
            "insufficient_storage" => ApiError::InsufficientStorage(msg),
            "internal" => ApiError::internal(format!("upstream internal error: {msg}")),
            _ => match status {
                400..=499 => ApiError::BadRequest(msg),
                502..=504 => ApiError::Unavailable(msg),
                _ => ApiError::internal(format!("upstream status {status} code {code:?}: {msg}")),
            },
        }
    }
}

fn strip(msg: &str, prefix: &str) -> String {
    msg.strip_prefix(prefix).unwrap_or(msg).to_owned()
}

/// The number in `"... of 123 bytes"`.
fn trailing_number(msg: &str) -> Option<usize> {
    msg.split_whitespace().filter_map(|w| w.parse().ok()).next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_variants() -> Vec<ApiError> {
        vec![
            ApiError::InvalidJson("x".into()),
            ApiError::InvalidBody("x".into()),
            ApiError::BadRequest("x".into()),
            ApiError::InvalidName("x".into()),
            ApiError::InvalidDimension("x".into()),
            ApiError::DimensionMismatch("x".into()),
            ApiError::InvalidMetric("x".into()),
            ApiError::InvalidVector("x".into()),
            ApiError::InvalidId("x".into()),
            ApiError::DuplicateId("x".into()),
            ApiError::InvalidParameter("x".into()),
            ApiError::InvalidFilter("x".into()),
            ApiError::InvalidPayload("x".into()),
            ApiError::InvalidBatch("x".into()),
            ApiError::Unauthorized,
            ApiError::Forbidden,
            ApiError::NotFound("x".into()),
            ApiError::MethodNotAllowed,
            ApiError::RequestTimeout("x".into()),
            ApiError::CollectionExists("x".into()),
            ApiError::PayloadTooLarge { limit: 1024 },
            ApiError::PartitionNotHeld("x".into()),
            ApiError::PartitionNotReady("x".into()),
            ApiError::StalePlacement("x".into()),
            ApiError::internal("disk on fire"),
            ApiError::Unavailable("x".into()),
            ApiError::InsufficientStorage("x".into()),
        ]
    }

    #[test]
    fn statuses_and_codes_match_the_table() {
        let got: Vec<(u16, &str)> = all_variants().iter().map(|e| (e.status_u16(), e.code())).collect();
        let expected = [
            (400, "invalid_json"),
            (400, "invalid_body"),
            (400, "bad_request"),
            (400, "invalid_name"),
            (400, "invalid_dimension"),
            (400, "dimension_mismatch"),
            (400, "invalid_metric"),
            (400, "invalid_vector"),
            (400, "invalid_id"),
            (400, "duplicate_id"),
            (400, "invalid_parameter"),
            (400, "invalid_filter"),
            (400, "invalid_payload"),
            (400, "invalid_batch"),
            (401, "unauthorized"),
            (403, "forbidden"),
            (404, "not_found"),
            (405, "method_not_allowed"),
            (408, "request_timeout"),
            (409, "collection_exists"),
            (413, "payload_too_large"),
            (421, "partition_not_held"),
            (421, "partition_not_ready"),
            (421, "stale_placement"),
            (500, "internal"),
            (503, "unavailable"),
            (507, "insufficient_storage"),
        ];
        assert_eq!(got, expected);
        let codes: Vec<&str> = expected.iter().map(|(_, c)| *c).collect();
        assert_eq!(codes, ApiError::CODES);
    }

    #[test]
    fn internal_errors_do_not_leak_their_detail() {
        let e = ApiError::internal("open /var/lib/ruvector/wal: permission denied");
        let body = serde_json::to_string(&e.body()).expect("serialize");
        assert_eq!(body, r#"{"error":"internal server error","code":"internal"}"#);
        assert_eq!(e.internal_detail(), Some("open /var/lib/ruvector/wal: permission denied"));
        assert!(!e.is_client_error());
    }

    #[test]
    fn body_has_the_seed_error_field_and_a_code() {
        let e = ApiError::not_found_collection("docs");
        assert_eq!(
            serde_json::to_value(e.body()).expect("serialize"),
            serde_json::json!({"error": "collection \"docs\" not found", "code": "not_found"})
        );
        assert!(e.is_client_error());
    }

    #[test]
    fn from_wire_round_trips_every_client_visible_variant() {
        for e in all_variants() {
            let back = ApiError::from_wire(e.status_u16(), e.body());
            assert_eq!(back.status(), e.status(), "{e:?}");
            assert_eq!(back.code(), e.code(), "{e:?}");
            if !matches!(e, ApiError::Internal { .. }) {
                assert_eq!(back, e);
            }
        }
    }

    #[test]
    fn from_wire_maps_unknown_codes_by_status() {
        let body = |c: &str| ErrorBody { error: "m".into(), code: c.into() };
        assert_eq!(ApiError::from_wire(422, body("weird")), ApiError::BadRequest("m".into()));
        assert_eq!(ApiError::from_wire(502, body("")), ApiError::Unavailable("m".into()));
        assert_eq!(ApiError::from_wire(500, body("")).code(), "internal");
    }
}
