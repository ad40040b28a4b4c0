//! `keel agent`: the node agent (kubelet's role) for one node, or with `--hollow --nodes N`
//! for N hollow nodes in one process (`hollow-node-0…`), for scale runs.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use keel_agent::config::{parse_labels, parse_taints};
use keel_agent::{NodeConfig, Reserved};

use crate::node_agent;

/// Flags of `keel agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The API server's URL (overrides the kubeconfig's).
    #[arg(long)]
    pub server: Option<String>,
    /// Credentials: a kubeconfig with the node's client certificate (`system:node:<name>`).
    #[arg(long, required_unless_present = "join", conflicts_with = "join")]
    pub kubeconfig: Option<PathBuf>,
    /// Join the cluster at this API server URL with a bootstrap token (`keel token create`
    /// prints the whole command): the node's credentials are requested by a
    /// CertificateSigningRequest and kept in `<data-dir>/kubeconfig`, renewed before expiry.
    #[arg(long, requires_all = ["token", "ca_cert_hash"])]
    pub join: Option<String>,
    /// The bootstrap token, `<id>.<secret>` (with --join).
    #[arg(long, requires = "join")]
    pub token: Option<String>,
    /// The cluster CA's public key pin, `sha256:<hex>` (with --join).
    #[arg(long, requires = "join")]
    pub ca_cert_hash: Option<String>,
    /// The client certificate lifetime to ask for, seconds (with --join; default: the
    /// signer's).
    #[arg(long, requires = "join")]
    pub certificate_expiration_seconds: Option<i32>,
    /// Renew the client certificate at this share of its life instead of kubelet's jittered
    /// 70–90% (tests).
    #[arg(long, requires = "join", hide = true)]
    pub certificate_rotation_threshold: Option<f64>,
    /// The Node's name (default: this machine's hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Where pods' volumes and logs live.
    #[arg(long, default_value = "/var/lib/keel-agent")]
    pub data_dir: PathBuf,
    /// The runtime of pods without a runtimeClassName.
    #[arg(long, default_value = node_agent::DEFAULT_RUNTIME)]
    pub runtime: String,
    /// Hollow nodes: pods as bookkeeping only (no processes), as kubemark's.
    #[arg(long)]
    pub hollow: bool,
    /// How many hollow nodes this process registers (with --hollow).
    #[arg(long, default_value_t = 1, requires = "hollow")]
    pub nodes: usize,
    /// The node's pod CIDR (default: wait for spec.podCIDR from the cluster). With --hollow
    /// and several nodes, the range each node's CIDR is carved from.
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// The node's address (InternalIP, pods' hostIP).
    #[arg(long, default_value = "127.0.0.1")]
    pub node_ip: IpAddr,
    /// Resources held back from pods: `cpu=500m,memory=1Gi,ephemeral-storage=1Gi`.
    #[arg(long)]
    pub system_reserved: Option<String>,
    /// Extra node labels: `key=value,…`.
    #[arg(long)]
    pub node_labels: Option<String>,
    /// Taints to register with: `key=value:NoSchedule,…`.
    #[arg(long)]
    pub register_with_taints: Option<String>,
    /// The agent API's serving certificate (PEM; a SAN for --node-ip), as kubelet's. With
    /// --tls-private-key-file and --client-ca-file it serves `kubectl logs` and `exec` to the
    /// API server; without them those answer 503.
    #[arg(long, requires_all = ["tls_private_key_file", "client_ca_file"])]
    pub tls_cert_file: Option<PathBuf>,
    /// Its key.
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// The CA the API server's client certificate (CN kube-apiserver-kubelet-client) must be
    /// signed by.
    #[arg(long, requires = "tls_cert_file")]
    pub client_ca_file: Option<PathBuf>,
    /// The agent API's port on --node-ip (kubelet's 10250; 0: any free port).
    #[arg(long, default_value_t = 10250)]
    pub port: u16,
    /// Run the node proxy (kube-proxy's job) beside the node: ClusterIPs on the link
    /// `keel-svc`, NodePorts on --node-ip, with the node's credentials (list/watch of services
    /// and endpointslices: kube's `system:node-proxier`, which keel binds to system:nodes).
    #[arg(long, conflicts_with = "hollow")]
    pub proxy: bool,
    /// The link the node proxy puts ClusterIPs on (one per network namespace: two proxies on
    /// one host need two names).
    #[arg(long, default_value = "keel-svc", requires = "proxy")]
    pub proxy_interface: String,
    /// The cluster's service range, routed unreachable on this node so an unheld ClusterIP
    /// never leaves it (with --proxy).
    #[arg(long, requires = "proxy")]
    pub service_cluster_ip_range: Option<String>,
    /// The cluster DNS ClusterIP pods' resolv.conf points at (kubelet's --cluster-dns).
    #[arg(long)]
    pub cluster_dns: Option<IpAddr>,
}

