//! The `Priority` admission plugin where it meets the store: the PriorityClasses it resolves
//! pods against come from the watch cache (as kube's plugin reads its informer), with a read
//! of the store for a class the cache does not show yet, so a pod created right after its
//! class is not refused for the cache's lag. The rules themselves are
//! [`crate::admission::priority`]'s.

use serde_json::Value;

use crate::admission::priority::{
    admit_pod, admit_priority_class, default_class, keep_pod_priority, Forbidden,
    PriorityClassInfo, PriorityClasses,
};
use crate::error::{ApiError, Result};
use crate::object::{self, meta_str};
use crate::registry::Resource;
use crate::rest::Api;

/// Where PriorityClasses are kept.
const PREFIX: &str = "/registry/priorityclasses/";

/// The classes as admission saw them when it started: the cache's list, and the classes
/// read from the store because the cache did not have them.
struct Lookup {
    cached: Vec<PriorityClassInfo>,
    fetched: Option<PriorityClassInfo>,
}

impl PriorityClasses for Lookup {
    fn get(&self, name: &str) -> Option<PriorityClassInfo> {
        self.cached
            .iter()
            .chain(&self.fetched)
            .find(|c| c.name == name)
            .cloned()
    }

    fn global_default(&self) -> Option<PriorityClassInfo> {
        default_class(&self.cached).cloned()
    }
}

fn forbidden(resource: &Resource, object: &Value, why: Forbidden) -> ApiError {
    let name = meta_str(object, "name").unwrap_or("");
    let resource = if resource.group.is_empty() {
        resource.plural.to_owned()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    };
    ApiError::forbidden(format!("{resource} \"{name}\" is forbidden: {}", why.0))
}

impl Api {
    fn cached_priority_classes(&self) -> Vec<PriorityClassInfo> {
        self.cache
            .shard(PREFIX)
            .map(|shard| {
                let (classes, _) = shard.list(PREFIX);
                classes.iter().map(|c| PriorityClassInfo::of(c)).collect()
            })
            .unwrap_or_default()
    }

    /// The mutating half, on a Pod being created: its priority from its class.
    pub(crate) async fn admit_pod_priority(
        &self,
        resource: &Resource,
        pod: &mut Value,
    ) -> Result<()> {
        if resource.kind != "Pod" || resource.custom.is_some() {
            return Ok(());
        }
        let mut lookup = Lookup {
            cached: self.cached_priority_classes(),
            fetched: None,
        };
        let named = pod["spec"]["priorityClassName"].as_str().unwrap_or("");
        if !named.is_empty() && lookup.get(named).is_none() {
            let stored = object::read(&*self.storage, &format!("{PREFIX}{named}")).await?;
            lookup.fetched = stored.map(|c| PriorityClassInfo::of(&c.object));
        }
        admit_pod(pod, &lookup).map_err(|why| forbidden(resource, pod, why))
    }

    /// The mutating half, on a Pod being updated: the priority it was given stays.
    pub(crate) fn keep_pod_priority(resource: &Resource, pod: &mut Value, old: &Value) {
        if resource.kind == "Pod" && resource.custom.is_none() {
            keep_pod_priority(pod, old);
        }
    }

    /// The validating half, on a PriorityClass created or updated: one global default.
    pub(crate) fn admit_priority_class(
        &self,
        resource: &Resource,
        class: &Value,
        updating: bool,
    ) -> Result<()> {
        if resource.kind != "PriorityClass" || resource.custom.is_some() {
            return Ok(());
        }
        admit_priority_class(class, updating, &self.cached_priority_classes())
            .map_err(|why| forbidden(resource, class, why))
    }
}
