//! The Deployment controller: rolls a Deployment's pod template out through one ReplicaSet
//! per template, as kube-controller-manager's `pkg/controller/deployment`.
//!
//! A reconcile claims the Deployment's ReplicaSets (adopting orphans its selector matches,
//! releasing those it no longer matches), then: a Deployment being deleted only gets its
//! status; a paused one or one whose replica count changed is scaled proportionally; else
//! its strategy runs one step — RollingUpdate within maxSurge/maxUnavailable, or Recreate —
//! and the status and conditions follow. ReplicaSet events (their status moves as their
//! pods come up) trigger the owning Deployment, so each step's outcome drives the next.
//! `kubectl rollout undo` patches the template back; the controller simply follows the
//! template to the old ReplicaSet, which gets the next revision.
//!
//! # Layout
//! - `hash`: the pod-template hash and template equality.
//! - `sync`: the new ReplicaSet and revisions, scaling with events, proportional scaling,
//!   history cleanup.
//! - `rolling`: the RollingUpdate and Recreate strategies and the maxSurge arithmetic.
//! - `status`: status, the Available and Progressing conditions, the progress deadline.

pub mod hash;
pub mod rolling;
pub mod status;
pub mod sync;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;

use crate::error::{is_not_found, Error, Result};
use crate::events::{EventType, Recorder};
use crate::labels::LabelMatcher;
use crate::ownership::{
    adopt_patch, controller_of, controller_reference, owners_of_child, release_patch,
};
use sync::Rollout;

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every Deployment.
    pub deployments: Store<Deployment>,
    /// Every ReplicaSet, from the informer the ReplicaSet controller shares.
    pub replicasets: Store<ReplicaSet>,
    /// Every pod (Recreate waits for the old ones to be gone).
    pub pods: Store<Pod>,
    /// Events about Deployments (`deployment-controller`).
    pub recorder: Recorder,
    /// The safety-net requeue.
    pub resync: Duration,
}

/// Runs the controller: triggered by `deployments` and by `replicasets` (their children).
pub fn run(
    ctx: Arc<Context>,
    deployments: impl Stream<Item = Result<Deployment, watcher::Error>> + Send + 'static,
    replicasets: impl Stream<Item = Result<ReplicaSet, watcher::Error>> + Send + 'static,
) -> impl Future<Output = ()> {
    let store = ctx.deployments.clone();
    let owners = store.clone();
    Controller::for_stream(deployments, store)
        .watches_stream(replicasets, move |rs: ReplicaSet| owners_of(&owners, &rs))
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "deployment reconcile");
            }
            futures::future::ready(())
        })
}

/// The Deployments a ReplicaSet event concerns: its controller if that is a Deployment, else
/// (an orphan) every Deployment of its namespace whose selector matches it.
pub fn owners_of(deployments: &Store<Deployment>, rs: &ReplicaSet) -> Vec<ObjectRef<Deployment>> {
    owners_of_child(deployments, &rs.metadata, |d| {
        d.spec.as_ref().map(|s| &s.selector)
    })
}

/// After a failure: try again soon (a conflict means the cache was stale), or at the resync
/// for a spec that cannot work.
pub fn error_policy(d: Arc<Deployment>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::debug!(deployment = %d.name_any(), %error, "deployment reconcile failed");
    match error {
        Error::Invalid { .. } => Action::requeue(ctx.resync),
        _ => Action::requeue(Duration::from_millis(500)),
    }
}

