//! Payload indexes: for each declared payload key, the ids of the points
//! holding each value, as compressed bitmaps (`roaring`).
//!
//! A collection declares which keys are indexed and how
//! ([`PayloadIndexKind`]): `keyword` (strings, with an exact count per
//! value), `integer` and `float` (ordered, for ranges), `bool`. A key is a
//! top-level payload key or a dotted path into nested objects; an array
//! value indexes each element. A value of another type than the declared
//! one is not indexed (it cannot match a condition of that type either).
//!
//! [`PayloadIndexes`] is kept in step with the collection's points by the
//! write path: [`PayloadIndexes::remove`] with the old payload, then
//! [`PayloadIndexes::insert`] with the new one; it also holds the set of
//! every live id ([`PayloadIndexes::all`]), what `must_not` subtracts from.
//! Queries answer with the exact set of matching ids
//! ([`PayloadIndexes::matching`]) — exact under the filter language's
//! semantics, where a key may hold values of any type — or `None` when the
//! index cannot promise that (the key is not indexed, or the test or the
//! stored values are of another type than the index holds); the caller
//! then evaluates the condition per point.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a payload key is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadIndexKind {
    /// Strings: equality and `in`, exact counts per value.
    Keyword,
    /// Integral numbers: equality and ranges.
    Integer,
    /// Any number: ranges and equality.
    Float,
    /// `true` / `false`.
    Bool,
}

/// A test a payload index can answer.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexedTest<'a> {
    /// The value equals one of these scalars.
    AnyOf(&'a [Value]),
    /// The value is a number within the bounds.
    Range {
        /// Lower bound.
        low: Bound<f64>,
        /// Upper bound.
        high: Bound<f64>,
    },
}

/// A float as a totally ordered key (`f64::total_cmp` order, -0.0 folded
/// into 0.0 so that equal numbers share a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FloatKey(i64);

impl FloatKey {
    fn new(x: f64) -> FloatKey {
        let x = if x == 0.0 { 0.0 } else { x };
        let bits = x.to_bits() as i64;
        // Flip the magnitude bits of negatives: the integers then sort as
        // the floats do.
        FloatKey(bits ^ (((bits >> 63) as u64) >> 1) as i64)
    }
}

/// The index of one key.
#[derive(Debug, Clone)]
enum FieldIndex {
    Keyword(HashMap<String, RoaringTreemap>),
    /// `fractional`: how many values at the key are numbers the index
    /// cannot hold (with a fraction, or beyond `i64`); while any exist a
    /// range cannot be answered from the index alone.
    Integer {
        map: BTreeMap<i64, RoaringTreemap>,
        fractional: u64,
    },
    Float(BTreeMap<FloatKey, RoaringTreemap>),
    Bool([RoaringTreemap; 2]),
}

impl FieldIndex {
    fn new(kind: PayloadIndexKind) -> FieldIndex {
        match kind {
            PayloadIndexKind::Keyword => FieldIndex::Keyword(HashMap::new()),
            PayloadIndexKind::Integer => FieldIndex::Integer { map: BTreeMap::new(), fractional: 0 },
            PayloadIndexKind::Float => FieldIndex::Float(BTreeMap::new()),
            PayloadIndexKind::Bool => FieldIndex::Bool([RoaringTreemap::new(), RoaringTreemap::new()]),
        }
    }

    fn kind(&self) -> PayloadIndexKind {
        match self {
            FieldIndex::Keyword(_) => PayloadIndexKind::Keyword,
            FieldIndex::Integer { .. } => PayloadIndexKind::Integer,
            FieldIndex::Float(_) => PayloadIndexKind::Float,
            FieldIndex::Bool(_) => PayloadIndexKind::Bool,
        }
    }

