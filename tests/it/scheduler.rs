//! keel-scheduler against a real control plane: Node objects made through the API, pods
//! with requests, and the scheduler as an in-process component with its own client. Pods are
//! bound and spread; a pod that fits nowhere stays Pending with kube-scheduler's exact
//! `FailedScheduling` message and `PodScheduled=False` until a bigger node comes; taints,
//! tolerations and node selectors hold; another scheduler's pods are left alone; a pod
//! created after the leader dies is still bound by the other instance. Required pod
//! anti-affinity spreads replicas one per node and leaves the extra one Pending; topology
//! spread constraints keep zones within maxSkew; a second profile from a configuration file
//! serves its own scheduler name with its own scoring.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use keel_scheduler::SchedulerConfig;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use crate::kube_api::ControlPlane;
use crate::poll::eventually;

/// Short lease timings, so a failover takes about 1.5 s.
fn config(identity: &str) -> SchedulerConfig {
    let mut config = SchedulerConfig::new(identity);
    config.lease.lease_duration = Duration::from_millis(1500);
    config.lease.renew_deadline = Duration::from_millis(1000);
    config.lease.retry_period = Duration::from_millis(100);
    config
}

/// A scheduler instance on member 0's API server; stop it by sending on the sender or abort
/// the task (a crash: the lease is not released).
pub(crate) fn start_scheduler(
    cp: &ControlPlane,
    identity: &str,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    start_scheduler_with(cp, config(identity))
}

fn start_scheduler_with(
    cp: &ControlPlane,
    config: SchedulerConfig,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let client = cp.cluster.apiservers[0].client("system:kube-scheduler", &[]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(keel_scheduler::run(client, config, async move {
        let _ = stopped.await;
    }));
    (task, stop)
}

/// A Ready node with `cpu`, 4Gi of memory and 110 pods, as an agent registers it.
pub(crate) async fn create_node(
    client: &kube::Client,
    name: &str,
    cpu: &str,
    extra: serde_json::Value,
) {
    let mut node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "capacity": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status"}],
        },
    });
    merge(&mut node, extra);
    let node: Node = serde_json::from_value(node).unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
}

/// A pod asking for `cpu` and 128Mi.
pub(crate) async fn create_pod(
    client: &kube::Client,
    name: &str,
    cpu: &str,
    extra: serde_json::Value,
) {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "busybox",
            "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}]},
    });
    merge(&mut pod, extra);
    let pod: Pod = serde_json::from_value(pod).unwrap();
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

fn merge(into: &mut serde_json::Value, extra: serde_json::Value) {
    match (into, extra) {
        (serde_json::Value::Object(into), serde_json::Value::Object(extra)) => {
            for (key, value) in extra {
                merge(into.entry(key).or_insert(serde_json::Value::Null), value);
            }
        }
        (into, extra) => *into = extra,
    }
}

pub(crate) async fn node_of(client: &kube::Client, pod: &str) -> Option<String> {
    Api::<Pod>::namespaced(client.clone(), "default")
        .get(pod)
        .await
        .ok()?
        .spec?
        .node_name
}

pub(crate) async fn wait_bound(client: &kube::Client, pod: &str) -> String {
    eventually(&format!("pod {pod} to be bound"), || node_of(client, pod)).await
}

pub(crate) fn pod_scheduled(pod: &Pod) -> Option<(String, Option<String>, Option<String>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The `FailedScheduling` events of `pod`.
pub(crate) async fn failed_scheduling(client: &kube::Client, pod: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(pod)
                && e.reason.as_deref() == Some("FailedScheduling")
        })
        .collect()
}

/// Waits for the pod's FailedScheduling event and condition to carry `message`.
async fn wait_unschedulable(client: &kube::Client, pod: &str, message: &str) {
    let event = eventually(&format!("FailedScheduling for {pod}"), || async {
        failed_scheduling(client, pod).await.into_iter().next()
    })
    .await;
    assert_eq!(event.message.as_deref(), Some(message), "event of {pod}");
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.reporting_component.as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(event.action.as_deref(), Some("Scheduling"));
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let condition = eventually(&format!("PodScheduled=False on {pod}"), || async {
        pod_scheduled(&pods.get(pod).await.ok()?)
    })
    .await;
    assert_eq!(
        condition,
        (
            "False".to_owned(),
            Some("Unschedulable".to_owned()),
            Some(message.to_owned())
        ),
        "condition of {pod}"
    );
    assert_eq!(node_of(client, pod).await, None, "{pod} stays Pending");
}

