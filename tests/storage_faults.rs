//! Storage faults against a real node (`ruvector serve` over HTTP):
//!
//! - a full data volume (a small tmpfs that fills up): writes answer 507
//!   `insufficient_storage` and change nothing, reads and searches keep
//!   working, writes succeed again once the volume is grown (no restart),
//!   and after a SIGKILL exactly the acknowledged writes are there;
//! - damaged files after acknowledged writes, a clean stop and a SIGKILL
//!   (a full checkpoint, a delta, several log segments): a torn final log
//!   record is cut off and every acknowledged write recovered (each id's
//!   vector and payload checked over HTTP); a flipped bit in a log
//!   segment, a full checkpoint or a delta, a truncated checkpoint, a
//!   missing checkpoint and a log segment removed from the middle make the
//!   node refuse to start, exiting non-zero with an error naming the file
//!   (and the byte offset or log position) — never a silent partial load.
//!
//! The full-volume test needs permission to mount a tmpfs (root). Without
//! it the test says so and returns — unless `RUVECTOR_REQUIRE_TMPFS` is
//! set (CI sets it when its probe mount works), then it fails.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Process, call, path_str};

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// [`Tmpfs::mount`], or `None` after saying the test is skipped — a
    /// failure instead when `RUVECTOR_REQUIRE_TMPFS` is set.
    fn mount_or_skip(size: &str) -> Option<Tmpfs> {
        let volume = Tmpfs::mount(size);
        if volume.is_none() {
            assert!(
                std::env::var_os("RUVECTOR_REQUIRE_TMPFS").is_none(),
                "RUVECTOR_REQUIRE_TMPFS is set but a tmpfs cannot be mounted"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        }
        volume
    }

    fn mount(size: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("volume");
        std::fs::create_dir(&dir).expect("mkdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", path_str(&dir)])
            .status()
            .ok()?;
        status.success().then_some(Tmpfs { dir, _parent: parent })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}"), path_str(&self.dir)])
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount to {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Recursive: a test may leave a bind mount inside on failure.
        let _ = Command::new("umount").arg("-R").arg(&self.dir).status();
    }
}

fn vector(id: u64) -> Vec<f32> {
    (0..64u64).map(|d| (((id * 131 + d * 17) % 1009) as f32) / 1009.0 - 0.5).collect()
}

fn batch(ids: std::ops::Range<u64>) -> String {
    let vectors: Vec<Value> = ids.map(|id| json!({"id": id, "vector": vector(id), "payload": {"n": id}})).collect();
    json!({ "vectors": vectors }).to_string()
}

fn start(dir: &Path) -> Process {
    // Checkpoints often, so they too meet the full disk.
    let node = Process::start_with_env(
        &["serve", "--addr", "127.0.0.1:0", "--data", path_str(dir)],
        &[("RUVECTOR_STORAGE__CHECKPOINT_INTERVAL_SECS", "1")],
    );
    node.wait_ready();
    node
}

