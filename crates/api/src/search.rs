//! Search: the single and batch search requests, their validation, and the
//! result shape.
//!
//! `POST /collections/{name}/search` takes `{"vector":[...],"k":10,"ef":100}`
//! and answers a bare array `[{"id":1,"distance":0.05}, ...]`, nearest first.
//!
//! - `k`: absent → [`DEFAULT_K`] (10); given → `1..=Limits::max_k` (`0` is
//!   rejected, as in the seed);
//! - `ef`: absent, `null` or `0` → the collection's `ef_search`; negative or
//!   above `Limits::max_ef` → 400. The beam actually used is
//!   [`ValidSearch::effective_ef`] = `max(ef, k)`;
//! - `vector`: exactly the collection's dimension, finite, in f32 range;
//! - `allow_partial` (router only, default false): when a shard is down,
//!   answer from the others and set the [`PARTIAL_HEADER`] response header
//!   to `true` instead of failing with 503;
//! - `filter`: optional payload [`Filter`].
//!
//! Batch search `POST /collections/{name}/search/batch` takes
//! `{"searches":[<search>...]}` (1..=`Limits::max_search_batch`) and answers
//! `[[hits of search 0], [hits of search 1], ...]` in request order.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::json::VectorValues;
use crate::vectors::check_vector;
use crate::{ApiError, Filter, Limits};

/// `k` when the request has none.
pub const DEFAULT_K: usize = 10;

/// Response header a router sets to `true` when `allow_partial` was used and
/// at least one shard did not answer.
pub const PARTIAL_HEADER: &str = "x-ruvector-partial";

/// `POST /collections/{name}/search` body, as received.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, ToSchema)]
#[schema(example = json!({"vector": [0.1, 0.2, 0.3], "k": 10, "ef": 100}))]
pub struct SearchRequest {
    /// The query; exactly the collection's dimension.
    #[serde(default)]
    #[schema(value_type = Vec<f32>, required = true)]
    pub vector: Option<VectorValues>,
    /// Number of results, `1..=Limits::max_k`; default 10.
    #[serde(default)]
    pub k: Option<i64>,
    /// Beam width; absent or 0 means the collection's `ef_search`.
    #[serde(default)]
    pub ef: Option<i64>,
    /// Accept results from the shards that answered (router only).
    #[serde(default)]
    pub allow_partial: Option<bool>,
    /// Payload filter.
    #[serde(default)]
    pub filter: Option<Filter>,
}

/// A validated search. Serializes to a search body that any node accepts
/// unchanged (the router forwards it to every shard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidSearch {
    /// The query vector.
    pub vector: Vec<f32>,
    /// Number of results.
    pub k: usize,
    /// Requested beam width; `None` means the collection's `ef_search`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
    /// Whether partial results are acceptable (router only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_partial: bool,
    /// Payload filter (never an empty one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

impl ValidSearch {
    /// The beam width to search with: the requested `ef` or the collection's
    /// `ef_search`, raised to `k` so that `k` results can be found.
    pub fn effective_ef(&self, collection_ef_search: usize) -> usize {
        self.ef.unwrap_or(collection_ef_search).max(self.k)
    }
}

impl SearchRequest {
    /// Validates the request for a collection of `dimension`.
    pub fn validate(self, dimension: usize, limits: &Limits) -> Result<ValidSearch, ApiError> {
        self.validate_at("", dimension, limits)
    }

    /// Validates with messages prefixed by `at` (`searches[2].`).
    fn validate_at(self, at: &str, dimension: usize, limits: &Limits) -> Result<ValidSearch, ApiError> {
        let k = match self.k {
            None => DEFAULT_K.min(limits.max_k),
            Some(k) => match usize::try_from(k) {
                Ok(k) if (1..=limits.max_k).contains(&k) => k,
                _ => {
                    return Err(ApiError::InvalidParameter(format!(
                        "{at}k must be between 1 and {}, got {k}",
                        limits.max_k
                    )));
                }
            },
        };
        let ef = match self.ef {
            None | Some(0) => None,
            Some(ef) => match usize::try_from(ef) {
                Ok(ef) if ef <= limits.max_ef => Some(ef),
                _ => {
                    return Err(ApiError::InvalidParameter(format!(
                        "{at}ef must be between 0 (collection default) and {}, got {ef}",
                        limits.max_ef
                    )));
                }
            },
        };
        let vector = check_vector(&format!("{at}vector"), self.vector, dimension, None)?;
        let filter = match self.filter {
            Some(f) if !f.is_empty() => {
                f.validate(&format!("{at}filter"))?;
                Some(f)
            }
            _ => None,
        };
        Ok(ValidSearch { vector, k, ef, allow_partial: self.allow_partial.unwrap_or(false), filter })
    }
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "distance": 0.05}))]
pub struct SearchHit {
    /// The vector id.
    pub id: u64,
    /// Distance to the query under the collection's metric (smaller is nearer).
    pub distance: f32,
}

