//! Slow, idle and hostile clients against the real binary, at a node and
//! at a router, with raw `TcpStream`s where an HTTP client would be too
//! polite:
//!
//! - slowloris (a request head dribbled byte by byte; a body dribbled after
//!   a complete head), silent new connections and idle kept-alive ones are
//!   all closed by the timers of `limits.header_read_timeout_ms` and
//!   `limits.body_read_timeout_ms`, while a normal client's requests,
//!   sent with 200 such connections open, still answer promptly;
//! - huge and deep input (a 10⁶-element vector, 100 000 nested arrays and
//!   objects in payloads and filters, unicode and path-like names, huge
//!   `k` / `ef` / batches, bodies over the limit announced and streamed):
//!   a 4xx JSON error (or, for an oversize body, a 413 and a closed
//!   connection), the process alive and its RSS bounded;
//! - the limits walk: every limit, at the value allowed (accepted) and one
//!   above (refused, naming the limit), with the same answer at the node
//!   and at the router.
//!
//! Figures (time to cut, latency, RSS) are printed; run with
//! `--nocapture` to see them.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Process, path_str, wait_for};

/// The client timers of the targets under attack (ms).
const HEADER_TIMEOUT_MS: u64 = 1000;
const BODY_TIMEOUT_MS: u64 = 1000;
/// A connection must be cut within its timer plus this much.
const CUT_MARGIN: Duration = Duration::from_millis(1500);

/// Limits of every process here, small so the walk is cheap.
const MAX_BODY: usize = 4 << 20;
const MAX_BATCH: usize = 50;
const MAX_SEARCH_BATCH: usize = 8;
const MAX_K: usize = 100;
const MAX_EF: usize = 500;
const MAX_M: usize = 32;
const MAX_DIMENSION: usize = 256;
const MAX_PAGE: usize = 100;
const DIM: usize = 4;

/// A config file: the limits above, and short client timers when `short`
/// (the shard behind the router keeps the default timers: its client, the
/// router, pools connections for 30 s).
fn config(dir: &Path, short: bool) -> String {
    let timers = if short {
        format!("header_read_timeout_ms = {HEADER_TIMEOUT_MS}\nbody_read_timeout_ms = {BODY_TIMEOUT_MS}\n")
    } else {
        String::new()
    };
    let limits = format!(
        "max_body_bytes = {MAX_BODY}\nmax_batch = {MAX_BATCH}\nmax_search_batch = {MAX_SEARCH_BATCH}\n\
         max_k = {MAX_K}\nmax_ef = {MAX_EF}\nmax_m = {MAX_M}\nmax_dimension = {MAX_DIMENSION}\n\
         max_page = {MAX_PAGE}\n{timers}"
    );
    let path = dir.join(if short { "short.toml" } else { "default.toml" });
    std::fs::write(&path, format!("[limits]\n{limits}\n[router.limits]\n{limits}")).expect("write config");
    path_str(&path).to_owned()
}

/// A node (`short` client timers or the default ones) over `data`.
fn start_node(data: &Path, config: &str) -> Process {
    let p = Process::start(&["serve", "--addr", "127.0.0.1:0", "--data", path_str(data), "--config", config]);
    p.wait_ready();
    p
}

/// A router over `shard`, ready.
fn start_router(shard: &str, config: &str) -> Process {
    let p = Process::start(&["router", "--addr", "127.0.0.1:0", "--shards", shard, "--config", config]);
    wait_for(Duration::from_secs(30), || ask("GET", &format!("{}/ready", p.url), None).0 == 200);
    p
}

/// The node under attack, and a router (short timers) over a node with
/// default timers; each with one collection of dimension [`DIM`].
struct Targets {
    _dir: tempfile::TempDir,
    node: Process,
    _shard: Process,
    router: Process,
}

