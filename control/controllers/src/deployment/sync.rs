//! What every strategy shares (kube's `sync.go`): finding or creating the new ReplicaSet and
//! keeping the revision annotations, scaling a ReplicaSet with its event, proportional
//! scaling when the replica count changes mid-rollout or while paused, and the cleanup of
//! old ReplicaSets past `revisionHistoryLimit`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt as _;
use serde_json::json;

use super::hash::{equal_ignoring_hash, pod_template_hash, POD_TEMPLATE_HASH_LABEL};
use super::rolling::{is_rolling_update, max_surge, new_rs_new_replicas};
use super::status::{new_condition, set_condition, Condition};
use super::Context;
use crate::error::{is_conflict, is_namespace_terminating, is_not_found, Error, Result};
use crate::events::EventType;
use crate::ownership::{controller_of, controller_reference};

/// The revision of a ReplicaSet in its Deployment's rollout history.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The earlier revisions a ReplicaSet served (it came back through a rollback).
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// replicas + maxSurge when the ReplicaSet was last scaled (for proportional scaling).
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// kube's cap on the revision-history annotation.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Annotations a Deployment does not pass on to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
];

/// `spec.replicas` of a ReplicaSet (1 when unset, as defaulted).
pub fn replicas_of(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The `revision` annotation as a number (0 when absent or malformed).
pub fn revision_of(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Older first, then by name (kube's `ReplicaSetsByCreationTimestamp`).
pub fn creation_order(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let time = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    time(a)
        .cmp(&time(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// One reconcile of one Deployment: the object as this reconcile knows it, updated by its
/// own writes.
pub struct Rollout<'a> {
    /// The controller's shared state.
    pub ctx: &'a Context,
    /// The Deployment.
    pub d: Deployment,
    /// When the progress deadline would pass, if the rollout is under way.
    pub requeue: Option<Duration>,
}

impl<'a> Rollout<'a> {
    /// A reconcile of `d`.
    pub fn new(ctx: &'a Context, d: Deployment) -> Rollout<'a> {
        Rollout {
            ctx,
            d,
            requeue: None,
        }
    }

    /// `spec.replicas` (1 when unset).
    pub fn desired(&self) -> i32 {
        self.d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn namespace(&self) -> String {
        self.d.namespace().unwrap_or_default()
    }

    fn replicasets(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace())
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace())
    }

    /// The new ReplicaSet (created if `create` and missing) and the old ones, with the
    /// revision annotations brought up to date (kube's `getAllReplicaSetsAndSyncRevision`).
    pub async fn all_replica_sets_and_sync_revision(
        &mut self,
        rs_list: &[ReplicaSet],
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let template = self.d.spec.clone().unwrap_or_default().template;
        let mut sorted: Vec<&ReplicaSet> = rs_list.iter().collect();
        sorted.sort_by(|a, b| creation_order(a, b));
        // Should two ReplicaSets carry the template, the oldest is the new one.
        let existing = sorted
            .iter()
            .find(|rs| {
                rs.spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignoring_hash(t, &template))
            })
            .map(|rs| (*rs).clone());
        let existing_uid = existing.as_ref().and_then(|rs| rs.metadata.uid.clone());
        let old: Vec<ReplicaSet> = rs_list
            .iter()
            .filter(|rs| rs.metadata.uid != existing_uid || existing_uid.is_none())
            .cloned()
            .collect();
        let new_rs = self.new_replica_set(existing, &old, create).await?;
        Ok((new_rs, old))
    }

    /// kube's `getNewReplicaSet`.
    async fn new_replica_set(
        &mut self,
        existing: Option<ReplicaSet>,
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>> {
        let max_old = old
            .iter()
            .map(|rs| revision_of(&rs.metadata))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        let spec = self.d.spec.clone().unwrap_or_default();

        if let Some(existing) = existing {
            let mut copy = existing.clone();
            let annotations_changed =
                set_new_replica_set_annotations(&self.d, &mut copy, new_revision, true);
            let min_ready = spec.min_ready_seconds;
            let current_min_ready = existing.spec.as_ref().and_then(|s| s.min_ready_seconds);
            if annotations_changed || min_ready.unwrap_or(0) != current_min_ready.unwrap_or(0) {
                let patch = json!({
                    "metadata": {
                        "resourceVersion": existing.metadata.resource_version,
                        "annotations": copy.metadata.annotations,
                    },
                    "spec": {"minReadySeconds": min_ready.unwrap_or(0)},
                });
                let updated = self
                    .replicasets()
                    .patch(
                        &existing.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(patch),
                    )
                    .await?;
                return Ok(Some(updated));
            }
            let revision = copy
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION_ANNOTATION))
                .cloned()
                .unwrap_or_default();
            self.set_revision(&revision).await?;
            let progressing = self.condition("Progressing").is_some();
            if self.has_progress_deadline() && !progressing {
                let message = format!("Found new replica set \"{}\"", copy.name_any());
                self.set_status_condition(new_condition(
                    Condition::Progressing,
                    "True",
                    "FoundNewReplicaSet",
                    message,
                ));
                self.write_status().await?;
            }
            return Ok(Some(copy));
        }
        if !create {
            return Ok(None);
        }

        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = pod_template_hash(&spec.template, collision_count);
        let mut template = spec.template.clone();
        let template_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        template_meta
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let name = format!("{}-{hash}", self.d.name_any());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace()),
                owner_references: Some(vec![controller_reference(
                    "apps/v1",
                    "Deployment",
                    &self.d.metadata,
                )]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let replicas = {
            let mut all: Vec<&ReplicaSet> = old.iter().collect();
            all.push(&new_rs);
            new_rs_new_replicas(&self.d, &all, &new_rs)
        };
        if let Some(spec) = new_rs.spec.as_mut() {
            spec.replicas = Some(replicas);
        }
        set_new_replica_set_annotations(&self.d, &mut new_rs, new_revision, false);

        let created = match self
            .replicasets()
            .create(&PostParams::default(), &new_rs)
            .await
        {
            Ok(created) => {
                if replicas > 0 {
                    self.record(
                        EventType::Normal,
                        "ScalingReplicaSet",
                        format!("Scaled up replica set {name} from 0 to {replicas}"),
                    );
                }
                if self.has_progress_deadline() {
                    let message = format!("Created new replica set \"{name}\"");
                    self.set_status_condition(new_condition(
                        Condition::Progressing,
                        "True",
                        "NewReplicaSetCreated",
                        message,
                    ));
                }
                created
            }
            Err(e) if is_conflict(&e) => {
                // Taken: ours from an earlier reconcile the cache has not shown yet, or
                // another template's (a hash collision).
                let found = self.replicasets().get(&name).await?;
                let ours = controller_of(&found.metadata)
                    .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
                let same = found
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignoring_hash(t, &spec.template));
                if !(ours && same) {
                    let status = self.d.status.get_or_insert_with(Default::default);
                    status.collision_count = Some(collision_count.unwrap_or(0) + 1);
                    self.write_status().await?;
                    return Err(Error::HashCollision(format!(
                        "{}/{}",
                        self.namespace(),
                        self.d.name_any()
                    )));
                }
                found
            }
            Err(e) if is_namespace_terminating(&e) => return Err(e.into()),
            Err(e) => {
                let message = format!("Failed to create new replica set \"{name}\": {e}");
                if self.has_progress_deadline() {
                    self.set_status_condition(new_condition(
                        Condition::Progressing,
                        "False",
                        "ReplicaSetCreateError",
                        message.clone(),
                    ));
                    let _ = self.write_status().await;
                }
                self.record(EventType::Warning, "ReplicaSetCreateError", message);
                return Err(e.into());
            }
        };
        self.set_revision(&new_revision.to_string()).await?;
        self.write_status().await?;
        Ok(Some(created))
    }

    /// Sets the Deployment's own revision annotation (through the main resource: keel's
    /// status writes carry only `.status`).
    async fn set_revision(&mut self, revision: &str) -> Result<()> {
        let current = self.d.annotations().get(REVISION_ANNOTATION);
        if current.map(String::as_str) == Some(revision) {
            return Ok(());
        }
        let patch = json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision}}});
        let updated = self
            .deployments()
            .patch(
                &self.d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        self.d.metadata.annotations = updated.metadata.annotations;
        self.d.metadata.resource_version = updated.metadata.resource_version;
        Ok(())
    }

    /// Scales `rs` to `new_scale` with a ScalingReplicaSet event; whether its size changed and
    /// the ReplicaSet as now stored.
    pub async fn scale_replica_set_and_record_event(
        &self,
        rs: &ReplicaSet,
        new_scale: i32,
    ) -> Result<(bool, ReplicaSet)> {
        let current = replicas_of(rs);
        if current == new_scale {
            return Ok((false, rs.clone()));
        }
        let operation = if current < new_scale { "up" } else { "down" };
        self.scale_replica_set(rs, new_scale, operation).await
    }

    /// Writes `new_scale` and the replica annotations when either differs (kube's
    /// `scaleReplicaSet`). The write carries the cached resourceVersion, so a stale cache
    /// makes it fail and the reconcile start again from fresh data.
    async fn scale_replica_set(
        &self,
        rs: &ReplicaSet,
        new_scale: i32,
        operation: &str,
    ) -> Result<(bool, ReplicaSet)> {
        let old_scale = replicas_of(rs);
        let desired = self.desired();
        let max = desired + max_surge(&self.d);
        let mut copy = rs.clone();
        let annotations_changed = set_replicas_annotations(&mut copy, desired, max);
        if old_scale == new_scale && !annotations_changed {
            return Ok((false, rs.clone()));
        }
        let patch = json!({
            "metadata": {
                "resourceVersion": rs.metadata.resource_version,
                "annotations": {
                    DESIRED_REPLICAS_ANNOTATION: desired.to_string(),
                    MAX_REPLICAS_ANNOTATION: max.to_string(),
                },
            },
            "spec": {"replicas": new_scale},
        });
        let updated = self
            .replicasets()
            .patch(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        let scaled = old_scale != new_scale;
        tracing::debug!(replicaset = %rs.name_any(), from = old_scale, to = new_scale,
            resource_version = ?rs.metadata.resource_version, "scaled");
        if scaled {
            self.record(
                EventType::Normal,
                "ScalingReplicaSet",
                format!(
                    "Scaled {operation} replica set {} from {old_scale} to {new_scale}",
                    rs.name_any()
                ),
            );
        }
        Ok((scaled, updated))
    }

    /// Records an event about the Deployment (`deployment-controller`).
    pub fn record(&self, kind: EventType, reason: &str, message: String) {
        self.ctx.recorder.record(&self.d, kind, reason, message);
    }

    /// Scaling without rolling (a replica count change, or a paused Deployment): the only
    /// active ReplicaSet takes the whole count; otherwise the change is shared out in
    /// proportion to the ReplicaSets' sizes (kube's `scale`).
    pub async fn scale(&self, new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Result<()> {
        let desired = self.desired();
        if let Some(target) = active_or_latest(new_rs, old) {
            if replicas_of(&target) == desired {
                return Ok(());
            }
            self.scale_replica_set_and_record_event(&target, desired)
                .await?;
            return Ok(());
        }
        // The new ReplicaSet holds everything: old ones go to zero (adoption mid-rollout).
        if new_rs.is_some_and(|rs| is_saturated(&self.d, rs)) {
            for rs in old.iter().filter(|rs| replicas_of(rs) > 0) {
                self.scale_replica_set_and_record_event(rs, 0).await?;
            }
            return Ok(());
        }
        if !is_rolling_update(&self.d) {
            return Ok(());
        }
        let mut active: Vec<ReplicaSet> = old
            .iter()
            .cloned()
            .chain(new_rs.cloned())
            .filter(|rs| replicas_of(rs) > 0)
            .collect();
        let total: i32 = active.iter().map(replicas_of).sum();
        let allowed = if desired > 0 {
            desired + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - total;
        let operation = match to_add.cmp(&0) {
            Ordering::Greater => {
                // Larger first; among equals, newer first.
                active.sort_by(|a, b| {
                    replicas_of(b)
                        .cmp(&replicas_of(a))
                        .then_with(|| creation_order(b, a))
                });
                "up"
            }
            Ordering::Less => {
                active.sort_by(|a, b| {
                    replicas_of(b)
                        .cmp(&replicas_of(a))
                        .then_with(|| creation_order(a, b))
                });
                "down"
            }
            Ordering::Equal => "",
        };
        let sizes = proportional_sizes(&self.d, &active, to_add);
        for (rs, size) in active.iter().zip(sizes) {
            // A no-op for a ReplicaSet whose size and annotations already agree.
            self.scale_replica_set(rs, size, operation).await?;
        }
        Ok(())
    }

    /// Deletes the oldest ReplicaSets past `revisionHistoryLimit`, those fully scaled down
    /// and settled (kube's `cleanupDeployment`).
    pub async fn cleanup_deployment(&self, old: &[ReplicaSet]) -> Result<()> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by_key(|rs| revision_of(&rs.metadata));
        for rs in cleanable.into_iter().take(diff as usize) {
            let status = rs.status.clone().unwrap_or_default();
            let settled =
                status.observed_generation.unwrap_or(0) >= rs.metadata.generation.unwrap_or(0);
            if status.replicas != 0 || replicas_of(rs) != 0 || !settled {
                continue;
            }
            tracing::debug!(replicaset = %rs.name_any(), "deleting old replica set");
            match self
                .replicasets()
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Whether the replica count changed since the active ReplicaSets were last scaled (their
    /// desired-replicas annotation disagrees).
    pub fn is_scaling_event(&self, new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> bool {
        let desired = self.desired().to_string();
        old.iter()
            .chain(new_rs)
            .filter(|rs| replicas_of(rs) > 0)
            .filter_map(|rs| rs.annotations().get(DESIRED_REPLICAS_ANNOTATION))
            .any(|value| *value != desired)
    }

    /// Sync for scaling events and paused Deployments: scale, clean up, status.
    pub async fn sync(&mut self, rs_list: &[ReplicaSet]) -> Result<()> {
        let (new_rs, old) = self
            .all_replica_sets_and_sync_revision(rs_list, false)
            .await?;
        self.scale(new_rs.as_ref(), &old).await?;
        if self.d.spec.as_ref().and_then(|s| s.paused) == Some(true)
            || super::status::deployment_complete(&self.d, self.d.status.as_ref())
        {
            self.cleanup_deployment(&old).await?;
        }
        let all: Vec<ReplicaSet> = old.iter().cloned().chain(new_rs.clone()).collect();
        self.sync_deployment_status(&all, new_rs.as_ref()).await
    }

    /// Only the status (a Deployment being deleted).
    pub async fn status_only(&mut self, rs_list: &[ReplicaSet]) -> Result<()> {
        let (new_rs, old) = self
            .all_replica_sets_and_sync_revision(rs_list, false)
            .await?;
        let all: Vec<ReplicaSet> = old.iter().cloned().chain(new_rs.clone()).collect();
        self.sync_deployment_status(&all, new_rs.as_ref()).await
    }

    /// Marks a pause or a resume in the Progressing condition, so the time spent paused does
    /// not count against the progress deadline (kube's `checkPausedConditions`).
    pub async fn check_paused_conditions(&mut self) -> Result<()> {
        if !self.has_progress_deadline() {
            return Ok(());
        }
        let condition = self.condition("Progressing");
        let reason = condition
            .as_ref()
            .and_then(|c| c.reason.clone())
            .unwrap_or_default();
        if reason == "ProgressDeadlineExceeded" {
            return Ok(());
        }
        let paused = self.d.spec.as_ref().and_then(|s| s.paused) == Some(true);
        let paused_condition = condition.is_some() && reason == "DeploymentPaused";
        let new = if paused && !paused_condition {
            new_condition(
                Condition::Progressing,
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
            )
        } else if !paused && paused_condition {
            new_condition(
                Condition::Progressing,
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
            )
        } else {
            return Ok(());
        };
        self.set_status_condition(new);
        self.write_status().await
    }

    /// Sets a condition on the Deployment's status as this reconcile knows it.
    pub fn set_status_condition(
        &mut self,
        condition: k8s_openapi::api::apps::v1::DeploymentCondition,
    ) {
        let status = self.d.status.get_or_insert_with(Default::default);
        set_condition(status, condition);
    }

    /// The Deployment's condition of `kind`, if any.
    pub fn condition(&self, kind: &str) -> Option<k8s_openapi::api::apps::v1::DeploymentCondition> {
        self.d
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == kind).cloned())
    }

    /// Whether progress is tracked against a deadline.
    pub fn has_progress_deadline(&self) -> bool {
        super::status::has_progress_deadline(&self.d)
    }

    /// Writes the Deployment's status as this reconcile knows it. The write carries the
    /// resourceVersion last seen, so one based on a stale cache fails and is retried.
    pub async fn write_status(&mut self) -> Result<()> {
        let status = self.d.status.clone().unwrap_or_default();
        let mut body = serde_json::to_value(&status)
            .map_err(|e| Error::invalid("deployment status", e.to_string()))?;
        if status.conditions.is_none() {
            body["conditions"] = serde_json::Value::Null;
        }
        let patch = json!({
            "metadata": {"resourceVersion": self.d.metadata.resource_version},
            "status": body,
        });
        let updated = self
            .deployments()
            .patch_status(
                &self.d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        self.d.metadata.resource_version = updated.metadata.resource_version;
        self.d.status = updated.status;
        Ok(())
    }
}

/// Copies the Deployment's annotations onto the new ReplicaSet and raises its revision
/// (keeping the earlier one in `revision-history` when it comes back through a
/// rollback); for a ReplicaSet about to be created, also the replica annotations. Whether
/// anything changed (kube's `SetNewReplicaSetAnnotations`).
pub fn set_new_replica_set_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&k.as_str()) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old_revision = annotations.get(REVISION_ANNOTATION).cloned();
    let old_number: i64 = match old_revision.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_number < new_revision {
        annotations.insert(REVISION_ANNOTATION.into(), new_revision.to_string());
        changed = true;
        if let Some(old_revision) = old_revision {
            let history = annotations
                .get(REVISION_HISTORY_ANNOTATION)
                .cloned()
                .unwrap_or_default();
            let value = if history.is_empty() {
                old_revision
            } else {
                let mut revisions: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old_revision.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < revisions.len() {
                    total -= revisions[start].len() + 1;
                    start += 1;
                }
                revisions.drain(..start);
                revisions.push(&old_revision);
                revisions.join(",")
            };
            annotations.insert(REVISION_HISTORY_ANNOTATION.into(), value);
        }
    }
    if !exists {
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        changed |= set_replicas_annotations(rs, desired, desired + max_surge(d));
    }
    changed
}

/// Sets the desired- and max-replicas annotations; whether they changed.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [
        (DESIRED_REPLICAS_ANNOTATION, desired),
        (MAX_REPLICAS_ANNOTATION, max),
    ] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.into(), value);
            changed = true;
        }
    }
    changed
}

