//! podFailurePolicy: what a failed pod means to its Job, by the first rule it matches (kube's
//! `matchPodFailurePolicy`). A rule matches on a non-zero exit code of a container
//! (`onExitCodes`, regular containers before init containers) or on a pod condition
//! (`onPodConditions`, e.g. DisruptionTarget=True). `FailJob` fails the Job at once,
//! `Ignore` leaves the failure out of `status.failed` (so out of the backoffLimit), `Count`
//! counts it as if no rule matched. `FailIndex` belongs to backoffLimitPerIndex, which is not
//! done: it counts the failure.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// What a failed pod does to its Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Counted in `status.failed`.
    Count,
    /// Not counted.
    Ignore,
    /// Counted, and the Job fails with reason PodFailurePolicy and this message.
    FailJob(String),
}

/// The verdict on `pod`, failed, under `policy`.
pub fn judge(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Verdict {
    let Some(policy) = policy else {
        return Verdict::Count;
    };
    let status = pod.status.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched = if let Some(requirement) = &rule.on_exit_codes {
            let container = matching_container(status.container_statuses.as_deref(), requirement)
                .or_else(|| {
                    matching_container(status.init_container_statuses.as_deref(), requirement)
                });
            container.map(|c| {
                let code = c
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map_or(0, |t| t.exit_code);
                format!(
                    "Container {} for pod {namespace}/{name} failed with exit code {code} \
                     matching {} rule at index {index}",
                    c.name, rule.action
                )
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let conditions = status.conditions.as_deref().unwrap_or(&[]);
            patterns.iter().find_map(|pattern| {
                conditions
                    .iter()
                    .find(|c| c.type_ == pattern.type_ && c.status == pattern.status)
                    .map(|c| {
                        format!(
                            "Pod {namespace}/{name} has condition {} matching {} rule at \
                             index {index}",
                            c.type_, rule.action
                        )
                    })
            })
        } else {
            None
        };
        if let Some(message) = matched {
            return match rule.action.as_str() {
                "FailJob" => Verdict::FailJob(message),
                "Ignore" => Verdict::Ignore,
                _ => Verdict::Count,
            };
        }
    }
    Verdict::Count
}

/// The first terminated container with a non-zero exit code the requirement matches.
fn matching_container<'a>(
    statuses: Option<&'a [ContainerStatus]>,
    requirement: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<&'a ContainerStatus> {
    statuses.unwrap_or(&[]).iter().find(|c| {
        let Some(code) = c
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code)
        else {
            return false;
        };
        let named = requirement
            .container_name
            .as_ref()
            .is_none_or(|n| *n == c.name);
        let listed = requirement.values.contains(&code);
        let operator = match requirement.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        };
        named && code != 0 && operator
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed_pod(exit_codes: &[(&str, i32)], conditions: serde_json::Value) -> Pod {
        let statuses: Vec<serde_json::Value> = exit_codes
            .iter()
            .map(|(name, code)| {
                json!({"name": name, "image": "x", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"terminated": {"exitCode": code}}})
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "containerStatuses": statuses, "conditions": conditions},
        }))
        .unwrap()
    }

    fn policy(rules: serde_json::Value) -> PodFailurePolicy {
        serde_json::from_value(json!({ "rules": rules })).unwrap()
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let p = policy(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}},
        ]));
        let disrupted = failed_pod(
            &[("main", 42)],
            json!([{"type": "DisruptionTarget", "status": "True"}]),
        );
        assert_eq!(judge(Some(&p), &disrupted), Verdict::Ignore);
        assert_eq!(
            judge(
                Some(&p),
                &failed_pod(&[("side", 0), ("main", 42)], json!([]))
            ),
            Verdict::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule \
                 at index 1"
                    .into()
            )
        );
        // 42 in another container: not the FailJob rule's; NotIn [1] counts it.
        assert_eq!(
            judge(Some(&p), &failed_pod(&[("side", 42)], json!([]))),
            Verdict::Count
        );
        assert_eq!(
            judge(Some(&p), &failed_pod(&[("main", 1)], json!([]))),
            Verdict::Ignore
        );
        assert_eq!(
            judge(None, &failed_pod(&[("main", 42)], json!([]))),
            Verdict::Count
        );
    }

    #[test]
    fn a_condition_rule_names_the_condition() {
        let p = policy(json!([
            {"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue", "status": "True"}]},
        ]));
        let pod = failed_pod(&[], json!([{"type": "ConfigIssue", "status": "True"}]));
        assert_eq!(
            judge(Some(&p), &pod),
            Verdict::FailJob(
                "Pod ns/p has condition ConfigIssue matching FailJob rule at index 0".into()
            )
        );
        let pod = failed_pod(&[], json!([{"type": "ConfigIssue", "status": "False"}]));
        assert_eq!(judge(Some(&p), &pod), Verdict::Count);
    }
}
