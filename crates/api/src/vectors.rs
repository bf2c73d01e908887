//! Vectors: the upsert batch and its all-or-nothing validation, the stored
//! vector record, and the id scroll (`GET /collections/{name}/ids`).
//!
//! Upsert validation checks every item before anything is written and fails
//! on the first bad one, naming it: `vectors[3].vector[7]: null is not a
//! number`. Rules, in the order they are checked:
//!
//! 1. `vectors` is present, a non-empty array, at most `Limits::max_batch`;
//! 2. for each item: `id` is a u64 JSON number (not negative, fractional or
//!    a string); `vector` is an array of exactly `dimension` finite numbers
//!    within the f32 range (`1e39` is rejected, not rounded to infinity) and
//!    of magnitude at most [`MAX_NORM`] (so distances cannot overflow f32);
//!    under cosine it is not the zero vector; `payload`, when given and not
//!    null, is a JSON object;
//! 3. no id appears twice in the batch.
//!
//! Ids already in the collection are overwritten (upsert).
//!
//! ## Id scroll
//!
//! `GET /collections/{name}/ids?after=<id>&limit=<n>` returns the live ids
//! strictly greater than `after` (from the start when absent), ascending, at
//! most `limit` (default `Limits::default_page`, at most `Limits::max_page`):
//! `{"ids":[...],"next_after":<id>|null}`. `next_after` is the last id of the
//! page when more ids may follow, `null` when the scroll is complete; pass it
//! as `after` to get the next page. The collection's `size` (in
//! [`crate::CollectionInfo`]) is the count.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::json::{IdInput, VectorProblem, VectorValues};
use crate::{ApiError, Limits, Metric};

/// Largest accepted Euclidean norm of a vector: `sqrt(f32::MAX) / 2`
/// (≈ 9.2e18). Above it, squared distances and dot products can overflow
/// f32 to infinity.
pub const MAX_NORM: f64 = 9.223_371_5e18;

/// Checks one vector field. `at` names it in messages (`vectors[3].vector`);
/// `metric` is given when the zero vector must be rejected (cosine).
pub(crate) fn check_vector(
    at: &str,
    vector: Option<VectorValues>,
    dimension: usize,
    metric: Option<Metric>,
) -> Result<Vec<f32>, ApiError> {
    let Some(vector) = vector else {
        return Err(ApiError::InvalidVector(format!("{at}: missing or null; expected an array of numbers")));
    };
    if let Some(VectorProblem::NotAnArray(kind)) = vector.problem() {
        return Err(ApiError::InvalidVector(format!("{at}: expected an array of numbers, got {kind}")));
    }
    if vector.values().len() != dimension {
        return Err(ApiError::dimension_mismatch(at, dimension, vector.values().len()));
    }
    let values = match vector.into_result() {
        Ok(values) => values,
        Err(VectorProblem::Component { index, problem }) => {
            return Err(ApiError::InvalidVector(format!("{at}[{index}]: {problem}")));
        }
        Err(VectorProblem::NotAnArray(kind)) => {
            return Err(ApiError::InvalidVector(format!("{at}: expected an array of numbers, got {kind}")));
        }
    };
    let norm_sq: f64 = values.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if norm_sq > MAX_NORM * MAX_NORM {
        return Err(ApiError::InvalidVector(format!(
            "{at}: magnitude {:e} is too large (at most {MAX_NORM:e}, so distances stay finite)",
            norm_sq.sqrt()
        )));
    }
    if metric == Some(Metric::Cosine) && norm_sq == 0.0 {
        return Err(ApiError::InvalidVector(format!(
            "{at}: the zero vector has no direction and cannot be used with the cosine metric"
        )));
    }
    Ok(values)
}

/// One item of an upsert batch, as received.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, ToSchema)]
pub struct VectorInput {
    /// The vector id: an unsigned 64-bit integer (a JSON number).
    #[serde(default)]
    #[schema(value_type = u64, required = true)]
    pub id: Option<IdInput>,
    /// The components; exactly the collection's dimension.
    #[serde(default)]
    #[schema(value_type = Vec<f32>, required = true)]
    pub vector: Option<VectorValues>,
    /// Optional JSON object stored with the vector and returned by get.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    /// Optional write version (≥ 1; a cluster's router stamps one): the
    /// write is applied only if it is newer than the newest versioned write
    /// of this id, a delete's included; otherwise it is skipped.
    #[serde(default)]
    #[schema(value_type = Option<u64>, minimum = 1)]
    pub version: Option<IdInput>,
}