#[tokio::test]
async fn pods_are_bound_and_spread_and_a_pod_too_big_waits_for_a_bigger_node() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    let control_plane_taint = json!({"spec": {"taints": [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}});
    create_node(&client, "control-plane", "2", control_plane_taint).await;
    create_node(&client, "worker-1", "2", json!({})).await;
    create_node(&client, "worker-2", "2", json!({})).await;
    let (task, stop) = start_scheduler(&cp, "scheduler-a");

    // Four pods of 500m: the assumed-pod cache sees each decision before its binding
    // lands, so they spread two and two over the workers; none goes to the tainted node.
    for i in 0..4 {
        create_pod(&client, &format!("web-{i}"), "500m", json!({})).await;
    }
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..4 {
        *per_node
            .entry(wait_bound(&client, &format!("web-{i}")).await)
            .or_default() += 1;
    }
    assert_eq!(
        per_node,
        [("worker-1".to_owned(), 2), ("worker-2".to_owned(), 2)].into()
    );
    let bound = Api::<Pod>::namespaced(client.clone(), "default")
        .get("web-0")
        .await
        .unwrap();
    assert_eq!(
        pod_scheduled(&bound).map(|c| c.0).as_deref(),
        Some("True"),
        "the binding marks the pod scheduled: {:?}",
        bound.status
    );

    // 3 cpu fits no 2-cpu node: unresolvable, so preemption is not helpful anywhere.
    create_pod(&client, "big", "3", json!({})).await;
    wait_unschedulable(
        &client,
        "big",
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    )
    .await;
    // 1500m would fit an empty worker, but each has 1 cpu taken by pods of equal priority.
    create_pod(&client, "wide", "1500m", json!({})).await;
    wait_unschedulable(
        &client,
        "wide",
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.",
    )
    .await;

    // A bigger node: both waiting pods are moved back by the node event and bound to it.
    create_node(&client, "worker-big", "8", json!({})).await;
    assert_eq!(wait_bound(&client, "big").await, "worker-big");
    assert_eq!(wait_bound(&client, "wide").await, "worker-big");
    let big = Api::<Pod>::namespaced(client.clone(), "default")
        .get("big")
        .await
        .unwrap();
    assert_eq!(pod_scheduled(&big).map(|c| c.0).as_deref(), Some("True"));
    let events = Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("Scheduled")
                && e.message.as_deref() == Some("Successfully assigned default/big to worker-big")),
        "a Scheduled event"
    );

    stop.send(()).unwrap();
    task.await.unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn taints_tolerations_and_node_selectors_are_respected() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    let gpu = json!({"metadata": {"labels": {"accelerator": "gpu"}},
        "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}});
    create_node(&client, "gpu", "2", gpu).await;
    create_node(&client, "plain", "2", json!({})).await;
    let (task, stop) = start_scheduler(&cp, "scheduler-a");

    let on_gpu = json!({"spec": {"nodeSelector": {"accelerator": "gpu"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu",
            "effect": "NoSchedule"}]}});
    create_pod(&client, "trainer", "100m", on_gpu).await;
    for i in 0..3 {
        create_pod(&client, &format!("plain-{i}"), "100m", json!({})).await;
    }
    let required_gpu = json!({"spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "accelerator", "operator": "In", "values": ["gpu"]}]}]}}}}});
    create_pod(&client, "no-toleration", "100m", required_gpu).await;
    let elsewhere = json!({"spec": {"schedulerName": "other-scheduler"}});
    create_pod(&client, "not-mine", "100m", elsewhere).await;

    assert_eq!(wait_bound(&client, "trainer").await, "gpu");
    for i in 0..3 {
        assert_eq!(wait_bound(&client, &format!("plain-{i}")).await, "plain");
    }
    wait_unschedulable(
        &client,
        "no-toleration",
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
    )
    .await;
    // Another scheduler's pod: no binding, no event, no condition.
    assert_eq!(node_of(&client, "not-mine").await, None);
    assert!(failed_scheduling(&client, "not-mine").await.is_empty());

    stop.send(()).unwrap();
    task.await.unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn a_pod_created_after_the_leader_dies_is_still_bound() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    create_node(&client, "worker-1", "2", json!({})).await;
    let a = start_scheduler(&cp, "scheduler-a");
    let b = start_scheduler(&cp, "scheduler-b");

    create_pod(&client, "before", "100m", json!({})).await;
    wait_bound(&client, "before").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let holder = |lease: Lease| lease.spec?.holder_identity.filter(|h| !h.is_empty());
    let leader = eventually("a leader in the lease", || async {
        holder(leases.get("keel-scheduler").await.ok()?)
    })
    .await;
    let ((dead, _dead_stop), (survivor, survivor_stop), next) = match leader.as_str() {
        "scheduler-a" => (a, b, "scheduler-b"),
        "scheduler-b" => (b, a, "scheduler-a"),
        other => panic!("unexpected leader {other}"),
    };
    // A crash: the task is gone and the lease is not released; it must expire.
    dead.abort();
    let _ = dead.await;

    create_pod(&client, "after", "100m", json!({})).await;
    assert_eq!(wait_bound(&client, "after").await, "worker-1");
    assert_eq!(
        holder(leases.get("keel-scheduler").await.unwrap()).as_deref(),
        Some(next)
    );

    survivor_stop.send(()).unwrap();
    survivor.await.unwrap();
    cp.stop().await;
}

/// A web replica: labelled `app: web`, not sharing a node with another (required
/// anti-affinity on the hostname).
fn web_replica() -> serde_json::Value {
    json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}},
             "topologyKey": "kubernetes.io/hostname"}]}}}})
}

