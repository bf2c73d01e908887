//! The catalog of collections and the node's write-ahead log.
//!
//! Write path (upsert, delete), in three steps:
//!
//! 1. check the request completely against the collection (no lock);
//! 2. holding the collection's write lock only for this: write the log
//!    record (one `write`, no fsync) and apply it — an upsert is *staged*
//!    (stored and searchable by scan, no graph work) — so the log order of
//!    a collection's records is their apply order;
//! 3. without any lock: link the staged vectors into the graph while the
//!    log's flusher thread fsyncs, then wait until the record is durable
//!    under the configured [`Fsync`] policy — concurrent writers share one
//!    fsync (group commit) — and acknowledge.
//!
//! A write is visible to searches from step 2 on, a few milliseconds before
//! it is acknowledged (as in most databases with group commit); it is never
//! acknowledged before it is durable. A failed log write, fsync or apply
//! means memory and disk may disagree: the engine then refuses every
//! further write ([`EngineError::Failed`]) until restarted, and recovery
//! rebuilds the truth from the disk.
//!
//! CPU priority: graph linking for writers runs on a pool of one thread per
//! core (`insert_threads`), and the maintenance and checkpoint threads run
//! too, at nice [`BACKGROUND_NICE`] — a lower CPU priority than the threads
//! serving searches — so a stream of writes slows searches down as little
//! as the scheduler allows, while writes still get every idle cycle.
//!
//! Upkeep never runs in a request: a maintenance thread links vectors that
//! were staged but not linked (replayed after a crash), repairs the graph
//! around deletes, runs the reachability pass and trains quantizers, in
//! bounded slices ([`ruvector_index::Hnsw::maintain`]), and checkpoints
//! when the log has grown by `checkpoint_wal_bytes`.
//!
//! Catalog changes (create, drop) are serialised by `catalog_lock`. Create
//! logs a record, then writes an empty checkpoint of the new collection, so
//! every collection on disk has a checkpoint. Drop logs a record, waits for
//! the collection's in-flight writer, forgets it and deletes its files.
//!
//! Checkpoints ([`Engine::checkpoint`], [`Engine::checkpoint_due`]) are
//! incremental: a collection's changes since its last checkpoint are
//! captured under its write lock (a memory copy of the changed slots) and
//! written as a *delta* file outside it. A background checkpoint writes a
//! collection's delta only when it costs at most [`DELTA_BUDGET`] times the
//! log bytes it replaces (so a trickle of writes is not rewritten every few
//! seconds), or when its log tail exceeds `checkpoint_wal_bytes`. When a
//! collection's deltas outgrow its full checkpoint they are merged from the
//! files ([`persist::compact`]). Afterwards the log is cut before the
//! oldest position some collection still needs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use ruvector_index::Neighbor;
use ruvector_storage::{Fs, RealFs, WalRecord};

use crate::EngineError;
use crate::collection::{Collection, CollectionInfo, Point};
use crate::config::{
    CollectionConfig, EngineConfig, MAX_PAYLOAD_INDEXES, StoredConfig, validate_name, validate_payload_key,
};
use crate::payload_index::PayloadIndexKind;
use crate::persist::{self, Log};

/// A background checkpoint writes a collection's delta once its estimated
/// size is at most this many times the log bytes written for the collection
/// since its last checkpoint: the disk writes per byte of new data then
/// stay near `1 + DELTA_BUDGET` (log plus delta) however slow the trickle.
pub const DELTA_BUDGET: f64 = 2.0;

/// The nice value of the link pool and of the maintenance and checkpoint
/// threads (module docs); searches run at the process's own priority.
pub const BACKGROUND_NICE: i32 = 10;

/// The nice value of the thread linking bulk copies ([`Engine::upsert_bulk`]):
/// the lowest priority, so a replica being filled takes only spare CPU.
pub const BULK_NICE: i32 = 19;

/// Staged slots one link-pool task links (smaller batches are linked by
/// one thread).
const LINK_CHUNK: usize = 64;

/// Staged vectors one maintenance slice links per collection.
const MAINTENANCE_LINK_SLICE: usize = 256;

/// Whether a checkpoint writes every changed collection or only those for
/// which a delta is worth its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckpointPolicy {
    Always,
    WhenWorthIt,
}

/// Receives timings from the engine, e.g. to feed metrics. Every method
/// has an empty default.
pub trait EngineObserver: Send + Sync + std::fmt::Debug {
    /// An fsync of the write-ahead log took `took`.
    fn wal_synced(&self, took: std::time::Duration) {
        let _ = took;
    }

