//! The Pod table (status reasons, readiness, restarts, nominated node and readiness gates,
//! plus the row conditions kubectl uses to grey out finished pods), PodTemplates and
//! PodDisruptionBudgets.

use serde_json::{json, Value};

use super::cells::{
    age, at, condition_true, containers_and_images, flag, format_labels, int, int_or_string,
    is_set, list, name, text, timestamp,
};
use super::{col, human_duration, wide, Column, AGE, CONTAINERS_DESC, IMAGES_DESC, NAME};

pub(super) const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    ),
    wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    ),
];

/// The row conditions kube attaches to finished pods.
pub(super) fn pod_row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, &["status", "phase"]).as_str() {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

fn finished_at(status: &Value) -> Option<i64> {
    timestamp(at(status, &["lastState", "terminated", "finishedAt"]))
}

/// printPod: READY, STATUS and RESTARTS follow kube's rules exactly, including
/// init containers, sidecars (restartable init containers), waiting and
/// terminated reasons and deletion.
pub(super) fn pod_cells(pod: &Value, now: i64) -> Vec<Value> {
    let init_specs = list(pod, &["spec", "initContainers"]);
    let is_sidecar = |container_name: &str| {
        init_specs.iter().any(|c| {
            text(c, &["name"]) == container_name && text(c, &["restartPolicy"]) == "Always"
        })
    };
    let total = list(pod, &["spec", "containers"]).len() as i64
        + init_specs
            .iter()
            .filter(|c| text(c, &["restartPolicy"]) == "Always")
            .count() as i64;
    let mut ready = 0i64;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<i64> = None;
    let mut last_sidecar_restart: Option<i64> = None;

    let phase = text(pod, &["status", "phase"]);
    let status_reason = text(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase.clone()
    } else {
        status_reason.clone()
    };
    for condition in list(pod, &["status", "conditions"]) {
        if text(condition, &["type"]) == "PodScheduled"
            && text(condition, &["reason"]) == "SchedulingGated"
        {
            reason = "SchedulingGated".to_string();
        }
    }

    let mut initializing = false;
    for (i, status) in list(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let container_restarts = int(status, &["restartCount"]);
        restarts += container_restarts;
        if let Some(t) = finished_at(status) {
            last_restart = last_restart.max(Some(t));
        }
        let sidecar = is_sidecar(&text(status, &["name"]));
        if sidecar {
            sidecar_restarts += container_restarts;
            if let Some(t) = finished_at(status) {
                last_sidecar_restart = last_sidecar_restart.max(Some(t));
            }
        }
        let terminated = at(status, &["state", "terminated"]).filter(|t| !t.is_null());
        let waiting_reason = text(status, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && flag(status, &["started"]) == Some(true) {
            if flag(status, &["ready"]) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(terminated) = terminated {
            let terminated_reason = text(terminated, &["reason"]);
            reason = if !terminated_reason.is_empty() {
                format!("Init:{terminated_reason}")
            } else if int(terminated, &["signal"]) != 0 {
                format!("Init:Signal:{}", int(terminated, &["signal"]))
            } else {
                format!("Init:ExitCode:{}", int(terminated, &["exitCode"]))
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, &["status", "conditions"], "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(status, &["restartCount"]);
            if let Some(t) = finished_at(status) {
                last_restart = last_restart.max(Some(t));
            }
            let waiting_reason = text(status, &["state", "waiting", "reason"]);
            let terminated = at(status, &["state", "terminated"]).filter(|t| !t.is_null());
            if !waiting_reason.is_empty() {
                reason = waiting_reason;
            } else if let Some(terminated) = terminated {
                let terminated_reason = text(terminated, &["reason"]);
                reason = if !terminated_reason.is_empty() {
                    terminated_reason
                } else if int(terminated, &["signal"]) != 0 {
                    format!("Signal:{}", int(terminated, &["signal"]))
                } else {
                    format!("ExitCode:{}", int(terminated, &["exitCode"]))
                };
            } else if flag(status, &["ready"]) == Some(true)
                && is_set(status, &["state", "running"])
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose main containers finished but a sidecar still runs is not "Completed".
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, &["status", "conditions"], "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = is_set(pod, &["metadata", "deletionTimestamp"]);
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let mut ip = list(pod, &["status", "podIPs"])
        .first()
        .map(|ip| text(ip, &["ip"]))
        .unwrap_or_default();
    if ip.is_empty() {
        ip = text(pod, &["status", "podIP"]);
    }
    let none_if_empty = |s: String| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s
        }
    };
    let gates = list(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list(pod, &["status", "conditions"]);
        let satisfied = gates
            .iter()
            .filter(|gate| {
                let wanted = text(gate, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| text(c, &["type"]) == wanted)
                    .is_some_and(|c| text(c, &["status"]) == "True")
            })
            .count();
        format!("{satisfied}/{}", gates.len())
    };

    vec![
        name(pod),
        Value::from(format!("{ready}/{total}")),
        Value::from(reason),
        Value::from(restarts_text),
        age(pod, now),
        Value::from(none_if_empty(ip)),
        Value::from(none_if_empty(text(pod, &["spec", "nodeName"]))),
        Value::from(none_if_empty(text(pod, &["status", "nominatedNodeName"]))),
        Value::from(readiness_gates),
    ]
}

pub(super) const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    col("Containers", "string", CONTAINERS_DESC),
    col("Images", "string", IMAGES_DESC),
    col("Pod Labels", "string", "The labels for the pod template."),
];

pub(super) fn pod_template_cells(object: &Value, _now: i64) -> Vec<Value> {
    let (names, images) = containers_and_images(list(object, &["template", "spec", "containers"]));
    vec![
        name(object),
        names,
        images,
        Value::from(format_labels(at(
            object,
            &["template", "metadata", "labels"],
        ))),
    ]
}

pub(super) const PDB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

pub(super) fn pdb_cells(object: &Value, now: i64) -> Vec<Value> {
    let bound = |field: &str| {
        at(object, &["spec", field])
            .filter(|v| !v.is_null())
            .map_or_else(|| "N/A".to_string(), int_or_string)
    };
    vec![
        name(object),
        Value::from(bound("minAvailable")),
        Value::from(bound("maxUnavailable")),
        Value::from(int(object, &["status", "disruptionsAllowed"])),
        age(object, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::fixtures::{ago, cell, cells, column_names, tab, visible_columns};

    #[test]
    fn pod_columns_and_ready_count() {
        let pod = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(200)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "169.254.1.4"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                    {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}
                ]
            }
        });
        let table = tab("Pod", "v1", pod);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(
            visible_columns(&table),
            ["Name", "Ready", "Status", "Restarts", "Age"]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("web"),
                json!("1/2"),
                json!("Running"),
                json!("0"),
                json!("3m20s"),
                json!("169.254.1.4"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pod_status_reasons() {
        let waiting = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 4,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}}
            ]}
        });
        assert_eq!(
            cell("Pod", "v1", waiting.clone(), "Status"),
            "CrashLoopBackOff"
        );
        assert_eq!(cell("Pod", "v1", waiting, "Restarts"), "4 (5m ago)");

        let creating = json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending",
            "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(cell("Pod", "v1", creating, "Status"), "ContainerCreating");

        let init = json!({
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                {"name": "i2", "state": {"running": {}}}
            ]}
        });
        assert_eq!(cell("Pod", "v1", init, "Status"), "Init:1/2");

        let init_failed = json!({
            "spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
            ]}
        });
        assert_eq!(
            cell("Pod", "v1", init_failed, "Status"),
            "Init:ImagePullBackOff"
        );

        let completed = json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Succeeded",
            "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        let table = tab("Pod", "v1", completed);
        assert_eq!(cells(&table)[2], "Completed");
        assert_eq!(table["rows"][0]["conditions"][0]["reason"], "Succeeded");

        let terminating = json!({"metadata": {"deletionTimestamp": ago(1)}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}});
        assert_eq!(cell("Pod", "v1", terminating, "Status"), "Terminating");

        let signalled = json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed",
            "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}});
        assert_eq!(cell("Pod", "v1", signalled, "Status"), "Signal:9");

        let gated = json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}});
        assert_eq!(cell("Pod", "v1", gated, "Status"), "SchedulingGated");

        let sidecar = json!({
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1, "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}
        });
        assert_eq!(cell("Pod", "v1", sidecar.clone(), "Ready"), "2/2");
        assert_eq!(cell("Pod", "v1", sidecar, "Restarts"), "1");
    }

    #[test]
    fn empty_pod_never_panics() {
        let row = cells(&tab("Pod", "v1", json!({})));
        assert_eq!(row[0], "");
        assert_eq!(row[1], "0/0");
        assert_eq!(row[4], "<unknown>");
        assert_eq!(row[5], "<none>");
        for kind in [
            "Node",
            "Service",
            "Deployment",
            "Event",
            "Job",
            "CronJob",
            "HorizontalPodAutoscaler",
            "Widget",
        ] {
            let table = tab(kind, "v1", json!({"spec": null, "status": 3}));
            assert_eq!(cells(&table).len(), column_names(&table).len(), "{kind}");
        }
    }
}