#[test]
fn a_full_volume_refuses_writes_with_507_and_loses_nothing() {
    let Some(volume) = Tmpfs::mount_or_skip("3m") else { return };
    let data = volume.dir.join("data");
    let node = start(&data);
    let base = format!("{}/collections/full", node.url);
    let create = r#"{"name":"full","dimension":64,"metric":"l2"}"#;
    assert_eq!(call("POST", &format!("{}/collections", node.url), Some(create)).status, 201);

    // Fill the volume: 50-vector batches until the node says it is full.
    let mut acked: Vec<u64> = Vec::new();
    let mut full = None;
    for b in 0..400u64 {
        let ids = b * 50..b * 50 + 50;
        let r = call("POST", &format!("{base}/vectors"), Some(&batch(ids.clone())));
        match r.status {
            201 => acked.extend(ids),
            507 => {
                full = Some(r);
                break;
            }
            other => panic!("batch {b}: {other} {}", r.body),
        }
    }
    let full = full.expect("the 3 MiB volume fills up");
    assert_eq!(full.body["code"], "insufficient_storage", "{}", full.body);
    assert!(full.body["error"].as_str().is_some_and(|m| m.contains("full")), "{}", full.body);
    eprintln!("volume full after {} acknowledged vectors", acked.len());

    // Reads and searches keep working; a refused write changed nothing.
    let size = call("GET", &base, None).body["size"].as_u64().expect("size");
    assert_eq!(size, acked.len() as u64);
    let hit = call("POST", &format!("{base}/search"), Some(&json!({"vector": vector(7), "k": 1}).to_string()));
    assert_eq!((hit.status, hit.body[0]["id"].clone()), (200, json!(7)), "{}", hit.body);
    assert_eq!(call("GET", &format!("{base}/vectors/7"), None).body["payload"], json!({"n": 7}));
    assert_eq!(call("GET", &format!("{}/health", node.url), None).status, 200);
    let again = call("POST", &format!("{base}/vectors"), Some(&batch(90_000..90_050)));
    assert_eq!(again.status, 507, "still full: {}", again.body);

    // Room again: writes work without a restart.
    volume.resize("64m");
    let resumed = call("POST", &format!("{base}/vectors"), Some(&batch(90_000..90_050)));
    assert_eq!(resumed.status, 201, "{}", resumed.body);
    acked.extend(90_000..90_050);

    // A SIGKILL, a restart on the same volume: exactly what was acknowledged.
    node.kill();
    let node = start(&data);
    let base = format!("{}/collections/full", node.url);
    assert_eq!(call("GET", &base, None).body["size"], acked.len() as u64);
    for &id in acked.iter().step_by(97).chain([acked[acked.len() - 1]].iter()) {
        let r = call("GET", &format!("{base}/vectors/{id}"), None);
        assert_eq!(r.status, 200, "acknowledged id {id} lost: {}", r.body);
    }
    drop(node);
}

/// Settings of the damaged-file tests: no background checkpoints (the
/// files on disk are exactly those the test expects) and 4 KiB log
/// segments, so a few hundred writes span several segment files.
const DAMAGE_ENV: [(&str, &str); 2] =
    [("RUVECTOR_STORAGE__CHECKPOINT_INTERVAL_SECS", "0"), ("RUVECTOR_STORAGE__WAL_SEGMENT_BYTES", "4096")];

/// What the node acknowledged: every live id's vector and payload salt,
/// and the ids whose delete it acknowledged.
#[derive(Debug, Clone, Default)]
struct Acked {
    points: BTreeMap<u64, u64>,
    deleted: Vec<u64>,
}

/// A vector exactly representable as f32 and in JSON (multiples of 1/64).
fn salted(id: u64, salt: u64) -> Vec<f32> {
    (0..8u64).map(|d| ((id * 7 + d * 3 + salt * 5) % 64) as f32 / 64.0).collect()
}

fn upsert(url: &str, ids: std::ops::Range<u64>, salt: u64, acked: &mut Acked) {
    let vectors: Vec<Value> = ids
        .clone()
        .map(|id| json!({"id": id, "vector": salted(id, salt), "payload": {"n": id, "salt": salt}}))
        .collect();
    let r = call("POST", &format!("{url}/collections/c/vectors"), Some(&json!({ "vectors": vectors }).to_string()));
    assert_eq!(r.status, 201, "{}", r.body);
    for id in ids {
        acked.points.insert(id, salt);
        acked.deleted.retain(|&d| d != id);
    }
}

