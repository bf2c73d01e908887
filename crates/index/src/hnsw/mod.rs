//! The HNSW index: a concurrent, growable, deletable graph over vectors.
//!
//! [`Hnsw`] owns the vectors ([`crate::store`]), the links ([`graph`]), the
//! map from external `u64` ids to internal slots, and the locks that let many
//! searches run alongside inserts and deletes:
//!
//! * `inner` (read-write lock) guards the *shape* of the arrays. Searches,
//!   inserts and deletes hold it shared; it is taken exclusively only to
//!   grow the arrays and to reclaim the slots of repaired deletes — brief
//!   operations that never run HNSW algorithms.
//! * each node has its own lock for its neighbour lists ([`graph`]);
//! * `write_gate` is held shared by every mutation and exclusively by
//!   [`Hnsw::write_to`], so a snapshot is consistent while searches go on.
//!
//! Slot life cycle: `FREE → RESERVED` (vector written, links being built)
//! `→ LIVE` (returned by searches) `→ DELETED` (never returned, still routes
//! searches) `→ FREE` (after [`Hnsw::repair_deletes`] removed every link to
//! it). Lock order: `write_gate`, then `inner`, then `ids`/node locks.

mod changes;
mod delete;
mod filtered;
pub(crate) mod graph;
mod insert;
mod maintenance;
mod persist;
#[cfg(test)]
mod quant_tests;
mod quantized;
pub(crate) mod search;
mod snapshot_delta;
mod staging;
#[cfg(test)]
mod staging_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use self::changes::ChangeSet;
pub use self::filtered::IdFilter;
use self::graph::Graph;
pub use self::maintenance::{Backlog, MaintenanceWork};
pub use self::quantized::HnswOptions;
use self::quantized::Quantized;
use self::search::{Candidate, Scratch};
pub use self::snapshot_delta::IndexDelta;
use self::staging::PendingLinks;
use crate::distance::Kernels;
use crate::store::VectorStore;
use crate::{IndexError, Metric, Scorer};

/// Construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// `M`: links per node on the upper layers, and the number of neighbours
    /// a new node selects. Layer 0 allows `2·M`. Default 16.
    pub m: usize,
    /// `efConstruction`: beam width while inserting. Default 200.
    pub ef_construction: usize,
    /// Default beam width of searches (raised to `k` when smaller). Default 50.
    pub ef_search: usize,
    /// Seed of the level generator; the same seed and insertion order give
    /// the same levels.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams { m: 16, ef_construction: 200, ef_search: 50, seed: 0x5eed_1234_abcd_9876 }
    }
}

impl HnswParams {
    /// Largest accepted `M` (keeps the layer-0 list within a few cache lines).
    pub const MAX_M: usize = 128;
    /// Largest accepted `ef` for construction or search.
    pub const MAX_EF: usize = 1 << 16;

    fn validate(&self) -> Result<(), IndexError> {
        let invalid = |name, reason: String| Err(IndexError::InvalidParameter { name, reason });
        if !(2..=Self::MAX_M).contains(&self.m) {
            return invalid("m", format!("must be between 2 and {}, got {}", Self::MAX_M, self.m));
        }
        if !(1..=Self::MAX_EF).contains(&self.ef_construction) {
            return invalid("ef_construction", format!("must be between 1 and {}", Self::MAX_EF));
        }
        if !(1..=Self::MAX_EF).contains(&self.ef_search) {
            return invalid("ef_search", format!("must be between 1 and {}", Self::MAX_EF));
        }
        Ok(())
    }
}

/// One search hit: an external id and its reported distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The vector's external id.
    pub id: u64,
    /// Distance under the index's metric (see [`Metric`]); smaller is nearer.
    pub distance: f32,
}

const FREE: u8 = 0;
const RESERVED: u8 = 1;
const LIVE: u8 = 2;
const DELETED: u8 = 3;

const NO_ENTRY: u64 = u64::MAX;

