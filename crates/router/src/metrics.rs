//! Prometheus metrics of one router, in one registry per
//! [`crate::RouterState`] (no global state), rendered at `GET /metrics` in
//! the text format (`promtool check metrics` clean).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ruvector_router_http_requests_total` | counter | `route`, `method`, `status` |
//! | `ruvector_router_http_request_duration_seconds` | histogram | `route`, `method` |
//! | `ruvector_router_shard_request_duration_seconds` | histogram | `shard`, `op` |
//! | `ruvector_router_shard_errors_total` | counter | `shard`, `kind` (`connect`, `timeout`, `status`, `invalid_response`, `other`) |
//! | `ruvector_router_shard_up` | gauge (1 up, 0 down: the last request or probe failed to reach it) | `shard` |
//! | `ruvector_router_fanout_width` | histogram (shards contacted per fan-out request) | `op` |
//! | `ruvector_router_partial_results_total` | counter (searches answered without some shard) | — |
//! | `ruvector_router_failovers_total` | counter (requests answered by other copies after a shard failed) | `op` |
//! | `ruvector_router_repairs_total` | counter (writes the anti-entropy pass sent to copies that lacked them) | `kind` (`upsert`, `delete`) |
//! | `process_*` | the `prometheus` crate's process collector | — |
//!
//! Label sets are bounded: `route` is the matched route *template* or
//! `unmatched`; `method` a standard method or `other`; `shard` one of the
//! configured addresses; `op` one of the router's fixed operation names.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::RouterState;

/// The route label of a response, set by [`tag_route`] on matched routes.
#[derive(Debug, Clone)]
pub(crate) struct RouteLabel(pub(crate) Arc<str>);

/// The label used for requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Why a shard request failed, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShardErrorKind {
    /// TCP connect failed or timed out.
    Connect,
    /// The request timed out.
    Timeout,
    /// The shard answered 5xx.
    Status,
    /// The shard answered 2xx with a body that is not what the API promises.
    InvalidResponse,
    /// Anything else (connection reset mid-body, …).
    Other,
}

impl ShardErrorKind {
    fn label(self) -> &'static str {
        match self {
            ShardErrorKind::Connect => "connect",
            ShardErrorKind::Timeout => "timeout",
            ShardErrorKind::Status => "status",
            ShardErrorKind::InvalidResponse => "invalid_response",
            ShardErrorKind::Other => "other",
        }
    }
}

/// The router's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    shard_duration: HistogramVec,
    shard_errors: IntCounterVec,
    shard_up: IntGaugeVec,
    fanout_width: HistogramVec,
    partial_results: IntCounter,
    failovers: IntCounterVec,
    repairs: IntCounterVec,
    missed_writes: IntCounter,
    missed_backlog: IntGauge,
    partitions_filling: IntGaugeVec,
    catchup_duration: Histogram,
    moves_in_flight: IntGauge,
    copied_vectors: IntCounter,
    copied_bytes: IntCounter,
    move_duration: Histogram,
}

/// Latency buckets from 100 µs to ~100 s.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0001, 2.0, 21).unwrap_or_else(|_| prometheus::DEFAULT_BUCKETS.to_vec())
}

