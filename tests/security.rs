//! API keys on every route, through real processes: a node and a router,
//! both configured with a read-write and a read-only key. Every operation
//! of the OpenAPI document each serves is called with no key, a wrong key,
//! the read-only key and the read-write key: only `/health`, `/ready`,
//! `/started`, `/metrics` and `/openapi.json` answer without a key; the
//! read-only key is refused (403) on every operation that writes and
//! accepted on the others. Also: collection names that look like paths
//! never reach the disk.

mod support;

use ruvector_api::Access;
use serde_json::Value;
use support::{Process, Reply, call, path_str, send};

const RW: &str = "rw-key-5f1e";
const RO: &str = "ro-key-9c2d";
const OPEN: [&str; 5] = ["/health", "/ready", "/started", "/metrics", "/openapi.json"];

/// Every (method, path template) of an OpenAPI document.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "delete", "head", "patch"] {
            if item.get(method).is_some() {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// A concrete path for a template: every parameter filled in.
fn concrete(template: &str) -> String {
    template.replace("{name}", "sec").replace("{id}", "1").replace("{key}", "tag").replace("{partition}", "0")
}

fn request(base: &str, method: &str, template: &str, key: Option<&str>) -> Reply {
    let url = format!("{base}{}", concrete(template));
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
        .request(method.clone(), &url);
    if let Some(key) = key {
        req = req.header("api-key", key);
    }
    if method == reqwest::Method::POST || method == reqwest::Method::PUT {
        req = req.header("content-type", "application/json").body("{}");
    }
    let r = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().unwrap_or_default();
    Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

/// Walks every operation of `base`'s own document.
fn every_route_enforces_the_keys(base: &str) {
    let doc = call("GET", &format!("{base}/openapi.json"), None);
    assert_eq!(doc.status, 200, "the document is open");
    let ops = operations(&doc.body);
    assert!(ops.len() >= 15, "{} operations", ops.len());
    let (mut open, mut reads, mut writes) = (0, 0, 0);
    for (method, template) in &ops {
        let what = format!("{method} {template} on {base}");
        if OPEN.contains(&template.as_str()) {
            open += 1;
            for key in [None, Some("wrong")] {
                let r = request(base, method, template, key);
                assert!(r.status != 401 && r.status != 403, "{what} is open: {} {}", r.status, r.body);
            }
            continue;
        }
        for key in [None, Some("wrong"), Some("")] {
            let r = request(base, method, template, key);
            assert_eq!(r.status, 401, "{what} with key {key:?}: {}", r.body);
            assert_eq!(r.body["code"], "unauthorized", "{what}");
        }
        let with_ro = request(base, method, template, Some(RO));
        let as_method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        match Access::of(&as_method, template) {
            Access::Write => {
                writes += 1;
                assert_eq!(with_ro.status, 403, "{what} writes: the read-only key is refused: {}", with_ro.body);
                assert_eq!(with_ro.body["code"], "forbidden", "{what}");
            }
            Access::Read => {
                reads += 1;
                assert!(with_ro.status != 401 && with_ro.status != 403, "{what} reads: {}", with_ro.body);
            }
        }
        let with_rw = request(base, method, template, Some(RW));
        assert!(with_rw.status != 401 && with_rw.status != 403, "{what} with the read-write key: {}", with_rw.body);
    }
    eprintln!("{base}: {open} open, {reads} read and {writes} write operations checked");
    assert!(writes >= 6 && reads >= 5, "{reads} reads, {writes} writes");
    // Writes the classification must never call reads.
    for (method, template) in [
        ("POST", "/collections"),
        ("DELETE", "/collections/{name}"),
        ("POST", "/collections/{name}/vectors"),
        ("DELETE", "/collections/{name}/vectors/{id}"),
        ("POST", "/collections/{name}/delete"),
        ("POST", "/collections/{name}/payload_indexes"),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        assert_eq!(Access::of(&m, template), Access::Write, "{method} {template}");
    }
}

fn keyed_node(dir: &std::path::Path) -> Process {
    let node = Process::start_with_env(
        &["serve", "--addr", "127.0.0.1:0", "--data", path_str(dir)],
        &[("RUVECTOR_API_KEY", RW), ("RUVECTOR_READ_ONLY_API_KEY", RO)],
    );
    node.wait_ready();
    node
}

#[test]
fn every_node_route_enforces_the_api_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = keyed_node(dir.path());
    every_route_enforces_the_keys(&node.url);
}

#[test]
fn every_router_route_enforces_the_api_keys() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let shards: Vec<Process> = dirs.iter().map(|d| keyed_node(d.path())).collect();
    let list = shards.iter().map(|s| s.url.clone()).collect::<Vec<_>>().join(",");
    let router = Process::start_with_env(
        &["router", "--addr", "127.0.0.1:0", "--shards", &list],
        &[("RUVECTOR_ROUTER__API_KEY", RW), ("RUVECTOR_ROUTER__READ_ONLY_API_KEY", RO)],
    );
    router.wait_ready();
    every_route_enforces_the_keys(&router.url);
}

/// Names that look like paths, traversal or other trouble are refused
/// (400) and create nothing anywhere on disk.
#[test]
fn collection_names_cannot_escape_the_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let node = Process::start(&["serve", "--addr", "127.0.0.1:0", "--data", path_str(&data)]);
    node.wait_ready();
    for name in ["..", "../escape", "a/b", "/etc", "a\\\\b", ".", "a%2Fb", "%2e%2e", "é", "a b", "a\u{0}b"] {
        let body = serde_json::json!({"name": name, "dimension": 2}).to_string();
        let r = call("POST", &format!("{}/collections", node.url), Some(&body));
        assert_eq!(r.status, 400, "{name:?}: {}", r.body);
        // As a path segment too (the router and handlers decode it).
        let r = send("GET", &format!("{}/collections/{name}", node.url), None);
        if let Ok(r) = r {
            assert!(r.status == 400 || r.status == 404, "{name:?} in a path: {} {}", r.status, r.body);
        }
    }
    let outside: Vec<_> = std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(outside, [std::ffi::OsString::from("data")], "nothing written beside the data directory");
    let collections: Vec<_> = std::fs::read_dir(data.join("collections"))
        .map(|d| d.map(|e| e.expect("entry").file_name()).collect())
        .unwrap_or_default();
    assert!(collections.is_empty(), "{collections:?}");
}
