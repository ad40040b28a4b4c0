//! The two strategies (kube's `rolling.go` and `recreate.go`) and the arithmetic they share:
//! maxSurge and maxUnavailable resolved against the desired count, and how far the new
//! ReplicaSet may grow.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::sync::{creation_order, replicas_of, Rollout};
use crate::error::{Error, Result};
use crate::pods;

/// An int-or-percent against `total`: a percentage rounds up for maxSurge and down for
/// maxUnavailable (kube's `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(text) => {
            let percent: i64 = text
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    Error::invalid("int-or-percent", format!("{text:?} is not a percentage"))
                })?;
            let scaled = percent * i64::from(total);
            let value = if round_up {
                (scaled + 99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            };
            Ok(value as i32)
        }
    }
}

/// maxSurge and maxUnavailable for `desired` replicas, resolved together: when both come to
/// zero (a small percentage rounded down), one pod may be unavailable, or the rollout could
/// never move (kube's `ResolveFenceposts`).
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32)> {
    let default = IntOrString::String("25%".into());
    let surge = scaled_value(max_surge.unwrap_or(&default), desired, true)?;
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&default), desired, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// Whether the strategy is RollingUpdate (the default).
pub fn is_rolling_update(d: &Deployment) -> bool {
    let kind = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref());
    kind.is_none_or(|t| t == "RollingUpdate")
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    if !is_rolling_update(d) {
        return (0, 0);
    }
    let spec = d.spec.clone().unwrap_or_default();
    let rolling = spec
        .strategy
        .and_then(|s| s.rolling_update)
        .unwrap_or_default();
    // Validation refuses malformed values; should one slip through, do not surge.
    resolve_fenceposts(
        rolling.max_surge.as_ref(),
        rolling.max_unavailable.as_ref(),
        spec.replicas.unwrap_or(1),
    )
    .unwrap_or((0, 1))
}

/// How many pods above the desired count a rolling update may run.
pub fn max_surge(d: &Deployment) -> i32 {
    fenceposts(d).0
}

/// How many of the desired pods a rolling update may have unavailable.
pub fn max_unavailable(d: &Deployment) -> i32 {
    fenceposts(d).1
}

/// The size the new ReplicaSet may grow to now (kube's `NewRSNewReplicas`): for a rolling
/// update, up to desired + maxSurge pods in all, never past desired for the new one; for
/// Recreate, desired at once.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let current_new = replicas_of(new_rs);
    if !is_rolling_update(d) {
        return desired;
    }
    let current: i32 = all.iter().map(|rs| replicas_of(rs)).sum();
    let max_total = desired + max_surge(d);
    if current >= max_total {
        return current_new;
    }
    let scale_up = (max_total - current).min(desired - current_new);
    current_new + scale_up.max(0)
}

