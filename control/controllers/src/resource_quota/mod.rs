//! The resourcequota controller (kube-controller-manager's `resourcequota`): each
//! ResourceQuota's `status.hard` copied from `spec.hard`, and `status.used` recounted from
//! the objects themselves, so what admission charged is corrected and what was deleted is
//! given back.
//!
//! ```text
//!  quota added, spec changed ─┐
//!  pod deleted or finished ───┼─► reconcile(quota) ─► count pods (cache), Services (cache),
//!  Service deleted ───────────┤                        other objects (a list each)
//!  every `resync` ────────────┘                     ─► status {hard, used} if it changed
//! ```
//!
//! Status writes (admission's charges, this controller's counts) trigger nothing, as in
//! kube: a quota is counted when first seen, when its `spec.hard` changes, when something it
//! counts is released, and every `resync`.
//!
//! A resource named in `hard` that nothing here can count keeps the usage admission wrote,
//! as kube keeps the last observation. The status is written with the quota's
//! resourceVersion: when admission charged it meanwhile, the write conflicts and the count
//! is taken again.

pub mod quantity;
pub mod usage;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, ResourceQuotaStatus, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;

use crate::error::{Error, Result};
use quantity::Amount;
use usage::Usage;

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every ResourceQuota.
    pub quotas: Store<ResourceQuota>,
    /// Every pod.
    pub pods: Store<Pod>,
    /// Every Service.
    pub services: Store<Service>,
    /// How often every quota is recounted regardless of events (kube: 5 minutes).
    pub resync: Duration,
    /// Resources found by discovery, by group and plural.
    pub discovered: Mutex<HashMap<(String, String), ApiResource>>,
}

/// The streams that trigger a recount.
pub struct Triggers<Q, P, S> {
    /// Quotas added, changed or deleted.
    pub quotas: Q,
    /// Pods (only deleted, finished or terminating ones trigger).
    pub pods: P,
    /// Services (only deleted ones trigger).
    pub services: S,
}

/// Runs the controller.
pub fn run<Q, P, S>(ctx: Arc<Context>, triggers: Triggers<Q, P, S>) -> impl Future<Output = ()>
where
    Q: Stream<Item = Result<ResourceQuota, watcher::Error>> + Send + 'static,
    P: Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
    S: Stream<Item = Result<Service, watcher::Error>> + Send + 'static,
{
    let (for_pods, for_services) = (Arc::clone(&ctx), Arc::clone(&ctx));
    // As kube's controller: a quota is counted when first seen and when its spec.hard
    // changes, never for a status write (admission's charges and this controller's own
    // counts), which would recount from a pod cache that may not hold the pod just charged.
    let mut seen: HashMap<String, Option<BTreeMap<String, Quantity>>> = HashMap::new();
    let quotas = triggers.quotas.filter(move |event| {
        let counted = match event {
            Ok(quota) => {
                let hard = quota.spec.as_ref().and_then(|s| s.hard.clone());
                let uid = quota.uid().unwrap_or_default();
                seen.insert(uid, hard.clone()) != Some(hard)
            }
            Err(_) => true,
        };
        futures::future::ready(counted)
    });
    Controller::for_stream(quotas, ctx.quotas.clone())
        .watches_stream(triggers.pods, move |pod: Pod| {
            let gone = for_pods.pods.get(&ObjectRef::from_obj(&pod)).is_none();
            let finished = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|p| p == "Succeeded" || p == "Failed");
            let releases = gone || finished || pod.metadata.deletion_timestamp.is_some();
            quotas_of(
                &for_pods.quotas,
                releases.then(|| pod.namespace()).flatten(),
            )
        })
        .watches_stream(triggers.services, move |service: Service| {
            let gone = for_services
                .services
                .get(&ObjectRef::from_obj(&service))
                .is_none();
            quotas_of(
                &for_services.quotas,
                gone.then(|| service.namespace()).flatten(),
            )
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "resourcequota reconcile");
            }
            futures::future::ready(())
        })
}

/// The quotas of `namespace`, to recount.
fn quotas_of(
    quotas: &Store<ResourceQuota>,
    namespace: Option<String>,
) -> Vec<ObjectRef<ResourceQuota>> {
    let Some(namespace) = namespace else {
        return Vec::new();
    };
    quotas
        .state()
        .iter()
        .filter(|q| q.namespace().as_deref() == Some(namespace.as_str()))
        .map(|q| ObjectRef::from_obj(&**q))
        .collect()
}