/// One step of a Deployment's rollout, and its status.
pub async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action> {
    let d = (*d).clone();
    let selector = d
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let matcher = LabelMatcher::new(Some(&selector));
    if !matcher.is_valid() {
        return Err(Error::invalid(
            format!("deployment {} selector", d.name_any()),
            "cannot be parsed",
        ));
    }
    let mut rollout = Rollout::new(&ctx, d);
    if selector == LabelSelector::default() || matcher.selects_all() {
        rollout.record(
            EventType::Warning,
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.".into(),
        );
        let generation = rollout.d.metadata.generation;
        let status = rollout.d.status.get_or_insert_with(Default::default);
        if status.observed_generation < generation {
            status.observed_generation = generation;
            rollout.write_status().await?;
        }
        return Ok(Action::await_change());
    }
    let rs_list = claim_replica_sets(&rollout.d, &matcher, &ctx).await?;

    if rollout.d.metadata.deletion_timestamp.is_some() {
        rollout.status_only(&rs_list).await?;
        return Ok(Action::await_change());
    }
    rollout.check_paused_conditions().await?;
    let paused = rollout.d.spec.as_ref().and_then(|s| s.paused) == Some(true);
    if paused {
        rollout.sync(&rs_list).await?;
    } else {
        let (new_rs, old) = rollout
            .all_replica_sets_and_sync_revision(&rs_list, false)
            .await?;
        // The new ReplicaSet as just written (its revision raised), so the strategy below
        // does not write it again from the stale cached copy.
        let rs_list: Vec<ReplicaSet> = old.iter().cloned().chain(new_rs.clone()).collect();
        if rollout.is_scaling_event(new_rs.as_ref(), &old) {
            rollout.sync(&rs_list).await?;
        } else if rolling::is_rolling_update(&rollout.d) {
            rollout.rollout_rolling(&rs_list).await?;
        } else {
            let pod_map = pods_by_replica_set(&rs_list, &ctx);
            rollout.rollout_recreate(&rs_list, &pod_map).await?;
        }
    }
    let after = rollout.requeue.map_or(ctx.resync, |r| r.min(ctx.resync));
    Ok(Action::requeue(after))
}

/// The ReplicaSets this Deployment controls after adoption and release (kube's
/// `ClaimReplicaSets`).
async fn claim_replica_sets(
    d: &Deployment,
    selector: &LabelMatcher,
    ctx: &Context,
) -> Result<Vec<ReplicaSet>> {
    let namespace = d.namespace().unwrap_or_default();
    let uid = d.uid().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut owned = Vec::new();
    let mut may_adopt: Option<bool> = None;
    for rs in ctx.replicasets.state() {
        if rs.namespace().as_deref() != Some(namespace.as_str()) {
            continue;
        }
        let matches = selector.matches(rs.metadata.labels.as_ref());
        let rs_uid = rs.uid().unwrap_or_default();
        match controller_of(&rs.metadata) {
            Some(owner) if owner.uid == uid => {
                if matches {
                    owned.push((*rs).clone());
                } else if d.metadata.deletion_timestamp.is_none() {
                    let patch = Patch::Strategic(release_patch(&uid, &rs_uid));
                    match api
                        .patch(&rs.name_any(), &PatchParams::default(), &patch)
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
                    || rs.metadata.deletion_timestamp.is_some()
                    || d.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                if may_adopt.is_none() {
                    let deployments: Api<Deployment> =
                        Api::namespaced(ctx.client.clone(), &namespace);
                    let fresh = deployments.get_opt(&d.name_any()).await?;
                    may_adopt = Some(fresh.is_some_and(|f| {
                        f.uid().as_deref() == Some(uid.as_str())
                            && f.metadata.deletion_timestamp.is_none()
                    }));
                }
                if may_adopt != Some(true) {
                    continue;
                }
                let reference = controller_reference("apps/v1", "Deployment", &d.metadata);
                let patch = Patch::Strategic(adopt_patch(&reference, &rs_uid));
                match api
                    .patch(&rs.name_any(), &PatchParams::default(), &patch)
                    .await
                {
                    Ok(adopted) => owned.push(adopted),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(owned)
}

/// The cached pods of each ReplicaSet, by ReplicaSet uid.
fn pods_by_replica_set(rs_list: &[ReplicaSet], ctx: &Context) -> Vec<(String, Vec<Pod>)> {
    let mut map: Vec<(String, Vec<Pod>)> = rs_list
        .iter()
        .filter_map(|rs| rs.uid())
        .map(|uid| (uid, Vec::new()))
        .collect();
    for pod in ctx.pods.state() {
        let Some(owner) = controller_of(&pod.metadata) else {
            continue;
        };
        if let Some((_, pods)) = map.iter_mut().find(|(uid, _)| *uid == owner.uid) {
            pods.push((*pod).clone());
        }
    }
    map
}
