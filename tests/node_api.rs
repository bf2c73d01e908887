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

/// Versioned writes through HTTP (what a cluster's router sends): newer
/// wins whatever the arrival order, deletes leave tombstones that refuse
/// older upserts, and all of it survives a SIGKILL.
#[test]
fn versioned_writes_converge_whatever_the_order_and_survive_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Process::node(dir.path());
    let c = format!("{}/collections/v", node.url);
    let create =
        call("POST", &format!("{}/collections", node.url), Some(r#"{"name":"v","dimension":2,"metric":"l2"}"#));
    assert_eq!(create.status, 201);
    let upsert = |id: u64, x: f32, version: u64| {
        let body = format!(r#"{{"vectors":[{{"id":{id},"vector":[{x},0],"version":{version}}}]}}"#);
        call("POST", &format!("{c}/vectors"), Some(&body))
    };
    assert_eq!(upsert(1, 2.0, 20).status, 201);
    assert_eq!(upsert(1, 1.0, 10).body["status"], "inserted 0 vectors", "an older write is skipped");
    let got = call("GET", &format!("{c}/vectors/1"), None);
    assert_eq!((got.body["vector"][0].as_f64(), got.body["version"].as_u64()), (Some(2.0), Some(20)));
    // A delete that overtakes its upsert.
    assert_eq!(call("DELETE", &format!("{c}/vectors/2?version=30"), None).body["status"], "tombstoned");
    assert_eq!(upsert(2, 5.0, 25).body["status"], "inserted 0 vectors");
    assert_eq!(call("DELETE", &format!("{c}/vectors/1?version=15"), None).body["status"], "stale");
    // Bad versions are rejected and change nothing.
    for bad in ["0", "-1", "x", "18446744073709551616"] {
        let r = call("DELETE", &format!("{c}/vectors/1?version={bad}"), None);
        assert_eq!((r.status, r.body["code"].as_str()), (400, Some("invalid_id")), "version={bad}");
    }
    let r = call("POST", &format!("{c}/vectors"), Some(r#"{"vectors":[{"id":3,"vector":[1,0],"version":0}]}"#));
    assert_eq!(r.status, 400);
    let r = call("POST", &format!("{c}/vectors"), Some(r#"{"vectors":[{"id":3,"vector":[1,0],"version":"7"}]}"#));
    assert_eq!(r.status, 400);
    assert_eq!(call("GET", &format!("{c}/vectors/3"), None).status, 404);

    node.kill();
    let node = Process::node(dir.path());
    let c = format!("{}/collections/v", node.url);
    let got = call("GET", &format!("{c}/vectors/1"), None);
    assert_eq!((got.body["vector"][0].as_f64(), got.body["version"].as_u64()), (Some(2.0), Some(20)));
    assert_eq!(call("GET", &format!("{c}/vectors/2"), None).status, 404);
    let body = r#"{"vectors":[{"id":2,"vector":[5,0],"version":29}]}"#;
    assert_eq!(
        call("POST", &format!("{c}/vectors"), Some(body)).body["status"],
        "inserted 0 vectors",
        "tombstone kept"
    );
    let body = r#"{"vectors":[{"id":2,"vector":[6,0],"version":31}]}"#;
    assert_eq!(call("POST", &format!("{c}/vectors"), Some(body)).body["status"], "inserted 1 vectors");
    assert_eq!(call("GET", &c, None).body["size"], 2);
}
