//! Typed errors of state access and loading.

use std::path::PathBuf;

/// Everything that can go wrong reading or loading state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON of the expected shape.
    #[error("malformed {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A file parses but holds an invalid value.
    #[error("invalid data in {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A backend failed (disk, corruption, ...).
    #[error("state backend error: {0}")]
    Backend(String),
}