impl AgentArgs {
    /// The nodes these flags describe.
    pub fn nodes(&self) -> anyhow::Result<Vec<NodeConfig>> {
        let runtime = if self.hollow {
            "hollow"
        } else {
            self.runtime.as_str()
        };
        let reserved = match &self.system_reserved {
            Some(text) => Reserved::parse(text)?,
            None => Reserved::default(),
        };
        let labels = parse_labels(self.node_labels.as_deref().unwrap_or(""))?;
        let taints = parse_taints(self.register_with_taints.as_deref().unwrap_or(""))?;
        let count = if self.hollow { self.nodes.max(1) } else { 1 };
        if self.tls_cert_file.is_some() && count > 1 {
            anyhow::bail!("--tls-cert-file serves one node's agent API; give it without --nodes");
        }
        let api = self.agent_api()?;
        let names: Vec<String> = match (&self.node_name, self.hollow && count > 1) {
            (Some(name), false) => vec![name.clone()],
            (None, false) if !self.hollow => vec![hostname()?],
            (prefix, _) => {
                let prefix = prefix.as_deref().unwrap_or("hollow-node");
                (0..count).map(|i| format!("{prefix}-{i}")).collect()
            }
        };
        let cidrs: Vec<Option<String>> = match (&self.pod_cidr, count > 1) {
            (Some(range), true) => node_agent::split_cidr(range, count)?
                .into_iter()
                .map(Some)
                .collect(),
            (Some(cidr), false) => vec![Some(cidr.clone())],
            // A thousand hollow nodes cannot wait for the IPAM's /24s: they carve the
            // link-local range instead (their IPs are bookkeeping only).
            (None, true) => node_agent::split_cidr("169.254.0.0/16", count)?
                .into_iter()
                .map(Some)
                .collect(),
            (None, false) => vec![None],
        };
        Ok(names
            .into_iter()
            .zip(cidrs)
            .map(|(name, cidr)| {
                let data_dir = if count > 1 {
                    self.data_dir.join(&name)
                } else {
                    self.data_dir.clone()
                };
                let mut config = NodeConfig::new(&name, data_dir, runtime);
                config.address = self.node_ip;
                config.pod_cidr = cidr;
                config.system_reserved = reserved.clone();
                config.labels = labels.clone();
                config.taints = taints.clone();
                config.api = api.clone();
                config.cluster_dns.nameservers.extend(self.cluster_dns);
                config
            })
            .collect())
    }

