//! [`StoreError`]: the three ways a local record can fail. The directory and Graph crates map
//! it onto their own error types (`From` impls there), so callers see one error type a crate.

use std::path::PathBuf;

/// A record file or a saved photo could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading, writing or syncing a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a JSON-lines file (not the torn last one) is not a record, or a record is
    /// unusable (`line` 0 when it was found by id rather than read by line).
    #[error("{} line {line}: {reason}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A saved photo does not match the SHA-256 its record carries.
    #[error("backup {id} is corrupt: {} has SHA-256 {found}, the index says {expected}", path.display())]
    Corrupt {
        id: String,
        path: PathBuf,
        expected: String,
        found: String,
    },
}

impl StoreError {
    /// `map_err` helper: an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}
