//! Pod defaults: `SetDefaults_PodSpec`, `SetDefaults_Pod` and the nested container, probe and
//! volume defaults, the image pull policy that follows the tag, and the QoS class.

use serde_json::{json, Value};
use std::cmp::Ordering;

use super::{default_pvc_spec, default_status};
use crate::admission::json::{
    default_field, each_mut, flag, int, is_blank, list, map, obj_mut, present, text,
};
use crate::admission::names::is_lower_alnum;
use crate::admission::quantity::{canonicalize_quantity, canonicalize_resource_list, Quantity};

pub(crate) fn default_pod(pod: &mut Value) {
    // Pod.spec is a struct, so even a Pod sent without one gets the PodSpec defaults.
    if obj_mut(pod, "spec").is_some() {
        default_pod_spec(&mut pod["spec"], true);
    }
    let qos = qos_class(&pod["spec"]);
    default_status(pod, json!({"phase": "Pending", "qosClass": qos}));
}

/// Defaults a PodTemplateSpec: only its pod spec has defaults.
pub(crate) fn default_pod_template(template: Option<&mut Value>) {
    let Some(template) = template.filter(|t| t.is_object()) else {
        return;
    };
    // PodTemplateSpec.spec is a struct, so even a missing spec gets the PodSpec defaults.
    if obj_mut(template, "spec").is_some() {
        default_pod_spec(&mut template["spec"], false);
    }
}

/// `SetDefaults_PodSpec` plus the nested defaults; `is_pod` adds what `SetDefaults_Pod` does
/// only for real Pods (not templates).
fn default_pod_spec(spec: &mut Value, is_pod: bool) {
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    let host_network = flag(spec, "hostNetwork");
    for field in ["containers", "initContainers", "ephemeralContainers"] {
        each_mut(spec, field, |c| {
            default_container(c);
            if is_pod && field != "ephemeralContainers" {
                default_requests_from_limits(c);
                if host_network {
                    each_mut(c, "ports", |p| {
                        if int(p, "hostPort").unwrap_or(0) == 0 {
                            if let Some(cp) = p.get("containerPort").cloned() {
                                p["hostPort"] = cp;
                            }
                        }
                    });
                }
            }
        });
    }
    each_mut(spec, "volumes", default_volume);
    if let Some(overhead) = spec.get_mut("overhead") {
        canonicalize_resource_list(Some(overhead));
    }
    if is_pod {
        default_field(spec, "enableServiceLinks", json!(true));
    }
}

fn default_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    if is_blank(c.get("imagePullPolicy")) {
        let policy = if image_tag(text(c, "image")).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c["imagePullPolicy"] = json!(policy);
    }
    if is_blank(c.get("terminationMessagePath")) {
        c["terminationMessagePath"] = json!("/dev/termination-log");
    }
    if is_blank(c.get("terminationMessagePolicy")) {
        c["terminationMessagePolicy"] = json!("File");
    }
    // ResourceRequirements is a struct, not a pointer, so Go always writes it.
    if let Some(resources) = obj_mut(c, "resources") {
        canonicalize_resource_list(resources.get_mut("limits"));
        canonicalize_resource_list(resources.get_mut("requests"));
    }
    each_mut(c, "ports", |p| default_field(p, "protocol", json!("TCP")));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            default_field(p, "timeoutSeconds", json!(1));
            default_field(p, "periodSeconds", json!(10));
            default_field(p, "successThreshold", json!(1));
            default_field(p, "failureThreshold", json!(3));
            default_http_get(p);
        }
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").filter(|l| l.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lifecycle.get_mut(hook).filter(|h| h.is_object()) {
                default_http_get(h);
            }
        }
    }
    each_mut(c, "env", |e| {
        if let Some(from) = e.get_mut("valueFrom").filter(|f| f.is_object()) {
            if let Some(field_ref) = from.get_mut("fieldRef").filter(|f| f.is_object()) {
                default_field(field_ref, "apiVersion", json!("v1"));
            }
            if let Some(resource_ref) = from.get_mut("resourceFieldRef").filter(|f| f.is_object()) {
                // A Quantity struct, never omitted: the zero divisor prints as "0".
                default_field(resource_ref, "divisor", json!("0"));
                canonicalize_quantity(resource_ref.get_mut("divisor"));
            }
        }
    });
}

