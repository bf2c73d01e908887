//! Collections: the create request and its validation, quantization
//! settings, the collection info response, and name rules.
//!
//! Names become directory names on the node, so they are restricted to
//! `^[A-Za-z0-9_-]{1,255}$` — no `/`, `.`, NUL, spaces or control
//! characters, hence no `..` either.
//!
//! Create defaults (kept from the seed): metric `cosine` (also for a missing
//! or blank `metric`, which Go clients send), `m` 16, `ef_construction` 200,
//! `ef_search` 50, no quantization. A parameter that *is* given must be in
//! range: `1 ≤ m ≤ Limits::max_m`, `1 ≤ ef_* ≤ Limits::max_ef`. An explicit
//! `null` counts as not given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ApiError, Limits, Metric, PayloadIndexType, validate_payload_indexes};

/// Default HNSW `M` (layer 0 keeps 2·M links).
pub const DEFAULT_M: usize = 16;
/// Default `ef_construction`.
pub const DEFAULT_EF_CONSTRUCTION: usize = 200;
/// Default `ef_search`.
pub const DEFAULT_EF_SEARCH: usize = 50;
/// Default number of PQ centroids per subspace (one-byte codes).
pub const DEFAULT_PQ_CENTROIDS: usize = 256;
/// Largest accepted `oversampling` factor.
pub const MAX_OVERSAMPLING: f32 = 100.0;
/// Longest collection name.
pub const MAX_NAME_LEN: usize = 255;

/// Checks a collection name against `^[A-Za-z0-9_-]{1,255}$`.
pub fn validate_collection_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::InvalidName("collection name must not be empty".to_owned()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ApiError::InvalidName(format!(
            "collection name is {} bytes long; the limit is {MAX_NAME_LEN}",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(ApiError::InvalidName(format!(
            "invalid collection name {name:?}: character {c:?} is not allowed (use A-Z, a-z, 0-9, '_' and '-')"
        )));
    }
    Ok(())
}

/// How a collection compresses its vectors for search. Full vectors are
/// always kept for rescoring the best candidates.
///
/// Wire forms: `{"type":"none"}`, `{"type":"sq8"}`,
/// `{"type":"pq","subspaces":S,"centroids":256}`; `sq8` and `pq` take an
/// optional `oversampling` (≥ 1, ≤ 100): how many times `k` candidates are
/// rescored with full vectors (the engine picks a default when absent).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Quantization {
    /// Full-precision f32 vectors only.
    #[default]
    None,
    /// Scalar quantization to one byte per component.
    Sq8 {
        /// Rescoring factor: `oversampling · k` candidates are re-ranked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 1, maximum = 100)]
        oversampling: Option<f32>,
    },
    /// Product quantization: the vector is cut into `subspaces` equal parts,
    /// each coded as one of `centroids` centroids.
    Pq {
        /// Number of subspaces; must divide the dimension.
        #[schema(minimum = 1)]
        subspaces: usize,
        /// Centroids per subspace, 2..=256 (codes are one byte). Default 256.
        #[serde(default = "default_centroids")]
        #[schema(minimum = 2, maximum = 256)]
        centroids: usize,
        /// Rescoring factor: `oversampling · k` candidates are re-ranked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 1, maximum = 100)]
        oversampling: Option<f32>,
    },
}

fn default_centroids() -> usize {
    DEFAULT_PQ_CENTROIDS
}

impl Quantization {
    /// Checks the settings against the collection's dimension.
    pub fn validate(&self, dimension: usize) -> Result<(), ApiError> {
        let check_oversampling = |o: Option<f32>| match o {
            Some(x) if !(x.is_finite() && (1.0..=MAX_OVERSAMPLING).contains(&x)) => Err(ApiError::InvalidParameter(
                format!("quantization.oversampling must be between 1 and {MAX_OVERSAMPLING}, got {x}"),
            )),
            _ => Ok(()),
        };
        match *self {
            Quantization::None => Ok(()),
            Quantization::Sq8 { oversampling } => check_oversampling(oversampling),
            Quantization::Pq { subspaces, centroids, oversampling } => {
                if subspaces == 0 || subspaces > dimension || !dimension.is_multiple_of(subspaces) {
                    return Err(ApiError::InvalidParameter(format!(
                        "quantization.subspaces must be a divisor of the dimension {dimension}, got {subspaces}"
                    )));
                }
                if !(2..=256).contains(&centroids) {
                    return Err(ApiError::InvalidParameter(format!(
                        "quantization.centroids must be between 2 and 256, got {centroids}"
                    )));
                }
                check_oversampling(oversampling)
            }
        }
    }
}

