//! Search over the engine, with payload filters; counting and deleting by
//! filter.
//!
//! The engine plans a filtered search (`ruvector_engine`'s `filtered`
//! module: exact scoring of the matches when they are few, otherwise a
//! graph walk that checks the filter before scoring, with a fallback to
//! exact scoring). This module gives it the filter language of
//! `ruvector_api` as a [`PayloadFilter`]: the payload indexes answer the
//! conditions they can exactly ([`ApiFilter::candidates`]), and
//! [`Filter::matches`] — the reference semantics — decides the rest per
//! point. Consequences, also stated in the OpenAPI description of the
//! route: results are exact with respect to the filter, nearest first, and
//! a search returns min(k, matching vectors) hits.
//!
//! Blocking (CPU-bound): call from `spawn_blocking`.

use std::ops::Bound;

use ruvector_api::{Condition, Filter, SearchHit, ValidSearch};
use ruvector_engine::{
    Candidates, Engine, EngineError, FilterPlan, IndexedTest, PayloadFilter, PayloadIndexes, RoaringTreemap,
};

use crate::convert;
use crate::membership::Gate;

/// A search's filter as the engine's planner asks for it.
pub(crate) struct ApiFilter<'a>(pub(crate) &'a Filter);

impl PayloadFilter for ApiFilter<'_> {
    /// `must` conditions intersect, `should` ones unite (when every one is
    /// answered), `must_not` ones are subtracted from the rest; the result
    /// is exact when every condition was answered by an index (or is a
    /// `has_id`).
    fn candidates(&self, indexes: &PayloadIndexes) -> Candidates {
        let filter = self.0;
        let mut exact = true;
        let mut ids: Option<RoaringTreemap> = None;
        let narrow = |set: RoaringTreemap, ids: &mut Option<RoaringTreemap>| match ids {
            Some(current) => *current &= set,
            None => *ids = Some(set),
        };
        for c in &filter.must {
            match answer(indexes, c) {
                Some(set) => narrow(set, &mut ids),
                None => exact = false,
            }
        }
        if let Some(should) = &filter.should {
            let answered: Option<Vec<RoaringTreemap>> = should.iter().map(|c| answer(indexes, c)).collect();
            match answered {
                Some(sets) => {
                    let mut union = RoaringTreemap::new();
                    for set in sets {
                        union |= set;
                    }
                    narrow(union, &mut ids);
                }
                None => exact = false,
            }
        }
        for c in &filter.must_not {
            match answer(indexes, c) {
                Some(set) => {
                    let current = ids.get_or_insert_with(|| indexes.all().clone());
                    *current -= set;
                }
                None => exact = false,
            }
        }
        Candidates { ids, exact }
    }

    fn matches(&self, id: u64, payload: Option<&[u8]>) -> bool {
        let parsed = match payload.map(convert::payload) {
            None => None,
            Some(Ok(map)) => Some(map),
            Some(Err(error)) => {
                tracing::warn!(id, %error, "stored payload is not a JSON object");
                None
            }
        };
        self.0.matches(id, parsed.as_ref())
    }
}

/// The exact set of ids for which `c` holds, when an index (or the ids
/// themselves, for `has_id`) can say.
fn answer(indexes: &PayloadIndexes, c: &Condition) -> Option<RoaringTreemap> {
    if let Some(ids) = &c.has_id {
        let mut set: RoaringTreemap = ids.iter().copied().collect();
        set &= indexes.all();
        return Some(set);
    }
    if let Some(value) = &c.eq {
        return indexes.matching(&c.key, &IndexedTest::AnyOf(std::slice::from_ref(value)));
    }
    if let Some(values) = &c.any_of {
        return indexes.matching(&c.key, &IndexedTest::AnyOf(values));
    }
    if let Some(r) = &c.range {
        // Two bounds on one side: the tighter one.
        let low = match (r.gt, r.gte) {
            (Some(gt), Some(gte)) if gte > gt => Bound::Included(gte),
            (Some(gt), _) => Bound::Excluded(gt),
            (None, Some(gte)) => Bound::Included(gte),
            (None, None) => Bound::Unbounded,
        };
        let high = match (r.lt, r.lte) {
            (Some(lt), Some(lte)) if lte < lt => Bound::Included(lte),
            (Some(lt), _) => Bound::Excluded(lt),
            (None, Some(lte)) => Bound::Included(lte),
            (None, None) => Bound::Unbounded,
        };
        return indexes.matching(&c.key, &IndexedTest::Range { low, high });
    }
    None
}

