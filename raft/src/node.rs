//! [`RaftNode`]: one member of the cluster, the facade the server uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, InitializeError, RaftError};
use openraft::metrics::{RaftServerMetrics, WaitError};
use openraft::storage::RaftLogStorage as _;
use openraft::{ChangeMembers, RaftNetworkFactory, ServerState};
use tokio::sync::watch;

use crate::config::RaftConfig;
use crate::error::{Error, Result, WriteError};
use crate::forward::{self, LeaderLink, LinkError, Refusal};
use crate::forwarder::Forwarder;
use crate::log_store::LogStore;
use crate::observer::Observer;
use crate::proposer::Proposer;
use crate::read_index::{ReadIndex, SharedRounds};
use crate::state_machine::StateMachine;
use crate::types::{KeelNode, LogId, Raft, RaftMetrics, TypeConfig};

/// How many leaders a write or read is sent to before giving up: enough to follow a redirect
/// or two after an election, few enough to answer promptly when the cluster is in trouble.
const FORWARD_ATTEMPTS: usize = 4;

/// One member: its Raft, its log in `<data_dir>/raft`, its keyspace in `<data_dir>/kv` and its
/// last snapshot in `<data_dir>/snapshot`.
pub struct RaftNode {
    id: u64,
    data_dir: PathBuf,
    raft: Raft,
    store: keel_store::Store,
    log: LogStore,
    link: Arc<dyn LeaderLink>,
    /// This member's own linearizable reads share read-index rounds while it leads.
    read_index: ReadIndex,
    /// While another member leads, this member's linearizable reads share requests for the
    /// read index to it, as the leader's reads share rounds.
    forwarded_reads: SharedRounds<(u64, KeelNode), ForwardedRead>,
    /// This member's own writes share entries while it leads.
    proposer: Proposer,
    /// While another member leads, the writes this member forwards to it share requests.
    forwarder: Forwarder,
    /// The index of the last entry the state machine applied.
    applied: tokio::sync::watch::Receiver<Option<u64>>,
    timing: Timing,
    observer: Observer,
}

/// The leader's answer to a forwarded read-index request.
type ForwardedRead = std::result::Result<std::result::Result<Option<LogId>, Refusal>, LinkError>;

/// The bounds of forwarding, from [`RaftConfig`].
struct Timing {
    /// Longest wait for the leader's answer, and for this member to apply what it answered.
    request: Duration,
    /// Longest wait for a leader to appear: two election timeouts.
    leader_wait: Duration,
    /// How long to wait for a different leader after one refused, before trying it again.
    retry_backoff: Duration,
}

impl Timing {
    fn new(config: &RaftConfig) -> Timing {
        Timing {
            request: Duration::from_millis(config.request_timeout_ms),
            leader_wait: Duration::from_millis(2 * config.election_timeout_max_ms),
            retry_backoff: Duration::from_millis(2 * config.heartbeat_interval_ms),
        }
    }
}

/// One member of the cluster as the membership records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its id.
    pub id: u64,
    /// Its addresses.
    pub node: KeelNode,
    /// A learner receives the log but does not vote; otherwise it is a voter.
    pub is_learner: bool,
}

/// This member's view of the cluster, for `member list` and status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This member's id.
    pub id: u64,
    /// Leader, follower, candidate or learner.
    pub state: ServerState,
    /// The leader this member knows of.
    pub leader: Option<u64>,
    /// The current term (etcd's `raft_term`).
    pub term: u64,
    /// The index of the last entry in this member's log (0 if none).
    pub last_log_index: u64,
    /// The index of the last entry this member applied (etcd's `raft_applied_index`).
    pub applied_index: u64,
    /// The membership this member knows, in id order (during a change, the union of the old
    /// and new voters are voters).
    pub members: Vec<Member>,
}

impl RaftNode {
    /// Opens (or creates) member `id` in `data_dir` and starts its Raft, talking to peers through
    /// `network` ([`crate::HttpNetworkFactory`] in production), which also carries the writes
    /// and reads this member forwards to the leader. A member that has state in `data_dir`
    /// resumes from it; a new one waits for [`RaftNode::initialize`] or to be added to a
    /// cluster by its leader.
    pub async fn open<N>(
        id: u64,
        data_dir: impl AsRef<Path>,
        config: RaftConfig,
        network: N,
    ) -> Result<RaftNode>
    where
        N: RaftNetworkFactory<TypeConfig> + LeaderLink + Clone,
    {
        Self::open_with_store_config(id, data_dir, config, keel_store::Config::default(), network)
            .await
    }

