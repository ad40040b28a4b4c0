//! `keel bench density`: ClusterLoader2's density test in one command.
//!
//! ```text
//! start (or point at) a control plane ──► register N hollow nodes, wait Ready
//!   ──► pod watchers, one per API server; a sampler of CPU and RSS
//!   ──► create Deployments at --qps until N × --pods-per-node pods exist
//!   ──► wait until every pod is watched Running        (pod startup, scheduler pace)
//!   ──► scale every Deployment to 0, wait for no pods, delete them
//!   ──► scrape every API server's /metrics              (server-side call latency)
//!   ──► report: table or one JSON object
//! ```
//!
//! Everything goes through the Kubernetes API with kube-rs, as a user's load would; the
//! Deployments' pods are made by the ReplicaSet controller, bound by the scheduler and run by
//! the hollow agents, so pod startup crosses every layer.
//!
//! # Layout
//!
//! - [`cluster`]: the control plane under test and its hollow nodes; members' keys and bytes.
//! - [`watch`]: the pod watchers and what they saw.
//! - [`calls`]: client-side call timing, 429 retries and the error count.
//! - [`report`]: percentiles, server-side latency from the metrics, SLOs, the table.

pub mod calls;
pub mod cluster;
pub mod report;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use calls::Calls;
use cluster::{ProcessSample, Target};
pub use report::Report;
use report::{Percentiles, Phases, ProcessUse, Slos, Throughput, WatchLag};
use watch::Watches;

/// The label every pod of a run carries (and its watchers select on).
const POD_LABEL: &str = "keel.dev/density";

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Hollow nodes to register.
    pub nodes: usize,
    /// Pods per node.
    pub pods_per_node: usize,
    /// Pods per Deployment (the last may have fewer).
    pub pods_per_deployment: usize,
    /// Deployment creations (and scale-downs and deletes) per second.
    pub qps: f64,
    /// Members of the in-process control plane.
    pub members: usize,
    /// A cluster to run against instead of starting one.
    pub kubeconfig: Option<PathBuf>,
    /// How long pods may take to all run (or all go).
    pub timeout: Duration,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 100,
            pods_per_node: 30,
            pods_per_deployment: 30,
            qps: 20.0,
            members: 3,
            kubeconfig: None,
            timeout: Duration::from_secs(600),
            progress: false,
        }
    }
}

/// Runs the density test and reports what it measured.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(options.nodes > 0, "--nodes must be at least 1");
    anyhow::ensure!(
        options.pods_per_node > 0,
        "--pods-per-node must be at least 1"
    );
    anyhow::ensure!(
        options.pods_per_deployment > 0,
        "--pods-per-deployment must be at least 1"
    );
    anyhow::ensure!(options.qps > 0.0, "--qps must be above 0");
    let progress = Progress::new(options.progress);
    progress.say("starting the control plane");
    let mut target = match &options.kubeconfig {
        Some(path) => Target::from_kubeconfig(path).await?,
        None => Target::in_process(options.members).await?,
    };
    let result = measure(&mut target, options, &progress).await;
    progress.say("stopping");
    target.stop().await?;
    progress.finish();
    result
}

