//! The garbage collector: deletes what its owners left behind and carries out the
//! `Orphan` and `Foreground` propagation policies, as kube-controller-manager's
//! `pkg/controller/garbagecollector` does, for the kinds this controller manager watches
//! (Deployments, ReplicaSets and Pods).
//!
//! - **Background** (kubectl's default): an object whose ownerReferences all point to
//!   objects that no longer exist (no object of that kind, namespace and name with that uid)
//!   is deleted, with propagation `Background` and its uid as a precondition. The informer
//!   caches only pick the candidates: every owner is looked up again with a live GET before
//!   anything is deleted (an owner created a moment ago may not be cached yet). Owners of
//!   kinds the caches do not hold are looked up through the dynamic API (their resource found
//!   by discovery, then remembered).
//! - **Orphan**: an owner being deleted with the `orphan` finalizer has its reference removed
//!   from each dependent (the strategic merge patch kube sends), then loses the finalizer, so
//!   the API server deletes it.
//! - **Foreground**: an owner being deleted with the `foregroundDeletion` finalizer has its
//!   blocking dependents (`blockOwnerDeletion: true`) deleted, with `Foreground` propagation
//!   themselves (so a Deployment's pods go before its ReplicaSets), and loses the finalizer
//!   once none is left. Dependents that do not block go afterwards, as dangling ones.
//!
//! Triggers: each kind's own events; an owner's deletion (a Job's too) (or deletionTimestamp) triggers its
//! cached dependents; a dependent's event triggers its owner if that owner is being deleted
//! (so a foreground deletion finishes as soon as its last dependent goes). Every object with
//! owners is looked at again at the resync, which catches owners of unwatched kinds.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
    PropagationPolicy,
};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt as _};
use serde::de::DeserializeOwned;

use crate::error::{is_conflict, is_not_found, Error, Result};
use crate::ownership::release_patch;

/// The finalizer the API server adds for `propagationPolicy: Orphan`.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer the API server adds for `propagationPolicy: Foreground`.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// A kind the garbage collector watches (and so finds in a cache).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// v1 Pod.
    Pod,
}

impl Kind {
    /// The watched kind an owner reference points to, if it is one (group and kind match;
    /// the version does not matter, as in kube).
    pub fn of_reference(reference: &OwnerReference) -> Option<Kind> {
        let group = reference
            .api_version
            .split_once('/')
            .map_or("", |(group, _)| group);
        match (group, reference.kind.as_str()) {
            ("apps", "Deployment") => Some(Kind::Deployment),
            ("apps", "ReplicaSet") => Some(Kind::ReplicaSet),
            ("", "Pod") => Some(Kind::Pod),
            _ => None,
        }
    }

    /// The watched kind of the Rust type `K`.
    fn of<K: Resource<DynamicType = ()>>() -> Kind {
        match K::kind(&()).as_ref() {
            "Deployment" => Kind::Deployment,
            "ReplicaSet" => Kind::ReplicaSet,
            _ => Kind::Pod,
        }
    }

    fn api_resource(self) -> ApiResource {
        match self {
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::ReplicaSet => ApiResource::erase::<ReplicaSet>(&()),
            Kind::Pod => ApiResource::erase::<Pod>(&()),
        }
    }
}

/// Whether an owner exists, as far as one source (a cache, or the API) tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// An object of the reference's kind, namespace, name and uid exists.
    Present,
    /// No such object exists (none by that name, or one with another uid).
    Absent,
    /// This source cannot tell (a kind it does not hold).
    Unknown,
}

/// What to do with a dependent, given what is known of its owners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No owners, or some owner exists: leave it.
    Keep,
    /// No owner is known to exist, but some cannot be told: ask the API.
    Confirm,
    /// Every owner is gone: the object is garbage.
    Dangling,
}

/// The pure decision: an object with owner `references` is garbage when every owner is
/// absent; any present owner keeps it.
pub fn judge(
    references: &[OwnerReference],
    state: impl Fn(&OwnerReference) -> OwnerState,
) -> Verdict {
    if references.is_empty() {
        return Verdict::Keep;
    }
    let mut unknown = false;
    for reference in references {
        match state(reference) {
            OwnerState::Present => return Verdict::Keep,
            OwnerState::Unknown => unknown = true,
            OwnerState::Absent => {}
        }
    }
    if unknown {
        Verdict::Confirm
    } else {
        Verdict::Dangling
    }
}

