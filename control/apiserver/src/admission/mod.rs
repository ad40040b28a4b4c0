//! Defaulting and validation of built-in kinds, the way kube-apiserver (v1.32/1.33) does it.
//!
//! kubectl and the Python client see kube's defaults in every object they read back (a
//! Deployment's `strategy`, a container's `imagePullPolicy`, ...) and parse kube's validation
//! messages out of 422 Status responses, so both have to match kube's own output closely:
//!
//! * [`apply_defaults`] mirrors `pkg/apis/*/v1/defaults.go` with the generated `+default`
//!   markers, the create-time strategy steps that behave like defaults (a Job's generated
//!   selector, a Namespace's finalizer and name label, a Secret's `stringData`), the canonical
//!   re-serialisation of resource quantities, and the zero-valued `status` structs that Go's
//!   encoder always writes.
//! * [`validate`] mirrors `pkg/apis/*/validation` for the kinds keel serves, producing
//!   [`FieldError`]s whose reason, field path and message text are kube's, including the way
//!   Go renders bad values (`%q` for strings, `%#v` for maps and label selectors).
//! * [`validate_name`] applies the per-kind `metadata.name` rule.
//!
//! Objects are `serde_json::Value`s in Go's JSON shape. Nothing here panics on user input:
//! a field of the wrong JSON type is treated as absent, the way a lenient decoder would.
//!
//! # Layout
//!
//! This file holds the public entry points and the dispatch by kind; the rules live in:
//!
//! - `field`: building [`FieldError`]s as apimachinery's `field` package does, bad values
//!   printed as Go's `%q`/`%#v` would, and the checks every kind shares.
//! - `json`: reading and writing objects leniently, and Go's semantic equality.
//! - `names`: DNS-1123/1035 names, qualified names, label values, config keys, port names.
//! - `quantity`: resource quantities: parsing, comparing and printing them as kube does.
//! - `defaults`: `defaults.go` per kind family (pods, workloads, services, the rest).
//! - `meta`: `metadata` (labels, annotations, finalizers, what an update may not change)
//!   and a Namespace's finalizers.
//! - `label_selector`: validating label selectors and matching them against templates.
//! - `pod_spec`: pod specs and templates: volumes, tolerations, the spec-level enums.
//! - `containers`: containers and init containers: ports, env, mounts, probes, handlers.
//! - `resources`: container resource requirements (names, requests and limits).
//! - `pod`: Pods, and the few fields a Pod update may change.
//! - `workloads`: Deployments, ReplicaSets, ReplicationControllers, DaemonSets, StatefulSets.
//! - `jobs`: Jobs and CronJobs, with the cron schedule parser.
//! - `service`: Services.
//! - `config`: ConfigMaps and Secrets, and the base64 of Secret data.
//! - `rbac`: Roles, ClusterRoles and their bindings.
//! - `priority`: PriorityClasses, and the `Priority` plugin's resolution of a pod's class.
//! - `limit_range`: LimitRanges, and the `LimitRanger` plugin's defaults and limits for pods.
//! - `resource_quota`: ResourceQuotas, and the `ResourceQuota` plugin's charge for a create.
//! - `default_tolerations`: the `DefaultTolerationSeconds` plugin, pods' 300 s tolerations of
//!   unreachable and not-ready nodes, added on create.

mod config;
mod containers;
mod default_tolerations;
mod defaults;
mod field;
#[cfg(test)]
mod fixtures;
mod jobs;
mod json;
mod label_selector;
pub mod limit_range;
mod meta;
mod names;
mod pod;
mod pod_spec;
pub mod priority;
mod quantity;
pub mod rbac;
pub mod resource_quota;
mod resources;
mod service;
mod workloads;

use serde_json::{json, Map, Value};

use config::{validate_config_map, validate_secret};
pub use default_tolerations::add_default_tolerations;
use defaults::pod::{default_pod, default_pod_template};
use defaults::service::default_service;
use defaults::workloads::{
    default_cron_job, default_daemon_set, default_deployment, default_job,
    default_replication_controller, default_stateful_set,
};
use defaults::{
    default_namespace, default_node, default_persistent_volume, default_persistent_volume_claim,
    default_secret, default_status,
};
use field::{invalid, required, Bad};
use jobs::{validate_cron_job, validate_job};
use json::{default_field, each_mut, obj_mut};
use meta::{validate_meta, validate_meta_update, validate_namespace};
use names::{dns1035_label, dns1123_label, dns1123_subdomain, path_segment_name};
use pod::validate_pod;
use pod_spec::validate_pod_template;
use service::validate_service;
use workloads::{
    validate_daemon_set, validate_deployment, validate_replica_set,
    validate_replication_controller, validate_stateful_set,
};

