//! The engine's files: the log (a thin wrapper over the storage crate's
//! WAL), one checkpoint directory per collection, and recovery.
//!
//! Layout under the data directory:
//!
//! ```text
//! checkpoints                               the manifest (below)
//! wal/<first lsn>.log                       log segments (ruvector-storage)
//! collections/<name>/checkpoint-<lsn>.ckpt  newest full checkpoint of a collection
//! collections/<name>/delta-<lsn>.ckpt       changes since the checkpoint before
//! ```
//!
//! A full checkpoint holds three sections: `config` (the collection's JSON
//! configuration with its declared payload indexes), `payloads` (`count: u64`, then per point `id: u64,
//! len: u32, bytes`, little-endian) and `index` (the HNSW snapshot of
//! `ruvector-index`, which carries its own version and checksum).
//!
//! Both may hold `versions` (full: `count: u64`, then per id `id: u64,
//! state: u8, version: u64`; state 1 = live, 2 = tombstone) and `vdelta`
//! (deltas: `count: u64`, then per changed id `id: u64, state: u8` and, for
//! states 1 and 2, `version: u64`; state 0 = the id has no stamp any more).
//! Checkpoints written before versions existed lack them: no stamps.
//!
//! A delta holds `config`, `pdelta` (`count: u64`, then per changed id
//! `id: u64, present: u8`, and if present `len: u32, bytes`) and `idelta`
//! (the index delta of `ruvector-index`: every slot and vector that
//! changed). A collection's state is its full checkpoint followed by its
//! deltas in log order. Deltas make a checkpoint cost what changed; when the
//! deltas of a collection outgrow its full checkpoint, [`compact`] merges
//! them — reading the files, not the live collection, so writers and
//! searches never wait for it.
//!
//! The manifest (`checkpoints`, text with a CRC-32: [`write_manifest`]) is
//! rewritten before every log cut with each collection's newest checkpoint
//! position. Recovery checks every listed collection's chain reaches that
//! position (or the log creates or drops it): a missing newest delta would
//! otherwise go unnoticed, the log holding nothing from before its cut.
//!
//! Payload indexes are not stored: only their declaration is (in `config`,
//! of the full checkpoint and of every delta, the newest file's counting,
//! and in the log). Loading a collection builds them from its payloads —
//! one parse per payload, far cheaper than the index load itself.
//!
//! Recovery loads the newest checkpoint chain of every collection directory, then
//! replays the log from the oldest checkpoint position on. A record of
//! collection C at position `lsn` is applied iff `lsn` is after C's
//! checkpoint; create and drop records rebuild the catalog as it was. A
//! record for a collection that does not exist at that point of the log
//! belongs to a collection that was created before the replay start and
//! dropped later (its files are gone with it), so it is skipped — and
//! recovery checks that the log does drop it later. A collection directory
//! without a full checkpoint is left by a create or drop that crashed
//! midway, so the log must create or drop it; either check failing means
//! a collection's files are missing, and recovery refuses to start rather
//! than serve the collection partially or not at all.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ruvector_index::Hnsw;
use ruvector_storage::{Checkpoint, CheckpointKind, CheckpointWriter, Fs, StorageError, WalRecord};

use crate::EngineError;
use crate::collection::{Collection, Stamp};
use crate::config::{CollectionConfig, EngineConfig, StoredConfig};
use crate::payload_index::PayloadIndexKind;

pub(crate) use log::Log;

mod log {
    use super::*;
    use ruvector_storage::{FsyncPolicy, StorageError, Wal, WalOptions};

    /// The node's write-ahead log.
    #[derive(Debug)]
    pub(crate) struct Log {
        wal: Wal,
    }

