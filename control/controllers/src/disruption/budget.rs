//! The arithmetic of one PodDisruptionBudget's status, as kube's disruption controller does
//! it, with no I/O: how many pods are expected and must stay healthy, which pods the
//! eviction subresource already counted as disrupted (`status.disruptedPods`, forgotten
//! after [`DELETION_TIMEOUT`]), how many are healthy, and the status to write with its
//! `DisruptionAllowed` condition.
//!
//! ```text
//! maxUnavailable          expected = Σ scale of the pods' controllers
//!                         desired  = max(expected − maxUnavailable (rounded up), 0)
//! minAvailable: 3         expected = number of selected pods, desired = 3
//! minAvailable: "50%"     expected = Σ scale, desired = ⌈50% of expected⌉
//! healthy                 Ready, not being deleted, not in disruptedPods
//! disruptionsAllowed      max(healthy − desired, 0); 0 while expected is 0
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{
    PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::pods;

/// How long a pod the eviction subresource approved may stay undeleted before the budget
/// stops counting it as disrupted (kube's `DeletionTimeout`, 2 minutes).
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

/// The condition on every budget.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// Its reason when a disruption is allowed.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
/// Its reason when none is.
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// Its reason when the status could not be worked out.
pub const SYNC_FAILED: &str = "SyncFailed";

/// Whether the budget needs the scale of its pods' controllers: with maxUnavailable or a
/// percentage minAvailable (an integer minAvailable counts the pods instead).
pub fn needs_scale(spec: &PodDisruptionBudgetSpec) -> bool {
    spec.max_unavailable.is_some() || matches!(spec.min_available, Some(IntOrString::String(_)))
}

/// kube's `GetScaledValueFromIntOrPercent` with its error wording.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(text) => {
            let Some(number) = text.strip_suffix('%') else {
                return Err(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                        .into(),
                );
            };
            let percent: i64 = number.parse().map_err(|e| {
                format!("invalid value for IntOrString: invalid value {text:?}: {e}")
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

/// `(expectedPods, desiredHealthy)` for `pod_count` selected pods; `scale` is the sum of
/// their controllers' replicas when [`needs_scale`] (else unused).
pub fn expected_and_desired(
    spec: &PodDisruptionBudgetSpec,
    pod_count: usize,
    scale: i32,
) -> Result<(i32, i32), String> {
    if let Some(max_unavailable) = &spec.max_unavailable {
        let unavailable = scaled_value(max_unavailable, scale, true)?;
        return Ok((scale, (scale - unavailable).max(0)));
    }
    match &spec.min_available {
        Some(IntOrString::Int(n)) => Ok((pod_count as i32, *n)),
        Some(percent @ IntOrString::String(_)) => Ok((scale, scaled_value(percent, scale, true)?)),
        None => Ok((0, 0)),
    }
}

/// What the old `disruptedPods` still means now.
#[derive(Debug, Default, PartialEq)]
pub struct Disrupted {
    /// The entries kept: pods not yet being deleted whose time has not run out.
    pub pods: BTreeMap<String, Time>,
    /// When the earliest kept entry runs out (look again then).
    pub recheck: Option<Timestamp>,
    /// Pods whose entry ran out without their deletion (kube's `NotDeleted` event).
    pub expired: Vec<String>,
}

/// kube's `buildDisruptedPodMap`: entries of pods that are gone or being deleted are
/// dropped (the pod no longer counts anyway), those past [`DELETION_TIMEOUT`] expire.
pub fn disrupted_pods(
    pods: &[&Pod],
    old: Option<&BTreeMap<String, Time>>,
    now: Timestamp,
) -> Disrupted {
    let mut result = Disrupted::default();
    let Some(old) = old else { return result };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(since) = old.get(&name) else {
            continue;
        };
        let deadline = since.0 + DELETION_TIMEOUT;
        if deadline < now {
            result.expired.push(name);
        } else {
            result.recheck = Some(result.recheck.map_or(deadline, |r| r.min(deadline)));
            result.pods.insert(name, since.clone());
        }
    }
    result
}

/// kube's `countHealthyPods`: Ready pods not being deleted and not about to be.
pub fn current_healthy(pods: &[&Pod], disrupted: &BTreeMap<String, Time>, now: Timestamp) -> i32 {
    pods.iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| {
            let name = pod.metadata.name.as_deref().unwrap_or("");
            disrupted
                .get(name)
                .is_none_or(|since| since.0 + DELETION_TIMEOUT <= now)
        })
        .filter(|pod| pods::is_ready(pod))
        .count() as i32
}

/// apimachinery's `SetStatusCondition`: the condition of that type replaced, its
/// transition time moved only when its status changes.
pub fn set_condition(conditions: &mut Vec<Condition>, mut condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
}

/// `UpdateDisruptionAllowedCondition`: True with SufficientPods while a disruption is
/// allowed, else False with InsufficientPods.
pub fn update_disruption_allowed(status: &mut PodDisruptionBudgetStatus, now: Timestamp) {
    let (value, reason) = if status.disruptions_allowed > 0 {
        ("True", SUFFICIENT_PODS)
    } else {
        ("False", INSUFFICIENT_PODS)
    };
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    set_condition(
        conditions,
        Condition {
            type_: DISRUPTION_ALLOWED.into(),
            status: value.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: status.observed_generation,
            last_transition_time: Time(now),
        },
    );
}

/// `ConditionsAreUpToDate`: the condition says what the counts say, for this generation.
fn conditions_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let Some(status) = &pdb.status else {
        return false;
    };
    let Some(condition) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_ALLOWED)
    else {
        return false;
    };
    if status.observed_generation != pdb.metadata.generation {
        return false;
    }
    if status.disruptions_allowed > 0 {
        condition.status == "True" && condition.reason == SUFFICIENT_PODS
    } else {
        condition.status == "False" && condition.reason == INSUFFICIENT_PODS
    }
}

