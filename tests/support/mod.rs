//! Black-box test support: start real `ruvector` processes on port 0, wait
//! for readiness with a deadline (never a fixed sleep), and talk HTTP.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod api_suite;
pub mod rebalance;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `ruvector` binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ruvector"))
}

/// A running `ruvector` process and the base URL it listens on.
#[derive(Debug)]
pub struct Process {
    pub child: Child,
    pub url: String,
}

impl Process {
    /// Starts `ruvector <args>` and waits for its "listening on" line.
    pub fn start(args: &[&str]) -> Process {
        Process::start_with_env(args, &[])
    }

    /// [`Process::start`] with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Process {
        let logging = std::env::var_os("RUVECTOR_TEST_LOG").is_some();
        let mut child = Command::new(binary())
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", log_level())
            .stdout(Stdio::piped())
            .stderr(if logging { Stdio::piped() } else { Stdio::inherit() })
            .spawn()
            .expect("start ruvector");
        let tag = format!("{} {}", args.first().copied().unwrap_or("ruvector"), child.id());
        if let Some(stderr) = child.stderr.take() {
            // Several processes log at once: each line says whose it is.
            let tag = tag.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = writeln!(std::io::stderr(), "[{tag}] {line}");
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.split(" listening on ").nth(1) {
                        break url.trim().to_owned();
                    }
                }
                other => {
                    let status = child.wait();
                    panic!("ruvector {args:?} exited before listening: {other:?}, status {status:?}");
                }
            }
        };
        if logging {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "[{tag}] is {url}");
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Process { child, url }
    }

    /// Starts a node on a free port over `data`.
    pub fn node(data: &Path) -> Process {
        Process::node_with_env(data, &[])
    }

    /// [`Process::node`] with extra environment variables (`RUVECTOR_*`
    /// settings).
    pub fn node_with_env(data: &Path, env: &[(&str, &str)]) -> Process {
        let p = Process::start_with_env(&["serve", "--addr", "127.0.0.1:0", "--data", path_str(data)], env);
        p.wait_ready();
        p
    }

    /// Waits until `GET /ready` answers 200 (deadline 60 s: recovery of a
    /// large log may take a while on a loaded machine).
    pub fn wait_ready(&self) {
        wait_for(Duration::from_secs(60), || get(&format!("{}/ready", self.url)).map(|r| r.0 == 200).unwrap_or(false));
    }

    /// SIGKILL: no shutdown hook runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) and leaves the process be.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid}");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success());
        self.child.wait().expect("wait")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child processes' `RUST_LOG`: `error` unless `RUVECTOR_TEST_LOG`
/// says otherwise (e.g. `RUVECTOR_TEST_LOG=info` to see what routers and
/// shards did in a failing test).
fn log_level() -> String {
    std::env::var("RUVECTOR_TEST_LOG").unwrap_or_else(|_| "error".to_owned())
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Polls `done` until it holds or the deadline passes.
pub fn wait_for(deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "condition not met within {deadline:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `GET /cluster` reports every copy of every partition ready.
pub fn wait_all_ready(router_url: &str) {
    wait_for(Duration::from_secs(60), || {
        let c = call("GET", &format!("{router_url}/cluster"), None).body;
        c["collections"].as_array().is_some_and(|cs| {
            cs.iter().all(|c| {
                c["states"].as_array().is_some_and(|rows| {
                    rows.iter().all(|row| row.as_array().is_some_and(|r| r.iter().all(|s| s == "ready")))
                })
            })
        })
    });
}

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client"))
}

/// A response: status, headers, and the body parsed as JSON (`Null` when
/// empty, a string when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

fn reply(r: reqwest::blocking::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().unwrap_or_default();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Reply { status, headers, body }
}

pub fn send(method: &str, url: &str, body: Option<&str>) -> Result<Reply, reqwest::Error> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client().request(method, url);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_owned());
    }
    req.send().map(reply)
}