/// Writes through two lives of a node in `dir`: create and 240 vectors,
/// a clean stop (its checkpoint writes a delta and cuts the log); then
/// 240 more vectors (40 replacing earlier ones) and 10 deletes, and a
/// SIGKILL. The directory then holds a full checkpoint (written at the
/// create), a delta, and the second life's writes in several log segments.
fn written(dir: &Path) -> Acked {
    let mut acked = Acked::default();
    let node = Process::node_with_env(dir, &DAMAGE_ENV);
    let create = r#"{"name":"c","dimension":8,"metric":"l2"}"#;
    assert_eq!(call("POST", &format!("{}/collections", node.url), Some(create)).status, 201);
    for b in 0..6 {
        upsert(&node.url, b * 40..b * 40 + 40, 0, &mut acked);
    }
    assert!(node.terminate().success(), "clean stop");
    let node = Process::node_with_env(dir, &DAMAGE_ENV);
    for b in 5..11 {
        upsert(&node.url, b * 40..b * 40 + 40, 1, &mut acked);
    }
    for id in 0..10 {
        let r = call("DELETE", &format!("{}/collections/c/vectors/{id}", node.url), None);
        assert_eq!(r.status, 200, "{}", r.body);
        acked.points.remove(&id);
        acked.deleted.push(id);
    }
    node.kill();
    acked
}

/// Checks over HTTP that the node holds exactly `acked`: the size, every
/// live id's vector and payload, every deleted id absent.
fn assert_holds(url: &str, acked: &Acked) {
    let info = call("GET", &format!("{url}/collections/c"), None);
    assert_eq!(info.body["size"], json!(acked.points.len()), "{}", info.body);
    for (&id, &salt) in &acked.points {
        let r = call("GET", &format!("{url}/collections/c/vectors/{id}"), None);
        assert_eq!(r.status, 200, "acknowledged id {id} lost: {}", r.body);
        let vector: Vec<f32> =
            r.body["vector"].as_array().expect("vector").iter().map(|x| x.as_f64().expect("number") as f32).collect();
        assert_eq!(vector, salted(id, salt), "id {id}");
        assert_eq!(r.body["payload"], json!({"n": id, "salt": salt}), "id {id}");
    }
    for id in &acked.deleted {
        assert_eq!(call("GET", &format!("{url}/collections/c/vectors/{id}"), None).status, 404, "deleted id {id}");
    }
}

/// The files of `dir` whose names start with `prefix`, sorted by name
/// (log segments and checkpoints sort by position).
fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
        .collect();
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Starts a node on `dir` that must refuse to start: returns its stderr
/// once it exited non-zero (deadline 60 s; it must not hang, and must not
/// become ready).
fn refused(dir: &Path) -> String {
    refused_with(dir, &DAMAGE_ENV)
}

/// [`refused`] with these settings.
fn refused_with(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut child = Command::new(support::binary())
        .args(["serve", "--addr", "127.0.0.1:0", "--data", path_str(dir)])
        .envs(env.iter().copied())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ruvector");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the node neither started nor refused within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().expect("stderr reader");
    assert!(!status.success(), "the node must refuse to start: {status:?}\n{stderr}");
    eprintln!("refused as expected ({status}): {}", stderr.trim());
    stderr
}

/// Flips one bit in the middle of `file`.
fn flip_middle(file: &Path) {
    let mut bytes = std::fs::read(file).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x08;
    std::fs::write(file, bytes).expect("write");
}

/// The byte offset a refusal names (`at byte offset N`).
fn named_offset(stderr: &str) -> u64 {
    let rest = stderr.split("at byte offset ").nth(1).unwrap_or_else(|| panic!("no offset named: {stderr}"));
    rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse().ok()).expect("offset")
}

#[test]
fn a_torn_final_log_record_is_cut_and_every_acknowledged_write_recovered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut acked = written(&data);
    let segments = files(&data.join("wal"), "");
    assert!(segments.len() >= 3, "several log segments: {segments:?}");
    // The crash cut a frame short: what a write in flight leaves (its
    // client was never answered). A frame's first 20 bytes: header and a
    // few bytes of its record.
    let last = segments.last().expect("a segment");
    let whole = std::fs::metadata(last).expect("stat").len();
    let first = segments.first().expect("a segment");
    let frame_start = std::fs::read(first).expect("read")[..20].to_vec();
    std::fs::OpenOptions::new().append(true).open(last).expect("open").write_all(&frame_start).expect("append");

    let node = Process::node_with_env(&data, &DAMAGE_ENV);
    assert_holds(&node.url, &acked);
    assert_eq!(std::fs::metadata(last).expect("stat").len(), whole, "the torn frame is cut off");
    // The log continues at the cut: a new write survives the next crash.
    upsert(&node.url, 1000..1010, 2, &mut acked);
    node.kill();
    let node = Process::node_with_env(&data, &DAMAGE_ENV);
    assert_holds(&node.url, &acked);
    eprintln!("{} acknowledged vectors and {} deletes recovered", acked.points.len(), acked.deleted.len());
}

