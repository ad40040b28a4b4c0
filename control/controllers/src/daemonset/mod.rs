//! The DaemonSet controller: one pod of the template on every node that should run it, as
//! kube-controller-manager's `daemonset` controller.
//!
//! One reconcile, over the caches:
//!
//! ```text
//! claim pods and ControllerRevisions (adopt matching orphans, release non-matching)
//!   ──▶ history: the current template's revision (hash) and the old ones
//!   ──▶ expectations met? else only the status
//!   ──▶ manage: per node, create the missing pod (pinned by matchFields), delete pods of
//!       nodes no longer eligible, extra pods, failed pods (with backoff)
//!   ──▶ RollingUpdate step (OnDelete: none) ──▶ old revisions cleaned up ──▶ status
//! ```
//!
//! Triggers: DaemonSets; pods (their controller, or for an orphan every DaemonSet whose
//! selector matches); revisions (their controller); and nodes — a node added, deleted or
//! changed in its labels, taints or name-relevant spec requeues every DaemonSet.
//!
//! # Layout
//! - `eligibility`: which nodes run the daemon; the daemon tolerations; node pinning.
//! - `history`: ControllerRevisions, the template hash, which pods are up to date.
//! - `update`: the RollingUpdate step.
//! - `status`: the status counts and their write.

pub mod eligibility;
pub mod history;
pub mod status;
pub mod update;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt as _};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::error::{is_not_found, Error, Result};
use crate::events::{EventType, Recorder};
use crate::expectations::{Expectations, Seen};
use crate::labels::LabelMatcher;
use crate::ownership::{
    adopt_patch, controller_of, controller_reference, owners_of_child, release_patch,
};
use crate::replicaset::{slow_start, BURST_REPLICAS, SLOW_START_INITIAL_BATCH};
use eligibility::{add_daemon_tolerations, node_should_run, pin_to_node, target_node};
use history::{REVISION_HASH_LABEL, TEMPLATE_GENERATION_LABEL};

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every DaemonSet.
    pub daemonsets: Store<DaemonSet>,
    /// Every pod.
    pub pods: Store<Pod>,
    /// Every node.
    pub nodes: Store<Node>,
    /// Every ControllerRevision.
    pub revisions: Store<ControllerRevision>,
    /// Creates and deletes not yet in the pod cache.
    pub expectations: Expectations,
    /// How soon a node's failed daemon pod may be deleted again.
    pub failed_backoff: Backoff,
    /// Events (`daemonset-controller`).
    pub recorder: Recorder,
    /// The safety-net requeue.
    pub resync: Duration,
}

impl Context {
    /// A context with kube's failed-pod backoff (1 s doubling to 15 minutes).
    pub fn new(
        client: kube::Client,
        stores: (
            Store<DaemonSet>,
            Store<Pod>,
            Store<Node>,
            Store<ControllerRevision>,
        ),
        expectations_timeout: Duration,
        recorder: Recorder,
        resync: Duration,
    ) -> Context {
        let (daemonsets, pods, nodes, revisions) = stores;
        Context {
            client,
            daemonsets,
            pods,
            nodes,
            revisions,
            expectations: Expectations::new(expectations_timeout),
            failed_backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(900)),
            recorder,
            resync,
        }
    }
}

/// Exponential backoff per key (client-go's `flowcontrol.Backoff`): after each step the delay
/// doubles up to a cap; a key left alone for twice the cap starts over.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl Backoff {
    /// A backoff from `initial` to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The time left before `key` may act again; None when it may act now.
    pub fn remaining(&self, key: &str, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().expect("backoff lock");
        let (delay, since) = entries.get(key)?;
        let elapsed = now.saturating_duration_since(*since);
        (elapsed < *delay).then(|| *delay - elapsed)
    }

    /// `key` acted at `now`: the next delay is double the last.
    pub fn step(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().expect("backoff lock");
        let entry = entries
            .entry(key.to_owned())
            .or_insert((Duration::ZERO, now));
        let stale = now.saturating_duration_since(entry.1) > 2 * self.max;
        entry.0 = if entry.0.is_zero() || stale {
            self.initial
        } else {
            (entry.0 * 2).min(self.max)
        };
        entry.1 = now;
    }
}

