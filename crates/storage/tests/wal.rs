//! WAL behaviour: replay, torn tails, corruption reports, rotation,
//! truncation, fsync policies and group commit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ruvector_storage::{Fs, FsyncPolicy, RealFs, SimFs, StorageError, Wal, WalOptions, WalPoint, WalRecord};

fn dir() -> PathBuf {
    PathBuf::from("/data/wal")
}

fn record(i: u64) -> WalRecord {
    match i % 4 {
        0 => WalRecord::CreateCollection { name: format!("c{i}"), config: br#"{"dimension":3}"#.to_vec() },
        1 => WalRecord::Upsert {
            collection: format!("c{i}"),
            points: (0..3)
                .map(|j| WalPoint {
                    id: i * 10 + j,
                    vector: vec![i as f32, j as f32, -1.5],
                    payload: (j % 2 == 0).then(|| format!("{{\"j\":{j}}}").into_bytes()),
                    version: 0,
                })
                .collect(),
        },
        2 => WalRecord::Delete { collection: format!("c{i}"), ids: vec![i, i + 1, u64::MAX], versions: Vec::new() },
        _ => WalRecord::DropCollection { name: format!("c{i}") },
    }
}

fn opts(segment_size: u64) -> WalOptions {
    WalOptions { fsync: FsyncPolicy::Always, segment_size }
}

/// Opens the WAL and collects the replayed records.
fn open(fs: &Arc<dyn Fs>, options: WalOptions, replay_from: u64) -> Result<(Wal, Vec<(u64, WalRecord)>), StorageError> {
    let mut out = Vec::new();
    let (wal, stats) = Wal::open(Arc::clone(fs), dir(), options, replay_from, |lsn, r| {
        out.push((lsn, r));
        Ok(())
    })?;
    assert_eq!(stats.replayed as usize, out.len());
    Ok((wal, out))
}

fn expected(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, WalRecord)> {
    range.map(|lsn| (lsn, record(lsn))).collect()
}

/// A fresh disk holding a WAL with records 1..=n; returns the segment files.
fn build(fs: &SimFs, n: u64, segment_size: u64) -> Vec<PathBuf> {
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (wal, replayed) = open(&dynfs, opts(segment_size), 0).expect("open");
    assert!(replayed.is_empty());
    for i in 1..=n {
        assert_eq!(wal.append(&record(i)).expect("append"), i);
    }
    drop(wal);
    let mut files: Vec<PathBuf> = fs.list_dir(&dir()).expect("list").iter().map(|n| dir().join(n)).collect();
    files.sort();
    files
}

/// Byte offsets of the frames in a segment (walks the length fields).
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offs = Vec::new();
    let mut off = 0;
    while off < bytes.len() {
        offs.push(off);
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().expect("4 bytes")) as usize;
        off += 8 + len;
    }
    offs
}

