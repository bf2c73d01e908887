//! Test doubles and harness for the router's integration tests.
//!
//! [`FakeShard`] is a *test double* of a ruvector node: a small axum app on
//! `127.0.0.1:0` with an in-memory map per collection and brute-force
//! search. It implements just enough of the node API for the router (and
//! validates with `ruvector_api` as a node does). To check that the router
//! never assumes sorted shard results, it returns search hits farthest
//! first. It can be switched "unavailable" (every route answers 503) and it
//! logs each request's method, path and `api-key` header.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ruvector_api::{
    ApiError, BatchSearchRequest, CollectionInfo, CreateCollectionRequest, IdsPage, IdsQuery, Limits, Metric,
    SearchHit, SearchRequest, StatusResponse, UpsertRequest, ValidCreate, ValidSearch, VectorRecord, parse_json,
};
use ruvector_router::{RouterConfig, RouterState, app};

/// One collection of a fake shard.
#[derive(Debug, Clone)]
pub struct FakeCollection {
    pub config: ValidCreate,
    pub vectors: BTreeMap<u64, VectorRecord>,
}

/// A logged request.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub api_key: Option<String>,
}

/// The shared state of a fake shard.
#[derive(Debug, Default)]
pub struct FakeState {
    pub collections: Mutex<HashMap<String, FakeCollection>>,
    pub unavailable: AtomicBool,
    pub log: Mutex<Vec<Logged>>,
}

impl FakeState {
    pub fn collections(&self) -> MutexGuard<'_, HashMap<String, FakeCollection>> {
        self.collections.lock().expect("fake shard lock")
    }

    pub fn ids(&self, collection: &str) -> Vec<u64> {
        self.collections().get(collection).map(|c| c.vectors.keys().copied().collect()).unwrap_or_default()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().expect("log lock").clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().expect("log lock").clear();
    }

    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::SeqCst);
    }
}

/// A running fake shard.
#[derive(Debug)]
pub struct FakeShard {
    pub url: String,
    pub state: Arc<FakeState>,
}

type Shared = Arc<FakeState>;
type Result<T> = std::result::Result<T, Fail>;

/// An `ApiError` response.
pub struct Fail(ApiError);

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail(e)
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (self.0.status(), axum::Json(self.0.body())).into_response()
    }
}

fn json<T: serde::Serialize>(status: StatusCode, t: &T) -> Response {
    (status, axum::Json(t)).into_response()
}

pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Euclidean => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt(),
        Metric::Manhattan => a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum(),
        Metric::DotProduct => -a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
        Metric::Cosine => {
            let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            1.0 - dot / (na * nb).max(f32::MIN_POSITIVE)
        }
    }
}

/// Brute-force top k, nearest first (ties by id), as the oracle.
pub fn brute_force<'a>(
    metric: Metric,
    records: impl IntoIterator<Item = &'a VectorRecord>,
    query: &[f32],
    k: usize,
) -> Vec<SearchHit> {
    let mut all: Vec<SearchHit> =
        records.into_iter().map(|r| SearchHit { id: r.id, distance: distance(metric, &r.vector, query) }).collect();
    all.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
    all.truncate(k);
    all
}

async fn gate(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let api_key = req.headers().get("api-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    s.log.lock().expect("log lock").push(Logged {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        api_key,
    });
    if s.unavailable.load(Ordering::SeqCst) {
        return Fail(ApiError::Unavailable("fake shard is unavailable".into())).into_response();
    }
    next.run(req).await
}

fn info(c: &FakeCollection) -> CollectionInfo {
    CollectionInfo { size: c.vectors.len() as u64, max_level: 1, ..CollectionInfo::empty(&c.config) }
}

async fn ready() -> Response {
    json(StatusCode::OK, &StatusResponse::ok())
}

/// A node that has recovered answers its assignment; the fake holds no
/// partitioned collection, so it reports none (the router's sync then has
/// nothing to do).
async fn assignment() -> Response {
    json(
        StatusCode::OK,
        &ruvector_api::ShardAssignment {
            placement: None,
            epoch: 0,
            planner: 0,
            planner_age_ms: 0,
            collections: Vec::new(),
            routers: Vec::new(),
        },
    )
}

async fn list(State(s): State<Shared>) -> Response {
    let mut infos: Vec<CollectionInfo> = s.collections().values().map(info).collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    json(StatusCode::OK, &infos)
}

async fn create(State(s): State<Shared>, body: Bytes) -> Result<Response> {
    let valid = parse_json::<CreateCollectionRequest>(&body)?.validate(&Limits::default())?;
    let mut cols = s.collections();
    if cols.contains_key(&valid.name) {
        return Err(ApiError::collection_exists(&valid.name).into());
    }
    cols.insert(valid.name.clone(), FakeCollection { config: valid, vectors: BTreeMap::new() });
    Ok(json(StatusCode::CREATED, &StatusResponse::created()))
}

fn with<T>(s: &FakeState, name: &str, f: impl FnOnce(&mut FakeCollection) -> Result<T>) -> Result<T> {
    let mut cols = s.collections();
    let c = cols.get_mut(name).ok_or_else(|| ApiError::not_found_collection(name))?;
    f(c)
}

async fn get_info(State(s): State<Shared>, Path(name): Path<String>) -> Result<Response> {
    with(&s, &name, |c| Ok(json(StatusCode::OK, &info(c))))
}

async fn drop_collection(State(s): State<Shared>, Path(name): Path<String>) -> Result<Response> {
    s.collections().remove(&name).ok_or_else(|| ApiError::not_found_collection(&name))?;
    Ok(json(StatusCode::OK, &StatusResponse::deleted()))
}