/// `POST /collections/{name}/vectors` body, as received.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, ToSchema)]
#[schema(example = json!({"vectors": [{"id": 1, "vector": [0.1, 0.2, 0.3], "payload": {"lang": "en"}}]}))]
pub struct UpsertRequest {
    /// The batch: 1..=`Limits::max_batch` items with distinct ids.
    #[serde(default)]
    #[schema(value_type = Vec<VectorInput>, required = true, min_items = 1)]
    pub vectors: Option<Vec<VectorInput>>,
}

/// A stored vector: an item of a validated upsert, and the
/// `GET /collections/{name}/vectors/{id}` response `{"id","vector","payload"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "vector": [0.1, 0.2, 0.3], "payload": {"lang": "en"}}))]
pub struct VectorRecord {
    /// The vector id.
    pub id: u64,
    /// The stored components: as inserted, except under the cosine metric,
    /// where vectors are normalised to unit length at insert (as Qdrant
    /// does) and returned normalised.
    pub vector: Vec<f32>,
    /// The payload object, omitted when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Map<String, Value>>,
    /// The version of the write that stored it, omitted for unversioned
    /// writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// A validated upsert batch. Serializes to an upsert body that any node
/// accepts unchanged (the router sends each shard its part).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ValidUpsert {
    /// The items, in request order, ids distinct.
    pub vectors: Vec<VectorRecord>,
}

impl UpsertRequest {
    /// Validates the whole batch for a collection of `dimension` and
    /// `metric` (all-or-nothing; see the module docs for the rules).
    pub fn validate(self, dimension: usize, metric: Metric, limits: &Limits) -> Result<ValidUpsert, ApiError> {
        let Some(items) = self.vectors else {
            return Err(ApiError::InvalidBatch("vectors: missing or null; expected a non-empty array".to_owned()));
        };
        if items.is_empty() {
            return Err(ApiError::InvalidBatch("vectors: must contain at least one vector".to_owned()));
        }
        if items.len() > limits.max_batch {
            return Err(ApiError::InvalidBatch(format!(
                "vectors: {} vectors in one batch; the limit is {}",
                items.len(),
                limits.max_batch
            )));
        }
        let mut first_seen: HashMap<u64, usize> = HashMap::with_capacity(items.len());
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let id = match item.id.map(IdInput::into_result) {
                None => return Err(ApiError::InvalidId(format!("vectors[{i}].id: missing or null"))),
                Some(Err(found)) => {
                    return Err(ApiError::InvalidId(format!(
                        "vectors[{i}].id: expected an unsigned 64-bit integer, got {found}"
                    )));
                }
                Some(Ok(id)) => id,
            };
            let vector = check_vector(&format!("vectors[{i}].vector"), item.vector, dimension, Some(metric))?;
            let payload = match item.payload {
                None | Some(Value::Null) => None,
                Some(Value::Object(map)) => Some(map),
                Some(other) => {
                    return Err(ApiError::InvalidPayload(format!(
                        "vectors[{i}].payload: must be a JSON object, got {}",
                        json_kind(&other)
                    )));
                }
            };
            let version = match item.version.map(IdInput::into_result) {
                None => None,
                Some(Ok(v)) if v >= 1 => Some(v),
                Some(Ok(_)) => return Err(ApiError::InvalidId(format!("vectors[{i}].version: must be at least 1"))),
                Some(Err(found)) => {
                    return Err(ApiError::InvalidId(format!(
                        "vectors[{i}].version: expected an unsigned 64-bit integer, got {found}"
                    )));
                }
            };
            if let Some(first) = first_seen.insert(id, i) {
                return Err(ApiError::DuplicateId(format!(
                    "vectors[{i}].id: duplicate id {id} (also at vectors[{first}])"
                )));
            }
            out.push(VectorRecord { id, vector, payload, version });
        }
        Ok(ValidUpsert { vectors: out })
    }
}

/// "a string", "an array", … for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Query of `DELETE /collections/{name}/vectors/{id}`, as received.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// The delete's version (≥ 1; a cluster's router stamps one). A
    /// versioned delete leaves a tombstone and answers 200 with status
    /// `deleted`, `tombstoned` (the id was absent) or `stale` (the id holds
    /// a newer write; nothing changed). Absent: an unversioned delete, 404
    /// when the id is absent.
    #[param(value_type = Option<u64>, minimum = 1)]
    #[serde(default)]
    pub version: Option<String>,
}

