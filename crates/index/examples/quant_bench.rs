//! Recall@10, single-thread QPS and memory of full-precision, SQ8 and PQ-48
//! search on the shared `pypi-minilm-100k` set (100k × 384, cosine).
//!
//! One graph is built (on full vectors, 2 threads) and searched three ways:
//! f32, then SQ8 with rescoring, then PQ (48 subspaces × 256) with
//! rescoring, each at ef = 32, 64, 128 over the 1,000 public queries.
//!
//! ```text
//! cargo run --release -p ruvector-index --example quant_bench
//! ```
//!
//! Environment: `RUVECTOR_DATASET` (data directory), `QUANT_BENCH_CACHE`
//! (snapshot file: loaded if present, written after a build otherwise),
//! `QUANT_BENCH_VECTOR_FILE` (keep full vectors in this file mapping and
//! release them from memory after training, to measure resident memory),
//! `QUANT_BENCH_OVERSAMPLING` (default 4).

use std::time::Instant;

use ruvector_dataset::{read_fvecs, read_ivecs, recall_at_k, shared_minilm_dir};
use ruvector_index::{Hnsw, HnswOptions, HnswParams, Metric, Quantization};

/// `VmRSS`, `RssAnon` and `RssFile` of this process, in MiB.
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    format!("rss {:.0} MiB (anon {:.0}, file {:.0})", field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

fn sweep(name: &str, index: &Hnsw, queries: &ruvector_dataset::Matrix<f32>, truth: &[Vec<u64>]) {
    for ef in [32usize, 64, 128] {
        // One warm-up pass, then the timed pass.
        for q in queries.iter().take(100) {
            let _ = index.search_with_ef(q, 10, ef);
        }
        let start = Instant::now();
        let mut recall = 0.0;
        for (q, t) in queries.iter().zip(truth) {
            let hits = index.search_with_ef(q, 10, ef).expect("valid query");
            let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
            recall += recall_at_k(&ids, t, 10);
        }
        let secs = start.elapsed().as_secs_f64();
        let n = queries.rows() as f64;
        println!("{name:>6} ef={ef:<4} recall@10={:.4} qps={:.0}", recall / n, n / secs);
    }
    println!(
        "{name:>6} vectors {:.1} MiB mapped, codes {:.1} MiB; {}",
        index.vector_bytes() as f64 / 1048576.0,
        index.code_bytes() as f64 / 1048576.0,
        rss()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = shared_minilm_dir().ok_or("data set not found: set RUVECTOR_DATASET")?;
    let queries = read_fvecs(&dir.join("query.fvecs"), None)?;
    let truth: Vec<Vec<u64>> = read_ivecs(&dir.join("groundtruth.ivecs"), None)?
        .iter()
        .map(|r| r.iter().map(|&i| i as u64).collect())
        .collect();
    let vector_file = std::env::var_os("QUANT_BENCH_VECTOR_FILE").map(std::path::PathBuf::from);
    let oversampling = std::env::var("QUANT_BENCH_OVERSAMPLING").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let cache = std::env::var_os("QUANT_BENCH_CACHE").map(std::path::PathBuf::from);

    let index = match cache.as_ref().filter(|p| p.is_file()) {
        Some(path) => {
            let start = Instant::now();
            let index = Hnsw::read_from_with_vector_file(
                std::io::BufReader::new(std::fs::File::open(path)?),
                vector_file.clone(),
            )?;
            println!("loaded {} vectors from {} in {:.1}s", index.len(), path.display(), start.elapsed().as_secs_f64());
            index
        }
        None => {
            let base = read_fvecs(&dir.join("base.fvecs"), None)?;
            let options = HnswOptions {
                capacity: base.rows(),
                quantization: Quantization::Sq8,
                auto_train: false,
                vector_file: vector_file.clone(),
                ..HnswOptions::default()
            };
            let index = Hnsw::with_options(base.dim, Metric::Cosine, HnswParams::default(), options)?;
            let batch: Vec<(u64, &[f32])> = base.iter().enumerate().map(|(i, v)| (i as u64, v)).collect();
            let start = Instant::now();
            index.insert_batch(&batch, 2)?;
            println!("built {} vectors in {:.1}s", index.len(), start.elapsed().as_secs_f64());
            if let Some(path) = &cache {
                index.write_to(std::io::BufWriter::new(std::fs::File::create(path)?))?;
            }
            index
        }
    };
    index.set_oversampling(oversampling)?;
    println!("oversampling {oversampling}; vector file {vector_file:?}; {}", rss());

    index.set_quantization(Quantization::None)?;
    sweep("f32", &index, &queries, &truth);

    for (name, q) in [("sq8", Quantization::Sq8), ("pq48", Quantization::Pq { subspaces: 48, centroids: 256 })] {
        index.set_quantization(q)?;
        let start = Instant::now();
        index.train_quantizer()?;
        println!("{name:>6} trained and encoded in {:.1}s", start.elapsed().as_secs_f64());
        index.release_vector_memory()?;
        println!("{name:>6} after releasing vector memory: {}", rss());
        sweep(name, &index, &queries, &truth);
    }
    Ok(())
}
