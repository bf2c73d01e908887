//! `ruvector bench`: the end-to-end index benchmark.
//!
//! Builds an index from a TEXMEX base file with the given parameters and
//! threads, optionally churns it (deletes a share of the vectors and inserts
//! them again under new ids), then for each `ef` runs every query once on a
//! single thread and reports recall@10 against the ground truth, QPS,
//! latency percentiles, the build time and the process's peak resident
//! memory.
//!
//! With `--engine-dir DIR` the vectors go through the shard engine instead
//! of a bare index — write-ahead log with fsync on every batch of
//! `--batch` vectors — and the restart is measured: a checkpoint, then the
//! time to reopen the engine and answer the first search. `--quantization`
//! (`sq8`, `pq48`, ...) makes searches run on codes with full-precision
//! rescoring, in either mode.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use rand::SeedableRng;
use rand::seq::index::sample;
use ruvector_dataset::{Matrix, brute_force, read_fvecs, read_ivecs, recall_at_k};
use ruvector_engine::{CollectionConfig, Engine, EngineConfig, Point, QuantizationConfig};
use ruvector_index::{Hnsw, HnswOptions, HnswParams, Metric, Neighbor, distance::Kernels};
use serde::Serialize;

/// Arguments of `ruvector bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Base vectors (.fvecs).
    #[arg(long)]
    base: PathBuf,
    /// Query vectors (.fvecs).
    #[arg(long)]
    query: PathBuf,
    /// Ground-truth neighbour rows per query (.ivecs); ignored with --limit,
    /// where the truth for the slice is computed by brute force.
    #[arg(long)]
    groundtruth: Option<PathBuf>,
    /// Distance metric: cosine, euclidean|l2, dotproduct|dot, manhattan|l1.
    #[arg(long, default_value = "cosine")]
    metric: Metric,
    /// HNSW M (layer 0 gets 2·M).
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW efConstruction.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// Threads used to build the index.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Comma-separated ef values to measure.
    #[arg(long, value_delimiter = ',', default_value = "16,32,48,64,96,128,200")]
    ef: Vec<usize>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Use only the first N base vectors.
    #[arg(long)]
    limit: Option<usize>,
    /// Use only the first N queries.
    #[arg(long)]
    queries: Option<usize>,
    /// Delete this share of the vectors after the build and insert them
    /// again under new ids before measuring (0 = no churn).
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Seed for levels and churn sampling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Snapshot file: load the index from it when it exists (skipping the
    /// build), else build and save it there. Speeds up search-only runs.
    #[arg(long)]
    index_cache: Option<PathBuf>,
    /// Print one JSON object per ef instead of a table.
    #[arg(long)]
    json: bool,
    /// Quantization searches run on: none, sq8, or pqS (S subspaces, e.g. pq48).
    #[arg(long, default_value = "none", value_parser = parse_quantization)]
    quantization: QuantizationConfig,
    /// Full vectors rescored per result when quantized (index default when absent).
    #[arg(long)]
    oversampling: Option<usize>,
    /// Ingest through the engine (WAL, fsync always) into this new data
    /// directory, and measure the restart.
    #[arg(long)]
    engine_dir: Option<PathBuf>,
    /// Vectors per upsert batch with --engine-dir.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

fn parse_quantization(s: &str) -> Result<QuantizationConfig, String> {
    match s {
        "none" => Ok(QuantizationConfig::None),
        "sq8" => Ok(QuantizationConfig::Sq8),
        _ => s
            .strip_prefix("pq")
            .and_then(|n| n.parse().ok())
            .map(|subspaces| QuantizationConfig::Pq { subspaces, centroids: 256 })
            .ok_or_else(|| format!("expected none, sq8 or pqS (e.g. pq48), got {s:?}")),
    }
}

/// One measured row.
#[derive(Debug, Serialize)]
struct Row {
    ef: usize,
    recall_at_10: f64,
    qps: f64,
    p50_us: f64,
    p99_us: f64,
    build_seconds: f64,
    /// Seconds from reopening the engine to the first search result
    /// (engine mode only).
    restart_seconds: Option<f64>,
    mode: &'static str,
    quantization: String,
    churn: f64,
    churn_seconds: f64,
    peak_rss_mib: f64,
    index_mib: f64,
    n: usize,
    queries: usize,
    m: usize,
    ef_construction: usize,
    threads: usize,
    isa: String,
}

/// Peak resident set size of this process in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Runs the benchmark and prints the results.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&args.churn) {
        bail!("--churn must be in [0, 1), got {}", args.churn);
    }
    if args.k == 0 || args.ef.is_empty() {
        bail!("--k and --ef must be positive");
    }
    let base = read_fvecs(&args.base, args.limit)?;
    let queries = read_fvecs(&args.query, args.queries)?;
    if base.dim != queries.dim {
        bail!("base has dimension {}, queries {}", base.dim, queries.dim);
    }
    let n = base.rows();
    let truth = ground_truth(args, &base, &queries)?;

    let params =
        HnswParams { m: args.m, ef_construction: args.ef_construction, ef_search: args.ef[0], seed: args.seed };
    let meta = Meta { n, build_seconds: f64::NAN, restart_seconds: None, churn_seconds: 0.0, index_mib: f64::NAN };
    if let Some(dir) = &args.engine_dir {
        if args.churn > 0.0 || args.index_cache.is_some() {
            bail!("--engine-dir cannot be combined with --churn or --index-cache");
        }
        return run_engine(args, dir, &base, &queries, &truth, meta);
    }
    let (index, build_seconds) = match &args.index_cache {
        Some(path) if path.exists() => {
            let started = Instant::now();
            let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
            let index = Hnsw::read_from(std::io::BufReader::with_capacity(1 << 20, file))?;
            let seconds = started.elapsed().as_secs_f64();
            eprintln!("loaded {} in {seconds:.2} s (build time not measured)", path.display());
            (index, f64::NAN)
        }
        _ => {
            let options = HnswOptions {
                capacity: n,
                quantization: args.quantization.into(),
                oversampling: args.oversampling.unwrap_or(HnswOptions::default().oversampling),
                ..HnswOptions::default()
            };
            let index = Hnsw::with_options(base.dim, args.metric, params, options)?;
            let batch: Vec<(u64, &[f32])> = base.iter().enumerate().map(|(i, v)| (i as u64, v)).collect();
            let started = Instant::now();
            index.insert_batch(&batch, args.threads)?;
            let build_seconds = started.elapsed().as_secs_f64();
            eprintln!("built {n} vectors in {build_seconds:.2} s with {} threads", args.threads);
            if let Some(path) = &args.index_cache {
                let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                index.write_to(&mut out)?;
            }
            (index, build_seconds)
        }
    };

    let churn_seconds = churn(args, &index, &base)?;
    let meta =
        Meta { build_seconds, churn_seconds, index_mib: index.memory_bytes() as f64 / (1024.0 * 1024.0), ..meta };
    let rows = sweep(args, &queries, &truth, &meta, "index", |q, k, ef| Ok(index.search_with_ef(q, k, ef)?))?;
    print_rows(&rows, args.json)
}