    impl Log {
        /// Opens the log and replays every record from `replay_from` on
        /// through `replay`.
        pub(crate) fn open(
            fs: Arc<dyn Fs>,
            config: &EngineConfig,
            replay_from: u64,
            mut replay: impl FnMut(u64, WalRecord) -> Result<(), EngineError>,
        ) -> Result<Log, EngineError> {
            let fsync = match config.fsync {
                crate::Fsync::Always => FsyncPolicy::Always,
                crate::Fsync::IntervalMs(ms) => FsyncPolicy::IntervalMs(ms),
            };
            let dir = config.data_dir.join("wal");
            // Segments wholly before the oldest checkpoint may be gone; the
            // log starts where its first remaining segment starts.
            let replay_from = replay_from.max(first_segment_lsn(&*fs, &dir)?.unwrap_or(0));
            let mut failure = None;
            let opened = Wal::open(
                fs,
                dir,
                WalOptions { fsync, segment_size: config.wal_segment_bytes },
                replay_from,
                |lsn, record| {
                    replay(lsn, record).map_err(|e| {
                        let message = e.to_string();
                        failure = Some(e);
                        message.into()
                    })
                },
            );
            match (opened, failure) {
                (_, Some(e)) => Err(e),
                (Ok((wal, _stats)), None) => Ok(Log { wal }),
                (Err(e), None) => Err(e.into()),
            }
        }

        /// Appends a record; returns its position and encoded size once it
        /// is durable under the policy.
        pub(crate) fn append(&self, record: &WalRecord) -> Result<(u64, u64), StorageError> {
            let (lsn, bytes) = self.write(record)?;
            self.wal.wait_durable(lsn)?;
            Ok((lsn, bytes))
        }

        /// Writes a record without waiting for durability; returns its
        /// position and encoded size. Pair with [`Log::wait_durable`].
        pub(crate) fn write(&self, record: &WalRecord) -> Result<(u64, u64), StorageError> {
            let bytes = record.encoded_len() as u64;
            Ok((self.wal.write(record)?, bytes))
        }

        /// Returns once the record at `lsn` is durable under the policy
        /// (group commit: one fsync covers every writer waiting).
        pub(crate) fn wait_durable(&self, lsn: u64) -> Result<(), StorageError> {
            self.wal.wait_durable(lsn)
        }

        /// The position the next record will get.
        pub(crate) fn next_lsn(&self) -> u64 {
            self.wal.last_lsn() + 1
        }

        pub(crate) fn truncate_before(&self, lsn: u64) -> Result<(), EngineError> {
            self.wal.truncate_before(lsn)?;
            Ok(())
        }

        pub(crate) fn observe_syncs(&self, observe: impl Fn(std::time::Duration) + Send + Sync + 'static) {
            self.wal.observe_syncs(observe);
        }

        pub(crate) fn sync(&self) -> Result<(), EngineError> {
            self.wal.sync()?;
            Ok(())
        }
    }

    /// The first position of the oldest segment (`<20 digits>.log`).
    fn first_segment_lsn(fs: &dyn Fs, dir: &Path) -> Result<Option<u64>, EngineError> {
        let names = match fs.list_dir(dir) {
            Ok(names) => names,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StorageError::Io { path: dir.to_path_buf(), source }.into()),
        };
        Ok(names
            .iter()
            .filter_map(|n| n.strip_suffix(".log"))
            .filter(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|d| d.parse::<u64>().ok())
            .min())
    }
}

const CONFIG: &str = "config";
const PAYLOADS: &str = "payloads";
const INDEX: &str = "index";
const PAYLOADS_DELTA: &str = "pdelta";
const INDEX_DELTA: &str = "idelta";
const VERSIONS: &str = "versions";
const VERSIONS_DELTA: &str = "vdelta";

fn collections_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("collections")
}

fn collection_dir(data_dir: &Path, name: &str) -> PathBuf {
    collections_dir(data_dir).join(name)
}

/// Writes a full checkpoint of `c` as of log position `lsn`. The caller
/// holds the collection's write lock, so nothing is staged meanwhile.
pub(crate) fn write_checkpoint(fs: &Arc<dyn Fs>, data_dir: &Path, c: &Collection, lsn: u64) -> Result<(), EngineError> {
    let payloads = encode_payloads(&c.payloads.read());
    c.changed_payloads.lock().clear();
    let versions = encode_versions(&c.versions.read());
    c.changed_versions.lock().clear();
    let stored = StoredConfig { config: c.config, payload_indexes: c.payload_indexes.read().declared() };
    let contents = FullContents { config: &stored, payloads: &payloads, versions: &versions, index: &c.index };
    let bytes = write_full(fs, data_dir, &c.name, contents, lsn)?;
    c.full_bytes.store(bytes, Ordering::Relaxed);
    c.delta_bytes.store(0, Ordering::Relaxed);
    Ok(())
}

