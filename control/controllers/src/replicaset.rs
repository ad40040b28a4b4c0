//! The ReplicaSet controller: keeps `spec.replicas` pods of the template running, as
//! kube-controller-manager's `pkg/controller/replicaset`.
//!
//! One reconcile: read the ReplicaSet's namespace's pods from the cache; claim them (adopt
//! orphans the selector matches, release owned pods it no longer matches); if the last
//! reconcile's creates and deletes show in the cache (see [`crate::expectations`]), create
//! the missing pods in slow-start batches or delete the surplus in kube's order; write the
//! status. Pod events trigger the owning ReplicaSet (or, for an orphan, every ReplicaSet
//! whose selector matches it).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;

use crate::error::{is_not_found, Error, Result};
use crate::events::Recorder;
use crate::expectations::{Expectations, Seen};
use crate::labels::{has_all, LabelMatcher};
use crate::ownership::{
    adopt_patch, controller_of, controller_reference, owners_of_child, release_patch,
};
use crate::pods;

/// kube's cap on the pods one reconcile creates or deletes (`--replicaset-burst`... the
/// controller's `BurstReplicas`, 500).
pub const BURST_REPLICAS: usize = 500;

/// The first slow-start batch (kube's `SlowStartInitialBatchSize`).
pub const SLOW_START_INITIAL_BATCH: usize = 1;

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every pod, from the shared pod informer.
    pub pods: Store<Pod>,
    /// Every ReplicaSet.
    pub replicasets: Store<ReplicaSet>,
    /// Creates and deletes not yet seen in `pods`.
    pub expectations: Arc<Expectations>,
    /// Events about ReplicaSets (`replicaset-controller`).
    pub recorder: Recorder,
    /// The safety-net requeue of every ReplicaSet.
    pub resync: Duration,
}

/// Runs the controller: triggered by `replicasets` (the objects) and `pods` (their children).
pub fn run(
    ctx: Arc<Context>,
    replicasets: impl Stream<Item = Result<ReplicaSet, watcher::Error>> + Send + 'static,
    pods: impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
) -> impl Future<Output = ()> {
    let store = ctx.replicasets.clone();
    let owners = store.clone();
    Controller::for_stream(replicasets, store)
        .watches_stream(pods, move |pod: Pod| owners_of(&owners, &pod))
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "replicaset reconcile");
            }
            futures::future::ready(())
        })
}

/// The ReplicaSets a pod event concerns: its controller if that is a ReplicaSet, else (an
/// orphan) every ReplicaSet of its namespace whose selector matches it.
pub fn owners_of(replicasets: &Store<ReplicaSet>, pod: &Pod) -> Vec<ObjectRef<ReplicaSet>> {
    owners_of_child(replicasets, &pod.metadata, |rs| {
        rs.spec.as_ref().map(|s| &s.selector)
    })
}

/// After a failure: try again soon, or at the resync for a spec that cannot work.
pub fn error_policy(rs: Arc<ReplicaSet>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::debug!(replicaset = %rs.name_any(), %error, "replicaset reconcile failed");
    match error {
        Error::Invalid { .. } => Action::requeue(ctx.resync),
        _ => Action::requeue(Duration::from_secs(1)),
    }
}

/// `namespace/name`, the expectations' key.
fn key_of(rs: &ReplicaSet) -> String {
    format!("{}/{}", rs.namespace().unwrap_or_default(), rs.name_any())
}

/// What the pod cache says of the pod `name` in `namespace`.
fn seen(pods: &Store<Pod>, namespace: &str, name: &str) -> Seen {
    match pods.get(&ObjectRef::new(name).within(namespace)) {
        None => Seen::Absent,
        Some(pod) => Seen::Present {
            uid: pod.uid().unwrap_or_default(),
            terminating: pod.metadata.deletion_timestamp.is_some(),
        },
    }
}

