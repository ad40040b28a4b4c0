//! The Kubernetes API against the raw store it sits on, side by side in one run, on a 3-member
//! in-process keel cluster with its control plane (127.0.0.1, free ports):
//!
//! 1. pod creates through keel-apiserver against gateway puts (`POST /v3/kv/put`) of a value
//!    the size of the pod's JSON, at the same concurrency;
//! 2. linearizable pod gets against linearizable gateway ranges;
//! 3. watches of pods with a field selector `spec.nodeName=node-<i>`, one per node, while pods
//!    on those nodes are updated at a fixed rate: latency from a write's acknowledgement to its
//!    event reaching the watcher, and a check that each watcher saw exactly its events;
//! 4. a list of many pods from the watch cache (`resourceVersion=0`), from the store
//!    (linearizable) and paged (`limit=500`), with the process's RSS around them.
//!
//! Both sides use one client: reqwest over HTTP/1.1 keep-alive connections with the admin
//! client certificate, so the ratios measure the servers. The gateway is served over TLS with
//! client certificates too (`--plain-store` for plain HTTP), so the only difference between
//! the two sides of a ratio is what the API server does on top of the store.
//!
//! How to run: `cargo bench --bench apiserver -- --pods 10000 --watchers 1000` (`--quick` for
//! a smoke run; `-- --help` lists the flags). Run without `--bench` (as `cargo test
//! --all-targets` does) it makes a tiny run that fails on any error.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use clap::Parser;
use comfy_table::{presets::ASCII_MARKDOWN, Table};
use futures::StreamExt as _;
use keel::bench::report::{Recorder, Report, WatchCheck};
use keel::cli::dev::{DevArgs, DevCluster};
use reqwest::StatusCode;
use serde::de::IgnoredAny;
use serde::Deserialize;

// As keel's own binary: RSS is only meaningful with the allocator the server runs on.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long a unary request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long watchers get, after the last write was acknowledged, to receive their events.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

/// Size of a pod's JSON as sent (the raw puts write values of the same size).
const POD_BYTES: usize = 1536;

/// Watches opened at once while setting them up.
const WATCH_SETUP_CONCURRENCY: usize = 32;

/// Objects per page of the paged list.
const PAGE_LIMIT: u32 = 500;

/// Namespaces of the run: created pods (listed at the end), the watched pods, warm-up.
const NS_PODS: &str = "bench";
const NS_WATCH: &str = "bench-watch";
const NS_WARMUP: &str = "bench-warmup";

/// `cargo bench --bench apiserver -- [flags]`. Sizes default to the full run's (first value)
/// or `--quick`'s (second).
#[derive(Debug, Parser)]
#[command(
    name = "apiserver",
    about = "keel-apiserver against the raw store, in one run"
)]
struct Flags {
    /// Operations of each unary workload: pod create, raw put, pod get, raw range [5000; 500].
    #[arg(long)]
    ops: Option<u64>,
    /// Concurrent clients of each unary workload [64; 64].
    #[arg(long)]
    clients: Option<usize>,
    /// Pods in the listed namespace (creates beyond --ops fill it) [10000; 1000].
    #[arg(long)]
    pods: Option<u64>,
    /// Watchers, one per node, spread over the three API servers [1000; 100].
    #[arg(long)]
    watchers: Option<usize>,
    /// Pod updates made while they watch [2 x watchers].
    #[arg(long)]
    watch_writes: Option<u64>,
    /// Updates per second [200; 200].
    #[arg(long)]
    watch_rate: Option<u64>,
    /// Times each kind of list is run (the table shows the median) [3; 2].
    #[arg(long)]
    list_repeats: Option<usize>,
    /// Small numbers: a smoke run of well under a minute.
    #[arg(long)]
    quick: bool,
    /// Serve the gateway over plain HTTP (the API servers are always HTTPS).
    #[arg(long)]
    plain_store: bool,
    /// Passed by `cargo bench`; without it the run is the tiny one of `cargo test`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The sizes of a run, flags resolved.
#[derive(Clone, Debug)]
struct Sizes {
    ops: u64,
    clients: usize,
    pods: u64,
    watchers: usize,
    watch_writes: u64,
    watch_rate: u64,
    list_repeats: usize,
}

impl Flags {
    fn sizes(&self) -> Sizes {
        let (ops, clients, pods, watchers, rate, repeats) = if !self.bench {
            (50, 8, 120, 6, 50, 1)
        } else if self.quick {
            (500, 64, 1000, 100, 200, 2)
        } else {
            (5000, 64, 10_000, 1000, 200, 3)
        };
        let watchers = self.watchers.unwrap_or(watchers).max(1);
        Sizes {
            ops: self.ops.unwrap_or(ops).max(1),
            clients: self.clients.unwrap_or(clients).max(1),
            pods: self.pods.unwrap_or(pods),
            watchers,
            watch_writes: self.watch_writes.unwrap_or(2 * watchers as u64),
            watch_rate: self.watch_rate.unwrap_or(rate).max(1),
            list_repeats: self.list_repeats.unwrap_or(repeats).max(1),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let sizes = flags.sizes();
    check_open_files(&sizes)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let clean = runtime.block_on(run(&flags, &sizes))?;
    anyhow::ensure!(
        clean,
        "the run had errors (see the table); the numbers above may not mean much"
    );
    Ok(())
}

/// Watchers hold a connection each on both sides, all in this process.
fn check_open_files(sizes: &Sizes) -> anyhow::Result<()> {
    let needed = 2 * sizes.watchers as u64 + 4 * sizes.clients as u64 + 512;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<u64>().ok());
    match soft {
        Some(soft) if soft < needed => anyhow::bail!(
            "{} watchers need about {needed} open files and the limit is {soft}: raise it \
             (`ulimit -n {needed}`) or pass fewer --watchers",
            sizes.watchers
        ),
        _ => Ok(()),
    }
}

/// Where the run sends its requests and with which clients.
struct Target {
    /// `https://addr` of each member's API server.
    apiservers: Vec<String>,
    /// Each member's gateway URL.
    gateways: Vec<String>,
    /// For unary requests.
    http: reqwest::Client,
    /// For watches (no timeout: a watch lasts).
    streaming: reqwest::Client,
}

impl Target {
    fn apiserver(&self, i: usize) -> &str {
        &self.apiservers[i % self.apiservers.len()]
    }

