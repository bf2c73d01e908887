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

/// Partition snapshots through HTTP: one node's partition (live points
/// with payloads, a tombstone) streamed into another, applied as versioned
/// writes; applying it twice changes nothing, older writes do not win over
/// newer ones, and a damaged or misdirected snapshot is a 400 that changes
/// nothing.
#[test]
fn a_partition_snapshot_ships_one_partition_between_nodes() {
    use ruvector_api::partition_of;
    let dirs = [tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")];
    let (a, b) = (Process::node(dirs[0].path()), Process::node(dirs[1].path()));
    for node in [&a, &b] {
        let body = r#"{"name":"p","dimension":2,"metric":"l2","partitions":4}"#;
        assert_eq!(call("POST", &format!("{}/collections", node.url), Some(body)).status, 201);
    }
    let in_partition = |p: u32| (0u64..).filter(move |&id| partition_of("p", id, 4) == p);
    let ids: Vec<u64> = in_partition(1).take(300).collect();
    let points: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"id":{id},"vector":[{id},1],"version":{},"payload":{{"n":{id}}}}}"#, 100 + id))
        .collect();
    let body = format!(r#"{{"vectors":[{}]}}"#, points.join(","));
    assert_eq!(call("POST", &format!("{}/collections/p/vectors", a.url), Some(&body)).status, 201);
    // Another partition's data stays home.
    let other = in_partition(2).next().expect("id");
    let body = format!(r#"{{"vectors":[{{"id":{other},"vector":[0,0],"version":5}}]}}"#);
    assert_eq!(call("POST", &format!("{}/collections/p/vectors", a.url), Some(&body)).status, 201);
    let deleted = ids[0];
    assert_eq!(call("DELETE", &format!("{}/collections/p/vectors/{deleted}?version=9999", a.url), None).status, 200);
    // B already holds a newer write of one id: it must survive the import.
    let newer = ids[1];
    let body = format!(r#"{{"vectors":[{{"id":{newer},"vector":[-1,-1],"version":99999}}]}}"#);
    assert_eq!(call("POST", &format!("{}/collections/p/vectors", b.url), Some(&body)).status, 201);

    let http = reqwest::blocking::Client::new();
    let snapshot = http.get(format!("{}/collections/p/partitions/1/snapshot", a.url)).send().expect("get");
    assert_eq!(snapshot.status(), 200);
    assert_eq!(snapshot.headers()["content-type"], "application/x-ruvector-partition");
    let bytes = snapshot.bytes().expect("body").to_vec();
    let post = |bytes: Vec<u8>, partition: u32| {
        let r = http
            .post(format!("{}/collections/p/partitions/{partition}/snapshot", b.url))
            .header("content-type", "application/x-ruvector-partition")
            .body(bytes)
            .send()
            .expect("post");
        let status = r.status().as_u16();
        (status, serde_json::from_slice::<serde_json::Value>(&r.bytes().expect("body")).expect("json"))
    };
    let stamps = |url: &str| call("GET", &format!("{url}/collections/p/stamps?partition=1"), None).body;
    // Damaged: a flipped bit in a vector → 400 naming the byte; nothing applied.
    let mut damaged = bytes.clone();
    damaged[bytes.len() / 2] ^= 0x04;
    let (status, body) = post(damaged, 1);
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("checksum") && e.contains("byte")), "{body}");
    assert_eq!(stamps(&b.url)["stamps"].as_array().map(Vec::len), Some(1), "nothing applied");
    // Cut off: the complete frames before the cut are valid writes; the
    // answer is still a 400 (sending it again completes the copy).
    let (status, body) = post(bytes[..20].to_vec(), 1);
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("cut off")), "{body}");
    // Misdirected: partition 1's snapshot posted as partition 2.
    let (status, body) = post(bytes.clone(), 2);
    assert_eq!(status, 400, "{body}");
    // Bad partitions and collections.
    assert_eq!(post(bytes.clone(), 4).0, 400);
    let r = call("GET", &format!("{}/collections/p/partitions/x/snapshot", a.url), None);
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("invalid_parameter")), "{}", r.body);
    assert_eq!(call("GET", &format!("{}/collections/none/partitions/0/snapshot", a.url), None).status, 404);

    let (status, body) = post(bytes.clone(), 1);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["records"], 300, "299 points and a tombstone: {body}");
    assert_eq!((body["upserted"].as_u64(), body["deleted"].as_u64()), (Some(298), Some(1)), "{body}");
    assert_eq!(body["bytes"].as_u64(), Some(bytes.len() as u64));
    let (status, again) = post(bytes, 1);
    assert_eq!((status, again["upserted"].as_u64(), again["deleted"].as_u64()), (200, Some(0), Some(0)), "{again}");

    // B now holds A's partition 1, except the id B held a newer write of.
    let (sa, sb) = (stamps(&a.url)["stamps"].clone(), stamps(&b.url)["stamps"].clone());
    let differs: Vec<&serde_json::Value> = sa
        .as_array()
        .expect("a")
        .iter()
        .zip(sb.as_array().expect("b"))
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x)
        .collect();
    assert_eq!(differs.len(), 1, "{differs:?}");
    assert_eq!(differs[0]["id"], newer);
    let got = call("GET", &format!("{}/collections/p/vectors/{}", b.url, ids[7]), None).body;
    assert_eq!((got["vector"][0].as_f64(), got["payload"]["n"].as_u64()), (Some(ids[7] as f64), Some(ids[7])));
    assert_eq!(call("GET", &format!("{}/collections/p/vectors/{deleted}", b.url), None).status, 404);
    assert_eq!(call("GET", &format!("{}/collections/p/vectors/{other}", b.url), None).status, 404);
    assert_eq!(call("GET", &format!("{}/collections/p/vectors/{newer}", b.url), None).body["vector"][0], -1.0);
    assert_eq!(call("GET", &format!("{}/collections/p", b.url), None).body["size"], 299);
}

