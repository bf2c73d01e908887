//! `ruvector stream-bench`: streaming writes against a running node (or
//! router) that already holds a collection.
//!
//! Phases, in order:
//! 1. searches alone: one client, closed loop, `--search-seconds`, k and ef
//!    as given, after `--warmup` unrecorded searches;
//! 2. for each `--loads` entry `CxB` (C clients, B vectors per upsert):
//!    `--duration` seconds of writes by C closed-loop clients while one
//!    client searches in a closed loop.
//!
//! Reported per row: acknowledged (2xx) writes per second in vectors and in
//! requests, write and search latency p50/p99 (client side: request sent to
//! body read) and errors (non-2xx answers and transport failures).
//!
//! Other modes, for a driver script (`bench/streaming.py`): `--writes-only`
//! skips the searches; `--count N` writes exactly N vectors with the single
//! load given and fails unless every one was acknowledged; `--rate R` spreads
//! R requests/s over the load's clients (open loop, at most R/s: slots the
//! server is too slow for are dropped, the achieved rate is reported).
//!
//! Invariants: each client task owns one `reqwest::Client` and so one
//! keep-alive connection. Search bodies are serialised before the clock
//! starts; a write body is encoded just before its request, outside the
//! timed span. Written vector number n (counted over the whole run) is base
//! row `n % rows` plus uniform noise of ±`--noise` per component, under id
//! `--id-start + n`, or with `--overwrite` under the existing id `n % rows`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ruvector_dataset::{Matrix, read_fvecs};
use serde::Serialize;

/// Flags of `ruvector stream-bench`.
#[derive(Debug, Args)]
pub struct StreamBenchArgs {
    /// Base URL of the node, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    url: String,
    /// Collection to write to and search (must exist).
    #[arg(long)]
    collection: String,
    /// Vectors to write (.fvecs), e.g. the base set the node was loaded with.
    #[arg(long)]
    base: PathBuf,
    /// Query vectors (.fvecs).
    #[arg(long)]
    query: PathBuf,
    /// Seconds of each write load (duration and rate modes).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Write loads, `CLIENTSxBATCH`, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1x1,4x1,16x1,4x10,4x100", value_parser = parse_load)]
    loads: Vec<Load>,
    /// Search beam width.
    #[arg(long, default_value_t = 64)]
    ef: usize,
    /// Neighbours per search.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Seconds of the searches-alone phase.
    #[arg(long, default_value_t = 10.0)]
    search_seconds: f64,
    /// Unrecorded searches before the searches-alone phase.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// First new id (ids above the loaded ones make every write an insert).
    #[arg(long, default_value_t = 1_000_000)]
    id_start: u64,
    /// Overwrite existing ids `0..rows` instead (updates); ignores --id-start.
    #[arg(long)]
    overwrite: bool,
    /// Uniform noise added to each component of a written vector.
    #[arg(long, default_value_t = 0.01)]
    noise: f32,
    /// No searches at all: only the write load(s).
    #[arg(long)]
    writes_only: bool,
    /// Write exactly this many vectors (one load, no searches), then stop.
    #[arg(long, conflicts_with = "rate")]
    count: Option<u64>,
    /// Requests per second over all clients of the (single) load.
    #[arg(long)]
    rate: Option<f64>,
    /// Tokio worker threads of this client.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    client_threads: u64,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// API key, sent as the `api-key` header.
    #[arg(long, env = "RUVECTOR_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// One JSON object per row instead of a table.
    #[arg(long)]
    json: bool,
}

/// One write load: `clients` closed-loop clients, `batch` vectors a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    clients: usize,
    batch: usize,
}

fn parse_load(s: &str) -> Result<Load, String> {
    let parse = |v: &str| v.trim().parse::<usize>().ok().filter(|&n| n > 0);
    match s.split_once(['x', 'X']) {
        Some((c, b)) => match (parse(c), parse(b)) {
            (Some(clients), Some(batch)) => Ok(Load { clients, batch }),
            _ => Err(format!("expected CLIENTSxBATCH with positive numbers, got {s:?}")),
        },
        None => Err(format!("expected CLIENTSxBATCH (e.g. 4x10), got {s:?}")),
    }
}

