//! Conversions between the wire types of `ruvector_api` and the engine's
//! types. Pure functions, no I/O; the only place that knows both sides.
//!
//! - payloads travel as a JSON object on the wire and as that object's
//!   serialised bytes in the engine (`Point::payload`);
//! - quantization `oversampling` travels with the quantization on the wire
//!   and as a field of the collection configuration in the engine.

use std::collections::BTreeMap;

use ruvector_api::{
    ApiError, CollectionInfo, Metric, PayloadIndexType, Quantization, SearchHit, ValidCreate, VectorRecord,
};
use ruvector_engine::{CollectionConfig, Neighbor, PayloadIndexKind, Point, QuantizationConfig};
use serde_json::{Map, Value};

/// The wire metric as the index's metric.
pub fn metric_to_engine(m: Metric) -> ruvector_engine::Metric {
    match m {
        Metric::Cosine => ruvector_engine::Metric::Cosine,
        Metric::Euclidean => ruvector_engine::Metric::Euclidean,
        Metric::DotProduct => ruvector_engine::Metric::DotProduct,
        Metric::Manhattan => ruvector_engine::Metric::Manhattan,
    }
}

/// The index's metric as the wire metric.
pub fn metric_from_engine(m: ruvector_engine::Metric) -> Metric {
    match m {
        ruvector_engine::Metric::Cosine => Metric::Cosine,
        ruvector_engine::Metric::Euclidean => Metric::Euclidean,
        ruvector_engine::Metric::DotProduct => Metric::DotProduct,
        ruvector_engine::Metric::Manhattan => Metric::Manhattan,
    }
}

/// A validated create request as the engine's collection configuration.
pub fn collection_config(c: &ValidCreate) -> Result<CollectionConfig, ApiError> {
    let (quantization, oversampling) = match c.quantization {
        Quantization::None => (QuantizationConfig::None, None),
        Quantization::Sq8 { oversampling } => (QuantizationConfig::Sq8, oversampling),
        Quantization::Pq { subspaces, centroids, oversampling } => {
            (QuantizationConfig::Pq { subspaces, centroids }, oversampling)
        }
    };
    Ok(CollectionConfig {
        dimension: c.dimension,
        metric: metric_to_engine(c.metric),
        m: c.m,
        ef_construction: c.ef_construction,
        ef_search: c.ef_search,
        quantization,
        oversampling,
        partitions: c.partitions,
    })
}

/// A wire payload index type as the engine's kind.
pub fn index_kind(t: PayloadIndexType) -> PayloadIndexKind {
    match t {
        PayloadIndexType::Keyword => PayloadIndexKind::Keyword,
        PayloadIndexType::Integer => PayloadIndexKind::Integer,
        PayloadIndexType::Float => PayloadIndexKind::Float,
        PayloadIndexType::Bool => PayloadIndexKind::Bool,
    }
}

/// The engine's payload index kind as the wire's.
pub fn index_type(k: PayloadIndexKind) -> PayloadIndexType {
    match k {
        PayloadIndexKind::Keyword => PayloadIndexType::Keyword,
        PayloadIndexKind::Integer => PayloadIndexType::Integer,
        PayloadIndexKind::Float => PayloadIndexType::Float,
        PayloadIndexKind::Bool => PayloadIndexType::Bool,
    }
}

/// A create request's payload indexes as the engine's declarations.
pub fn declared_indexes(c: &ValidCreate) -> BTreeMap<String, PayloadIndexKind> {
    c.payload_indexes.iter().map(|(k, &t)| (k.clone(), index_kind(t))).collect()
}

/// The engine's description of a collection as the wire's.
pub fn collection_info(info: ruvector_engine::CollectionInfo) -> CollectionInfo {
    let c = info.config;
    CollectionInfo {
        name: info.name,
        dimension: c.dimension,
        size: info.size as u64,
        max_level: info.max_level,
        metric: metric_from_engine(c.metric),
        m: c.m,
        ef_construction: c.ef_construction,
        ef_search: c.ef_search,
        partitions: c.partitions,
        payload_indexes: info.payload_indexes.into_iter().map(|(k, kind)| (k, index_type(kind))).collect(),
        quantization: match c.quantization {
            QuantizationConfig::None => Quantization::None,
            QuantizationConfig::Sq8 => Quantization::Sq8 { oversampling: c.oversampling },
            QuantizationConfig::Pq { subspaces, centroids } => {
                Quantization::Pq { subspaces, centroids, oversampling: c.oversampling }
            }
        },
    }
}

