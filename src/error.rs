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
    /// Certificates could not be made or read.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// TLS could not be set up from the configured files.
    #[error("{key} {}: {reason}", path.display())]
    Tls {
        /// The config key that names the file (`cert-file`, `peer-trusted-ca-file`, …).
        key: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration asks for something this build cannot do yet.
    #[error("{0}")]
    Unsupported(String),
}

/// keel's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
