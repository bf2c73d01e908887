//! `ruvector soak`: a bounded mixed workload against a node or a router,
//! with the memory of given processes watched and every acknowledged write
//! checked at the end.
//!
//! Phases, in order:
//! 1. create the collection (`--collection`, euclidean, `--dimension`) and
//!    preload every id of `0..--ids` (random vectors, seeded), each batch
//!    acknowledged or the run stops;
//! 2. `--duration` seconds of `--clients` closed-loop clients, each request
//!    drawn by `--mix` (default 70 % search, 25 % upsert of `--batch` ids,
//!    5 % delete of one id); every `--rss-interval` seconds the `VmRSS` of
//!    each `--pid` is read from `/proc` and a progress line
//!    `soak: t=<s>s requests=<n> errors=<n> ...` goes to stderr;
//! 3. the check: the ids listed by `GET /collections/{name}/ids` against
//!    the last acknowledged write of each id.
//!
//! Reported (a table, or one JSON object with `--json`): per operation the
//! requests, acknowledged ones, errors by cause (HTTP status or
//! `transport`), throughput and p50/p99/max latency (client side, request
//! sent to body read, failed requests included); per pid the RSS series and
//! its least-squares slope in MiB/min; the check's counts. The exit status
//! is non-zero when the check finds a lost or resurrected write; errors
//! are reported, not judged (a caller decides which are expected).
//!
//! Invariants: client `c` owns the ids `i` with `i % clients == c` and
//! sends one request at a time, so the last acknowledged write of each id
//! is known exactly; a failed write leaves its ids uncertain (it may or may
//! not have landed) until the next acknowledged write of the id. Each
//! client owns one `reqwest::Client`, so one keep-alive connection.

mod report;
mod rss;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use report::{Check, Op, OpStats, Report};
use rss::Series;

/// Vectors per preload request.
const PRELOAD_BATCH: u64 = 500;
/// Ids per page of the final listing (the API's default page limit).
const PAGE: usize = 10_000;

/// Flags of `ruvector soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Base URL of a node or router, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    url: String,
    /// Collection to create and load (must not exist).
    #[arg(long, default_value = "soak")]
    collection: String,
    /// Vector dimension.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=16_384))]
    dimension: u64,
    /// Ids `0..ids`, all preloaded; upserts overwrite them, deletes remove
    /// them, so the data stays about this size.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    ids: u64,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    clients: u64,
    /// Seconds of the mixed workload.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Percentages of search, upsert and delete requests.
    #[arg(long, default_value = "70,25,5", value_parser = parse_mix)]
    mix: Mix,
    /// Ids per upsert request.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch: u64,
    /// Neighbours per search.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Search beam width.
    #[arg(long, default_value_t = 64)]
    ef: usize,
    /// Processes whose RSS to sample (repeat or comma-separate).
    #[arg(long = "pid", value_delimiter = ',')]
    pids: Vec<u32>,
    /// Seconds between RSS samples (and progress lines).
    #[arg(long, default_value_t = 10.0)]
    rss_interval: f64,
    /// Tokio worker threads of this client.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    client_threads: u64,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// API key (read-write), sent as the `api-key` header.
    #[arg(long, env = "RUVECTOR_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Seed of the vectors and of the request mix.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Drop the collection after the check.
    #[arg(long)]
    drop: bool,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Percentages of search, upsert and delete; they add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix([u32; 3]);

fn parse_mix(s: &str) -> Result<Mix, String> {
    let parts: Vec<Option<u32>> = s.split(',').map(|p| p.trim().parse().ok()).collect();
    match parts.as_slice() {
        [Some(search), Some(upsert), Some(delete)] if search + upsert + delete == 100 => {
            Ok(Mix([*search, *upsert, *delete]))
        }
        _ => Err(format!("expected SEARCH,UPSERT,DELETE percentages adding up to 100 (e.g. 70,25,5), got {s:?}")),
    }
}

impl Mix {
    /// The operation a roll in `0..100` stands for.
    fn pick(self, roll: u32) -> Op {
        let [search, upsert, _] = self.0;
        if roll < search {
            Op::Search
        } else if roll < search + upsert {
            Op::Upsert
        } else {
            Op::Delete
        }
    }
}

/// What is known of an id from its last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdState {
    /// The last write was an acknowledged upsert.
    Present,
    /// The last write was an acknowledged delete.
    Absent,
    /// The last write failed: it may or may not have landed.
    Uncertain,
}

