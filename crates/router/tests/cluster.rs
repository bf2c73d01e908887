//! The router against in-process fake shards (see `common`): placement,
//! fan-out and merge, failure handling, idempotent create, readiness,
//! `/cluster`, and the error surface.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::{FakeShard, TestRouter, brute_force, closed_port_url, timed, vector};
use reqwest::Method;
use ruvector_api::{Metric, SearchHit, VectorRecord};
use ruvector_router::RouterConfig;
use serde_json::{Value, json};

const DIM: usize = 4;

async fn three_shards() -> (Vec<FakeShard>, TestRouter) {
    let shards = vec![FakeShard::start().await, FakeShard::start().await, FakeShard::start().await];
    let urls: Vec<String> = shards.iter().map(|s| s.url.clone()).collect();
    let router = TestRouter::over(&urls).await;
    (shards, router)
}

fn records(n: u64) -> Vec<VectorRecord> {
    (0..n).map(|i| VectorRecord { id: i * 7 + 3, vector: vector(i, DIM), payload: None, version: None }).collect()
}

fn upsert_body(records: &[VectorRecord]) -> Value {
    json!({"vectors": records.iter().map(|r| json!({"id": r.id, "vector": r.vector})).collect::<Vec<_>>()})
}

async fn create(router: &TestRouter, name: &str) {
    let (status, body) =
        router.post("/collections", json!({"name": name, "dimension": DIM, "metric": "euclidean"})).await;
    assert_eq!((status, body), (201, json!({"status": "created"})));
}

fn hits(v: &Value) -> Vec<SearchHit> {
    serde_json::from_value(v.clone()).expect("a bare array of hits")
}

#[tokio::test]
async fn inserts_are_split_by_owner_and_get_delete_go_to_the_owner() {
    let (shards, router) = three_shards().await;
    create(&router, "docs").await;
    let data = records(300);
    let (status, body) = router.post("/collections/docs/vectors", upsert_body(&data)).await;
    assert_eq!((status, body), (201, json!({"status": "inserted 300 vectors"})));

    let ring = router.state.ring();
    for (i, shard) in shards.iter().enumerate() {
        let expected: Vec<u64> =
            data.iter().map(|r| r.id).filter(|&id| ring.owner_of("docs", id, Some(32)) == i).collect();
        assert_eq!(shard.state.ids("docs"), expected, "shard {i}");
        assert!(!expected.is_empty(), "shard {i} got nothing: the split is degenerate");
    }

    let (status, info) = router.get("/collections/docs").await;
    assert_eq!(status, 200);
    assert_eq!(info["size"], 300);
    assert_eq!(info["dimension"], DIM);
    let (status, list) = router.get("/collections").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["size"], 300);

    // Get and delete reach the owner only.
    let target = &data[17];
    let owner = ring.owner_of("docs", target.id, Some(32));
    for s in &shards {
        s.state.clear_log();
    }
    let (status, got) = router.get(&format!("/collections/docs/vectors/{}", target.id)).await;
    assert_eq!(status, 200);
    let got = serde_json::from_value::<VectorRecord>(got).expect("record");
    assert!(got.version.is_some(), "the router stamps every write with a version");
    assert_eq!(VectorRecord { version: None, ..got }, *target);
    let (status, body) = router.delete(&format!("/collections/docs/vectors/{}", target.id)).await;
    assert_eq!((status, body), (200, json!({"status": "deleted"})));
    for (i, s) in shards.iter().enumerate() {
        let touched = s.state.log().iter().filter(|l| l.path.contains("/vectors/")).count();
        assert_eq!(touched, if i == owner { 2 } else { 0 }, "shard {i}");
    }
    let (status, body) = router.get(&format!("/collections/docs/vectors/{}", target.id)).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    let (status, body) = router.get("/collections/docs/vectors/12x").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_id")));
}

