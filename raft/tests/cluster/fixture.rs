//! The cluster fixture: members on a [`Router`], each in its own directory of one temp dir,
//! and helpers that wait with deadlines and fail with context.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use keel_raft::router::Router;
use keel_raft::{Error, KeelNode, RaftConfig, RaftNode};
use keel_store::{Applied, Command, PutRequest, RangeRequest};
use openraft::ServerState;
use tempfile::TempDir;

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Timings a few times shorter than production, so elections take a few hundred ms; loose
/// enough that two busy cores shared with other builds do not trigger spurious elections.
pub fn fast_config() -> RaftConfig {
    RaftConfig {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        ..RaftConfig::default()
    }
}

/// The address a member advertises (never dialed on the router).
pub fn node_addr(id: u64) -> KeelNode {
    KeelNode::new(
        format!("http://127.0.0.1:{}", 2380 + id),
        format!("http://127.0.0.1:{}", 2379 + id * 10),
    )
}

/// A state machine over a keyspace and snapshot directory in `dir`, without a Raft around it.
pub fn open_state_machine(dir: &Path) -> anyhow::Result<keel_raft::StateMachine> {
    let store = keel_store::Store::open(dir.join("kv"), keel_store::Config::default())?;
    Ok(keel_raft::StateMachine::open(store, dir.join("snapshot"))?)
}

/// Log entries at `indexes` (term 1, leader 1), each putting `k<index>` = `v<index>`.
pub fn put_entries(indexes: std::ops::RangeInclusive<u64>) -> Vec<keel_raft::types::Entry> {
    use keel_raft::types::{Entry, LogId};
    use openraft::{CommittedLeaderId, EntryPayload};
    indexes
        .map(|index| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(keel_raft::Request::from(put(
                &format!("k{index}"),
                &format!("v{index}"),
            ))),
        })
        .collect()
}

/// A put command.
pub fn put(key: &str, value: &str) -> Command {
    Command::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    })
}

/// Polls `check` until it returns `Some`, failing with `what` after `DEADLINE`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if start.elapsed() > DEADLINE {
            bail!("timed out after {DEADLINE:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct Cluster {
    pub router: Router,
    pub config: RaftConfig,
    pub nodes: BTreeMap<u64, RaftNode>,
    dir: PathBuf,
    _temp: Option<TempDir>,
}

impl Cluster {
    /// Members `1..=size`, initialized by member 1, with a leader elected.
    pub async fn start(size: u64, config: RaftConfig) -> anyhow::Result<Cluster> {
        let temp = TempDir::new()?;
        let mut cluster = Cluster::start_in(temp.path(), size, config).await?;
        cluster._temp = Some(temp);
        Ok(cluster)
    }

    /// [`Cluster::start`] with member directories under `dir`, which outlives the cluster.
    pub async fn start_in(dir: &Path, size: u64, config: RaftConfig) -> anyhow::Result<Cluster> {
        let mut cluster = Cluster::reopen_in(dir, &[], config).await?;
        for id in 1..=size {
            cluster.open(id).await?;
        }
        let members = (1..=size).map(|id| (id, node_addr(id))).collect();
        cluster.node(1).initialize(members).await?;
        cluster.leader().await?;
        Ok(cluster)
    }

    /// Opens members `ids` from their directories under `dir` (no initialization: they resume).
    pub async fn reopen_in(dir: &Path, ids: &[u64], config: RaftConfig) -> anyhow::Result<Cluster> {
        let mut cluster = Cluster {
            router: Router::new(),
            config,
            nodes: BTreeMap::new(),
            dir: dir.to_path_buf(),
            _temp: None,
        };
        for id in ids {
            cluster.open(*id).await?;
        }
        Ok(cluster)
    }

