//! What each fuzz target checks, as plain functions of the input bytes.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` (nightly, libFuzzer) are
//! one-line wrappers around [`Target::check`]; `tests/corpus.rs` (stable,
//! part of `cargo test --workspace`) replays every file of the checked-in
//! corpus `fuzz/corpus/<target>/` through the same function. So a crash
//! the fuzzer found, once its input is added to the corpus, is a test on
//! every change.
//!
//! A check panics (that is the fuzzer's signal) when a property fails:
//! the code under test panicked, or returned an error of a kind that does
//! not describe bad input (for example an I/O error from an in-memory
//! disk, or a 5xx for a request body), or a round trip did not give back
//! what went in. Properties, per target:
//!
//! | target | input | property |
//! |---|---|---|
//! | `wal_segment` | a WAL segment file (frame checksums optionally fixed up) | open replays consecutive LSNs or fails with `Corrupt` / `MissingWal` / `UnsupportedVersion`; an opened log takes an append and replays the same records plus it |
//! | `wal_records` | records generated from the bytes | what is appended is what is replayed, bit for bit, also after a power cut |
//! | `checkpoint` | a checkpoint file, raw or as sections behind valid checksums | reading fails with `Corrupt` / `UnsupportedVersion` or rewriting the sections reads back the same; an engine over it opens or refuses with a storage or `Failed` error |
//! | `index_snapshot` | an index snapshot and a delta (checksums optionally fixed up) | loading fails with `Corrupt` or gives an index that searches, and whose snapshot loads back equal |
//! | `filter` | a JSON filter | parse + validate give a 4xx or a filter that serializes back to itself and whose payload-index answers agree with the reference semantics |
//! | `request_json` | a route selector and a JSON body | parse + validate give a 4xx or a valid request that serializes to a body any node accepts as the same request |

mod bytes;
mod checkpoint;
mod filter;
mod index;
mod request;
mod wal;

pub mod seeds;

pub use bytes::Bytes;

/// What the code under test made of an input that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Loaded, decoded or validated (and every round trip held).
    Accepted,
    /// Refused with an error of the right kind.
    Refused,
}
pub use checkpoint::Chain;

/// A fuzz target: its name is its corpus directory and its cargo-fuzz
/// binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// WAL segment bytes through recovery.
    WalSegment,
    /// WAL records through append and recovery.
    WalRecords,
    /// Checkpoint files through the storage reader and the engine's loader.
    Checkpoint,
    /// Index snapshots and deltas through `Hnsw::read_base_bytes` and
    /// `Hnsw::apply_delta`.
    IndexSnapshot,
    /// JSON filters through parsing, validation and the payload indexes.
    Filter,
    /// Request bodies through parsing and validation.
    RequestJson,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 6] = [
        Target::WalSegment,
        Target::WalRecords,
        Target::Checkpoint,
        Target::IndexSnapshot,
        Target::Filter,
        Target::RequestJson,
    ];

    /// The target's name (corpus directory, cargo-fuzz binary).
    pub fn name(self) -> &'static str {
        match self {
            Target::WalSegment => "wal_segment",
            Target::WalRecords => "wal_records",
            Target::Checkpoint => "checkpoint",
            Target::IndexSnapshot => "index_snapshot",
            Target::Filter => "filter",
            Target::RequestJson => "request_json",
        }
    }

    /// Runs the target's checks on one input; panics when a property
    /// fails, else says whether the input was accepted or refused.
    pub fn check(self, data: &[u8]) -> Outcome {
        match self {
            Target::WalSegment => wal::check_segment(data),
            Target::WalRecords => wal::check_records(data),
            Target::Checkpoint => checkpoint::check(data),
            Target::IndexSnapshot => index::check(data),
            Target::Filter => filter::check(data),
            Target::RequestJson => request::check(data),
        }
    }
}
