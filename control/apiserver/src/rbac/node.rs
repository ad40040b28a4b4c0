//! The Node authorizer's restriction (kube's `node` authorizer with NodeRestriction's object
//! checks): an agent acting as `system:node:<name>` (group `system:nodes`) reads only the
//! secrets, configmaps and persistentvolumeclaims the pods bound to it use, and writes only
//! its own Node and Lease and the status of its own pods. What it may do beyond that is the
//! `system:node` role's to say; this layer only takes away.
//!
//! The relationships come from the watch cache's pods of the object's namespace, so a check
//! costs one scan of that namespace's pods and no store read.

use serde_json::Value;

use super::authorizer::Attributes;
use crate::auth::Identity;
use crate::watch_cache::WatchCache;

const NODES_GROUP: &str = "system:nodes";

/// The node a request comes from, if its user is a node's (`system:node:<name>` in
/// `system:nodes`).
pub fn node_name(user: &Identity) -> Option<&str> {
    let name = user.user.strip_prefix("system:node:")?;
    (!name.is_empty() && user.groups.iter().any(|g| g == NODES_GROUP)).then_some(name)
}

/// Why the Node authorizer refuses the request, or None when it has no objection.
pub fn denial(cache: &WatchCache, user: &Identity, request: &Attributes) -> Option<String> {
    let node = node_name(user)?;
    let r = request.resource.as_ref()?;
    if !r.group.is_empty() && r.group != "coordination.k8s.io" {
        return None;
    }
    let no_relationship = || {
        Some(format!(
            "no relationship found between node '{node}' and this object"
        ))
    };
    let verb = request.verb.as_str();
    match (
        r.group.as_str(),
        r.resource.as_str(),
        r.subresource.as_str(),
    ) {
        ("", "secrets" | "configmaps" | "persistentvolumeclaims", "") => {
            if !matches!(verb, "get") || r.name.is_empty() {
                return Some("can only get individual resources of this type".into());
            }
            let used = pods_on(cache, node, &r.namespace)
                .iter()
                .any(|pod| references(pod, &r.resource, &r.name));
            if used {
                None
            } else {
                no_relationship()
            }
        }
        ("", "nodes", _) if !matches!(verb, "get" | "list" | "watch" | "create") => {
            (r.name != node).then(|| format!("node '{node}' cannot modify node '{}'", r.name))
        }
        ("coordination.k8s.io", "leases", "") if !matches!(verb, "create" | "list" | "watch") => {
            (r.namespace != "kube-node-lease" || r.name != node)
                .then(|| format!("node '{node}' may only use its own Lease in kube-node-lease"))
        }
        ("", "pods", "status") | ("", "pods", "")
            if matches!(verb, "update" | "patch" | "delete") =>
        {
            let key = format!("/registry/pods/{}/{}", r.namespace, r.name);
            let bound = cache
                .shard("/registry/pods/")
                .and_then(|shard| shard.get(&key))
                .is_some_and(|pod| pod["spec"]["nodeName"].as_str() == Some(node));
            if bound {
                None
            } else {
                no_relationship()
            }
        }
        _ => None,
    }
}

fn pods_on(cache: &WatchCache, node: &str, namespace: &str) -> Vec<std::sync::Arc<Value>> {
    let Some(shard) = cache.shard("/registry/pods/") else {
        return Vec::new();
    };
    let (pods, _) = shard.list(&format!("/registry/pods/{namespace}/"));
    pods.into_iter()
        .filter(|pod| pod["spec"]["nodeName"].as_str() == Some(node))
        .collect()
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Whether `pod` uses the secret, configmap or claim `name` (volumes, projected sources,
/// env and envFrom of every container, image pull secrets).
pub fn references(pod: &Value, resource: &str, name: &str) -> bool {
    let spec = &pod["spec"];
    let is = |v: &Value| v.as_str() == Some(name);
    let volume_uses = |volume: &Value| match resource {
        "secrets" => {
            is(&volume["secret"]["secretName"])
                || items(&volume["projected"]["sources"])
                    .iter()
                    .any(|s| is(&s["secret"]["name"]))
        }
        "configmaps" => {
            is(&volume["configMap"]["name"])
                || items(&volume["projected"]["sources"])
                    .iter()
                    .any(|s| is(&s["configMap"]["name"]))
        }
        _ => is(&volume["persistentVolumeClaim"]["claimName"]),
    };
    if items(&spec["volumes"]).iter().any(volume_uses) {
        return true;
    }
    let (key_ref, from_ref) = match resource {
        "secrets" => ("secretKeyRef", "secretRef"),
        "configmaps" => ("configMapKeyRef", "configMapRef"),
        _ => return false,
    };
    if resource == "secrets"
        && items(&spec["imagePullSecrets"])
            .iter()
            .any(|s| is(&s["name"]))
    {
        return true;
    }
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|field| items(&spec[*field]))
        .any(|container| {
            items(&container["env"])
                .iter()
                .any(|env| is(&env["valueFrom"][key_ref]["name"]))
                || items(&container["envFrom"])
                    .iter()
                    .any(|from| is(&from[from_ref]["name"]))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_reference_what_they_mount_and_read() {
        let pod = json!({"spec": {
            "volumes": [{"name": "a", "secret": {"secretName": "tls"}},
                        {"name": "b", "projected": {"sources": [{"configMap": {"name": "ca"}}]}},
                        {"name": "c", "persistentVolumeClaim": {"claimName": "data"}}],
            "imagePullSecrets": [{"name": "registry"}],
            "containers": [{"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "token", "key": "t"}}}],
                            "envFrom": [{"configMapRef": {"name": "settings"}}]}]}});
        for (resource, name) in [
            ("secrets", "tls"),
            ("configmaps", "ca"),
            ("persistentvolumeclaims", "data"),
            ("secrets", "registry"),
            ("secrets", "token"),
            ("configmaps", "settings"),
        ] {
            assert!(references(&pod, resource, name), "{resource}/{name}");
        }
        assert!(!references(&pod, "secrets", "ca"));
        assert!(!references(&pod, "configmaps", "tls"));
        let node = Identity {
            user: "system:node:n1".into(),
            groups: vec![NODES_GROUP.into()],
        };
        assert_eq!(node_name(&node), Some("n1"));
        let not_node = Identity {
            user: "system:node:n1".into(),
            groups: vec![],
        };
        assert_eq!(node_name(&not_node), None);
    }
}
