//! Errors of the engine. Each variant says whose fault it is: the caller's
//! request (`Invalid*`, `*NotFound`, `CollectionExists`), damaged files on
//! disk found at start-up (`Storage` with a corruption inside), or the
//! node's own environment (`Storage` I/O, `Failed`).

use ruvector_index::IndexError;
use ruvector_storage::StorageError;

/// What went wrong in an engine operation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No collection by that name.
    #[error("collection {0:?} not found")]
    CollectionNotFound(String),
    /// A collection by that name already exists.
    #[error("collection {0:?} already exists")]
    CollectionExists(String),
    /// The collection name is not `^[A-Za-z0-9_-]{1,255}$`.
    #[error("invalid collection name {0:?}: use 1 to 255 characters from A-Z, a-z, 0-9, '_' and '-'")]
    InvalidName(String),
    /// A configuration value or request parameter is out of range.
    #[error("invalid {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A vector in a batch is unacceptable; nothing of the batch was applied.
    #[error("vector #{position} (id {id}): {source}")]
    InvalidVector {
        /// Index of the offending vector in the batch.
        position: usize,
        /// Its id.
        id: u64,
        /// What is wrong with it.
        source: IndexError,
    },
    /// A query vector is unacceptable.
    #[error("invalid query: {0}")]
    InvalidQuery(IndexError),
    /// The same id twice in one batch.
    #[error("id {0} appears more than once in the batch")]
    DuplicateId(u64),
    /// The batch holds no vectors.
    #[error("the batch holds no vectors")]
    EmptyBatch,
    /// The write-ahead log or a checkpoint failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The index failed in a way that is not the caller's fault.
    #[error("index: {0}")]
    Index(IndexError),
    /// The disk is full: the write was not logged and nothing changed.
    /// Writes work again once there is room; reads are unaffected.
    #[error("no space left on the data volume; the write was not applied: {0}")]
    NoSpace(String),
    /// The data volume is read-only: the write was not logged and nothing
    /// changed. Writes work again once it is writable; reads are
    /// unaffected.
    #[error("the data volume is read-only; the write was not applied: {0}")]
    ReadOnly(String),
    /// The data directory is missing files recovery needs (found at
    /// start-up): the engine refuses to open rather than serve a partial
    /// state. The message names the file or directory.
    #[error("damaged data directory: {0}")]
    Damaged(String),
    /// A previous durability failure (e.g. an fsync error) made the node
    /// refuse further writes: what is on disk can no longer be trusted to
    /// match memory. Restarting recovers from the log.
    #[error("the engine stopped accepting writes after a storage failure: {0}")]
    Failed(String),
}

impl EngineError {
    /// Whether the error is the caller's fault (a 4xx at the HTTP layer).
    pub fn is_client_error(&self) -> bool {
        match self {
            EngineError::CollectionNotFound(_)
            | EngineError::CollectionExists(_)
            | EngineError::InvalidName(_)
            | EngineError::InvalidParameter { .. }
            | EngineError::InvalidVector { .. }
            | EngineError::InvalidQuery(_)
            | EngineError::DuplicateId(_)
            | EngineError::EmptyBatch => true,
            EngineError::Storage(_)
            | EngineError::Index(_)
            | EngineError::Failed(_)
            | EngineError::NoSpace(_)
            | EngineError::ReadOnly(_)
            | EngineError::Damaged(_) => false,
        }
    }
}