fn corrupt_at(err: StorageError) -> (PathBuf, u64) {
    match err {
        StorageError::Corrupt { file, offset, .. } => (file, offset),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn reopen_replays_everything_in_order_and_continues_lsns() {
    let fs = SimFs::new();
    build(&fs, 10, 64 << 20);
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (wal, replayed) = open(&dynfs, opts(64 << 20), 0).expect("reopen");
    assert_eq!(replayed, expected(1..=10));
    assert_eq!(wal.last_lsn(), 10);
    assert_eq!(wal.append(&record(11)).expect("append"), 11);
    drop(wal);
    let (_, replayed) = open(&dynfs, opts(64 << 20), 4).expect("reopen");
    assert_eq!(replayed, expected(4..=11), "replay_from skips checkpointed records");
}

#[test]
fn torn_final_record_is_discarded_at_every_cut() {
    let fs = SimFs::new();
    let files = build(&fs, 5, 64 << 20);
    assert_eq!(files.len(), 1);
    let bytes = fs.read(&files[0]).expect("read");
    let last = *frame_offsets(&bytes).last().expect("frames");
    for cut in last..bytes.len() {
        let disk = SimFs::new();
        disk.create_dir_all(&dir()).expect("mkdir");
        let f = disk.create(&files[0]).expect("create");
        f.append(&bytes[..cut]).expect("write");
        f.sync().expect("sync");
        disk.sync_dir(&dir()).expect("sync dir");
        let dynfs: Arc<dyn Fs> = Arc::new(disk.clone());
        let (wal, replayed) = open(&dynfs, opts(64 << 20), 0).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_eq!(replayed, expected(1..=4), "cut at {cut}");
        assert_eq!(disk.file_len(&files[0]).expect("len"), last as u64, "truncated to the last good frame");
        // The log continues cleanly after the repaired tail.
        assert_eq!(wal.append(&record(5)).expect("append"), 5);
        drop(wal);
        let (_, replayed) = open(&dynfs, opts(64 << 20), 0).expect("reopen");
        assert_eq!(replayed, expected(1..=5), "cut at {cut}");
    }
}

#[test]
fn checksum_mismatch_in_the_final_record_is_a_torn_tail() {
    let fs = SimFs::new();
    let files = build(&fs, 5, 64 << 20);
    let bytes = fs.read(&files[0]).expect("read");
    let last = *frame_offsets(&bytes).last().expect("frames");
    fs.flip_bit(&files[0], bytes.len() - 1, 3).expect("flip");
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (_, replayed) = open(&dynfs, opts(64 << 20), 0).expect("open");
    assert_eq!(replayed, expected(1..=4));
    assert_eq!(fs.file_len(&files[0]).expect("len"), last as u64);
}

#[test]
fn bit_flip_in_a_middle_record_names_file_and_offset() {
    let fs = SimFs::new();
    let files = build(&fs, 6, 64 << 20);
    let bytes = fs.read(&files[0]).expect("read");
    let offs = frame_offsets(&bytes);
    // Damage the payload, the checksum, the LSN and the length field of frame 3.
    for (delta, bit) in [(20usize, 0u8), (5, 7), (10, 1), (0, 4), (1, 0)] {
        let disk = SimFs::new();
        disk.create_dir_all(&dir()).expect("mkdir");
        let f = disk.create(&files[0]).expect("create");
        f.append(&bytes).expect("write");
        f.sync().expect("sync");
        disk.sync_dir(&dir()).expect("sync dir");
        disk.flip_bit(&files[0], offs[2] + delta, bit).expect("flip");
        let dynfs: Arc<dyn Fs> = Arc::new(disk);
        let err = open(&dynfs, opts(64 << 20), 0).expect_err("damage must be reported");
        let msg = err.to_string();
        let (file, offset) = corrupt_at(err);
        assert_eq!(file, files[0]);
        assert_eq!(offset, offs[2] as u64, "byte {delta}: {msg}");
        assert!(msg.contains("00000000000000000001.log") && msg.contains(&offs[2].to_string()), "{msg}");
    }
}

#[test]
fn damage_in_a_non_last_segment_is_an_error_even_at_its_tail() {
    let fs = SimFs::new();
    let files = build(&fs, 12, 300);
    assert!(files.len() >= 3, "rotation expected, got {files:?}");
    let first = fs.read(&files[0]).expect("read");
    fs.truncate(&files[0], first.len() as u64 - 1).expect("truncate");
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (file, offset) = corrupt_at(open(&dynfs, opts(300), 0).expect_err("must fail"));
    assert_eq!(file, files[0]);
    assert_eq!(offset, *frame_offsets(&first).last().expect("frames") as u64);
}

#[test]
fn unknown_frame_version_is_reported() {
    let fs = SimFs::new();
    let files = build(&fs, 2, 64 << 20);
    let bytes = fs.read(&files[0]).expect("read");
    let second = frame_offsets(&bytes)[1];
    // Rewrite frame 2 with version 9 and a valid checksum.
    let mut frame = bytes[second..].to_vec();
    frame[8] = 9;
    let crc = crc32fast::hash(&frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    fs.overwrite(&files[0], second, &frame).expect("overwrite");
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    match open(&dynfs, opts(64 << 20), 0) {
        Err(StorageError::UnsupportedVersion { file, offset, found: 9, supported: 1 }) => {
            assert_eq!((file, offset), (files[0].clone(), second as u64));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

#[test]
fn undecodable_record_with_valid_checksum_is_corrupt() {
    let fs = SimFs::new();
    let files = build(&fs, 2, 64 << 20);
    let bytes = fs.read(&files[0]).expect("read");
    let second = frame_offsets(&bytes)[1];
    let mut frame = bytes[second..].to_vec();
    frame[17] = 0xEE; // unknown record kind
    let crc = crc32fast::hash(&frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    fs.overwrite(&files[0], second, &frame).expect("overwrite");
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (file, offset) = corrupt_at(open(&dynfs, opts(64 << 20), 0).expect_err("must fail"));
    assert_eq!((file, offset), (files[0].clone(), second as u64));
}

#[test]
fn segments_rotate_and_truncate_before_removes_whole_obsolete_segments() {
    let fs = SimFs::new();
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (wal, _) = open(&dynfs, opts(300), 0).expect("open");
    for i in 1..=20 {
        wal.append(&record(i)).expect("append");
    }
    let files = fs.list_dir(&dir()).expect("list");
    assert_eq!(files.len(), wal.segment_count());
    assert!(files.len() >= 4, "{files:?}");
    let mut firsts: Vec<u64> =
        files.iter().map(|n| n.trim_end_matches(".log").parse().expect("numeric name")).collect();
    firsts.sort_unstable();
    assert_eq!(firsts[0], 1);
    // Every segment except the first holds at least one whole record and
    // stays under the size limit unless it holds a single record.
    for name in &files {
        let bytes = fs.read(&dir().join(name)).expect("read");
        assert!(bytes.len() <= 300 || frame_offsets(&bytes).len() == 1, "{name}: {} bytes", bytes.len());
    }

    let cut = firsts[2] + 1; // records < cut are covered by a checkpoint
    assert_eq!(wal.truncate_before(cut).expect("truncate"), 2);
    assert_eq!(wal.segment_count(), files.len() - 2);
    assert_eq!(wal.truncate_before(cut).expect("idempotent"), 0);
    let remaining = wal.segment_count();
    assert_eq!(wal.truncate_before(u64::MAX).expect("keeps the active segment"), remaining - 1);
    assert_eq!(wal.segment_count(), 1);
    let active_first = *firsts.last().expect("segments");
    drop(wal);

    let (wal, replayed) = open(&dynfs, opts(300), active_first).expect("reopen from the checkpoint");
    assert_eq!(replayed, expected(active_first..=20));
    drop(wal);
    match open(&dynfs, opts(300), 1) {
        Err(StorageError::MissingWal { needed_from: 1, found, .. }) => assert_eq!(found, active_first),
        other => panic!("expected MissingWal, got {other:?}"),
    }
}

#[test]
fn a_hole_between_segments_after_the_checkpoint_is_missing_wal() {
    let fs = SimFs::new();
    let files = build(&fs, 20, 300);
    assert!(files.len() >= 4);
    fs.remove_file(&files[1]).expect("remove");
    fs.sync_dir(&dir()).expect("sync");
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    assert!(matches!(open(&dynfs, opts(300), 0), Err(StorageError::MissingWal { .. })));
    // The same hole is fine when a checkpoint covers it.
    let third_first: u64 =
        files[2].file_name().and_then(|n| n.to_str()).expect("name").trim_end_matches(".log").parse().expect("lsn");
    let (_, replayed) = open(&dynfs, opts(300), third_first).expect("hole before replay_from");
    assert_eq!(replayed, expected(third_first..=20));
}

#[test]
fn open_after_a_checkpoint_beyond_the_log_starts_a_new_segment() {
    let fs = SimFs::new();
    build(&fs, 3, 64 << 20);
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (wal, replayed) = open(&dynfs, opts(64 << 20), 10).expect("open");
    assert!(replayed.is_empty());
    assert_eq!(wal.append(&record(10)).expect("append"), 10);
    drop(wal);
    let (_, replayed) = open(&dynfs, opts(64 << 20), 10).expect("reopen");
    assert_eq!(replayed, expected(10..=10));
}

#[test]
fn group_commit_shares_fsyncs_between_concurrent_appenders() {
    let fs = SimFs::new();
    // A sync long enough that the other appenders, even on a loaded
    // machine, queue behind it (with 2 ms, a starved scheduler could run
    // the threads one after another, each syncing alone).
    fs.set_sync_delay(Duration::from_millis(20));
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (wal, _) = open(&dynfs, opts(64 << 20), 0).expect("open");
    let before = fs.file_syncs();
    let (threads, per_thread) = (8u64, 25u64);
    std::thread::scope(|s| {
        for t in 0..threads {
            let wal = &wal;
            s.spawn(move || {
                for i in 0..per_thread {
                    let lsn = wal.append(&record(t * 1000 + i)).expect("append");
                    assert!(wal.durable_lsn() >= lsn, "Always: acknowledged means synced");
                }
            });
        }
    });
    let appends = threads * per_thread;
    let fsyncs = fs.file_syncs() - before;
    assert!(fsyncs * 2 < appends, "{fsyncs} fsyncs for {appends} appends: no group commit");
    assert_eq!(wal.last_lsn(), appends);
}

#[test]
fn interval_policy_returns_before_fsync_and_syncs_in_the_background() {
    let fs = SimFs::new();
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let options = WalOptions { fsync: FsyncPolicy::IntervalMs(5), segment_size: 64 << 20 };
    let (wal, _) = open(&dynfs, options, 0).expect("open");
    for i in 1..=10 {
        wal.append(&record(i)).expect("append");
    }
    // The background flusher makes them durable within a few intervals.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal.durable_lsn() < 10 {
        assert!(std::time::Instant::now() < deadline, "flusher never synced");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::mem::forget(wal); // no clean shutdown
    fs.crash(None);
    let (wal, replayed) = open(&dynfs, options, 0).expect("reopen");
    assert_eq!(replayed, expected(1..=10));
    wal.append(&record(11)).expect("append");
    drop(wal); // a clean shutdown syncs
    fs.crash(None);
    let (_, replayed) = open(&dynfs, options, 0).expect("reopen");
    assert_eq!(replayed, expected(1..=11));
}

#[test]
fn after_a_failed_fsync_the_wal_refuses_writes() {
    let fs = SimFs::new();
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (wal, _) = open(&dynfs, opts(64 << 20), 0).expect("open");
    wal.append(&record(1)).expect("append");
    fs.fail_after_syncs(Some(fs.sync_points()));
    assert!(matches!(wal.append(&record(2)), Err(StorageError::Io { .. })));
    assert!(matches!(wal.append(&record(3)), Err(StorageError::WalFailed { .. })));
    drop(wal);
    fs.crash(None);
    let (_, replayed) = open(&dynfs, opts(64 << 20), 0).expect("reopen");
    assert_eq!(replayed, expected(1..=1));
}

#[test]
fn replay_callback_errors_stop_recovery() {
    let fs = SimFs::new();
    build(&fs, 3, 64 << 20);
    let result = Wal::open(Arc::new(fs), dir(), opts(64 << 20), 0, |lsn, _| {
        if lsn == 2 { Err("dimension mismatch".into()) } else { Ok(()) }
    });
    match result {
        Err(StorageError::Replay { lsn: 2, source }) => assert_eq!(source.to_string(), "dimension mismatch"),
        other => panic!("expected Replay, got {other:?}"),
    }
}

#[test]
fn real_fs_round_trip_and_torn_tail() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wal_dir: &Path = tmp.path();
    let fs: Arc<dyn Fs> = Arc::new(RealFs);
    let collect = |replay_from| {
        let mut out = Vec::new();
        let (wal, _) = Wal::open(Arc::clone(&fs), wal_dir, opts(1 << 20), replay_from, |lsn, r| {
            out.push((lsn, r));
            Ok(())
        })
        .expect("open");
        (wal, out)
    };
    let (wal, replayed) = collect(0);
    assert!(replayed.is_empty());
    for i in 1..=6 {
        assert_eq!(wal.append(&record(i)).expect("append"), i);
    }
    drop(wal);
    let seg = wal_dir.join("00000000000000000001.log");
    let len = std::fs::metadata(&seg).expect("stat").len();
    let file = std::fs::OpenOptions::new().write(true).open(&seg).expect("open");
    file.set_len(len - 3).expect("tear");
    drop(file);
    let (wal, replayed) = collect(0);
    assert_eq!(replayed, expected(1..=5));
    assert_eq!(wal.append(&record(6)).expect("append"), 6);
    drop(wal);
    let (_, replayed) = collect(3);
    assert_eq!(replayed, expected(3..=6));
}
