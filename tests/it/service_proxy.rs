//! The node proxy (keel-agent's `proxy`) on the host runtime, with the controllers making
//! EndpointSlices: a client pod reaches the `web` Deployment through its Service's ClusterIP,
//! requests spread over both ready backends, the node reaches the NodePort on 127.0.0.1, a
//! backend whose readiness probe fails stops getting requests, `sessionAffinity: ClientIP`
//! keeps a client on one backend, a scaled-down backend's long-lived connection ends cleanly
//! while the other's lives on, and once the Service is deleted its ClusterIP stops answering.
//! The proxy's link and route are gone when it stops. The agent and its proxy act with the
//! node's credentials (`system:node:<name>`, group `system:nodes`), as `keel agent --proxy`
//! does. Runs as root (as CI does); a guard removes the links and route the test names even
//! when it fails.
//!
//! [`ServiceNode`] is the fixture (one node, its proxy, optionally the cluster DNS as `keel dev`
//! runs it), shared with `service_dns.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use keel::cli::dns::ClusterDns;
use keel_agent::proxy::{self, ProxyConfig};
use keel_agent::{NodeConfig, Runtimes, Timings};
use keel_runtime::host::{HostConfig, HostRuntime};
use keel_runtime::{ContainerId, Runtime as _};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::kube_api::ControlPlane;
use crate::poll::eventually;

/// The control plane's service range (keel dev's, link-local). Every test here routes it
/// `unreachable` while it runs, so they take turns ([`HOST_NETWORK`]).
const SERVICE_CIDR: &str = "169.254.64.0/20";

/// Held by each test that changes the host's links and routes: one at a time.
static HOST_NETWORK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The names one test's node uses on the host: link-local pods, links of its own.
#[derive(Clone, Copy)]
pub(crate) struct HostNames {
    pub(crate) node: &'static str,
    pub(crate) pod_cidr: &'static str,
    pub(crate) bridge: &'static str,
    pub(crate) proxy_link: &'static str,
}

const NAMES: HostNames = HostNames {
    node: "proxy-node",
    pod_cidr: "169.254.43.0/24",
    bridge: "keelit-svcbr",
    proxy_link: "keelit-svc0",
};

/// Removes a test's pods (processes, network namespaces, cgroups), links and route,
/// whatever happened (each step finds nothing left after a clean run).
struct NetworkGuard {
    host: Option<HostRuntime>,
    names: HostNames,
}

