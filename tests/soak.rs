//! Load and soak through real processes: `ruvector soak` (70 % search,
//! 25 % upsert, 5 % delete by 8 clients over 5 000 ids of dimension 128)
//! against a node (with API keys), against a router over three shards,
//! and against a router over three shards with two copies while one shard
//! is SIGKILLed and restarted midway. Each run must end with no failed request, every
//! acknowledged write as acknowledged (the soak's own check over the id
//! listing), and the RSS of every watched process growing by less than a
//! generous bound per minute (a leak detector, not a measurement). Latency
//! is printed, never asserted.
//!
//! `RUVECTOR_SOAK_SECS` sets each run's length (default 60, as in CI; 600
//! for the figures in docs/RELIABILITY.md). The runs take turns: each one
//! measures, and the machine has two cores.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};

use serde_json::Value;
use support::{Process, binary, call, path_str, wait_all_ready};

/// RSS growth after warm-up (the soak's `steady_slope_mib_per_min`)
/// above which a process is taken to leak. The data stays about the same
/// size (upserts overwrite, deletes remove, the ids are bounded), so a
/// healthy process levels off. The bound is generous: a transient peak
/// (seen: one sample 20 MiB above its neighbours, likely a checkpoint
/// copying the changes since the last one) tilts a one-minute line.
const MAX_SLOPE_MIB_PER_MIN: f64 = 32.0;

/// One soak at a time.
static TURN: Mutex<()> = Mutex::new(());

fn seconds() -> u64 {
    match std::env::var("RUVECTOR_SOAK_SECS") {
        Ok(s) => s.parse().unwrap_or_else(|_| panic!("RUVECTOR_SOAK_SECS={s:?} is not a number of seconds")),
        Err(_) => 60,
    }
}

/// A running `ruvector soak`: its progress lines as they come, its report
/// when it ends.
struct Soak {
    child: Child,
    progress: Receiver<String>,
    stdout: std::thread::JoinHandle<String>,
    what: &'static str,
}

impl Soak {
    fn start(what: &'static str, url: &str, pids: &[u32], api_key: Option<&str>) -> Soak {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let mut child = Command::new(binary())
            .args(["soak", "--url", url, "--json", "--ids", "5000", "--dimension", "128", "--clients", "8"])
            .args(api_key.map(|key| format!("--api-key={key}")))
            .args(["--duration", &seconds().to_string(), "--pid", &pids.join(",")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ruvector soak");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, progress) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{what}] {line}");
                let _ = sender.send(line);
            }
        });
        let mut out = child.stdout.take().expect("stdout is piped");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        Soak { child, progress, stdout, what }
    }

    /// Waits for the progress line at `t` seconds or later; returns the
    /// requests sent by then.
    fn reached(&self, t: u64) -> u64 {
        loop {
            let line = self.progress.recv().unwrap_or_else(|_| panic!("{}: soak ended before t={t}s", self.what));
            let Some(rest) = line.strip_prefix("soak: t=") else { continue };
            let field = |name: &str| -> u64 {
                rest.split_whitespace()
                    .find_map(|f| f.strip_prefix(name))
                    .and_then(|v| v.trim_end_matches('s').parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {line:?}"))
            };
            if field("") >= t {
                return field("requests=");
            }
        }
    }

    /// Waits for the end; the report (the run must have passed its check).
    fn finish(mut self) -> Value {
        let status = self.child.wait().expect("wait for soak");
        let stdout = self.stdout.join().expect("stdout reader");
        assert!(status.success(), "{}: soak failed ({status}): {stdout}", self.what);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{}: report is not JSON ({e}): {stdout}", self.what))
    }
}

/// Prints the figures and checks what every scenario must show.
fn assert_clean(what: &str, report: &Value, watched: usize) {
    eprintln!("{what}: {report}");
    for op in report["ops"].as_array().expect("ops") {
        eprintln!(
            "{what}: {:<6} {:>7} requests, {:>8.1}/s, p50 {} ms, p99 {} ms, max {} ms, errors {}",
            op["op"], op["count"], op["per_s"], op["p50_ms"], op["p99_ms"], op["max_ms"], op["errors_by_cause"]
        );
        assert!(op["count"].as_u64().is_some_and(|n| n > 0), "{what}: no {} request sent", op["op"]);
        assert_eq!(op["errors"], 0, "{what}: {} failed: {}", op["op"], op["error_sample"]);
    }
    let check = &report["check"];
    assert_eq!((check["missing"].as_u64(), check["resurrected"].as_u64()), (Some(0), Some(0)), "{what}: {check}");
    assert_eq!(check["uncertain"], 0, "{what}: no write failed, so every id is known: {check}");
    assert_eq!(check["size"], check["expected_present"], "{what}: the size counts exactly the ids present");
    let rss = report["rss"].as_array().expect("rss");
    assert_eq!(rss.len(), watched);
    for series in rss {
        eprintln!(
            "{what}: pid {} RSS {} -> {} MiB, slope {} MiB/min, after warm-up {} MiB/min",
            series["pid"],
            series["start_mib"],
            series["end_mib"],
            series["slope_mib_per_min"],
            series["steady_slope_mib_per_min"]
        );
        assert_eq!(series["gone"], false, "{what}: pid {} exited during the run", series["pid"]);
        let slope = series["steady_slope_mib_per_min"].as_f64().expect("three samples or more");
        assert!(slope < MAX_SLOPE_MIB_PER_MIN, "{what}: pid {} grows {slope} MiB/min: {series}", series["pid"]);
    }
}

