//! A running cluster member: its Raft node, the peer server and the client API.
//!
//! [`start`] takes bound listeners, so `keel serve`, `keel dev` and the tests all bring a
//! member up the same way, and tests bind port 0 without racing for ports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use keel_raft::{HttpNetworkFactory, KeelNode, RaftConfig, RaftNode};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ClusterState, Config};
use crate::raft_replica::{cluster_id, member_id, RaftReplica};
use crate::{Error, Result};

/// A member started by [`start`]; [`RunningMember::stop`] shuts it down cleanly.
pub struct RunningMember {
    /// The member's id.
    pub id: u64,
    /// The replica its client API serves.
    pub replica: Arc<RaftReplica>,
    /// Where its client API listens.
    pub client_addr: std::net::SocketAddr,
    /// Where its peer server listens.
    pub peer_addr: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    client_server: JoinHandle<Result<()>>,
    peer_server: JoinHandle<()>,
}

/// The Raft timing and snapshot policy that `config` asks for.
pub fn raft_config(config: &Config) -> RaftConfig {
    RaftConfig {
        heartbeat_interval_ms: config.heartbeat_interval,
        election_timeout_min_ms: config.election_timeout,
        election_timeout_max_ms: config.election_timeout * 2,
        snapshot_logs_since_last: config.snapshot_count,
        logs_kept_after_snapshot: config.snapshot_catchup_entries,
        ..RaftConfig::default()
    }
}

/// Opens the member's data dir, starts Raft and both servers. On a new cluster the member with
/// the lowest id initializes it with every member of `initial-cluster`; the others wait to be
/// contacted by the leader it elects.
pub async fn start(
    config: &Config,
    client_listener: TcpListener,
    peer_listener: TcpListener,
) -> Result<RunningMember> {
    config.validate()?;
    let token = config.initial_cluster_token.as_str();
    let own_peer_url = config
        .initial_advertise_peer_urls
        .first()
        .ok_or_else(|| Error::Unsupported("initial-advertise-peer-urls is empty".into()))?;
    let id = member_id(token, own_peer_url);
    let initial = config.initial_members()?;
    let initial_urls: Vec<String> = initial
        .iter()
        .filter_map(|m| m.peer_urls.first())
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .collect();
    let names: BTreeMap<u64, String> = initial
        .iter()
        .zip(&initial_urls)
        .map(|(m, url)| (member_id(token, url), m.name.clone()))
        .collect();
    let own_client_url = config
        .advertise_client_urls
        .first()
        .cloned()
        .unwrap_or_default();

    std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::Io {
        context: format!("cannot create data-dir {}", config.data_dir.display()),
        source,
    })?;
    let store_config = keel_store::Config {
        max_request_bytes: config.max_request_bytes,
        cache_capacity_bytes: config.backend_cache_bytes,
        ..Default::default()
    };
    // TLS files load before anything starts, so a bad file fails `start`, naming its key.
    let client_listener = match crate::transport::client_tls(config) {
        Some(tls) => tls.listener(client_listener)?,
        None => client_listener.into(),
    };
    let peer_listener = match crate::transport::peer_tls(config) {
        Some(tls) => tls.listener(peer_listener)?,
        None => peer_listener.into(),
    };
    let client = crate::transport::outbound_client(config)?;
    let cluster = cluster_id_of(config, &initial_urls, own_peer_url, &client).await?;
    let node = RaftNode::open_with_store_config(
        id,
        &config.data_dir,
        raft_config(config),
        store_config,
        HttpNetworkFactory::new(id, client.clone()),
    )
    .await?;
    let node = Arc::new(node);

    let (stop, stopped) = watch::channel(false);
    let peer_addr = local_addr(&peer_listener)?;
    let client_addr = local_addr(&client_listener)?;
    if config.initial_cluster_state == ClusterState::New && !node.is_initialized().await? {
        let members: BTreeMap<u64, KeelNode> = initial_urls
            .iter()
            .map(|url| {
                let member = member_id(token, url);
                // Only our own client URL is known here; the others fill in as they publish.
                let client_url = if member == id {
                    own_client_url.as_str()
                } else {
                    ""
                };
                (member, KeelNode::new(url.as_str(), client_url))
            })
            .collect();
        if members.keys().next() == Some(&id) {
            match node.initialize(members).await {
                Ok(()) | Err(keel_raft::Error::AlreadyInitialized) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    let peers = node.peer_endpoints();
    let replica = Arc::new(RaftReplica::new(
        node,
        cluster,
        token.to_owned(),
        names,
        config.advertise_client_urls.clone(),
        request_timeout(config),
    ));
    // One API (hence one lessor) behind both listeners: followers forward lease and
    // membership requests to the leader's peer address, which may be all they know of it.
    // The forwarding client presents the peer certificate: it reaches the leader's peer
    // listener (see `RaftReplica::not_leader`), TLS or not.
    let api = crate::server::api_forwarding_with(config, replica.clone(), client.clone());
    let peer_server = {
        let mut stopped = stopped.clone();
        tokio::spawn(crate::server::serve_peers(
            peers,
            cluster,
            api.clone(),
            peer_listener,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ))
    };
    let client_server = {
        let config = config.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            crate::server::serve_with(&config, api, client_listener, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        })
    };
    {
        // Members' client URLs reach the membership through the leader (see
        // `publish_client_urls`); checking every second costs one metrics read when
        // nothing is missing.
        let replica = replica.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let http = client;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = async { drop(stopped.wait_for(|s| *s).await) } => break,
                    _ = tick.tick() => replica.publish_client_urls(&http).await,
                }
            }
        });
    }
    Ok(RunningMember {
        id,
        replica,
        client_addr,
        peer_addr,
        stop,
        client_server,
        peer_server,
    })
}