/// Runs the controller, triggered by DaemonSets, their pods, revisions and every node.
pub fn run(
    ctx: Arc<Context>,
    daemonsets: impl Stream<Item = Result<DaemonSet, watcher::Error>> + Send + 'static,
    pods: impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
    revisions: impl Stream<Item = Result<ControllerRevision, watcher::Error>> + Send + 'static,
    nodes: impl Stream<Item = Result<Node, watcher::Error>> + Send + 'static,
) -> impl Future<Output = ()> {
    let store = ctx.daemonsets.clone();
    let (for_pods, for_revisions, for_nodes) = (store.clone(), store.clone(), store.clone());
    let node_store = ctx.nodes.clone();
    let seen_nodes: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    Controller::for_stream(daemonsets, store)
        .watches_stream(pods, move |pod: Pod| owners_of(&for_pods, &pod.metadata))
        .watches_stream(revisions, move |r: ControllerRevision| {
            owners_of(&for_revisions, &r.metadata)
        })
        .watches_stream(nodes, move |node: Node| {
            if node_changed(&seen_nodes, &node_store, &node) {
                for_nodes
                    .state()
                    .iter()
                    .map(|ds| ObjectRef::from_obj(ds.as_ref()))
                    .collect()
            } else {
                Vec::new()
            }
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "daemonset reconcile");
            }
            futures::future::ready(())
        })
}

/// The DaemonSets an event of a pod or revision concerns.
fn owners_of(
    daemonsets: &Store<DaemonSet>,
    child: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Vec<ObjectRef<DaemonSet>> {
    owners_of_child(daemonsets, child, |ds| {
        ds.spec.as_ref().map(|s| &s.selector)
    })
}

/// Whether a node event can change where daemons run: the node is new or gone, or its
/// labels, taints or spec changed (a heartbeat alone does not; kube's `shouldIgnoreNodeUpdate`
/// in spirit). Remembers what it saw.
fn node_changed(seen: &Mutex<HashMap<String, String>>, store: &Store<Node>, node: &Node) -> bool {
    let name = node.name_any();
    let mut seen = seen.lock().expect("node fingerprints");
    if store.get(&ObjectRef::new(&name)).is_none() {
        seen.remove(&name);
        return true;
    }
    let fingerprint = serde_json::json!([node.metadata.labels, node.spec]).to_string();
    seen.insert(name, fingerprint.clone()) != Some(fingerprint)
}

fn error_policy(ds: Arc<DaemonSet>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::debug!(daemonset = %ds.name_any(), %error, "daemonset reconcile failed");
    match error {
        Error::Invalid { .. } => Action::requeue(ctx.resync),
        _ => Action::requeue(Duration::from_millis(500)),
    }
}

fn key_of(ds: &DaemonSet) -> String {
    format!("{}/{}", ds.namespace().unwrap_or_default(), ds.name_any())
}

/// One DaemonSet brought in line: its history, its pods, its rollout, its status.
pub async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Context>) -> Result<Action> {
    let key = key_of(&ds);
    let namespace = ds.namespace().unwrap_or_default();
    let selector = ds.spec.as_ref().map(|s| s.selector.clone());
    let matcher = LabelMatcher::new(selector.as_ref());
    if selector == Some(LabelSelector::default()) {
        ctx.recorder.record(
            ds.as_ref(),
            EventType::Warning,
            "SelectingAll",
            "This daemon set is selecting all pods. A non-empty selector is required.".into(),
        );
        return Ok(Action::await_change());
    }
    if !matcher.is_valid() {
        return Err(Error::invalid(
            format!("daemonset {key} selector"),
            "cannot be parsed",
        ));
    }
    // Whether the revisions and pods it owned still exist is unknown while it is deleted
    // (the garbage collector may be removing them in any order): kube leaves it alone.
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let in_namespace = |ns: Option<String>| ns.as_deref() == Some(namespace.as_str());
    let revisions: Vec<Arc<ControllerRevision>> = ctx
        .revisions
        .state()
        .into_iter()
        .filter(|r| in_namespace(r.namespace()))
        .collect();
    let revisions = claim(&ds, &matcher, revisions, &ctx).await?;
    let (current, old) = history::construct(&ds, revisions, &ctx).await?;
    let hash = current
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_HASH_LABEL))
        .cloned()
        .unwrap_or_default();
    let generation = history::template_generation(&ds);

    let satisfied = ctx.expectations.satisfied(&key, |name| {
        match ctx.pods.get(&ObjectRef::new(name).within(&namespace)) {
            None => Seen::Absent,
            Some(p) => Seen::Present {
                uid: p.uid().unwrap_or_default(),
                terminating: p.metadata.deletion_timestamp.is_some(),
            },
        }
    });
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| in_namespace(p.namespace()))
        // Finished pods already being deleted are gone as far as placement goes.
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                || !matches!(crate::pods::phase(p), "Succeeded" | "Failed")
        })
        .collect();
    let owned = claim(&ds, &matcher, pods, &ctx).await?;
    let mut nodes = ctx.nodes.state();
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let node_pods = by_node(&owned);
    let mut requeue = ctx.resync;

    let managed = if satisfied {
        let work = async {
            let (after, acted) = manage(&ds, &nodes, &node_pods, &hash, generation, &ctx).await?;
            requeue = requeue.min(after);
            // The rollout steps from a cache that shows the manage step's changes (kube
            // checks the expectations again here).
            if !acted && update::is_rolling_update(&ds) {
                rolling_update(&ds, &nodes, &node_pods, &hash, generation, &ctx).await?;
            }
            history::cleanup(&ds, old, &owned, &ctx).await
        };
        work.await
    } else {
        Ok(())
    };
    let now = Timestamp::now();
    let counts = status::count(&ds, &nodes, &node_pods, &hash, generation, now);
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let stored = status::store(&api, &ds, counts, satisfied).await;
    managed?;
    stored?;
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    // Pods turn available minReadySeconds after they turned ready, with no event to say so.
    if min_ready > 0 && counts.ready != counts.available {
        requeue = requeue.min(Duration::from_secs(min_ready as u64));
    }
    Ok(Action::requeue(requeue))
}

