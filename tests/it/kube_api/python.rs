//! The Python `kubernetes` client (installed by scripts/install-test-deps.sh) against a member:
//! create without a Content-Type, list with a selector, watch with synthetic ADDEDs, and a
//! 409 as an ApiException.

use super::ControlPlane;

const SCRIPT: &str = r#"
import sys
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
apps = client.AppsV1Api()

body = {"metadata": {"name": "py", "labels": {"app": "py"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "py"}},
                 "template": {"metadata": {"labels": {"app": "py"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
created = apps.create_namespaced_deployment("default", body)
assert created.metadata.generation == 1, created.metadata
try:
    apps.create_namespaced_deployment("default", body)
    raise SystemExit("a second create succeeded")
except ApiException as e:
    assert e.status == 409, e.status
    assert '"reason":"AlreadyExists"' in e.body.replace(" ", ""), e.body

scaled = apps.patch_namespaced_deployment_scale("py", "default", {"spec": {"replicas": 3}})
assert scaled.spec.replicas == 3

core.create_namespaced_config_map("default", {"metadata": {"name": "one", "labels": {"k": "v"}}, "data": {"a": "b"}})
listed = core.list_namespaced_config_map("default", label_selector="k=v")
assert [m.metadata.name for m in listed.items] == ["one"], listed.items

seen = []
for event in watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=2):
    seen.append((event["type"], event["object"].metadata.name))
assert ("ADDED", "one") in seen, seen
print("python client ok")
"#;

#[tokio::test]
async fn the_python_client_creates_lists_patches_and_watches() {
    let cp = ControlPlane::start(1).await;
    let kubeconfig = cp.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg("-c")
            .arg(SCRIPT)
            .arg(&kubeconfig)
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client ok"));
    cp.stop().await;
}
