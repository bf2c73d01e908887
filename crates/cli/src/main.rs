//! `ruvector`: the command-line entry point. Parses arguments and hands off
//! to one module per subcommand; no business logic lives here.

mod bench;

use clap::{Parser, Subcommand};

/// ruvector: a vector database with HNSW search.
#[derive(Debug, Parser)]
#[command(name = "ruvector", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an index from TEXMEX files and measure recall, QPS and memory.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => bench::run(&args),
    }
}