/// The counts a sync worked out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Ready pods that count.
    pub current_healthy: i32,
    /// Pods that must stay healthy.
    pub desired_healthy: i32,
    /// Pods the budget expects.
    pub expected: i32,
    /// `disruptedPods` as kept.
    pub disrupted: BTreeMap<String, Time>,
}

/// kube's `updatePdbStatus`: the status to write, or None when the stored one already says
/// it all.
pub fn next_status(
    pdb: &PodDisruptionBudget,
    counts: Counts,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    // A budget matching no pods allows nothing, so its first pods are safe before the
    // controller has counted them.
    let mut allowed = counts.current_healthy - counts.desired_healthy;
    if counts.expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let old = pdb.status.clone().unwrap_or_default();
    let old_disrupted = old.disrupted_pods.clone().unwrap_or_default();
    if old.current_healthy == counts.current_healthy
        && old.desired_healthy == counts.desired_healthy
        && old.expected_pods == counts.expected
        && old.disruptions_allowed == allowed
        && old_disrupted == counts.disrupted
        && old.observed_generation == pdb.metadata.generation
        && conditions_up_to_date(pdb)
    {
        return None;
    }
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: counts.current_healthy,
        desired_healthy: counts.desired_healthy,
        expected_pods: counts.expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!counts.disrupted.is_empty()).then_some(counts.disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: old.conditions,
    };
    update_disruption_allowed(&mut status, now);
    Some(status)
}