impl Targets {
    fn start() -> Targets {
        let dir = tempfile::tempdir().expect("tempdir");
        let (short, long) = (config(dir.path(), true), config(dir.path(), false));
        std::fs::create_dir_all(dir.path().join("a")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("b")).expect("mkdir");
        let node = start_node(&dir.path().join("a"), &short);
        let shard = start_node(&dir.path().join("b"), &long);
        let router = start_router(&shard.url, &short);
        for url in [&node.url, &router.url] {
            let (status, body) = ask("POST", &format!("{url}/collections"), Some(&create("c", DIM)));
            assert_eq!(status, 201, "{body}");
            let vectors: Vec<Value> = (0..20).map(|i| json!({"id": i, "vector": vector(i as f32)})).collect();
            let (status, body) =
                ask("POST", &format!("{url}/collections/c/vectors"), Some(&json!({"vectors": vectors}).to_string()));
            assert_eq!(status, 201, "{body}");
        }
        Targets { _dir: dir, node, _shard: shard, router }
    }

    /// (name, process) of both targets.
    fn both(&self) -> [(&'static str, &Process); 2] {
        [("node", &self.node), ("router", &self.router)]
    }
}

fn create(name: &str, dim: usize) -> String {
    json!({"name": name, "dimension": dim, "metric": "l2"}).to_string()
}

fn vector(x: f32) -> Vec<f32> {
    (0..DIM).map(|d| x + d as f32).collect()
}

/// One request on a fresh connection (no pool: the targets close idle
/// connections after a second, and a pooled one could race that).
fn ask(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    });
    let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), url);
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_owned());
    }
    let r = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// `host:port` of a base URL.
fn host(url: &str) -> &str {
    url.trim_start_matches("http://")
}

/// Resident memory of a process in KiB (`VmRSS` in /proc/<pid>/status).
fn rss_kib(p: &Process) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.child.id())).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn assert_alive(name: &str, p: &mut Process) {
    assert!(p.child.try_wait().expect("try_wait").is_none(), "{name} died");
    let (status, _) = ask("GET", &format!("{}/health", p.url), None);
    assert_eq!(status, 200, "{name} health");
}

// ---------------------------------------------------------------------------
// Slow and idle clients

/// What a hostile connection does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slow {
    /// Connects and sends nothing.
    Silent,
    /// Sends one request, reads the answer, then stays idle (keep-alive).
    IdleKeepAlive,
    /// Dribbles a request head, one byte every 100 ms, never finishing it.
    Head,
    /// Sends a complete head announcing 1000 bytes, then dribbles the body.
    Body,
}

/// How a hostile connection ended: the time from when its timer started
/// (connect; for `IdleKeepAlive` the end of its response) to the close,
/// and what the server sent before closing.
#[derive(Debug)]
struct Cut {
    after: Duration,
    said: String,
}

/// Runs one hostile connection until the server closes it, or fails after
/// `deadline`; counts itself in `opened` once connected (and answered, for
/// `IdleKeepAlive`).
fn hostile(addr: &str, kind: Slow, deadline: Duration, opened: &AtomicUsize) -> Result<Cut, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let mut started = Instant::now();
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    if kind == Slow::IdleKeepAlive {
        stream.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").map_err(|e| e.to_string())?;
        // Read the whole (small) answer, then idle.
        stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        while !answer.ends_with(b"}") {
            let n = stream.read(&mut buf).map_err(|e| format!("first answer: {e}"))?;
            if n == 0 {
                return Err("closed before answering".into());
            }
            answer.extend_from_slice(&buf[..n]);
        }
        started = Instant::now();
    }
    opened.fetch_add(1, Ordering::SeqCst);
    if kind == Slow::Body {
        stream
            .write_all(b"POST /collections/c/search HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{")
            .map_err(|e| e.to_string())?;
    }
    let dribble: &[u8] = match kind {
        Slow::Head => b"GET /health HTTP/1.1\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Slow::Body => b"                                                                                                    ",
        Slow::Silent | Slow::IdleKeepAlive => b"",
    };
    // Pace by reading with a 100 ms timeout: a close ends the wait at once.
    stream.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
    let mut next = 0;
    loop {
        if started.elapsed() > deadline {
            return Err(format!("{kind:?}: still open after {:?}", started.elapsed()));
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => break,
            Err(e) => return Err(format!("{kind:?}: read: {e}")),
        }
        if !dribble.is_empty() {
            // A write may fail once the server has closed: that is the cut.
            if stream.write_all(&dribble[next % dribble.len()..][..1]).is_err() {
                break;
            }
            next += 1;
        }
    }
    Ok(Cut { after: started.elapsed(), said: String::from_utf8_lossy(&said).into_owned() })
}