fn default_http_get(handler: &mut Value) {
    if let Some(h) = handler.get_mut("httpGet").filter(|h| h.is_object()) {
        if is_blank(h.get("path")) {
            h["path"] = json!("/");
        }
        if is_blank(h.get("scheme")) {
            h["scheme"] = json!("HTTP");
        }
    }
}

/// `SetDefaults_Pod`: a container's requests default to its limits.
fn default_requests_from_limits(c: &mut Value) {
    let Some(limits) = c["resources"]
        .get("limits")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    if let Some(requests) = c.get_mut("resources").and_then(|r| obj_mut(r, "requests")) {
        for (k, v) in limits {
            requests.entry(k).or_insert(v);
        }
    }
}

pub(crate) const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(v: &mut Value) {
    if !v.is_object() {
        return;
    }
    if !VOLUME_SOURCES.iter().any(|s| present(v, s)) {
        v["emptyDir"] = json!({});
    }
    if let Some(e) = v.get_mut("emptyDir").filter(|e| e.is_object()) {
        canonicalize_quantity(e.get_mut("sizeLimit"));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).filter(|s| s.is_object()) {
            default_field(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = v.get_mut("hostPath").filter(|h| h.is_object()) {
        default_field(h, "type", json!(""));
    }
    if let Some(d) = v.get_mut("downwardAPI").filter(|d| d.is_object()) {
        each_mut(d, "items", |item| {
            if let Some(f) = item.get_mut("fieldRef").filter(|f| f.is_object()) {
                default_field(f, "apiVersion", json!("v1"));
            }
        });
    }
    if let Some(p) = v.get_mut("projected").filter(|p| p.is_object()) {
        each_mut(p, "sources", |source| {
            if let Some(t) = source
                .get_mut("serviceAccountToken")
                .filter(|t| t.is_object())
            {
                default_field(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = source.get_mut("downwardAPI").filter(|d| d.is_object()) {
                each_mut(d, "items", |item| {
                    if let Some(f) = item.get_mut("fieldRef").filter(|f| f.is_object()) {
                        default_field(f, "apiVersion", json!("v1"));
                    }
                });
            }
        });
    }
    if let Some(e) = v.get_mut("ephemeral").filter(|e| e.is_object()) {
        if let Some(t) = e.get_mut("volumeClaimTemplate").filter(|t| t.is_object()) {
            if let Some(spec) = t.get_mut("spec").filter(|s| s.is_object()) {
                default_pvc_spec(spec);
            }
        }
    }
}

/// The tag `parsers.ParseImageName` finds: the explicit one, "latest" when the reference names
/// neither tag nor digest, and none when there is only a digest or the reference is invalid.
fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if !valid_repository(repo) {
        return None;
    }
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
            && tag
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        return ok.then(|| tag.to_owned());
    }
    if digest.is_some() {
        None
    } else {
        Some("latest".into())
    }
}

/// Docker's reference grammar: an optional registry host, then lowercase path components.
fn valid_repository(repo: &str) -> bool {
    if repo.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        let is_host = first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.to_lowercase() != first;
        if is_host {
            parts.remove(0);
        }
    }
    parts.iter().all(|component| {
        let b = component.as_bytes();
        !b.is_empty()
            && is_lower_alnum(b[0])
            && is_lower_alnum(b[b.len() - 1])
            && b.iter()
                .all(|&c| is_lower_alnum(c) || c == b'.' || c == b'_' || c == b'-')
    })
}

/// The Pod's QoS class, as `qos.ComputePodQOS` derives it from cpu and memory.
fn qos_class(spec: &Value) -> &'static str {
    let mut requests: Vec<(String, Quantity)> = Vec::new();
    let mut limits: Vec<(String, Quantity)> = Vec::new();
    let mut guaranteed = true;
    let accumulate = |acc: &mut Vec<(String, Quantity)>, name: &str, q: Quantity| -> bool {
        match acc.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => match total.add(&q) {
                Some(sum) => {
                    *total = sum;
                    true
                }
                None => false,
            },
            None => {
                acc.push((name.to_owned(), q));
                true
            }
        }
    };
    for c in list(spec, "containers")
        .iter()
        .chain(list(spec, "initContainers"))
    {
        let resources = &c["resources"];
        for (name, v) in map(resources, "requests").into_iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Ok(q) = Quantity::from_json(v) {
                // Only positive requests count towards a QoS class.
                if !q.neg && !q.is_zero() && !accumulate(&mut requests, name, q) {
                    guaranteed = false;
                }
            }
        }
        let mut found = 0;
        for (name, v) in map(resources, "limits").into_iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Ok(q) = Quantity::from_json(v) {
                if !q.is_zero() && !q.neg {
                    found += 1;
                    if !accumulate(&mut limits, name, q) {
                        guaranteed = false;
                    }
                }
            }
        }
        if found < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        for (name, req) in &requests {
            match limits.iter().find(|(n, _)| n == name) {
                Some((_, lim)) if lim.cmp(req) == Ordering::Equal => {}
                _ => guaranteed = false,
            }
        }
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{defaulted, deployment, pod};

    #[test]
    fn pod_defaults_match_kube() {
        let p = defaulted(
            "Pod",
            pod(json!([{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}])),
        );
        assert_eq!(
            p["spec"],
            json!({
                "containers": [{
                    "name": "web",
                    "image": "nginx",
                    "imagePullPolicy": "Always",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst",
                "enableServiceLinks": true,
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30
            })
        );
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert_eq!(defaulted("Pod", p.clone()), p, "defaulting is idempotent");
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        let policy = |image: &str| {
            let p = defaulted("Pod", pod(json!([{"name": "c", "image": image}])));
            p["spec"]["containers"][0]["imagePullPolicy"].clone()
        };
        assert_eq!(policy("nginx"), "Always");
        assert_eq!(policy("nginx:latest"), "Always");
        assert_eq!(policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(policy("localhost:5000/team/app"), "Always");
        assert_eq!(policy("registry.example.com:5000/app:v2"), "IfNotPresent");
        assert_eq!(
            policy(
                "busybox@sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
            ),
            "IfNotPresent"
        );
        // An unparseable reference has no tag at all.
        assert_eq!(policy("Nginx"), "IfNotPresent");
        let kept = defaulted(
            "Pod",
            pod(json!([{"name": "c", "image": "nginx", "imagePullPolicy": "Never"}])),
        );
        assert_eq!(kept["spec"]["containers"][0]["imagePullPolicy"], "Never");
    }

    #[test]
    fn pod_requests_default_to_limits_and_set_qos() {
        let p = defaulted(
            "Pod",
            pod(
                json!([{"name": "c", "image": "i", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}]),
            ),
        );
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "500m", "memory": "128Mi"})
        );
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
        let burstable = defaulted(
            "Pod",
            pod(json!([{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}])),
        );
        assert_eq!(burstable["status"]["qosClass"], "Burstable");
    }

    #[test]
    fn templates_get_pod_spec_defaults_but_not_pod_only_ones() {
        let d = defaulted("Deployment", deployment());
        let spec = &d["spec"]["template"]["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert!(spec.get("enableServiceLinks").is_none());
        let with_limits = defaulted(
            "ReplicaSet",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"limits": {"cpu": "1"}}}]}}}}),
        );
        assert!(
            with_limits["spec"]["template"]["spec"]["containers"][0]["resources"]
                .get("requests")
                .is_none()
        );
    }

    #[test]
    fn probes_volumes_and_env_get_their_defaults() {
        let p = defaulted(
            "Pod",
            json!({"spec": {
                "containers": [{
                    "name": "c", "image": "i",
                    "livenessProbe": {"httpGet": {"port": 8080}},
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
                }],
                "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "cfg"}}]
            }}),
        );
        let c = &p["spec"]["containers"][0];
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(p["spec"]["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(p["spec"]["volumes"][1]["configMap"]["defaultMode"], 420);
    }

    #[test]
    fn host_network_pods_default_host_ports() {
        let p = defaulted(
            "Pod",
            json!({"spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 53}]}]}}),
        );
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], 53);
    }
}
