//! [`RaftNode`]: one member of the cluster, the facade the server uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::RaftNetworkFactory;
use tokio::sync::watch;

use crate::config::RaftConfig;
use crate::error::{Error, Result, WriteError};
use crate::log_store::LogStore;
use crate::state_machine::StateMachine;
use crate::types::{KeelNode, LogId, Raft, RaftMetrics, Request, TypeConfig};

/// One member: its Raft, its log in `<data_dir>/raft`, its keyspace in `<data_dir>/kv` and its
/// last snapshot in `<data_dir>/snapshot`.
pub struct RaftNode {
    id: u64,
    data_dir: PathBuf,
    raft: Raft,
    store: keel_store::Store,
    log: LogStore,
}

impl RaftNode {
    /// Opens (or creates) member `id` in `data_dir` and starts its Raft, talking to peers through
    /// `network` ([`crate::HttpNetworkFactory`] in production). A member that has state in
    /// `data_dir` resumes from it; a new one waits for [`RaftNode::initialize`] or to be added
    /// to a cluster by its leader.
    pub async fn open<N>(
        id: u64,
        data_dir: impl AsRef<Path>,
        config: RaftConfig,
        network: N,
    ) -> Result<RaftNode>
    where
        N: RaftNetworkFactory<TypeConfig>,
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
        N: RaftNetworkFactory<TypeConfig>,
    {
        let raft_config = config.to_openraft()?;
        let data_dir = data_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&data_dir)?;
        let log = LogStore::open(data_dir.join("raft"))?;
        let store = keel_store::Store::open(data_dir.join("kv"), store_config)?;
        let state_machine = StateMachine::open(store.clone(), data_dir.join("snapshot"))?;
        let raft = Raft::new(id, raft_config, network, log.clone(), state_machine).await?;
        Ok(RaftNode {
            id,
            data_dir,
            raft,
            store,
            log,
        })
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

    /// Replicates `command` and returns what applying it returned, once a quorum has it and this
    /// member (the leader) has applied it. [`Error::ForwardToLeader`] on a follower.
    pub async fn write(
        &self,
        command: keel_store::Command,
    ) -> Result<keel_store::Applied, WriteError> {
        let response = self
            .raft
            .client_write(Request::from(command))
            .await
            .map_err(write_error)?;
        response.data.0.ok_or_else(|| {
            Error::Fatal(format!(
                "entry {} carried a command but applying it returned nothing",
                response.log_id
            ))
        })
    }

    /// Waits until this member is the leader of a quorum and has applied everything committed
    /// before the call; a read from [`RaftNode::store`] afterwards is linearizable.
    /// [`Error::ForwardToLeader`] on a follower.
    pub async fn linearizable_barrier(&self) -> Result<Option<LogId>, WriteError> {
        match self.raft.ensure_linearizable().await {
            Ok(log_id) => Ok(log_id),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(f.into()),
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                Err(Error::Unavailable(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(e.into()),
        }
    }

    /// The keyspace as applied on this member (reads, watches, hash_kv).
    pub fn store(&self) -> &keel_store::Store {
        &self.store
    }

    /// Adds `node` as a learner and waits until it has caught up with the leader's log.
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
        self.raft
            .change_membership(voters, false)
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// A live view of this member's Raft state (role, term, leader, applied index, membership).
    pub fn metrics(&self) -> watch::Receiver<RaftMetrics> {
        self.raft.metrics()
    }

    /// The leader this member currently knows of.
    pub fn current_leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// The openraft handle, for what the facade does not cover (serving [`crate::peer_routes`],
    /// waiting on metrics, triggering snapshots).
    pub fn raft(&self) -> &Raft {
        &self.raft
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

fn write_error(e: RaftError<u64, ClientWriteError<u64, KeelNode>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => f.into(),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Error::Membership(e.to_string())
        }
        RaftError::Fatal(e) => e.into(),
    }
}