impl Drop for NetworkGuard {
    fn drop(&mut self) {
        if let Some(host) = self.host.take() {
            // Drop cannot await: tear down on a runtime of its own, on a thread of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let _ = runtime.block_on(host.teardown_all());
            })
            .join();
        }
        for args in [
            vec!["link", "del", self.names.proxy_link],
            vec!["link", "del", self.names.bridge],
            vec!["route", "del", "unreachable", SERVICE_CIDR],
        ] {
            let _ = std::process::Command::new("ip")
                .args(&args)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// A stoppable task of the fixture.
struct Running<T> {
    stop: oneshot::Sender<()>,
    task: JoinHandle<T>,
}

impl<T> Running<T> {
    fn spawn<F: std::future::Future<Output = T> + Send + 'static>(
        run: impl FnOnce(oneshot::Receiver<()>) -> F,
    ) -> Running<T>
    where
        T: Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        Running {
            stop,
            task: tokio::spawn(run(stopped)),
        }
    }

    async fn stop(self) -> T {
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

/// One node on the host runtime with the controllers and the node proxy, both acting as the
/// node, over an in-process control plane; with `dns`, keel-dns as `keel dev` serves it
/// ([`ClusterDns`]: the kube-dns Service, the proxy's frontends, the agent's `--cluster-dns`).
pub(crate) struct ServiceNode {
    pub(crate) cp: ControlPlane,
    pub(crate) admin: kube::Client,
    pub(crate) host: HostRuntime,
    pub(crate) agent_dir: PathBuf,
    pub(crate) dns: Option<ClusterDns>,
    pub(crate) names: HostNames,
    controllers: Running<()>,
    agent: Running<keel_agent::Result<()>>,
    proxy: Option<Running<keel_agent::Result<()>>>,
    // Dropped in this order: the guard's teardown reads the runtime's state under `dir`.
    guard: NetworkGuard,
    dir: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl ServiceNode {
    pub(crate) async fn start(names: HostNames, dns: bool) -> ServiceNode {
        let turn = HOST_NETWORK.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let mut guard = NetworkGuard { host: None, names };
        let cp = ControlPlane::start(1).await;
        let apiserver = &cp.cluster.apiservers[0];
        let admin = apiserver.client("admin", &["system:masters"]);
        // The node's own credentials, as `keel agent` has them in production.
        let node_client =
            apiserver.client(&format!("system:node:{}", names.node), &["system:nodes"]);

        // The controllers make the Deployments' pods and the Services' EndpointSlices.
        let controllers_client = apiserver.client("system:kube-controller-manager", &[]);
        let controllers = Running::spawn(|stopped| {
            keel_controllers::run(
                controllers_client,
                keel_controllers::ControllersConfig {
                    lease_duration: Duration::from_millis(1500),
                    renew_deadline: Duration::from_millis(1000),
                    retry_period: Duration::from_millis(100),
                    ..keel_controllers::ControllersConfig::new("service-proxy-test")
                },
                async move {
                    let _ = stopped.await;
                },
            )
        });

        // The cluster DNS, started as `keel dev` starts it.
        let dns = if dns {
            let ip = keel_apiserver::allocator::ServiceNetwork::default()
                .dns_service_ip()
                .unwrap();
            let started = ClusterDns::start(
                apiserver.client("system:keel-dns", &["system:masters"]),
                ([127, 0, 0, 1], 0).into(),
                ip.into(),
            )
            .await
            .expect("cluster DNS");
            Some(started)
        } else {
            None
        };

        let host = HostRuntime::new(HostConfig {
            data_dir: dir.path().join("runtime-host"),
            pod_cidr: names.pod_cidr.parse().unwrap(),
            bridge: names.bridge.into(),
            cgroup_parent: format!("keel-it-{}", names.node),
            shim: vec![env!("CARGO_BIN_EXE_keel").into(), "runtime-shim".into()],
        })
        .unwrap();
        guard.host = Some(host.clone());
        let agent_dir = dir.path().join("agent");
        let mut config = NodeConfig::new(names.node, agent_dir.clone(), "host");
        config.pod_cidr = Some(names.pod_cidr.into());
        config.timings = Timings {
            lease_renew_interval: Duration::from_millis(200),
            backoff_initial: Duration::from_millis(100),
            pod_resync: Duration::from_millis(300),
            ..Timings::default()
        };
        config
            .cluster_dns
            .nameservers
            .extend(dns.as_ref().map(|d| d.service_ip));
        let runtimes = {
            let host = host.clone();
            std::sync::Arc::new(move |_: &keel_agent::RuntimeContext<'_>| {
                Ok(Runtimes::new().with(host.clone()))
            }) as keel_agent::MakeRuntimes
        };
        let agent = {
            let client = node_client.clone();
            Running::spawn(|stopped| {
                keel_agent::run(client, vec![config], runtimes, async move {
                    let _ = stopped.await;
                })
            })
        };
        let mut proxy_config = ProxyConfig {
            interface: names.proxy_link.into(),
            resync: Duration::from_secs(1),
            ..ProxyConfig::new([127, 0, 0, 1].into(), Some(SERVICE_CIDR))
        };
        if let Some(dns) = &dns {
            proxy_config.fixed = dns.proxy_frontends();
        }
        let proxy = Running::spawn(|stopped| {
            proxy::run(node_client, proxy_config, async move {
                let _ = stopped.await;
            })
        });
        ServiceNode {
            cp,
            admin,
            host,
            agent_dir,
            dns,
            names,
            controllers,
            agent,
            proxy: Some(proxy),
            guard,
            dir,
            _turn: turn,
        }
    }

    /// Stops the proxy: its link and route are gone once it has.
    pub(crate) async fn stop_proxy(&mut self) {
        if let Some(proxy) = self.proxy.take() {
            proxy.stop().await.unwrap();
        }
        assert!(!proxy::interface::exists(self.names.proxy_link));
        assert!(!proxy::interface::route_exists(SERVICE_CIDR));
    }

    /// Deletes every Deployment, waits for their pods to go, and stops everything.
    pub(crate) async fn stop(mut self) {
        self.stop_proxy().await;
        let deployments: Api<Deployment> = Api::all(self.admin.clone());
        for deployment in deployments.list(&Default::default()).await.unwrap() {
            let namespace = deployment.metadata.namespace.unwrap();
            let name = deployment.metadata.name.unwrap();
            Api::<Deployment>::namespaced(self.admin.clone(), &namespace)
                .delete(&name, &DeleteParams::default())
                .await
                .unwrap();
        }
        let pods: Api<Pod> = Api::all(self.admin.clone());
        eventually("every pod gone", || async {
            pods.list(&Default::default())
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        })
        .await;
        self.agent.stop().await.unwrap();
        self.host.teardown_all().await.unwrap();
        if let Some(dns) = self.dns.take() {
            dns.stop().await;
        }
        self.controllers.stop().await;
        let ServiceNode { cp, guard, dir, .. } = self;
        cp.stop().await;
        drop(guard);
        drop(dir);
    }

    /// The agent's directory of `pod`'s emptyDir `www`.
    pub(crate) fn www_dir(&self, pod: &Pod) -> PathBuf {
        www_dir(&self.agent_dir, pod)
    }
}

/// A Deployment of `replicas` pods of `container` on `node`, each with an emptyDir `www`.
pub(crate) fn deployment(
    node: &str,
    name: &str,
    replicas: i32,
    container: serde_json::Value,
) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeName": node,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [container],
                    "volumes": [{"name": "www", "emptyDir": {}}]
                }
            }
        }
    }))
    .unwrap()
}