    /// The agent API these flags ask for: its address, TLS and the one client allowed.
    fn agent_api(&self) -> anyhow::Result<Option<keel_agent::server::ApiConfig>> {
        let (Some(cert), Some(key), Some(ca)) = (
            &self.tls_cert_file,
            &self.tls_private_key_file,
            &self.client_ca_file,
        ) else {
            return Ok(None);
        };
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        };
        keel_agent::server::ApiConfig::for_api_server(
            std::net::SocketAddr::new(self.node_ip, self.port),
            &read(cert)?,
            &read(key)?,
            &read(ca)?,
        )
        .map(Some)
        .map_err(|e| anyhow::anyhow!("the agent API's certificate: {e}"))
    }

    /// Runs the agent until Ctrl-C or SIGTERM.
    pub async fn execute(self) -> anyhow::Result<()> {
        let nodes = self.nodes()?;
        let client = match &self.kubeconfig {
            Some(kubeconfig) => node_agent::client(kubeconfig, self.server.as_deref()).await?,
            None => self.join(&nodes).await?,
        };
        // Hollow nodes get no host runtime: a thousand of them must not make bridges.
        let host_shim = if self.hollow {
            None
        } else {
            Some(node_agent::shim_command()?)
        };
        println!(
            "keel agent: {} node(s), runtime {}",
            nodes.len(),
            nodes[0].default_runtime
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let proxy = self.proxy.then(|| {
            let mut config = keel_agent::proxy::ProxyConfig::new(
                self.node_ip,
                self.service_cluster_ip_range.as_deref(),
            );
            config.interface = self.proxy_interface.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(keel_agent::proxy::run(client.clone(), config, async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        });
        let mut agent_stopped = stopped;
        let agent = keel_agent::run(
            client,
            nodes,
            node_agent::make_runtimes(host_shim, None, Default::default()),
            async move {
                let _ = agent_stopped.wait_for(|s| *s).await;
            },
        );
        run_until_stopped(stop, agent, proxy).await
    }
}

/// Runs the agent (and its proxy) until Ctrl-C or SIGTERM, or until either ends first on its
/// own: an agent that fails as it starts (an unusable data dir, a taken port) or a proxy that
/// cannot make its link exits at once with the error rather than wait for a signal. Either
/// way both are stopped, and the proxy removes its link and route.
async fn run_until_stopped(
    stop: tokio::sync::watch::Sender<bool>,
    agent: impl std::future::Future<Output = keel_agent::Result<()>>,
    proxy: Option<tokio::task::JoinHandle<keel_agent::Result<()>>>,
) -> anyhow::Result<()> {
    tokio::pin!(agent);
    let mut proxy = proxy;
    let proxy_ended = async {
        match proxy.as_mut() {
            Some(task) => Some(task.await),
            None => std::future::pending().await,
        }
    };
    let (agent_result, proxy_result) = tokio::select! {
        result = &mut agent => (Some(result), None),
        ended = proxy_ended => (None, ended),
        () = super::serve::shutdown_signal() => (None, None),
    };
    let _ = stop.send(true);
    let agent_result = match agent_result {
        Some(result) => result,
        None => agent.await,
    };
    let proxy_result = match (proxy_result, proxy) {
        (Some(ended), _) => Some(ended),
        (None, Some(task)) => Some(task.await),
        (None, None) => None,
    };
    agent_result.context("keel agent")?;
    if let Some(ended) = proxy_result {
        ended?.context("keel agent: node proxy")?;
    }
    Ok(())
}

impl AgentArgs {
    /// `--join`: the node's client from a bootstrap token (or an earlier join's kubeconfig).
    async fn join(&self, nodes: &[NodeConfig]) -> anyhow::Result<kube::Client> {
        let [node] = nodes else {
            anyhow::bail!("--join joins one node; give it without --nodes");
        };
        let config = crate::node_join::JoinConfig {
            server: self.join.clone().unwrap_or_default(),
            token: self.token.clone().unwrap_or_default(),
            ca_cert_hash: self.ca_cert_hash.clone().unwrap_or_default(),
            node_name: node.name.clone(),
            data_dir: self.data_dir.clone(),
            expiration_seconds: self.certificate_expiration_seconds,
            rotation_threshold: self.certificate_rotation_threshold,
        };
        if keel_apiserver::auth::parse_bootstrap_token(&config.token).is_none() {
            anyhow::bail!(
                "--token: expected <6 of a-z0-9>.<16 of a-z0-9>, as `keel token create` prints"
            );
        }
        crate::node_join::join(config).await
    }
}

fn hostname() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("cannot read the hostname; give --node-name")?;
    Ok(name.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> super::AgentArgs {
        let mut all = vec!["keel", "agent", "--kubeconfig", "k"];
        all.extend(args);
        match Cli::try_parse_from(all).unwrap().command {
            Some(Command::Agent(args)) => args,
            _ => panic!("parsed as another subcommand"),
        }
    }

    #[test]
    fn flags_make_nodes() {
        let one = parse(&[
            "--node-name",
            "n1",
            "--pod-cidr",
            "169.254.1.0/24",
            "--system-reserved",
            "cpu=1",
            "--node-labels",
            "zone=a",
            "--register-with-taints",
            "gpu=yes:NoSchedule",
        ]);
        let nodes = one.nodes().unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, "n1");
        assert_eq!(nodes[0].pod_cidr.as_deref(), Some("169.254.1.0/24"));
        assert_eq!(nodes[0].system_reserved.cpu_millis, 1000);
        assert_eq!(nodes[0].labels["zone"], "a");
        assert_eq!(nodes[0].taints[0].effect, "NoSchedule");
        let hollow = parse(&["--hollow", "--nodes", "3"]).nodes().unwrap();
        let names: Vec<_> = hollow.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["hollow-node-0", "hollow-node-1", "hollow-node-2"]);
        assert!(hollow.iter().all(|n| n.hollow && n.pod_cidr.is_some()));
        assert!(
            Cli::try_parse_from(["keel", "agent", "--kubeconfig", "k", "--nodes", "2"]).is_err()
        );
        assert!(parse(&["--system-reserved", "disk=1"]).nodes().is_err());
        let proxied = parse(&[
            "--proxy",
            "--service-cluster-ip-range",
            "169.254.64.0/20",
            "--cluster-dns",
            "169.254.64.10",
        ]);
        assert!(proxied.proxy);
        let nodes = proxied.nodes().unwrap();
        assert_eq!(
            nodes[0].cluster_dns.nameservers,
            ["169.254.64.10".parse::<std::net::IpAddr>().unwrap()]
        );
        assert!(Cli::try_parse_from([
            "keel",
            "agent",
            "--kubeconfig",
            "k",
            "--service-cluster-ip-range",
            "169.254.64.0/20"
        ])
        .is_err());
    }
}
