//! The `LimitRanger` and `ResourceQuota` admission plugins where they meet the store (their
//! rules are [`crate::admission::limit_range`]'s and [`crate::admission::resource_quota`]'s).
//!
//! ```text
//!  create ─► defaults ─► LimitRanger (mutate) ─► validation ─► LimitRanger (validate)
//!         ─► ResourceQuota: check every quota of the namespace, then write each charged
//!            quota's status.used with a compare-and-swap on its revision ─► store object
//! ```
//!
//! A namespace's LimitRanges and ResourceQuotas are read from the watch cache, as kube's
//! plugins read their informers. A namespace the cache shows none in is looked up in the store
//! too, and that answer kept for [`LIVE_TTL`], as kube's live-lookup LRU does, so a quota
//! created a moment ago is not missed for the cache's lag while a namespace without any costs
//! a store read only now and then.
//!
//! A namespace that has quotas has them read from the store once more before a charge, so
//! a server whose cache lags another's charge or the controller's count judges them as they
//! are. Charges are compare-and-swaps on the quota's revision: of two creates racing for the last
//! unit, one writes `status.used` and the other finds the quota changed, re-reads it and is
//! refused. On one server, creates in one namespace also take turns (as kube's per-namespace
//! work queue has them), so they queue rather than conflict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::admission::{limit_range, resource_quota};
use crate::error::{ApiError, Result, Target};
use crate::object::{self, meta_str};
use crate::registry::Resource;
use crate::rest::Api;
use crate::storage::prefix_end;
use crate::watch_cache::decode;

/// How long a store lookup that found nothing in a namespace is trusted (kube's is 30 s).
pub const LIVE_TTL: Duration = Duration::from_secs(30);

/// How often a charge that lost a race for a quota's revision is tried again.
const CHARGE_RETRIES: usize = 8;

const LIMIT_RANGES: &str = "/registry/limitranges/";
const RESOURCE_QUOTAS: &str = "/registry/resourcequotas/";

/// What store lookups found under a namespace's prefix, and until when it is trusted.
type LiveLookups = HashMap<String, (Instant, Vec<Arc<Value>>)>;

/// The plugins' own state: live lookups, and the turn each namespace's creates take.
#[derive(Default)]
pub struct QuotaAdmission {
    live: Mutex<LiveLookups>,
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for QuotaAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaAdmission").finish_non_exhaustive()
    }
}

impl QuotaAdmission {
    fn turn(&self, namespace: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        // Namespaces nobody is waiting on are forgotten, so the map stays small.
        turns.retain(|_, turn| Arc::strong_count(turn) > 1);
        Arc::clone(turns.entry(namespace.to_owned()).or_default())
    }
}

/// `pods "x" is forbidden: <why>`.
fn forbidden(resource: &Resource, name: &str, why: &str) -> ApiError {
    let resource = if resource.group.is_empty() {
        resource.plural.to_owned()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    };
    ApiError::forbidden(format!("{resource} \"{name}\" is forbidden: {why}"))
}