    fn gateway(&self, i: usize) -> &str {
        &self.gateways[i % self.gateways.len()]
    }
}

/// One row of the unary table.
struct Row {
    label: String,
    report: Report,
    /// Against the raw row below it, when it has one.
    ratio: String,
    /// CPU seconds of the whole process during the run.
    cpu: f64,
}

/// `work`'s report and the CPU seconds the whole process spent while it ran.
async fn with_cpu(work: impl Future<Output = Report>) -> (Report, f64) {
    let before = cpu_seconds();
    let report = work.await;
    (report, cpu_seconds() - before)
}

async fn run(flags: &Flags, sizes: &Sizes) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut cluster = DevCluster::start_with(&DevArgs::on_free_ports(3), !flags.plain_store)
        .await
        .context("cannot start the cluster")?;
    let kubeconfig = cluster.start_control_plane(0).await?;
    let target = Arc::new(target_of(&cluster, &kubeconfig)?);
    wait_for_bootstrap(&target).await?;
    for namespace in [NS_PODS, NS_WATCH, NS_WARMUP] {
        create_namespace(&target, namespace).await?;
    }
    let body_bytes = pod_json("pod-0", NS_PODS, None).len();
    println!(
        "# keel-apiserver benchmark\n\n3 members in this process; {} clients; reqwest 0.12 over \
         HTTP/1.1 keep-alive, TLS with a client certificate to the API servers and {} to the \
         gateway; pod JSON {body_bytes} B, raw value {body_bytes} B ({} B as the gateway's \
         base64).\n",
        sizes.clients,
        if flags.plain_store {
            "plain HTTP"
        } else {
            "TLS likewise"
        },
        body_bytes.div_ceil(3) * 4,
    );

    // Warm-up: connections, TLS sessions, the allocator's arenas; not measured.
    let warm = (sizes.clients * 4) as u64;
    let _ = pod_creates(&target, sizes.clients, 0, warm, NS_WARMUP).await;
    let _ = raw_puts(&target, sizes.clients, warm, "/bench-warmup/").await;

    let rss_start = proc_status_kib("VmRSS");
    let (creates, creates_cpu) =
        with_cpu(pod_creates(&target, sizes.clients, 0, sizes.ops, NS_PODS)).await;
    let (puts, puts_cpu) =
        with_cpu(raw_puts(&target, sizes.clients, sizes.ops, "/bench-raw/")).await;
    let (create_calls, create_calls_cpu) =
        with_cpu(raw_create_calls(&target, sizes.clients, sizes.ops)).await;
    let (gets, gets_cpu) = with_cpu(pod_gets(&target, sizes.clients, sizes.ops)).await;
    let (ranges, ranges_cpu) =
        with_cpu(raw_ranges(&target, sizes.clients, sizes.ops, "/bench-raw/")).await;
    let create_vs_calls = format!("pod create / this: {}", ratio(&creates, &create_calls, 0.0));
    let rows = vec![
        Row {
            label: "pod create (POST, API server)".into(),
            ratio: ratio(&creates, &puts, 0.5),
            report: creates,
            cpu: creates_cpu,
        },
        Row {
            label: "raw put (/v3/kv/put, gateway)".into(),
            ratio: String::new(),
            report: puts,
            cpu: puts_cpu,
        },
        Row {
            label: "raw range + txn create: a pod create's storage calls (gateway)".into(),
            ratio: create_vs_calls,
            report: create_calls,
            cpu: create_calls_cpu,
        },
        Row {
            label: "pod get (linearizable, API server)".into(),
            ratio: ratio(&gets, &ranges, 0.0),
            report: gets,
            cpu: gets_cpu,
        },
        Row {
            label: "raw range (linearizable, gateway)".into(),
            ratio: String::new(),
            report: ranges,
            cpu: ranges_cpu,
        },
    ];
    let rss_unary = proc_status_kib("VmRSS");

    let watch = watch_run(&target, sizes).await?;
    let rss_watch = proc_status_kib("VmRSS");
    let lists = list_run(&target, sizes).await?;
    let elapsed = started.elapsed();
    cluster.stop().await?;

    let mut clean = true;
    print_unary(&rows, sizes, &mut clean);
    print_watch(&watch, sizes, &mut clean);
    print_lists(&lists, &mut clean);
    println!(
        "\nVmRSS of the whole process by phase, MiB: {:.0} after start and warm-up, {:.0} after \
         the unary runs, {:.0} after the watch run, {:.0} before the fill, {:.0} after it: {:.1} \
         KiB per pod it created, over the 3 members (stores, watch caches) and the client.",
        kib_to_mib(rss_start),
        kib_to_mib(rss_unary),
        kib_to_mib(rss_watch),
        kib_to_mib(lists.rss_before_fill),
        kib_to_mib(lists.rss_before),
        (lists.rss_before as f64 - lists.rss_before_fill as f64) / lists.fill.ok.max(1) as f64,
    );
    println!("\nWhole run: {:.1} s.", elapsed.as_secs_f64());
    Ok(clean)
}

/// The API servers' and gateways' URLs, and clients with the kubeconfig's admin identity.
fn target_of(cluster: &DevCluster, kubeconfig: &std::path::Path) -> anyhow::Result<Target> {
    let text = std::fs::read_to_string(kubeconfig)
        .with_context(|| format!("cannot read {}", kubeconfig.display()))?;
    // keel's kubeconfig holds one cluster and one user; their PEMs are base64 on one line each.
    let field = |name: &str| -> anyhow::Result<Vec<u8>> {
        let encoded = text
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .with_context(|| format!("the kubeconfig has no {name}"))?;
        Ok(BASE64.decode(encoded.trim())?)
    };
    let ca = reqwest::Certificate::from_pem(&field("certificate-authority-data")?)?;
    let mut identity = field("client-key-data")?;
    identity.push(b'\n');
    identity.extend(field("client-certificate-data")?);
    let identity = reqwest::Identity::from_pem(&identity)?;
    let builder = || {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca.clone())
            .identity(identity.clone())
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
    };
    Ok(Target {
        apiservers: cluster
            .apiservers
            .iter()
            .map(|a| format!("https://{}", a.addr))
            .collect(),
        gateways: cluster.endpoints().split(',').map(str::to_owned).collect(),
        http: builder().timeout(REQUEST_TIMEOUT).build()?,
        streaming: builder().build()?,
    })
}