/// What every client shares.
#[derive(Debug)]
struct Ctx {
    url: String,
    collection: String,
    api_key: Option<String>,
    timeout: Duration,
    dimension: usize,
    ids: u64,
    clients: u64,
    batch: u64,
    mix: Mix,
    k: usize,
    ef: usize,
    /// Requests sent and failed so far, for the progress lines.
    sent: AtomicU64,
    failed: AtomicU64,
}

/// How one request ended.
enum Outcome {
    /// A 2xx (or the status a caller treats specially, e.g. 404).
    Answered(StatusCode),
    /// No answer: connection refused or reset, timeout.
    Transport(String),
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

    fn request(&self, client: &reqwest::Client, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = client.request(method, format!("{}{path}", self.url));
        match &self.api_key {
            Some(key) => request.header("api-key", key),
            None => request,
        }
    }

    /// Sends one request and reads the whole body.
    async fn send(&self, client: &reqwest::Client, method: Method, path: &str, body: Option<String>) -> Outcome {
        let mut request = self.request(client, method, path);
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(_) => Outcome::Answered(status),
                    Err(error) => Outcome::Transport(format!("reading the body: {error}")),
                }
            }
            Err(error) => Outcome::Transport(error.to_string()),
        }
    }

    /// A JSON request whose answer must be `expected`; returns its body.
    async fn expect(&self, method: Method, path: &str, body: Option<Value>, expected: u16) -> anyhow::Result<Value> {
        let mut request = self.request(&self.client()?, method.clone(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{method} {}{path}", self.url))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("{method} {path}: reading the answer"))?;
        ensure!(status.as_u16() == expected, "{method} {path}: HTTP {status} (expected {expected}): {text}");
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: the answer is not JSON"))
    }

    /// The ids client `client` owns, ascending.
    fn owned(&self, client: u64) -> Vec<u64> {
        (client..self.ids).step_by(self.clients as usize).collect()
    }

    /// `{"id":..,"vector":[..]}` items of random vectors, comma-separated.
    fn points(&self, ids: impl IntoIterator<Item = u64>, rng: &mut SmallRng) -> String {
        let mut out = String::new();
        for (n, id) in ids.into_iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"id\":{id},\"vector\":");
            self.vector(&mut out, rng);
            out.push('}');
        }
        out
    }

    /// Appends a random vector, components uniform in [-1, 1).
    fn vector(&self, out: &mut String, rng: &mut SmallRng) {
        out.push('[');
        for i in 0..self.dimension {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}", rng.random::<f32>() * 2.0 - 1.0);
        }
        out.push(']');
    }
}

