//! The Namespace controller: empties a namespace being deleted, then lets it go, as
//! kube-controller-manager's `pkg/controller/namespace`.
//!
//! For a namespace with a deletionTimestamp and the `kubernetes` finalizer: discover every
//! namespaced resource the API server serves (through discovery, so custom resources are
//! covered once they are served), delete every object of each in the namespace, and look
//! again until none is left; meanwhile the namespace's status conditions say what remains,
//! with kube's reasons and messages. When it is empty, remove `kubernetes` from
//! `spec.finalizers` with `PUT namespaces/NAME/finalize`; the API server then deletes the
//! namespace. An API server that does not serve `finalize` gets the same change through the
//! namespace itself, and the controller logs that it fell back.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;

use crate::error::{is_not_found, status_code, Error, Result};

/// The finalizer this controller owns on `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// How soon to look again at a namespace whose content is still going.
    pub recheck: Duration,
    /// Set once the API server answered that it does not serve `namespaces/finalize`.
    pub finalize_unserved: AtomicBool,
}

/// Runs the controller over every namespace.
pub fn run(ctx: Arc<Context>) -> impl Future<Output = ()> {
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    Controller::new(namespaces, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "namespace reconcile");
            }
            futures::future::ready(())
        })
}

/// After a failure: look again shortly.
pub fn error_policy(ns: Arc<Namespace>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::debug!(namespace = %ns.name_any(), %error, "namespace reconcile failed");
    Action::requeue(ctx.recheck)
}

/// What one pass over a namespace's content found.
#[derive(Debug, Default)]
struct Sweep {
    /// Discovery failed for some groups (message).
    discovery_failure: Option<String>,
    /// Delete calls that failed.
    delete_failures: Vec<String>,
    /// `resource.group` to the number of objects still there.
    remaining: BTreeMap<String, usize>,
    /// Finalizer to the number of remaining objects holding it.
    finalizers: BTreeMap<String, usize>,
}

/// Empties a terminating namespace, then finalizes it.
pub async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let sweep = delete_content(&ctx.client, &name).await;
    update_conditions(&ctx.client, &ns, &sweep).await?;
    if sweep.discovery_failure.is_some()
        || !sweep.delete_failures.is_empty()
        || !sweep.remaining.is_empty()
    {
        tracing::debug!(namespace = %name, remaining = ?sweep.remaining, "namespace content remains");
        return Ok(Action::requeue(ctx.recheck));
    }
    finalize(&ctx, &ns, finalizers).await?;
    Ok(Action::await_change())
}

/// Deletes every object of every namespaced resource in `namespace`, then counts what is
/// left (objects held by finalizers or a grace period).
async fn delete_content(client: &kube::Client, namespace: &str) -> Sweep {
    let mut sweep = Sweep::default();
    let discovery = match Discovery::new(client.clone()).run().await {
        Ok(discovery) => discovery,
        Err(e) => {
            sweep.discovery_failure = Some(format!("Discovery failed for some groups: {e}"));
            return sweep;
        }
    };
    for group in discovery.groups() {
        for (resource, capabilities) in group.recommended_resources() {
            if capabilities.scope != Scope::Namespaced
                || !capabilities.supports_operation(verbs::LIST)
                || !capabilities.supports_operation(verbs::DELETE)
            {
                continue;
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), namespace, &resource);
            let group_resource = if resource.group.is_empty() {
                resource.plural.clone()
            } else {
                format!("{}.{}", resource.plural, resource.group)
            };
            let objects = match api.list(&ListParams::default()).await {
                Ok(list) => list.items,
                Err(e) => {
                    sweep.delete_failures.push(format!("{group_resource}: {e}"));
                    continue;
                }
            };
            let mut left = 0;
            for object in &objects {
                if object.metadata.deletion_timestamp.is_none() {
                    match api
                        .delete(&object.name_any(), &DeleteParams::background())
                        .await
                    {
                        Ok(either) => {
                            // Deleted at once (Right) or held by finalizers or a grace period.
                            if either.is_right() {
                                continue;
                            }
                        }
                        Err(e) if is_not_found(&e) => continue,
                        Err(e) => {
                            sweep.delete_failures.push(format!("{group_resource}: {e}"));
                        }
                    }
                }
                left += 1;
                for finalizer in object.finalizers() {
                    *sweep.finalizers.entry(finalizer.clone()).or_default() += 1;
                }
            }
            if left > 0 {
                sweep.remaining.insert(group_resource, left);
            }
        }
    }
    sweep
}