/// Web pods serve their own name on port `http` (8080); they are ready while `/www/unready`
/// does not exist.
pub(crate) fn web(node: &str) -> Deployment {
    deployment(
        node,
        "web",
        2,
        json!({
            "name": "httpd", "image": "busybox",
            "command": ["/bin/sh", "-c",
                "busybox hostname > /www/index.html; exec busybox httpd -f -p 8080 -h /www"],
            "ports": [{"name": "http", "containerPort": 8080}],
            "volumeMounts": [{"name": "www", "mountPath": "/www"}],
            "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "test ! -e /www/unready"]},
                               "periodSeconds": 1}
        }),
    )
}

/// A pod to run `wget` and `nslookup` in.
pub(crate) fn client(node: &str) -> Deployment {
    deployment(
        node,
        "client",
        1,
        json!({
            "name": "shell", "image": "busybox",
            "command": ["/bin/sh", "-c", "exec sleep 3600"],
            "volumeMounts": [{"name": "www", "mountPath": "/www"}]
        }),
    )
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The ready pods of `app`, once there are `count`.
pub(crate) async fn ready_pods(pods: &Api<Pod>, app: &str, count: usize) -> Vec<Pod> {
    eventually(&format!("{count} ready {app} pods"), || async {
        let list = pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .ok()?;
        let ready: Vec<Pod> = list.items.into_iter().filter(is_ready).collect();
        (ready.len() == count).then_some(ready)
    })
    .await
}

/// `pod`'s first container, as the host runtime knows it.
pub(crate) fn container_of(pod: &Pod) -> ContainerId {
    let id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c[0].container_id.clone())
        .expect("a started container");
    ContainerId(id.trim_start_matches("host://").to_owned())
}

/// Runs `argv` in `container` (bounded by busybox `timeout`, as busybox 1.35's `wget -T`
/// crashes): its exit code and its output, stdout then stderr, trimmed.
pub(crate) async fn exec(
    host: &HostRuntime,
    container: &ContainerId,
    argv: &[&str],
) -> (i32, String) {
    let argv: Vec<String> = ["busybox", "timeout", "3"]
        .iter()
        .chain(argv)
        .map(|a| a.to_string())
        .collect();
    let output = host
        .exec_sync(container, &argv, Duration::from_secs(10))
        .await
        .expect("exec in the pod");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.exit_code, text.trim().to_owned())
}

/// What `wget` in the client pod gets from `url` (its exit code and body).
pub(crate) async fn wget(host: &HostRuntime, client: &ContainerId, url: &str) -> (i32, String) {
    exec(host, client, &["busybox", "wget", "-q", "-O", "-", url]).await
}

/// `count` answers from `url` through the client pod, each one a web pod's name.
pub(crate) async fn answers(
    host: &HostRuntime,
    client: &ContainerId,
    url: &str,
    count: usize,
) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..count {
        let (code, body) = wget(host, client, url).await;
        assert_eq!(code, 0, "wget {url} failed: {body}");
        names.push(body);
    }
    names
}

/// The body of an HTTP GET of `/` on `stream`, asserting a 200.
async fn get_on(mut stream: tokio::net::TcpStream) -> String {
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    assert!(
        head.starts_with("HTTP/1.") && head.lines().next().unwrap().contains(" 200 "),
        "response: {response}"
    );
    body.trim().to_owned()
}

