//! keel-scheduler's throughput and latency, with the whole control plane in-process: a keel
//! cluster (3 members by default) whose members each run the API server, the scheduler and
//! the controller manager (both leader-elected), as `keel dev` does.
//!
//! The bench registers hollow nodes itself (Node objects with capacity and a Ready
//! condition, each with a heartbeat Lease it renews every 10 s as an agent would, so the
//! node lifecycle controller keeps them Ready), then creates pods from concurrent clients
//! and watches them: a pod's latency runs from just before its create request is sent to
//! the watch event that shows it bound (`spec.nodeName`). Pods are never run. The table
//! gives pods bound per second (first create sent → last pod bound) and the latency's
//! p50/p90/p99/max.
//!
//! How to run: `cargo bench --bench scheduler` (5,000 pods on 1,000 nodes, 3 members);
//! `-- --quick` for 1,000 pods on 100 nodes; `-- --nodes N --pods M --members K` for other
//! sizes; `-- --case spread` gives every pod a zone topology spread constraint (maxSkew 1,
//! DoNotSchedule) and `-- --case anti-affinity` a preferred pod anti-affinity on hostname
//! (kube's scheduler_perf cases of the same names). Run without `--bench` (as
//! `cargo test --all-targets` does) it makes a tiny run of each case that fails on any error.
//!
//! Clients are in-process (`RunningApiServer::client`: the API server's handler with no
//! socket), as the scheduler's own client is, so the numbers are the control plane's and
//! not TLS's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use comfy_table::{presets::ASCII_MARKDOWN, Table};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use keel::cli::dev::{DevArgs, DevCluster};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The namespace of the bench's pods.
const NAMESPACE: &str = "bench";
/// How often each hollow node renews its Lease (the kubelet's 10 s).
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// How long the run may take to bind every pod after the last create.
const BIND_DEADLINE: Duration = Duration::from_secs(300);

/// `cargo bench --bench scheduler -- [flags]`.
#[derive(Debug, Parser)]
#[command(
    name = "scheduler",
    about = "keel-scheduler: pods bound per second and latency"
)]
struct Flags {
    /// Hollow nodes [1000; --quick 100].
    #[arg(long)]
    nodes: Option<usize>,
    /// Pods created [5000; --quick 1000].
    #[arg(long)]
    pods: Option<usize>,
    /// Control-plane members [3; --quick 1].
    #[arg(long)]
    members: Option<usize>,
    /// Concurrent pod creators [32].
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// What the pods ask of the scheduler besides resources.
    #[arg(long, value_enum, default_value_t = Case::Basic)]
    case: Case,
    /// Smaller numbers: a smoke run.
    #[arg(long)]
    quick: bool,
    /// Passed by `cargo bench`; without it the run is the tiny one of `cargo test`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The pods' scheduling constraints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Case {
    /// Resource requests only (100m cpu, 128Mi).
    Basic,
    /// Plus a required topology spread over the 3 zones (maxSkew 1).
    Spread,
    /// Plus a preferred anti-affinity to the other bench pods on hostname (weight 100).
    AntiAffinity,
}