/// The arrays indexed by slot; replaced wholesale when the index grows.
#[derive(Debug)]
struct Inner {
    vectors: VectorStore,
    graph: Graph,
    labels: Box<[AtomicU64]>,
    states: Box<[AtomicU8]>,
    /// Slots `0..used` have been handed out at least once.
    used: AtomicU32,
    /// The trained quantizer and the code of every non-free slot below
    /// `used` (see [`quantized`]); `None` until trained.
    quant: Option<Quantized>,
    /// Slots whose vector (and code) was written since the last
    /// incremental snapshot took them.
    changed_vectors: ChangeSet,
}

impl Inner {
    fn new(dim: usize, m: usize, capacity: usize, vector_file: Option<&Path>) -> Result<Self, IndexError> {
        let vectors = match vector_file {
            Some(path) => VectorStore::with_file(path, dim, capacity)?,
            None => VectorStore::new(dim, capacity)?,
        };
        Ok(Inner {
            vectors,
            graph: Graph::new(m, 2 * m, capacity),
            labels: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            states: (0..capacity).map(|_| AtomicU8::new(FREE)).collect(),
            used: AtomicU32::new(0),
            quant: None,
            changed_vectors: ChangeSet::new(capacity),
        })
    }

    fn capacity(&self) -> usize {
        self.vectors.capacity()
    }

    fn used(&self) -> usize {
        self.used.load(Ordering::Acquire) as usize
    }

    #[inline]
    fn state(&self, slot: u32) -> u8 {
        self.states[slot as usize].load(Ordering::Acquire)
    }

    #[inline]
    fn is_live(&self, slot: u32) -> bool {
        self.state(slot) == LIVE
    }

    /// # Safety contract
    /// Only called on slots reached through the graph, the entry point or
    /// the id map, i.e. published slots (see [`crate::store`]).
    #[inline]
    fn vector(&self, slot: u32) -> &[f32] {
        // SAFETY: published slots are never written until they are freed,
        // which happens only under the exclusive lock.
        unsafe { self.vectors.get(slot) }
    }

    fn grown(&mut self, capacity: usize) -> Result<Inner, IndexError> {
        let used = self.used();
        let copy_u64 = |a: &[AtomicU64]| -> Box<[AtomicU64]> {
            (0..capacity).map(|i| AtomicU64::new(if i < used { a[i].load(Ordering::Relaxed) } else { 0 })).collect()
        };
        Ok(Inner {
            vectors: self.vectors.grown(capacity, used)?,
            graph: self.graph.grown(capacity, used),
            labels: copy_u64(&self.labels),
            states: (0..capacity)
                .map(|i| AtomicU8::new(if i < used { self.states[i].load(Ordering::Relaxed) } else { FREE }))
                .collect(),
            used: AtomicU32::new(used as u32),
            quant: self.quant.as_ref().map(|q| q.grown(capacity, used)).transpose()?,
            changed_vectors: self.changed_vectors.grown(capacity),
        })
    }
}

/// Bytes of each neighbour's vector requested as soon as the neighbour is
/// found; the rest is requested just before it is scored.
const PREFETCH_HEAD: usize = 128;

/// The query-side scorer over full-precision vectors.
struct ExactScorer<'a> {
    inner: &'a Inner,
    query: &'a [f32],
    metric: Metric,
    kernels: &'a Kernels,
}

impl Scorer for ExactScorer<'_> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        self.metric.ranking_distance(self.kernels, self.query, self.inner.vector(node))
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        self.inner.vectors.prefetch(node, 0, PREFETCH_HEAD);
    }

    #[inline]
    fn prefetch_all(&self, node: u32) {
        self.inner.vectors.prefetch(node, PREFETCH_HEAD, usize::MAX);
    }
}

