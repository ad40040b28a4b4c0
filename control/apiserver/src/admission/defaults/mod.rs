//! Defaults (pkg/apis/*/v1/defaults.go, the generated `+default` markers, and strategy steps),
//! one file per kind family; the kinds with only a handful of defaults (Secret, Namespace,
//! Node, PersistentVolume, PersistentVolumeClaim) are here.
//!
//! - `pod`: pod specs, containers, volumes, image pull policy and the QoS class.
//! - `workloads`: ReplicationControllers, Deployments, DaemonSets, StatefulSets, Jobs, CronJobs.
//! - `service`: Services.

pub(super) mod pod;
pub(super) mod service;
pub(super) mod workloads;

use serde_json::{json, Value};

use super::config::base64_encode;
use super::json::{default_field, entry_obj, obj_mut, present, text};
use super::quantity::canonicalize_resource_list;

/// Adds the fields of Go's zero-valued status struct that are not `omitempty`.
pub(super) fn default_status(object: &mut Value, zero: Value) {
    if let (Some(status), Value::Object(zero)) = (obj_mut(object, "status"), zero) {
        for (k, v) in zero {
            status.entry(k).or_insert(v);
        }
    }
}

pub(super) fn default_secret(secret: &mut Value) {
    default_field(secret, "type", json!("Opaque"));
    // Decoding folds stringData into data (base64-encoded); stringData is never stored.
    let string_data = secret.as_object_mut().and_then(|m| m.remove("stringData"));
    if let Some(Value::Object(entries)) = string_data {
        if let Some(data) = obj_mut(secret, "data") {
            for (k, v) in entries {
                let raw = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                data.insert(k, json!(base64_encode(raw.as_bytes())));
            }
        }
    }
}

pub(super) fn default_namespace(ns: &mut Value) {
    let name = text(&ns["metadata"], "name").to_owned();
    if !name.is_empty() {
        let labels = obj_mut(ns, "metadata").and_then(|m| entry_obj(m, "labels"));
        if let Some(labels) = labels {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if let Some(spec) = obj_mut(ns, "spec") {
        spec.entry("finalizers").or_insert(json!(["kubernetes"]));
    }
    default_status(ns, json!({"phase": "Active"}));
}

pub(super) fn default_node(node: &mut Value) {
    let Some(status) = node.get_mut("status").filter(|s| s.is_object()) else {
        return;
    };
    canonicalize_resource_list(status.get_mut("capacity"));
    canonicalize_resource_list(status.get_mut("allocatable"));
    if !present(status, "allocatable") {
        if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
            status["allocatable"] = capacity;
        }
    }
}

pub(super) fn default_pvc_spec(spec: &mut Value) {
    default_field(spec, "volumeMode", json!("Filesystem"));
    if let Some(resources) = spec.get_mut("resources").filter(|r| r.is_object()) {
        canonicalize_resource_list(resources.get_mut("requests"));
        canonicalize_resource_list(resources.get_mut("limits"));
    }
}

pub(super) fn default_persistent_volume_claim(pvc: &mut Value) {
    if obj_mut(pvc, "spec").is_some() {
        default_pvc_spec(&mut pvc["spec"]);
    }
    default_status(pvc, json!({"phase": "Pending"}));
}

pub(super) fn default_persistent_volume(pv: &mut Value) {
    if let Some(spec) = obj_mut(pv, "spec") {
        spec.entry("persistentVolumeReclaimPolicy")
            .or_insert(json!("Retain"));
        spec.entry("volumeMode").or_insert(json!("Filesystem"));
        canonicalize_resource_list(pv["spec"].get_mut("capacity"));
    }
    default_status(pv, json!({"phase": "Pending"}));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::defaulted;

    #[test]
    fn secret_defaults_fold_string_data() {
        let s = defaulted(
            "Secret",
            json!({"metadata": {"name": "s"}, "data": {"a": "YQ=="}, "stringData": {"b": "hello", "a": "x"}}),
        );
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"], json!({"a": "eA==", "b": "aGVsbG8="}));
        assert!(s.get("stringData").is_none());
        let tls = defaulted("Secret", json!({"type": "kubernetes.io/tls"}));
        assert_eq!(tls["type"], "kubernetes.io/tls");
    }

    #[test]
    fn namespace_defaults_match_kube() {
        let ns = defaulted(
            "Namespace",
            json!({"metadata": {"name": "team-a", "labels": {"x": "y"}}}),
        );
        assert_eq!(
            ns["metadata"]["labels"],
            json!({"x": "y", "kubernetes.io/metadata.name": "team-a"})
        );
        assert_eq!(ns["spec"], json!({"finalizers": ["kubernetes"]}));
        assert_eq!(ns["status"], json!({"phase": "Active"}));
    }

    #[test]
    fn node_allocatable_defaults_to_capacity() {
        let n = defaulted(
            "Node",
            json!({"status": {"capacity": {"cpu": "4", "memory": "8192Mi"}}}),
        );
        assert_eq!(
            n["status"]["allocatable"],
            json!({"cpu": "4", "memory": "8Gi"})
        );
    }
}