fn error_policy(quota: Arc<ResourceQuota>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(quota = %quota.name_any(), %error, "resourcequota reconcile failed");
    Action::requeue(Duration::from_millis(200))
}

fn amounts(list: Option<&BTreeMap<String, Quantity>>) -> Usage {
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Amount::parse(&v.0)?)))
        .collect()
}

fn quantities(usage: &Usage) -> BTreeMap<String, Quantity> {
    usage
        .iter()
        .map(|(k, v)| (k.clone(), Quantity(v.canonical())))
        .collect()
}

/// Recounts one quota and writes its status when it changed.
pub async fn reconcile(quota: Arc<ResourceQuota>, ctx: Arc<Context>) -> Result<Action> {
    if quota.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = quota.namespace().unwrap_or_default();
    let hard = amounts(quota.spec.as_ref().and_then(|s| s.hard.as_ref()));
    let status = quota.status.as_ref();
    let old_hard = amounts(status.and_then(|s| s.hard.as_ref()));
    let old_used = amounts(status.and_then(|s| s.used.as_ref()));
    let counted = count(&quota, &namespace, &hard, &ctx).await?;
    // What nothing here counts keeps the last observation; names no longer limited go.
    let mut used: Usage = old_used
        .iter()
        .filter(|(k, _)| hard.contains_key(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    used.extend(counted);
    let hard_text = quantities(&hard);
    let hard_same = status.and_then(|s| s.hard.as_ref()).is_some() && old_hard == hard;
    if !hard_same || used != old_used {
        let mut next = (*quota).clone();
        next.metadata.managed_fields = None;
        next.status = Some(ResourceQuotaStatus {
            hard: Some(hard_text),
            used: Some(quantities(&used)),
        });
        let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &namespace);
        api.replace_status(&quota.name_any(), &PostParams::default(), &next)
            .await?;
    }
    Ok(Action::requeue(ctx.resync))
}

/// The usage of every resource in `hard` that pods, Services or an object count measure.
async fn count(
    quota: &ResourceQuota,
    namespace: &str,
    hard: &Usage,
    ctx: &Context,
) -> Result<Usage> {
    let mut used = Usage::new();
    let pod_names: Vec<&String> = hard.keys().filter(|k| usage::is_pod_resource(k)).collect();
    if !pod_names.is_empty() {
        for name in &pod_names {
            used.insert((*name).clone(), Amount::ZERO);
        }
        for pod in ctx.pods.state() {
            if pod.namespace().as_deref() != Some(namespace) || !usage::pod_in_scope(quota, &pod) {
                continue;
            }
            for (name, amount) in usage::pod_usage(&pod) {
                if let Some(total) = used.get_mut(&name) {
                    *total = total.plus(amount);
                }
            }
        }
    }
    // A scoped quota counts pods only.
    if usage::has_scopes(quota) {
        return Ok(used);
    }
    let service_names: Vec<&String> = hard
        .keys()
        .filter(|k| usage::is_service_resource(k))
        .collect();
    if !service_names.is_empty() {
        for name in &service_names {
            used.insert((*name).clone(), Amount::ZERO);
        }
        for service in ctx.services.state() {
            if service.namespace().as_deref() != Some(namespace) {
                continue;
            }
            for (name, amount) in usage::service_usage(&service) {
                if let Some(total) = used.get_mut(&name) {
                    *total = total.plus(amount);
                }
            }
        }
    }
    for name in hard.keys() {
        let Some((group, plural)) = usage::counted_resource(name) else {
            continue;
        };
        let Some(resource) = discover(ctx, &group, &plural).await else {
            continue;
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), namespace, &resource);
        let objects = api.list(&ListParams::default()).await?;
        used.insert(name.clone(), Amount::count(objects.items.len()));
    }
    Ok(used)
}

/// The served resource `plural` of `group`, from discovery (remembered once found).
async fn discover(ctx: &Context, group: &str, plural: &str) -> Option<ApiResource> {
    let key = (group.to_owned(), plural.to_owned());
    if let Some(found) = ctx
        .discovered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
    {
        return Some(found.clone());
    }
    let api_group = kube::discovery::oneshot::group(&ctx.client, group)
        .await
        .ok()?;
    let (resource, _) = api_group
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.plural == plural)?;
    ctx.discovered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, resource.clone());
    Some(resource)
}
