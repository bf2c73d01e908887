//! `ruvector serve` (and the bare `ruvector --addr ... --data ...` of the
//! seed's CLI): a standalone node, also what every shard of a cluster runs.

use std::path::PathBuf;

use clap::Args;
use ruvector_server::ServerConfig;
use serde::Serialize;

use crate::logging::LogFormat;

/// Flags of `ruvector serve`; each overrides the configuration file and
/// the environment.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "RUVECTOR_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Listen address, `host:port` or `:port` (all interfaces).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Data directory.
    #[arg(long = "data", alias = "data-dir")]
    #[serde(rename = "data_dir", skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "RUVECTOR_LOG_FORMAT")]
    #[serde(skip)]
    pub log_format: LogFormat,
}

/// Runs the node until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    crate::logging::init(args.log_format);
    let config: ServerConfig = crate::config::load(args.config.as_ref(), &args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(ruvector_server::serve(config, crate::shutdown_signal()))?;
    Ok(())
}
