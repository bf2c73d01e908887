//! `ruvector import` against a real node: every input format end to end
//! (count, vectors and payloads read back over HTTP), malformed input, a
//! batch the server rejects, and a node that is down.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Process;

/// Runs `ruvector import <args>` to completion (a key only from `args`,
/// never from the environment).
fn import(args: &[&str]) -> Output {
    let mut command = Command::new(support::binary());
    command.arg("import").args(args).env_remove("RUVECTOR_API_KEY");
    command.output().expect("run ruvector import")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_ok(output: &Output, expected: u64) {
    assert!(output.status.success(), "import failed: {}", stderr(output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with(&format!("imported {expected} vectors in ")), "{stdout}");
    assert!(stdout.trim_end().ends_with(" vectors/s)"), "{stdout}");
}

/// Deterministic, varied f32 values (a 64-bit LCG; no seed to print).
fn values(n: usize, mut state: u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.7
        })
        .collect()
}

fn write_fvecs(path: &Path, rows: &[Vec<f32>]) {
    let mut bytes = Vec::new();
    for row in rows {
        bytes.extend((row.len() as i32).to_le_bytes());
        bytes.extend(row.iter().flat_map(|x| x.to_le_bytes()));
    }
    std::fs::write(path, bytes).expect("write fvecs");
}

/// A float32 C-order `.npy` (format 1.0), as `numpy.save` writes it.
fn write_npy(path: &Path, rows: &[Vec<f32>]) {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows.len(), rows[0].len());
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.bytes());
    bytes.extend(rows.iter().flatten().flat_map(|x| x.to_le_bytes()));
    std::fs::write(path, bytes).expect("write npy");
}

fn size(node: &Process, collection: &str) -> u64 {
    let (status, body) = support::get(&format!("{}/collections/{collection}", node.url)).expect("get collection");
    assert_eq!(status, 200, "{body}");
    body["size"].as_u64().expect("size")
}

/// Reads a vector back and checks it bit for bit (and its payload). Not for
/// cosine collections: a node returns their vectors normalised.
fn assert_stored(node: &Process, collection: &str, id: u64, vector: &[f32], payload: Option<&Value>) {
    let (status, body) =
        support::get(&format!("{}/collections/{collection}/vectors/{id}", node.url)).expect("get vector");
    assert_eq!(status, 200, "{collection}/{id}: {body}");
    let stored: Vec<f32> =
        body["vector"].as_array().expect("vector array").iter().map(|x| x.as_f64().expect("number") as f32).collect();
    assert_eq!(
        stored.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        vector.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        "{collection}/{id}"
    );
    assert_eq!(body.get("payload"), payload, "{collection}/{id}");
}

fn absent(node: &Process, collection: &str, id: u64) -> bool {
    support::get(&format!("{}/collections/{collection}/vectors/{id}", node.url)).expect("get").0 == 404
}

