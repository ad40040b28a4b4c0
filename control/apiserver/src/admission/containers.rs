//! Containers and init containers: names, images, ports (and host port conflicts), env,
//! volume mounts, lifecycle handlers and probes.

use serde_json::Value;

use super::field::{
    child, duplicate, enum_field, forbidden, index, invalid, nonnegative, not_found, not_supported,
    required, Bad, PORT_RANGE_MSG,
};
use super::json::{int, list, present, scalar_text, text};
use super::names::{config_map_key, dns1123_label, port_name, valid_port};
use super::resources::validate_resources;
use super::FieldError;

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
pub(super) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// A port's `protocol` at `path` (a container's or a Service's port): required, and one of
/// [`PROTOCOLS`].
pub(super) fn validate_protocol(port: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let protocol = text(port, "protocol");
    if protocol.is_empty() {
        errs.push(required(&child(path, "protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(not_supported(
            &child(path, "protocol"),
            Bad::str(protocol),
            PROTOCOLS,
        ));
    }
}

pub(super) fn validate_containers(
    spec: &Value,
    path: &str,
    volumes: &[String],
    errs: &mut Vec<FieldError>,
) {
    let containers_path = child(path, "containers");
    let containers = list(spec, "containers");
    if containers.is_empty() {
        errs.push(required(&containers_path, ""));
        return;
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(&containers_path, i);
        validate_container_common(c, &p, volumes, errs);
        let name = text(c, "name");
        if names.contains(&name) {
            errs.push(duplicate(&child(&p, "name"), Bad::str(name)));
        } else {
            names.push(name);
        }
        validate_lifecycle_and_probes(c, &p, errs);
        if present(c, "restartPolicy") {
            errs.push(forbidden(
                &child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    host_port_conflicts(containers, &containers_path, errs);
}

pub(super) fn validate_init_containers(
    spec: &Value,
    path: &str,
    volumes: &[String],
    errs: &mut Vec<FieldError>,
) {
    let init_path = child(path, "initContainers");
    let mut names: Vec<&str> = list(spec, "containers")
        .iter()
        .map(|c| text(c, "name"))
        .collect();
    for (i, c) in list(spec, "initContainers").iter().enumerate() {
        let p = index(&init_path, i);
        validate_container_common(c, &p, volumes, errs);
        let mut restart_always = false;
        if let Some(policy) = c.get("restartPolicy").filter(|v| !v.is_null()) {
            let policy = scalar_text(policy);
            if policy != "Always" {
                errs.push(not_supported(
                    &child(&p, "restartPolicy"),
                    Bad::str(&policy),
                    &["Always"],
                ));
            }
            restart_always = policy == "Always";
        }
        let name = text(c, "name");
        if names.contains(&name) {
            errs.push(duplicate(&child(&p, "name"), Bad::str(name)));
        } else if !name.is_empty() {
            names.push(name);
        }
        // Init containers run one at a time, so only ports within one can collide; kube
        // reports those against index 0.
        host_port_conflicts(std::slice::from_ref(c), &init_path, errs);
        if restart_always {
            validate_lifecycle_and_probes(c, &p, errs);
        } else {
            for field in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if present(c, field) {
                    errs.push(forbidden(
                        &child(&p, field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
}

fn host_port_conflicts(containers: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut seen: Vec<String> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, port) in list(c, "ports").iter().enumerate() {
            let host_port = int(port, "hostPort").unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{}",
                text(port, "protocol"),
                text(port, "hostIP"),
                host_port
            );
            if seen.contains(&key) {
                let p = child(&index(&child(&index(path, i), "ports"), j), "hostPort");
                errs.push(duplicate(&p, Bad::Str(key)));
            } else {
                seen.push(key);
            }
        }
    }
}

fn validate_container_common(c: &Value, p: &str, volumes: &[String], errs: &mut Vec<FieldError>) {
    let name = text(c, "name");
    let name_path = child(p, "name");
    if name.is_empty() {
        errs.push(required(&name_path, ""));
    } else {
        for m in dns1123_label(name) {
            errs.push(invalid(&name_path, Bad::str(name), &m));
        }
    }
    if text(c, "image").is_empty() {
        errs.push(required(&child(p, "image"), ""));
    }
    enum_field(
        c,
        "terminationMessagePolicy",
        &child(p, "terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
        errs,
    );
    validate_container_ports(list(c, "ports"), &child(p, "ports"), errs);
    validate_env(list(c, "env"), &child(p, "env"), errs);
    validate_volume_mounts(
        list(c, "volumeMounts"),
        &child(p, "volumeMounts"),
        volumes,
        errs,
    );
    let pull = text(c, "imagePullPolicy");
    let pull_path = child(p, "imagePullPolicy");
    if pull.is_empty() {
        errs.push(required(&pull_path, ""));
    } else if !PULL_POLICIES.contains(&pull) {
        errs.push(not_supported(&pull_path, Bad::str(pull), PULL_POLICIES));
    }
    validate_resources(&c["resources"], &child(p, "resources"), errs);
}

fn validate_container_ports(ports: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = text(port, "name");
        if !name.is_empty() {
            let messages = port_name(name);
            if !messages.is_empty() {
                for m in messages {
                    errs.push(invalid(&child(&p, "name"), Bad::str(name), &m));
                }
            } else if names.contains(&name) {
                errs.push(duplicate(&child(&p, "name"), Bad::str(name)));
            } else {
                names.push(name);
            }
        }
        let container_port = int(port, "containerPort").unwrap_or(0);
        if container_port == 0 {
            errs.push(required(&child(&p, "containerPort"), ""));
        } else if !valid_port(container_port) {
            errs.push(invalid(
                &child(&p, "containerPort"),
                Bad::Int(container_port),
                PORT_RANGE_MSG,
            ));
        }
        let host_port = int(port, "hostPort").unwrap_or(0);
        if host_port != 0 && !valid_port(host_port) {
            errs.push(invalid(
                &child(&p, "hostPort"),
                Bad::Int(host_port),
                PORT_RANGE_MSG,
            ));
        }
        validate_protocol(port, &p, errs);
    }
}

fn validate_env(env: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, e) in env.iter().enumerate() {
        let p = index(path, i);
        let name = text(e, "name");
        let name_path = child(&p, "name");
        // RelaxedEnvironmentVariableValidation is on by default from v1.32.
        if name.is_empty() {
            errs.push(required(&name_path, ""));
            errs.push(invalid(
                &name_path,
                Bad::str(""),
                "environment variable name must be non-empty",
            ));
        } else if name.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
            errs.push(invalid(
                &name_path,
                Bad::str(name),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let Some(from) = e.get("valueFrom").filter(|f| !f.is_null()) else {
            continue;
        };
        let from_path = child(&p, "valueFrom");
        let sources: Vec<&str> = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ]
        .into_iter()
        .filter(|s| present(from, s))
        .collect();
        for source in &sources {
            let s = &from[*source];
            match *source {
                "fieldRef" => {
                    if text(s, "fieldPath").is_empty() {
                        errs.push(required(&child(&from_path, "fieldRef.fieldPath"), ""));
                    }
                }
                "resourceFieldRef" => {
                    if text(s, "resource").is_empty() {
                        errs.push(required(
                            &child(&from_path, "resourceFieldRef.resource"),
                            "",
                        ));
                    }
                }
                _ => {
                    let key_path = child(&child(&from_path, source), "key");
                    let k = text(s, "key");
                    if k.is_empty() {
                        errs.push(required(&key_path, ""));
                    } else {
                        for m in config_map_key(k) {
                            errs.push(invalid(&key_path, Bad::str(k), &m));
                        }
                    }
                }
            }
        }
        if sources.is_empty() {
            errs.push(invalid(
                &from_path,
                Bad::str(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !text(e, "value").is_empty() {
            errs.push(invalid(
                &from_path,
                Bad::str(""),
                "may not be specified when `value` is not empty",
            ));
        } else if sources.len() > 1 {
            errs.push(invalid(
                &from_path,
                Bad::str(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn validate_volume_mounts(
    mounts: &[Value],
    path: &str,
    volumes: &[String],
    errs: &mut Vec<FieldError>,
) {
    let mut mount_points: Vec<&str> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = index(path, i);
        let name = text(m, "name");
        if name.is_empty() {
            errs.push(required(&child(&p, "name"), ""));
        }
        if !volumes.iter().any(|v| v == name) {
            errs.push(not_found(&child(&p, "name"), Bad::str(name)));
        }
        let mount_path = text(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(required(&child(&p, "mountPath"), ""));
        }
        if mount_points.contains(&mount_path) {
            errs.push(invalid(
                &child(&p, "mountPath"),
                Bad::str(mount_path),
                "must be unique",
            ));
        }
        mount_points.push(mount_path);
    }
}

fn validate_lifecycle_and_probes(c: &Value, p: &str, errs: &mut Vec<FieldError>) {
    if let Some(lifecycle) = c.get("lifecycle").filter(|l| l.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lifecycle.get(hook).filter(|h| !h.is_null()) {
                validate_handler(
                    h,
                    &child(&child(p, "lifecycle"), hook),
                    &["exec", "httpGet", "tcpSocket", "sleep"],
                    errs,
                );
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(pr) = c.get(probe).filter(|v| !v.is_null()) else {
            continue;
        };
        let pp = child(p, probe);
        validate_handler(pr, &pp, &["exec", "httpGet", "tcpSocket", "grpc"], errs);
        for field in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            nonnegative(pr, field, &child(&pp, field), errs);
        }
        if let Some(grace) = int(pr, "terminationGracePeriodSeconds") {
            if grace <= 0 {
                errs.push(invalid(
                    &child(&pp, "terminationGracePeriodSeconds"),
                    Bad::Int(grace),
                    "must be greater than 0",
                ));
            }
        }
        match probe {
            "readinessProbe" => {
                if let Some(grace) = int(pr, "terminationGracePeriodSeconds") {
                    errs.push(invalid(
                        &child(&pp, "terminationGracePeriodSeconds"),
                        Bad::Int(grace),
                        "must not be set for readinessProbes",
                    ));
                }
            }
            _ => {
                let success = int(pr, "successThreshold").unwrap_or(0);
                if success != 1 {
                    errs.push(invalid(
                        &child(&pp, "successThreshold"),
                        Bad::Int(success),
                        "must be 1",
                    ));
                }
            }
        }
    }
}

fn validate_handler(h: &Value, path: &str, kinds: &[&str], errs: &mut Vec<FieldError>) {
    let mut count = 0;
    for kind in kinds {
        let Some(action) = h.get(*kind).filter(|a| !a.is_null()) else {
            continue;
        };
        let p = child(path, kind);
        if count > 0 {
            errs.push(forbidden(&p, "may not specify more than 1 handler type"));
            continue;
        }
        count += 1;
        match *kind {
            "exec" if list(action, "command").is_empty() => {
                errs.push(required(&child(&p, "command"), ""));
            }
            "httpGet" => {
                if text(action, "path").is_empty() {
                    errs.push(required(&child(&p, "path"), ""));
                }
                port_num_or_name(action.get("port"), &child(&p, "port"), errs);
                let scheme = text(action, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(not_supported(
                        &child(&p, "scheme"),
                        Bad::str(scheme),
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" => port_num_or_name(action.get("port"), &child(&p, "port"), errs),
            "grpc" => {
                let port = int(action, "port").unwrap_or(0);
                if !valid_port(port) {
                    errs.push(invalid(&child(&p, "port"), Bad::Int(port), PORT_RANGE_MSG));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(required(path, "must specify a handler type"));
    }
}

/// `ValidatePortNumOrName` for an IntOrString port.
pub(super) fn port_num_or_name(port: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    match port {
        Some(Value::String(name)) => {
            for m in port_name(name) {
                errs.push(invalid(path, Bad::str(name), &m));
            }
        }
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            if !valid_port(n) {
                errs.push(invalid(path, Bad::Int(n), PORT_RANGE_MSG));
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use crate::admission::fixtures::{create_errors, pod};
    use crate::admission::names::DNS1123_LABEL_MSG;
    use serde_json::json;

    #[test]
    fn container_names_and_images() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {
                "containers": [{"name": "Web", "image": ""}, {"image": "x"}, {"name": "app", "image": " x"}],
                "initContainers": [{"name": "app", "image": "y"}]
            }}),
        );
        assert_eq!(
            errs,
            [
                format!("spec.containers[0].name: Invalid value: \"Web\": {DNS1123_LABEL_MSG}"),
                "spec.containers[0].image: Required value".to_owned(),
                "spec.containers[1].name: Required value".to_owned(),
                "spec.initContainers[0].name: Duplicate value: \"app\"".to_owned(),
                "spec.containers[2].image: Invalid value: \" x\": must not have leading or trailing whitespace".to_owned(),
            ]
        );
    }

    #[test]
    fn container_ports_are_checked() {
        let errs = create_errors(
            "Pod",
            pod(json!([{"name": "c", "image": "i", "ports": [
                {"containerPort": 70000},
                {"containerPort": 80, "protocol": "ICMP", "name": "Http"},
                {"containerPort": 81, "hostPort": 8080},
                {"containerPort": 82, "hostPort": 8080}
            ]}])),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].name: Invalid value: \"Http\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].ports[3].hostPort: Duplicate value: \"TCP//8080\"",
            ]
        );
    }

    #[test]
    fn volume_mounts_must_name_volumes() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {"volumes": [{"name": "a"}, {"name": "a"}],
                "containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "b", "mountPath": "/x"}, {"name": "a", "mountPath": "/x"}]}]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.volumes[1].name: Duplicate value: \"a\"",
                "spec.containers[0].volumeMounts[0].name: Not found: \"b\"",
                "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/x\": must be unique",
            ]
        );
    }
}
