//! Taint-based eviction (kube's taint eviction controller, once the "NoExecute taint
//! manager"): a pod on a node with a NoExecute taint it does not tolerate is deleted at once;
//! one it tolerates for `tolerationSeconds` is deleted that long after the controller first
//! saw it under the taint, unless the taint goes first; one it tolerates without a limit
//! stays.
//!
//! The controller listens to pod and node changes. A pod change looks at that pod; a node
//! change looks at the node's pods only when its NoExecute taints changed (heartbeats change
//! the node every few seconds and must not cost a scan of every pod). Pending deletions wait in
//! a map of deadlines; the loop sleeps until the nearest one.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;
use tokio::time::{Duration, Instant};

use super::taints::tolerates;
use super::Context;
use crate::error::is_not_found;
use crate::events::EventType;

/// What the taints say of one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No NoExecute taint, or all tolerated without a time limit.
    Stay,
    /// Some NoExecute taint is not tolerated.
    EvictNow,
    /// Every NoExecute taint is tolerated, the shortest for this long.
    EvictAfter(Duration),
}

/// kube's `getMinTolerationTime` over the tolerations that match `taints` (NoExecute ones).
pub fn verdict(pod: &Pod, taints: &[Taint]) -> Verdict {
    let no_execute: Vec<&Taint> = taints.iter().filter(|t| t.effect == "NoExecute").collect();
    if no_execute.is_empty() {
        return Verdict::Stay;
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let mut shortest: Option<i64> = None;
    for taint in no_execute {
        let matching: Vec<_> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Verdict::EvictNow;
        }
        for toleration in matching {
            if let Some(seconds) = toleration.toleration_seconds {
                let seconds = seconds.max(0);
                shortest = Some(shortest.map_or(seconds, |s| s.min(seconds)));
            }
        }
    }
    match shortest {
        None => Verdict::Stay,
        Some(0) => Verdict::EvictNow,
        Some(seconds) => Verdict::EvictAfter(Duration::from_secs(seconds as u64)),
    }
}

/// A deletion waiting for its time.
#[derive(Debug)]
struct Scheduled {
    uid: String,
    /// When the pod was first seen under its taints.
    since: Instant,
    deadline: Instant,
}

/// The controller's state: deletions waiting, and each node's last NoExecute taints.
struct TaintEviction {
    ctx: Arc<Context>,
    scheduled: HashMap<String, Scheduled>,
    node_taints: HashMap<String, Vec<Taint>>,
}

