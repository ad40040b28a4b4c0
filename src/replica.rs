//! The one thing the API layer knows about replication: a [`Replica`] orders writes, answers
//! whether a read may be served, and exposes the local [`Store`] and the member list.
//!
//! [`LocalReplica`] is a real single-member implementation (it applies commands straight to
//! its store, in order); the Raft-backed one wraps keel-raft's `RaftNode` behind the same trait.

use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use keel_store::{Applied, Command, Store};

/// Why a replica could not do what was asked. Client-visible outcomes of a command (a failed
/// compare, a compacted revision) are not here: they are in [`Applied::result`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// This member is not the leader; `leader_client_urls` tells where the leader serves the
    /// client API, when known (the API layer forwards the request there).
    #[error("etcdserver: not leader")]
    NotLeader {
        /// The leader's id, if known.
        leader_id: Option<u64>,
        /// The leader's client URLs, if known.
        leader_client_urls: Vec<String>,
    },
    /// The cluster has no leader right now.
    #[error("etcdserver: no leader")]
    NoLeader,
    /// The write or barrier did not finish in time.
    #[error("etcdserver: request timed out")]
    Timeout,
    /// This replica cannot do this at all (e.g. membership changes on a single member).
    #[error("{0}")]
    Unimplemented(String),
    /// A member id that is not in the cluster.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// A peer URL that another member already uses.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    /// Raft refused a membership change (another one in progress, not a learner, ...).
    #[error("{0}")]
    MembershipRefused(String),
    /// A leadership transfer to a member that is not a voter.
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// The replica is shutting down.
    #[error("etcdserver: server stopped")]
    Stopped,
    /// Storage or consensus failed; the member cannot go on.
    #[error("etcdserver: {0}")]
    Fatal(String),
}

/// What the replica knows about itself and its cluster, for headers and `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// This member's id.
    pub member_id: u64,
    /// The cluster's id.
    pub cluster_id: u64,
    /// Current Raft term.
    pub raft_term: u64,
    /// The leader's member id, if there is one.
    pub leader: Option<u64>,
    /// Last log index.
    pub raft_index: u64,
    /// Last applied log index.
    pub applied_index: u64,
    /// Whether this member is a learner.
    pub is_learner: bool,
}

impl ReplicaStatus {
    /// Whether this member leads (and so keeps lease deadlines).
    pub fn is_leader(&self) -> bool {
        self.leader == Some(self.member_id)
    }
}

/// One member of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// Member id.
    pub id: u64,
    /// Name; empty for a member added but not yet started.
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs.
    pub client_urls: Vec<String>,
    /// Learner or voter.
    pub is_learner: bool,
}

/// A member after a membership change, with the whole list.
pub type MemberChange = (Member, Vec<Member>);

/// A replicated (or single) keyspace as the API layer uses it.
///
/// Futures are boxed so the trait stays object-safe: the server holds an `Arc<dyn Replica>`
/// and does not care which implementation is behind it.
pub trait Replica: Send + Sync + 'static {
    /// Proposes `command` and resolves once it is applied locally.
    fn write(&self, command: Command) -> BoxFuture<'_, Result<Applied, ReplicaError>>;
    /// Resolves once the local store has applied everything committed before the call,
    /// so a read after it is linearizable.
    fn read_barrier(&self) -> BoxFuture<'_, Result<(), ReplicaError>>;
    /// The local keyspace, for reads and watches.
    fn store(&self) -> &Store;
    /// Ids, term, leader and indexes.
    fn status(&self) -> ReplicaStatus;
    /// Every member.
    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>>;
    /// Where the leader serves the client API, when this member is not the leader and knows
    /// it: requests that need the leader's own state (lease deadlines) are forwarded there.
    fn leader_url(&self) -> Option<String> {
        None
    }
    /// Adds a member (as a learner, or as a voter).
    fn add_member(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> BoxFuture<'_, Result<MemberChange, ReplicaError>> {
        let _ = (peer_urls, is_learner);
        unsupported("member add")
    }
    /// Removes a member; returns the remaining ones.
    fn remove_member(&self, id: u64) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        let _ = id;
        unsupported("member remove")
    }
    /// Promotes a learner to voter; returns every member.
    fn promote_member(&self, id: u64) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        let _ = id;
        unsupported("member promote")
    }
    /// Changes a member's peer URLs; returns every member.
    fn update_member(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        let _ = (id, peer_urls);
        unsupported("member update")
    }
    /// What the replica measures about its consensus, if it has any (for `/metrics`).
    fn observer(&self) -> Option<keel_raft::Observer> {
        None
    }
    /// Hands the leadership to voter `target` (etcd's MoveLeader); on the leader only.
    fn transfer_leadership(&self, target: u64) -> BoxFuture<'_, Result<(), ReplicaError>> {
        let _ = target;
        unsupported("leadership transfer")
    }
}

