//! One collection in memory: its configuration, the HNSW index (which also
//! maps external ids to graph slots), the payloads and the payload indexes
//! (kept in step with the payloads by every apply step; rebuilt from the
//! payloads when a collection is loaded, see `persist`).
//!
//! Versions: a write may carry a version (a cluster's router stamps one;
//! single-node clients send none). A versioned write of an id is applied
//! only when its version is greater than the newest versioned write the
//! collection applied to that id — a live point's or a delete's tombstone
//! (`versions`) — so replays, retries and copies that receive writes in
//! different orders converge. An unversioned write always applies and
//! forgets the id's version.
//!
//! Every mutation is split into a check ([`Collection::check_upsert`]) that
//! decides everything that can be wrong with the request, and an apply step
//! that is then certain to succeed. The engine logs a request between the
//! two, so a logged record always replays cleanly; replay calls the same
//! apply functions.
//!
//! Applying an upsert *stages* its vectors (stored and searchable at once,
//! see `ruvector_index`'s staging): O(batch × dim), no graph work. Linking
//! them into the graph happens afterwards, outside the collection's write
//! lock — by the writer before it acknowledges, or by the background
//! maintenance for replayed records. Everything reported about a collection
//! ([`Collection::info`]) is kept up to date incrementally: O(1).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use ruvector_index::{Hnsw, HnswOptions, IndexError, Metric, Neighbor};
use ruvector_storage::WalPoint;

use crate::EngineError;
use crate::config::{CollectionConfig, Limits};
use crate::payload_index::{PayloadIndexKind, PayloadIndexes};

/// A vector with its id and optional payload (a JSON object, kept as the
/// client's serialised bytes). The log stores points in this same shape.
pub type Point = WalPoint;

/// What the engine reports about a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    /// The collection's name.
    pub name: String,
    /// Its fixed configuration.
    pub config: CollectionConfig,
    /// Live vectors.
    pub size: usize,
    /// The top layer of the graph.
    pub max_level: usize,
    /// Estimated bytes held by the index and the payloads.
    pub memory_bytes: usize,
    /// Vectors stored but not linked into the graph yet (found by a scan).
    pub unlinked: usize,
    /// Deleted or replaced vectors whose graph links await repair.
    pub pending_deletes: usize,
    /// Tombstones: versioned deletes remembered so that older writes of
    /// the same ids are refused.
    pub tombstones: usize,
    /// The declared payload indexes.
    pub payload_indexes: BTreeMap<String, PayloadIndexKind>,
}

/// The newest versioned write applied to an id: an upsert (`deleted`
/// false) or a delete, whose tombstone keeps the version so that an older
/// upsert arriving later is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) version: u64,
    pub(crate) deleted: bool,
}

/// A collection held in memory.
#[derive(Debug)]
pub(crate) struct Collection {
    pub(crate) name: String,
    pub(crate) config: CollectionConfig,
    pub(crate) index: Hnsw,
    pub(crate) payloads: RwLock<HashMap<u64, Arc<[u8]>>>,
    /// The payload indexes over `payloads` and every live id. Lock order:
    /// `payloads`, then this.
    pub(crate) payload_indexes: RwLock<PayloadIndexes>,
    /// Bytes of all payloads (plus a per-entry overhead), kept up to date.
    payload_bytes: AtomicUsize,
    /// Ids whose payload was set or removed since the last checkpoint.
    pub(crate) changed_payloads: Mutex<HashSet<u64>>,
    /// The version stamp of every id written with a version (module docs).
    pub(crate) versions: RwLock<HashMap<u64, Stamp>>,
    /// Ids whose stamp changed since the last checkpoint.
    pub(crate) changed_versions: Mutex<HashSet<u64>>,
    /// Stamps that are tombstones, kept up to date.
    tombstones: AtomicUsize,
    /// Held by a writer from its log write through its apply (staging)
    /// step — never across an fsync or graph work — so the log order of
    /// this collection's records is the order they were applied in, and by
    /// a checkpoint while it captures a state at one log position.
    pub(crate) write_lock: Mutex<()>,
    /// Log position of the newest checkpoint: every record of this
    /// collection at or before it is in that checkpoint.
    pub(crate) checkpoint_lsn: AtomicU64,
    /// Log position of the newest record applied to this collection.
    pub(crate) applied_lsn: AtomicU64,
    /// Log bytes of this collection's records since its last checkpoint.
    pub(crate) log_bytes_since_checkpoint: AtomicU64,
    /// Size of the newest full checkpoint file, and of the deltas after it.
    pub(crate) full_bytes: AtomicU64,
    pub(crate) delta_bytes: AtomicU64,
    /// The next checkpoint must be full: a delta failed after the index
    /// forgot its changes.
    pub(crate) needs_full: AtomicBool,
}

