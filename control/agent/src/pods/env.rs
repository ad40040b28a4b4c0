//! A container's environment as kubelet builds it: `envFrom` sources first (each key with the
//! source's prefix), then `env` in order, each value expanded against the variables before
//! it; `valueFrom` reads ConfigMaps, Secrets, the downward API (`fieldRef`) and the
//! container's resources (`resourceFieldRef`). Then `$(VAR)` in command and args.
//!
//! The ConfigMaps and Secrets are fetched first ([`referenced`] names them), so resolution
//! itself ([`resolve`]) is a pure function of the pod and what was fetched. Errors carry
//! kubelet's messages (`configmap "x" not found`), which become the container's
//! `CreateContainerConfigError`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, ResourceRequirements, Secret};

/// What a container's environment needs from the API.
#[derive(Debug, Default)]
pub struct Fetched {
    /// ConfigMaps by name (absent: not found).
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// Secrets by name (absent: not found).
    pub secrets: BTreeMap<String, Secret>,
}

/// The ConfigMaps and Secrets `container`'s env and envFrom name.
pub fn referenced(container: &Container) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut config_maps = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    for source in container.env_from.iter().flatten() {
        if let Some(r) = &source.config_map_ref {
            config_maps.insert(r.name.clone());
        }
        if let Some(r) = &source.secret_ref {
            secrets.insert(r.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(r) = &from.config_map_key_ref {
            config_maps.insert(r.name.clone());
        }
        if let Some(r) = &from.secret_key_ref {
            secrets.insert(r.name.clone());
        }
    }
    (config_maps, secrets)
}

/// The addresses and sizes the downward API reports that are not in the pod's object yet.
#[derive(Debug, Clone, Default)]
pub struct Downward {
    /// The pod's IP (`status.podIP`).
    pub pod_ip: String,
    /// The node's IP (`status.hostIP`).
    pub host_ip: String,
    /// The node's allocatable CPU in millicores: a `limits.cpu` the container does not set.
    pub node_cpu_millis: u64,
    /// The node's allocatable memory in bytes: a `limits.memory` the container does not set.
    pub node_memory_bytes: u64,
}

fn config_map_value(cm: &ConfigMap, key: &str) -> Option<String> {
    cm.data
        .as_ref()
        .and_then(|d| d.get(key).cloned())
        .or_else(|| {
            cm.binary_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        })
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key).cloned())
        })
}