impl Metrics {
    /// Creates and registers every metric; `shards` pre-creates the
    /// per-shard series (so a shard that was never reached still shows up).
    pub(crate) fn new(shards: &[String]) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "ruvector_router_http_requests_total",
                "HTTP requests by matched route template, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "ruvector_router_http_request_duration_seconds",
                "HTTP request latency by matched route template and method.",
            )
            .buckets(latency_buckets()),
            &["route", "method"],
        )?;
        let shard_duration = HistogramVec::new(
            HistogramOpts::new(
                "ruvector_router_shard_request_duration_seconds",
                "Latency of requests from the router to a shard, by shard and operation.",
            )
            .buckets(latency_buckets()),
            &["shard", "op"],
        )?;
        let shard_errors = IntCounterVec::new(
            Opts::new(
                "ruvector_router_shard_errors_total",
                "Shard requests that failed (unreachable, timed out, 5xx or invalid response), by shard and kind.",
            ),
            &["shard", "kind"],
        )?;
        let shard_up = IntGaugeVec::new(
            Opts::new("ruvector_router_shard_up", "1 if the last request or probe reached the shard, else 0."),
            &["shard"],
        )?;
        let fanout_width = HistogramVec::new(
            HistogramOpts::new(
                "ruvector_router_fanout_width",
                "Number of shards one client request was sent to, by operation.",
            )
            .buckets(vec![1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0]),
            &["op"],
        )?;
        let partial_results = IntCounter::new(
            "ruvector_router_partial_results_total",
            "Searches answered with allow_partial while at least one shard did not answer.",
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(shard_duration.clone()))?;
        registry.register(Box::new(shard_errors.clone()))?;
        registry.register(Box::new(shard_up.clone()))?;
        registry.register(Box::new(fanout_width.clone()))?;
        let failovers = IntCounterVec::new(
            Opts::new(
                "ruvector_router_failovers_total",
                "Requests answered by other copies after a shard failed, by operation.",
            ),
            &["op"],
        )?;
        registry.register(Box::new(partial_results.clone()))?;
        registry.register(Box::new(failovers.clone()))?;
        let repairs = IntCounterVec::new(
            Opts::new(
                "ruvector_router_repairs_total",
                "Writes the anti-entropy pass sent to copies that lacked them, by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(repairs.clone()))?;
        let missed_writes = IntCounter::new(
            "ruvector_router_missed_writes_total",
            "Writes acknowledged without one of their copies (down, skipped or failed): that copy is caught up later.",
        )?;
        let missed_backlog = IntGauge::new(
            "ruvector_router_missed_write_backlog",
            "Partition copies known to have missed writes and not yet caught up (this router's view).",
        )?;
        let partitions_filling = IntGaugeVec::new(
            Opts::new(
                "ruvector_router_partitions_filling",
                "Partition copies a shard holds that are filling (not read until caught up), at the last sync.",
            ),
            &["shard"],
        )?;
        let catchup_duration = Histogram::with_opts(
            HistogramOpts::new(
                "ruvector_router_catchup_duration_seconds",
                "Time to catch up one shard's filling partitions of one collection and make them ready.",
            )
            .buckets(latency_buckets()),
        )?;
        registry.register(Box::new(missed_writes.clone()))?;
        registry.register(Box::new(missed_backlog.clone()))?;
        registry.register(Box::new(partitions_filling.clone()))?;
        registry.register(Box::new(catchup_duration.clone()))?;
        let moves_in_flight = IntGauge::new(
            "ruvector_router_moves_in_flight",
            "Partitions whose copies are not yet where the placement wants them (as of this router's last sync).",
        )?;
        let copied_vectors = IntCounter::new(
            "ruvector_router_copied_vectors_total",
            "Vectors copied into filling partition copies (moves and catch-up).",
        )?;
        let copied_bytes = IntCounter::new(
            "ruvector_router_copied_bytes_total",
            "Bytes of partition snapshots piped from a holder into a filling copy (moves and catch-up).",
        )?;
        let move_duration = Histogram::with_opts(
            HistogramOpts::new(
                "ruvector_router_move_duration_seconds",
                "Time from a partition's new copies being added to its old copies being dropped (moves this router drove).",
            )
            .buckets(latency_buckets()),
        )?;
        registry.register(Box::new(moves_in_flight.clone()))?;
        registry.register(Box::new(copied_vectors.clone()))?;
        registry.register(Box::new(copied_bytes.clone()))?;
        registry.register(Box::new(move_duration.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        for shard in shards {
            // Optimistic until the first request or probe says otherwise.
            shard_up.with_label_values(&[shard.as_str()]).set(1);
        }
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            shard_duration,
            shard_errors,
            shard_up,
            fanout_width,
            partial_results,
            failovers,
            repairs,
            missed_writes,
            missed_backlog,
            partitions_filling,
            catchup_duration,
            moves_in_flight,
            copied_vectors,
            copied_bytes,
            move_duration,
        })
    }

    /// Records one shard request's latency.
    pub(crate) fn shard_request(&self, shard: &str, op: &'static str, elapsed: Duration) {
        self.shard_duration.with_label_values(&[shard, op]).observe(elapsed.as_secs_f64());
    }

    /// Counts a failed shard request.
    pub(crate) fn shard_error(&self, shard: &str, kind: ShardErrorKind) {
        self.shard_errors.with_label_values(&[shard, kind.label()]).inc();
    }

    /// Sets a shard's up/down gauge.
    pub(crate) fn set_shard_up(&self, shard: &str, up: bool) {
        self.shard_up.with_label_values(&[shard]).set(i64::from(up));
    }

    /// Records how many shards one request went to.
    pub(crate) fn fanout(&self, op: &'static str, width: usize) {
        self.fanout_width.with_label_values(&[op]).observe(width as f64);
    }

    /// Counts a request that other copies answered after a shard failed.
    pub(crate) fn failover(&self, op: &'static str) {
        self.failovers.with_label_values(&[op]).inc();
    }

    /// Counts the writes of an anti-entropy pass.
    pub(crate) fn repaired(&self, upserts: u64, deletes: u64) {
        self.repairs.with_label_values(&["upsert"]).inc_by(upserts);
        self.repairs.with_label_values(&["delete"]).inc_by(deletes);
    }

    /// Counts writes acknowledged without some copy.
    pub(crate) fn missed_writes(&self, n: u64) {
        self.missed_writes.inc_by(n);
    }

    /// Sets the number of partition copies waiting to be caught up.
    pub(crate) fn set_missed_backlog(&self, n: usize) {
        self.missed_backlog.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets a shard's count of filling partitions.
    pub(crate) fn set_filling(&self, shard: &str, n: usize) {
        self.partitions_filling.with_label_values(&[shard]).set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Records one catch-up.
    pub(crate) fn catchup(&self, elapsed: Duration) {
        self.catchup_duration.observe(elapsed.as_secs_f64());
    }

    /// Sets the number of partitions moving.
    pub(crate) fn set_moves_in_flight(&self, n: usize) {
        self.moves_in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts vectors copied into filling copies.
    pub(crate) fn copied(&self, n: u64) {
        self.copied_vectors.inc_by(n);
    }

    /// Counts bytes of partition snapshots shipped.
    pub(crate) fn copied_bytes(&self, n: u64) {
        self.copied_bytes.inc_by(n);
    }

    /// Records one finished partition move.
    pub(crate) fn moved(&self, elapsed: Duration) {
        self.move_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts a search answered with partial results.
    pub(crate) fn partial_result(&self) {
        self.partial_results.inc();
    }

    /// The text exposition of every metric.
    pub(crate) fn render(&self) -> Result<String, prometheus::Error> {
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Route-layer middleware: tags the response with the matched template.
pub(crate) async fn tag_route(req: Request, next: Next) -> Response {
    let label = req.extensions().get::<MatchedPath>().map(|p| RouteLabel(Arc::from(p.as_str())));
    let mut response = next.run(req).await;
    if let Some(label) = label {
        response.extensions_mut().insert(label);
    }
    response
}

/// Outer middleware: counts every request and its latency by route.
pub(crate) async fn track_http(State(state): State<RouterState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let start = Instant::now();
    let response = next.run(req).await;
    let route = response.extensions().get::<RouteLabel>().map(|l| Arc::clone(&l.0));
    let route = route.as_deref().unwrap_or(UNMATCHED);
    let metrics = state.metrics();
    metrics.http_requests.with_label_values(&[route, method, response.status().as_str()]).inc();
    metrics.http_duration.with_label_values(&[route, method]).observe(start.elapsed().as_secs_f64());
    response
}