    /// Adds (`add`) or removes `id` under one scalar value.
    fn update(&mut self, value: &Value, id: u64, add: bool) {
        fn set<K: Ord + Clone>(map: &mut BTreeMap<K, RoaringTreemap>, key: K, id: u64, add: bool) {
            if add {
                map.entry(key).or_default().insert(id);
            } else if let Some(ids) = map.get_mut(&key) {
                ids.remove(id);
                if ids.is_empty() {
                    map.remove(&key);
                }
            }
        }
        match (self, value) {
            (FieldIndex::Keyword(map), Value::String(s)) => {
                if add {
                    map.entry(s.clone()).or_default().insert(id);
                } else if let Some(ids) = map.get_mut(s) {
                    ids.remove(id);
                    if ids.is_empty() {
                        map.remove(s);
                    }
                }
            }
            (FieldIndex::Integer { map, fractional }, Value::Number(n)) => match integral(n) {
                Some(i) => set(map, i, id, add),
                None if add => *fractional += 1,
                None => *fractional = fractional.saturating_sub(1),
            },
            (FieldIndex::Float(map), Value::Number(n)) => {
                if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                    set(map, FloatKey::new(x), id, add);
                }
            }
            (FieldIndex::Bool(sets), Value::Bool(b)) => {
                if add {
                    sets[usize::from(*b)].insert(id);
                } else {
                    sets[usize::from(*b)].remove(id);
                }
            }
            _ => {}
        }
    }

    /// The ids whose value passes `test`, exactly as the filter language
    /// defines it; `None` when this index cannot promise that (module docs).
    fn matching(&self, test: &IndexedTest<'_>) -> Option<RoaringTreemap> {
        let all = |values: &[Value], typed: fn(&Value) -> bool| values.iter().all(typed);
        match (self, test) {
            (FieldIndex::Keyword(map), IndexedTest::AnyOf(values)) if all(values, Value::is_string) => {
                Some(union(values.iter().filter_map(|v| v.as_str().and_then(|s| map.get(s)))))
            }
            (FieldIndex::Bool(sets), IndexedTest::AnyOf(values)) if all(values, Value::is_boolean) => {
                Some(union(values.iter().filter_map(Value::as_bool).map(|b| &sets[usize::from(b)])))
            }
            (FieldIndex::Integer { map, fractional }, IndexedTest::AnyOf(values)) if all(values, Value::is_number) => {
                // 1.0 equals 1; 1.5 equals no integer — but may equal a
                // stored 1.5 the index does not hold.
                let wanted: Vec<Option<i64>> = values.iter().map(|v| v.as_f64().and_then(exact_integer)).collect();
                if *fractional > 0 && wanted.iter().any(Option::is_none) {
                    return None;
                }
                Some(union(wanted.iter().flatten().filter_map(|i| map.get(i))))
            }
            (FieldIndex::Float(map), IndexedTest::AnyOf(values)) if all(values, Value::is_number) => {
                Some(union(values.iter().filter_map(|v| v.as_f64().and_then(|x| map.get(&FloatKey::new(x))))))
            }
            (FieldIndex::Integer { map, fractional: 0 }, IndexedTest::Range { low, high }) => {
                let Some((low, high)) = integer_bounds(*low, *high) else { return Some(RoaringTreemap::new()) };
                Some(union(map.range((low, high)).map(|(_, ids)| ids)))
            }
            (FieldIndex::Float(map), IndexedTest::Range { low, high }) => {
                let key = |b: Bound<f64>| match b {
                    Bound::Included(x) => Bound::Included(FloatKey::new(x)),
                    Bound::Excluded(x) => Bound::Excluded(FloatKey::new(x)),
                    Bound::Unbounded => Bound::Unbounded,
                };
                if range_is_empty(*low, *high) {
                    return Some(RoaringTreemap::new());
                }
                Some(union(map.range((key(*low), key(*high))).map(|(_, ids)| ids)))
            }
            _ => None,
        }
    }

    /// Per value, how many ids hold it (keywords only).
    fn counts(&self) -> Option<BTreeMap<String, u64>> {
        match self {
            FieldIndex::Keyword(map) => Some(map.iter().map(|(k, ids)| (k.clone(), ids.len())).collect()),
            _ => None,
        }
    }
}

fn union<'a>(sets: impl Iterator<Item = &'a RoaringTreemap>) -> RoaringTreemap {
    let mut out = RoaringTreemap::new();
    for ids in sets {
        out |= ids;
    }
    out
}

/// A JSON number that is an integer (an `i64`, or a float with no
/// fraction within `i64`).
/// The key of a stored number: its value as the filter language compares
/// it (as an `f64`), when that is an integer. Keying a large integer by its
/// exact value instead (above 2⁵³) missed it for a query equal to it as a
/// float (found by the `filter` fuzz target).
fn integral(n: &serde_json::Number) -> Option<i64> {
    n.as_f64().and_then(exact_integer)
}

fn exact_integer(x: f64) -> Option<i64> {
    // 2^63 itself is out of range; every float below it in magnitude with
    // no fraction converts exactly.
    (x.fract() == 0.0 && x.abs() < 2f64.powi(63)).then_some(x as i64)
}

