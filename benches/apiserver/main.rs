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
//!
//! # Layout
//!
//! - `main.rs`: flags, the cluster and its clients, the order of the runs.
//! - `unary`: closed-loop creates, gets, puts and ranges, and their ratios.
//! - `watch`: field-selected watchers while their pods are updated.
//! - `list`: lists of many pods from the cache, the store and in pages.
//! - `process`: RSS and CPU time of this process, from /proc.
//! - `print`: the markdown tables.

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

mod list;
mod print;
mod process;
mod unary;
mod watch;

use list::*;
use print::*;
use process::*;
use unary::*;
use watch::*;
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
    let (gets, gets_cpu) = with_cpu(pod_gets(&target, sizes.clients, sizes.ops, None)).await;
    grant_view(&target, RBAC_USER, NS_PODS).await?;
    let (rbac_gets, rbac_gets_cpu) =
        with_cpu(pod_gets(&target, sizes.clients, sizes.ops, Some(RBAC_USER))).await;
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
            label: "pod get as a user RBAC authorizes (view by RoleBinding)".into(),
            ratio: ratio(&rbac_gets, &ranges, 0.0),
            report: rbac_gets,
            cpu: rbac_gets_cpu,
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

/// The user the RBAC row's gets impersonate.
const RBAC_USER: &str = "bench-viewer";

/// Binds ClusterRole `view` to `user` in `namespace`, and waits until every member's
/// authorizer lets `user` get pods there.
async fn grant_view(target: &Target, user: &str, namespace: &str) -> anyhow::Result<()> {
    let body = format!(
        r#"{{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{{"name":"{user}"}},"roleRef":{{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"}},"subjects":[{{"kind":"User","name":"{user}"}}]}}"#
    );
    let url = format!(
        "{}/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        target.apiserver(0)
    );
    send(target.http.post(url).body(body), StatusCode::CREATED)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind view to {user}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    for member in 0..target.apiservers.len() {
        let url = format!(
            "{}/api/v1/namespaces/{namespace}/pods?limit=1",
            target.apiserver(member)
        );
        while send(
            target.http.get(&url).header("impersonate-user", user),
            StatusCode::OK,
        )
        .await
        .is_err()
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{user} never got view on member {member}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
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