/// Where in its data dir a member keeps the id of the cluster it belongs to (hex).
pub const CLUSTER_ID_FILE: &str = "cluster-id";

/// How long a member joining an existing cluster keeps asking its peers for the cluster id:
/// they are up (it was just added), so only a blip is worth waiting out, as etcd gives up at
/// once when no peer tells it the cluster's id.
const CLUSTER_ID_DEADLINE: Duration = Duration::from_secs(5);

/// The cluster id, kept as etcd keeps it: the founding members of a new cluster derive it from
/// the token and `initial-cluster` (so they agree without talking), a member joining an
/// existing cluster learns it from a peer (its `initial-cluster` also names itself, so deriving
/// would give another id), and either keeps it in the data dir from then on.
async fn cluster_id_of(
    config: &Config,
    initial_urls: &[String],
    own_peer_url: &str,
    client: &reqwest::Client,
) -> Result<u64> {
    let path = config.data_dir.join(CLUSTER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return u64::from_str_radix(text.trim(), 16).map_err(|_| {
                Error::Unsupported(format!(
                    "{} does not hold a cluster id: {text:?}",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Io {
                context: format!("cannot read {}", path.display()),
                source,
            })
        }
    }
    let id = match config.initial_cluster_state {
        ClusterState::New => cluster_id(&config.initial_cluster_token, initial_urls),
        ClusterState::Existing => {
            let own = own_peer_url.trim_end_matches('/');
            let peers: Vec<&String> = initial_urls.iter().filter(|u| *u != own).collect();
            learn_cluster_id(client, &peers).await?
        }
    };
    write_durably(&path, format!("{id:x}\n").as_bytes())?;
    Ok(id)
}

/// Asks each peer in turn (`GET /members/cluster-id` on its peer listener) until one answers.
async fn learn_cluster_id(client: &reqwest::Client, peers: &[&String]) -> Result<u64> {
    let deadline = tokio::time::Instant::now() + CLUSTER_ID_DEADLINE;
    let mut reasons = Vec::new();
    loop {
        reasons.clear();
        for peer in peers {
            let url = format!("{peer}/members/cluster-id");
            let answer = async {
                let response = client
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("status {}", response.status()));
                }
                let text = response.text().await.map_err(|e| e.to_string())?;
                u64::from_str_radix(text.trim(), 16).map_err(|_| format!("answered {text:?}"))
            };
            match answer.await {
                Ok(id) => return Ok(id),
                Err(reason) => reasons.push(format!("{url}: {reason}")),
            }
        }
        if tokio::time::Instant::now() >= deadline || peers.is_empty() {
            return Err(Error::Unsupported(format!(
                "joining an existing cluster, but no member of initial-cluster told its cluster id: {}",
                if reasons.is_empty() {
                    "initial-cluster names no other member".to_owned()
                } else {
                    reasons.join("; ")
                }
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes `bytes` to `path` so that a crash leaves either nothing or all of it.
fn write_durably(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let io = |source| Error::Io {
        context: format!("cannot write {}", path.display()),
        source,
    };
    let partial = path.with_extension("part");
    let mut file = std::fs::File::create(&partial).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// etcd's request timeout: a few election timeouts, so a write survives one re-election.
fn request_timeout(config: &Config) -> Duration {
    Duration::from_millis(5_000 + 2 * config.election_timeout)
}

fn local_addr(listener: &crate::transport::Listener) -> Result<std::net::SocketAddr> {
    listener.local_addr().map_err(|source| Error::Io {
        context: "cannot read a listener's address".into(),
        source,
    })
}

impl RunningMember {
    /// Resolves when the member knows a leader (itself or another), or after `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<u64> {
        let mut metrics = self.replica.node().metrics();
        let found = tokio::time::timeout(timeout, metrics.wait_for(|m| m.current_leader.is_some()))
            .await
            .ok()?
            .ok()?
            .current_leader;
        found
    }

    /// Resolves if the member's Raft core stops by itself (see [`keel_raft::RaftNode::stopped`]),
    /// saying why.
    pub async fn raft_stopped(&self) -> String {
        self.replica.node().stopped().await
    }

    /// Stops serving clients and peers, then stops Raft and flushes everything to disk.
    pub async fn stop(self) -> Result<()> {
        self.stop.send_replace(true);
        let served = self
            .client_server
            .await
            .map_err(|e| Error::Unsupported(format!("client server task failed: {e}")))?;
        let _ = self.peer_server.await;
        self.replica.node().shutdown().await?;
        served
    }
}
