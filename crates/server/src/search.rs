//! Search over the engine, including payload filters.
//!
//! The engine does not filter yet, so a search with a `filter` is answered
//! by **post-filtering** here: the graph is searched for `4·k` candidates
//! (with the beam widened to at least that), the candidates' payloads are
//! tested with [`Filter::matches`] (the reference semantics of
//! `ruvector_api`), and the search is repeated with four times as many
//! candidates until `k` matches are found, the collection is exhausted, or
//! [`MAX_FILTER_CANDIDATES`] candidates were examined. Consequences, also
//! stated in the OpenAPI description of the route:
//!
//! - results are exact with respect to the filter and nearest first;
//! - a very selective filter (fewer than `k` matches among the nearest
//!   65 536 vectors) can return fewer than `k` hits;
//! - cost grows with selectivity: each round re-runs the graph search.
//!
//! Blocking (CPU-bound): call from `spawn_blocking`.

use std::collections::HashMap;

use ruvector_api::{Filter, SearchHit, ValidSearch};
use ruvector_engine::{Engine, EngineError};

use crate::config::MAX_FILTER_CANDIDATES;
use crate::convert;
use crate::membership::Gate;

/// First-round candidates per wanted hit, and the growth factor per round.
const OVERSAMPLING: usize = 4;

/// Runs one validated search on collection `name` whose default beam width
/// is `ef_search`. With a `gate` (a shard whose partitions are partly
/// filling or released), ids the gate does not let be read are skipped
/// inside the graph walk, so they never crowd out readable ones.
pub(crate) fn search(
    engine: &Engine,
    name: &str,
    ef_search: usize,
    s: &ValidSearch,
    gate: Option<&Gate>,
) -> Result<Vec<SearchHit>, EngineError> {
    if s.filter.is_none() && gate.is_none() {
        return Ok(convert::hits(engine.search(name, &s.vector, s.k, s.ef)?));
    }
    if gate.is_some_and(|g| !g.any_readable()) {
        // Every partition here is filling or released: nothing to find
        // (walking the graph for it would visit all of it).
        return Ok(Vec::new());
    }
    // The gate is checked inside the graph walk; the payload filter after.
    let readable = |id: u64| gate.is_none_or(|g| g.readable(name, id));
    if s.filter.is_none() {
        return Ok(convert::hits(engine.search_where(name, &s.vector, s.k, s.ef, &readable)?));
    }
    let ef = s.effective_ef(ef_search);
    let mut want = s.k.saturating_mul(OVERSAMPLING).clamp(s.k, MAX_FILTER_CANDIDATES.max(s.k));
    // A candidate's verdict, kept across rounds (each round re-finds the
    // previous round's candidates).
    let mut verdicts: HashMap<u64, bool> = HashMap::new();
    loop {
        let candidates = engine.search_where(name, &s.vector, want, Some(ef.max(want)), &readable)?;
        // Fewer candidates than asked means the collection is exhausted only
        // if it holds no more (an approximate search can come back short).
        let exhausted = candidates.len() < want && engine.collection(name)?.size <= candidates.len();
        let mut hits = Vec::with_capacity(s.k);
        for n in candidates {
            let pass = match verdicts.get(&n.id) {
                Some(&pass) => pass,
                None => {
                    let pass = match &s.filter {
                        Some(filter) => passes(engine, name, n.id, filter)?,
                        None => true,
                    };
                    verdicts.insert(n.id, pass);
                    pass
                }
            };
            if pass {
                hits.push(SearchHit { id: n.id, distance: n.distance });
                if hits.len() == s.k {
                    break;
                }
            }
        }
        if hits.len() == s.k || exhausted || want >= MAX_FILTER_CANDIDATES {
            return Ok(hits);
        }
        want = want.saturating_mul(OVERSAMPLING).min(MAX_FILTER_CANDIDATES);
    }
}

/// Whether the point `id` (if it still exists) passes `filter`. A stored
/// payload that is not a JSON object (never written by this server) is
/// treated as no payload, and logged.
fn passes(engine: &Engine, name: &str, id: u64, filter: &Filter) -> Result<bool, EngineError> {
    let Some(point) = engine.get(name, id)? else { return Ok(false) };
    let payload = match point.payload.as_deref().map(convert::payload) {
        None => None,
        Some(Ok(map)) => Some(map),
        Some(Err(error)) => {
            tracing::warn!(collection = name, id, %error, "stored payload is not a JSON object");
            None
        }
    };
    Ok(filter.matches(id, payload.as_ref()))
}

#[cfg(test)]
mod tests {
    use ruvector_api::{Condition, ValidSearch};
    use ruvector_engine::{CollectionConfig, EngineConfig, Metric, Point};
    use serde_json::json;

    use super::*;

    /// Post-filtering against a brute-force oracle on a 1-d line: point i is
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
            search(&engine, "line", 50, &query(even, 3), None).expect("search").iter().map(|h| h.id).collect();
        assert_eq!(ids, [100, 102, 98]);

        // Selective: only i >= 490 match; found by widening the search.
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
            search(&engine, "line", 50, &query(far.clone(), 5), None).expect("search").iter().map(|h| h.id).collect();
        assert_eq!(ids, [490, 491, 492, 493, 494]);
        // Fewer matches than k: all of them, nearest first.
        let ids: Vec<u64> =
            search(&engine, "line", 50, &query(far, 50), None).expect("search").iter().map(|h| h.id).collect();
        assert_eq!(ids, (490..500).collect::<Vec<_>>());
    }
}
