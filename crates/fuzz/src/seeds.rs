//! Seed inputs for every target, produced by the code itself: WAL
//! segments written by `Wal::append`, checkpoints written by the engine,
//! index snapshots and deltas written by `Hnsw`, and real request bodies.
//! `make-corpus` writes them to `fuzz/corpus/<target>/seed-*`; the corpus
//! replay test checks that the current code still produces inputs that
//! pass.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ruvector_engine::{CollectionConfig, Engine, EngineConfig, Metric, PayloadIndexKind, Point};
use ruvector_index::{Hnsw, HnswOptions, HnswParams, Quantization};
use ruvector_storage::{Checkpoint, Fs, SimFs, Wal, WalOptions, WalPoint, WalRecord};

use crate::Target;
use crate::checkpoint::{Chain, Sections, TAGS};

/// A seed: its file name (without the `seed-` prefix) and bytes.
pub type Seed = (String, Vec<u8>);

/// The seeds of `target`.
pub fn seeds(target: Target) -> Vec<Seed> {
    match target {
        Target::WalSegment => wal_segment(),
        Target::WalRecords => wal_records(),
        Target::Checkpoint => checkpoint(),
        Target::IndexSnapshot => index_snapshot(),
        Target::Filter => filter(),
        Target::RequestJson => request_json(),
    }
}

/// A small deterministic vector.
fn vector(id: u64, dim: usize) -> Vec<f32> {
    (0..dim).map(|i| ((id * 31 + i as u64 * 7) % 17) as f32 / 4.0 - 2.0).collect()
}