fn revision_of(object: &Value) -> i64 {
    meta_str(object, "resourceVersion")
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

fn is_pod(resource: &Resource) -> bool {
    resource.custom.is_none() && resource.group.is_empty() && resource.plural == "pods"
}

impl Api {
    /// The objects under `root` (LimitRanges' or ResourceQuotas') in `namespace`, by name.
    async fn in_namespace(&self, root: &str, namespace: &str) -> Result<Vec<Arc<Value>>> {
        let prefix = format!("{root}{namespace}/");
        if let Some(shard) = self.cache.shard(root) {
            let (objects, _) = shard.list(&prefix);
            if !objects.is_empty() {
                return Ok(objects);
            }
        }
        {
            let live = self.quota.live.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((until, objects)) = live.get(&prefix) {
                if Instant::now() < *until {
                    return Ok(objects.clone());
                }
            }
        }
        let objects = self.read_prefix(&prefix).await?;
        let mut live = self.quota.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, (until, _)| Instant::now() < *until);
        live.insert(prefix, (Instant::now() + LIVE_TTL, objects.clone()));
        Ok(objects)
    }

    /// Every object under `prefix`, read linearizably from the store.
    async fn read_prefix(&self, prefix: &str) -> Result<Vec<Arc<Value>>> {
        let page = self
            .storage
            .range(
                prefix.as_bytes().to_vec(),
                prefix_end(prefix.as_bytes()),
                0,
                0,
            )
            .await?;
        Ok(page.items.iter().filter_map(decode).map(Arc::new).collect())
    }

    async fn limit_ranges(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>> {
        match namespace {
            Some(namespace) if is_pod(resource) => Ok(self
                .in_namespace(LIMIT_RANGES, namespace)
                .await?
                .iter()
                .map(|r| (**r).clone())
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// `LimitRanger`'s mutating half on a pod being created: requests and limits the
    /// namespace's LimitRanges default. Returns whether it changed the pod.
    pub(crate) async fn default_from_limit_ranges(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        pod: &mut Value,
    ) -> Result<bool> {
        let ranges = self.limit_ranges(resource, namespace).await?;
        if ranges.is_empty() {
            return Ok(false);
        }
        let before = pod.clone();
        limit_range::mutate_pod(pod, &ranges);
        let changed = *pod != before;
        if changed {
            // The QoS class follows the requests and limits it now has.
            pod["status"]["qosClass"] = Value::from(object::qos_class(pod));
        }
        Ok(changed)
    }

    /// `LimitRanger`'s validating half: 403 with kube's message when a pod breaks a range.
    pub(crate) async fn check_limit_ranges(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        pod: &Value,
    ) -> Result<()> {
        let ranges = self.limit_ranges(resource, namespace).await?;
        let name = meta_str(pod, "name").unwrap_or("");
        limit_range::validate_pod(pod, &ranges).map_err(|why| forbidden(resource, name, &why))
    }

    /// `ResourceQuota` on a create: refuses it (403) when it would exceed a quota of its
    /// namespace, and otherwise charges the quotas it counts in before it is stored.
    pub(crate) async fn charge_quotas(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        object: &Value,
        dry_run: bool,
    ) -> Result<()> {
        let Some(namespace) = namespace.filter(|n| resource.namespaced && !n.is_empty()) else {
            return Ok(());
        };
        // kube's quota admission leaves Events alone.
        if resource.group.is_empty() && resource.plural == "events" {
            return Ok(());
        }
        let turn = self.quota.turn(namespace);
        let _turn = turn.lock().await;
        let mut pending = self.in_namespace(RESOURCE_QUOTAS, namespace).await?;
        if !pending.is_empty() {
            // The cache may lag a charge or a recount another server just wrote; a namespace
            // with quotas pays one store read so its quotas are judged as they are now.
            pending = self
                .read_prefix(&format!("{RESOURCE_QUOTAS}{namespace}/"))
                .await?;
        }
        let name = meta_str(object, "name").unwrap_or("");
        for _ in 0..CHARGE_RETRIES {
            if pending.is_empty() {
                return Ok(());
            }
            let charges =
                resource_quota::check_create(&pending, resource.group, resource.plural, object)
                    .map_err(|why| forbidden(resource, name, &why))?;
            if dry_run {
                return Ok(());
            }
            let mut lost = Vec::new();
            for (i, used) in charges {
                let mut quota = (*pending[i]).clone();
                quota["status"]["used"] = used;
                let quota_name = meta_str(&quota, "name").unwrap_or("").to_owned();
                let key = format!("{RESOURCE_QUOTAS}{namespace}/{quota_name}");
                let revision = revision_of(&pending[i]);
                match object::write(&*self.storage, &key, quota, revision).await? {
                    Ok(_) => {}
                    // Someone charged (or recounted) it meanwhile: check again against it.
                    Err(Some(current)) => lost.push(Arc::new(current.object)),
                    // Deleted meanwhile: it limits nothing any more.
                    Err(None) => {}
                }
            }
            pending = lost;
        }
        let quota_name = pending
            .first()
            .and_then(|q| meta_str(q, "name"))
            .unwrap_or("");
        Err(ApiError::modified(&Target {
            resource: "resourcequotas",
            group: "",
            name: quota_name,
        }))
    }
}