/// Runs taint-based eviction, triggered by `nodes` and `pods` changes.
pub async fn run(
    ctx: Arc<Context>,
    nodes: impl Stream<Item = Result<Node, watcher::Error>> + Send + 'static,
    pods: impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
) {
    let mut manager = TaintEviction {
        ctx: Arc::clone(&ctx),
        scheduled: HashMap::new(),
        node_taints: HashMap::new(),
    };
    // Pods already under taints when this controller starts.
    for node in ctx.nodes.state() {
        manager.node_changed(&node.name_any()).await;
    }
    let mut nodes = std::pin::pin!(nodes);
    let mut pods = std::pin::pin!(pods);
    loop {
        let next = manager.scheduled.values().map(|s| s.deadline).min();
        let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            node = nodes.next() => match node {
                Some(Ok(node)) => manager.node_changed(&node.name_any()).await,
                Some(Err(_)) => {}
                None => return,
            },
            pod = pods.next() => match pod {
                Some(Ok(pod)) => manager.pod_changed(&pod).await,
                Some(Err(_)) => {}
                None => return,
            },
            _ = tokio::time::sleep_until(wake) => manager.deadlines_passed().await,
        }
    }
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl TaintEviction {
    /// The NoExecute taints of `node` now (none for a node that is gone).
    fn no_execute_taints(&self, node: &str) -> Vec<Taint> {
        self.ctx
            .nodes
            .get(&ObjectRef::new(node))
            .and_then(|n| n.spec.as_ref().and_then(|s| s.taints.clone()))
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.effect == "NoExecute")
            .collect()
    }

    async fn node_changed(&mut self, node: &str) {
        let taints = self.no_execute_taints(node);
        let before = self.node_taints.get(node).cloned().unwrap_or_default();
        if taints == before {
            return;
        }
        if taints.is_empty() {
            self.node_taints.remove(node);
        } else {
            self.node_taints.insert(node.to_owned(), taints);
        }
        let on_node: Vec<Arc<Pod>> = self
            .ctx
            .pods
            .state()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .collect();
        for pod in on_node {
            self.process(&pod).await;
        }
    }

    async fn pod_changed(&mut self, changed: &Pod) {
        let namespace = changed.namespace().unwrap_or_default();
        let name = changed.name_any();
        match self.ctx.pods.get(&ObjectRef::new(&name).within(&namespace)) {
            Some(pod) => self.process(&pod).await,
            None => {
                self.scheduled.remove(&key(&namespace, &name));
            }
        }
    }

    async fn deadlines_passed(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .scheduled
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let (namespace, name) = key.split_once('/').unwrap_or(("", &key));
            match self.ctx.pods.get(&ObjectRef::new(name).within(namespace)) {
                Some(pod) => self.process(&pod).await,
                None => {
                    self.scheduled.remove(&key);
                }
            }
        }
    }

    /// Decides one pod's fate from its node's taints now.
    async fn process(&mut self, pod: &Pod) {
        let namespace = pod.namespace().unwrap_or_default();
        let key = key(&namespace, &pod.name_any());
        let uid = pod.uid().unwrap_or_default();
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let (Some(node), None) = (node, pod.metadata.deletion_timestamp.as_ref()) else {
            self.scheduled.remove(&key);
            return;
        };
        let taints = self.no_execute_taints(&node);
        let now = Instant::now();
        let since = match self.scheduled.get(&key) {
            Some(s) if s.uid == uid => s.since,
            _ => now,
        };
        match verdict(pod, &taints) {
            Verdict::Stay => {
                if self.scheduled.remove(&key).is_some() {
                    self.ctx.eviction_recorder.record(
                        pod,
                        EventType::Normal,
                        "TaintManagerEviction",
                        format!("Cancelling deletion of Pod {key}"),
                    );
                }
            }
            Verdict::EvictAfter(after) if since + after > now => {
                self.scheduled.insert(
                    key,
                    Scheduled {
                        uid,
                        since,
                        deadline: since + after,
                    },
                );
            }
            Verdict::EvictNow | Verdict::EvictAfter(_) => {
                if self.evict(pod, &namespace).await {
                    self.scheduled.remove(&key);
                } else {
                    // Try again in a second; the pod's next change may settle it sooner.
                    self.scheduled.insert(
                        key,
                        Scheduled {
                            uid,
                            since,
                            deadline: now + Duration::from_secs(1),
                        },
                    );
                }
            }
        }
    }

    /// Deletes the pod as kube's taint manager does: an event, the `DisruptionTarget`
    /// condition, then a delete bound to its uid. False when the API failed.
    async fn evict(&self, pod: &Pod, namespace: &str) -> bool {
        let name = pod.name_any();
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), namespace);
        self.ctx.eviction_recorder.record(
            pod,
            EventType::Normal,
            "TaintManagerEviction",
            format!("Marking for deletion Pod {namespace}/{name}"),
        );
        let condition = json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }]}});
        if let Err(e) = pods
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition))
            .await
        {
            if is_not_found(&e) {
                return true;
            }
            tracing::debug!(pod = %name, error = %e, "DisruptionTarget condition not written");
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match pods.delete(&name, &params).await {
            Ok(_) => true,
            Err(e) if is_not_found(&e) || crate::error::is_conflict(&e) => true,
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "taint eviction failed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"spec": {"containers": [], "tolerations": tolerations}}))
            .unwrap()
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: None,
        }
    }

    #[test]
    fn the_shortest_matching_toleration_decides() {
        let unreachable = [taint("node.kubernetes.io/unreachable", "NoExecute")];
        assert_eq!(verdict(&pod(json!([])), &unreachable), Verdict::EvictNow);
        assert_eq!(verdict(&pod(json!([])), &[]), Verdict::Stay);
        // NoSchedule taints never evict.
        let no_schedule = [taint("node.kubernetes.io/unreachable", "NoSchedule")];
        assert_eq!(verdict(&pod(json!([])), &no_schedule), Verdict::Stay);
        let defaults = pod(json!([
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 30},
        ]));
        assert_eq!(
            verdict(&defaults, &unreachable),
            Verdict::EvictAfter(Duration::from_secs(30))
        );
        let forever = pod(json!([{"operator": "Exists"}]));
        assert_eq!(verdict(&forever, &unreachable), Verdict::Stay);
        let negative = pod(json!([{"operator": "Exists", "tolerationSeconds": -5}]));
        assert_eq!(verdict(&negative, &unreachable), Verdict::EvictNow);
        // One untolerated taint among tolerated ones evicts at once.
        let two = [
            taint("node.kubernetes.io/unreachable", "NoExecute"),
            taint("dedicated", "NoExecute"),
        ];
        assert_eq!(verdict(&defaults, &two), Verdict::EvictNow);
    }
}