impl Collection {
    /// An empty collection.
    pub(crate) fn new(
        name: String,
        config: CollectionConfig,
        declared: &BTreeMap<String, PayloadIndexKind>,
        lsn: u64,
    ) -> Result<Self, EngineError> {
        let options = HnswOptions { background_maintenance: true, ..config.index_options() };
        let index = Hnsw::with_options(config.dimension, config.metric, config.hnsw_params(), options)
            .map_err(EngineError::Index)?;
        Ok(Self::from_parts(name, config, declared, index, HashMap::new(), HashMap::new(), lsn))
    }

    /// A collection restored from a checkpoint taken at `lsn`; its payload
    /// indexes are built from the payloads.
    pub(crate) fn from_parts(
        name: String,
        config: CollectionConfig,
        declared: &BTreeMap<String, PayloadIndexKind>,
        index: Hnsw,
        payloads: HashMap<u64, Arc<[u8]>>,
        versions: HashMap<u64, Stamp>,
        lsn: u64,
    ) -> Self {
        let payload_bytes = payloads.values().map(|p| payload_cost(p)).sum();
        let tombstones = versions.values().filter(|s| s.deleted).count();
        let mut indexes = PayloadIndexes::new(declared);
        for id in index.ids() {
            let parsed = if indexes.is_empty() { None } else { payloads.get(&id).and_then(|p| parse_payload(p)) };
            indexes.insert(id, parsed.as_ref());
        }
        Collection {
            name,
            config,
            index,
            payloads: RwLock::new(payloads),
            payload_indexes: RwLock::new(indexes),
            payload_bytes: AtomicUsize::new(payload_bytes),
            changed_payloads: Mutex::new(HashSet::new()),
            versions: RwLock::new(versions),
            changed_versions: Mutex::new(HashSet::new()),
            tombstones: AtomicUsize::new(tombstones),
            write_lock: Mutex::new(()),
            checkpoint_lsn: AtomicU64::new(lsn),
            applied_lsn: AtomicU64::new(lsn),
            log_bytes_since_checkpoint: AtomicU64::new(0),
            full_bytes: AtomicU64::new(0),
            delta_bytes: AtomicU64::new(0),
            needs_full: AtomicBool::new(false),
        }
    }

    /// O(1): every figure is maintained incrementally.
    pub(crate) fn info(&self) -> CollectionInfo {
        let backlog = self.index.backlog();
        CollectionInfo {
            name: self.name.clone(),
            config: self.config,
            size: self.index.len(),
            max_level: self.index.max_level(),
            memory_bytes: self.index.memory_bytes() + self.payload_bytes.load(Ordering::Relaxed),
            unlinked: backlog.unlinked,
            pending_deletes: backlog.pending_deletes,
            tombstones: self.tombstones.load(Ordering::Relaxed),
            payload_indexes: self.payload_indexes.read().declared(),
        }
    }

    /// Declares the payload indexes `declared` (the whole set after a
    /// change): indexes no longer declared are dropped, new ones are built
    /// over the stored payloads. The caller holds the write lock.
    pub(crate) fn apply_payload_indexes(&self, declared: &BTreeMap<String, PayloadIndexKind>) {
        let payloads = self.payloads.read();
        let mut indexes = self.payload_indexes.write();
        for key in indexes.declared().keys() {
            if !declared.contains_key(key) {
                indexes.undeclare(key);
            }
        }
        for (key, &kind) in declared {
            if indexes.declare(key, kind) {
                for (&id, bytes) in payloads.iter() {
                    if let Some(parsed) = parse_payload(bytes) {
                        indexes.insert_into(key, id, &parsed);
                    }
                }
            }
        }
    }