/// A concurrent HNSW index over `f32` vectors with external `u64` ids.
///
/// All methods take `&self`: share it in an `Arc` and call from any thread.
/// See the [crate docs](crate) for an example.
#[derive(Debug)]
pub struct Hnsw {
    dim: usize,
    metric: Metric,
    params: HnswParams,
    /// Construction options; `quantization` and `oversampling` there are
    /// the initial values of the two fields below.
    options: HnswOptions,
    /// The configured quantization (may change through `set_quantization`).
    quantization: Mutex<crate::Quantization>,
    /// Current oversampling factor (starts at `options.oversampling`).
    oversampling: AtomicUsize,
    kernels: &'static Kernels,
    /// `mL = 1/ln(M)`, the level-generation factor.
    level_factor: f64,
    inner: RwLock<Inner>,
    write_gate: RwLock<()>,
    /// External id → slot of every live vector, ordered so ids can be
    /// paged through by a cursor.
    ids: Mutex<BTreeMap<u64, u32>>,
    free: Mutex<Vec<u32>>,
    pending_deletes: Mutex<Vec<u32>>,
    /// Staged slots not linked into the graph yet (see [`staging`]).
    pending_links: RwLock<PendingLinks>,
    /// Slots linked since the last reachability pass.
    linked_since_relink: AtomicUsize,
    /// `(level << 32) | slot` of the entry point, or [`NO_ENTRY`].
    entry: AtomicU64,
    /// Held while the entry point may change.
    entry_lock: Mutex<()>,
    scratch: Mutex<Vec<Scratch>>,
    live: AtomicUsize,
    inserts: AtomicU64,
}

/// The entry point: the node where every search starts, on the top layer.
#[derive(Debug, Clone, Copy)]
struct Entry {
    node: u32,
    level: usize,
}

impl Hnsw {
    /// Creates an empty index for `dim`-dimensional vectors.
    pub fn new(dim: usize, metric: Metric, params: HnswParams) -> Result<Self, IndexError> {
        Self::with_capacity(dim, metric, params, 0)
    }

    /// Creates an empty index with room for `capacity` vectors before it
    /// has to grow (growing copies the arrays once per 1.5× of size).
    pub fn with_capacity(dim: usize, metric: Metric, params: HnswParams, capacity: usize) -> Result<Self, IndexError> {
        Self::build(dim, metric, params, HnswOptions { capacity, ..HnswOptions::default() })
    }

    fn build(dim: usize, metric: Metric, params: HnswParams, options: HnswOptions) -> Result<Self, IndexError> {
        let capacity = options.capacity;
        params.validate()?;
        if dim == 0 || dim > Self::MAX_DIM {
            return Err(IndexError::InvalidParameter {
                name: "dimension",
                reason: format!("must be between 1 and {}, got {dim}", Self::MAX_DIM),
            });
        }
        if capacity > Self::MAX_VECTORS {
            return Err(IndexError::Full(Self::MAX_VECTORS));
        }
        options.validate(dim)?;
        Ok(Hnsw {
            dim,
            metric,
            params,
            oversampling: AtomicUsize::new(options.oversampling),
            quantization: Mutex::new(options.quantization),
            kernels: Kernels::get(),
            level_factor: 1.0 / (params.m as f64).ln(),
            inner: RwLock::new(Inner::new(dim, params.m, capacity, options.vector_file.as_deref())?),
            options,
            write_gate: RwLock::new(()),
            ids: Mutex::new(BTreeMap::new()),
            free: Mutex::new(Vec::new()),
            pending_deletes: Mutex::new(Vec::new()),
            pending_links: RwLock::new(PendingLinks::new()),
            linked_since_relink: AtomicUsize::new(0),
            entry: AtomicU64::new(NO_ENTRY),
            entry_lock: Mutex::new(()),
            scratch: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            inserts: AtomicU64::new(0),
        })
    }

    /// Largest accepted dimension.
    pub const MAX_DIM: usize = 65_536;
    /// Most vectors one index can hold (slots are `u32`).
    pub const MAX_VECTORS: usize = u32::MAX as usize - 1;

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The distance metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The construction and search parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Number of live (searchable) vectors.
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Whether the index holds no live vectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is present.
    pub fn contains(&self, id: u64) -> bool {
        self.ids.lock().contains_key(&id)
    }

    /// The highest layer of the graph (0 when empty or flat).
    pub fn max_level(&self) -> usize {
        self.entry_point().map_or(0, |e| e.level)
    }

    /// The stored vector for `id` (normalised, under the cosine metric).
    pub fn get(&self, id: u64) -> Option<Vec<f32>> {
        let inner = self.inner.read();
        let slot = *self.ids.lock().get(&id)?;
        Some(inner.vector(slot).to_vec())
    }