/// The only active ReplicaSet, or the newest when none is active; `None` when several are
/// active (kube's `FindActiveOrLatest`).
fn active_or_latest(new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Option<ReplicaSet> {
    let mut all: Vec<&ReplicaSet> = old.iter().collect();
    all.sort_by(|a, b| creation_order(b, a));
    let newest_old = all.first().copied();
    let active: Vec<&ReplicaSet> = all
        .into_iter()
        .chain(new_rs)
        .filter(|rs| replicas_of(rs) > 0)
        .collect();
    match active.len() {
        0 => new_rs.or(newest_old).cloned(),
        1 => Some(active[0].clone()),
        _ => None,
    }
}

/// Whether the new ReplicaSet holds all desired replicas and knows it (kube's `IsSaturated`).
fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let annotated = rs
        .annotations()
        .get(DESIRED_REPLICAS_ANNOTATION)
        .and_then(|v| v.parse::<i32>().ok());
    replicas_of(rs) == desired
        && annotated == Some(desired)
        && rs
            .status
            .as_ref()
            .is_some_and(|s| s.available_replicas.unwrap_or(0) == desired)
}

/// New sizes for `active` (sorted as `scale` sorts them) when `to_add` replicas are added
/// (or removed, when negative): each gets its share by the size it had against the
/// max-replicas it was scaled for, and what rounding leaves over goes to the first (kube's
/// `GetProportion` and leftover rule).
pub fn proportional_sizes(d: &Deployment, active: &[ReplicaSet], to_add: i32) -> Vec<i32> {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let deployment_max = desired + max_surge(d);
    let status_replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let mut added = 0;
    let mut sizes: Vec<i32> = Vec::with_capacity(active.len());
    for rs in active {
        let replicas = replicas_of(rs);
        if to_add == 0 {
            sizes.push(replicas);
            continue;
        }
        let proportion = if replicas == 0 || to_add == added {
            0
        } else {
            let fraction = if desired == 0 {
                -replicas
            } else {
                let annotated = rs
                    .annotations()
                    .get(MAX_REPLICAS_ANNOTATION)
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(status_replicas);
                if annotated == 0 {
                    0
                } else {
                    let size =
                        f64::from(replicas) * f64::from(deployment_max) / f64::from(annotated);
                    size.round() as i32 - replicas
                }
            };
            let allowed = to_add - added;
            if to_add > 0 {
                fraction.min(allowed)
            } else {
                fraction.max(allowed)
            }
        };
        sizes.push(replicas + proportion);
        added += proportion;
    }
    if let Some(first) = sizes.first_mut() {
        if to_add != 0 {
            *first = (*first + to_add - added).max(0);
        }
    }
    sizes
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;

    fn deployment(replicas: i32) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(3)),
                        max_unavailable: Some(IntOrString::Int(2)),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn rs(replicas: i32, max: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                annotations: Some([(MAX_REPLICAS_ANNOTATION.to_owned(), max.to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..ReplicaSetSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn scaling_mid_rollout_is_proportional() {
        // 10 replicas (+3 surge = 13) mid-rollout as 8 old + 5 new; scaled to 20 (+3 = 23).
        let d = deployment(20);
        let active = [rs(8, 13), rs(5, 13)];
        let sizes = proportional_sizes(&d, &active, 23 - 13);
        assert_eq!(sizes.iter().sum::<i32>(), 23);
        assert_eq!(sizes, [14, 9]);
        // Down to 5 (+3 = 8): 13 -> 8.
        let d = deployment(5);
        let sizes = proportional_sizes(&d, &active, 8 - 13);
        assert_eq!(sizes.iter().sum::<i32>(), 8);
        assert_eq!(sizes, [5, 3]);
        // To zero: everything goes.
        let d = deployment(0);
        assert_eq!(proportional_sizes(&d, &active, -13), [0, 0]);
    }

    #[test]
    fn a_rollback_keeps_the_revision_history() {
        let mut d = deployment(3);
        d.metadata.annotations = Some(
            [
                (
                    "kubernetes.io/change-cause".to_owned(),
                    "image 1.28".to_owned(),
                ),
                (REVISION_ANNOTATION.to_owned(), "2".to_owned()),
            ]
            .into(),
        );
        // A new ReplicaSet: revision, copied annotations, replica annotations.
        let mut new_rs = ReplicaSet::default();
        assert!(set_new_replica_set_annotations(&d, &mut new_rs, 1, false));
        let a = new_rs.metadata.annotations.clone().unwrap();
        assert_eq!(a[REVISION_ANNOTATION], "1");
        assert_eq!(a["kubernetes.io/change-cause"], "image 1.28");
        assert_eq!(a[DESIRED_REPLICAS_ANNOTATION], "3");
        assert_eq!(a[MAX_REPLICAS_ANNOTATION], "6");
        assert!(!a.contains_key(REVISION_HISTORY_ANNOTATION));
        // Nothing changes when it is already the newest.
        assert!(!set_new_replica_set_annotations(&d, &mut new_rs, 1, true));
        // Rolled back to at revision 3, then again at 5.
        assert!(set_new_replica_set_annotations(&d, &mut new_rs, 3, true));
        assert!(set_new_replica_set_annotations(&d, &mut new_rs, 5, true));
        let a = new_rs.metadata.annotations.unwrap();
        assert_eq!(a[REVISION_ANNOTATION], "5");
        assert_eq!(a[REVISION_HISTORY_ANNOTATION], "1,3");
    }
}