impl SearchHit {
    /// Merges hit lists from several shards into the global top `k`,
    /// nearest first (router side).
    ///
    /// Assumes nothing about the inputs: lists may be unsorted, overlap, or
    /// repeat an id (the nearest occurrence wins). Ties are broken by id so
    /// the result is deterministic; a NaN distance sorts last.
    pub fn merge_top_k(lists: impl IntoIterator<Item = Vec<SearchHit>>, k: usize) -> Vec<SearchHit> {
        let mut all: Vec<SearchHit> = lists.into_iter().flatten().collect();
        let order = |a: &SearchHit, b: &SearchHit| {
            // total_cmp puts positive NaN after +inf; map any NaN there.
            let key = |d: f32| if d.is_nan() { f32::NAN.abs() } else { d };
            key(a.distance).total_cmp(&key(b.distance)).then(a.id.cmp(&b.id))
        };
        all.sort_unstable_by(order);
        let mut seen = std::collections::HashSet::with_capacity(k.min(all.len()));
        all.retain(|h| seen.insert(h.id));
        all.truncate(k);
        all
    }
}

/// `POST /collections/{name}/search/batch` body, as received.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, ToSchema)]
#[schema(example = json!({"searches": [{"vector": [0.1, 0.2, 0.3], "k": 5}]}))]
pub struct BatchSearchRequest {
    /// 1..=`Limits::max_search_batch` searches.
    #[serde(default)]
    #[schema(value_type = Vec<SearchRequest>, required = true, min_items = 1)]
    pub searches: Option<Vec<SearchRequest>>,
}

/// A validated batch search. Serializes to a batch body any node accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidBatchSearch {
    /// The searches, in request order.
    pub searches: Vec<ValidSearch>,
}

impl BatchSearchRequest {
    /// Validates every search (all-or-nothing); messages name the search:
    /// `searches[2].vector: expected dimension 3, got 2`.
    pub fn validate(self, dimension: usize, limits: &Limits) -> Result<ValidBatchSearch, ApiError> {
        let Some(searches) = self.searches else {
            return Err(ApiError::InvalidBatch("searches: missing or null; expected a non-empty array".to_owned()));
        };
        if searches.is_empty() {
            return Err(ApiError::InvalidBatch("searches: must contain at least one search".to_owned()));
        }
        if searches.len() > limits.max_search_batch {
            return Err(ApiError::InvalidBatch(format!(
                "searches: {} searches in one batch; the limit is {}",
                searches.len(),
                limits.max_search_batch
            )));
        }
        let searches = searches
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.validate_at(&format!("searches[{i}]."), dimension, limits))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ValidBatchSearch { searches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_json;

    fn search_with(body: &str, limits: &Limits) -> Result<ValidSearch, ApiError> {
        parse_json::<SearchRequest>(body.as_bytes())?.validate(3, limits)
    }

    fn search(body: &str) -> Result<ValidSearch, ApiError> {
        search_with(body, &Limits::default())
    }

    fn code(body: &str) -> &'static str {
        search(body).expect_err(body).code()
    }

