//! keel-agent with the `host` runtime against an in-process control plane: real processes in
//! the pod's namespaces. A pod bound to the node runs (Running, Ready, a pod IP from the node's
//! link-local CIDR, its downward-API env in its log), a container that cannot start shows
//! kube's `StartError`, a `restartPolicy: Never` pod that exits 3 ends Failed with that code,
//! and a deleted pod whose PID 1 ignores SIGTERM is killed after its grace and its deletion
//! confirmed. Runs as root (as CI does); everything it made is torn down at the end.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use keel_agent::{NodeConfig, Runtimes, Timings};
use keel_runtime::host::{HostConfig, HostRuntime};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::sync::oneshot;

use crate::kube_api::ControlPlane;
use crate::poll::eventually;

/// The node's pod network: link-local, inside namespaces this test makes.
const POD_CIDR: &str = "169.254.41.0/24";

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut pod = json!({"metadata": {"name": name}, "spec": spec});
    pod["spec"]["nodeName"] = json!("host-node");
    serde_json::from_value(pod).unwrap()
}

fn container_state(pod: &Pod) -> Option<serde_json::Value> {
    let status = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    serde_json::to_value(status.state.as_ref()?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_as_real_processes_on_the_host_runtime() {
    let cp = ControlPlane::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let host = HostRuntime::new(HostConfig {
        data_dir: dir.path().join("runtime-host"),
        pod_cidr: POD_CIDR.parse().unwrap(),
        bridge: "keelit-agent".into(),
        cgroup_parent: "keel-it-agent-host".into(),
        shim: vec![env!("CARGO_BIN_EXE_keel").into(), "runtime-shim".into()],
    })
    .unwrap();
    let client = cp.cluster.apiservers[0].client("system:node:host-node", &["system:nodes"]);
    let mut config = NodeConfig::new("host-node", dir.path().join("agent"), "host");
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
    let (stop, stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(keel_agent::run(
        client,
        vec![config],
        runtimes,
        async move {
            let _ = stopped.await;
        },
    ));

    let admin = cp.cluster.apiservers[0].client("admin", &["system:masters"]);
    let pods: Api<Pod> = Api::namespaced(admin, "default");
    let post = PostParams::default();

    // A long-running pod: Running and Ready with a pod IP, its env resolved by the agent.
    let web = pod(
        "web",
        json!({"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "app", "image": "busybox",
            "command": ["/bin/sh", "-c", "echo hello from $(POD_NAME) on $MY_NODE; exec sleep 3600"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
            ],
            "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1}
        }]}),
    );
    pods.create(&post, &web).await.unwrap();
    let running = eventually("pod web Running and Ready", || async {
        let pod = pods.get_opt("web").await.ok()??;
        let status = pod.status.as_ref()?;
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        (status.phase.as_deref() == Some("Running") && ready).then_some(pod)
    })
    .await;
    let pod_ip = running.status.as_ref().unwrap().pod_ip.clone().unwrap();
    assert!(pod_ip.starts_with("169.254.41."), "pod IP {pod_ip}");
    let log = eventually("web's log line", || async {
        let found = walk_logs(&dir.path().join("agent"));
        found
            .into_iter()
            .find(|line| line.contains("hello from web"))
    })
    .await;
    assert!(
        log.contains(" stdout F hello from web on host-node"),
        "CRI log line: {log}"
    );

    // A container whose executable does not exist: kube's StartError with runc's message.
    let broken = pod(
        "broken",
        json!({"restartPolicy": "Never", "containers": [{
            "name": "app", "image": "busybox", "command": ["/nonexistent/app"]}]}),
    );
    pods.create(&post, &broken).await.unwrap();
    let state = eventually("broken's StartError", || async {
        let state = container_state(&pods.get_opt("broken").await.ok()??)?;
        (state["terminated"]["reason"] == "StartError").then_some(state)
    })
    .await;
    let message = state["terminated"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/nonexistent/app"), "message: {message}");

    // restartPolicy Never and exit 3: the pod fails with the container's code.
    let exits = pod(
        "exits",
        json!({"restartPolicy": "Never", "containers": [{
            "name": "app", "image": "busybox", "command": ["/bin/sh", "-c", "exit 3"]}]}),
    );
    pods.create(&post, &exits).await.unwrap();
    let state = eventually("exits to fail", || async {
        let pod = pods.get_opt("exits").await.ok()??;
        (pod.status.as_ref()?.phase.as_deref() == Some("Failed")).then(|| container_state(&pod))?
    })
    .await;
    assert_eq!(state["terminated"]["exitCode"], 3);
    assert_eq!(state["terminated"]["reason"], "Error");

    // `sleep` as PID 1 ignores SIGTERM: the agent kills it after the 1 s grace and confirms
    // the deletion, so the object goes away.
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("web's deletion confirmed", || async {
        matches!(pods.get_opt("web").await, Ok(None)).then_some(())
    })
    .await;
    for name in ["broken", "exits"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    eventually("every pod gone", || async {
        let left = pods.list(&Default::default()).await.ok()?;
        left.items.is_empty().then_some(())
    })
    .await;
    eventually("every sandbox removed", || async {
        use keel_runtime::Runtime as _;
        host.list_sandboxes().await.ok()?.is_empty().then_some(())
    })
    .await;

    let _ = stop.send(());
    agent.await.unwrap().unwrap();
    host.teardown_all().await.unwrap();
    cp.stop().await;
}

/// Every line of every container log under `dir`.
fn walk_logs(dir: &std::path::Path) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return lines;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            lines.extend(walk_logs(&path));
        } else if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    lines
}