/// Whether `meta` holds `finalizer`.
fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every pod.
    pub pods: Store<Pod>,
    /// Every ReplicaSet.
    pub replicasets: Store<ReplicaSet>,
    /// Every Deployment.
    pub deployments: Store<Deployment>,
    /// How soon an owner waiting for its dependents, or a failed reconcile, is looked at
    /// again.
    pub recheck: Duration,
    /// The safety-net requeue of every object with owners.
    pub resync: Duration,
    /// Resources of unwatched owner kinds found by discovery, by `apiVersion/kind`, with
    /// whether they are namespaced.
    resources: Mutex<HashMap<String, (ApiResource, bool)>>,
}

impl Context {
    /// A context over the informers' caches.
    pub fn new(
        client: kube::Client,
        pods: Store<Pod>,
        replicasets: Store<ReplicaSet>,
        deployments: Store<Deployment>,
        recheck: Duration,
        resync: Duration,
    ) -> Context {
        Context {
            client,
            pods,
            replicasets,
            deployments,
            recheck,
            resync,
            resources: Mutex::new(HashMap::new()),
        }
    }

    fn api(&self, kind: Kind, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &kind.api_resource())
    }

    /// The uid of a watched object, as cached.
    fn cached_uid(&self, kind: Kind, namespace: &str, name: &str) -> Option<String> {
        match kind {
            Kind::Deployment => cached_uid(&self.deployments, namespace, name),
            Kind::ReplicaSet => cached_uid(&self.replicasets, namespace, name),
            Kind::Pod => cached_uid(&self.pods, namespace, name),
        }
    }

    /// What the caches say of an owner of an object in `namespace`.
    fn cached_owner(&self, namespace: &str, reference: &OwnerReference) -> OwnerState {
        let Some(kind) = Kind::of_reference(reference) else {
            return OwnerState::Unknown;
        };
        match self.cached_uid(kind, namespace, &reference.name) {
            Some(uid) if uid == reference.uid => OwnerState::Present,
            _ => OwnerState::Absent,
        }
    }

    /// What the API says of an owner of an object in `namespace`, read now.
    async fn live_owner(&self, namespace: &str, reference: &OwnerReference) -> Result<OwnerState> {
        let api = match Kind::of_reference(reference) {
            Some(kind) => self.api(kind, namespace),
            None => {
                let (resource, namespaced) = self.resource_of(reference).await?;
                if namespaced {
                    Api::namespaced_with(self.client.clone(), namespace, &resource)
                } else {
                    Api::all_with(self.client.clone(), &resource)
                }
            }
        };
        Ok(match api.get_opt(&reference.name).await? {
            Some(owner) if owner.metadata.uid.as_deref() == Some(reference.uid.as_str()) => {
                OwnerState::Present
            }
            _ => OwnerState::Absent,
        })
    }

    /// The resource serving an unwatched owner kind, by discovery (remembered).
    async fn resource_of(&self, reference: &OwnerReference) -> Result<(ApiResource, bool)> {
        let key = format!("{}/{}", reference.api_version, reference.kind);
        if let Some(found) = self.resources.lock().expect("poisoned").get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = reference
            .api_version
            .split_once('/')
            .unwrap_or(("", reference.api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, &reference.kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, &gvk).await?;
        let found = (resource, capabilities.scope == Scope::Namespaced);
        self.resources
            .lock()
            .expect("poisoned")
            .insert(key, found.clone());
        Ok(found)
    }

    /// The cached objects of `namespace` with a reference to the owner with `uid`, and that
    /// reference.
    fn dependents(&self, namespace: &str, uid: &str) -> Vec<(Kind, ObjectMeta, OwnerReference)> {
        let mut found = Vec::new();
        collect_dependents(
            &self.deployments,
            Kind::Deployment,
            namespace,
            uid,
            &mut found,
        );
        collect_dependents(
            &self.replicasets,
            Kind::ReplicaSet,
            namespace,
            uid,
            &mut found,
        );
        collect_dependents(&self.pods, Kind::Pod, namespace, uid, &mut found);
        found
    }
}

/// Only the uid: every pod event asks this of its owner, and a whole `ObjectMeta` clone
/// per event was a measurable share of the controller manager's CPU.
fn cached_uid<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<String>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .get(&ObjectRef::new(name).within(namespace))
        .and_then(|o| o.meta().uid.clone())
}

fn reference_to<'a>(meta: &'a ObjectMeta, uid: &str) -> Option<&'a OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.uid == uid)
}

