//! The openraft type configuration: what a log entry carries and what applying it returns.

use std::fmt;

use serde::{Deserialize, Serialize};

openraft::declare_raft_types!(
    /// keel's openraft types: u64 node ids, [`KeelNode`] addresses, [`Request`] entries,
    /// [`Response`] results, and snapshots as files on disk (`tokio::fs::File`), so a snapshot of
    /// a large keyspace is built, sent in chunks and installed without being held in memory.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = KeelNode,
        SnapshotData = tokio::fs::File,
);

/// A member's addresses, stored in the cluster membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeelNode {
    /// Where peers reach this member's Raft endpoints, e.g. `http://10.0.0.1:2380`.
    pub peer_addr: String,
    /// Where clients reach this member's API, e.g. `http://10.0.0.1:2379`.
    pub client_addr: String,
}

impl KeelNode {
    /// A node with both addresses.
    pub fn new(peer_addr: impl Into<String>, client_addr: impl Into<String>) -> KeelNode {
        KeelNode {
            peer_addr: peer_addr.into(),
            client_addr: client_addr.into(),
        }
    }
}

impl fmt::Display for KeelNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer={} client={}", self.peer_addr, self.client_addr)
    }
}

/// The payload of a normal log entry: one keyspace command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The command applied on every member once the entry is committed.
    pub command: keel_store::Command,
}

impl From<keel_store::Command> for Request {
    fn from(command: keel_store::Command) -> Self {
        Request { command }
    }
}

/// What applying one log entry returned.
///
/// openraft asks the state machine for a response for every entry, including the blank and
/// membership entries that carry no command; those get `Response(None)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response(pub Option<keel_store::Applied>);

/// A log id of keel's cluster.
pub type LogId = openraft::LogId<u64>;
/// The membership as the state machine records it.
pub type StoredMembership = openraft::StoredMembership<u64, KeelNode>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<u64, KeelNode>;
/// openraft's storage error for keel's node ids.
pub type StorageError = openraft::StorageError<u64>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// The openraft handle.
pub type Raft = openraft::Raft<TypeConfig>;
/// openraft's metrics for keel's cluster.
pub type RaftMetrics = openraft::RaftMetrics<u64, KeelNode>;
