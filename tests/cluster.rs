//! The cluster through real processes: one `ruvector router` in front of
//! three `ruvector serve` shards, all on loopback ports chosen by the OS.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use ruvector_router::{Ring, RouterConfig};
use serde_json::{Value, json};
use support::{Process, call, path_str};

/// Three shards and a router over them.
struct Cluster {
    dirs: Vec<tempfile::TempDir>,
    shards: Vec<Option<Process>>,
    router: Process,
}

impl Cluster {
    fn start() -> Cluster {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
        let shards: Vec<Option<Process>> = dirs.iter().map(|d| Some(Process::node(d.path()))).collect();
        let router = start_router(&shards.iter().map(|s| s.as_ref().expect("up").url.clone()).collect::<Vec<_>>());
        Cluster { dirs, shards, router }
    }

    fn shard_urls(&self) -> Vec<String> {
        self.shards.iter().map(|s| s.as_ref().expect("shard up").url.clone()).collect()
    }
}

fn start_router(shards: &[String]) -> Process {
    let router = Process::start(&["router", "--addr", "127.0.0.1:0", "--shards", &shards.join(",")]);
    router.wait_ready();
    router
}

fn restart_shard(dir: &Path, url: &str) -> Process {
    let addr = url.trim_start_matches("http://");
    let p = Process::start(&["serve", "--addr", addr, "--data", path_str(dir)]);
    p.wait_ready();
    p
}

