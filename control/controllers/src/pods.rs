//! What the controllers read off a pod (active, ready, available since when), the order in
//! which a ReplicaSet gives pods up (kube's `ActivePodsWithRanks`), a pod made from a
//! template, and the create and delete of a controller's pod with its expectation and event
//! (kube's `RealPodControl`), shared by the ReplicaSet, DaemonSet and Job controllers.

use std::cmp::Reverse;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt as _};

use crate::error::{api_message, is_namespace_terminating, is_not_found, Result};
use crate::events::{EventType, Recorder};
use crate::expectations::Expectations;

/// kube's annotation that makes a pod cheaper or dearer to delete (lower goes first).
pub const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The pod's phase, "" when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Not finished and not being deleted: the pods a ReplicaSet counts.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// When the pod's Ready condition last turned True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` as of `now` (kube's `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(i64::from(
                min_ready_seconds,
            )))
            .is_ok_and(|t| t < now),
    }
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// How long ago `t` was, on kube's logarithmic scale (`LogarithmicScaleDown`): pods whose ages
/// are within a factor of two of each other rank alike. A missing time ranks first.
fn age_rank(t: Option<Timestamp>, now: Timestamp) -> i64 {
    let Some(t) = t else { return i64::MIN };
    let nanos = now.duration_since(t).as_nanos();
    if nanos > 0 {
        i64::from(127 - (nanos as u128).leading_zeros() as i32)
    } else {
        -1
    }
}