pub fn get(url: &str) -> Result<(u16, Value), reqwest::Error> {
    send("GET", url, None).map(|r| (r.status, r.body))
}

/// Sends and expects a response (panics on a transport error).
pub fn call(method: &str, url: &str, body: Option<&str>) -> Reply {
    send(method, url, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// What a test's writers had acknowledged, per id: the salt of the last
/// acknowledged upsert, or `None` after an acknowledged delete.
pub type Acked = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, Option<u64>>>>;

/// Writes a client sent that were not acknowledged, per id, since that
/// id's last acknowledged write: the salt of each failed upsert, `None`
/// for a failed delete. A failed request may or may not have been applied
/// (in part), so each is a state the id may legitimately be found in.
pub type Unacked = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, Vec<Option<u64>>>>>;

/// What a [`writer`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    pub requests: u64,
    /// Requests not acknowledged, whatever the reason.
    pub failed: u64,
    /// Of those, answered 503 (no copy of a partition could take them).
    pub unavailable: u64,
}

/// A client writing to collection `collection` through the router whose
/// base URL `url()` gives (it may change: a router hand-over) until
/// `stop`: over its own ids `base..base + span`, every fourth request a
/// delete, the others upserts of two ids with a fresh salt (`body(ids,
/// salt)` makes the request body); each acknowledged write is recorded in
/// `acked`. Returns (requests, failures); failures are printed.
pub fn writer(
    url: impl Fn() -> String,
    collection: &str,
    body: impl Fn([u64; 2], u64) -> String,
    range: (u64, u64),
    stop: &std::sync::atomic::AtomicBool,
    acked: &Acked,
) -> (u64, u64) {
    let w = writer_tracking(url, collection, body, range, stop, acked, &Unacked::default());
    (w.requests, w.failed)
}

/// [`writer`] that also records every write that failed in `unacked`
/// (cleared for an id by its next acknowledged write, which is newer) and
/// counts the 503s among the failures.
pub fn writer_tracking(
    url: impl Fn() -> String,
    collection: &str,
    body: impl Fn([u64; 2], u64) -> String,
    (base, span): (u64, u64),
    stop: &std::sync::atomic::AtomicBool,
    acked: &Acked,
    unacked: &Unacked,
) -> Written {
    let mut w = Written::default();
    {
        let mut i = 0u64;
        let mut settle = |ids: &[u64], state: Option<u64>, reply: Result<Reply, reqwest::Error>, ok: bool| {
            w.requests += 1;
            if ok {
                let mut acked = acked.lock().expect("acked");
                let mut unacked = unacked.lock().expect("unacked");
                for id in ids {
                    acked.insert(*id, state);
                    unacked.remove(id);
                }
                return;
            }
            w.failed += 1;
            if reply.as_ref().is_ok_and(|r| r.status == 503) {
                w.unavailable += 1;
            }
            let mut unacked = unacked.lock().expect("unacked");
            for id in ids {
                unacked.entry(*id).or_default().push(state);
            }
            let what = if state.is_some() { "upsert" } else { "delete" };
            eprintln!("{what} {ids:?}: {:?}", reply.map(|r| (r.status, r.body)));
        };
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            i += 1;
            let id = base + (i * 7919) % span;
            let salt = 1000 + i;
            let url = url();
            if i.is_multiple_of(4) {
                let reply = send("DELETE", &format!("{url}/collections/{collection}/vectors/{id}"), None);
                let ok = reply.as_ref().is_ok_and(|r| r.status == 200 || r.status == 404);
                settle(&[id], None, reply, ok);
            } else {
                let ids = [id, base + (id + 1 - base) % span];
                let reply = send("POST", &format!("{url}/collections/{collection}/vectors"), Some(&body(ids, salt)));
                let ok = reply.as_ref().is_ok_and(|r| r.status == 201);
                settle(&ids, Some(salt), reply, ok);
            }
        }
    }
    w
}