/// `POST /collections` body, as received.
///
/// Numbers are read as signed integers so that a negative value gets a
/// precise validation message instead of a serde type error.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "docs", "dimension": 384, "metric": "cosine", "m": 16, "ef_construction": 200, "ef_search": 50}))]
pub struct CreateCollectionRequest {
    /// `^[A-Za-z0-9_-]{1,255}$`. Required.
    #[serde(default)]
    #[schema(value_type = String, required = true, pattern = "^[A-Za-z0-9_-]{1,255}$")]
    pub name: Option<String>,
    /// Vector dimension, `1..=Limits::max_dimension`. Required.
    #[serde(default)]
    #[schema(value_type = i64, required = true, minimum = 1)]
    pub dimension: Option<i64>,
    /// `cosine` (default), `euclidean`|`l2`, `dotproduct`|`dot`,
    /// `manhattan`|`l1`; case-insensitive. Blank means default.
    #[serde(default)]
    pub metric: Option<String>,
    /// HNSW `M`, `1..=Limits::max_m`. Default 16.
    #[serde(default)]
    pub m: Option<i64>,
    /// Beam width while building, `1..=Limits::max_ef`. Default 200.
    #[serde(default)]
    pub ef_construction: Option<i64>,
    /// Default beam width while searching, `1..=Limits::max_ef`. Default 50.
    #[serde(default)]
    pub ef_search: Option<i64>,
    /// Quantization; default `{"type":"none"}`.
    #[serde(default)]
    pub quantization: Option<Quantization>,
    /// Number of partitions (a power of two, at most `MAX_PARTITIONS`): the
    /// units a cluster places on shards and replicates. A router picks a
    /// default from its shard count; a node alone ignores it.
    #[serde(default)]
    #[schema(value_type = Option<u32>, minimum = 1)]
    pub partitions: Option<i64>,
    /// Payload indexes: payload key → `keyword`, `integer`, `float` or
    /// `bool` (see `POST /collections/{name}/payload_indexes`).
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, PayloadIndexType>>)]
    pub payload_indexes: Option<BTreeMap<String, String>>,
}

/// A validated create request with every default applied. Serializes to a
/// create body that any node accepts unchanged (the router forwards it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidCreate {
    /// The collection name.
    pub name: String,
    /// Vector dimension.
    pub dimension: usize,
    /// Distance metric.
    pub metric: Metric,
    /// HNSW `M`.
    pub m: usize,
    /// Beam width while building.
    pub ef_construction: usize,
    /// Default beam width while searching.
    pub ef_search: usize,
    /// Quantization.
    pub quantization: Quantization,
    /// Partitions (see [`CreateCollectionRequest::partitions`]); omitted
    /// for a collection made without any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Payload indexes declared with the collection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub payload_indexes: BTreeMap<String, PayloadIndexType>,
}