/// One measured phase.
#[derive(Debug, Serialize)]
struct Row {
    /// `search` (searches alone) or `write` (a write load).
    phase: &'static str,
    load: String,
    clients: usize,
    batch: usize,
    /// Requests per second asked for (`--rate`).
    rate: Option<f64>,
    overwrite: bool,
    seconds: f64,
    write_requests: u64,
    write_vectors: u64,
    write_requests_per_s: f64,
    write_vectors_per_s: f64,
    write_p50_ms: Option<f64>,
    write_p99_ms: Option<f64>,
    write_max_ms: Option<f64>,
    write_errors: u64,
    searches: u64,
    search_qps: f64,
    search_p50_ms: Option<f64>,
    search_p99_ms: Option<f64>,
    search_errors: u64,
    ef: usize,
    /// Counter range of the vectors this row tried to write: ids
    /// `id_start + n` (or `n % rows` with --overwrite) for n in the range.
    n_first: u64,
    n_end: u64,
    /// First id after the ones this row may have written (insert mode).
    next_id: u64,
    /// Collection size reported after the phase.
    size_after: Option<u64>,
    error_sample: Option<String>,
}

/// What every task shares.
#[derive(Debug)]
struct Ctx {
    url: String,
    collection: String,
    api_key: Option<String>,
    timeout: Duration,
    base: Matrix<f32>,
    search_bodies: Vec<Vec<u8>>,
    noise: f32,
    overwrite: bool,
    id_start: u64,
    /// Next write counter value (over the whole run).
    next: AtomicU64,
}

/// Latencies and counts of one task.
#[derive(Debug, Default)]
struct Stats {
    latencies_ms: Vec<f64>,
    requests: u64,
    vectors: u64,
    errors: u64,
    error_sample: Option<String>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.latencies_ms.extend(other.latencies_ms);
        self.requests += other.requests;
        self.vectors += other.vectors;
        self.errors += other.errors;
        self.error_sample = self.error_sample.take().or(other.error_sample);
    }

    fn fail(&mut self, what: String) {
        self.errors += 1;
        self.error_sample.get_or_insert(what);
    }

    /// (p50, p99, max) in ms, nearest rank.
    fn percentiles(&mut self) -> (Option<f64>, Option<f64>, Option<f64>) {
        percentiles(&mut self.latencies_ms)
    }
}

/// (p50, p99, max) of `latencies` by nearest rank (sorts them); `None`s
/// when empty. Shared with `ruvector soak`.
pub(crate) fn percentiles(latencies: &mut [f64]) -> (Option<f64>, Option<f64>, Option<f64>) {
    latencies.sort_by(f64::total_cmp);
    let v = &*latencies;
    let at = |p: f64| (!v.is_empty()).then(|| v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]);
    (at(50.0), at(99.0), v.last().copied())
}

impl Ctx {
    fn client(&self) -> anyhow::Result<reqwest::Client> {
        reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .timeout(self.timeout)
            .build()
            .context("cannot build the HTTP client")
    }

    /// Sends one request; `Ok(None)` on a 2xx, `Ok(Some(why))` otherwise.
    async fn send(&self, client: &reqwest::Client, path: &str, body: Vec<u8>) -> Option<String> {
        let mut request = client
            .post(format!("{}{path}", self.url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &self.api_key {
            request = request.header("api-key", key);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(_) if status.is_success() => None,
                    Ok(body) => {
                        Some(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])))
                    }
                    Err(error) => Some(format!("reading the body: {error}")),
                }
            }
            Err(error) => Some(format!("{error}")),
        }
    }

    /// An upsert body for the write counter values `first..first + count`.
    fn encode(&self, first: u64, count: u64, rng: &mut SmallRng) -> anyhow::Result<Vec<u8>> {
        let rows = self.base.rows() as u64;
        let mut out = Vec::with_capacity(count as usize * (self.base.dim * 11 + 40) + 16);
        out.extend_from_slice(b"{\"vectors\":[");
        for n in first..first + count {
            let id = if self.overwrite { n % rows } else { self.id_start + n };
            if n > first {
                out.push(b',');
            }
            write!(out, "{{\"id\":{id},\"vector\":[")?;
            for (i, x) in self.base.row((n % rows) as usize).iter().enumerate() {
                let value = x + self.noise * (rng.random::<f32>() * 2.0 - 1.0);
                if i > 0 {
                    out.push(b',');
                }
                write!(out, "{value}")?;
            }
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }
}