impl Rollout<'_> {
    /// A rolling update: grow the new ReplicaSet within maxSurge, shrink the old ones within
    /// maxUnavailable, one step per reconcile (each step's writes trigger the next).
    pub async fn rollout_rolling(&mut self, rs_list: &[ReplicaSet]) -> Result<()> {
        let (new_rs, old) = self
            .all_replica_sets_and_sync_revision(rs_list, true)
            .await?;
        let Some(new_rs) = new_rs else {
            return Ok(());
        };
        let mut all: Vec<ReplicaSet> = old.clone();
        all.push(new_rs.clone());

        if let Some(scaled) = self.reconcile_new_replica_set(&all, &new_rs).await? {
            let mut all = old.clone();
            all.push(scaled.clone());
            return self.sync_rollout_status(&all, Some(&scaled)).await;
        }
        let active_old: Vec<ReplicaSet> = old
            .iter()
            .filter(|rs| replicas_of(rs) > 0)
            .cloned()
            .collect();
        if self
            .reconcile_old_replica_sets(&all, active_old, &new_rs)
            .await?
        {
            // The statuses changed; the written ReplicaSets come back through the watch.
            return self.sync_rollout_status(&all, Some(&new_rs)).await;
        }
        if super::status::deployment_complete(&self.d, self.d.status.as_ref()) {
            self.cleanup_deployment(&old).await?;
        }
        self.sync_rollout_status(&all, Some(&new_rs)).await
    }

    /// Scales the new ReplicaSet toward the desired count; the scaled ReplicaSet if it changed.
    async fn reconcile_new_replica_set(
        &self,
        all: &[ReplicaSet],
        new_rs: &ReplicaSet,
    ) -> Result<Option<ReplicaSet>> {
        let desired = self.desired();
        let current = replicas_of(new_rs);
        if current == desired {
            return Ok(None);
        }
        let target = if current > desired {
            desired
        } else {
            let all: Vec<&ReplicaSet> = all.iter().collect();
            new_rs_new_replicas(&self.d, &all, new_rs)
        };
        let (scaled, rs) = self
            .scale_replica_set_and_record_event(new_rs, target)
            .await?;
        Ok(scaled.then_some(rs))
    }

    /// Scales old ReplicaSets down as far as availability allows; whether any was scaled.
    async fn reconcile_old_replica_sets(
        &self,
        all: &[ReplicaSet],
        mut old: Vec<ReplicaSet>,
        new_rs: &ReplicaSet,
    ) -> Result<bool> {
        let old_pods: i32 = old.iter().map(replicas_of).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let all_pods: i32 = all.iter().map(replicas_of).sum();
        let min_available = self.desired() - max_unavailable(&self.d);
        let new_unavailable = replicas_of(new_rs) - available_of(new_rs);
        // Never scale down so far that, with the new pods that are not yet available, fewer
        // than minAvailable could be serving (kube's worked example in `rolling.go`).
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy old replicas first: removing them costs no availability.
        let cleaned = self
            .cleanup_unhealthy_replicas(&mut old, max_scaled_down)
            .await?;
        let mut all_after = old.clone();
        all_after.push(new_rs.clone());
        let scaled_down = self
            .scale_down_old_for_rolling_update(&all_after, &mut old)
            .await?;
        Ok(cleaned + scaled_down > 0)
    }

    async fn cleanup_unhealthy_replicas(
        &self,
        old: &mut [ReplicaSet],
        max_cleanup: i32,
    ) -> Result<i32> {
        old.sort_by(creation_order);
        let mut total = 0;
        for (index, new_size) in unhealthy_cleanup(old, max_cleanup) {
            let rs = &mut old[index];
            total += replicas_of(rs) - new_size;
            let (_, updated) = self
                .scale_replica_set_and_record_event(rs, new_size)
                .await?;
            *rs = updated;
        }
        Ok(total)
    }

    async fn scale_down_old_for_rolling_update(
        &self,
        all: &[ReplicaSet],
        old: &mut [ReplicaSet],
    ) -> Result<i32> {
        let min_available = self.desired() - max_unavailable(&self.d);
        let available: i32 = all.iter().map(available_of).sum();
        if available <= min_available {
            return Ok(0);
        }
        old.sort_by(creation_order);
        let target = available - min_available;
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= target {
                break;
            }
            let replicas = replicas_of(rs);
            if replicas == 0 {
                continue;
            }
            let count = replicas.min(target - total);
            let (_, updated) = self
                .scale_replica_set_and_record_event(rs, replicas - count)
                .await?;
            *rs = updated;
            total += count;
        }
        Ok(total)
    }

    /// Recreate: scale every old ReplicaSet to zero, wait until their pods are gone, then
    /// create (or scale up) the new one.
    pub async fn rollout_recreate(
        &mut self,
        rs_list: &[ReplicaSet],
        pod_map: &[(String, Vec<Pod>)],
    ) -> Result<()> {
        let (mut new_rs, mut old) = self
            .all_replica_sets_and_sync_revision(rs_list, false)
            .await?;
        let mut all: Vec<ReplicaSet> = old.iter().cloned().chain(new_rs.clone()).collect();
        let mut scaled_down = false;
        for rs in old.iter_mut().filter(|rs| replicas_of(rs) > 0) {
            let (scaled, updated) = self.scale_replica_set_and_record_event(rs, 0).await?;
            scaled_down |= scaled;
            *rs = updated;
        }
        if scaled_down {
            return self.sync_rollout_status(&all, new_rs.as_ref()).await;
        }
        if old_pods_running(new_rs.as_ref(), &old, pod_map) {
            return self.sync_rollout_status(&all, new_rs.as_ref()).await;
        }
        if new_rs.is_none() {
            (new_rs, old) = self
                .all_replica_sets_and_sync_revision(rs_list, true)
                .await?;
            all = old.iter().cloned().chain(new_rs.clone()).collect();
        }
        if let Some(rs) = &new_rs {
            let (scaled, updated) = self
                .scale_replica_set_and_record_event(rs, self.desired())
                .await?;
            if scaled {
                new_rs = Some(updated);
            }
        }
        if super::status::deployment_complete(&self.d, self.d.status.as_ref()) {
            self.cleanup_deployment(&old).await?;
        }
        self.sync_rollout_status(&all, new_rs.as_ref()).await
    }
}

/// The sizes that remove up to `max_cleanup` unhealthy (not available) replicas from the old
/// ReplicaSets, oldest first (`old` sorted so): (index in `old`, new size) for each to scale
/// (kube's `cleanupUnhealthyReplicas`). Only ever down: a ReplicaSet whose status shows as
/// many available pods as its spec asks for or more (the status of a ReplicaSet just scaled
/// down lags its spec) has none to remove. Counting that surplus as negative "unhealthy"
/// replicas would scale the old ReplicaSet back up mid-rollout and recreate the pods just
/// deleted (kube refuses such a scale as an invalid request).
pub fn unhealthy_cleanup(old: &[ReplicaSet], max_cleanup: i32) -> Vec<(usize, i32)> {
    let mut plan = Vec::new();
    let mut total = 0;
    for (index, rs) in old.iter().enumerate() {
        if total >= max_cleanup {
            break;
        }
        let replicas = replicas_of(rs);
        let unhealthy = replicas - available_of(rs);
        if replicas == 0 || unhealthy <= 0 {
            continue;
        }
        let count = (max_cleanup - total).min(unhealthy);
        plan.push((index, replicas - count));
        total += count;
    }
    plan
}

