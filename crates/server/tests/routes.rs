//! Every route's success case and every error case, through the full
//! middleware stack (`app()` + `oneshot`), against an engine in a tempdir.

mod common;

use axum::http::{Method, StatusCode};
use common::Node;
use ruvector_api::Limits;
use ruvector_server::{AppState, ServerConfig, app};
use serde_json::{Value, json};

#[tokio::test]
async fn service_routes() {
    let node = Node::new();
    let r = node.get("/health").await;
    assert_eq!((r.status, r.json.clone()), (StatusCode::OK, json!({"status": "ok"})));
    let r = node.call(Method::HEAD, "/health", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.is_empty());
    let r = node.get("/ready").await;
    assert_eq!((r.status, r.json.clone()), (StatusCode::OK, json!({"status": "ok"})));
    let r = node.get("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json["paths"]["/collections/{name}/search"]["post"].is_object());
    // The document says what the node does: both key headers, filter plans.
    let scheme = r.json["components"]["securitySchemes"]["api_key"]["description"].as_str().unwrap_or_default();
    assert!(scheme.contains("Bearer") && scheme.contains("api-key"), "{scheme}");
    let search = r.json["paths"]["/collections/{name}/search"]["post"]["description"].as_str().unwrap_or_default();
    assert!(search.contains("exact_filter_max") && search.contains("min(k, matching vectors)"), "{search}");
    let r = node.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"].to_str().expect("ascii").starts_with("text/plain"));
}

#[tokio::test]
async fn recovering_node_answers_503_except_health() {
    let state = AppState::new(&ServerConfig::default()).expect("state");
    let app = app(state);
    let get = |path: &'static str| {
        let app = app.clone();
        async move {
            let req = axum::http::Request::get(path).body(axum::body::Body::empty()).expect("request");
            common::send(&app, req).await
        }
    };
    let r = get("/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json, json!({"error": "recovering", "code": "unavailable"}));
    get("/collections").await.assert_error(503, "unavailable");
    get("/collections/docs/vectors/1").await.assert_error(503, "unavailable");
    assert_eq!(get("/health").await.status, StatusCode::OK);
    assert_eq!(get("/metrics").await.status, StatusCode::OK);
}

#[tokio::test]
async fn collection_lifecycle() {
    let node = Node::new();
    let r = node
        .post(
            "/collections",
            r#"{"name":"docs","dimension":3,"metric":"l2","m":8,"ef_construction":50,"ef_search":20}"#,
        )
        .await;
    assert_eq!((r.status, r.json.clone()), (StatusCode::CREATED, json!({"status": "created"})));
    node.post("/collections", r#"{"name":"docs","dimension":3}"#).await.assert_error(409, "collection_exists");
    node.create("alpha", "cosine").await;

    let r = node.get("/collections").await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<&str> = r.json.as_array().expect("array").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["alpha", "docs"]);

    let r = node.get("/collections/docs").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json,
        json!({"name": "docs", "dimension": 3, "size": 0, "max_level": 0, "metric": "euclidean", "m": 8,
               "ef_construction": 50, "ef_search": 20, "quantization": {"type": "none"}})
    );

    // Quantization with its rescoring factor is kept and reported.
    let body = r#"{"name":"q","dimension":4,"quantization":{"type":"sq8","oversampling":2.5}}"#;
    assert_eq!(node.post("/collections", body).await.status, StatusCode::CREATED);
    assert_eq!(node.get("/collections/q").await.json["quantization"], json!({"type": "sq8", "oversampling": 2.5}));

    let r = node.delete("/collections/docs").await;
    assert_eq!((r.status, r.json.clone()), (StatusCode::OK, json!({"status": "deleted"})));
    node.get("/collections/docs").await.assert_error(404, "not_found");
    node.delete("/collections/docs").await.assert_error(404, "not_found");
    node.get("/collections/bad.name").await.assert_error(400, "invalid_name");
    node.delete("/collections/a%20b").await.assert_error(400, "invalid_name");
}

