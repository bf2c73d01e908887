//! `ruvector`: the command-line entry point. Parses arguments and hands off
//! to one module per subcommand; no business logic lives here.

mod bench;
mod check;
mod cluster;
mod config;
mod import;
mod logging;
mod probe;
mod router;
mod serve;
mod soak;
mod stream_bench;

use clap::{Parser, Subcommand};

/// ruvector: a vector database with HNSW search.
///
/// Without a subcommand, runs a node like `ruvector serve` (the seed's
/// `ruvector --addr :8080 --data ./data`).
#[derive(Debug, Parser)]
#[command(name = "ruvector", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: serve::ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node: the REST API over a local data directory.
    Serve(serve::ServeArgs),
    /// Run the cluster router: the same REST API over shard nodes.
    Router(router::RouterArgs),
    /// Build an index from TEXMEX files and measure recall, QPS and memory.
    Bench(bench::BenchArgs),
    /// Bulk-load vectors from a .fvecs, .npy or JSON lines file over HTTP.
    Import(import::ImportArgs),
    /// Smoke-test a running node or router: create a collection, write,
    /// read, search, delete, drop; exit status 0 when all of it works.
    Check(check::CheckArgs),
    /// GET a URL (default `http://127.0.0.1:8080/ready`) and exit 0 on a
    /// 200: a container health check for an image without curl.
    Probe(probe::ProbeArgs),
    /// Measure streaming writes against a running node: write throughput
    /// and latency, and search latency while writes go on.
    StreamBench(stream_bench::StreamBenchArgs),
    /// A bounded mixed workload (search, upsert, delete) against a node or
    /// router: latency per operation, the RSS of given pids over time, and
    /// every acknowledged write checked at the end.
    Soak(soak::SoakArgs),
    /// Show a cluster's shards and partition moves (from a router); with
    /// --wait, until nothing moves.
    Cluster(cluster::ClusterArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => serve::run(cli.serve),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Router(args)) => router::run(args),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Import(args)) => import::run(&args),
        Some(Command::StreamBench(args)) => stream_bench::run(&args),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Probe(args)) => probe::run(&args),
        Some(Command::Cluster(args)) => cluster::run(&args),
        Some(Command::Soak(args)) => soak::run(&args),
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