/// What a full checkpoint holds, its sections encoded (but the index's).
struct FullContents<'a> {
    config: &'a StoredConfig,
    payloads: &'a [u8],
    versions: &'a [u8],
    index: &'a Hnsw,
}

fn write_full(
    fs: &Arc<dyn Fs>,
    data_dir: &Path,
    name: &str,
    c: FullContents<'_>,
    lsn: u64,
) -> Result<u64, EngineError> {
    let FullContents { config, payloads, versions, index } = c;
    let dir = collection_dir(data_dir, name);
    fs.create_dir_all(&dir).map_err(|source| StorageError::Io { path: dir.clone(), source })?;
    let config = serde_json::to_vec(config).map_err(|e| EngineError::Failed(e.to_string()))?;
    let mut writer = CheckpointWriter::create(Arc::clone(fs), &dir, lsn)?;
    writer.add_section(CONFIG, &config)?;
    writer.add_section(PAYLOADS, payloads)?;
    writer.add_section(VERSIONS, versions)?;
    index.write_to(writer.section(INDEX)?).map_err(EngineError::Index)?;
    Ok(writer.commit()?.1)
}

/// The changes of a collection captured under its write lock, ready to be
/// written as a delta without holding it.
pub(crate) struct CapturedDelta {
    lsn: u64,
    payloads: Vec<u8>,
    versions: Vec<u8>,
    index: Vec<u8>,
}

impl CapturedDelta {
    /// Captures what changed in `c` since its last checkpoint, as of `lsn`.
    /// The caller holds the collection's write lock. The collection forgets
    /// these changes: if the delta is not committed, the next checkpoint
    /// of `c` must be full (`needs_full`).
    pub(crate) fn capture(c: &Collection, lsn: u64) -> Result<CapturedDelta, EngineError> {
        let changed = std::mem::take(&mut *c.changed_payloads.lock());
        let payloads = {
            let all = c.payloads.read();
            let mut out = Vec::with_capacity(8 + changed.len() * 16);
            out.extend_from_slice(&(changed.len() as u64).to_le_bytes());
            for id in changed {
                out.extend_from_slice(&id.to_le_bytes());
                match all.get(&id) {
                    Some(bytes) => {
                        out.push(1);
                        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                        out.extend_from_slice(bytes);
                    }
                    None => out.push(0),
                }
            }
            out
        };
        let changed = std::mem::take(&mut *c.changed_versions.lock());
        let versions = {
            let all = c.versions.read();
            let mut out = Vec::with_capacity(8 + changed.len() * 17);
            out.extend_from_slice(&(changed.len() as u64).to_le_bytes());
            for id in changed {
                out.extend_from_slice(&id.to_le_bytes());
                match all.get(&id) {
                    Some(stamp) => put_stamp(&mut out, stamp),
                    None => out.push(0),
                }
            }
            out
        };
        let mut index = Vec::with_capacity(c.index.delta_estimate() + 1024);
        c.index.write_delta(&mut index).map_err(EngineError::Index)?;
        Ok(CapturedDelta { lsn, payloads, versions, index })
    }

    /// The log position the delta covers.
    pub(crate) fn lsn(&self) -> u64 {
        self.lsn
    }

    /// Writes the delta file; returns its size.
    pub(crate) fn write(&self, fs: &Arc<dyn Fs>, data_dir: &Path, c: &Collection) -> Result<u64, EngineError> {
        let dir = collection_dir(data_dir, &c.name);
        let stored = StoredConfig { config: c.config, payload_indexes: c.payload_indexes.read().declared() };
        let config = serde_json::to_vec(&stored).map_err(|e| EngineError::Failed(e.to_string()))?;
        let mut writer = CheckpointWriter::create_kind(Arc::clone(fs), &dir, CheckpointKind::Delta, self.lsn)?;
        writer.add_section(CONFIG, &config)?;
        writer.add_section(PAYLOADS_DELTA, &self.payloads)?;
        writer.add_section(VERSIONS_DELTA, &self.versions)?;
        writer.add_section(INDEX_DELTA, &self.index)?;
        Ok(writer.commit()?.1)
    }
}

