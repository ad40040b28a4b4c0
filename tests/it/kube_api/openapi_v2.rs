//! `/openapi/v2` in gnostic protobuf, as kubectl reads it: `kubectl apply -f` of a `kind: List`
//! validates the items against v2's definitions (v3 has no `List` kind to ask about).

use super::kubectl::Kubectl;
use super::ControlPlane;

const LIST: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "listed", "namespace": "default"},
   "data": {"x": "1"}},
  {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "listed", "namespace": "default"},
   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "listed"}},
    "template": {"metadata": {"labels": {"app": "listed"}},
     "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}}]}"#;

#[tokio::test]
async fn kubectl_applies_a_list_validated_against_openapi_v2() {
    let cp = ControlPlane::start(1).await;
    let kubectl = Kubectl::new(&cp);
    tokio::task::spawn_blocking(move || {
        let out = kubectl.run(&["apply", "-v=8", "-f", "-"], Some(LIST));
        let log = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{log}");
        assert!(log.contains("/openapi/v2"), "kubectl read v2: {log}");
        assert_eq!(
            stdout.trim(),
            "configmap/listed created\ndeployment.apps/listed created"
        );

        let changed = LIST.replace(r#""x": "1""#, r#""x": "2""#);
        let out = kubectl.ok_with(&["apply", "-f", "-"], Some(&changed));
        assert_eq!(
            out.trim(),
            "configmap/listed configured\ndeployment.apps/listed unchanged"
        );
        let data = kubectl.ok(&["get", "configmap", "listed", "-o", "jsonpath={.data.x}"]);
        assert_eq!(data, "2");

        // The items are checked against the served schemas: an unknown field is refused
        // before anything is sent.
        let bogus = LIST.replace(r#""replicas": 1,"#, r#""replicas": 1, "replica": 2,"#);
        let error = kubectl.fails(&["apply", "-f", "-"], Some(&bogus));
        assert!(error.contains("unknown field \"replica\""), "{error}");
    })
    .await
    .unwrap();
    cp.stop().await;
}