/// Waits until every API server has made the system namespaces.
async fn wait_for_bootstrap(target: &Target) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..target.apiservers.len() {
        let url = format!("{}/api/v1/namespaces/kube-node-lease", target.apiserver(i));
        loop {
            match target.http.get(&url).send().await {
                Ok(r) if r.status() == StatusCode::OK => break,
                _ if Instant::now() > deadline => {
                    anyhow::bail!("API server {} never finished bootstrapping", i + 1)
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    Ok(())
}

async fn create_namespace(target: &Target, name: &str) -> anyhow::Result<()> {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
    let url = format!("{}/api/v1/namespaces", target.apiserver(0));
    send(target.http.post(url).body(body), StatusCode::CREATED)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create namespace {name}: {e}"))?;
    Ok(())
}

/// A pod of about [`POD_BYTES`] of JSON: labels, a container with ports, env, resources and a
/// probe, as a Deployment's pods look, padded to size with an annotation.
fn pod_json(name: &str, namespace: &str, node: Option<&str>) -> String {
    let node = node.map_or(String::new(), |n| format!(r#""nodeName":"{n}","#));
    let pod = |padding: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{namespace}","labels":{{"app":"bench","tier":"backend","release":"stable","pod-template-hash":"7c9f8d6b5"}},"annotations":{{"bench.keel.dev/padding":"{padding}"}}}},"spec":{{{node}"containers":[{{"name":"app","image":"registry.example.com/bench/app:1.2.3","args":["--listen=:8080","--log-level=info"],"ports":[{{"name":"http","containerPort":8080}},{{"name":"metrics","containerPort":9090}}],"env":[{{"name":"MODE","value":"bench"}},{{"name":"REGION","value":"local"}},{{"name":"POD_NAME","valueFrom":{{"fieldRef":{{"fieldPath":"metadata.name"}}}}}}],"resources":{{"requests":{{"cpu":"100m","memory":"128Mi"}},"limits":{{"cpu":"500m","memory":"256Mi"}}}},"readinessProbe":{{"httpGet":{{"path":"/healthz","port":8080}},"periodSeconds":10}},"volumeMounts":[{{"name":"config","mountPath":"/etc/app"}}]}}],"volumes":[{{"name":"config","configMap":{{"name":"app-config"}}}}],"terminationGracePeriodSeconds":30}}}}"#
        )
    };
    let bare = pod("").len();
    pod(&"x".repeat(POD_BYTES.saturating_sub(bare)))
}

/// Sends `request`; its body when the status is `want`, else a message naming both (without
/// object names, so the report groups errors by kind).
async fn send(request: reqwest::RequestBuilder, want: StatusCode) -> Result<bytes::Bytes, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the answer: {}", e.without_url()))?;
    if status == want {
        return Ok(body);
    }
    #[derive(Deserialize)]
    struct Failure {
        #[serde(default)]
        reason: String,
        #[serde(default)]
        message: String,
    }
    let why = match serde_json::from_slice::<Failure>(&body) {
        Ok(f) if !f.reason.is_empty() => f.reason,
        Ok(f) if !f.message.is_empty() => f.message,
        _ => String::from_utf8_lossy(&body).chars().take(120).collect(),
    };
    Err(format!("HTTP {}: {why}", status.as_u16()))
}

/// Runs `total` operations over `clients` workers; `operation(worker, op)` builds one (before
/// the clock starts) and its future makes it.
async fn closed_loop<F, Fut>(name: &str, clients: usize, total: u64, operation: F) -> Report
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let operation = Arc::new(operation);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (next, operation) = (Arc::clone(&next), Arc::clone(&operation));
            tokio::spawn(async move {
                let mut recorder = Recorder::default();
                loop {
                    let op = next.fetch_add(1, Ordering::Relaxed);
                    if op >= total {
                        return recorder;
                    }
                    let call = operation(worker, op);
                    let sent = Instant::now();
                    match call.await {
                        Ok(()) => recorder.success(sent.elapsed()),
                        Err(message) => recorder.failure(message),
                    }
                }
            })
        })
        .collect();
    let mut all = Recorder::default();
    for worker in workers {
        match worker.await {
            Ok(recorder) => all.merge(recorder),
            Err(e) => all.failure(format!("a worker panicked: {e}")),
        }
    }
    all.report(name, started.elapsed())
}

/// Creates pods `first..first + count` of `namespace`; worker `w` talks to API server `w % 3`.
async fn pod_creates(
    target: &Arc<Target>,
    clients: usize,
    first: u64,
    count: u64,
    namespace: &'static str,
) -> Report {
    let target = Arc::clone(target);
    closed_loop("pod-create", clients, count, move |worker, op| {
        let name = format!("pod-{}", first + op);
        let request = target
            .http
            .post(format!(
                "{}/api/v1/namespaces/{namespace}/pods",
                target.apiserver(worker)
            ))
            .header("content-type", "application/json")
            .body(pod_json(&name, namespace, None));
        async move { send(request, StatusCode::CREATED).await.map(drop) }
    })
    .await
}

