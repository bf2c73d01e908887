//! The payload filter of a search (`"filter"` in the search body).
//!
//! ```json
//! {"must":     [{"key": "lang", "eq": "en"},
//!               {"key": "year", "range": {"gte": 2020, "lt": 2024}}],
//!  "must_not": [{"key": "tag", "in": ["draft", "spam"]}]}
//! ```
//!
//! A vector matches when every `must` condition holds, no `must_not`
//! condition holds, and — when `should` is given (not empty) — at least
//! one `should` condition holds; `{}` matches everything. A condition names
//! a payload `key` (a top-level key, or a dotted path `a.b` into nested
//! objects) and exactly one test:
//!
//! - `eq`: the value equals the given scalar (string, number or boolean;
//!   numbers compare numerically, so `1` equals `1.0`);
//! - `in`: the value equals one of the given scalars (1..=[`MAX_IN_VALUES`]);
//! - `range`: the value is a number within the bounds (`gt`, `gte`, `lt`,
//!   `lte`; at least one, all finite);
//! - `is_empty: true`: the key is missing, `null` or an empty array;
//! - `is_null: true`: the key is present with the value `null`;
//!
//! or, without a `key`, `has_id`: the vector's id is one of the given ids
//! (1..=[`MAX_IN_VALUES`]).
//!
//! When the payload value is an array, `eq`, `in` and `range` hold if they
//! hold for any element. A missing key fails those tests (so it *passes*
//! `must_not`).
//! [`Filter::matches`] is the reference semantics; a node answers a
//! filtered search with payload indexes and a planner (see the search
//! route's OpenAPI description) that must agree with it exactly.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::ApiError;
use crate::vectors::json_kind;

/// Most conditions in one filter (`must` + `must_not`).
pub const MAX_CONDITIONS: usize = 64;
/// Most values in one `in` list.
pub const MAX_IN_VALUES: usize = 1024;

/// A payload filter: all `must` hold and no `must_not` holds.
///
/// Read through [`RawFilter`], so that a condition that does not parse (an
/// unknown operator, a value of the wrong type) is reported with its place,
/// e.g. `must[1]: unknown field \`gt\``.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, try_from = "RawFilter")]
pub struct Filter {
    /// Conditions that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must: Vec<Condition>,
    /// Conditions none of which may hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_not: Vec<Condition>,
    /// Conditions at least one of which must hold (when given, 1 or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub should: Option<Vec<Condition>>,
}

/// A filter as received: its conditions still raw JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    #[serde(default)]
    must: Vec<Value>,
    #[serde(default)]
    must_not: Vec<Value>,
    #[serde(default)]
    should: Option<Vec<Value>>,
}

impl TryFrom<RawFilter> for Filter {
    type Error = String;

    fn try_from(raw: RawFilter) -> Result<Filter, String> {
        fn conditions(list: &str, raw: Vec<Value>) -> Result<Vec<Condition>, String> {
            raw.into_iter()
                .enumerate()
                .map(|(i, v)| serde_json::from_value(v).map_err(|e| format!("{list}[{i}]: {e}")))
                .collect()
        }
        Ok(Filter {
            must: conditions("must", raw.must)?,
            must_not: conditions("must_not", raw.must_not)?,
            should: raw.should.map(|s| conditions("should", s)).transpose()?,
        })
    }
}

/// One test on one payload key (exactly one of `eq`, `in`, `range`,
/// `is_empty`, `is_null`), or on the id (`has_id`, without a key).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Payload key, or a dotted path into nested objects (absent for
    /// `has_id`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Equal to this scalar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<Value>,
    /// Equal to one of these scalars.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub any_of: Option<Vec<Value>>,
    /// A number within these bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    /// `true`: the key is missing, `null` or an empty array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_empty: Option<bool>,
    /// `true`: the key is present and `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_null: Option<bool>,
    /// The vector's id is one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_id: Option<Vec<u64>>,
}

/// Numeric bounds; unset bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Strictly greater than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// Greater than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    /// Strictly less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// Less than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
}

