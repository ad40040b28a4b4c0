//! `keel dev`: a local cluster (3 members by default) in one process, for trying keel out.
//!
//! Every member is a real one — its own Raft log, keyspace, peer server and client API on
//! 127.0.0.1 — so clients see exactly what a three-machine cluster would show them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::net::TcpListener;

use std::sync::Arc;

use crate::config::Config;
use crate::control_plane::{start_apiserver, ApiServerTls, RunningApiServer};
use crate::kubeconfig::Kubeconfig;
use crate::member::{self, RunningMember};

/// The pods' network of `keel dev`: link-local, so dev pods never reach a real network; node
/// i gets a /24 of it (64 nodes).
pub const DEV_CLUSTER_CIDR: &str = "169.254.0.0/18";

/// Flags of `keel dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// How many members (an odd number from 1 to 7).
    #[arg(long, default_value_t = 3, value_parser = parse_size)]
    pub size: usize,
    /// Keep data here (one directory per member); by default a temporary directory that is
    /// removed on exit.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Client port of the first member; member i listens on `base-port + 10000 * i` for
    /// clients and the port after it for peers (2379/2380, 12379/12380, …). 0 picks free ports.
    #[arg(long, default_value_t = 2379)]
    pub base_port: u16,
    /// HTTPS port of the first member's Kubernetes API server; member i serves it on
    /// `apiserver-port + 10000 * i` (free ports when `--base-port 0`).
    #[arg(long, default_value_t = 6443)]
    pub apiserver_port: u16,
    /// How many node agents to start beside the members (`keel-node-0…`), each with its own
    /// data dir under the cluster's and a `system:node:<name>` client certificate.
    #[arg(long, default_value_t = 2)]
    pub nodes: usize,
    /// Port of the cluster DNS (keel-dns), UDP and TCP on 127.0.0.1 (0: a free port, printed).
    #[arg(long, default_value_t = 0)]
    pub dns_port: u16,
}

impl Default for DevArgs {
    fn default() -> Self {
        DevArgs {
            size: 3,
            data_dir: None,
            base_port: 2379,
            apiserver_port: 6443,
            nodes: 2,
            dns_port: 0,
        }
    }
}

/// `keel dev`'s command line: where and how many ([`DevArgs`]), and whether over TLS.
#[derive(Debug, Default, Args)]
pub struct DevCommand {
    /// Members, ports, data.
    #[command(flatten)]
    pub cluster: DevArgs,
    /// Generate a CA and certificates into the data dir and serve https on client and peer
    /// URLs, requiring client certificates on both (etcd's --client-cert-auth).
    #[arg(long)]
    pub tls: bool,
    /// The scheduler's KubeSchedulerConfiguration (YAML): profiles, plugins, weights.
    #[arg(long)]
    pub scheduler_config: Option<PathBuf>,
}

/// The certificates of a `keel dev --tls` cluster.
#[derive(Clone, Debug)]
pub struct DevTls {
    /// The directory holding them.
    pub dir: PathBuf,
    /// The CA certificate clients must trust.
    pub ca_file: PathBuf,
    /// A client certificate (CN `root`) and its key.
    pub client: crate::pki::Issued,
}

impl DevTls {
    /// The typed client's TLS settings for this cluster.
    pub fn client_tls(&self) -> crate::client::Tls {
        crate::client::Tls {
            ca_file: Some(self.ca_file.clone()),
            cert_file: Some(self.client.cert.clone()),
            key_file: Some(self.client.key.clone()),
            insecure_skip_verify: false,
        }
    }
}

fn parse_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n % 2 == 1 && n <= 7 => Ok(n),
        _ => Err(format!(
            "{text:?} is not an odd number of members from 1 to 7"
        )),
    }
}

/// A local cluster started by [`DevCluster::start`].
pub struct DevCluster {
    /// The members, in the order of `initial-cluster`.
    pub members: Vec<RunningMember>,
    /// Their configurations.
    pub configs: Vec<Config>,
    /// The certificates, when started with TLS.
    pub tls: Option<DevTls>,
    /// The members' Kubernetes API servers, once [`DevCluster::start_control_plane`] ran.
    pub apiservers: Vec<RunningApiServer>,
    /// The admin kubeconfig it wrote.
    pub kubeconfig: Option<PathBuf>,
    /// The node agents, once [`DevCluster::start_agents`] ran.
    pub agents: Option<crate::node_agent::RunningAgents>,
    _temp_dir: Option<tempfile::TempDir>,
}