/// Sorts `pods` so the ones to delete first come first. `related` are the active pods of
/// every ReplicaSet with the same controller (the pods "doubled up" on a node with many of
/// their siblings go first). The order, as kube's `ActivePodsWithRanks`:
///
/// 1. unassigned before assigned;
/// 2. Pending before Unknown before Running;
/// 3. not ready before ready;
/// 4. lower `pod-deletion-cost` first;
/// 5. more siblings on the same node first;
/// 6. ready for a shorter time first;
/// 7. more container restarts first;
/// 8. newer before older;
///
/// times compared on a log2 scale, then by uid.
///
/// One simplification: kube breaks a tie of equal log-rank but different ready times by uid
/// right away; here it falls through to restarts and creation time, then uid.
pub fn sort_for_deletion(pods: &mut [&Pod], related: &[&Pod], now: Timestamp) {
    let mut on_node: HashMap<&str, i64> = HashMap::new();
    for pod in related.iter().filter(|p| is_active(p)) {
        *on_node.entry(node_name(pod)).or_default() += 1;
    }
    pods.sort_by_cached_key(|pod| {
        let ready = ready_since(pod);
        let phase_ordinal = match phase(pod) {
            "Unknown" => 1,
            "Running" => 2,
            _ => 0,
        };
        (
            !node_name(pod).is_empty(),
            phase_ordinal,
            ready.is_some(),
            deletion_cost(pod),
            Reverse(on_node.get(node_name(pod)).copied().unwrap_or(0)),
            ready.map_or(0, |since| age_rank(since, now)),
            Reverse(max_restarts(pod)),
            age_rank(pod.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
            pod.metadata.uid.clone().unwrap_or_default(),
        )
    });
}

/// A pod from `template` for the owner `owner`: the template's labels, annotations and
/// finalizers, `generateName` `<owner>-`, and the controller reference.
pub fn from_template(template: &PodTemplateSpec, namespace: &str, owner: &OwnerReference) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    // A generated name may not run past 63 characters; kube trims the prefix to 58.
    let mut prefix = format!("{}-", owner.name);
    if prefix.len() > 58 {
        prefix.truncate(57);
        prefix.push('-');
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: Some(namespace.to_owned()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Who creates or deletes a pod: its controller `owner` (the events are about it), `key` its
/// expectations' key, and where both are recorded.
pub struct PodControl<'a, K> {
    /// The pods of the owner's namespace.
    pub api: &'a Api<Pod>,
    /// The controller.
    pub owner: &'a K,
    /// The controller's key in `expectations` (`namespace/name`).
    pub key: &'a str,
    /// The controller's creates and deletes the cache has not shown yet.
    pub expectations: &'a Expectations,
    /// The controller's events.
    pub recorder: &'a Recorder,
}

impl<K: Resource<DynamicType = ()>> PodControl<'_, K> {
    /// Creates `pod`: its name is expected in the cache and a `SuccessfulCreate` event
    /// recorded; a failure records `FailedCreate` with the API's message. A namespace being
    /// deleted is no failure: nothing is created, `Ok(None)`.
    pub async fn create_owned_pod(&self, pod: &Pod) -> Result<Option<String>> {
        match self.api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                let name = created.name_any();
                self.expectations.created(self.key, &name);
                let message = format!("Created pod: {name}");
                self.recorder
                    .record(self.owner, EventType::Normal, "SuccessfulCreate", message);
                Ok(Some(name))
            }
            Err(e) if is_namespace_terminating(&e) => Ok(None),
            Err(e) => {
                let message = format!("Error creating: {}", api_message(&e));
                self.recorder
                    .record(self.owner, EventType::Warning, "FailedCreate", message);
                Err(e.into())
            }
        }
    }

    /// Deletes `pod` if it still has its uid: the deletion is expected in the cache first
    /// (and forgotten again if the delete fails) and a `SuccessfulDelete` event recorded; a
    /// failure records `FailedDelete`. A pod already gone is no failure.
    pub async fn delete_owned_pod(&self, pod: &Pod) -> Result<()> {
        let name = pod.name_any();
        self.expectations
            .deleting(self.key, &name, &pod.uid().unwrap_or_default());
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(&name, &params).await {
            Ok(_) => {
                let message = format!("Deleted pod: {name}");
                self.recorder
                    .record(self.owner, EventType::Normal, "SuccessfulDelete", message);
                Ok(())
            }
            Err(e) if is_not_found(&e) => {
                self.expectations.delete_failed(self.key, &name);
                Ok(())
            }
            Err(e) => {
                self.expectations.delete_failed(self.key, &name);
                let message = format!("Error deleting: {}", api_message(&e));
                self.recorder
                    .record(self.owner, EventType::Warning, "FailedDelete", message);
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::SignedDuration;

    use super::*;

    /// A pod named `name`, created `age` seconds before `now`, on `node` ("" for none), in
    /// `phase`, ready since `ready_for` seconds (None: not ready).
    pub fn pod(
        name: &str,
        now: Timestamp,
        age: i64,
        node: &str,
        phase: &str,
        ready_for: Option<i64>,
    ) -> Pod {
        let ago = |s: i64| Time(now - SignedDuration::from_secs(s));
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Some(ago(age)),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_owned()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_for.map(|s| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(ago(s)),
                        ..PodCondition::default()
                    }]
                }),
                ..PodStatus::default()
            }),
        }
    }

    fn order(pods: &[Pod], now: Timestamp) -> Vec<String> {
        let mut refs: Vec<&Pod> = pods.iter().collect();
        let related = refs.clone();
        sort_for_deletion(&mut refs, &related, now);
        refs.iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn deletion_order_follows_kube() {
        // All assigned pods on one node, so the node rank ties.
        let now = Timestamp::now();
        let pods = vec![
            pod("ready-old", now, 10_000, "n1", "Running", Some(9_000)),
            pod("ready-new", now, 100, "n1", "Running", Some(50)),
            pod("running-not-ready", now, 100, "n1", "Running", None),
            pod("pending-assigned", now, 100, "n1", "Pending", None),
            pod("unassigned", now, 10_000, "", "Pending", None),
        ];
        assert_eq!(
            order(&pods, now),
            [
                "unassigned",
                "pending-assigned",
                "running-not-ready",
                "ready-new",
                "ready-old"
            ]
        );
    }

    #[test]
    fn doubled_up_and_costly_and_restarted() {
        let now = Timestamp::now();
        // Same readiness: the one sharing its node with more siblings goes first.
        let pods = vec![
            pod("alone", now, 100, "n2", "Running", Some(50)),
            pod("crowded", now, 100, "n1", "Running", Some(50)),
            pod("crowded-2", now, 10_000, "n1", "Running", Some(9_000)),
        ];
        assert_eq!(order(&pods, now)[0], "crowded");
        // A deletion cost overrides the node crowding.
        let mut pods = pods;
        pods[1]
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(DELETION_COST_ANNOTATION.into(), "10".into());
        assert_eq!(order(&pods, now)[0], "crowded-2");
        // Not ready, same phase and node: more restarts go first, then newer.
        let mut a = pod("a", now, 10_000, "n1", "Running", None);
        let b = pod("b", now, 100, "n1", "Running", None);
        assert_eq!(order(&[a.clone(), b.clone()], now), ["b", "a"]);
        a.status.as_mut().unwrap().container_statuses =
            Some(vec![k8s_openapi::api::core::v1::ContainerStatus {
                restart_count: 3,
                ..Default::default()
            }]);
        assert_eq!(order(&[a, b], now), ["a", "b"]);
    }

    #[test]
    fn availability_waits_min_ready_seconds() {
        let now = Timestamp::now();
        let p = pod("p", now, 100, "n1", "Running", Some(5));
        assert!(is_ready(&p));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 4, now));
        assert!(!is_available(&p, 10, now));
        let not_ready = pod("q", now, 100, "n1", "Running", None);
        assert!(!is_available(&not_ready, 0, now));
        let mut gone = pod("g", now, 100, "n1", "Running", Some(5));
        assert!(is_active(&gone));
        gone.metadata.deletion_timestamp = Some(Time(now));
        assert!(!is_active(&gone));
    }
}
