//! The REST API contract, checked through HTTP against any base URL: a
//! single node or a router in front of shards must both pass it.

use serde_json::{Value, json};

use super::{Reply, call};

/// Asserts an error reply: the status and a JSON body `{"error","code"}`.
#[track_caller]
pub fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert_eq!(r.body["code"], code, "body: {}", r.body);
    assert!(r.body["error"].as_str().is_some_and(|m| !m.is_empty()), "error message missing: {}", r.body);
}

fn post(url: &str, body: &str) -> Reply {
    call("POST", url, Some(body))
}

/// Runs the whole suite in collections whose names start with `prefix`.
pub fn run(base: &str, prefix: &str) {
    health(base);
    collections(base, prefix);
    vectors_and_search(base, prefix);
    filters(base, prefix);
    routing_errors(base);
}

fn health(base: &str) {
    let r = call("GET", &format!("{base}/health"), None);
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
    assert_eq!(call("HEAD", &format!("{base}/health"), None).status, 200);
    assert_eq!(call("GET", &format!("{base}/ready"), None).status, 200);
    let metrics = call("GET", &format!("{base}/metrics"), None);
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.as_str().is_some_and(|t| t.contains("# TYPE")), "metrics: {}", metrics.body);
    let doc = call("GET", &format!("{base}/openapi.json"), None);
    assert_eq!(doc.status, 200);
    assert!(doc.body["paths"]["/collections/{name}/search"].is_object(), "openapi: {}", doc.body);
}