/// The pods by the node they are for (bound, or pinned by their affinity).
fn by_node(pods: &[Arc<Pod>]) -> BTreeMap<String, Vec<Arc<Pod>>> {
    let mut map: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    for pod in pods {
        if let Some(node) = target_node(pod) {
            map.entry(node).or_default().push(Arc::clone(pod));
        }
    }
    map
}

/// The children of kind `K` this DaemonSet controls after adopting orphans its selector
/// matches and releasing owned ones it no longer matches (kube's `ClaimPods` and
/// `ClaimControllerRevisions`).
async fn claim<K>(
    ds: &DaemonSet,
    selector: &LabelMatcher,
    candidates: Vec<Arc<K>>,
    ctx: &Context,
) -> Result<Vec<Arc<K>>>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let namespace = ds.namespace().unwrap_or_default();
    let uid = ds.uid().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut owned = Vec::new();
    let mut may_adopt: Option<bool> = None;
    for child in candidates {
        let meta = child.meta();
        let matches = selector.matches(meta.labels.as_ref());
        let child_uid = meta.uid.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        match controller_of(meta) {
            Some(owner) if owner.uid == uid => {
                if matches {
                    owned.push(child);
                } else {
                    let patch = Patch::Strategic(release_patch(&uid, &child_uid));
                    match api.patch(&name, &PatchParams::default(), &patch).await {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Some(_) => {}
            None => {
                if !matches || meta.deletion_timestamp.is_some() {
                    continue;
                }
                // Adopt only if the DaemonSet is still there and not being deleted, read past
                // the cache (kube's `RecheckDeletionTimestamp`).
                if may_adopt.is_none() {
                    let daemonsets: Api<DaemonSet> =
                        Api::namespaced(ctx.client.clone(), &namespace);
                    let fresh = daemonsets.get_opt(&ds.name_any()).await?;
                    may_adopt = Some(fresh.is_some_and(|f| {
                        f.uid().as_deref() == Some(uid.as_str())
                            && f.metadata.deletion_timestamp.is_none()
                    }));
                }
                if may_adopt != Some(true) {
                    continue;
                }
                let reference = controller_reference("apps/v1", "DaemonSet", &ds.metadata);
                let patch = Patch::Strategic(adopt_patch(&reference, &child_uid));
                match api.patch(&name, &PatchParams::default(), &patch).await {
                    Ok(adopted) => owned.push(Arc::new(adopted)),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(owned)
}

/// Per node, the pod to create or the pods to delete (kube's `manage` and
/// `podsShouldBeOnNode`). Returns how soon to look again (a failed pod in backoff) and
/// whether it created or deleted anything.
async fn manage(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    node_pods: &BTreeMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    generation: Option<i64>,
    ctx: &Context,
) -> Result<(Duration, bool)> {
    let surge = update::is_rolling_update(ds)
        && update::limits(ds, nodes.len()).is_ok_and(|(surge, _)| surge > 0);
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let now = Timestamp::now();
    let mut create_on: Vec<String> = Vec::new();
    let mut delete: Vec<Arc<Pod>> = Vec::new();
    let mut requeue = ctx.resync;
    let empty = Vec::new();
    for node in nodes {
        let node_name = node.name_any();
        let placement = node_should_run(ds, node);
        let pods = node_pods.get(&node_name).unwrap_or(&empty);
        if placement.should_run && pods.is_empty() {
            create_on.push(node_name);
            continue;
        }
        if !placement.should_continue_running {
            delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .cloned(),
            );
            continue;
        }
        let mut running: Vec<Arc<Pod>> = Vec::new();
        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            match crate::pods::phase(pod) {
                "Failed" => {
                    // A kubelet that keeps rejecting the pod must not make a hot loop.
                    let backoff_key = format!(
                        "{}/{}/{node_name}",
                        ds.uid().unwrap_or_default(),
                        ds.status
                            .as_ref()
                            .and_then(|s| s.observed_generation)
                            .unwrap_or(0)
                    );
                    let instant = Instant::now();
                    if let Some(wait) = ctx.failed_backoff.remaining(&backoff_key, instant) {
                        requeue = requeue.min(wait);
                        continue;
                    }
                    ctx.failed_backoff.step(&backoff_key, instant);
                    ctx.recorder.record(
                        ds,
                        EventType::Warning,
                        "FailedDaemonPod",
                        format!(
                            "Found failed daemon pod {}/{} on node {node_name}, will try to kill it",
                            pod.namespace().unwrap_or_default(),
                            pod.name_any()
                        ),
                    );
                    delete.push(Arc::clone(pod));
                }
                "Succeeded" => {
                    ctx.recorder.record(
                        ds,
                        EventType::Normal,
                        "SucceededDaemonPod",
                        format!(
                            "Found succeeded daemon pod {}/{} on node {node_name}, will try to delete it",
                            pod.namespace().unwrap_or_default(),
                            pod.name_any()
                        ),
                    );
                    delete.push(Arc::clone(pod));
                }
                _ => running.push(Arc::clone(pod)),
            }
        }
        status::sort_oldest_first(&mut running);
        if !surge {
            // One pod per node: the oldest stays.
            delete.extend(running.into_iter().skip(1));
            continue;
        }
        if running.is_empty() {
            if placement.should_run {
                create_on.push(node_name);
            }
            continue;
        }
        // Surging: keep the oldest new and the oldest old pod; the old one goes once the new
        // one is available, or at once if it is not ready itself.
        let (mut oldest_new, mut oldest_old) = (None, None);
        for pod in running {
            let slot = if history::is_pod_updated(&pod, hash, generation) {
                &mut oldest_new
            } else {
                &mut oldest_old
            };
            if slot.is_none() {
                *slot = Some(pod);
            } else {
                delete.push(pod);
            }
        }
        if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
            if !crate::pods::is_ready(&old) || crate::pods::is_available(&new, min_ready, now) {
                delete.push(old);
            }
        }
    }
    // Pods pinned to nodes that no longer exist never get scheduled, and the pod garbage
    // collector only collects bound pods: they are this controller's to delete.
    for (node, pods) in node_pods {
        if !nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(node))
        {
            delete.extend(
                pods.iter()
                    .filter(|p| {
                        p.spec
                            .as_ref()
                            .and_then(|s| s.node_name.as_deref())
                            .is_none_or(str::is_empty)
                            && p.metadata.deletion_timestamp.is_none()
                    })
                    .cloned(),
            );
        }
    }
    sync_nodes(ds, &delete, &create_on, hash, generation, ctx).await?;
    Ok((requeue, !delete.is_empty() || !create_on.is_empty()))
}

/// One RollingUpdate step: the old pods it deletes, the nodes it surges onto.
async fn rolling_update(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    node_pods: &BTreeMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    generation: Option<i64>,
    ctx: &Context,
) -> Result<()> {
    let eligible: HashMap<String, bool> = nodes
        .iter()
        .map(|n| (n.name_any(), node_should_run(ds, n).should_run))
        .collect();
    let mut candidates = node_pods.clone();
    for (name, should_run) in &eligible {
        if *should_run {
            candidates.entry(name.clone()).or_default();
        }
    }
    let desired = eligible.values().filter(|r| **r).count();
    let step = update::step(
        ds,
        &candidates,
        |node| eligible.get(node).copied().unwrap_or(false),
        desired,
        hash,
        generation,
        Timestamp::now(),
    )?;
    let delete: Vec<Arc<Pod>> = step
        .delete
        .iter()
        .filter_map(|name| {
            node_pods
                .values()
                .flatten()
                .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
                .cloned()
        })
        .collect();
    sync_nodes(ds, &delete, &step.create_on, hash, generation, ctx).await
}

/// Deletes `delete` and creates a pod on each of `create_on` in slow-start batches, each
/// recorded as an expectation first (kube's `syncNodes`).
async fn sync_nodes(
    ds: &DaemonSet,
    delete: &[Arc<Pod>],
    create_on: &[String],
    hash: &str,
    generation: Option<i64>,
    ctx: &Context,
) -> Result<()> {
    let key = key_of(ds);
    let namespace = ds.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let create_on = &create_on[..create_on.len().min(BURST_REPLICAS)];
    let delete = &delete[..delete.len().min(BURST_REPLICAS)];
    let template = pod_template(ds, hash, generation);
    let owner = controller_reference("apps/v1", "DaemonSet", &ds.metadata);
    let control = crate::pods::PodControl {
        api: &api,
        owner: ds,
        key: &key,
        expectations: &ctx.expectations,
        recorder: &ctx.recorder,
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (_, create_error) = slow_start(create_on.len(), SLOW_START_INITIAL_BATCH, || {
        let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let node = &create_on[index];
        let mut pod = crate::pods::from_template(&template, &namespace, &owner);
        if let Some(spec) = pod.spec.as_mut() {
            spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
        }
        let control = &control;
        async move { control.create_owned_pod(&pod).await.map(|_| ()) }
    })
    .await;
    let results =
        futures::future::join_all(delete.iter().map(|pod| control.delete_owned_pod(pod))).await;
    let failures: Vec<Error> = create_error
        .into_iter()
        .chain(results.into_iter().filter_map(Result::err))
        .collect();
    let count = failures.len();
    match failures.into_iter().next() {
        None => Ok(()),
        Some(first) => Err(Error::Pods {
            count,
            first: Box::new(first),
        }),
    }
}

/// The template every new daemon pod starts from: the DaemonSet's, with the daemon
/// tolerations and the revision hash and template generation labels (kube's
/// `CreatePodTemplate`).
fn pod_template(
    ds: &DaemonSet,
    hash: &str,
    generation: Option<i64>,
) -> k8s_openapi::api::core::v1::PodTemplateSpec {
    let mut template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    if let Some(spec) = template.spec.as_mut() {
        add_daemon_tolerations(spec);
    }
    let labels = template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    if let Some(generation) = generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.to_owned(), generation.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_HASH_LABEL.to_owned(), hash.to_owned());
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failed_pod_backoff_doubles_and_caps() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(4));
        let start = Instant::now();
        assert_eq!(backoff.remaining("k", start), None);
        backoff.step("k", start);
        assert_eq!(backoff.remaining("k", start), Some(Duration::from_secs(1)));
        let later = start + Duration::from_secs(1);
        assert_eq!(backoff.remaining("k", later), None);
        backoff.step("k", later);
        assert_eq!(backoff.remaining("k", later), Some(Duration::from_secs(2)));
        backoff.step("k", later);
        backoff.step("k", later);
        assert_eq!(backoff.remaining("k", later), Some(Duration::from_secs(4)));
        // Left alone past twice the cap: it starts over.
        let much_later = later + Duration::from_secs(9);
        backoff.step("k", much_later);
        assert_eq!(
            backoff.remaining("k", much_later),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn new_pods_carry_the_hash_generation_and_tolerations() {
        let ds: DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ds"},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        }))
        .unwrap();
        let template = pod_template(&ds, "abc", Some(2));
        let labels = template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels[REVISION_HASH_LABEL], "abc");
        assert_eq!(labels[TEMPLATE_GENERATION_LABEL], "2");
        assert_eq!(labels["app"], "d");
        assert_eq!(template.spec.unwrap().tolerations.unwrap().len(), 6);
    }
}
