//! The labels the agent puts on sandboxes and containers, kubelet's own keys, so that an
//! agent restarted while pods run finds which pod and container each belongs to.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt as _;

/// The pod's uid.
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// The pod's name.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// The pod's namespace.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// The container's name.
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// The container's attempt.
pub const CONTAINER_ATTEMPT: &str = "io.kubernetes.container.attempt";

/// A pod sandbox's labels.
pub fn sandbox(pod: &Pod) -> BTreeMap<String, String> {
    BTreeMap::from([
        (POD_UID.to_owned(), pod.uid().unwrap_or_default()),
        (POD_NAME.to_owned(), pod.name_any()),
        (
            POD_NAMESPACE.to_owned(),
            pod.namespace().unwrap_or_default(),
        ),
    ])
}

/// A container's labels.
pub fn container(pod: &Pod, name: &str, attempt: u32) -> BTreeMap<String, String> {
    let mut labels = sandbox(pod);
    labels.insert(CONTAINER_NAME.to_owned(), name.to_owned());
    labels.insert(CONTAINER_ATTEMPT.to_owned(), attempt.to_string());
    labels
}