/// Checks an optional positive integer parameter.
fn positive(field: &str, value: Option<i64>, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(v) = value else { return Ok(default) };
    match usize::try_from(v) {
        Ok(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(ApiError::InvalidParameter(format!("{field} must be between 1 and {max}, got {v}"))),
    }
}

impl CreateCollectionRequest {
    /// Validates the request and applies defaults.
    pub fn validate(&self, limits: &Limits) -> Result<ValidCreate, ApiError> {
        let name = self.name.as_deref().unwrap_or("");
        validate_collection_name(name)?;
        let dimension = match self.dimension {
            None => return Err(ApiError::InvalidDimension("dimension is required".to_owned())),
            Some(d) => match usize::try_from(d) {
                Ok(d) if (1..=limits.max_dimension).contains(&d) => d,
                _ => {
                    return Err(ApiError::InvalidDimension(format!(
                        "dimension must be between 1 and {}, got {d}",
                        limits.max_dimension
                    )));
                }
            },
        };
        let metric = Metric::parse_optional(self.metric.as_deref())?;
        let m = positive("m", self.m, DEFAULT_M, limits.max_m)?;
        let ef_construction =
            positive("ef_construction", self.ef_construction, DEFAULT_EF_CONSTRUCTION, limits.max_ef)?;
        let ef_search = positive("ef_search", self.ef_search, DEFAULT_EF_SEARCH, limits.max_ef)?;
        let quantization = self.quantization.unwrap_or_default();
        quantization.validate(dimension)?;
        let partitions = match self.partitions {
            None => None,
            Some(p) => match u32::try_from(p) {
                Ok(p) if crate::valid_partitions(p) => Some(p),
                _ => {
                    return Err(ApiError::InvalidParameter(format!(
                        "partitions must be a power of two between 1 and {}, got {p}",
                        crate::MAX_PARTITIONS
                    )));
                }
            },
        };
        let payload_indexes = validate_payload_indexes(&self.payload_indexes.clone().unwrap_or_default())?;
        Ok(ValidCreate {
            payload_indexes,
            name: name.to_owned(),
            dimension,
            metric,
            m,
            ef_construction,
            ef_search,
            quantization,
            partitions,
        })
    }
}

/// `GET /collections/{name}` response (and one element of `GET /collections`,
/// which is sorted by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "docs", "dimension": 384, "size": 1000, "max_level": 3, "metric": "cosine", "m": 16, "ef_construction": 200, "ef_search": 50, "quantization": {"type": "none"}}))]
pub struct CollectionInfo {
    /// The collection name.
    pub name: String,
    /// Vector dimension.
    pub dimension: usize,
    /// Number of live vectors (through the router: the sum over shards).
    pub size: u64,
    /// Highest HNSW layer in use (through the router: the maximum over shards).
    pub max_level: usize,
    /// Distance metric.
    pub metric: Metric,
    /// HNSW `M`.
    pub m: usize,
    /// Beam width while building.
    pub ef_construction: usize,
    /// Default beam width while searching.
    pub ef_search: usize,
    /// Quantization.
    #[serde(default)]
    pub quantization: Quantization,
    /// Partitions, for a collection created with them (through a router).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// The declared payload indexes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub payload_indexes: BTreeMap<String, PayloadIndexType>,
}

impl CollectionInfo {
    /// The info of a newly created, empty collection.
    pub fn empty(config: &ValidCreate) -> Self {
        CollectionInfo {
            name: config.name.clone(),
            dimension: config.dimension,
            size: 0,
            max_level: 0,
            metric: config.metric,
            m: config.m,
            ef_construction: config.ef_construction,
            ef_search: config.ef_search,
            quantization: config.quantization,
            partitions: config.partitions,
            payload_indexes: config.payload_indexes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::parse_json;

    fn create(body: serde_json::Value) -> Result<ValidCreate, ApiError> {
        parse_json::<CreateCollectionRequest>(body.to_string().as_bytes())?.validate(&Limits::default())
    }

    fn code(body: serde_json::Value) -> &'static str {
        create(body.clone()).expect_err(&body.to_string()).code()
    }

    #[test]
    fn defaults_are_applied() {
        let c = create(json!({"name": "docs", "dimension": 3})).expect("valid");
        assert_eq!(
            c,
            ValidCreate {
                name: "docs".into(),
                dimension: 3,
                metric: Metric::Cosine,
                m: 16,
                ef_construction: 200,
                ef_search: 50,
                quantization: Quantization::None,
                partitions: None,
                payload_indexes: BTreeMap::new(),
            }
        );
        let indexed =
            create(json!({"name": "p", "dimension": 3, "payload_indexes": {"lang": "keyword", "a.b": "float"}}));
        assert_eq!(
            indexed.expect("valid").payload_indexes,
            BTreeMap::from([("a.b".into(), PayloadIndexType::Float), ("lang".into(), PayloadIndexType::Keyword)])
        );
        assert_eq!(
            code(json!({"name": "p", "dimension": 3, "payload_indexes": {"lang": "text"}})),
            "invalid_parameter"
        );
        assert_eq!(code(json!({"name": "p", "dimension": 3, "payload_indexes": {"lang": 1}})), "invalid_body");
        assert_eq!(create(json!({"name": "p", "dimension": 3, "partitions": 64})).expect("valid").partitions, Some(64));
        for bad in [0, 3, 8192, -2] {
            assert_eq!(code(json!({"name": "p", "dimension": 3, "partitions": bad})), "invalid_parameter", "{bad}");
        }
        // What a Go client sends for unset fields: blank metric, nulls.
        let c = create(json!({"name": "a", "dimension": 3, "metric": "", "m": null})).expect("valid");
        assert_eq!((c.metric, c.m), (Metric::Cosine, 16));
    }

    #[test]
    fn given_parameters_are_kept() {
        let c = create(json!({"name": "A_b-9", "dimension": 8, "metric": "L2", "m": 32, "ef_construction": 400,
            "ef_search": 100, "quantization": {"type": "pq", "subspaces": 4}}))
        .expect("valid");
        assert_eq!(c.metric, Metric::Euclidean);
        assert_eq!((c.m, c.ef_construction, c.ef_search), (32, 400, 100));
        assert_eq!(c.quantization, Quantization::Pq { subspaces: 4, centroids: 256, oversampling: None });
    }

    #[test]
    fn metric_aliases() {
        for (m, want) in [("dot", Metric::DotProduct), ("l1", Metric::Manhattan), ("Cosine", Metric::Cosine)] {
            assert_eq!(create(json!({"name": "a", "dimension": 2, "metric": m})).expect("valid").metric, want);
        }
    }

    #[test]
    fn invalid_names() {
        let long = "a".repeat(256);
        for name in [json!(""), json!("a/b"), json!(".."), json!("a b"), json!("a\u{0}"), json!("é"), json!(long)] {
            assert_eq!(code(json!({"name": name, "dimension": 2})), "invalid_name", "{name}");
        }
        assert_eq!(code(json!({"dimension": 2})), "invalid_name");
        assert!(create(json!({"name": "a".repeat(255), "dimension": 2})).is_ok());
    }

    #[test]
    fn invalid_dimensions() {
        for d in [json!(0), json!(-3), json!(16_385)] {
            assert_eq!(code(json!({"name": "a", "dimension": d})), "invalid_dimension", "{d}");
        }
        assert_eq!(code(json!({"name": "a"})), "invalid_dimension");
        assert_eq!(code(json!({"name": "a", "dimension": 1.5})), "invalid_body");
        assert_eq!(code(json!({"name": "a", "dimension": "3"})), "invalid_body");
    }

    #[test]
    fn invalid_metric() {
        assert_eq!(code(json!({"name": "a", "dimension": 2, "metric": "hamming"})), "invalid_metric");
        assert_eq!(code(json!({"name": "a", "dimension": 2, "metric": 3})), "invalid_body");
    }

    #[test]
    fn invalid_hnsw_parameters() {
        for (field, v) in
            [("m", 0), ("m", -1), ("m", 129), ("ef_construction", 0), ("ef_search", -5), ("ef_search", 65_537)]
        {
            let mut body = json!({"name": "a", "dimension": 2});
            body[field] = json!(v);
            let e = create(body).expect_err(field);
            assert_eq!(e.code(), "invalid_parameter");
            assert!(e.to_string().starts_with(field), "{e}");
        }
    }

    #[test]
    fn invalid_quantization() {
        let q = |q: serde_json::Value| code(json!({"name": "a", "dimension": 12, "quantization": q}));
        assert_eq!(q(json!({"type": "pq", "subspaces": 5})), "invalid_parameter");
        assert_eq!(q(json!({"type": "pq", "subspaces": 0})), "invalid_parameter");
        assert_eq!(q(json!({"type": "pq", "subspaces": 24})), "invalid_parameter");
        assert_eq!(q(json!({"type": "pq", "subspaces": 4, "centroids": 257})), "invalid_parameter");
        assert_eq!(q(json!({"type": "sq8", "oversampling": 0.5})), "invalid_parameter");
        assert_eq!(q(json!({"type": "sq8", "oversampling": 1e39})), "invalid_parameter");
        assert_eq!(q(json!({"type": "pq"})), "invalid_body");
        assert_eq!(q(json!({"type": "pq", "subspaces": -1})), "invalid_body");
        assert_eq!(q(json!({"type": "binary"})), "invalid_body");
        assert!(create(json!({"name": "a", "dimension": 12, "quantization": {"type": "sq8"}})).is_ok());
        assert!(create(json!({"name": "a", "dimension": 12, "quantization": {"type": "none"}})).is_ok());
    }

    #[test]
    fn malformed_json() {
        assert_eq!(parse_json::<CreateCollectionRequest>(b"{\"name\":").expect_err("eof").code(), "invalid_json");
        assert_eq!(parse_json::<CreateCollectionRequest>(b"[1]").expect_err("shape").code(), "invalid_body");
    }

    #[test]
    fn quantization_wire_forms() {
        for (q, s) in [
            (Quantization::None, r#"{"type":"none"}"#),
            (Quantization::Sq8 { oversampling: None }, r#"{"type":"sq8"}"#),
            (
                Quantization::Pq { subspaces: 8, centroids: 256, oversampling: Some(4.0) },
                r#"{"type":"pq","subspaces":8,"centroids":256,"oversampling":4.0}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&q).expect("ser"), s);
            assert_eq!(serde_json::from_str::<Quantization>(s).expect("de"), q);
        }
    }

    #[test]
    fn valid_create_is_an_acceptable_create_body() {
        let c = create(json!({"name": "a", "dimension": 12, "metric": "dot", "quantization": {"type": "sq8"}}))
            .expect("valid");
        let again = create(serde_json::to_value(&c).expect("ser")).expect("valid");
        assert_eq!(again, c);
    }

    #[test]
    fn collection_info_shape() {
        let c = create(json!({"name": "docs", "dimension": 3})).expect("valid");
        let info = CollectionInfo::empty(&c);
        assert_eq!(
            serde_json::to_value(&info).expect("ser"),
            json!({"name": "docs", "dimension": 3, "size": 0, "max_level": 0, "metric": "cosine", "m": 16,
                "ef_construction": 200, "ef_search": 50, "quantization": {"type": "none"}})
        );
    }
}