/// Facts about the run shared by every row.
#[derive(Debug, Clone, Copy)]
struct Meta {
    n: usize,
    build_seconds: f64,
    restart_seconds: Option<f64>,
    churn_seconds: f64,
    index_mib: f64,
}

/// Runs every query once per `ef` on this thread through `search`.
fn sweep(
    args: &BenchArgs,
    queries: &Matrix<f32>,
    truth: &[Vec<u64>],
    meta: &Meta,
    mode: &'static str,
    search: impl Fn(&[f32], usize, usize) -> anyhow::Result<Vec<Neighbor>>,
) -> anyhow::Result<Vec<Row>> {
    let n = meta.n as u64;
    let mut rows = Vec::new();
    for &ef in &args.ef {
        let mut latencies = Vec::with_capacity(queries.rows());
        // Warm-up: touch the caches and the scratch pool.
        for q in queries.iter().take(50) {
            search(q, args.k, ef)?;
        }
        let mut recall = 0.0;
        let started = Instant::now();
        for (qi, q) in queries.iter().enumerate() {
            let t = Instant::now();
            let hits = search(q, args.k, ef)?;
            latencies.push(t.elapsed());
            // Churned vectors come back under id + n; map them to their row.
            let found: Vec<u64> = hits.iter().map(|h| h.id % n).collect();
            recall += recall_at_k(&found, &truth[qi], 10.min(args.k));
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        rows.push(Row {
            ef,
            recall_at_10: recall / queries.rows() as f64,
            qps: queries.rows() as f64 / elapsed,
            p50_us: percentile(&latencies, 0.5),
            p99_us: percentile(&latencies, 0.99),
            build_seconds: meta.build_seconds,
            restart_seconds: meta.restart_seconds,
            mode,
            quantization: format!("{:?}", args.quantization),
            churn: args.churn,
            churn_seconds: meta.churn_seconds,
            peak_rss_mib: peak_rss_mib(),
            index_mib: meta.index_mib,
            n: meta.n,
            queries: queries.rows(),
            m: args.m,
            ef_construction: args.ef_construction,
            threads: args.threads,
            isa: format!("{:?}", Kernels::get().isa),
        });
    }
    Ok(rows)
}

/// Engine mode: ingest in batches through the WAL, checkpoint, reopen, then
/// sweep through the reopened engine.
fn run_engine(
    args: &BenchArgs,
    dir: &std::path::Path,
    base: &Matrix<f32>,
    queries: &Matrix<f32>,
    truth: &[Vec<u64>],
    meta: Meta,
) -> anyhow::Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("--engine-dir {} must be new or empty", dir.display());
    }
    let mut config = EngineConfig::new(dir);
    config.insert_threads = args.threads;
    let collection = CollectionConfig {
        m: args.m,
        ef_construction: args.ef_construction,
        quantization: args.quantization,
        ..CollectionConfig::new(base.dim, args.metric)
    };
    let engine = Engine::open(config.clone())?;
    engine.create_collection("bench", collection)?;
    let started = Instant::now();
    for (b, rows) in (0..base.rows()).collect::<Vec<_>>().chunks(args.batch.max(1)).enumerate() {
        let points = rows
            .iter()
            .map(|&r| Point { id: r as u64, vector: base.row(r).to_vec(), payload: None, version: 0 })
            .collect();
        engine.upsert("bench", points).with_context(|| format!("batch {b}"))?;
    }
    let build_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {} vectors through the engine in {build_seconds:.2} s ({:.0} vectors/s, batches of {})",
        base.rows(),
        base.rows() as f64 / build_seconds,
        args.batch
    );
    let started = Instant::now();
    engine.checkpoint()?;
    eprintln!("checkpoint in {:.2} s", started.elapsed().as_secs_f64());
    drop(engine);

    let started = Instant::now();
    let engine = Engine::open(config)?;
    let first = engine.search("bench", queries.row(0), args.k, Some(args.ef[0]))?;
    let restart_seconds = started.elapsed().as_secs_f64();
    eprintln!("reopened and answered the first search ({} hits) in {restart_seconds:.3} s", first.len());
    let info = engine.collection("bench")?;
    let meta = Meta {
        build_seconds,
        restart_seconds: Some(restart_seconds),
        index_mib: info.memory_bytes as f64 / (1024.0 * 1024.0),
        ..meta
    };
    let rows = sweep(args, queries, truth, &meta, "engine", |q, k, ef| Ok(engine.search("bench", q, k, Some(ef))?))?;
    print_rows(&rows, args.json)
}

