//! The errors of the scheduler's writes to the API (bindings, pod status, events), and of
//! its configuration file.

/// A failed API call, or a configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file is unreadable or invalid; the message names the field
    /// (`profiles[0].plugins.score.enabled[1].weight: Invalid value: -1: ...`).
    #[error("invalid scheduler configuration {path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong, and where.
        message: String,
    },
    /// The API server refused or could not be reached.
    #[error("{what}: {source}")]
    Api {
        /// What was being written (`binding default/web-1 to node-2`).
        what: String,
        /// The client's error.
        source: kube::Error,
    },
}

impl Error {
    /// Wraps a client error with what was being done.
    pub fn api(what: impl Into<String>, source: kube::Error) -> Error {
        Error::Api {
            what: what.into(),
            source,
        }
    }

    /// The HTTP status the API server answered with, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            Error::Api { .. } | Error::Config { .. } => None,
        }
    }
}

/// Result of the scheduler's API writes.
pub type Result<T> = std::result::Result<T, Error>;
