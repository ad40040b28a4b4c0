//! The two loops every member runs for CRDs, both driven by its watch cache:
//!
//! - [`serve`]: whenever the cached CRDs change, recompute the served custom resources, give
//!   each a watch cache shard (before it is served, so its lists and watches have a source),
//!   rebuild their OpenAPI documents and publish them in the [`CustomTable`].
//! - [`clean_up`]: a deleted CRD (deletionTimestamp set, held by the
//!   `customresourcecleanup.apiextensions.k8s.io` finalizer) gets the `Terminating` condition,
//!   its objects are deleted, then the finalizer is removed and the CRD goes, as kube's
//!   finalizer controller does. Every member may do it; each step is a compare-and-swap or a
//!   delete that tolerates 404, so they do not trip over each other, and a member that dies
//!   midway leaves the work to the others.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{resources_of, CustomTable, Served, CLEANUP_FINALIZER};
use crate::error::Result;
use crate::object::{self, meta_str, WRITE_RETRIES};
use crate::registry::Resource;
use crate::rest::Api;

/// How often the cleanup loop looks again at a CRD it could not finish (objects it failed to
/// delete, or that a writer added meanwhile).
const CLEANUP_RETRY: Duration = Duration::from_secs(1);

fn crd_resource(api: &Api) -> Option<Resource> {
    api.registry
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

/// Keeps `table` in step with the cached CRDs, forever.
pub async fn serve(api: Arc<Api>, table: CustomTable) {
    let Some(crds) = crd_resource(&api) else {
        return;
    };
    let Some(shard) = api.cache.shard(&crds.prefix()) else {
        return;
    };
    let mut changed = shard.subscribe();
    let mut last: Option<Vec<Arc<Value>>> = None;
    loop {
        let revision = shard.revision();
        let (objects, _) = shard.list(&crds.prefix());
        let same = last.as_ref().is_some_and(|l| {
            l.len() == objects.len() && l.iter().zip(&objects).all(|(a, b)| a == b)
        });
        if !same {
            let mut resources = Vec::new();
            for crd in &objects {
                for resource in resources_of(crd) {
                    // A CRD whose names a built-in holds is never served over it.
                    if api
                        .registry
                        .built_in()
                        .iter()
                        .any(|b| b.group == resource.group && b.plural == resource.plural)
                    {
                        continue;
                    }
                    api.cache.add_shard(&resource.prefix());
                    resources.push(resource);
                }
            }
            let openapi = super::openapi::documents(api.openapi.schemas(), &resources);
            table.replace(Served { resources, openapi });
            last = Some(objects);
        }
        table.mark_synced(revision);
        if changed.changed().await.is_err() {
            return;
        }
    }
}

/// Finishes the deletion of deleted CRDs, forever.
pub async fn clean_up(api: Arc<Api>) {
    let Some(crds) = crd_resource(&api) else {
        return;
    };
    let Some(shard) = api.cache.shard(&crds.prefix()) else {
        return;
    };
    let mut changed = shard.subscribe();
    loop {
        let (objects, _) = shard.list(&crds.prefix());
        let mut unfinished = false;
        for crd in objects.iter().filter(|c| deleting(c)) {
            let name = meta_str(crd, "name").unwrap_or("").to_owned();
            if let Err(error) = finish(&api, &crds, crd, &name).await {
                tracing::debug!(crd = %name, %error, "CRD cleanup: will retry");
                unfinished = true;
            }
        }
        if unfinished {
            let _ = tokio::time::timeout(CLEANUP_RETRY, changed.changed()).await;
        } else if changed.changed().await.is_err() {
            return;
        }
    }
}

fn deleting(crd: &Value) -> bool {
    crd["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
        && crd["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == CLEANUP_FINALIZER))
}

/// Deletes the CRD's objects and then releases it.
async fn finish(api: &Api, crds: &Resource, crd: &Value, name: &str) -> Result<()> {
    let key = crds.key(None, name);
    set_terminating(
        api,
        &key,
        "InstanceDeletionInProgress",
        "CustomResource deletion is in progress",
    )
    .await?;
    let group = crd["spec"]["group"].as_str().unwrap_or("");
    let plural = crd["status"]["acceptedNames"]["plural"]
        .as_str()
        .or(crd["spec"]["names"]["plural"].as_str())
        .unwrap_or("");
    if !group.is_empty() && !plural.is_empty() {
        let prefix = format!("/registry/{group}/{plural}/");
        let end = crate::storage::prefix_end(prefix.as_bytes());
        loop {
            let page = api
                .storage
                .range(prefix.as_bytes().to_vec(), end.clone(), 0, 500)
                .await?;
            for stored in &page.items {
                object::remove(
                    &*api.storage,
                    &String::from_utf8_lossy(&stored.key),
                    stored.mod_revision,
                )
                .await?;
            }
            if !page.more {
                break;
            }
        }
    }
    // The objects are gone: release the CRD (the store drops it once nothing holds it).
    for _ in 0..WRITE_RETRIES {
        let Some(current) = object::read(&*api.storage, &key).await? else {
            return Ok(());
        };
        let mut next = current.object.clone();
        if let Some(list) = next["metadata"]["finalizers"].as_array_mut() {
            list.retain(|f| f != CLEANUP_FINALIZER);
        }
        if let Some(status) = next["status"].as_object_mut() {
            super::definition::set_condition(
                status,
                "Terminating",
                "True",
                "InstanceDeletionCompleted",
                "removed all instances",
            );
        }
        if object::ready_to_delete(&next) {
            if object::remove(&*api.storage, &key, current.revision)
                .await?
                .is_some()
            {
                return Ok(());
            }
        } else if object::write(&*api.storage, &key, next, current.revision)
            .await?
            .is_ok()
        {
            return Ok(());
        }
    }
    Ok(())
}

/// Sets the CRD's `Terminating` condition (once).
async fn set_terminating(api: &Api, key: &str, reason: &str, message: &str) -> Result<()> {
    for _ in 0..WRITE_RETRIES {
        let Some(current) = object::read(&*api.storage, key).await? else {
            return Ok(());
        };
        if super::definition::condition_true(&current.object, "Terminating") {
            return Ok(());
        }
        let mut next = current.object.clone();
        if !next["status"].is_object() {
            next["status"] = json!({});
        }
        if let Some(status) = next["status"].as_object_mut() {
            super::definition::set_condition(status, "Terminating", "True", reason, message);
        }
        if object::write(&*api.storage, key, next, current.revision)
            .await?
            .is_ok()
        {
            return Ok(());
        }
    }
    Ok(())
}
