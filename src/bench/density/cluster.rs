//! The cluster a density run measures: a control plane of `keel dev`'s kind started in this
//! process (members, API servers over HTTPS, scheduler and controllers in each member), or
//! one a kubeconfig points at; and the hollow nodes the run registers on it.
//!
//! In-process, everything is one process, so its CPU time and RSS are the whole control
//! plane's, hollow nodes and load generator included: an upper bound on each member's, and
//! the report says so. Member processes would split them, at the cost of finding the binary
//! and a second set of certificates; one process also keeps the run free of leftovers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use serde::Serialize;
use tokio::sync::watch;

use crate::cli::dev::{DevArgs, DevCluster};
use crate::node_agent;

/// What one member holds at the end of a run.
#[derive(Clone, Debug, Serialize)]
pub struct MemberStats {
    /// The member's name.
    pub name: String,
    /// Keys in its keyspace.
    pub keys: i64,
    /// Bytes its database occupies.
    pub db_bytes: u64,
    /// Bytes of its whole data dir (database, Raft log, snapshots).
    pub data_dir_bytes: u64,
}

/// The cluster under test.
pub struct Target {
    /// One admin client per API server.
    pub clients: Vec<kube::Client>,
    /// The in-process control plane, if the run started one.
    dev: Option<DevCluster>,
    stop_nodes: watch::Sender<bool>,
    nodes: Vec<tokio::task::JoinHandle<keel_agent::Result<()>>>,
    node_dir: tempfile::TempDir,
}

impl Target {
    /// Starts `members` members with an API server, scheduler and controllers each.
    pub async fn in_process(members: usize) -> anyhow::Result<Target> {
        let mut dev = DevCluster::start(&DevArgs::on_free_ports(members)).await?;
        let kubeconfig = dev.start_control_plane(0).await?;
        for (apiserver, config) in dev.apiservers.iter_mut().zip(&dev.configs) {
            // No node IPAM: hollow nodes bring their own pod CIDRs, carved from the
            // link-local /16 as `keel agent --hollow` carves them.
            apiserver.start_components(&config.name, None);
        }
        let mut clients = Vec::new();
        for apiserver in &dev.apiservers {
            let server = format!("https://{}", apiserver.addr);
            clients.push(node_agent::client(&kubeconfig, Some(&server)).await?);
        }
        Target::with(clients, Some(dev))
    }

    /// The cluster `kubeconfig` points at.
    pub async fn from_kubeconfig(kubeconfig: &Path) -> anyhow::Result<Target> {
        let client = node_agent::client(kubeconfig, None).await?;
        Target::with(vec![client], None)
    }

    fn with(clients: Vec<kube::Client>, dev: Option<DevCluster>) -> anyhow::Result<Target> {
        Ok(Target {
            clients,
            dev,
            stop_nodes: watch::channel(false).0,
            nodes: Vec::new(),
            node_dir: tempfile::Builder::new()
                .prefix("keel-density-nodes-")
                .tempdir()?,
        })
    }

    /// Whether the control plane runs in this process.
    pub fn in_this_process(&self) -> bool {
        self.dev.is_some()
    }

    /// Registers `count` hollow nodes named `<prefix>-0…`, spread over the API servers (one
    /// agent per server, as one `keel agent --hollow --nodes` process each).
    pub fn start_hollow_nodes(&mut self, prefix: &str, count: usize) -> anyhow::Result<()> {
        let cidrs = node_agent::split_cidr("169.254.0.0/16", count)?;
        let servers = self.clients.len();
        for (s, client) in self.clients.iter().enumerate() {
            let configs: Vec<keel_agent::NodeConfig> = (s..count)
                .step_by(servers)
                .map(|i| {
                    let name = format!("{prefix}-{i}");
                    let mut config = keel_agent::NodeConfig::new(
                        &name,
                        self.node_dir.path().join(&name),
                        "hollow",
                    );
                    config.pod_cidr = Some(cidrs[i].clone());
                    config
                })
                .collect();
            if configs.is_empty() {
                continue;
            }
            let mut stopped = self.stop_nodes.subscribe();
            self.nodes.push(tokio::spawn(keel_agent::run(
                client.clone(),
                configs,
                node_agent::make_runtimes(None, None, Default::default()),
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            )));
        }
        Ok(())
    }

    /// How many nodes named `<prefix>-…` are Ready.
    pub async fn ready_nodes(&self, prefix: &str) -> kube::Result<usize> {
        let nodes = kube::Api::<Node>::all(self.clients[0].clone())
            .list(&ListParams::default())
            .await?;
        Ok(nodes
            .items
            .iter()
            .filter(|n| {
                n.metadata
                    .name
                    .as_deref()
                    .is_some_and(|name| name.starts_with(&format!("{prefix}-")))
            })
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count())
    }

    /// Each member's keys and bytes on disk (none for a cluster elsewhere).
    pub fn member_stats(&self) -> Vec<MemberStats> {
        let Some(dev) = &self.dev else {
            return Vec::new();
        };
        dev.members
            .iter()
            .zip(&dev.configs)
            .map(|(member, config)| {
                let store = crate::replica::Replica::store(&*member.replica);
                let keys = store
                    .range(&keel_store::RangeRequest {
                        key: vec![0],
                        range_end: vec![0],
                        count_only: true,
                        ..Default::default()
                    })
                    .map(|r| r.count)
                    .unwrap_or(-1);
                MemberStats {
                    name: config.name.clone(),
                    keys,
                    db_bytes: store.size_on_disk().unwrap_or(0),
                    data_dir_bytes: dir_bytes(&config.data_dir),
                }
            })
            .collect()
    }

    /// Stops the hollow nodes, then the control plane if it is this process's.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop_nodes.send(true);
        for node in self.nodes {
            match node.await {
                Ok(Err(e)) => tracing::warn!("hollow nodes: {e}"),
                Err(e) => tracing::warn!("hollow nodes: {e}"),
                Ok(Ok(())) => {}
            }
        }
        if let Some(dev) = self.dev {
            dev.stop().await.context("stopping the control plane")?;
        }
        Ok(())
    }
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => pending.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// This process's CPU seconds (user + system) and resident set, now and at its peak.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ProcessSample {
    /// CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident MiB now.
    pub rss_mib: f64,
    /// Peak resident MiB.
    pub peak_rss_mib: f64,
}

impl ProcessSample {
    /// Reads /proc/self (zeros where it cannot).
    pub fn now() -> ProcessSample {
        // /proc reports CPU time in USER_HZ ticks, 100 a second on every Linux ABI.
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                // Fields after the command's closing parenthesis; utime and stime are the
                // 12th and 13th of those.
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let utime: f64 = fields.get(11)?.parse().ok()?;
                let stime: f64 = fields.get(12)?.parse().ok()?;
                Some((utime + stime) / 100.0)
            })
            .unwrap_or(0.0);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |field: &str| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        ProcessSample {
            cpu_seconds,
            rss_mib: kib("VmRSS:") / 1024.0,
            peak_rss_mib: kib("VmHWM:") / 1024.0,
        }
    }
}

/// Shared, so the sampler task and the run both see it.
pub type Samples = Arc<std::sync::Mutex<Vec<(f64, ProcessSample)>>>;
