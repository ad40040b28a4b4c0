//! Workload controllers: ReplicationControllers, ReplicaSets, DaemonSets, StatefulSets,
//! Deployments and their ControllerRevisions, Jobs and CronJobs.

use serde_json::Value;

use super::cells::{
    age, at, condition_true, containers_and_images, flag, format_label_selector, format_labels,
    int, is_set, list, name, since, text, timestamp,
};
use super::{col, human_duration, wide, Column, AGE, CONTAINERS_DESC, IMAGES_DESC, NAME};
use crate::selector::LabelSelector;

/// spec.replicas, which kube defaults to 1 for every scalable workload.
fn desired_replicas(object: &Value) -> i64 {
    at(object, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

pub(super) const RC_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replication controller.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

pub(super) fn rc_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(desired_replicas(object)),
        Value::from(int(object, &["status", "replicas"])),
        Value::from(int(object, &["status", "readyReplicas"])),
        age(object, now),
        names,
        images,
        Value::from(format_labels(at(object, &["spec", "selector"]))),
    ]
}

pub(super) const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

pub(super) fn replica_set_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(desired_replicas(object)),
        Value::from(int(object, &["status", "replicas"])),
        Value::from(int(object, &["status", "readyReplicas"])),
        age(object, now),
        names,
        images,
        Value::from(format_label_selector(at(object, &["spec", "selector"]))),
    ]
}

pub(super) const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    col(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    col(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
    ),
    col(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
    ),
    col(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    col(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

pub(super) fn daemon_set_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(int(object, &["status", "desiredNumberScheduled"])),
        Value::from(int(object, &["status", "currentNumberScheduled"])),
        Value::from(int(object, &["status", "numberReady"])),
        Value::from(int(object, &["status", "updatedNumberScheduled"])),
        Value::from(int(object, &["status", "numberAvailable"])),
        Value::from(format_labels(at(
            object,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        age(object, now),
        names,
        images,
        Value::from(format_label_selector(at(object, &["spec", "selector"]))),
    ]
}

pub(super) const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
];

pub(super) fn stateful_set_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(format!(
            "{}/{}",
            int(object, &["status", "readyReplicas"]),
            desired_replicas(object)
        )),
        age(object, now),
        names,
        images,
    ]
}

pub(super) const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    ),
];

pub(super) fn deployment_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    // Unlike the other workloads, printDeployment prints an empty selector as "".
    let selector =
        match LabelSelector::from_json(at(object, &["spec", "selector"]).unwrap_or(&Value::Null)) {
            Ok(selector) => selector.to_string(),
            Err(_) => "<invalid>".to_string(),
        };
    vec![
        name(object),
        Value::from(format!(
            "{}/{}",
            int(object, &["status", "readyReplicas"]),
            desired_replicas(object)
        )),
        Value::from(int(object, &["status", "updatedReplicas"])),
        Value::from(int(object, &["status", "availableReplicas"])),
        age(object, now),
        names,
        images,
        Value::from(selector),
    ]
}

pub(super) const JOB_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

