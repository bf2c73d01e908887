//! The shard client: one pooled `reqwest::Client` for every request to
//! every shard, error classification, and per-shard health bookkeeping.
//!
//! Every call has a connect timeout and a whole-request timeout (from
//! [`crate::RouterConfig`]), so no router request can wait on a shard for
//! longer than those. Shard hostnames are resolved per new connection by
//! the OS resolver (reqwest without hickory), so a restarted pod with a
//! new IP is found again; environment proxies are ignored (shard traffic
//! is cluster-internal).
//!
//! A call ends in one of three ways:
//!
//! - `Ok(bytes)`: the shard answered 2xx;
//! - [`ShardError::Rejected`]: the shard answered 4xx — the client's fault,
//!   rebuilt with [`ApiError::from_wire`] so the router can forward it with
//!   the same status, code and message;
//! - [`ShardError::Unavailable`]: unreachable, timed out, 5xx, or a 2xx
//!   whose body is not what the API promises. The message names the shard:
//!   `shard http://… unavailable: <cause>`.
//!
//! Invariant: a shard's `up` flag and the `ruvector_router_shard_up` gauge
//! reflect the last call or probe: reachable (2xx or 4xx) is up, anything
//! in `Unavailable` is down, with its cause kept as `last_error`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use ruvector_api::{
    ApiError, CATCH_UP_HEADER, EPOCH_HEADER, ErrorBody, ImportReport, PLACEMENT_HEADER, SNAPSHOT_MEDIA_TYPE,
    UNREADY_HEADER, parse_unready,
};
use serde::de::DeserializeOwned;

use crate::metrics::{Metrics, ShardErrorKind};
use crate::{RouterConfig, RouterError};

use ruvector_api::API_KEY_HEADER;

/// A failed shard call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ShardError {
    /// The shard answered 4xx: forward it.
    Rejected(ApiError),
    /// The shard could not serve the request.
    Unavailable {
        /// Index of the shard.
        shard: usize,
        /// `shard http://… unavailable: <cause>`.
        message: String,
    },
}

impl ShardError {
    /// The error to send the client.
    pub(crate) fn into_api(self) -> ApiError {
        match self {
            ShardError::Rejected(e) => e,
            ShardError::Unavailable { message, .. } => ApiError::Unavailable(message),
        }
    }
}

/// The credentials sent to shards: the client's own key headers (checked
/// by the router already), or the router's configured key for requests the
/// router makes on its own behalf (probes, `/cluster`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials(Vec<(HeaderName, HeaderValue)>);

impl Credentials {
    /// The `api-key` and `Authorization` headers of a client request.
    pub(crate) fn from_client(headers: &HeaderMap) -> Self {
        let mut out = Vec::new();
        for name in [HeaderName::from_static(API_KEY_HEADER), header::AUTHORIZATION] {
            if let Some(v) = headers.get(&name) {
                out.push((name, v.clone()));
            }
        }
        Credentials(out)
    }

    /// These credentials plus the catch-up header (reads from a filling copy).
    pub(crate) fn for_catch_up(&self) -> Self {
        let mut headers = self.0.clone();
        headers.push((HeaderName::from_static(CATCH_UP_HEADER), HeaderValue::from_static("1")));
        Credentials(headers)
    }

    /// The router's own key: the read-write key, else the read-only one.
    pub(crate) fn internal(config: &RouterConfig) -> Self {
        let key = config.api_key.as_deref().or(config.read_only_api_key.as_deref());
        match key.map(HeaderValue::from_str) {
            Some(Ok(mut v)) => {
                v.set_sensitive(true);
                Credentials(vec![(HeaderName::from_static(API_KEY_HEADER), v)])
            }
            // A key that is not a valid header value cannot be sent; the
            // shard will answer 401, which `/cluster` reports.
            Some(Err(_)) | None => Credentials(Vec::new()),
        }
    }
}

/// What a shard answered: status, body, and its unready-partitions header
/// (`Some(None)`: present but malformed).
type Answer = (reqwest::StatusCode, Bytes, Option<Option<Vec<u32>>>);

/// A shard's 2xx answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The body.
    pub(crate) bytes: Bytes,
    /// Partitions it left out of a read because they are filling.
    pub(crate) unready: Vec<u32>,
}

/// Health of one shard as last observed.
#[derive(Debug)]
struct Health {
    up: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// One shard.
#[derive(Debug)]
pub(crate) struct Shard {
    /// Normalised base URL, e.g. `http://shard-0:8080`.
    pub(crate) address: String,
    health: Health,
}

/// What [`ShardClient::status`] reports about a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardHealth {
    pub(crate) up: bool,
    pub(crate) last_error: Option<String>,
}

