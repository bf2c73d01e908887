//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/*`) through
//! the same checks the cargo-fuzz targets run, on stable Rust, so every
//! input the fuzzer ever kept (crashes it found included) is a test on
//! every `cargo test`. Also runs the seeds the current code produces, so
//! a format change that breaks a round trip fails here. Seeds must also
//! give their expected outcome (`seed-bad-*` refused, other seeds
//! accepted), so a check that stopped reaching the code would show.

use std::path::{Path, PathBuf};

use ruvector_fuzz::seeds::seeds;
use ruvector_fuzz::{Outcome, Target};

fn corpus_dir(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target.name())
}

/// Runs `check` on `data`, naming the input when it panics.
fn run(target: Target, what: &str, data: &[u8]) -> Outcome {
    std::panic::catch_unwind(|| target.check(data)).unwrap_or_else(|_| {
        panic!("{}: input {what} fails its checks (rerun: cargo fuzz run {} {what})", target.name(), target.name())
    })
}

/// What a seed named `name` must give: seeds named `bad-*` are refused,
/// every other seed is accepted.
fn expected(name: &str) -> Outcome {
    if name.starts_with("bad-") { Outcome::Refused } else { Outcome::Accepted }
}

#[test]
fn every_corpus_file_passes() {
    for target in Target::ALL {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        files.sort();
        assert!(files.len() >= 2, "{}: only {} corpus files", dir.display(), files.len());
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let outcome = run(target, &file.display().to_string(), &data);
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if let Some(seed) = name.strip_prefix("seed-") {
                assert_eq!(outcome, expected(seed), "{}", file.display());
            }
        }
    }
}

#[test]
fn fresh_seeds_pass() {
    for target in Target::ALL {
        for (name, data) in seeds(target) {
            let outcome = run(target, &format!("seed-{name} (fresh)"), &data);
            assert_eq!(outcome, expected(&name), "{}: fresh seed {name}", target.name());
        }
    }
}

#[test]
fn checkpoint_chains_encode_as_parsed() {
    for (name, data) in seeds(Target::Checkpoint) {
        if data.first() == Some(&1) {
            let mut b = ruvector_fuzz::Bytes::new(&data[1..]);
            let chain = ruvector_fuzz::Chain::parse(&mut b);
            assert!(b.is_empty(), "{name}: bytes left after the chain");
            assert_eq!(chain.encode(), data, "{name}");
        }
    }
}
