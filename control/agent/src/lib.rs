//! keel-agent: keel's node agent (kubelet's role). It registers a Node, keeps its Lease and
//! status fresh, and runs the pods bound to it through a [`keel_runtime::Runtime`], reporting
//! their status and confirming their deletion. It reaches the cluster only through the
//! Kubernetes API with the `kube` crate, as any outside program would.
//!
//! One process may stand for many nodes (hollow mode, `keel agent --hollow --nodes 1000`):
//! each node has its own Lease renewals and pod workers, and all share one pod watch.
//!
//! ```text
//!             ┌─ node.rs: register (create or adopt), status document
//!  run() ─────┼─ heartbeat.rs: Lease every 10 s, conditions on change or every 5 min
//!   per node  └─ pods/: Manager ─> one Worker per pod ─> Runtime (runtimes.rs picks by class)
//!  once        source.rs: the shared pod watch, routed by spec.nodeName
//! ```
//!
//! Layout: `server/` (the agent's HTTPS API: logs and exec for the API server's proxy),
//! `proxy/` (the node proxy, kube-proxy's job: Services' ClusterIPs and NodePorts, run once
//! per network namespace by [`proxy::run`]),
//! `config.rs` (settings and flags' parsing), `machine.rs` (capacity and nodeInfo read
//! from the machine), `node.rs`, `heartbeat.rs`, `source.rs`, `pods/` (workers, status,
//! environment, volumes, back-off), `events.rs` (kubelet's events), `runtimes.rs` (runtimes
//! by RuntimeClass handler), `quantity.rs`, `error.rs`.

pub mod config;
pub mod error;
pub mod events;
pub mod heartbeat;
pub mod machine;
pub mod node;
pub mod pods;
pub mod proxy;
pub mod quantity;
pub mod runtimes;
pub mod server;
pub mod source;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use tokio::sync::{mpsc, watch};

pub use config::{NodeConfig, Reserved, Timings};
pub use error::{Error, Result};
pub use runtimes::{MakeRuntimes, RuntimeContext, Runtimes};

/// How many nodes register at once (a hollow agent of 1,000 would otherwise send 1,000
/// creates in one burst).
const REGISTRATION_CONCURRENCY: usize = 16;

/// Runs `nodes` until `shutdown` resolves: registers each, renews its Lease, posts its status
/// and runs its pods with the runtimes `make_runtimes` gives it. On shutdown, heartbeats stop
/// and the pods are left running (a restarted agent adopts them).
pub async fn run(
    client: kube::Client,
    nodes: Vec<NodeConfig>,
    make_runtimes: MakeRuntimes,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut routes = source::Routes::new();
    let mut receivers = Vec::new();
    for node in &nodes {
        let (sender, receiver) = mpsc::unbounded_channel();
        routes.insert(node.name.clone(), sender);
        receivers.push(receiver);
    }
    // Events of nodes still registering wait in their channels.
    let watch_task = tokio::spawn(source::run(client.clone(), routes));
    let (stop_tx, stop_rx) = watch::channel(false);
    let runtime_classes = pods::RuntimeClasses::default();
    let starts = nodes.into_iter().zip(receivers).map(|(config, receiver)| {
        let client = client.clone();
        let make_runtimes = make_runtimes.clone();
        let stop = stop_rx.clone();
        let runtime_classes = runtime_classes.clone();
        async move {
            let name = config.name.clone();
            start_node(
                client,
                config,
                make_runtimes,
                receiver,
                stop,
                runtime_classes,
            )
            .await
            .map_err(|e| Error::Config(format!("node {name}: {e}")))
        }
    });
    let mut started = futures::stream::iter(starts).buffer_unordered(REGISTRATION_CONCURRENCY);
    let mut tasks = Vec::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            next = started.next() => match next {
                Some(Ok(node_tasks)) => tasks.extend(node_tasks),
                Some(Err(e)) => {
                    let _ = stop_tx.send(true);
                    watch_task.abort();
                    return Err(e);
                }
                None => break,
            },
            _ = &mut shutdown => {
                let _ = stop_tx.send(true);
                watch_task.abort();
                return Ok(());
            }
        }
    }
    drop(started);
    shutdown.await;
    let _ = stop_tx.send(true);
    watch_task.abort();
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