/// One search's answer, with the plan of a filtered search.
pub(crate) struct Searched {
    pub(crate) hits: Vec<SearchHit>,
    pub(crate) plan: Option<FilterPlan>,
}

/// Runs one validated search on collection `name`. With a `gate` (a shard
/// whose partitions are partly filling or released), ids the gate does
/// not let be read are skipped inside the graph walk, so they never crowd
/// out readable ones.
pub(crate) fn search(
    engine: &Engine,
    name: &str,
    s: &ValidSearch,
    gate: Option<&Gate>,
) -> Result<Searched, EngineError> {
    let unfiltered = |hits| Ok(Searched { hits, plan: None });
    if s.filter.is_none() && gate.is_none() {
        return unfiltered(convert::hits(engine.search(name, &s.vector, s.k, s.ef)?));
    }
    if gate.is_some_and(|g| !g.any_readable()) {
        // Every partition here is filling or released: nothing to find
        // (walking the graph for it would visit all of it).
        return unfiltered(Vec::new());
    }
    let readable = |id: u64| gate.is_none_or(|g| g.readable(name, id));
    match &s.filter {
        None => unfiltered(convert::hits(engine.search_where(name, &s.vector, s.k, s.ef, &readable)?)),
        Some(filter) => {
            let gate: ruvector_engine::Gate<'_> = if gate.is_some() { Some(&readable) } else { None };
            let found = engine.search_filtered(name, &s.vector, s.k, s.ef, &ApiFilter(filter), gate)?;
            Ok(Searched { hits: convert::hits(found.hits), plan: Some(found.plan) })
        }
    }
}

#[cfg(test)]
mod tests {
    use ruvector_api::{Condition, ValidSearch};
    use ruvector_engine::{CollectionConfig, EngineConfig, Metric, Point};
    use serde_json::json;

    use super::*;

    /// Filtered search without payload indexes on a 1-d line: point i is
    /// at x = i, payload `{"even": i % 2 == 0, "i": i}`.
    #[test]
    fn filtered_search_matches_brute_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(EngineConfig::new(dir.path())).expect("open");
        engine.create_collection("line", CollectionConfig::new(1, Metric::Euclidean)).expect("create");
        let points: Vec<Point> = (0..500u64)
            .map(|i| Point {
                id: i,
                vector: vec![i as f32],
                payload: Some(json!({"even": i % 2 == 0, "i": i}).to_string().into_bytes()),
                version: 0,
            })
            .collect();
        engine.upsert("line", points).expect("upsert");
        // As the node's maintenance thread does: link, and relink what
        // concurrent linking of a 1-d batch left unreachable.
        engine.maintain_fully().expect("maintain");
        let query = |filter: Filter, k: usize| ValidSearch {
            vector: vec![100.2],
            k,
            ef: None,
            allow_partial: false,
            filter: Some(filter),
        };
        let even = Filter {
            must: vec![Condition { key: "even".into(), eq: Some(json!(true)), ..Condition::default() }],
            must_not: vec![],
            should: None,
        };
        let ids: Vec<u64> =
            search(&engine, "line", &query(even, 3), None).expect("search").hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, [100, 102, 98]);

        // Selective: only i >= 490 match (no payload index: every point's
        // payload is tested).
        let far = Filter {
            must: vec![Condition {
                key: "i".into(),
                range: Some(ruvector_api::Range { gte: Some(490.0), ..Default::default() }),
                ..Condition::default()
            }],
            must_not: vec![],
            should: None,
        };
        let ids: Vec<u64> =
            search(&engine, "line", &query(far.clone(), 5), None).expect("search").hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, [490, 491, 492, 493, 494]);
        // Fewer matches than k: all of them, nearest first.
        let ids: Vec<u64> =
            search(&engine, "line", &query(far, 50), None).expect("search").hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, (490..500).collect::<Vec<_>>());
    }
}