    /// A checkpoint of `collection` was written in `took`.
    fn checkpoint_written(&self, collection: &str, took: std::time::Duration) {
        let _ = (collection, took);
    }
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The point existed and is gone.
    Deleted,
    /// The point was absent; its tombstone now holds the delete's version.
    Tombstoned,
    /// Unversioned delete of an absent id: nothing happened.
    Absent,
    /// The id holds a newer (or equal) version: nothing happened.
    Stale,
}

/// One id's newest versioned write, as [`Engine::export`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Exported {
    /// A live point, with its stamp's version.
    Point(Point),
    /// A tombstone.
    Tombstone {
        /// Vector id.
        id: u64,
        /// The delete's version.
        version: u64,
    },
}

/// The shard engine: a catalog of durable collections.
///
/// All methods take `&self` and may be called from many threads; they
/// block on CPU work and disk syncs, so async callers should run them on a
/// blocking pool.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    fs: Arc<dyn Fs>,
    log: Log,
    collections: RwLock<BTreeMap<String, Arc<Collection>>>,
    /// Serialises create, drop and the log cut of a checkpoint.
    catalog_lock: Mutex<()>,
    /// Serialises checkpoints.
    checkpoint_lock: Mutex<()>,
    /// Log bytes appended since the last checkpoint began.
    log_bytes_since_checkpoint: AtomicU64,
    /// Set when a storage failure made memory and disk diverge.
    failure: RwLock<Option<String>>,
    observer: std::sync::OnceLock<Arc<dyn EngineObserver>>,
    /// Links writers' staged vectors into the graph (module docs).
    link_pool: rayon::ThreadPool,
    /// Links bulk copies ([`Engine::upsert_bulk`]): `bulk_threads` threads
    /// at the lowest priority.
    bulk_pool: rayon::ThreadPool,
}