/// Puts `count` distinct keys under `prefix`, each with a pod's JSON as its value.
async fn raw_puts(target: &Arc<Target>, clients: usize, count: u64, prefix: &str) -> Report {
    let target = Arc::clone(target);
    let value = BASE64.encode(pod_json("pod-0", NS_PODS, None));
    let prefix = prefix.to_owned();
    closed_loop("raw-put", clients, count, move |worker, op| {
        let key = BASE64.encode(format!("{prefix}pod-{op}"));
        let request = target
            .http
            .post(format!("{}/v3/kv/put", target.gateway(worker)))
            .header("content-type", "application/json")
            .body(format!(r#"{{"key":"{key}","value":"{value}"}}"#));
        async move { send(request, StatusCode::OK).await.map(drop) }
    })
    .await
}

/// Gets the pods the creates made, by name, with no resourceVersion (a linearizable read).
async fn pod_gets(target: &Arc<Target>, clients: usize, count: u64) -> Report {
    let target = Arc::clone(target);
    closed_loop("pod-get", clients, count, move |worker, op| {
        let request = target.http.get(format!(
            "{}/api/v1/namespaces/{NS_PODS}/pods/pod-{op}",
            target.apiserver(worker)
        ));
        async move { send(request, StatusCode::OK).await.map(drop) }
    })
    .await
}

/// Linearizable single-key ranges of the keys the raw puts wrote.
async fn raw_ranges(target: &Arc<Target>, clients: usize, count: u64, prefix: &str) -> Report {
    let target = Arc::clone(target);
    let prefix = prefix.to_owned();
    closed_loop("raw-range", clients, count, move |worker, op| {
        let key = BASE64.encode(format!("{prefix}pod-{op}"));
        let request = target
            .http
            .post(format!("{}/v3/kv/range", target.gateway(worker)))
            .header("content-type", "application/json")
            .body(format!(r#"{{"key":"{key}"}}"#));
        async move {
            let answer = send(request, StatusCode::OK).await?;
            // A range of a missing key succeeds too, without kvs.
            if has_kvs(&answer) {
                Ok(())
            } else {
                Err("the key the put wrote is missing".to_owned())
            }
        }
    })
    .await
}

/// What keel-apiserver asks of the store for a pod create, sent to the gateway: a
/// linearizable range (the namespace's existence) and a txn putting the key if it has no
/// create revision yet.
async fn raw_create_calls(target: &Arc<Target>, clients: usize, count: u64) -> Report {
    let target = Arc::clone(target);
    let value = BASE64.encode(pod_json("pod-0", NS_PODS, None));
    let namespace = BASE64.encode(format!("/registry/namespaces/{NS_PODS}"));
    closed_loop("raw-create-calls", clients, count, move |worker, op| {
        let gateway = target.gateway(worker);
        let key = BASE64.encode(format!("/bench-raw-txn/pod-{op}"));
        let range = target
            .http
            .post(format!("{gateway}/v3/kv/range"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"key":"{namespace}"}}"#));
        let txn = target
            .http
            .post(format!("{gateway}/v3/kv/txn"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"compare":[{{"key":"{key}","target":"CREATE","result":"EQUAL","create_revision":"0"}}],"success":[{{"request_put":{{"key":"{key}","value":"{value}"}}}}],"failure":[{{"request_range":{{"key":"{key}"}}}}]}}"#
            ));
        async move {
            let namespace = send(range, StatusCode::OK).await?;
            if !has_kvs(&namespace) {
                return Err("the namespace's key is missing".to_owned());
            }
            let answer = send(txn, StatusCode::OK).await?;
            if answer.windows(16).any(|w| w == b"\"succeeded\":true") {
                Ok(())
            } else {
                Err("the txn found the key".to_owned())
            }
        }
    })
    .await
}

fn has_kvs(answer: &[u8]) -> bool {
    answer.windows(6).any(|w| w == b"\"kvs\":")
}

/// `ours / theirs` in ops/s, with the goal when there is one.
fn ratio(ours: &Report, theirs: &Report, goal: f64) -> String {
    if theirs.ops_per_second <= 0.0 {
        return "n/a".into();
    }
    let ratio = ours.ops_per_second / theirs.ops_per_second;
    if goal > 0.0 {
        let verdict = if ratio >= goal { "met" } else { "NOT met" };
        format!("{ratio:.2} (goal ≥ {goal:.2}: {verdict})")
    } else {
        format!("{ratio:.2}")
    }
}

/// What the watch run measured.
struct WatchRun {
    /// Latency from a write's acknowledgement to its event, and every failure.
    events: Report,
    /// Latency from the moment the write was sent to its event.
    from_sent: Report,
    /// Events that reached their watcher before their write's answer reached the writer.
    before_ack: u64,
    check: WatchCheck,
    /// Events for a pod of another node, or for a write nobody acknowledged.
    foreign: u64,
    /// Writes that failed.
    write_errors: u64,
    /// Creating the watched pods (one per node), then listing and watching from every watcher.
    pods_setup: Duration,
    watch_setup: Duration,
    /// From the first write to the last acknowledgement.
    writing: Duration,
    /// CPU seconds of the whole process while the watched updates ran, and while the same
    /// updates ran before anyone watched.
    cpu_watched: f64,
    cpu_unwatched: f64,
    /// Latency of the updates (sent to answered) before anyone watched, and while they did.
    update_latency: [Report; 2],
}

/// An acknowledged update, by the revision it answered.
struct Ack {
    /// Whose pod it updated.
    node: usize,
    /// When it was sent.
    sent: Instant,
    /// When its answer came.
    at: Instant,
}

/// One event a watcher received.
struct Seen {
    revision: i64,
    name: String,
    at: Instant,
}

/// One watcher's stream: what it saw, and why it stopped early if it did.
struct Followed {
    seen: Vec<Seen>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct WatchLine {
    #[serde(rename = "type")]
    kind: String,
    object: ObjectHead,
}

#[derive(Default, Deserialize)]
struct ObjectHead {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    message: String,
}

#[derive(Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

#[derive(Deserialize)]
struct ListBody {
    metadata: Metadata,
    items: Vec<IgnoredAny>,
}

async fn watch_run(target: &Arc<Target>, sizes: &Sizes) -> anyhow::Result<WatchRun> {
    let watchers = sizes.watchers;
    let mut events = Recorder::default();

    // One pod per node, there before anyone watches, as a running cluster's would be.
    let setup = Instant::now();
    let created = {
        let target = Arc::clone(target);
        closed_loop(
            "watched-pods",
            sizes.clients,
            watchers as u64,
            move |worker, node| {
                let request = target
                    .http
                    .post(format!(
                        "{}/api/v1/namespaces/{NS_WATCH}/pods",
                        target.apiserver(worker)
                    ))
                    .header("content-type", "application/json")
                    .body(pod_json(
                        &format!("w-{node}"),
                        NS_WATCH,
                        Some(&format!("node-{node}")),
                    ));
                async move { send(request, StatusCode::CREATED).await.map(drop) }
            },
        )
        .await
    };
    anyhow::ensure!(
        created.errors == 0,
        "cannot create the watched pods: {:?}",
        created.error_messages
    );
    let pods_setup = setup.elapsed();

    // The same updates with nobody watching: what the watchers add is the difference.
    let unwatched = update_pods(target, sizes, 0).await?;
    for failure in &unwatched.failures {
        events.failure(format!("unwatched {failure}"));
    }

    // Each watcher lists its node's pods (resourceVersion=0, as a reflector's first list) and
    // watches from the list's resourceVersion.
    let setup = Instant::now();
    let received: Arc<Vec<AtomicUsize>> =
        Arc::new((0..watchers).map(|_| AtomicUsize::new(0)).collect());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let opened: Vec<anyhow::Result<tokio::task::JoinHandle<Followed>>> =
        futures::stream::iter(0..watchers)
            .map(|node| {
                let target = Arc::clone(target);
                let received = Arc::clone(&received);
                let stopped = stopped.clone();
                async move {
                    let response = open_watch(&target, node).await?;
                    Ok(tokio::spawn(follow(response, node, received, stopped)))
                }
            })
            .buffered(WATCH_SETUP_CONCURRENCY)
            .collect()
            .await;
    let mut followers = Vec::new();
    for (node, follower) in opened.into_iter().enumerate() {
        followers.push(follower.with_context(|| format!("watcher {node}"))?);
    }
    let watch_setup = setup.elapsed();

    let updates = update_pods(target, sizes, 1).await?;
    let (acked, writing) = (updates.acked, updates.took);
    let update_latency = [unwatched.latency, updates.latency];

    // Wait for every watcher to have as many events as its node had acknowledged writes.
    let mut expected = vec![0usize; watchers];
    for ack in acked.values() {
        expected[ack.node] += 1;
    }
    let deadline = Instant::now() + DELIVERY_GRACE;
    while Instant::now() < deadline
        && !expected
            .iter()
            .zip(received.iter())
            .all(|(want, got)| got.load(Ordering::Relaxed) >= *want)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);

    let write_errors = updates.failures.len() as u64;
    for failure in updates.failures {
        events.failure(failure);
    }
    let mut check = WatchCheck {
        watchers: watchers as u64,
        puts_acked: acked.len() as u64,
        ..WatchCheck::default()
    };
    let mut foreign = 0;
    let mut from_sent = Recorder::default();
    let mut before_ack = 0;
    for (node, follower) in followers.into_iter().enumerate() {
        let followed = follower.await.context("a watcher panicked")?;
        if let Some(error) = followed.error {
            events.failure(error);
        }
        let own = format!("w-{node}");
        let mut delivered = std::collections::HashSet::new();
        let mut last = 0;
        for seen in followed.seen {
            check.events_delivered += 1;
            if seen.revision < last {
                check.out_of_order += 1;
                events.failure("event out of resourceVersion order");
            }
            last = last.max(seen.revision);
            match acked.get(&seen.revision) {
                Some(ack) if ack.node == node && seen.name == own => {
                    if delivered.insert(seen.revision) {
                        // An event can beat its write's answer: zero, not negative.
                        events.success(seen.at.saturating_duration_since(ack.at));
                        from_sent.success(seen.at.saturating_duration_since(ack.sent));
                        before_ack += u64::from(seen.at < ack.at);
                    } else {
                        check.duplicates += 1;
                        events.failure("event delivered twice");
                    }
                }
                Some(_) => {
                    foreign += 1;
                    events.failure("event of another node's pod");
                }
                None => {
                    foreign += 1;
                    events.failure("event of no acknowledged write");
                }
            }
        }
        let missing = (expected[node] - delivered.len()) as u64;
        check.missing += missing;
        for _ in 0..missing {
            events.failure("event never delivered");
        }
    }
    Ok(WatchRun {
        events: events.report("watch", writing),
        from_sent: from_sent.report("watch-from-sent", writing),
        before_ack,
        check,
        foreign,
        write_errors,
        pods_setup,
        watch_setup,
        writing,
        cpu_watched: updates.cpu,
        cpu_unwatched: unwatched.cpu,
        update_latency,
    })
}

/// What a round of updates did.
struct Updates {
    /// Acknowledged updates by the revision they answered.
    acked: HashMap<i64, Ack>,
    failures: Vec<String>,
    /// From each update's sending to its answer.
    latency: Report,
    /// From the first update to the last answer.
    took: Duration,
    /// CPU seconds the process spent meanwhile.
    cpu: f64,
}

/// `--watch-writes` merge patches of the watched pods (update `k` to node `k % watchers`'s,
/// through API server `k % 3`), open loop at `--watch-rate`: each is sent at its time
/// whatever the others are doing. `round` makes every round's annotation new, so no patch is
/// a no-op.
async fn update_pods(target: &Arc<Target>, sizes: &Sizes, round: u64) -> anyhow::Result<Updates> {
    let acked: Arc<Mutex<HashMap<i64, Ack>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut writes = Vec::new();
    for k in 0..sizes.watch_writes {
        let at = started + Duration::from_secs_f64(k as f64 / sizes.watch_rate as f64);
        tokio::time::sleep_until(at.into()).await;
        let node = (k % sizes.watchers as u64) as usize;
        let request = target
            .http
            .patch(format!(
                "{}/api/v1/namespaces/{NS_WATCH}/pods/w-{node}",
                target.apiserver(k as usize)
            ))
            .header("content-type", "application/merge-patch+json")
            .body(format!(
                r#"{{"metadata":{{"annotations":{{"bench.keel.dev/write":"{round}-{k}"}}}}}}"#
            ));
        let (acked, failures) = (Arc::clone(&acked), Arc::clone(&failures));
        writes.push(tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = send(request, StatusCode::OK).await.and_then(|body| {
                let object: ObjectHead =
                    serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                object
                    .metadata
                    .resource_version
                    .parse::<i64>()
                    .map_err(|_| "an update answered no resourceVersion".to_owned())
            });
            let at = Instant::now();
            match outcome {
                Ok(revision) => {
                    lock(&acked).insert(revision, Ack { node, sent, at });
                }
                Err(e) => lock(&failures).push(format!("update: {e}")),
            }
        }));
    }
    for write in writes {
        write.await.context("a writer panicked")?;
    }
    let took = started.elapsed();
    let cpu = cpu_seconds() - cpu;
    let acked = std::mem::take(&mut *lock(&acked));
    let failures = std::mem::take(&mut *lock(&failures));
    let mut latency = Recorder::default();
    for ack in acked.values() {
        latency.success(ack.at - ack.sent);
    }
    Ok(Updates {
        acked,
        failures,
        latency: latency.report("update", took),
        took,
        cpu,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lists node `node`'s pods from API server `node % 3` and opens a watch from the list.
async fn open_watch(target: &Target, node: usize) -> anyhow::Result<reqwest::Response> {
    let server = target.apiserver(node);
    let selector = format!("spec.nodeName=node-{node}");
    let listed = send(
        target.http.get(format!("{server}/api/v1/pods")).query(&[
            ("fieldSelector", selector.as_str()),
            ("resourceVersion", "0"),
        ]),
        StatusCode::OK,
    )
    .await
    .map_err(|e| anyhow::anyhow!("list: {e}"))?;
    let list: ListBody = serde_json::from_slice(&listed)?;
    // Its one pod in the list means the list is past the pod's create: no replayed ADDED.
    anyhow::ensure!(
        list.items.len() == 1,
        "node-{node} lists {} pods, not 1",
        list.items.len()
    );
    let response = target
        .streaming
        .get(format!("{server}/api/v1/pods"))
        .query(&[
            ("watch", "true"),
            ("fieldSelector", selector.as_str()),
            ("resourceVersion", list.metadata.resource_version.as_str()),
            ("allowWatchBookmarks", "true"),
        ])
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("watch: {}", e.without_url()))?;
    anyhow::ensure!(
        response.status() == StatusCode::OK,
        "watch: HTTP {}",
        response.status()
    );
    Ok(response)
}

/// Reads a watch's lines until told to stop, noting when each event arrived.
async fn follow(
    mut response: reqwest::Response,
    node: usize,
    received: Arc<Vec<AtomicUsize>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Followed {
    let mut followed = Followed {
        seen: Vec::new(),
        error: None,
    };
    let mut buffer = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk,
            _ = stop.changed() => return followed,
        };
        let at = Instant::now();
        match chunk {
            Ok(Some(bytes)) => buffer.extend_from_slice(&bytes),
            Ok(None) => {
                followed.error = Some("watch ended early".into());
                return followed;
            }
            Err(e) => {
                followed.error = Some(format!("watch broke: {}", e.without_url()));
                return followed;
            }
        }
        while let Some(newline) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=newline).collect();
            let event = match serde_json::from_slice::<WatchLine>(&line) {
                Ok(event) => event,
                Err(e) => {
                    followed.error = Some(format!("unreadable watch event: {e}"));
                    return followed;
                }
            };
            match event.kind.as_str() {
                "BOOKMARK" => {}
                "ERROR" => {
                    followed.error = Some(format!("watch error: {}", event.object.message));
                    return followed;
                }
                _ => {
                    followed.seen.push(Seen {
                        revision: event.object.metadata.resource_version.parse().unwrap_or(0),
                        name: event.object.metadata.name,
                        at,
                    });
                    received[node].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// A way to list: its label, its query, and whether it follows continue tokens.
struct ListKind {
    label: &'static str,
    query: Vec<(&'static str, String)>,
    paged: bool,
}

/// One kind of list, run a few times.
struct ListRow {
    label: String,
    /// Each run's time to the last byte.
    times: Vec<Duration>,
    /// Each run's time to the first byte (of every page).
    first_bytes: Vec<Duration>,
    items: usize,
    bytes: usize,
    pages: usize,
    /// VmRSS after its first run, in KiB.
    rss_after: u64,
    error: Option<String>,
}

/// What the list run measured.
struct ListRun {
    pods: u64,
    fill: Report,
    /// A stored pod's JSON size and its size as a `serde_json::Value`, in bytes.
    footprint: Option<(usize, f64)>,
    /// VmRSS before the fill and after it (before the lists), in KiB.
    rss_before_fill: u64,
    rss_before: u64,
    rss_after: u64,
    /// VmHWM at the end: the peak during the lists when `peak_reset`, else over the run.
    rss_peak: u64,
    peak_reset: bool,
    rows: Vec<ListRow>,
}

async fn list_run(target: &Arc<Target>, sizes: &Sizes) -> anyhow::Result<ListRun> {
    // The creates made pods 0..ops; the fill makes the rest.
    let rss_before_fill = proc_status_kib("VmRSS");
    let fill = pod_creates(
        target,
        sizes.clients,
        sizes.ops,
        sizes.pods.saturating_sub(sizes.ops),
        NS_PODS,
    )
    .await;
    let pods = sizes.pods.max(sizes.ops);
    let rss_before = proc_status_kib("VmRSS");
    let url = format!("{}/api/v1/namespaces/{NS_PODS}/pods", target.apiserver(0));
    let kinds = [
        ListKind {
            label: "resourceVersion=0 (watch cache)",
            query: vec![("resourceVersion", "0".into())],
            paged: false,
        },
        ListKind {
            label: "no resourceVersion (store, linearizable)",
            query: Vec::new(),
            paged: false,
        },
        ListKind {
            label: "limit=500, every page (store)",
            query: vec![("limit", PAGE_LIMIT.to_string())],
            paged: true,
        },
    ];
    let mut rows: Vec<ListRow> = kinds
        .iter()
        .map(|kind| ListRow {
            label: kind.label.into(),
            times: Vec::new(),
            first_bytes: Vec::new(),
            items: 0,
            bytes: 0,
            pages: 0,
            rss_after: 0,
            error: None,
        })
        .collect();
    // A list at resourceVersion=0 may be a moment behind the last create (any recent state is
    // what it promises): wait, with a deadline, until this member's watch cache holds them all.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = list_all(&target.http, &url, &kinds[0].query, false).await;
        if listed.as_ref().is_ok_and(|l| l.items as u64 == pods) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Peak RSS from here on only (Linux: 5 in clear_refs resets VmHWM to the current RSS).
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    // Round-robin, so no kind always runs first (on a cold allocator) or last.
    for round in 0..sizes.list_repeats {
        for (kind, row) in kinds.iter().zip(&mut rows) {
            match list_all(&target.http, &url, &kind.query, kind.paged).await {
                Ok(listed) => {
                    row.times.push(listed.took);
                    row.first_bytes.push(listed.first_byte);
                    (row.items, row.bytes, row.pages) = (listed.items, listed.bytes, listed.pages);
                    if listed.items as u64 != pods && row.error.is_none() {
                        row.error = Some(format!("listed {} pods, not {pods}", listed.items));
                    }
                }
                Err(e) => row.error = Some(e),
            }
            if round == 0 {
                row.rss_after = proc_status_kib("VmRSS");
            }
        }
    }
    let (rss_after, rss_peak) = (proc_status_kib("VmRSS"), proc_status_kib("VmHWM"));
    // Last: its copies would count in the RSS above.
    let footprint = value_footprint(target).await;
    Ok(ListRun {
        pods,
        footprint,
        rss_before_fill,
        fill,
        rss_before,
        rss_after,
        rss_peak,
        peak_reset,
        rows,
    })
}

/// How big a pod is as the JSON keel stores and as the `serde_json::Value` keel-apiserver's
/// watch cache holds for every object: `VALUE_COPIES` parsed copies of one pod as served,
/// measured by the RSS they add.
async fn value_footprint(target: &Target) -> Option<(usize, f64)> {
    const VALUE_COPIES: usize = 5000;
    let url = format!(
        "{}/api/v1/namespaces/{NS_PODS}/pods/pod-0",
        target.apiserver(0)
    );
    let json = send(target.http.get(url), StatusCode::OK).await.ok()?;
    let before = proc_status_kib("VmRSS");
    let copies: Vec<serde_json::Value> = (0..VALUE_COPIES)
        .map(|_| serde_json::from_slice(&json))
        .collect::<Result<_, _>>()
        .ok()?;
    let grown = proc_status_kib("VmRSS").saturating_sub(before);
    drop(copies);
    Some((json.len(), grown as f64 * 1024.0 / VALUE_COPIES as f64))
}

/// What one list (all its pages) took and brought.
struct Listed {
    /// Waiting for the answers, to their last byte.
    took: Duration,
    /// Waiting for the answers' first bytes: the server's work.
    first_byte: Duration,
    items: usize,
    bytes: usize,
    pages: usize,
}

/// Lists `url`, every page when `paged`.
async fn list_all(
    http: &reqwest::Client,
    url: &str,
    query: &[(&str, String)],
    paged: bool,
) -> Result<Listed, String> {
    let (mut took, mut first_byte) = (Duration::ZERO, Duration::ZERO);
    let (mut items, mut bytes, mut pages) = (0, 0, 0);
    let mut token: Option<String> = None;
    loop {
        let mut request = http.get(url).query(query);
        if let Some(token) = &token {
            request = request.query(&[("continue", token)]);
        }
        // The clock runs to each page's last byte: decoding it is the client's work. The
        // server builds a whole page before its first byte, so that one says what it costs.
        let sent = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| format!("list: {}", e.without_url()))?;
        first_byte += sent.elapsed();
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("list: {}", e.without_url()))?;
        took += sent.elapsed();
        if status != StatusCode::OK {
            return Err(format!("list: HTTP {}", status.as_u16()));
        }
        let list: ListBody = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        items += list.items.len();
        bytes += body.len();
        pages += 1;
        token = list.metadata.continue_token.filter(|t| !t.is_empty());
        if !paged || token.is_none() {
            return Ok(Listed {
                took,
                first_byte,
                items,
                bytes,
                pages,
            });
        }
    }
}

/// A `/proc/self/status` field in KiB (0 when unreadable): the whole process, that is the
/// three members, their API servers and this client together.
fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user and system) the whole process has used, from `/proc/self/stat` (0 when
/// unreadable). Its clock ticks are USER_HZ, 100 on every Linux architecture keel runs on.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |field: usize| -> u64 {
        fields
            .get(field - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (ticks(14) + ticks(15)) as f64 / 100.0
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ms(value: f64) -> String {
    format!("{value:.2}")
}

fn print_unary(rows: &[Row], sizes: &Sizes, clean: &mut bool) {
    println!(
        "## Unary: {} ops each, {} concurrent clients, spread over the 3 members\n",
        sizes.ops, sizes.clients
    );
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "workload",
        "ok",
        "errors",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "CPU µs/op",
        "API / raw",
    ]);
    for row in rows {
        let r = &row.report;
        *clean &= r.errors == 0;
        table.add_row([
            row.label.clone(),
            r.ok.to_string(),
            r.errors.to_string(),
            format!("{:.0}", r.ops_per_second),
            ms(r.latency_ms.p50),
            ms(r.latency_ms.p99),
            ms(r.latency_ms.slowest),
            format!("{:.0}", row.cpu * 1e6 / r.ok.max(1) as f64),
            row.ratio.clone(),
        ]);
    }
    println!("{table}");
    println!(
        "\nCPU µs/op is the whole process's CPU time (servers and client) over the run's \
         successful operations: steadier than ops/s on a shared machine."
    );
    print_errors(rows.iter().map(|r| &r.report));
}

fn print_errors<'a>(reports: impl IntoIterator<Item = &'a Report>) {
    for report in reports {
        for (message, count) in &report.error_messages {
            println!("- {}: {count}× {message}", report.workload);
        }
    }
}

fn print_watch(run: &WatchRun, sizes: &Sizes, clean: &mut bool) {
    let r = &run.events;
    let c = &run.check;
    println!(
        "\n## Watch: {} watchers (fieldSelector spec.nodeName=node-<i>, over HTTP/1.1, one \
         connection each), {} updates at {}/s\n",
        sizes.watchers, sizes.watch_writes, sizes.watch_rate
    );
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "events ok",
        "p50 ms",
        "p99 ms",
        "max ms",
        "from sent: p50 / p99 / max ms",
        "before ack",
        "writes acked",
        "write errors",
        "missing",
        "duplicates",
        "foreign",
        "out of order",
    ]);
    table.add_row([
        r.ok.to_string(),
        ms(r.latency_ms.p50),
        ms(r.latency_ms.p99),
        ms(r.latency_ms.slowest),
        format!(
            "{} / {} / {}",
            ms(run.from_sent.latency_ms.p50),
            ms(run.from_sent.latency_ms.p99),
            ms(run.from_sent.latency_ms.slowest)
        ),
        run.before_ack.to_string(),
        c.puts_acked.to_string(),
        run.write_errors.to_string(),
        c.missing.to_string(),
        c.duplicates.to_string(),
        run.foreign.to_string(),
        c.out_of_order.to_string(),
    ]);
    println!("{table}");
    println!(
        "\nLatency runs from an update's answer to its event's arrival at the watcher of its \
         node (0 when the event came first: \"before ack\" counts those); \"from sent\" runs \
         from the moment the update was sent. Setup: {} watched pods created in {:.2} s; {} lists and watches opened in {:.2} s; \
         updates sent over {:.2} s ({:.0}/s achieved).",
        sizes.watchers,
        run.pods_setup.as_secs_f64(),
        sizes.watchers,
        run.watch_setup.as_secs_f64(),
        run.writing.as_secs_f64(),
        c.puts_acked as f64 / run.writing.as_secs_f64().max(1e-9),
    );
    let [unwatched, watched] = &run.update_latency;
    println!(
        "The same updates before anyone watched, then with {} watchers: CPU of the whole process \
         per update {:.2} ms, then {:.2} ms; update latency (sent to answered) p50 / p99 / max \
         {} / {} / {} ms, then {} / {} / {} ms.",
        sizes.watchers,
        run.cpu_unwatched * 1000.0 / sizes.watch_writes.max(1) as f64,
        run.cpu_watched * 1000.0 / sizes.watch_writes.max(1) as f64,
        ms(unwatched.latency_ms.p50),
        ms(unwatched.latency_ms.p99),
        ms(unwatched.latency_ms.slowest),
        ms(watched.latency_ms.p50),
        ms(watched.latency_ms.p99),
        ms(watched.latency_ms.slowest),
    );
    *clean &= r.errors == 0;
    print_errors([r]);
}

