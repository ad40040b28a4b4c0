//! The node proxy (keel-agent's `proxy`) on the host runtime, with the controllers making
//! EndpointSlices: a client pod reaches the `web` Deployment through its Service's ClusterIP,
//! requests spread over both ready backends, the node reaches the NodePort on 127.0.0.1, a
//! backend whose readiness probe fails stops getting requests, `sessionAffinity: ClientIP`
//! keeps a client on one backend, and once the Service is deleted its ClusterIP stops
//! answering. The proxy's link and route are gone when it stops. Runs as root (as CI does);
//! a guard removes the links and route this test names even when it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use keel_agent::proxy::{self, ProxyConfig};
use keel_agent::{NodeConfig, Runtimes, Timings};
use keel_runtime::host::{HostConfig, HostRuntime};
use keel_runtime::{ContainerId, Runtime as _};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::kube_api::ControlPlane;
use crate::poll::eventually;

/// The node's pods: link-local, inside namespaces this test makes.
const POD_CIDR: &str = "169.254.43.0/24";
/// The control plane's service range (keel dev's, link-local).
const SERVICE_CIDR: &str = "169.254.64.0/20";
const BRIDGE: &str = "keelit-svcbr";
const PROXY_LINK: &str = "keelit-svc0";
const NODE: &str = "proxy-node";

/// Removes this test's pods (processes, network namespaces, cgroups), links and route,
/// whatever happened (each step finds nothing left after a clean run).
struct NetworkGuard {
    host: Option<HostRuntime>,
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
            vec!["link", "del", PROXY_LINK],
            vec!["link", "del", BRIDGE],
            vec!["route", "del", "unreachable", SERVICE_CIDR],
        ] {
            let _ = std::process::Command::new("ip")
                .args(&args)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn deployment(name: &str, replicas: i32, container: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeName": NODE,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [container],
                    "volumes": [{"name": "www", "emptyDir": {}}]
                }
            }
        }
    }))
    .unwrap()
}

