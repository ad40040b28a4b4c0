//! The errors of the scheduler's writes to the API (bindings, pod status, events).

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
            Error::Api { .. } => None,
        }
    }
}

/// Result of the scheduler's API writes.
pub type Result<T> = std::result::Result<T, Error>;