impl Range {
    fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Scalar equality with numbers compared as f64.
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl Condition {
    fn validate(&self, at: &str) -> Result<(), ApiError> {
        let bad = |msg: String| Err(ApiError::InvalidFilter(format!("{at}: {msg}")));
        let tests = usize::from(self.eq.is_some())
            + usize::from(self.any_of.is_some())
            + usize::from(self.range.is_some())
            + usize::from(self.is_empty.is_some())
            + usize::from(self.is_null.is_some())
            + usize::from(self.has_id.is_some());
        if tests != 1 {
            return bad(format!("exactly one of eq, in, range, is_empty, is_null, has_id is required, got {tests}"));
        }
        if let Some(ids) = &self.has_id {
            if !self.key.is_empty() {
                return bad("has_id tests the vector's id: it takes no key".to_owned());
            }
            if ids.is_empty() || ids.len() > MAX_IN_VALUES {
                return bad(format!("has_id must list 1 to {MAX_IN_VALUES} ids, got {}", ids.len()));
            }
            return Ok(());
        }
        if self.key.is_empty() {
            return bad("key must not be empty".to_owned());
        }
        if self.is_empty == Some(false) || self.is_null == Some(false) {
            return bad("is_empty and is_null take only true (use must_not for the opposite)".to_owned());
        }
        if let Some(v) = &self.eq
            && !is_scalar(v)
        {
            return bad(format!("eq must be a string, number or boolean, got {}", json_kind(v)));
        }
        if let Some(values) = &self.any_of {
            if values.is_empty() || values.len() > MAX_IN_VALUES {
                return bad(format!("in must list 1 to {MAX_IN_VALUES} values, got {}", values.len()));
            }
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !is_scalar(v)) {
                return bad(format!("in[{i}] must be a string, number or boolean, got {}", json_kind(v)));
            }
        }
        if let Some(r) = &self.range {
            let bounds = [r.gt, r.gte, r.lt, r.lte];
            if bounds.iter().all(Option::is_none) {
                return bad("range needs at least one of gt, gte, lt, lte".to_owned());
            }
            if bounds.iter().flatten().any(|b| !b.is_finite()) {
                return bad("range bounds must be finite numbers".to_owned());
            }
        }
        Ok(())
    }

    /// Whether the condition holds for one (non-array) value.
    fn holds_for(&self, v: &Value) -> bool {
        if let Some(want) = &self.eq {
            return scalar_eq(v, want);
        }
        if let Some(values) = &self.any_of {
            return values.iter().any(|want| scalar_eq(v, want));
        }
        if let Some(r) = &self.range {
            return v.as_f64().is_some_and(|x| r.contains(x));
        }
        false
    }

    /// Whether the condition holds for the vector `id` with `payload`.
    pub fn matches(&self, id: u64, payload: Option<&Map<String, Value>>) -> bool {
        if let Some(ids) = &self.has_id {
            return ids.contains(&id);
        }
        let mut parts = self.key.split('.');
        let Some(first) = parts.next() else { return false };
        let mut value = payload.and_then(|p| p.get(first));
        for part in parts {
            value = value.and_then(|v| v.get(part));
        }
        if self.is_empty.is_some() {
            return match value {
                None | Some(Value::Null) => true,
                Some(Value::Array(items)) => items.is_empty(),
                Some(_) => false,
            };
        }
        if self.is_null.is_some() {
            return matches!(value, Some(Value::Null));
        }
        match value {
            None => false,
            Some(Value::Array(items)) => items.iter().any(|v| self.holds_for(v)),
            Some(v) => self.holds_for(v),
        }
    }
}