/// 200 hostile connections (50 of each kind) at each target: every one is
/// cut by its timer, and a normal client's searches meanwhile answer
/// promptly.
#[test]
fn slow_and_idle_clients_are_cut_without_holding_up_others() {
    let mut targets = Targets::start();
    let deadline = Duration::from_millis(HEADER_TIMEOUT_MS.max(BODY_TIMEOUT_MS)) + CUT_MARGIN;
    for (name, target) in targets.both() {
        let addr = host(&target.url).to_owned();
        let kinds = [Slow::Silent, Slow::IdleKeepAlive, Slow::Head, Slow::Body];
        let opened = Arc::new(AtomicUsize::new(0));
        let attackers: Vec<_> = (0..200)
            .map(|i| {
                let (addr, kind) = (addr.clone(), kinds[i % kinds.len()]);
                let opened = opened.clone();
                std::thread::spawn(move || (kind, hostile(&addr, kind, deadline, &opened)))
            })
            .collect();
        // Once they are all open: normal searches, until the first is cut.
        wait_for(Duration::from_secs(10), || opened.load(Ordering::SeqCst) == 200);
        let search = json!({"vector": vector(3.0), "k": 5}).to_string();
        let mut latencies = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let (status, body) = ask("POST", &format!("{}/collections/c/search", target.url), Some(&search));
            assert_eq!(status, 200, "{name}: {body}");
            latencies.push(t.elapsed());
        }
        latencies.sort();
        let slowest = latencies[latencies.len() - 1];
        let mut worst = std::collections::BTreeMap::<String, Duration>::new();
        for attacker in attackers {
            let (kind, cut) = attacker.join().expect("attacker thread");
            let cut = cut.unwrap_or_else(|e| panic!("{name}: {e}"));
            if kind == Slow::Body {
                // A stalled body gets its answer before the close.
                assert!(cut.said.starts_with("HTTP/1.1 408"), "{name}: {kind:?}: {:?}", cut.said);
                assert!(cut.said.contains("\"code\":\"request_timeout\""), "{name}: {:?}", cut.said);
            } else {
                assert!(!cut.said.contains("200 OK"), "{name}: {kind:?} answered: {:?}", cut.said);
            }
            let at_least = Duration::from_millis(if kind == Slow::Body { BODY_TIMEOUT_MS } else { HEADER_TIMEOUT_MS });
            // Not cut before its timer (a margin for timer granularity).
            assert!(cut.after + Duration::from_millis(50) >= at_least, "{name}: {kind:?} cut early: {cut:?}");
            let e = worst.entry(format!("{kind:?}")).or_default();
            *e = (*e).max(cut.after);
        }
        println!(
            "{name}: 200 slow connections (50 each), timers {HEADER_TIMEOUT_MS} ms / {BODY_TIMEOUT_MS} ms; \
             slowest cut per kind {worst:?}; 20 normal searches meanwhile: median {:?}, slowest {slowest:?}",
            latencies[latencies.len() / 2]
        );
        assert!(slowest < Duration::from_secs(1), "{name}: a normal search took {slowest:?}");
    }
    for (name, p) in [("node", &mut targets.node), ("router", &mut targets.router)] {
        assert_alive(name, p);
    }
}