    /// Opens member `id` from its directory (new or existing) and connects it to the router.
    /// Retries while a previous incarnation still holds sled's file lock (its tasks are
    /// finishing after a drop).
    pub async fn open(&mut self, id: u64) -> anyhow::Result<()> {
        let dir = self.dir.join(format!("node-{id}"));
        let start = Instant::now();
        let node = loop {
            match RaftNode::open(id, &dir, self.config.clone(), self.router.network(id)).await {
                Ok(node) => break node,
                Err(e) if start.elapsed() < DEADLINE => {
                    tracing::debug!("reopening {id}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context(format!("opening member {id}")),
            }
        };
        self.router.register(id, node.raft().clone());
        self.nodes.insert(id, node);
        Ok(())
    }

    pub fn node(&self, id: u64) -> &RaftNode {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no member {id}"))
    }

    /// Drops member `id` without shutting it down, as if its process died.
    pub fn crash(&mut self, id: u64) {
        self.router.unregister(id);
        self.nodes.remove(&id);
    }

    /// Shuts member `id` down cleanly and drops it.
    pub async fn stop(&mut self, id: u64) -> anyhow::Result<()> {
        self.router.unregister(id);
        if let Some(node) = self.nodes.remove(&id) {
            node.shutdown().await?;
        }
        Ok(())
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Waits until every open member agrees on one leader, which knows it leads.
    pub async fn leader(&self) -> anyhow::Result<u64> {
        self.leader_among(&self.ids()).await
    }

    /// Waits until every member of `ids` agrees on a leader that is itself in `ids`.
    pub async fn leader_among(&self, ids: &[u64]) -> anyhow::Result<u64> {
        eventually(&format!("a leader among {ids:?}"), || async {
            let leaders: BTreeSet<Option<u64>> = ids
                .iter()
                .map(|id| self.node(*id).current_leader())
                .collect();
            let leader = match leaders.into_iter().collect::<Vec<_>>()[..] {
                [Some(leader)] => leader,
                _ => return None,
            };
            let leads = ids.contains(&leader)
                && self.node(leader).metrics().borrow().state == ServerState::Leader;
            leads.then_some(leader)
        })
        .await
    }

    /// Writes through member `via` (which forwards to the leader), retrying while there is no
    /// leader, until `DEADLINE`. An indeterminate write fails the test.
    pub async fn write_via(&self, mut via: u64, command: Command) -> anyhow::Result<Applied> {
        let start = Instant::now();
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(3),
                self.node(via).write(command.clone()),
            )
            .await;
            match attempt {
                Ok(Ok(applied)) => return Ok(applied),
                Ok(Err(Error::ForwardToLeader {
                    leader_id: Some(leader),
                    ..
                })) if self.nodes.contains_key(&leader) => via = leader,
                Ok(Err(Error::ForwardToLeader { .. } | Error::Unavailable(_))) | Err(_) => {}
                Ok(Err(e)) => return Err(e).context(format!("write via {via}")),
            }
            if start.elapsed() > DEADLINE {
                bail!("write {command:?} not committed within {DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes through whoever leads now.
    pub async fn write(&self, command: Command) -> anyhow::Result<Applied> {
        let via = self.ids()[0];
        self.write_via(via, command).await
    }

    /// The value of `key` in member `id`'s keyspace.
    pub fn get(&self, id: u64, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let response = self.node(id).store().range(&RangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        })?;
        Ok(response.kvs.into_iter().next().map(|kv| kv.value))
    }

    /// Waits until every member of `ids` has applied the same last log id, then checks that
    /// their keyspaces hash alike at the same revision.
    pub async fn assert_converged(&self, ids: &[u64]) -> anyhow::Result<()> {
        let applied = eventually(&format!("{ids:?} to apply the same log"), || async {
            let applied: BTreeSet<_> = ids
                .iter()
                .map(|id| self.node(*id).metrics().borrow().last_applied)
                .collect();
            let last_log: BTreeSet<_> = ids
                .iter()
                .map(|id| self.node(*id).metrics().borrow().last_log_index)
                .collect();
            let [applied] = applied.into_iter().collect::<Vec<_>>()[..] else {
                return None;
            };
            let same_log = last_log.len() == 1
                && last_log.first().copied().flatten() == applied.map(|l| l.index);
            same_log.then_some(applied)
        })
        .await?;
        let mut hashes = BTreeMap::new();
        for id in ids {
            let hash = self.node(*id).store().hash_kv(0)?;
            hashes.insert(*id, hash);
        }
        let first = *hashes
            .values()
            .next()
            .ok_or_else(|| anyhow!("no members"))?;
        if hashes.values().any(|h| *h != first) {
            bail!("members applied {applied:?} but their keyspaces differ: {hashes:?}");
        }
        Ok(())
    }

    /// Shuts every member down (so temp dirs are released quietly).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        for id in self.ids() {
            self.stop(id).await?;
        }
        Ok(())
    }
}