fn collections(base: &str, p: &str) {
    let url = format!("{base}/collections");
    let name = format!("{p}c");
    let created = post(
        &url,
        &format!(r#"{{"name":"{name}","dimension":3,"metric":"l2","m":8,"ef_construction":64,"ef_search":32}}"#),
    );
    assert_eq!((created.status, created.body.clone()), (201, json!({"status": "created"})));
    assert_error(&post(&url, &format!(r#"{{"name":"{name}","dimension":3}}"#)), 409, "collection_exists");
    // Defaults: metric cosine, m 16, ef_construction 200, ef_search 50.
    let d = format!("{p}defaults");
    assert_eq!(post(&url, &format!(r#"{{"name":"{d}","dimension":4}}"#)).status, 201);
    let info = call("GET", &format!("{url}/{d}"), None);
    assert_eq!(info.status, 200);
    for (key, value) in [
        ("metric", json!("cosine")),
        ("m", json!(16)),
        ("ef_construction", json!(200)),
        ("ef_search", json!(50)),
        ("size", json!(0)),
        ("dimension", json!(4)),
    ] {
        assert_eq!(info.body[key], value, "{key} in {}", info.body);
    }
    for (body, code) in [
        (r#"{"name":"","dimension":3}"#.to_owned(), "invalid_name"),
        (r#"{"name":"a/b","dimension":3}"#.to_owned(), "invalid_name"),
        (r#"{"name":"..","dimension":3}"#.to_owned(), "invalid_name"),
        (format!(r#"{{"name":"{p}x","dimension":0}}"#), "invalid_dimension"),
        (format!(r#"{{"name":"{p}x","dimension":-3}}"#), "invalid_dimension"),
        (format!(r#"{{"name":"{p}x","dimension":100000000}}"#), "invalid_dimension"),
        (format!(r#"{{"name":"{p}x","dimension":3,"metric":"hamming"}}"#), "invalid_metric"),
        (format!(r#"{{"name":"{p}x","dimension":3,"m":0}}"#), "invalid_parameter"),
        (format!(r#"{{"name":"{p}x","dimension":3,"ef_construction":-1}}"#), "invalid_parameter"),
        (format!(r#"{{"name":"{p}x","dimension":"3"}}"#), "invalid_body"),
        (format!(r#"{{"name":"{p}x","dimension":3"#), "invalid_json"),
    ] {
        let r = post(&url, &body);
        assert_eq!(r.status, 400, "{body} → {}", r.body);
        assert_eq!(r.body["code"], code, "{body} → {}", r.body);
    }
    assert_error(&call("GET", &format!("{url}/{p}x"), None), 404, "not_found");
    let list = call("GET", &url, None);
    assert_eq!(list.status, 200);
    let names: Vec<String> =
        list.body.as_array().expect("array").iter().filter_map(|c| c["name"].as_str().map(str::to_owned)).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "listed sorted by name");
    assert!(names.contains(&name) && names.contains(&d));
    let deleted = call("DELETE", &format!("{url}/{d}"), None);
    assert_eq!((deleted.status, deleted.body), (200, json!({"status": "deleted"})));
    assert_error(&call("DELETE", &format!("{url}/{d}"), None), 404, "not_found");
}

fn vectors_and_search(base: &str, p: &str) {
    let c = format!("{base}/collections/{p}c");
    let vectors = format!("{c}/vectors");
    let empty = post(&format!("{c}/search"), r#"{"vector":[0,0,0],"k":3}"#);
    assert_eq!((empty.status, empty.body), (200, json!([])));

    let r = post(
        &vectors,
        r#"{"vectors":[{"id":1,"vector":[0,0,0]},{"id":2,"vector":[1,0,0],"payload":{"tag":"b","n":2}},{"id":3,"vector":[5,5,5]}]}"#,
    );
    assert_eq!((r.status, r.body.clone()), (201, json!({"status": "inserted 3 vectors"})));
    let got = call("GET", &format!("{vectors}/2"), None);
    assert_eq!(got.status, 200);
    assert_eq!(got.body["id"], 2);
    assert_eq!(got.body["vector"], json!([1.0, 0.0, 0.0]));
    assert_eq!(got.body["payload"], json!({"tag": "b", "n": 2}));

    // Every bad batch is rejected whole and stores nothing.
    for (body, code) in [
        (r#"{"vectors":[]}"#, "invalid_batch"),
        (r#"{}"#, "invalid_batch"),
        (r#"{"vectors":[{"id":9,"vector":[1,2,3]},{"id":10,"vector":[1,2]}]}"#, "dimension_mismatch"),
        (r#"{"vectors":[{"id":9,"vector":[1,2,3]},{"id":9,"vector":[1,2,4]}]}"#, "duplicate_id"),
        (r#"{"vectors":[{"id":9,"vector":[1,2,3]},{"id":10,"vector":[1e39,2,3]}]}"#, "invalid_vector"),
        (r#"{"vectors":[{"id":9,"vector":[1,2,3]},{"id":10,"vector":[1,null,3]}]}"#, "invalid_vector"),
        (r#"{"vectors":[{"id":-9,"vector":[1,2,3]}]}"#, "invalid_id"),
        (r#"{"vectors":[{"id":9.5,"vector":[1,2,3]}]}"#, "invalid_id"),
        (r#"{"vectors":[{"id":"9","vector":[1,2,3]}]}"#, "invalid_id"),
        (r#"{"vectors":[{"id":9,"vector":[1,2,3],"payload":[1]}]}"#, "invalid_payload"),
        (r#"{"vectors":[{"id":9,"vector":[1,2,3]}"#, "invalid_json"),
    ] {
        let r = post(&vectors, body);
        assert_eq!(r.status, 400, "{body} → {}", r.body);
        assert_eq!(r.body["code"], code, "{body} → {}", r.body);
    }
    assert_error(&call("GET", &format!("{vectors}/9"), None), 404, "not_found");
    assert_error(&call("GET", &format!("{vectors}/10"), None), 404, "not_found");
    assert_error(&call("GET", &format!("{vectors}/abc"), None), 400, "invalid_id");
    assert_error(
        &post(&format!("{base}/collections/{p}missing/vectors"), r#"{"vectors":[{"id":1,"vector":[1,2,3]}]}"#),
        404,
        "not_found",
    );

    // Upsert replaces.
    assert_eq!(post(&vectors, r#"{"vectors":[{"id":1,"vector":[4,4,4]}]}"#).status, 201);
    assert_eq!(call("GET", &format!("{vectors}/1"), None).body["vector"], json!([4.0, 4.0, 4.0]));
    assert_eq!(call("GET", &c, None).body["size"], 3);

    let hits = post(&format!("{c}/search"), r#"{"vector":[5,5,4],"k":2,"ef":50}"#);
    assert_eq!(hits.status, 200);
    let ids: Vec<u64> =
        hits.body.as_array().expect("bare array").iter().map(|h| h["id"].as_u64().expect("id")).collect();
    assert_eq!(ids, [3, 1]);
    assert!((hits.body[0]["distance"].as_f64().expect("distance") - 1.0).abs() < 1e-5, "L2 distance: {}", hits.body);
    let all = post(&format!("{c}/search"), r#"{"vector":[0,0,0],"k":100}"#);
    assert_eq!(all.body.as_array().map(Vec::len), Some(3), "k above the size returns all");
    for (body, code) in [
        (r#"{"vector":[0,0,0],"k":0}"#, "invalid_parameter"),
        (r#"{"vector":[0,0,0],"k":-1}"#, "invalid_parameter"),
        (r#"{"vector":[0,0,0],"k":100000000}"#, "invalid_parameter"),
        (r#"{"vector":[0,0,0],"k":3,"ef":-1}"#, "invalid_parameter"),
        (r#"{"vector":[0,0],"k":3}"#, "dimension_mismatch"),
        (r#"{"vector":"x","k":3}"#, "invalid_vector"),
    ] {
        let r = post(&format!("{c}/search"), body);
        assert_eq!(r.status, 400, "{body} → {}", r.body);
        assert_eq!(r.body["code"], code, "{body} → {}", r.body);
    }
    assert_error(
        &post(&format!("{base}/collections/{p}missing/search"), r#"{"vector":[0,0,0],"k":1}"#),
        404,
        "not_found",
    );

    let batch =
        post(&format!("{c}/search/batch"), r#"{"searches":[{"vector":[5,5,4],"k":1},{"vector":[1,0,0],"k":1}]}"#);
    assert_eq!(batch.status, 200, "{}", batch.body);
    assert_eq!(batch.body[0][0]["id"], 3);
    assert_eq!(batch.body[1][0]["id"], 2);

    let page = call("GET", &format!("{c}/ids?limit=2"), None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["ids"], json!([1, 2]));
    let rest = call("GET", &format!("{c}/ids?after={}&limit=2", page.body["next_after"]), None);
    assert_eq!(rest.body["ids"], json!([3]));
    assert_eq!(rest.body["next_after"], Value::Null);

    let deleted = call("DELETE", &format!("{vectors}/2"), None);
    assert_eq!((deleted.status, deleted.body), (200, json!({"status": "deleted"})));
    assert_error(&call("DELETE", &format!("{vectors}/2"), None), 404, "not_found");
    assert_eq!(call("GET", &c, None).body["size"], 2);
}

fn routing_errors(base: &str) {
    assert_error(&call("GET", &format!("{base}/no/such/route"), None), 404, "not_found");
    let r = call("PUT", &format!("{base}/collections"), Some("{}"));
    assert_error(&r, 405, "method_not_allowed");
    assert!(r.headers.get("allow").is_some(), "405 without an Allow header");
}

/// Payload indexes, filtered search, count and delete by filter: 400
/// points on a line, `i` at x = i, payload `{"tag": t, "i": i}` with
/// `t` cycling over five values; a brute-force answer for each filter.
fn filters(base: &str, p: &str) {
    let name = format!("{p}filtered");
    let c = format!("{base}/collections/{name}");
    let r = post(
        &format!("{base}/collections"),
        &json!({"name": name, "dimension": 2, "metric": "l2", "payload_indexes": {"tag": "keyword"}}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(call("GET", &c, None).body["payload_indexes"], json!({"tag": "keyword"}));
    let tags = ["a", "b", "c", "d", "e"];
    let vectors: Vec<Value> = (0..400u64)
        .map(|i| json!({"id": i, "vector": [i as f32, 0.0], "payload": {"tag": tags[(i % 5) as usize], "i": i}}))
        .collect();
    for chunk in vectors.chunks(200) {
        assert_eq!(post(&format!("{c}/vectors"), &json!({ "vectors": chunk }).to_string()).status, 201);
    }
    let r = post(&format!("{c}/payload_indexes"), r#"{"key":"i","type":"integer"}"#);
    assert_eq!((r.status, r.body["status"].clone()), (201, json!("created")), "{}", r.body);
    let r = post(&format!("{c}/payload_indexes"), r#"{"key":"i","type":"integer"}"#);
    assert_eq!((r.status, r.body["status"].clone()), (200, json!("unchanged")), "{}", r.body);

    let count = |filter: Value| -> u64 {
        let r = post(&format!("{c}/count"), &json!({ "filter": filter }).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["count"].as_u64().expect("count")
    };
    assert_eq!(post(&format!("{c}/count"), "{}").body["count"], 400);
    assert_eq!(count(json!({"must": [{"key": "tag", "eq": "a"}]})), 80);
    assert_eq!(
        count(json!({"must": [{"key": "tag", "in": ["a", "b"]}], "must_not": [{"key": "i", "range": {"lt": 100}}]})),
        120
    );
    assert_eq!(count(json!({"should": [{"key": "tag", "eq": "e"}, {"has_id": [0, 1, 4]}]})), 82);

    // Filtered search: the nearest matching points, as many as match.
    let search = |x: f32, k: usize, filter: Value| -> Vec<u64> {
        let r = post(&format!("{c}/search"), &json!({"vector": [x, 0.0], "k": k, "filter": filter}).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        r.body.as_array().expect("hits").iter().map(|h| h["id"].as_u64().expect("id")).collect()
    };
    assert_eq!(search(200.2, 3, json!({"must": [{"key": "tag", "eq": "c"}]})), [202, 197, 207]);
    assert_eq!(
        search(0.0, 4, json!({"must": [{"key": "tag", "eq": "b"}, {"key": "i", "range": {"gte": 380}}]})),
        [381, 386, 391, 396]
    );
    assert_eq!(search(0.0, 10, json!({"must": [{"key": "i", "range": {"gte": 397}}]})), [397, 398, 399]);
    assert_eq!(search(0.0, 5, json!({"must": [{"key": "tag", "eq": "zzz"}]})), Vec::<u64>::new());

    // Errors change nothing.
    assert_error(&post(&format!("{c}/payload_indexes"), r#"{"key":"i","type":"text"}"#), 400, "invalid_parameter");
    assert_error(&post(&format!("{c}/delete"), r#"{"filter":{}}"#), 400, "invalid_filter");
    assert_error(&post(&format!("{c}/count"), r#"{"filter":{"must":[{"key":"tag","in":[]}]}}"#), 400, "invalid_filter");
    assert_error(&post(&format!("{base}/collections/{p}nope/count"), "{}"), 404, "not_found");
    assert_error(&call("DELETE", &format!("{c}/payload_indexes/nope"), None), 404, "not_found");

    // Delete by filter: durable and exact.
    let r = post(
        &format!("{c}/delete"),
        r#"{"filter":{"must":[{"key":"tag","eq":"a"}],"must_not":[{"key":"i","range":{"gte":200}}]}}"#,
    );
    assert_eq!((r.status, r.body["deleted"].clone()), (200, json!(40)), "{}", r.body);
    assert_eq!(post(&format!("{c}/count"), "{}").body["count"], 360);
    assert_eq!(count(json!({"must": [{"key": "tag", "eq": "a"}]})), 40);
    assert_eq!(call("GET", &c, None).body["size"], 360);
    call("GET", &format!("{c}/vectors/0"), None);
    assert_error(&call("GET", &format!("{c}/vectors/5"), None), 404, "not_found");
    assert_eq!(call("GET", &format!("{c}/vectors/205"), None).status, 200);
    assert_eq!(call("DELETE", &format!("{c}/payload_indexes/i"), None).body["status"], "deleted");
    assert_eq!(count(json!({"must": [{"key": "i", "range": {"gte": 397}}]})), 3, "unindexed keys still filter");
    assert_eq!(call("DELETE", &c, None).status, 200);
}