    /// [`RaftNode::open`] with the keyspace's limits and tuning.
    pub async fn open_with_store_config<N>(
        id: u64,
        data_dir: impl AsRef<Path>,
        config: RaftConfig,
        store_config: keel_store::Config,
        network: N,
    ) -> Result<RaftNode>
    where
        N: RaftNetworkFactory<TypeConfig> + LeaderLink + Clone,
    {
        let raft_config = config.to_openraft()?;
        let data_dir = data_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&data_dir)?;
        let observer = Observer::default();
        let log = LogStore::open(data_dir.join("raft"))?.observed_by(observer.clone());
        let store = keel_store::Store::open(data_dir.join("kv"), store_config)?;
        let mut state_machine = StateMachine::open(store.clone(), data_dir.join("snapshot"))?
            .observed_by(observer.clone());
        let mut log = log.gated_by(state_machine.durable_applied());
        let storage =
            |e: crate::types::StorageError| Error::Fatal(format!("opening the data dir: {e}"));
        let log_state = log.get_log_state().await.map_err(storage)?;
        state_machine
            .recover_interrupted_install(log_state.last_log_id)
            .await
            .map_err(storage)?;
        let applied = state_machine.applied_index();
        let applied_index = *applied.borrow();
        if let Some(purged) = log_state.last_purged_log_id {
            // Only a keyspace rebuilt after a crash, with its snapshot gone, can be behind the
            // log's start: the entries in between are lost to this member.
            if applied_index.is_none_or(|index| index < purged.index) {
                return Err(Error::Fatal(format!(
                    "the keyspace holds entries up to {applied_index:?} but the Raft log starts \
                     after {}: remove this member's data directory and add it again",
                    purged.index
                )));
            }
        }
        let link: Arc<dyn LeaderLink> = Arc::new(network.clone());
        let raft = Raft::new(id, raft_config, network, log.clone(), state_machine).await?;
        tokio::spawn(count_leader_changes(
            raft.server_metrics(),
            observer.clone(),
        ));
        let read_index = ReadIndex::new(raft.clone());
        let timing = Timing::new(&config);
        let forwarded_reads = {
            let (link, timeout) = (link.clone(), timing.request);
            SharedRounds::new(move |(leader, node): (u64, KeelNode)| {
                link.read_index(leader, &node, timeout)
            })
        };
        let proposer = Proposer::new(raft.clone());
        let forwarder = Forwarder::new(link.clone(), timing.request);
        Ok(RaftNode {
            id,
            data_dir,
            raft,
            store,
            log,
            link,
            read_index,
            forwarded_reads,
            proposer,
            forwarder,
            applied,
            timing,
            observer,
        })
    }

    /// What this member measures about its Raft (apply and fsync durations, leader changes).
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// This member's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The directory this member keeps its state in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether this member has a log or a vote (was initialized, or joined a cluster).
    pub async fn is_initialized(&self) -> Result<bool> {
        Ok(self.raft.is_initialized().await?)
    }

    /// Makes `members` the first voters of a new cluster. Call it on one member only, once;
    /// [`Error::AlreadyInitialized`] if this member already has a log or a vote.
    pub async fn initialize(&self, members: BTreeMap<u64, KeelNode>) -> Result<()> {
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(Error::AlreadyInitialized)
            }
            Err(RaftError::APIError(e @ InitializeError::NotInMembers(_))) => {
                Err(Error::Membership(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(e.into()),
        }
    }

    /// Replicates `command` and returns what applying it returned, on any member.
    ///
    /// On the leader, returns once a quorum has the entry and the leader has applied it; the
    /// entry may hold other writes that were waiting at the same time, each applied at its own
    /// revision with its own outcome (see [`crate::proposer`]). On a
    /// follower or learner, forwards the command to the leader (see [`crate::forward`]) and
    /// returns the leader's answer once this member has applied the entry too, so a read from
    /// [`RaftNode::store`] right after sees the write (if this member lags by more than the
    /// request timeout, it returns anyway: the write is committed).
    ///
    /// Errors: [`Error::Unavailable`] if no leader appears within two election timeouts or a
    /// few redirects, or it has no quorum; nothing was applied. [`Error::Indeterminate`] if
    /// the leader took the write but did not answer within the request timeout.
    pub async fn write(
        &self,
        command: keel_store::Command,
    ) -> Result<keel_store::Applied, WriteError> {
        let mut leader = self.await_leader(None).await?;
        let mut last_refusal = String::new();
        for _ in 0..FORWARD_ATTEMPTS {
            let (id, node) = leader;
            let refused = if id == self.id {
                match tokio::time::timeout(
                    self.timing.request,
                    forward::leader_write(&self.proposer, command.clone()),
                )
                .await
                {
                    Ok(Ok(written)) => return Ok(written.applied),
                    Ok(Err(Error::ForwardToLeader { leader_id, leader })) => {
                        Refusal::ForwardToLeader { leader_id, leader }
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        return Err(Error::Indeterminate(format!(
                            "not committed within {:?}",
                            self.timing.request
                        )))
                    }
                }
            } else {
                let answer = self.forwarder.forward(id, &node, command.clone()).await;
                match answer {
                    Ok(Ok(written)) => {
                        self.await_applied(written.log_index).await;
                        return Ok(written.applied);
                    }
                    Ok(Err(refusal @ Refusal::ForwardToLeader { .. })) => refusal,
                    Ok(Err(Refusal::Unavailable(reason))) => {
                        return Err(Error::Unavailable(reason))
                    }
                    Ok(Err(Refusal::Failed(reason))) => return Err(Error::Indeterminate(reason)),
                    Err(LinkError::NoAnswer(reason)) => return Err(Error::Indeterminate(reason)),
                    Err(LinkError::NotSent(reason)) => Refusal::Unavailable(reason),
                }
            };
            last_refusal = format!("{id}: {refused}");
            leader = self.next_leader(id, refused).await?;
        }
        Err(Error::Unavailable(format!(
            "no leader took the write after {FORWARD_ATTEMPTS} attempts; last, {last_refusal}"
        )))
    }

    /// The read-index rounds this member's own linearizable reads share while it leads.
    pub fn read_index(&self) -> &ReadIndex {
        &self.read_index
    }

    /// How many read-index requests this member's linearizable reads sent to another member
    /// that led: fewer than the reads when reads overlap.
    pub fn forwarded_read_rounds(&self) -> u64 {
        self.forwarded_reads.rounds()
    }

    /// Waits until a read from [`RaftNode::store`] afterwards is linearizable, on any member:
    /// the leader confirms with a quorum that it still leads and names its commit index (the
    /// read index), and this member waits until it has applied up to it. Returns the read
    /// index's log id.
    ///
    /// Errors: [`Error::Unavailable`] if no leader, no quorum, or this member did not catch up
    /// with the read index within the request timeout.
    pub async fn linearizable_barrier(&self) -> Result<Option<LogId>, WriteError> {
        let mut leader = self.await_leader(None).await?;
        let mut last_refusal = String::new();
        for _ in 0..FORWARD_ATTEMPTS {
            let (id, node) = leader;
            let answer = if id == self.id {
                tokio::time::timeout(
                    self.timing.request,
                    forward::leader_read_index(&self.read_index),
                )
                .await
                .map_err(|_| {
                    LinkError::NoAnswer(format!(
                        "no quorum confirmed the leadership of {} within {:?}",
                        self.id, self.timing.request
                    ))
                })
                .map(|read| read.map_err(Refusal::from))
            } else {
                self.forwarded_reads.round((id, node)).await
            };
            let refused = match answer {
                Ok(Ok(read_log_id)) => {
                    let index = read_log_id.map(|l| l.index);
                    return match self.wait_applied(index).await {
                        Ok(()) => Ok(read_log_id),
                        Err(WaitError::ShuttingDown) => Err(Error::Fatal("shutting down".into())),
                        Err(WaitError::Timeout(..)) => Err(Error::Unavailable(format!(
                            "member {} did not apply up to the read index {index:?} within {:?}",
                            self.id, self.timing.request
                        ))),
                    };
                }
                Ok(Err(refusal @ Refusal::ForwardToLeader { .. })) => refusal,
                Ok(Err(Refusal::Failed(reason))) if id == self.id => {
                    return Err(Error::Fatal(reason))
                }
                Ok(Err(Refusal::Unavailable(reason) | Refusal::Failed(reason))) => {
                    return Err(Error::Unavailable(reason))
                }
                // A leader that let a whole request timeout pass will not do better on a retry.
                Err(LinkError::NoAnswer(reason)) => return Err(Error::Unavailable(reason)),
                Err(LinkError::NotSent(reason)) => Refusal::Unavailable(reason),
            };
            last_refusal = format!("{id}: {refused}");
            leader = self.next_leader(id, refused).await?;
        }
        Err(Error::Unavailable(format!(
            "no leader confirmed a read index after {FORWARD_ATTEMPTS} attempts; last, {last_refusal}"
        )))
    }

    /// The leader to try after `tried` refused or could not be reached: the one it named, or
    /// else (preferably another) one this member learns of.
    async fn next_leader(&self, tried: u64, refused: Refusal) -> Result<(u64, KeelNode)> {
        if let Refusal::ForwardToLeader {
            leader_id: Some(id),
            leader: Some(node),
        } = refused
        {
            if id != tried {
                return Ok((id, node));
            }
        }
        self.await_leader(Some(tried)).await
    }

    /// Waits for this member to know a leader (not `avoid`, for a short while, if given) and
    /// returns it with its addresses. [`Error::Unavailable`] after two election timeouts.
    async fn await_leader(&self, avoid: Option<u64>) -> Result<(u64, KeelNode)> {
        let known = |m: &RaftMetrics, avoid: Option<u64>| -> Option<(u64, KeelNode)> {
            let id = m.current_leader.filter(|id| Some(*id) != avoid)?;
            let node = m.membership_config.membership().get_node(&id)?;
            Some((id, node.clone()))
        };
        if avoid.is_some() {
            // Give the cluster a moment to elect someone else, then try the same one again
            // (its refusal may have been a blip, or it may not know it was deposed yet).
            let wait = self.raft.wait(Some(self.timing.retry_backoff));
            if let Ok(m) = wait
                .metrics(|m| known(m, avoid).is_some(), "a new leader")
                .await
            {
                return Ok(known(&m, avoid).expect("checked by the wait"));
            }
        }
        let wait = self.raft.wait(Some(self.timing.leader_wait));
        match wait.metrics(|m| known(m, None).is_some(), "a leader").await {
            Ok(m) => Ok(known(&m, None).expect("checked by the wait")),
            Err(WaitError::Timeout(..)) => Err(Error::Unavailable(format!(
                "member {} knows no leader after {:?}",
                self.id, self.timing.leader_wait
            ))),
            Err(WaitError::ShuttingDown) => Err(Error::Fatal("shutting down".into())),
        }
    }

    /// Waits, for at most the request timeout, until this member has applied `index`.
    async fn wait_applied(&self, index: Option<u64>) -> std::result::Result<(), WaitError> {
        let mut applied = self.applied.clone();
        let waited = tokio::time::timeout(self.timing.request, applied.wait_for(|a| *a >= index))
            .await
            .map(|reached| reached.map(|_| ()));
        match waited {
            Ok(Ok(())) => Ok(()),
            // The state machine, and the Raft with it, is gone.
            Ok(Err(_)) => Err(WaitError::ShuttingDown),
            Err(_) => Err(WaitError::Timeout(
                self.timing.request,
                format!("applied index at least {index:?}"),
            )),
        }
    }

    /// Waits (bounded) until this member has applied `index`, for read-your-writes.
    async fn await_applied(&self, index: u64) {
        if let Err(e) = self.wait_applied(Some(index)).await {
            tracing::warn!(
                "member {} has not applied its forwarded write at {index}: {e}",
                self.id
            );
        }
    }

    /// The keyspace as applied on this member (reads, watches, hash_kv).
    pub fn store(&self) -> &keel_store::Store {
        &self.store
    }

    /// Hands the leadership to voter `target` (etcd's MoveLeader); on the leader,
    /// [`Error::ForwardToLeader`] elsewhere, [`Error::BadTransferee`] if `target` is not a voter.
    ///
    /// openraft 0.9 has no transfer of its own, so: wait until `target` has matched the leader's
    /// whole log (so it can win the vote), ask it over the peer network to campaign now, and
    /// wait until this member sees it lead. The ask is repeated while time remains, as the
    /// first vote may be refused by members whose leader lease has not expired yet.
    /// [`Error::Unavailable`] if `target` does not lead within two leader waits, or the request
    /// timeout if that is longer (etcd gives MoveLeader its request timeout): a refused first
    /// vote costs the old leader's step-down and a new election, which on a busy machine can
    /// take longer than two leader waits of short election timeouts.
    pub async fn transfer_leadership(&self, target: u64) -> Result<()> {
        let allowed = (2 * self.timing.leader_wait).max(self.timing.request);
        let deadline = tokio::time::Instant::now() + allowed;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let node = match membership.get_node(&target) {
            Some(node) if membership.voter_ids().any(|id| id == target) => node.clone(),
            _ => return Err(Error::BadTransferee(target)),
        };
        if let Some((leader_id, leader)) = led_elsewhere(&metrics) {
            return Err(Error::ForwardToLeader { leader_id, leader });
        }
        if target == self.id {
            return Ok(());
        }
        let caught_up = |m: &RaftMetrics| {
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&target).cloned().flatten())
                .map(|log_id| log_id.index);
            matched.is_some() && matched == m.last_log_index
        };
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Err(e) = self
            .raft
            .wait(Some(remaining))
            .metrics(caught_up, "the transferee to catch up")
            .await
        {
            return Err(Error::Unavailable(format!(
                "leader transferee {target} did not catch up: {e}"
            )));
        }
        loop {
            match self.link.campaign(target, &node, self.timing.request).await {
                Ok(Ok(())) => {}
                Ok(Err(refusal)) => tracing::debug!("{target} did not campaign: {refusal}"),
                Err(e) => tracing::debug!("{target} was not asked to campaign: {e}"),
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait = self
                .raft
                .wait(Some(remaining.min(self.timing.retry_backoff)));
            match wait.current_leader(target, "the transferee to lead").await {
                Ok(_) => return Ok(()),
                Err(WaitError::ShuttingDown) => return Err(Error::Fatal("shutting down".into())),
                Err(WaitError::Timeout(..)) if remaining <= self.timing.retry_backoff => {
                    return Err(Error::Unavailable(format!(
                        "{target} did not become leader within {allowed:?}"
                    )))
                }
                Err(WaitError::Timeout(..)) => {}
            }
        }
    }

    /// Adds `node` as a learner and waits until it has caught up with the leader's log. On the
    /// leader; [`Error::ForwardToLeader`] elsewhere (as for every membership change).
    pub async fn add_learner(&self, id: u64, node: KeelNode) -> Result<()> {
        self.raft
            .add_learner(id, node, true)
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// Makes `voters` the voting members (each must already be a voter or a learner); members
    /// that are left out are removed from the cluster, not kept as learners.
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<()> {
        self.change_members(ChangeMembers::ReplaceAllVoters(voters))
            .await
    }

    /// Makes one membership change on the leader, members left out of the voters removed
    /// (`retain = false`). [`Error::ForwardToLeader`] elsewhere.
    ///
    /// openraft refuses a change while the last one is not known to be committed. A leader
    /// elected just after a change learns that it is only when an entry of its own term
    /// commits, so a refusal for that waits for such a commit (a read index) and tries once
    /// more: a change that is really still under way is refused again.
    pub async fn change_members(&self, change: ChangeMembers<u64, KeelNode>) -> Result<()> {
        match self.raft.change_membership(change.clone(), false).await {
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                ChangeMembershipError::InProgress(in_progress),
            ))) => {
                tracing::debug!("membership change waits for the last one: {in_progress}");
                self.raft
                    .ensure_linearizable()
                    .await
                    .map_err(forward::read_error)?;
            }
            done => {
                done.map_err(write_error)?;
                return Ok(());
            }
        }
        self.raft
            .change_membership(change, false)
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// Makes learner `id` a voter, keeping every other member as it is. On the leader;
    /// [`Error::Membership`] if `id` is not a learner.
    pub async fn promote_learner(&self, id: u64) -> Result<()> {
        // openraft takes a voter's "promotion" as a no-op; etcd refuses it, and so does keel.
        if !self.members().iter().any(|m| m.id == id && m.is_learner) {
            return Err(Error::Membership(format!("{id} is not a learner")));
        }
        self.change_members(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    /// Removes member `id`, voter or learner, from the cluster entirely. On the leader;
    /// [`Error::Membership`] if `id` is not a member.
    pub async fn remove_node(&self, id: u64) -> Result<()> {
        let is_voter = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            if membership.get_node(&id).is_none() {
                return Err(Error::Membership(format!("{id} is not a member")));
            }
            membership.voter_ids().any(|voter| voter == id)
        };
        let ids = BTreeSet::from([id]);
        // A voter is demoted and dropped in one change (`retain = false`); a learner is only
        // dropped.
        let change = if is_voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        self.change_members(change).await
    }

    /// The membership this member knows, in id order.
    pub fn members(&self) -> Vec<Member> {
        members(&self.raft.metrics().borrow())
    }

    /// This member's view of the cluster: role, leader, term, log and applied index, members.
    pub fn status(&self) -> Status {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        Status {
            id: self.id,
            state: metrics.state,
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            // The state machine's own count, which the keyspace already holds and reads wait
            // on; openraft's metrics learn of an apply a moment later.
            applied_index: self.applied.borrow().unwrap_or(0),
            members: members(&metrics),
        }
    }

    /// A live view of this member's Raft state (role, term, leader, applied index, membership).
    pub fn metrics(&self) -> watch::Receiver<RaftMetrics> {
        self.raft.metrics()
    }

    /// The leader this member currently knows of.
    pub fn current_leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// What [`crate::peer_routes`] serves: this member's Raft, proposer and read-index rounds.
    pub fn peer_endpoints(&self) -> crate::network::PeerEndpoints {
        crate::network::PeerEndpoints {
            raft: self.raft.clone(),
            proposer: self.proposer.clone(),
            read_index: self.read_index.clone(),
        }
    }

    /// The openraft handle, for what the facade does not cover (serving [`crate::peer_routes`],
    /// waiting on metrics, triggering snapshots).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Resolves when the Raft core has stopped, saying why: a fatal storage error, a panic
    /// (openraft's checks of the state it loads), or [`RaftNode::shutdown`]. A member whose
    /// core stopped can still answer from its last metrics, but never again replicates, votes
    /// or applies: the server exits on this, as etcd does on a fatal error, for its supervisor
    /// to restart it.
    ///
    /// It follows the server metrics, which change on a vote, role, leader or membership
    /// change only: the full metrics change with every append, commit and apply, and a task
    /// woken for each was a few percent of a member's CPU under load. The core's last full
    /// metrics say why it stopped; its channels close when it ends, whichever way.
    pub async fn stopped(&self) -> String {
        let mut server = self.raft.server_metrics();
        while server.changed().await.is_ok() {}
        match &self.raft.metrics().borrow().running_state {
            Err(fatal) => fatal.to_string(),
            Ok(()) => "the Raft core ended without reporting why (it panicked; see the log)".into(),
        }
    }

    /// Stops Raft and makes the keyspace and the log durable. The member must not be used after.
    pub async fn shutdown(&self) -> Result<()> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| Error::Fatal(e.to_string()))?;
        let store = self.store.clone();
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            store.flush()?;
            log.flush_blocking()?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Fatal(e.to_string()))?
    }
}

