//! Errors of the index crate. Every variant names whose fault it is: the
//! caller's input (`Invalid*`, `DimensionMismatch`, `DuplicateId`) or bytes
//! handed to [`crate::Hnsw::read_from`] (`Corrupt`, `UnsupportedVersion`).

/// What went wrong in an index operation.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A vector or query has the wrong number of components.
    #[error("vector has dimension {got}, the index expects {expected}")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A component is NaN or infinite.
    #[error("vector component {position} is not a finite number")]
    NonFinite {
        /// Index of the first offending component.
        position: usize,
    },
    /// A zero vector under the cosine metric, where direction is undefined.
    #[error("zero vector has no direction under the cosine metric")]
    ZeroVector,
    /// The same id appears twice in one batch.
    #[error("id {0} appears more than once in the batch")]
    DuplicateId(u64),
    /// A construction or search parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The index would exceed the `u32` slot space.
    #[error("index is full: at most {0} vectors per index")]
    Full(usize),
    /// Serialised bytes are damaged or truncated.
    #[error("corrupt index data: {0}")]
    Corrupt(String),
    /// Serialised bytes come from an unknown format version.
    #[error("unsupported index format version {0}")]
    UnsupportedVersion(u32),
    /// Reading or writing serialised bytes failed.
    #[error("index I/O: {0}")]
    Io(#[from] std::io::Error),
}