/// Merges a collection's full checkpoint and deltas into one new full
/// checkpoint at the newest delta's position, from the files alone (the
/// live collection is not touched). Returns the new full checkpoint's size,
/// or `None` when there was nothing to merge.
pub(crate) fn compact(fs: &Arc<dyn Fs>, data_dir: &Path, name: &str) -> Result<Option<(u64, u64)>, EngineError> {
    let Some(loaded) = load_chain(&**fs, data_dir, name)? else { return Ok(None) };
    if loaded.deltas == 0 {
        return Ok(None);
    }
    let payloads = encode_payloads(&loaded.payloads);
    let versions = encode_versions(&loaded.versions);
    let stored = StoredConfig { config: loaded.config, payload_indexes: loaded.declared };
    let contents = FullContents { config: &stored, payloads: &payloads, versions: &versions, index: &loaded.index };
    let bytes = write_full(fs, data_dir, name, contents, loaded.lsn)?;
    Ok(Some((loaded.lsn, bytes)))
}

/// Deletes a dropped collection's files.
pub(crate) fn remove_collection(fs: &dyn Fs, data_dir: &Path, name: &str) -> Result<(), EngineError> {
    let dir = collection_dir(data_dir, name);
    let io = |source| StorageError::Io { path: dir.clone(), source };
    for file in fs.list_dir(&dir).map_err(io)? {
        fs.remove_file(&dir.join(&file)).map_err(io)?;
    }
    fs.sync_dir(&dir).map_err(io)?;
    fs.remove_dir(&dir).map_err(io)?;
    Ok(())
}