/// Brings one ReplicaSet's pods and status in line with its spec.
pub async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = rs.namespace().unwrap_or_default();
    let key = key_of(&rs);
    let spec = rs.spec.clone().unwrap_or_default();
    let selector = LabelMatcher::new(Some(&spec.selector));
    if !selector.is_valid() {
        return Err(Error::invalid(
            format!("replicaset {key} selector"),
            "cannot be parsed",
        ));
    }
    let satisfied = ctx
        .expectations
        .satisfied(&key, |name| seen(&ctx.pods, &namespace, name));
    let active: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()) && pods::is_active(p))
        .collect();
    let owned = claim_pods(&rs, &selector, active, &ctx).await?;

    let managed = if satisfied && rs.metadata.deletion_timestamp.is_none() {
        manage_replicas(&rs, &owned, &ctx, &key).await
    } else {
        Ok(())
    };
    let now = Timestamp::now();
    let status = calculate_status(&rs, &owned, managed.as_ref().err(), now);
    let status = update_status(&rs, status, &ctx).await?;
    managed?;

    let desired = spec.replicas.unwrap_or(1);
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    // Pods turn available minReadySeconds after they turned ready, with no event to say so.
    if min_ready > 0
        && status.ready_replicas.unwrap_or(0) == desired
        && status.available_replicas.unwrap_or(0) != desired
    {
        return Ok(Action::requeue(Duration::from_secs(min_ready as u64)));
    }
    Ok(Action::requeue(ctx.resync))
}

