//! `keel serve`: flags override `--config-file`, which overrides the defaults.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use crate::config::{ClusterState, CompactionMode, Config};

/// Flags of `keel serve`; each names the config key it overrides.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// A TOML file with the configuration (see keel.conf.toml); flags override it.
    #[arg(long, env = "KEEL_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// Run as a cluster of one, without Raft peers.
    #[arg(long)]
    pub single: bool,
    /// name
    #[arg(long)]
    pub name: Option<String>,
    /// data-dir
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// listen-client-urls (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub listen_client_urls: Option<Vec<String>>,
    /// advertise-client-urls (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub advertise_client_urls: Option<Vec<String>>,
    /// listen-peer-urls (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub listen_peer_urls: Option<Vec<String>>,
    /// initial-advertise-peer-urls (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub initial_advertise_peer_urls: Option<Vec<String>>,
    /// initial-cluster: name=url,name=url,...
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// initial-cluster-state: new or existing
    #[arg(long, value_parser = parse_cluster_state)]
    pub initial_cluster_state: Option<ClusterState>,
    /// initial-cluster-token
    #[arg(long)]
    pub initial_cluster_token: Option<String>,
    /// snapshot-count
    #[arg(long)]
    pub snapshot_count: Option<u64>,
    /// snapshot-catchup-entries: log entries kept behind the last snapshot
    #[arg(long)]
    pub snapshot_catchup_entries: Option<u64>,
    /// quota-backend-bytes
    #[arg(long)]
    pub quota_backend_bytes: Option<u64>,
    /// auto-compaction-mode: periodic or revision
    #[arg(long, value_parser = parse_compaction_mode)]
    pub auto_compaction_mode: Option<CompactionMode>,
    /// auto-compaction-retention
    #[arg(long)]
    pub auto_compaction_retention: Option<String>,
    /// max-request-bytes
    #[arg(long)]
    pub max_request_bytes: Option<usize>,
    /// backend-cache-bytes: the keyspace's page cache
    #[arg(long)]
    pub backend_cache_bytes: Option<u64>,
    /// heartbeat-interval, ms
    #[arg(long)]
    pub heartbeat_interval: Option<u64>,
    /// election-timeout, ms
    #[arg(long)]
    pub election_timeout: Option<u64>,
    /// auth-token-ttl, seconds
    #[arg(long)]
    pub auth_token_ttl: Option<u64>,
    /// bcrypt-cost (4 to 31)
    #[arg(long)]
    pub bcrypt_cost: Option<u32>,
    /// cert-file: the client listener's certificate (PEM), for https listen-client-urls
    #[arg(long)]
    pub cert_file: Option<PathBuf>,
    /// key-file: its private key (PEM)
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// trusted-ca-file: the CA client certificates must be signed by
    #[arg(long)]
    pub trusted_ca_file: Option<PathBuf>,
    /// client-cert-auth: refuse clients without a certificate from trusted-ca-file
    #[arg(long)]
    pub client_cert_auth: bool,
    /// peer-cert-file: the peer listener's certificate, also presented to other members
    #[arg(long)]
    pub peer_cert_file: Option<PathBuf>,
    /// peer-key-file: its private key (PEM)
    #[arg(long)]
    pub peer_key_file: Option<PathBuf>,
    /// peer-trusted-ca-file: the CA other members' certificates must be signed by
    #[arg(long)]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// peer-client-cert-auth: refuse peers without a certificate from peer-trusted-ca-file
    #[arg(long)]
    pub peer_client_cert_auth: bool,
    /// control-plane: serve the Kubernetes API on this member too
    #[arg(long)]
    pub control_plane: bool,
    /// apiserver-port: the Kubernetes API's HTTPS port
    #[arg(long)]
    pub apiserver_port: Option<u16>,
    /// apiserver-cert-file (default: cert-file)
    #[arg(long)]
    pub apiserver_cert_file: Option<PathBuf>,
    /// apiserver-key-file (default: key-file)
    #[arg(long)]
    pub apiserver_key_file: Option<PathBuf>,
    /// apiserver-client-ca-file (default: trusted-ca-file)
    #[arg(long)]
    pub apiserver_client_ca_file: Option<PathBuf>,
    /// apiserver-token-file: kube's static token file
    #[arg(long)]
    pub apiserver_token_file: Option<PathBuf>,
    /// apiserver-service-account-key-file: ECDSA P-256 key (PKCS#8 PEM) for service account tokens
    #[arg(long)]
    pub apiserver_service_account_key_file: Option<PathBuf>,
    /// audit-log-path: one JSON line per mutating API request (an audit.k8s.io/v1 Event)
    #[arg(long = "audit-log-path")]
    pub apiserver_audit_log_path: Option<PathBuf>,
    /// kubelet-client-certificate: the API server's client certificate for node agents
    /// (pods/log, exec); CN kube-apiserver-kubelet-client
    #[arg(long)]
    pub kubelet_client_certificate: Option<PathBuf>,
    /// kubelet-client-key: its key
    #[arg(long)]
    pub kubelet_client_key: Option<PathBuf>,
    /// kubelet-certificate-authority: the CA node agents' serving certificates are signed by
    #[arg(long)]
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// cluster-signing-cert-file: the CA the controller manager signs kubelets' certificates
    /// with (default: the apiserver client CA, when its key `ca.key` sits beside it)
    #[arg(long, requires = "cluster_signing_key_file")]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// cluster-signing-key-file: that CA's private key
    #[arg(long, requires = "cluster_signing_cert_file")]
    pub cluster_signing_key_file: Option<PathBuf>,
    /// scheduler-config: the scheduler's KubeSchedulerConfiguration (YAML)
    #[arg(long)]
    pub scheduler_config: Option<PathBuf>,
    /// cluster-cidr: the pods' network, a /24 of it per node
    #[arg(long)]
    pub cluster_cidr: Option<String>,
    /// service-cluster-ip-range: the CIDR Services' cluster IPs come from
    #[arg(long)]
    pub service_cluster_ip_range: Option<String>,
    /// service-node-port-range: the range Services' node ports come from (first-last)
    #[arg(long)]
    pub service_node_port_range: Option<String>,
}

