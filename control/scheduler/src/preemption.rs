//! Carrying out a preemption through the API, as kube-scheduler's `prepareCandidate` does:
//! each victim gets the `DisruptionTarget` condition (reason `PreemptionByScheduler`), is
//! deleted gracefully (its node's agent stops it within its grace period), and gets a
//! `Preempted` event; the preemptor's `status.nominatedNodeName` names the node, and pods of
//! lower priority nominated there lose their nomination (the room is the preemptor's).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use crate::error::{Error, Result};
use crate::events::EventRecorder;
use crate::framework::PodInfo;
use crate::plugins::default_preemption::{
    Victim, DISRUPTION_TARGET, REASON_PREEMPTION_BY_SCHEDULER,
};

/// The patch that marks a victim as about to be preempted by `scheduler_name`.
pub fn disruption_target_patch(scheduler_name: &str) -> serde_json::Value {
    json!({"status": {"conditions": [{
        "type": DISRUPTION_TARGET,
        "status": "True",
        "reason": REASON_PREEMPTION_BY_SCHEDULER,
        "message": format!("{scheduler_name}: preempting to accommodate a higher priority pod"),
        "lastTransitionTime": Time(Timestamp::now()),
    }]}})
}

/// The `Preempted` event's message.
pub fn preempted_message(preemptor_uid: &str, node: &str) -> String {
    format!("Preempted by pod {preemptor_uid} on node {node}")
}

/// Marks, deletes and reports one victim. A victim already gone is not an error.
pub async fn evict(
    client: &kube::Client,
    events: &EventRecorder,
    scheduler_name: &str,
    preemptor: &PodInfo,
    node: &str,
    victim: &Victim,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &victim.namespace);
    let what = || format!("preempting {}/{}", victim.namespace, victim.name);
    let gone = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 404);
    let patch = disruption_target_patch(scheduler_name);
    match pods
        .patch_status(
            &victim.name,
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    {
        Ok(_) => {}
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(Error::api(what(), e)),
    }
    // The uid precondition: a pod recreated under the same name is not this victim.
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some(victim.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(&victim.name, &params).await {
        Ok(_) => {}
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(Error::api(what(), e)),
    }
    let mut regarding = Pod::default();
    regarding.metadata.name = Some(victim.name.clone());
    regarding.metadata.namespace = Some(victim.namespace.clone());
    regarding.metadata.uid = Some(victim.uid.clone());
    events.record(
        &regarding,
        "Normal",
        "Preempted",
        "Preempting",
        &preempted_message(&preemptor.uid, node),
    );
    Ok(())
}

/// Sets (or, with `None`, clears) `status.nominatedNodeName` of `pod`.
pub async fn set_nominated_node(
    client: &kube::Client,
    pod: &PodInfo,
    node: Option<&str>,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let patch = json!({"status": {"nominatedNodeName": node}});
    match pods
        .patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::api(format!("nominated node of {}", pod.key()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn victims_are_marked_and_reported_in_kubes_words() {
        let patch = disruption_target_patch("default-scheduler");
        let condition = &patch["status"]["conditions"][0];
        assert_eq!(condition["type"], "DisruptionTarget");
        assert_eq!(condition["status"], "True");
        assert_eq!(condition["reason"], "PreemptionByScheduler");
        assert_eq!(
            condition["message"],
            "default-scheduler: preempting to accommodate a higher priority pod"
        );
        assert_eq!(
            preempted_message("1234-abcd", "node-1"),
            "Preempted by pod 1234-abcd on node node-1"
        );
    }
}
