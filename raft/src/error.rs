//! keel-raft's one error type.

use crate::types::KeelNode;

/// Everything that can go wrong in replication.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This member is not the leader; the write or read must go to `leader` (if known).
    #[error("not the leader; leader is {leader_id:?}")]
    ForwardToLeader {
        /// The leader's id, if this member knows it.
        leader_id: Option<u64>,
        /// The leader's addresses, if this member knows them.
        leader: Option<KeelNode>,
    },
    /// No leader could be found or reached, or the leader could not reach a quorum (e.g. it is
    /// on the minority side of a partition). Nothing was applied; the caller may retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A write was handed to the leader (or appended by this member as leader) but no answer
    /// came in time: it may or may not have been applied, and may still be. etcd answers
    /// "request timed out" here; a caller that retries must tolerate applying it twice.
    #[error("outcome unknown, the write may or may not have been applied: {0}")]
    Indeterminate(String),
    /// `initialize` on a member that already has a log or a vote.
    #[error("the cluster is already initialized")]
    AlreadyInitialized,
    /// A membership change that openraft refused (e.g. another one is in progress).
    #[error("membership change refused: {0}")]
    Membership(String),
    /// A leadership transfer to a member that is not a voter.
    #[error("bad leader transferee {0}: not a voter")]
    BadTransferee(u64),
    /// An invalid `[raft]` configuration.
    #[error("invalid raft config: {0}")]
    Config(String),
    /// The keyspace failed.
    #[error(transparent)]
    Store(#[from] keel_store::Error),
    /// The Raft log failed.
    #[error("raft log: {0}")]
    Log(#[from] sled::Error),
    /// A data directory could not be created or read.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Raft stopped (shut down, or a storage failure it cannot go on after); the member is unusable.
    #[error("raft stopped: {0}")]
    Fatal(String),
}

/// The error of [`crate::RaftNode::write`] and [`crate::RaftNode::linearizable_barrier`]. Both
/// forward to the leader themselves, so the errors a server expects are
/// [`Error::Unavailable`] (no leader, or no quorum: retry later) and, for writes,
/// [`Error::Indeterminate`] (timed out: may have been applied). [`Error::Fatal`] means this
/// member is unusable.
pub type WriteError = Error;

/// keel-raft's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<openraft::error::Fatal<u64>> for Error {
    fn from(e: openraft::error::Fatal<u64>) -> Self {
        Error::Fatal(e.to_string())
    }
}

impl From<openraft::error::ForwardToLeader<u64, KeelNode>> for Error {
    fn from(e: openraft::error::ForwardToLeader<u64, KeelNode>) -> Self {
        Error::ForwardToLeader {
            leader_id: e.leader_id,
            leader: e.leader_node,
        }
    }
}
