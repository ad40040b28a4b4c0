//! The disruption controller (kube-controller-manager's `disruption`): it keeps every
//! PodDisruptionBudget's status true, so the eviction subresource and the scheduler's
//! preemption know how many of its pods may go now.
//!
//! ```text
//! PDB events ─┐                     pods (selector, namespace) ─┐
//! Pod events ─┼─▶ reconcile(pdb) ─▶ controllers' scale ─────────┼─▶ budget::next_status
//! recheck ────┘   (disruptedPods     (ReplicaSet, Deployment,   │   ─▶ PUT pdb/status
//!                  running out)       StatefulSet)              ┘
//! ```
//!
//! A pod event triggers every budget of its namespace that selects it. The expected count
//! comes from the scale of the pods' controllers (a ReplicaSet, or the Deployment owning it,
//! from the informer caches; a StatefulSet through its `scale` subresource), as kube's
//! finders find it. When the status cannot be worked out the budget fails safe: no
//! disruption allowed, condition `DisruptionAllowed=False` with reason `SyncFailed`.
//!
//! Events as kube's controller records them (source `controllermanager`): `NoPods`,
//! `CalculateExpectedPodCountFailed`, `UnmanagedPods` on the budget, `NotDeleted` on a pod
//! whose approved eviction never happened. kube's event broadcaster folds repeats into one
//! event with a count; this recorder does not, so the budget's events are recorded only
//! when its status changes.

pub mod budget;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;

use crate::error::{is_conflict, is_not_found, Error, Result};
use crate::events::{EventType, Recorder};
use crate::labels::LabelMatcher;
use crate::ownership::controller_of;
use budget::Counts;

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every PodDisruptionBudget.
    pub budgets: Store<PodDisruptionBudget>,
    /// Every pod.
    pub pods: Store<Pod>,
    /// Every ReplicaSet (the pods' controllers).
    pub replicasets: Store<ReplicaSet>,
    /// Every Deployment (the ReplicaSets' controllers).
    pub deployments: Store<Deployment>,
    /// Events, as kube's controller records them (`controllermanager`).
    pub recorder: Recorder,
    /// The safety-net requeue of every budget.
    pub resync: Duration,
}

/// Runs the controller: triggered by budgets and by the pods they select.
pub fn run(
    ctx: Arc<Context>,
    budgets: impl Stream<Item = Result<PodDisruptionBudget, watcher::Error>> + Send + 'static,
    pods: impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
) -> impl Future<Output = ()> {
    let store = ctx.budgets.clone();
    let selecting = store.clone();
    Controller::for_stream(budgets, store)
        .watches_stream(pods, move |pod: Pod| budgets_of(&selecting, &pod))
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "disruption reconcile");
            }
            futures::future::ready(())
        })
}

/// The budgets of the pod's namespace whose selector selects it.
pub fn budgets_of(
    budgets: &Store<PodDisruptionBudget>,
    pod: &Pod,
) -> Vec<ObjectRef<PodDisruptionBudget>> {
    let namespace = pod.namespace().unwrap_or_default();
    budgets
        .state()
        .iter()
        .filter(|b| b.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|b| selector_of(b).matches(pod.metadata.labels.as_ref()))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

fn selector_of(pdb: &PodDisruptionBudget) -> LabelMatcher {
    LabelMatcher::new(pdb.spec.as_ref().and_then(|s| s.selector.as_ref()))
}

fn error_policy(pdb: Arc<PodDisruptionBudget>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(budget = %pdb.name_any(), %error, "disruption reconcile failed");
    match error {
        // A controller the cache does not show yet, or a spec that cannot be counted: the
        // pods' next change triggers the budget again anyway.
        Error::Invalid { .. } => Action::requeue(Duration::from_secs(5)),
        _ => Action::requeue(Duration::from_secs(1)),
    }
}

/// Works out the budget's status and writes it if it changed; on a failure other than a
/// lost race, writes the fail-safe status instead.
pub async fn reconcile(pdb: Arc<PodDisruptionBudget>, ctx: Arc<Context>) -> Result<Action> {
    let now = Timestamp::now();
    match try_sync(&pdb, &ctx, now).await {
        Ok(action) => Ok(action),
        Err(Error::Kube(e)) if is_conflict(&e) => Err(Error::Kube(e)),
        Err(e) => {
            let message = match &e {
                Error::Invalid { why, .. } => why.clone(),
                other => other.to_string(),
            };
            let status = budget::fail_safe_status(&pdb, &message, now);
            if pdb.status.as_ref() != Some(&status) {
                if matches!(e, Error::Invalid { .. }) {
                    let event =
                        format!("Failed to calculate the number of expected pods: {message}");
                    ctx.recorder.record(
                        pdb.as_ref(),
                        EventType::Warning,
                        "CalculateExpectedPodCountFailed",
                        event,
                    );
                }
                write_status(&ctx, &pdb, status).await?;
            }
            Err(e)
        }
    }
}

async fn try_sync(pdb: &PodDisruptionBudget, ctx: &Context, now: Timestamp) -> Result<Action> {
    let namespace = pdb.namespace().unwrap_or_default();
    let selector = selector_of(pdb);
    let spec = pdb.spec.clone().unwrap_or_default();
    let cached = ctx.pods.state();
    let pods: Vec<&Pod> = cached
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|p| selector.matches(p.metadata.labels.as_ref()))
        .collect();
    let mut events: Vec<(EventType, &str, String)> = Vec::new();
    if pods.is_empty() {
        events.push((EventType::Normal, "NoPods", "No matching pods found".into()));
    }
    let scale = if budget::needs_scale(&spec) {
        let (scale, unmanaged) = expected_scale(ctx, &pods).await?;
        if !unmanaged.is_empty() {
            events.push((EventType::Warning, "UnmanagedPods", unmanaged_message(pdb)));
        }
        scale
    } else {
        0
    };
    let (expected, desired_healthy) = budget::expected_and_desired(&spec, pods.len(), scale)
        .map_err(|why| Error::invalid(format!("budget {namespace}/{}", pdb.name_any()), why))?;
    let disrupted = budget::disrupted_pods(
        &pods,
        pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()),
        now,
    );
    for name in &disrupted.expired {
        if let Some(pod) = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
        {
            ctx.recorder.record(
                *pod,
                EventType::Warning,
                "NotDeleted",
                format!(
                    "Pod was expected by PDB {namespace}/{} to be deleted but it wasn't",
                    pdb.name_any()
                ),
            );
        }
    }
    let counts = Counts {
        current_healthy: budget::current_healthy(&pods, &disrupted.pods, now),
        desired_healthy,
        expected,
        disrupted: disrupted.pods,
    };
    if let Some(status) = budget::next_status(pdb, counts, now) {
        for (kind, reason, message) in events {
            ctx.recorder.record(pdb, kind, reason, message);
        }
        write_status(ctx, pdb, status).await?;
    }
    // Look again when the first disrupted pod's time runs out.
    let action = match disrupted.recheck {
        Some(at) => {
            let wait = at.duration_since(now).as_secs_f64().max(0.0);
            Action::requeue(Duration::from_secs_f64(wait) + Duration::from_millis(50))
        }
        None => Action::requeue(ctx.resync),
    };
    Ok(action)
}