#[tokio::test]
async fn create_rejects_bad_requests() {
    let node =
        Node::with(ServerConfig { limits: Limits { max_dimension: 64, ..Limits::default() }, ..Default::default() });
    let cases: &[(&str, &str)] = &[
        ("", "invalid_json"),
        ("{", "invalid_json"),
        ("not json", "invalid_json"),
        (r#"{"name":"a","dimension":"3"}"#, "invalid_body"),
        (r#"{"name":5,"dimension":3}"#, "invalid_body"),
        (r#"[1,2]"#, "invalid_body"),
        (r#"{"dimension":3}"#, "invalid_name"),
        (r#"{"name":"a/b","dimension":3}"#, "invalid_name"),
        (r#"{"name":"..","dimension":3}"#, "invalid_name"),
        (r#"{"name":"a\u0000","dimension":3}"#, "invalid_name"),
        (r#"{"name":"a"}"#, "invalid_dimension"),
        (r#"{"name":"a","dimension":0}"#, "invalid_dimension"),
        (r#"{"name":"a","dimension":-4}"#, "invalid_dimension"),
        (r#"{"name":"a","dimension":65}"#, "invalid_dimension"),
        (r#"{"name":"a","dimension":3,"metric":"hamming"}"#, "invalid_metric"),
        (r#"{"name":"a","dimension":3,"m":0}"#, "invalid_parameter"),
        (r#"{"name":"a","dimension":3,"m":1}"#, "invalid_parameter"),
        (r#"{"name":"a","dimension":3,"ef_construction":0}"#, "invalid_parameter"),
        (r#"{"name":"a","dimension":3,"ef_search":-1}"#, "invalid_parameter"),
        (r#"{"name":"a","dimension":4,"quantization":{"type":"pq","subspaces":3}}"#, "invalid_parameter"),
        (r#"{"name":"a","dimension":4,"quantization":{"type":"sq8","oversampling":0.5}}"#, "invalid_parameter"),
    ];
    for (body, code) in cases {
        let r = node.post("/collections", body).await;
        assert_eq!(r.json["code"], *code, "{body}: {}", r.text);
        r.assert_error(400, code);
    }
    assert_eq!(node.get("/collections").await.json, json!([]), "nothing was created");
}

#[tokio::test]
async fn vectors_upsert_get_delete() {
    let node = Node::new();
    node.create("docs", "euclidean").await;
    let r = node
        .post(
            "/collections/docs/vectors",
            r#"{"vectors":[{"id":1,"vector":[1,0,0],"payload":{"lang":"en","n":[1,2]}},{"id":2,"vector":[0,1,0]}]}"#,
        )
        .await;
    assert_eq!((r.status, r.json.clone()), (StatusCode::CREATED, json!({"status": "inserted 2 vectors"})));

    let r = node.get("/collections/docs/vectors/1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({"id": 1, "vector": [1.0, 0.0, 0.0], "payload": {"lang": "en", "n": [1, 2]}}));
    let r = node.get("/collections/docs/vectors/2").await;
    assert_eq!(r.json, json!({"id": 2, "vector": [0.0, 1.0, 0.0]}));

    // Upsert overwrites vector and payload.
    let r = node.post("/collections/docs/vectors", r#"{"vectors":[{"id":1,"vector":[2,2,2]}]}"#).await;
    assert_eq!(r.json, json!({"status": "inserted 1 vectors"}));
    assert_eq!(node.get("/collections/docs/vectors/1").await.json, json!({"id": 1, "vector": [2.0, 2.0, 2.0]}));
    assert_eq!(node.get("/collections/docs").await.json["size"], 2);

    node.get("/collections/docs/vectors/3").await.assert_error(404, "not_found");
    node.get("/collections/nope/vectors/1").await.assert_error(404, "not_found");
    for bad in ["abc", "-1", "1.5", "18446744073709551616", "%20"] {
        node.get(&format!("/collections/docs/vectors/{bad}")).await.assert_error(400, "invalid_id");
        node.delete(&format!("/collections/docs/vectors/{bad}")).await.assert_error(400, "invalid_id");
    }

    let r = node.delete("/collections/docs/vectors/2").await;
    assert_eq!((r.status, r.json.clone()), (StatusCode::OK, json!({"status": "deleted"})));
    node.delete("/collections/docs/vectors/2").await.assert_error(404, "not_found");
    node.get("/collections/docs/vectors/2").await.assert_error(404, "not_found");
    node.delete("/collections/nope/vectors/2").await.assert_error(404, "not_found");
    node.post("/collections/nope/vectors", r#"{"vectors":[{"id":1,"vector":[1,0,0]}]}"#)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn rejected_batches_store_nothing() {
    let node = Node::with(ServerConfig { limits: Limits { max_batch: 3, ..Limits::default() }, ..Default::default() });
    node.create("docs", "cosine").await;
    let good = r#"{"id":10,"vector":[1,2,3]}"#;
    let cases: Vec<(String, &str)> = vec![
        ("{".to_owned(), "invalid_json"),
        (r#"{"vectors":"x"}"#.to_owned(), "invalid_body"),
        (r#"{}"#.to_owned(), "invalid_batch"),
        (r#"{"vectors":[]}"#.to_owned(), "invalid_batch"),
        (format!(r#"{{"vectors":[{good},{good},{good},{good}]}}"#), "invalid_batch"),
        (format!(r#"{{"vectors":[{good},{{"id":11,"vector":[1,2]}}]}}"#), "dimension_mismatch"),
        (format!(r#"{{"vectors":[{good},{{"id":10,"vector":[3,2,1]}}]}}"#), "duplicate_id"),
        (format!(r#"{{"vectors":[{good},{{"id":11,"vector":[1,1e39,1]}}]}}"#), "invalid_vector"),
        (format!(r#"{{"vectors":[{good},{{"id":11,"vector":[1,null,1]}}]}}"#), "invalid_vector"),
        (format!(r#"{{"vectors":[{good},{{"id":11,"vector":[1,"2",1]}}]}}"#), "invalid_vector"),
        (format!(r#"{{"vectors":[{good},{{"id":11,"vector":[0,0,0]}}]}}"#), "invalid_vector"),
        (format!(r#"{{"vectors":[{good},{{"id":11}}]}}"#), "invalid_vector"),
        (format!(r#"{{"vectors":[{good},{{"id":-1,"vector":[1,2,3]}}]}}"#), "invalid_id"),
        (format!(r#"{{"vectors":[{good},{{"id":1.5,"vector":[1,2,3]}}]}}"#), "invalid_id"),
        (format!(r#"{{"vectors":[{good},{{"id":"7","vector":[1,2,3]}}]}}"#), "invalid_id"),
        (format!(r#"{{"vectors":[{good},{{"vector":[1,2,3]}}]}}"#), "invalid_id"),
        (format!(r#"{{"vectors":[{good},{{"id":11,"vector":[1,2,3],"payload":[1]}}]}}"#), "invalid_payload"),
    ];
    for (body, code) in &cases {
        let r = node.post("/collections/docs/vectors", body).await;
        assert_eq!(r.json["code"], *code, "{body}: {}", r.text);
        r.assert_error(400, code);
    }
    let r =
        node.post("/collections/docs/vectors", &format!(r#"{{"vectors":[{good},{{"id":11,"vector":[1,2]}}]}}"#)).await;
    assert_eq!(r.json["error"], "vectors[1].vector: expected dimension 3, got 2");
    assert_eq!(node.get("/collections/docs").await.json["size"], 0, "a rejected batch stored nothing");
    node.get("/collections/docs/vectors/10").await.assert_error(404, "not_found");
    assert_eq!(node.get("/collections/docs/ids").await.json, json!({"ids": [], "next_after": null}));
}

async fn line(node: &Node) {
    node.create("line", "euclidean").await;
    let vectors: Vec<Value> = (0..20u64)
        .map(|i| json!({"id": i, "vector": [i as f32, 0.0, 0.0], "payload": {"even": i % 2 == 0, "i": i}}))
        .collect();
    let r = node.post("/collections/line/vectors", &json!({ "vectors": vectors }).to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

fn ids(hits: &Value) -> Vec<u64> {
    hits.as_array().expect("array").iter().map(|h| h["id"].as_u64().expect("id")).collect()
}

#[tokio::test]
async fn search_and_batch_search() {
    let node = Node::with(ServerConfig { limits: Limits { max_k: 50, ..Limits::default() }, ..Default::default() });
    line(&node).await;
    let r = node.post("/collections/line/search", r#"{"vector":[4.2,0,0],"k":3,"ef":100}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(ids(&r.json), [4, 5, 3]);
    let d = r.json[0]["distance"].as_f64().expect("distance");
    assert!((d - 0.2).abs() < 1e-4, "{d}");
    assert_eq!(r.json[0].as_object().expect("hit").len(), 2, "hits are {{id, distance}}");
    // Defaults: k = 10.
    assert_eq!(ids(&node.post("/collections/line/search", r#"{"vector":[0,0,0]}"#).await.json).len(), 10);

    // Filters (no payload index: conditions checked per vector).
    let r = node
        .post(
            "/collections/line/search",
            r#"{"vector":[4.2,0,0],"k":3,"filter":{"must":[{"key":"even","eq":true}],"must_not":[{"key":"i","in":[4]}]}}"#,
        )
        .await;
    assert_eq!(ids(&r.json), [6, 2, 8], "{}", r.text);
    let r = node
        .post(
            "/collections/line/search",
            r#"{"vector":[0,0,0],"k":5,"filter":{"must":[{"key":"i","range":{"gte":18}}]}}"#,
        )
        .await;
    assert_eq!(ids(&r.json), [18, 19], "fewer matches than k: all of them");
    // should (at least one), has_id, is_empty / is_null on a nested key.
    let r = node
        .post(
            "/collections/line/search",
            r#"{"vector":[0,0,0],"k":4,"filter":{"should":[{"has_id":[13,17]},{"key":"i","range":{"gte":19}}]}}"#,
        )
        .await;
    assert_eq!(ids(&r.json), [13, 17, 19], "{}", r.text);
    let r = node
        .post(
            "/collections/line/search",
            r#"{"vector":[0,0,0],"k":3,"filter":{"must":[{"key":"i.deep","is_empty":true}],"must_not":[{"has_id":[0,1]}]}}"#,
        )
        .await;
    assert_eq!(ids(&r.json), [2, 3, 4], "{}", r.text);
    let r = node
        .post("/collections/line/search", r#"{"vector":[0,0,0],"k":3,"filter":{"must":[{"key":"i","is_null":true}]}}"#)
        .await;
    assert_eq!(ids(&r.json), Vec::<u64>::new(), "{}", r.text);

    let r = node
        .post("/collections/line/search/batch", r#"{"searches":[{"vector":[0,0,0],"k":2},{"vector":[19,0,0],"k":1}]}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(ids(&r.json[0]), [0, 1]);
    assert_eq!(ids(&r.json[1]), [19]);

    for (body, code) in [
        (r#"{"vector":[0,0,0],"k":0}"#, "invalid_parameter"),
        (r#"{"vector":[0,0,0],"k":-1}"#, "invalid_parameter"),
        (r#"{"vector":[0,0,0],"k":51}"#, "invalid_parameter"),
        (r#"{"vector":[0,0,0],"ef":-1}"#, "invalid_parameter"),
        (r#"{"vector":[0,0,0],"k":"3"}"#, "invalid_body"),
        (r#"{"vector":[0,0]}"#, "dimension_mismatch"),
        (r#"{"vector":[0,1e39,0]}"#, "invalid_vector"),
        (r#"{"vector":[0,null,0]}"#, "invalid_vector"),
        (r#"{"k":3}"#, "invalid_vector"),
        (r#"{"vector":[0,0,0],"filter":{"must":[{"key":"a"}]}}"#, "invalid_filter"),
        (r#"{"vector":[0,0,0],"filter":{"should":[]}}"#, "invalid_filter"),
        (r#"{"vector":[0,0,0],"filter":{"must":[{"has_id":[]}]}}"#, "invalid_filter"),
        (r#"{"vector":[0,0,0],"filter":{"must":[{"key":"a","has_id":[1]}]}}"#, "invalid_filter"),
        (r#"{"vector":[0,0,0],"filter":{"must":[{"key":"a","is_empty":false}]}}"#, "invalid_filter"),
        (r#"{"vector":[0,0,0"#, "invalid_json"),
    ] {
        let r = node.post("/collections/line/search", body).await;
        assert_eq!(r.json["code"], code, "{body}: {}", r.text);
        r.assert_error(400, code);
    }
    node.post("/collections/line/search/batch", r#"{"searches":[]}"#).await.assert_error(400, "invalid_batch");
    let r = node.post("/collections/line/search/batch", r#"{"searches":[{"vector":[0,0,0]},{"vector":[0,0]}]}"#).await;
    r.assert_error(400, "dimension_mismatch");
    assert!(r.json["error"].as_str().expect("message").starts_with("searches[1]."), "{}", r.text);
    node.post("/collections/nope/search", r#"{"vector":[0,0,0]}"#).await.assert_error(404, "not_found");
    node.post("/collections/nope/search/batch", r#"{"searches":[]}"#).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn id_scroll() {
    let node = Node::new();
    line(&node).await;
    let r = node.get("/collections/line/ids?limit=8").await;
    assert_eq!(r.json, json!({"ids": [0, 1, 2, 3, 4, 5, 6, 7], "next_after": 7}));
    let r = node.get("/collections/line/ids?after=15&limit=8").await;
    assert_eq!(r.json, json!({"ids": [16, 17, 18, 19], "next_after": null}));
    let r = node.get("/collections/line/ids?after=11&limit=8").await;
    assert_eq!(r.json, json!({"ids": [12, 13, 14, 15, 16, 17, 18, 19], "next_after": null}));
    assert_eq!(node.get("/collections/line/ids").await.json["ids"].as_array().map(Vec::len), Some(20));
    for q in ["limit=0", "limit=-1", "limit=x", "after=-1", "after=abc", "limit=10001"] {
        node.get(&format!("/collections/line/ids?{q}")).await.assert_error(400, "invalid_parameter");
    }
    node.get("/collections/nope/ids").await.assert_error(404, "not_found");
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_big_bodies() {
    let node =
        Node::with(ServerConfig { limits: Limits { max_body_bytes: 1024, ..Limits::default() }, ..Default::default() });
    node.create("docs", "cosine").await;
    for path in ["/", "/nope", "/collections/docs/nope", "/collections/docs/vectors/1/x", "/collections/"] {
        node.get(path).await.assert_error(404, "not_found");
    }
    for (method, path, allow) in [
        (Method::PUT, "/collections", "GET,HEAD,POST"),
        (Method::POST, "/health", "GET,HEAD"),
        (Method::GET, "/collections/docs/search", "POST"),
        (Method::PATCH, "/collections/docs/vectors/1", "GET,HEAD,DELETE"),
    ] {
        let r = node.call(method.clone(), path, None, &[]).await;
        r.assert_error(405, "method_not_allowed");
        let got = r.headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let mut got: Vec<&str> = got.split(',').map(str::trim).collect();
        let mut want: Vec<&str> = allow.split(',').collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{method} {path}");
    }
    // Hostile inputs are 400s, never panics.
    node.get("/collections/%FF").await.assert_error(400, "bad_request");
    node.get("/collections/docs/vectors/%FF").await.assert_error(400, "bad_request");
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    for path in ["/collections/docs/search", "/collections", "/collections/docs/vectors"] {
        let r = node.post(path, &deep).await;
        let code = r.json["code"].as_str().unwrap_or_default().to_owned();
        r.assert_error(400, &code);
    }
    let big = format!(r#"{{"vectors":[{{"id":1,"vector":[{}]}}]}}"#, vec!["1.0"; 400].join(","));
    assert!(big.len() > 1024);
    node.post("/collections/docs/vectors", &big).await.assert_error(413, "payload_too_large");
    node.post("/collections", &format!(r#"{{"name":"x","dimension":3,"pad":"{}"}}"#, "x".repeat(2000)))
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(node.get("/collections/docs").await.json["size"], 0);
}

#[tokio::test]
async fn api_keys() {
    let config =
        ServerConfig { api_key: Some("rw".into()), read_only_api_key: Some("ro".into()), ..ServerConfig::default() };
    let node = Node::with(config);
    let create = r#"{"name":"docs","dimension":3}"#;
    // Without a key, or with a wrong one: 401.
    node.post("/collections", create).await.assert_error(401, "unauthorized");
    node.get("/collections").await.assert_error(401, "unauthorized");
    node.call(Method::GET, "/collections", None, &[("api-key", "nope")]).await.assert_error(401, "unauthorized");
    node.call(Method::GET, "/collections", None, &[("authorization", "Bearer rw2")])
        .await
        .assert_error(401, "unauthorized");
    // Open routes.
    for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
        assert_eq!(node.get(path).await.status, StatusCode::OK, "{path}");
    }
    // Read-write key, either header.
    let r = node.call(Method::POST, "/collections", Some(create), &[("authorization", "Bearer rw")]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = node
        .call(
            Method::POST,
            "/collections/docs/vectors",
            Some(r#"{"vectors":[{"id":1,"vector":[1,0,0]}]}"#),
            &[("api-key", "rw")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Read-only key: reads and searches pass, writes are 403.
    let ro = [("api-key", "ro")];
    assert_eq!(node.call(Method::GET, "/collections/docs", None, &ro).await.status, StatusCode::OK);
    assert_eq!(node.call(Method::GET, "/collections/docs/vectors/1", None, &ro).await.status, StatusCode::OK);
    let r = node.call(Method::POST, "/collections/docs/search", Some(r#"{"vector":[1,0,0]}"#), &ro).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = node
        .call(Method::POST, "/collections/docs/search/batch", Some(r#"{"searches":[{"vector":[1,0,0]}]}"#), &ro)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    node.call(Method::POST, "/collections", Some(r#"{"name":"x","dimension":3}"#), &ro)
        .await
        .assert_error(403, "forbidden");
    node.call(Method::POST, "/collections/docs/vectors", Some(r#"{"vectors":[{"id":2,"vector":[1,0,0]}]}"#), &ro)
        .await
        .assert_error(403, "forbidden");
    node.call(Method::DELETE, "/collections/docs/vectors/1", None, &ro).await.assert_error(403, "forbidden");
    node.call(Method::DELETE, "/collections/docs", None, &ro).await.assert_error(403, "forbidden");
    assert_eq!(node.call(Method::GET, "/collections/docs", None, &ro).await.json["size"], 1);
}

#[tokio::test]
async fn data_survives_a_restart() {
    let node = Node::new();
    line(&node).await;
    node.delete("/collections/line/vectors/3").await;
    node.create("empty", "dot").await;
    let before = node.post("/collections/line/search", r#"{"vector":[4.2,0,0],"k":5}"#).await.json;

    // Without a checkpoint: recovery replays the log.
    let node = node.restart();
    assert_eq!(node.get("/collections/line").await.json["size"], 19);
    assert_eq!(node.get("/collections/empty").await.json["metric"], "dotproduct");
    assert_eq!(node.post("/collections/line/search", r#"{"vector":[4.2,0,0],"k":5}"#).await.json, before);
    assert_eq!(
        node.get("/collections/line/vectors/4").await.json,
        json!({"id": 4, "vector": [4.0, 0.0, 0.0], "payload": {"even": true, "i": 4}})
    );
    node.get("/collections/line/vectors/3").await.assert_error(404, "not_found");

    // After a clean shutdown (checkpoint), and again.
    node.engine.shutdown().expect("checkpoint");
    let node = node.restart();
    assert_eq!(node.get("/collections/line").await.json["size"], 19);
    assert_eq!(node.post("/collections/line/search", r#"{"vector":[4.2,0,0],"k":5}"#).await.json, before);
}
