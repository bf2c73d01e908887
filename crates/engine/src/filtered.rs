//! Filtered search, and counting and deleting by filter: the planner.
//!
//! The engine does not know the filter language (that is the API's); it
//! asks a [`PayloadFilter`] two things: which ids the payload indexes say
//! may match ([`Candidates`], exact when every condition was answered by an
//! index), and whether one point passes (the reference semantics, for
//! conditions no index answers). A search then picks one of three plans:
//!
//! 1. **Exact** — at most [`crate::EngineConfig::exact_filter_max`]
//!    candidates: score every candidate that passes
//!    ([`ruvector_index::Hnsw::score_ids`]); no graph walk. The answer is
//!    exact.
//! 2. **Walk** — more candidates. Up to [`PLAIN_WALK_ABOVE`] of the
//!    collection: a graph walk that checks the filter before computing a
//!    distance and looks through non-matching neighbours
//!    ([`ruvector_index::Hnsw::search_filtered`]), seeded with a few
//!    matching vectors, with a beam a quarter wider than the search's
//!    `ef`, and with a budget of as many scored vectors as there are
//!    candidates (the candidates copied into a plain bitmap first when
//!    their ids are dense, so each check is one bit test). Above: the
//!    usual walk with the filter deciding what enters the beam
//!    ([`ruvector_index::Hnsw::search_where`]).
//! 3. **Fallback** — the walk ran over its budget, or did not fill its
//!    beam although enough vectors match, or found fewer than `k`: plan 1
//!    over every candidate, whatever their number.
//!
//! So a search always returns min(k, S) results (S: the matching vectors),
//! every one matching, and never costs much more than scoring all S.
//!
//! A `gate` (a shard's partitions that are filling or released) is one
//! more filter on ids, checked with the others.

use roaring::RoaringTreemap;
use ruvector_index::{IndexError, Neighbor};
use ruvector_storage::WalRecord;

use crate::EngineError;
use crate::collection::Collection;
use crate::engine::Engine;
use crate::payload_index::PayloadIndexes;

/// Matching vectors sampled from the candidates to seed a filtered walk.
const WALK_SEEDS: u64 = 16;

/// Above this share of the live vectors matching, the walk is the usual
/// one — every neighbour scored, the filter deciding what enters the beam
/// and the results — rather than the look-through walk: with that many
/// matches the graph around the query is full of them, and scoring every
/// neighbour keeps the beam's routing (BENCHMARKS.md §10: better recall at
/// the same speed at 20 % and 45 %; far slower at 10 % and below).
const PLAIN_WALK_ABOVE: f64 = 0.15;

/// A payload filter as the engine needs it (module docs).
pub trait PayloadFilter: Sync {
    /// The ids the payload indexes allow; see [`Candidates`].
    fn candidates(&self, indexes: &PayloadIndexes) -> Candidates;

    /// Whether the point `id` with the stored `payload` (the client's JSON
    /// bytes) passes the filter.
    fn matches(&self, id: u64, payload: Option<&[u8]>) -> bool;
}

/// What the payload indexes say about a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    /// Every id that may match (`None`: the indexes narrow nothing down —
    /// every live id may).
    pub ids: Option<RoaringTreemap>,
    /// Whether every candidate matches, so [`PayloadFilter::matches`] need
    /// not be asked.
    pub exact: bool,
}

/// Which plan answered a filtered search (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterPlan {
    /// Every candidate scored.
    Exact,
    /// The filtered graph walk.
    Walk,
    /// The walk gave up or came back short; then every candidate scored.
    Fallback,
}

impl FilterPlan {
    /// The plan's name (for metrics and logs).
    pub fn name(self) -> &'static str {
        match self {
            FilterPlan::Exact => "exact",
            FilterPlan::Walk => "walk",
            FilterPlan::Fallback => "fallback",
        }
    }
}

/// The answer of a filtered search.
#[derive(Debug, Clone, PartialEq)]
pub struct FilteredHits {
    /// Up to `k` matching points, nearest first.
    pub hits: Vec<Neighbor>,
    /// How they were found.
    pub plan: FilterPlan,
}