fn collect_dependents<K>(
    store: &Store<K>,
    kind: Kind,
    namespace: &str,
    uid: &str,
    found: &mut Vec<(Kind, ObjectMeta, OwnerReference)>,
) where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    for object in store.state() {
        let meta = object.meta();
        if meta.namespace.as_deref() != Some(namespace) {
            continue;
        }
        if let Some(reference) = reference_to(meta, uid) {
            found.push((kind, meta.clone(), reference.clone()));
        }
    }
}

/// The watch streams that trigger the garbage collector (one subscription each).
pub struct Triggers<P, R, D, J> {
    /// Pods, to collect them.
    pub pods: P,
    /// Pods, to finish their owning ReplicaSets' foreground deletions.
    pub pods_for_replicasets: P,
    /// ReplicaSets, to collect them.
    pub replicasets: R,
    /// ReplicaSets, whose deletion triggers their pods.
    pub replicasets_for_pods: R,
    /// ReplicaSets, to finish their owning Deployments' foreground deletions.
    pub replicasets_for_deployments: R,
    /// Deployments, to collect them.
    pub deployments: D,
    /// Deployments, whose deletion triggers their ReplicaSets.
    pub deployments_for_replicasets: D,
    /// Deployments, whose deletion triggers pods they own directly.
    pub deployments_for_pods: D,
    /// Jobs, whose deletion triggers their pods (Jobs are not collected here: their owners,
    /// CronJobs, are looked up through discovery at the resync).
    pub jobs_for_pods: J,
    /// The Jobs' cache, to tell a Job deleted from one still there.
    pub jobs: Store<Job>,
}

/// Runs the garbage collector: one controller per watched kind, each triggered by its own
/// objects, by its owners' deletions and by its dependents' changes.
pub fn run<P, R, D, J>(
    ctx: Arc<Context>,
    triggers: Triggers<P, R, D, J>,
) -> impl Future<Output = ()>
where
    P: Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
    R: Stream<Item = Result<ReplicaSet, watcher::Error>> + Send + 'static,
    D: Stream<Item = Result<Deployment, watcher::Error>> + Send + 'static,
    J: Stream<Item = Result<Job, watcher::Error>> + Send + 'static,
{
    let Triggers {
        pods: pods_own,
        pods_for_replicasets,
        replicasets: replicasets_own,
        replicasets_for_pods,
        replicasets_for_deployments,
        deployments: deployments_own,
        deployments_for_replicasets,
        deployments_for_pods,
        jobs_for_pods,
        jobs,
    } = triggers;
    let pods = Controller::for_stream(pods_own, ctx.pods.clone())
        .watches_stream(
            replicasets_for_pods,
            dependents_mapper(ctx.replicasets.clone(), ctx.pods.clone()),
        )
        .watches_stream(
            deployments_for_pods,
            dependents_mapper(ctx.deployments.clone(), ctx.pods.clone()),
        )
        .watches_stream(jobs_for_pods, dependents_mapper(jobs, ctx.pods.clone()))
        .run(reconcile::<Pod>, error_policy::<Pod>, Arc::clone(&ctx))
        .for_each(log_result);
    let replicasets = Controller::for_stream(replicasets_own, ctx.replicasets.clone())
        .watches_stream(
            deployments_for_replicasets,
            dependents_mapper(ctx.deployments.clone(), ctx.replicasets.clone()),
        )
        .watches_stream(
            pods_for_replicasets,
            owners_mapper::<Pod, ReplicaSet>(ctx.replicasets.clone()),
        )
        .run(
            reconcile::<ReplicaSet>,
            error_policy::<ReplicaSet>,
            Arc::clone(&ctx),
        )
        .for_each(log_result);
    let deployments = Controller::for_stream(deployments_own, ctx.deployments.clone())
        .watches_stream(
            replicasets_for_deployments,
            owners_mapper::<ReplicaSet, Deployment>(ctx.deployments.clone()),
        )
        .run(
            reconcile::<Deployment>,
            error_policy::<Deployment>,
            Arc::clone(&ctx),
        )
        .for_each(log_result);
    async move {
        futures::join!(pods, replicasets, deployments);
    }
}

fn log_result<T, E: std::fmt::Display>(result: Result<T, E>) -> futures::future::Ready<()> {
    if let Err(e) = result {
        tracing::debug!(error = %e, "garbage collector reconcile");
    }
    futures::future::ready(())
}