/// The conditions kube's namespace deleter keeps while a namespace terminates.
fn conditions_of(sweep: &Sweep, now: Timestamp) -> Vec<NamespaceCondition> {
    let condition = |kind: &str, failed: bool, reason: &str, message: String| NamespaceCondition {
        type_: kind.into(),
        status: if failed { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(now)),
    };
    let remaining: Vec<String> = sweep
        .remaining
        .iter()
        .map(|(resource, n)| format!("{resource} has {n} resource instances"))
        .collect();
    let finalizers: Vec<String> = sweep
        .finalizers
        .iter()
        .map(|(finalizer, n)| format!("{finalizer} in {n} resource instances"))
        .collect();
    vec![
        match &sweep.discovery_failure {
            Some(message) => condition(
                "NamespaceDeletionDiscoveryFailure",
                true,
                "DiscoveryFailed",
                message.clone(),
            ),
            None => condition(
                "NamespaceDeletionDiscoveryFailure",
                false,
                "ResourcesDiscovered",
                "All resources successfully discovered".into(),
            ),
        },
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
        if sweep.delete_failures.is_empty() {
            condition(
                "NamespaceDeletionContentFailure",
                false,
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".into(),
            )
        } else {
            condition(
                "NamespaceDeletionContentFailure",
                true,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    sweep.delete_failures.len(),
                    sweep.delete_failures.join(", ")
                ),
            )
        },
        if remaining.is_empty() {
            condition(
                "NamespaceContentRemaining",
                false,
                "ContentRemoved",
                "All content successfully removed".into(),
            )
        } else {
            condition(
                "NamespaceContentRemaining",
                true,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", remaining.join(", ")),
            )
        },
        if finalizers.is_empty() {
            condition(
                "NamespaceFinalizersRemaining",
                false,
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            )
        } else {
            condition(
                "NamespaceFinalizersRemaining",
                true,
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    finalizers.join(", ")
                ),
            )
        },
    ]
}

/// Writes the conditions when any changed (status, reason or message), keeping the
/// transition time of those that did not.
async fn update_conditions(client: &kube::Client, ns: &Namespace, sweep: &Sweep) -> Result<()> {
    let current = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    let mut conditions = conditions_of(sweep, Timestamp::now());
    for condition in &mut conditions {
        match current.iter().find(|c| c.type_ == condition.type_) {
            Some(old)
                if old.status == condition.status
                    && old.reason == condition.reason
                    && old.message == condition.message =>
            {
                condition.last_transition_time = old.last_transition_time.clone();
            }
            _ => changed = true,
        }
    }
    if !changed {
        return Ok(());
    }
    let api: Api<Namespace> = Api::all(client.clone());
    let patch = Patch::Merge(json!({"status": {"conditions": conditions}}));
    match api
        .patch_status(&ns.name_any(), &PatchParams::default(), &patch)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes `kubernetes` from `spec.finalizers`: through `namespaces/NAME/finalize` as kube
/// does, or, on an API server that does not serve it, through the namespace itself.
async fn finalize(ctx: &Context, ns: &Namespace, finalizers: Vec<String>) -> Result<()> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let name = ns.name_any();
    let remaining: Vec<String> = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
    // Written as JSON by hand: the finalizer list must be sent even when empty, or the API
    // server's defaulting would put `kubernetes` back.
    let mut finalized =
        serde_json::to_value(ns).map_err(|e| Error::invalid("namespace", e.to_string()))?;
    finalized["spec"]["finalizers"] = json!(remaining);
    if !ctx.finalize_unserved.load(Ordering::Relaxed) {
        match api
            .replace_subresource("finalize", &name, &PostParams::default(), &finalized)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if matches!(status_code(&e), Some(404 | 405)) => {}
            Err(e) => return Err(e.into()),
        }
        // A 404 on the subresource with the namespace still there: `finalize` is not served.
        if api.get_opt(&name).await?.is_none() {
            return Ok(());
        }
        tracing::warn!(
            "the API server does not serve namespaces/finalize; removing the finalizer through the namespace's spec instead"
        );
        ctx.finalize_unserved.store(true, Ordering::Relaxed);
    }
    let patch = json!({
        "metadata": {"resourceVersion": ns.metadata.resource_version},
        "spec": {"finalizers": remaining},
    });
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_say_what_remains() {
        let now = Timestamp::now();
        let clean = conditions_of(&Sweep::default(), now);
        assert_eq!(clean.len(), 5);
        assert!(clean.iter().all(|c| c.status == "False"));
        assert_eq!(clean[3].reason.as_deref(), Some("ContentRemoved"));
        let sweep = Sweep {
            remaining: [("pods".to_owned(), 2), ("deployments.apps".to_owned(), 1)].into(),
            finalizers: [("example.com/hold".to_owned(), 1)].into(),
            ..Sweep::default()
        };
        let busy = conditions_of(&sweep, now);
        assert_eq!(busy[3].status, "True");
        assert_eq!(
            busy[3].message.as_deref(),
            Some("Some resources are remaining: deployments.apps has 1 resource instances, pods has 2 resource instances")
        );
        assert_eq!(
            busy[4].message.as_deref(),
            Some("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
        );
    }
}
