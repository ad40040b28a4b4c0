//! Pod specs (`ValidatePodSpec`) and pod templates: the spec-level enums, volumes and
//! tolerations; containers are in [`super::containers`].

use serde_json::Value;

use super::containers::{validate_containers, validate_init_containers};
use super::field::{
    child, duplicate, enum_field, forbidden, index, invalid, not_supported, required, Bad,
    MAX_INT32,
};
use super::json::{flag, int, list, map, present, text};
use super::meta::{validate_annotations, validate_labels};
use super::names::{dns1123_label, dns1123_subdomain, label_value, qualified_name};
use super::FieldError;
use crate::admission::defaults::pod::VOLUME_SOURCES;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];

pub(super) fn validate_pod_spec(
    spec: &Value,
    path: &str,
    is_pod: bool,
    errs: &mut Vec<FieldError>,
) {
    if !present(spec, "terminationGracePeriodSeconds") {
        errs.push(required(&child(path, "terminationGracePeriodSeconds"), ""));
    }
    let volumes = validate_volumes(spec, &child(path, "volumes"), errs);
    validate_containers(spec, path, &volumes, errs);
    validate_init_containers(spec, path, &volumes, errs);

    if flag(spec, "hostNetwork") {
        let containers_path = child(path, "containers");
        for (i, c) in list(spec, "containers").iter().enumerate() {
            for (j, port) in list(c, "ports").iter().enumerate() {
                let host = int(port, "hostPort").unwrap_or(0);
                let container = int(port, "containerPort").unwrap_or(0);
                // Templates may leave hostPort for the Pod's defaulting to fill in.
                if (is_pod || host != 0) && host != container {
                    errs.push(invalid(
                        &child(
                            &index(&child(&index(&containers_path, i), "ports"), j),
                            "hostPort",
                        ),
                        Bad::Int(host),
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    enum_field(
        spec,
        "restartPolicy",
        &child(path, "restartPolicy"),
        RESTART_POLICIES,
        errs,
    );
    enum_field(
        spec,
        "dnsPolicy",
        &child(path, "dnsPolicy"),
        DNS_POLICIES,
        errs,
    );
    validate_labels(
        map(spec, "nodeSelector"),
        &child(path, "nodeSelector"),
        errs,
    );
    if text(spec, "dnsPolicy") == "None" {
        let config = spec.get("dnsConfig").filter(|c| c.is_object());
        match config {
            None => errs.push(required(
                &child(path, "dnsConfig"),
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )),
            Some(c) if list(c, "nameservers").is_empty() => errs.push(required(
                &child(path, "dnsConfig.nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )),
            Some(_) => {}
        }
    }
    for field in ["serviceAccountName", "nodeName", "priorityClassName"] {
        let value = text(spec, field);
        if !value.is_empty() {
            for m in dns1123_subdomain(value) {
                errs.push(invalid(&child(path, field), Bad::str(value), &m));
            }
        }
    }
    if let Some(deadline) = int(spec, "activeDeadlineSeconds") {
        if !(1..=MAX_INT32).contains(&deadline) {
            errs.push(invalid(
                &child(path, "activeDeadlineSeconds"),
                Bad::Int(deadline),
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for field in ["hostname", "subdomain"] {
        let value = text(spec, field);
        if !value.is_empty() {
            for m in dns1123_label(value) {
                errs.push(invalid(&child(path, field), Bad::str(value), &m));
            }
        }
    }
    validate_tolerations(list(spec, "tolerations"), &child(path, "tolerations"), errs);
}

/// Validates the volumes and returns the names containers may mount.
fn validate_volumes(spec: &Value, path: &str, errs: &mut Vec<FieldError>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, vol) in list(spec, "volumes").iter().enumerate() {
        let p = index(path, i);
        let mut own = Vec::new();
        let sources: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|s| present(vol, s))
            .collect();
        match sources.as_slice() {
            [] => own.push(required(&p, "must specify a volume type")),
            [first, rest @ ..] => {
                for extra in rest {
                    own.push(forbidden(
                        &child(&p, extra),
                        "may not specify more than 1 volume type",
                    ));
                }
                let source = &vol[*first];
                let required_field = match *first {
                    "secret" => Some("secretName"),
                    "configMap" => Some("name"),
                    "persistentVolumeClaim" => Some("claimName"),
                    "hostPath" => Some("path"),
                    "nfs" => Some("server"),
                    _ => None,
                };
                if let Some(field) = required_field {
                    if text(source, field).is_empty() {
                        own.push(required(&child(&child(&p, first), field), ""));
                    }
                }
            }
        }
        let name = text(vol, "name");
        let name_path = child(&p, "name");
        if name.is_empty() {
            own.push(required(&name_path, ""));
        } else {
            for m in dns1123_label(name) {
                own.push(invalid(&name_path, Bad::str(name), &m));
            }
        }
        if names.iter().any(|n| n == name) {
            own.push(duplicate(&name_path, Bad::str(name)));
        }
        if own.is_empty() {
            names.push(name.to_owned());
        } else {
            errs.extend(own);
        }
    }
    names
}

pub(super) fn validate_tolerations(tolerations: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let k = text(t, "key");
        if !k.is_empty() {
            for m in qualified_name(k) {
                errs.push(invalid(&child(&p, "key"), Bad::str(k), &m));
            }
        }
        let operator = text(t, "operator");
        if k.is_empty() && operator != "Exists" {
            errs.push(invalid(
                &child(&p, "operator"),
                Bad::str(operator),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = text(t, "effect");
        if present(t, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(invalid(
                &child(&p, "effect"),
                Bad::str(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = text(t, "value");
        match operator {
            "Equal" | "" => {
                let messages = label_value(value);
                if !messages.is_empty() {
                    errs.push(invalid(
                        &child(&p, "operator"),
                        Bad::str(value),
                        &messages.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(
                        &child(&p, "operator"),
                        Bad::str(value),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &child(&p, "operator"),
                Bad::str(other),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(not_supported(
                &child(&p, "effect"),
                Bad::str(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
}

/// `ValidatePodTemplateSpec`: the template's labels and annotations, its pod spec, and no
/// ephemeral containers.
pub(super) fn validate_pod_template(template: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let meta = &template["metadata"];
    validate_labels(map(meta, "labels"), &child(path, "labels"), errs);
    validate_annotations(map(meta, "annotations"), &child(path, "annotations"), errs);
    let spec_path = child(path, "spec");
    validate_pod_spec(&template["spec"], &spec_path, false, errs);
    if !list(&template["spec"], "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &child(&spec_path, "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

#[cfg(test)]
mod tests {

    use crate::admission::fixtures::{create_errors, defaulted, pod};
    use crate::admission::validate;
    use serde_json::json;

    #[test]
    fn a_defaulted_pod_is_valid() {
        let errs = create_errors(
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {
                "containers": [{"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": 80}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "readinessProbe": {"tcpSocket": {"port": "http"}}}],
                "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
                "volumes": [{"name": "data"}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
            }}),
        );
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn pods_need_containers() {
        assert_eq!(
            create_errors("Pod", pod(json!([]))),
            ["spec.containers: Required value"]
        );
        let v = defaulted("Pod", json!({"metadata": {"name": "p"}}));
        let errs = validate("Pod", &v, None);
        assert_eq!(errs[0].describe(), "spec.containers: Required value");
        assert_eq!(errs[0].reason, "FieldValueRequired");
    }

    #[test]
    fn pod_enums_report_supported_values() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {"restartPolicy": "Sometimes", "dnsPolicy": "Google",
                "containers": [{"name": "c", "image": "i", "imagePullPolicy": "Often"}]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].imagePullPolicy: Unsupported value: \"Often\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ]
        );
    }

    #[test]
    fn tolerations_are_checked() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "image": "i"}],
                "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v", "tolerationSeconds": 5}]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].effect: Invalid value: \"\": effect must be 'NoExecute' when `tolerationSeconds` is set",
                "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
            ]
        );
    }
}
