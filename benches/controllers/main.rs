//! The controller manager driving a large Deployment, on one in-process keel member with its
//! API server (127.0.0.1, a free port):
//!
//! 1. a Deployment of `--replicas` pods (1,000) from create until all are available;
//! 2. a rolling update of its template (maxSurge and maxUnavailable 25%, the defaults) until
//!    every pod is updated and available.
//!
//! For each: wall time; every API request the controller manager sent, by verb and resource,
//! against the least the work needs; and the controller manager's own CPU per pod it created.
//! The controller manager runs alone on its own thread (a current-thread Tokio runtime), its
//! requests handed to the API server's runtime (see `requests`), so that thread's CPU time
//! (/proc/self/task/TID/stat) is the controllers' and their kube client's, none of the
//! server's. There is no real node agent: `--nodes` Node objects exist, and the bench binds
//! each pod to one, marks it Running and Ready, and completes deletions (see `nodes`), so what
//! is measured is the controllers, not an agent.
//!
//! How to run: `cargo bench --bench controllers` (1,000 replicas; `-- --replicas 5000` for
//! another size). Run without `--bench` (as `cargo test --all-targets` does) it makes a run of
//! 20 replicas that fails if a pod is created twice or a phase does not finish.
//!
//! # Layout
//!
//! - `main.rs`: flags, the cluster, the controller manager's thread, the two phases, the
//!   report.
//! - `requests`: the counted client that keeps the server's work off that thread.
//! - `nodes`: the Nodes and the stand-in for scheduler and kubelets.
//! - `cpu`: a thread's CPU time from /proc.

mod cpu;
mod nodes;
mod requests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use comfy_table::{presets::ASCII_MARKDOWN, Table};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use keel::cli::dev::{DevArgs, DevCluster};
use keel_controllers::ControllersConfig;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use requests::{counted_client, difference, Counts, Requests};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const NAMESPACE: &str = "bench";
const DEPLOYMENT: &str = "web";

/// How long a phase may take before the run fails.
const PHASE_TIMEOUT: Duration = Duration::from_secs(1800);

/// `cargo bench --bench controllers -- [flags]`.
#[derive(Debug, Parser)]
#[command(
    name = "controllers",
    about = "the controller manager driving a large Deployment"
)]
struct Flags {
    /// Replicas of the Deployment [1000; 20 without --bench].
    #[arg(long)]
    replicas: Option<usize>,
    /// Node objects the pods are bound to.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Passed by `cargo bench`; without it the run is the small one of `cargo test`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one phase cost.
struct Phase {
    name: &'static str,
    wall: Duration,
    cpu_seconds: f64,
    requests: Counts,
    /// The fewest requests the phase's work needs, and what they are.
    minimum: (u64, String),
}

impl Phase {
    /// Successful requests of `verb` on `resource`.
    fn count(&self, verb: &str, resource: &str) -> u64 {
        self.requests
            .get(&(verb.to_owned(), resource.to_owned()))
            .map_or(0, |n| n.all - n.failed)
    }

    fn total(&self) -> u64 {
        self.requests.values().map(|n| n.all).sum()
    }

    fn failed(&self) -> u64 {
        self.requests.values().map(|n| n.failed).sum()
    }
}

fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    // Warnings (a lost Lease, expired expectations, a failed watch) explain a bad run.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let replicas = flags
        .replicas
        .unwrap_or(if flags.bench { 1000 } else { 20 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let phases = runtime.block_on(run(replicas, flags.nodes.max(1)))?;
    print_report(replicas, &phases);
    for phase in &phases {
        anyhow::ensure!(
            phase.count("create", "pods") == replicas as u64,
            "{}: {} pods created for {replicas} replicas",
            phase.name,
            phase.count("create", "pods")
        );
    }
    Ok(())
}

/// The controller manager on its own thread: its thread id, and the sender that stops it.
struct ControllerManager {
    tid: u64,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn start_controller_manager(
    cluster: &DevCluster,
    requests: Arc<Requests>,
) -> anyhow::Result<ControllerManager> {
    // Made here, on the server's runtime, where its requests are then sent.
    let server = cluster.apiservers[0].client("system:kube-controller-manager", &[]);
    let server_runtime = tokio::runtime::Handle::current();
    let config = ControllersConfig {
        // The bench's nodes have no agent renewing their Leases: keep the node lifecycle
        // controller from counting them as lost during the run.
        node_monitor_grace_period: PHASE_TIMEOUT * 4,
        node_startup_grace_period: PHASE_TIMEOUT * 4,
        ..ControllersConfig::new("bench-controller-manager")
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("controller-manager".into())
        .spawn(move || {
            let _ = tid_sender.send(cpu::current_thread_id());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let client = counted_client(server, server_runtime, requests);
                keel_controllers::run(client, config, async move {
                    let _ = stopped.await;
                })
                .await;
            });
        })?;
    let tid = tid.recv()?.context("no thread id from /proc/thread-self")?;
    Ok(ControllerManager { tid, stop, thread })
}

async fn run(replicas: usize, node_count: usize) -> anyhow::Result<Vec<Phase>> {
    let mut cluster = DevCluster::start_with(&DevArgs::on_free_ports(1), false)
        .await
        .context("cannot start the cluster")?;
    cluster.start_control_plane(0).await?;
    let admin = cluster.apiservers[0].client("admin", &["system:masters"]);
    wait_for_namespace(&admin, "kube-node-lease").await?;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    namespaces.create(&PostParams::default(), &ns).await?;
    let nodes = nodes::create_nodes(&admin, node_count).await?;
    let kubelets = nodes::start(admin.clone(), NAMESPACE, nodes);

    let requests = Arc::new(Requests::default());
    let manager = start_controller_manager(&cluster, Arc::clone(&requests))?;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NAMESPACE);
    // The controllers are up once they have made the namespace's default ServiceAccount.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(admin.clone(), NAMESPACE);
    poll(
        "the controllers to start",
        Duration::from_secs(60),
        || async { matches!(accounts.get_opt("default").await, Ok(Some(_))) },
    )
    .await?;

    let mut phases = Vec::new();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": DEPLOYMENT},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": DEPLOYMENT}},
            "template": {
                "metadata": {"labels": {"app": DEPLOYMENT}},
                "spec": {"containers": [{"name": "main", "image": "bench:1"}]},
            },
        },
    }))?;
    let created = measure(&manager, &requests, || async {
        deployments
            .create(&PostParams::default(), &deployment)
            .await?;
        rolled_out(&deployments, replicas).await
    })
    .await?;
    phases.push(Phase {
        name: "create to all available",
        minimum: (
            replicas as u64 + 3,
            format!("{replicas} pod creates, 1 ReplicaSet create, 1 status write each of the ReplicaSet and the Deployment"),
        ),
        ..created
    });

    let image = Patch::Strategic(json!({"spec": {"template": {"spec": {
        "containers": [{"name": "main", "image": "bench:2"}]}}}}));
    let updated = measure(&manager, &requests, || async {
        deployments
            .patch(DEPLOYMENT, &PatchParams::default(), &image)
            .await?;
        rolled_out(&deployments, replicas).await
    })
    .await?;
    phases.push(Phase {
        name: "rolling update to all updated and available",
        minimum: (
            2 * replicas as u64 + 4,
            format!("{replicas} pod creates and deletes, 1 ReplicaSet create, 1 scale of the old one, 1 status write each of both and the Deployment"),
        ),
        ..updated
    });

    let _ = manager.stop.send(());
    tokio::task::spawn_blocking(move || manager.thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the controller manager's thread panicked"))?;
    kubelets.abort();
    cluster.stop().await?;
    Ok(phases)
}