#[tokio::test]
async fn pod_anti_affinity_spreads_replicas_and_leaves_the_extra_one_pending() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    for name in ["worker-1", "worker-2", "worker-3"] {
        create_node(&client, name, "4", json!({})).await;
    }
    let (task, stop) = start_scheduler(&cp, "scheduler-a");

    // Created at once: each decision sees the replicas assumed before it, so no two share a
    // node even before their bindings land.
    for i in 0..3 {
        create_pod(&client, &format!("web-{i}"), "100m", web_replica()).await;
    }
    let mut nodes = std::collections::BTreeSet::new();
    for i in 0..3 {
        nodes.insert(wait_bound(&client, &format!("web-{i}")).await);
    }
    assert_eq!(nodes.len(), 3, "one replica per node: {nodes:?}");

    create_pod(&client, "web-3", "100m", web_replica()).await;
    wait_unschedulable(
        &client,
        "web-3",
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
    )
    .await;
    // A pod the replicas' anti-affinity selects cannot join them either.
    create_pod(
        &client,
        "web-like",
        "100m",
        json!({"metadata": {"labels": {"app": "web"}}}),
    )
    .await;
    wait_unschedulable(
        &client,
        "web-like",
        "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
    )
    .await;

    // A replica goes: its node takes one of the two waiting pods, the other still waits.
    let freed = node_of(&client, "web-0").await.unwrap();
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete("web-0", &kube::api::DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let placed = eventually("a waiting pod on the freed node", || async {
        for name in ["web-3", "web-like"] {
            if node_of(&client, name).await.as_deref() == Some(freed.as_str()) {
                return Some(name);
            }
        }
        None
    })
    .await;
    let other = if placed == "web-3" {
        "web-like"
    } else {
        "web-3"
    };
    assert_eq!(node_of(&client, other).await, None, "{other} still waits");

    stop.send(()).unwrap();
    task.await.unwrap();
    cp.stop().await;
}