pub(super) fn job_cells(object: &Value, now: i64) -> Vec<Value> {
    let succeeded = int(object, &["status", "succeeded"]);
    let completions = match at(object, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => {
            let parallelism = int(object, &["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        timestamp(at(object, &["status", "startTime"])),
        timestamp(at(object, &["status", "completionTime"])),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let conditions = ["status", "conditions"];
    let status = if condition_true(object, &conditions, "Complete") {
        "Complete"
    } else if condition_true(object, &conditions, "Failed") {
        "Failed"
    } else if is_set(object, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if condition_true(object, &conditions, "Suspended") {
        "Suspended"
    } else if condition_true(object, &conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(status),
        Value::from(completions),
        Value::from(duration),
        age(object, now),
        names,
        images,
        Value::from(format_label_selector(at(object, &["spec", "selector"]))),
    ]
}

pub(super) const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    ),
    col(
        "Timezone",
        "string",
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
    ),
    col(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
    ),
    col(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
    ),
    col(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

pub(super) fn cron_job_cells(object: &Value, now: i64) -> Vec<Value> {
    let last_schedule = if is_set(object, &["status", "lastScheduleTime"]) {
        since(at(object, &["status", "lastScheduleTime"]), now)
    } else {
        "<none>".to_string()
    };
    let time_zone = at(object, &["spec", "timeZone"])
        .and_then(Value::as_str)
        .unwrap_or("<none>")
        .to_string();
    let suspend = match flag(object, &["spec", "suspend"]) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let template = [
        "spec",
        "jobTemplate",
        "spec",
        "template",
        "spec",
        "containers",
    ];
    let (names, images) = containers_and_images(list(object, &template));
    vec![
        name(object),
        Value::from(text(object, &["spec", "schedule"])),
        Value::from(time_zone),
        Value::from(suspend),
        Value::from(list(object, &["status", "active"]).len() as i64),
        Value::from(last_schedule),
        age(object, now),
        names,
        images,
        Value::from(format_label_selector(at(
            object,
            &["spec", "jobTemplate", "spec", "selector"],
        ))),
    ]
}

pub(super) const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

pub(super) fn controller_revision_cells(object: &Value, now: i64) -> Vec<Value> {
    let controller = list(object, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| flag(r, &["controller"]) == Some(true))
        .map_or_else(
            || "<none>".to_string(),
            |owner| {
                let api_version = text(owner, &["apiVersion"]);
                let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
                let kind = text(owner, &["kind"]);
                let group_kind = if group.is_empty() {
                    kind
                } else {
                    format!("{kind}.{group}")
                };
                if group_kind.is_empty() {
                    text(owner, &["name"])
                } else {
                    format!("{}/{}", group_kind.to_lowercase(), text(owner, &["name"]))
                }
            },
        );
    vec![
        name(object),
        Value::from(controller),
        Value::from(int(object, &["revision"])),
        age(object, now),
    ]
}

#[cfg(test)]
mod tests {

    use crate::table::fixtures::{ago, cell, cells, column_names, tab, visible_columns};
    use serde_json::json;

    #[test]
    fn workload_tables() {
        let template = json!({"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}});
        let deployment = json!({
            "metadata": {"name": "d", "creationTimestamp": ago(30)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}}, "template": template},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let table = tab("Deployment", "apps/v1", deployment);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("d"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("30s"),
                json!("a,b"),
                json!("nginx,busybox"),
                json!("app=d")
            ]
        );

        let replica_set = json!({"spec": {"replicas": 2, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}},
            "status": {"replicas": 2, "readyReplicas": 1}});
        let table = tab("ReplicaSet", "apps/v1", replica_set);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(cells(&table)[1..4], [json!(2), json!(2), json!(1)]);
        assert_eq!(cells(&table)[7], "app in (x)");

        let stateful = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        let table = tab("StatefulSet", "apps/v1", stateful);
        assert_eq!(visible_columns(&table), ["Name", "Ready", "Age"]);
        assert_eq!(cells(&table)[1], "3/3");

        let daemon = tab(
            "DaemonSet",
            "apps/v1",
            json!({"status": {"desiredNumberScheduled": 4, "numberReady": 3}}),
        );
        assert_eq!(
            visible_columns(&daemon),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Up-to-date",
                "Available",
                "Node Selector",
                "Age"
            ]
        );
        assert_eq!(
            cells(&daemon)[1..7],
            [
                json!(4),
                json!(0),
                json!(3),
                json!(0),
                json!(0),
                json!("<none>")
            ]
        );
        assert_eq!(cells(&daemon)[10], "<none>");
    }

    #[test]
    fn job_status_completions_and_duration() {
        let job = json!({
            "metadata": {"name": "j", "creationTimestamp": ago(400)},
            "spec": {"completions": 3},
            "status": {"succeeded": 3, "startTime": ago(390), "completionTime": ago(300),
                "conditions": [{"type": "Complete", "status": "True"}]}
        });
        let table = tab("Job", "batch/v1", job);
        assert_eq!(
            visible_columns(&table),
            ["Name", "Status", "Completions", "Duration", "Age"]
        );
        assert_eq!(
            cells(&table)[1..5],
            [
                json!("Complete"),
                json!("3/3"),
                json!("90s"),
                json!("6m40s")
            ]
        );
        let running = json!({"spec": {"parallelism": 2}, "status": {"startTime": ago(5)}});
        assert_eq!(
            cell("Job", "batch/v1", running.clone(), "Completions"),
            "0/1 of 2"
        );
        assert_eq!(
            cell("Job", "batch/v1", running.clone(), "Status"),
            "Running"
        );
        assert_eq!(cell("Job", "batch/v1", running, "Duration"), "5s");
        assert_eq!(cell("Job", "batch/v1", json!({}), "Duration"), "");
    }
}