fn unmanaged_message(pdb: &PodDisruptionBudget) -> String {
    let selector = pdb
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .unwrap_or_default();
    format!(
        "Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. \
         As a result, the status of the PDB cannot be calculated correctly, which may result in \
         undefined behavior. To account for these pods please set \".spec.minAvailable\" field \
         of the PDB to an integer value."
    )
}

/// kube's `getExpectedScale`: the sum of the scales of the pods' controllers (each counted
/// once), and the names of pods no controller manages.
async fn expected_scale(ctx: &Context, pods: &[&Pod]) -> Result<(i32, Vec<String>)> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut scales: BTreeMap<String, i32> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let Some(owner) = controller_of(&pod.metadata) else {
            unmanaged.push(pod.name_any());
            continue;
        };
        if !seen.insert(owner.uid.clone()) {
            continue;
        }
        let namespace = pod.namespace().unwrap_or_default();
        match scale_of(ctx, owner, &namespace).await? {
            Some((uid, replicas)) => {
                scales.insert(uid, replicas);
            }
            None => {
                return Err(Error::invalid(
                    format!("pod {namespace}/{}", pod.name_any()),
                    format!("found no controllers for pod {:?}", pod.name_any()),
                ))
            }
        }
    }
    Ok((scales.values().sum(), unmanaged))
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// kube's finders: the controller `owner` names and its replicas, keyed by the uid of
/// whoever holds the scale (the Deployment above a ReplicaSet, so its ReplicaSets count
/// once). None when no such controller exists.
async fn scale_of(
    ctx: &Context,
    owner: &OwnerReference,
    namespace: &str,
) -> Result<Option<(String, i32)>> {
    let group = group_of(&owner.api_version);
    match (owner.kind.as_str(), group) {
        ("ReplicaSet", "apps" | "extensions") => {
            let Some(rs) = ctx
                .replicasets
                .get(&ObjectRef::new(&owner.name).within(namespace))
            else {
                return Ok(None);
            };
            if rs.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
                return Ok(None);
            }
            if let Some(parent) = controller_of(&rs.metadata).filter(|r| r.kind == "Deployment") {
                let Some(deployment) = ctx
                    .deployments
                    .get(&ObjectRef::new(&parent.name).within(namespace))
                else {
                    return Ok(None);
                };
                if deployment.metadata.uid.as_deref() != Some(parent.uid.as_str()) {
                    return Ok(None);
                }
                let replicas = deployment
                    .spec
                    .as_ref()
                    .and_then(|s| s.replicas)
                    .unwrap_or(1);
                return Ok(Some((parent.uid.clone(), replicas)));
            }
            let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            Ok(Some((owner.uid.clone(), replicas)))
        }
        ("StatefulSet", "apps") => {
            // No StatefulSet informer here: its scale subresource says it (kube's
            // fallback finder for any scalable controller).
            let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), namespace);
            match api.get_scale(&owner.name).await {
                Ok(scale) if scale.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                    let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
                    Ok(Some((owner.uid.clone(), replicas)))
                }
                Ok(_) => Ok(None),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        _ => Ok(None),
    }
}

/// Writes `status` over the cached budget (its resourceVersion guards the write: a
/// conflict means the cache was behind, and the next reconcile reads it afresh).
async fn write_status(
    ctx: &Context,
    pdb: &PodDisruptionBudget,
    status: k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus,
) -> Result<()> {
    let api: Api<PodDisruptionBudget> =
        Api::namespaced(ctx.client.clone(), &pdb.namespace().unwrap_or_default());
    let mut updated = pdb.clone();
    updated.status = Some(status);
    match api
        .replace_status(&pdb.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
