//! `ruvector check`: a smoke test of a running node or router through its
//! REST API, for operators and for the helm chart's `helm test` pod.
//!
//! It waits for `/ready`, then creates a throw-away collection
//! (`ruvector-check-<random>`, euclidean, dimension 4), upserts a few
//! vectors whose ids spread over every shard of a cluster, reads each back,
//! searches, deletes one and checks it is gone from reads and searches, and
//! drops the collection. Each step prints one line on stdout; the first
//! failure stops the run with an error naming the step, after a best-effort
//! drop of the collection, so the exit status tells whether the service
//! works end to end.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use serde_json::{Value, json};

/// Vectors written by the check: enough ids that a cluster's hash ring puts
/// some on every shard of any sensible size.
const VECTORS: u64 = 64;
const DIMENSION: usize = 4;

/// Flags of `ruvector check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Base URL of a node or router, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "RUVECTOR_CHECK_URL")]
    pub url: String,
    /// Read-write API key, sent as the `api-key` header.
    #[arg(long, env = "RUVECTOR_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// How long to wait for `/ready` before giving up, in seconds.
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_secs: u64,
}

/// Runs the check; `Err` when any step fails.
pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/').to_owned();
    if !base.starts_with("http://") {
        bail!("--url must be a plain http:// URL (got {:?}); this build has no TLS", args.url);
    }
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        .build()
        .context("cannot build the HTTP client")?;
    let api = Api { http, base, api_key: args.api_key.clone() };

    api.wait_ready(Duration::from_secs(args.wait_secs))?;
    println!("ok   {}/ready answers 200", api.base);

    // RandomState is seeded randomly per process: a name no other run uses.
    let unique = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), std::process::id());
    let name = format!("ruvector-check-{unique:016x}");
    api.expect(
        reqwest::Method::POST,
        "/collections",
        Some(json!({"name": name, "dimension": DIMENSION, "metric": "euclidean"})),
        201,
    )
    .with_context(|| format!("creating collection {name}"))?;
    println!("ok   created collection {name}");

    let outcome = exercise(&api, &name);
    let dropped = api.expect(reqwest::Method::DELETE, &format!("/collections/{name}"), None, 200);
    outcome?;
    dropped.with_context(|| format!("dropping collection {name}"))?;
    println!("ok   dropped collection {name}");
    println!("check passed");
    Ok(())
}

/// The vector stored under `id`: distinct per id, exact in f32.
fn vector_of(id: u64) -> Vec<f32> {
    let x = id as f32;
    vec![x, x * 0.5, 100.0 - x, (id % 7) as f32]
}

fn exercise(api: &Api, name: &str) -> anyhow::Result<()> {
    let vectors: Vec<Value> = (1..=VECTORS).map(|id| json!({"id": id, "vector": vector_of(id)})).collect();
    let collection = format!("/collections/{name}");
    api.expect(reqwest::Method::POST, &format!("{collection}/vectors"), Some(json!({ "vectors": vectors })), 201)
        .context("upserting vectors")?;
    println!("ok   upserted {VECTORS} vectors");

    for id in 1..=VECTORS {
        let got = api
            .expect(reqwest::Method::GET, &format!("{collection}/vectors/{id}"), None, 200)
            .with_context(|| format!("reading vector {id}"))?;
        let stored: Vec<f32> = serde_json::from_value(got.get("vector").cloned().unwrap_or(Value::Null))
            .with_context(|| format!("vector {id} came back without a vector: {got}"))?;
        ensure!(stored == vector_of(id), "vector {id} came back as {stored:?}, expected {:?}", vector_of(id));
    }
    println!("ok   read back all {VECTORS} vectors");

    let probe = 17;
    let hits = search(api, &collection, probe)?;
    ensure!(hits.first() == Some(&probe), "searching for vector {probe} ranked {hits:?} first, expected {probe}");
    ensure!(hits.len() == 5, "search for k=5 returned {} hits: {hits:?}", hits.len());
    println!("ok   search finds vector {probe} first");

    api.expect(reqwest::Method::DELETE, &format!("{collection}/vectors/{probe}"), None, 200)
        .with_context(|| format!("deleting vector {probe}"))?;
    api.expect(reqwest::Method::GET, &format!("{collection}/vectors/{probe}"), None, 404)
        .with_context(|| format!("reading deleted vector {probe}"))?;
    let hits = search(api, &collection, probe)?;
    ensure!(!hits.contains(&probe), "deleted vector {probe} is still found by search: {hits:?}");
    println!("ok   deleted vector {probe} is gone from reads and searches");
    Ok(())
}

/// The ids of the 5 nearest neighbours of vector `id`'s value.
fn search(api: &Api, collection: &str, id: u64) -> anyhow::Result<Vec<u64>> {
    let body = json!({"vector": vector_of(id), "k": 5});
    let hits =
        api.expect(reqwest::Method::POST, &format!("{collection}/search"), Some(body), 200).context("searching")?;
    let hits = hits.as_array().with_context(|| format!("search answered {hits}, not a list"))?;
    hits.iter()
        .map(|hit| hit.get("id").and_then(Value::as_u64).with_context(|| format!("search hit without an id: {hit}")))
        .collect()
}

struct Api {
    http: reqwest::blocking::Client,
    base: String,
    api_key: Option<String>,
}

impl Api {
    /// Polls `/ready` every 500 ms until it answers 200 or `wait` passes.
    fn wait_ready(&self, wait: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            let last = match self.http.get(format!("{}/ready", self.base)).send() {
                Ok(response) if response.status().as_u16() == 200 => return Ok(()),
                Ok(response) => format!("HTTP {}", response.status()),
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                bail!("{}/ready did not answer 200 within {} s (last: {last})", self.base, wait.as_secs());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Sends one request and checks its status; returns the parsed body
    /// (`null` when empty).
    fn expect(&self, method: reqwest::Method, path: &str, body: Option<Value>, status: u16) -> anyhow::Result<Value> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(key) = &self.api_key {
            request = request.header("api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().with_context(|| format!("{method} {path}"))?;
        let got = response.status().as_u16();
        let text = response.text().with_context(|| format!("{method} {path}: reading the answer"))?;
        ensure!(got == status, "{method} {path} answered HTTP {got} (expected {status}): {}", text.trim());
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path} answered invalid JSON: {text}"))
    }
}