impl Filter {
    /// Checks the filter's shape; messages start with `at` (e.g. `filter`).
    pub fn validate(&self, at: &str) -> Result<(), ApiError> {
        let should = self.should.as_deref().unwrap_or_default();
        let n = self.must.len() + self.must_not.len() + should.len();
        if n > MAX_CONDITIONS {
            return Err(ApiError::InvalidFilter(format!("{at}: {n} conditions; the limit is {MAX_CONDITIONS}")));
        }
        if self.should.as_ref().is_some_and(Vec::is_empty) {
            return Err(ApiError::InvalidFilter(format!(
                "{at}.should: list at least one condition (or leave should out)"
            )));
        }
        for (i, c) in self.must.iter().enumerate() {
            c.validate(&format!("{at}.must[{i}]"))?;
        }
        for (i, c) in self.must_not.iter().enumerate() {
            c.validate(&format!("{at}.must_not[{i}]"))?;
        }
        for (i, c) in should.iter().enumerate() {
            c.validate(&format!("{at}.should[{i}]"))?;
        }
        Ok(())
    }

    /// Whether the vector `id` with this payload passes the filter.
    pub fn matches(&self, id: u64, payload: Option<&Map<String, Value>>) -> bool {
        self.must.iter().all(|c| c.matches(id, payload))
            && !self.must_not.iter().any(|c| c.matches(id, payload))
            && self.should.as_ref().is_none_or(|should| should.iter().any(|c| c.matches(id, payload)))
    }

    /// Whether the filter has no conditions (matches everything).
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.must_not.is_empty() && self.should.is_none()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(v: Value) -> Filter {
        let f: Filter = serde_json::from_value(v).expect("parse");
        f.validate("filter").expect("valid");
        f
    }

