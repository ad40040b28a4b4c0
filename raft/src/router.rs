//! An in-process network for tests and benches: members call each other's [`Raft`] directly,
//! and the router can isolate a member, split the cluster into groups, drop a fraction of
//! messages and delay every message, then heal.
//!
//! An isolated or partitioned-off peer is reported `Unreachable` (openraft backs off); a dropped
//! message is reported as a network error (openraft retries on its next heartbeat).
//!
//! A snapshot travels as openraft's chunked install-snapshot RPCs, as over HTTP, each chunk
//! subject to the rules.
//!
//! Forwarded writes and read-index requests ([`crate::forward`]) take the same routes: a
//! blocked or dropped one is [`LinkError::NotSent`], one that outlives its timeout is
//! [`LinkError::NoAnswer`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use crate::forward::{self, LeaderLink, LinkError, Refusal, Written};
use crate::types::{KeelNode, LogId, Raft, TypeConfig};

#[derive(Default)]
struct Rules {
    members: BTreeMap<u64, Raft>,
    isolated: BTreeSet<u64>,
    /// Member -> group; members in different groups cannot talk. Empty: no partition.
    groups: BTreeMap<u64, usize>,
    drop_rate: f64,
    delay: Duration,
    /// Extra delay of every message to a member.
    delay_to: BTreeMap<u64, Duration>,
}

/// The shared switchboard. Clones share the same members and rules.
#[derive(Clone, Default)]
pub struct Router {
    // A std mutex: it is held only to read or change the rules, never across an await.
    rules: Arc<Mutex<Rules>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Cut(String);

enum Blocked {
    Unreachable(Unreachable),
    Dropped(NetworkError),
}

impl Blocked {
    fn rpc<E: std::error::Error>(self) -> RPCError<u64, KeelNode, E> {
        match self {
            Blocked::Unreachable(e) => RPCError::Unreachable(e),
            Blocked::Dropped(e) => RPCError::Network(e),
        }
    }
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// The network factory member `id` gives openraft.
    pub fn network(&self, id: u64) -> RouterNetworkFactory {
        RouterNetworkFactory {
            router: self.clone(),
            source: id,
        }
    }

    /// Makes member `id` reachable through `raft` (again, after a restart).
    pub fn register(&self, id: u64, raft: Raft) {
        self.lock().members.insert(id, raft);
    }

    /// Removes member `id`, as if its process died: messages to it are unreachable.
    pub fn unregister(&self, id: u64) -> Option<Raft> {
        self.lock().members.remove(&id)
    }

    /// Cuts member `id` off from every other member.
    pub fn isolate(&self, id: u64) {
        self.lock().isolated.insert(id);
    }

    /// Splits the members into `groups`; only members of the same group can talk. A member in no
    /// group can talk to no one.
    pub fn partition(&self, groups: &[&[u64]]) {
        let mut rules = self.lock();
        rules.groups.clear();
        for (group, members) in groups.iter().enumerate() {
            for id in *members {
                rules.groups.insert(*id, group);
            }
        }
    }

    /// Drops each message with probability `rate` (0.0 to 1.0).
    pub fn set_drop_rate(&self, rate: f64) {
        self.lock().drop_rate = rate.clamp(0.0, 1.0);
    }

    /// Delays every message by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Delays every message to member `id` by `delay` more (so it lags behind the others).
    pub fn delay_to(&self, id: u64, delay: Duration) {
        self.lock().delay_to.insert(id, delay);
    }