/// A pod of `app: spread` kept within maxSkew 1 across zones (DoNotSchedule).
fn zone_spread() -> serde_json::Value {
    json!({"metadata": {"labels": {"app": "spread"}},
        "spec": {"topologySpreadConstraints": [{"maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "spread"}}}]}})
}

async fn zone_of(client: &kube::Client, node: &str) -> String {
    let node = Api::<Node>::all(client.clone()).get(node).await.unwrap();
    node.metadata.labels.unwrap()["topology.kubernetes.io/zone"].clone()
}

#[tokio::test]
async fn topology_spread_keeps_zones_within_max_skew() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    for (name, zone) in [("a-1", "zone-a"), ("a-2", "zone-a"), ("b-1", "zone-b")] {
        let labels = json!({"metadata": {"labels": {"topology.kubernetes.io/zone": zone}}});
        create_node(&client, name, "4", labels).await;
    }
    create_node(&client, "bare", "4", json!({})).await;
    let (task, stop) = start_scheduler(&cp, "scheduler-a");

    // Two pods: one per zone, whichever comes first; never on the node without a zone.
    let mut zones = Vec::new();
    for i in 0..2 {
        create_pod(&client, &format!("spread-{i}"), "100m", zone_spread()).await;
        let node = wait_bound(&client, &format!("spread-{i}")).await;
        zones.push(zone_of(&client, &node).await);
    }
    zones.sort();
    assert_eq!(zones, ["zone-a", "zone-b"]);

    // Zone b's only node cordoned: a third pod goes to zone a (skew 1), a fourth has nowhere.
    let nodes = Api::<Node>::all(client.clone());
    let cordon = |on: bool| json!({"spec": {"unschedulable": on}});
    let patch = kube::api::PatchParams::default();
    nodes
        .patch("b-1", &patch, &kube::api::Patch::Merge(cordon(true)))
        .await
        .unwrap();
    create_pod(&client, "spread-2", "100m", zone_spread()).await;
    let node = wait_bound(&client, "spread-2").await;
    assert_eq!(zone_of(&client, &node).await, "zone-a");
    create_pod(&client, "spread-3", "100m", zone_spread()).await;
    wait_unschedulable(
        &client,
        "spread-3",
        "0/4 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label), 1 node(s) were unschedulable, 2 node(s) didn't match pod topology spread constraints. preemption: 0/4 nodes are available: 2 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.",
    )
    .await;

    // Uncordoned, zone b takes it.
    nodes
        .patch("b-1", &patch, &kube::api::Patch::Merge(cordon(false)))
        .await
        .unwrap();
    assert_eq!(wait_bound(&client, "spread-3").await, "b-1");

    stop.send(()).unwrap();
    task.await.unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn a_second_profile_from_a_config_file_serves_its_scheduler_name() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    create_node(&client, "worker-1", "4", json!({})).await;
    create_node(&client, "worker-2", "4", json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scheduler.yaml");
    std::fs::write(
        &path,
        "apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  plugins:
    score:
      disabled: [{name: NodeResourcesBalancedAllocation}]
      enabled: [{name: NodeResourcesFit, weight: 10}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
",
    )
    .unwrap();
    let mut config = config("scheduler-a");
    config.profiles = keel_scheduler::config_file::load(&path).unwrap();
    let (task, stop) = start_scheduler_with(&cp, config);

    // The bin-packing profile puts its pods together; the default profile spreads.
    let packing = json!({"spec": {"schedulerName": "bin-packing"}});
    create_pod(&client, "packed-0", "1", packing.clone()).await;
    let first = wait_bound(&client, "packed-0").await;
    create_pod(&client, "packed-1", "1", packing.clone()).await;
    assert_eq!(wait_bound(&client, "packed-1").await, first);
    create_pod(&client, "spread", "1", json!({})).await;
    assert_ne!(wait_bound(&client, "spread").await, first);

    // Its events are reported by its scheduler name.
    let scheduled = eventually("the Scheduled event of packed-1", || async {
        Api::<Event>::namespaced(client.clone(), "default")
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.involved_object.name.as_deref() == Some("packed-1")
                    && e.reason.as_deref() == Some("Scheduled")
            })
    })
    .await;
    assert_eq!(
        scheduled.reporting_component.as_deref(),
        Some("bin-packing")
    );

    // A name no profile serves is left alone.
    let unknown = json!({"spec": {"schedulerName": "no-such-profile"}});
    create_pod(&client, "orphan", "100m", unknown).await;
    create_pod(&client, "marker", "100m", packing).await;
    wait_bound(&client, "marker").await;
    assert_eq!(node_of(&client, "orphan").await, None);
    assert!(failed_scheduling(&client, "orphan").await.is_empty());

    stop.send(()).unwrap();
    task.await.unwrap();
    cp.stop().await;
}
