//! Server wiring: the API over a replica, the lease expiry loop, graceful shutdown.
//!
//! [`run`] takes a bound listener and a shutdown future, so tests bind port 0 and run many
//! servers in parallel, and nothing has to wait for a port to open.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::{self, Api};
use crate::config::Config;
use crate::lessor::Lessor;
use crate::replica::{LocalReplica, Member, Replica};
use crate::transport::Listener;
use crate::Result;

/// The API state for `replica` as configured by `config`.
pub fn api(config: &Config, replica: Arc<dyn Replica>) -> Arc<Api> {
    api_forwarding_with(config, replica, reqwest::Client::new())
}

/// [`api`], forwarding to the leader with `http` (built with the cluster's TLS settings by
/// [`crate::transport::outbound_client`]).
pub fn api_forwarding_with(
    config: &Config,
    replica: Arc<dyn Replica>,
    http: reqwest::Client,
) -> Arc<Api> {
    let lessor = Arc::new(Lessor::new(config.min_lease_ttl()));
    let mut api = Api::new(replica, lessor);
    api.http = http;
    api.max_request_bytes = config.max_request_bytes;
    api.quota_backend_bytes = config.quota_backend_bytes;
    api.auth.token_ttl = std::time::Duration::from_secs(config.auth_token_ttl);
    api.auth.bcrypt_cost = config.bcrypt_cost;
    Arc::new(api)
}

/// Serves the client API for `replica` on `listener` until `shutdown` resolves, then stops
/// accepting, ends open streams and waits for in-flight requests.
///
/// The listener is wrapped in TLS when `listen-client-urls` are https.
pub async fn run(
    config: &Config,
    listener: TcpListener,
    replica: Arc<dyn Replica>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = match crate::transport::client_tls(config) {
        Some(tls) => tls.listener(listener)?,
        None => listener.into(),
    };
    let api = api_forwarding_with(config, replica, crate::transport::outbound_client(config)?);
    serve_with(config, api, listener, shutdown).await
}

/// [`run`] with an already built [`Api`]: starts auto-compaction as configured, then serves.
pub async fn serve_with(
    config: &Config,
    api: Arc<Api>,
    listener: impl Into<Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if let Some(retention) = config.compaction_retention()? {
        tokio::spawn(crate::compactor::run(
            api.replica.clone(),
            retention,
            api.closed(),
        ));
    }
    serve(api, listener, shutdown).await
}

/// [`run`] with an already built [`Api`] (tests tune it, e.g. the progress interval).
pub async fn serve(
    api: Arc<Api>,
    listener: impl Into<Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = listener.into();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("serving the client API on {}://{addr}", listener.scheme());
    }
    let expiry = tokio::spawn(
        api.lessor
            .clone()
            .run_expiry(api.replica.clone(), api.closed()),
    );
    let closing = api.closing.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down");
        // Ends watch and keepalive streams, which would otherwise hold the graceful
        // shutdown open for as long as their clients stay connected.
        closing.send_replace(true);
    };
    // The gateway and etcd's gRPC API on one port, told apart by content type.
    let gateway = warp::service(api::routes(api.clone()));
    let service = api::grpc::Dispatch::new(api::grpc::router(&api), gateway);
    crate::transport::serve(listener, service, shutdown).await;
    api.closing.send_replace(true);
    let _ = expiry.await;
    Ok(())
}

/// A single-member replica for `config`: the store in `data-dir`, ids derived from the
/// member's name and URLs.
pub fn local_replica(config: &Config) -> Result<LocalReplica> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| crate::Error::Io {
        context: format!("cannot create data-dir {}", config.data_dir.display()),
        source,
    })?;
    let store_config = keel_store::Config {
        max_request_bytes: config.max_request_bytes,
        cache_capacity_bytes: config.backend_cache_bytes,
        ..Default::default()
    };
    let store = keel_store::Store::open(config.data_dir.join("kv"), store_config)?;
    let id = crate::replica::derive_id(
        [config.initial_cluster_token.as_str(), config.name.as_str()]
            .into_iter()
            .chain(
                config
                    .initial_advertise_peer_urls
                    .iter()
                    .map(String::as_str),
            ),
    );
    let member = Member {
        id,
        name: config.name.clone(),
        peer_urls: config.initial_advertise_peer_urls.clone(),
        client_urls: config.advertise_client_urls.clone(),
        is_learner: false,
    };
    Ok(LocalReplica::new(store, member)?)
}

/// Serves a member's peer endpoints on `listener` until `shutdown`, and its client API there
/// as well: followers forward requests to the leader's peer address, which may be the only
/// address of it they know.
pub async fn serve_peers(
    peers: keel_raft::PeerEndpoints,
    cluster_id: u64,
    api: Arc<Api>,
    listener: impl Into<Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use warp::Filter as _;
    // A member joining the cluster learns the cluster id here (see `member::start`).
    let cluster = warp::path!("members" / "cluster-id")
        .and(warp::get())
        .map(move || format!("{cluster_id:x}"));
    let routes = keel_raft::peer_routes(peers)
        .or(cluster)
        .or(api::routes(api));
    crate::transport::serve(listener, warp::service(routes), shutdown).await;
}
