//! The WAL targets: segment bytes through recovery (`wal_segment`), and
//! generated records through append, power cut and recovery
//! (`wal_records`), both on the in-memory [`SimFs`].

use std::path::Path;
use std::sync::Arc;

use ruvector_storage::{Fs, FsyncPolicy, SimFs, StorageError, Wal, WalOptions, WalPoint, WalRecord};

use crate::{Bytes, Outcome};

const DIR: &str = "/wal";

/// Frame layout (`ruvector_storage::wal::frame`): `u32 len | u32 crc32 of
/// the len bytes after the prefix | ...`.
const PREFIX: usize = 8;

/// Recomputes the checksum of every frame whose length fits, so the
/// fuzzer's changes to frame contents reach the record decoder.
pub fn fix_frame_checksums(seg: &mut [u8]) {
    let mut off = 0;
    while seg.len() - off >= PREFIX {
        let mut len = [0u8; 4];
        len.copy_from_slice(&seg[off..off + 4]);
        let len = u32::from_le_bytes(len) as usize;
        if len > seg.len() - off - PREFIX {
            return;
        }
        let crc = crc32fast::hash(&seg[off + PREFIX..off + PREFIX + len]);
        seg[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
        off += PREFIX + len;
    }
}

/// The file name of a segment starting at `first_lsn` (20 digits).
fn segment_path(first_lsn: u64) -> String {
    format!("{DIR}/{first_lsn:020}.log")
}

fn write_file(fs: &SimFs, path: &str, bytes: &[u8]) {
    let file = fs.create(Path::new(path)).expect("create on SimFs");
    file.append(bytes).expect("append on SimFs");
    file.sync().expect("sync on SimFs");
    fs.sync_dir(Path::new(DIR)).expect("sync_dir on SimFs");
}

type Replayed = Vec<(u64, WalRecord)>;

fn open(fs: &Arc<SimFs>, options: WalOptions, replay_from: u64) -> Result<(Wal, Replayed), StorageError> {
    let mut replayed = Vec::new();
    let fs_dyn: Arc<dyn Fs> = Arc::clone(fs) as Arc<dyn Fs>;
    let (wal, _) = Wal::open(fs_dyn, DIR, options, replay_from, |lsn, record| {
        replayed.push((lsn, record));
        Ok(())
    })?;
    Ok((wal, replayed))
}

/// Whether two record lists are equal, floats compared bit for bit.
pub fn same_records(a: &[(u64, WalRecord)], b: &[(u64, WalRecord)]) -> bool {
    /// A point as comparable parts: id, version, payload, vector bits.
    type Bits<'a> = (u64, u64, Option<&'a [u8]>, Vec<u32>);
    fn bits(points: &[WalPoint]) -> Vec<Bits<'_>> {
        points
            .iter()
            .map(|p| (p.id, p.version, p.payload.as_deref(), p.vector.iter().map(|x| x.to_bits()).collect()))
            .collect()
    }
    a.len() == b.len()
        && a.iter().zip(b).all(|((la, ra), (lb, rb))| {
            la == lb
                && match (ra, rb) {
                    (
                        WalRecord::Upsert { collection: ca, points: pa },
                        WalRecord::Upsert { collection: cb, points: pb },
                    ) => ca == cb && bits(pa) == bits(pb),
                    _ => ra == rb,
                }
        })
}

/// `wal_segment`: `flags | lsn choice | replay_from | [split] | segment bytes`.
///
/// Flags: bit 0 fixes the frame checksums up; bit 1 cuts the bytes into
/// two segment files (the second named by a chosen LSN). The first
/// segment's LSN is 1, 0, `u64::MAX` or a chosen small number.
pub(crate) fn check_segment(data: &[u8]) -> Outcome {
    let mut b = Bytes::new(data);
    let flags = b.u8();
    let first_lsn = match b.u8() % 4 {
        0 => 1,
        1 => 0,
        2 => u64::MAX,
        _ => u64::from(b.u8()),
    };
    let replay_from = u64::from(b.u8() % 4);
    let split = (flags & 2 != 0).then(|| (b.u16() as usize, u64::from(b.u8())));
    let mut bytes = b.rest().to_vec();
    if flags & 1 != 0 {
        fix_frame_checksums(&mut bytes);
    }
    let fs = Arc::new(SimFs::new());
    fs.create_dir_all(Path::new(DIR)).expect("mkdir on SimFs");
    match split {
        Some((at, second_lsn)) => {
            let at = at.min(bytes.len());
            write_file(&fs, &segment_path(first_lsn), &bytes[..at]);
            write_file(&fs, &segment_path(first_lsn.wrapping_add(second_lsn)), &bytes[at..]);
        }
        None => write_file(&fs, &segment_path(first_lsn), &bytes),
    }

    let (wal, replayed) = match open(&fs, WalOptions::default(), replay_from) {
        Ok(opened) => opened,
        Err(e) => {
            assert!(
                matches!(
                    e,
                    StorageError::Corrupt { .. }
                        | StorageError::MissingWal { .. }
                        | StorageError::UnsupportedVersion { .. }
                ),
                "damaged log must be reported as damage, got: {e}"
            );
            // Refusing to open changes nothing: the same error again.
            let again = open(&fs, WalOptions::default(), replay_from).err().map(|e| e.to_string());
            assert_eq!(again, Some(e.to_string()), "a refused open changed the log");
            return Outcome::Refused;
        }
    };
    for pair in replayed.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "replayed LSNs must be consecutive");
    }
    if let Some((first, _)) = replayed.first() {
        assert!(*first >= replay_from, "replayed LSN {first} below replay_from {replay_from}");
    }
    // The recovered log takes an append, and reopening replays exactly what
    // was replayed before plus the new record.
    let extra = WalRecord::DropCollection { name: "fuzz".into() };
    let lsn = match wal.append(&extra) {
        Ok(lsn) => lsn,
        Err(e) => {
            assert!(matches!(e, StorageError::Corrupt { .. }), "append after recovery: {e}");
            return Outcome::Refused;
        }
    };
    drop(wal);
    let (_, again) = open(&fs, WalOptions::default(), replay_from).expect("reopen after an append");
    let mut expected = replayed;
    expected.push((lsn, extra));
    assert!(same_records(&again, &expected), "reopen replayed {again:?}, expected {expected:?}");
    Outcome::Accepted
}