fn parse_cluster_state(text: &str) -> Result<ClusterState, String> {
    match text {
        "new" => Ok(ClusterState::New),
        "existing" => Ok(ClusterState::Existing),
        other => Err(format!("{other:?} is neither new nor existing")),
    }
}

fn parse_compaction_mode(text: &str) -> Result<CompactionMode, String> {
    match text {
        "periodic" => Ok(CompactionMode::Periodic),
        "revision" => Ok(CompactionMode::Revision),
        other => Err(format!("{other:?} is neither periodic nor revision")),
    }
}

impl ServeArgs {
    /// The configuration: defaults, then the file, then the flags; validated.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config_file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        macro_rules! set {
            ($($field:ident),+) => {$(
                if let Some(value) = &self.$field {
                    config.$field = value.clone();
                }
            )+};
        }
        set!(
            name,
            data_dir,
            listen_client_urls,
            advertise_client_urls,
            listen_peer_urls,
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_state,
            initial_cluster_token,
            snapshot_count,
            snapshot_catchup_entries,
            quota_backend_bytes,
            auto_compaction_mode,
            auto_compaction_retention,
            max_request_bytes,
            backend_cache_bytes,
            heartbeat_interval,
            election_timeout,
            auth_token_ttl,
            bcrypt_cost,
            apiserver_port,
            cluster_cidr,
            service_cluster_ip_range,
            service_node_port_range
        );
        macro_rules! set_some {
            ($($field:ident),+) => {$(
                if let Some(value) = &self.$field {
                    config.$field = Some(value.clone());
                }
            )+};
        }
        set_some!(
            cert_file,
            key_file,
            trusted_ca_file,
            peer_cert_file,
            peer_key_file,
            peer_trusted_ca_file,
            apiserver_cert_file,
            apiserver_key_file,
            apiserver_client_ca_file,
            apiserver_token_file,
            apiserver_service_account_key_file,
            apiserver_audit_log_path,
            kubelet_client_certificate,
            kubelet_client_key,
            kubelet_certificate_authority,
            scheduler_config
        );
        // A boolean flag can only turn auth on; the file's `false` is the default anyway.
        config.client_cert_auth |= self.client_cert_auth;
        config.peer_client_cert_auth |= self.peer_client_cert_auth;
        config.control_plane |= self.control_plane;
        // As etcd: naming a member without giving the cluster means a cluster of that member.
        if self.name.is_some() && self.initial_cluster.is_none() && self.config_file.is_none() {
            config.initial_cluster = config
                .initial_advertise_peer_urls
                .iter()
                .map(|url| format!("{}={url}", config.name))
                .collect::<Vec<_>>()
                .join(",");
        }
        config.validate()?;
        // A scheduler configuration that cannot be used stops the member before it starts.
        if let Some(path) = &config.scheduler_config {
            keel_scheduler::config_file::load(path)?;
        }
        Ok(config)
    }

    /// Runs the member until Ctrl-C or SIGTERM.
    pub async fn execute(self) -> anyhow::Result<()> {
        let config = self.config()?;
        let addrs = config.client_listen_addrs()?;
        if addrs.len() > 1 {
            anyhow::bail!("listen-client-urls: one URL is supported for now, got {addrs:?}");
        }
        let client_listener = tokio::net::TcpListener::bind(addrs[0])
            .await
            .with_context(|| format!("cannot listen for clients on {}", addrs[0]))?;
        if self.single {
            if config.control_plane {
                anyhow::bail!("control-plane runs on a Raft member: drop --single");
            }
            let replica = Arc::new(crate::server::local_replica(&config)?);
            crate::server::run(&config, client_listener, replica, shutdown_signal()).await?;
            return Ok(());
        }
        let peer_addrs = config.peer_listen_addrs()?;
        if peer_addrs.len() != 1 {
            anyhow::bail!(
                "listen-peer-urls: exactly one URL is supported for now, got {peer_addrs:?}"
            );
        }
        let peer_listener = tokio::net::TcpListener::bind(peer_addrs[0])
            .await
            .with_context(|| format!("cannot listen for peers on {}", peer_addrs[0]))?;
        let member = crate::member::start(&config, client_listener, peer_listener).await?;
        tracing::info!(
            member_id = format!("{:x}", member.id),
            "member {} serving clients on {} and peers on {}",
            config.name,
            config.listen_client_urls.join(","),
            config.listen_peer_urls.join(",")
        );
        let apiserver = match config.control_plane {
            true => {
                let signing = self.cluster_signing(&config)?;
                Some(start_control_plane(&config, &member, addrs[0], signing).await?)
            }
            false => None,
        };
        tokio::select! {
            _ = shutdown_signal() => {}
            reason = member.raft_stopped() => {
                // Serving on would answer from stale state and never replicate again.
                anyhow::bail!("member {}: Raft stopped: {reason}", config.name);
            }
        }
        if let Some(apiserver) = apiserver {
            apiserver.stop().await;
        }
        member.stop().await?;
        Ok(())
    }
}

