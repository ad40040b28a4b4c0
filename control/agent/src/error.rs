//! The agent's one error type.

/// What can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or setting is invalid.
    #[error("{0}")]
    Config(String),
    /// The Kubernetes API refused or failed.
    #[error("{0}")]
    Kube(#[from] kube::Error),
    /// The machine could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A runtime failed.
    #[error("{0}")]
    Runtime(#[from] keel_runtime::RuntimeError),
}

/// The agent's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