/// A C identifier-ish env name as kube accepts from envFrom (invalid keys are skipped).
fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `container`'s environment, in order (later entries win).
pub fn resolve(
    pod: &Pod,
    container: &Container,
    fetched: &Fetched,
    downward: &Downward,
) -> Result<Vec<(String, String)>, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut env: Vec<(String, String)> = Vec::new();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        if let Some(r) = &source.config_map_ref {
            match fetched.config_maps.get(&r.name) {
                Some(cm) => {
                    let mut keys: BTreeMap<String, String> = BTreeMap::new();
                    for key in cm.data.iter().flat_map(|d| d.keys()) {
                        keys.insert(key.clone(), config_map_value(cm, key).unwrap_or_default());
                    }
                    for (key, value) in keys {
                        let name = format!("{prefix}{key}");
                        if valid_env_name(&name) {
                            env.push((name, value));
                        }
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("configmap {:?} not found", r.name)),
            }
        }
        if let Some(r) = &source.secret_ref {
            match fetched.secrets.get(&r.name) {
                Some(secret) => {
                    for key in secret.data.iter().flat_map(|d| d.keys()) {
                        let name = format!("{prefix}{key}");
                        if valid_env_name(&name) {
                            env.push((name, secret_value(secret, key).unwrap_or_default()));
                        }
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("secret {:?} not found", r.name)),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(from)) => {
                if let Some(r) = &from.config_map_key_ref {
                    match fetched.config_maps.get(&r.name) {
                        Some(cm) => match config_map_value(cm, &r.key) {
                            Some(v) => v,
                            None if r.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {namespace}/{}",
                                    r.key, r.name
                                ))
                            }
                        },
                        None if r.optional == Some(true) => continue,
                        None => return Err(format!("configmap {:?} not found", r.name)),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match fetched.secrets.get(&r.name) {
                        Some(secret) => match secret_value(secret, &r.key) {
                            Some(v) => v,
                            None if r.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {namespace}/{}",
                                    r.key, r.name
                                ))
                            }
                        },
                        None if r.optional == Some(true) => continue,
                        None => return Err(format!("secret {:?} not found", r.name)),
                    }
                } else if let Some(r) = &from.field_ref {
                    field_value(pod, &r.field_path, downward)?
                } else if let Some(r) = &from.resource_field_ref {
                    resource_value(
                        container,
                        &r.resource,
                        r.divisor.as_ref().map(|q| q.0.as_str()),
                        downward,
                    )?
                } else {
                    String::new()
                }
            }
            (Some(value), None) => {
                let defined: BTreeMap<&str, &str> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                expand(value, &defined)
            }
            (None, None) => String::new(),
        };
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// The downward API's `fieldRef.fieldPath` of `pod`.
pub fn field_value(pod: &Pod, path: &str, downward: &Downward) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['"))
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_owned)
    };
    let formatted = |map: &Option<BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => formatted(&meta.labels),
        "metadata.annotations" => formatted(&meta.annotations),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => downward.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => downward.host_ip.clone(),
        _ => {
            if let Some(key) = subscript("metadata.labels") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(&key).cloned())
                    .unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations") {
                meta.annotations
                    .as_ref()
                    .and_then(|a| a.get(&key).cloned())
                    .unwrap_or_default()
            } else {
                return Err(format!("unsupported fieldPath: {path}"));
            }
        }
    })
}

/// `resourceFieldRef`: a request or limit of `container` (a limit it does not set is the
/// node's allocatable), divided by `divisor` and rounded up, as kube does.
pub fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    downward: &Downward,
) -> Result<String, String> {
    let empty = ResourceRequirements::default();
    let resources = container.resources.as_ref().unwrap_or(&empty);
    let get = |limits: bool, name: &str| {
        let map = if limits {
            &resources.limits
        } else {
            &resources.requests
        };
        map.as_ref().and_then(|m| m.get(name)).map(|q| q.0.clone())
    };
    let (is_cpu, value) = match resource {
        "limits.cpu" => (
            true,
            get(true, "cpu").map_or(Some(downward.node_cpu_millis), |q| {
                crate::quantity::millis(&q)
            }),
        ),
        "requests.cpu" => (
            true,
            get(false, "cpu").map_or(Some(0), |q| crate::quantity::millis(&q)),
        ),
        "limits.memory" => (
            false,
            get(true, "memory").map_or(Some(downward.node_memory_bytes), |q| {
                crate::quantity::bytes(&q)
            }),
        ),
        "requests.memory" => (
            false,
            get(false, "memory").map_or(Some(0), |q| crate::quantity::bytes(&q)),
        ),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" => {
            let limits = resource.starts_with("limits");
            (
                false,
                get(limits, "ephemeral-storage").map_or(Some(0), |q| crate::quantity::bytes(&q)),
            )
        }
        _ => return Err(format!("unsupported container resource : {resource}")),
    };
    let value = value.ok_or_else(|| format!("invalid quantity for {resource}"))?;
    if is_cpu {
        let divisor = divisor
            .map_or(Some(1000), crate::quantity::millis)
            .filter(|d| *d > 0);
        let divisor = divisor.ok_or_else(|| format!("invalid divisor for {resource}"))?;
        // A request of 0 still reports 1 core, as kube's ConvertResourceCPUToString rounds up.
        Ok(value.div_ceil(divisor).max(1).to_string())
    } else {
        let divisor = divisor
            .map_or(Some(1), crate::quantity::bytes)
            .filter(|d| *d > 0);
        let divisor = divisor.ok_or_else(|| format!("invalid divisor for {resource}"))?;
        Ok(value.div_ceil(divisor).to_string())
    }
}

