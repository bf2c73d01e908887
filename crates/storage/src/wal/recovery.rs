//! Recovery: reading every segment at open, replaying records in LSN order,
//! and deciding what a damaged byte means.
//!
//! Rules:
//! - Segment files are `<first LSN, 20 decimal digits>.log`; other names in
//!   the WAL directory are ignored. Segments are read in LSN order.
//! - Inside a segment, frames must carry consecutive LSNs starting at the
//!   LSN in the file name.
//! - Between segments, LSNs must continue without a hole, except that a hole
//!   ending at or before `replay_from` is accepted: those records are covered
//!   by the checkpoint, and [`super::Wal::truncate_before`] may have removed
//!   segments in any order before a crash.
//! - LSNs start at 1: a segment named LSN 0 is damage, and so is a frame
//!   with LSN `u64::MAX` (no LSN could follow it).
//! - The first segment must start at or before `replay_from` (else records
//!   the caller needs are gone: [`StorageError::MissingWal`]).
//! - In the **last** segment, an invalid frame after which no valid frame
//!   (checksum correct, LSN above the last good one) starts at any byte
//!   offset is a torn write from a crash: it and everything after it are
//!   discarded and the file is truncated to the last good frame. Records in
//!   a torn tail were never acknowledged under [`super::FsyncPolicy::Always`],
//!   because an append returns only after an fsync covering its whole frame.
//! - Anything else is an error naming the file and byte offset: an invalid
//!   frame in a non-last segment (segments are fsynced before the next one is
//!   created, so they cannot be torn), an invalid frame followed by a valid
//!   one, a checksummed frame with an unknown version, a record that does not
//!   decode, an LSN out of order. Nothing is replayed silently past damage.
//!
//! Limit: a bit flip that enlarges the length field of the very last frame
//! so it runs past the end of the file is indistinguishable from a torn
//! write and drops that one frame.

use std::path::{Path, PathBuf};

use super::frame::{self, Parsed};
use super::record::WalRecord;
use crate::error::{Result, StorageError};
use crate::io::Fs;

/// Errors a replay callback may return.
pub type ReplayError = Box<dyn std::error::Error + Send + Sync>;

/// A segment file of the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) first_lsn: u64,
    pub(crate) path: PathBuf,
}

