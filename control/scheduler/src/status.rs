//! The pod's `PodScheduled` condition when it could not be placed: `False`, reason
//! `Unschedulable` (no node fits) or `SchedulerError`, with the same message as the event,
//! written through `pods/status` only when it changes (as `podutil.UpdatePodCondition`).

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::error::{Error, Result};

/// `PodScheduled`.
pub const POD_SCHEDULED: &str = "PodScheduled";
/// The reason when no node fits.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";
/// The reason when scheduling failed otherwise (a binding error).
pub const REASON_SCHEDULER_ERROR: &str = "SchedulerError";

fn current(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == POD_SCHEDULED)
}

/// The strategic merge patch that sets `PodScheduled=False` with `reason` and `message`,
/// or `None` when the pod already says so.
pub fn unschedulable_patch(pod: &Pod, reason: &str, message: &str) -> Option<serde_json::Value> {
    let old = current(pod);
    if let Some(old) = old {
        if old.status == "False"
            && old.reason.as_deref() == Some(reason)
            && old.message.as_deref() == Some(message)
        {
            return None;
        }
    }
    // The transition time moves only when the status does.
    let transition = old
        .filter(|o| o.status == "False")
        .and_then(|o| o.last_transition_time.clone())
        .unwrap_or_else(|| Time(Timestamp::now()));
    Some(json!({"status": {"conditions": [{
        "type": POD_SCHEDULED,
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": transition,
    }]}}))
}

/// Writes `PodScheduled=False` on `pod` unless it already says so.
pub async fn mark_unschedulable(
    client: &kube::Client,
    pod: &Pod,
    reason: &str,
    message: &str,
) -> Result<()> {
    let Some(patch) = unschedulable_patch(pod, reason, message) else {
        return Ok(());
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map(drop)
        .map_err(|e| Error::api(format!("status of pod {namespace}/{name}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;
    use k8s_openapi::api::core::v1::PodStatus;

    #[test]
    fn the_condition_is_written_only_when_it_changes() {
        let mut p = pod("p").build();
        let patch = unschedulable_patch(&p, REASON_UNSCHEDULABLE, "0/1 nodes are available.")
            .expect("no condition yet");
        let condition = &patch["status"]["conditions"][0];
        assert_eq!(condition["type"], "PodScheduled");
        assert_eq!(condition["status"], "False");
        assert_eq!(condition["reason"], "Unschedulable");
        assert_eq!(condition["message"], "0/1 nodes are available.");
        assert!(condition["lastTransitionTime"].is_string());

        let since = Time(Timestamp::from_second(1_700_000_000).unwrap());
        p.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: POD_SCHEDULED.into(),
                status: "False".into(),
                reason: Some(REASON_UNSCHEDULABLE.into()),
                message: Some("0/1 nodes are available.".into()),
                last_transition_time: Some(since.clone()),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        assert_eq!(
            unschedulable_patch(&p, REASON_UNSCHEDULABLE, "0/1 nodes are available."),
            None
        );
        let changed = unschedulable_patch(&p, REASON_UNSCHEDULABLE, "0/2 nodes are available.")
            .expect("new message");
        assert_eq!(
            changed["status"]["conditions"][0]["lastTransitionTime"],
            serde_json::to_value(&since).unwrap(),
            "still False: the transition time stays"
        );
    }
}