async fn upsert(State(s): State<Shared>, Path(name): Path<String>, body: Bytes) -> Result<Response> {
    let req = parse_json::<UpsertRequest>(&body)?;
    with(&s, &name, |c| {
        let valid = req.validate(c.config.dimension, c.config.metric, &Limits::default())?;
        let n = valid.vectors.len();
        for r in valid.vectors {
            c.vectors.insert(r.id, r);
        }
        Ok(json(StatusCode::CREATED, &StatusResponse::inserted(n)))
    })
}

async fn get_vector(State(s): State<Shared>, Path((name, id)): Path<(String, u64)>) -> Result<Response> {
    with(&s, &name, |c| {
        let r = c.vectors.get(&id).ok_or_else(|| ApiError::not_found_vector(&name, id))?;
        Ok(json(StatusCode::OK, r))
    })
}

async fn delete_vector(State(s): State<Shared>, Path((name, id)): Path<(String, u64)>) -> Result<Response> {
    with(&s, &name, |c| {
        c.vectors.remove(&id).ok_or_else(|| ApiError::not_found_vector(&name, id))?;
        Ok(json(StatusCode::OK, &StatusResponse::deleted()))
    })
}

/// Brute force, returned farthest first (the router must not care).
fn run(c: &FakeCollection, s: &ValidSearch) -> Vec<SearchHit> {
    let mut hits = brute_force(c.config.metric, c.vectors.values(), &s.vector, s.k);
    hits.reverse();
    hits
}

async fn search(State(s): State<Shared>, Path(name): Path<String>, body: Bytes) -> Result<Response> {
    let req = parse_json::<SearchRequest>(&body)?;
    with(&s, &name, |c| {
        let valid = req.validate(c.config.dimension, &Limits::default())?;
        Ok(json(StatusCode::OK, &run(c, &valid)))
    })
}

async fn search_batch(State(s): State<Shared>, Path(name): Path<String>, body: Bytes) -> Result<Response> {
    let req = parse_json::<BatchSearchRequest>(&body)?;
    with(&s, &name, |c| {
        let valid = req.validate(c.config.dimension, &Limits::default())?;
        let out: Vec<Vec<SearchHit>> = valid.searches.iter().map(|q| run(c, q)).collect();
        Ok(json(StatusCode::OK, &out))
    })
}

async fn ids(State(s): State<Shared>, Path(name): Path<String>, Query(q): Query<IdsQuery>) -> Result<Response> {
    let q = q.validate(&Limits::default())?;
    with(&s, &name, |c| {
        let ids: Vec<u64> = match q.after {
            Some(u64::MAX) => Vec::new(),
            Some(after) => c.vectors.range(after + 1..).map(|(id, _)| *id).take(q.limit + 1).collect(),
            None => c.vectors.keys().copied().take(q.limit + 1).collect(),
        };
        Ok(json(StatusCode::OK, &IdsPage::from_ascending(ids, q.limit)))
    })
}

impl FakeShard {
    /// Starts a fake shard on `127.0.0.1:0`.
    pub async fn start() -> FakeShard {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/ready", get(ready))
            .route("/health", get(ready))
            .route("/collections", get(list).post(create))
            .route("/collections/{name}", get(get_info).delete(drop_collection))
            .route("/collections/{name}/vectors", post(upsert))
            .route("/collections/{name}/vectors/{id}", get(get_vector).delete(delete_vector))
            .route("/collections/{name}/search", post(search))
            .route("/collections/{name}/search/batch", post(search_batch))
            .route("/collections/{name}/ids", get(ids))
            .route("/cluster/assignment", get(assignment))
            .layer(from_fn_with_state(state.clone(), gate))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake shard");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeShard { url: format!("http://{addr}"), state }
    }
}

/// The URL of a loopback port where nothing listens (connection refused).
/// The port stays bound, never listening, for the rest of the test process
/// (the socket is leaked): released, another test or process could take it
/// and answer.
pub async fn closed_port_url() -> String {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
    let addr = socket.local_addr().expect("addr");
    Box::leak(Box::new(socket));
    format!("http://{addr}")
}

/// A router app on `127.0.0.1:0` over `shards`, with its state.
pub struct TestRouter {
    pub url: String,
    pub state: RouterState,
    pub http: reqwest::Client,
}

impl TestRouter {
    pub async fn start(config: RouterConfig) -> TestRouter {
        let state = RouterState::new(config).expect("router state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind router");
        let addr = listener.local_addr().expect("addr");
        let router = app(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().expect("client");
        TestRouter { url: format!("http://{addr}"), state, http }
    }

    /// A router over `shards` with test-friendly timeouts.
    pub async fn over(shards: &[String]) -> TestRouter {
        let config = RouterConfig {
            shards: shards.to_vec(),
            connect_timeout_ms: 500,
            request_timeout_ms: 3000,
            health_interval_ms: 0,
            ..RouterConfig::default()
        };
        TestRouter::start(config).await
    }

    /// Sends a request; returns status, headers and the JSON body (`null`
    /// when the body is not JSON).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("router answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (s, _, b) = self.send(reqwest::Method::GET, path, None).await;
        (s, b)
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (s, _, b) = self.send(reqwest::Method::POST, path, Some(body)).await;
        (s, b)
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        let (s, _, b) = self.send(reqwest::Method::DELETE, path, None).await;
        (s, b)
    }
}

/// A deterministic pseudo-random vector (SplitMix64), components in [-1, 1).
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed;
    (0..dim)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Measures how long `f` takes.
pub async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let t = f.await;
    (t, start.elapsed())
}
