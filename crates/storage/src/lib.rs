//! Durable storage for ruvector: the node's write-ahead log ([`Wal`]) and
//! checkpoint files ([`CheckpointWriter`], [`Checkpoint`]).
//!
//! This crate stores opaque bytes. It knows nothing about HNSW, collections'
//! semantics or JSON; the engine decides what goes into a record's `config`
//! or `payload` and into a checkpoint's sections.
//!
//! # On disk
//! ```text
//! <data>/wal/00000000000000000001.log        WAL segments, named by first LSN
//! <data>/wal/00000000000000052817.log
//! <data>/checkpoint-00000000000000052816.ckpt  newest checkpoint (state ≤ LSN)
//! ```
//! (the directory layout is the engine's choice; the names inside each
//! directory are this crate's). Byte formats: WAL frame in [`wal::frame`]
//! (length, CRC-32, version, LSN, record), record bodies in [`wal::record`],
//! checkpoint header/sections/table of contents/footer in [`checkpoint`].
//! Checkpoints are memory-mapped for loading on [`RealFs`]; sections are
//! 8-byte aligned slices of the map.
//!
//! # Recovery, as the engine runs it
//! 1. `let ckpt = Checkpoint::read_latest(&*fs, dir)?;` load state from its
//!    sections (or start empty).
//! 2. `Wal::open(fs, wal_dir, opts, ckpt_lsn + 1, |lsn, rec| apply(rec))`
//!    replays everything after the checkpoint. A torn final record is
//!    dropped; other damage is a [`StorageError::Corrupt`] naming the file.
//!
//! # Checkpointing, as the engine runs it
//! 1. Pick `lsn` such that the captured state contains exactly the records
//!    ≤ `lsn` (e.g. hold the engine's write lock while reading
//!    [`Wal::last_lsn`] and snapshotting).
//! 2. Stream sections through [`CheckpointWriter`], then
//!    [`CheckpointWriter::commit`].
//! 3. `wal.truncate_before(lsn + 1)`.
//!
//! All IO goes through the [`Fs`] trait: [`RealFs`] in production, [`SimFs`]
//! in tests to cut the power at every sync point.

pub mod checkpoint;
pub mod error;
pub mod io;
pub mod wal;

pub use checkpoint::{Checkpoint, CheckpointKind, CheckpointWriter, SectionWriter};
pub use error::{Result, StorageError};
pub use io::{FileBytes, FileHandle, Fs, RealFs, SimFs};
pub use wal::{FsyncPolicy, RecoveryStats, ReplayError, Wal, WalOptions, WalPoint, WalRecord};