impl Engine {
    /// Opens (or creates) the engine's data directory on the real
    /// filesystem and recovers every collection.
    pub fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        Self::open_with_fs(config, Arc::new(RealFs))
    }

    /// Like [`Engine::open`] over any filesystem (tests simulate crashes
    /// with `ruvector_storage::SimFs`).
    pub fn open_with_fs(config: EngineConfig, fs: Arc<dyn Fs>) -> Result<Engine, EngineError> {
        let recovered = persist::recover(&fs, &config)?;
        let link_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.insert_threads.max(1))
            .thread_name(|i| format!("ruvector-link-{i}"))
            .start_handler(|_| lower_thread_priority())
            .build()
            .map_err(|e| EngineError::Failed(format!("cannot start the link threads: {e}")))?;
        let bulk_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.bulk_threads.max(1))
            .thread_name(|_| "ruvector-bulk-link".to_owned())
            .start_handler(|_| set_thread_nice(BULK_NICE))
            .build()
            .map_err(|e| EngineError::Failed(format!("cannot start the bulk link thread: {e}")))?;
        let engine = Engine {
            link_pool,
            bulk_pool,
            fs,
            log: recovered.log,
            collections: RwLock::new(recovered.collections),
            catalog_lock: Mutex::new(()),
            checkpoint_lock: Mutex::new(()),
            log_bytes_since_checkpoint: AtomicU64::new(recovered.replayed_bytes),
            failure: RwLock::new(None),
            observer: std::sync::OnceLock::new(),
            config,
        };
        tracing::info!(
            collections = engine.collections.read().len(),
            replayed_records = recovered.replayed_records,
            "engine recovered"
        );
        Ok(engine)
    }

    /// Installs the observer of log fsyncs and checkpoints (the first one
    /// set is kept).
    pub fn set_observer(&self, observer: Arc<dyn EngineObserver>) {
        let for_log = Arc::clone(&observer);
        if self.observer.set(observer).is_ok() {
            self.log.observe_syncs(move |took| for_log.wal_synced(took));
        }
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub(crate) fn writable(&self) -> Result<(), EngineError> {
        match &*self.failure.read() {
            Some(reason) => Err(EngineError::Failed(reason.clone())),
            None => Ok(()),
        }
    }

    /// A log write that failed: a full disk leaves the log whole (the write
    /// just did not happen: [`EngineError::NoSpace`], writes resume when
    /// there is room), and so does a read-only volume
    /// ([`EngineError::ReadOnly`], writes resume once it is writable);
    /// anything else is a failure after which memory and
    /// disk may disagree.
    fn storage_failure(&self, e: ruvector_storage::StorageError) -> EngineError {
        match e {
            ruvector_storage::StorageError::NoSpace { .. } => {
                tracing::warn!(error = %e, "write refused: the data volume is full");
                EngineError::NoSpace(e.to_string())
            }
            ruvector_storage::StorageError::ReadOnly { .. } => {
                tracing::warn!(error = %e, "write refused: the data volume is read-only");
                EngineError::ReadOnly(e.to_string())
            }
            other => self.fail(other.into()),
        }
    }

    /// Records a failure after which memory and disk may disagree.
    fn fail(&self, error: EngineError) -> EngineError {
        tracing::error!(%error, "storage failure: refusing further writes until restart");
        self.failure.write().get_or_insert_with(|| error.to_string());
        error
    }

    pub(crate) fn get_collection(&self, name: &str) -> Result<Arc<Collection>, EngineError> {
        self.collections.read().get(name).cloned().ok_or_else(|| EngineError::CollectionNotFound(name.to_owned()))
    }

    /// Whether `c` is still the collection registered under its name (it
    /// may have been dropped, or dropped and created again, meanwhile).
    pub(crate) fn is_current(&self, c: &Arc<Collection>) -> bool {
        self.collections.read().get(&c.name).is_some_and(|now| Arc::ptr_eq(now, c))
    }

    /// Appends a record and waits until it is durable; on failure the
    /// engine stops taking writes.
    fn append(&self, record: &WalRecord) -> Result<u64, EngineError> {
        let (lsn, bytes) = self.log.append(record).map_err(|e| self.storage_failure(e))?;
        self.log_bytes_since_checkpoint.fetch_add(bytes, Ordering::Relaxed);
        Ok(lsn)
    }

    /// Writes a record without waiting for durability (see
    /// [`Log::wait_durable`]); returns its position and size.
    pub(crate) fn write_record(&self, record: &WalRecord) -> Result<(u64, u64), EngineError> {
        let (lsn, bytes) = self.log.write(record).map_err(|e| self.storage_failure(e))?;
        self.log_bytes_since_checkpoint.fetch_add(bytes, Ordering::Relaxed);
        Ok((lsn, bytes))
    }

    /// Waits until the record at `lsn` is durable; on failure the engine
    /// stops taking writes.
    pub(crate) fn wait_durable(&self, lsn: u64) -> Result<(), EngineError> {
        self.log.wait_durable(lsn).map_err(|e| self.fail(e.into()))
    }

    /// Creates a collection.
    pub fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<(), EngineError> {
        self.create_collection_with(name, config, &BTreeMap::new())
    }

    /// Creates a collection with payload indexes on the keys of
    /// `payload_indexes` (see [`Engine::declare_payload_index`]).
    pub fn create_collection_with(
        &self,
        name: &str,
        config: CollectionConfig,
        payload_indexes: &BTreeMap<String, PayloadIndexKind>,
    ) -> Result<(), EngineError> {
        validate_name(name)?;
        config.validate(&self.config.limits)?;
        validate_payload_indexes(payload_indexes)?;
        self.writable()?;
        let _catalog = self.catalog_lock.lock();
        if self.collections.read().contains_key(name) {
            return Err(EngineError::CollectionExists(name.to_owned()));
        }
        let stored = StoredConfig { config, payload_indexes: payload_indexes.clone() };
        let encoded = serde_json::to_vec(&stored).map_err(|e| EngineError::Failed(e.to_string()))?;
        let lsn = self.append(&WalRecord::CreateCollection { name: name.to_owned(), config: encoded })?;
        let collection = Arc::new(Collection::new(name.to_owned(), config, payload_indexes, lsn)?);
        persist::write_checkpoint(&self.fs, &self.config.data_dir, &collection, lsn).map_err(|e| self.fail(e))?;
        self.collections.write().insert(name.to_owned(), collection);
        Ok(())
    }

    /// Drops a collection and deletes its files.
    pub fn drop_collection(&self, name: &str) -> Result<(), EngineError> {
        self.writable()?;
        let _catalog = self.catalog_lock.lock();
        let collection = self.get_collection(name)?;
        let _writer = collection.write_lock.lock();
        self.append(&WalRecord::DropCollection { name: name.to_owned() })?;
        self.collections.write().remove(name);
        persist::remove_collection(&*self.fs, &self.config.data_dir, name).map_err(|e| self.fail(e))?;
        // The manifest no longer lists it: a later cut may remove the drop
        // record, and recovery must not then look for its files.
        self.write_manifest().map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Declares a payload index on `key` (a top-level payload key or a
    /// dotted path) of kind `kind`, built at once over the stored payloads
    /// and kept up to date by every write; logged, so it survives restarts.
    /// Declaring an index that exists (same key and kind) changes nothing;
    /// another kind replaces it. Returns whether anything changed.
    pub fn declare_payload_index(&self, name: &str, key: &str, kind: PayloadIndexKind) -> Result<bool, EngineError> {
        validate_payload_key(key)?;
        self.change_payload_indexes(name, |declared| {
            if declared.get(key) == Some(&kind) {
                return false;
            }
            declared.insert(key.to_owned(), kind);
            true
        })
    }

    /// Drops the payload index on `key`; returns whether there was one.
    pub fn drop_payload_index(&self, name: &str, key: &str) -> Result<bool, EngineError> {
        self.change_payload_indexes(name, |declared| declared.remove(key).is_some())
    }

    /// Applies `change` to the collection's declared payload indexes and,
    /// if it changed them, logs and applies the new set.
    fn change_payload_indexes(
        &self,
        name: &str,
        change: impl FnOnce(&mut BTreeMap<String, PayloadIndexKind>) -> bool,
    ) -> Result<bool, EngineError> {
        let collection = self.get_collection(name)?;
        self.writable()?;
        let lsn = {
            let _writer = collection.write_lock.lock();
            if !self.is_current(&collection) {
                return Err(EngineError::CollectionNotFound(name.to_owned()));
            }
            let mut declared = collection.payload_indexes.read().declared();
            if !change(&mut declared) {
                return Ok(false);
            }
            validate_payload_indexes(&declared)?;
            let encoded = serde_json::to_vec(&declared).map_err(|e| EngineError::Failed(e.to_string()))?;
            let record = WalRecord::PayloadIndexes { collection: name.to_owned(), declared: encoded };
            let (lsn, bytes) = self.write_record(&record)?;
            collection.apply_payload_indexes(&declared);
            collection.note_applied(lsn, bytes);
            lsn
        };
        self.wait_durable(lsn)?;
        Ok(true)
    }

    /// Every collection, sorted by name.
    pub fn collections(&self) -> Vec<CollectionInfo> {
        let all: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        all.iter().map(|c| c.info()).collect()
    }

    /// One collection's description.
    pub fn collection(&self, name: &str) -> Result<CollectionInfo, EngineError> {
        Ok(self.get_collection(name)?.info())
    }

    /// One collection's fixed configuration. Unlike [`Engine::collection`]
    /// it does not measure memory, so it is cheap enough to call before
    /// every request (the HTTP layer validates bodies against it).
    pub fn collection_config(&self, name: &str) -> Result<CollectionConfig, EngineError> {
        Ok(self.get_collection(name)?.config)
    }

    /// Inserts or replaces a batch of points, all or nothing; returns how
    /// many were written. Acknowledged (returns `Ok`) once durable; see the
    /// module docs for the three steps. A point with a version is written
    /// only if it is newer than the newest versioned write of its id (see
    /// `collection`'s docs); the others are skipped, not counted, and not
    /// logged — re-sending an old write is a no-op.
    pub fn upsert(&self, name: &str, points: Vec<Point>) -> Result<usize, EngineError> {
        self.upsert_on(name, points, &self.link_pool)
    }

    /// [`Engine::upsert`] for bulk copies (a partition snapshot filling a
    /// new replica): linked by one thread at the lowest CPU priority, so a
    /// copy uses the machine's spare capacity and never slows searches or
    /// client writes (which link on the link pool, at a higher priority).
    pub fn upsert_bulk(&self, name: &str, points: Vec<Point>) -> Result<usize, EngineError> {
        self.upsert_on(name, points, &self.bulk_pool)
    }

    fn upsert_on(&self, name: &str, points: Vec<Point>, pool: &rayon::ThreadPool) -> Result<usize, EngineError> {
        let collection = self.get_collection(name)?;
        collection.check_upsert(&points, &self.config.limits)?;
        self.writable()?;
        let (lsn, slots, count) = {
            let _writer = collection.write_lock.lock();
            if !self.is_current(&collection) {
                return Err(EngineError::CollectionNotFound(name.to_owned()));
            }
            let points = collection.newer_points(points);
            if points.is_empty() {
                return Ok(0);
            }
            let count = points.len();
            let record = WalRecord::Upsert { collection: name.to_owned(), points };
            let (lsn, bytes) = self.write_record(&record)?;
            let WalRecord::Upsert { points, .. } = &record else {
                return Err(EngineError::Failed("an upsert was logged as another record".into()));
            };
            let slots = collection.apply_upsert(points).map_err(|e| self.fail(e))?;
            collection.note_applied(lsn, bytes);
            (lsn, slots, count)
        };
        // The log's flusher starts the fsync now; linking overlaps it.
        link(pool, &collection, &slots);
        self.log.wait_durable(lsn).map_err(|e| self.fail(e.into()))?;
        Ok(count)
    }

    /// Deletes one point; returns whether it existed. Deleting a missing id
    /// writes nothing. The graph around it is repaired in the background.
    pub fn delete(&self, name: &str, id: u64) -> Result<bool, EngineError> {
        self.delete_versioned(name, id, 0).map(|outcome| outcome == DeleteOutcome::Deleted)
    }

    /// Deletes one point under a version (0: unversioned, like
    /// [`Engine::delete`]). A versioned delete newer than what the
    /// collection holds for the id is logged and leaves a tombstone even
    /// when the id is absent (an older upsert may still be on its way); an
    /// older one changes nothing.
    pub fn delete_versioned(&self, name: &str, id: u64, version: u64) -> Result<DeleteOutcome, EngineError> {
        let collection = self.get_collection(name)?;
        self.writable()?;
        let (lsn, outcome) = {
            let _writer = collection.write_lock.lock();
            if !self.is_current(&collection) {
                return Err(EngineError::CollectionNotFound(name.to_owned()));
            }
            let present = collection.index.contains(id);
            if version == 0 && !present {
                return Ok(DeleteOutcome::Absent);
            }
            if version != 0 && version <= collection.version_of(id) {
                return Ok(DeleteOutcome::Stale);
            }
            let versions = if version == 0 { Vec::new() } else { vec![version] };
            let record = WalRecord::Delete { collection: name.to_owned(), ids: vec![id], versions };
            let (lsn, bytes) = self.write_record(&record)?;
            let WalRecord::Delete { ids, versions, .. } = &record else {
                return Err(EngineError::Failed("a delete was logged as another record".into()));
            };
            collection.apply_delete(ids, versions);
            collection.note_applied(lsn, bytes);
            (lsn, if present { DeleteOutcome::Deleted } else { DeleteOutcome::Tombstoned })
        };
        self.log.wait_durable(lsn).map_err(|e| self.fail(e.into()))?;
        Ok(outcome)
    }

    /// One point, if present. Under the cosine metric the vector is the
    /// normalised one the index searches.
    pub fn get(&self, name: &str, id: u64) -> Result<Option<Point>, EngineError> {
        Ok(self.get_collection(name)?.get(id))
    }

    /// The `k` nearest points to `query`, nearest first; `ef` defaults to
    /// the collection's `ef_search` (and is raised to `k`).
    pub fn search(&self, name: &str, query: &[f32], k: usize, ef: Option<usize>) -> Result<Vec<Neighbor>, EngineError> {
        self.get_collection(name)?.search(query, k, ef, &self.config.limits, None)
    }

    /// [`Engine::search`] over the points whose id `accept` lets through
    /// (checked during the graph walk: see `Hnsw::search_where`).
    pub fn search_where(
        &self,
        name: &str,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
        accept: &(dyn Fn(u64) -> bool + Sync),
    ) -> Result<Vec<Neighbor>, EngineError> {
        self.get_collection(name)?.search(query, k, ef, &self.config.limits, Some(accept))
    }

    /// Every version stamp of the collection (ids written with a version:
    /// live points and tombstones), as `(id, version, deleted)` in no
    /// particular order — what replicas compare to find divergence.
    pub fn stamps(&self, name: &str) -> Result<Vec<(u64, u64, bool)>, EngineError> {
        let collection = self.get_collection(name)?;
        let versions = collection.versions.read();
        Ok(versions.iter().map(|(&id, s)| (id, s.version, s.deleted)).collect())
    }

    /// The newest versioned write of each of `ids`, read under the
    /// collection's write lock so that a vector is never paired with the
    /// version of a later write still being applied (what a copy receiving
    /// it would then wrongly treat as current). Ids without a stamp are
    /// left out. What partition snapshots and catch-up reads ship.
    pub fn export(&self, name: &str, ids: &[u64]) -> Result<Vec<Exported>, EngineError> {
        let collection = self.get_collection(name)?;
        let _writer = collection.write_lock.lock();
        let versions = collection.versions.read();
        let payloads = collection.payloads.read();
        Ok(ids
            .iter()
            .filter_map(|&id| {
                let stamp = versions.get(&id)?;
                if stamp.deleted {
                    return Some(Exported::Tombstone { id, version: stamp.version });
                }
                let vector = collection.index.get(id)?;
                let payload = payloads.get(&id).map(|p| p.to_vec());
                Some(Exported::Point(Point { id, vector, payload, version: stamp.version }))
            })
            .collect())
    }

    /// Versioned deletes of many ids at once (`(id, version)`, versions
    /// non-zero): those newer than what the collection holds are logged as
    /// one record and applied, each leaving its tombstone; the others are
    /// skipped. Returns how many were applied.
    pub fn delete_versions(&self, name: &str, deletes: &[(u64, u64)]) -> Result<usize, EngineError> {
        let collection = self.get_collection(name)?;
        self.writable()?;
        let lsn = {
            let _writer = collection.write_lock.lock();
            if !self.is_current(&collection) {
                return Err(EngineError::CollectionNotFound(name.to_owned()));
            }
            let (ids, versions): (Vec<u64>, Vec<u64>) = deletes
                .iter()
                .copied()
                .filter(|&(id, version)| version != 0 && version > collection.version_of(id))
                .unzip();
            if ids.is_empty() {
                return Ok(0);
            }
            let record = WalRecord::Delete { collection: name.to_owned(), ids, versions };
            let (lsn, bytes) = self.write_record(&record)?;
            let WalRecord::Delete { ids, versions, .. } = &record else {
                return Err(EngineError::Failed("a delete was logged as another record".into()));
            };
            collection.apply_delete(ids, versions);
            collection.note_applied(lsn, bytes);
            (lsn, ids.len())
        };
        self.log.wait_durable(lsn.0).map_err(|e| self.fail(e.into()))?;
        Ok(lsn.1)
    }

    /// Forgets the tombstones older than `before` of the ids `select`
    /// picks (a replica's partitions whose every copy holds them); returns
    /// how many. Logged (the purged ids), so replay and checkpoints agree.
    pub fn purge_tombstones(
        &self,
        name: &str,
        before: u64,
        select: impl Fn(u64) -> bool,
    ) -> Result<usize, EngineError> {
        let collection = self.get_collection(name)?;
        self.writable()?;
        let (lsn, purged) = {
            let _writer = collection.write_lock.lock();
            if !self.is_current(&collection) {
                return Err(EngineError::CollectionNotFound(name.to_owned()));
            }
            let ids = collection.tombstones_before(before, select);
            if ids.is_empty() {
                return Ok(0);
            }
            let record = WalRecord::PurgeTombstones { collection: name.to_owned(), ids };
            let (lsn, bytes) = self.write_record(&record)?;
            let WalRecord::PurgeTombstones { ids, .. } = &record else {
                return Err(EngineError::Failed("a purge was logged as another record".into()));
            };
            let purged = collection.apply_purge(ids);
            collection.note_applied(lsn, bytes);
            (lsn, purged)
        };
        self.log.wait_durable(lsn).map_err(|e| self.fail(e.into()))?;
        Ok(purged)
    }

    /// Removes every point, and forgets every stamp, of the ids `select`
    /// picks (the partitions a replica moved to another shard): one logged
    /// unversioned delete of the present ids, one logged purge of the
    /// tombstones left. Returns how many points went.
    pub fn drop_where(&self, name: &str, select: impl Fn(u64) -> bool) -> Result<usize, EngineError> {
        let collection = self.get_collection(name)?;
        self.writable()?;
        let (lsn, dropped) = {
            let _writer = collection.write_lock.lock();
            if !self.is_current(&collection) {
                return Err(EngineError::CollectionNotFound(name.to_owned()));
            }
            let ids: Vec<u64> = collection.index.ids().into_iter().filter(|&id| select(id)).collect();
            let dropped = ids.len();
            let mut lsn = None;
            if !ids.is_empty() {
                let record = WalRecord::Delete { collection: name.to_owned(), ids, versions: Vec::new() };
                let (at, bytes) = self.write_record(&record)?;
                let WalRecord::Delete { ids, versions, .. } = &record else {
                    return Err(EngineError::Failed("a delete was logged as another record".into()));
                };
                collection.apply_delete(ids, versions);
                collection.note_applied(at, bytes);
                lsn = Some(at);
            }
            let tombstones = collection.tombstones_before(u64::MAX, &select);
            if !tombstones.is_empty() {
                let record = WalRecord::PurgeTombstones { collection: name.to_owned(), ids: tombstones };
                let (at, bytes) = self.write_record(&record)?;
                let WalRecord::PurgeTombstones { ids, .. } = &record else {
                    return Err(EngineError::Failed("a purge was logged as another record".into()));
                };
                collection.apply_purge(ids);
                collection.note_applied(at, bytes);
                lsn = Some(at);
            }
            (lsn, dropped)
        };
        if let Some(lsn) = lsn {
            self.log.wait_durable(lsn).map_err(|e| self.fail(e.into()))?;
        }
        Ok(dropped)
    }

    /// A page of ids in ascending order: up to `limit` ids greater than
    /// `after`.
    pub fn ids(&self, name: &str, after: Option<u64>, limit: usize) -> Result<Vec<u64>, EngineError> {
        Ok(self.get_collection(name)?.ids_after(after, limit))
    }

    /// Writes a checkpoint of every collection changed since its last one,
    /// then cuts the log before the oldest record still needed.
    pub fn checkpoint(&self) -> Result<(), EngineError> {
        self.checkpoint_with(CheckpointPolicy::Always)
    }

    /// The background checkpoint: like [`Engine::checkpoint`], but a
    /// collection gets a delta only when it is worth it (module docs).
    pub fn checkpoint_due(&self) -> Result<(), EngineError> {
        self.checkpoint_with(CheckpointPolicy::WhenWorthIt)
    }

    fn checkpoint_with(&self, policy: CheckpointPolicy) -> Result<(), EngineError> {
        self.writable()?;
        let _only_one = self.checkpoint_lock.lock();
        self.log_bytes_since_checkpoint.store(0, Ordering::Relaxed);
        let all: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        for c in &all {
            if !c.is_dirty() || !self.is_current(c) || !self.checkpoint_worth_it(c, policy) {
                continue;
            }
            let started = std::time::Instant::now();
            let (lsn, kind, bytes) = self.checkpoint_collection(c)?;
            let took = started.elapsed();
            tracing::debug!(collection = %c.name, lsn, kind, bytes, seconds = took.as_secs_f64(), "checkpoint written");
            if let Some(observer) = self.observer.get() {
                observer.checkpoint_written(&c.name, took);
            }
            self.compact_if_due(c)?;
        }
        // The log is needed from the first record some collection has not
        // checkpointed. A clean collection needs nothing, but a writer may
        // be between its log write and its apply: its write lock covers that.
        let _catalog = self.catalog_lock.lock();
        let mut keep_from = self.log.next_lsn();
        for c in self.collections.read().values() {
            let _writer = c.write_lock.lock();
            if c.is_dirty() {
                keep_from = keep_from.min(c.checkpoint_lsn.load(Ordering::Acquire) + 1);
            }
        }
        // What a cut removes is covered by the checkpoints the manifest
        // lists, so recovery can tell a missing newest checkpoint file from
        // a collection that simply had no records in the removed part.
        self.write_manifest()?;
        self.log.truncate_before(keep_from)?;
        Ok(())
    }

    /// Rewrites the checkpoint manifest (`persist::write_manifest`) from
    /// the catalog; the caller holds the catalog lock. Every position in it
    /// is that of a committed checkpoint file.
    fn write_manifest(&self) -> Result<(), EngineError> {
        let chains: BTreeMap<String, u64> = self
            .collections
            .read()
            .values()
            .map(|c| (c.name.clone(), c.checkpoint_lsn.load(Ordering::Acquire)))
            .collect();
        persist::write_manifest(&self.fs, &self.config.data_dir, &chains)
    }

    /// Whether a background checkpoint of `c` is worth its bytes now.
    fn checkpoint_worth_it(&self, c: &Collection, policy: CheckpointPolicy) -> bool {
        if policy == CheckpointPolicy::Always || c.needs_full.load(Ordering::Relaxed) {
            return true;
        }
        let log_bytes = c.log_bytes_since_checkpoint.load(Ordering::Relaxed);
        log_bytes >= self.config.checkpoint_wal_bytes
            || c.index.delta_estimate() as f64 <= DELTA_BUDGET * log_bytes as f64
    }

    /// Writes one collection's delta (or a full checkpoint when the last
    /// delta failed); returns the position, kind and size.
    fn checkpoint_collection(&self, c: &Collection) -> Result<(u64, &'static str, u64), EngineError> {
        let data_dir = &self.config.data_dir;
        let captured = {
            let _writer = c.write_lock.lock();
            let lsn = c.applied_lsn.load(Ordering::Acquire);
            if c.needs_full.load(Ordering::Relaxed) {
                persist::write_checkpoint(&self.fs, data_dir, c, lsn)?;
                c.needs_full.store(false, Ordering::Relaxed);
                c.checkpoint_lsn.store(lsn, Ordering::Release);
                c.log_bytes_since_checkpoint.store(0, Ordering::Relaxed);
                return Ok((lsn, "full", c.full_bytes.load(Ordering::Relaxed)));
            }
            c.log_bytes_since_checkpoint.store(0, Ordering::Relaxed);
            persist::CapturedDelta::capture(c, lsn).inspect_err(|_| c.needs_full.store(true, Ordering::Relaxed))?
        };
        let bytes =
            captured.write(&self.fs, data_dir, c).inspect_err(|_| c.needs_full.store(true, Ordering::Relaxed))?;
        c.delta_bytes.fetch_add(bytes, Ordering::Relaxed);
        c.checkpoint_lsn.fetch_max(captured.lsn(), Ordering::AcqRel);
        Ok((captured.lsn(), "delta", bytes))
    }

    /// Merges `c`'s deltas into a new full checkpoint once they outgrow
    /// the full one (so loading reads at most about twice the data).
    fn compact_if_due(&self, c: &Collection) -> Result<(), EngineError> {
        if c.delta_bytes.load(Ordering::Relaxed)
            < c.full_bytes.load(Ordering::Relaxed).max(self.config.compact_min_bytes)
        {
            return Ok(());
        }
        let started = std::time::Instant::now();
        if let Some((lsn, bytes)) = persist::compact(&self.fs, &self.config.data_dir, &c.name)? {
            c.full_bytes.store(bytes, Ordering::Relaxed);
            c.delta_bytes.store(0, Ordering::Relaxed);
            tracing::info!(collection = %c.name, lsn, bytes, seconds = started.elapsed().as_secs_f64(), "checkpoint deltas compacted");
        }
        Ok(())
    }

    /// Starts a background thread that checkpoints every `interval` when
    /// something was written since the last checkpoint and it is worth it
    /// ([`Engine::checkpoint_due`]). The thread ends when the engine is
    /// dropped.
    pub fn start_background_checkpoints(self: &Arc<Self>, interval: std::time::Duration) -> std::io::Result<()> {
        let engine = Arc::downgrade(self);
        std::thread::Builder::new().name("ruvector-checkpoint".into()).spawn(move || {
            lower_thread_priority();
            loop {
                std::thread::sleep(interval);
                let Some(engine) = engine.upgrade() else { return };
                if engine.log_bytes_since_checkpoint.load(Ordering::Relaxed) == 0 || engine.writable().is_err() {
                    continue;
                }
                if let Err(error) = engine.checkpoint_due() {
                    tracing::error!(%error, "background checkpoint failed");
                }
            }
        })?;
        Ok(())
    }

    /// Starts the maintenance thread (module docs): it works in bounded
    /// slices while there is upkeep and sleeps `idle` when there is none.
    /// The thread ends when the engine is dropped.
    pub fn start_maintenance(self: &Arc<Self>, idle: std::time::Duration) -> std::io::Result<()> {
        let engine = Arc::downgrade(self);
        std::thread::Builder::new().name("ruvector-maintenance".into()).spawn(move || {
            lower_thread_priority();
            loop {
                let busy = match engine.upgrade() {
                    Some(engine) => engine.maintain_once(),
                    None => return,
                };
                if !busy {
                    std::thread::sleep(idle);
                }
            }
        })?;
        Ok(())
    }

    /// One round of upkeep over every collection; returns whether any work
    /// was done. Also checkpoints once the log has grown by
    /// `checkpoint_wal_bytes`.
    pub fn maintain_once(&self) -> bool {
        let all: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        let mut busy = false;
        for c in &all {
            match c.index.maintain(MAINTENANCE_LINK_SLICE) {
                Ok(work) => busy |= !work.is_empty(),
                Err(error) => tracing::error!(collection = %c.name, %error, "maintenance failed"),
            }
        }
        if self.log_bytes_since_checkpoint.load(Ordering::Relaxed) >= self.config.checkpoint_wal_bytes
            && self.writable().is_ok()
        {
            busy = true;
            if let Err(error) = self.checkpoint_due() {
                tracing::error!(%error, "checkpoint failed");
            }
        }
        busy
    }

    /// Finishes every collection's upkeep now (links everything staged,
    /// repairs every delete): for tests and benchmarks that need the graph
    /// as if built in one go.
    pub fn maintain_fully(&self) -> Result<(), EngineError> {
        let all: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        for c in &all {
            c.index.maintain_fully().map_err(EngineError::Index)?;
        }
        Ok(())
    }

    /// Checkpoints everything so the next start replays nothing; called on
    /// a clean shutdown.
    pub fn shutdown(&self) -> Result<(), EngineError> {
        self.checkpoint()?;
        self.log.sync()?;
        Ok(())
    }
}

/// Checks a whole set of declared payload indexes.
fn validate_payload_indexes(declared: &BTreeMap<String, PayloadIndexKind>) -> Result<(), EngineError> {
    if declared.len() > MAX_PAYLOAD_INDEXES {
        return Err(EngineError::InvalidParameter {
            name: "payload_indexes",
            reason: format!("at most {MAX_PAYLOAD_INDEXES} per collection, got {}", declared.len()),
        });
    }
    declared.keys().try_for_each(|key| validate_payload_key(key))
}

/// Links staged slots on `pool` and waits until they are linked.
fn link(pool: &rayon::ThreadPool, collection: &Collection, slots: &[u32]) {
    use rayon::prelude::*;
    pool.install(|| {
        if slots.len() <= LINK_CHUNK {
            collection.index.link_slots(slots, 1);
        } else {
            slots.par_chunks(LINK_CHUNK).for_each(|chunk| {
                collection.index.link_slots(chunk, 1);
            });
        }
    });
}

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`] (best
/// effort: on Linux a thread's nice value is its own).
fn lower_thread_priority() {
    set_thread_nice(BACKGROUND_NICE);
}

/// Sets the calling thread's nice value (best effort, Linux only).
fn set_thread_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority only reads its integer arguments; `who = 0`
        // is the calling thread on Linux.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower a background thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