fn encode_payloads(payloads: &HashMap<u64, Arc<[u8]>>) -> Vec<u8> {
    let total: usize = payloads.values().map(|p| 12 + p.len()).sum();
    let mut out = Vec::with_capacity(8 + total);
    out.extend_from_slice(&(payloads.len() as u64).to_le_bytes());
    for (id, bytes) in payloads {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

fn decode_payloads(bytes: &[u8]) -> Option<HashMap<u64, Arc<[u8]>>> {
    let mut rest = bytes;
    let count = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
    let mut map = HashMap::with_capacity(usize::try_from(count).ok()?.min(rest.len() / 12));
    for _ in 0..count {
        let id = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
        let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
        map.insert(id, Arc::from(take(&mut rest, len)?));
    }
    rest.is_empty().then_some(map)
}

/// `state: u8, version: u64` of a stamp (state 1 live, 2 tombstone).
fn put_stamp(out: &mut Vec<u8>, stamp: &Stamp) {
    out.push(if stamp.deleted { 2 } else { 1 });
    out.extend_from_slice(&stamp.version.to_le_bytes());
}

fn encode_versions(versions: &HashMap<u64, Stamp>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + versions.len() * 17);
    out.extend_from_slice(&(versions.len() as u64).to_le_bytes());
    for (id, stamp) in versions {
        out.extend_from_slice(&id.to_le_bytes());
        put_stamp(&mut out, stamp);
    }
    out
}

/// Applies a `versions` (full) or `vdelta` section to `versions`; `None`
/// if it is malformed (state 0, removal, is allowed in deltas only).
fn apply_versions(versions: &mut HashMap<u64, Stamp>, bytes: &[u8], delta: bool) -> Option<()> {
    let mut rest = bytes;
    let count = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
    for _ in 0..count {
        let id = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
        let deleted = match take(&mut rest, 1)?[0] {
            0 if delta => {
                versions.remove(&id);
                continue;
            }
            1 => false,
            2 => true,
            _ => return None,
        };
        let version = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
        versions.insert(id, Stamp { version, deleted });
    }
    rest.is_empty().then_some(())
}

/// What recovery produced.
pub(crate) struct Recovered {
    pub(crate) log: Log,
    pub(crate) collections: BTreeMap<String, Arc<Collection>>,
    pub(crate) replayed_records: u64,
    pub(crate) replayed_bytes: u64,
}

/// A collection as its checkpoint files describe it.
struct Loaded {
    config: CollectionConfig,
    /// The declared payload indexes, as the newest file of the chain has them.
    declared: BTreeMap<String, PayloadIndexKind>,
    payloads: HashMap<u64, Arc<[u8]>>,
    versions: HashMap<u64, Stamp>,
    index: Hnsw,
    /// Position of the newest file of the chain.
    lsn: u64,
    deltas: usize,
    full_bytes: u64,
    delta_bytes: u64,
}

/// The file under the data directory naming, for every collection, the
/// position of the newest checkpoint file of its chain as of the last log
/// cut (module docs).
const MANIFEST: &str = "checkpoints";
const MANIFEST_HEADER: &str = "ruvector-checkpoints 1";

/// Writes the manifest: `ruvector-checkpoints 1 <crc32 of the rest, 8 hex
/// digits>`, then one line `<name> <lsn>` per collection; written to a
/// temporary file, synced, renamed, directory synced. Called before every
/// log cut, so the records a cut removes are always covered by the
/// checkpoints it lists.
pub(crate) fn write_manifest(
    fs: &Arc<dyn Fs>,
    data_dir: &Path,
    chains: &BTreeMap<String, u64>,
) -> Result<(), EngineError> {
    let body: String = chains.iter().map(|(name, lsn)| format!("{name} {lsn}\n")).collect();
    let text = format!("{MANIFEST_HEADER} {:08x}\n{body}", crc32fast::hash(body.as_bytes()));
    let path = data_dir.join(MANIFEST);
    let tmp = data_dir.join(format!("{MANIFEST}.tmp"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::Storage(StorageError::Io { path, source })
    };
    let file = fs.create(&tmp).map_err(io(&tmp))?;
    file.append(text.as_bytes()).map_err(io(&tmp))?;
    file.sync().map_err(io(&tmp))?;
    fs.rename(&tmp, &path).map_err(io(&path))?;
    fs.sync_dir(data_dir).map_err(io(data_dir))?;
    Ok(())
}

/// Reads the manifest; `None` when there is none (a data directory whose
/// log was never cut, or written before manifests existed).
fn read_manifest(fs: &dyn Fs, data_dir: &Path) -> Result<Option<BTreeMap<String, u64>>, EngineError> {
    let path = data_dir.join(MANIFEST);
    let bytes = match fs.read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StorageError::Io { path, source }.into()),
    };
    let damaged = |why: &str| EngineError::Damaged(format!("{}: {why}", path.display()));
    let text = std::str::from_utf8(&bytes).map_err(|_| damaged("not UTF-8"))?;
    let (first, body) = text.split_once('\n').ok_or_else(|| damaged("no header line"))?;
    let crc = first.strip_prefix(MANIFEST_HEADER).map(str::trim).ok_or_else(|| damaged("not a checkpoint manifest"))?;
    if u32::from_str_radix(crc, 16).ok() != Some(crc32fast::hash(body.as_bytes())) {
        return Err(damaged("checksum mismatch"));
    }
    let mut chains = BTreeMap::new();
    for line in body.lines() {
        let parsed = line.split_once(' ').and_then(|(name, lsn)| Some((name.to_owned(), lsn.parse::<u64>().ok()?)));
        let (name, lsn) = parsed.ok_or_else(|| damaged(&format!("malformed line {line:?}")))?;
        chains.insert(name, lsn);
    }
    Ok(Some(chains))
}

