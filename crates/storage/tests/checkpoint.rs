//! Checkpoint files: round trip, alignment, damage detection, leftovers, and
//! a power cut at every step of the write protocol.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ruvector_storage::{Checkpoint, CheckpointKind, CheckpointWriter, Fs, RealFs, SimFs, StorageError};

fn dir() -> PathBuf {
    PathBuf::from("/data")
}

/// Deterministic pseudo-random bytes.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

type Sections = Vec<(&'static str, Vec<u8>)>;

fn sample(seed: u8) -> Sections {
    vec![("config", bytes(13, seed)), ("empty", Vec::new()), ("payloads", bytes(301, seed)), ("index", bytes(77, seed))]
}

fn write(fs: &Arc<dyn Fs>, lsn: u64, sections: &Sections) -> Result<PathBuf, StorageError> {
    let mut w = CheckpointWriter::create(Arc::clone(fs), dir(), lsn)?;
    for (tag, data) in sections {
        w.add_section(tag, data)?;
    }
    w.commit().map(|(path, _)| path)
}

fn assert_content(ckpt: &Checkpoint, lsn: u64, sections: &Sections) {
    assert_eq!(ckpt.lsn(), lsn);
    let got: Vec<(&str, &[u8])> = ckpt.sections().collect();
    let want: Vec<(&str, &[u8])> = sections.iter().map(|(t, d)| (*t, d.as_slice())).collect();
    assert_eq!(got, want);
    for (tag, data) in sections {
        assert_eq!(ckpt.section(tag), Some(data.as_slice()));
    }
}

#[test]
fn streamed_round_trip_on_disk_with_aligned_sections() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs: Arc<dyn Fs> = Arc::new(RealFs);
    let big = bytes(3 * (1 << 20) + 5, 9);
    let mut w = CheckpointWriter::create(Arc::clone(&fs), tmp.path(), 77).expect("create");
    w.add_section("config", b"{\"dim\":3}").expect("config");
    {
        // Odd chunk sizes, some above the writer's 1 MiB buffer.
        let mut s = w.section("index").expect("index");
        let mut rest = &big[..];
        for chunk in [1usize, 7, 4096, (1 << 20) + 3, 13, 2 << 20] {
            let n = chunk.min(rest.len());
            s.write_all(&rest[..n]).expect("write");
            rest = &rest[n..];
        }
        s.write_all(rest).expect("write rest");
    }
    w.add_section("ids", &[1, 2, 3]).expect("ids");
    let (path, _) = w.commit().expect("commit");
    assert_eq!(path, tmp.path().join("checkpoint-00000000000000000077.ckpt"));

    let ckpt = Checkpoint::read_latest(&RealFs, tmp.path()).expect("read").expect("present");
    assert_eq!(ckpt.lsn(), 77);
    assert_eq!(ckpt.path(), path);
    assert_eq!(ckpt.section("config"), Some(&b"{\"dim\":3}"[..]));
    assert_eq!(ckpt.section("index"), Some(&big[..]));
    assert_eq!(ckpt.section("ids"), Some(&[1u8, 2, 3][..]));
    assert_eq!(ckpt.section("missing"), None);
    for (tag, data) in ckpt.sections() {
        assert_eq!(data.as_ptr() as usize % 8, 0, "section {tag} not 8-byte aligned");
    }
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    assert_eq!(names, vec!["checkpoint-00000000000000000077.ckpt".to_string()]);
}

#[test]
fn commit_replaces_older_checkpoints_and_no_checkpoint_is_none() {
    let fs = SimFs::new();
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    assert!(Checkpoint::read_latest(&fs, &dir()).expect("empty dir").is_none());
    write(&dynfs, 5, &sample(1)).expect("first");
    write(&dynfs, 9, &sample(2)).expect("second");
    assert_eq!(fs.list_dir(&dir()).expect("ls"), vec!["checkpoint-00000000000000000009.ckpt".to_string()]);
    assert_content(&Checkpoint::read_latest(&fs, &dir()).expect("read").expect("present"), 9, &sample(2));
}

