//! The pod garbage collector (kube-controller-manager's `podgc`): every period, from the
//! caches, it force-deletes the pods nobody else will:
//!
//! ```text
//! terminated (phase not Pending/Running/Unknown), more than the threshold
//!     ──▶ the excess, evicted ones first, then oldest first   (--terminated-pod-gc-threshold)
//! terminating on a node that is not Ready and tainted node.kubernetes.io/out-of-service
//!     ──▶ deleted (the node is known to be down: no kubelet will finish them)
//! bound to a node that does not exist, still missing after a quarantine and a direct read
//!     ──▶ DisruptionTarget (DeletionByPodGC) and Failed, then deleted
//! terminating and never scheduled
//!     ──▶ deleted
//! ```
//!
//! Each pod not yet finished is first marked `Failed` through `pods/status` (no kubelet
//! will ever report its end), then deleted with a zero grace period. The quarantine gives a
//! node that was just created (and is not in the cache yet) time to show up, so its pods
//! are not taken for orphans.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt as _;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::error::{is_conflict, is_not_found};
use crate::node_lifecycle::taints::is_ready;
use crate::pods;

/// The taint that says a node is down for good and its pods may go.
pub const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

/// How the collector runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// How often it looks (kube's 20 s `gcCheckPeriod`).
    pub period: Duration,
    /// How long a node must be missing before its pods are orphans (kube's 40 s).
    pub quarantine: Duration,
    /// Terminated pods kept before the oldest are deleted; 0 keeps them all
    /// (`--terminated-pod-gc-threshold`, 12500).
    pub terminated_threshold: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            period: Duration::from_secs(20),
            quarantine: Duration::from_secs(40),
            terminated_threshold: 12_500,
        }
    }
}

/// What the collector reads and writes.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every pod.
    pub pods: Store<Pod>,
    /// Every node.
    pub nodes: Store<Node>,
    /// Its timings.
    pub config: Config,
}

/// Runs the collector until the task is dropped.
pub async fn run(ctx: Arc<Context>) {
    let mut collector = Collector {
        ctx,
        missing_since: HashMap::new(),
    };
    let mut ticks = tokio::time::interval(collector.ctx.config.period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        collector.pass().await;
    }
}

/// The collector's state between passes.
struct Collector {
    ctx: Arc<Context>,
    /// Nodes pods are bound to that the cache does not have, and since when.
    missing_since: HashMap<String, Instant>,
}

