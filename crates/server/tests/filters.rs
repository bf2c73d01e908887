//! Filtered search, payload indexes, count and delete by filter, through
//! the HTTP stack: every route and error, the planner's three plans against
//! a brute-force oracle over random payloads and filters (seed printed),
//! and the indexes after restarts.

mod common;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use common::Node;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ruvector_api::{Filter, Limits};
use ruvector_server::ServerConfig;
use serde_json::{Map, Value, json};

const LANGS: [&str; 5] = ["en", "de", "fr", "ja", "pt"];
const TAGS: [&str; 4] = ["a", "b", "c", "d"];

fn ids(hits: &Value) -> Vec<u64> {
    hits.as_array().expect("array").iter().map(|h| h["id"].as_u64().expect("id")).collect()
}

/// `n` points in 8 dimensions with random payloads over a few keys of
/// mixed types (so indexed and unindexed conditions both occur).
fn random_points(n: u64, rng: &mut SmallRng) -> Vec<(u64, Vec<f32>, Value)> {
    (0..n)
        .map(|id| {
            let vector: Vec<f32> = (0..8).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let mut payload = Map::new();
            payload.insert("lang".into(), json!(LANGS[rng.random_range(0..5)]));
            payload.insert("year".into(), json!(rng.random_range(2000i64..2025)));
            payload.insert("score".into(), json!(rng.random_range(0.0f64..1.0)));
            if rng.random_bool(0.8) {
                payload.insert("ok".into(), json!(rng.random_bool(0.3)));
            }
            payload.insert("meta".into(), json!({"tag": TAGS[rng.random_range(0..4)]}));
            if rng.random_bool(0.1) {
                payload.insert("note".into(), Value::Null);
            }
            (id, vector, Value::Object(payload))
        })
        .collect()
}

fn random_condition(rng: &mut SmallRng) -> Value {
    match rng.random_range(0..9) {
        0 => json!({"key": "lang", "eq": LANGS[rng.random_range(0..5)]}),
        1 => json!({"key": "lang", "in": ["en", "ja"]}),
        2 => {
            let low = rng.random_range(2000i64..2025);
            json!({"key": "year", "range": {"gte": low, "lt": low + rng.random_range(1..8)}})
        }
        3 => json!({"key": "score", "range": {"gt": rng.random_range(0.0f64..1.0)}}),
        4 => json!({"key": "ok", "eq": rng.random_bool(0.5)}),
        5 => json!({"key": "meta.tag", "eq": TAGS[rng.random_range(0..4)]}),
        6 => json!({"key": "note", "is_null": true}),
        7 => json!({"has_id": (0..20).map(|_| rng.random_range(0..600u64)).collect::<Vec<_>>()}),
        _ => json!({"key": "year", "eq": rng.random_range(2000i64..2025)}),
    }
}

fn random_filter(rng: &mut SmallRng) -> Value {
    let mut filter = Map::new();
    let must: Vec<Value> = (0..rng.random_range(0..3)).map(|_| random_condition(rng)).collect();
    filter.insert("must".into(), Value::Array(must));
    if rng.random_bool(0.3) {
        filter.insert("must_not".into(), json!([random_condition(rng)]));
    }
    if rng.random_bool(0.3) {
        filter.insert("should".into(), json!([random_condition(rng), random_condition(rng)]));
    }
    Value::Object(filter)
}

/// The exact answer: the `k` nearest matching points by squared L2.
fn oracle(points: &[(u64, Vec<f32>, Value)], query: &[f32], filter: &Filter, k: usize) -> (Vec<u64>, usize) {
    let mut matching: Vec<(f32, u64)> = points
        .iter()
        .filter(|(id, _, p)| filter.matches(*id, p.as_object()))
        .map(|(id, v, _)| (v.iter().zip(query).map(|(a, b)| (a - b) * (a - b)).sum(), *id))
        .collect();
    let s = matching.len();
    matching.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    (matching.into_iter().take(k).map(|(_, id)| id).collect(), s)
}

