//! [`RaftReplica`]: the [`Replica`] of a member of a Raft cluster, over keel-raft's
//! [`RaftNode`]. Writes and read barriers go through Raft; a follower answers them with
//! [`ReplicaError::NotLeader`] naming the leader, so the client can retry there.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;
use keel_raft::{KeelNode, RaftNode};
use keel_store::{Applied, Command, Store};

use crate::replica::{derive_id, Member, MemberChange, Replica, ReplicaError, ReplicaStatus};

/// One member of a Raft cluster as the API sees it.
pub struct RaftReplica {
    node: RaftNode,
    cluster_id: u64,
    /// Member names by id: Raft membership stores addresses only, names come from the
    /// configuration's `initial-cluster`.
    names: BTreeMap<u64, String>,
    /// This member's advertised client URLs. The initial membership cannot hold them (every
    /// member must initialize it identically, and knows only its own), so each member fills
    /// in its own when listing.
    client_urls: Vec<String>,
}

impl RaftReplica {
    /// Wraps a running member.
    pub fn new(
        node: RaftNode,
        cluster_id: u64,
        names: BTreeMap<u64, String>,
        client_urls: Vec<String>,
    ) -> Self {
        RaftReplica {
            node,
            cluster_id,
            names,
            client_urls,
        }
    }

    /// The wrapped member (to initialize, serve peers, shut down).
    pub fn node(&self) -> &RaftNode {
        &self.node
    }

    fn membership(&self) -> (BTreeSet<u64>, BTreeMap<u64, KeelNode>) {
        let metrics = self.node.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let voters = membership.voter_ids().collect();
        let nodes = membership
            .nodes()
            .map(|(id, node)| (*id, node.clone()))
            .collect();
        (voters, nodes)
    }

    fn member_list(&self) -> Vec<Member> {
        let (voters, nodes) = self.membership();
        nodes
            .into_iter()
            .map(|(id, node)| Member {
                id,
                name: self.names.get(&id).cloned().unwrap_or_default(),
                peer_urls: vec![node.peer_addr],
                client_urls: if !node.client_addr.is_empty() {
                    vec![node.client_addr]
                } else if id == self.node.id() {
                    self.client_urls.clone()
                } else {
                    Vec::new()
                },
                is_learner: !voters.contains(&id),
            })
            .collect()
    }
}

/// keel-raft's errors as the API layer's.
pub fn replica_error(e: keel_raft::Error) -> ReplicaError {
    match e {
        keel_raft::Error::ForwardToLeader {
            leader_id: None, ..
        } => ReplicaError::NoLeader,
        keel_raft::Error::ForwardToLeader { leader_id, leader } => ReplicaError::NotLeader {
            leader_id,
            // Members serve the client API on their peer listener as well, so the peer
            // address reaches the leader's API even before its client URL is known.
            leader_client_urls: leader
                .map(|l| {
                    if l.client_addr.is_empty() {
                        vec![l.peer_addr]
                    } else {
                        vec![l.client_addr]
                    }
                })
                .unwrap_or_default(),
        },
        // keel-raft forwards to the leader itself; what is left is "no leader / no quorum"
        // (nothing applied) and "no answer in time" (maybe applied), etcd's two 14s.
        keel_raft::Error::Unavailable(_) => ReplicaError::NoLeader,
        keel_raft::Error::Indeterminate(_) => ReplicaError::Timeout,
        keel_raft::Error::Membership(message) => ReplicaError::MembershipRefused(message),
        other => ReplicaError::Fatal(other.to_string()),
    }
}

impl Replica for RaftReplica {
    fn write(&self, command: Command) -> BoxFuture<'_, Result<Applied, ReplicaError>> {
        Box::pin(async move { self.node.write(command).await.map_err(replica_error) })
    }

    fn read_barrier(&self) -> BoxFuture<'_, Result<(), ReplicaError>> {
        Box::pin(async move {
            self.node
                .linearizable_barrier()
                .await
                .map(|_| ())
                .map_err(replica_error)
        })
    }

    fn store(&self) -> &Store {
        self.node.store()
    }

    fn status(&self) -> ReplicaStatus {
        let metrics = self.node.metrics();
        let metrics = metrics.borrow();
        let member_id = self.node.id();
        let is_learner = !metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == member_id);
        ReplicaStatus {
            member_id,
            cluster_id: self.cluster_id,
            raft_term: metrics.current_term,
            leader: metrics.current_leader,
            raft_index: metrics.last_log_index.unwrap_or(0),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            is_learner,
        }
    }

    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        Box::pin(async move { Ok(self.member_list()) })
    }

    fn leader_url(&self) -> Option<String> {
        let leader = self.node.current_leader()?;
        if leader == self.node.id() {
            return None;
        }
        let (_, nodes) = self.membership();
        let node = nodes.get(&leader)?;
        // Members serve the client API on their peer listener too (see `server::serve_peers`).
        Some(if node.client_addr.is_empty() {
            node.peer_addr.clone()
        } else {
            node.client_addr.clone()
        })
    }

    fn add_member(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> BoxFuture<'_, Result<MemberChange, ReplicaError>> {
        Box::pin(async move {
            let (voters, nodes) = self.membership();
            if nodes
                .values()
                .any(|node| peer_urls.contains(&node.peer_addr))
            {
                return Err(ReplicaError::PeerUrlExists);
            }
            let id = derive_id(peer_urls.iter().map(String::as_str));
            // The client URL is learned when the member starts; etcd also lists none until then.
            let node = KeelNode::new(peer_urls[0].clone(), "");
            self.node
                .add_learner(id, node)
                .await
                .map_err(replica_error)?;
            if !is_learner {
                let mut voters = voters;
                voters.insert(id);
                self.node
                    .change_membership(voters)
                    .await
                    .map_err(replica_error)?;
            }
            let members = self.member_list();
            let member = members
                .iter()
                .find(|m| m.id == id)
                .cloned()
                .ok_or(ReplicaError::MemberNotFound)?;
            Ok((member, members))
        })
    }

    fn remove_member(&self, id: u64) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        Box::pin(async move {
            if !self.membership().1.contains_key(&id) {
                return Err(ReplicaError::MemberNotFound);
            }
            self.node.remove_node(id).await.map_err(replica_error)?;
            Ok(self.member_list())
        })
    }

    fn promote_member(&self, id: u64) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        Box::pin(async move {
            let (voters, nodes) = self.membership();
            if !nodes.contains_key(&id) {
                return Err(ReplicaError::MemberNotFound);
            }
            if voters.contains(&id) {
                return Err(ReplicaError::MembershipRefused(
                    "etcdserver: can only promote a learner member".into(),
                ));
            }
            self.node.promote_learner(id).await.map_err(replica_error)?;
            Ok(self.member_list())
        })
    }
}
