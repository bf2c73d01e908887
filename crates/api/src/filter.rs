//! The payload filter of a search (`"filter"` in the search body).
//!
//! ```json
//! {"must":     [{"key": "lang", "eq": "en"},
//!               {"key": "year", "range": {"gte": 2020, "lt": 2024}}],
//!  "must_not": [{"key": "tag", "in": ["draft", "spam"]}]}
//! ```
//!
//! A vector matches when every `must` condition holds and no `must_not`
//! condition holds; `{}` matches everything. A condition names a payload
//! `key` (a top-level key, or a dotted path `a.b` into nested objects) and
//! exactly one test:
//!
//! - `eq`: the value equals the given scalar (string, number or boolean;
//!   numbers compare numerically, so `1` equals `1.0`);
//! - `in`: the value equals one of the given scalars (1..=[`MAX_IN_VALUES`]);
//! - `range`: the value is a number within the bounds (`gt`, `gte`, `lt`,
//!   `lte`; at least one, all finite).
//!
//! When the payload value is an array, the condition holds if it holds for
//! any element. A missing key fails every test (so it *passes* `must_not`).
//! [`Filter::matches`] is the reference semantics; the server currently
//! applies it by post-filtering widening graph searches (see the search
//! route's OpenAPI description).

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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Conditions that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must: Vec<Condition>,
    /// Conditions none of which may hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_not: Vec<Condition>,
}

/// One test on one payload key. Exactly one of `eq`, `in`, `range` is set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Payload key, or a dotted path into nested objects.
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
        if self.key.is_empty() {
            return bad("key must not be empty".to_owned());
        }
        let tests =
            usize::from(self.eq.is_some()) + usize::from(self.any_of.is_some()) + usize::from(self.range.is_some());
        if tests != 1 {
            return bad(format!("exactly one of eq, in, range is required, got {tests}"));
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

    /// Whether the condition holds for a payload.
    pub fn matches(&self, payload: Option<&Map<String, Value>>) -> bool {
        let mut parts = self.key.split('.');
        let Some(first) = parts.next() else { return false };
        let mut value = payload.and_then(|p| p.get(first));
        for part in parts {
            value = value.and_then(|v| v.get(part));
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
        let n = self.must.len() + self.must_not.len();
        if n > MAX_CONDITIONS {
            return Err(ApiError::InvalidFilter(format!("{at}: {n} conditions; the limit is {MAX_CONDITIONS}")));
        }
        for (i, c) in self.must.iter().enumerate() {
            c.validate(&format!("{at}.must[{i}]"))?;
        }
        for (i, c) in self.must_not.iter().enumerate() {
            c.validate(&format!("{at}.must_not[{i}]"))?;
        }
        Ok(())
    }

    /// Whether a vector with this payload passes the filter.
    pub fn matches(&self, payload: Option<&Map<String, Value>>) -> bool {
        self.must.iter().all(|c| c.matches(payload)) && !self.must_not.iter().any(|c| c.matches(payload))
    }

    /// Whether the filter has no conditions (matches everything).
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.must_not.is_empty()
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
    fn semantics() {
        let f = filter(json!({
            "must": [{"key": "lang", "eq": "en"}, {"key": "meta.year", "range": {"gte": 2020, "lt": 2024}}],
            "must_not": [{"key": "tags", "in": ["draft", "spam"]}]
        }));
        let p = payload(json!({"lang": "en", "meta": {"year": 2021}, "tags": ["ok"]}));
        assert!(f.matches(Some(&p)));
        let p = payload(json!({"lang": "en", "meta": {"year": 2021.0}, "tags": ["ok", "spam"]}));
        assert!(!f.matches(Some(&p)));
        let p = payload(json!({"lang": "en", "meta": {"year": 2024}}));
        assert!(!f.matches(Some(&p)));
        let p = payload(json!({"lang": "de", "meta": {"year": 2021}}));
        assert!(!f.matches(Some(&p)));
        assert!(!f.matches(None));
        assert!(Filter::default().matches(None));
        assert!(filter(json!({"must_not": [{"key": "x", "eq": 1}]})).matches(None));
        let p = payload(json!({"n": 1.0}));
        assert!(filter(json!({"must": [{"key": "n", "eq": 1}]})).matches(Some(&p)));
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
        assert!(serde_json::from_value::<Filter>(json!({"should": []})).is_err());
        let many: Vec<Value> = (0..65).map(|i| json!({"key": "a", "eq": i})).collect();
        let f: Filter = serde_json::from_value(json!({ "must": many })).expect("parse");
        assert_eq!(f.validate("filter").expect_err("too many").code(), "invalid_filter");
    }

    #[test]
    fn round_trip() {
        let v = json!({"must": [{"key": "a", "in": [1, "x"]}, {"key": "b", "range": {"gt": 1.5}}]});
        assert_eq!(serde_json::to_value(filter(v.clone())).expect("ser"), v);
    }
}