/// Whether the pod has finished, as kube's `isPodTerminated` has it (no phase counts).
pub fn is_terminated(pod: &Pod) -> bool {
    !matches!(pods::phase(pod), "Pending" | "Running" | "Unknown")
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn is_evicted(pod: &Pod) -> bool {
    pods::phase(pod) == "Failed"
        && pod.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

/// The terminated pods past `threshold` to delete: evicted ones first, then the oldest, by
/// name on a tie (kube's `byEvictionAndCreationTimestamp`).
pub fn terminated_excess(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut terminated: Vec<Arc<Pod>> = pods.iter().filter(|p| is_terminated(p)).cloned().collect();
    let excess = terminated.len().saturating_sub(threshold);
    if excess == 0 {
        return Vec::new();
    }
    terminated.sort_by(|a, b| {
        let key = |p: &Pod| {
            (
                !is_evicted(p),
                p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                p.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    terminated.truncate(excess);
    terminated
}

/// Whether a terminating pod's node is down for good: not Ready and out of service.
pub fn on_out_of_service_node(pod: &Pod, node: &Node) -> bool {
    let out_of_service = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE_TAINT));
    pod.metadata.deletion_timestamp.is_some() && !is_ready(node) && out_of_service
}

impl Collector {
    async fn pass(&mut self) {
        let pods = self.ctx.pods.state();
        let nodes: HashSet<String> = self
            .ctx
            .nodes
            .state()
            .iter()
            .map(|n| n.name_any())
            .collect();

        for pod in terminated_excess(&pods, self.ctx.config.terminated_threshold) {
            self.delete(&pod, None).await;
        }

        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
        {
            let Some(node) = self.ctx.nodes.get(&ObjectRef::new(node_name(pod))) else {
                continue;
            };
            if on_out_of_service_node(pod, &node) {
                self.delete(pod, None).await;
            }
        }

        let gone = self.deleted_nodes(&pods, &nodes).await;
        let orphaned = json!({
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
        });
        for pod in pods.iter().filter(|p| gone.contains(node_name(p))) {
            tracing::info!(pod = %pod.name_any(), node = node_name(pod), "orphaned pod; deleting");
            self.delete(pod, Some(&orphaned)).await;
        }

        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_empty())
        {
            self.delete(pod, None).await;
        }
    }

    /// The nodes pods are bound to that have been missing from the cache for the
    /// quarantine and that the API confirms are gone.
    async fn deleted_nodes(
        &mut self,
        pods: &[Arc<Pod>],
        nodes: &HashSet<String>,
    ) -> HashSet<String> {
        let now = Instant::now();
        let wanted: HashSet<&str> = pods
            .iter()
            .map(|p| node_name(p))
            .filter(|n| !n.is_empty() && !nodes.contains(*n))
            .collect();
        self.missing_since
            .retain(|n, _| wanted.contains(n.as_str()));
        for node in &wanted {
            self.missing_since.entry((*node).to_owned()).or_insert(now);
        }
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        let mut gone = HashSet::new();
        let quarantine = self.ctx.config.quarantine;
        for (node, since) in &self.missing_since {
            if now.saturating_duration_since(*since) < quarantine {
                continue;
            }
            match api.get_opt(node).await {
                Ok(None) => {
                    gone.insert(node.clone());
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::debug!(%node, error = %e, "node lookup failed"),
            }
        }
        gone
    }

    /// Marks the pod Failed (with `condition`, if any) unless it has finished, then deletes
    /// it with no grace period (kube's `markFailedAndDeletePodWithCondition`).
    async fn delete(&self, pod: &Pod, condition: Option<&Value>) {
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &pod.namespace().unwrap_or_default(),
        );
        if !matches!(pods::phase(pod), "Succeeded" | "Failed") {
            let mut status = json!({"phase": "Failed"});
            if let Some(condition) = condition {
                let mut condition = condition.clone();
                condition["lastTransitionTime"] =
                    json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                status["conditions"] = json!([condition]);
            }
            let patch = json!({"metadata": {"uid": pod.uid()}, "status": status});
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) || is_conflict(&e) => return,
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "pod not marked Failed");
                    return;
                }
            }
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => tracing::info!(pod = %name, "PodGC force-deleted pod"),
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => tracing::warn!(pod = %name, error = %e, "PodGC delete failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::pod;

    #[test]
    fn terminated_pods_past_the_threshold_go_evicted_then_oldest_first() {
        let now = Timestamp::now();
        let mut evicted = pod("evicted", now, 10, "n1", "Failed", None);
        evicted.status.as_mut().unwrap().reason = Some("Evicted".into());
        let pods: Vec<Arc<Pod>> = vec![
            Arc::new(pod("running", now, 1000, "n1", "Running", Some(5))),
            Arc::new(pod("new", now, 100, "n1", "Succeeded", None)),
            Arc::new(pod("old", now, 900, "n1", "Failed", None)),
            Arc::new(pod("middle", now, 500, "n1", "Succeeded", None)),
            Arc::new(evicted),
        ];
        let names = |threshold| -> Vec<String> {
            terminated_excess(&pods, threshold)
                .iter()
                .map(|p| p.name_any())
                .collect()
        };
        assert_eq!(names(2), ["evicted", "old"]);
        assert_eq!(names(1), ["evicted", "old", "middle"]);
        assert!(names(4).is_empty());
        assert!(names(0).is_empty(), "0 disables the collection");
        assert!(!is_terminated(&pods[0]));
    }

    #[test]
    fn only_terminating_pods_of_down_and_out_of_service_nodes() {
        let now = Timestamp::now();
        let node = |ready: &str, taint: bool| -> Node {
            let taints = if taint {
                json!([{"key": OUT_OF_SERVICE_TAINT, "value": "nodeshutdown", "effect": "NoExecute"}])
            } else {
                json!([])
            };
            serde_json::from_value(
                json!({"metadata": {"name": "n1"}, "spec": {"taints": taints},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}}),
            )
            .unwrap()
        };
        let mut terminating = pod("p", now, 10, "n1", "Running", None);
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        let running = pod("q", now, 10, "n1", "Running", None);
        assert!(on_out_of_service_node(&terminating, &node("False", true)));
        assert!(on_out_of_service_node(&terminating, &node("Unknown", true)));
        assert!(!on_out_of_service_node(&terminating, &node("True", true)));
        assert!(!on_out_of_service_node(&terminating, &node("False", false)));
        assert!(!on_out_of_service_node(&running, &node("False", true)));
    }
}