impl Case {
    fn label(self) -> &'static str {
        match self {
            Case::Basic => "basic (100m cpu, 128Mi)",
            Case::Spread => "zone spread, maxSkew 1",
            Case::AntiAffinity => "preferred anti-affinity",
        }
    }

    /// What the case adds to the pod spec.
    fn constraints(self) -> serde_json::Value {
        let selector = json!({"matchLabels": {"app": "bench"}});
        match self {
            Case::Basic => json!({}),
            Case::Spread => json!({"topologySpreadConstraints": [{"maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector}]}),
            Case::AntiAffinity => json!({"affinity": {"podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                    "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                        "labelSelector": selector}}]}}}),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let (nodes, pods, members) = if !flags.bench {
        (20, 100, 1)
    } else if flags.quick {
        (100, 1000, 1)
    } else {
        (1000, 5000, 3)
    };
    let nodes = flags.nodes.unwrap_or(nodes).max(1);
    let pods = flags.pods.unwrap_or(pods).max(1);
    let members = flags.members.unwrap_or(members).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The tiny run of `cargo test` tries every case; a bench run the one asked for.
    let cases = if flags.bench {
        vec![flags.case]
    } else {
        vec![Case::Basic, Case::Spread, Case::AntiAffinity]
    };
    for case in cases {
        runtime.block_on(run(case, nodes, pods, members, flags.clients.max(1)))?;
    }
    Ok(())
}

async fn run(
    case: Case,
    nodes: usize,
    pods: usize,
    members: usize,
    clients: usize,
) -> anyhow::Result<()> {
    let mut cluster = DevCluster::start_tuned(&DevArgs::on_free_ports(members), false, |_| {})
        .await
        .context("cluster")?;
    cluster
        .start_control_plane(0)
        .await
        .context("control plane")?;
    let admins: Vec<kube::Client> = cluster
        .apiservers
        .iter()
        .map(|a| a.client("kubernetes-admin", &["system:masters"]))
        .collect();
    wait_for_namespace(&admins[0], "kube-node-lease").await?;
    let namespaces = Api::<Namespace>::all(admins[0].clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;

    let setup = Instant::now();
    create_nodes(&admins, nodes, clients).await?;
    let heartbeats = tokio::spawn(renew_leases(admins.clone(), nodes));
    eprintln!("{nodes} nodes registered in {:.1?}", setup.elapsed());
    cluster.start_components();
    wait_for_scheduler_leader(&admins[0]).await?;

    let result = measure(&admins, case, pods, clients).await;
    heartbeats.abort();
    cluster.stop().await?;
    let (latencies, elapsed) = result?;
    print(case, nodes, pods, members, &latencies, elapsed);
    Ok(())
}

async fn wait_for_namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let namespaces = Api::<Namespace>::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while namespaces.get_opt(name).await?.is_none() {
        anyhow::ensure!(Instant::now() < deadline, "namespace {name} never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Waits until a scheduler leads, so the latencies measure scheduling, not an election.
async fn wait_for_scheduler_leader(client: &kube::Client) -> anyhow::Result<()> {
    let leases = Api::<Lease>::namespaced(client.clone(), "kube-system");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lease = leases.get_opt("keel-scheduler").await?;
        if lease.and_then(|l| l.spec?.holder_identity).is_some() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "no scheduler took the lead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn node_name(i: usize) -> String {
    format!("hollow-{i:04}")
}

/// Registers `count` Ready nodes of 32 cpu, 128Gi and 110 pods, and their Leases.
async fn create_nodes(admins: &[kube::Client], count: usize, clients: usize) -> anyhow::Result<()> {
    futures::stream::iter(0..count)
        .map(|i| {
            let client = admins[i % admins.len()].clone();
            async move {
                let name = node_name(i);
                let node: Node = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                        "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
                    "status": {
                        "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                        "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                        "conditions": [{"type": "Ready", "status": "True",
                            "reason": "KubeletReady", "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": Timestamp::now().to_string()}],
                    },
                }))?;
                Api::<Node>::all(client.clone())
                    .create(&PostParams::default(), &node)
                    .await?;
                let lease: Lease = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                        "renewTime": MicroTime(Timestamp::now())},
                }))?;
                Api::<Lease>::namespaced(client, "kube-node-lease")
                    .create(&PostParams::default(), &lease)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(clients)
        .try_collect::<()>()
        .await
}