    /// Everything that can be wrong with an upsert batch, checked before
    /// anything is logged or applied.
    pub(crate) fn check_upsert(&self, points: &[WalPoint], limits: &Limits) -> Result<(), EngineError> {
        if points.is_empty() {
            return Err(EngineError::EmptyBatch);
        }
        if points.len() > limits.max_batch {
            return Err(EngineError::InvalidParameter {
                name: "vectors",
                reason: format!("at most {} vectors per batch, got {}", limits.max_batch, points.len()),
            });
        }
        let mut seen = HashSet::with_capacity(points.len());
        for (position, p) in points.iter().enumerate() {
            check_vector(&p.vector, self.config.dimension, self.config.metric)
                .map_err(|source| EngineError::InvalidVector { position, id: p.id, source })?;
            if !seen.insert(p.id) {
                return Err(EngineError::DuplicateId(p.id));
            }
        }
        Ok(())
    }

    /// The version of the newest versioned write applied to `id` (0: none).
    pub(crate) fn version_of(&self, id: u64) -> u64 {
        self.versions.read().get(&id).map_or(0, |s| s.version)
    }

    /// Keeps the points that would change something: unversioned ones, and
    /// versioned ones newer than what the collection holds for their id.
    /// The caller holds the write lock, so the answer stays true until it
    /// applies them.
    pub(crate) fn newer_points(&self, points: Vec<WalPoint>) -> Vec<WalPoint> {
        if points.iter().all(|p| p.version == 0) {
            return points;
        }
        let versions = self.versions.read();
        points
            .into_iter()
            .filter(|p| p.version == 0 || versions.get(&p.id).is_none_or(|s| p.version > s.version))
            .collect()
    }

    /// The ids whose stamps are tombstones older than `before`, among
    /// those `select` picks.
    pub(crate) fn tombstones_before(&self, before: u64, select: impl Fn(u64) -> bool) -> Vec<u64> {
        let versions = self.versions.read();
        versions.iter().filter(|(id, s)| s.deleted && s.version < before && select(**id)).map(|(&id, _)| id).collect()
    }

    /// Drops the stamps of `ids` that are tombstones; returns how many.
    pub(crate) fn apply_purge(&self, ids: &[u64]) -> usize {
        let mut versions = self.versions.write();
        let mut changed = self.changed_versions.lock();
        let mut purged = 0;
        for id in ids {
            if versions.get(id).is_some_and(|s| s.deleted) {
                versions.remove(id);
                changed.insert(*id);
                purged += 1;
            }
        }
        self.tombstones.fetch_sub(purged, Ordering::Relaxed);
        purged
    }

    /// Records the stamps of applied writes (`version` 0 forgets the id's).
    fn stamp(&self, writes: impl Iterator<Item = (u64, u64, bool)>) {
        let mut versions = self.versions.write();
        let mut changed = self.changed_versions.lock();
        for (id, version, deleted) in writes {
            let old = if version == 0 { versions.remove(&id) } else { versions.insert(id, Stamp { version, deleted }) };
            if old.is_some_and(|s| s.deleted) {
                self.tombstones.fetch_sub(1, Ordering::Relaxed);
            }
            if version != 0 && deleted {
                self.tombstones.fetch_add(1, Ordering::Relaxed);
            }
            if old.is_some() || version != 0 {
                changed.insert(id);
            }
        }
    }

    /// Applies a checked upsert batch by staging it (module docs): each
    /// id's vector and payload are replaced (a point without a payload
    /// clears an old one). Returns the staged slots, to be linked.
    pub(crate) fn apply_upsert(&self, points: &[WalPoint]) -> Result<Vec<u32>, EngineError> {
        let batch: Vec<(u64, &[f32])> = points.iter().map(|p| (p.id, p.vector.as_slice())).collect();
        let slots = self.index.stage_batch(&batch).map_err(EngineError::Index)?;
        self.stamp(points.iter().map(|p| (p.id, p.version, false)));
        let mut payloads = self.payloads.write();
        let mut changed = self.changed_payloads.lock();
        let mut indexes = self.payload_indexes.write();
        let parse = !indexes.is_empty();
        for p in points {
            let old_parsed = if parse { payloads.get(&p.id).and_then(|old| parse_payload(old)) } else { None };
            indexes.remove(p.id, old_parsed.as_ref());
            let new_parsed = if parse { p.payload.as_deref().and_then(parse_payload) } else { None };
            indexes.insert(p.id, new_parsed.as_ref());
            let old = match &p.payload {
                Some(bytes) => {
                    let new: Arc<[u8]> = Arc::from(bytes.as_slice());
                    self.payload_bytes.fetch_add(payload_cost(&new), Ordering::Relaxed);
                    payloads.insert(p.id, new)
                }
                None => payloads.remove(&p.id),
            };
            if let Some(old) = &old {
                self.payload_bytes.fetch_sub(payload_cost(old), Ordering::Relaxed);
            }
            if old.is_some() || p.payload.is_some() {
                changed.insert(p.id);
            }
        }
        Ok(slots)
    }