/// Registers one node and starts its heartbeat and pod manager; their tasks.
async fn start_node(
    client: kube::Client,
    mut config: NodeConfig,
    make_runtimes: MakeRuntimes,
    events: mpsc::UnboundedReceiver<pods::PodEvent>,
    stop: watch::Receiver<bool>,
    runtime_classes: pods::RuntimeClasses,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    std::fs::create_dir_all(&config.data_dir)?;
    let machine = if config.hollow {
        machine::Machine::hollow()
    } else {
        machine::Machine::read(&config.data_dir)
    };
    // The API's port is bound first: registration reports it in daemonEndpoints.
    let api_listener = match &config.api {
        Some(api) => {
            let listener = tokio::net::TcpListener::bind(api.address)
                .await
                .map_err(|e| {
                    Error::Config(format!(
                        "the agent API cannot listen on {}: {e}",
                        api.address
                    ))
                })?;
            config.api_port = Some(listener.local_addr()?.port());
            Some(listener)
        }
        None => None,
    };
    let registered = register_with_retries(&client, &config, &machine, stop.clone()).await?;
    if config.pod_cidr.is_none() {
        config.pod_cidr =
            Some(wait_for_pod_cidr(&client, &config.name, registered.clone(), stop.clone()).await?);
    }
    let runtimes = make_runtimes(&RuntimeContext {
        node_name: &config.name,
        pod_cidr: config.pod_cidr.as_deref(),
        data_dir: &config.data_dir,
    })
    .map_err(Error::Config)?;
    if runtimes.get(&config.default_runtime).is_none() {
        return Err(Error::Config(format!(
            "the default runtime {:?} is not among this node's runtimes",
            config.default_runtime
        )));
    }
    let mut tasks = Vec::new();
    if let (Some(listener), Some(api)) = (api_listener, &config.api) {
        let state = Arc::new(server::State {
            data_dir: config.data_dir.clone(),
            runtimes: runtimes.clone(),
            allowed_users: api.allowed_users.clone(),
        });
        tasks.push(tokio::spawn(server::serve(
            listener,
            Arc::clone(&api.tls),
            state,
            until_true(stop.clone()),
        )));
    }
    let reserved = &config.system_reserved;
    let context = Arc::new(pods::NodeContext {
        events: events::Recorder::new(client.clone(), &config.name),
        allocatable_cpu_millis: machine.cpu_millis.saturating_sub(reserved.cpu_millis),
        allocatable_memory_bytes: machine.memory_bytes.saturating_sub(reserved.memory_bytes),
        client: client.clone(),
        config: config.clone(),
        runtimes,
        runtime_classes,
    });
    let manager = pods::Manager::new(context).await;
    let pods_task = tokio::spawn(manager.run(events));
    let heartbeat = tokio::spawn(heartbeat::run(
        client,
        config,
        machine,
        registered,
        until_true(stop),
    ));
    tasks.extend([heartbeat, pods_task]);
    Ok(tasks)
}

/// Registers the node, retrying as kubelet's registration does (100 ms doubling to 7 s): the
/// API server may not be up yet, or may not yet grant `system:nodes` their role (the bootstrap
/// policy lands moments after it starts).
async fn register_with_retries(
    client: &kube::Client,
    config: &NodeConfig,
    machine: &machine::Machine,
    mut stop: watch::Receiver<bool>,
) -> Result<k8s_openapi::api::core::v1::Node> {
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        let error = match node::register(client, config, machine).await {
            Ok(node) => return Ok(node),
            Err(e) => e,
        };
        tracing::warn!(node = %config.name, "cannot register the node yet: {error}");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => return Err(error),
        }
        wait = (wait * 2).min(std::time::Duration::from_secs(7));
    }
}

/// Waits for the node IPAM to give the node a pod CIDR (`spec.podCIDR`).
async fn wait_for_pod_cidr(
    client: &kube::Client,
    name: &str,
    registered: Node,
    mut stop: watch::Receiver<bool>,
) -> Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut node = registered;
    let mut logged = false;
    loop {
        if let Some(cidr) = node.spec.as_ref().and_then(|s| s.pod_cidr.clone()) {
            return Ok(cidr);
        }
        if !logged {
            tracing::info!(node = name, "waiting for spec.podCIDR (or give --pod-cidr)");
            logged = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return Err(Error::Config("stopped while waiting for a pod CIDR".into())),
        }
        node = nodes.get(name).await?;
    }
}

async fn until_true(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
