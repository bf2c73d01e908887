//! Growing and shrinking a cluster online, through real processes: a
//! collection loaded through a router over three shards; the router
//! replaced by one with a fourth shard (what `helm upgrade --set
//! shards.replicas=4` does), then by one draining it, then by one without
//! it — while clients search, read, upsert, re-upsert and delete. The new
//! shard gets the collection by itself, partitions move to it (new copy
//! filled, then the old one dropped) and off it again, and afterwards
//! every acknowledged write is present once, on every copy, every
//! acknowledged delete is absent, sizes are exact and the placement is
//! balanced — with no failed request.

mod support;

use std::sync::{Arc, Mutex};

use support::Process;
use support::rebalance::{
    Clients, Current, Expected, check, cluster, create_and_load, hand_over, moving, router, router_draining, settled,
    wait_quiet, wait_until,
};

const NAME: &str = "grow";

/// 3 → 4 → 3 shards under load: the router is replaced by one with a
/// fourth shard (partitions move onto it), then by one draining it
/// (partitions move off), then by one without it, and the fourth shard
/// stops. Clients search, read, upsert and delete throughout.
fn three_to_four_to_three(replicas: usize, chaos: bool) {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let mut nodes: Vec<Option<Process>> = dirs.iter().map(|d| Some(Process::node(d.path()))).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.as_ref().expect("up").url.clone()).collect();
    let n = 3000u64;
    let first = router(&urls[..3], replicas);
    create_and_load(&first.url, NAME, n);
    let unknown = support::call("GET", &format!("{}/collections/{NAME}", urls[3]), None);
    assert_eq!(unknown.status, 404, "shard 4 knows nothing yet");

    let url: Current = Arc::new(Mutex::new(first.url.clone()));
    let clients = Clients::start(&url, NAME, n);
    clients.some_reads();

    // 3 → 4: the router comes back with a fourth shard.
    let mut r = hand_over(&url, first, router(&urls, replicas));
    if chaos {
        // Mid-move: the target shard is SIGKILLed and restarted on its
        // volume, then the router driving the move is SIGKILLed (clients
        // already on its successor).
        wait_until(&r.url, "a move under way", || moving(&r.url) > 0);
        nodes[3].take().expect("up").kill();
        clients.some_reads();
        let address = urls[3].trim_start_matches("http://").to_owned();
        let restarted = Process::start(&["serve", "--addr", &address, "--data", support::path_str(dirs[3].path())]);
        nodes[3] = Some(restarted);
        clients.some_reads();
        let next = router(&urls, replicas);
        *url.lock().expect("url") = next.url.clone();
        std::thread::sleep(std::time::Duration::from_millis(300));
        r.kill();
        r = next;
    }
    wait_until(&r.url, "balanced over four shards", || settled(&r.url, NAME, &urls, 4, replicas).is_some());
    if !chaos {
        // The fewest moves that balance: the fourth shard's quota of the
        // 32·R copies, each moved once.
        let moved = support::rebalance::metric(&r.url, "ruvector_router_move_duration_seconds_count");
        assert_eq!(moved, Some(8.0 * replicas as f64), "partitions moved");
    }
    clients.some_reads();
    // 4 → 3: drain the fourth, then drop it from the list and stop it.
    let r = hand_over(&url, r, router_draining(&urls, replicas, &urls[3]));
    wait_until(&r.url, "the fourth shard drained", || {
        cluster(&r.url)["shards"][3]["removable"] == true && settled(&r.url, NAME, &urls, 3, replicas).is_some()
    });
    // The operator's view: `ruvector cluster --wait` returns once nothing
    // moves and says the fourth shard may go.
    let out = std::process::Command::new(support::binary())
        .args(["cluster", "--url", &r.url, "--wait", "--timeout-secs", "60"])
        .output()
        .expect("run ruvector cluster");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("{}  drained: may be removed", urls[3])), "{text}");
    assert!(text.contains("moving partitions 0"), "{text}");
    let r = hand_over(&url, r, router(&urls[..3], replicas));
    let status = nodes[3].take().expect("up").terminate();
    assert!(status.success());
    clients.some_reads();
    let outcome = clients.stop();
    eprintln!("R={replicas}: {outcome}");
    outcome.assert_no_failure();

    // Every acknowledged write on every copy, every acknowledged delete
    // absent, the original vectors intact, sizes exact.
    let rows = wait_quiet(&r.url, &[&r.url], NAME, &urls[..3], 3, replicas);
    check(&r.url, NAME, &urls[..3], &rows, &Expected::with_writes(n, &outcome.acked, &outcome.unacked));
}

#[test]
fn one_copy_grows_to_four_shards_and_shrinks_back_online() {
    three_to_four_to_three(1, false);
}

#[test]
fn two_copies_grow_to_four_shards_and_shrink_back_online() {
    three_to_four_to_three(2, false);
}

/// The same with the move's target shard and then the router driving the
/// move SIGKILLed mid-move: the move resumes; nothing is lost.
#[test]
fn one_copy_survives_the_target_and_the_router_killed_mid_move() {
    three_to_four_to_three(1, true);
}

#[test]
fn two_copies_survive_the_target_and_the_router_killed_mid_move() {
    three_to_four_to_three(2, true);
}

/// A rolling router upgrade midway: a router over the old three shards
/// keeps serving beside one over four. It could not reach a copy on the
/// fourth shard, so nothing moves while it runs — the new router reports
/// it (`other_routers`, and `ruvector cluster` says it waits) — and its
/// clients get right answers; once it stops, partitions move.
#[test]
fn moves_wait_while_a_router_with_the_old_shard_list_runs() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let nodes: Vec<Process> = dirs.iter().map(|d| Process::node(d.path())).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let n = 1000u64;
    let old = router(&urls[..3], 1);
    create_and_load(&old.url, NAME, n);
    let url: Current = Arc::new(Mutex::new(old.url.clone()));
    let clients = Clients::start(&url, NAME, n);
    let new = router(&urls, 1);
    wait_until(&new.url, "the old router seen", || {
        cluster(&new.url)["other_routers"].as_array().is_some_and(|a| a.len() == 1)
    });
    // Three sync periods and more: still nothing on the fourth shard.
    let seen = std::time::Instant::now();
    while seen.elapsed() < std::time::Duration::from_secs(4) {
        let c = cluster(&new.url);
        assert_eq!(c["shards"][3]["partitions"], 0, "moved while the old router runs: {c}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = std::process::Command::new(support::binary())
        .args(["cluster", "--url", &new.url])
        .output()
        .expect("run ruvector cluster");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("waiting: 1 router(s) with another shard list"), "{text}");
    clients.some_reads();
    let new = hand_over(&url, old, new);
    wait_until(&new.url, "balanced over four shards", || settled(&new.url, NAME, &urls, 4, 1).is_some());
    clients.some_reads();
    let outcome = clients.stop();
    eprintln!("{outcome}");
    outcome.assert_no_failure();
    let rows = wait_quiet(&new.url, &[&new.url], NAME, &urls, 4, 1);
    check(&new.url, NAME, &urls, &rows, &Expected::with_writes(n, &outcome.acked, &outcome.unacked));
}
