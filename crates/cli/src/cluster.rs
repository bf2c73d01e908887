//! `ruvector cluster`: where a cluster's partitions are and whether they
//! are moving, from a router's `GET /cluster` — one line per shard, and
//! with `--wait`, until nothing moves (exit 0) or the deadline passes
//! (exit 1). The scale-in procedure uses it: drain, wait, then remove.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use ruvector_router::ClusterStatus;

/// Flags of `ruvector cluster`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// The router's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key (`api-key` header), when the router has keys.
    #[arg(long, env = "RUVECTOR_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Wait until no partition is moving and no copy is filling.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait with `--wait`, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
}

/// Prints the status (again every 2 s with `--wait` until settled).
pub fn run(args: &ClusterArgs) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let started = Instant::now();
    loop {
        let mut request = client.get(format!("{}/cluster", args.url.trim_end_matches('/')));
        if let Some(key) = &args.api_key {
            request = request.header("api-key", key);
        }
        let response = request.send().with_context(|| format!("GET {}/cluster", args.url))?;
        if !response.status().is_success() {
            bail!("GET {}/cluster answered {}", args.url, response.status());
        }
        let status: ClusterStatus = response.json().context("the answer is not a cluster status")?;
        print!("{}", describe(&status));
        let filling: usize = status
            .collections
            .iter()
            .flat_map(|c| c.states.iter().flatten())
            .filter(|s| **s != Some(ruvector_api::PartitionState::Ready))
            .count();
        let settled = status.moving == 0 && filling == 0;
        if !args.wait || settled {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(args.timeout_secs) {
            bail!("still moving after {} s", args.timeout_secs);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The human summary: the epoch and moves, then one line per shard.
fn describe(status: &ClusterStatus) -> String {
    let mut out = format!(
        "epoch {}  replication {}  write quorum {}  moving partitions {}\n",
        status.epoch, status.replication_factor, status.write_quorum, status.moving
    );
    if !status.other_routers.is_empty() {
        out.push_str(&format!(
            "waiting: {} router(s) with another shard list still run (placements {}); nothing moves until they stop\n",
            status.other_routers.len(),
            status.other_routers.join(", ")
        ));
    }
    for s in &status.shards {
        let state = match (s.up, s.removable, s.draining) {
            (false, _, _) => "DOWN",
            (true, true, _) => "drained: may be removed",
            (true, false, true) => "draining",
            (true, false, false) => "serving",
        };
        out.push_str(&format!(
            "{}  {}  partition copies {}  vectors {}\n",
            s.address,
            state,
            s.partitions,
            s.vectors.map_or_else(|| "?".to_owned(), |v| v.to_string())
        ));
    }
    for m in &status.moves {
        let progress = match (m.vectors, m.bytes, m.millis) {
            (Some(v), Some(b), Some(ms)) => {
                format!("  {v} writes, {:.1} MB copied in {:.1} s", b as f64 / 1e6, ms as f64 / 1e3)
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "move {} partition {}: {}  [{}] → [{}]{progress}\n",
            m.collection,
            m.partition,
            m.state,
            m.now.join(", "),
            m.target.join(", ")
        ));
    }
    out
}