impl DeleteQuery {
    /// The version, if one was given.
    pub fn validate(self) -> Result<Option<u64>, ApiError> {
        let Some(raw) = self.version else { return Ok(None) };
        match raw.parse::<u64>() {
            Ok(v) if v >= 1 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(v)),
            _ => Err(ApiError::InvalidId(format!("invalid version {raw:?}: expected an integer from 1 to 2^64-1"))),
        }
    }
}

/// Query of `GET /collections/{name}/ids`, as received (strings, so a bad
/// value gets this crate's message and code rather than the framework's).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdsQuery {
    /// Return ids strictly greater than this one; absent: from the start.
    #[param(value_type = Option<u64>)]
    #[serde(default)]
    pub after: Option<String>,
    /// Page size, 1..=`Limits::max_page`; absent: `Limits::default_page`.
    #[param(value_type = Option<u64>, minimum = 1)]
    #[serde(default)]
    pub limit: Option<String>,
}

/// A validated [`IdsQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidIdsQuery {
    /// Ids strictly greater than this; `None` from the start.
    pub after: Option<u64>,
    /// Page size.
    pub limit: usize,
}

impl IdsQuery {
    /// Parses and range-checks the query.
    pub fn validate(&self, limits: &Limits) -> Result<ValidIdsQuery, ApiError> {
        let after = match self.after.as_deref() {
            None | Some("") => None,
            Some(s) => Some(crate::parse_vector_id(s).map_err(|_| {
                ApiError::InvalidParameter(format!("after must be an unsigned 64-bit integer, got {s:?}"))
            })?),
        };
        let limit = match self.limit.as_deref() {
            None | Some("") => limits.default_page.min(limits.max_page),
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=limits.max_page).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(ApiError::InvalidParameter(format!(
                        "limit must be between 1 and {}, got {s:?}",
                        limits.max_page
                    )));
                }
            },
        };
        Ok(ValidIdsQuery { after, limit })
    }
}

/// `GET /collections/{name}/ids` response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"ids": [3, 7, 9], "next_after": 9}))]
pub struct IdsPage {
    /// Live ids, ascending, all greater than the query's `after`.
    pub ids: Vec<u64>,
    /// The `after` for the next page, or `null` when there are no more ids.
    pub next_after: Option<u64>,
}

impl IdsPage {
    /// Builds a page from up to `limit + 1` ascending ids: when more than
    /// `limit` are given, the extra ones only signal that more follow.
    pub fn from_ascending(mut ids: Vec<u64>, limit: usize) -> Self {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids must be strictly ascending");
        let more = ids.len() > limit;
        ids.truncate(limit);
        let next_after = if more { ids.last().copied() } else { None };
        IdsPage { ids, next_after }
    }

