//! A Deployment's status and conditions (kube's `progress.go` and `calculateStatus`):
//! replica counts summed over its ReplicaSets, `Available` (minimum availability) and
//! `Progressing` (a new ReplicaSet, progress, completion, or the progress deadline passed).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt as _;

use super::rolling::{available_of, max_unavailable};
use super::sync::{replicas_of, Rollout};
use crate::error::Result;

/// The two condition types the controller keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Enough pods are available.
    Available,
    /// The rollout moves, finished, or stalled.
    Progressing,
}

/// A condition of `kind`, stamped now.
pub fn new_condition(
    kind: Condition,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let now = Time(Timestamp::now());
    DeploymentCondition {
        type_: match kind {
            Condition::Available => "Available",
            Condition::Progressing => "Progressing",
        }
        .into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Sets `condition` unless one of its type with the same status and reason is there; keeps
/// the transition time when only the reason changes (kube's `SetDeploymentCondition`).
pub fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(current) = conditions.iter().find(|c| c.type_ == condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != condition.type_);
    conditions.push(condition);
}

fn remove_condition(status: &mut DeploymentStatus, kind: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != kind);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

fn condition_of<'s>(
    status: Option<&'s DeploymentStatus>,
    kind: &str,
) -> Option<&'s DeploymentCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

/// Whether a progress deadline is set (kube treats MaxInt32 as none).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

