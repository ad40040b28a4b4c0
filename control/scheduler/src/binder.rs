//! DefaultBinder: assigns a pod to its node by creating the pod's `binding` subresource; the
//! API server sets `spec.nodeName` (and the `PodScheduled=True` condition).

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::error::{Error, Result};
use crate::framework::PodInfo;

/// The Binding of `pod` to `node`; the uid makes it fail if the pod was replaced.
pub fn binding(pod: &PodInfo, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()).filter(|u| !u.is_empty()),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.to_owned()),
            ..ObjectReference::default()
        },
    }
}

/// POSTs `pods/NAME/binding`.
pub async fn bind(client: &kube::Client, pod: &PodInfo, node: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    pods.create_subresource::<Binding, serde_json::Value>(
        "binding",
        &pod.name,
        &PostParams::default(),
        &binding(pod, node),
    )
    .await
    .map(drop)
    .map_err(|e| Error::api(format!("binding {} to {node}", pod.key()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    #[test]
    fn a_binding_names_the_pod_its_uid_and_the_node() {
        let b = binding(&pod("web").info(), "node-2");
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": "web", "namespace": "default", "uid": "uid-web"},
                "target": {"kind": "Node", "name": "node-2"}
            })
        );
    }
}