/// kube's `failSafe`: when the status cannot be worked out, at least no disruption is
/// allowed, and the condition says why.
pub fn fail_safe_status(
    pdb: &PodDisruptionBudget,
    message: &str,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let observed_generation = status.observed_generation;
    set_condition(
        status.conditions.get_or_insert_with(Vec::new),
        Condition {
            type_: DISRUPTION_ALLOWED.into(),
            status: "False".into(),
            reason: SYNC_FAILED.into(),
            message: message.to_owned(),
            observed_generation,
            last_transition_time: Time(now),
        },
    );
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> PodDisruptionBudgetSpec {
        serde_json::from_value(value).unwrap()
    }

    fn pod(name: &str, ready: bool, deleting: bool) -> Pod {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap();
        if deleting {
            pod.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        }
        pod
    }

    #[test]
    fn expected_and_desired_follow_the_spec() {
        // An integer minAvailable counts the pods, not the scale.
        let min_two = spec(json!({"minAvailable": 2}));
        assert!(!needs_scale(&min_two));
        assert_eq!(expected_and_desired(&min_two, 3, 99), Ok((3, 2)));
        // maxUnavailable 50% of 3 rounds up to 2 unavailable: 1 must stay.
        let half = spec(json!({"maxUnavailable": "50%"}));
        assert!(needs_scale(&half));
        assert_eq!(expected_and_desired(&half, 3, 3), Ok((3, 1)));
        assert_eq!(expected_and_desired(&half, 0, 4), Ok((4, 2)));
        // maxUnavailable past the scale leaves nothing to keep.
        let many = spec(json!({"maxUnavailable": 5}));
        assert_eq!(expected_and_desired(&many, 3, 3), Ok((3, 0)));
        // A percentage minAvailable rounds up.
        let most = spec(json!({"minAvailable": "60%"}));
        assert!(needs_scale(&most));
        assert_eq!(expected_and_desired(&most, 2, 4), Ok((4, 3)));
        assert_eq!(expected_and_desired(&spec(json!({})), 5, 5), Ok((0, 0)));
        assert_eq!(
            scaled_value(&IntOrString::String("half".into()), 4, true),
            Err("invalid value for IntOrString: invalid type: string is not a percentage".into())
        );
        assert!(scaled_value(&IntOrString::String("x%".into()), 4, true)
            .unwrap_err()
            .starts_with("invalid value for IntOrString: invalid value \"x%\""));
    }

    #[test]
    fn healthy_pods_are_ready_and_not_going() {
        let now = Timestamp::now();
        let (a, b, c, d) = (
            pod("a", true, false),
            pod("b", true, true),
            pod("c", false, false),
            pod("d", true, false),
        );
        let pods = [&a, &b, &c, &d];
        assert_eq!(current_healthy(&pods, &BTreeMap::new(), now), 2);
        let disrupted = BTreeMap::from([("d".to_owned(), Time(now))]);
        assert_eq!(current_healthy(&pods, &disrupted, now), 1);
    }

    #[test]
    fn disrupted_entries_expire_after_two_minutes() {
        let now = Timestamp::now();
        let (fresh, old, going) = (
            pod("fresh", true, false),
            pod("old", true, false),
            pod("going", true, true),
        );
        let recent = now - SignedDuration::from_secs(30);
        let map = BTreeMap::from([
            ("fresh".to_owned(), Time(recent)),
            ("old".to_owned(), Time(now - SignedDuration::from_secs(121))),
            ("going".to_owned(), Time(now)),
            ("gone".to_owned(), Time(now)),
        ]);
        let result = disrupted_pods(&[&fresh, &old, &going], Some(&map), now);
        assert_eq!(
            result.pods,
            BTreeMap::from([("fresh".to_owned(), Time(recent))])
        );
        assert_eq!(result.expired, ["old"]);
        assert_eq!(result.recheck, Some(recent + DELETION_TIMEOUT));
    }

    #[test]
    fn the_status_and_its_condition() {
        let now = Timestamp::now();
        let mut pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"minAvailable": 2},
        }))
        .unwrap();
        let counts = Counts {
            current_healthy: 3,
            desired_healthy: 2,
            expected: 3,
            disrupted: BTreeMap::new(),
        };
        let status = next_status(&pdb, counts.clone(), now).expect("a first status");
        assert_eq!(status.disruptions_allowed, 1);
        assert_eq!(status.observed_generation, Some(2));
        let condition = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", SUFFICIENT_PODS)
        );
        pdb.status = Some(status);
        assert_eq!(
            next_status(&pdb, counts.clone(), now),
            None,
            "nothing changed"
        );

        let later = now + SignedDuration::from_secs(5);
        let fewer = Counts {
            current_healthy: 2,
            ..counts
        };
        let status = next_status(&pdb, fewer, later).unwrap();
        assert_eq!(status.disruptions_allowed, 0);
        let condition = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("False", INSUFFICIENT_PODS)
        );
        assert_eq!(condition.last_transition_time, Time(later));

        // No expected pods: nothing allowed, whatever is healthy.
        let empty = Counts {
            current_healthy: 1,
            desired_healthy: 0,
            expected: 0,
            disrupted: BTreeMap::new(),
        };
        assert_eq!(
            next_status(&pdb, empty, now).unwrap().disruptions_allowed,
            0
        );

        let failed = fail_safe_status(&pdb, "found no controllers for pod \"x\"", now);
        assert_eq!(failed.disruptions_allowed, 0);
        let condition = &failed.conditions.as_ref().unwrap()[0];
        assert_eq!(condition.reason, SYNC_FAILED);
        assert_eq!(condition.message, "found no controllers for pod \"x\"");
    }
}