impl DevArgs {
    /// `size` members on free ports of 127.0.0.1 with data in a temporary directory.
    pub fn on_free_ports(size: usize) -> DevArgs {
        DevArgs {
            size,
            data_dir: None,
            base_port: 0,
            apiserver_port: 0,
            nodes: 0,
            dns_port: 0,
        }
    }
}

impl DevCluster {
    /// Binds every member's listeners, then starts them all and waits for a leader.
    pub async fn start(args: &DevArgs) -> anyhow::Result<DevCluster> {
        DevCluster::start_with(args, false).await
    }

    /// [`DevCluster::start`], over https with client certificates required when `tls`: a
    /// CA, a certificate per member (valid for 127.0.0.1 and localhost) and a `root` client
    /// certificate are generated into `pki/` of the data dir.
    pub async fn start_with(args: &DevArgs, tls: bool) -> anyhow::Result<DevCluster> {
        DevCluster::start_tuned(args, tls, |_| {}).await
    }

    /// [`DevCluster::start_with`] with each member's configuration changed by `tune` first
    /// (tests lower `bcrypt-cost`, for one).
    pub async fn start_tuned(
        args: &DevArgs,
        tls: bool,
        tune: impl Fn(&mut Config),
    ) -> anyhow::Result<DevCluster> {
        let (root, temp_dir) = match &args.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new().prefix("keel-dev-").tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        let mut listeners = Vec::new();
        for i in 0..args.size {
            let (client_port, peer_port) =
                match member_port("base-port", args.base_port, i, args.size)? {
                    0 => (0, 0),
                    client => (client, client + 1),
                };
            let client = bind(client_port).await?;
            let peer = bind(peer_port).await?;
            listeners.push((client, peer));
        }
        let scheme = if tls { "https" } else { "http" };
        let urls: Vec<(String, String)> = listeners
            .iter()
            .map(|(client, peer)| {
                Ok((
                    format!("{scheme}://{}", client.local_addr()?),
                    format!("{scheme}://{}", peer.local_addr()?),
                ))
            })
            .collect::<std::io::Result<_>>()?;
        let initial_cluster = urls
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("n{}={peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let dev_tls = if tls {
            Some(make_pki(&root.join("pki"), args.size)?)
        } else {
            None
        };
        let configs: Vec<Config> = urls
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| Config {
                name: format!("n{}", i + 1),
                data_dir: root.join(format!("n{}", i + 1)),
                listen_client_urls: vec![client.clone()],
                advertise_client_urls: vec![client.clone()],
                listen_peer_urls: vec![peer.clone()],
                initial_advertise_peer_urls: vec![peer.clone()],
                initial_cluster: initial_cluster.clone(),
                service_cluster_ip_range: keel_apiserver::allocator::DEV_CLUSTER_IP_RANGE.into(),
                ..Config::default()
            })
            .map(|mut config| {
                tune(&mut config);
                match &dev_tls {
                    Some(dev_tls) => with_tls(config, dev_tls),
                    None => config,
                }
            })
            .collect();
        DevCluster::launch(configs, listeners, dev_tls, temp_dir).await
    }

    async fn launch(
        configs: Vec<Config>,
        listeners: Vec<(TcpListener, TcpListener)>,
        tls: Option<DevTls>,
        temp_dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<DevCluster> {
        let mut members = Vec::new();
        for (config, (client, peer)) in configs.iter().zip(listeners) {
            members.push(
                member::start(config, client, peer)
                    .await
                    .with_context(|| format!("cannot start member {}", config.name))?,
            );
        }
        let deadline = Duration::from_secs(30);
        for member in &members {
            member
                .wait_for_leader(deadline)
                .await
                .context("the cluster elected no leader within 30 s")?;
        }
        Ok(DevCluster {
            members,
            configs,
            tls,
            apiservers: Vec::new(),
            kubeconfig: None,
            agents: None,
            _temp_dir: temp_dir,
        })
    }

    /// `size` members on free ports of 127.0.0.1 with data in a temporary directory: what
    /// tests and examples want.
    pub async fn start_on_free_ports(size: usize) -> anyhow::Result<DevCluster> {
        DevCluster::start(&DevArgs::on_free_ports(size)).await
    }

    /// Stops every member and starts them again on the same addresses and data directories,
    /// as a machine reboot would.
    pub async fn restart(self) -> anyhow::Result<DevCluster> {
        let addrs: Vec<_> = self
            .members
            .iter()
            .map(|m| (m.client_addr, m.peer_addr))
            .collect();
        let DevCluster {
            members,
            configs,
            tls,
            apiservers,
            agents,
            _temp_dir: temp_dir,
            ..
        } = self;
        if let Some(agents) = agents {
            agents.stop().await;
        }
        for apiserver in apiservers {
            apiserver.stop().await;
        }
        for member in members {
            member.stop().await?;
        }
        let mut listeners = Vec::new();
        for (client, peer) in addrs {
            listeners.push((bind_addr(client).await?, bind_addr(peer).await?));
        }
        DevCluster::launch(configs, listeners, tls, temp_dir).await
    }

    /// The client URLs, comma-separated (for `--endpoints` and `ETCDCTL_ENDPOINTS`).
    pub fn endpoints(&self) -> String {
        self.configs
            .iter()
            .flat_map(|c| c.advertise_client_urls.first())
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts a Kubernetes API server in every member (HTTPS, certificates from the cluster's
    /// CA, made now if the cluster has none) and writes `admin.kubeconfig` (user
    /// `kubernetes-admin` in `system:masters`) beside the members' data. Returns its path.
    pub async fn start_control_plane(&mut self, apiserver_port: u16) -> anyhow::Result<PathBuf> {
        let root = self.configs[0]
            .data_dir
            .parent()
            .context("a member's data dir has no parent")?
            .to_owned();
        let pki = match &self.tls {
            Some(tls) => tls.clone(),
            None => make_pki(&root.join("pki"), self.members.len())?,
        };
        let admin = crate::pki::Issued {
            cert: pki.dir.join("admin.crt"),
            key: pki.dir.join("admin.key"),
        };
        if !admin.cert.exists() || !admin.key.exists() {
            let options = crate::pki::Options {
                force: true,
                ..Default::default()
            };
            crate::pki::issue_user(
                &pki.dir,
                "admin",
                "kubernetes-admin",
                &["system:masters"],
                &options,
            )?;
        }
        let service_account_key = pki.dir.join("sa.key");
        crate::control_plane::ensure_service_account_key(&service_account_key)?;
        for (i, (member, config)) in self.members.iter().zip(&self.configs).enumerate() {
            let port = member_port("apiserver-port", apiserver_port, i, self.members.len())?;
            let listener = bind(port).await?;
            let tls = ApiServerTls {
                cert_file: pki.dir.join(format!("{}.crt", config.name)),
                key_file: pki.dir.join(format!("{}.key", config.name)),
                client_ca_file: pki.ca_file.clone(),
                service_account_key_file: Some(service_account_key.clone()),
                kubelet_client: Some(crate::control_plane::KubeletClientFiles::in_pki(&pki.dir)?),
            };
            let replica: Arc<dyn crate::replica::Replica> = member.replica.clone();
            let apiserver = start_apiserver(
                replica,
                listener,
                &tls,
                keel_apiserver::Tokens::default(),
                config.service_network()?,
                Some(&config.data_dir.join("audit.log")),
            )
            .await
            .with_context(|| format!("cannot start the API server of {}", config.name))?;
            self.apiservers.push(apiserver);
        }
        let path = root.join("admin.kubeconfig");
        let server = format!("https://{}", self.apiservers[0].addr);
        let read = |p: &std::path::Path| {
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
        };
        Kubeconfig {
            name: "keel",
            server: &server,
            ca_pem: &read(&pki.ca_file)?,
            cert_pem: &read(&admin.cert)?,
            key_pem: &read(&admin.key)?,
        }
        .write(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
        self.kubeconfig = Some(path.clone());
        Ok(path)
    }

    /// Starts the scheduler and the controller manager in every member (leader-elected).
    pub fn start_components(&mut self) {
        for (apiserver, config) in self.apiservers.iter_mut().zip(&self.configs) {
            apiserver.start_components(&config.name, Some(DEV_CLUSTER_CIDR));
        }
    }

    /// Starts `count` node agents on the first API server (`keel-node-0…`); the node IPAM
    /// gives each a /24 of 169.254.0.0/18 for its pods.
    /// Their pods' resolv.conf points at `cluster_dns` when given.
    pub async fn start_agents(
        &mut self,
        count: usize,
        cluster_dns: Option<std::net::IpAddr>,
    ) -> anyhow::Result<()> {
        let root = self.configs[0]
            .data_dir
            .parent()
            .context("a member's data dir has no parent")?
            .to_owned();
        let server = format!("https://{}", self.apiservers[0].addr);
        let agents = crate::node_agent::start_dev_agents(
            &root,
            &root.join("pki"),
            &server,
            count,
            crate::node_agent::dev_runtime(),
            cluster_dns,
        )
        .await?;
        self.agents = Some(agents);
        Ok(())
    }

    /// Stops every node agent, member and API server.
    pub async fn stop(self) -> anyhow::Result<()> {
        if let Some(agents) = self.agents {
            agents.stop().await;
        }
        for apiserver in self.apiservers {
            apiserver.stop().await;
        }
        for member in self.members {
            member.stop().await?;
        }
        Ok(())
    }
}

/// Certificates for `size` members named n1.. on 127.0.0.1, and a `root` client.
fn make_pki(dir: &std::path::Path, size: usize) -> anyhow::Result<DevTls> {
    let nodes = (1..=size)
        .map(|i| crate::pki::NodeSpec {
            name: format!("n{i}"),
            hosts: vec![crate::pki::Host::Ip([127, 0, 0, 1].into())],
        })
        .collect::<Vec<_>>();
    // A kept data dir is started again with the certificates it already has.
    let ca_file = dir.join("ca.crt");
    let client = crate::pki::Issued {
        cert: dir.join("root.crt"),
        key: dir.join("root.key"),
    };
    let complete = [&ca_file, &client.cert]
        .into_iter()
        .cloned()
        .chain(nodes.iter().map(|n| dir.join(format!("{}.crt", n.name))))
        .all(|file| file.exists());
    if !complete {
        let options = crate::pki::Options {
            localhost: true,
            force: true,
            ..Default::default()
        };
        crate::pki::init(dir, &nodes, &options)?;
        crate::pki::issue_client(dir, "root", &options)?;
    }
    Ok(DevTls {
        dir: dir.to_owned(),
        ca_file,
        client,
    })
}

/// `config` serving https on both listeners with `tls`'s certificates, requiring client
/// certificates from clients and peers.
fn with_tls(config: Config, tls: &DevTls) -> Config {
    let cert = tls.dir.join(format!("{}.crt", config.name));
    let key = tls.dir.join(format!("{}.key", config.name));
    Config {
        cert_file: Some(cert.clone()),
        key_file: Some(key.clone()),
        trusted_ca_file: Some(tls.ca_file.clone()),
        client_cert_auth: true,
        peer_cert_file: Some(cert),
        peer_key_file: Some(key),
        peer_trusted_ca_file: Some(tls.ca_file.clone()),
        peer_client_cert_auth: true,
        ..config
    }
}

/// Member `index`'s port from `--FLAG base`: `base + 10000 * index` (0 stays 0: a free port),
/// with room for the port after it (a member's peer port).
fn member_port(flag: &str, base: u16, index: usize, size: usize) -> anyhow::Result<u16> {
    if base == 0 {
        return Ok(0);
    }
    u16::try_from(u32::from(base) + 10_000 * index as u32)
        .ok()
        .filter(|p| *p < u16::MAX)
        .with_context(|| format!("--{flag} {base} is too high for {size} members"))
}

async fn bind_addr(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} again"))
}

async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (is another keel or etcd running? try --base-port)"))
}

impl DevArgs {
    /// Runs the cluster (plain http) until Ctrl-C or SIGTERM.
    pub async fn execute(self) -> anyhow::Result<()> {
        DevCommand {
            cluster: self,
            tls: false,
            scheduler_config: None,
        }
        .execute()
        .await
    }
}

impl DevCommand {
    /// Runs the cluster until Ctrl-C or SIGTERM.
    pub async fn execute(self) -> anyhow::Result<()> {
        let mut cluster = DevCluster::start_with(&self.cluster, self.tls).await?;
        let apiserver_port = match self.cluster.base_port {
            0 => 0,
            _ => self.cluster.apiserver_port,
        };
        let kubeconfig = cluster.start_control_plane(apiserver_port).await?;
        if let Some(path) = &self.scheduler_config {
            let profiles = keel_scheduler::config_file::load(path)?;
            for apiserver in &mut cluster.apiservers {
                apiserver.scheduler_profiles = profiles.clone();
            }
        }
        cluster.start_components();
        let dns_ip = keel_apiserver::allocator::ServiceNetwork::default()
            .dns_service_ip()
            .expect("the dev range holds ten addresses");
        let dns = super::dns::ClusterDns::start(
            cluster.apiservers[0].client("system:keel-dns", &["system:masters"]),
            std::net::SocketAddr::from(([127, 0, 0, 1], self.cluster.dns_port)),
            dns_ip.into(),
        )
        .await?;
        let dns_addr = dns.address;
        // The node proxy needs root (a link, addresses, port 53), as the host runtime does:
        // without it, pods run as bookkeeping and there is nothing to proxy for.
        let proxy = if self.cluster.nodes > 0 && crate::node_agent::dev_runtime() == "host" {
            Some(start_dev_proxy(&cluster, &dns))
        } else {
            None
        };
        let dns_service_ip = proxy.as_ref().map(|p| p.dns_ip);
        if self.cluster.nodes > 0 {
            cluster
                .start_agents(self.cluster.nodes, dns_service_ip)
                .await?;
        }
        println!("keel dev: {} members up", cluster.members.len());
        let scheme = if cluster.tls.is_some() {
            "https"
        } else {
            "http"
        };
        for (member, config) in cluster.members.iter().zip(&cluster.configs) {
            println!(
                "  {}  id {:016x}  client {scheme}://{}  peer {scheme}://{}  data {}",
                config.name,
                member.id,
                member.client_addr,
                member.peer_addr,
                config.data_dir.display()
            );
        }
        let first = cluster.members[0].client_addr;
        let curl = match &cluster.tls {
            Some(tls) => format!(
                "curl --cacert {} --cert {} --key {}",
                tls.ca_file.display(),
                tls.client.cert.display(),
                tls.client.key.display()
            ),
            None => "curl".to_owned(),
        };
        println!();
        if let Some(tls) = &cluster.tls {
            println!(
                "TLS: CA {}, client certificate (CN root) {} and key {}",
                tls.ca_file.display(),
                tls.client.cert.display(),
                tls.client.key.display()
            );
            println!("export ETCDCTL_CACERT={}", tls.ca_file.display());
            println!("export ETCDCTL_CERT={}", tls.client.cert.display());
            println!("export ETCDCTL_KEY={}", tls.client.key.display());
        }
        println!("export ETCDCTL_ENDPOINTS={}", cluster.endpoints());
        println!(
            "try:  {curl} -s -X POST {scheme}://{first}/v3/kv/put -d '{{\"key\":\"Zm9v\",\"value\":\"YmFy\"}}'"
        );
        println!(
            "      {curl} -s -X POST {scheme}://{first}/v3/kv/range -d '{{\"key\":\"Zm9v\"}}'"
        );
        println!("      keelctl get foo");
        println!();
        let apiservers: Vec<String> = cluster
            .apiservers
            .iter()
            .map(|a| format!("https://{}", a.addr))
            .collect();
        println!("Kubernetes API: {}", apiservers.join(" "));
        if let Some(agents) = &cluster.agents {
            println!(
                "Nodes: {} (runtime {}; data under {})",
                agents.names.join(" "),
                crate::node_agent::dev_runtime(),
                kubeconfig
                    .parent()
                    .map_or_else(String::new, |p| p.join("agents").display().to_string())
            );
        }
        println!("export KUBECONFIG={}", kubeconfig.display());
        println!("try:  kubectl get namespaces");
        println!(
            "Cluster DNS: {dns_addr} (udp, tcp)  try:  dig @{} -p {} kubernetes.default.svc.cluster.local",
            dns_addr.ip(),
            dns_addr.port()
        );
        if let Some(proxy) = &proxy {
            println!(
                "Services: ClusterIPs in {} on link {}, NodePorts on 127.0.0.1; pods resolve names at {}",
                keel_apiserver::allocator::DEV_CLUSTER_IP_RANGE,
                DEV_PROXY_LINK,
                proxy.dns_ip
            );
        }
        println!("Ctrl-C stops the cluster.");
        let any_raft_stopped =
            futures::future::select_all(cluster.members.iter().zip(&cluster.configs).map(
                |(member, config)| {
                    Box::pin(async move { (config.name.clone(), member.raft_stopped().await) })
                },
            ));
        tokio::select! {
            _ = super::serve::shutdown_signal() => {}
            ((name, reason), _, _) = any_raft_stopped => {
                // As `keel serve` does: a member that cannot replicate must not look alive.
                anyhow::bail!("member {name}: Raft stopped: {reason}");
            }
        }
        dns.stop().await;
        if let Some(proxy) = proxy {
            proxy.stop().await;
        }
        cluster.stop().await
    }
}

/// The link holding `keel dev`'s ClusterIPs.
pub const DEV_PROXY_LINK: &str = "keel-svc";

/// `keel dev`'s node proxy: one for the machine (its nodes share the host's network
/// namespace), which also serves keel-dns (on loopback) at the ClusterIP kept for cluster DNS.
struct DevProxy {
    dns_ip: std::net::IpAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<keel_agent::Result<()>>,
}

impl DevProxy {
    async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Err(e)) => tracing::warn!("node proxy: {e}"),
            Err(e) => tracing::warn!("node proxy: {e}"),
            Ok(Ok(())) => {}
        }
    }
}