fn shard_at(dir: &Path, url: &str) -> Process {
    let p = Process::start(&["serve", "--addr", url.trim_start_matches("http://"), "--data", path_str(dir)]);
    p.wait_ready();
    p
}

fn router(shards: &[&Process], extra: &[&str]) -> Process {
    let list: Vec<&str> = shards.iter().map(|s| s.url.as_str()).collect();
    let list = list.join(",");
    let mut args = vec!["router", "--addr", "127.0.0.1:0", "--shards", &list];
    args.extend_from_slice(extra);
    let r = Process::start(&args);
    r.wait_ready();
    r
}

#[test]
fn a_node_under_mixed_load() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    // With keys: the soak sends the read-write one.
    let node = Process::node_with_env(
        dir.path(),
        &[("RUVECTOR_API_KEY", "soak-rw"), ("RUVECTOR_READ_ONLY_API_KEY", "soak-ro")],
    );
    let report = Soak::start("node", &node.url, &[node.child.id()], Some("soak-rw")).finish();
    assert_clean("node", &report, 1);
}

#[test]
fn a_router_over_three_shards_under_mixed_load() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let shards: Vec<Process> = dirs.iter().map(|d| Process::node(d.path())).collect();
    let r = router(&shards.iter().collect::<Vec<_>>(), &[]);
    let pids: Vec<u32> = std::iter::once(&r).chain(&shards).map(|p| p.child.id()).collect();
    let report = Soak::start("router", &r.url, &pids, None).finish();
    assert_clean("router", &report, 4);
    // The load really was spread: every shard holds a share.
    for s in &shards {
        let size = call("GET", &format!("{}/collections/soak", s.url), None).body["size"].as_u64().expect("size");
        assert!(size > 500, "{} holds {size} of 5 000 ids", s.url);
    }
}

/// Two copies of every partition (write quorum 1, the default): with one
/// shard SIGKILLed from a third of the run to half of it, every request
/// still succeeds (docs/ARCHITECTURE.md, router: a failed shard is
/// survived when the other answers cover every partition; a write needs
/// one copy), and after the restart the copy catches up.
#[test]
fn a_router_with_two_copies_under_mixed_load_survives_a_killed_shard() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let mut shards: Vec<Option<Process>> = dirs.iter().map(|d| Some(Process::node(d.path()))).collect();
    let urls: Vec<String> = shards.iter().flatten().map(|s| s.url.clone()).collect();
    let r = router(&shards.iter().flatten().collect::<Vec<_>>(), &["--replication-factor", "2"]);
    // The killed shard's process changes: the router and the two others
    // are watched.
    let pids: Vec<u32> =
        [Some(&r), shards[0].as_ref(), shards[2].as_ref()].into_iter().flatten().map(|p| p.child.id()).collect();
    let secs = seconds();
    let soak = Soak::start("replicas", &r.url, &pids, None);
    let at_kill = soak.reached(secs / 3);
    shards[1].take().expect("up").kill();
    let at_restart = soak.reached(secs / 2);
    assert!(at_restart > at_kill, "requests went on while a shard was down");
    shards[1] = Some(shard_at(dirs[1].path(), &urls[1]));
    let report = soak.finish();
    assert_clean("replicas", &report, 3);
    eprintln!("replicas: {} requests while shard 1 was down", at_restart - at_kill);
    // Recovery: every copy ready again, and the restarted shard holds its
    // share (a third of two copies of the ids present).
    wait_all_ready(&r.url);
    let size = call("GET", &format!("{}/collections/soak", urls[1]), None).body["size"].as_u64().expect("size");
    let present = report["check"]["expected_present"].as_u64().expect("present");
    assert!(size > present / 2, "the restarted shard holds {size} copies of {present} ids");
}
