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

    let raft = node.raft().clone();
    let replica = Arc::new(RaftReplica::new(
        node,
        cluster_id(token, &initial_urls),
        token.to_owned(),
        names,
        config.advertise_client_urls.clone(),
        request_timeout(config),
    ));
    // One API (hence one lessor) behind both listeners: followers forward lease and
    // membership requests to the leader's peer address, which may be all they know of it.
    // Forwarding reaches the leader's client or peer listener, TLS or not.
    let api = crate::server::api_forwarding_with(config, replica.clone(), client.clone());
    let peer_server = {
        let mut stopped = stopped.clone();
        tokio::spawn(crate::server::serve_peers(
            raft,
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