/// A partition a router moves off a node: out of reads and writes at once,
/// its data kept for `release_grace_ms` (requests already in flight
/// finish on it), then dropped.
#[test]
fn a_released_partition_keeps_its_data_for_the_grace_then_drops_it() {
    use ruvector_api::partition_of;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Process::node_with_env(dir.path(), &[("RUVECTOR_RELEASE_GRACE_MS", "3000")]);
    let body = r#"{"name":"p","dimension":2,"metric":"l2","partitions":4}"#;
    assert_eq!(call("POST", &format!("{}/collections", node.url), Some(body)).status, 201);
    let assign = |epoch: u64, held: &[u32]| {
        let held: Vec<String> = held.iter().map(|p| format!(r#"{{"partition":{p},"peers":[]}}"#)).collect();
        let body = format!(
            r#"{{"placement":"t","epoch":{epoch},"planner":0,"collections":[{{"name":"p","partitions":4,"held":[{}],"fresh":false}}]}}"#,
            held.join(",")
        );
        let r = call("PUT", &format!("{}/cluster/assignment", node.url), Some(&body));
        assert_eq!(r.status, 200, "{}", r.body);
    };
    assign(1, &[0, 1]);
    let ids: Vec<u64> = (0u64..).filter(|&id| partition_of("p", id, 4) <= 1).take(40).collect();
    let points: Vec<String> = ids.iter().map(|id| format!(r#"{{"id":{id},"vector":[{id},0]}}"#)).collect();
    let body = format!(r#"{{"vectors":[{}]}}"#, points.join(","));
    assert_eq!(call("POST", &format!("{}/collections/p/vectors", node.url), Some(&body)).status, 201);
    let moved = *ids.iter().find(|&&id| partition_of("p", id, 4) == 1).expect("an id in partition 1");
    let size = || call("GET", &format!("{}/collections/p", node.url), None).body["size"].as_u64();
    assert_eq!(size(), Some(40));
    assign(2, &[0]);
    let read = call("GET", &format!("{}/collections/p/vectors/{moved}", node.url), None);
    assert_eq!((read.status, read.body["code"].as_str()), (421, Some("partition_not_held")), "{}", read.body);
    assert_eq!(size(), Some(40), "the data is kept through the grace");
    let kept = ids.iter().filter(|&&id| partition_of("p", id, 4) == 0).count() as u64;
    support::wait_for(std::time::Duration::from_secs(30), || size() == Some(kept));
}