/// Loads one collection's newest full checkpoint and the deltas after it,
/// if its directory has a full checkpoint.
fn load_chain(fs: &dyn Fs, data_dir: &Path, name: &str) -> Result<Option<Loaded>, EngineError> {
    let dir = collection_dir(data_dir, name);
    let Some((full, deltas)) = Checkpoint::read_chain(fs, &dir)? else {
        return Ok(None);
    };
    let corrupt =
        |file: &Checkpoint, what: &str| EngineError::Failed(format!("checkpoint {}: {what}", file.path().display()));
    let read_config = |file: &Checkpoint| -> Result<StoredConfig, EngineError> {
        serde_json::from_slice(file.section(CONFIG).ok_or_else(|| corrupt(file, "no config section"))?)
            .map_err(|e| corrupt(file, &format!("config: {e}")))
    };
    let StoredConfig { config, mut payload_indexes } = read_config(&full)?;
    let mut payloads = decode_payloads(full.section(PAYLOADS).ok_or_else(|| corrupt(&full, "no payloads section"))?)
        .ok_or_else(|| corrupt(&full, "malformed payloads section"))?;
    let mut versions = HashMap::new();
    if let Some(section) = full.section(VERSIONS) {
        apply_versions(&mut versions, section, false).ok_or_else(|| corrupt(&full, "malformed versions section"))?;
    }
    let index = Hnsw::read_base_bytes(full.section(INDEX).ok_or_else(|| corrupt(&full, "no index section"))?, None)
        .map_err(|e| corrupt(&full, &format!("index: {e}")))?;
    // Each section checks itself; they must also agree with each other
    // (found by the `checkpoint` fuzz target: an index of another dimension
    // loaded, and every search of the collection then failed).
    if index.dim() != config.dimension || index.metric() != config.metric {
        return Err(corrupt(
            &full,
            &format!(
                "index section is for dimension {} and metric {:?}, the config section says dimension {} and metric {:?}",
                index.dim(),
                index.metric(),
                config.dimension,
                config.metric
            ),
        ));
    }
    let mut lsn = full.lsn();
    let full_bytes = full.len() as u64;
    let mut delta_bytes = 0;
    for delta in &deltas {
        let changes = delta.section(PAYLOADS_DELTA).ok_or_else(|| corrupt(delta, "no pdelta section"))?;
        apply_payload_delta(&mut payloads, changes).ok_or_else(|| corrupt(delta, "malformed pdelta section"))?;
        if let Some(section) = delta.section(VERSIONS_DELTA) {
            apply_versions(&mut versions, section, true).ok_or_else(|| corrupt(delta, "malformed vdelta section"))?;
        }
        payload_indexes = read_config(delta)?.payload_indexes;
        let index_delta = delta.section(INDEX_DELTA).ok_or_else(|| corrupt(delta, "no idelta section"))?;
        index.apply_delta(index_delta).map_err(|e| corrupt(delta, &format!("index delta: {e}")))?;
        lsn = delta.lsn();
        delta_bytes += delta.len() as u64;
    }
    let last = deltas.last().unwrap_or(&full);
    index.finish_loading().map_err(|e| corrupt(last, &format!("index: {e}")))?;
    Ok(Some(Loaded {
        config,
        declared: payload_indexes,
        payloads,
        versions,
        index,
        lsn,
        deltas: deltas.len(),
        full_bytes,
        delta_bytes,
    }))
}

/// Loads one collection from its checkpoint files, if it has any.
fn load_collection(fs: &dyn Fs, data_dir: &Path, name: &str) -> Result<Option<Collection>, EngineError> {
    let Some(loaded) = load_chain(fs, data_dir, name)? else { return Ok(None) };
    let index = loaded.index.with_background_maintenance();
    let c = Collection::from_parts(
        name.to_owned(),
        loaded.config,
        &loaded.declared,
        index,
        loaded.payloads,
        loaded.versions,
        loaded.lsn,
    );
    c.full_bytes.store(loaded.full_bytes, Ordering::Relaxed);
    c.delta_bytes.store(loaded.delta_bytes, Ordering::Relaxed);
    Ok(Some(c))
}

/// Applies a `pdelta` section; `None` if it is malformed.
fn apply_payload_delta(payloads: &mut HashMap<u64, Arc<[u8]>>, bytes: &[u8]) -> Option<()> {
    let mut rest = bytes;
    let count = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
    for _ in 0..count {
        let id = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
        match take(&mut rest, 1)?[0] {
            0 => {
                payloads.remove(&id);
            }
            1 => {
                let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
                payloads.insert(id, Arc::from(take(&mut rest, len)?));
            }
            _ => return None,
        }
    }
    rest.is_empty().then_some(())
}

/// Splits `n` bytes off the front of `bytes`.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = bytes.split_at_checked(n)?;
    *bytes = rest;
    Some(head)
}

