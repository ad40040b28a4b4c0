//! A member's control plane: the Kubernetes API server (keel-apiserver) over the member's own
//! replica, in-process (no HTTP hop between the API server and the store), on its own HTTPS
//! listener; and the components every member runs beside it, leader-elected so one drives at
//! a time: the scheduler (keel-scheduler) and the controller manager (keel-controllers). They
//! speak to their member's API server through in-process kube clients, as any outside
//! program would speak to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use keel_apiserver::{Api, Front, Identity, Server, Tokens};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api_storage::ReplicaStorage;
use crate::replica::Replica;

/// Requests an API server handles at once before answering 429 (kube-apiserver's
/// --max-requests-inflight plus --max-mutating-requests-inflight defaults).
pub const MAX_IN_FLIGHT: usize = 600;

/// The files an API server serves TLS with.
#[derive(Clone, Debug)]
pub struct ApiServerTls {
    /// Serving certificate (PEM; SANs for every address clients use).
    pub cert_file: PathBuf,
    /// Its key.
    pub key_file: PathBuf,
    /// The CA whose client certificates identify users.
    pub client_ca_file: PathBuf,
    /// The ECDSA P-256 key (PKCS#8 PEM) service account tokens are signed with; every member
    /// needs the same one. None: no service account tokens.
    pub service_account_key_file: Option<PathBuf>,
    /// How the API server calls node agents for `pods/log` and `pods/exec`; None: those
    /// answer 503.
    pub kubelet_client: Option<KubeletClientFiles>,
}

/// The API server's client of node agents (kube-apiserver's `--kubelet-client-certificate`,
/// `--kubelet-client-key`, `--kubelet-certificate-authority`).
#[derive(Clone, Debug)]
pub struct KubeletClientFiles {
    /// Its client certificate (CN `kube-apiserver-kubelet-client`, which agents allow).
    pub cert_file: PathBuf,
    /// Its key.
    pub key_file: PathBuf,
    /// The CA agents' serving certificates are signed by.
    pub ca_file: PathBuf,
}

impl KubeletClientFiles {
    /// The files in `pki` (keel's PKI directory), the certificate issued by its CA if missing.
    pub fn in_pki(pki: &Path) -> anyhow::Result<KubeletClientFiles> {
        let files = KubeletClientFiles {
            cert_file: pki.join("apiserver-kubelet-client.crt"),
            key_file: pki.join("apiserver-kubelet-client.key"),
            ca_file: pki.join("ca.crt"),
        };
        if !files.cert_file.exists() || !files.key_file.exists() {
            let options = crate::pki::Options {
                force: true,
                ..Default::default()
            };
            crate::pki::issue_user(
                pki,
                "apiserver-kubelet-client",
                keel_agent::server::API_SERVER_CLIENT,
                &[],
                &options,
            )?;
        }
        Ok(files)
    }
}

/// A running API server; [`RunningApiServer::stop`] ends it.
pub struct RunningApiServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    front: Arc<Server>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    cache: JoinHandle<()>,
    bootstrap: JoinHandle<()>,
    /// The `kubernetes` service's endpoint reconciler (ends by `stop_services`) and the
    /// allocation repair loop (aborted).
    services: [JoinHandle<()>; 2],
    stop_services: watch::Sender<bool>,
    components: Vec<JoinHandle<()>>,
    stop_components: watch::Sender<bool>,
    /// The scheduler's profiles (from `scheduler-config`); empty: the default profile.
    pub scheduler_profiles: Vec<keel_scheduler::profile::Profile>,
    /// The cluster CA the controller manager signs kubelets' certificates with
    /// (`--cluster-signing-cert-file`/`-key-file`); None: node CSRs stay unsigned.
    pub cluster_signing: Option<keel_controllers::certificates::SigningConfig>,
}

impl RunningApiServer {
    /// A kube client of this API server for an in-process component acting as `user` in
    /// `groups`: requests go straight to the server's handler, with no socket and no TLS (the
    /// identity is the component's own, so authentication has nothing to check), as
    /// CONTROL_PLANE.md has in-process components speak the API.
    pub fn client(&self, user: &str, groups: &[&str]) -> kube::Client {
        let server = Arc::clone(&self.front);
        let identity = Identity {
            user: user.to_owned(),
            groups: groups
                .iter()
                .map(|g| (*g).to_owned())
                .chain(std::iter::once("system:authenticated".to_owned()))
                .collect(),
        };
        let service = tower::service_fn(move |request: hyper::Request<kube::client::Body>| {
            let server = Arc::clone(&server);
            let identity = identity.clone();
            async move {
                Ok::<_, std::convert::Infallible>(server.handle(request, Some(identity)).await)
            }
        });
        kube::Client::new(service, "default")
    }

    /// Starts the scheduler and the controller manager of member `member`, each leader-elected
    /// across the members (Leases `kube-system/keel-scheduler` and
    /// `kube-system/keel-controller-manager`). They act as `system:kube-scheduler` and
    /// `system:kube-controller-manager`, with what their bootstrap roles grant and no more;
    /// nodes get pod CIDRs from `cluster_cidr`.
    pub fn start_components(&mut self, member: &str, cluster_cidr: Option<&str>) {
        let identity = format!("{member}_{}", keel_apiserver::object::name_suffix());
        let scheduler = keel_scheduler::SchedulerConfig {
            profiles: self.scheduler_profiles.clone(),
            ..keel_scheduler::SchedulerConfig::new(&identity)
        };
        let client = self.client("system:kube-scheduler", &[]);
        let stopped = self.stop_components.subscribe();
        self.components.push(tokio::spawn(keel_scheduler::run(
            client,
            scheduler,
            until_true(stopped),
        )));
        let controllers = keel_controllers::ControllersConfig {
            cluster_cidr: cluster_cidr.map(str::to_owned),
            signing: self.cluster_signing.clone(),
            ..keel_controllers::ControllersConfig::new(&identity)
        };
        let client = self.client("system:kube-controller-manager", &[]);
        let stopped = self.stop_components.subscribe();
        self.components.push(tokio::spawn(keel_controllers::run(
            client,
            controllers,
            until_true(stopped),
        )));
    }

