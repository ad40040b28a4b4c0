//! The one error type of the controllers: what a reconcile can fail with. Its error policy
//! requeues the object after a pause; the next reconcile reads the world afresh.

/// What went wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    /// An object carries a spec the controller cannot act on (an unparsable selector, a
    /// maxSurge that is neither an integer nor a percentage, ...).
    #[error("invalid {what}: {why}")]
    Invalid {
        /// Which object and field.
        what: String,
        /// Why it cannot be used.
        why: String,
    },
    /// A name the deployment wants for its new ReplicaSet is taken by another template; the
    /// collision count was raised and the next reconcile picks another name.
    #[error("hash collision for the new replica set of {0}")]
    HashCollision(String),
    /// An object the controller must make still exists from before, on its way out; the
    /// next reconcile makes it anew.
    #[error("{0} is still being deleted")]
    StillDeleting(String),
    /// Several creates or deletes failed; the first is kept.
    #[error("{count} of the pod changes failed; first: {first}")]
    Pods {
        /// How many failed.
        count: usize,
        /// The first failure.
        first: Box<Error>,
    },
}

impl Error {
    /// An invalid-spec error for `what`.
    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }
}

/// Results of the controllers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The HTTP status of an API error, if the server answered with one.
pub(crate) fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The message of an API error, as kube's events quote it.
pub(crate) fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Whether the API answered 404.
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    status_code(error) == Some(404)
}

/// Whether the API answered 409 (a write raced another, or the name is taken).
pub(crate) fn is_conflict(error: &kube::Error) -> bool {
    status_code(error) == Some(409)
}

/// Whether a create was refused because its namespace is being deleted: nothing to do then,
/// the namespace controller is emptying it (kube's `NamespaceTerminatingCause`).
pub(crate) fn is_namespace_terminating(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            status.code == 403 && status.message.to_ascii_lowercase().contains("terminat")
        }
        _ => false,
    }
}
