//! The operator-facing commands and output of the real binary: `ruvector
//! check` (the helm test's smoke test), `ruvector probe` (the container
//! health check of an image without curl), and log lines as a container
//! runtime stores them (stderr not a terminal).

mod support;

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{Process, binary, call, path_str};

fn ruvector(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary()).args(args).envs(env.iter().copied()).output().expect("run ruvector")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_passes_through_a_router_and_leaves_nothing_behind() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let shards: Vec<Process> = dirs.iter().map(|d| Process::node(d.path())).collect();
    let list = shards.iter().map(|s| s.url.as_str()).collect::<Vec<_>>().join(",");
    let router = Process::start(&["router", "--addr", "127.0.0.1:0", "--shards", &list]);

    let out = ruvector(&["check", "--url", &router.url], &[]);
    assert!(out.status.success(), "check failed: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("check passed"), "{}", text(&out.stdout));
    // Its vectors landed on both shards, and the collection is gone again.
    assert_eq!(call("GET", &format!("{}/collections", router.url), None).body, serde_json::json!([]));

    // A shard down: the check fails and says why.
    drop(shards);
    let out = ruvector(&["check", "--url", &router.url, "--wait-secs", "0"], &[]);
    assert!(!out.status.success(), "check passed with every shard down: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("503") || stderr.contains("did not answer 200"), "unclear failure: {stderr}");
}

#[test]
fn check_sends_the_api_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Process::node_with_env(dir.path(), &[("RUVECTOR_API_KEY", "s3cret")]);
    let without = ruvector(&["check", "--url", &node.url], &[]);
    assert!(!without.status.success());
    assert!(text(&without.stderr).contains("401"), "expected a 401: {}", text(&without.stderr));
    let with = ruvector(&["check", "--url", &node.url], &[("RUVECTOR_API_KEY", "s3cret")]);
    assert!(with.status.success(), "{}{}", text(&with.stdout), text(&with.stderr));
}

#[test]
fn probe_exits_zero_only_on_a_200() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Process::node(dir.path());
    assert!(ruvector(&["probe", &format!("{}/ready", node.url)], &[]).status.success());
    let missing = ruvector(&["probe", &format!("{}/no-such-route", node.url)], &[]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("404"), "{}", text(&missing.stderr));
    let addr = node.url.clone();
    drop(node);
    assert!(!ruvector(&["probe", &format!("{addr}/ready"), "--timeout-ms", "500"], &[]).status.success());
}

/// Runs a node with stderr going to a file (as under Docker or systemd),
/// writes a little, stops it with SIGTERM and returns its log.
fn node_log(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("stderr.log");
    let data = dir.path().join("data");
    let log = std::fs::File::create(&log_path).expect("create log file");
    let mut child = Command::new(binary())
        .args(["serve", "--addr", "127.0.0.1:0", "--data", path_str(&data)])
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start ruvector");
    let stdout = child.stdout.take().expect("piped");
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).expect("read stdout");
    let url = first.split(" listening on ").nth(1).expect("listening line").trim().to_owned();
    let node = Process { child, url };
    node.wait_ready();
    let created = call("POST", &format!("{}/collections", node.url), Some(r#"{"name":"logs","dimension":2}"#));
    assert_eq!(created.status, 201);
    assert!(node.terminate().success());
    std::fs::read_to_string(&log_path).expect("read log")
}

#[test]
fn logs_are_plain_text_off_a_terminal_and_json_lines_when_asked() {
    let plain = node_log(&[]);
    assert!(plain.contains("INFO"), "no info lines logged: {plain}");
    assert!(!plain.contains('\u{1b}'), "ANSI escape codes in a log file: {plain:?}");

    let json = node_log(&[("RUVECTOR_LOG_FORMAT", "json")]);
    let lines: Vec<&str> = json.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "too few log lines: {json}");
    for line in lines {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(parsed.get("level").is_some() && parsed.get("timestamp").is_some(), "{line}");
    }
}
