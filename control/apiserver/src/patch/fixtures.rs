//! Test fixtures shared by the patch tests: applying patches of each type, and a Deployment
//! as kube stores it.

use serde_json::{json, Value};

use super::{apply, PatchError, PatchType};

pub(super) fn patch_ok(
    kind: &str,
    original: &Value,
    patch_type: PatchType,
    patch: &Value,
) -> Value {
    let body = serde_json::to_vec(patch).expect("test patch serializes");
    match apply(kind, original, patch_type, &body) {
        Ok(v) => v,
        Err(e) => panic!("patch failed with {}: {}", e.code, e.message),
    }
}

pub(super) fn smp(kind: &str, original: Value, patch: Value) -> Value {
    patch_ok(kind, &original, PatchType::StrategicMerge, &patch)
}

pub(super) fn smp_err(kind: &str, original: Value, patch: Value) -> PatchError {
    let body = serde_json::to_vec(&patch).expect("test patch serializes");
    apply(kind, &original, PatchType::StrategicMerge, &body).expect_err("patch should fail")
}

pub(super) fn json_patch_err(original: &Value, body: &str) -> PatchError {
    apply("Pod", original, PatchType::Json, body.as_bytes()).expect_err("patch should fail")
}

pub(super) fn names(list: &Value, key: &str) -> Vec<Value> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item[key].clone())
        .collect()
}

pub(super) fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "fe"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "old"}
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "nginx",
                            "args": ["-x", "-y"],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [
                                {"containerPort": 80, "protocol": "TCP"},
                                {"containerPort": 443, "protocol": "TCP"}
                            ],
                            "volumeMounts": [
                                {"name": "v1", "mountPath": "/a"},
                                {"name": "v2", "mountPath": "/b"}
                            ]
                        },
                        {"name": "d", "image": "busybox"}
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "volumes": [{"name": "v1", "emptyDir": {}}, {"name": "v2", "emptyDir": {}}]
                }
            }
        }
    })
}