#[test]
fn every_single_bit_flip_is_detected_with_file_and_offset() {
    let fs = SimFs::new();
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let path = write(&dynfs, 3, &sample(4)).expect("write");
    let len = fs.file_len(&path).expect("len") as usize;
    for offset in 0..len {
        for bit in [0u8, 5] {
            fs.flip_bit(&path, offset, bit).expect("flip");
            match Checkpoint::read_latest(&fs, &dir()) {
                Err(StorageError::Corrupt { file, offset: at, .. }) => {
                    assert_eq!(file, path);
                    assert!((at as usize) < len);
                }
                Err(StorageError::UnsupportedVersion { file, .. }) => assert_eq!(file, path),
                other => panic!("flip at byte {offset} bit {bit} undetected: {other:?}"),
            }
            fs.flip_bit(&path, offset, bit).expect("unflip");
        }
    }
    assert_content(&Checkpoint::read_latest(&fs, &dir()).expect("read").expect("present"), 3, &sample(4));
}

#[test]
fn section_damage_reports_the_section_offset() {
    let fs = SimFs::new();
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let path = write(&dynfs, 3, &sample(4)).expect("write");
    let good = Checkpoint::read(&fs, &path).expect("read");
    let section = good.section("payloads").expect("section");
    let off = section.as_ptr() as usize - good.section("config").expect("config").as_ptr() as usize + 32;
    fs.flip_bit(&path, off + 10, 2).expect("flip");
    let err = Checkpoint::read(&fs, &path).expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("payloads") && msg.contains(&off.to_string()), "{msg}");
}

#[test]
fn truncated_or_foreign_files_are_errors_not_empty_state() {
    let fs = SimFs::new();
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    let path = write(&dynfs, 3, &sample(4)).expect("write");
    let len = fs.file_len(&path).expect("len");
    for cut in [0, 1, 31, 32, 63, len / 2, len - 1] {
        let disk = SimFs::new();
        disk.create_dir_all(&dir()).expect("mkdir");
        let f = disk.create(&path).expect("create");
        let mut data = vec![0u8; cut as usize];
        fs.read_exact_at(&path, 0, &mut data).expect("read");
        f.append(&data).expect("append");
        assert!(matches!(Checkpoint::read_latest(&disk, &dir()), Err(StorageError::Corrupt { .. })), "cut {cut}");
    }
}

#[test]
fn tags_are_validated_and_unique() {
    let fs: Arc<dyn Fs> = Arc::new(SimFs::new());
    let mut w = CheckpointWriter::create(fs, dir(), 1).expect("create");
    assert!(matches!(w.section(""), Err(StorageError::InvalidSectionTag { .. })));
    assert!(matches!(w.section("ninechars"), Err(StorageError::InvalidSectionTag { .. })));
    assert!(matches!(w.section("a b"), Err(StorageError::InvalidSectionTag { .. })));
    w.add_section("index", b"x").expect("first");
    assert!(matches!(w.add_section("index", b"y"), Err(StorageError::DuplicateSection { .. })));
}

#[test]
fn leftover_tmp_files_are_ignored_and_removed() {
    let fs = SimFs::new();
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    write(&dynfs, 4, &sample(1)).expect("write");
    let tmp = dir().join("checkpoint-00000000000000000008.ckpt.tmp");
    fs.create(&tmp).expect("tmp").append(b"half a checkpoint").expect("append");
    assert_content(&Checkpoint::read_latest(&fs, &dir()).expect("read").expect("present"), 4, &sample(1));
    assert!(fs.list_dir(&dir()).expect("ls").iter().all(|n| !n.ends_with(".tmp")));

    // An abandoned writer cleans up after itself.
    let mut w = CheckpointWriter::create(Arc::clone(&dynfs), dir(), 12).expect("create");
    w.add_section("index", b"partial").expect("section");
    drop(w);
    assert!(fs.list_dir(&dir()).expect("ls").iter().all(|n| !n.ends_with(".tmp")));
}

fn read_latest_ok(fs: &SimFs, d: &Path) -> Checkpoint {
    Checkpoint::read_latest(fs, d).unwrap_or_else(|e| panic!("{e}")).expect("a checkpoint must exist")
}