/// A validated upsert item as an engine point (payload serialised).
pub fn point(record: VectorRecord) -> Result<Point, ApiError> {
    let payload = match &record.payload {
        None => None,
        Some(map) => {
            Some(serde_json::to_vec(map).map_err(|e| ApiError::internal(format!("serialising a payload: {e}")))?)
        }
    };
    Ok(Point { id: record.id, vector: record.vector, payload, version: record.version.unwrap_or(0) })
}

/// Parses a stored payload back into a JSON object.
pub fn payload(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// An engine point as the `GET .../vectors/{id}` response. A stored payload
/// that is not a JSON object is a fault of the node (500).
pub fn record(point: Point) -> Result<VectorRecord, ApiError> {
    let payload = match point.payload.as_deref() {
        None => None,
        Some(bytes) => Some(payload(bytes).map_err(|e| {
            ApiError::internal(format!("stored payload of vector {} is not a JSON object: {e}", point.id))
        })?),
    };
    Ok(VectorRecord {
        id: point.id,
        vector: point.vector,
        payload,
        version: (point.version != 0).then_some(point.version),
    })
}

/// Engine neighbours as wire hits (same order).
pub fn hits(neighbors: Vec<Neighbor>) -> Vec<SearchHit> {
    neighbors.into_iter().map(|n| SearchHit { id: n.id, distance: n.distance }).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn metrics_round_trip() {
        for m in Metric::ALL {
            assert_eq!(metric_from_engine(metric_to_engine(m)), m);
        }
    }

    #[test]
    fn payload_round_trip() {
        let Value::Object(map) = json!({"a": 1, "b": {"c": [true, "x"]}}) else { unreachable!() };
        let p =
            point(VectorRecord { id: 3, vector: vec![1.0], payload: Some(map.clone()), version: None }).expect("point");
        assert_eq!(p.payload.as_deref().map(payload).transpose().expect("parse"), Some(map.clone()));
        assert_eq!(record(p).expect("record").payload, Some(map));
        let bad = Point { id: 1, vector: vec![], payload: Some(b"[1]".to_vec()), version: 0 };
        assert_eq!(record(bad).expect_err("not an object").code(), "internal");
    }

    #[test]
    fn oversampling_round_trips_through_the_engine_config() {
        let mut c = ValidCreate {
            name: "a".into(),
            dimension: 4,
            metric: Metric::Cosine,
            m: 16,
            ef_construction: 100,
            ef_search: 50,
            quantization: Quantization::Sq8 { oversampling: Some(2.0) },
            partitions: Some(8),
            payload_indexes: BTreeMap::from([("lang".to_owned(), PayloadIndexType::Keyword)]),
        };
        assert_eq!(declared_indexes(&c), BTreeMap::from([("lang".to_owned(), PayloadIndexKind::Keyword)]));
        let config = collection_config(&c).expect("sq8");
        assert_eq!((config.quantization, config.oversampling), (QuantizationConfig::Sq8, Some(2.0)));
        assert_eq!(config.index_options().oversampling, 2);
        let info = ruvector_engine::CollectionInfo {
            name: "a".into(),
            config,
            size: 0,
            max_level: 0,
            memory_bytes: 0,
            unlinked: 0,
            pending_deletes: 0,
            tombstones: 0,
            payload_indexes: declared_indexes(&c),
        };
        let wire = collection_info(info);
        assert_eq!(wire.quantization, c.quantization);
        assert_eq!(wire.payload_indexes, c.payload_indexes);
        c.quantization = Quantization::Pq { subspaces: 2, centroids: 256, oversampling: Some(1.5) };
        let config = collection_config(&c).expect("pq");
        assert_eq!(config.quantization, QuantizationConfig::Pq { subspaces: 2, centroids: 256 });
        assert_eq!(config.index_options().oversampling, 2, "rounded up");
    }
}
