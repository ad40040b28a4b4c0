//! keel's library error type.

use crate::config::ConfigError;

/// What can stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed to open or run.
    #[error("store: {0}")]
    Store(#[from] keel_store::Error),
    /// Replication failed to start or stopped.
    #[error("raft: {0}")]
    Raft(#[from] keel_raft::Error),
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The configuration asks for something this build cannot do yet.
    #[error("{0}")]
    Unsupported(String),
}

/// keel's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
