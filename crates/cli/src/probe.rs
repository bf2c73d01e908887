//! `ruvector probe`: one HTTP GET that exits 0 on a 200 answer and 1
//! otherwise — the health check of a container whose image has no shell
//! or curl (`docker-compose` healthchecks, `docker run --health-cmd`).

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

/// Flags of `ruvector probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The URL to GET.
    #[arg(default_value = "http://127.0.0.1:8080/ready")]
    pub url: String,
    /// Timeout of the request, in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
}

/// GETs the URL; `Err` (exit status 1) unless it answers 200.
pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .build()
        .context("cannot build the HTTP client")?;
    let response = client.get(&args.url).send().with_context(|| format!("GET {}", args.url))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        bail!("GET {} answered {status}", args.url);
    }
    Ok(())
}