/// A filter on ids (a shard's readable partitions).
pub type Gate<'a> = Option<&'a (dyn Fn(u64) -> bool + Sync)>;

impl Collection {
    /// The candidates of `filter`, with every live id standing in for
    /// "no narrowing".
    fn candidates_of(&self, filter: &dyn PayloadFilter) -> (RoaringTreemap, bool) {
        let indexes = self.payload_indexes.read();
        let Candidates { ids, exact } = filter.candidates(&indexes);
        (ids.unwrap_or_else(|| indexes.all().clone()), exact)
    }

    /// Whether `id` passes `filter` by its stored payload.
    fn passes(&self, filter: &dyn PayloadFilter, id: u64) -> bool {
        let payloads = self.payloads.read();
        filter.matches(id, payloads.get(&id).map(|p| &**p))
    }

    /// The candidates that match and pass the gate.
    fn matching(&self, filter: &dyn PayloadFilter, gate: Gate<'_>) -> Vec<u64> {
        let (ids, exact) = self.candidates_of(filter);
        ids.iter().filter(|&id| (exact || self.passes(filter, id)) && gate.is_none_or(|g| g(id))).collect()
    }
}

/// A set of ids as a plain bitmap indexed by id: one bit test per
/// membership check, far cheaper than the compressed bitmap's lookup in
/// the inner loop of a walk. Only for ids below a bound proportional to
/// the collection's size (dense ids, as most collections have).
struct DenseIds {
    words: Vec<u64>,
}

impl DenseIds {
    fn of(ids: &RoaringTreemap, live: usize) -> Option<DenseIds> {
        let max = ids.max()?;
        if max > 16 * live as u64 + (1 << 20) {
            return None;
        }
        let mut words = vec![0u64; usize::try_from(max / 64 + 1).ok()?];
        for id in ids.iter() {
            words[(id / 64) as usize] |= 1 << (id % 64);
        }
        Some(DenseIds { words })
    }