#[test]
fn damaged_files_make_the_node_refuse_to_start_naming_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pristine = dir.path().join("pristine");
    let acked = written(&pristine);
    let wal = |d: &Path| files(&d.join("wal"), "");
    let collection = |d: &Path| d.join("collections").join("c");
    assert!(wal(&pristine).len() >= 3, "several log segments: {:?}", wal(&pristine));
    assert_eq!(files(&collection(&pristine), "checkpoint-").len(), 1);
    assert_eq!(files(&collection(&pristine), "delta-").len(), 1);

    type Damage = fn(&Path) -> PathBuf;
    let cases: [(&str, Damage); 7] = [
        ("flipped bit in a log segment", |d| {
            let first = files(&d.join("wal"), "").remove(0);
            flip_middle(&first);
            first
        }),
        ("flipped bit in the full checkpoint", |d| {
            let file = files(&d.join("collections/c"), "checkpoint-").remove(0);
            flip_middle(&file);
            file
        }),
        ("flipped bit in the delta", |d| {
            let file = files(&d.join("collections/c"), "delta-").remove(0);
            flip_middle(&file);
            file
        }),
        ("truncated full checkpoint", |d| {
            let file = files(&d.join("collections/c"), "checkpoint-").remove(0);
            let len = std::fs::metadata(&file).expect("stat").len();
            std::fs::OpenOptions::new().write(true).open(&file).expect("open").set_len(len / 2).expect("truncate");
            file
        }),
        ("truncated delta", |d| {
            let file = files(&d.join("collections/c"), "delta-").remove(0);
            let len = std::fs::metadata(&file).expect("stat").len();
            std::fs::OpenOptions::new().write(true).open(&file).expect("open").set_len(len - 40).expect("truncate");
            file
        }),
        ("missing delta", |d| {
            let file = files(&d.join("collections/c"), "delta-").remove(0);
            std::fs::remove_file(&file).expect("remove");
            d.join("collections/c")
        }),
        ("missing full checkpoint", |d| {
            let file = files(&d.join("collections/c"), "checkpoint-").remove(0);
            std::fs::remove_file(&file).expect("remove");
            d.join("collections/c")
        }),
    ];
    for (i, (what, damage)) in cases.iter().enumerate() {
        let copy = dir.path().join(format!("case{i}"));
        copy_dir(&pristine, &copy);
        let damaged = damage(&copy);
        let stderr = refused(&copy);
        assert!(stderr.contains(path_str(&damaged)), "{what}: the error names {}: {stderr}", damaged.display());
        if damaged.is_file() {
            named_offset(&stderr);
        }
    }

    // A log segment removed from the middle: the log has a hole.
    let copy = dir.path().join("hole");
    copy_dir(&pristine, &copy);
    let segments = wal(&copy);
    std::fs::remove_file(&segments[1]).expect("remove");
    let stderr = refused(&copy);
    assert!(stderr.contains("missing records") && stderr.contains(path_str(&copy.join("wal"))), "{stderr}");

    // The undamaged directory recovers exactly what was acknowledged.
    let node = Process::node_with_env(&pristine, &DAMAGE_ENV);
    assert_holds(&node.url, &acked);
}

/// Runs `mount` with `args`; whether it succeeded.
fn mount(args: &[&str]) -> bool {
    Command::new("mount").args(args).status().is_ok_and(|s| s.success())
}

