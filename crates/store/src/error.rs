//! [`StoreError`]: the three ways a local record can fail. The directory and Graph crates map
//! it onto their own error types (the `From` impls [`store_error_into!`] writes there), so
//! callers see one error type a crate.

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

/// `impl From<StoreError> for $error`, naming the variant of `$error` each failure becomes:
///
/// ```ignore
/// photobulk_store::store_error_into!(DirectoryError {
///     Io => BackupIo,
///     BadLine => BackupIndex,
///     Corrupt => BackupCorrupt,
/// });
/// ```
///
/// Each target variant has the fields of the [`StoreError`] variant it stands for. A kind
/// [`StoreError`] gains later (it is `#[non_exhaustive]`) arrives as `Io` until the target
/// crates name it.
#[macro_export]
macro_rules! store_error_into {
    ($error:ident { Io => $io:ident, BadLine => $bad_line:ident, Corrupt => $corrupt:ident $(,)? }) => {
        impl ::std::convert::From<$crate::StoreError> for $error {
            fn from(e: $crate::StoreError) -> Self {
                match e {
                    $crate::StoreError::Io { path, source } => $error::$io { path, source },
                    $crate::StoreError::BadLine { path, line, reason } => {
                        $error::$bad_line { path, line, reason }
                    }
                    $crate::StoreError::Corrupt {
                        id,
                        path,
                        expected,
                        found,
                    } => $error::$corrupt {
                        id,
                        path,
                        expected,
                        found,
                    },
                    other => $error::$io {
                        path: ::std::default::Default::default(),
                        source: ::std::io::Error::other(other.to_string()),
                    },
                }
            }
        }
    };
}