#[test]
fn the_node_api_suite_passes_through_the_router() {
    let cluster = Cluster::start();
    support::api_suite::run(&cluster.router.url, "cl_");
    // The data really is spread: every shard holds a share of a larger batch.
    let c = format!("{}/collections/spread", cluster.router.url);
    assert_eq!(
        call(
            "POST",
            &format!("{}/collections", cluster.router.url),
            Some(r#"{"name":"spread","dimension":2,"metric":"l2"}"#)
        )
        .status,
        201
    );
    let vectors: Vec<Value> = (0..300).map(|i| json!({"id": i, "vector": [i as f32, 1.0]})).collect();
    assert_eq!(call("POST", &format!("{c}/vectors"), Some(&json!({"vectors": vectors}).to_string())).status, 201);
    assert_eq!(call("GET", &c, None).body["size"], 300);
    for shard in cluster.shard_urls() {
        let size = call("GET", &format!("{shard}/collections/spread"), None).body["size"].as_u64().expect("size");
        assert!((60..=140).contains(&size), "shard {shard} holds {size} of 300");
    }
    let status = call("GET", &format!("{}/cluster", cluster.router.url), None);
    assert_eq!(status.status, 200);
    assert_eq!(status.body["shards"].as_array().map(Vec::len), Some(3));
}

#[test]
fn search_through_the_router_equals_a_single_node_on_real_data() {
    let Some(dir) = ruvector_dataset::shared_minilm_dir() else {
        assert!(std::env::var_os("RUVECTOR_REQUIRE_DATASET").is_none(), "data set required but missing");
        eprintln!("SKIPPED: pypi-minilm-100k not found");
        return;
    };
    let base = ruvector_dataset::read_fvecs(&dir.join("base.fvecs"), Some(10_000)).expect("base");
    let queries = ruvector_dataset::read_fvecs(&dir.join("query.fvecs"), Some(50)).expect("queries");
    let cluster = Cluster::start();
    let single_dir = tempfile::tempdir().expect("tempdir");
    let single = Process::node(single_dir.path());
    for url in [&cluster.router.url, &single.url] {
        let created =
            call("POST", &format!("{url}/collections"), Some(r#"{"name":"mini","dimension":384,"metric":"cosine"}"#));
        assert_eq!(created.status, 201);
        for chunk in (0..base.rows()).collect::<Vec<_>>().chunks(1000) {
            let vectors: Vec<Value> = chunk.iter().map(|&i| json!({"id": i, "vector": base.row(i)})).collect();
            let r = call(
                "POST",
                &format!("{url}/collections/mini/vectors"),
                Some(&json!({"vectors": vectors}).to_string()),
            );
            assert_eq!(r.status, 201, "{}", r.body);
        }
    }
    for q in queries.iter() {
        // ef ≥ the collection size: both answers are exact.
        let body = json!({"vector": q, "k": 10, "ef": 10_000}).to_string();
        let routed = call("POST", &format!("{}/collections/mini/search", cluster.router.url), Some(&body));
        let direct = call("POST", &format!("{}/collections/mini/search", single.url), Some(&body));
        assert_eq!(routed.status, 200);
        assert_eq!(routed.body, direct.body, "router and single node disagree");
    }
}

#[test]
fn a_dead_shard_fails_fast_and_nothing_is_lost_after_restarts() {
    let mut cluster = Cluster::start();
    let router = cluster.router.url.clone();
    let urls = cluster.shard_urls();
    let ring = Ring::new(&urls, RouterConfig::default().vnodes);
    assert_eq!(
        call("POST", &format!("{router}/collections"), Some(r#"{"name":"k","dimension":2,"metric":"l2"}"#)).status,
        201
    );
    let vectors: Vec<Value> = (0..90).map(|i| json!({"id": i, "vector": [i as f32, 0.0]})).collect();
    assert_eq!(
        call("POST", &format!("{router}/collections/k/vectors"), Some(&json!({"vectors": vectors}).to_string())).status,
        201
    );

    // Kill shard 1.
    cluster.shards[1].take().expect("up").kill();
    let search = r#"{"vector":[0,0],"k":5}"#;
    let started = Instant::now();
    let failed = call("POST", &format!("{router}/collections/k/search"), Some(search));
    assert!(started.elapsed() < Duration::from_secs(5), "search took {:?} with a shard down", started.elapsed());
    support::api_suite::assert_error(&failed, 503, "unavailable");
    assert!(
        failed.body["error"].as_str().is_some_and(|m| m.contains(&urls[1])),
        "503 must name the shard: {}",
        failed.body
    );
    let partial =
        call("POST", &format!("{router}/collections/k/search"), Some(r#"{"vector":[0,0],"k":5,"allow_partial":true}"#));
    assert_eq!(partial.status, 200);
    assert_eq!(partial.headers.get("x-ruvector-partial").and_then(|v| v.to_str().ok()), Some("true"));
    let live_ids: Vec<u64> = (0..90).filter(|&i| ring.owner_of("k", i, Some(32)) != 1).collect();
    let got: Vec<u64> = partial.body.as_array().expect("array").iter().map(|h| h["id"].as_u64().expect("id")).collect();
    assert_eq!(got, live_ids[..5].to_vec(), "partial results are the live shards' nearest");
    // The router stays ready with one shard down.
    assert_eq!(call("GET", &format!("{router}/ready"), None).status, 200);

    // Inserts owned by live shards succeed; one owned by the dead shard is refused.
    let (on_live, on_dead): (Vec<u64>, Vec<u64>) = (1000..1100).partition(|&i| ring.owner_of("k", i, Some(32)) != 1);
    let body = |ids: &[u64]| {
        json!({"vectors": ids.iter().map(|&i| json!({"id": i, "vector": [i as f32, 1.0]})).collect::<Vec<_>>()})
            .to_string()
    };
    assert_eq!(call("POST", &format!("{router}/collections/k/vectors"), Some(&body(&on_live))).status, 201);
    support::api_suite::assert_error(
        &call("POST", &format!("{router}/collections/k/vectors"), Some(&body(&on_dead[..1]))),
        503,
        "unavailable",
    );

    // Restart the shard on its data: full results again, nothing lost.
    cluster.shards[1] = Some(restart_shard(cluster.dirs[1].path(), &urls[1]));
    let full = call("POST", &format!("{router}/collections/k/search"), Some(search));
    assert_eq!(full.status, 200, "{}", full.body);
    let ids: Vec<u64> = full.body.as_array().expect("array").iter().map(|h| h["id"].as_u64().expect("id")).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    assert_eq!(call("GET", &format!("{router}/collections/k"), None).body["size"], 90 + on_live.len());

    // Restart the router: it holds no state, so nothing changes.
    drop(cluster.router);
    let router = start_router(&urls);
    assert_eq!(call("GET", &format!("{}/collections/k", router.url), None).body["size"], 90 + on_live.len());
    for id in [0u64, 45, 89, on_live[0]] {
        let got = call("GET", &format!("{}/collections/k/vectors/{id}", router.url), None);
        assert_eq!(got.status, 200, "id {id}: {}", got.body);
    }
}
