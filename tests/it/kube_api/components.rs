//! The whole control plane of `keel dev`: three members, each with its API server, scheduler
//! and controller manager (one of each leading). A Deployment becomes a ReplicaSet and pods,
//! and the pods are bound to the registered nodes, all through the API.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use super::ControlPlane;

fn node(name: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "status": {
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_becomes_scheduled_pods() {
    let mut cp = ControlPlane::start(3).await;
    cp.cluster.start_components();
    let nodes: Api<Node> = Api::all(cp.client.clone());
    for name in ["worker-1", "worker-2"] {
        nodes
            .create(&PostParams::default(), &node(name))
            .await
            .unwrap();
    }
    let deployments: Api<Deployment> = Api::default_namespaced(cp.client.clone());
    let web: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                    "resources": {"requests": {"cpu": "500m"}}}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &web)
        .await
        .unwrap();

    let pods: Api<Pod> = Api::default_namespaced(cp.client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let bound = loop {
        let listed = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        let bound: Vec<String> = listed
            .items
            .iter()
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        if listed.items.len() == 3 && bound.len() == 3 {
            break bound;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "3 bound pods expected, have {} pods, {} bound",
            listed.items.len(),
            bound.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(bound.iter().all(|n| n.starts_with("worker-")), "{bound:?}");
    assert!(
        bound.iter().any(|n| n == "worker-1") && bound.iter().any(|n| n == "worker-2"),
        "spread: {bound:?}"
    );

    let sets: Api<ReplicaSet> = Api::default_namespaced(cp.client.clone());
    let sets = sets
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(sets.items.len(), 1);
    let annotations = sets.items[0]
        .metadata
        .annotations
        .clone()
        .unwrap_or_default();
    assert_eq!(
        annotations
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );

    // One leader each, among the members' components.
    let leases: Api<Lease> = Api::namespaced(cp.client.clone(), "kube-system");
    for name in ["keel-scheduler", "keel-controller-manager"] {
        let holder = leases
            .get(name)
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .unwrap();
        assert!(holder.starts_with('n'), "{name} held by {holder}");
    }
    cp.stop().await;
}