/// kube's `$(VAR)` expansion: a defined `$(VAR)` becomes its value, an undefined one stays as
/// written, `$$` is a literal `$`.
pub fn expand(input: &str, vars: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match vars.get(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('$');
                    out.push_str(after);
                    rest = "";
                }
            },
            Some(other) => {
                out.push('$');
                out.push(other);
                rest = &after[other.len_utf8()..];
            }
            None => {
                out.push('$');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `command` + `args` with `$(VAR)` expanded against `env`.
pub fn argv(container: &Container, env: &[(String, String)]) -> Vec<String> {
    let vars: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|word| expand(word, &vars))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(container: serde_json::Value) -> (Pod, Container) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1",
                "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "default",
                "containers": [container]},
        }))
        .unwrap();
        let container = pod.spec.as_ref().unwrap().containers[0].clone();
        (pod, container)
    }

    #[test]
    fn expansion_follows_kube() {
        let vars = BTreeMap::from([("A", "1"), ("B", "two")]);
        assert_eq!(expand("$(A)-$(B)", &vars), "1-two");
        assert_eq!(expand("$(MISSING)", &vars), "$(MISSING)");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("cost $5 $", &vars), "cost $5 $");
        assert_eq!(expand("$(A", &vars), "$(A");
    }

    #[test]
    fn env_resolves_in_order_from_every_source() {
        let (pod, container) = pod(json!({
            "name": "app", "image": "busybox",
            "command": ["echo", "$(GREETING)"], "args": ["$(POD)", "$(NOPE)"],
            "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
            "env": [
                {"name": "GREETING", "value": "hello $(CFG_mode)"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            ],
        }));
        let mut fetched = Fetched::default();
        fetched.config_maps.insert(
            "settings".into(),
            serde_json::from_value(json!({"data": {"mode": "fast", "bad key": "x"}})).unwrap(),
        );
        fetched.secrets.insert(
            "creds".into(),
            serde_json::from_value(json!({"data": {"password": "c2VjcmV0"}})).unwrap(),
        );
        let downward = Downward {
            pod_ip: "169.254.1.2".into(),
            host_ip: "127.0.0.1".into(),
            node_cpu_millis: 4000,
            node_memory_bytes: 1 << 30,
        };
        let env = resolve(&pod, &container, &fetched, &downward).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CFG_mode"), Some("fast"));
        assert_eq!(get("CFG_bad key"), None);
        assert_eq!(get("GREETING"), Some("hello fast"));
        assert_eq!(get("POD"), Some("web"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("IP"), Some("169.254.1.2"));
        assert_eq!(get("PASS"), Some("secret"));
        assert_eq!(get("MEM"), Some("1024"));
        assert_eq!(
            argv(&container, &env),
            ["echo", "hello fast", "web", "$(NOPE)"]
        );
    }

    #[test]
    fn missing_sources_say_what_kubelet_says() {
        let (pod, container) = pod(json!({"name": "app", "image": "busybox", "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}]}));
        let err = resolve(&pod, &container, &Fetched::default(), &Downward::default());
        assert_eq!(err.unwrap_err(), "configmap \"gone\" not found");
        let mut fetched = Fetched::default();
        fetched.config_maps.insert(
            "gone".into(),
            serde_json::from_value(json!({"data": {}})).unwrap(),
        );
        let err = resolve(&pod, &container, &fetched, &Downward::default());
        assert_eq!(
            err.unwrap_err(),
            "couldn't find key k in ConfigMap shop/gone"
        );
        let (pod, container) = pod_optional();
        assert!(
            resolve(&pod, &container, &Fetched::default(), &Downward::default())
                .unwrap()
                .is_empty()
        );
    }

    fn pod_optional() -> (Pod, Container) {
        pod(json!({"name": "app", "image": "busybox", "env": [
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}}]}))
    }
}