/// The status from the ReplicaSets (kube's `calculateStatus`).
pub fn calculate_status(
    d: &Deployment,
    all: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> DeploymentStatus {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let available: i32 = all.iter().map(available_of).sum();
    let total: i32 = all.iter().map(replicas_of).sum();
    let actual = |rs: &ReplicaSet| rs.status.as_ref().map_or(0, |s| s.replicas);
    let ready: i32 = all
        .iter()
        .map(|rs| {
            rs.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        })
        .sum();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(actual).sum()),
        updated_replicas: Some(new_rs.map_or(0, actual)),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: d.status.as_ref().and_then(|s| s.collision_count),
        conditions: d.status.as_ref().and_then(|s| s.conditions.clone()),
        terminating_replicas: None,
    };
    let condition = if available >= desired - max_unavailable(d) {
        new_condition(
            Condition::Available,
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        new_condition(
            Condition::Available,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    set_condition(&mut status, condition);
    status
}

/// All desired replicas updated and available enough, no old ones left, and the latest
/// generation seen (kube's `DeploymentComplete`).
pub fn deployment_complete(d: &Deployment, status: Option<&DeploymentStatus>) -> bool {
    let Some(status) = status else { return false };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    status.updated_replicas.unwrap_or(0) == desired
        && status.replicas.unwrap_or(0) == desired
        && status.available_replicas.unwrap_or(0) >= desired - max_unavailable(d)
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether `new` shows progress over the Deployment's current status: more updated pods,
/// fewer old ones, or more available (kube's `DeploymentProgressing`).
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

/// Whether the Progressing condition is older than the deadline (kube's `DeploymentTimedOut`).
pub fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(condition) = condition_of(Some(status), "Progressing") else {
        return false;
    };
    if condition.reason.as_deref() == Some("ProgressDeadlineExceeded") {
        return true;
    }
    let deadline = d
        .spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(0);
    let Some(from) = condition.last_update_time.as_ref() else {
        return false;
    };
    from.0 + SignedDuration::from_secs(i64::from(deadline)) < now
}

impl Rollout<'_> {
    /// Writes the status computed from the ReplicaSets if it changed.
    pub async fn sync_deployment_status(
        &mut self,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<()> {
        let status = calculate_status(&self.d, all, new_rs);
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        self.d.status = Some(status);
        self.write_status().await
    }

    /// The status with the Progressing condition judged: complete, progressing, or past its
    /// deadline (kube's `syncRolloutStatus`); notes when to look again for the deadline.
    pub async fn sync_rollout_status(
        &mut self,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<()> {
        let mut status = calculate_status(&self.d, all, new_rs);
        let d = &self.d;
        if !has_progress_deadline(d) {
            remove_condition(&mut status, "Progressing");
        }
        let current = condition_of(d.status.as_ref(), "Progressing").cloned();
        let complete_already = status.replicas == status.updated_replicas
            && current
                .as_ref()
                .is_some_and(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"));
        let now = Timestamp::now();
        if has_progress_deadline(d) && !complete_already {
            let subject = match new_rs {
                Some(rs) => format!("ReplicaSet \"{}\"", rs.name_any()),
                None => format!("Deployment \"{}\"", d.name_any()),
            };
            if deployment_complete(d, Some(&status)) {
                let message = format!("{subject} has successfully progressed.");
                set_condition(
                    &mut status,
                    new_condition(
                        Condition::Progressing,
                        "True",
                        "NewReplicaSetAvailable",
                        message,
                    ),
                );
            } else if deployment_progressing(d, &status) {
                let message = format!("{subject} is progressing.");
                let mut condition =
                    new_condition(Condition::Progressing, "True", "ReplicaSetUpdated", message);
                // Progress refreshes lastUpdateTime even with the same reason; the transition
                // time stays while the status stays True.
                if let Some(current) = &current {
                    if current.status == "True" {
                        condition.last_transition_time = current.last_transition_time.clone();
                    }
                    remove_condition(&mut status, "Progressing");
                }
                set_condition(&mut status, condition);
            } else if deployment_timed_out(d, &status, now) {
                let message = format!("{subject} has timed out progressing.");
                set_condition(
                    &mut status,
                    new_condition(
                        Condition::Progressing,
                        "False",
                        "ProgressDeadlineExceeded",
                        message,
                    ),
                );
            }
        }
        self.requeue = stuck_requeue(d, &status, now);
        if d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        self.d.status = Some(status);
        self.write_status().await
    }
}

/// When to look at a rollout again to judge its progress deadline (kube's
/// `requeueStuckDeployment`): `None` when there is nothing to wait for.
pub fn stuck_requeue(
    d: &Deployment,
    status: &DeploymentStatus,
    now: Timestamp,
) -> Option<Duration> {
    let condition = condition_of(d.status.as_ref(), "Progressing")?;
    if !has_progress_deadline(d)
        || deployment_complete(d, Some(status))
        || condition.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return None;
    }
    let deadline = d
        .spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(0);
    let from = condition.last_update_time.as_ref()?.0;
    let after = (from + SignedDuration::from_secs(i64::from(deadline))).duration_since(now);
    if after < SignedDuration::from_secs(1) {
        return Some(Duration::from_millis(100));
    }
    Some(Duration::from_secs(after.as_secs() as u64 + 1))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn deployment(replicas: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(2),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                progress_deadline_seconds: Some(600),
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    fn rs(spec: i32, actual: i32, ready: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(spec),
                ..ReplicaSetSpec::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas: actual,
                ready_replicas: Some(ready),
                available_replicas: Some(available),
                ..ReplicaSetStatus::default()
            }),
            ..ReplicaSet::default()
        }
    }

    #[test]
    fn status_sums_the_replica_sets() {
        let d = deployment(3);
        let (old, new) = (rs(1, 2, 2, 2), rs(3, 3, 2, 1));
        let status = calculate_status(&d, &[old, new.clone()], Some(&new));
        assert_eq!(status.replicas, Some(5));
        assert_eq!(status.updated_replicas, Some(3));
        assert_eq!(status.ready_replicas, Some(4));
        assert_eq!(status.available_replicas, Some(3));
        assert_eq!(status.unavailable_replicas, Some(1));
        assert_eq!(status.observed_generation, Some(2));
        let available = condition_of(Some(&status), "Available").unwrap();
        assert_eq!(available.status, "True");
        assert_eq!(
            available.reason.as_deref(),
            Some("MinimumReplicasAvailable")
        );
        assert!(!deployment_complete(&d, Some(&status)));
        let settled = rs(3, 3, 3, 3);
        let done = calculate_status(&d, std::slice::from_ref(&settled), Some(&settled));
        assert!(deployment_complete(&d, Some(&done)));
    }

    #[test]
    fn conditions_keep_their_transition_time() {
        let mut status = DeploymentStatus::default();
        let mut first = new_condition(
            Condition::Progressing,
            "True",
            "NewReplicaSetCreated",
            "a".into(),
        );
        first.last_transition_time = Some(Time(Timestamp::UNIX_EPOCH));
        set_condition(&mut status, first);
        set_condition(
            &mut status,
            new_condition(
                Condition::Progressing,
                "True",
                "ReplicaSetUpdated",
                "b".into(),
            ),
        );
        let c = condition_of(Some(&status), "Progressing").unwrap();
        assert_eq!(c.reason.as_deref(), Some("ReplicaSetUpdated"));
        assert_eq!(c.last_transition_time, Some(Time(Timestamp::UNIX_EPOCH)));
        set_condition(
            &mut status,
            new_condition(
                Condition::Progressing,
                "False",
                "ProgressDeadlineExceeded",
                "c".into(),
            ),
        );
        let c = condition_of(Some(&status), "Progressing").unwrap();
        assert_ne!(c.last_transition_time, Some(Time(Timestamp::UNIX_EPOCH)));
        assert_eq!(status.conditions.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn the_deadline_passes_after_progress_deadline_seconds() {
        let mut d = deployment(3);
        let now = Timestamp::now();
        let mut condition = new_condition(
            Condition::Progressing,
            "True",
            "ReplicaSetUpdated",
            "x".into(),
        );
        condition.last_update_time = Some(Time(now - SignedDuration::from_secs(601)));
        let mut status = DeploymentStatus::default();
        set_condition(&mut status, condition.clone());
        assert!(deployment_timed_out(&d, &status, now));
        condition.last_update_time = Some(Time(now - SignedDuration::from_secs(500)));
        let mut status = DeploymentStatus::default();
        set_condition(&mut status, condition);
        assert!(!deployment_timed_out(&d, &status, now));
        d.status = Some(status.clone());
        let after = stuck_requeue(&d, &status, now).unwrap();
        assert!(
            after > Duration::from_secs(99) && after <= Duration::from_secs(101),
            "{after:?}"
        );
    }
}
