//! [`RaftReplica`]: the [`Replica`] of a cluster member, over keel-raft's [`RaftNode`].
//!
//! Member ids are derived from the cluster token and the member's first peer URL (see
//! [`member_id`]), so every member computes the same ids from `initial-cluster`, and a member
//! added with `member add` knows its own id when it starts with `initial-cluster-state existing`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use keel_raft::{KeelNode, RaftNode};
use keel_store::{Applied, Command, Store};
use openraft::ChangeMembers;

use crate::replica::{derive_id, Member, MemberChange, Replica, ReplicaError, ReplicaStatus};

/// The id of the member whose first peer URL is `peer_url`, in the cluster named by `token`.
pub fn member_id(token: &str, peer_url: &str) -> u64 {
    derive_id([token, normalize_url(peer_url)])
}

/// The cluster id: every member derives the same one from the token and the initial members.
pub fn cluster_id(token: &str, initial_peer_urls: &[String]) -> u64 {
    let mut urls: Vec<&str> = initial_peer_urls.iter().map(|u| normalize_url(u)).collect();
    urls.sort_unstable();
    derive_id(std::iter::once(token).chain(urls))
}

/// `http://a:1/` and `http://a:1` name the same member.
fn normalize_url(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// A cluster member as the API layer sees it.
pub struct RaftReplica {
    node: Arc<RaftNode>,
    cluster_id: u64,
    cluster_token: String,
    /// Member names known from `initial-cluster` (etcd learns names when members publish
    /// themselves; members added later show an empty name until then, as in etcd).
    names: BTreeMap<u64, String>,
    /// This member's advertised client URLs: the initial membership holds only the
    /// initializer's, so each member fills in its own when listing.
    client_urls: Vec<String>,
    /// How long one write or read barrier may take before the client gets a timeout.
    request_timeout: Duration,
}

impl RaftReplica {
    /// Wraps `node`. `names` maps member ids to names; `client_urls` are this member's.
    pub fn new(
        node: Arc<RaftNode>,
        cluster_id: u64,
        cluster_token: String,
        names: BTreeMap<u64, String>,
        client_urls: Vec<String>,
        request_timeout: Duration,
    ) -> Self {
        RaftReplica {
            node,
            cluster_id,
            cluster_token,
            names,
            client_urls,
            request_timeout,
        }
    }

    /// The Raft member behind this replica.
    pub fn node(&self) -> &Arc<RaftNode> {
        &self.node
    }

    fn member_list(&self) -> Vec<Member> {
        let own_id = self.node.id();
        self.node
            .members()
            .into_iter()
            .map(|member| Member {
                id: member.id,
                name: self.names.get(&member.id).cloned().unwrap_or_default(),
                peer_urls: non_empty(&member.node.peer_addr),
                client_urls: if !member.node.client_addr.is_empty() {
                    vec![member.node.client_addr]
                } else if member.id == own_id {
                    self.client_urls.clone()
                } else {
                    Vec::new()
                },
                is_learner: member.is_learner,
            })
            .collect()
    }

    fn voters(&self) -> BTreeSet<u64> {
        self.node
            .members()
            .into_iter()
            .filter(|m| !m.is_learner)
            .map(|m| m.id)
            .collect()
    }

    async fn change(&self, change: ChangeMembers<u64, KeelNode>) -> Result<(), ReplicaError> {
        self.require_leader()?;
        let changed = self.node.change_members(change);
        match tokio::time::timeout(self.request_timeout, changed).await {
            Err(_) => Err(ReplicaError::Timeout),
            Ok(Ok(())) => Ok(()),
            Ok(Err(keel_raft::Error::Membership(e))) => Err(ReplicaError::MembershipRefused(
                format!("etcdserver: membership change refused: {e}"),
            )),
            Ok(Err(e)) => Err(self.map_error(e)),
        }
    }

    /// Membership changes are made by the leader; elsewhere the client is told where it is.
    fn require_leader(&self) -> Result<(), ReplicaError> {
        let status = self.status();
        if status.is_leader() {
            return Ok(());
        }
        Err(self.not_leader(status.leader))
    }

    fn not_leader(&self, leader_id: Option<u64>) -> ReplicaError {
        let Some(leader_id) = leader_id else {
            return ReplicaError::NoLeader;
        };
        // Members serve the client API on their peer listener too, and forwarding is
        // member-to-member traffic: the peer URL is always known, and with TLS it is where the
        // forwarding member's peer certificate is trusted (the client listener may trust
        // another CA), as etcd forwards over its peer transport. Client URLs come after.
        let leader_client_urls = self
            .member_list()
            .into_iter()
            .find(|m| m.id == leader_id)
            .map(|m| m.peer_urls.into_iter().chain(m.client_urls).collect())
            .unwrap_or_default();
        ReplicaError::NotLeader {
            leader_id: Some(leader_id),
            leader_client_urls,
        }
    }

    fn map_error(&self, e: keel_raft::Error) -> ReplicaError {
        match e {
            keel_raft::Error::ForwardToLeader { leader_id, .. } => self.not_leader(leader_id),
            keel_raft::Error::Unavailable(_) => ReplicaError::NoLeader,
            // etcd answers a proposal whose fate is unknown with "request timed out" too.
            keel_raft::Error::Indeterminate(_) => ReplicaError::Timeout,
            keel_raft::Error::Membership(message) => ReplicaError::MembershipRefused(message),
            keel_raft::Error::BadTransferee(_) => ReplicaError::BadLeaderTransferee,
            other => ReplicaError::Fatal(other.to_string()),
        }
    }
}

impl RaftReplica {
    /// On the leader: learns the client URLs of members whose entry lacks them (the initial
    /// membership holds only the initializer's; `member add` knows peer URLs only) by asking
    /// each member's own API, served on its peer URL too, and records them in the membership,
    /// so `member list` shows every member's client URLs as etcd does once members publish.
    pub async fn publish_client_urls(&self, http: &reqwest::Client) {
        if !self.status().is_leader() {
            return;
        }
        let own_id = self.node.id();
        let missing: Vec<(u64, String)> = self
            .node
            .members()
            .into_iter()
            .filter(|m| m.node.client_addr.is_empty())
            .map(|m| (m.id, m.node.peer_addr))
            .collect();
        let mut found = BTreeMap::new();
        for (id, peer_url) in missing {
            let client_url = if id == own_id {
                self.client_urls.first().cloned()
            } else {
                ask_client_url(http, &peer_url, id).await
            };
            if let Some(client_url) = client_url {
                found.insert(id, KeelNode::new(peer_url, client_url));
            }
        }
        if found.is_empty() {
            return;
        }
        if let Err(e) = self.change(ChangeMembers::SetNodes(found)).await {
            tracing::debug!("cannot record members' client URLs yet: {e}");
        }
    }
}

/// The client URL member `id` reports for itself, asked at its peer URL.
async fn ask_client_url(http: &reqwest::Client, peer_url: &str, id: u64) -> Option<String> {
    let url = format!("{}/v3/cluster/member/list", peer_url.trim_end_matches('/'));
    let answer: serde_json::Value = http
        .post(url)
        .timeout(Duration::from_secs(2))
        .body("{}")
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let id = id.to_string();
    answer["members"]
        .as_array()?
        .iter()
        .find(|m| m["ID"].as_str() == Some(id.as_str()))?["clientURLs"]
        .as_array()?
        .first()?
        .as_str()
        .map(str::to_owned)
}

fn non_empty(url: &str) -> Vec<String> {
    if url.is_empty() {
        Vec::new()
    } else {
        vec![url.to_owned()]
    }
}

impl Replica for RaftReplica {
    fn write(&self, command: Command) -> BoxFuture<'_, Result<Applied, ReplicaError>> {
        Box::pin(async move {
            match tokio::time::timeout(self.request_timeout, self.node.write(command)).await {
                Err(_) => Err(ReplicaError::Timeout),
                Ok(result) => result.map_err(|e| self.map_error(e)),
            }
        })
    }

    fn read_barrier(&self) -> BoxFuture<'_, Result<(), ReplicaError>> {
        Box::pin(async move {
            let barrier = self.node.linearizable_barrier();
            match tokio::time::timeout(self.request_timeout, barrier).await {
                Err(_) => Err(ReplicaError::Timeout),
                Ok(result) => result.map(|_| ()).map_err(|e| self.map_error(e)),
            }
        })
    }

    fn store(&self) -> &Store {
        self.node.store()
    }

    fn status(&self) -> ReplicaStatus {
        let metrics = self.node.metrics().borrow().clone();
        let is_learner = !metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == metrics.id);
        ReplicaStatus {
            member_id: metrics.id,
            cluster_id: self.cluster_id,
            raft_term: metrics.current_term,
            leader: metrics.current_leader,
            raft_index: metrics.last_log_index.unwrap_or(0),
            applied_index: metrics.last_applied.map(|l| l.index).unwrap_or(0),
            is_learner,
        }
    }

    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        Box::pin(async move { Ok(self.member_list()) })
    }

    fn leader_url(&self) -> Option<String> {
        let status = self.status();
        if status.is_leader() {
            return None;
        }
        match self.not_leader(status.leader) {
            ReplicaError::NotLeader {
                leader_client_urls, ..
            } => leader_client_urls.into_iter().next(),
            _ => None,
        }
    }

    fn add_member(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> BoxFuture<'_, Result<MemberChange, ReplicaError>> {
        Box::pin(async move {
            let Some(peer_url) = peer_urls.first() else {
                return Err(ReplicaError::Fatal("member add: no peer URL given".into()));
            };
            let existing = self.member_list();
            if existing
                .iter()
                .flat_map(|m| &m.peer_urls)
                .any(|u| normalize_url(u) == normalize_url(peer_url))
            {
                return Err(ReplicaError::PeerUrlExists);
            }
            self.require_leader()?;
            let id = member_id(&self.cluster_token, peer_url);
            let node = KeelNode::new(normalize_url(peer_url), "");
            // Not blocking: etcd's flow is `member add` first, then start the new member, so
            // it cannot have caught up yet.
            let added = self.node.raft().add_learner(id, node, false);
            match tokio::time::timeout(self.request_timeout, added).await {
                Err(_) => return Err(ReplicaError::Timeout),
                Ok(Err(e)) => return Err(ReplicaError::Fatal(format!("member add: {e}"))),
                Ok(Ok(_)) => {}
            }
            if !is_learner {
                let mut voters = self.voters();
                voters.insert(id);
                self.change(ChangeMembers::ReplaceAllVoters(voters)).await?;
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
            let members = self.member_list();
            let Some(member) = members.iter().find(|m| m.id == id) else {
                return Err(ReplicaError::MemberNotFound);
            };
            if member.is_learner {
                self.change(ChangeMembers::RemoveNodes(BTreeSet::from([id])))
                    .await?;
            } else {
                let mut voters = self.voters();
                voters.remove(&id);
                // Dropping the voter removes the node too (retain = false in `change`).
                self.change(ChangeMembers::ReplaceAllVoters(voters)).await?;
            }
            Ok(self.member_list())
        })
    }

    fn update_member(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        Box::pin(async move {
            let Some(peer_url) = peer_urls.first() else {
                return Err(ReplicaError::Fatal(
                    "member update: no peer URL given".into(),
                ));
            };
            let members = self.node.members();
            let Some(member) = members.iter().find(|m| m.id == id) else {
                return Err(ReplicaError::MemberNotFound);
            };
            if members
                .iter()
                .any(|m| m.id != id && normalize_url(&m.node.peer_addr) == normalize_url(peer_url))
            {
                return Err(ReplicaError::PeerUrlExists);
            }
            // The id stays what it was: it was derived from the first peer URL once, at
            // `member add` or from `initial-cluster`, and names the member from then on.
            let node = KeelNode::new(normalize_url(peer_url), member.node.client_addr.clone());
            self.change(ChangeMembers::SetNodes(BTreeMap::from([(id, node)])))
                .await?;
            Ok(self.member_list())
        })
    }

    fn observer(&self) -> Option<keel_raft::Observer> {
        Some(self.node.observer().clone())
    }

    fn transfer_leadership(&self, target: u64) -> BoxFuture<'_, Result<(), ReplicaError>> {
        Box::pin(async move {
            self.node
                .transfer_leadership(target)
                .await
                .map_err(|e| self.map_error(e))
        })
    }

    fn promote_member(&self, id: u64) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        Box::pin(async move {
            let members = self.member_list();
            match members.iter().find(|m| m.id == id) {
                None => return Err(ReplicaError::MemberNotFound),
                Some(m) if !m.is_learner => {
                    return Err(ReplicaError::MembershipRefused(
                        "etcdserver: can only promote a learner member".into(),
                    ))
                }
                Some(_) => {}
            }
            let mut voters = self.voters();
            voters.insert(id);
            self.change(ChangeMembers::ReplaceAllVoters(voters)).await?;
            Ok(self.member_list())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_do_not_depend_on_a_trailing_slash_or_the_order_of_members() {
        assert_eq!(
            member_id("t", "http://127.0.0.1:2380/"),
            member_id("t", "http://127.0.0.1:2380")
        );
        assert_ne!(
            member_id("t", "http://127.0.0.1:2380"),
            member_id("u", "http://127.0.0.1:2380")
        );
        let a = vec!["http://a:1".to_owned(), "http://b:1/".to_owned()];
        let b = vec!["http://b:1".to_owned(), "http://a:1".to_owned()];
        assert_eq!(cluster_id("t", &a), cluster_id("t", &b));
    }
}