/// Runs the workload; prints the report; `Err` when the check fails.
pub fn run(args: &SoakArgs) -> anyhow::Result<()> {
    let url = args.url.trim_end_matches('/').to_owned();
    if !url.starts_with("http://") {
        bail!("--url must be a plain http:// URL (got {:?}); this build has no TLS", args.url);
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(args.duration) || !positive(args.rss_interval) {
        bail!("--duration and --rss-interval must be positive numbers of seconds");
    }
    if args.ids / args.clients < args.batch {
        bail!(
            "each of the {} clients needs at least --batch {} ids of its own: raise --ids (now {})",
            args.clients,
            args.batch,
            args.ids
        );
    }
    let ctx = Arc::new(Ctx {
        url,
        collection: args.collection.clone(),
        api_key: args.api_key.clone(),
        timeout: Duration::from_secs(args.timeout),
        dimension: args.dimension as usize,
        ids: args.ids,
        clients: args.clients,
        batch: args.batch,
        mix: args.mix,
        k: args.k,
        ef: args.ef,
        sent: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads as usize)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let report = runtime.block_on(soak(ctx, args))?;
    report.print(args.json)?;
    if !report.check.passed() {
        bail!(
            "acknowledged writes not as acknowledged: {} missing, {} resurrected, {} foreign, {} deletes of present ids answered 404 (e.g. ids {:?})",
            report.check.missing,
            report.check.resurrected,
            report.check.foreign,
            report.check.delete_missed,
            report.check.examples
        );
    }
    Ok(())
}

async fn soak(ctx: Arc<Ctx>, args: &SoakArgs) -> anyhow::Result<Report> {
    let name = &ctx.collection;
    let create = json!({"name": name, "dimension": ctx.dimension, "metric": "euclidean"});
    ctx.expect(Method::POST, "/collections", Some(create), 201)
        .await
        .with_context(|| format!("creating collection {name} (it must not exist)"))?;
    let preload_started = Instant::now();
    preload(&ctx, args.seed).await?;
    let preload_seconds = preload_started.elapsed().as_secs_f64();
    eprintln!("soak: preloaded {} ids of dimension {} in {preload_seconds:.1} s", ctx.ids, ctx.dimension);

    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let tasks: Vec<_> =
        (0..ctx.clients).map(|c| tokio::spawn(client(Arc::clone(&ctx), c, deadline, args.seed ^ (c + 1)))).collect();
    let mut series: Vec<Series> = args.pids.iter().map(|&pid| Series::new(pid)).collect();
    let interval = Duration::from_secs_f64(args.rss_interval);
    let mut tick = 0u32;
    loop {
        let at = started + interval * tick;
        if tick > 0 && at >= deadline {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        sample(&ctx, &mut series, started);
        tick += 1;
    }
    let mut stats: [OpStats; 3] = Default::default();
    let mut runs = Vec::with_capacity(tasks.len());
    for task in tasks {
        let mut run = task.await.context("a client task panicked")??;
        for (total, part) in stats.iter_mut().zip(std::mem::take(&mut run.stats)) {
            total.merge(part);
        }
        runs.push(run);
    }
    let seconds = started.elapsed().as_secs_f64();
    sample(&ctx, &mut series, started);

    let check = check(&ctx, &runs).await?;
    if args.drop {
        ctx.expect(Method::DELETE, &format!("/collections/{name}"), None, 200).await?;
    }
    let ops: Vec<_> = Op::ALL.into_iter().zip(stats).map(|(op, s)| s.report(op, seconds)).collect();
    let total_requests: u64 = ops.iter().map(|o| o.count).sum();
    Ok(Report {
        url: ctx.url.clone(),
        collection: ctx.collection.clone(),
        dimension: ctx.dimension,
        ids: ctx.ids,
        clients: ctx.clients as usize,
        batch: ctx.batch as usize,
        mix: ctx.mix.0,
        seconds: (seconds * 1000.0).round() / 1000.0,
        preload_seconds: (preload_seconds * 1000.0).round() / 1000.0,
        total_per_s: (total_requests as f64 / seconds * 10.0).round() / 10.0,
        total_errors: ops.iter().map(|o| o.errors).sum(),
        ops,
        rss: series.iter().map(Series::report).collect(),
        check,
    })
}

/// Reads every pid's RSS and prints a progress line.
fn sample(ctx: &Ctx, series: &mut [Series], started: Instant) {
    let t = started.elapsed().as_secs_f64();
    let mut rss = String::new();
    for s in series.iter_mut() {
        s.sample(t);
        let _ = write!(rss, " rss[{}]={}", s.pid, s.last_mib().map_or("gone".to_owned(), |m| format!("{m:.1}MiB")));
    }
    eprintln!(
        "soak: t={}s requests={} errors={}{rss}",
        t.round(),
        ctx.sent.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed)
    );
}

/// Upserts every id once, `PRELOAD_BATCH` at a time; any failure stops the
/// run (the check needs every id's state known).
async fn preload(ctx: &Ctx, seed: u64) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let path = format!("/collections/{}/vectors", ctx.collection);
    let mut first = 0;
    while first < ctx.ids {
        let end = (first + PRELOAD_BATCH).min(ctx.ids);
        let body = format!("{{\"vectors\":[{}]}}", ctx.points(first..end, &mut rng));
        match ctx.send(&client, Method::POST, &path, Some(body)).await {
            Outcome::Answered(status) if status.is_success() => {}
            Outcome::Answered(status) => bail!("preloading ids {first}..{end}: HTTP {status}"),
            Outcome::Transport(why) => bail!("preloading ids {first}..{end}: {why}"),
        }
        first = end;
    }
    Ok(())
}

/// What one client did.
#[derive(Debug)]
struct ClientRun {
    /// Per operation, in [`Op::ALL`] order.
    stats: [OpStats; 3],
    /// The client's ids ([`Ctx::owned`]) and the state of each.
    owned: Vec<u64>,
    states: Vec<IdState>,
    /// Deletes answered 404 for an id last acknowledged as upserted.
    delete_missed: Vec<u64>,
}

/// One closed-loop client until `deadline`.
async fn client(ctx: Arc<Ctx>, index: u64, deadline: Instant, seed: u64) -> anyhow::Result<ClientRun> {
    let http = ctx.client()?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let owned = ctx.owned(index);
    let mut run = ClientRun {
        stats: Default::default(),
        states: vec![IdState::Present; owned.len()],
        owned,
        delete_missed: Vec::new(),
    };
    let (search_path, vectors_path) =
        (format!("/collections/{}/search", ctx.collection), format!("/collections/{}/vectors", ctx.collection));
    while Instant::now() < deadline {
        let op = ctx.mix.pick(rng.random_range(0..100));
        // Positions in `owned` this request writes.
        let (positions, method, path, body) = match op {
            Op::Search => {
                let mut body = String::from("{\"vector\":");
                ctx.vector(&mut body, &mut rng);
                let _ = write!(body, ",\"k\":{},\"ef\":{}}}", ctx.k, ctx.ef);
                (Vec::new(), Method::POST, search_path.clone(), Some(body))
            }
            Op::Upsert => {
                let len = run.owned.len();
                let start = rng.random_range(0..len);
                let positions: Vec<usize> = (0..ctx.batch as usize).map(|i| (start + i) % len).collect();
                let points = ctx.points(positions.iter().map(|&p| run.owned[p]), &mut rng);
                (positions, Method::POST, vectors_path.clone(), Some(format!("{{\"vectors\":[{points}]}}")))
            }
            Op::Delete => {
                let position = rng.random_range(0..run.owned.len());
                let path = format!("{vectors_path}/{}", run.owned[position]);
                (vec![position], Method::DELETE, path, None)
            }
        };
        let stats = &mut run.stats[op as usize];
        let started = Instant::now();
        let outcome = ctx.send(&http, method, &path, body).await;
        stats.latencies_ms.push(started.elapsed().as_secs_f64() * 1e3);
        ctx.sent.fetch_add(1, Ordering::Relaxed);
        let acknowledged = match outcome {
            Outcome::Answered(status) if status.is_success() => true,
            Outcome::Answered(StatusCode::NOT_FOUND) if op == Op::Delete => {
                if run.states[positions[0]] == IdState::Present {
                    run.delete_missed.push(run.owned[positions[0]]);
                }
                true
            }
            Outcome::Answered(status) => {
                stats.fail(status.as_u16().to_string(), format!("{} {path}: HTTP {status}", op.name()));
                false
            }
            Outcome::Transport(why) => {
                stats.fail("transport".to_owned(), format!("{} {path}: {why}", op.name()));
                false
            }
        };
        if acknowledged {
            stats.ok += 1;
        } else {
            ctx.failed.fetch_add(1, Ordering::Relaxed);
        }
        let state = match (op, acknowledged) {
            (_, false) => IdState::Uncertain,
            (Op::Delete, true) => IdState::Absent,
            _ => IdState::Present,
        };
        for p in positions {
            run.states[p] = state;
        }
    }
    Ok(run)
}

/// Lists the collection's ids and compares them with what the clients
/// know of each id.
async fn check(ctx: &Ctx, runs: &[ClientRun]) -> anyhow::Result<Check> {
    let listed = list_ids(ctx).await?;
    let info = ctx.expect(Method::GET, &format!("/collections/{}", ctx.collection), None, 200).await?;
    Ok(compare(ctx.ids, runs, &listed, info["size"].as_u64()))
}

/// The check proper: `listed` (ascending) against the last acknowledged
/// write of every id of `0..ids`.
fn compare(ids: u64, runs: &[ClientRun], listed: &[u64], size: Option<u64>) -> Check {
    let mut check = Check { listed: listed.len() as u64, size, ..Check::default() };
    let mut examples = Vec::new();
    for run in runs {
        for (&id, &state) in run.owned.iter().zip(&run.states) {
            let found = listed.binary_search(&id).is_ok();
            match state {
                IdState::Present => {
                    check.expected_present += 1;
                    if !found {
                        check.missing += 1;
                        examples.push(id);
                    }
                }
                IdState::Absent => {
                    check.expected_absent += 1;
                    if found {
                        check.resurrected += 1;
                        examples.push(id);
                    }
                }
                IdState::Uncertain => check.uncertain += 1,
            }
        }
        check.delete_missed += run.delete_missed.len() as u64;
        examples.extend(&run.delete_missed);
    }
    let foreign: Vec<u64> = listed.iter().copied().filter(|&id| id >= ids).collect();
    check.foreign = foreign.len() as u64;
    examples.extend(foreign);
    examples.truncate(10);
    check.examples = examples;
    check
}

/// Every id of the collection, ascending, page by page.
async fn list_ids(ctx: &Ctx) -> anyhow::Result<Vec<u64>> {
    let mut ids = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let mut path = format!("/collections/{}/ids?limit={PAGE}", ctx.collection);
        if let Some(after) = after {
            let _ = write!(path, "&after={after}");
        }
        let page = ctx.expect(Method::GET, &path, None, 200).await?;
        let Some(listed) = page["ids"].as_array() else {
            bail!("GET {path}: no ids in the answer: {page}");
        };
        for id in listed {
            ids.push(id.as_u64().with_context(|| format!("GET {path}: id {id} is not an unsigned integer"))?);
        }
        match page["next_after"].as_u64() {
            Some(next) if after.is_none_or(|a| next > a) => after = Some(next),
            Some(next) => bail!("GET {path}: next_after {next} does not advance"),
            None => break,
        }
    }
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    ensure!(ids.len() == before, "the id listing repeats {} ids", before - ids.len());
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_parses_as_three_percentages_and_picks_by_roll() {
        let mix = parse_mix("70,25,5").expect("mix");
        assert_eq!(mix, Mix([70, 25, 5]));
        assert_eq!((mix.pick(0), mix.pick(69), mix.pick(70), mix.pick(94), mix.pick(95)), {
            (Op::Search, Op::Search, Op::Upsert, Op::Upsert, Op::Delete)
        });
        assert_eq!(parse_mix("100,0,0").expect("mix").pick(99), Op::Search);
        for bad in ["70,25", "70,25,6", "a,b,c", "70,25,5,0", ""] {
            assert!(parse_mix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_check_finds_lost_resurrected_and_foreign_ids_and_skips_uncertain_ones() {
        use IdState::{Absent, Present, Uncertain};
        let run = |owned: Vec<u64>, states: Vec<IdState>, delete_missed: Vec<u64>| ClientRun {
            stats: Default::default(),
            owned,
            states,
            delete_missed,
        };
        let runs = [
            run(vec![0, 2, 4], vec![Present, Absent, Uncertain], vec![]),
            run(vec![1, 3, 5], vec![Present, Present, Absent], vec![]),
        ];
        let clean = compare(6, &runs, &[0, 1, 3], Some(3));
        assert!(clean.passed(), "{clean:?}");
        assert_eq!((clean.expected_present, clean.expected_absent, clean.uncertain), (3, 2, 1));
        // Uncertain id 4 may be listed or not.
        assert!(compare(6, &runs, &[0, 1, 3, 4], Some(4)).passed());
        let lost = compare(6, &runs, &[0, 1], Some(2));
        assert_eq!((lost.missing, lost.examples.clone(), lost.passed()), (1, vec![3], false));
        let back = compare(6, &runs, &[0, 1, 2, 3, 5], Some(5));
        assert_eq!((back.resurrected, back.examples.clone()), (2, vec![2, 5]));
        let foreign = compare(6, &runs, &[0, 1, 3, 9], Some(4));
        assert_eq!((foreign.foreign, foreign.passed()), (1, false));
        let missed = [run(vec![0], vec![Absent], vec![0])];
        assert!(!compare(1, &missed, &[], Some(0)).passed());
    }

    #[test]
    fn clients_own_disjoint_ids_covering_the_range_and_bodies_are_json() {
        let ctx = Ctx {
            url: String::new(),
            collection: "c".to_owned(),
            api_key: None,
            timeout: Duration::from_secs(1),
            dimension: 3,
            ids: 10,
            clients: 3,
            batch: 2,
            mix: Mix([70, 25, 5]),
            k: 10,
            ef: 64,
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        };
        let mut all: Vec<u64> = (0..3).flat_map(|c| ctx.owned(c)).collect();
        assert_eq!(ctx.owned(1), vec![1, 4, 7]);
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let mut rng = SmallRng::seed_from_u64(7);
        let body: Value =
            serde_json::from_str(&format!("{{\"vectors\":[{}]}}", ctx.points([4, 7], &mut rng))).expect("json");
        let points = body["vectors"].as_array().expect("vectors");
        assert_eq!(points.iter().map(|p| p["id"].as_u64()).collect::<Vec<_>>(), vec![Some(4), Some(7)]);
        for p in points {
            let v = p["vector"].as_array().expect("vector");
            assert_eq!(v.len(), 3);
            assert!(v.iter().all(|x| x.as_f64().is_some_and(|x| (-1.0..1.0).contains(&x))));
        }
    }
}