/// The pods this ReplicaSet controls after adopting matching orphans and releasing owned pods
/// that no longer match (kube's `PodControllerRefManager.ClaimPods`).
async fn claim_pods(
    rs: &ReplicaSet,
    selector: &LabelMatcher,
    active: Vec<Arc<Pod>>,
    ctx: &Context,
) -> Result<Vec<Arc<Pod>>> {
    let namespace = rs.namespace().unwrap_or_default();
    let uid = rs.uid().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut owned = Vec::new();
    let mut may_adopt: Option<bool> = None;
    for pod in active {
        let matches = selector.matches(pod.metadata.labels.as_ref());
        let pod_uid = pod.uid().unwrap_or_default();
        match controller_of(&pod.metadata) {
            Some(owner) if owner.uid == uid => {
                if matches {
                    owned.push(pod);
                } else if rs.metadata.deletion_timestamp.is_none() {
                    let patch = Patch::Strategic(release_patch(&uid, &pod_uid));
                    match pods
                        .patch(&pod.name_any(), &PatchParams::default(), &patch)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Some(_) => {}
            None => {
                if !matches
                    || pod.metadata.deletion_timestamp.is_some()
                    || rs.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                // Adopt only if the ReplicaSet is still there and not being deleted, read
                // past the cache (kube's `RecheckDeletionTimestamp`).
                if may_adopt.is_none() {
                    let replicasets: Api<ReplicaSet> =
                        Api::namespaced(ctx.client.clone(), &namespace);
                    let fresh = replicasets.get_opt(&rs.name_any()).await?;
                    may_adopt = Some(fresh.is_some_and(|f| {
                        f.uid().as_deref() == Some(uid.as_str())
                            && f.metadata.deletion_timestamp.is_none()
                    }));
                }
                if may_adopt != Some(true) {
                    continue;
                }
                let reference = controller_reference("apps/v1", "ReplicaSet", &rs.metadata);
                let patch = Patch::Strategic(adopt_patch(&reference, &pod_uid));
                match pods
                    .patch(&pod.name_any(), &PatchParams::default(), &patch)
                    .await
                {
                    Ok(adopted) => owned.push(Arc::new(adopted)),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(owned)
}

/// The batch sizes of a slow start of `count` calls: `initial`, then doubling, never past
/// what remains (kube's `slowStartBatch`).
pub fn slow_start_batches(count: usize, initial: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let mut remaining = count;
    let mut size = remaining.min(initial.max(1));
    while size > 0 {
        batches.push(size);
        remaining -= size;
        size = (2 * size).min(remaining);
    }
    batches
}

/// Calls `call` `count` times in slow-start batches, each batch concurrently; stops after a
/// batch with a failure. Returns how many calls succeeded and the first failure.
pub async fn slow_start<F, Fut>(count: usize, initial: usize, call: F) -> (usize, Option<Error>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut successes = 0;
    for size in slow_start_batches(count, initial) {
        let results = futures::future::join_all((0..size).map(|_| call())).await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
    }
    (successes, None)
}

/// Creates or deletes pods so that `owned` reaches `spec.replicas` (kube's `manageReplicas`).
async fn manage_replicas(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    ctx: &Context,
    key: &str,
) -> Result<()> {
    let namespace = rs.namespace().unwrap_or_default();
    let spec = rs.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1).max(0) as usize;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let control = pods::PodControl {
        api: &api,
        owner: rs,
        key,
        expectations: &ctx.expectations,
        recorder: &ctx.recorder,
    };
    if owned.len() < desired {
        let diff = (desired - owned.len()).min(BURST_REPLICAS);
        let Some(template) = spec.template.as_ref() else {
            return Err(Error::invalid(
                format!("replicaset {key}"),
                "has no pod template",
            ));
        };
        let owner = controller_reference("apps/v1", "ReplicaSet", &rs.metadata);
        let pod = pods::from_template(template, &namespace, &owner);
        tracing::debug!(replicaset = %key, need = desired, creating = diff, "too few replicas");
        let (_, error) = slow_start(diff, SLOW_START_INITIAL_BATCH, || async {
            control.create_owned_pod(&pod).await.map(|_| ())
        })
        .await;
        return error.map_or(Ok(()), Err);
    }
    if owned.len() > desired {
        let diff = (owned.len() - desired).min(BURST_REPLICAS);
        let related = related_pods(rs, owned, ctx);
        let related: Vec<&Pod> = related.iter().map(AsRef::as_ref).collect();
        let mut victims: Vec<&Pod> = owned.iter().map(AsRef::as_ref).collect();
        if diff < victims.len() {
            pods::sort_for_deletion(&mut victims, &related, Timestamp::now());
        }
        victims.truncate(diff);
        tracing::debug!(replicaset = %key, need = desired, deleting = diff, "too many replicas");
        let results =
            futures::future::join_all(victims.iter().map(|pod| control.delete_owned_pod(pod)))
                .await;
        let failures: Vec<Error> = results.into_iter().filter_map(Result::err).collect();
        let count = failures.len();
        if let Some(first) = failures.into_iter().next() {
            return Err(Error::Pods {
                count,
                first: Box::new(first),
            });
        }
    }
    Ok(())
}

/// The active pods of every ReplicaSet with the same controller as `rs` (its siblings in a
/// Deployment), for the "doubled up on a node" rank; just `owned` when it has no controller.
fn related_pods(rs: &ReplicaSet, owned: &[Arc<Pod>], ctx: &Context) -> Vec<Arc<Pod>> {
    let namespace = rs.namespace();
    let Some(controller) = controller_of(&rs.metadata) else {
        return owned.to_vec();
    };
    let siblings: Vec<String> = ctx
        .replicasets
        .state()
        .iter()
        .filter(|other| other.namespace() == namespace)
        .filter(|other| controller_of(&other.metadata).is_some_and(|c| c.uid == controller.uid))
        .filter_map(|other| other.uid())
        .collect();
    ctx.pods
        .state()
        .into_iter()
        .filter(|p| p.namespace() == namespace && pods::is_active(p))
        .filter(|p| controller_of(&p.metadata).is_some_and(|c| siblings.contains(&c.uid)))
        .collect()
}

/// The status kube's `calculateStatus` computes from the owned pods.
pub fn calculate_status(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    manage_error: Option<&Error>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let spec = rs.spec.clone().unwrap_or_default();
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let count = |f: &dyn Fn(&Pod) -> bool| owned.iter().filter(|p| f(p)).count() as i32;
    let mut conditions: Vec<ReplicaSetCondition> = rs
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == "ReplicaFailure");
    match manage_error {
        Some(error) if !has_failure => {
            let desired = spec.replicas.unwrap_or(1) as usize;
            let reason = if owned.len() < desired {
                "FailedCreate"
            } else {
                "FailedDelete"
            };
            conditions.push(ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(error.to_string()),
                last_transition_time: Some(Time(now)),
            });
        }
        None if has_failure => conditions.retain(|c| c.type_ != "ReplicaFailure"),
        _ => {}
    }
    ReplicaSetStatus {
        replicas: owned.len() as i32,
        fully_labeled_replicas: Some(count(&|p| {
            has_all(p.metadata.labels.as_ref(), template_labels)
        })),
        ready_replicas: Some(count(&pods::is_ready)),
        available_replicas: Some(count(&|p| pods::is_available(p, min_ready, now))),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: None,
    }
}

/// Writes `status` if it differs from what the ReplicaSet shows; returns the status now in
/// force.
async fn update_status(
    rs: &ReplicaSet,
    status: ReplicaSetStatus,
    ctx: &Context,
) -> Result<ReplicaSetStatus> {
    let current = rs.status.clone().unwrap_or_default();
    let same = current.replicas == status.replicas
        && current.fully_labeled_replicas.unwrap_or(0)
            == status.fully_labeled_replicas.unwrap_or(0)
        && current.ready_replicas.unwrap_or(0) == status.ready_replicas.unwrap_or(0)
        && current.available_replicas.unwrap_or(0) == status.available_replicas.unwrap_or(0)
        && current.observed_generation == status.observed_generation
        && current.conditions == status.conditions;
    if same {
        return Ok(current);
    }
    let api: Api<ReplicaSet> =
        Api::namespaced(ctx.client.clone(), &rs.namespace().unwrap_or_default());
    let mut body = serde_json::to_value(&status)
        .map_err(|e| Error::invalid("replicaset status", e.to_string()))?;
    if status.conditions.is_none() {
        body["conditions"] = serde_json::Value::Null;
    }
    let patch = Patch::Merge(serde_json::json!({"status": body}));
    match api
        .patch_status(&rs.name_any(), &PatchParams::default(), &patch)
        .await
    {
        Ok(_) => Ok(status),
        // Deleted meanwhile: nothing to report on.
        Err(e) if is_not_found(&e) => Ok(status),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn slow_start_doubles_from_one() {
        assert_eq!(slow_start_batches(1, 1), [1]);
        assert_eq!(slow_start_batches(3, 1), [1, 2]);
        assert_eq!(slow_start_batches(10, 1), [1, 2, 4, 3]);
        assert_eq!(slow_start_batches(16, 1), [1, 2, 4, 8, 1]);
        assert!(slow_start_batches(0, 1).is_empty());
    }

    #[tokio::test]
    async fn slow_start_stops_after_a_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (ok, error) = slow_start(10, 1, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 4 {
                    Err(Error::invalid("pod", "refused"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        // Batches 1 and 2 succeed; the batch of 4 has one failure; the last batch never runs.
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(ok, 6);
        assert!(error.is_some());
    }

    #[test]
    fn status_counts_ready_available_and_labeled() {
        use crate::pods::tests::pod;
        use k8s_openapi::api::apps::v1::ReplicaSetSpec;
        use k8s_openapi::api::core::v1::PodTemplateSpec;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

        let now = Timestamp::now();
        let labels: std::collections::BTreeMap<String, String> =
            [("app".to_owned(), "web".to_owned())].into();
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                generation: Some(4),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(3),
                min_ready_seconds: Some(10),
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels.clone()),
                        ..ObjectMeta::default()
                    }),
                    spec: None,
                }),
                ..ReplicaSetSpec::default()
            }),
            status: None,
        };
        let mut labeled = pod("a", now, 100, "n1", "Running", Some(60));
        labeled.metadata.labels = Some(labels);
        let owned = vec![
            Arc::new(labeled),
            Arc::new(pod("b", now, 100, "n1", "Running", Some(5))),
            Arc::new(pod("c", now, 100, "n1", "Pending", None)),
        ];
        let status = calculate_status(&rs, &owned, None, now);
        assert_eq!(status.replicas, 3);
        assert_eq!(status.fully_labeled_replicas, Some(1));
        assert_eq!(status.ready_replicas, Some(2));
        assert_eq!(status.available_replicas, Some(1));
        assert_eq!(status.observed_generation, Some(4));
        assert!(status.conditions.is_none());
        let failed = calculate_status(&rs, &owned[..1], Some(&Error::invalid("x", "y")), now);
        let condition = &failed.conditions.unwrap()[0];
        assert_eq!(condition.reason.as_deref(), Some("FailedCreate"));
    }
}