/// Runs the benchmark; prints the rows.
pub fn run(args: &StreamBenchArgs) -> anyhow::Result<()> {
    if !args.url.starts_with("http://") {
        bail!("--url must be a plain http:// URL (got {:?})", args.url);
    }
    if (args.count.is_some() || args.rate.is_some()) && args.loads.len() != 1 {
        bail!("--count and --rate take exactly one --loads entry, e.g. --loads 4x1");
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !args.rate.is_none_or(positive) || !positive(args.duration) || !positive(args.search_seconds) {
        bail!("--rate, --duration and --search-seconds must be positive");
    }
    let base = read_fvecs(&args.base, None)?;
    let queries = read_fvecs(&args.query, None)?;
    if base.rows() == 0 || queries.rows() == 0 || base.dim != queries.dim {
        bail!("need non-empty base and query files of the same dimension");
    }
    let search_bodies = (0..queries.rows())
        .map(|i| serde_json::to_vec(&serde_json::json!({"vector": queries.row(i), "k": args.k, "ef": args.ef})))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = Arc::new(Ctx {
        url: args.url.trim_end_matches('/').to_owned(),
        collection: args.collection.clone(),
        api_key: args.api_key.clone(),
        timeout: Duration::from_secs(args.timeout),
        base,
        search_bodies,
        noise: args.noise,
        overwrite: args.overwrite,
        id_start: args.id_start,
        next: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads as usize)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let rows = runtime.block_on(phases(ctx, args))?;
    print_rows(&rows, args.json)?;
    if let (Some(count), Some(row)) = (args.count, rows.last())
        && (row.write_vectors != count || row.write_errors > 0)
    {
        bail!(
            "{} of {count} vectors acknowledged, {} errors: {:?}",
            row.write_vectors,
            row.write_errors,
            row.error_sample
        );
    }
    Ok(())
}

async fn phases(ctx: Arc<Ctx>, args: &StreamBenchArgs) -> anyhow::Result<Vec<Row>> {
    let size = collection_size(&ctx).await?;
    eprintln!("collection {} holds {size} vectors; {} base rows to write from", ctx.collection, ctx.base.rows());
    let mut rows = Vec::new();
    let searching = !args.writes_only && args.count.is_none();
    if searching {
        let client = ctx.client()?;
        for i in 0..args.warmup {
            let body = ctx.search_bodies[i % ctx.search_bodies.len()].clone();
            ctx.send(&client, &format!("/collections/{}/search", ctx.collection), body).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(searcher(Arc::clone(&ctx), Arc::clone(&stop), 0));
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(args.search_seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let stats = task.await??;
        let seconds = started.elapsed().as_secs_f64();
        let row = make_row("search", None, args, seconds, Stats::default(), stats, (0, 0), &ctx).await;
        eprintln!("searches alone: p50 {} ms, p99 {} ms", ms(row.search_p50_ms), ms(row.search_p99_ms));
        rows.push(row);
    }
    for (index, &load) in args.loads.iter().enumerate() {
        let n_first = ctx.next.load(Ordering::Relaxed);
        let started = Instant::now();
        let deadline = args.count.is_none().then(|| started + Duration::from_secs_f64(args.duration));
        let stop = Arc::new(AtomicBool::new(false));
        let search_task = searching.then(|| tokio::spawn(searcher(Arc::clone(&ctx), Arc::clone(&stop), index * 97)));
        let mut writers = Vec::with_capacity(load.clients);
        for client in 0..load.clients {
            let schedule = args.rate.map(|rate| {
                let period = Duration::from_secs_f64(load.clients as f64 / rate);
                (started + period.mul_f64(client as f64 / load.clients as f64), period)
            });
            let limit = args.count.map(|c| n_first + c);
            let seed = args.seed ^ ((index as u64) << 32) ^ client as u64;
            writers.push(tokio::spawn(writer(Arc::clone(&ctx), load, deadline, limit, schedule, seed)));
        }
        let mut writes = Stats::default();
        for task in writers {
            writes.merge(task.await??);
        }
        let seconds = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let searches = match search_task {
            Some(task) => task.await??,
            None => Stats::default(),
        };
        let n_end = ctx.next.load(Ordering::Relaxed).min(args.count.map_or(u64::MAX, |c| n_first + c));
        let row = make_row("write", Some(load), args, seconds, writes, searches, (n_first, n_end), &ctx).await;
        eprintln!(
            "{}: {:.1} vectors/s, {:.1} requests/s, write p50 {} ms, p99 {} ms, search p50 {} ms, p99 {} ms, errors {}",
            row.load,
            row.write_vectors_per_s,
            row.write_requests_per_s,
            ms(row.write_p50_ms),
            ms(row.write_p99_ms),
            ms(row.search_p50_ms),
            ms(row.search_p99_ms),
            row.write_errors + row.search_errors
        );
        rows.push(row);
    }
    Ok(rows)
}

/// One closed-loop search client, until `stop`.
async fn searcher(ctx: Arc<Ctx>, stop: Arc<AtomicBool>, offset: usize) -> anyhow::Result<Stats> {
    let client = ctx.client()?;
    let path = format!("/collections/{}/search", ctx.collection);
    let mut stats = Stats::default();
    let mut i = offset;
    while !stop.load(Ordering::Relaxed) {
        let body = ctx.search_bodies[i % ctx.search_bodies.len()].clone();
        i += 1;
        let started = Instant::now();
        let failure = ctx.send(&client, &path, body).await;
        stats.latencies_ms.push(started.elapsed().as_secs_f64() * 1e3);
        stats.requests += 1;
        if let Some(why) = failure {
            stats.fail(why);
        }
    }
    Ok(stats)
}

/// One write client: closed loop (or on a `(first slot, period)` schedule)
/// until the deadline or until the counter reaches `limit`.
async fn writer(
    ctx: Arc<Ctx>,
    load: Load,
    deadline: Option<Instant>,
    limit: Option<u64>,
    schedule: Option<(Instant, Duration)>,
    seed: u64,
) -> anyhow::Result<Stats> {
    let client = ctx.client()?;
    let path = format!("/collections/{}/vectors", ctx.collection);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut stats = Stats::default();
    let mut slot = schedule.map(|(first, _)| first);
    loop {
        if let (Some(at), Some((_, period))) = (slot, schedule) {
            tokio::time::sleep_until(at.into()).await;
            let now = Instant::now();
            // Slots missed because the server was slow are dropped, not made up.
            slot = Some(if at + period < now { now } else { at + period });
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let first = ctx.next.fetch_add(load.batch as u64, Ordering::Relaxed);
        let count = match limit {
            Some(limit) if first >= limit => break,
            Some(limit) => (load.batch as u64).min(limit - first),
            None => load.batch as u64,
        };
        let body = ctx.encode(first, count, &mut rng)?;
        let started = Instant::now();
        let failure = ctx.send(&client, &path, body).await;
        stats.latencies_ms.push(started.elapsed().as_secs_f64() * 1e3);
        match failure {
            None => {
                stats.requests += 1;
                stats.vectors += count;
            }
            Some(why) => {
                stats.fail(why);
                if limit.is_some() {
                    break; // --count must be exact: stop at the first failure
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    Ok(stats)
}

/// `size` from `GET /collections/{name}`.
async fn collection_size(ctx: &Ctx) -> anyhow::Result<u64> {
    let mut request = ctx.client()?.get(format!("{}/collections/{}", ctx.url, ctx.collection));
    if let Some(key) = &ctx.api_key {
        request = request.header("api-key", key);
    }
    let response = request.send().await.with_context(|| format!("cannot reach {}", ctx.url))?;
    let status = response.status();
    let text = response.text().await.context("reading the collection info")?;
    if !status.is_success() {
        bail!("GET /collections/{}: HTTP {status}: {text}", ctx.collection);
    }
    let info: serde_json::Value = serde_json::from_str(&text).context("collection info is not JSON")?;
    if let Some(dim) = info.get("dimension").and_then(serde_json::Value::as_u64)
        && dim != ctx.base.dim as u64
    {
        bail!("collection {} has dimension {dim}, the files {}", ctx.collection, ctx.base.dim);
    }
    info.get("size").and_then(serde_json::Value::as_u64).context("collection info has no size")
}

#[allow(clippy::too_many_arguments)]
async fn make_row(
    phase: &'static str,
    load: Option<Load>,
    args: &StreamBenchArgs,
    seconds: f64,
    mut writes: Stats,
    mut searches: Stats,
    (n_first, n_end): (u64, u64),
    ctx: &Ctx,
) -> Row {
    let (write_p50_ms, write_p99_ms, write_max_ms) = writes.percentiles();
    let (search_p50_ms, search_p99_ms, _) = searches.percentiles();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let size_after = collection_size(ctx).await.inspect_err(|e| eprintln!("warning: {e:#}")).ok();
    Row {
        phase,
        load: load.map_or("-".to_owned(), |l| format!("{}x{}", l.clients, l.batch)),
        clients: load.map_or(0, |l| l.clients),
        batch: load.map_or(0, |l| l.batch),
        rate: args.rate,
        overwrite: args.overwrite,
        seconds: round(seconds),
        write_requests: writes.requests,
        write_vectors: writes.vectors,
        write_requests_per_s: round(writes.requests as f64 / seconds),
        write_vectors_per_s: round(writes.vectors as f64 / seconds),
        write_p50_ms: write_p50_ms.map(round),
        write_p99_ms: write_p99_ms.map(round),
        write_max_ms: write_max_ms.map(round),
        write_errors: writes.errors,
        searches: searches.requests,
        search_qps: round(searches.requests as f64 / seconds),
        search_p50_ms: search_p50_ms.map(round),
        search_p99_ms: search_p99_ms.map(round),
        search_errors: searches.errors,
        ef: args.ef,
        n_first,
        n_end,
        next_id: args.id_start + n_end,
        size_after,
        error_sample: writes.error_sample.or(searches.error_sample),
    }
}

/// A latency for the table: two decimals, `-` when there was none.
pub(crate) fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.2}"))
}

fn print_rows(rows: &[Row], json: bool) -> anyhow::Result<()> {
    if json {
        for row in rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    println!(
        "{:<8} {:>6} {:>7} {:>10} {:>10} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9} {:>7} {:>10}",
        "phase",
        "load",
        "seconds",
        "vectors/s",
        "requests/s",
        "w_p50_ms",
        "w_p99_ms",
        "w_errs",
        "searches",
        "s_p50_ms",
        "s_p99_ms",
        "s_errs",
        "size_after"
    );
    for r in rows {
        println!(
            "{:<8} {:>6} {:>7.1} {:>10.1} {:>10.1} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9} {:>7} {:>10}",
            r.phase,
            r.load,
            r.seconds,
            r.write_vectors_per_s,
            r.write_requests_per_s,
            ms(r.write_p50_ms),
            ms(r.write_p99_ms),
            r.write_errors,
            r.searches,
            ms(r.search_p50_ms),
            ms(r.search_p99_ms),
            r.search_errors,
            r.size_after.map_or("-".to_owned(), |s| s.to_string())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_parse_as_clients_x_batch() {
        assert_eq!(parse_load("4x100"), Ok(Load { clients: 4, batch: 100 }));
        assert_eq!(parse_load("16X1"), Ok(Load { clients: 16, batch: 1 }));
        assert!(parse_load("4").is_err());
        assert!(parse_load("0x1").is_err());
        assert!(parse_load("ax1").is_err());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut stats = Stats { latencies_ms: (1..=100).rev().map(f64::from).collect(), ..Stats::default() };
        assert_eq!(stats.percentiles(), (Some(50.0), Some(99.0), Some(100.0)));
        assert_eq!(Stats::default().percentiles(), (None, None, None));
    }

    #[test]
    fn bodies_carry_new_ids_or_overwrite_existing_ones() {
        let base = Matrix { dim: 2, data: vec![1.0, 0.0, 0.0, 1.0] };
        let mut ctx = Ctx {
            url: String::new(),
            collection: String::new(),
            api_key: None,
            timeout: Duration::from_secs(1),
            base,
            search_bodies: Vec::new(),
            noise: 0.0,
            overwrite: false,
            id_start: 1000,
            next: AtomicU64::new(0),
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let body = ctx.encode(1, 2, &mut rng).expect("encode");
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            r#"{"vectors":[{"id":1001,"vector":[0,1]},{"id":1002,"vector":[1,0]}]}"#
        );
        ctx.overwrite = true;
        let body: serde_json::Value =
            serde_json::from_slice(&ctx.encode(3, 1, &mut rng).expect("encode")).expect("json");
        assert_eq!(body["vectors"][0]["id"], 1);
    }
}
