//! The node agent's wiring in the keel binary: which runtimes a node gets, the node settings
//! `keel agent` builds from its flags (hollow nodes' pod CIDRs carved from one range), the
//! agent's kube client from a kubeconfig, and the agents `keel dev` starts beside its members
//! (each with its own data dir and a `system:node:<name>` client certificate from keel's PKI).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use keel_agent::{MakeRuntimes, NodeConfig, Runtimes};
use keel_runtime::hollow::{Hollow, Ipv4Cidr};
use keel_runtime::host::{HostConfig, HostRuntime};
use std::os::unix::fs::MetadataExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The runtime a node uses for pods that name no RuntimeClass (`keel agent --runtime`).
pub const DEFAULT_RUNTIME: &str = "host";

/// The runtime `keel dev`'s nodes use by default: `host` when this process may make network
/// namespaces and cgroups (it runs as root), else `hollow`, so `keel dev` still comes up for a
/// user without root (pods then run as bookkeeping only).
pub fn dev_runtime() -> &'static str {
    // /proc/self belongs to the process's effective user: no libc call (and no unsafe) needed.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root {
        "host"
    } else {
        "hollow"
    }
}

/// The command that runs the host runtime's shim: this binary's hidden `runtime-shim` mode.
/// `/proc/self/exe`, resolved by each child as it execs, is the running binary even when its
/// file has since been replaced (an upgrade, a rebuild), which a path would not be.
pub fn shim_command() -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        std::path::Path::new("/proc/self/exe").exists(),
        "the host runtime needs /proc (Linux)"
    );
    Ok(vec!["/proc/self/exe".into(), "runtime-shim".into()])
}

/// The host runtimes an agent made, kept so that `keel dev` can tear down what its pods left
/// (processes, network namespaces, bridges, cgroups) when it stops.
pub type MadeHostRuntimes = Arc<std::sync::Mutex<Vec<HostRuntime>>>;

/// The runtimes every node has, by handler: `hollow` (pod IPs from the node's CIDR) and, given
/// the command that runs its shim, `host` (real processes in the pod's namespaces and cgroups)
/// and `embedded` (the same, on an overlay of an OCI image from the image store in `images`,
/// by default `<node data dir>/images`), each host runtime also recorded in `made`. Hollow
/// agents pass `None`: a thousand of them must not make bridges and cgroups.
pub fn make_runtimes(
    host_shim: Option<Vec<String>>,
    images: Option<PathBuf>,
    made: MadeHostRuntimes,
) -> MakeRuntimes {
    Arc::new(move |context| {
        let cidr = context.pod_cidr.map(Ipv4Cidr::parse).transpose()?;
        let runtimes = Runtimes::new().with(Hollow::new(cidr));
        let (Some(shim), Some(pod_cidr)) = (&host_shim, context.pod_cidr) else {
            return Ok(runtimes);
        };
        let config = host_config(context.data_dir, context.node_name, pod_cidr, shim.clone())?;
        let host = HostRuntime::new(config).map_err(|e| format!("the host runtime: {e}"))?;
        made.lock().expect("not poisoned").push(host.clone());
        let store = images
            .clone()
            .unwrap_or_else(|| context.data_dir.join("images"));
        let store = keel_runtime::image::ImageStore::open(store)
            .map_err(|e| format!("the embedded runtime: {e}"))?;
        Ok(runtimes.with(host.embedded(store)).with(host))
    })
}

/// Where and how node `node_name`'s agent, with data dir `data_dir`, runs host pods: so a
/// later process (a cleanup, a test) finds what the agent made.
pub fn host_config(
    data_dir: &Path,
    node_name: &str,
    pod_cidr: &str,
    shim: Vec<String>,
) -> Result<HostConfig, String> {
    Ok(HostConfig {
        data_dir: data_dir.join("runtime-host"),
        pod_cidr: pod_cidr
            .parse()
            .map_err(|e| format!("pod CIDR {pod_cidr}: {e}"))?,
        bridge: bridge_name(node_name),
        cgroup_parent: format!("keel-{node_name}"),
        shim,
    })
}

/// A node's bridge name: at most 15 bytes (the kernel's limit), distinct per node so that
/// several agents share one machine (`keel dev --nodes 3`).
fn bridge_name(node: &str) -> String {
    format!("keel{:08x}", crc32fast::hash(node.as_bytes()))
}

/// `nodes` subnets of `range`, one per hollow node: /24s when they fit, smaller down to /26
/// (61 pods each) for more nodes.
pub fn split_cidr(range: &str, nodes: usize) -> anyhow::Result<Vec<String>> {
    let base = Ipv4Cidr::parse(range).map_err(anyhow::Error::msg)?;
    let (network, prefix) = {
        let text = base.to_string();
        let (address, prefix) = text.split_once('/').expect("a CIDR's text");
        (
            u32::from(address.parse::<std::net::Ipv4Addr>()?),
            prefix.parse::<u32>()?,
        )
    };
    let bits = usize::BITS - nodes.saturating_sub(1).leading_zeros();
    let subnet_prefix = (prefix + bits).max(24);
    anyhow::ensure!(
        subnet_prefix <= 26,
        "--pod-cidr {range} is too small for {nodes} nodes (each needs at least a /26)"
    );
    Ok((0..nodes as u32)
        .map(|i| {
            let start = network + (i << (32 - subnet_prefix));
            format!("{}/{subnet_prefix}", std::net::Ipv4Addr::from(start))
        })
        .collect())
}

/// A kube client of `kubeconfig`, pointed at `server` when given.
pub async fn client(kubeconfig: &Path, server: Option<&str>) -> anyhow::Result<kube::Client> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read {}", kubeconfig.display()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("{}", kubeconfig.display()))?;
    if let Some(server) = server {
        config.cluster_url = server.parse().context("--server is not a URL")?;
    }
    Ok(kube::Client::try_from(config)?)
}

