//! The REST API of a single node, through HTTP against the real binary.

mod support;

use support::{Process, call};

#[test]
fn every_route_and_error_case_through_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Process::node(dir.path());
    support::api_suite::run(&node.url, "api_");

    // The writes above were fsynced and timed by the engine.
    let metrics = call("GET", &format!("{}/metrics", node.url), None);
    let text = metrics.body.as_str().expect("text");
    let fsyncs: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ruvector_wal_fsync_duration_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .expect("fsync histogram exported");
    assert!(fsyncs > 0.0, "no WAL fsync observed after writes");
    assert!(text.contains("ruvector_http_requests_total{"), "request counter missing");
}