    /// Merges the pages that several shards returned for the same query
    /// (router side). Does not assume the pages are sorted or disjoint.
    ///
    /// Correct because each shard with more ids returned a full page of its
    /// `limit` smallest: the `limit` smallest of the union therefore never
    /// skip an id of that shard.
    pub fn merge(pages: impl IntoIterator<Item = IdsPage>, limit: usize) -> Self {
        let mut any_more = false;
        let mut ids = Vec::new();
        for page in pages {
            any_more |= page.next_after.is_some();
            ids.extend(page.ids);
        }
        ids.sort_unstable();
        ids.dedup();
        let more = any_more || ids.len() > limit;
        ids.truncate(limit);
        let next_after = if more { ids.last().copied() } else { None };
        IdsPage { ids, next_after }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::parse_json;

    fn upsert_with(body: &str, dim: usize, metric: Metric, limits: &Limits) -> Result<ValidUpsert, ApiError> {
        parse_json::<UpsertRequest>(body.as_bytes())?.validate(dim, metric, limits)
    }

    fn upsert(body: &str) -> Result<ValidUpsert, ApiError> {
        upsert_with(body, 3, Metric::Cosine, &Limits::default())
    }

    fn err(body: &str) -> ApiError {
        upsert(body).expect_err(body)
    }

    #[test]
    fn a_valid_batch() {
        let v = upsert(
            r#"{"vectors":[{"id":1,"vector":[1,2,3]},{"id":2,"vector":[0.5,0,0],"payload":{"a":1}},
            {"id":18446744073709551615,"vector":[1,1,1],"payload":null}]}"#,
        )
        .expect("valid");
        assert_eq!(v.vectors.len(), 3);
        assert_eq!(v.vectors[0], VectorRecord { id: 1, vector: vec![1.0, 2.0, 3.0], payload: None, version: None });
        assert_eq!(v.vectors[1].payload.as_ref().and_then(|p| p.get("a")), Some(&json!(1)));
        assert_eq!(v.vectors[2].id, u64::MAX);
    }

    #[test]
    fn empty_or_missing_batch() {
        for body in [r#"{}"#, r#"{"vectors":null}"#, r#"{"vectors":[]}"#] {
            assert_eq!(err(body).code(), "invalid_batch", "{body}");
        }
        assert_eq!(err(r#"{"vectors":{}}"#).code(), "invalid_body");
    }

    #[test]
    fn batch_over_the_limit() {
        let limits = Limits { max_batch: 2, ..Limits::default() };
        let body = r#"{"vectors":[{"id":1,"vector":[1,0,0]},{"id":2,"vector":[1,0,0]},{"id":3,"vector":[1,0,0]}]}"#;
        let e = upsert_with(body, 3, Metric::Cosine, &limits).expect_err("too many");
        assert_eq!(e.code(), "invalid_batch");
        assert!(e.to_string().contains("limit is 2"), "{e}");
    }

    #[test]
    fn wrong_dimension_names_the_item() {
        let e = err(r#"{"vectors":[{"id":1,"vector":[1,2,3]},{"id":2,"vector":[1,2]}]}"#);
        assert_eq!(e.code(), "dimension_mismatch");
        assert_eq!(e.to_string(), "vectors[1].vector: expected dimension 3, got 2");
    }

    #[test]
    fn out_of_f32_range_is_rejected() {
        let e = err(r#"{"vectors":[{"id":1,"vector":[1,1e39,3]}]}"#);
        assert_eq!(e.code(), "invalid_vector");
        assert!(e.to_string().starts_with("vectors[0].vector[1]: "), "{e}");
        assert!(e.to_string().contains("f32 range"), "{e}");
        assert_eq!(err(r#"{"vectors":[{"id":1,"vector":[1,-1e39,3]}]}"#).code(), "invalid_vector");
        // Beyond f64: JSON itself cannot be parsed.
        assert_eq!(err(r#"{"vectors":[{"id":1,"vector":[1,1e400,3]}]}"#).code(), "invalid_json");
    }

    #[test]
    fn huge_magnitude_is_rejected() {
        let e = err(r#"{"vectors":[{"id":1,"vector":[1e19,1e19,0]}]}"#);
        assert_eq!(e.code(), "invalid_vector");
        assert!(e.to_string().contains("magnitude"), "{e}");
        assert!(upsert(r#"{"vectors":[{"id":1,"vector":[1e18,1e18,0]}]}"#).is_ok());
    }

    #[test]
    fn bad_components() {
        for (body, at) in [
            (r#"{"vectors":[{"id":1,"vector":[1,null,3]}]}"#, "vectors[0].vector[1]: null"),
            (r#"{"vectors":[{"id":1,"vector":[1,2,3]},{"id":2,"vector":[1,2,"x"]}]}"#, "vectors[1].vector[2]: "),
            (r#"{"vectors":[{"id":1,"vector":[true,2,3]}]}"#, "vectors[0].vector[0]: "),
            (r#"{"vectors":[{"id":1,"vector":"1,2,3"}]}"#, "vectors[0].vector: expected an array"),
            (r#"{"vectors":[{"id":1}]}"#, "vectors[0].vector: missing"),
            (r#"{"vectors":[{"id":1,"vector":null}]}"#, "vectors[0].vector: missing"),
        ] {
            let e = err(body);
            assert_eq!(e.code(), "invalid_vector", "{body}");
            assert!(e.to_string().starts_with(at), "{e} / {at}");
        }
    }

    #[test]
    fn bad_ids() {
        for (body, what) in [
            (r#"{"vectors":[{"id":-1,"vector":[1,2,3]}]}"#, "negative"),
            (r#"{"vectors":[{"id":1.5,"vector":[1,2,3]}]}"#, "non-integer"),
            (r#"{"vectors":[{"id":2.0,"vector":[1,2,3]}]}"#, "non-integer"),
            (r#"{"vectors":[{"id":"7","vector":[1,2,3]}]}"#, "string"),
            (r#"{"vectors":[{"id":18446744073709551616,"vector":[1,2,3]}]}"#, "too large"),
            (r#"{"vectors":[{"vector":[1,2,3]}]}"#, "missing"),
            (r#"{"vectors":[{"id":null,"vector":[1,2,3]}]}"#, "missing"),
            (r#"{"vectors":[{"id":true,"vector":[1,2,3]}]}"#, "boolean"),
        ] {
            let e = err(body);
            assert_eq!(e.code(), "invalid_id", "{body}");
            assert!(e.to_string().starts_with("vectors[0].id: "), "{e}");
            assert!(e.to_string().contains(what), "{e} / {what}");
        }
    }

    #[test]
    fn duplicate_ids() {
        let e = err(r#"{"vectors":[{"id":7,"vector":[1,2,3]},{"id":8,"vector":[1,2,3]},{"id":7,"vector":[3,2,1]}]}"#);
        assert_eq!(e.code(), "duplicate_id");
        assert_eq!(e.to_string(), "vectors[2].id: duplicate id 7 (also at vectors[0])");
    }

    #[test]
    fn payload_must_be_an_object() {
        for p in ["[1]", "\"x\"", "3", "true"] {
            let body = format!(r#"{{"vectors":[{{"id":1,"vector":[1,2,3],"payload":{p}}}]}}"#);
            let e = err(&body);
            assert_eq!(e.code(), "invalid_payload", "{body}");
            assert!(e.to_string().starts_with("vectors[0].payload: must be a JSON object"), "{e}");
        }
    }

    #[test]
    fn zero_vector_only_rejected_for_cosine() {
        let body = r#"{"vectors":[{"id":1,"vector":[0,0,0]}]}"#;
        let e = err(body);
        assert_eq!(e.code(), "invalid_vector");
        assert!(e.to_string().contains("cosine"), "{e}");
        for m in [Metric::Euclidean, Metric::DotProduct, Metric::Manhattan] {
            assert!(upsert_with(body, 3, m, &Limits::default()).is_ok(), "{m}");
        }
    }

    #[test]
    fn all_or_nothing_reports_the_first_bad_item() {
        let e = err(r#"{"vectors":[{"id":1,"vector":[1,2,3]},{"id":2,"vector":[1,2]},{"id":-3,"vector":[1,2,3]}]}"#);
        assert!(e.to_string().starts_with("vectors[1]"), "{e}");
    }

    #[test]
    fn valid_upsert_serializes_to_an_upsert_body() {
        let v = upsert(r#"{"vectors":[{"id":1,"vector":[1,2,3],"payload":{"k":"v"}},{"id":2,"vector":[0.25,0,1]}]}"#)
            .expect("valid");
        let wire = serde_json::to_string(&v).expect("ser");
        assert_eq!(
            wire,
            r#"{"vectors":[{"id":1,"vector":[1.0,2.0,3.0],"payload":{"k":"v"}},{"id":2,"vector":[0.25,0.0,1.0]}]}"#
        );
        assert_eq!(upsert(&wire).expect("valid again"), v);
    }

    #[test]
    fn vector_record_shape() {
        let r = VectorRecord { id: 5, vector: vec![0.5, 1.0], payload: None, version: None };
        assert_eq!(serde_json::to_string(&r).expect("ser"), r#"{"id":5,"vector":[0.5,1.0]}"#);
    }

    #[test]
    fn ids_query() {
        let l = Limits { max_page: 100, default_page: 10, ..Limits::default() };
        let q = |after: Option<&str>, limit: Option<&str>| {
            IdsQuery { after: after.map(str::to_owned), limit: limit.map(str::to_owned) }.validate(&l)
        };
        assert_eq!(q(None, None), Ok(ValidIdsQuery { after: None, limit: 10 }));
        assert_eq!(q(Some("5"), Some("100")), Ok(ValidIdsQuery { after: Some(5), limit: 100 }));
        for (a, lim) in
            [(Some("-1"), None), (Some("x"), None), (None, Some("0")), (None, Some("101")), (None, Some("-2"))]
        {
            assert_eq!(q(a, lim).expect_err("bad").code(), "invalid_parameter");
        }
    }

    #[test]
    fn ids_pages() {
        assert_eq!(IdsPage::from_ascending(vec![1, 2, 3], 3), IdsPage { ids: vec![1, 2, 3], next_after: None });
        assert_eq!(IdsPage::from_ascending(vec![1, 2, 3], 2), IdsPage { ids: vec![1, 2], next_after: Some(2) });
        assert_eq!(
            serde_json::to_string(&IdsPage { ids: vec![], next_after: None }).expect("ser"),
            r#"{"ids":[],"next_after":null}"#
        );
        let a = IdsPage { ids: vec![1, 4, 6], next_after: Some(6) };
        let b = IdsPage { ids: vec![5, 2], next_after: None };
        assert_eq!(IdsPage::merge([a, b.clone()], 3), IdsPage { ids: vec![1, 2, 4], next_after: Some(4) });
        assert_eq!(IdsPage::merge([b], 3), IdsPage { ids: vec![2, 5], next_after: None });
    }
}