/// An HTTP GET of `/` from the node itself (the test process), the body returned.
async fn node_get(address: std::net::SocketAddr) -> String {
    get_on(tokio::net::TcpStream::connect(address).await.unwrap()).await
}

/// The emptyDir `www` of `pod` on the node.
fn www_dir(agent_dir: &Path, pod: &Pod) -> PathBuf {
    let uid = pod.metadata.uid.as_deref().unwrap();
    agent_dir.join("pods").join(uid).join("volumes").join("www")
}

/// Whether the EndpointSlices of service `web` list `ip` with `ready` as given (`None`: not
/// listed at all).
async fn web_endpoint(slices: &Api<EndpointSlice>, ip: &str) -> Option<Option<bool>> {
    let list = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .ok()?;
    Some(
        list.items
            .iter()
            .flat_map(|s| &s.endpoints)
            .find(|e| e.addresses.iter().any(|a| a == ip))
            .map(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_reach_ready_pods_through_the_node_proxy() {
    let mut node = ServiceNode::start(NAMES, false).await;
    let (host, admin) = (node.host.clone(), node.admin.clone());

    let post = PostParams::default();
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "default");
    deployments.create(&post, &web(NAMES.node)).await.unwrap();
    deployments
        .create(&post, &client(NAMES.node))
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(admin.clone(), "default");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    }))
    .unwrap();
    let service = services.create(&post, &service).await.unwrap();
    let spec = service.spec.unwrap();
    let cluster_ip = spec.cluster_ip.unwrap();
    let node_port = spec.ports.unwrap()[0].node_port.unwrap() as u16;
    assert!(cluster_ip.starts_with("169.254."), "ClusterIP {cluster_ip}");
    let url = format!("http://{cluster_ip}/");

    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let backends = ready_pods(&pods, "web", 2).await;
    let names: BTreeSet<String> = backends
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    let client_id = container_of(&ready_pods(&pods, "client", 1).await[0]);
    let node_port_address: std::net::IpAddr = [127, 0, 0, 1].into();

    // The ClusterIP answers from the client pod once the proxy has both endpoints, and
    // requests alternate over them.
    eventually("the ClusterIP to answer from both web pods", || async {
        let mut seen = BTreeSet::new();
        for _ in 0..2 {
            let (code, body) = wget(&host, &client_id, &url).await;
            if code != 0 {
                return None;
            }
            seen.insert(body);
        }
        (seen == names).then_some(())
    })
    .await;
    let spread = answers(&host, &client_id, &url, 6).await;
    for name in &names {
        let count = spread.iter().filter(|n| *n == name).count();
        assert_eq!(count, 3, "{name} got {count} of 6 requests: {spread:?}");
    }

    // The NodePort on 127.0.0.1, from the node itself.
    let node_address = std::net::SocketAddr::new(node_port_address, node_port);
    let mut from_node = BTreeSet::new();
    for _ in 0..4 {
        from_node.insert(node_get(node_address).await);
    }
    assert_eq!(from_node, names, "the NodePort spread");

    // A backend whose readiness probe fails leaves the EndpointSlice, then gets no request.
    let (unready, still_ready) = (&backends[0], &backends[1]);
    let unready_name = unready.metadata.name.clone().unwrap();
    let unready_ip = unready.status.as_ref().unwrap().pod_ip.clone().unwrap();
    std::fs::write(node.www_dir(unready).join("unready"), "").unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(admin.clone(), "default");
    eventually(
        "the EndpointSlice to mark the backend not ready",
        || async { (web_endpoint(&slices, &unready_ip).await? == Some(false)).then_some(()) },
    )
    .await;
    eventually("requests to go to the ready backend only", || async {
        let got = answers(&host, &client_id, &url, 4).await;
        got.iter().all(|n| n != &unready_name).then_some(())
    })
    .await;
    let after = answers(&host, &client_id, &url, 6).await;
    let ready_name = still_ready.metadata.name.clone().unwrap();
    assert!(after.iter().all(|n| *n == ready_name), "{after:?}");

    // Ready again, and ClientIP affinity: every request of this client goes to one backend.
    std::fs::remove_file(node.www_dir(unready).join("unready")).unwrap();
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"sessionAffinity": "ClientIP"}})),
        )
        .await
        .unwrap();
    eventually("both backends ready again, with affinity", || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?;
        let ready = list
            .items
            .iter()
            .flat_map(|s| &s.endpoints)
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .count();
        let service = services.get("web").await.ok()?;
        let sticky = service.spec?.session_affinity.as_deref() == Some("ClientIP");
        (ready == 2 && sticky).then_some(())
    })
    .await;
    // The proxy sees the change within its watch's latency; once it has, one backend only.
    eventually("one client kept on one backend", || async {
        let got = answers(&host, &client_id, &url, 6).await;
        got.iter().all(|n| *n == got[0]).then_some(())
    })
    .await;

    // Scaled down, a backend's long-lived connection ends cleanly (the client reads the end,
    // not a reset) while the other backend's lives on; new connections go to the one left.
    // Affinity off again (seen once the client's requests spread), then two connections in a
    // row from the node: round robin joins one to each backend.
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"sessionAffinity": "None"}})),
        )
        .await
        .unwrap();
    eventually("requests spread again", || async {
        let got: BTreeSet<String> = answers(&host, &client_id, &url, 4)
            .await
            .into_iter()
            .collect();
        (got == names).then_some(())
    })
    .await;
    let cluster_address = std::net::SocketAddr::new(cluster_ip.parse().unwrap(), 80);
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            tokio::net::TcpStream::connect(cluster_address)
                .await
                .unwrap(),
        );
    }
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    let ended = eventually("one held connection to end", || async {
        for (index, stream) in held.iter().enumerate() {
            let mut probe = [0u8; 1];
            let peeked = tokio::time::timeout(Duration::from_millis(50), stream.peek(&mut probe));
            match peeked.await {
                Ok(Ok(0)) => return Some(index),
                Ok(other) => panic!("a held connection gave {other:?}, not a clean end"),
                Err(_) => {}
            }
        }
        None
    })
    .await;
    let kept = held.remove(1 - ended);
    let left = ready_pods(&pods, "web", 1).await.remove(0);
    let left_name = left.metadata.name.clone().unwrap();
    assert_eq!(
        get_on(kept).await,
        left_name,
        "the kept connection's backend"
    );
    let gone = backends
        .iter()
        .find(|p| p.metadata.name.as_deref() != Some(&left_name))
        .unwrap();
    let gone_ip = gone.status.as_ref().unwrap().pod_ip.clone().unwrap();
    eventually("the scaled-down pod to leave the EndpointSlice", || async {
        web_endpoint(&slices, &gone_ip)
            .await?
            .is_none()
            .then_some(())
    })
    .await;
    let after = answers(&host, &client_id, &url, 4).await;
    assert!(after.iter().all(|n| *n == left_name), "{after:?}");

    // The Service deleted: its ClusterIP stops answering (the address leaves the proxy's link).
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the ClusterIP to stop answering", || async {
        let (code, _) = wget(&host, &client_id, &url).await;
        (code != 0).then_some(())
    })
    .await;
    let held = proxy::interface::read_addresses(NAMES.proxy_link).unwrap();
    assert!(
        !held.contains(&cluster_ip.parse().unwrap()),
        "{cluster_ip} still on {}: {held:?}",
        NAMES.proxy_link
    );
    assert!(tokio::net::TcpStream::connect(node_address).await.is_err());

    // Stopping the proxy removes its link and route.
    node.stop_proxy().await;
    node.stop().await;
}