/// Runs `work`, with the wall time, the controller manager's CPU and its requests meanwhile.
async fn measure<F, Fut>(
    manager: &ControllerManager,
    requests: &Requests,
    work: F,
) -> anyhow::Result<Phase>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (before, cpu_before, started) = (
        requests.snapshot(),
        cpu::thread_cpu_seconds(manager.tid),
        Instant::now(),
    );
    tokio::time::timeout(PHASE_TIMEOUT, work())
        .await
        .context("the phase took too long")??;
    Ok(Phase {
        name: "",
        wall: started.elapsed(),
        cpu_seconds: cpu::thread_cpu_seconds(manager.tid) - cpu_before,
        requests: difference(&before, &requests.snapshot()),
        minimum: (0, String::new()),
    })
}

/// Waits until the Deployment's current generation is rolled out, as `kubectl rollout
/// status` judges it: every replica updated and available, no old one left.
async fn rolled_out(deployments: &Api<Deployment>, replicas: usize) -> anyhow::Result<()> {
    let replicas = replicas as i32;
    poll("the rollout", PHASE_TIMEOUT, || async {
        let Ok(d) = deployments.get(DEPLOYMENT).await else {
            return false;
        };
        d.status.is_some_and(|s| {
            s.observed_generation >= d.metadata.generation
                && s.updated_replicas == Some(replicas)
                && s.replicas == Some(replicas)
                && s.available_replicas == Some(replicas)
        })
    })
    .await
}

async fn wait_for_namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    poll("the system namespaces", Duration::from_secs(30), || async {
        matches!(namespaces.get_opt(name).await, Ok(Some(_)))
    })
    .await
}

/// Polls `check` every 50 ms until it holds, failing after `limit`.
async fn poll<F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn print_report(replicas: usize, phases: &[Phase]) {
    println!(
        "# keel-controllers benchmark\n\nA Deployment of {replicas} replicas on one in-process \
         member; the controller manager alone on its own thread.\n"
    );
    let mut summary = Table::new();
    summary.load_preset(ASCII_MARKDOWN).set_header([
        "phase",
        "wall time (s)",
        "requests",
        "failed",
        "minimum",
        "requests / minimum",
        "pods created",
        "controller CPU (s)",
        "CPU per pod created (ms)",
    ]);
    for phase in phases {
        let created = phase.count("create", "pods");
        summary.add_row([
            phase.name.to_owned(),
            format!("{:.2}", phase.wall.as_secs_f64()),
            phase.total().to_string(),
            phase.failed().to_string(),
            phase.minimum.0.to_string(),
            format!(
                "{:.2}",
                phase.total() as f64 / phase.minimum.0.max(1) as f64
            ),
            created.to_string(),
            format!("{:.2}", phase.cpu_seconds),
            format!("{:.3}", phase.cpu_seconds * 1000.0 / created.max(1) as f64),
        ]);
    }
    println!("{summary}\n");
    for phase in phases {
        println!("## {}\n\nMinimum: {}.\n", phase.name, phase.minimum.1);
        let mut table = Table::new();
        table
            .load_preset(ASCII_MARKDOWN)
            .set_header(["verb", "resource", "requests", "failed"]);
        let mut rows: Vec<_> = phase.requests.iter().collect();
        rows.sort_by(|a, b| b.1.all.cmp(&a.1.all).then(a.0.cmp(b.0)));
        for ((verb, resource), n) in rows {
            table.add_row([
                verb.clone(),
                resource.clone(),
                n.all.to_string(),
                n.failed.to_string(),
            ]);
        }
        println!("{table}\n");
    }
}