fn unsupported<T: Send + 'static>(what: &str) -> BoxFuture<'static, Result<T, ReplicaError>> {
    let error = ReplicaError::Unimplemented(format!("{what} is not supported by this member"));
    Box::pin(async move { Err(error) })
}

/// A stable, non-zero 64-bit id from some strings (FNV-1a), so a member keeps its id across
/// restarts without storing it and every member derives the same cluster id.
pub fn derive_id<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash.max(1)
}

/// A cluster of one: it is always the leader, its term is 1, and it applies each command
/// directly to its store, flushing before it answers.
pub struct LocalReplica {
    store: Store,
    member: Member,
    cluster_id: u64,
    /// Serializes writes: commands must reach the store one at a time and in the order their
    /// index says. A tokio mutex, because it is held across the blocking apply.
    write_order: tokio::sync::Mutex<()>,
    /// The index of the last applied command; persisted as the store's marker, so it survives
    /// restarts like a Raft log index would.
    applied_index: AtomicU64,
}

impl LocalReplica {
    /// Wraps `store`, resuming the index from its marker.
    pub fn new(store: Store, member: Member) -> keel_store::Result<Self> {
        let applied_index = store
            .marker()?
            .and_then(|m| <[u8; 8]>::try_from(m.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        let cluster_id = derive_id(
            std::iter::once("keel-single")
                .chain(member.peer_urls.iter().map(String::as_str))
                .chain(std::iter::once(member.name.as_str())),
        );
        Ok(LocalReplica {
            store,
            member,
            cluster_id,
            write_order: tokio::sync::Mutex::new(()),
            applied_index: AtomicU64::new(applied_index),
        })
    }

    /// A replica over a temporary store, for tests and examples.
    pub fn temporary() -> keel_store::Result<Self> {
        let store = Store::temporary(keel_store::Config::default())?;
        let member = Member {
            id: derive_id(["default", "http://127.0.0.1:2380"]),
            name: "default".into(),
            peer_urls: vec!["http://127.0.0.1:2380".into()],
            client_urls: vec!["http://127.0.0.1:2379".into()],
            is_learner: false,
        };
        LocalReplica::new(store, member)
    }
}

impl Replica for LocalReplica {
    fn write(&self, command: Command) -> BoxFuture<'_, Result<Applied, ReplicaError>> {
        Box::pin(async move {
            let _order = self.write_order.lock().await;
            let index = self.applied_index.load(Ordering::SeqCst) + 1;
            let store = self.store.clone();
            let applied = tokio::task::spawn_blocking(move || {
                let applied = store.apply(&command, Some(&index.to_be_bytes()))?;
                // Flushed before the client hears back: with no peers holding a copy, an
                // acknowledged write must survive a crash of this process (etcd fsyncs too).
                store.flush()?;
                Ok::<_, keel_store::Error>(applied)
            })
            .await
            .map_err(|e| ReplicaError::Fatal(format!("apply task failed: {e}")))?
            .map_err(|e| ReplicaError::Fatal(e.to_string()))?;
            self.applied_index.store(index, Ordering::SeqCst);
            Ok(applied)
        })
    }

    fn read_barrier(&self) -> BoxFuture<'_, Result<(), ReplicaError>> {
        // Every write is applied before its future resolves, so the store is always current.
        Box::pin(async { Ok(()) })
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn status(&self) -> ReplicaStatus {
        let index = self.applied_index.load(Ordering::SeqCst);
        ReplicaStatus {
            member_id: self.member.id,
            cluster_id: self.cluster_id,
            raft_term: 1,
            leader: Some(self.member.id),
            raft_index: index,
            applied_index: index,
            is_learner: false,
        }
    }

    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        let members = vec![self.member.clone()];
        Box::pin(async move { Ok(members) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derive_id(["a", "b"]), derive_id(["a", "b"]));
        assert_ne!(derive_id(["a", "b"]), derive_id(["ab"]));
        assert_ne!(derive_id([]), 0);
    }
}
