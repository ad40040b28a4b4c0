//! The node lifecycle controller against an in-process control plane, with the scheduler
//! running and each node's agent played by the test ([`Agent`]): it registers its Node and
//! Lease, renews the Lease, and marks its own pods Running and Ready, as kubelet does.
//! Stopping an agent is the node going silent.
//!
//! Timers are shortened (a 2 s grace period, a 100 ms monitor period, an eviction rate that
//! never holds a test back); every wait polls with a deadline.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use keel_controllers::ControllersConfig;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;

use super::{events_with_reason, is_ready, rfc3339, wait_for, Harness};

const GRACE: Duration = Duration::from_secs(2);

fn fast_nodes(config: ControllersConfig) -> ControllersConfig {
    ControllersConfig {
        node_monitor_period: Duration::from_millis(100),
        node_monitor_grace_period: GRACE,
        node_startup_grace_period: GRACE,
        node_eviction_rate: 100.0,
        ..config
    }
}

fn micro_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Plays a node's agent: heartbeats through its Lease every 200 ms, and marks the pods bound
/// to it Running and Ready. Dropping it is the node going silent.
struct Agent(tokio::task::JoinHandle<()>);

impl Agent {
    /// Registers `name` (or reports it Ready again) and starts its heartbeats.
    async fn start(client: &kube::Client, name: &str) -> Agent {
        let nodes: Api<Node> = Api::all(client.clone());
        let now = rfc3339(Timestamp::now());
        let conditions = json!([{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now, "lastTransitionTime": now}]);
        if nodes.get_opt(name).await.unwrap().is_none() {
            let node: Node = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                "status": {
                    "capacity": {"cpu": "4", "memory": "4Gi", "pods": "110"},
                    "allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"},
                    "conditions": conditions,
                },
            }))
            .unwrap();
            nodes.create(&PostParams::default(), &node).await.unwrap();
        } else {
            let status = json!({"status": {"conditions": conditions}});
            nodes
                .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
                .await
                .unwrap();
        }
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        if leases.get_opt(name).await.unwrap().is_none() {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                    "renewTime": micro_time(Timestamp::now())},
            }))
            .unwrap();
            leases.create(&PostParams::default(), &lease).await.unwrap();
        }
        let heartbeats = Self::heartbeats(leases, name.to_owned());
        let pods = Self::run_pods(client.clone(), name.to_owned());
        Agent(tokio::spawn(async move {
            tokio::join!(heartbeats, pods);
        }))
    }

    async fn heartbeats(leases: Api<Lease>, name: String) {
        loop {
            let renew = json!({"spec": {"renewTime": micro_time(Timestamp::now())}});
            let _ = leases
                .patch(&name, &PatchParams::default(), &Patch::Merge(renew))
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn run_pods(client: kube::Client, node: String) {
        let pods: Api<Pod> = Api::all(client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let mut events = std::pin::pin!(watcher(pods, config));
        while let Some(event) = events.next().await {
            let pod = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
                _ => continue,
            };
            if pod.metadata.deletion_timestamp.is_some() || is_ready(&pod) {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap());
            let status = json!({"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(Timestamp::now())},
            ]}});
            let _ = api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(status),
                )
                .await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn start_scheduler(h: &Harness) -> tokio::task::JoinHandle<()> {
    let client = h.cp.cluster.apiservers[0].client("system:kube-scheduler", &["system:masters"]);
    let mut config = keel_scheduler::SchedulerConfig::new("test-scheduler");
    config.lease.lease_duration = Duration::from_millis(1500);
    config.lease.renew_deadline = Duration::from_millis(1000);
    config.lease.retry_period = Duration::from_millis(100);
    tokio::spawn(keel_scheduler::run(client, config, std::future::pending()))
}

fn taint_keys(node: &Node) -> Vec<(String, String)> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|t| {
            t.iter()
                .map(|t| (t.key.clone(), t.effect.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

#[tokio::test]
async fn a_silent_nodes_pods_are_evicted_after_their_toleration_and_replaced_elsewhere() {
    let h = Harness::start_with(fast_nodes).await;
    let scheduler = start_scheduler(&h);
    h.namespace("web").await;
    let node_a = Agent::start(&h.client, "node-a").await;

    let replicasets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "web");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "web");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "main", "image": "nginx"}],
                "tolerations": [{"key": UNREACHABLE, "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 2}],
            },
        }},
    }))
    .unwrap();
    replicasets
        .create(&PostParams::default(), &rs)
        .await
        .unwrap();
    let first = wait_for("two ready pods on node-a", 30, || async {
        let list = pods.list(&ListParams::default()).await.unwrap().items;
        (list.len() == 2
            && list
                .iter()
                .all(|p| is_ready(p) && node_name(p) == Some("node-a")))
        .then_some(list)
    })
    .await;
    // DefaultTolerationSeconds added the not-ready toleration the template lacks.
    let tolerations = first[0].spec.as_ref().unwrap().tolerations.clone().unwrap();
    assert!(tolerations
        .iter()
        .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready")
            && t.toleration_seconds == Some(300)));

    let _node_b = Agent::start(&h.client, "node-b").await;
    drop(node_a);

    let nodes: Api<Node> = Api::all(h.client.clone());
    let silent = wait_for("node-a Unknown and tainted unreachable", 30, || async {
        let node = nodes.get("node-a").await.unwrap();
        let keys = taint_keys(&node);
        (keys.contains(&(UNREACHABLE.into(), "NoExecute".into()))
            && keys.contains(&(UNREACHABLE.into(), "NoSchedule".into())))
        .then_some(node)
    })
    .await;
    let conditions = silent.status.clone().unwrap().conditions.unwrap();
    let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "Unknown");
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let no_execute: Taint = silent
        .spec
        .clone()
        .unwrap()
        .taints
        .unwrap()
        .into_iter()
        .find(|t| t.key == UNREACHABLE && t.effect == "NoExecute")
        .unwrap();
    let tainted_at = no_execute.time_added.expect("timeAdded").0;
    let events = events_with_reason(&h.client, "default", "NodeNotReady").await;
    assert!(events
        .iter()
        .any(|e| e.involved_object.name.as_deref() == Some("node-a")
            && e.message.as_deref() == Some("Node node-a status is now: NodeNotReady")));

    // The old pods: marked not ready, then deleted tolerationSeconds after the taint (their
    // agent is gone, so they stay Terminating), replaced on node-b.
    for old in &first {
        let name = old.name_any();
        let evicted = wait_for("an old pod evicted", 30, || async {
            let pod = pods.get(&name).await.unwrap();
            pod.metadata.deletion_timestamp.is_some().then_some(pod)
        })
        .await;
        assert_eq!(condition(&evicted, "Ready"), Some("False"), "{name}");
        assert_eq!(
            condition(&evicted, "DisruptionTarget"),
            Some("True"),
            "{name}"
        );
        let grace = evicted.metadata.deletion_grace_period_seconds.unwrap();
        let deleted_at =
            evicted.metadata.deletion_timestamp.unwrap().0 - SignedDuration::from_secs(grace);
        // Timestamps have whole seconds; the true gap is at least tolerationSeconds (2 s).
        assert!(
            deleted_at >= tainted_at + SignedDuration::from_secs(1),
            "{name} deleted at {deleted_at}, tainted at {tainted_at}"
        );
    }
    wait_for("two ready replacements on node-b", 30, || async {
        let list = pods.list(&ListParams::default()).await.unwrap().items;
        let fresh: Vec<&Pod> = list
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        (fresh.len() == 2
            && fresh
                .iter()
                .all(|p| is_ready(p) && node_name(p) == Some("node-b")))
        .then_some(())
    })
    .await;
    let evictions = events_with_reason(&h.client, "web", "TaintManagerEviction").await;
    for old in &first {
        let expected = format!("Marking for deletion Pod web/{}", old.name_any());
        assert!(
            evictions
                .iter()
                .any(|e| e.message.as_deref() == Some(expected.as_str())),
            "no eviction event for {}",
            old.name_any()
        );
    }

    // The agent comes back: Ready again, taints gone.
    let _node_a = Agent::start(&h.client, "node-a").await;
    wait_for("node-a's taints removed", 30, || async {
        let node = nodes.get("node-a").await.unwrap();
        taint_keys(&node).is_empty().then_some(())
    })
    .await;

    scheduler.abort();
    h.stop().await;
}

