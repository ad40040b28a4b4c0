//! The bench's stand-in for the scheduler and the kubelets of its nodes: static Node objects,
//! and a watch of the namespace's pods that binds each new pod to a node (round robin), marks
//! it Running and Ready, and completes the deletion of each terminating pod at once. It runs
//! on the server's runtime, so none of its work lands on the controller manager's thread.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;

/// Pods bound and started, or deletions completed, at once.
const CONCURRENCY: usize = 64;

/// Creates `count` Ready nodes `bench-node-N`; their names.
pub async fn create_nodes(client: &kube::Client, count: usize) -> anyhow::Result<Vec<String>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut names = Vec::new();
    for i in 0..count {
        let name = format!("bench-node-{i}");
        let node: Node = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        nodes.create(&PostParams::default(), &node).await?;
        let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let status = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "allocatable": {"cpu": "1000", "memory": "1000Gi", "pods": "1000"},
            "capacity": {"cpu": "1000", "memory": "1000Gi", "pods": "1000"},
        }});
        nodes
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await?;
        names.push(name);
    }
    Ok(names)
}

/// Plays scheduler and kubelet for the pods of `namespace` until aborted.
pub fn start(
    client: kube::Client,
    namespace: &str,
    nodes: Vec<String>,
) -> tokio::task::JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    tokio::spawn(async move {
        let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let (mut started, mut finishing) = (HashSet::new(), HashSet::new());
        let mut next_node = 0usize;
        let mut events = std::pin::pin!(watcher(pods.clone(), watcher::Config::default()));
        while let Some(event) = events.next().await {
            let pod = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
                _ => continue,
            };
            let name = pod.name_any();
            let pods = pods.clone();
            let permit = Arc::clone(&permits).acquire_owned().await.expect("open");
            if pod.metadata.deletion_timestamp.is_some() {
                if finishing.insert(name.clone()) {
                    tokio::spawn(async move {
                        // Gone already is fine: the deletion is what was asked.
                        let _ = pods
                            .delete(&name, &DeleteParams::default().grace_period(0))
                            .await;
                        drop(permit);
                    });
                }
            } else if started.insert(name.clone()) {
                let node = nodes[next_node % nodes.len()].clone();
                next_node += 1;
                let uid = pod.uid();
                tokio::spawn(async move {
                    if let Err(e) = bind_and_start(&pods, &name, uid, &node).await {
                        eprintln!("pod {name}: {e}");
                    }
                    drop(permit);
                });
            }
        }
    })
}

async fn bind_and_start(
    pods: &Api<Pod>,
    name: &str,
    uid: Option<String>,
    node: &str,
) -> anyhow::Result<()> {
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            uid,
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.to_owned()),
            ..ObjectReference::default()
        },
    };
    pods.create_subresource::<Binding, serde_json::Value>(
        "binding",
        name,
        &PostParams::default(),
        &binding,
    )
    .await?;
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let status = json!({"status": {
        "phase": "Running",
        "startTime": now,
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
        ],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}