fn print_lists(run: &ListRun, clean: &mut bool) {
    println!(
        "\n## List of {} pods (one namespace, one client)\n",
        run.pods
    );
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "list",
        "median ms",
        "min ms",
        "to 1st byte, median ms",
        "items",
        "pages",
        "MiB received",
        "RSS after 1st, MiB",
    ]);
    for row in &run.rows {
        let median = |times: &[Duration]| {
            let mut times = times.to_vec();
            times.sort();
            times.get(times.len() / 2).copied().unwrap_or_default()
        };
        let min = row.times.iter().min().copied().unwrap_or_default();
        table.add_row([
            row.label.clone(),
            ms(median(&row.times).as_secs_f64() * 1000.0),
            ms(min.as_secs_f64() * 1000.0),
            ms(median(&row.first_bytes).as_secs_f64() * 1000.0),
            row.items.to_string(),
            row.pages.to_string(),
            format!("{:.1}", row.bytes as f64 / 1_048_576.0),
            format!("{:.0}", row.rss_after as f64 / 1024.0),
        ]);
    }
    println!("{table}");
    println!(
        "\nRSS (VmRSS) is the whole process: the 3 members, their API servers and this \
         client. {:.0} MiB before the lists, {:.0} MiB after them, peak {:.0} MiB {} (VmHWM). \
         Filling the namespace: {} creates at {:.0}/s.",
        run.rss_before as f64 / 1024.0,
        run.rss_after as f64 / 1024.0,
        run.rss_peak as f64 / 1024.0,
        if run.peak_reset {
            "during them"
        } else {
            "over the whole run"
        },
        run.fill.ok,
        run.fill.ops_per_second
    );
    if let Some((json, value)) = run.footprint {
        println!(
            "One pod as served is {json} B of JSON and about {:.1} KiB as a serde_json::Value \
             ({:.0}x), the form the watch cache keeps every object in.",
            value / 1024.0,
            value / json as f64
        );
    }
    *clean &= run.fill.errors == 0;
    print_errors([&run.fill]);
    for row in &run.rows {
        if let Some(error) = &row.error {
            *clean = false;
            println!("- {}: {error}", row.label);
        }
    }
}
