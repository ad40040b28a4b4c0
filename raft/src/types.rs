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

/// The payload of a normal log entry: keyspace commands, applied in order, each at its own
/// revision with its own outcome, exactly as if each were an entry of its own.
///
/// The leader puts every write that is waiting when it proposes into one entry (see
/// [`crate::proposer`]), so one fsync of the log and one round of replication serve them all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The commands applied on every member once the entry is committed.
    pub commands: Vec<keel_store::Command>,
}

impl From<keel_store::Command> for Request {
    fn from(command: keel_store::Command) -> Self {
        Request {
            commands: vec![command],
        }
    }
}

/// What applying one log entry returned: one [`keel_store::Applied`] per command of its
/// [`Request`], in order.
///
/// openraft asks the state machine for a response for every entry, including the blank and
/// membership entries that carry no command; those get an empty one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response(pub Vec<keel_store::Applied>);

/// The entry payload of keel before batching: one command. Entries of this shape are still
/// read from logs written then (see [`crate::log_store`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LegacyRequest {
    pub(crate) command: keel_store::Command,
}

openraft::declare_raft_types!(
    /// [`TypeConfig`] as it was before batching, only to decode old log entries.
    pub(crate) LegacyTypeConfig:
        D = LegacyRequest,
        R = Response,
        NodeId = u64,
        Node = KeelNode,
        SnapshotData = tokio::fs::File,
);

/// An entry of the log before batching, as an entry of a batch of one.
pub(crate) fn from_legacy(old: openraft::Entry<LegacyTypeConfig>) -> Entry {
    let payload = match old.payload {
        openraft::EntryPayload::Blank => openraft::EntryPayload::Blank,
        openraft::EntryPayload::Normal(request) => {
            openraft::EntryPayload::Normal(Request::from(request.command))
        }
        openraft::EntryPayload::Membership(membership) => {
            openraft::EntryPayload::Membership(membership)
        }
    };
    Entry {
        log_id: old.log_id,
        payload,
    }
}

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