/// `keel agent --proxy` whose agent fails as it starts (its data dir cannot be made) exits at
/// once with the error instead of waiting for a signal, and its proxy's link is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keel_agent_with_its_proxy_exits_when_the_agent_fails_to_start() {
    const LINK: &str = "keelit-agt0";
    let _turn = HOST_NETWORK.lock().await;
    // Removes the link should the agent leave it behind (the test then fails).
    struct LinkGuard;
    impl Drop for LinkGuard {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", LINK])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let _link = LinkGuard;
    let dir = tempfile::tempdir().unwrap();
    // An API server nobody answers at: the proxy keeps retrying its watches; the agent's data
    // dir sits under a file, so it fails before it ever reaches the API.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{}'}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n",
            crate::free_port()
        ),
    )
    .unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("agent")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--node-name", "early-fail", "--runtime", "host"])
        .args(["--pod-cidr", "169.254.46.0/24", "--port", "0"])
        .arg("--data-dir")
        .arg(file.join("agent"))
        .args(["--proxy", "--proxy-interface", LINK])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), agent.wait())
        .await
        .expect("keel agent exits without a signal")
        .unwrap();
    let mut stderr = String::new();
    agent
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("keel agent"), "{stderr}");
    assert!(!proxy::interface::exists(LINK), "{LINK} left behind");
}