fn sample_records() -> Vec<WalRecord> {
    let points = |versioned: bool| {
        (1..=3)
            .map(|id| WalPoint {
                id,
                vector: vector(id, 4),
                payload: (id != 2).then(|| format!("{{\"lang\":\"en\",\"n\":{id}}}").into_bytes()),
                version: if versioned { 100 + id } else { 0 },
            })
            .collect()
    };
    vec![
        WalRecord::CreateCollection { name: "docs".into(), config: br#"{"dimension":4,"metric":"cosine"}"#.to_vec() },
        WalRecord::Upsert { collection: "docs".into(), points: points(false) },
        WalRecord::Upsert { collection: "docs".into(), points: points(true) },
        WalRecord::Delete { collection: "docs".into(), ids: vec![2, 9], versions: Vec::new() },
        WalRecord::Delete { collection: "docs".into(), ids: vec![3], versions: vec![200] },
        WalRecord::PurgeTombstones { collection: "docs".into(), ids: vec![3] },
        WalRecord::PayloadIndexes { collection: "docs".into(), declared: br#"{"lang":"keyword"}"#.to_vec() },
        WalRecord::DropCollection { name: "docs".into() },
    ]
}

/// The segment files of a log holding `records`, in LSN order.
fn segments(records: &[WalRecord], segment_size: u64) -> Vec<Vec<u8>> {
    let sim = Arc::new(SimFs::new());
    let fs: Arc<dyn Fs> = sim.clone();
    let options = WalOptions { segment_size, ..WalOptions::default() };
    let (wal, _) = Wal::open(Arc::clone(&fs), "/wal", options, 0, |_, _| Ok(())).expect("open on SimFs");
    for r in records {
        wal.append(r).expect("append on SimFs");
    }
    drop(wal);
    let mut names = fs.list_dir(Path::new("/wal")).expect("list on SimFs");
    names.sort();
    names.iter().map(|n| fs.read(&Path::new("/wal").join(n)).expect("read on SimFs")).collect()
}

fn wal_segment() -> Vec<Seed> {
    let records = sample_records();
    let whole = segments(&records, 64 << 20).remove(0);
    let mut out = vec![
        ("all-records".to_owned(), [&[0u8, 0, 0][..], &whole].concat()),
        ("all-records-fixup".to_owned(), [&[1u8, 0, 0][..], &whole].concat()),
        ("replay-from-3".to_owned(), [&[0u8, 0, 3][..], &whole].concat()),
        ("torn-tail".to_owned(), [&[0u8, 0, 0][..], &whole[..whole.len() - 5]].concat()),
    ];
    // Two segments: the second named by the LSN after the first's frames.
    let segs = segments(&records, 128);
    if segs.len() >= 2 {
        let at = segs[0].len() as u16;
        let frames_in_first = count_frames(&segs[0]);
        let mut input = vec![2u8, 0, 0];
        input.extend_from_slice(&at.to_le_bytes());
        input.push(frames_in_first);
        input.extend_from_slice(&segs[0]);
        input.extend_from_slice(&segs[1]);
        out.push(("two-segments".to_owned(), input));
    }
    out
}

fn count_frames(seg: &[u8]) -> u8 {
    let (mut off, mut n) = (0usize, 0u8);
    while seg.len() - off >= 8 {
        let len = u32::from_le_bytes([seg[off], seg[off + 1], seg[off + 2], seg[off + 3]]) as usize;
        off += 8 + len;
        n += 1;
    }
    n
}

fn wal_records() -> Vec<Seed> {
    // segment size | always | torn seed | records (kind byte first).
    let head = |size: u16, always: bool| {
        let mut h = size.to_le_bytes().to_vec();
        h.push(u8::from(always));
        h.extend_from_slice(&7u64.to_le_bytes());
        h
    };
    let upsert = [
        &[2u8][..],
        &[4, 0],
        b"docs",
        &[2, 0],
        &[1],
        &1u64.to_le_bytes(),
        &[2, 0],
        &1.5f32.to_le_bytes(),
        &(-0.0f32).to_le_bytes(),
        &[1],
        &[2, 0],
        b"{}",
        &9u64.to_le_bytes(),
        &5u64.to_le_bytes(),
        &[1, 0],
        &f32::NAN.to_le_bytes(),
        &[0],
        &10u64.to_le_bytes(),
    ]
    .concat();
    let create = [&[0u8][..], &[4, 0], b"docs", &[6, 0], b"{\"d\":4}"].concat();
    let delete = [&[4u8][..], &[1, 0], b"d", &[1, 0], &3u64.to_le_bytes(), &4u64.to_le_bytes()].concat();
    vec![
        ("always".to_owned(), [head(4000, true), create.clone(), upsert.clone(), delete.clone()].concat()),
        ("interval-small-segments".to_owned(), [head(0, false), create, upsert.clone(), delete, upsert].concat()),
    ]
}

/// A collection's checkpoint files after some writes, read back.
fn engine_checkpoints(quantization: bool) -> Vec<Checkpoint> {
    let sim = Arc::new(SimFs::new());
    let fs: Arc<dyn Fs> = sim.clone();
    let config = EngineConfig { insert_threads: 1, bulk_threads: 1, ..EngineConfig::new("/data") };
    let engine = Engine::open_with_fs(config, Arc::clone(&fs)).expect("open on SimFs");
    let mut collection = CollectionConfig::new(4, Metric::Euclidean);
    if quantization {
        collection.quantization = ruvector_engine::QuantizationConfig::Sq8;
    }
    let declared = BTreeMap::from([("lang".to_owned(), PayloadIndexKind::Keyword)]);
    engine.create_collection_with("c", collection, &declared).expect("create");
    let point = |id: u64, version: u64| Point {
        id,
        vector: vector(id, 4),
        payload: Some(
            format!("{{\"lang\":\"{}\",\"year\":{}}}", ["en", "de"][id as usize % 2], 2000 + id).into_bytes(),
        ),
        version,
    };
    engine.upsert("c", (1..=24).map(|id| point(id, 0)).collect()).expect("upsert");
    engine.maintain_fully().expect("maintain");
    engine.checkpoint().expect("checkpoint");
    engine.upsert("c", (20..=30).map(|id| point(id, 50 + id)).collect()).expect("upsert");
    engine.delete("c", 3).expect("delete");
    engine.delete_versioned("c", 4, 500).expect("delete");
    engine.declare_payload_index("c", "year", PayloadIndexKind::Integer).expect("declare");
    engine.maintain_fully().expect("maintain");
    engine.checkpoint().expect("checkpoint");
    drop(engine);
    let dir = Path::new("/data/collections/c");
    let (full, deltas) = Checkpoint::read_chain(fs.as_ref(), dir).expect("read").expect("a chain");
    std::iter::once(full).chain(deltas).collect()
}

fn sections(c: &Checkpoint) -> Sections {
    c.sections()
        .map(|(tag, bytes)| {
            let i = TAGS.iter().position(|t| *t == tag).expect("an engine section tag") as u8;
            (i, bytes.to_vec())
        })
        .collect()
}

fn checkpoint() -> Vec<Seed> {
    let mut out = Vec::new();
    for quantization in [false, true] {
        let files = engine_checkpoints(quantization);
        let q = if quantization { "-sq8" } else { "" };
        for (i, f) in files.iter().enumerate() {
            let bytes = rebuild_file(f);
            out.push((format!("raw-{i}{q}"), [&[0u8][..], &bytes].concat()));
        }
        let chain = Chain {
            lsn: files[0].lsn() as u8,
            full: sections(&files[0]),
            deltas: files[1..].iter().map(sections).collect(),
        };
        out.push((format!("chain{q}"), chain.encode()));
    }
    out
}

/// The bytes of a checkpoint file as written (rewritten from its sections
/// on a fresh disk: the same layout the writer produced).
fn rebuild_file(c: &Checkpoint) -> Vec<u8> {
    let fs: Arc<dyn Fs> = Arc::new(SimFs::new());
    let mut w = ruvector_storage::CheckpointWriter::create(Arc::clone(&fs), "/x", c.lsn()).expect("create");
    for (tag, bytes) in c.sections() {
        w.add_section(tag, bytes).expect("section");
    }
    let (path, _) = w.commit().expect("commit");
    fs.read(&path).expect("read")
}

fn index_snapshot() -> Vec<Seed> {
    let mut out = Vec::new();
    let configs = [
        ("plain", Metric::Euclidean, Quantization::None),
        ("cosine-sq8", Metric::Cosine, Quantization::Sq8),
        ("dot-pq", Metric::DotProduct, Quantization::Pq { subspaces: 2, centroids: 256 }),
    ];
    for (name, metric, quantization) in configs {
        let options = HnswOptions { quantization, training_size: 40, ..HnswOptions::default() };
        let params = HnswParams { m: 4, ef_construction: 16, ef_search: 16, seed: 7 };
        let index = Hnsw::with_options(4, metric, params, options).expect("index");
        for id in 1..=48 {
            index.insert(id, &vector(id, 4)).expect("insert");
        }
        index.delete(5);
        let mut base = Vec::new();
        index.write_to(&mut base).expect("write");
        for id in 49..=56 {
            index.insert(id, &vector(id, 4)).expect("insert");
        }
        index.delete(7);
        let mut delta = Vec::new();
        index.write_delta(&mut delta).expect("delta");
        out.push((name.to_owned(), crate::index::encode(0, &base, &[])));
        out.push((format!("{name}-delta"), crate::index::encode(0, &base, &delta)));
    }
    out
}

fn filter() -> Vec<Seed> {
    let filters = [
        ("empty", r#"{}"#),
        ("eq", r#"{"must":[{"key":"lang","eq":"en"}]}"#),
        ("range", r#"{"must":[{"key":"year","range":{"gte":2020,"lt":2024}}]}"#),
        ("must-not-in", r#"{"must_not":[{"key":"tag","in":["draft","spam"]}]}"#),
        ("should", r#"{"should":[{"key":"a.b","eq":1},{"key":"a.b","eq":true},{"has_id":[1,2,3]}]}"#),
        ("empty-null", r#"{"must":[{"key":"note","is_empty":true}],"must_not":[{"key":"x","is_null":true}]}"#),
        ("numbers", r#"{"must":[{"key":"n","in":[1,1.0,-0.0,18446744073709551615,-9223372036854775808,1e300]}]}"#),
        ("bad-operator", r#"{"must":[{"key":"year","gt":3}]}"#),
        ("bad-range", r#"{"must":[{"key":"year","range":{}}]}"#),
    ];
    filters.iter().map(|(n, f)| (n.to_string(), f.as_bytes().to_vec())).collect()
}

fn request_json() -> Vec<Seed> {
    use crate::request::encode;
    let bodies: [(&str, &str, &str); 14] = [
        ("create", "create_collection", r#"{"name":"docs","dimension":4,"metric":"cosine"}"#),
        (
            "create-pq",
            "create_collection",
            r#"{"name":"d-2","dimension":8,"metric":"l2","m":8,"ef_construction":64,"ef_search":32,"quantization":{"type":"pq","subspaces":4},"oversampling":2,"payload_indexes":{"lang":"keyword","year":"integer"}}"#,
        ),
        ("create-sq8", "create_collection", r#"{"name":"s","dimension":3,"quantization":{"type":"sq8"}}"#),
        (
            "upsert",
            "upsert",
            r#"{"vectors":[{"id":1,"vector":[0.1,0.2,0.3,0.4],"payload":{"lang":"en"}},{"id":2,"vector":[1,2,3,4],"version":7}]}"#,
        ),
        ("bad-upsert-component", "upsert", r#"{"vectors":[{"id":1,"vector":[1e39,0,0,0]}]}"#),
        ("search", "search", r#"{"vector":[0.1,0.2,0.3,0.4],"k":5,"ef":64}"#),
        (
            "search-filter",
            "search",
            r#"{"vector":[1,0,0,0],"k":3,"filter":{"must":[{"key":"lang","eq":"en"}]},"with_payload":true,"with_vector":true}"#,
        ),
        ("search-batch", "search_batch", r#"{"searches":[{"vector":[1,0,0,0],"k":2},{"vector":[0,1,0,0]}]}"#),
        ("payload-index", "payload_index", r#"{"key":"lang","type":"keyword"}"#),
        ("count", "count", r#"{"filter":{"must":[{"key":"year","range":{"gt":2000}}]}}"#),
        ("delete-by-filter", "delete_by_filter", r#"{"filter":{"must":[{"has_id":[1,2]}]}}"#),
        ("purge", "purge", r#"{"before":100,"partitions":[0,1]}"#),
        ("assignment", "assignment", r#"{"placement":"p","epoch":1,"planner":1,"collections":[]}"#),
        ("partition-state", "partition_state", r#"{"collection":"docs","state":"ready","partitions":[]}"#),
    ];
    bodies.iter().map(|(n, route, body)| (n.to_string(), encode(route, 3, 0, body.as_bytes()))).collect()
}
