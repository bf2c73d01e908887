//! The `checkpoint` target: checkpoint files through the storage reader
//! (raw bytes, every checksum as found) and through the engine's loader
//! (sections written behind valid checksums, so the fuzzer reaches the
//! decoders of `config`, `payloads`, `versions`, `index` and their deltas).

use std::path::Path;
use std::sync::Arc;

use ruvector_engine::{Engine, EngineConfig, EngineError};
use ruvector_storage::{Checkpoint, CheckpointKind, CheckpointWriter, Fs, SimFs, StorageError};

use crate::{Bytes, Outcome};

/// The section tags the engine reads.
pub const TAGS: [&str; 7] = ["config", "payloads", "index", "versions", "pdelta", "idelta", "vdelta"];

const DATA: &str = "/data";
const COLLECTION: &str = "c";

/// One checkpoint file as sections: `(index into TAGS, bytes)`.
pub type Sections = Vec<(u8, Vec<u8>)>;

/// The structured input: a collection's full checkpoint and its deltas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// LSN of the full checkpoint (deltas follow at the next LSNs).
    pub lsn: u8,
    /// The full checkpoint's sections.
    pub full: Sections,
    /// Each delta's sections, oldest first.
    pub deltas: Vec<Sections>,
}

fn read_sections(b: &mut Bytes<'_>) -> Sections {
    let n = b.u8() % 8;
    (0..n)
        .map(|_| {
            let tag = b.u8() % TAGS.len() as u8;
            let len = b.u32() as usize;
            (tag, b.take(len).to_vec())
        })
        .collect()
}

fn put_sections(out: &mut Vec<u8>, sections: &Sections) {
    out.push(sections.len() as u8);
    for (tag, bytes) in sections {
        out.push(*tag);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
}

impl Chain {
    /// Reads a chain from the input (after the mode byte).
    pub fn parse(b: &mut Bytes<'_>) -> Chain {
        let lsn = b.u8();
        let full = read_sections(b);
        let n = b.u8() % 3;
        let deltas = (0..n).map(|_| read_sections(b)).collect();
        Chain { lsn, full, deltas }
    }

    /// The input bytes [`Chain::parse`] reads back as `self`, mode byte
    /// included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1, self.lsn];
        put_sections(&mut out, &self.full);
        out.push(self.deltas.len() as u8);
        for d in &self.deltas {
            put_sections(&mut out, d);
        }
        out
    }
}

fn write(fs: &Arc<dyn Fs>, dir: &Path, kind: CheckpointKind, lsn: u64, sections: &Sections) -> bool {
    let mut w = CheckpointWriter::create_kind(Arc::clone(fs), dir, kind, lsn).expect("create a checkpoint on SimFs");
    for (tag, bytes) in sections {
        match w.add_section(TAGS[*tag as usize], bytes) {
            Ok(()) => {}
            // The writer refuses a repeated tag: such a file cannot be written.
            Err(StorageError::DuplicateSection { .. }) => return false,
            Err(e) => panic!("adding a section on SimFs: {e}"),
        }
    }
    w.commit().expect("commit a checkpoint on SimFs");
    true
}

/// `checkpoint`: `mode | ...`; mode 0: a raw checkpoint file; mode 1: a
/// [`Chain`] loaded by the engine.
pub(crate) fn check(data: &[u8]) -> Outcome {
    let mut b = Bytes::new(data);
    if b.u8().is_multiple_of(2) { check_raw(b.rest()) } else { check_chain(&Chain::parse(&mut b)) }
}

fn check_raw(file: &[u8]) -> Outcome {
    let sim = Arc::new(SimFs::new());
    let fs: Arc<dyn Fs> = sim.clone();
    let dir = Path::new("/raw");
    fs.create_dir_all(dir).expect("mkdir on SimFs");
    let path = dir.join("input.ckpt");
    let handle = fs.create(&path).expect("create on SimFs");
    handle.append(file).expect("append on SimFs");
    let read = match Checkpoint::read(fs.as_ref(), &path) {
        Ok(read) => read,
        Err(e) => {
            assert!(
                matches!(e, StorageError::Corrupt { .. } | StorageError::UnsupportedVersion { .. }),
                "a damaged checkpoint must be reported as damage, got: {e}"
            );
            assert!(e.to_string().contains("input.ckpt"), "the error must name the file: {e}");
            return Outcome::Refused;
        }
    };
    // What was read writes back to a file that reads the same.
    let sections: Vec<(String, Vec<u8>)> = read.sections().map(|(t, s)| (t.to_owned(), s.to_vec())).collect();
    for (_, s) in read.sections() {
        assert_eq!(s.as_ptr() as usize % 8, 0, "sections are 8-byte aligned");
    }
    let out = Path::new("/rewritten");
    let mut w = CheckpointWriter::create(Arc::clone(&fs), out, read.lsn()).expect("create on SimFs");
    for (tag, bytes) in &sections {
        w.add_section(tag, bytes).expect("a tag that was read is a valid tag");
    }
    let (path, _) = w.commit().expect("commit on SimFs");
    let again = Checkpoint::read(fs.as_ref(), &path).expect("a rewritten checkpoint reads");
    assert_eq!(again.lsn(), read.lsn());
    let again: Vec<(String, Vec<u8>)> = again.sections().map(|(t, s)| (t.to_owned(), s.to_vec())).collect();
    assert_eq!(again, sections, "sections changed in a rewrite");
    Outcome::Accepted
}

fn check_chain(chain: &Chain) -> Outcome {
    let sim = Arc::new(SimFs::new());
    let fs: Arc<dyn Fs> = sim.clone();
    let dir = Path::new(DATA).join("collections").join(COLLECTION);
    fs.create_dir_all(&dir).expect("mkdir on SimFs");
    let lsn = u64::from(chain.lsn);
    if !write(&fs, &dir, CheckpointKind::Full, lsn, &chain.full) {
        return Outcome::Refused;
    }
    for (i, delta) in chain.deltas.iter().enumerate() {
        if !write(&fs, &dir, CheckpointKind::Delta, lsn + 1 + i as u64, delta) {
            return Outcome::Refused;
        }
    }
    let config = EngineConfig { insert_threads: 1, bulk_threads: 1, ..EngineConfig::new(DATA) };
    let engine = match Engine::open_with_fs(config, Arc::clone(&fs)) {
        Ok(engine) => engine,
        Err(e) => {
            assert!(
                matches!(
                    e,
                    EngineError::Failed(_)
                        | EngineError::Storage(StorageError::Corrupt { .. } | StorageError::UnsupportedVersion { .. })
                ),
                "a damaged checkpoint must be reported as damage, got: {e}"
            );
            assert!(e.to_string().contains("/data/collections/c/"), "the error must name the file: {e}");
            return Outcome::Refused;
        }
    };
    // A loaded collection answers every read.
    let Ok(info) = engine.collection(COLLECTION) else { return Outcome::Refused };
    let dim = info.config.dimension;
    let ids = engine.ids(COLLECTION, None, 64).expect("ids of a loaded collection");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids must ascend");
    for &id in &ids {
        let point = engine.get(COLLECTION, id).expect("get").expect("a listed id is present");
        assert_eq!(point.vector.len(), dim);
    }
    let query: Vec<f32> = (0..dim).map(|i| 1.0 + i as f32).collect();
    let hits = engine.search(COLLECTION, &query, 10, None).expect("search of a loaded collection");
    assert!(hits.len() <= info.size.min(10), "{} hits from {} vectors", hits.len(), info.size);
    Outcome::Accepted
}
