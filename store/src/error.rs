//! The store's one error type.
//!
//! Errors that a client caused (a compacted revision, a missing lease) are part of a command's
//! replicated outcome, so the enum is `Clone` and serializable and carries no foreign error
//! types: storage failures are kept as their message.

use serde::{Deserialize, Serialize};

/// Everything that can go wrong in the keyspace.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Error {
    /// A key was empty (etcd: "etcdserver: key is not provided").
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// The encoded request is larger than the configured limit.
    #[error("etcdserver: request is too large ({size} bytes, limit {limit})")]
    RequestTooLarge {
        /// Encoded size of the request.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The requested revision was compacted away.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted {
        /// The store's compacted revision.
        compact_revision: i64,
    },
    /// The requested revision is newer than the store's current revision.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision {
        /// The store's current revision.
        current_revision: i64,
    },
    /// A lease id that does not exist.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound {
        /// The lease id.
        id: i64,
    },
    /// A lease grant with an id that is already in use.
    #[error("etcdserver: lease already exists")]
    LeaseExists {
        /// The lease id.
        id: i64,
    },
    /// A lease id or TTL out of range.
    #[error("etcdserver: {0}")]
    InvalidLease(String),
    /// `ignore_value` / `ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// The same key written twice inside one transaction.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A request that is malformed in another way (named in the message).
    #[error("etcdserver: {0}")]
    InvalidRequest(String),
    /// An auth request named no user.
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    /// No user of that name.
    #[error("etcdserver: user name not found")]
    UserNotFound,
    /// A user of that name exists already.
    #[error("etcdserver: user name already exists")]
    UserExists,
    /// An auth request named no role.
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    /// No role of that name.
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    /// A role of that name exists already.
    #[error("etcdserver: role name already exists")]
    RoleExists,
    /// Revoking a role the user does not have.
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    /// Revoking a permission the role does not have.
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    /// `auth enable` without a `root` user.
    #[error("etcdserver: root user does not exist")]
    RootUserMissing,
    /// `auth enable` while the `root` user lacks the `root` role.
    #[error("etcdserver: root user does not have root role")]
    RootRoleMissing,
    /// Deleting root, or taking its root role, while auth is enabled.
    #[error("etcdserver: invalid auth management")]
    InvalidAuthManagement,
    /// sled failed; the message is sled's.
    #[error("storage: {0}")]
    Storage(String),
    /// Bytes on disk or in a snapshot did not decode; the store refuses to go on with them.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