/// The ReplicaSet's available pods, as its status says.
pub fn available_of(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// Whether old pods still run (kube's `oldPodsRunning`): any old ReplicaSet reports pods, or
/// the cache holds an unfinished pod of one.
fn old_pods_running(
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
    pod_map: &[(String, Vec<Pod>)],
) -> bool {
    let reported: i32 = old
        .iter()
        .map(|rs| rs.status.as_ref().map_or(0, |s| s.replicas))
        .sum();
    if reported > 0 {
        return true;
    }
    let new_uid = new_rs.and_then(|rs| rs.metadata.uid.as_deref());
    pod_map
        .iter()
        .filter(|(uid, _)| Some(uid.as_str()) != new_uid)
        .flat_map(|(_, pods)| pods)
        .any(|pod| !matches!(pods::phase(pod), "Failed" | "Succeeded"))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, RollingUpdateDeployment,
    };

    use super::*;

    fn int(n: i32) -> IntOrString {
        IntOrString::Int(n)
    }

    fn pct(p: &str) -> IntOrString {
        IntOrString::String(p.into())
    }

    #[test]
    fn percentages_round_up_for_surge_and_down_for_unavailable() {
        assert_eq!(scaled_value(&pct("25%"), 10, true).unwrap(), 3);
        assert_eq!(scaled_value(&pct("25%"), 10, false).unwrap(), 2);
        assert_eq!(scaled_value(&pct("25%"), 3, true).unwrap(), 1);
        assert_eq!(scaled_value(&pct("25%"), 3, false).unwrap(), 0);
        assert_eq!(scaled_value(&pct("100%"), 7, false).unwrap(), 7);
        assert_eq!(scaled_value(&int(2), 10, true).unwrap(), 2);
        assert!(scaled_value(&pct("abc"), 10, true).is_err());
        assert!(scaled_value(&pct("25"), 10, true).is_err());
    }

    #[test]
    fn fenceposts_never_both_zero() {
        // kube's examples from ResolveFenceposts.
        assert_eq!(
            resolve_fenceposts(Some(&pct("0%")), Some(&pct("1%")), 2).unwrap(),
            (0, 1)
        );
        assert_eq!(
            resolve_fenceposts(Some(&pct("1%")), Some(&pct("25%")), 2).unwrap(),
            (1, 0)
        );
        assert_eq!(
            resolve_fenceposts(Some(&int(1)), Some(&int(0)), 3).unwrap(),
            (1, 0)
        );
        assert_eq!(
            resolve_fenceposts(Some(&int(0)), Some(&int(0)), 3).unwrap(),
            (0, 1)
        );
        // The defaults: 25% each.
        assert_eq!(resolve_fenceposts(None, None, 4).unwrap(), (1, 1));
        assert_eq!(resolve_fenceposts(None, None, 10).unwrap(), (3, 2));
    }

    fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn rs(replicas: i32) -> ReplicaSet {
        ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..ReplicaSetSpec::default()
            }),
            ..ReplicaSet::default()
        }
    }

    #[test]
    fn new_replica_set_grows_within_the_surge() {
        let d = deployment(3, int(1), int(0));
        let (old, new) = (rs(3), rs(0));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
        // At desired + surge already: no growth.
        let (old, new) = (rs(3), rs(1));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
        // Old scaled down to 2: one more.
        let (old, new) = (rs(2), rs(1));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 2);
        // Never past desired.
        let d = deployment(3, int(5), int(0));
        let new = rs(0);
        assert_eq!(new_rs_new_replicas(&d, &[&new], &new), 3);
        // Recreate: desired at once.
        let mut d = deployment(4, int(1), int(0));
        d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        });
        assert_eq!(new_rs_new_replicas(&d, &[&new], &new), 4);
        assert_eq!(max_surge(&d), 0);
        assert_eq!(max_unavailable(&d), 0);
    }

    fn with_available(replicas: i32, available: i32) -> ReplicaSet {
        let mut rs = rs(replicas);
        rs.status = Some(k8s_openapi::api::apps::v1::ReplicaSetStatus {
            replicas: available,
            available_replicas: Some(available),
            ..Default::default()
        });
        rs
    }

    #[test]
    fn unhealthy_cleanup_only_scales_down() {
        // 5 of 8 available in the oldest, 1 of 4 in the next: up to 4 removed, oldest first.
        let old = [with_available(8, 5), with_available(4, 1)];
        assert_eq!(unhealthy_cleanup(&old, 4), [(0, 5), (1, 3)]);
        assert_eq!(unhealthy_cleanup(&old, 2), [(0, 6)]);
        // Just scaled down from 228 to 22, its status still shows 228 available (the bench's
        // 1,000-replica rollout caught this): nothing is unhealthy, nothing scales back up.
        let lagging = [
            with_available(22, 228),
            with_available(3, 3),
            with_available(0, 0),
        ];
        assert!(unhealthy_cleanup(&lagging, 500).is_empty());
    }
}