/// Rebuilds the catalog from the checkpoints and the log.
pub(crate) fn recover(fs: &Arc<dyn Fs>, config: &EngineConfig) -> Result<Recovered, EngineError> {
    let data_dir = &config.data_dir;
    let root = collections_dir(data_dir);
    fs.create_dir_all(&root).map_err(|source| StorageError::Io { path: root.clone(), source })?;
    let mut collections = BTreeMap::new();
    let mut headless = Vec::new();
    let names = fs.list_subdirs(&root).map_err(|source| StorageError::Io { path: root.clone(), source })?;
    for name in names {
        match load_collection(&**fs, data_dir, &name)? {
            Some(c) => {
                collections.insert(name, Arc::new(c));
            }
            None => headless.push(name),
        }
    }
    let replay_from = collections.values().map(|c| c.checkpoint_lsn.load(Ordering::Acquire) + 1).min().unwrap_or(1);
    let mut replayed_records = 0;
    let mut replayed_bytes = 0;
    let mut audit = ReplayAudit::default();
    let log = Log::open(Arc::clone(fs), config, replay_from, |lsn, record| {
        replayed_records += 1;
        replayed_bytes += record.encoded_len() as u64;
        replay(&**fs, &mut collections, lsn, record, config, &mut audit)
    })?;
    audit.check(data_dir, &headless)?;
    if let Some(manifest) = read_manifest(&**fs, data_dir)? {
        audit.check_manifest(data_dir, &manifest, &collections)?;
    }
    // A directory without a full checkpoint that the log explains: a
    // create that crashed before its first checkpoint (the log recreated
    // it) or a drop that crashed midway (the log dropped it again).
    for name in &headless {
        remove_collection(&**fs, data_dir, name)?;
    }
    Ok(Recovered { log, collections, replayed_records, replayed_bytes })
}

/// What replay saw of collections it could not find, so that recovery
/// refuses to start when a collection's files are missing instead of
/// silently serving it without them (or not at all).
#[derive(Debug, Default)]
struct ReplayAudit {
    /// Collections the replayed log creates or drops.
    created_or_dropped: std::collections::HashSet<String>,
    /// Collections unknown at a record of theirs, with the first such
    /// position, not (yet) explained by a later drop.
    orphans: BTreeMap<String, u64>,
}

impl ReplayAudit {
    /// A record of `name` at `lsn` found no collection: it belongs to a
    /// collection created before the replay start, which the log must
    /// drop later (else its files are missing).
    fn orphan(&mut self, name: &str, lsn: u64) {
        self.orphans.entry(name.to_owned()).or_insert(lsn);
    }

    fn created_or_dropped(&mut self, name: &str, dropped: bool) {
        self.created_or_dropped.insert(name.to_owned());
        if dropped {
            self.orphans.remove(name);
        }
    }

    /// Fails when a collection's files are missing: its log records were
    /// never followed by a drop, or its directory holds no full checkpoint
    /// although the log neither creates nor drops it (a create or drop
    /// that crashed midway is the only way to leave such a directory).
    fn check(&self, data_dir: &Path, headless: &[String]) -> Result<(), EngineError> {
        if let Some(name) = headless.iter().find(|n| !self.created_or_dropped.contains(*n)) {
            return Err(EngineError::Damaged(format!(
                "{}: no full checkpoint (checkpoint-<lsn>.ckpt) and the log neither creates nor drops collection \
                 {name:?}: its checkpoint is missing; refusing to start rather than load it partially",
                collection_dir(data_dir, name).display()
            )));
        }
        if let Some((name, lsn)) = self.orphans.iter().next() {
            return Err(EngineError::Damaged(format!(
                "{}: the log holds records of collection {name:?} from LSN {lsn} on, but the collection has no \
                 checkpoint (its files are missing); refusing to start without them",
                collection_dir(data_dir, name).display()
            )));
        }
        Ok(())
    }

    /// Fails when a collection's chain ends before the position the
    /// manifest recorded at the last log cut (a newest delta is missing:
    /// the log no longer holds what it held), or when a collection the
    /// manifest lists is gone although the log neither drops nor creates
    /// it.
    fn check_manifest(
        &self,
        data_dir: &Path,
        manifest: &BTreeMap<String, u64>,
        collections: &BTreeMap<String, Arc<Collection>>,
    ) -> Result<(), EngineError> {
        for (name, &recorded) in manifest {
            if self.created_or_dropped.contains(name) {
                continue;
            }
            let Some(c) = collections.get(name) else {
                return Err(EngineError::Damaged(format!(
                    "{}: collection {name:?} had checkpoints up to LSN {recorded} ({}) but its files are missing; \
                     refusing to start without them",
                    collection_dir(data_dir, name).display(),
                    data_dir.join(MANIFEST).display()
                )));
            };
            // Replay moves a loaded collection's applied position only.
            let loaded = c.checkpoint_lsn.load(Ordering::Acquire);
            if loaded < recorded {
                return Err(EngineError::Damaged(format!(
                    "{}: the newest checkpoint file is at LSN {loaded}, but one at LSN {recorded} was written \
                     (delta-{recorded:020}.ckpt or checkpoint-{recorded:020}.ckpt is missing) and the log before it \
                     is gone; refusing to start rather than load it partially",
                    collection_dir(data_dir, name).display()
                )));
            }
        }
        Ok(())
    }
}