/// Web pods serve their own name; they are ready while `/www/unready` does not exist.
fn web() -> Deployment {
    deployment(
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

fn client() -> Deployment {
    deployment(
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

/// The ready pods of `app`.
async fn ready_pods(pods: &Api<Pod>, app: &str, count: usize) -> Vec<Pod> {
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

/// What `wget` in the client pod gets from `url` (its exit code and body). busybox 1.35's
/// `wget -T` crashes, so `timeout` bounds it.
async fn wget(host: &HostRuntime, client: &ContainerId, url: &str) -> (i32, String) {
    let argv: Vec<String> = [
        "busybox", "timeout", "3", "busybox", "wget", "-q", "-O", "-", url,
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let output = host
        .exec_sync(client, &argv, Duration::from_secs(10))
        .await
        .expect("exec in the client pod");
    (
        output.exit_code,
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    )
}

/// `count` answers from `url` through the client pod, each one a web pod's name.
async fn answers(host: &HostRuntime, client: &ContainerId, url: &str, count: usize) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..count {
        let (code, body) = wget(host, client, url).await;
        assert_eq!(code, 0, "wget {url} failed: {body}");
        names.push(body);
    }
    names
}

/// An HTTP GET of `/` from the node itself (the test process), the body returned.
async fn node_get(address: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
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

/// The emptyDir `www` of `pod` on the node.
fn www_dir(agent_dir: &Path, pod: &Pod) -> PathBuf {
    let uid = pod.metadata.uid.as_deref().unwrap();
    agent_dir.join("pods").join(uid).join("volumes").join("www")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_reach_ready_pods_through_the_node_proxy() {
    // Made before the guard, so dropped after it: the teardown reads the runtime's state.
    let dir = tempfile::tempdir().unwrap();
    let mut guard = NetworkGuard { host: None };
    let cp = ControlPlane::start(1).await;
    let apiserver = &cp.cluster.apiservers[0];
    let admin = apiserver.client("admin", &["system:masters"]);

    // The controllers make the Deployments' pods and the Service's EndpointSlices.
    let (stop_controllers, controllers_stopped) = tokio::sync::oneshot::channel::<()>();
    let controllers = tokio::spawn(keel_controllers::run(
        apiserver.client("system:kube-controller-manager", &[]),
        keel_controllers::ControllersConfig {
            lease_duration: Duration::from_millis(1500),
            renew_deadline: Duration::from_millis(1000),
            retry_period: Duration::from_millis(100),
            ..keel_controllers::ControllersConfig::new("service-proxy-test")
        },
        async move {
            let _ = controllers_stopped.await;
        },
    ));

    // One node on the host runtime, and its proxy.
    let host = HostRuntime::new(HostConfig {
        data_dir: dir.path().join("runtime-host"),
        pod_cidr: POD_CIDR.parse().unwrap(),
        bridge: BRIDGE.into(),
        cgroup_parent: "keel-it-service-proxy".into(),
        shim: vec![env!("CARGO_BIN_EXE_keel").into(), "runtime-shim".into()],
    })
    .unwrap();
    guard.host = Some(host.clone());
    let agent_dir = dir.path().join("agent");
    let mut config = NodeConfig::new(NODE, agent_dir.clone(), "host");
    config.pod_cidr = Some(POD_CIDR.into());
    config.timings = Timings {
        lease_renew_interval: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(100),
        pod_resync: Duration::from_millis(300),
        ..Timings::default()
    };
    let runtimes = {
        let host = host.clone();
        std::sync::Arc::new(move |_: &keel_agent::RuntimeContext<'_>| {
            Ok(Runtimes::new().with(host.clone()))
        }) as keel_agent::MakeRuntimes
    };
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(keel_agent::run(
        apiserver.client(&format!("system:node:{NODE}"), &["system:nodes"]),
        vec![config],
        runtimes,
        async move {
            let _ = agent_stopped.await;
        },
    ));
    let node_port_address: std::net::IpAddr = [127, 0, 0, 1].into();
    let proxy_config = ProxyConfig {
        interface: PROXY_LINK.into(),
        resync: Duration::from_secs(1),
        ..ProxyConfig::new(node_port_address, Some(SERVICE_CIDR))
    };
    let (stop_proxy, proxy_stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy = tokio::spawn(proxy::run(
        apiserver.client("system:kube-proxy", &[]),
        proxy_config,
        async move {
            let _ = proxy_stopped.await;
        },
    ));

    let post = PostParams::default();
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "default");
    deployments.create(&post, &web()).await.unwrap();
    deployments.create(&post, &client()).await.unwrap();
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
    let client_pod = ready_pods(&pods, "client", 1).await.remove(0);
    let client_id = client_pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .container_id
        .clone()
        .unwrap();
    let client_id = ContainerId(client_id.trim_start_matches("host://").to_owned());

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
    std::fs::write(www_dir(&agent_dir, unready).join("unready"), "").unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(admin.clone(), "default");
    eventually(
        "the EndpointSlice to mark the backend not ready",
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .ok()?;
            list.items
                .iter()
                .flat_map(|s| &s.endpoints)
                .any(|e| {
                    e.addresses.contains(&unready_ip)
                        && e.conditions.as_ref().and_then(|c| c.ready) == Some(false)
                })
                .then_some(())
        },
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
    std::fs::remove_file(www_dir(&agent_dir, unready).join("unready")).unwrap();
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
    let held = proxy::interface::read_addresses(PROXY_LINK).unwrap();
    assert!(
        !held.contains(&cluster_ip.parse().unwrap()),
        "{cluster_ip} still on {PROXY_LINK}: {held:?}"
    );
    assert!(tokio::net::TcpStream::connect(node_address).await.is_err());

    // Stopping the proxy removes its link and route.
    let _ = stop_proxy.send(());
    proxy.await.unwrap().unwrap();
    assert!(!proxy::interface::exists(PROXY_LINK));
    assert!(!proxy::interface::route_exists(SERVICE_CIDR));

    for name in ["web", "client"] {
        deployments
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    eventually("every pod gone", || async {
        pods.list(&Default::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    let _ = stop_agent.send(());
    agent.await.unwrap().unwrap();
    host.teardown_all().await.unwrap();
    let _ = stop_controllers.send(());
    controllers.await.unwrap();
    cp.stop().await;
}