// ---------------------------------------------------------------------------
// Huge and deep input

/// `depth` nested JSON arrays (`[[[…]]]`) or objects (`{"a":{"a":…}}`).
fn nested(depth: usize, objects: bool) -> String {
    let (open, close) = if objects { ("{\"a\":", "}") } else { ("[", "]") };
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

/// Sends `head` then `body_len` bytes of body in 64 KiB writes (chunked
/// when `chunked`), stopping when the server stops reading; returns what
/// it answered before closing.
fn oversize(addr: &str, path: &str, body_len: usize, chunked: bool) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.set_write_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let framing = if chunked { "transfer-encoding: chunked".to_owned() } else { format!("content-length: {body_len}") };
    let head = format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{framing}\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("head");
    let piece = vec![b' '; 64 << 10];
    let mut sent = 0;
    while sent < body_len {
        let n = piece.len().min(body_len - sent);
        let written = if chunked {
            stream
                .write_all(format!("{n:x}\r\n").as_bytes())
                .and_then(|()| stream.write_all(&piece[..n]))
                .and_then(|()| stream.write_all(b"\r\n"))
        } else {
            stream.write_all(&piece[..n])
        };
        if written.is_err() {
            break; // the server answered and closed
        }
        sent += n;
    }
    if chunked && sent >= body_len {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Every hostile body at both targets: a 4xx JSON error naming the problem,
/// the process alive and its RSS bounded.
#[test]
fn huge_and_deep_input_is_refused_with_bounded_memory() {
    let mut targets = Targets::start();
    let million: String = format!("[{}0]", "0,".repeat(999_999));
    let deep_payload_arrays =
        format!(r#"{{"vectors":[{{"id":1,"vector":[1,2,3,4],"payload":{{"x":{}}}}}]}}"#, nested(100_000, false));
    let deep_payload_objects =
        format!(r#"{{"vectors":[{{"id":1,"vector":[1,2,3,4],"payload":{}}}]}}"#, nested(100_000, true));
    let deep_filter =
        format!(r#"{{"vector":[1,2,3,4],"k":1,"filter":{{"must":[{{"key":"x","eq":{}}}]}}}}"#, nested(100_000, false));
    let deep_filter_objects =
        format!(r#"{{"vector":[1,2,3,4],"k":1,"filter":{{"must":[{{"key":"x","eq":{}}}]}}}}"#, nested(100_000, true));
    let many_searches: Vec<Value> = (0..100_000).map(|_| json!({"vector": [1, 2, 3, 4]})).collect();
    let many_vectors: Vec<Value> = (0..100_000).map(|i| json!({"id": i, "vector": [1, 2, 3, 4]})).collect();
    // (what, method, path, body, status, code)
    let cases: Vec<(&str, &str, String, String, u16, &str)> = vec![
        (
            "10^6-element vector upsert",
            "POST",
            "/collections/c/vectors".into(),
            format!(r#"{{"vectors":[{{"id":1,"vector":{million}}}]}}"#),
            400,
            "dimension_mismatch",
        ),
        (
            "10^6-element search vector",
            "POST",
            "/collections/c/search".into(),
            format!(r#"{{"vector":{million},"k":1}}"#),
            400,
            "dimension_mismatch",
        ),
        (
            "10^6-dimension collection",
            "POST",
            "/collections".into(),
            create("big", 1_000_000),
            400,
            "invalid_dimension",
        ),
        (
            "payload 100k nested arrays",
            "POST",
            "/collections/c/vectors".into(),
            deep_payload_arrays,
            400,
            "invalid_json",
        ),
        (
            "payload 100k nested objects",
            "POST",
            "/collections/c/vectors".into(),
            deep_payload_objects,
            400,
            "invalid_json",
        ),
        ("filter value 100k nested arrays", "POST", "/collections/c/search".into(), deep_filter, 400, "invalid_json"),
        (
            "filter value 100k nested objects",
            "POST",
            "/collections/c/search".into(),
            deep_filter_objects,
            400,
            "invalid_json",
        ),
        (
            "k = 10^18",
            "POST",
            "/collections/c/search".into(),
            r#"{"vector":[1,2,3,4],"k":1000000000000000000}"#.into(),
            400,
            "invalid_parameter",
        ),
        (
            "k = 2^64",
            "POST",
            "/collections/c/search".into(),
            r#"{"vector":[1,2,3,4],"k":18446744073709551616}"#.into(),
            400,
            "invalid_body",
        ),
        (
            "k = -1",
            "POST",
            "/collections/c/search".into(),
            r#"{"vector":[1,2,3,4],"k":-1}"#.into(),
            400,
            "invalid_parameter",
        ),
        (
            "ef = 10^12",
            "POST",
            "/collections/c/search".into(),
            r#"{"vector":[1,2,3,4],"ef":1000000000000}"#.into(),
            400,
            "invalid_parameter",
        ),
        (
            "ef_construction = 10^12",
            "POST",
            "/collections".into(),
            r#"{"name":"e","dimension":4,"ef_construction":1000000000000}"#.into(),
            400,
            "invalid_parameter",
        ),
        (
            "m = 2^40",
            "POST",
            "/collections".into(),
            r#"{"name":"e","dimension":4,"m":1099511627776}"#.into(),
            400,
            "invalid_parameter",
        ),
        (
            "100k searches in a batch",
            "POST",
            "/collections/c/search/batch".into(),
            json!({"searches": many_searches}).to_string(),
            400,
            "invalid_batch",
        ),
        (
            "100k vectors in a batch",
            "POST",
            "/collections/c/vectors".into(),
            json!({"vectors": many_vectors}).to_string(),
            400,
            "invalid_batch",
        ),
        (
            "ids page of 10^12",
            "GET",
            "/collections/c/ids?limit=1000000000000".into(),
            String::new(),
            400,
            "invalid_parameter",
        ),
        ("unicode name", "POST", "/collections".into(), create("ünïcødé-名前", 4), 400, "invalid_name"),
        ("path-like name", "POST", "/collections".into(), create("../../etc/passwd", 4), 400, "invalid_name"),
        ("name with a NUL", "POST", "/collections".into(), create("a\u{0}b", 4), 400, "invalid_name"),
        ("name of 100k bytes", "POST", "/collections".into(), create(&"n".repeat(100_000), 4), 400, "invalid_name"),
        (
            "unicode name in a path",
            "GET",
            "/collections/%C3%BCn%C3%AFc%C3%B8d%C3%A9".into(),
            String::new(),
            400,
            "invalid_name",
        ),
        ("encoded slash in a path", "GET", "/collections/..%2Fescape".into(), String::new(), 400, "invalid_name"),
    ];
    for (name, target) in targets.both() {
        let before = rss_kib(target);
        let mut peak = before;
        for (what, method, path, body, status, code) in &cases {
            let started = Instant::now();
            let body = (!body.is_empty()).then_some(body.as_str());
            let (got, answer) = ask(method, &format!("{}{path}", target.url), body);
            assert_eq!((got, answer["code"].as_str()), (*status, Some(*code)), "{name}: {what}: {answer}");
            assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}: {what}: {answer}");
            assert!(started.elapsed() < Duration::from_secs(10), "{name}: {what} took {:?}", started.elapsed());
            peak = peak.max(rss_kib(target));
        }
        // Bodies over the limit: announced (Content-Length), and streamed
        // (chunked) — 413 without reading it all, then the connection closes.
        let addr = host(&target.url).to_owned();
        for chunked in [false, true] {
            let started = Instant::now();
            let answer = oversize(&addr, "/collections/c/vectors", 64 << 20, chunked);
            assert!(answer.starts_with("HTTP/1.1 413"), "{name}: chunked={chunked}: {answer:?}");
            assert!(answer.contains("\"code\":\"payload_too_large\""), "{name}: {answer:?}");
            assert!(answer.contains(&MAX_BODY.to_string()), "{name}: the limit is named: {answer:?}");
            println!(
                "{name}: 64 MiB body (chunked: {chunked}) against a {MAX_BODY}-byte limit: 413 in {:?}",
                started.elapsed()
            );
            peak = peak.max(rss_kib(target));
        }
        let after = rss_kib(target);
        println!(
            "{name}: {} hostile bodies, RSS before {before} KiB, peak seen {peak} KiB, after {after} KiB",
            cases.len()
        );
        // The largest body here is ~4 MiB; parsing it must not cost more
        // than a few tens of MiB.
        assert!(peak < before + 256 * 1024, "{name}: RSS grew from {before} KiB to {peak} KiB");
    }
    for (name, p) in [("node", &mut targets.node), ("router", &mut targets.router)] {
        assert_alive(name, p);
        // Nothing was changed: the 20 vectors are there, no other collection.
        let (_, list) = ask("GET", &format!("{}/collections", p.url), None);
        let names: Vec<&str> = list.as_array().expect("list").iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(names, ["c"], "{name}");
    }
}

// ---------------------------------------------------------------------------
// The limits walk

/// A search body of exactly `len` bytes (padded with spaces).
fn search_of_len(len: usize) -> String {
    let body = json!({"vector": vector(1.0), "k": 1}).to_string();
    format!("{body}{}", " ".repeat(len - body.len()))
}

fn conditions(n: usize) -> Value {
    let one = json!({"key": "x", "eq": 1});
    json!({"vector": vector(1.0), "k": 1, "filter": {"must": vec![one; n]}})
}

/// Every limit at node and router: the value at the limit accepted, one
/// above refused with a 4xx naming the limit, and both targets answering
/// the refusal identically.
#[test]
fn every_limit_is_enforced_identically_at_node_and_router() {
    let targets = Targets::start();
    let upsert = |n: usize, base: usize| {
        let v: Vec<Value> = (0..n).map(|i| json!({"id": base + i, "vector": vector(i as f32)})).collect();
        json!({"vectors": v}).to_string()
    };
    let searches = |n: usize| json!({"searches": vec![json!({"vector": vector(1.0)}); n]}).to_string();
    let search_with = |key: &str, value: usize| {
        let mut s = json!({"vector": vector(1.0)});
        s[key] = json!(value);
        s.to_string()
    };
    let create_with = |name: &str, key: &str, value: usize| {
        let mut c = json!({"name": name, "dimension": DIM});
        c[key] = json!(value);
        c.to_string()
    };
    let filter_in = |key: &str, n: usize| {
        let values: Vec<usize> = (0..n).collect();
        json!({"vector": vector(1.0), "k": 1, "filter": {"must": [{"key": "x", key: values}]}}).to_string()
    };
    let filter_has_id = |n: usize| {
        let ids: Vec<usize> = (0..n).collect();
        json!({"vector": vector(1.0), "k": 1, "filter": {"must": [{"has_id": ids}]}}).to_string()
    };
    let search = "/collections/c/search";
    let (in_max, cond_max, name_max) = (ruvector_api::MAX_IN_VALUES, ruvector_api::MAX_CONDITIONS, 255);
    // (limit, method, path, body at the limit, body one above, the limit's figure)
    let walk: Vec<(&str, &str, &str, String, String, usize)> = vec![
        ("max_body_bytes", "POST", search, search_of_len(MAX_BODY), search_of_len(MAX_BODY + 1), MAX_BODY),
        (
            "max_batch",
            "POST",
            "/collections/c/vectors",
            upsert(MAX_BATCH, 1000),
            upsert(MAX_BATCH + 1, 2000),
            MAX_BATCH,
        ),
        (
            "max_search_batch",
            "POST",
            "/collections/c/search/batch",
            searches(MAX_SEARCH_BATCH),
            searches(MAX_SEARCH_BATCH + 1),
            MAX_SEARCH_BATCH,
        ),
        ("max_k", "POST", search, search_with("k", MAX_K), search_with("k", MAX_K + 1), MAX_K),
        ("max_ef", "POST", search, search_with("ef", MAX_EF), search_with("ef", MAX_EF + 1), MAX_EF),
        (
            "max_dimension",
            "POST",
            "/collections",
            create("dim_ok", MAX_DIMENSION),
            create("dim_no", MAX_DIMENSION + 1),
            MAX_DIMENSION,
        ),
        ("max_m", "POST", "/collections", create_with("m_ok", "m", MAX_M), create_with("m_no", "m", MAX_M + 1), MAX_M),
        (
            "max_ef (ef_construction)",
            "POST",
            "/collections",
            create_with("efc_ok", "ef_construction", MAX_EF),
            create_with("efc_no", "ef_construction", MAX_EF + 1),
            MAX_EF,
        ),
        (
            "max_ef (ef_search)",
            "POST",
            "/collections",
            create_with("efs_ok", "ef_search", MAX_EF),
            create_with("efs_no", "ef_search", MAX_EF + 1),
            MAX_EF,
        ),
        (
            "MAX_CONDITIONS",
            "POST",
            search,
            conditions(cond_max).to_string(),
            conditions(cond_max + 1).to_string(),
            cond_max,
        ),
        ("MAX_IN_VALUES (in)", "POST", search, filter_in("in", in_max), filter_in("in", in_max + 1), in_max),
        ("MAX_IN_VALUES (has_id)", "POST", search, filter_has_id(in_max), filter_has_id(in_max + 1), in_max),
        (
            "MAX_NAME_LEN",
            "POST",
            "/collections",
            create(&"n".repeat(name_max), DIM),
            create(&"o".repeat(name_max + 1), DIM),
            name_max,
        ),
    ];
    let pages = [(
        "max_page",
        format!("/collections/c/ids?limit={MAX_PAGE}"),
        format!("/collections/c/ids?limit={}", MAX_PAGE + 1),
    )];
    let mut rows = Vec::new();
    for (limit, method, path, at, above, figure) in &walk {
        let mut refusals = Vec::new();
        for (name, target) in targets.both() {
            let url = format!("{}{path}", target.url);
            let (status, body) = ask(method, &url, Some(at));
            assert!((200..300).contains(&status), "{name}: {limit} at the limit: {status} {body}");
            let (status, body) = ask(method, &url, Some(above));
            assert!((400..500).contains(&status), "{name}: {limit} above the limit: {status} {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(&figure.to_string()), "{name}: {limit}: the refusal names the limit: {body}");
            refusals.push((status, body));
        }
        assert_eq!(refusals[0], refusals[1], "{limit}: node and router refuse alike");
        rows.push(format!("{limit} = {figure}: {} {}", refusals[0].0, refusals[0].1["code"]));
    }
    for (limit, at, above) in &pages {
        let mut refusals = Vec::new();
        for (name, target) in targets.both() {
            let (status, body) = ask("GET", &format!("{}{at}", target.url), None);
            assert_eq!(status, 200, "{name}: {limit} at the limit: {body}");
            let (status, body) = ask("GET", &format!("{}{above}", target.url), None);
            assert_eq!(status, 400, "{name}: {limit}: {body}");
            assert!(body["error"].as_str().unwrap_or_default().contains(&MAX_PAGE.to_string()), "{name}: {body}");
            refusals.push((status, body));
        }
        assert_eq!(refusals[0], refusals[1], "{limit}: node and router refuse alike");
        rows.push(format!("{limit} = {MAX_PAGE}: {} {}", refusals[0].0, refusals[0].1["code"]));
    }
    println!("limits walk, node and router alike:\n  {}", rows.join("\n  "));
}
