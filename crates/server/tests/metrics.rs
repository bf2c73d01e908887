//! `/metrics` after some traffic: labelled by route template, per-collection
//! gauges, and a valid exposition (checked by `promtool check metrics` when
//! it is installed, and by a small format check always).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use axum::http::StatusCode;
use common::Node;

#[tokio::test]
async fn metrics_after_traffic() {
    let node = Node::new();
    node.create("docs", "euclidean").await;
    let r = node
        .post("/collections/docs/vectors", r#"{"vectors":[{"id":1,"vector":[1,0,0]},{"id":2,"vector":[0,1,0]}]}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    node.post("/collections/docs/search", r#"{"vector":[1,0,0],"k":1}"#).await;
    node.get("/collections/docs/vectors/1").await;
    node.get("/collections/docs/vectors/77").await;
    node.get("/no/such/route").await;
    node.get("/another/unknown").await;
    node.create("gone", "cosine").await;
    node.delete("/collections/gone").await;

    let r = node.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text;
    for want in [
        r#"ruvector_http_requests_total{method="POST",route="/collections/{name}/vectors",status="201"} 1"#,
        r#"ruvector_http_requests_total{method="GET",route="/collections/{name}/vectors/{id}",status="200"} 1"#,
        r#"ruvector_http_requests_total{method="GET",route="/collections/{name}/vectors/{id}",status="404"} 1"#,
        r#"ruvector_http_requests_total{method="GET",route="unmatched",status="404"} 2"#,
        r#"ruvector_http_request_duration_seconds_count{method="POST",route="/collections/{name}/search"} 1"#,
        r#"ruvector_collection_vectors{collection="docs"} 2"#,
        r#"ruvector_collections 1"#,
        // A writer links its vectors before it acknowledges; no delete yet.
        r#"ruvector_maintenance_backlog{collection="docs",kind="unlinked"} 0"#,
        r#"ruvector_maintenance_backlog{collection="docs",kind="pending_deletes"} 0"#,
        r#"ruvector_write_duration_seconds_count{op="upsert"} 1"#,
        r#"ruvector_ready 1"#,
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(text.contains(r#"ruvector_collection_memory_bytes{collection="docs"} "#), "{text}");
    assert!(!text.contains("collection=\"gone\""), "dropped collections leave the gauges");
    assert!(!text.contains("/collections/docs/"), "raw paths must not be labels");
    assert!(!text.contains("/no/such/route"), "raw paths must not be labels");

    check_format(&text);
    promtool_check(&text);
}

/// A minimal check of the text format: every sample line is
/// `name{labels} value` with a numeric value, and every family has HELP and
/// TYPE lines before its samples.
fn check_format(text: &str) {
    let mut typed = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().expect("name").to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        assert!(value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value), "{line}");
        let name = series.split('{').next().expect("name");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample before its TYPE: {line}");
    }
}

/// `promtool check metrics`, when promtool is installed (Debian package
/// `prometheus`); skipped with a note otherwise.
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            // CI installs promtool and sets this: there the check may not
            // be skipped.
            assert!(
                std::env::var_os("RUVECTOR_REQUIRE_PROMTOOL").is_none(),
                "RUVECTOR_REQUIRE_PROMTOOL is set but promtool cannot run: {e}"
            );
            eprintln!("promtool not run ({e}); only the built-in format check applied");
            return;
        }
    };
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
