//! Prometheus metrics of one node, in one registry per [`crate::AppState`]
//! (no global state), rendered at `GET /metrics` in the text format.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ruvector_http_requests_total` | counter | `route`, `method`, `status` |
//! | `ruvector_http_request_duration_seconds` | histogram | `route`, `method` |
//! | `ruvector_collection_vectors` | gauge (refreshed at scrape) | `collection` |
//! | `ruvector_collection_memory_bytes` | gauge (refreshed at scrape) | `collection` |
//! | `ruvector_collections` | gauge (refreshed at scrape) | — |
//! | `ruvector_maintenance_backlog` | gauge (refreshed at scrape): vectors stored but not linked into the graph yet (`unlinked`), deleted vectors awaiting graph repair (`pending_deletes`) | `collection`, `kind` |
//! | `ruvector_write_duration_seconds` | histogram | `op` (`upsert`, `delete`, `create_collection`, `drop_collection`) |
//! | `ruvector_checkpoint_duration_seconds` | histogram (one observation per collection checkpoint) | — |
//! | `ruvector_wal_fsync_duration_seconds` | histogram | — |
//! | `ruvector_ready` | gauge (1 once recovery finished, 0 while recovering or shutting down) | — |
//! | `process_*` | the `prometheus` crate's process collector (CPU seconds, resident and virtual memory, open and max fds, threads, start time) | — |
//!
//! Label sets are bounded: `route` is the matched route *template*
//! (`/collections/{name}`), `unmatched` for 404s of the fallback; `method`
//! is one of the standard methods or `other`; `collection` is bounded by
//! the number of collections.
//!
//! Write durations are measured around the engine call, so they include
//! the write-ahead-log append and its fsync (under `fsync = "always"`) plus
//! the graph update. Checkpoint and fsync durations come from the engine
//! through [`EngineTimings`], its [`EngineObserver`]: every checkpoint
//! (background, size-triggered, shutdown) and every log fsync.

use std::sync::{Arc, Mutex};

use ruvector_engine::EngineObserver;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use ruvector_engine::Engine;

use crate::AppState;

/// The route label of a response, set by [`tag_route`] on matched routes.
#[derive(Debug, Clone)]
pub(crate) struct RouteLabel(pub(crate) Arc<str>);

/// The label used for requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// The histograms the engine reports into, as its [`EngineObserver`].
#[derive(Debug)]
pub(crate) struct EngineTimings {
    checkpoint_duration: Histogram,
    wal_fsync_duration: Histogram,
}

impl EngineObserver for EngineTimings {
    fn wal_synced(&self, took: Duration) {
        self.wal_fsync_duration.observe(took.as_secs_f64());
    }

    fn checkpoint_written(&self, _collection: &str, took: Duration) {
        self.checkpoint_duration.observe(took.as_secs_f64());
    }
}

/// The node's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    collection_vectors: IntGaugeVec,
    collection_memory: IntGaugeVec,
    collections: IntGauge,
    maintenance_backlog: IntGaugeVec,
    write_duration: HistogramVec,
    filter_plans: IntCounterVec,
    timings: Arc<EngineTimings>,
    ready: IntGauge,
    /// Serialises scrapes (the per-collection gauges are reset and refilled).
    scrape: Mutex<()>,
}

/// Latency buckets from 100 µs to ~100 s.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0001, 2.0, 21).unwrap_or_else(|_| prometheus::DEFAULT_BUCKETS.to_vec())
}