/// Ground truth as base row ids per query: from the file, or by brute force
/// over the slice when `--limit` is given (or no file is).
fn ground_truth(args: &BenchArgs, base: &Matrix<f32>, queries: &Matrix<f32>) -> anyhow::Result<Vec<Vec<u64>>> {
    match (&args.groundtruth, args.limit) {
        (Some(path), None) => {
            let gt = read_ivecs(path, Some(queries.rows()))?;
            if gt.rows() < queries.rows() {
                bail!("{} has {} rows for {} queries", path.display(), gt.rows(), queries.rows());
            }
            gt.iter()
                .map(|row| row.iter().map(|&i| u64::try_from(i).context("negative id in ground truth")).collect())
                .collect()
        }
        _ => {
            eprintln!("computing exact ground truth for {} queries by brute force", queries.rows());
            let metric = args.metric;
            Ok(brute_force(base, queries, 10.max(args.k), |a, b| metric.distance(a, b)))
        }
    }
}

/// Deletes `churn × n` random vectors, then inserts them again as new ids
/// (`row + n`); returns the seconds it took.
fn churn(args: &BenchArgs, index: &Hnsw, base: &Matrix<f32>) -> anyhow::Result<f64> {
    let n = base.rows();
    let count = (args.churn * n as f64).round() as usize;
    if count == 0 {
        return Ok(0.0);
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(args.seed);
    let rows: Vec<usize> = sample(&mut rng, n, count).into_vec();
    let started = Instant::now();
    for &row in &rows {
        index.delete(row as u64);
    }
    let again: Vec<(u64, &[f32])> = rows.iter().map(|&r| ((r + n) as u64, base.row(r))).collect();
    index.insert_batch(&again, args.threads)?;
    index.repair_deletes();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("churned {count} vectors (delete + reinsert) in {seconds:.2} s");
    Ok(seconds)
}

fn print_rows(rows: &[Row], json: bool) -> anyhow::Result<()> {
    if json {
        for row in rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    if let Some(first) = rows.first() {
        println!(
            "mode={} quantization={} n={} queries={} M={} efC={} threads={} isa={} build={:.2}s restart={} churn={} ({:.2}s) index={:.1}MiB",
            first.mode,
            first.quantization,
            first.n,
            first.queries,
            first.m,
            first.ef_construction,
            first.threads,
            first.isa,
            first.build_seconds,
            first.restart_seconds.map_or("-".to_owned(), |s| format!("{s:.3}s")),
            first.churn,
            first.churn_seconds,
            first.index_mib
        );
    }
    println!("{:>6} {:>10} {:>10} {:>10} {:>10} {:>12}", "ef", "recall@10", "QPS", "p50 µs", "p99 µs", "peak MiB");
    for r in rows {
        println!(
            "{:>6} {:>10.4} {:>10.0} {:>10.1} {:>10.1} {:>12.1}",
            r.ef, r.recall_at_10, r.qps, r.p50_us, r.p99_us, r.peak_rss_mib
        );
    }
    Ok(())
}