    /// Removes every isolation, partition, drop rate and delay.
    pub fn heal(&self) {
        let mut rules = self.lock();
        rules.isolated.clear();
        rules.groups.clear();
        rules.drop_rate = 0.0;
        rules.delay = Duration::ZERO;
        rules.delay_to.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.rules
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The target's handle if a message from `source` may reach it now, and the delay to apply.
    fn route(&self, source: u64, target: u64) -> Result<(Raft, Duration), Blocked> {
        let rules = self.lock();
        let unreachable = |why: String| Err(Blocked::Unreachable(Unreachable::new(&Cut(why))));
        if rules.isolated.contains(&source) || rules.isolated.contains(&target) {
            return unreachable(format!("{source} -> {target}: isolated"));
        }
        if !rules.groups.is_empty()
            && rules
                .groups
                .get(&source)
                .is_none_or(|g| rules.groups.get(&target) != Some(g))
        {
            return unreachable(format!("{source} -> {target}: partitioned"));
        }
        let Some(raft) = rules.members.get(&target) else {
            return unreachable(format!("{target} is down"));
        };
        if rules.drop_rate > 0.0 && rand::random::<f64>() < rules.drop_rate {
            return Err(Blocked::Dropped(NetworkError::new(&Cut(format!(
                "{source} -> {target}: dropped"
            )))));
        }
        let delay = rules.delay + rules.delay_to.get(&target).copied().unwrap_or_default();
        Ok((raft.clone(), delay))
    }

    /// [`Router::reach`] for a forwarded request: anything blocked was never delivered.
    async fn deliver(&self, source: u64, target: u64) -> Result<Raft, LinkError> {
        self.reach(source, target)
            .await
            .map_err(|blocked| match blocked {
                Blocked::Unreachable(e) => LinkError::NotSent(e.to_string()),
                Blocked::Dropped(e) => LinkError::NotSent(e.to_string()),
            })
    }

    async fn reach(&self, source: u64, target: u64) -> Result<Raft, Blocked> {
        let (raft, delay) = self.route(source, target)?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(raft)
    }
}

/// [`RaftNetworkFactory`] and [`LeaderLink`] of one member on a [`Router`].
#[derive(Clone)]
pub struct RouterNetworkFactory {
    router: Router,
    source: u64,
}

impl RaftNetworkFactory<TypeConfig> for RouterNetworkFactory {
    type Network = RouterNetwork;

    async fn new_client(&mut self, target: u64, _node: &KeelNode) -> RouterNetwork {
        RouterNetwork {
            router: self.router.clone(),
            source: self.source,
            target,
        }
    }
}

impl LeaderLink for RouterNetworkFactory {
    fn forward_writes(
        &self,
        leader: u64,
        _node: &KeelNode,
        commands: Vec<keel_store::Command>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Result<Written, Refusal>>, LinkError>> {
        let (router, source) = (self.router.clone(), self.source);
        Box::pin(async move {
            let raft = router.deliver(source, leader).await?;
            // Not shared between calls: the router tests forwarding, not batching.
            let proposer = crate::proposer::Proposer::new(raft);
            tokio::time::timeout(timeout, forward::leader_writes(&proposer, commands))
                .await
                .map_err(|_| LinkError::NoAnswer(format!("{leader} did not answer in {timeout:?}")))
        })
    }

    fn read_index(
        &self,
        leader: u64,
        _node: &KeelNode,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Result<Option<LogId>, Refusal>, LinkError>> {
        let (router, source) = (self.router.clone(), self.source);
        Box::pin(async move {
            let raft = router.deliver(source, leader).await?;
            // Not shared between calls: the router tests forwarding, not batching.
            let read_index = crate::read_index::ReadIndex::new(raft);
            tokio::time::timeout(timeout, forward::leader_read_index(&read_index))
                .await
                .map(|answer| answer.map_err(Refusal::from))
                .map_err(|_| LinkError::NoAnswer(format!("{leader} did not answer in {timeout:?}")))
        })
    }

    fn campaign(
        &self,
        target: u64,
        _node: &KeelNode,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Result<(), Refusal>, LinkError>> {
        let (router, source) = (self.router.clone(), self.source);
        Box::pin(async move {
            let raft = router.deliver(source, target).await?;
            tokio::time::timeout(timeout, forward::campaign(&raft))
                .await
                .map(|answer| answer.map_err(Refusal::from))
                .map_err(|_| LinkError::NoAnswer(format!("{target} did not answer in {timeout:?}")))
        })
    }
}

/// The link from one member to one peer on a [`Router`].
pub struct RouterNetwork {
    router: Router,
    source: u64,
    target: u64,
}

impl RaftNetwork<TypeConfig> for RouterNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, KeelNode, RaftError<u64>>> {
        let raft = self
            .router
            .reach(self.source, self.target)
            .await
            .map_err(Blocked::rpc)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, KeelNode, RaftError<u64, InstallSnapshotError>>,
    > {
        let raft = self
            .router
            .reach(self.source, self.target)
            .await
            .map_err(Blocked::rpc)?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, KeelNode, RaftError<u64>>> {
        let raft = self
            .router
            .reach(self.source, self.target)
            .await
            .map_err(Blocked::rpc)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    /// Short, so a healed partition converges quickly in tests.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(50)))
    }
}