#[tokio::test]
async fn search_merge_equals_brute_force_over_all_shards() {
    let (_shards, router) = three_shards().await;
    create(&router, "docs").await;
    let data = records(500);
    assert_eq!(router.post("/collections/docs/vectors", upsert_body(&data)).await.0, 201);
    for q in 0..20u64 {
        let query = vector(10_000 + q, DIM);
        let k = 1 + (q as usize * 7) % 25;
        let (status, body) = router.post("/collections/docs/search", json!({"vector": query, "k": k, "ef": 64})).await;
        assert_eq!(status, 200, "{body}");
        let expected = brute_force(Metric::Euclidean, &data, &query, k);
        let got = hits(&body);
        assert_eq!(got.iter().map(|h| h.id).collect::<Vec<_>>(), expected.iter().map(|h| h.id).collect::<Vec<_>>());
    }
    // Batch search: per query, the same.
    let queries: Vec<Vec<f32>> = (0..5).map(|q| vector(20_000 + q, DIM)).collect();
    let body = json!({"searches": queries.iter().map(|q| json!({"vector": q, "k": 5})).collect::<Vec<_>>()});
    let (status, body) = router.post("/collections/docs/search/batch", body).await;
    assert_eq!(status, 200, "{body}");
    let lists: Vec<Vec<SearchHit>> = serde_json::from_value(body).expect("array of arrays");
    assert_eq!(lists.len(), 5);
    for (q, got) in queries.iter().zip(&lists) {
        let want: Vec<u64> = brute_force(Metric::Euclidean, &data, q, 5).iter().map(|h| h.id).collect();
        assert_eq!(got.iter().map(|h| h.id).collect::<Vec<_>>(), want);
    }
    // Id scroll over all shards, in small pages.
    let mut seen = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/collections/docs/ids?limit=37&after={a}"),
            None => "/collections/docs/ids?limit=37".to_owned(),
        };
        let (status, page) = router.get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["ids"].as_array().expect("ids").iter().filter_map(Value::as_u64));
        match page["next_after"].as_u64() {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    let mut all: Vec<u64> = data.iter().map(|r| r.id).collect();
    all.sort_unstable();
    assert_eq!(seen, all);
}

#[tokio::test]
async fn router_validates_once_and_forwards_shard_4xx() {
    let (shards, router) = three_shards().await;
    create(&router, "docs").await;
    for s in &shards {
        s.state.clear_log();
    }
    let (status, body) = router
        .post(
            "/collections/docs/vectors",
            json!({"vectors": [{"id": 1, "vector": [1, 2, 3, 4]}, {"id": 2, "vector": [1]}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"error": "vectors[1].vector: expected dimension 4, got 1", "code": "dimension_mismatch"}));
    // Nothing was written anywhere.
    assert!(shards.iter().all(|s| !s.state.log().iter().any(|l| l.method == "POST")));
    let (status, body) = router.post("/collections/docs/search", json!({"vector": [1, 2, 3, 4], "k": 0})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_parameter")));
    // A collection no shard has: the shards' 404, forwarded.
    let (status, body) = router.post("/collections/nope/search", json!({"vector": [1, 2, 3, 4]})).await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"error": "collection \"nope\" not found", "code": "not_found"}));
    let (status, body) = router.get("/collections/nope").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = router.post("/collections/bad.name/search", json!({"vector": [1]})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_name")));
}