impl Metrics {
    /// Creates and registers every metric.
    pub(crate) fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("ruvector_http_requests_total", "HTTP requests by matched route template, method and status."),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "ruvector_http_request_duration_seconds",
                "HTTP request latency by matched route template and method.",
            )
            .buckets(latency_buckets()),
            &["route", "method"],
        )?;
        let collection_vectors = IntGaugeVec::new(
            Opts::new("ruvector_collection_vectors", "Live vectors per collection."),
            &["collection"],
        )?;
        let collection_memory = IntGaugeVec::new(
            Opts::new("ruvector_collection_memory_bytes", "Estimated memory of a collection (index and payloads)."),
            &["collection"],
        )?;
        let collections = IntGauge::new("ruvector_collections", "Number of collections.")?;
        let maintenance_backlog = IntGaugeVec::new(
            Opts::new(
                "ruvector_maintenance_backlog",
                "Background upkeep outstanding per collection: unlinked vectors, deletes awaiting repair.",
            ),
            &["collection", "kind"],
        )?;
        let write_duration = HistogramVec::new(
            HistogramOpts::new(
                "ruvector_write_duration_seconds",
                "Duration of engine writes, including the write-ahead-log append and fsync.",
            )
            .buckets(latency_buckets()),
            &["op"],
        )?;
        let filter_plans = IntCounterVec::new(
            Opts::new(
                "ruvector_filtered_search_plans_total",
                "Filtered searches by plan: exact (the matches scored), walk (filtered graph walk), fallback (walk gave up, matches scored).",
            ),
            &["plan"],
        )?;
        let checkpoint_duration = Histogram::with_opts(
            HistogramOpts::new("ruvector_checkpoint_duration_seconds", "Duration of one collection checkpoint.")
                .buckets(latency_buckets()),
        )?;
        let wal_fsync_duration = Histogram::with_opts(
            HistogramOpts::new("ruvector_wal_fsync_duration_seconds", "Duration of one write-ahead-log fsync.")
                .buckets(latency_buckets()),
        )?;
        let ready = IntGauge::new("ruvector_ready", "1 when the node serves collections, 0 while recovering.")?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(collection_vectors.clone()))?;
        registry.register(Box::new(collection_memory.clone()))?;
        registry.register(Box::new(collections.clone()))?;
        registry.register(Box::new(maintenance_backlog.clone()))?;
        registry.register(Box::new(write_duration.clone()))?;
        registry.register(Box::new(filter_plans.clone()))?;
        registry.register(Box::new(checkpoint_duration.clone()))?;
        registry.register(Box::new(wal_fsync_duration.clone()))?;
        registry.register(Box::new(ready.clone()))?;
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            collection_vectors,
            collection_memory,
            collections,
            maintenance_backlog,
            write_duration,
            filter_plans,
            timings: Arc::new(EngineTimings { checkpoint_duration, wal_fsync_duration }),
            ready,
            scrape: Mutex::new(()),
        })
    }

    /// Records one engine write.
    pub(crate) fn observe_write(&self, op: &str, took: Duration) {
        self.write_duration.with_label_values(&[op]).observe(took.as_secs_f64());
    }

    /// Records the plans of filtered searches.
    pub(crate) fn observe_filter_plans(&self, plans: impl IntoIterator<Item = &'static str>) {
        for plan in plans {
            self.filter_plans.with_label_values(&[plan]).inc();
        }
    }

    /// The observer the engine reports checkpoints and fsyncs to.
    pub(crate) fn engine_observer(&self) -> Arc<EngineTimings> {
        Arc::clone(&self.timings)
    }

    /// Sets the readiness gauge.
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Renders every metric, refreshing the per-collection gauges from the
    /// engine first (when it is open). Blocking: call it off the runtime.
    pub(crate) fn render(&self, engine: Option<&Engine>) -> Result<String, prometheus::Error> {
        let _one_scrape = self.scrape.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(engine) = engine {
            let all = engine.collections();
            self.collection_vectors.reset();
            self.collection_memory.reset();
            self.maintenance_backlog.reset();
            self.collections.set(all.len() as i64);
            for c in &all {
                let name = c.name.as_str();
                self.collection_vectors.with_label_values(&[name]).set(saturating_i64(c.size));
                self.collection_memory.with_label_values(&[name]).set(saturating_i64(c.memory_bytes));
                self.maintenance_backlog.with_label_values(&[name, "unlinked"]).set(saturating_i64(c.unlinked));
                let pending = saturating_i64(c.pending_deletes);
                self.maintenance_backlog.with_label_values(&[name, "pending_deletes"]).set(pending);
            }
        }
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A bounded method label.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Route-level middleware (a `route_layer`, so it sees [`MatchedPath`]):
/// tags the response with the route template for [`track_http`].
pub(crate) async fn tag_route(matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let label = matched.map(|m| RouteLabel(Arc::from(m.as_str())));
    let mut response = next.run(req).await;
    if let Some(label) = label {
        response.extensions_mut().insert(label);
    }
    response
}

/// Outer middleware: counts and times every request (including 404s of
/// the fallback, labelled `unmatched`).
pub(crate) async fn track_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let took = started.elapsed().as_secs_f64();
    let route = response.extensions().get::<RouteLabel>().map_or(UNMATCHED, |r| &r.0);
    let metrics = state.metrics();
    metrics.http_duration.with_label_values(&[route, method]).observe(took);
    metrics.http_requests.with_label_values(&[route, method, response.status().as_str()]).inc();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_help() {
        let m = Metrics::new().expect("metrics");
        m.observe_write("upsert", Duration::from_millis(3));
        m.engine_observer().checkpoint_written("c", Duration::from_millis(30));
        m.engine_observer().wal_synced(Duration::from_millis(2));
        m.http_requests.with_label_values(&["/health", "GET", "200"]).inc();
        let text = m.render(None).expect("render");
        for name in [
            "ruvector_http_requests_total",
            "ruvector_write_duration_seconds_bucket",
            "ruvector_checkpoint_duration_seconds_count",
            "ruvector_wal_fsync_duration_seconds_count",
            "ruvector_ready",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }

    #[test]
    fn methods_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").expect("method")), "other");
    }
}
