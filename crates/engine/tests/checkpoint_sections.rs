//! A checkpoint whose sections each pass their own checks but disagree
//! with each other is refused at open, naming the file (found by the
//! `checkpoint` fuzz target: an index section of another dimension than
//! the config section loaded, and every search then failed).

use std::path::Path;
use std::sync::Arc;

use ruvector_engine::{CollectionConfig, Engine, EngineConfig, EngineError, Metric};
use ruvector_index::{Hnsw, HnswParams};
use ruvector_storage::{Checkpoint, CheckpointWriter, Fs, SimFs};

fn open(fs: &Arc<dyn Fs>) -> Result<Engine, EngineError> {
    Engine::open_with_fs(
        EngineConfig { insert_threads: 1, bulk_threads: 1, ..EngineConfig::new("/data") },
        Arc::clone(fs),
    )
}

/// Rewrites the full checkpoint of collection `c` with its `index` section
/// replaced by an empty index of `dim` and `metric`.
fn replace_index(fs: &Arc<dyn Fs>, dim: usize, metric: Metric) -> std::path::PathBuf {
    let dir = Path::new("/data/collections/c");
    let full = Checkpoint::read_latest(fs.as_ref(), dir).expect("read").expect("a full checkpoint");
    let mut index = Vec::new();
    Hnsw::new(dim, metric, HnswParams::default()).expect("index").write_to(&mut index).expect("write");
    let mut w = CheckpointWriter::create(Arc::clone(fs), dir, full.lsn()).expect("writer");
    for (tag, bytes) in full.sections() {
        w.add_section(tag, if tag == "index" { &index } else { bytes }).expect("section");
    }
    w.commit().expect("commit").0
}

#[test]
fn an_index_section_that_disagrees_with_the_config_is_refused() {
    for (dim, metric) in [(3, Metric::Euclidean), (4, Metric::Cosine)] {
        let fs: Arc<dyn Fs> = Arc::new(SimFs::new());
        let engine = open(&fs).expect("open");
        engine.create_collection("c", CollectionConfig::new(4, Metric::Euclidean)).expect("create");
        drop(engine);
        assert!(open(&fs).is_ok(), "the untouched checkpoint loads");
        let path = replace_index(&fs, dim, metric);
        let Err(err) = open(&fs) else { panic!("a mismatched index section must be refused") };
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("config section"), "{message}");
    }
}
