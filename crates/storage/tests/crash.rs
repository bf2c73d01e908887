//! Power cuts at every sync point of a concurrent workload.
//!
//! Oracle: after a crash and reopen, every append that returned `Ok` before
//! the crash is replayed with its exact contents at its LSN; LSNs are
//! 1..=n without holes; every replayed record was really appended (each is
//! unique and traceable to its thread and sequence number), each thread's
//! records appear in the order it appended them; the recovered log accepts
//! new appends and survives another reopen.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use ruvector_storage::{FsyncPolicy, SimFs, Wal, WalOptions, WalPoint, WalRecord};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 12;

fn dir() -> PathBuf {
    PathBuf::from("/node/wal")
}

/// A unique record for (thread, seq), of varying size.
fn record(thread: u64, seq: u64, rng: &mut SmallRng) -> WalRecord {
    let tag = thread * 1000 + seq;
    match rng.random_range(0..4) {
        0 => WalRecord::Upsert {
            collection: format!("t{thread}"),
            points: (0..rng.random_range(1..4))
                .map(|j| WalPoint {
                    id: tag,
                    vector: (0..rng.random_range(1..40)).map(|_| rng.random::<f32>()).collect(),
                    payload: (j == 0).then(|| vec![thread as u8; rng.random_range(0..30)]),
                    // Both encodings: unversioned (kind 3) and versioned (5).
                    version: if tag.is_multiple_of(2) { tag } else { 0 },
                })
                .collect(),
        },
        1 => {
            let ids = vec![tag; rng.random_range(1..20)];
            let versions = if tag.is_multiple_of(2) { vec![tag + 1; ids.len()] } else { Vec::new() };
            WalRecord::Delete { collection: format!("t{thread}"), ids, versions }
        }
        2 => WalRecord::PurgeTombstones { collection: format!("t{thread}"), ids: vec![tag; rng.random_range(1..20)] },
        _ => WalRecord::CreateCollection { name: format!("c{tag}"), config: vec![7; rng.random_range(0..50)] },
    }
}

/// Which (thread, seq) a record came from.
fn origin(r: &WalRecord) -> u64 {
    match r {
        WalRecord::Upsert { points, .. } => points[0].id,
        WalRecord::Delete { ids, .. } | WalRecord::PurgeTombstones { ids, .. } => ids[0],
        WalRecord::CreateCollection { name, .. } => name[1..].parse().expect("tag"),
        WalRecord::DropCollection { .. } | WalRecord::PayloadIndexes { .. } => unreachable!("not generated"),
    }
}

fn options(segment_size: u64) -> WalOptions {
    WalOptions { fsync: FsyncPolicy::Always, segment_size }
}

fn replay(fs: &SimFs, segment_size: u64) -> (Wal, Vec<(u64, WalRecord)>) {
    let mut out = Vec::new();
    let (wal, _) = Wal::open(Arc::new(fs.clone()), dir(), options(segment_size), 0, |lsn, r| {
        out.push((lsn, r));
        Ok(())
    })
    .unwrap_or_else(|e| panic!("recovery failed: {e}"));
    (wal, out)
}

/// Runs the workload until it finishes or the power goes; returns every
/// acknowledged append and every attempted record by origin.
fn workload(fs: &SimFs, seed: u64, segment_size: u64) -> (Vec<(u64, WalRecord)>, HashMap<u64, WalRecord>) {
    let acked = Mutex::new(Vec::new());
    let attempted = Mutex::new(HashMap::new());
    let Ok((wal, _)) = Wal::open(Arc::new(fs.clone()), dir(), options(segment_size), 0, |_, _| Ok(())) else {
        return (Vec::new(), HashMap::new()); // the power went during open
    };
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (wal, acked, attempted) = (&wal, &acked, &attempted);
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed ^ (t << 32));
                for seq in 0..PER_THREAD {
                    let r = record(t, seq, &mut rng);
                    attempted.lock().insert(origin(&r), r.clone());
                    match wal.append(&r) {
                        Ok(lsn) => acked.lock().push((lsn, r)),
                        Err(_) => return,
                    }
                }
            });
        }
    });
    (acked.into_inner(), attempted.into_inner())
}

fn check(
    seed: u64,
    cut: u64,
    acked: &[(u64, WalRecord)],
    attempted: &HashMap<u64, WalRecord>,
    got: &[(u64, WalRecord)],
) {
    let ctx = format!("seed {seed}, power cut after {cut} sync points");
    for (i, (lsn, _)) in got.iter().enumerate() {
        assert_eq!(*lsn, i as u64 + 1, "{ctx}: LSNs must be 1..=n");
    }
    for (lsn, r) in acked {
        let replayed = got.get(*lsn as usize - 1).map(|(_, r)| r);
        assert_eq!(replayed, Some(r), "{ctx}: acknowledged LSN {lsn} lost or changed");
    }
    let mut last_seq: HashMap<u64, u64> = HashMap::new();
    for (lsn, r) in got {
        let o = origin(r);
        assert_eq!(attempted.get(&o), Some(r), "{ctx}: LSN {lsn} holds a record never appended");
        let (thread, seq) = (o / 1000, o % 1000);
        if let Some(prev) = last_seq.insert(thread, seq) {
            assert!(seq > prev, "{ctx}: thread {thread} records out of order or duplicated");
        }
    }
}

fn crash_at_every_sync_point(seed: u64, segment_size: u64, sync_delay: Duration) {
    let full = SimFs::new();
    full.set_sync_delay(sync_delay);
    let (acked, _) = workload(&full, seed, segment_size);
    assert_eq!(acked.len() as u64, THREADS * PER_THREAD);
    // Thread interleaving varies between runs; go a little past the count.
    let total = full.sync_points() + 4;
    let mut cut_seen = 0;
    for cut in 0..=total {
        let fs = SimFs::new();
        fs.set_sync_delay(sync_delay);
        fs.fail_after_syncs(Some(cut));
        let (acked, attempted) = workload(&fs, seed, segment_size);
        cut_seen += u64::from(fs.power_lost());
        fs.crash(Some(seed.wrapping_add(cut)));
        fs.set_sync_delay(Duration::ZERO);
        let (wal, got) = replay(&fs, segment_size);
        check(seed, cut, &acked, &attempted, &got);
        // The repaired log accepts appends and survives another reopen.
        let next = got.len() as u64 + 1;
        let extra = WalRecord::DropCollection { name: "after".into() };
        assert_eq!(wal.append(&extra).expect("append after recovery"), next);
        drop(wal);
        fs.crash(None);
        let (_, again) = replay(&fs, segment_size);
        assert_eq!(again.len() as u64, next);
        assert_eq!(&again[..got.len()], &got[..]);
    }
    assert!(cut_seen > total / 2, "most runs must actually hit the power cut ({cut_seen} of {total})");
}

#[test]
fn crash_at_every_sync_point_single_segment() {
    crash_at_every_sync_point(1, 64 << 20, Duration::ZERO);
}

#[test]
fn crash_at_every_sync_point_with_rotation() {
    crash_at_every_sync_point(2, 700, Duration::ZERO);
}

#[test]
fn crash_at_every_sync_point_more_seeds() {
    for seed in 3..6 {
        crash_at_every_sync_point(seed, 1500, Duration::ZERO);
    }
}

/// A slow disk widens the windows in which appends race a group-commit fsync.
#[test]
fn crash_at_every_sync_point_slow_disk() {
    crash_at_every_sync_point(6, 2000, Duration::from_micros(300));
}