    fn payload(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_condition_that_does_not_parse_is_named() {
        let err = |v: Value| serde_json::from_value::<Filter>(v).expect_err("invalid").to_string();
        let e = err(json!({"must": [{"key": "a", "eq": 1}, {"key": "n", "gt": 1}]}));
        assert!(e.contains("must[1]") && e.contains("unknown field `gt`"), "{e}");
        let e = err(json!({"should": [{"key": "n", "range": {"gte": "x"}}]}));
        assert!(e.contains("should[0]"), "{e}");
        let e = err(json!({"must_not": [{"key": "n", "in": 3}]}));
        assert!(e.contains("must_not[0]"), "{e}");
        assert!(err(json!({"mustnt": []})).contains("unknown field `mustnt`"));
    }

    #[test]
    fn semantics() {
        let f = filter(json!({
            "must": [{"key": "lang", "eq": "en"}, {"key": "meta.year", "range": {"gte": 2020, "lt": 2024}}],
            "must_not": [{"key": "tags", "in": ["draft", "spam"]}]
        }));
        let p = payload(json!({"lang": "en", "meta": {"year": 2021}, "tags": ["ok"]}));
        assert!(f.matches(0, Some(&p)));
        let p = payload(json!({"lang": "en", "meta": {"year": 2021.0}, "tags": ["ok", "spam"]}));
        assert!(!f.matches(0, Some(&p)));
        let p = payload(json!({"lang": "en", "meta": {"year": 2024}}));
        assert!(!f.matches(0, Some(&p)));
        let p = payload(json!({"lang": "de", "meta": {"year": 2021}}));
        assert!(!f.matches(0, Some(&p)));
        assert!(!f.matches(0, None));
        assert!(Filter::default().matches(0, None));
        assert!(filter(json!({"must_not": [{"key": "x", "eq": 1}]})).matches(0, None));
        let p = payload(json!({"n": 1.0}));
        assert!(filter(json!({"must": [{"key": "n", "eq": 1}]})).matches(0, Some(&p)));
    }

    #[test]
    fn invalid_filters() {
        for v in [
            json!({"must": [{"key": "", "eq": 1}]}),
            json!({"must": [{"key": "a"}]}),
            json!({"must": [{"key": "a", "eq": 1, "in": [1]}]}),
            json!({"must": [{"key": "a", "eq": {"x": 1}}]}),
            json!({"must": [{"key": "a", "eq": null}]}),
            json!({"must_not": [{"key": "a", "in": []}]}),
            json!({"must_not": [{"key": "a", "in": [1, [2]]}]}),
            json!({"must": [{"key": "a", "range": {}}]}),
        ] {
            let f: Filter = serde_json::from_value(v.clone()).expect("parse");
            let e = f.validate("filter").expect_err(&v.to_string());
            assert_eq!(e.code(), "invalid_filter");
            assert!(e.to_string().starts_with("filter.must"), "{e}");
        }
        for v in [
            json!({"should": []}),
            json!({"should": [{"key": "a", "is_empty": false}]}),
            json!({"should": [{"key": "a", "has_id": [1]}]}),
            json!({"should": [{"has_id": []}]}),
            json!({"should": [{"key": "a", "is_null": true, "eq": 1}]}),
        ] {
            let f: Filter = serde_json::from_value(v.clone()).expect("parse");
            let e = f.validate("filter").expect_err(&v.to_string());
            assert!(e.to_string().starts_with("filter.should"), "{e}");
        }
        assert!(
            serde_json::from_value::<Filter>(json!({"must": [{"key": "a", "like": "x"}]})).is_err(),
            "unknown test"
        );
        let many: Vec<Value> = (0..65).map(|i| json!({"key": "a", "eq": i})).collect();
        let f: Filter = serde_json::from_value(json!({ "must": many })).expect("parse");
        assert_eq!(f.validate("filter").expect_err("too many").code(), "invalid_filter");
    }

    #[test]
    fn should_has_id_is_empty_and_is_null() {
        let f = filter(json!({"should": [{"key": "lang", "eq": "en"}, {"has_id": [7, 9]}]}));
        assert!(f.matches(1, Some(&payload(json!({"lang": "en"})))));
        assert!(f.matches(9, Some(&payload(json!({"lang": "de"})))));
        assert!(!f.matches(8, Some(&payload(json!({"lang": "de"})))));
        assert!(!f.matches(8, None));
        let empty = filter(json!({"must": [{"key": "tags", "is_empty": true}]}));
        for (p, want) in [
            (json!({}), true),
            (json!({"tags": null}), true),
            (json!({"tags": []}), true),
            (json!({"tags": ["a"]}), false),
            (json!({"tags": 0}), false),
        ] {
            assert_eq!(empty.matches(0, Some(&payload(p.clone()))), want, "{p}");
        }
        assert!(empty.matches(0, None));
        let null = filter(json!({"must": [{"key": "a.b", "is_null": true}]}));
        assert!(null.matches(0, Some(&payload(json!({"a": {"b": null}})))));
        assert!(!null.matches(0, Some(&payload(json!({"a": {}})))));
        assert!(!null.matches(0, Some(&payload(json!({"a": {"b": []}})))));
        let not_ids = filter(json!({"must_not": [{"has_id": [1]}], "must": [{"key": "x", "eq": 1}]}));
        assert!(not_ids.matches(2, Some(&payload(json!({"x": 1})))));
        assert!(!not_ids.matches(1, Some(&payload(json!({"x": 1})))));
    }

    #[test]
    fn round_trip() {
        let v = json!({
            "must": [{"key": "a", "in": [1, "x"]}, {"key": "b", "range": {"gt": 1.5}}],
            "should": [{"has_id": [3]}, {"key": "c", "is_empty": true}, {"key": "d", "is_null": true}]
        });
        assert_eq!(serde_json::to_value(filter(v.clone())).expect("ser"), v);
    }

    // Found by the `filter` fuzz target: numbers that are not exact in
    // binary (here an integer above u64::MAX, read as a float) came back
    // one ulp off after a print and a parse — what the router does to a
    // filter it forwards. serde_json's `float_roundtrip` parses exactly.
    #[test]
    fn numbers_survive_printing_and_parsing() {
        for text in ["18446744373709554775808", "0.1", "1e300", "-2.2250738585072014e-308", "123456789.123456789"] {
            let body = format!(r#"{{"must":[{{"key":"n","eq":{text}}},{{"key":"n","range":{{"gt":{text}}}}}]}}"#);
            let parsed: Filter = serde_json::from_str(&body).expect("parses");
            let again: Filter = serde_json::from_slice(&serde_json::to_vec(&parsed).expect("ser")).expect("parses");
            assert_eq!(again, parsed, "{text}");
        }
    }
}
