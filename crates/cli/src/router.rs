//! `ruvector router`: the stateless cluster router in front of shard nodes.
//! Its settings live under `[router]` in the TOML file and
//! `RUVECTOR_ROUTER__*` in the environment.

use std::path::PathBuf;

use clap::Args;
use ruvector_router::RouterConfig;
use serde::Serialize;

use crate::logging::LogFormat;

/// Flags of `ruvector router`; each overrides the file and the environment.
#[derive(Debug, Clone, Args)]
pub struct RouterArgs {
    /// TOML configuration file (the router reads its `[router]` table).
    #[arg(long, env = "RUVECTOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, `host:port` or `:port` (all interfaces).
    #[arg(long)]
    pub addr: Option<String>,
    /// Shard base URLs, comma-separated (e.g. `http://shard-0:8080,http://shard-1:8080`).
    #[arg(long, value_delimiter = ',')]
    pub shards: Option<Vec<String>>,
    /// Copies of every partition, on distinct shards (default 1).
    #[arg(long)]
    pub replication_factor: Option<usize>,
    /// Copies that must apply a write before it is acknowledged (default:
    /// all of them).
    #[arg(long)]
    pub write_quorum: Option<usize>,
    /// Shards to empty before removing them (comma-separated URLs from
    /// --shards): their partitions move to the others (`[router] drain`).
    #[arg(long, value_delimiter = ',')]
    pub drain: Option<Vec<String>>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "RUVECTOR_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Serialize)]
struct Flags<'a> {
    router: RouterFlags<'a>,
}

#[derive(Serialize)]
struct RouterFlags<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shards: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replication_factor: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    write_quorum: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drain: Option<&'a Vec<String>>,
}

/// Runs the router until SIGTERM or SIGINT.
pub fn run(args: RouterArgs) -> anyhow::Result<()> {
    crate::logging::init(args.log_format);
    let flags = Flags {
        router: RouterFlags {
            addr: args.addr.as_ref(),
            shards: args.shards.as_ref(),
            replication_factor: args.replication_factor,
            write_quorum: args.write_quorum,
            drain: args.drain.as_ref(),
        },
    };
    let config: RouterConfig = crate::config::load_section(args.config.as_ref(), "router", flags)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(ruvector_router::serve(config, crate::shutdown_signal()))?;
    Ok(())
}