fn range_is_empty(low: Bound<f64>, high: Bound<f64>) -> bool {
    match (low, high) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b)) | (Bound::Excluded(a), Bound::Included(b)) => {
            a >= b
        }
        _ => false,
    }
}

/// Float bounds as the equivalent integer bounds, `None` when no integer
/// lies within them.
fn integer_bounds(low: Bound<f64>, high: Bound<f64>) -> Option<(Bound<i64>, Bound<i64>)> {
    let low = match low {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(x) => Bound::Included(clamp_i64(x.ceil())),
        Bound::Excluded(x) => Bound::Included(clamp_i64(if x.fract() == 0.0 { x + 1.0 } else { x.ceil() })),
    };
    let high = match high {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(x) => Bound::Included(clamp_i64(x.floor())),
        Bound::Excluded(x) => Bound::Included(clamp_i64(if x.fract() == 0.0 { x - 1.0 } else { x.floor() })),
    };
    if let (Bound::Included(a), Bound::Included(b)) = (low, high)
        && a > b
    {
        return None;
    }
    Some((low, high))
}

fn clamp_i64(x: f64) -> i64 {
    // `as` saturates at the bounds of i64.
    x as i64
}

/// The scalar values at a dotted `key` of a payload: the value, or each
/// element of an array value.
fn values_at<'a>(payload: &'a Value, key: &str) -> Vec<&'a Value> {
    let mut value = Some(payload);
    for part in key.split('.') {
        value = value.and_then(|v| v.get(part));
    }
    match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    }
}

/// Every payload index of one collection.
#[derive(Debug, Clone, Default)]
pub struct PayloadIndexes {
    fields: BTreeMap<String, FieldIndex>,
    /// Every live id, with a payload or not.
    all: RoaringTreemap,
}

impl PayloadIndexes {
    /// Empty indexes for the declared keys.
    pub fn new(declared: &BTreeMap<String, PayloadIndexKind>) -> PayloadIndexes {
        PayloadIndexes {
            fields: declared.iter().map(|(k, &kind)| (k.clone(), FieldIndex::new(kind))).collect(),
            all: RoaringTreemap::new(),
        }
    }

    /// The declared keys and kinds.
    pub fn declared(&self) -> BTreeMap<String, PayloadIndexKind> {
        self.fields.iter().map(|(k, f)| (k.clone(), f.kind())).collect()
    }

    /// Whether any key is indexed.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Adds an index for `key` (empty: the caller fills it with
    /// [`PayloadIndexes::insert_into`] over the existing payloads). An
    /// existing index of the same kind is kept; of another kind, replaced.
    pub fn declare(&mut self, key: &str, kind: PayloadIndexKind) -> bool {
        if self.fields.get(key).is_some_and(|f| f.kind() == kind) {
            return false;
        }
        self.fields.insert(key.to_owned(), FieldIndex::new(kind));
        true
    }

    /// Every live id.
    pub fn all(&self) -> &RoaringTreemap {
        &self.all
    }

    /// Records the live point `id` and indexes it under the values of its
    /// parsed payload (if any).
    pub fn insert(&mut self, id: u64, payload: Option<&Value>) {
        self.all.insert(id);
        let Some(payload) = payload else { return };
        for (key, field) in &mut self.fields {
            for v in values_at(payload, key) {
                field.update(v, id, true);
            }
        }
    }

    /// Drops the index of `key`; returns whether there was one.
    pub fn undeclare(&mut self, key: &str) -> bool {
        self.fields.remove(key).is_some()
    }

    /// Indexes `id` under the values of its payload for `key` only.
    pub fn insert_into(&mut self, key: &str, id: u64, payload: &Value) {
        if let Some(field) = self.fields.get_mut(key) {
            for v in values_at(payload, key) {
                field.update(v, id, true);
            }
        }
    }

    /// Forgets the point `id`, indexed under the values of its old parsed
    /// payload (if any).
    pub fn remove(&mut self, id: u64, payload: Option<&Value>) {
        self.all.remove(id);
        let Some(payload) = payload else { return };
        for (key, field) in &mut self.fields {
            for v in values_at(payload, key) {
                field.update(v, id, false);
            }
        }
    }

    /// The exact set of ids whose value at `key` passes `test`, or `None`
    /// when `key` is not indexed with a kind that answers it.
    pub fn matching(&self, key: &str, test: &IndexedTest<'_>) -> Option<RoaringTreemap> {
        self.fields.get(key)?.matching(test)
    }