impl ServeArgs {
    /// The CA node certificates are signed with: the flags', or the apiserver client CA's
    /// when its key (`ca.key`) is beside it, as `keel pki init` writes them.
    fn cluster_signing(
        &self,
        config: &Config,
    ) -> anyhow::Result<Option<keel_controllers::certificates::SigningConfig>> {
        let (cert, key) = match (
            &self.cluster_signing_cert_file,
            &self.cluster_signing_key_file,
        ) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => {
                let [_, _, ca] = config.apiserver_tls()?;
                let key = ca.with_file_name("ca.key");
                if !key.exists() {
                    return Ok(None);
                }
                (ca, key)
            }
        };
        keel_controllers::certificates::SigningConfig::from_files(&cert, &key)
            .map(Some)
            .map_err(anyhow::Error::msg)
    }
}

/// Starts the member's Kubernetes API server on `apiserver-port` of the client listener's host.
async fn start_control_plane(
    config: &Config,
    member: &crate::member::RunningMember,
    client_addr: std::net::SocketAddr,
    cluster_signing: Option<keel_controllers::certificates::SigningConfig>,
) -> anyhow::Result<crate::control_plane::RunningApiServer> {
    let [cert_file, key_file, client_ca_file] = config.apiserver_tls()?;
    let tokens = match &config.apiserver_token_file {
        Some(path) => keel_apiserver::Tokens::from_file(path).map_err(anyhow::Error::msg)?,
        None => keel_apiserver::Tokens::default(),
    };
    let addr = std::net::SocketAddr::new(client_addr.ip(), config.apiserver_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for the Kubernetes API on {addr}"))?;
    let tls = crate::control_plane::ApiServerTls {
        cert_file,
        key_file,
        client_ca_file,
        service_account_key_file: config.apiserver_service_account_key_file.clone(),
        kubelet_client: config
            .kubelet_client()?
            .map(
                |[cert_file, key_file, ca_file]| crate::control_plane::KubeletClientFiles {
                    cert_file,
                    key_file,
                    ca_file,
                },
            ),
    };
    let replica: Arc<dyn crate::replica::Replica> = member.replica.clone();
    let mut apiserver = crate::control_plane::start_apiserver(
        replica,
        listener,
        &tls,
        tokens,
        config.service_network()?,
        config.apiserver_audit_log_path.as_deref(),
    )
    .await?;
    if let Some(path) = &config.scheduler_config {
        apiserver.scheduler_profiles = keel_scheduler::config_file::load(path)?;
    }
    apiserver.cluster_signing = cluster_signing;
    apiserver.start_components(&config.name, Some(&config.cluster_cidr));
    tracing::info!(
        "member {} serving the Kubernetes API on https://{}",
        config.name,
        apiserver.addr
    );
    Ok(apiserver)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["keel", "serve"].iter().chain(args)).unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("parsed as another subcommand");
        };
        args
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keel.toml");
        std::fs::write(
            &file,
            "name = \"n1\"\nmax-request-bytes = 1000\nsnapshot-count = 7\n\
            initial-cluster = \"n1=http://127.0.0.1:2380\"\n",
        )
        .unwrap();
        let args = serve_args(&[
            "--config-file",
            file.to_str().unwrap(),
            "--max-request-bytes",
            "2000",
            "--listen-client-urls",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "--initial-cluster-state",
            "existing",
            "--snapshot-catchup-entries",
            "50",
            "--backend-cache-bytes",
            "1048576",
        ]);
        let config = args.config().unwrap();
        assert_eq!(config.name, "n1");
        assert_eq!(config.snapshot_count, 7);
        assert_eq!(config.snapshot_catchup_entries, 50);
        assert_eq!(config.max_request_bytes, 2000);
        assert_eq!(config.backend_cache_bytes, 1 << 20);
        assert_eq!(config.listen_client_urls.len(), 2);
        assert_eq!(config.initial_cluster_state, ClusterState::Existing);
    }

    #[test]
    fn a_name_alone_makes_a_cluster_of_one() {
        let config = serve_args(&["--name", "solo", "--single"])
            .config()
            .unwrap();
        assert_eq!(config.initial_cluster, "solo=http://127.0.0.1:2380");
    }

    #[test]
    fn tls_flags_set_the_config_and_are_checked() {
        let config = serve_args(&[
            "--name",
            "n1",
            "--listen-client-urls",
            "https://127.0.0.1:2379",
            "--cert-file",
            "pki/n1.crt",
            "--key-file",
            "pki/n1.key",
            "--trusted-ca-file",
            "pki/ca.crt",
            "--client-cert-auth",
            "--peer-cert-file",
            "pki/n1.crt",
            "--peer-key-file",
            "pki/n1.key",
        ])
        .config()
        .unwrap();
        assert_eq!(config.cert_file, Some(PathBuf::from("pki/n1.crt")));
        assert_eq!(config.trusted_ca_file, Some(PathBuf::from("pki/ca.crt")));
        assert!(config.client_cert_auth && !config.peer_client_cert_auth);
        assert_eq!(config.peer_key_file, Some(PathBuf::from("pki/n1.key")));

        let err = serve_args(&["--listen-client-urls", "https://127.0.0.1:2379"])
            .config()
            .unwrap_err();
        assert!(err.to_string().contains("cert-file"), "{err}");
    }

    #[test]
    fn invalid_values_are_reported() {
        let err = serve_args(&["--election-timeout", "10"])
            .config()
            .unwrap_err();
        assert!(err.to_string().contains("election-timeout"), "{err}");
        assert!(Cli::try_parse_from(["keel", "serve", "--auto-compaction-mode", "x"]).is_err());
    }

    #[test]
    fn the_scheduler_config_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scheduler.yaml");
        let head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";
        std::fs::write(
            &file,
            format!("{head}profiles:\n- schedulerName: packing\n"),
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let config = serve_args(&["--scheduler-config", path]).config().unwrap();
        assert_eq!(config.scheduler_config.as_deref(), Some(file.as_path()));
        std::fs::write(
            &file,
            format!("{head}profiles:\n- plugins:\n    score:\n      enabled: [{{name: Magic}}]\n"),
        )
        .unwrap();
        let err = serve_args(&["--scheduler-config", path])
            .config()
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "profiles[0].plugins.score.enabled[0].name: Invalid value: \"Magic\": unknown plugin"
            ),
            "{err}"
        );
    }
}