#[tokio::test]
async fn an_untolerated_no_execute_taint_evicts_at_once_and_a_tolerated_one_waits() {
    let h = Harness::start_with(fast_nodes).await;
    h.namespace("taints").await;
    let _agent = Agent::start(&h.client, "infra").await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "taints");
    for (name, tolerations) in [
        ("intolerant", json!([])),
        (
            "forever",
            json!([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]),
        ),
        (
            "an-hour",
            json!([{"key": "dedicated", "operator": "Equal", "value": "infra",
                "effect": "NoExecute", "tolerationSeconds": 3600}]),
        ),
    ] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": "infra", "tolerations": tolerations,
                "containers": [{"name": "main", "image": "nginx"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let nodes: Api<Node> = Api::all(h.client.clone());
    let taint = json!({"spec": {"taints": [
        {"key": "dedicated", "value": "infra", "effect": "NoExecute"}]}});
    nodes
        .patch("infra", &PatchParams::default(), &Patch::Merge(taint))
        .await
        .unwrap();
    wait_for("the intolerant pod evicted", 30, || async {
        let pod = pods.get("intolerant").await.unwrap();
        pod.metadata.deletion_timestamp.is_some().then_some(())
    })
    .await;
    let untaint = json!({"spec": {"taints": null}});
    nodes
        .patch("infra", &PatchParams::default(), &Patch::Merge(untaint))
        .await
        .unwrap();
    // The pod tolerating it for an hour had its deletion scheduled; the taint's removal
    // cancels it.
    wait_for("the cancelled eviction", 30, || async {
        let events = events_with_reason(&h.client, "taints", "TaintManagerEviction").await;
        events
            .iter()
            .any(|e| e.message.as_deref() == Some("Cancelling deletion of Pod taints/an-hour"))
            .then_some(())
    })
    .await;
    for name in ["forever", "an-hour"] {
        let pod = pods.get(name).await.unwrap();
        assert!(
            pod.metadata.deletion_timestamp.is_none(),
            "{name} was evicted"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn when_every_node_is_silent_nothing_is_evicted() {
    let h = Harness::start_with(fast_nodes).await;
    h.namespace("alone").await;
    let agent = Agent::start(&h.client, "lonely").await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "alone");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"nodeName": "lonely", "containers": [{"name": "main", "image": "nginx"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_for("the pod ready", 30, || async {
        is_ready(&pods.get("p").await.unwrap()).then_some(())
    })
    .await;
    drop(agent);
    let nodes: Api<Node> = Api::all(h.client.clone());
    // The NoSchedule and NoExecute taints are written together: with the whole cluster down
    // (a likely partition of the control plane) the controller writes the first only.
    let node = wait_for("the lone node tainted unschedulable", 30, || async {
        let node = nodes.get("lonely").await.unwrap();
        taint_keys(&node)
            .contains(&(UNREACHABLE.into(), "NoSchedule".into()))
            .then_some(node)
    })
    .await;
    assert!(!taint_keys(&node).contains(&(UNREACHABLE.into(), "NoExecute".into())));
    // Its pod is marked not ready, and stays.
    let pod = wait_for("the pod marked not ready", 30, || async {
        let pod = pods.get("p").await.unwrap();
        (condition(&pod, "Ready") == Some("False")).then_some(pod)
    })
    .await;
    assert!(pod.metadata.deletion_timestamp.is_none());
    h.stop().await;
}