#[tokio::test]
async fn a_down_shard_fails_search_fast_and_allow_partial_returns_the_live_results() {
    let live = [FakeShard::start().await, FakeShard::start().await];
    let dead = closed_port_url().await;
    let urls = vec![live[0].url.clone(), dead.clone(), live[1].url.clone()];
    let router = TestRouter::over(&urls).await;

    // Create: the live shards get it, the dead one is named.
    let (status, body) = router.post("/collections", json!({"name": "docs", "dimension": DIM, "metric": "l2"})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains(&format!("shard {dead} unavailable")), "{msg}");
    assert!(msg.contains("retrying the create is safe"), "{msg}");

    // Put data straight onto the live shards where the ring places it.
    let ring = router.state.ring();
    let data = records(200);
    let mut on_live = Vec::new();
    for r in &data {
        let owner = ring.owner_of("docs", r.id, Some(32));
        let shard = match owner {
            0 => &live[0],
            2 => &live[1],
            _ => continue,
        };
        shard.state.collections().get_mut("docs").expect("created on live shard").vectors.insert(r.id, r.clone());
        on_live.push(r.clone());
    }
    assert!(on_live.len() < data.len(), "the dead shard owns some ids");

    let query = vector(99, DIM);
    let ((status, headers, body), took) =
        timed(router.send(Method::POST, "/collections/docs/search", Some(json!({"vector": query, "k": 10})))).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable");
    assert!(body["error"].as_str().unwrap_or_default().starts_with(&format!("shard {dead} unavailable: ")), "{body}");
    assert!(headers.get("x-ruvector-partial").is_none());
    assert!(took < Duration::from_secs(2), "a refused connection must fail fast, took {took:?}");

    let (status, headers, body) = router
        .send(Method::POST, "/collections/docs/search", Some(json!({"vector": query, "k": 10, "allow_partial": true})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("x-ruvector-partial").and_then(|v| v.to_str().ok()), Some("true"));
    let want: Vec<u64> = brute_force(Metric::Euclidean, &on_live, &query, 10).iter().map(|h| h.id).collect();
    assert_eq!(hits(&body).iter().map(|h| h.id).collect::<Vec<_>>(), want);

    // Batch search with partial results allowed, likewise.
    let (status, headers, body) = router
        .send(
            Method::POST,
            "/collections/docs/search/batch",
            Some(json!({"searches": [{"vector": query, "k": 3, "allow_partial": true}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("x-ruvector-partial").and_then(|v| v.to_str().ok()), Some("true"));

    // Inserts touching the dead shard: 503 naming it, retry is safe.
    let (status, body) = router.post("/collections/docs/vectors", upsert_body(&data[..50])).await;
    assert_eq!(status, 503);
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains(&dead) && msg.contains("versioned"), "{msg}");

    // Readiness: one shard is enough.
    assert_eq!(router.get("/ready").await, (200, json!({"status": "ok"})));
    let metrics = router.http.get(format!("{}/metrics", router.url)).send().await.expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(text.contains("ruvector_router_partial_results_total 2"), "{text}");
    assert!(text.contains(&format!("ruvector_router_shard_up{{shard=\"{dead}\"}} 0")), "{text}");
}

#[tokio::test]
async fn ready_is_503_only_when_every_shard_is_down() {
    let router = TestRouter::over(&[closed_port_url().await, closed_port_url().await]).await;
    let ((status, body), took) = timed(router.get("/ready")).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "unavailable");
    assert!(body["error"].as_str().unwrap_or_default().starts_with("no shard is ready"), "{body}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(router.get("/health").await, (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn create_is_idempotent_after_a_partial_failure() {
    let (shards, router) = three_shards().await;
    shards[2].state.set_unavailable(true);
    let (status, body) = router.post("/collections", json!({"name": "docs", "dimension": DIM})).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains(&shards[2].url), "{body}");
    assert!(shards[0].state.collections().contains_key("docs"));
    assert!(!shards[2].state.collections().contains_key("docs"));
    // The collection is half-created: info says so, naming the shard.
    shards[2].state.set_unavailable(false);
    let (status, body) = router.get("/collections/docs").await;
    assert_eq!(status, 503);
    assert!(body["error"].as_str().unwrap_or_default().contains(&format!("missing on shard(s) {}", shards[2].url)));

    // The retry completes it.
    let (status, body) = router.post("/collections", json!({"name": "docs", "dimension": DIM})).await;
    assert_eq!((status, body), (201, json!({"status": "created"})));
    assert!(shards.iter().all(|s| s.state.collections().contains_key("docs")));
    // Now it exists everywhere: a repeat is a 409, as on one node.
    let (status, body) = router.post("/collections", json!({"name": "docs", "dimension": DIM})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("collection_exists")));
    // A different configuration is a conflict too.
    let (status, body) = router.post("/collections", json!({"name": "docs", "dimension": DIM + 1})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("collection_exists")));
    assert!(body["error"].as_str().unwrap_or_default().contains("different configuration"));

    // Delete: a shard that no longer has it counts as done.
    shards[1].state.collections().remove("docs");
    assert_eq!(router.delete("/collections/docs").await, (200, json!({"status": "deleted"})));
    let (status, body) = router.delete("/collections/docs").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn cluster_reports_each_shard() {
    let live = FakeShard::start().await;
    let dead = closed_port_url().await;
    let router = TestRouter::over(&[live.url.clone(), dead.clone()]).await;
    // Create fails on the dead shard but lands on the live one.
    router.post("/collections", json!({"name": "docs", "dimension": DIM})).await;
    for r in records(5) {
        live.state.collections().get_mut("docs").expect("docs").vectors.insert(r.id, r);
    }
    let (status, body) = router.get("/cluster").await;
    assert_eq!(status, 200);
    let shards = body["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), 2);
    assert_eq!(
        shards[0],
        json!({"address": live.url, "up": true, "last_error": null, "vectors": 5,
               "partitions": 8, "draining": false, "removable": false})
    );
    assert_eq!(shards[1]["address"], dead);
    assert_eq!(shards[1]["up"], false);
    assert_eq!(shards[1]["vectors"], Value::Null);
    assert!(shards[1]["last_error"].as_str().unwrap_or_default().contains("unavailable"), "{body}");
}

/// A 405 names exactly the methods its route serves, for every route of
/// the served document (schemathesis found `Allow: GET,HEAD` on POST-only
/// routes such as `/cluster/repair` and `/collections/{name}/count`).
#[tokio::test]
async fn every_405_names_the_methods_of_its_route() {
    let shard = FakeShard::start().await;
    let config = RouterConfig { shards: vec![shard.url.clone()], health_interval_ms: 0, ..RouterConfig::default() };
    let router = TestRouter::start(config).await;
    let (status, doc) = router.get("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 10, "{doc}");
    for (template, item) in paths {
        let mut expected: BTreeSet<String> =
            item.as_object().expect("path item").keys().map(|m| m.to_uppercase()).collect();
        if expected.contains("GET") {
            expected.insert("HEAD".to_owned());
        }
        let path = template.replace("{name}", "docs").replace("{id}", "7").replace("{key}", "lang");
        let (status, headers, body) = router.send(Method::OPTIONS, &path, None).await;
        assert_eq!((status, body["code"].as_str()), (405, Some("method_not_allowed")), "OPTIONS {path}");
        let allow = headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let allowed: BTreeSet<String> = allow.split(',').map(|m| m.trim().to_owned()).collect();
        assert_eq!(allowed, expected, "OPTIONS {path}: Allow: {allow}");
    }
}

#[tokio::test]
async fn errors_are_json() {
    let shard = FakeShard::start().await;
    let config = RouterConfig {
        shards: vec![shard.url.clone()],
        health_interval_ms: 0,
        limits: ruvector_api::Limits { max_body_bytes: 1024, ..Default::default() },
        ..RouterConfig::default()
    };
    let router = TestRouter::start(config).await;
    let (status, body) = router.get("/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"error": "no route for GET /nope", "code": "not_found"}));
    let (status, headers, body) = router.send(Method::PUT, "/collections", None).await;
    assert_eq!(status, 405);
    assert_eq!(body["code"], "method_not_allowed");
    let allow = headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let big = json!({"vectors": [{"id": 1, "vector": vec![0.5; 500]}]});
    let (status, body) = router.post("/collections/docs/vectors", big).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("payload_too_large")));
    let resp = router.http.post(format!("{}/collections", router.url)).body("{\"name\":").send().await.expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "invalid_json");
    let (status, body) = router.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(body["paths"]["/collections/{name}/search"].is_object());
}

#[tokio::test]
async fn api_keys_are_checked_and_forwarded() {
    let shard = FakeShard::start().await;
    let config = RouterConfig {
        shards: vec![shard.url.clone()],
        api_key: Some("rw".into()),
        read_only_api_key: Some("ro".into()),
        health_interval_ms: 0,
        ..RouterConfig::default()
    };
    let router = TestRouter::start(config).await;
    let post = |key: Option<&'static str>, path: &'static str, body: Value| {
        let mut req = router.http.post(format!("{}{path}", router.url)).json(&body);
        if let Some(k) = key {
            req = req.header("api-key", k);
        }
        async move { req.send().await.expect("send").status().as_u16() }
    };
    let create = json!({"name": "docs", "dimension": 2});
    assert_eq!(post(None, "/collections", create.clone()).await, 401);
    assert_eq!(post(Some("ro"), "/collections", create.clone()).await, 403);
    assert_eq!(post(Some("rw"), "/collections", create).await, 201);
    let logged = shard.state.log();
    assert!(logged.iter().any(|l| l.method == "POST" && l.api_key.as_deref() == Some("rw")), "{logged:?}");
    assert_eq!(post(Some("ro"), "/collections/docs/search", json!({"vector": [1, 0]})).await, 200);
    assert_eq!(router.get("/health").await.0, 200);
    let mut by_key: HashMap<Option<String>, usize> = HashMap::new();
    for l in shard.state.log() {
        *by_key.entry(l.api_key).or_default() += 1;
    }
    assert!(!by_key.contains_key(&None) || by_key.len() > 1, "{by_key:?}");
    let keys: BTreeSet<_> = shard.state.log().into_iter().filter_map(|l| l.api_key).collect();
    assert!(keys.iter().all(|k| k == "rw" || k == "ro"), "{keys:?}");
}

/// A shard that answers every request with `size` bytes of JSON-looking
/// junk, announced (`Content-Length`) or streamed in chunks without a
/// length.
async fn flooding_shard(size: usize, announced: bool) -> String {
    use axum::body::Body;
    use axum::response::Response;
    let app = axum::Router::new().fallback(move || async move {
        let chunk = vec![b' '; 64 << 10];
        let body = if announced {
            Body::from(vec![b' '; size])
        } else {
            let chunks = (0..size.div_ceil(chunk.len())).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
            Body::from_stream(futures::stream::iter(chunks))
        };
        Response::builder().header("content-type", "application/json").body(body).expect("response")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A shard that floods the router with a body over the limit (announced
/// or streamed) is treated as failed for that request — a 503 naming the
/// limit — and the router stays up.
#[tokio::test]
async fn a_shard_response_over_the_limit_is_refused_not_buffered() {
    for announced in [true, false] {
        let shard = flooding_shard(8 << 20, announced).await;
        let config = RouterConfig {
            shards: vec![shard],
            connect_timeout_ms: 500,
            request_timeout_ms: 5000,
            health_interval_ms: 0,
            max_shard_response_bytes: 1 << 20,
            ..RouterConfig::default()
        };
        let router = TestRouter::start(config).await;
        let (status, body) = router.get("/collections").await;
        assert_eq!(status, 503, "announced {announced}: {body}");
        assert!(body["error"].as_str().is_some_and(|m| m.contains("1048576-byte limit")), "{body}");
        let (status, _) = router.get("/health").await;
        assert_eq!(status, 200);
    }
}

/// A shard whose volume is full answers 507 `insufficient_storage`: the
/// router forwards it as is (the client learns why), rather than treating
/// the shard as down.
#[tokio::test]
async fn a_full_shard_is_reported_as_507_not_as_down() {
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::INSUFFICIENT_STORAGE,
            [("content-type", "application/json")],
            r#"{"error":"the data volume is full","code":"insufficient_storage"}"#,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let router = TestRouter::over(&[format!("http://{addr}")]).await;
    let (status, body) = router.post("/collections", json!({"name": "c", "dimension": 2})).await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["code"], "insufficient_storage", "{body}");
}
