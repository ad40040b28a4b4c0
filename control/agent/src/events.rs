//! Events about pods, as kubelet records them (`source.component: kubelet`, the node as
//! `source.host`, a container as `spec.containers{name}`). Sent in the background: an event
//! that cannot be written is logged and dropped, never retried at the pod worker's cost.

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::ResourceExt as _;
use serde_json::json;

/// Records events of one node.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
}

impl Recorder {
    /// A recorder for `node`.
    pub fn new(client: kube::Client, node: &str) -> Recorder {
        Recorder {
            client,
            node: node.to_owned(),
        }
    }

    /// Records a `Normal` (or `Warning` when `warning`) event `reason` on `pod`, about its
    /// container `container` when given.
    pub fn record(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        let namespace = pod.namespace().unwrap_or_else(|| "default".to_owned());
        let now = Timestamp::now();
        let name = format!(
            "{}.{:x}",
            pod.name_any(),
            now.as_nanosecond() as u64 ^ u64::from(std::process::id())
        );
        let field_path = container.map(|c| {
            let init = pod
                .spec
                .as_ref()
                .and_then(|s| s.init_containers.as_ref())
                .is_some_and(|init| init.iter().any(|i| i.name == c));
            if init {
                format!("spec.initContainers{{{c}}}")
            } else {
                format!("spec.containers{{{c}}}")
            }
        });
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1", "kind": "Pod", "name": pod.name_any(),
                "namespace": namespace, "uid": pod.uid(), "fieldPath": field_path,
            },
            "reason": reason,
            "message": message,
            "type": if warning { "Warning" } else { "Normal" },
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
            "firstTimestamp": Time(now),
            "lastTimestamp": Time(now),
            "count": 1,
        }))
        .expect("an Event's JSON");
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        tokio::spawn(async move {
            if let Err(e) = events.create(&PostParams::default(), &event).await {
                tracing::debug!("recording an event: {e}");
            }
        });
    }
}
