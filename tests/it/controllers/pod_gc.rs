//! The pod garbage collector on an in-process control plane with hollow agents, its timers
//! shortened (a 200 ms period, a 1 s quarantine): the pods of a node that was deleted —
//! a DaemonSet's and a bare one — are marked Failed with the DisruptionTarget condition
//! (DeletionByPodGC) and force-deleted, seen from a watch of every pod event; terminated
//! pods past the threshold go oldest first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use keel_controllers::ControllersConfig;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;

use super::daemonset::{daemon_set, ready_by_node, Cluster, NAMESPACE};
use crate::poll::eventually;

fn fast_gc(config: ControllersConfig) -> ControllersConfig {
    ControllersConfig {
        pod_gc_period: Duration::from_millis(200),
        pod_gc_quarantine: Duration::from_secs(1),
        terminated_pod_gc_threshold: 2,
        ..config
    }
}

/// What the watch saw of each pod: its last phase and DisruptionTarget reason before it
/// was deleted, and whether it was.
#[derive(Clone, Debug, Default)]
struct Seen {
    phase: Option<String>,
    disruption: Option<String>,
    deleted: bool,
}

fn watch_pods(
    pods: Api<Pod>,
) -> (
    Arc<Mutex<HashMap<String, Seen>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen: Arc<Mutex<HashMap<String, Seen>>> = Arc::default();
    let record = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(pods, watcher::Config::default()));
        while let Some(event) = events.next().await {
            let (pod, deleted) = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => (pod, false),
                Ok(watcher::Event::Delete(pod)) => (pod, true),
                _ => continue,
            };
            let status = pod.status.clone().unwrap_or_default();
            let mut seen = record.lock().unwrap();
            let entry = seen.entry(pod.name_any()).or_default();
            entry.phase = status.phase.clone();
            entry.disruption = status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
                .and_then(|c| c.reason.clone());
            entry.deleted |= deleted;
        }
    });
    (seen, task)
}

#[tokio::test]
async fn the_pods_of_a_deleted_node_are_collected() {
    let mut c = Cluster::start(fast_gc).await;
    c.add_node("node-a", &[], "").await;
    c.add_node("node-b", &[], "").await;
    let pods = c.pods();
    let (seen, watch) = watch_pods(pods.clone());
    let daemonsets: Api<DaemonSet> = Api::namespaced(c.h.client.clone(), NAMESPACE);
    daemonsets
        .create(
            &PostParams::default(),
            &daemon_set("gc", "busybox:1", json!({})),
        )
        .await
        .unwrap();
    let bare: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bare"},
        "spec": {"nodeName": "node-b", "containers": [{"name": "c", "image": "busybox:1"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &bare).await.unwrap();
    let placed = eventually("a daemon pod on each node", || async {
        let ready = ready_by_node(&pods, "gc").await;
        (ready.len() == 2).then_some(ready)
    })
    .await;
    let orphan = placed["node-b"].name_any();

    // The node's agent stops and the Node is deleted: nobody will ever finish its pods.
    c.stop_node("node-b").await;
    let nodes: Api<Node> = Api::all(c.h.client.clone());
    nodes
        .delete("node-b", &DeleteParams::default())
        .await
        .unwrap();
    for name in [orphan.as_str(), "bare"] {
        let gone = eventually(&format!("{name} collected"), || async {
            let seen = seen.lock().unwrap().get(name).cloned()?;
            seen.deleted.then_some(seen)
        })
        .await;
        assert_eq!(gone.phase.as_deref(), Some("Failed"), "{name}: {gone:?}");
        assert_eq!(
            gone.disruption.as_deref(),
            Some("DeletionByPodGC"),
            "{name}: {gone:?}"
        );
    }
    // The DaemonSet now wants one pod, and keeps the one on node-a.
    eventually("the daemon set down to node-a", || async {
        let s = daemonsets.get("gc").await.ok()?.status?;
        (s.desired_number_scheduled == 1 && s.number_available == Some(1)).then_some(())
    })
    .await;
    assert!(pods
        .get_opt(&placed["node-a"].name_any())
        .await
        .unwrap()
        .is_some());
    watch.abort();
    c.stop().await;
}

#[tokio::test]
async fn terminated_pods_past_the_threshold_go_oldest_first() {
    let c = Cluster::start(fast_gc).await;
    let pods = c.pods();
    // Never scheduled (no node matches), then finished: only the collector removes them.
    for name in ["done-1", "done-2", "done-3"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeSelector": {"none": "such"},
                "containers": [{"name": "c", "image": "busybox:1"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    for name in ["done-1", "done-2", "done-3"] {
        let finished = json!({"status": {"phase": "Succeeded"}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(finished))
            .await
            .unwrap();
    }
    let left = eventually("the oldest terminated pod collected", || async {
        let mut names: Vec<String> = pods
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        names.sort();
        (names.len() == 2).then_some(names)
    })
    .await;
    assert_eq!(left, ["done-2", "done-3"]);
    c.stop().await;
}