fn start_dev_proxy(cluster: &DevCluster, dns: &super::dns::ClusterDns) -> DevProxy {
    let mut config = keel_agent::proxy::ProxyConfig::new(
        [127, 0, 0, 1].into(),
        Some(keel_apiserver::allocator::DEV_CLUSTER_IP_RANGE),
    );
    config.interface = DEV_PROXY_LINK.into();
    config.fixed = dns.proxy_frontends();
    let dns_ip = dns.service_ip;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(keel_agent::proxy::run(
        cluster.apiservers[0].client("system:kube-proxy", &[]),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    DevProxy { dns_ip, stop, task }
}

#[cfg(test)]
mod tests {
    use super::DevCommand;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn size_must_be_odd_and_small() {
        let cli = Cli::try_parse_from(["keel", "dev", "--size", "5", "--base-port", "0"]).unwrap();
        let Some(Command::Dev(args)) = cli.command else {
            panic!("parsed as another subcommand");
        };
        assert_eq!(
            (args.cluster.size, args.cluster.base_port, args.tls),
            (5, 0, false)
        );
        let tls = Cli::try_parse_from(["keel", "dev", "--tls"]).unwrap();
        assert!(matches!(
            tls.command,
            Some(Command::Dev(DevCommand { tls: true, .. }))
        ));
        assert!(Cli::try_parse_from(["keel", "dev", "--size", "4"]).is_err());
        assert!(Cli::try_parse_from(["keel", "dev", "--size", "9"]).is_err());
        // No subcommand means `keel dev` with its defaults.
        assert!(Cli::try_parse_from(["keel"]).unwrap().command.is_none());
        let defaults = super::DevArgs::default();
        assert_eq!((defaults.size, defaults.base_port), (3, 2379));
    }
}
