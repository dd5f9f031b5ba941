//! The data layer's one error type. Every variant that comes from a file names the file,
//! and the line where one applies; every variant about an id names the id.

use std::path::PathBuf;

/// Errors of `recsys-data`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a file could not be parsed.
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// A file or folder is not in any format this crate knows.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// A file holds no ratings.
    #[error("{path}: no ratings in the file{detail}")]
    Empty { path: PathBuf, detail: String },
    /// An id that the data does not know.
    #[error("unknown {kind} id {id:?}{context}")]
    UnknownId {
        kind: &'static str,
        id: String,
        context: String,
    },
    /// A request that cannot be met by the data (a split larger than the data, more negatives than
    /// unseen items, ...).
    #[error("{0}")]
    Invalid(String),
    /// A download failed.
    #[error("download of {url} failed: {message}")]
    Download { url: String, message: String },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        DataError::Parse {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `Result` with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
