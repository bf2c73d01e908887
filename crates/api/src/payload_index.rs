//! Payload indexes and the operations by filter: their wire types.
//!
//! A payload index makes filters on one payload key fast (see the search
//! route): declared at creation (`"payload_indexes": {"lang": "keyword"}`
//! in the create body) or later (`POST /collections/{name}/payload_indexes`
//! `{"key": "lang", "type": "keyword"}`, built over the stored payloads
//! before the call returns), dropped by `DELETE
//! /collections/{name}/payload_indexes/{key}`. Types: `keyword` (strings),
//! `integer` and `float` (numbers, for ranges), `bool`.
//!
//! `POST /collections/{name}/count` `{"filter": ...}` counts the matching
//! vectors (no filter: all); `POST /collections/{name}/delete`
//! `{"filter": ...}` deletes them, durably, and says how many — the filter
//! is required there and must have a condition (deleting everything is
//! `DELETE /collections/{name}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ApiError, Filter};

/// Longest payload key an index may be declared on, in bytes.
pub const MAX_PAYLOAD_KEY_BYTES: usize = 256;
/// Most payload indexes per collection.
pub const MAX_PAYLOAD_INDEXES: usize = 64;

/// What a payload index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadIndexType {
    /// Strings: `eq` and `in`, with an exact count per value.
    Keyword,
    /// Integers: `eq`, `in` and `range`.
    Integer,
    /// Numbers: `eq`, `in` and `range`.
    Float,
    /// `true` / `false`: `eq` and `in`.
    Bool,
}

impl PayloadIndexType {
    /// The type named `name` (`keyword`, `integer`, `float`, `bool`).
    pub fn parse(at: &str, name: &str) -> Result<PayloadIndexType, ApiError> {
        match name {
            "keyword" => Ok(PayloadIndexType::Keyword),
            "integer" => Ok(PayloadIndexType::Integer),
            "float" => Ok(PayloadIndexType::Float),
            "bool" => Ok(PayloadIndexType::Bool),
            other => Err(ApiError::InvalidParameter(format!(
                "{at}: unknown payload index type {other:?}; use keyword, integer, float or bool"
            ))),
        }
    }
}

/// Checks a payload key an index is declared on: 1 to
/// [`MAX_PAYLOAD_KEY_BYTES`] bytes, no empty part between dots.
pub fn validate_payload_key(at: &str, key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_PAYLOAD_KEY_BYTES {
        return Err(ApiError::InvalidParameter(format!(
            "{at}: a key has 1 to {MAX_PAYLOAD_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    if key.split('.').any(str::is_empty) {
        return Err(ApiError::InvalidParameter(format!("{at}: key {key:?} has an empty part between dots")));
    }
    Ok(())
}

/// The `payload_indexes` of a create body, as received: key → type name.
pub fn validate_payload_indexes(
    declared: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, PayloadIndexType>, ApiError> {
    if declared.len() > MAX_PAYLOAD_INDEXES {
        return Err(ApiError::InvalidParameter(format!(
            "payload_indexes: at most {MAX_PAYLOAD_INDEXES} per collection, got {}",
            declared.len()
        )));
    }
    declared
        .iter()
        .map(|(key, kind)| {
            let at = format!("payload_indexes.{key}");
            validate_payload_key(&at, key)?;
            Ok((key.clone(), PayloadIndexType::parse(&at, kind)?))
        })
        .collect()
}

/// `POST /collections/{name}/payload_indexes` body, as received.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, ToSchema)]
#[schema(example = json!({"key": "lang", "type": "keyword"}))]
pub struct PayloadIndexRequest {
    /// The payload key (a dotted path reaches into nested objects).
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1)]
    pub key: Option<String>,
    /// `keyword`, `integer`, `float` or `bool`.
    #[serde(default, rename = "type")]
    #[schema(value_type = PayloadIndexType, required = true)]
    pub kind: Option<String>,
}

/// A validated payload index declaration; serializes to a body any node
/// accepts (the router forwards it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidPayloadIndex {
    /// The payload key.
    pub key: String,
    /// What the index holds.
    #[serde(rename = "type")]
    pub kind: PayloadIndexType,
}

impl PayloadIndexRequest {
    /// Checks the key and the type.
    pub fn validate(&self) -> Result<ValidPayloadIndex, ApiError> {
        let key = self.key.as_deref().ok_or_else(|| ApiError::InvalidParameter("key is required".to_owned()))?;
        validate_payload_key("key", key)?;
        let kind = self.kind.as_deref().ok_or_else(|| ApiError::InvalidParameter("type is required".to_owned()))?;
        Ok(ValidPayloadIndex { key: key.to_owned(), kind: PayloadIndexType::parse("type", kind)? })
    }
}

/// `POST /collections/{name}/count` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct CountRequest {
    /// Count only the vectors that pass it (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

impl CountRequest {
    /// Checks the filter's shape.
    pub fn validate(self) -> Result<CountRequest, ApiError> {
        if let Some(filter) = &self.filter {
            filter.validate("filter")?;
        }
        Ok(self)
    }
}

/// `POST /collections/{name}/count` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountResponse {
    /// How many vectors match (through the router: the sum over the
    /// collection's partitions).
    pub count: u64,
    /// From a shard of a cluster: the count per partition (what a router
    /// adds up, one copy per partition).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<u32, u64>,
}