/// Counts every change of the leader this member knows (to another leader, or to none, as
/// etcd counts), until the Raft shuts down and its metrics channel closes. It follows the
/// server metrics, not the full ones (see [`RaftNode::stopped`] for why).
async fn count_leader_changes(
    mut metrics: watch::Receiver<RaftServerMetrics<u64, KeelNode>>,
    observer: Observer,
) {
    let mut leader = metrics.borrow().current_leader;
    while metrics.changed().await.is_ok() {
        let now = metrics.borrow().current_leader;
        if now != leader && now.is_some() {
            observer.leader_changes.inc();
        }
        leader = now;
    }
}

fn members(metrics: &RaftMetrics) -> Vec<Member> {
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| Member {
            id: *id,
            node: node.clone(),
            is_learner: !voters.contains(id),
        })
        .collect()
}

/// The leader (its id and addresses, as far as `metrics` know them) unless this member
/// believes it leads itself: what a [`Error::ForwardToLeader`] refusal names.
pub(crate) fn led_elsewhere(metrics: &RaftMetrics) -> Option<(Option<u64>, Option<KeelNode>)> {
    if metrics.current_leader == Some(metrics.id) {
        return None;
    }
    let leader = metrics.current_leader.and_then(|id| {
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .cloned()
    });
    Some((metrics.current_leader, leader))
}

pub(crate) fn write_error(e: RaftError<u64, ClientWriteError<u64, KeelNode>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => f.into(),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Error::Membership(e.to_string())
        }
        RaftError::Fatal(e) => e.into(),
    }
}