    /// Stops the components (they release their Leases, so another member's take over at
    /// once), then stops accepting and ends the watch cache.
    pub async fn stop(self) {
        let _ = self.stop_components.send(true);
        for component in self.components {
            // Releasing a Lease is one API call; a component stuck longer is cut off.
            let abort = component.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), component)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        // The member's lease goes before its server, so the endpoints stop listing it first.
        let _ = self.stop_services.send(true);
        let [reconciler, repair] = self.services;
        let abort = reconciler.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), reconciler)
            .await
            .is_err()
        {
            abort.abort();
        }
        repair.abort();
        // Awaited, so nothing of this API server holds the member's store once stop returns.
        let _ = repair.await;
        let _ = self.stop.send(true);
        let _ = self.server.await;
        self.cache.abort();
        self.bootstrap.abort();
        let _ = self.cache.await;
        let _ = self.bootstrap.await;
    }
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn until_true(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// How often each member runs the service allocation repair pass (kube-apiserver's 3 min).
pub const SERVICE_REPAIR_INTERVAL: Duration = Duration::from_secs(180);

/// Starts an API server over `replica` on `listener`, allocating Services' addresses from
/// `services`, logging mutating requests to `audit_log_path` when given.
pub async fn start_apiserver(
    replica: Arc<dyn Replica>,
    listener: TcpListener,
    tls: &ApiServerTls,
    tokens: Tokens,
    services: keel_apiserver::allocator::ServiceNetwork,
    audit_log_path: Option<&Path>,
) -> anyhow::Result<RunningApiServer> {
    let audit = match audit_log_path {
        Some(path) => Some(
            keel_apiserver::audit::AuditLog::open(keel_apiserver::audit::AuditConfig::at(
                path.to_owned(),
            ))
            .with_context(|| format!("cannot open the audit log {}", path.display()))?,
        ),
        None => None,
    };
    let tls_config = keel_apiserver::tls_config(
        &read(&tls.cert_file)?,
        &read(&tls.key_file)?,
        &read(&tls.client_ca_file)?,
    )
    .map_err(|e| anyhow::anyhow!("apiserver TLS: {e}"))?;
    let addr = listener.local_addr()?;
    let storage = Arc::new(ReplicaStorage::new(replica));
    let service_accounts = match &tls.service_account_key_file {
        Some(path) => Some(
            keel_apiserver::service_account::ServiceAccountKeys::from_pem(&read(path)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        ),
        None => None,
    };
    let kubelet = match &tls.kubelet_client {
        Some(files) => Some(
            keel_apiserver::node_proxy::KubeletClient::new(
                &read(&files.cert_file)?,
                &read(&files.key_file)?,
                &read(&files.ca_file)?,
            )
            .map_err(|e| anyhow::anyhow!("apiserver client of node agents: {e}"))?,
        ),
        None => None,
    };
    let (api, cache) = Api::start_with(storage, service_accounts, services);
    // Every member makes sure the system namespaces and the bootstrap RBAC policy exist
    // (whichever is first creates them), then aggregates ClusterRoles for as long as it runs.
    let bootstrap = tokio::spawn({
        let api = Arc::clone(&api);
        async move {
            let mut wait = Duration::from_millis(100);
            while let Err(e) = api.bootstrap().await {
                tracing::warn!("apiserver bootstrap: {}", e.message);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            let mut wait = Duration::from_millis(100);
            while let Err(e) = api.reconcile_bootstrap_policy().await {
                tracing::warn!("apiserver RBAC bootstrap policy: {}", e.message);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            api.run_cluster_role_aggregation().await;
        }
    });
    let (stop_services, services_stopped) = watch::channel(false);
    let reconciler = tokio::spawn({
        let api = Arc::clone(&api);
        async move {
            api.run_kubernetes_service(
                addr,
                keel_apiserver::master_endpoints::LeaseTimes::default(),
                until_true(services_stopped),
            )
            .await
        }
    });
    let repair = tokio::spawn({
        let api = Arc::clone(&api);
        async move {
            api.services
                .run_repair(&*api.storage, SERVICE_REPAIR_INTERVAL)
                .await
        }
    });
    let server = Server::new(
        api,
        Front {
            tokens,
            max_in_flight: MAX_IN_FLIGHT,
            advertise_address: addr.to_string(),
            audit,
            kubelet,
        },
    );
    let (stop, mut stopped) = watch::channel(false);
    let front = Arc::clone(&server);
    let server = tokio::spawn(server.serve(listener, tls_config, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    Ok(RunningApiServer {
        addr,
        front,
        components: Vec::new(),
        stop_components: watch::channel(false).0,
        scheduler_profiles: Vec::new(),
        cluster_signing: None,
        stop,
        server,
        cache,
        bootstrap,
        services: [reconciler, repair],
        stop_services,
    })
}

/// Writes a new service account signing key (ECDSA P-256, PKCS#8 PEM, mode 0600) to `path`
/// unless one is there.
pub fn ensure_service_account_key(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let key = rcgen::KeyPair::generate().context("cannot make a service account key")?;
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let mut file = open
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, key.serialize_pem().as_bytes())?;
    file.sync_all()?;
    Ok(())
}