#[test]
fn fvecs_npy_and_jsonl_are_imported_exactly() {
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let node = Process::node(data.path());
    let url = node.url.as_str();

    // .fvecs: 250 rows in batches of 64 (the last one short), ids offset.
    let fvecs_rows: Vec<Vec<f32>> = (0..250).map(|i| values(8, i)).collect();
    let fvecs = files.path().join("base.fvecs");
    write_fvecs(&fvecs, &fvecs_rows);
    let fvecs_str = support::path_str(&fvecs);
    let args = ["--url", url, "--collection", "fv", fvecs_str, "--create", "--metric", "euclidean"];
    let more = ["--batch", "64", "--concurrency", "2", "--id-offset", "1000", "--dimension", "8"];
    assert_ok(&import(&[&args[..], &more[..]].concat()), 250);
    assert_eq!(size(&node, "fv"), 250);
    for row in [0, 63, 64, 128, 249] {
        assert_stored(&node, "fv", 1000 + row, &fvecs_rows[row as usize], None);
    }
    assert!(absent(&node, "fv", 999) && absent(&node, "fv", 1250));
    let (_, info) = support::get(&format!("{url}/collections/fv")).expect("info");
    assert_eq!((info["dimension"].as_u64(), info["metric"].as_str()), (Some(8), Some("euclidean")), "{info}");
    // Again: the collection exists (409 with the same dimension is fine) and
    // the upserts overwrite the same ids.
    assert_ok(&import(&[&args[..], &more[..]].concat()), 250);
    assert_eq!(size(&node, "fv"), 250);

    // .npy: 100 × 16, batches of 30, one in flight, ids from 0; the format
    // given explicitly for a file without an extension.
    let npy_rows: Vec<Vec<f32>> = (0..100).map(|i| values(16, 10_000 + i)).collect();
    let npy = files.path().join("embeddings");
    write_npy(&npy, &npy_rows);
    let npy_str = support::path_str(&npy);
    let out = import(&[
        "--url",
        url,
        "--collection",
        "np",
        npy_str,
        "--format",
        "npy",
        "--create",
        "--metric",
        "dot",
        "--batch",
        "30",
        "--concurrency",
        "1",
    ]);
    assert_ok(&out, 100);
    assert_eq!(size(&node, "np"), 100);
    for row in [0usize, 29, 30, 99] {
        assert_stored(&node, "np", row as u64, &npy_rows[row], None);
    }
    assert!(absent(&node, "np", 100));

    // JSON lines with payloads, sparse ids and a blank line.
    let jsonl = files.path().join("docs.jsonl");
    let items: Vec<(u64, Vec<f32>, Value)> = (0..50)
        .map(|i| (i * 7 + 3, values(4, 20_000 + i), json!({"title": format!("doc {i}"), "n": i, "tags": ["a", i % 3]})))
        .collect();
    let mut text = String::new();
    for (i, (id, vector, payload)) in items.iter().enumerate() {
        let line = if i % 2 == 0 {
            json!({"id": id, "vector": vector, "payload": payload})
        } else {
            json!({"id": id, "vector": vector})
        };
        text.push_str(&line.to_string());
        text.push('\n');
        if i == 10 {
            text.push('\n');
        }
    }
    std::fs::write(&jsonl, text).expect("write jsonl");
    let out = import(&[
        "--url",
        url,
        "--collection",
        "js",
        support::path_str(&jsonl),
        "--create",
        "--metric",
        "l2",
        "--batch",
        "16",
    ]);
    assert_ok(&out, 50);
    assert_eq!(size(&node, "js"), 50);
    for (i, (id, vector, payload)) in items.iter().enumerate() {
        assert_stored(&node, "js", *id, vector, (i % 2 == 0).then_some(payload));
    }

    // An existing collection of another dimension is refused up front.
    let out = import(&["--url", url, "--collection", "fv", npy_str, "--format", "npy", "--create"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("collection \"fv\" has dimension 8, but the file's vectors have dimension 16"),
        "{}",
        stderr(&out)
    );
    assert_eq!(size(&node, "fv"), 250);
}

#[test]
fn bad_input_and_rejected_batches_stop_the_import_with_a_clear_message() {
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let node = Process::node(data.path());
    let url = node.url.as_str();

    // A malformed third line: non-zero exit, the file and line named.
    let bad = files.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":1,\"vector\":[1,2]}\n{\"id\":2,\"vector\":[3,4]}\n{\"id\":3,\"vector\":[5,}\n")
        .expect("write");
    let out = import(&["--url", url, "--collection", "bad", support::path_str(&bad), "--create"]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("bad.jsonl: line 3, column "), "{message}");
    assert!(out.stdout.is_empty());

    // The collection does not exist and --create is not given.
    let good = files.path().join("good.jsonl");
    std::fs::write(&good, "{\"id\":1,\"vector\":[1,2]}\n").expect("write");
    let out = import(&["--url", url, "--collection", "missing", support::path_str(&good)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("pass --create"), "{}", stderr(&out));

    // A zero vector under cosine: the server's 400 stops the import, naming
    // the batch's first id and the offending id.
    let zero = files.path().join("zero.jsonl");
    let lines: String =
        (1..=9).map(|id| format!("{{\"id\":{id},\"vector\":{}}}\n", if id == 7 { "[0,0]" } else { "[1,1]" })).collect();
    std::fs::write(&zero, lines).expect("write");
    let out = import(&[
        "--url",
        url,
        "--collection",
        "zero",
        support::path_str(&zero),
        "--create",
        "--batch",
        "4",
        "--concurrency",
        "1",
    ]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("rejected the batch starting at id 5 (the offending vector has id 7)"), "{message}");
    assert!(message.contains("invalid_vector"), "{message}");
    assert!(message.contains("4 vectors were imported before the error"), "{message}");
    assert_eq!(size(&node, "zero"), 4);
}

#[test]
fn a_node_that_is_down_fails_after_the_retries() {
    let files = tempfile::tempdir().expect("tempdir");
    let path = files.path().join("x.fvecs");
    write_fvecs(&path, &[vec![1.0, 2.0]]);
    // A port nothing listens on: bound (so no other process can take it)
    // but never listening, so connecting is refused. Kept to the end.
    let closed = tokio::net::TcpSocket::new_v4().expect("socket");
    closed.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let port = closed.local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let out = import(&["--url", &url, "--collection", "c", support::path_str(&path), "--create", "--retries", "2"]);
    let elapsed = started.elapsed();
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("failed after 3 attempt(s)"), "{message}");
    // Backoff 250 ms then 500 ms, at most: well under the bound.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    drop(closed);
}

#[test]
fn the_api_key_is_sent_and_a_refusal_is_reported() {
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let config = files.path().join("node.toml");
    std::fs::write(&config, "api_key = \"import-secret\"\n").expect("write config");
    let node = Process::start(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--data",
        support::path_str(data.path()),
        "--config",
        support::path_str(&config),
    ]);
    node.wait_ready();
    let path = files.path().join("x.jsonl");
    std::fs::write(&path, "{\"id\":1,\"vector\":[1,2]}\n{\"id\":2,\"vector\":[3,4]}\n").expect("write");
    let args = ["--url", node.url.as_str(), "--collection", "secured", support::path_str(&path), "--create"];

    let out = import(&args);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("missing or invalid API key (HTTP 401 unauthorized)"), "{}", stderr(&out));

    assert_ok(&import(&[&args[..], &["--api-key", "import-secret"][..]].concat()), 2);
}