/// The client for every shard.
#[derive(Debug)]
pub(crate) struct ShardClient {
    http: reqwest::Client,
    shards: Vec<Shard>,
    /// The placement epoch this router routes by, sent with every request
    /// (`x-ruvector-epoch`) so shards can fence stale routers.
    epoch: AtomicU64,
    /// This router's placement fingerprint, sent with every request
    /// (`x-ruvector-placement`) so shards can tell routers with another
    /// shard list apart.
    placement: std::sync::OnceLock<String>,
    /// Largest response body read from a shard.
    max_response_bytes: usize,
}

impl ShardClient {
    /// Builds the pooled client for `addresses`.
    pub(crate) fn new(addresses: Vec<String>, config: &RouterConfig) -> Result<Self, RouterError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout())
            .timeout(config.request_timeout())
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .no_proxy()
            .user_agent(concat!("ruvector-router/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(RouterError::Client)?;
        let shards = addresses
            .into_iter()
            .map(|address| Shard {
                address,
                health: Health { up: AtomicBool::new(true), last_error: Mutex::new(None) },
            })
            .collect();
        Ok(ShardClient {
            http,
            shards,
            epoch: AtomicU64::new(0),
            placement: std::sync::OnceLock::new(),
            max_response_bytes: config.max_shard_response_bytes,
        })
    }

    /// Sets the placement fingerprint sent with every request (once).
    pub(crate) fn set_placement(&self, placement: String) {
        let _ = self.placement.set(placement);
    }

    /// Sets the placement epoch sent with every request (never lowered).
    pub(crate) fn set_epoch(&self, epoch: u64) {
        self.epoch.fetch_max(epoch, Ordering::Relaxed);
    }

    /// Whether shard `i` answered its last request or probe.
    pub(crate) fn is_up(&self, i: usize) -> bool {
        self.shards.get(i).is_some_and(|s| s.health.up.load(Ordering::Relaxed))
    }

    /// Number of shards.
    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }

    /// The address of shard `i`.
    pub(crate) fn address(&self, i: usize) -> &str {
        self.shards.get(i).map_or("<unknown shard>", |s| s.address.as_str())
    }

    /// The last observed health of shard `i`.
    pub(crate) fn health(&self, i: usize) -> ShardHealth {
        match self.shards.get(i) {
            Some(s) => ShardHealth {
                up: s.health.up.load(Ordering::Relaxed),
                last_error: s.health.last_error.lock().map(|e| e.clone()).unwrap_or(None),
            },
            None => ShardHealth { up: false, last_error: None },
        }
    }

    /// Sends one request to shard `shard` and classifies the answer (see
    /// the module docs). `path` starts with `/`; `timeout` overrides the
    /// configured request timeout (used by readiness probes).
    #[allow(clippy::too_many_arguments, reason = "one call site per operation; a builder would add nothing")]
    pub(crate) async fn call(
        &self,
        metrics: &Metrics,
        shard: usize,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        credentials: &Credentials,
        timeout: Option<Duration>,
    ) -> Result<Bytes, ShardError> {
        self.call_reply(metrics, shard, op, method, path, body, credentials, timeout).await.map(|r| r.bytes)
    }

    /// [`Self::call`], keeping the partitions the shard left out of a read
    /// because they are filling (its `x-ruvector-unready-partitions` header).
    #[allow(clippy::too_many_arguments, reason = "mirrors `call`")]
    pub(crate) async fn call_reply(
        &self,
        metrics: &Metrics,
        shard: usize,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        credentials: &Credentials,
        timeout: Option<Duration>,
    ) -> Result<Reply, ShardError> {
        let address = self.address(shard).to_owned();
        let mut request = self.request(shard, method, path, credentials, timeout);
        if let Some(body) = body {
            request = request.header(header::CONTENT_TYPE, "application/json").body(body);
        }
        let start = Instant::now();
        let outcome = async {
            let response = request.send().await.map_err(|e| (kind_of(&e), describe(&e)))?;
            let status = response.status();
            let unready = response.headers().get(UNREADY_HEADER).map(|v| v.to_str().ok().and_then(parse_unready));
            let bytes = read_bounded(response, self.max_response_bytes).await?;
            Ok::<_, (ShardErrorKind, String)>((status, bytes, unready))
        }
        .await;
        metrics.shard_request(&address, op, start.elapsed());
        self.classify(metrics, shard, outcome)
    }

    /// A request to shard `shard` with the epoch, `credentials` and
    /// `timeout` (else the configured one) set.
    fn request(
        &self,
        shard: usize,
        method: Method,
        path: &str,
        credentials: &Credentials,
        timeout: Option<Duration>,
    ) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.address(shard)));
        // Sent even before the first sync (epoch 0): a router that has
        // seen no placement yet is fenced by any shard that has one.
        request = request.header(EPOCH_HEADER, self.epoch.load(Ordering::Relaxed));
        if let Some(placement) = self.placement.get() {
            request = request.header(PLACEMENT_HEADER, placement.as_str());
        }
        for (name, value) in &credentials.0 {
            request = request.header(name, value);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        request
    }

    /// Turns what a shard answered (or why it did not) into a [`Reply`] or
    /// a [`ShardError`], recording the shard's health (module docs).
    fn classify(
        &self,
        metrics: &Metrics,
        shard: usize,
        outcome: Result<Answer, (ShardErrorKind, String)>,
    ) -> Result<Reply, ShardError> {
        let address = self.address(shard).to_owned();
        let result = match outcome {
            Err((kind, cause)) => Err((kind, cause)),
            Ok((status, _, Some(None))) if status.is_success() => {
                return Err(self.invalid_response(metrics, shard, "malformed unready-partitions header"));
            }
            Ok((status, bytes, unready)) if status.is_success() => {
                Ok(Reply { bytes, unready: unready.flatten().unwrap_or_default() })
            }
            Ok((status, bytes, _)) => {
                let body = serde_json::from_slice::<ErrorBody>(&bytes).ok();
                // A full volume is the shard's answer to this write, not
                // the shard failing: forwarded as is (507), so the client
                // learns why.
                if let Some(b) = body.as_ref().filter(|b| b.code == "insufficient_storage") {
                    return self.observed(
                        metrics,
                        shard,
                        Err(ShardError::Rejected(ApiError::from_wire(status.as_u16(), b.clone()))),
                    );
                }
                if status.is_client_error() {
                    let body = body.unwrap_or_else(|| ErrorBody {
                        error: format!("shard {address} answered {status}: {}", snippet(&bytes)),
                        code: String::new(),
                    });
                    return self.observed(
                        metrics,
                        shard,
                        Err(ShardError::Rejected(ApiError::from_wire(status.as_u16(), body))),
                    );
                }
                let cause = match body {
                    Some(b) if b.code == "unavailable" => b.error,
                    Some(b) => format!("answered {status} ({})", b.code),
                    None => format!("answered {status}"),
                };
                Err((ShardErrorKind::Status, cause))
            }
        };
        match result {
            Ok(reply) => self.observed(metrics, shard, Ok(reply)),
            Err((kind, cause)) => Err(self.unavailable(metrics, shard, kind, &cause)),
        }
    }

    /// Records shard `shard` as down for `cause`; the error to return.
    fn unavailable(&self, metrics: &Metrics, shard: usize, kind: ShardErrorKind, cause: &str) -> ShardError {
        let address = self.address(shard).to_owned();
        metrics.shard_error(&address, kind);
        let error = ShardError::Unavailable { shard, message: format!("shard {address} unavailable: {cause}") };
        self.record(metrics, shard, Some(&error));
        error
    }

    /// Streams partition `partition` of `name` from shard `source` into
    /// shard `target` (`GET`, then `POST` of
    /// `/collections/{name}/partitions/{partition}/snapshot`) without
    /// decoding it, and returns what the target applied. A failure is
    /// attributed to the shard that caused it: a source whose stream broke
    /// off, else the target.
    #[allow(clippy::too_many_arguments, reason = "mirrors `call`")]
    pub(crate) async fn pipe_snapshot(
        &self,
        metrics: &Metrics,
        source: usize,
        target: usize,
        name: &str,
        partition: u32,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<ImportReport, ShardError> {
        use futures::TryStreamExt;
        let path = format!("/collections/{name}/partitions/{partition}/snapshot");
        let start = Instant::now();
        let response = self.request(source, Method::GET, &path, credentials, Some(timeout)).send().await;
        let response = match response {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                let status = r.status();
                let outcome = read_bounded(r, self.max_response_bytes).await.map(|b| (status, b, None));
                // Not a success: `classify` gives the error.
                return match self.classify(metrics, source, outcome) {
                    Err(e) => Err(e),
                    Ok(_) => Err(self.invalid_response(metrics, source, "the snapshot answer is not a success")),
                };
            }
            Err(e) => return Err(self.unavailable(metrics, source, kind_of(&e), &describe(&e))),
        };
        let broken: std::sync::Arc<Mutex<Option<String>>> = std::sync::Arc::default();
        let noted = std::sync::Arc::clone(&broken);
        let stream = response.bytes_stream().inspect_err(move |e| {
            if let Ok(mut b) = noted.lock() {
                *b = Some(describe(e));
            }
        });
        let request = self
            .request(target, Method::POST, &path, credentials, Some(timeout))
            .header(header::CONTENT_TYPE, SNAPSHOT_MEDIA_TYPE)
            .body(reqwest::Body::wrap_stream(stream));
        let outcome = async {
            let response = request.send().await.map_err(|e| (kind_of(&e), describe(&e)))?;
            let status = response.status();
            let bytes = read_bounded(response, self.max_response_bytes).await?;
            Ok::<_, (ShardErrorKind, String)>((status, bytes, None))
        }
        .await;
        let address = self.address(target).to_owned();
        metrics.shard_request(&address, "snapshot", start.elapsed());
        if let Some(cause) = broken.lock().ok().and_then(|b| b.clone()) {
            return Err(self.unavailable(
                metrics,
                source,
                ShardErrorKind::Other,
                &format!("its snapshot stream broke off: {cause}"),
            ));
        }
        let reply = self.classify(metrics, target, outcome)?;
        serde_json::from_slice(&reply.bytes).map_err(|e| self.invalid_response(metrics, target, &e.to_string()))
    }

    /// [`Self::call`] and parse a 2xx body as `T` (a body that does not
    /// parse makes the shard unavailable: it is not speaking the API).
    #[allow(clippy::too_many_arguments, reason = "mirrors `call`")]
    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        metrics: &Metrics,
        shard: usize,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        credentials: &Credentials,
    ) -> Result<T, ShardError> {
        self.call_json_reply(metrics, shard, op, method, path, body, credentials).await.map(|(t, _)| t)
    }

    /// [`Self::call_json`] with the partitions the shard left out.
    #[allow(clippy::too_many_arguments, reason = "mirrors `call`")]
    pub(crate) async fn call_json_reply<T: DeserializeOwned>(
        &self,
        metrics: &Metrics,
        shard: usize,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        credentials: &Credentials,
    ) -> Result<(T, Vec<u32>), ShardError> {
        let reply = self.call_reply(metrics, shard, op, method, path, body, credentials, None).await?;
        let t =
            serde_json::from_slice(&reply.bytes).map_err(|e| self.invalid_response(metrics, shard, &e.to_string()))?;
        Ok((t, reply.unready))
    }

    /// Marks a 2xx answer that does not fit the API as a shard failure.
    pub(crate) fn invalid_response(&self, metrics: &Metrics, shard: usize, why: &str) -> ShardError {
        let address = self.address(shard);
        metrics.shard_error(address, ShardErrorKind::InvalidResponse);
        let error =
            ShardError::Unavailable { shard, message: format!("shard {address} unavailable: invalid response: {why}") };
        self.record(metrics, shard, Some(&error));
        error
    }

    /// Updates the shard's health from a call's result and passes it on.
    fn observed<T>(&self, metrics: &Metrics, shard: usize, result: Result<T, ShardError>) -> Result<T, ShardError> {
        self.record(metrics, shard, result.as_ref().err());
        result
    }

    fn record(&self, metrics: &Metrics, shard: usize, error: Option<&ShardError>) {
        let Some(s) = self.shards.get(shard) else { return };
        let down = match error {
            Some(ShardError::Unavailable { message, .. }) => {
                if let Ok(mut last) = s.health.last_error.lock() {
                    *last = Some(message.clone());
                }
                true
            }
            Some(ShardError::Rejected(_)) | None => false,
        };
        let was_up = s.health.up.swap(!down, Ordering::Relaxed);
        if was_up == down {
            if down {
                tracing::warn!(shard = %s.address, "shard is down");
            } else {
                tracing::info!(shard = %s.address, "shard is up");
            }
        }
        metrics.set_shard_up(&s.address, !down);
    }
}

/// A response body, refused past `limit` bytes (by its announced length at
/// once, else as it streams in), so a shard cannot make the router buffer
/// without bound.
async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<axum::body::Bytes, (ShardErrorKind, String)> {
    let too_big = || (ShardErrorKind::InvalidResponse, format!("response body over the {limit}-byte limit"));
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| (kind_of(&e), describe(&e)))? {
        if body.len() + chunk.len() > limit {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

fn kind_of(e: &reqwest::Error) -> ShardErrorKind {
    if e.is_connect() {
        ShardErrorKind::Connect
    } else if e.is_timeout() {
        ShardErrorKind::Timeout
    } else {
        ShardErrorKind::Other
    }
}

/// A short, client-safe cause: reqwest's message plus its innermost source
/// (e.g. "Connection refused (os error 111)"), without the URL twice.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "error reading the response"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut innermost = None;
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    match innermost {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_owned(),
    }
}

/// The first 200 bytes of a body, for a message.
fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    s.trim().to_owned()
}