    /// Deletes ids; `versions` (parallel to `ids`, or empty for an
    /// unversioned delete) become their tombstones. Returns how many were
    /// present.
    pub(crate) fn apply_delete(&self, ids: &[u64], versions: &[u64]) -> usize {
        if versions.is_empty() {
            self.stamp(ids.iter().map(|&id| (id, 0, true)));
        } else {
            self.stamp(ids.iter().zip(versions).map(|(&id, &version)| (id, version, true)));
        }
        {
            let mut payloads = self.payloads.write();
            let mut changed = self.changed_payloads.lock();
            let mut indexes = self.payload_indexes.write();
            let parse = !indexes.is_empty();
            for &id in ids {
                let old = payloads.remove(&id);
                let old_parsed = if parse { old.as_deref().and_then(parse_payload) } else { None };
                indexes.remove(id, old_parsed.as_ref());
                if let Some(old) = old {
                    self.payload_bytes.fetch_sub(payload_cost(&old), Ordering::Relaxed);
                    changed.insert(id);
                }
            }
        }
        // Outside the payload locks: a search holding the index's locks may
        // be waiting to read a payload.
        ids.iter().filter(|&&id| self.index.delete(id)).count()
    }

    pub(crate) fn get(&self, id: u64) -> Option<Point> {
        let vector = self.index.get(id)?;
        let payload = self.payloads.read().get(&id).map(|p| p.to_vec());
        Some(Point { id, vector, payload, version: self.version_of(id) })
    }

    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
        limits: &Limits,
        accept: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Neighbor>, EngineError> {
        self.check_k(k, limits)?;
        let ef = ef.filter(|&ef| ef > 0).unwrap_or(self.config.ef_search);
        self.index.search_where(query, k, ef, accept).map_err(|e| match e {
            IndexError::InvalidParameter { name, reason } => EngineError::InvalidParameter { name, reason },
            other => EngineError::InvalidQuery(other),
        })
    }

    /// Checks a search's `k` against the limits.
    pub(crate) fn check_k(&self, k: usize, limits: &Limits) -> Result<(), EngineError> {
        if k == 0 || k > limits.max_k {
            return Err(EngineError::InvalidParameter {
                name: "k",
                reason: format!("must be between 1 and {}, got {k}", limits.max_k),
            });
        }
        Ok(())
    }

    /// Up to `limit` live ids greater than `after`, ascending; O(log n +
    /// limit).
    pub(crate) fn ids_after(&self, after: Option<u64>, limit: usize) -> Vec<u64> {
        self.index.ids_page(after, limit)
    }

    /// Records that the record at `lsn`, `bytes` long, was applied.
    pub(crate) fn note_applied(&self, lsn: u64, bytes: u64) {
        self.applied_lsn.fetch_max(lsn, Ordering::AcqRel);
        self.log_bytes_since_checkpoint.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Whether anything was applied since the newest checkpoint.
    pub(crate) fn is_dirty(&self) -> bool {
        self.applied_lsn.load(Ordering::Acquire) > self.checkpoint_lsn.load(Ordering::Acquire)
    }
}

/// A stored payload parsed for the payload indexes; `None` (logged) for
/// bytes that are not JSON, which the server never stores.
pub(crate) fn parse_payload(bytes: &[u8]) -> Option<serde_json::Value> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(%error, "a stored payload is not JSON: not indexed");
            None
        }
    }
}

/// Memory charged for one payload: its bytes plus the map entry.
fn payload_cost(payload: &[u8]) -> usize {
    payload.len() + 48
}

/// The checks the index applies to a vector, made before logging it.
fn check_vector(vector: &[f32], dimension: usize, metric: Metric) -> Result<(), IndexError> {
    if vector.len() != dimension {
        return Err(IndexError::DimensionMismatch { expected: dimension, got: vector.len() });
    }
    if let Some(position) = vector.iter().position(|x| !x.is_finite()) {
        return Err(IndexError::NonFinite { position });
    }
    if metric.normalizes() && vector.iter().all(|&x| x == 0.0) {
        return Err(IndexError::ZeroVector);
    }
    Ok(())
}