type Obj = Map<String, Value>;

/// One invalid field, as a Status cause: reason e.g. `FieldValueRequired`, `FieldValueInvalid`,
/// `FieldValueNotSupported`, `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`;
/// field e.g. `spec.containers[0].image`; message the detail kube prints after the field
/// (`Required value`, `Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of ...`,
/// `Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The Status cause type, e.g. "FieldValueInvalid".
    pub reason: &'static str,
    /// The field path, e.g. `spec.containers[0].image`.
    pub field: String,
    /// What kube prints after the field, e.g. "Required value".
    pub message: String,
}

impl FieldError {
    /// `<field>: <message>`, the way kube joins it into a Status message.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// Name rules: which validation kube applies to metadata.name of `kind` — a DNS-1123 subdomain
/// for most kinds; a DNS-1123 label for Namespace and StatefulSet; a DNS-1035 label for
/// Service; path-segment rules (not "." or "..", no "/" or "%") for the RBAC kinds. CronJob
/// names are also capped at 52 characters so the Jobs they spawn stay within 63. Returns the
/// FieldErrors for field "metadata.name" (generateName prefix handling is the caller's).
pub fn validate_name(kind: &str, name: &str) -> Vec<FieldError> {
    const FIELD: &str = "metadata.name";
    if name.is_empty() {
        return vec![required(FIELD, "name or generateName is required")];
    }
    let messages = match kind {
        "Namespace" | "StatefulSet" => dns1123_label(name),
        "Service" => dns1035_label(name),
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => path_segment_name(name),
        _ => dns1123_subdomain(name),
    };
    let mut errs: Vec<FieldError> = messages
        .iter()
        .map(|m| invalid(FIELD, Bad::str(name), m))
        .collect();
    // The CronJob controller appends an 11-character suffix to name its Jobs.
    if kind == "CronJob" && name.len() > 52 {
        errs.push(invalid(
            FIELD,
            Bad::str(name),
            "must be no more than 52 characters",
        ));
    }
    errs
}

/// kube's DNS-1035 label rule, as the messages it gives (empty: valid); CRD names use it.
pub fn dns1035_label_errors(text: &str) -> Vec<String> {
    dns1035_label(text)
}

/// kube's DNS-1123 subdomain rule, as the messages it gives (empty: valid).
pub fn dns1123_subdomain_errors(text: &str) -> Vec<String> {
    dns1123_subdomain(text)
}

/// Fills in the defaults kube-apiserver applies on create and update for `kind` (e.g. "Pod",
/// "Deployment"). Only absent (or null) fields are filled (save a Namespace's name label, which
/// kube always overwrites), so applying it twice changes nothing.
///
/// Besides `defaults.go` this also performs the create-time strategy steps whose results look
/// like defaults to clients: a Job's generated selector and labels (which need `metadata.uid`,
/// so call it after the uid is assigned, and after `generateName` is resolved so the
/// `job-name` label carries the final name), a Namespace's `kubernetes` finalizer and
/// `kubernetes.io/metadata.name` label, a Secret's `stringData` folded into `data`, a Service's
/// `clusterIPs` mirrored from `clusterIP`, a Pod's `status.phase`/`qosClass`, and the
/// zero-valued status structs Go always serialises. Quantities in resource lists are rewritten
/// in kube's canonical form (`"1000m"` → `"1"`, `"1024Mi"` → `"1Gi"`, `0.5` → `"500m"`).
pub fn apply_defaults(kind: &str, object: &mut Value) {
    if !object.is_object() {
        return;
    }
    match kind {
        "Pod" => default_pod(object),
        "PodTemplate" => default_pod_template(object.get_mut("template")),
        "ReplicationController" => default_replication_controller(object),
        "Deployment" => default_deployment(object),
        "ReplicaSet" => {
            if let Some(spec) = obj_mut(object, "spec") {
                spec.entry("replicas").or_insert(json!(1));
            }
            default_pod_template(object["spec"].get_mut("template"));
            default_status(object, json!({"replicas": 0}));
        }
        "DaemonSet" => default_daemon_set(object),
        "StatefulSet" => default_stateful_set(object),
        "Job" => default_job(object),
        "CronJob" => default_cron_job(object),
        "Service" => default_service(object),
        "Secret" => default_secret(object),
        "Namespace" => default_namespace(object),
        "Node" => default_node(object),
        "PersistentVolume" => default_persistent_volume(object),
        "PersistentVolumeClaim" => default_persistent_volume_claim(object),
        "RoleBinding" | "ClusterRoleBinding" => rbac::default_binding(object),
        "PriorityClass" => priority::default_priority_class(object),
        "LimitRange" => limit_range::default_limit_range(object),
        "ResourceQuota" => resource_quota::default_resource_quota(object),
        "Endpoints" => each_mut(object, "subsets", |subset| {
            each_mut(subset, "ports", |port| {
                default_field(port, "protocol", json!("TCP"))
            });
        }),
        _ => {}
    }
}

/// Everything wrong with `object` of `kind` (empty = valid). `old` is the stored object on
/// update (for immutable fields), None on create. `metadata.name` is [`validate_name`]'s job
/// and `metadata.namespace` (required or forbidden) is the caller's; everything else kube's
/// `Validate`/`ValidateUpdate` would report is here, in kube's order, expecting an object that
/// has been through [`apply_defaults`] as kube's would have been.
pub fn validate(kind: &str, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = &object["metadata"];
    if let Some(old) = old {
        validate_meta_update(meta, &old["metadata"], &mut errs);
    }
    validate_meta(meta, "metadata", &mut errs);
    match kind {
        "Pod" => validate_pod(object, old, &mut errs),
        "PodTemplate" => validate_pod_template(&object["template"], "template", &mut errs),
        "ReplicationController" => validate_replication_controller(object, &mut errs),
        "Deployment" => validate_deployment(object, old, &mut errs),
        "ReplicaSet" => validate_replica_set(object, old, &mut errs),
        "DaemonSet" => validate_daemon_set(object, old, &mut errs),
        "StatefulSet" => validate_stateful_set(object, old, &mut errs),
        "Job" => validate_job(object, old, &mut errs),
        "CronJob" => validate_cron_job(object, &mut errs),
        "Service" => validate_service(object, old, &mut errs),
        "ConfigMap" => validate_config_map(object, old, &mut errs),
        "Secret" => validate_secret(object, old, &mut errs),
        "Namespace" => validate_namespace(object, &mut errs),
        "Role" => rbac::validate_role(object, true, &mut errs),
        "ClusterRole" => rbac::validate_role(object, false, &mut errs),
        "RoleBinding" => rbac::validate_binding(object, old, true, &mut errs),
        "ClusterRoleBinding" => rbac::validate_binding(object, old, false, &mut errs),
        "PriorityClass" => priority::validate_priority_class(object, old, &mut errs),
        "CertificateSigningRequest" => errs.extend(crate::certificates::validate(object, old)),
        "LimitRange" => limit_range::validate_limit_range(object, &mut errs),
        "ResourceQuota" => resource_quota::validate_resource_quota(object, old, &mut errs),
        _ => {}
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::defaulted;
    use crate::admission::quantity::Quantity;

    #[test]
    fn describe_joins_field_and_message() {
        let e = required("spec.containers", "");
        assert_eq!(e.describe(), "spec.containers: Required value");
        assert_eq!(e.reason, "FieldValueRequired");
    }

    #[test]
    fn subdomain_names_report_kubes_message() {
        let errs = validate_name("ConfigMap", "Foo");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, "FieldValueInvalid");
        assert_eq!(
            errs[0].describe(),
            "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert!(validate_name("Pod", "web-1.example").is_empty());
        assert!(validate_name("Node", "node-1.cluster.local").is_empty());
        let long = "a".repeat(254);
        let errs = validate_name("Secret", &long);
        assert_eq!(
            errs[0].message,
            format!("Invalid value: \"{long}\": must be no more than 253 characters")
        );
    }

    #[test]
    fn namespace_and_statefulset_names_are_labels() {
        let errs = validate_name("Namespace", "team.a");
        assert_eq!(
            errs[0].message,
            "Invalid value: \"team.a\": must not contain dots"
        );
        let errs = validate_name("StatefulSet", "Web");
        assert!(errs[0]
            .message
            .contains("a lowercase RFC 1123 label must consist of"));
        assert!(errs[0].message.ends_with("(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
        assert!(validate_name("Namespace", "kube-system").is_empty());
    }

    #[test]
    fn service_names_are_dns1035_labels() {
        let errs = validate_name("Service", "1web");
        assert_eq!(
            errs[0].message,
            "Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        );
        assert!(validate_name("Service", "web").is_empty());
    }

    #[test]
    fn rbac_names_are_path_segments() {
        assert!(validate_name("ClusterRole", "system:controller:foo").is_empty());
        assert_eq!(
            validate_name("Role", "..")[0].message,
            "Invalid value: \"..\": may not be '..'"
        );
        let errs = validate_name("RoleBinding", "a/b%c");
        let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Invalid value: \"a/b%c\": may not contain '/'",
                "Invalid value: \"a/b%c\": may not contain '%'"
            ]
        );
    }

    #[test]
    fn cronjob_names_leave_room_for_the_job_suffix() {
        let name = "a".repeat(53);
        let errs = validate_name("CronJob", &name);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message,
            format!("Invalid value: \"{name}\": must be no more than 52 characters")
        );
        assert!(validate_name("CronJob", &"a".repeat(52)).is_empty());
    }

    #[test]
    fn empty_name_is_required() {
        assert_eq!(
            validate_name("Pod", "")[0].describe(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn kinds_without_defaults_are_untouched() {
        for kind in ["ConfigMap", "Event", "Lease", "ServiceAccount"] {
            let v = json!({"metadata": {"name": "x"}, "data": {"k": "v"}});
            assert_eq!(defaulted(kind, v.clone()), v, "{kind}");
        }
    }

    #[test]
    fn odd_json_never_panics() {
        let kinds = [
            "Pod",
            "PodTemplate",
            "ReplicationController",
            "Deployment",
            "ReplicaSet",
            "DaemonSet",
            "StatefulSet",
            "Job",
            "CronJob",
            "Service",
            "Secret",
            "ConfigMap",
            "Namespace",
            "Node",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "Endpoints",
            "Lease",
        ];
        let shapes = [
            json!(null),
            json!([1, 2]),
            json!("pod"),
            json!({"metadata": 5, "spec": [], "status": "x"}),
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}, "status": "x"}),
            json!({"spec": {"type": "LoadBalancer", "hostNetwork": true, "containers": [{"ports": [7]}]},
                   "status": {"loadBalancer": 5, "capacity": [1]}}),
            json!({"metadata": {"name": 5, "labels": [1], "annotations": "x", "finalizers": {"a": 1}},
                   "spec": {"containers": {"a": 1}, "template": 7, "selector": "x", "ports": [5, null],
                            "strategy": [], "updateStrategy": 1, "jobTemplate": {"spec": 3}}}),
            json!({"spec": {"containers": [null, 3, {"name": 1, "image": [], "resources": {"limits": {"cpu": {"x": 1}}},
                "ports": [{"containerPort": "80"}], "env": [{"valueFrom": 1}]}],
                "template": {"spec": {"containers": [{"resources": {"requests": "x"}}]}, "metadata": {"labels": 4}},
                "volumes": [{"name": "v", "secret": 7}], "tolerations": [1]},
                "data": {"k": 1}, "stringData": [1], "type": 3}),
        ];
        for kind in kinds {
            for shape in &shapes {
                let mut v = shape.clone();
                apply_defaults(kind, &mut v);
                let _ = validate(kind, &v, Some(shape));
                let _ = validate(kind, shape, None);
                let _ = validate_name(kind, "x/..%");
            }
        }
        for s in [
            "",
            "-",
            "+",
            ".",
            "1e99999999999999999999",
            "9".repeat(60).as_str(),
            "1Ei",
            "99999999999999Ei",
            "0.000000000000000000001",
        ] {
            if let Ok(q) = Quantity::parse(s) {
                let _ = q.canonical();
            }
        }
    }
}
