//! The taints the node lifecycle controller manages, and kube's rule for whether a toleration
//! tolerates a taint (`Toleration.ToleratesTaint`).
//!
//! A node's conditions map to taints the way kube's `doNoScheduleTaintingPass` and
//! `doNoExecuteTaintingPass` map them: Ready=False gives `node.kubernetes.io/not-ready`,
//! Ready=Unknown (or no Ready condition) `node.kubernetes.io/unreachable`, both as NoSchedule
//! and NoExecute; the pressure conditions and `spec.unschedulable` give NoSchedule taints.
//! Only these keys are ever added or removed: taints a user set stay as they are.

use k8s_openapi::api::core::v1::{Node, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Ready=False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Ready=Unknown: the node's agent stopped reporting.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `spec.unschedulable` (kubectl cordon).
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// MemoryPressure=True.
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
/// DiskPressure=True.
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
/// PIDPressure=True.
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
/// NetworkUnavailable=True.
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// The NoSchedule taint keys this controller owns.
const NO_SCHEDULE_KEYS: [&str; 7] = [
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    PID_PRESSURE,
    NETWORK_UNAVAILABLE,
];

/// The status of condition `type_` on `node`, if it has one.
pub fn condition_status<'a>(node: &'a Node, type_: &str) -> Option<&'a str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// Whether the node's Ready condition is True.
pub fn is_ready(node: &Node) -> bool {
    condition_status(node, "Ready") == Some("True")
}

/// The NoExecute taint the node's readiness calls for: `not-ready` for Ready=False,
/// `unreachable` for Unknown or no Ready condition, none for a ready node.
pub fn no_execute_key(node: &Node) -> Option<&'static str> {
    match condition_status(node, "Ready") {
        Some("True") => None,
        Some("False") => Some(NOT_READY),
        _ => Some(UNREACHABLE),
    }
}

/// The NoSchedule taint keys the node's conditions and spec call for.
pub fn no_schedule_keys(node: &Node) -> Vec<&'static str> {
    let mut keys = Vec::new();
    match condition_status(node, "Ready") {
        Some("True") => {}
        Some("False") => keys.push(NOT_READY),
        _ => keys.push(UNREACHABLE),
    }
    for (condition, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if condition_status(node, condition) == Some("True") {
            keys.push(key);
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        keys.push(UNSCHEDULABLE);
    }
    keys
}

/// The node's taints with the managed NoSchedule taints set to `no_schedule` and the managed
/// NoExecute taint set to `no_execute`, new ones stamped `now`; None when nothing changes.
pub fn retaint(
    current: &[Taint],
    no_schedule: &[&str],
    no_execute: Option<&str>,
    now: Timestamp,
) -> Option<Vec<Taint>> {
    let managed = |t: &Taint| match t.effect.as_str() {
        "NoSchedule" => NO_SCHEDULE_KEYS.contains(&t.key.as_str()),
        "NoExecute" => t.key == NOT_READY || t.key == UNREACHABLE,
        _ => false,
    };
    let wanted = |t: &Taint| match t.effect.as_str() {
        "NoSchedule" => no_schedule.contains(&t.key.as_str()),
        _ => no_execute == Some(t.key.as_str()),
    };
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|t| !managed(t) || wanted(t))
        .cloned()
        .collect();
    let has = |taints: &[Taint], key: &str, effect: &str| {
        taints.iter().any(|t| t.key == key && t.effect == effect)
    };
    let mut added = Vec::new();
    for key in no_schedule {
        if !has(&taints, key, "NoSchedule") {
            added.push(taint(key, "NoSchedule", now));
        }
    }
    if let Some(key) = no_execute {
        if !has(&taints, key, "NoExecute") {
            added.push(taint(key, "NoExecute", now));
        }
    }
    if added.is_empty() && taints.len() == current.len() {
        return None;
    }
    taints.extend(added);
    Some(taints)
}

fn taint(key: &str, effect: &str, now: Timestamp) -> Taint {
    Taint {
        key: key.to_owned(),
        effect: effect.to_owned(),
        time_added: Some(Time(now)),
        value: None,
    }
}

/// The node's NoExecute taint of the controller's own, if any.
pub fn current_no_execute(taints: &[Taint]) -> Option<&str> {
    taints
        .iter()
        .find(|t| t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE))
        .map(|t| t.key.as_str())
}

/// Whether `toleration` tolerates `taint` (kube's `ToleratesTaint`): the effects agree (or
/// the toleration names none), the keys agree (or the toleration has no key and operator
/// Exists), and for operator Equal (the default) the values agree.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).unwrap()
    }

    fn keys(taints: &[Taint]) -> Vec<(String, String)> {
        taints
            .iter()
            .map(|t| (t.key.clone(), t.effect.clone()))
            .collect()
    }

    #[test]
    fn readiness_maps_to_kubes_taints() {
        let ready = node(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        let not_ready =
            node(json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}));
        let unknown =
            node(json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}));
        assert_eq!(no_execute_key(&ready), None);
        assert_eq!(no_execute_key(&not_ready), Some(NOT_READY));
        assert_eq!(no_execute_key(&unknown), Some(UNREACHABLE));
        assert_eq!(no_execute_key(&node(json!({}))), Some(UNREACHABLE));
        let cordoned = node(
            json!({"spec": {"unschedulable": true}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "True"}]}}),
        );
        assert_eq!(no_schedule_keys(&cordoned), [DISK_PRESSURE, UNSCHEDULABLE]);
    }

    #[test]
    fn retaint_keeps_user_taints_and_swaps_managed_ones() {
        let now = Timestamp::UNIX_EPOCH;
        let user = Taint {
            key: "dedicated".into(),
            effect: "NoExecute".into(),
            value: Some("gpu".into()),
            time_added: None,
        };
        let current = vec![user.clone(), taint(NOT_READY, "NoExecute", now)];
        let next = retaint(&current, &[UNREACHABLE], Some(UNREACHABLE), now).unwrap();
        assert_eq!(
            keys(&next),
            [
                ("dedicated".into(), "NoExecute".into()),
                (UNREACHABLE.into(), "NoSchedule".into()),
                (UNREACHABLE.into(), "NoExecute".into()),
            ]
        );
        assert_eq!(retaint(&next, &[UNREACHABLE], Some(UNREACHABLE), now), None);
        let healed = retaint(&next, &[], None, now).unwrap();
        assert_eq!(keys(&healed), [("dedicated".into(), "NoExecute".into())]);
        assert_eq!(current_no_execute(&next), Some(UNREACHABLE));
        assert_eq!(current_no_execute(&healed), None);
    }

    #[test]
    fn tolerations_match_as_kube_matches_them() {
        let taint = Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            value: None,
            time_added: None,
        };
        let t = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        assert!(tolerates(&t(json!({"operator": "Exists"})), &taint));
        assert!(tolerates(
            &t(json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
        assert!(tolerates(&t(json!({"key": UNREACHABLE})), &taint));
        assert!(!tolerates(
            &t(json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"})),
            &taint
        ));
        assert!(!tolerates(
            &t(json!({"key": NOT_READY, "operator": "Exists"})),
            &taint
        ));
        assert!(!tolerates(
            &t(json!({"key": UNREACHABLE, "value": "x"})),
            &taint
        ));
        // No key with Equal tolerates nothing.
        assert!(!tolerates(&t(json!({})), &taint));
    }
}
