//! The other core/v1 kinds: Nodes (status, roles, versions), Namespaces, ConfigMaps,
//! Secrets, ServiceAccounts, Events (core and events.k8s.io), ComponentStatuses and
//! ResourceQuotas.

use serde_json::{json, Value};

use super::cells::{
    age, at, condition, flag, int, list, map_len, name, quantity, since, text, timestamp,
};
use super::{col, wide, Column, AGE, NAME, NAME_DESC};

pub(super) const NODE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide("Internal-IP", "string", NODE_ADDRESSES_DESC),
    wide("External-IP", "string", NODE_ADDRESSES_DESC),
    wide(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];
const NODE_ADDRESSES_DESC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";

pub(super) fn node_cells(object: &Value, now: i64) -> Vec<Value> {
    let mut status = Vec::new();
    if let Some(ready) = condition(object, &["status", "conditions"], "Ready") {
        status.push(if text(ready, &["status"]) == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if flag(object, &["spec", "unschedulable"]) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = at(object, &["metadata", "labels"])
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| {
                    if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                        (!role.is_empty()).then(|| role.to_string())
                    } else if key == "kubernetes.io/role" {
                        value.as_str().filter(|v| !v.is_empty()).map(str::to_string)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |kind: &str| {
        list(object, &["status", "addresses"])
            .iter()
            .find(|a| text(a, &["type"]) == kind)
            .map_or_else(|| "<none>".to_string(), |a| text(a, &["address"]))
    };
    let info = |field: &str| {
        let value = text(object, &["status", "nodeInfo", field]);
        if value.is_empty() {
            "<unknown>".to_string()
        } else {
            value
        }
    };
    vec![
        name(object),
        Value::from(status.join(",")),
        Value::from(roles),
        age(object, now),
        Value::from(text(object, &["status", "nodeInfo", "kubeletVersion"])),
        Value::from(address("InternalIP")),
        Value::from(address("ExternalIP")),
        Value::from(info("osImage")),
        Value::from(info("kernelVersion")),
        Value::from(info("containerRuntimeVersion")),
    ]
}

pub(super) const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

pub(super) fn namespace_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["status", "phase"])),
        age(object, now),
    ]
}

pub(super) const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    AGE,
];

pub(super) fn config_map_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(map_len(object, &["data"]) + map_len(object, &["binaryData"])),
        age(object, now),
    ]
}

pub(super) const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    col(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    ),
    AGE,
];

pub(super) fn secret_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["type"])),
        Value::from(map_len(object, &["data"])),
        age(object, now),
    ]
}

pub(super) const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
    ),
    AGE,
];

pub(super) fn service_account_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(list(object, &["secrets"]).len() as i64),
        age(object, now),
    ]
}

pub(super) const EVENT_COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
    ),
    wide(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: NAME_DESC,
        priority: 1,
    },
];

/// printEvent, reading core/v1 events and events.k8s.io/v1 events alike.
pub(super) fn event_cells(object: &Value, now: i64) -> Vec<Value> {
    let pick = |paths: &[&[&str]]| {
        paths
            .iter()
            .find_map(|p| at(object, p))
            .filter(|v| !v.is_null())
    };
    let first_timestamp = pick(&[&["firstTimestamp"], &["deprecatedFirstTimestamp"]]);
    let last_timestamp = pick(&[&["lastTimestamp"], &["deprecatedLastTimestamp"]]);
    let first_seen = if timestamp(first_timestamp).is_some() {
        since(first_timestamp, now)
    } else {
        since(at(object, &["eventTime"]), now)
    };
    let mut last_seen = if timestamp(last_timestamp).is_some() {
        since(last_timestamp, now)
    } else {
        first_seen.clone()
    };
    let mut count = pick(&[&["count"], &["deprecatedCount"]])
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if let Some(series) = at(object, &["series"]).filter(|s| s.is_object()) {
        last_seen = since(at(series, &["lastObservedTime"]), now);
        count = int(series, &["count"]);
    } else if count == 0 {
        // Singleton events written through events.k8s.io carry no count.
        count = 1;
    }
    let reference = pick(&[&["involvedObject"], &["regarding"]])
        .cloned()
        .unwrap_or_else(|| json!({}));
    let involved_kind = text(&reference, &["kind"]).to_lowercase();
    let involved_name = text(&reference, &["name"]);
    let target = if involved_name.is_empty() {
        involved_kind
    } else {
        format!("{involved_kind}/{involved_name}")
    };
    let source = pick(&[&["source"], &["deprecatedSource"]])
        .cloned()
        .unwrap_or_else(|| json!({}));
    let first_non_empty = |a: String, b: String| if a.is_empty() { b } else { a };
    let component = first_non_empty(
        text(&source, &["component"]),
        text(object, &["reportingController"]),
    );
    let host = first_non_empty(
        text(&source, &["host"]),
        text(object, &["reportingInstance"]),
    );
    let source = if host.is_empty() {
        component
    } else {
        format!("{component}, {host}")
    };
    let message = pick(&[&["message"], &["note"]])
        .and_then(Value::as_str)
        .unwrap_or_default();
    vec![
        Value::from(last_seen),
        Value::from(text(object, &["type"])),
        Value::from(text(object, &["reason"])),
        Value::from(target),
        Value::from(text(&reference, &["fieldPath"])),
        Value::from(source),
        Value::from(message.trim()),
        Value::from(first_seen),
        Value::from(count),
        name(object),
    ]
}