async fn measure(
    target: &mut Target,
    options: &Options,
    progress: &Progress,
) -> anyhow::Result<Report> {
    let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let namespace = format!("density-{run_id}");
    let node_prefix = format!("hollow-{run_id}");
    let calls = Arc::new(Calls::default());
    let process_start = ProcessSample::now();

    // Nodes.
    let started = Instant::now();
    progress.say(&format!("registering {} hollow nodes", options.nodes));
    target.start_hollow_nodes(&node_prefix, options.nodes)?;
    let deadline = Instant::now() + options.timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let ready = target.ready_nodes(&node_prefix).await.unwrap_or(0);
        progress.show("nodes Ready", ready, options.nodes);
        if ready >= options.nodes {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {ready} of {} hollow nodes became Ready within {:?}",
            options.nodes,
            options.timeout
        );
    }
    let nodes_ready_s = started.elapsed().as_secs_f64();

    // The namespace, the watchers and the sampler.
    let client = target.clients[0].clone();
    let namespaces = kube::Api::<Namespace>::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}}))?;
    let post = PostParams::default();
    calls
        .timed("POST", "namespaces", || namespaces.create(&post, &ns))
        .await
        .context("cannot create the run's namespace")?;
    let watches = Watches::start(&target.clients, &namespace, POD_LABEL, Arc::clone(&calls));
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(f64, ProcessSample)>::new()));
    let max_revision_spread = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let sampler = tokio::spawn({
        let samples = Arc::clone(&samples);
        let watches = Arc::clone(&watches);
        let spread = Arc::clone(&max_revision_spread);
        async move {
            let origin = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let sample = ProcessSample::now();
                samples
                    .lock()
                    .expect("not poisoned")
                    .push((origin.elapsed().as_secs_f64(), sample));
                spread.fetch_max(
                    watches.revision_spread(),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
        }
    });
    // Lists as ClusterLoader2's load does, so LIST latency is measured under load.
    let lister = tokio::spawn({
        let calls = Arc::clone(&calls);
        let pods = kube::Api::<Pod>::namespaced(client.clone(), &namespace);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let params = ListParams::default().labels(POD_LABEL);
                calls.timed("LIST", "pods", || pods.list(&params)).await;
            }
        }
    });

    // What the servers served so far is not the run's.
    let scrapes_before = scrape(&target.clients, &calls).await;

    // Create.
    let total = options.nodes * options.pods_per_node;
    let sizes = deployment_sizes(total, options.pods_per_deployment);
    let names: Vec<String> = (0..sizes.len()).map(|i| format!("density-{i}")).collect();
    let deployment_apis: Vec<kube::Api<Deployment>> = target
        .clients
        .iter()
        .map(|c| kube::Api::namespaced(c.clone(), &namespace))
        .collect();
    progress.say(&format!(
        "creating {} deployments of {total} pods",
        sizes.len()
    ));
    let create_started = Instant::now();
    paced(
        options.qps,
        names.iter().zip(&sizes).enumerate(),
        |i, (name, replicas)| {
            let api = deployment_apis[i % deployment_apis.len()].clone();
            let calls = Arc::clone(&calls);
            let deployment = deployment(name, *replicas);
            async move {
                let post = PostParams::default();
                calls
                    .timed("POST", "deployments", || api.create(&post, &deployment))
                    .await;
            }
        },
    )
    .await;
    let create_s = create_started.elapsed().as_secs_f64();

    // Wait for every pod Running.
    let mut counts = watches.counts.subscribe();
    let deadline = tokio::time::Instant::now() + options.timeout;
    loop {
        let now = *counts.borrow_and_update();
        progress.show("pods Running", now.running, total);
        if now.running >= total {
            break;
        }
        let changed = tokio::time::timeout_at(deadline, counts.changed()).await;
        if changed.is_err() {
            calls.error(format!(
                "only {} of {total} pods were Running after {:?}",
                now.running, options.timeout
            ));
            break;
        }
    }
    let all_running_s = create_started.elapsed().as_secs_f64();

    // Scale down, wait for no pods, delete.
    progress.say("scaling down");
    let scale_started = Instant::now();
    paced(options.qps, names.iter().enumerate(), |i, name| {
        let api = deployment_apis[i % deployment_apis.len()].clone();
        let calls = Arc::clone(&calls);
        let name = name.clone();
        async move {
            let patch = Patch::Merge(json!({"spec": {"replicas": 0}}));
            let params = PatchParams::default();
            calls
                .timed("PATCH", "deployments", || api.patch(&name, &params, &patch))
                .await;
        }
    })
    .await;
    let deadline = tokio::time::Instant::now() + options.timeout;
    loop {
        let now = *counts.borrow_and_update();
        progress.show("pods left", total - now.present.min(total), total);
        if now.present == 0 {
            break;
        }
        if tokio::time::timeout_at(deadline, counts.changed())
            .await
            .is_err()
        {
            calls.error(format!(
                "{} pods were still there {:?} after scaling down",
                now.present, options.timeout
            ));
            break;
        }
    }
    let scale_down_s = scale_started.elapsed().as_secs_f64();
    progress.say("deleting");
    let delete_started = Instant::now();
    paced(options.qps, names.iter().enumerate(), |i, name| {
        let api = deployment_apis[i % deployment_apis.len()].clone();
        let calls = Arc::clone(&calls);
        let name = name.clone();
        async move {
            let params = DeleteParams::default();
            calls
                .timed("DELETE", "deployments", || api.delete(&name, &params))
                .await;
        }
    })
    .await;
    let delete_s = delete_started.elapsed().as_secs_f64();
    lister.abort();
    sampler.abort();
    watches.stop();
    let params = DeleteParams::default();
    calls
        .timed("DELETE", "namespaces", || {
            namespaces.delete(&namespace, &params)
        })
        .await;

    let scrapes_after = scrape(&target.clients, &calls).await;

    let process_end = ProcessSample::now();
    let pods = watches.pods.lock().expect("not poisoned").clone();
    let origin = pods.values().map(|t| t.created).min();
    let ms = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1000.0;
    let startup: Vec<f64> = pods
        .values()
        .filter_map(|t| Some(ms(t.created, t.running?)))
        .collect();
    let to_schedule: Vec<f64> = pods
        .values()
        .filter_map(|t| Some(ms(t.created, t.scheduled?)))
        .collect();
    let to_running: Vec<f64> = pods
        .values()
        .filter_map(|t| Some(ms(t.scheduled?, t.running?)))
        .collect();
    let scheduled_at: Vec<f64> = match origin {
        Some(origin) => pods
            .values()
            .filter_map(|t| Some(ms(origin, t.scheduled?) / 1000.0))
            .collect(),
        None => Vec::new(),
    };
    let api_client = report::client_latencies(calls.latencies());
    let api_server = report::server_latencies(&scrapes_before, &scrapes_after);
    let pod_startup_ms = Percentiles::of(startup);
    let errors = calls.errors();
    let peak_rss_mib = samples
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(_, s)| s.rss_mib)
        .fold(process_end.peak_rss_mib, f64::max);
    Ok(Report {
        nodes: options.nodes,
        pods_per_node: options.pods_per_node,
        pods: total,
        deployments: sizes.len(),
        qps: options.qps,
        errors,
        error_messages: calls.messages(),
        throttled: calls.throttled(),
        slo: Slos::of(&api_server, &api_client, pod_startup_ms.p99, errors),
        pod_startup_ms,
        create_to_schedule_ms: Percentiles::of(to_schedule),
        schedule_to_running_ms: Percentiles::of(to_running),
        api_client,
        api_server,
        scheduler: Throughput::of(scheduled_at),
        watch_lag: WatchLag {
            watchers: watches.seen.len(),
            max_revisions: max_revision_spread.load(std::sync::atomic::Ordering::Relaxed),
            delivery_ms: Percentiles::of(watches.delivery_spreads()),
        },
        process: ProcessUse {
            whole_control_plane: target.in_this_process(),
            cpu_seconds: ((process_end.cpu_seconds - process_start.cpu_seconds) * 10.0).round()
                / 10.0,
            peak_rss_mib: peak_rss_mib.round(),
        },
        members: target.member_stats(),
        phases: Phases {
            nodes_ready_s,
            create_s,
            all_running_s,
            scale_down_s,
            delete_s,
        },
    })
}