/// An owner's event → its cached dependents of kind `D`, when the owner is gone (no longer
/// cached with that uid: the informer applies an event to its cache before passing it on);
/// nothing otherwise.
fn dependents_mapper<O, D>(
    owners: Store<O>,
    dependents: Store<D>,
) -> impl Fn(O) -> Vec<ObjectRef<D>> + Send + Sync + 'static
where
    O: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    D: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    move |owner: O| {
        let uid = owner.uid().unwrap_or_default();
        let still_there = owners
            .get(&ObjectRef::from_obj(&owner))
            .is_some_and(|cached| cached.uid().as_deref() == Some(uid.as_str()));
        if still_there {
            return Vec::new();
        }
        let namespace = owner.namespace();
        dependents
            .state()
            .iter()
            .filter(|d| d.namespace() == namespace && reference_to(d.meta(), &uid).is_some())
            .map(|d| ObjectRef::from_obj(d.as_ref()))
            .collect()
    }
}

/// A dependent's event → its owners of kind `O` that are being deleted (a foreground
/// deletion may be waiting for this dependent to go).
fn owners_mapper<D, O>(owners: Store<O>) -> impl Fn(D) -> Vec<ObjectRef<O>> + Send + Sync + 'static
where
    D: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    O: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    move |dependent: D| {
        let namespace = dependent.namespace().unwrap_or_default();
        dependent
            .owner_references()
            .iter()
            .filter(|r| r.kind == O::kind(&()) && r.api_version == O::api_version(&()))
            .map(|r| ObjectRef::new(&r.name).within(&namespace))
            .filter(|key| {
                owners
                    .get(key)
                    .is_some_and(|o| o.meta().deletion_timestamp.is_some())
            })
            .collect()
    }
}

/// After a failure: look again shortly.
pub fn error_policy<K>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    tracing::debug!(kind = %K::kind(&()), name = ?object.meta().name, %error,
        "garbage collection failed");
    Action::requeue(ctx.recheck)
}

/// Collects one object: finishes its own orphan or foreground deletion, or deletes it if
/// every owner is gone.
pub async fn reconcile<K>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let kind = Kind::of::<K>();
    let meta = object.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    if meta.deletion_timestamp.is_some() {
        if has_finalizer(meta, ORPHAN_FINALIZER) {
            orphan_dependents(meta, &ctx).await?;
            remove_finalizer(kind, meta, ORPHAN_FINALIZER, &ctx).await?;
        } else if has_finalizer(meta, FOREGROUND_FINALIZER) {
            if delete_blocking_dependents(meta, &ctx).await? > 0 {
                return Ok(Action::requeue(ctx.recheck));
            }
            remove_finalizer(kind, meta, FOREGROUND_FINALIZER, &ctx).await?;
        }
        // Already being deleted otherwise: nothing to collect.
        return Ok(Action::await_change());
    }
    let references = meta.owner_references.as_deref().unwrap_or_default();
    if references.is_empty() {
        return Ok(Action::await_change());
    }
    if judge(references, |r| ctx.cached_owner(&namespace, r)) == Verdict::Keep {
        return Ok(Action::requeue(ctx.resync));
    }
    // The caches may lag behind a just-created owner: ask the API before deleting.
    let mut live = Vec::with_capacity(references.len());
    for reference in references {
        let state = ctx.live_owner(&namespace, reference).await?;
        live.push((reference.uid.clone(), state));
        if state == OwnerState::Present {
            break;
        }
    }
    let dangling = judge(references, |r| {
        live.iter()
            .find(|(uid, _)| *uid == r.uid)
            .map_or(OwnerState::Unknown, |(_, state)| *state)
    }) == Verdict::Dangling;
    if dangling {
        let name = meta.name.clone().unwrap_or_default();
        let uid = meta.uid.clone().unwrap_or_default();
        tracing::info!(kind = ?kind, %namespace, %name, "deleting an object whose owners are gone");
        delete(
            kind,
            &namespace,
            &name,
            &uid,
            PropagationPolicy::Background,
            &ctx,
        )
        .await?;
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(ctx.resync))
}

