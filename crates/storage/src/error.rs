//! The crate's one error type. Each variant says whose fault it is: the
//! environment ([`StorageError::Io`], [`StorageError::WalFailed`]), the bytes
//! on disk ([`StorageError::Corrupt`], [`StorageError::UnsupportedVersion`],
//! [`StorageError::MissingWal`]), the caller ([`StorageError::RecordTooLarge`],
//! [`StorageError::InvalidSectionTag`], [`StorageError::DuplicateSection`]) or
//! the caller's replay callback ([`StorageError::Replay`]).

use std::path::PathBuf;

/// Everything that can go wrong in the WAL or in checkpoint files.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system refused an operation on `path` (disk full,
    /// permissions, a failed fsync, ...). The environment's fault.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },

    /// A file's bytes fail a check (checksum, length, structure, LSN order).
    /// Recovery stops here rather than load a partial state.
    #[error("corrupt file {}: at byte offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damaged frame, header or section.
        offset: u64,
        /// What check failed.
        reason: String,
    },

    /// A checksummed frame or header carries a format version this build
    /// cannot read (written by a newer build).
    #[error("{}: at byte offset {offset}: unsupported format version {found} (this build reads {supported})", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Byte offset of the version field's frame or header.
        offset: u64,
        /// Version found on disk.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },

    /// The WAL does not contain records that recovery needs: it starts after
    /// `needed_from`, or it has a hole. Usually WAL files were deleted by hand.
    #[error("WAL in {} is missing records: needed LSN {needed_from}, next available is {found}", dir.display())]
    MissingWal {
        /// The WAL directory.
        dir: PathBuf,
        /// The first LSN recovery needed.
        needed_from: u64,
        /// The LSN found instead.
        found: u64,
    },

    /// The disk is full (ENOSPC or EDQUOT) and the record was not written:
    /// the WAL cut off any partial frame and takes appends again once
    /// there is room. Nothing acknowledged is affected.
    #[error("no space left for the write-ahead log at {}: {source}", path.display())]
    NoSpace {
        /// The segment the write was for.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },

    /// The data volume is read-only (EROFS) and the record was not
    /// written (nothing of it is in the file): like [`StorageError::NoSpace`],
    /// the WAL takes appends again once the volume is writable.
    #[error("the volume of the write-ahead log at {} is read-only: {source}", path.display())]
    ReadOnly {
        /// The segment the write was for.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },

    /// An earlier write or fsync failed, so the WAL no longer knows what is
    /// on disk and refuses further appends (retrying an fsync after a failure
    /// can report success for lost data). Reopen the WAL to recover.
    #[error("WAL refuses writes after an earlier failure: {reason}")]
    WalFailed {
        /// The first failure.
        reason: String,
    },

    /// The caller passed a record whose encoding exceeds the frame limit.
    #[error("WAL record of {size} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// Encoded size.
        size: usize,
        /// Largest accepted encoded size.
        max: usize,
    },

    /// A checkpoint section tag must be 1..=8 ASCII graphic bytes.
    #[error("invalid checkpoint section tag {tag:?}: must be 1 to 8 ASCII letters, digits or punctuation")]
    InvalidSectionTag {
        /// The rejected tag.
        tag: String,
    },

    /// A checkpoint may hold each section tag once.
    #[error("checkpoint section {tag:?} written twice")]
    DuplicateSection {
        /// The repeated tag.
        tag: String,
    },

    /// The replay callback passed to [`crate::Wal::open`] rejected a record.
    #[error("replaying WAL record at LSN {lsn} failed: {source}")]
    Replay {
        /// LSN of the rejected record.
        lsn: u64,
        /// The callback's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// Wraps an OS error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io { path: path.into(), source }
    }

    /// A corruption report.
    pub(crate) fn corrupt(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        StorageError::Corrupt { file: file.into(), offset, reason: reason.into() }
    }
}
