//! The RollingUpdate strategy (kube's `rollingUpdate`): which out-of-date pods go, and on
//! which nodes a new pod starts beside an old one.
//!
//! Without surge (`maxSurge` 0), old pods are deleted while fewer than `maxUnavailable`
//! nodes lack an available pod; the manage step then starts the new pod on the emptied node.
//! An old pod that is not available anyway is replaced at once. With surge, a new pod starts
//! beside an old one on up to `maxSurge` nodes, and the old pod goes once the new one is
//! available. Both numbers resolve against the nodes that should run the daemon, rounding
//! percentages up; when both come to zero, one may be unavailable.
//!
//! OnDelete does none of this: a pod runs its old template until someone deletes it.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::history::is_pod_updated;
use crate::deployment::rolling::scaled_value;
use crate::error::Result;
use crate::pods;

/// What one rolling-update step does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Old pods to delete, by name.
    pub delete: Vec<String>,
    /// Nodes to start a new pod on beside the old one (surge).
    pub create_on: Vec<String>,
}

/// Whether the DaemonSet rolls its pods when its template changes.
pub fn is_rolling_update(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// `(maxSurge, maxUnavailable)` for `desired` nodes (kube's `SurgeCount` and
/// `UnavailableCount`, with the fallback of one unavailable when both are zero).
pub fn limits(ds: &DaemonSet, desired: usize) -> Result<(usize, usize)> {
    let rolling = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let total = i32::try_from(desired).unwrap_or(i32::MAX);
    let resolve = |value: Option<&IntOrString>, default: i32| -> Result<usize> {
        let value = value.cloned().unwrap_or(IntOrString::Int(default));
        Ok(scaled_value(&value, total, true)?.max(0) as usize)
    };
    let surge = resolve(rolling.and_then(|r| r.max_surge.as_ref()), 0)?;
    let mut unavailable = resolve(rolling.and_then(|r| r.max_unavailable.as_ref()), 1)?;
    if desired > 0 && surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// The one new and one old live pod of a node; None when it has more of either (the
/// manage step prunes those first) (kube's `findUpdatedPodsOnNode`).
fn updated_and_old<'a>(
    pods: &'a [Arc<Pod>],
    hash: &str,
    generation: Option<i64>,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if is_pod_updated(pod, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod.as_ref());
    }
    Some((new, old))
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// One step of the rolling update. `node_pods` maps every node that should run the daemon
/// (with an empty list when it has no pod) and every node that has one to its pods;
/// `should_run` says which nodes still should.
pub fn step(
    ds: &DaemonSet,
    node_pods: &BTreeMap<String, Vec<Arc<Pod>>>,
    should_run: impl Fn(&str) -> bool,
    desired: usize,
    hash: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Result<Step> {
    let (max_surge, max_unavailable) = limits(ds, desired)?;
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let available = |pod: &Pod| pods::is_available(pod, min_ready, now);
    let mut step = Step::default();

    if max_surge == 0 {
        let mut unavailable = 0;
        let mut candidates = Vec::new();
        for pods in node_pods.values() {
            match updated_and_old(pods, hash, generation) {
                // Several pods: the manage step cleans up; counts as unavailable.
                None => unavailable += 1,
                Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => {
                    if !available(new) {
                        unavailable += 1;
                    }
                }
                Some((None, Some(old))) => {
                    if !available(old) {
                        step.delete.push(name(old));
                    } else if unavailable < max_unavailable {
                        candidates.push(name(old));
                    }
                }
            }
        }
        let room = max_unavailable
            .saturating_sub(unavailable)
            .min(candidates.len());
        step.delete.extend(candidates.into_iter().take(room));
        return Ok(step);
    }

    let mut surging: usize = 0;
    let mut available_count: usize = 0;
    let mut candidates = Vec::new();
    let mut leaving = Vec::new();
    for (node, pods) in node_pods {
        let Some((new, old)) = updated_and_old(pods, hash, generation) else {
            surging += 1;
            continue;
        };
        if old.or(new).is_some_and(available) {
            available_count += 1;
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                if !available(old) {
                    if should_run(node) {
                        step.create_on.push(node.clone());
                    } else {
                        step.delete.push(name(old));
                    }
                } else if !should_run(node) {
                    leaving.push(name(old));
                } else if surging < max_surge {
                    candidates.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if available(new) {
                    step.delete.push(name(old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    // Pods on nodes that should no longer run the daemon go only as others are available
    // beyond the desired count: with surge the owner expects no gap at all.
    let deletable = available_count.saturating_sub(desired).min(leaving.len());
    step.delete.extend(leaving.into_iter().take(deletable));
    let room = max_surge.saturating_sub(surging).min(candidates.len());
    step.create_on.extend(candidates.into_iter().take(room));
    Ok(step)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::daemonset::history::REVISION_HASH_LABEL;
    use crate::pods::tests::pod;

    fn daemon_set(strategy: Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "ds"},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "updateStrategy": strategy,
                "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": []}}},
        }))
        .unwrap()
    }

    fn daemon_pod(name: &str, node: &str, hash: &str, ready: bool) -> Arc<Pod> {
        let now = Timestamp::now();
        let mut p = pod(name, now, 100, node, "Running", ready.then_some(50));
        p.metadata.labels = Some([(REVISION_HASH_LABEL.to_owned(), hash.to_owned())].into());
        Arc::new(p)
    }

    fn nodes(pods: Vec<(&str, Vec<Arc<Pod>>)>) -> BTreeMap<String, Vec<Arc<Pod>>> {
        pods.into_iter().map(|(n, p)| (n.to_owned(), p)).collect()
    }

    #[test]
    fn limits_round_up_and_never_both_zero() {
        let rolling = |u: Value, s: Value| {
            daemon_set(json!({"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": u, "maxSurge": s}}))
        };
        assert_eq!(limits(&rolling(json!(1), json!(0)), 5).unwrap(), (0, 1));
        assert_eq!(limits(&rolling(json!("10%"), json!(0)), 5).unwrap(), (0, 1));
        assert_eq!(limits(&rolling(json!("50%"), json!(0)), 5).unwrap(), (0, 3));
        assert_eq!(limits(&rolling(json!(0), json!("20%")), 6).unwrap(), (2, 0));
        assert_eq!(limits(&rolling(json!(0), json!(0)), 3).unwrap(), (0, 1));
        assert_eq!(limits(&daemon_set(json!({})), 3).unwrap(), (0, 1));
        assert!(is_rolling_update(&daemon_set(json!({}))));
        assert!(!is_rolling_update(&daemon_set(json!({"type": "OnDelete"}))));
    }

    #[test]
    fn without_surge_old_pods_go_one_unavailable_at_a_time() {
        let ds =
            daemon_set(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}));
        let now = Timestamp::now();
        let all_old = nodes(vec![
            ("n1", vec![daemon_pod("a", "n1", "old", true)]),
            ("n2", vec![daemon_pod("b", "n2", "old", true)]),
            ("n3", vec![daemon_pod("c", "n3", "old", true)]),
        ]);
        let first = step(&ds, &all_old, |_| true, 3, "new", None, now).unwrap();
        assert_eq!(first.delete, ["a"]);
        assert!(first.create_on.is_empty());
        // n1 now has an unready new pod: nothing more may go.
        let mut midway = all_old.clone();
        midway.insert("n1".into(), vec![daemon_pod("a2", "n1", "new", false)]);
        assert_eq!(
            step(&ds, &midway, |_| true, 3, "new", None, now).unwrap(),
            Step::default()
        );
        // An empty node counts as unavailable too.
        midway.insert("n1".into(), vec![]);
        assert_eq!(
            step(&ds, &midway, |_| true, 3, "new", None, now).unwrap(),
            Step::default()
        );
        // Once it is ready, the next one goes; an unready old pod goes regardless.
        midway.insert("n1".into(), vec![daemon_pod("a2", "n1", "new", true)]);
        midway.insert("n3".into(), vec![daemon_pod("c", "n3", "old", false)]);
        let next = step(&ds, &midway, |_| true, 3, "new", None, now).unwrap();
        assert_eq!(next.delete, ["c", "b"]);
    }

    #[test]
    fn with_surge_new_pods_start_beside_old_ones() {
        let ds = daemon_set(json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}));
        let now = Timestamp::now();
        let all_old = nodes(vec![
            ("n1", vec![daemon_pod("a", "n1", "old", true)]),
            ("n2", vec![daemon_pod("b", "n2", "old", true)]),
        ]);
        let first = step(&ds, &all_old, |_| true, 2, "new", None, now).unwrap();
        assert_eq!(first.create_on, ["n1"]);
        assert!(first.delete.is_empty());
        let mut surged = all_old.clone();
        surged.insert(
            "n1".into(),
            vec![
                daemon_pod("a", "n1", "old", true),
                daemon_pod("a2", "n1", "new", false),
            ],
        );
        assert_eq!(
            step(&ds, &surged, |_| true, 2, "new", None, now).unwrap(),
            Step::default()
        );
        surged.insert(
            "n1".into(),
            vec![
                daemon_pod("a", "n1", "old", true),
                daemon_pod("a2", "n1", "new", true),
            ],
        );
        let next = step(&ds, &surged, |_| true, 2, "new", None, now).unwrap();
        assert_eq!(next.delete, ["a"]);
        assert_eq!(next.create_on, ["n2"]);
    }
}