/// Deletes one object with `policy`, only if it still has `uid`; gone already is fine.
async fn delete(
    kind: Kind,
    namespace: &str,
    name: &str,
    uid: &str,
    policy: PropagationPolicy,
    ctx: &Context,
) -> Result<()> {
    let params = DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match ctx.api(kind, namespace).delete(name, &params).await {
        Ok(_) => Ok(()),
        // Gone, or replaced by a namesake (the uid precondition failed).
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the reference to the owner `meta` from each cached dependent.
async fn orphan_dependents(meta: &ObjectMeta, ctx: &Context) -> Result<()> {
    let namespace = meta.namespace.clone().unwrap_or_default();
    let uid = meta.uid.clone().unwrap_or_default();
    for (kind, dependent, _) in ctx.dependents(&namespace, &uid) {
        let name = dependent.name.clone().unwrap_or_default();
        let patch = Patch::Strategic(release_patch(
            &uid,
            dependent.uid.as_deref().unwrap_or_default(),
        ));
        match ctx
            .api(kind, &namespace)
            .patch(&name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Deletes (in the foreground) the cached dependents that block the owner `meta`'s deletion
/// and are not being deleted yet. Returns how many blocking dependents remain.
async fn delete_blocking_dependents(meta: &ObjectMeta, ctx: &Context) -> Result<usize> {
    let namespace = meta.namespace.clone().unwrap_or_default();
    let uid = meta.uid.clone().unwrap_or_default();
    let blocking: Vec<_> = ctx
        .dependents(&namespace, &uid)
        .into_iter()
        .filter(|(_, _, reference)| reference.block_owner_deletion == Some(true))
        .collect();
    for (kind, dependent, _) in &blocking {
        if dependent.deletion_timestamp.is_some() {
            continue;
        }
        delete(
            *kind,
            &namespace,
            dependent.name.as_deref().unwrap_or_default(),
            dependent.uid.as_deref().unwrap_or_default(),
            PropagationPolicy::Foreground,
            ctx,
        )
        .await?;
    }
    Ok(blocking.len())
}

/// Removes `finalizer` from the object `meta` describes, read afresh and written back over
/// its resourceVersion (a conflict fails the reconcile, which retries).
async fn remove_finalizer(
    kind: Kind,
    meta: &ObjectMeta,
    finalizer: &str,
    ctx: &Context,
) -> Result<()> {
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let api = ctx.api(kind, &namespace);
    let Some(mut fresh) = api.get_opt(&name).await? else {
        return Ok(());
    };
    if fresh.metadata.uid != meta.uid || !has_finalizer(&fresh.metadata, finalizer) {
        return Ok(());
    }
    if let Some(finalizers) = fresh.metadata.finalizers.as_mut() {
        finalizers.retain(|f| f != finalizer);
    }
    match api.replace(&name, &PostParams::default(), &fresh).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn an_object_without_owners_is_kept() {
        assert_eq!(judge(&[], |_| OwnerState::Absent), Verdict::Keep);
    }

    #[test]
    fn every_owner_absent_is_dangling() {
        let refs = [
            reference("apps/v1", "Deployment", "web", "d1"),
            reference("apps/v1", "ReplicaSet", "web-1", "r1"),
        ];
        assert_eq!(judge(&refs, |_| OwnerState::Absent), Verdict::Dangling);
    }

    #[test]
    fn one_owner_present_keeps_the_object() {
        let refs = [
            reference("apps/v1", "Deployment", "web", "d1"),
            reference("v1", "ConfigMap", "cfg", "c1"),
        ];
        let present_configmap = |r: &OwnerReference| {
            if r.uid == "c1" {
                OwnerState::Present
            } else {
                OwnerState::Absent
            }
        };
        assert_eq!(judge(&refs, present_configmap), Verdict::Keep);
    }

    #[test]
    fn an_owner_the_cache_cannot_tell_is_confirmed() {
        let refs = [
            reference("apps/v1", "ReplicaSet", "web-1", "r1"),
            reference("batch/v1", "Job", "j", "j1"),
        ];
        let cache = |r: &OwnerReference| match Kind::of_reference(r) {
            Some(_) => OwnerState::Absent,
            None => OwnerState::Unknown,
        };
        assert_eq!(judge(&refs, cache), Verdict::Confirm);
    }

    #[test]
    fn references_map_to_watched_kinds_by_group_and_kind() {
        let kind = |v: &str, k: &str| Kind::of_reference(&reference(v, k, "n", "u"));
        assert_eq!(kind("apps/v1", "Deployment"), Some(Kind::Deployment));
        assert_eq!(kind("apps/v1beta2", "ReplicaSet"), Some(Kind::ReplicaSet));
        assert_eq!(kind("v1", "Pod"), Some(Kind::Pod));
        assert_eq!(kind("extensions/v1beta1", "Deployment"), None);
        assert_eq!(kind("batch/v1", "Job"), None);
    }
}
