//! WAL append throughput: upsert batches of 1,000 × 384-d vectors (≈1.5 MB
//! per record) with `FsyncPolicy::Always` on the real filesystem, from one
//! appender and from four concurrent appenders (group commit); and loading a
//! 160 MB checkpoint (the size of a 100k × 384 collection) warm-cache.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use ruvector_storage::{Checkpoint, CheckpointWriter, FsyncPolicy, RealFs, Wal, WalOptions, WalPoint, WalRecord};

const BATCH: usize = 1_000;
const DIM: usize = 384;

fn batch(seed: u64) -> WalRecord {
    let mut rng = SmallRng::seed_from_u64(seed);
    let points = (0..BATCH)
        .map(|i| WalPoint {
            id: i as u64,
            vector: (0..DIM).map(|_| rng.random::<f32>()).collect(),
            payload: None,
            version: 0,
        })
        .collect();
    WalRecord::Upsert { collection: "bench".into(), points }
}

fn open(dir: &std::path::Path) -> Wal {
    let options = WalOptions { fsync: FsyncPolicy::Always, ..WalOptions::default() };
    let (wal, _) = Wal::open(Arc::new(RealFs), dir, options, 0, |_, _| Ok(())).expect("open WAL");
    wal
}

fn append(c: &mut Criterion) {
    let record = batch(1);
    let bytes = record.encoded_len() as u64;
    let mut group = c.benchmark_group("wal_append_1000x384");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("one_appender", |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = open(dir.path());
        b.iter(|| wal.append(&record).expect("append"));
    });

    group.throughput(Throughput::Bytes(bytes * 4));
    group.bench_function("four_appenders", |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = open(dir.path());
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| wal.append(&record).expect("append"));
                }
            });
        });
    });
    group.finish();
}

fn checkpoint_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = vec![0x5Au8; 160 << 20];
    let mut w = CheckpointWriter::create(Arc::new(RealFs), dir.path(), 1).expect("create");
    w.add_section("config", b"{}").expect("config");
    w.add_section("index", &index).expect("index");
    w.commit().expect("commit");
    drop(index);
    let mut group = c.benchmark_group("checkpoint_load");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(160 << 20));
    group.bench_function("160MB", |b| {
        b.iter(|| {
            let ckpt = Checkpoint::read_latest(&RealFs, dir.path()).expect("read").expect("present");
            ckpt.section("index").map(<[u8]>::len)
        });
    });
    group.finish();
}

criterion_group!(benches, append, checkpoint_load);
criterion_main!(benches);