    #[inline]
    fn contains(&self, id: u64) -> bool {
        self.words.get((id / 64) as usize).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

fn query_error(e: IndexError) -> EngineError {
    match e {
        IndexError::InvalidParameter { name, reason } => EngineError::InvalidParameter { name, reason },
        other => EngineError::InvalidQuery(other),
    }
}

impl Engine {
    /// The `k` nearest points to `query` that pass `filter` and `gate`,
    /// nearest first, by the plan the module docs describe; `ef` defaults
    /// to the collection's `ef_search`.
    pub fn search_filtered(
        &self,
        name: &str,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
        filter: &dyn PayloadFilter,
        gate: Gate<'_>,
    ) -> Result<FilteredHits, EngineError> {
        let c = self.get_collection(name)?;
        c.check_k(k, &self.config().limits)?;
        let ef = ef.filter(|&ef| ef > 0).unwrap_or(c.config.ef_search);
        let (ids, exact) = c.candidates_of(filter);
        let passes = |id: u64| (exact || c.passes(filter, id)) && gate.is_none_or(|g| g(id));
        let upper = ids.len();
        if upper <= self.config().exact_filter_max as u64 {
            let selected: Vec<u64> = ids.iter().filter(|&id| passes(id)).collect();
            let hits = c.index.score_ids(query, &selected, k).map_err(query_error)?;
            return Ok(FilteredHits { hits, plan: FilterPlan::Exact });
        }
        let live = c.index.len();
        if upper as f64 > PLAIN_WALK_ABOVE * live as f64 {
            // Broad filter: the usual walk, the filter deciding only what
            // enters the beam and the results.
            let in_walk = |id: u64| ids.contains(id) && passes(id);
            let hits = c.index.search_where(query, k, ef, Some(&in_walk)).map_err(query_error)?;
            if hits.len() >= k {
                return Ok(FilteredHits { hits, plan: FilterPlan::Walk });
            }
            return self.score_candidates(&c, query, k, &ids, &passes);
        }
        let dense = DenseIds::of(&ids, live);
        let in_walk = |id: u64| dense.as_ref().map_or_else(|| ids.contains(id), |d| d.contains(id)) && passes(id);
        let seeds: Vec<u64> =
            (0..WALK_SEEDS).filter_map(|i| ids.select(i * upper / WALK_SEEDS)).filter(|&id| passes(id)).collect();
        let budget = usize::try_from(upper).unwrap_or(usize::MAX);
        // A quarter wider beam than asked: the look-through walk's beam
        // fills with farther matches than an unfiltered one's (BENCHMARKS.md
        // §10: recall@10 0.973 → 0.980 at 10 % matching, for 8 % of QPS).
        let ef = (ef + ef / 4).min(ruvector_index::HnswParams::MAX_EF);
        if let Some(hits) = c.index.search_filtered(query, k, ef, &in_walk, &seeds, budget).map_err(query_error)?
            && hits.len() >= k
        {
            return Ok(FilteredHits { hits, plan: FilterPlan::Walk });
        }
        self.score_candidates(&c, query, k, &ids, &passes)
    }

    /// The fallback plan: every candidate that passes, scored.
    fn score_candidates(
        &self,
        c: &Collection,
        query: &[f32],
        k: usize,
        ids: &RoaringTreemap,
        passes: &dyn Fn(u64) -> bool,
    ) -> Result<FilteredHits, EngineError> {
        let selected: Vec<u64> = ids.iter().filter(|&id| passes(id)).collect();
        let hits = c.index.score_ids(query, &selected, k).map_err(query_error)?;
        Ok(FilteredHits { hits, plan: FilterPlan::Fallback })
    }

    /// How many points pass `filter` and `gate`. Answered from the payload
    /// indexes alone when they answer every condition and there is no gate.
    pub fn count_matching(&self, name: &str, filter: &dyn PayloadFilter, gate: Gate<'_>) -> Result<u64, EngineError> {
        let c = self.get_collection(name)?;
        let (ids, exact) = c.candidates_of(filter);
        if exact && gate.is_none() {
            return Ok(ids.len());
        }
        Ok(ids.iter().filter(|&id| (exact || c.passes(filter, id)) && gate.is_none_or(|g| g(id))).count() as u64)
    }

    /// The ids of the points that pass `filter` and `gate`, ascending.
    pub fn ids_matching(
        &self,
        name: &str,
        filter: &dyn PayloadFilter,
        gate: Gate<'_>,
    ) -> Result<Vec<u64>, EngineError> {
        Ok(self.get_collection(name)?.matching(filter, gate))
    }

    /// Deletes every point that passes `filter` and `gate`, durably, as one
    /// logged delete; returns the ids that went. With a `version` (not 0)
    /// each delete leaves a tombstone of that version, and a point whose
    /// newest write is as new or newer is kept (as for
    /// [`Engine::delete_versioned`]). The matching set is taken under the
    /// collection's write lock, so it is exactly what the collection held
    /// when the delete was logged.
    pub fn delete_matching(
        &self,
        name: &str,
        filter: &dyn PayloadFilter,
        gate: Gate<'_>,
        version: u64,
    ) -> Result<Vec<u64>, EngineError> {
        let c = self.get_collection(name)?;
        self.writable()?;
        let (lsn, deleted) = {
            let _writer = c.write_lock.lock();
            if !self.is_current(&c) {
                return Err(EngineError::CollectionNotFound(name.to_owned()));
            }
            let mut ids = c.matching(filter, gate);
            if version != 0 {
                ids.retain(|&id| c.version_of(id) < version);
            }
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let versions = if version == 0 { Vec::new() } else { vec![version; ids.len()] };
            let record = WalRecord::Delete { collection: name.to_owned(), ids, versions };
            let (lsn, bytes) = self.write_record(&record)?;
            let WalRecord::Delete { ids, versions, .. } = &record else {
                return Err(EngineError::Failed("a delete was logged as another record".into()));
            };
            c.apply_delete(ids, versions);
            c.note_applied(lsn, bytes);
            (lsn, ids.clone())
        };
        self.wait_durable(lsn)?;
        Ok(deleted)
    }
}