/// The file name of the segment whose first record has `first_lsn`.
pub(crate) fn segment_name(first_lsn: u64) -> String {
    format!("{first_lsn:020}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The state recovery leaves behind.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Segments in LSN order.
    pub(crate) segments: Vec<Segment>,
    /// LSN the next record of the last segment would have, if any segment exists.
    pub(crate) next_lsn: Option<u64>,
    /// Valid length of the last segment (after discarding a torn tail).
    pub(crate) last_len: u64,
    /// Records replayed to the callback.
    pub(crate) replayed: u64,
}

/// Lists the segments in `dir`, in LSN order.
pub(crate) fn list_segments(fs: &dyn Fs, dir: &Path) -> Result<Vec<Segment>> {
    let names = fs.list_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    let mut segments: Vec<Segment> = names
        .iter()
        .filter_map(|n| parse_segment_name(n).map(|first_lsn| Segment { first_lsn, path: dir.join(n) }))
        .collect();
    segments.sort_by_key(|s| s.first_lsn);
    Ok(segments)
}

/// Replays every record with LSN ≥ `replay_from` into `apply`, truncates a
/// torn tail, and reports what it found.
pub(crate) fn recover(
    fs: &dyn Fs,
    dir: &Path,
    replay_from: u64,
    apply: &mut dyn FnMut(u64, WalRecord) -> Result<(), ReplayError>,
) -> Result<Recovered> {
    let segments = list_segments(fs, dir)?;
    let needed_from = replay_from.max(1);
    let mut expected: Option<u64> = None;
    let mut last_len = 0;
    let mut replayed = 0;
    for (i, seg) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        match expected {
            None if seg.first_lsn > needed_from => {
                return Err(StorageError::MissingWal { dir: dir.to_path_buf(), needed_from, found: seg.first_lsn });
            }
            Some(e) if seg.first_lsn < e => {
                return Err(StorageError::corrupt(
                    &seg.path,
                    0,
                    format!(
                        "segment starts at LSN {} but the previous segment already reached LSN {}",
                        seg.first_lsn,
                        e - 1
                    ),
                ));
            }
            Some(e) if seg.first_lsn > e && seg.first_lsn > needed_from => {
                return Err(StorageError::MissingWal { dir: dir.to_path_buf(), needed_from: e, found: seg.first_lsn });
            }
            _ => {}
        }
        if seg.first_lsn == 0 {
            // LSNs start at 1: no log ever names a segment 0.
            return Err(StorageError::corrupt(&seg.path, 0, "segment named LSN 0 (LSNs start at 1)"));
        }
        let buf = fs.read(&seg.path).map_err(|e| StorageError::io(&seg.path, e))?;
        let mut off = 0usize;
        let mut lsn_expected = seg.first_lsn;
        loop {
            match frame::parse(&buf, off) {
                Parsed::Frame { lsn, record, next } => {
                    if lsn != lsn_expected {
                        return Err(StorageError::corrupt(
                            &seg.path,
                            off as u64,
                            format!("frame has LSN {lsn} where LSN {lsn_expected} was expected"),
                        ));
                    }
                    let record = WalRecord::decode(record).map_err(|e| {
                        StorageError::corrupt(&seg.path, off as u64, format!("undecodable record: {}", e.0))
                    })?;
                    if lsn >= replay_from {
                        apply(lsn, record).map_err(|source| StorageError::Replay { lsn, source })?;
                        replayed += 1;
                    }
                    lsn_expected = lsn_expected.checked_add(1).ok_or_else(|| {
                        StorageError::corrupt(&seg.path, off as u64, "frame LSN at the end of the LSN range")
                    })?;
                    off = next;
                }
                Parsed::End => break,
                Parsed::UnknownVersion(v) => {
                    return Err(StorageError::UnsupportedVersion {
                        file: seg.path.clone(),
                        offset: off as u64,
                        found: u32::from(v),
                        supported: u32::from(frame::VERSION),
                    });
                }
                Parsed::Bad(reason) => {
                    let torn = is_last && frame::valid_frame_after(&buf, off, lsn_expected - 1).is_none();
                    if !torn {
                        return Err(StorageError::corrupt(&seg.path, off as u64, reason));
                    }
                    fs.truncate(&seg.path, off as u64).map_err(|e| StorageError::io(&seg.path, e))?;
                    break;
                }
            }
        }
        last_len = off as u64;
        expected = Some(lsn_expected);
    }
    Ok(Recovered { segments, next_lsn: expected, last_len, replayed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::SimFs;

    fn segment_with(fs: &SimFs, first_lsn: u64, bytes: &[u8]) -> PathBuf {
        let dir = Path::new("/wal");
        fs.create_dir_all(dir).expect("mkdir");
        let path = dir.join(segment_name(first_lsn));
        let file = fs.create(&path).expect("create");
        file.append(bytes).expect("append");
        file.sync().expect("sync");
        fs.sync_dir(dir).expect("sync dir");
        path
    }

    fn frame(lsn: u64, record: &WalRecord) -> Vec<u8> {
        let mut buf = vec![0u8; frame::HEADER];
        record.encode_into(&mut buf).expect("encodable");
        frame::PendingFrame::new(buf).seal(lsn).to_vec()
    }

    // Found by the `wal_segment` fuzz target: recovery subtracted one from
    // the first LSN of a segment named 0 (an overflow panic in debug
    // builds) and added one past `u64::MAX`.
    #[test]
    fn lsns_at_the_ends_of_the_range_are_damage_not_a_panic() {
        let fs = SimFs::new();
        let path = segment_with(&fs, 0, b"garbage!!");
        let err = recover(&fs, Path::new("/wal"), 0, &mut |_, _| Ok(())).expect_err("segment 0");
        assert!(matches!(&err, StorageError::Corrupt { file, offset: 0, .. } if *file == path), "{err}");

        let fs = SimFs::new();
        let record = WalRecord::DropCollection { name: "x".into() };
        let path = segment_with(&fs, u64::MAX, &frame(u64::MAX, &record));
        let err = recover(&fs, Path::new("/wal"), u64::MAX, &mut |_, _| Ok(())).expect_err("LSN u64::MAX");
        assert!(matches!(&err, StorageError::Corrupt { file, offset: 0, .. } if *file == path), "{err}");
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(42), "00000000000000000042.log");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
        assert_eq!(parse_segment_name("00000000000000000042.log.tmp"), None);
    }
}