/// The text of every API server's `/metrics`.
async fn scrape(clients: &[kube::Client], calls: &Calls) -> Vec<String> {
    let mut scrapes = Vec::new();
    for client in clients {
        let request = hyper::Request::get("/metrics")
            .body(Vec::new())
            .expect("a valid request");
        match client.request_text(request).await {
            Ok(text) => scrapes.push(text),
            Err(e) => calls.error(format!("GET /metrics: {e}")),
        }
    }
    scrapes
}

/// `total` pods in Deployments of `per` (the last takes the rest).
fn deployment_sizes(total: usize, per: usize) -> Vec<usize> {
    (0..total.div_ceil(per))
        .map(|i| per.min(total - i * per))
        .collect()
}

/// A Deployment of `replicas` pods that run anywhere and need nothing.
fn deployment(name: &str, replicas: usize) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {POD_LABEL: name}},
            "template": {
                "metadata": {"labels": {POD_LABEL: name}},
                "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}
            }
        }
    }))
    .expect("a valid Deployment")
}

/// Starts `call` for each item at `qps` items a second (each in its own task, so a slow call
/// does not slow the pace), then waits for them all.
async fn paced<I, T, F, Fut>(qps: f64, items: I, call: F)
where
    I: IntoIterator<Item = (usize, T)>,
    F: Fn(usize, T) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / qps));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = Vec::new();
    for (i, item) in items {
        tick.tick().await;
        tasks.push(tokio::spawn(call(i, item)));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// A progress bar on stderr, or nothing.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(show: bool) -> Progress {
        Progress(show.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} {msg:24} [{bar:40}] {pos}/{len}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        }))
    }

    fn say(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_owned());
        }
    }

    fn show(&self, message: &'static str, done: usize, of: usize) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
            bar.set_length(of as u64);
            bar.set_position(done as u64);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_share_the_pods() {
        assert_eq!(deployment_sizes(10, 30), [10]);
        assert_eq!(deployment_sizes(3000, 30).len(), 100);
        assert_eq!(deployment_sizes(70, 30), [30, 30, 10]);
    }
}