/// Every plan, forced by `exact_filter_max` (0: always walk; huge: always
/// exact; default: the planner's choice), against the oracle.
#[tokio::test]
async fn every_plan_matches_the_oracle() {
    let seed: u64 = std::env::var("RUVECTOR_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_203);
    println!("seed {seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let points = random_points(600, &mut rng);
    let filters: Vec<Value> = (0..60).map(|_| random_filter(&mut rng)).collect();
    let queries: Vec<Vec<f32>> = (0..60).map(|_| (0..8).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect();
    for (threshold, plan) in [(0, "walk"), (1 << 30, "exact"), (64, "planned")] {
        let node = Node::with(ServerConfig { exact_filter_max: threshold, ..ServerConfig::default() });
        let r = node
            .post(
                "/collections",
                r#"{"name":"p","dimension":8,"metric":"euclidean","ef_search":128,
                    "payload_indexes":{"lang":"keyword","year":"integer","score":"float","ok":"bool"}}"#,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let body: Vec<Value> = points.iter().map(|(id, v, p)| json!({"id": id, "vector": v, "payload": p})).collect();
        let r = node.post("/collections/p/vectors", &json!({ "vectors": body }).to_string()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        node.engine.maintain_fully().expect("maintain");
        let (mut found, mut wanted) = (0usize, 0usize);
        for (i, (filter_json, query)) in filters.iter().zip(&queries).enumerate() {
            let filter: Filter = serde_json::from_value(filter_json.clone()).expect("filter");
            let k = [1usize, 5, 10, 40][i % 4];
            let body = json!({"vector": query, "k": k, "filter": filter_json});
            let r = node.post("/collections/p/search", &body.to_string()).await;
            assert_eq!(r.status, StatusCode::OK, "seed {seed} {plan}: {body}: {}", r.text);
            let got = ids(&r.json);
            let (want, s) = oracle(&points, query, &filter, k);
            assert_eq!(got.len(), k.min(s), "seed {seed} {plan}: {filter_json}: min(k, S) results");
            for id in &got {
                let payload = &points[*id as usize].2;
                assert!(filter.matches(*id, payload.as_object()), "seed {seed} {plan}: {id} fails {filter_json}");
            }
            if plan == "exact" {
                assert_eq!(got, want, "seed {seed} exact: {filter_json}");
            }
            found += got.iter().filter(|id| want.contains(id)).count();
            wanted += want.len();
            // Count agrees with the oracle's S.
            let r = node.post("/collections/p/count", &json!({"filter": filter_json}).to_string()).await;
            assert_eq!(r.json["count"], s as u64, "seed {seed}: count of {filter_json}: {}", r.text);
        }
        let recall = found as f64 / wanted.max(1) as f64;
        assert!(recall >= 0.95, "seed {seed} {plan}: recall {recall}");
        let metrics = node.get("/metrics").await.text;
        let plans = |name: &str| -> u64 {
            let prefix = format!("ruvector_filtered_search_plans_total{{plan=\"{name}\"}} ");
            metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map_or(0, |v| v.parse().unwrap_or(0))
        };
        let (exact, walk, fallback) = (plans("exact"), plans("walk"), plans("fallback"));
        println!("{plan}: exact {exact}, walk {walk}, fallback {fallback}");
        // An empty filter is no filter: no plan.
        let filtered = filters
            .iter()
            .filter(|f| !serde_json::from_value::<Filter>((*f).clone()).expect("filter").is_empty())
            .count() as u64;
        assert_eq!(exact + walk + fallback, filtered, "seed {seed} {plan}: every filtered search has a plan");
        match plan {
            "exact" => assert_eq!(exact, filtered),
            // With no candidate at all there is nothing to walk.
            "walk" => assert!(walk > 0 && fallback > 0, "seed {seed}: the walk ran and fell back"),
            _ => assert!(walk > 0 && exact > 0, "seed {seed}: both plans were chosen"),
        }
    }
}

#[tokio::test]
async fn payload_index_routes_and_errors() {
    let node = Node::with(ServerConfig { limits: Limits::default(), ..ServerConfig::default() });
    let r = node
        .post("/collections", r#"{"name":"d","dimension":2,"metric":"euclidean","payload_indexes":{"lang":"keyword"}}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(node.get("/collections/d").await.json["payload_indexes"], json!({"lang": "keyword"}));
    let vectors: Vec<Value> = (0..30u64)
        .map(|i| json!({"id": i, "vector": [i as f32, 0.0], "payload": {"lang": if i % 3 == 0 { "en" } else { "de" }, "n": i}}))
        .collect();
    node.post("/collections/d/vectors", &json!({ "vectors": vectors }).to_string()).await;

    // Declared later: built over what is stored.
    let r = node.post("/collections/d/payload_indexes", r#"{"key":"n","type":"integer"}"#).await;
    assert_eq!((r.status, r.json["status"].clone()), (StatusCode::CREATED, json!("created")), "{}", r.text);
    let r = node.post("/collections/d/payload_indexes", r#"{"key":"n","type":"integer"}"#).await;
    assert_eq!((r.status, r.json["status"].clone()), (StatusCode::OK, json!("unchanged")));
    assert_eq!(node.get("/collections/d").await.json["payload_indexes"], json!({"lang": "keyword", "n": "integer"}));
    let count = |body: &str| {
        let body = body.to_owned();
        let node = &node;
        async move { node.post("/collections/d/count", &body).await.json["count"].clone() }
    };
    assert_eq!(count(r#"{}"#).await, 30);
    assert_eq!(count(r#"{"filter":{"must":[{"key":"lang","eq":"en"}]}}"#).await, 10);
    assert_eq!(count(r#"{"filter":{"must":[{"key":"n","range":{"gte":10,"lt":20}}]}}"#).await, 10);
    assert_eq!(count(r#"{"filter":{"must_not":[{"key":"lang","eq":"en"}]}}"#).await, 20);

    for (path, body, code) in [
        ("/collections/d/payload_indexes", r#"{"key":"n"}"#, "invalid_parameter"),
        ("/collections/d/payload_indexes", r#"{"type":"bool"}"#, "invalid_parameter"),
        ("/collections/d/payload_indexes", r#"{"key":"n","type":"date"}"#, "invalid_parameter"),
        ("/collections/d/payload_indexes", r#"{"key":"a..b","type":"bool"}"#, "invalid_parameter"),
        ("/collections/d/payload_indexes", r#"{"key":"#, "invalid_json"),
        ("/collections/d/count", r#"{"filter":{"must":[{"key":"n","gt":1}]}}"#, "invalid_body"),
        ("/collections/d/count", r#"{"filter":{"should":[]}}"#, "invalid_filter"),
        ("/collections/d/delete", r#"{}"#, "invalid_filter"),
        ("/collections/d/delete", r#"{"filter":{}}"#, "invalid_filter"),
        ("/collections/d/delete", r#"{"filter":{"must":[{"key":"n","in":[]}]}}"#, "invalid_filter"),
    ] {
        let r = node.post(path, body).await;
        r.assert_error(400, code);
        assert!(r.json["error"].as_str().is_some_and(|m| !m.is_empty()), "{path} {body}: {}", r.text);
    }
    node.post("/collections/nope/count", "{}").await.assert_error(404, "not_found");
    node.post("/collections/nope/payload_indexes", r#"{"key":"a","type":"bool"}"#).await.assert_error(404, "not_found");
    node.delete("/collections/d/payload_indexes/missing").await.assert_error(404, "not_found");
    let r = node.post("/collections", r#"{"name":"e","dimension":2,"payload_indexes":{"x":"text"}}"#).await;
    r.assert_error(400, "invalid_parameter");
    assert!(r.json["error"].as_str().expect("message").contains("payload_indexes.x"), "{}", r.text);
    node.get("/collections/e").await.assert_error(404, "not_found");
    assert_eq!(count("{}").await, 30, "errors changed nothing");

    // Delete by filter: durable, counted, and the rest untouched.
    let r = node.post("/collections/d/delete", r#"{"filter":{"must":[{"key":"lang","eq":"en"}]}}"#).await;
    assert_eq!(r.json, json!({"deleted": 10}), "{}", r.text);
    assert_eq!(count(r#"{}"#).await, 20);
    assert_eq!(count(r#"{"filter":{"must":[{"key":"lang","eq":"en"}]}}"#).await, 0);
    let r = node
        .post("/collections/d/search", r#"{"vector":[0,0],"k":3,"filter":{"must":[{"key":"n","range":{"lt":6}}]}}"#)
        .await;
    assert_eq!(ids(&r.json), [1, 2, 4], "{}", r.text);

    // Dropping an index keeps the filter working (per vector).
    assert_eq!(node.delete("/collections/d/payload_indexes/n").await.json["status"], "deleted");
    assert_eq!(count(r#"{"filter":{"must":[{"key":"n","range":{"gte":10,"lt":20}}]}}"#).await, 7);

    // Restart without a checkpoint (log replay), then after one: the
    // declarations and what they index are the same.
    node.post("/collections/d/payload_indexes", r#"{"key":"n","type":"float"}"#).await;
    node.post("/collections/d/vectors", r#"{"vectors":[{"id":100,"vector":[5,5],"payload":{"lang":"en","n":10.5}}]}"#)
        .await;
    let probes = [
        r#"{"filter":{"must":[{"key":"lang","eq":"en"}]}}"#,
        r#"{"filter":{"must":[{"key":"n","range":{"gte":10,"lt":20}}]}}"#,
        r#"{"filter":{"should":[{"key":"lang","eq":"de"},{"has_id":[100]}]}}"#,
    ];
    let mut before = Vec::new();
    for p in probes {
        before.push(count(p).await);
    }
    assert_eq!(before, [json!(1), json!(8), json!(21)]);
    let node = node.restart();
    assert_eq!(node.get("/collections/d").await.json["payload_indexes"], json!({"lang": "keyword", "n": "float"}));
    for (p, want) in probes.iter().zip(&before) {
        assert_eq!(&node.post("/collections/d/count", p).await.json["count"], want, "after replay: {p}");
    }
    node.engine.shutdown().expect("checkpoint");
    let node = node.restart();
    assert_eq!(node.get("/collections/d").await.json["payload_indexes"], json!({"lang": "keyword", "n": "float"}));
    for (p, want) in probes.iter().zip(&before) {
        assert_eq!(&node.post("/collections/d/count", p).await.json["count"], want, "after a checkpoint: {p}");
    }
    let declared: BTreeMap<String, Value> =
        serde_json::from_value(node.get("/collections/d").await.json["payload_indexes"].clone()).expect("map");
    assert_eq!(declared.len(), 2);
}
