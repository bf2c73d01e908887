//! The engine's whole persistence protocol under power cuts: appends,
//! periodic checkpoints, `truncate_before(checkpoint_lsn + 1)`, and recovery
//! as checkpoint + WAL replay from `checkpoint_lsn + 1`.
//!
//! The "engine state" is the list of `(lsn, id)` it has applied; the
//! checkpoint stores it as one section. Oracle: after a cut at any sync point
//! and a reboot, the recovered state is exactly LSNs 1..=n in order, each
//! with the id appended at that LSN, and it contains every acknowledged append.

use std::path::PathBuf;
use std::sync::Arc;

use ruvector_storage::{Checkpoint, CheckpointWriter, Fs, FsyncPolicy, SimFs, Wal, WalOptions, WalRecord};

const APPENDS: u64 = 40;
const CHECKPOINT_EVERY: u64 = 7;

fn data() -> PathBuf {
    PathBuf::from("/node")
}

fn wal_dir() -> PathBuf {
    data().join("wal")
}

fn options() -> WalOptions {
    WalOptions { fsync: FsyncPolicy::Always, segment_size: 200 }
}

fn record(id: u64) -> WalRecord {
    WalRecord::Delete { collection: "c".into(), ids: vec![id; (id % 5 + 1) as usize], versions: Vec::new() }
}

fn encode(state: &[(u64, u64)]) -> Vec<u8> {
    state.iter().flat_map(|(lsn, id)| lsn.to_le_bytes().into_iter().chain(id.to_le_bytes())).collect()
}

fn decode(bytes: &[u8]) -> Vec<(u64, u64)> {
    bytes
        .chunks_exact(16)
        .map(|c| {
            let (a, b) = c.split_at(8);
            (u64::from_le_bytes(a.try_into().expect("8")), u64::from_le_bytes(b.try_into().expect("8")))
        })
        .collect()
}

/// Recovery exactly as the engine does it.
fn recover(fs: &SimFs) -> Result<(Wal, Vec<(u64, u64)>), ruvector_storage::StorageError> {
    let (mut state, from) = match Checkpoint::read_latest(fs, &data())? {
        Some(c) => (decode(c.section("state").expect("state section")), c.lsn() + 1),
        None => (Vec::new(), 0),
    };
    let (wal, _) = Wal::open(Arc::new(fs.clone()), wal_dir(), options(), from, |lsn, r| {
        let WalRecord::Delete { ids, .. } = r else { return Err("unexpected record".into()) };
        state.push((lsn, ids[0]));
        Ok(())
    })?;
    Ok((wal, state))
}

/// Runs the workload until done or the power goes; returns acknowledged (lsn, id).
fn workload(fs: &SimFs) -> Vec<(u64, u64)> {
    let mut acked = Vec::new();
    let Ok((wal, mut state)) = recover(fs) else { return acked };
    for id in 100..100 + APPENDS {
        let Ok(lsn) = wal.append(&record(id)) else { return acked };
        acked.push((lsn, id));
        state.push((lsn, id));
        if id % CHECKPOINT_EVERY == 0 {
            let lsn = wal.last_lsn();
            let fs_dyn: Arc<dyn Fs> = Arc::new(fs.clone());
            let Ok(mut w) = CheckpointWriter::create(fs_dyn, data(), lsn) else { return acked };
            if w.add_section("state", &encode(&state)).is_err() || w.commit().is_err() {
                return acked;
            }
            if wal.truncate_before(lsn + 1).is_err() {
                return acked;
            }
        }
    }
    acked
}

#[test]
fn checkpoint_truncate_and_replay_survive_a_power_cut_at_every_sync_point() {
    let full = SimFs::new();
    assert_eq!(workload(&full).len() as u64, APPENDS);
    let (_, state) = recover(&full).expect("clean recovery");
    assert_eq!(state.len() as u64, APPENDS);
    let total = full.sync_points();
    for cut in 0..=total {
        let fs = SimFs::new();
        fs.fail_after_syncs(Some(cut));
        let acked = workload(&fs);
        assert!(cut == total || fs.power_lost(), "cut {cut} never happened");
        fs.crash(Some(cut));
        let (wal, state) = recover(&fs).unwrap_or_else(|e| panic!("cut {cut}: recovery failed: {e}"));
        for (i, &(lsn, id)) in state.iter().enumerate() {
            assert_eq!(lsn, i as u64 + 1, "cut {cut}: state must hold LSNs 1..=n");
            assert_eq!(id, 100 + i as u64, "cut {cut}: LSN {lsn} holds the wrong record");
        }
        assert!(state.len() >= acked.len(), "cut {cut}: acknowledged appends lost");
        assert_eq!(wal.last_lsn(), state.len() as u64, "cut {cut}");
    }
}
