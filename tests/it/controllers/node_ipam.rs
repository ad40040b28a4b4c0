//! Node IPAM against an in-process control plane: every node gets its own block of the
//! cluster CIDR, blocks already on nodes are respected when the controller starts, a node
//! finds none when the range is used up (a `CIDRNotAvailable` event) and gets the block of a
//! node deleted later.

use k8s_openapi::api::core::v1::Node;
use keel_controllers::ControllersConfig;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use super::{events_with_reason, wait_for, Harness};
use crate::kube_api::ControlPlane;

async fn create_node(nodes: &Api<Node>, name: &str, spec: serde_json::Value) {
    let node: Node =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
}

async fn pod_cidrs_of(nodes: &Api<Node>, name: &str) -> Option<(String, Vec<String>)> {
    let spec = nodes.get(name).await.unwrap().spec?;
    Some((spec.pod_cidr?, spec.pod_cidrs?))
}

#[tokio::test]
async fn each_node_gets_its_own_block_and_a_deleted_nodes_block_is_reused() {
    let cp = ControlPlane::start(1).await;
    let nodes: Api<Node> = Api::all(cp.client.clone());
    // Before the controller starts, a node already holds the first of the two /24 blocks.
    create_node(
        &nodes,
        "old",
        json!({"podCIDR": "169.254.0.0/24", "podCIDRs": ["169.254.0.0/24"]}),
    )
    .await;
    let h = Harness::start_on(cp, |config| ControllersConfig {
        cluster_cidr: Some("169.254.0.0/23".into()),
        node_cidr_mask_size: 24,
        ..config
    })
    .await;

    create_node(&nodes, "a", json!({})).await;
    let (cidr, cidrs) = wait_for("node a's block", 30, || pod_cidrs_of(&nodes, "a")).await;
    assert_eq!(cidr, "169.254.1.0/24");
    assert_eq!(cidrs, ["169.254.1.0/24"]);

    create_node(&nodes, "b", json!({})).await;
    wait_for("CIDRNotAvailable for node b", 30, || async {
        let events = events_with_reason(&h.client, "default", "CIDRNotAvailable").await;
        events
            .iter()
            .any(|e| {
                e.involved_object.name.as_deref() == Some("b")
                    && e.message.as_deref() == Some("Node b status is now: CIDRNotAvailable")
            })
            .then_some(())
    })
    .await;
    assert_eq!(pod_cidrs_of(&nodes, "b").await, None);

    nodes.delete("old", &DeleteParams::default()).await.unwrap();
    let (cidr, _) = wait_for("node b's block", 30, || pod_cidrs_of(&nodes, "b")).await;
    assert_eq!(cidr, "169.254.0.0/24");
    assert_eq!(pod_cidrs_of(&nodes, "a").await.unwrap().0, "169.254.1.0/24");
    h.stop().await;
}