/// One record chosen by the bytes.
pub fn record(b: &mut Bytes<'_>) -> WalRecord {
    match b.u8() % 7 {
        0 => {
            let name = b.string(16);
            let len = b.below_or(64);
            WalRecord::CreateCollection { name, config: b.take(len).to_vec() }
        }
        1 => WalRecord::DropCollection { name: b.string(16) },
        2 => {
            let collection = b.string(16);
            let n = b.below_or(6);
            let versioned = b.bool();
            let points = (0..n)
                .map(|_| {
                    let id = b.u64();
                    let dim = b.below_or(8);
                    let vector = (0..dim).map(|_| b.f32_bits()).collect();
                    let payload = b.bool().then(|| {
                        let len = b.below_or(32);
                        b.take(len).to_vec()
                    });
                    let version = if versioned { b.u64() } else { 0 };
                    WalPoint { id, vector, payload, version }
                })
                .collect();
            WalRecord::Upsert { collection, points }
        }
        3 => {
            let collection = b.string(16);
            let n = b.below_or(8);
            let ids = (0..n).map(|_| b.u64()).collect();
            WalRecord::Delete { collection, ids, versions: Vec::new() }
        }
        4 => {
            let collection = b.string(16);
            let n = b.below_or(8);
            let (ids, versions) = (0..n).map(|_| (b.u64(), b.u64())).unzip();
            WalRecord::Delete { collection, ids, versions }
        }
        5 => {
            let collection = b.string(16);
            let n = b.below_or(8);
            WalRecord::PurgeTombstones { collection, ids: (0..n).map(|_| b.u64()).collect() }
        }
        _ => {
            let collection = b.string(16);
            let len = b.below_or(64);
            WalRecord::PayloadIndexes { collection, declared: b.take(len).to_vec() }
        }
    }
}

/// `wal_records`: `segment size | fsync choice | torn seed | records...`.
///
/// Appends every record (small segments, so records cross segment
/// boundaries), cuts the power (keeping a torn prefix of unsynced bytes),
/// reopens: the replay is a prefix of the appends, bit for bit, holding
/// every acknowledged record (with `fsync = always`, all of them; with an
/// interval, at least those an explicit sync covered).
pub(crate) fn check_records(data: &[u8]) -> Outcome {
    let mut b = Bytes::new(data);
    let segment_size = 64 + u64::from(b.u16() % 4096);
    let always = b.bool();
    let torn_seed = b.u64();
    let mut records = Vec::new();
    while !b.is_empty() && records.len() < 64 {
        records.push(record(&mut b));
    }
    let fsync = if always { FsyncPolicy::Always } else { FsyncPolicy::IntervalMs(1 << 20) };
    let options = WalOptions { fsync, segment_size };
    let fs = Arc::new(SimFs::new());
    let (wal, replayed) = open(&fs, options, 0).expect("open an empty log");
    assert!(replayed.is_empty());
    let mut appended = Vec::new();
    let half = records.len() / 2;
    for (i, r) in records.iter().enumerate() {
        if i == half {
            wal.sync().expect("sync on SimFs");
        }
        let lsn = wal.append(r).expect("append on SimFs");
        appended.push((lsn, r.clone()));
    }
    drop(wal);
    fs.crash(Some(torn_seed));
    let (_, replayed) = open(&fs, options, 0).expect("reopen after a power cut");
    // Acknowledged: everything under `always`; the synced half otherwise
    // (plus possibly more, never anything else).
    let acknowledged = if always { appended.len() } else { half };
    assert!(
        replayed.len() >= acknowledged && replayed.len() <= appended.len(),
        "replayed {} records, {acknowledged} acknowledged of {}",
        replayed.len(),
        appended.len()
    );
    assert!(same_records(&replayed, &appended[..replayed.len()]), "replayed {replayed:?}, appended {appended:?}");
    Outcome::Accepted
}
