//! Storage faults against a real node: the data directory on a small
//! tmpfs that fills up. Writes answer 507 `insufficient_storage` and change
//! nothing, reads and searches keep working, writes succeed again once the
//! volume is grown (no restart), and after a SIGKILL exactly the
//! acknowledged writes are there.
//!
//! Needs permission to mount a tmpfs (root). Without it the test says so
//! and returns — unless `RUVECTOR_REQUIRE_TMPFS` is set (CI sets it when
//! its probe mount works), then it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::{Process, call, path_str};

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
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
        let _ = Command::new("umount").arg(&self.dir).status();
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
    let Some(volume) = Tmpfs::mount("3m") else {
        assert!(
            std::env::var_os("RUVECTOR_REQUIRE_TMPFS").is_none(),
            "RUVECTOR_REQUIRE_TMPFS is set but a tmpfs cannot be mounted"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        return;
    };
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