#[test]
fn power_cut_at_every_step_leaves_the_old_or_the_new_checkpoint() {
    let (old, new) = (sample(1), sample(2));
    // Count the sync points of writing the new checkpoint.
    let probe = SimFs::new();
    let probe_dyn: Arc<dyn Fs> = Arc::new(probe.clone());
    write(&probe_dyn, 10, &old).expect("old");
    let before = probe.sync_points();
    write(&probe_dyn, 20, &new).expect("new");
    let steps = probe.sync_points() - before;
    assert!(steps >= 3, "file sync, directory sync after rename, directory sync after cleanup");

    let (mut saw_old, mut saw_new) = (false, false);
    for cut in 0..=steps {
        for torn in [None, Some(cut + 1)] {
            let fs = SimFs::new();
            let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
            write(&dynfs, 10, &old).expect("old");
            fs.fail_after_syncs(Some(fs.sync_points() + cut));
            let committed = write(&dynfs, 20, &new).is_ok();
            fs.crash(torn);
            let ckpt = read_latest_ok(&fs, &dir());
            if ckpt.lsn() == 20 {
                assert_content(&ckpt, 20, &new);
                saw_new = true;
            } else {
                assert!(!committed, "cut {cut}: commit returned Ok but the new checkpoint was lost");
                assert_content(&ckpt, 10, &old);
                saw_old = true;
            }
            assert!(fs.list_dir(&dir()).expect("ls").iter().all(|n| !n.ends_with(".tmp")), "cut {cut}");
        }
    }
    assert!(saw_old && saw_new, "the cuts must cover both outcomes");
}

fn write_kind(fs: &Arc<dyn Fs>, kind: CheckpointKind, lsn: u64, tag: &str) -> PathBuf {
    let mut w = CheckpointWriter::create_kind(Arc::clone(fs), dir(), kind, lsn).expect("create");
    w.add_section(tag, &lsn.to_le_bytes()).expect("section");
    w.commit().expect("commit").0
}

#[test]
fn a_chain_is_the_newest_full_checkpoint_then_its_deltas_and_a_full_one_supersedes_them() {
    let fs: Arc<dyn Fs> = Arc::new(SimFs::new());
    assert!(Checkpoint::read_chain(&*fs, &dir()).expect("read").is_none());
    write_kind(&fs, CheckpointKind::Full, 10, "base");
    write_kind(&fs, CheckpointKind::Delta, 12, "d");
    write_kind(&fs, CheckpointKind::Delta, 15, "d");
    let (base, deltas) = Checkpoint::read_chain(&*fs, &dir()).expect("read").expect("present");
    assert_eq!(base.lsn(), 10);
    assert_eq!(deltas.iter().map(Checkpoint::lsn).collect::<Vec<_>>(), vec![12, 15]);
    assert_eq!(deltas[1].section("d"), Some(&15u64.to_le_bytes()[..]));

    // A full checkpoint at 15 covers both deltas; a later delta survives.
    write_kind(&fs, CheckpointKind::Delta, 20, "d");
    write_kind(&fs, CheckpointKind::Full, 15, "base");
    let (base, deltas) = Checkpoint::read_chain(&*fs, &dir()).expect("read").expect("present");
    assert_eq!(base.lsn(), 15);
    assert_eq!(deltas.iter().map(Checkpoint::lsn).collect::<Vec<_>>(), vec![20]);
    let names = fs.list_dir(&dir()).expect("list");
    assert_eq!(names.len(), 2, "superseded files are removed: {names:?}");
}

#[test]
fn a_damaged_delta_is_an_error_naming_it() {
    let fs: Arc<dyn Fs> = Arc::new(SimFs::new());
    write_kind(&fs, CheckpointKind::Full, 1, "base");
    let delta = write_kind(&fs, CheckpointKind::Delta, 2, "d");
    let mut bytes = fs.read_all(&delta).expect("read").to_vec();
    bytes[40] ^= 1;
    fs.remove_file(&delta).expect("remove");
    let f = fs.create(&delta).expect("create");
    f.append(&bytes).expect("append");
    f.sync().expect("sync");
    let err = match Checkpoint::read_chain(&*fs, &dir()) {
        Ok(_) => panic!("damage not detected"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("delta-00000000000000000002.ckpt"), "{err}");
}