/// `POST /collections/{name}/delete` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct DeleteByFilterRequest {
    /// The vectors to delete: those that pass it. Required, with at least
    /// one condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = true)]
    pub filter: Option<Filter>,
}

impl DeleteByFilterRequest {
    /// Checks the filter: present, well-formed and not empty.
    pub fn validate(self) -> Result<Filter, ApiError> {
        let filter = self.filter.ok_or_else(|| ApiError::InvalidFilter("filter is required".to_owned()))?;
        filter.validate("filter")?;
        if filter.is_empty() {
            return Err(ApiError::InvalidFilter(
                "filter: give at least one condition (DELETE /collections/{name} drops everything)".to_owned(),
            ));
        }
        Ok(filter)
    }
}

/// `POST /collections/{name}/delete` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeleteByFilterResponse {
    /// How many vectors were deleted.
    pub deleted: u64,
    /// From a shard of a cluster: how many per partition.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<u32, u64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::parse_json;

    #[test]
    fn declarations_are_checked_and_name_what_is_wrong() {
        let ok = |v: serde_json::Value| parse_json::<PayloadIndexRequest>(v.to_string().as_bytes())?.validate();
        assert_eq!(
            ok(json!({"key": "meta.lang", "type": "keyword"})).expect("valid"),
            ValidPayloadIndex { key: "meta.lang".into(), kind: PayloadIndexType::Keyword }
        );
        for (body, needle) in [
            (json!({"type": "keyword"}), "key is required"),
            (json!({"key": "a"}), "type is required"),
            (json!({"key": "a", "type": "text"}), "unknown payload index type \"text\""),
            (json!({"key": "a..b", "type": "bool"}), "empty part"),
            (json!({"key": "", "type": "bool"}), "1 to 256 bytes"),
        ] {
            let error = ok(body.clone()).expect_err(&body.to_string());
            assert!(error.to_string().contains(needle), "{body}: {error}");
        }
        let many: BTreeMap<String, String> = (0..65).map(|i| (format!("k{i}"), "bool".to_owned())).collect();
        assert!(validate_payload_indexes(&many).is_err());
        let bad = BTreeMap::from([("year".to_owned(), "date".to_owned())]);
        let error = validate_payload_indexes(&bad).expect_err("unknown type");
        assert!(error.to_string().contains("payload_indexes.year"), "{error}");
    }

    #[test]
    fn delete_by_filter_needs_a_condition() {
        let parse = |v: serde_json::Value| parse_json::<DeleteByFilterRequest>(v.to_string().as_bytes());
        assert!(parse(json!({})).expect("parse").validate().is_err());
        assert!(parse(json!({"filter": {}})).expect("parse").validate().is_err());
        let filter = parse(json!({"filter": {"must": [{"key": "a", "eq": 1}]}})).expect("parse").validate();
        assert!(filter.is_ok());
    }
}