/// Renews every node's Lease each [`LEASE_RENEW`], spread over the period, as agents do.
async fn renew_leases(admins: Vec<kube::Client>, count: usize) {
    let gap = LEASE_RENEW / count.max(1) as u32;
    let mut tick = tokio::time::interval(gap.max(Duration::from_micros(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in (0..count).cycle() {
        tick.tick().await;
        let leases = Api::<Lease>::namespaced(admins[i % admins.len()].clone(), "kube-node-lease");
        let patch = Patch::Merge(json!({"spec": {"renewTime": MicroTime(Timestamp::now())}}));
        let name = node_name(i);
        let params = PatchParams::default();
        tokio::spawn(async move {
            if let Err(error) = retrying(|| leases.patch(&name, &params, &patch)).await {
                eprintln!("lease {name}: {error}");
            }
        });
    }
}

/// Creates `pods` pods from `clients` concurrent creators and waits for all to be bound:
/// each pod's create-to-bound latency, and the time from the first create to the last bind.
async fn measure(
    admins: &[kube::Client],
    case: Case,
    pods: usize,
    clients: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (synced, mut is_synced) = tokio::sync::watch::channel(false);
    let all_bound = Arc::new(tokio::sync::Notify::new());
    let watch = {
        let api = Api::<Pod>::namespaced(admins[0].clone(), NAMESPACE);
        let bound = Arc::clone(&bound);
        let all_bound = Arc::clone(&all_bound);
        tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher::watcher(api, watcher::Config::default()));
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        let _ = synced.send(true);
                    }
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        let on_node = pod.spec.as_ref().and_then(|s| s.node_name.as_ref());
                        if on_node.is_some() {
                            let mut bound = bound.lock().unwrap();
                            let name = pod.metadata.name.clone().unwrap_or_default();
                            bound.entry(name).or_insert_with(Instant::now);
                            if bound.len() == pods {
                                all_bound.notify_one();
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(error) => eprintln!("watch: {error}"),
                }
            }
        })
    };
    is_synced.wait_for(|s| *s).await?;

    let start = Instant::now();
    futures::stream::iter(0..pods)
        .map(|i| {
            let api = Api::<Pod>::namespaced(admins[i % admins.len()].clone(), NAMESPACE);
            let sent = Arc::clone(&sent);
            async move {
                let name = format!("pod-{i:05}");
                let mut spec = json!({"containers": [{"name": "app",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]});
                if let (Some(spec), serde_json::Value::Object(extra)) =
                    (spec.as_object_mut(), case.constraints())
                {
                    spec.extend(extra);
                }
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"app": "bench"}},
                    "spec": spec,
                }))?;
                sent.lock().unwrap().insert(name.clone(), Instant::now());
                let params = PostParams::default();
                retrying(|| api.create(&params, &pod))
                    .await
                    .with_context(|| format!("create {name}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(clients)
        .try_collect::<()>()
        .await?;
    let created = start.elapsed();
    eprintln!("{pods} pods created in {created:.1?}");
    let done = all_bound.notified();
    let complete = bound.lock().unwrap().len() == pods;
    if !complete {
        tokio::time::timeout(BIND_DEADLINE, done)
            .await
            .map_err(|_| {
                anyhow::anyhow!("only {} of {pods} pods bound", bound.lock().unwrap().len())
            })?;
    }
    watch.abort();
    let sent = sent.lock().unwrap();
    let bound = bound.lock().unwrap();
    let last = bound.values().max().copied().unwrap_or(start);
    let mut latencies: Vec<Duration> = bound
        .iter()
        .filter_map(|(name, at)| Some(at.saturating_duration_since(*sent.get(name)?)))
        .collect();
    latencies.sort();
    anyhow::ensure!(
        latencies.len() == pods,
        "{} latencies for {pods} pods",
        latencies.len()
    );
    Ok((latencies, last - start))
}

/// Runs `call`, again after the server's Retry-After while it answers 429, as client-go
/// does.
async fn retrying<T, F, Fut>(mut call: F) -> kube::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<T>>,
{
    loop {
        match call().await {
            Err(kube::Error::Api(status)) if status.code == 429 => {
                let wait = status
                    .details
                    .as_ref()
                    .map_or(1, |d| d.retry_after_seconds.max(1));
                tokio::time::sleep(Duration::from_secs(u64::from(wait))).await;
            }
            other => return other,
        }
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn print(
    case: Case,
    nodes: usize,
    pods: usize,
    members: usize,
    latencies: &[Duration],
    elapsed: Duration,
) {
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "case",
        "nodes",
        "pods",
        "members",
        "pods/s bound",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
    ]);
    table.add_row([
        case.label().to_owned(),
        nodes.to_string(),
        pods.to_string(),
        members.to_string(),
        format!("{:.0}", pods as f64 / elapsed.as_secs_f64()),
        ms(quantile(latencies, 0.5)),
        ms(quantile(latencies, 0.9)),
        ms(quantile(latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    ]);
    println!("{table}");
}