pub(super) const COMPONENT_STATUS_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the component conditions"),
    col("Message", "string", "Message of the component conditions"),
    col("Error", "string", "Error of the component conditions"),
];

pub(super) fn component_status_cells(object: &Value, _now: i64) -> Vec<Value> {
    let (status, message, error) = match condition(object, &["conditions"], "Healthy") {
        Some(c) => (
            if text(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            text(c, &["message"]),
            text(c, &["error"]),
        ),
        None => ("Unknown", String::new(), String::new()),
    };
    vec![
        name(object),
        Value::from(status),
        Value::from(message),
        Value::from(error),
    ]
}

pub(super) const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

pub(super) fn resource_quota_cells(object: &Value, now: i64) -> Vec<Value> {
    let mut resources: Vec<&String> = at(object, &["status", "hard"])
        .and_then(Value::as_object)
        .map(|hard| hard.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for resource in resources {
        let entry = format!(
            "{resource}: {}/{}",
            quantity(at(object, &["status", "used", resource])),
            quantity(at(object, &["status", "hard", resource]))
        );
        let mut pieces = resource.split('.');
        let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
        if is_limit {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(object),
        Value::from(requests.join(", ")),
        Value::from(limits.join(", ")),
        age(object, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::fixtures::{ago, cell, cells, column_names, tab, visible_columns};

    #[test]
    fn node_status_and_roles() {
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": ago(3 * 86400),
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "", "kubernetes.io/role": "master"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "169.254.0.2"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian"}}
        });
        let table = tab("Node", "v1", node);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime"
            ]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,etcd,master"),
                json!("3d"),
                json!("v1.32.0"),
                json!("169.254.0.2"),
                json!("<none>"),
                json!("Debian"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
        assert_eq!(cell("Node", "v1", json!({}), "Status"), "Unknown");
        assert_eq!(cell("Node", "v1", json!({}), "Roles"), "<none>");
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(cell("Node", "v1", not_ready, "Status"), "NotReady");
    }

    #[test]
    fn simple_core_tables() {
        let cm = tab(
            "ConfigMap",
            "v1",
            json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}}),
        );
        assert_eq!(column_names(&cm), ["Name", "Data", "Age"]);
        assert_eq!(cells(&cm)[1], 3);
        let secret = tab(
            "Secret",
            "v1",
            json!({"type": "Opaque", "data": {"k": "dg=="}}),
        );
        assert_eq!(column_names(&secret), ["Name", "Type", "Data", "Age"]);
        assert_eq!(cells(&secret)[1..3], [json!("Opaque"), json!(1)]);
        let sa = tab("ServiceAccount", "v1", json!({"secrets": [{"name": "t"}]}));
        assert_eq!(column_names(&sa), ["Name", "Secrets", "Age"]);
        assert_eq!(cells(&sa)[1], 1);
        let ns = tab("Namespace", "v1", json!({"status": {"phase": "Active"}}));
        assert_eq!(column_names(&ns), ["Name", "Status", "Age"]);
        assert_eq!(cells(&ns)[1], "Active");
        let lease = tab(
            "Lease",
            "coordination.k8s.io/v1",
            json!({"spec": {"holderIdentity": "me"}}),
        );
        assert_eq!(column_names(&lease), ["Name", "Holder", "Age"]);
        assert_eq!(cells(&lease)[1], "me");
        let runtime = tab("RuntimeClass", "node.k8s.io/v1", json!({"handler": "runc"}));
        assert_eq!(column_names(&runtime), ["Name", "Handler", "Age"]);
        assert_eq!(cells(&runtime)[1], "runc");
        let pdb = tab(
            "PodDisruptionBudget",
            "policy/v1",
            json!({"spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}),
        );
        assert_eq!(
            column_names(&pdb),
            [
                "Name",
                "Min Available",
                "Max Unavailable",
                "Allowed Disruptions",
                "Age"
            ]
        );
        assert_eq!(cells(&pdb)[1..4], [json!("50%"), json!("N/A"), json!(1)]);
    }

    #[test]
    fn events_print_like_kubectl_get_events() {
        let event = json!({
            "metadata": {"name": "p.123"},
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
            "reason": "Pulled", "type": "Normal", "message": " pulled \n",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 4
        });
        let table = tab("Event", "v1", event);
        assert_eq!(
            visible_columns(&table),
            ["Last Seen", "Type", "Reason", "Object", "Message"]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("30s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/p"),
                json!("spec.containers{a}"),
                json!("kubelet, n1"),
                json!("pulled"),
                json!("10m"),
                json!(4),
                json!("p.123")
            ]
        );
        let new_style = json!({
            "regarding": {"kind": "Node", "name": "n1"}, "note": "hi", "reportingController": "ctl",
            "eventTime": "2023-11-14T22:13:10.000000Z"
        });
        let row = cells(&table_for_event(new_style));
        assert_eq!(row[3], "node/n1");
        assert_eq!(row[5], "ctl");
        assert_eq!(row[6], "hi");
        assert_eq!(row[8], 1);
        assert_eq!(row[0], row[7]);
    }

    fn table_for_event(event: Value) -> Value {
        tab("Event", "events.k8s.io/v1", event)
    }
}