    /// All live ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.ids.lock().keys().copied().collect()
    }

    /// Up to `limit` live ids greater than `after` (all ids without it),
    /// ascending: a page of a scroll, in O(log n + limit).
    pub fn ids_page(&self, after: Option<u64>, limit: usize) -> Vec<u64> {
        use std::ops::Bound;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.ids.lock().range((from, Bound::Unbounded)).take(limit).map(|(&id, _)| id).collect()
    }

    /// Bytes held by the index's arrays (vectors, links, bookkeeping), an
    /// estimate of its resident memory once its capacity is in use; O(1).
    pub fn memory_bytes(&self) -> usize {
        let inner = self.inner.read();
        let cap = inner.capacity();
        let m = self.params.m;
        // Upper layers: a node has `1/(M−1)` upper lists on average (levels
        // are geometric with ratio 1/M), so this is O(1).
        let upper = inner.used() * (1 + m) * 4 / (m - 1).max(1);
        let code = inner.quant.as_ref().map_or(0, |q| q.codes.code_len());
        cap * (self.dim * 4 + code + (1 + 2 * m) * 4 + 8 + 1 + 1 + 1 + 24) + upper + self.len() * 24
    }

    /// Checks a vector's shape and values; returns the factor to store it
    /// with (`1/‖v‖` under cosine, else 1).
    fn validate(&self, vector: &[f32]) -> Result<f32, IndexError> {
        if vector.len() != self.dim {
            return Err(IndexError::DimensionMismatch { expected: self.dim, got: vector.len() });
        }
        if let Some(position) = vector.iter().position(|x| !x.is_finite()) {
            return Err(IndexError::NonFinite { position });
        }
        if !self.metric.normalizes() {
            return Ok(1.0);
        }
        let norm = (vector.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>()).sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Err(IndexError::ZeroVector);
        }
        Ok((1.0 / norm) as f32)
    }

    /// Inserts `vector` under `id`, replacing any vector already stored
    /// under that id (upsert). Under cosine the vector is normalised.
    pub fn insert(&self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        self.insert_batch(&[(id, vector)], 1)
    }

    /// Inserts a batch, linking it with up to `threads` threads. The whole
    /// batch is validated first: on error nothing is inserted. Unless the
    /// index was built with [`HnswOptions::background_maintenance`], due
    /// upkeep (delete repair, the reachability pass, quantizer training)
    /// runs afterwards in the caller's thread.
    pub fn insert_batch(&self, batch: &[(u64, &[f32])], threads: usize) -> Result<(), IndexError> {
        let slots = self.stage_batch(batch)?;
        self.link_slots(&slots, threads);
        self.maintain_inline()
    }

    /// Ensures room for `additional` more vectors without growing mid-batch.
    pub fn reserve(&self, additional: usize) -> Result<(), IndexError> {
        let needed = {
            let inner = self.inner.read();
            let free = self.free.lock().len();
            inner.used() + additional.saturating_sub(free)
        };
        self.grow_to(needed)
    }

    /// Makes room for at least `needed` slots. Growth is geometric (to at
    /// least 1.5× the current capacity), so a stream of small batches
    /// copies the arrays O(log n) times, not once per batch. The exclusive
    /// lock is taken only when the arrays really grow.
    fn grow_to(&self, needed: usize) -> Result<(), IndexError> {
        if needed > Self::MAX_VECTORS {
            return Err(IndexError::Full(Self::MAX_VECTORS));
        }
        if self.inner.read().capacity() >= needed {
            return Ok(());
        }
        let mut inner = self.inner.write();
        let capacity = inner.capacity();
        if capacity >= needed {
            return Ok(());
        }
        let target = needed.max(capacity + capacity / 2).max(capacity + 1024).min(Self::MAX_VECTORS);
        *inner = inner.grown(target)?;
        Ok(())
    }

    /// Reserves a slot, growing the arrays when all are taken.
    fn reserve_slot(&self) -> Result<(RwLockReadGuard<'_, Inner>, u32), IndexError> {
        loop {
            let inner = self.inner.read();
            if let Some(slot) = self.free.lock().pop() {
                inner.states[slot as usize].store(RESERVED, Ordering::Release);
                return Ok((inner, slot));
            }
            let used = inner.used.load(Ordering::Acquire);
            if (used as usize) < inner.capacity() {
                if inner.used.compare_exchange(used, used + 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    inner.states[used as usize].store(RESERVED, Ordering::Release);
                    return Ok((inner, used));
                }
                continue;
            }
            let capacity = inner.capacity();
            drop(inner);
            self.grow_to(capacity + 1)?;
        }
    }

    /// Draws a level from the exponential distribution `⌊−ln(U)·mL⌋`.
    fn random_level(&self) -> usize {
        use rand::{Rng, SeedableRng};
        let n = self.inserts.fetch_add(1, Ordering::Relaxed);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(self.params.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let u: f64 = 1.0 - rng.random::<f64>(); // in (0, 1]
        ((-u.ln() * self.level_factor) as usize).min(graph::MAX_LEVEL)
    }

    fn entry_point(&self) -> Option<Entry> {
        let packed = self.entry.load(Ordering::Acquire);
        (packed != NO_ENTRY).then_some(Entry { node: packed as u32, level: (packed >> 32) as usize })
    }

    fn set_entry_point(&self, entry: Option<Entry>) {
        let packed = entry.map_or(NO_ENTRY, |e| ((e.level as u64) << 32) | u64::from(e.node));
        self.entry.store(packed, Ordering::Release);
    }

    fn take_scratch(&self) -> Scratch {
        self.scratch.lock().pop().unwrap_or_default()
    }

    fn return_scratch(&self, scratch: Scratch) {
        self.scratch.lock().push(scratch);
    }

    /// The `k` nearest live vectors to `query`, nearest first, searching
    /// with the index's default `ef_search`.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, IndexError> {
        self.search_with_ef(query, k, self.params.ef_search)
    }

    /// The `k` nearest live vectors to `query` with beam width `ef` (raised
    /// to `k` when smaller). Ties are ordered by id.
    pub fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, IndexError> {
        self.search_where(query, k, ef, None)
    }

    /// [`Hnsw::search_with_ef`] over the vectors whose id `accept` lets
    /// through: the walk goes through every node, but only accepted ones
    /// take places in the beam and the results (so the beam widens past
    /// rejected neighbourhoods instead of coming back short). The cost grows
    /// as `accept` lets fewer through; one that rejects nearly everything
    /// walks nearly the whole graph.
    pub fn search_where(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Neighbor>, IndexError> {
        let scale = self.validate(query)?;
        if ef > HnswParams::MAX_EF {
            return Err(IndexError::InvalidParameter {
                name: "ef",
                reason: format!("must be at most {}", HnswParams::MAX_EF),
            });
        }
        if k == 0 {
            return Ok(Vec::new());
        }
        let prepared: std::borrow::Cow<'_, [f32]> =
            if scale == 1.0 { query.into() } else { query.iter().map(|x| x * scale).collect::<Vec<_>>().into() };
        let inner = self.inner.read();
        if let Some(quant) = &inner.quant {
            return Ok(self.search_quantized(&inner, quant, &prepared, k, ef, accept));
        }
        let scorer = ExactScorer { inner: &inner, query: &prepared, metric: self.metric, kernels: self.kernels };
        let hits = self.search_slots(&inner, &scorer, k, ef, accept);
        Ok(self.to_neighbors(&inner, hits, |d| self.metric.reported(d)))
    }

    /// Searches the graph with a caller-supplied [`Scorer`] — the seam for
    /// quantised vector stores. The scorer is called with internal slots; its
    /// distances are returned as they are, nearest first.
    pub fn search_by<S: Scorer>(&self, scorer: &S, k: usize, ef: usize) -> Vec<Neighbor> {
        let inner = self.inner.read();
        let hits = self.search_slots(&inner, scorer, k, ef.min(HnswParams::MAX_EF), None);
        self.to_neighbors(&inner, hits, |d| d)
    }

    fn to_neighbors(&self, inner: &Inner, hits: Vec<Candidate>, report: impl Fn(f32) -> f32) -> Vec<Neighbor> {
        let mut out: Vec<Neighbor> = hits
            .into_iter()
            .map(|c| Neighbor {
                id: inner.labels[c.node as usize].load(Ordering::Acquire),
                distance: report(c.distance),
            })
            .collect();
        out.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
        out
    }

    /// Scores the staged slots not linked yet that `wanted` lets through
    /// and were not visited, into the best `ef` of `scratch.nearest`.
    fn score_pending<S: Scorer>(
        &self,
        inner: &Inner,
        scorer: &S,
        scratch: &mut Scratch,
        ef: usize,
        wanted: impl Fn(u32) -> bool,
    ) {
        let pending = self.pending_links.read();
        for &slot in pending.keys() {
            if (slot as usize) < inner.used() && wanted(slot) && scratch.visited.insert(slot) {
                let c = Candidate { distance: scorer.distance(slot), node: slot };
                if scratch.nearest.len() < ef {
                    scratch.nearest.push(c);
                } else if scratch.nearest.peek().is_some_and(|worst| c < *worst) {
                    scratch.nearest.pop();
                    scratch.nearest.push(c);
                }
            }
        }
    }

    /// Greedy descent from the entry point, then a beam search on layer 0;
    /// returns up to `k` live slots, nearest first.
    ///
    /// Staged slots not yet linked (see [`staging`]) are scored one by one
    /// and compete for the same `ef` places, so they are found before they
    /// are linked.
    fn search_slots<S: Scorer>(
        &self,
        inner: &Inner,
        scorer: &S,
        k: usize,
        ef: usize,
        accept: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Vec<Candidate> {
        if k == 0 {
            return Vec::new();
        }
        let wanted = |n: u32| {
            inner.is_live(n) && accept.is_none_or(|accept| accept(inner.labels[n as usize].load(Ordering::Acquire)))
        };
        let ef = ef.max(k);
        let mut scratch = self.take_scratch();
        scratch.visited.prepare(inner.capacity());
        match self.entry_point() {
            Some(entry) => {
                let mut current = Candidate { distance: scorer.distance(entry.node), node: entry.node };
                for level in (1..=entry.level).rev() {
                    current = search::greedy(&inner.graph, scorer, current, level);
                }
                search::search_layer(&inner.graph, scorer, &mut scratch, &[current], ef, 0, wanted);
            }
            None => scratch.nearest.clear(),
        }
        self.score_pending(inner, scorer, &mut scratch, ef, wanted);
        let mut hits = std::mem::take(&mut scratch.sorted);
        hits.clear();
        hits.extend(scratch.nearest.drain());
        hits.sort_unstable();
        distinct_nearest(inner, &mut hits, k);
        let result = hits.clone();
        scratch.sorted = hits;
        self.return_scratch(scratch);
        result
    }
}

/// Keeps the first (nearest) slot of each id in `hits` (sorted nearest
/// first), then the `k` nearest. An upsert replacing an id makes its new
/// slot live a moment before the old one turns deleted (so a reader always
/// sees one of them); a search in that moment may meet both.
fn distinct_nearest(inner: &Inner, hits: &mut Vec<Candidate>, k: usize) {
    let label = |c: &Candidate| inner.labels[c.node as usize].load(Ordering::Acquire);
    if k > 64 {
        let mut seen = std::collections::HashSet::with_capacity(hits.len().min(k.saturating_mul(2)));
        let mut kept = 0;
        hits.retain(|c| {
            let fresh = kept < k && seen.insert(label(c));
            kept += usize::from(fresh);
            fresh
        });
        return;
    }
    // The usual small k: compare with the kept ones, no allocation on the
    // search path (duplicates are rare, so about k² / 2 label reads).
    let mut kept = 0;
    for read in 0..hits.len() {
        if kept == k {
            break;
        }
        let id = label(&hits[read]);
        if hits[..kept].iter().all(|c| label(c) != id) {
            hits[kept] = hits[read];
            kept += 1;
        }
    }
    hits.truncate(kept);
}
