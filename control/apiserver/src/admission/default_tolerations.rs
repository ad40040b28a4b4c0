//! kube-apiserver's `DefaultTolerationSeconds` admission plugin: a pod created without a
//! toleration of the `node.kubernetes.io/not-ready` or `node.kubernetes.io/unreachable`
//! NoExecute taints gets one for 300 seconds, so the node lifecycle controller evicts it five
//! minutes after its node stops answering rather than at once.

use serde_json::{json, Value};

/// The taint the node lifecycle controller puts on a node whose Ready condition is False.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The taint on a node whose Ready condition is Unknown (its agent went silent).
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// kube's `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Adds the default tolerations to a Pod being created (other kinds are left alone).
pub fn add_default_tolerations(kind: &str, pod: &mut Value) {
    if kind != "Pod" || !pod["spec"].is_object() {
        return;
    }
    let existing = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // kube's test: a toleration with this key (or no key) and the NoExecute effect (or none)
    // already covers the taint, whatever its operator.
    let tolerates = |taint: &str| {
        existing.iter().any(|t| {
            let key = t["key"].as_str().unwrap_or("");
            let effect = t["effect"].as_str().unwrap_or("");
            (key == taint || key.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        })
    };
    let mut added = Vec::new();
    for taint in [NOT_READY_TAINT, UNREACHABLE_TAINT] {
        if !tolerates(taint) {
            added.push(
                json!({"key": taint, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}),
            );
        }
    }
    if added.is_empty() {
        return;
    }
    let mut tolerations = existing;
    tolerations.extend(added);
    pod["spec"]["tolerations"] = Value::Array(tolerations);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_gets_both_tolerations_for_300_seconds() {
        let mut pod = json!({"spec": {"containers": []}});
        add_default_tolerations("Pod", &mut pod);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
    }

    #[test]
    fn a_pod_that_already_tolerates_keeps_its_own() {
        let mut pod = json!({"spec": {"tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 2},
        ]}});
        add_default_tolerations("Pod", &mut pod);
        let tolerations = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(tolerations.len(), 2);
        assert_eq!(tolerations[0]["tolerationSeconds"], 2);
        assert_eq!(tolerations[1]["key"], "node.kubernetes.io/not-ready");

        // A toleration of every taint (no key, operator Exists) covers both.
        let mut everything = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add_default_tolerations("Pod", &mut everything);
        assert_eq!(
            everything["spec"]["tolerations"].as_array().unwrap().len(),
            1
        );
        // A NoSchedule toleration does not.
        let mut no_schedule = json!({"spec": {"tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"},
        ]}});
        add_default_tolerations("Pod", &mut no_schedule);
        assert_eq!(
            no_schedule["spec"]["tolerations"].as_array().unwrap().len(),
            3
        );
    }

    #[test]
    fn other_kinds_are_untouched() {
        let mut rs = json!({"spec": {"template": {"spec": {}}}});
        add_default_tolerations("ReplicaSet", &mut rs);
        assert_eq!(rs, json!({"spec": {"template": {"spec": {}}}}));
    }
}
