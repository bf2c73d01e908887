//! The `filter` target: a JSON filter (the `"filter"` of a search, count
//! or delete body) through `ruvector_api`'s parsing and validation, then
//! against the engine's payload indexes.
//!
//! Properties: a filter that does not parse or validate is a 4xx; one that
//! does serializes back to JSON that parses to the same filter (the router
//! forwards it that way); and wherever a payload index of any kind answers
//! one of its `eq` / `in` / `range` conditions, the answer is exactly the
//! set of points the reference semantics (`Condition::matches`) select,
//! after inserts and removals. The points are a fixed mix of payloads
//! plus, for each condition, payloads holding its own values (alone, in an
//! array, beside other types) at its key, so conditions do match.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::Outcome;
use ruvector_api::{Condition, Filter, Range, parse_json};
use ruvector_engine::{IndexedTest, PayloadIndexKind, PayloadIndexes, RoaringTreemap};
use serde_json::{Map, Value, json};

const KINDS: [PayloadIndexKind; 4] =
    [PayloadIndexKind::Keyword, PayloadIndexKind::Integer, PayloadIndexKind::Float, PayloadIndexKind::Bool];

/// The value `v` at the dotted `key`, as a payload object.
fn at_key(key: &str, v: Value) -> Value {
    key.rsplit('.').fold(v, |inner, part| {
        let mut m = Map::new();
        m.insert(part.to_owned(), inner);
        Value::Object(m)
    })
}

/// Payloads that make the filter's conditions match (and not match).
fn payloads(filter: &Filter) -> Vec<Value> {
    let mut out = vec![
        json!({}),
        json!({"a": 1}),
        json!({"a": 1.0, "b": "x"}),
        json!({"a": -0.0, "b": ["x", 2, true]}),
        json!({"a": null, "b": []}),
        json!({"a": {"b": 3}, "c": 9007199254740993u64}),
        json!({"a": [1.5, "1.5", false]}),
        json!({"a": 18446744073709551615u64, "b": -9223372036854775808i64}),
    ];
    let conditions = filter.must.iter().chain(&filter.must_not).chain(filter.should.iter().flatten());
    for c in conditions.take(16) {
        let mut values: Vec<Value> = c.eq.iter().cloned().collect();
        values.extend(c.any_of.iter().flatten().take(4).cloned());
        if let Some(r) = &c.range {
            values.extend([r.gt, r.gte, r.lt, r.lte].into_iter().flatten().map(|x| json!(x)));
        }
        for v in values {
            out.push(at_key(&c.key, v.clone()));
            out.push(at_key(&c.key, json!([v.clone(), "other", 0])));
            if let Some(x) = v.as_f64() {
                out.push(at_key(&c.key, json!(x)));
                out.push(at_key(&c.key, json!(x + 1.0)));
            }
        }
    }
    out
}

/// The test an index answers for `c`, when `c` is an index-answerable
/// condition with at most one bound per side.
fn indexed_test(c: &Condition) -> Option<IndexedTest<'_>> {
    if let Some(v) = &c.eq {
        return Some(IndexedTest::AnyOf(std::slice::from_ref(v)));
    }
    if let Some(values) = &c.any_of {
        return Some(IndexedTest::AnyOf(values));
    }
    let Range { gt, gte, lt, lte } = c.range?;
    let low = match (gt, gte) {
        (Some(_), Some(_)) => return None,
        (Some(x), None) => Bound::Excluded(x),
        (None, Some(x)) => Bound::Included(x),
        (None, None) => Bound::Unbounded,
    };
    let high = match (lt, lte) {
        (Some(_), Some(_)) => return None,
        (Some(x), None) => Bound::Excluded(x),
        (None, Some(x)) => Bound::Included(x),
        (None, None) => Bound::Unbounded,
    };
    Some(IndexedTest::Range { low, high })
}

/// `filter`: the bytes are the filter's JSON.
pub(crate) fn check(data: &[u8]) -> Outcome {
    let filter = match parse_json::<Filter>(data).and_then(|f| f.validate("filter").map(|()| f)) {
        Ok(filter) => filter,
        Err(e) => {
            assert!(e.status().is_client_error(), "a bad filter must be a 4xx, got {}: {e}", e.status());
            return Outcome::Refused;
        }
    };
    let text = serde_json::to_vec(&filter).expect("a filter serializes");
    let back: Filter = parse_json(&text).expect("a serialized filter parses");
    assert_eq!(back, filter, "filter changed through JSON: {}", String::from_utf8_lossy(&text));
    back.validate("filter").expect("a serialized valid filter validates");

    let points = payloads(&filter);
    let objects: Vec<Option<&Map<String, Value>>> = points.iter().map(Value::as_object).collect();
    for (i, p) in objects.iter().enumerate() {
        // Evaluating never panics, whatever the payload.
        filter.matches(i as u64, *p);
    }
    let conditions: Vec<&Condition> =
        filter.must.iter().chain(&filter.must_not).chain(filter.should.iter().flatten()).collect();
    for kind in KINDS {
        let declared: BTreeMap<String, PayloadIndexKind> =
            conditions.iter().filter(|c| !c.key.is_empty()).map(|c| (c.key.clone(), kind)).collect();
        let mut indexes = PayloadIndexes::new(&declared);
        for (i, p) in points.iter().enumerate() {
            indexes.insert(i as u64, Some(p));
        }
        // Remove every third point again: removal must leave exact sets.
        for (i, p) in points.iter().enumerate().filter(|(i, _)| i % 3 == 2) {
            indexes.remove(i as u64, Some(p));
        }
        for c in &conditions {
            let Some(test) = indexed_test(c) else { continue };
            let Some(answered) = indexes.matching(&c.key, &test) else { continue };
            let expected: RoaringTreemap = objects
                .iter()
                .enumerate()
                .filter(|(i, p)| i % 3 != 2 && c.matches(*i as u64, **p))
                .map(|(i, _)| i as u64)
                .collect();
            assert_eq!(
                answered, expected,
                "{kind:?} index answers {c:?} with {answered:?}, the reference with {expected:?}; points {points:?}"
            );
        }
    }
    Outcome::Accepted
}
