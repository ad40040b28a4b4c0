//! A DaemonSet's status, counted per node as kube's `updateDaemonSetStatus` counts it: of
//! the nodes that should run the daemon, how many have a pod (the oldest one speaks for the
//! node), how many of those are ready, available (ready for `minReadySeconds`) and of the
//! current template; and how many nodes that should not run it still have one.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::ResourceExt as _;

use super::eligibility::node_should_run;
use super::history::is_pod_updated;
use crate::error::{is_not_found, Result};
use crate::pods;

/// The counts of a status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Nodes that should run the daemon.
    pub desired: i32,
    /// Of those, nodes with a daemon pod.
    pub current: i32,
    /// Nodes with a daemon pod that should not run it.
    pub misscheduled: i32,
    /// Nodes whose daemon pod is ready.
    pub ready: i32,
    /// Nodes whose daemon pod runs the current template.
    pub updated: i32,
    /// Nodes whose daemon pod is available.
    pub available: i32,
}

impl Counts {
    /// Nodes that should run the daemon without an available pod.
    pub fn unavailable(&self) -> i32 {
        self.desired - self.available
    }
}

/// The oldest pod first, bound ones before unbound (kube's `podByCreationTimestampAndPhase`).
pub fn sort_oldest_first(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        let unbound = |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty)
        };
        let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (unbound(a), created(a), a.metadata.name.as_deref()).cmp(&(
            unbound(b),
            created(b),
            b.metadata.name.as_deref(),
        ))
    });
}

/// Counts the status of `ds` over `nodes`, with `node_pods` its pods by node.
pub fn count(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    node_pods: &BTreeMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Counts {
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let mut counts = Counts::default();
    for node in nodes {
        let name = node.metadata.name.as_deref().unwrap_or("");
        let pods = node_pods.get(name).filter(|p| !p.is_empty());
        if !node_should_run(ds, node).should_run {
            if pods.is_some() {
                counts.misscheduled += 1;
            }
            continue;
        }
        counts.desired += 1;
        let Some(pods) = pods else { continue };
        counts.current += 1;
        let mut pods = pods.clone();
        sort_oldest_first(&mut pods);
        let oldest = &pods[0];
        if pods::is_ready(oldest) {
            counts.ready += 1;
            if pods::is_available(oldest, min_ready, now) {
                counts.available += 1;
            }
        }
        if is_pod_updated(oldest, hash, generation) {
            counts.updated += 1;
        }
    }
    counts
}

/// Writes the counts (and, when the controller acted on this generation, the observed
/// generation) if they differ from the DaemonSet's status (kube's `storeDaemonSetStatus`).
pub async fn store(
    api: &Api<DaemonSet>,
    ds: &DaemonSet,
    counts: Counts,
    observed: bool,
) -> Result<()> {
    let current = ds.status.clone().unwrap_or_default();
    let generation = ds.metadata.generation.unwrap_or(0);
    let same = current.desired_number_scheduled == counts.desired
        && current.current_number_scheduled == counts.current
        && current.number_misscheduled == counts.misscheduled
        && current.number_ready == counts.ready
        && current.updated_number_scheduled.unwrap_or(0) == counts.updated
        && current.number_available.unwrap_or(0) == counts.available
        && current.number_unavailable.unwrap_or(0) == counts.unavailable()
        && current.observed_generation.unwrap_or(0) >= generation;
    if same {
        return Ok(());
    }
    let mut updated = ds.clone();
    let status = updated.status.get_or_insert_with(DaemonSetStatus::default);
    if observed {
        status.observed_generation = Some(generation);
    }
    status.desired_number_scheduled = counts.desired;
    status.current_number_scheduled = counts.current;
    status.number_misscheduled = counts.misscheduled;
    status.number_ready = counts.ready;
    status.updated_number_scheduled = Some(counts.updated);
    status.number_available = Some(counts.available);
    status.number_unavailable = Some(counts.unavailable());
    // Guarded by the cached resourceVersion: a conflict means the cache was stale, and the
    // error policy retries with a fresher copy.
    match api
        .replace_status(&ds.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::daemonset::history::REVISION_HASH_LABEL;
    use crate::pods::tests::pod;

    #[test]
    fn counts_per_node_with_the_oldest_pod_speaking() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "ds"},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "minReadySeconds": 10,
                "template": {"metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [], "nodeSelector": {"run": "yes"}}}},
        }))
        .unwrap();
        let node = |name: &str, run: bool| -> Arc<Node> {
            let labels = if run {
                json!({"run": "yes"})
            } else {
                json!({})
            };
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                    .unwrap(),
            )
        };
        let now = Timestamp::now();
        let labelled = |mut p: Pod, hash: &str| {
            p.metadata.labels = Some([(REVISION_HASH_LABEL.to_owned(), hash.to_owned())].into());
            Arc::new(p)
        };
        let nodes = vec![
            node("n1", true),
            node("n2", true),
            node("n3", true),
            node("n4", false),
        ];
        let node_pods: BTreeMap<String, Vec<Arc<Pod>>> = [
            (
                "n1".to_owned(),
                vec![
                    labelled(pod("young", now, 5, "n1", "Pending", None), "new"),
                    labelled(pod("old", now, 500, "n1", "Running", Some(60)), "old"),
                ],
            ),
            (
                "n2".to_owned(),
                vec![labelled(
                    pod("b", now, 100, "n2", "Running", Some(5)),
                    "new",
                )],
            ),
            (
                "n4".to_owned(),
                vec![labelled(
                    pod("d", now, 100, "n4", "Running", Some(60)),
                    "new",
                )],
            ),
        ]
        .into();
        let counts = count(&ds, &nodes, &node_pods, "new", None, now);
        assert_eq!(
            counts,
            Counts {
                desired: 3,
                current: 2,
                misscheduled: 1,
                ready: 2,
                updated: 1,
                available: 1,
            }
        );
        assert_eq!(counts.unavailable(), 2);
    }
}