    #[test]
    fn defaults() {
        let s = search(r#"{"vector":[1,2,3]}"#).expect("valid");
        assert_eq!(s, ValidSearch { vector: vec![1.0, 2.0, 3.0], k: 10, ef: None, allow_partial: false, filter: None });
        assert_eq!(s.effective_ef(50), 50);
        let s = search(r#"{"vector":[1,2,3],"k":5,"ef":0}"#).expect("valid");
        assert_eq!((s.k, s.ef), (5, None));
        let s = search(r#"{"vector":[1,2,3],"k":100,"ef":20,"allow_partial":true}"#).expect("valid");
        assert_eq!((s.k, s.ef, s.allow_partial), (100, Some(20), true));
        assert_eq!(s.effective_ef(50), 100);
        // An empty filter is dropped.
        assert_eq!(search(r#"{"vector":[1,2,3],"filter":{}}"#).expect("valid").filter, None);
    }

    #[test]
    fn bad_k_and_ef() {
        assert_eq!(code(r#"{"vector":[1,2,3],"k":0}"#), "invalid_parameter");
        assert_eq!(code(r#"{"vector":[1,2,3],"k":-1}"#), "invalid_parameter");
        assert_eq!(code(r#"{"vector":[1,2,3],"k":10001}"#), "invalid_parameter");
        assert_eq!(code(r#"{"vector":[1,2,3],"ef":-1}"#), "invalid_parameter");
        assert_eq!(code(r#"{"vector":[1,2,3],"ef":65537}"#), "invalid_parameter");
        assert_eq!(code(r#"{"vector":[1,2,3],"k":1.5}"#), "invalid_body");
        assert_eq!(code(r#"{"vector":[1,2,3],"k":"10"}"#), "invalid_body");
        let limits = Limits { max_k: 5, ..Limits::default() };
        let e = search_with(r#"{"vector":[1,2,3],"k":6}"#, &limits).expect_err("over max_k");
        assert_eq!(e.to_string(), "k must be between 1 and 5, got 6");
    }

    #[test]
    fn bad_vectors() {
        let e = search(r#"{"vector":[1,2]}"#).expect_err("dim");
        assert_eq!(e.code(), "dimension_mismatch");
        assert_eq!(e.to_string(), "vector: expected dimension 3, got 2");
        assert_eq!(code(r#"{"vector":[1,1e39,2]}"#), "invalid_vector");
        assert_eq!(code(r#"{"vector":[1,null,2]}"#), "invalid_vector");
        assert_eq!(code(r#"{"k":3}"#), "invalid_vector");
        assert_eq!(code(r#"{"vector":[1,2,3"#), "invalid_json");
        // The zero query is allowed (the metric is not known here).
        assert!(search(r#"{"vector":[0,0,0]}"#).is_ok());
    }

    #[test]
    fn bad_filter() {
        assert_eq!(code(r#"{"vector":[1,2,3],"filter":{"must":[{"key":"a"}]}}"#), "invalid_filter");
        assert_eq!(code(r#"{"vector":[1,2,3],"filter":{"must":[{"key":"a","bogus":1}]}}"#), "invalid_body");
    }

    #[test]
    fn valid_search_is_an_acceptable_search_body() {
        let s = search(r#"{"vector":[1,2,3],"k":4,"filter":{"must":[{"key":"a","eq":"x"}]}}"#).expect("valid");
        let wire = serde_json::to_string(&s).expect("ser");
        assert_eq!(wire, r#"{"vector":[1.0,2.0,3.0],"k":4,"filter":{"must":[{"key":"a","eq":"x"}]}}"#);
        assert_eq!(search(&wire).expect("valid again"), s);
    }

    #[test]
    fn results_are_a_bare_array() {
        let hits = vec![SearchHit { id: 1, distance: 0.05 }, SearchHit { id: 7, distance: 0.5 }];
        assert_eq!(serde_json::to_string(&hits).expect("ser"), r#"[{"id":1,"distance":0.05},{"id":7,"distance":0.5}]"#);
        let batch = vec![hits.clone(), vec![]];
        assert_eq!(
            serde_json::to_string(&batch).expect("ser"),
            r#"[[{"id":1,"distance":0.05},{"id":7,"distance":0.5}],[]]"#
        );
        let back: Vec<SearchHit> = serde_json::from_str(r#"[{"id":1,"distance":0.05}]"#).expect("de");
        assert_eq!(back, vec![SearchHit { id: 1, distance: 0.05 }]);
    }

    #[test]
    fn merge_top_k_handles_unsorted_overlapping_lists() {
        let h = |id, distance| SearchHit { id, distance };
        let merged = SearchHit::merge_top_k(
            [vec![h(3, 0.3), h(1, 0.1), h(9, f32::NAN)], vec![h(2, 0.2), h(3, 0.25), h(4, 0.1)], vec![]],
            4,
        );
        assert_eq!(merged, vec![h(1, 0.1), h(4, 0.1), h(2, 0.2), h(3, 0.25)]);
        assert!(SearchHit::merge_top_k([vec![h(1, 0.5)]], 0).is_empty());
        let all = SearchHit::merge_top_k([vec![h(9, f32::NAN), h(1, -f32::NAN)], vec![h(2, 1.0)]], 10);
        assert_eq!(all.iter().map(|h| h.id).collect::<Vec<_>>(), vec![2, 1, 9]);
    }

    #[test]
    fn batch() {
        let b = |body: &str| parse_json::<BatchSearchRequest>(body.as_bytes())?.validate(3, &Limits::default());
        let v = b(r#"{"searches":[{"vector":[1,2,3]},{"vector":[3,2,1],"k":2}]}"#).expect("valid");
        assert_eq!(v.searches.len(), 2);
        assert_eq!(v.searches[1].k, 2);
        let e = b(r#"{"searches":[{"vector":[1,2,3]},{"vector":[3,2]}]}"#).expect_err("dim");
        assert_eq!(e.to_string(), "searches[1].vector: expected dimension 3, got 2");
        let e = b(r#"{"searches":[{"vector":[1,2,3],"k":0}]}"#).expect_err("k");
        assert!(e.to_string().starts_with("searches[0].k must be"), "{e}");
        assert_eq!(b(r#"{"searches":[]}"#).expect_err("empty").code(), "invalid_batch");
        assert_eq!(b(r#"{}"#).expect_err("missing").code(), "invalid_batch");
        let limits = Limits { max_search_batch: 1, ..Limits::default() };
        let two = parse_json::<BatchSearchRequest>(br#"{"searches":[{"vector":[1,2,3]},{"vector":[1,2,3]}]}"#)
            .expect("parse");
        assert_eq!(two.validate(3, &limits).expect_err("too many").code(), "invalid_batch");
    }
}