/// The data directory turns read-only under a running node: a read-only
/// bind mount over it (a remount of the whole volume is refused while the
/// node holds its log open for writing), so the next log segment cannot be
/// created. Writes answer 503 `unavailable` naming the read-only volume
/// (not 507: no space is missing, and the write may succeed elsewhere or
/// later), reads and searches keep working, and once the directory is
/// writable again writes succeed without a restart. A node started on a
/// read-only directory refuses to start (exit 1, naming the file): it
/// could not log a single write, and serving reads with every write
/// failing would hide the fault. After a SIGKILL, exactly the
/// acknowledged writes are there.
#[test]
fn a_read_only_data_directory_refuses_writes_and_recovers() {
    let Some(volume) = Tmpfs::mount_or_skip("64m") else { return };
    let data = volume.dir.join("data");
    let env = [("RUVECTOR_STORAGE__CHECKPOINT_INTERVAL_SECS", "1"), ("RUVECTOR_STORAGE__WAL_SEGMENT_BYTES", "4096")];
    let node = Process::node_with_env(&data, &env);
    let create = r#"{"name":"c","dimension":8,"metric":"l2"}"#;
    assert_eq!(call("POST", &format!("{}/collections", node.url), Some(create)).status, 201);
    let mut acked = Acked::default();
    for b in 0..3 {
        upsert(&node.url, b * 40..b * 40 + 40, 0, &mut acked);
    }

    // Read-only under the running node.
    let target = path_str(&data);
    assert!(mount(&["--bind", target, target]) && mount(&["-o", "remount,bind,ro", target]), "ro bind mount");
    let mut refused = None;
    for b in 3..20u64 {
        let ids = b * 40..b * 40 + 40;
        let vectors: Vec<Value> =
            ids.clone().map(|id| json!({"id": id, "vector": salted(id, 0), "payload": {"n": id, "salt": 0}})).collect();
        let body = json!({ "vectors": vectors }).to_string();
        let r = call("POST", &format!("{}/collections/c/vectors", node.url), Some(&body));
        match r.status {
            // Still appended to the open segment: acknowledged, durable.
            201 => ids.for_each(|id| {
                acked.points.insert(id, 0);
            }),
            503 => {
                refused = Some(r);
                break;
            }
            other => panic!("batch {b}: {other} {}", r.body),
        }
    }
    let refused = refused.expect("a write meets the read-only directory");
    assert_eq!(refused.body["code"], "unavailable", "{}", refused.body);
    assert!(refused.body["error"].as_str().is_some_and(|m| m.contains("read-only")), "{}", refused.body);
    eprintln!(
        "read-only: refused with {} {} after {} acknowledged vectors",
        refused.status,
        refused.body,
        acked.points.len()
    );
    assert_holds(&node.url, &acked);
    let hit = call(
        "POST",
        &format!("{}/collections/c/search", node.url),
        Some(&json!({"vector": salted(7, 0), "k": 1}).to_string()),
    );
    assert_eq!((hit.status, hit.body[0]["id"].clone()), (200, json!(7)), "{}", hit.body);

    // Writable again: writes resume without a restart.
    assert!(Command::new("umount").arg(target).status().is_ok_and(|s| s.success()), "umount the ro bind");
    upsert(&node.url, 5000..5040, 3, &mut acked);

    // Read-only at start: refused, naming the file; then all is there.
    assert!(node.terminate().success(), "clean stop");
    let volume_dir = path_str(&volume.dir);
    assert!(mount(&["-o", "remount,ro", volume_dir]), "remount the volume read-only");
    let stderr = refused_with(&data, &env);
    assert!(stderr.contains("Read-only file system") && stderr.contains(target), "{stderr}");
    assert!(mount(&["-o", "remount,rw", volume_dir]), "remount the volume writable");
    let node = Process::node_with_env(&data, &env);
    upsert(&node.url, 6000..6040, 4, &mut acked);
    node.kill();
    let node = Process::node_with_env(&data, &env);
    assert_holds(&node.url, &acked);
}