/// Writes a kubeconfig for node `name` (client certificate `system:node:<name>` in group
/// `system:nodes`, issued by the CA in `pki`) to `dir/kubeconfig`; its path.
pub fn node_kubeconfig(
    pki: &Path,
    dir: &Path,
    name: &str,
    server: &str,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let file = format!("node-{name}");
    let options = crate::pki::Options {
        force: true,
        ..Default::default()
    };
    let issued = crate::pki::issue_user(
        pki,
        &file,
        &format!("system:node:{name}"),
        &["system:nodes"],
        &options,
    )?;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let path = dir.join("kubeconfig");
    crate::kubeconfig::Kubeconfig {
        name: "keel",
        server,
        ca_pem: &read(&pki.join("ca.crt"))?,
        cert_pem: &read(&issued.cert)?,
        key_pem: &read(&issued.key)?,
    }
    .write(&path)
    .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The agent API of node `name` at `address` (any free port): a serving certificate
/// `agent-<name>` for the address issued by the CA in `pki`, clients' certificates checked
/// against that CA, and only the API server's kubelet client allowed.
pub fn agent_api(
    pki: &Path,
    name: &str,
    address: std::net::IpAddr,
) -> anyhow::Result<keel_agent::server::ApiConfig> {
    let node = crate::pki::NodeSpec {
        name: format!("agent-{name}"),
        hosts: vec![
            crate::pki::Host::Ip(address),
            crate::pki::Host::Dns(name.to_owned()),
        ],
    };
    let options = crate::pki::Options {
        force: true,
        ..Default::default()
    };
    let issued = crate::pki::issue_nodes(pki, &[node], &options)?;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    keel_agent::server::ApiConfig::for_api_server(
        std::net::SocketAddr::new(address, 0),
        &read(&issued[0].cert)?,
        &read(&issued[0].key)?,
        &read(&pki.join("ca.crt"))?,
    )
    .map_err(|e| anyhow::anyhow!("the agent API of {name}: {e}"))
}

/// Node agents running in this process; [`RunningAgents::stop`] ends them.
pub struct RunningAgents {
    /// The nodes' names.
    pub names: Vec<String>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<keel_agent::Result<()>>>,
    host_runtimes: MadeHostRuntimes,
}

impl RunningAgents {
    /// Stops every agent, then removes what their pods left on this machine: `keel dev`'s
    /// cluster goes away whole, unlike a stopped kubelet's node, whose pods run on.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            match task.await {
                Ok(Err(e)) => tracing::warn!("node agent: {e}"),
                Err(e) => tracing::warn!("node agent: {e}"),
                Ok(Ok(())) => {}
            }
        }
        let runtimes = std::mem::take(&mut *self.host_runtimes.lock().expect("not poisoned"));
        for runtime in runtimes {
            if let Err(e) = runtime.teardown_all().await {
                tracing::warn!("tearing down a node's pods: {e}");
            }
        }
    }
}

/// The image store every agent of `keel dev` shares (so one `keel image import --data-dir
/// <dev data dir>` serves them all): `<dev data dir>/images`.
pub fn dev_image_store(root: &Path) -> PathBuf {
    root.join("images")
}

/// Starts `count` agents named `keel-node-0…`, each in its own process-local task with its own
/// client certificate and data dir `<root>/agents/<name>`, running pods on `runtime` by default;
/// each waits for the pod CIDR the node IPAM gives its node. Pods resolve names at
/// `cluster_dns` when given.
pub async fn start_dev_agents(
    root: &Path,
    pki: &Path,
    server: &str,
    count: usize,
    runtime: &str,
    cluster_dns: Option<std::net::IpAddr>,
) -> anyhow::Result<RunningAgents> {
    let (stop, stopped) = watch::channel(false);
    let mut names = Vec::new();
    let mut tasks = Vec::new();
    let shim = shim_command()?;
    let host_runtimes = MadeHostRuntimes::default();
    for i in 0..count {
        let name = format!("keel-node-{i}");
        let dir = root.join("agents").join(&name);
        let kubeconfig = node_kubeconfig(pki, &dir, &name, server)?;
        let client = client(&kubeconfig, None).await?;
        let mut config = NodeConfig::new(&name, dir, runtime);
        config.api = Some(agent_api(pki, &name, config.address)?);
        config.cluster_dns.nameservers.extend(cluster_dns);
        let mut stopped = stopped.clone();
        let agent = keel_agent::run(
            client,
            vec![config],
            make_runtimes(
                Some(shim.clone()),
                Some(dev_image_store(root)),
                host_runtimes.clone(),
            ),
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        );
        // An agent that ends early says why at once, not only when keel dev stops.
        let node = name.clone();
        tasks.push(tokio::spawn(async move {
            let result = agent.await;
            if let Err(e) = &result {
                tracing::error!("node agent {node} stopped: {e}");
            }
            result
        }));
        names.push(name);
    }
    Ok(RunningAgents {
        names,
        stop,
        tasks,
        host_runtimes,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hollow_nodes_share_one_range() {
        let two = super::split_cidr("169.254.64.0/18", 2).unwrap();
        assert_eq!(two, ["169.254.64.0/24", "169.254.65.0/24"]);
        let many = super::split_cidr("169.254.0.0/16", 1000).unwrap();
        assert_eq!(many.len(), 1000);
        assert_eq!(many[1], "169.254.0.64/26");
        assert_eq!(many[999], "169.254.249.192/26");
        assert!(super::split_cidr("169.254.0.0/16", 2000).is_err());
    }
}