    /// The ids holding any value at `key` (of the indexed kind), or `None`
    /// when `key` is not indexed.
    pub fn holding(&self, key: &str) -> Option<RoaringTreemap> {
        Some(match self.fields.get(key)? {
            FieldIndex::Keyword(map) => union(map.values()),
            FieldIndex::Integer { map, .. } => union(map.values()),
            FieldIndex::Float(map) => union(map.values()),
            FieldIndex::Bool(sets) => union(sets.iter()),
        })
    }

    /// For a keyword index: how many ids hold each value.
    pub fn counts(&self, key: &str) -> Option<BTreeMap<String, u64>> {
        self.fields.get(key)?.counts()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;

    fn declared() -> BTreeMap<String, PayloadIndexKind> {
        [
            ("lang", PayloadIndexKind::Keyword),
            ("year", PayloadIndexKind::Integer),
            ("score", PayloadIndexKind::Float),
            ("ok", PayloadIndexKind::Bool),
            ("meta.tag", PayloadIndexKind::Keyword),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn ids(set: Option<RoaringTreemap>) -> Vec<u64> {
        set.expect("indexed").iter().collect()
    }

    /// The reference semantics of a test on one key (as `ruvector_api`'s
    /// `Condition::matches` has them): whatever the index's kind, a value
    /// of any type may match.
    fn oracle(payload: &Value, key: &str, test: &IndexedTest<'_>) -> bool {
        values_at(payload, key).into_iter().any(|v| match test {
            IndexedTest::AnyOf(values) => values.iter().any(|w| match (v, w) {
                (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                _ => v == w,
            }),
            IndexedTest::Range { low, high } => v.as_f64().is_some_and(|x| {
                (match low {
                    Bound::Included(b) => x >= *b,
                    Bound::Excluded(b) => x > *b,
                    Bound::Unbounded => true,
                }) && (match high {
                    Bound::Included(b) => x <= *b,
                    Bound::Excluded(b) => x < *b,
                    Bound::Unbounded => true,
                })
            }),
        })
    }

    #[test]
    fn every_kind_answers_equality_and_ranges_exactly() {
        let mut index = PayloadIndexes::new(&declared());
        index.insert(1, Some(&json!({"lang": "en", "year": 2020, "score": 0.5, "ok": true, "meta": {"tag": "a"}})));
        index.insert(2, Some(&json!({"lang": ["de", "en"], "year": 2021.0, "score": -0.0, "ok": false})));
        index.insert(3, Some(&json!({"lang": 7, "year": 2019.5, "score": "high", "meta": {"tag": ["b", "a"]}})));
        let index_of =
            |index: &PayloadIndexes, key: &str, values: &[Value]| ids(index.matching(key, &IndexedTest::AnyOf(values)));
        let en = [json!("en")];
        assert_eq!(index_of(&index, "lang", &en), [1, 2]);
        assert_eq!(index.counts("lang").expect("keyword"), BTreeMap::from([("de".into(), 1), ("en".into(), 2)]));
        assert_eq!(index_of(&index, "meta.tag", &[json!("a")]), [1, 3]);
        assert_eq!(index_of(&index, "year", &[json!(2021)]), [2]);
        // 2019.5 is stored but not held by the integer index: tests it may
        // pass are left to the caller.
        assert!(index.matching("year", &IndexedTest::AnyOf(&[json!(2019.5)])).is_none());
        let after_2019 = IndexedTest::Range { low: Bound::Excluded(2019.0), high: Bound::Unbounded };
        assert!(index.matching("year", &after_2019).is_none());
        assert!(index.matching("lang", &IndexedTest::AnyOf(&[json!(7)])).is_none(), "a number on a keyword key");
        index.remove(3, Some(&json!({"lang": 7, "year": 2019.5, "score": "high", "meta": {"tag": ["b", "a"]}})));
        assert_eq!(index_of(&index, "year", &[json!(2019.5)]), Vec::<u64>::new());
        assert_eq!(ids(index.matching("year", &after_2019)), [1, 2]);
        assert_eq!(index_of(&index, "meta.tag", &[json!("a")]), [1]);
        assert_eq!(index.all().iter().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(index_of(&index, "score", &[json!(0)]), [2], "-0.0 equals 0");
        let negative = IndexedTest::Range { low: Bound::Unbounded, high: Bound::Excluded(0.0) };
        assert_eq!(ids(index.matching("score", &negative)), Vec::<u64>::new());
        assert_eq!(index_of(&index, "ok", &[json!(true)]), [1]);
        assert!(index.matching("lang", &after_2019).is_none(), "a keyword index cannot answer a range");
        assert!(index.matching("unindexed", &IndexedTest::AnyOf(&en)).is_none());
        index.remove(2, Some(&json!({"lang": ["de", "en"], "year": 2021.0, "score": -0.0, "ok": false})));
        assert_eq!(ids(index.matching("lang", &IndexedTest::AnyOf(&en))), [1]);
        assert_eq!(index.counts("lang").expect("keyword"), BTreeMap::from([("en".into(), 1)]));
        assert_eq!(ids(index.holding("year")), [1]);
    }

    #[test]
    fn random_payloads_and_tests_match_the_reference_semantics() {
        let seed = 20_261_203;
        let mut rng = SmallRng::seed_from_u64(seed);
        let random_value = |rng: &mut SmallRng| -> Value {
            match rng.random_range(0..6) {
                0 => json!(["x", "y", "z"][rng.random_range(0..3)]),
                1 => json!(rng.random_range(-5i64..5)),
                2 => json!(f64::from(rng.random_range(-10i32..10)) / 4.0),
                3 => json!(rng.random_bool(0.5)),
                4 => json!([rng.random_range(-5i64..5), "x"]),
                _ => Value::Null,
            }
        };
        let keys = ["k", "i", "f", "b"];
        let kinds =
            [PayloadIndexKind::Keyword, PayloadIndexKind::Integer, PayloadIndexKind::Float, PayloadIndexKind::Bool];
        let declared: BTreeMap<String, PayloadIndexKind> =
            keys.iter().zip(kinds).map(|(k, kind)| ((*k).to_owned(), kind)).collect();
        let mut index = PayloadIndexes::new(&declared);
        let mut payloads: BTreeMap<u64, Value> = BTreeMap::new();
        for step in 0..3000u64 {
            let id = rng.random_range(0..300u64);
            if let Some(old) = payloads.remove(&id) {
                index.remove(id, Some(&old));
            }
            if step % 7 != 0 {
                let payload = json!({
                    "k": random_value(&mut rng), "i": random_value(&mut rng),
                    "f": random_value(&mut rng), "b": random_value(&mut rng),
                });
                index.insert(id, Some(&payload));
                payloads.insert(id, payload);
            }
        }
        let bound = |rng: &mut SmallRng| -> Bound<f64> {
            let x = f64::from(rng.random_range(-12i32..12)) / 4.0;
            match rng.random_range(0..3) {
                0 => Bound::Included(x),
                1 => Bound::Excluded(x),
                _ => Bound::Unbounded,
            }
        };
        let mut unanswered = 0;
        for _ in 0..400 {
            let key = keys[rng.random_range(0..4)];
            let values: Vec<Value> = (0..rng.random_range(1..3)).map(|_| random_value(&mut rng)).collect();
            let test = if rng.random_bool(0.5) {
                IndexedTest::AnyOf(&values)
            } else {
                IndexedTest::Range { low: bound(&mut rng), high: bound(&mut rng) }
            };
            let Some(got) = index.matching(key, &test) else {
                unanswered += 1;
                continue;
            };
            let want: Vec<u64> = payloads.iter().filter(|(_, p)| oracle(p, key, &test)).map(|(&id, _)| id).collect();
            assert_eq!(got.iter().collect::<Vec<_>>(), want, "seed {seed}: {key} {test:?}");
        }
        assert!(unanswered < 340, "seed {seed}: the indexes answered only {} of 400 tests", 400 - unanswered);
        assert_eq!(index.all().iter().collect::<Vec<_>>(), payloads.keys().copied().collect::<Vec<_>>());
    }

    #[test]
    fn float_keys_sort_as_the_floats_do() {
        let xs = [f64::NEG_INFINITY, -3.5, -1.0, -f64::MIN_POSITIVE, 0.0, f64::MIN_POSITIVE, 1.0, 2.5, f64::MAX];
        for pair in xs.windows(2) {
            assert!(FloatKey::new(pair[0]) < FloatKey::new(pair[1]), "{pair:?}");
        }
        assert_eq!(FloatKey::new(-0.0), FloatKey::new(0.0));
    }
}