/// The collection a data record (upsert, delete, purge, index
/// declaration) is for; `None` for create and drop.
fn record_collection(record: &WalRecord) -> Option<&str> {
    match record {
        WalRecord::Upsert { collection, .. }
        | WalRecord::Delete { collection, .. }
        | WalRecord::PurgeTombstones { collection, .. }
        | WalRecord::PayloadIndexes { collection, .. } => Some(collection),
        WalRecord::CreateCollection { .. } | WalRecord::DropCollection { .. } => None,
    }
}

/// Applies one logged record during recovery.
fn replay(
    fs: &dyn Fs,
    collections: &mut BTreeMap<String, Arc<Collection>>,
    lsn: u64,
    record: WalRecord,
    config: &EngineConfig,
    audit: &mut ReplayAudit,
) -> Result<(), EngineError> {
    let covered = |c: &Collection| lsn <= c.checkpoint_lsn.load(Ordering::Acquire);
    let bytes = record.encoded_len() as u64;
    if let Some(name) = record_collection(&record)
        && !collections.contains_key(name)
    {
        audit.orphan(name, lsn);
    }
    match record {
        WalRecord::CreateCollection { name, config: bytes } => {
            audit.created_or_dropped(&name, false);
            if collections.get(&name).is_some_and(|c| covered(c)) {
                return Ok(());
            }
            let stored: StoredConfig = serde_json::from_slice(&bytes)
                .map_err(|e| EngineError::Failed(format!("log record {lsn}: collection config: {e}")))?;
            let c = Collection::new(name.clone(), stored.config, &stored.payload_indexes, lsn)?;
            // Its first checkpoint was not written (the create crashed
            // before it): the next one must be full, and until then the
            // log is kept from the create on (the collection is dirty).
            c.needs_full.store(true, Ordering::Relaxed);
            c.checkpoint_lsn.store(lsn - 1, Ordering::Release);
            collections.insert(name, Arc::new(c));
        }
        WalRecord::DropCollection { name } => {
            audit.created_or_dropped(&name, true);
            if collections.get(&name).is_some_and(|c| !covered(c)) {
                collections.remove(&name);
                // The drop may have crashed before its files were deleted.
                if fs.list_subdirs(&collections_dir(&config.data_dir)).is_ok_and(|d| d.contains(&name)) {
                    remove_collection(fs, &config.data_dir, &name)?;
                }
            }
        }
        WalRecord::Upsert { collection, points } => {
            let Some(c) = collections.get(&collection) else { return Ok(()) };
            if !covered(c) {
                // Staged only: the maintenance thread links replayed vectors
                // after the node is ready, so replay costs O(record).
                c.apply_upsert(&points)?;
                c.note_applied(lsn, bytes);
            }
        }
        WalRecord::Delete { collection, ids, versions } => {
            let Some(c) = collections.get(&collection) else { return Ok(()) };
            if !covered(c) {
                c.apply_delete(&ids, &versions);
                c.note_applied(lsn, bytes);
            }
        }
        WalRecord::PurgeTombstones { collection, ids } => {
            let Some(c) = collections.get(&collection) else { return Ok(()) };
            if !covered(c) {
                c.apply_purge(&ids);
                c.note_applied(lsn, bytes);
            }
        }
        WalRecord::PayloadIndexes { collection, declared } => {
            let Some(c) = collections.get(&collection) else { return Ok(()) };
            if !covered(c) {
                let declared: BTreeMap<String, PayloadIndexKind> = serde_json::from_slice(&declared)
                    .map_err(|e| EngineError::Failed(format!("log record {lsn}: payload indexes: {e}")))?;
                c.apply_payload_indexes(&declared);
                c.note_applied(lsn, bytes);
            }
        }
    }
    Ok(())
}
