//! CustomResourceDefinitions driven by real clients: kubectl installs one and uses its objects
//! (printer columns, explain, schema errors, scale, deletion); kube-rs's dynamic API and watcher
//! use one created through another member of a three-member control plane.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

use super::kubectl::Kubectl;
use super::ControlPlane;

/// The schema both versions of the test CRD share.
const SCHEMA: &str = r#"
      openAPIV3Schema:
        type: object
        description: A widget, for tests.
        properties:
          spec:
            type: object
            description: What the widget should be.
            required: [image]
            properties:
              replicas: {type: integer, minimum: 0, description: How many widgets to run.}
              image: {type: string, description: The image widgets run.}
              size: {type: string, enum: [small, large], default: small}
          status:
            type: object
            properties:
              replicas: {type: integer}"#;

fn crd_yaml() -> String {
    format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {{}}
      scale: {{specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}}
    additionalPrinterColumns:
    - {{name: Replicas, type: integer, jsonPath: .spec.replicas}}
    - {{name: Image, type: string, jsonPath: .spec.image}}
    - {{name: Age, type: date, jsonPath: .metadata.creationTimestamp}}
    schema:{SCHEMA}
  - name: v1beta1
    served: true
    storage: false
    schema:{SCHEMA}
"#
    )
}

const WIDGET: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
spec:
  replicas: 2
  image: busybox:1.36
"#;

#[tokio::test]
async fn kubectl_installs_a_crd_and_uses_its_objects() {
    let cp = ControlPlane::start(1).await;
    let kubectl = Kubectl::new(&cp);
    tokio::task::spawn_blocking(move || {
        let created = kubectl.ok_with(&["apply", "-f", "-"], Some(&crd_yaml()));
        assert_eq!(
            created.trim(),
            "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
        );
        let waited = kubectl.ok(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=30s",
            "crd/widgets.example.com",
        ]);
        assert_eq!(
            waited.trim(),
            "customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met"
        );

        // The CRD's status is the server's: names accepted, the storage version recorded.
        let status = kubectl.ok(&[
            "get",
            "crd",
            "widgets.example.com",
            "-o",
            "jsonpath={.status.acceptedNames.kind} {.status.storedVersions} {.metadata.finalizers}",
        ]);
        assert_eq!(
            status,
            "Widget [\"v1\"] [\"customresourcecleanup.apiextensions.k8s.io\"]"
        );

        // apply validates through the group version's OpenAPI (fieldValidation=Strict). The
        // member that took the CRD answered once it served it: no waiting here.
        let applied = kubectl.ok_with(&["apply", "-f", "-"], Some(WIDGET));
        assert_eq!(applied.trim(), "widget.example.com/w1 created");
        let listed = kubectl.ok(&["get", "widgets"]);
        let mut lines = listed.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["NAME", "REPLICAS", "IMAGE", "AGE"]);
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(&row[..3], ["w1", "2", "busybox:1.36"], "{listed}");
        // The schema's default filled the field the manifest left out.
        assert_eq!(
            kubectl.ok(&["get", "wd", "w1", "-o", "jsonpath={.spec.size} {.metadata.generation}"]),
            "small 1"
        );

        let explained = kubectl.ok(&["explain", "widgets.spec"]);
        assert!(explained.contains("KIND:       Widget"), "{explained}");
        assert!(explained.contains("How many widgets to run."), "{explained}");

        // A value of the wrong type, and a field the schema does not have.
        let bad = WIDGET.replace("replicas: 2", "replicas: two");
        let refused = kubectl.fails(&["apply", "-f", "-"], Some(&bad));
        assert!(
            refused.contains("spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""),
            "{refused}"
        );
        let unknown = WIDGET.replace("image: busybox:1.36", "image: busybox:1.36\n  colour: red");
        let refused = kubectl.fails(&["create", "-f", "-"], Some(&unknown.replace("w1", "w2")));
        assert!(
            refused.contains("strict decoding error: unknown field \"spec.colour\""),
            "{refused}"
        );

        // The scale subresource moves .spec.replicas, and with it the generation.
        assert_eq!(
            kubectl.ok(&["scale", "widget", "w1", "--replicas=5"]).trim(),
            "widget.example.com/w1 scaled"
        );
        assert_eq!(
            kubectl.ok(&["get", "wd", "w1", "-o", "jsonpath={.spec.replicas} {.metadata.generation}"]),
            "5 2"
        );
        // Strategic merge patch has no meaning without Go types: kube's 415.
        let refused = kubectl.fails(&["patch", "widget", "w1", "-p", "{\"spec\":{\"replicas\":1}}"], None);
        assert!(
            refused.contains("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"),
            "{refused}"
        );
        kubectl.ok(&["patch", "widget", "w1", "--type=merge", "-p", "{\"spec\":{\"replicas\":1}}"]);
        // Another served version shows the same object under its own apiVersion.
        assert_eq!(
            kubectl.ok(&["get", "widgets.v1beta1.example.com", "w1", "-o", "jsonpath={.apiVersion} {.spec.replicas}"]),
            "example.com/v1beta1 1"
        );

        // Deleting the CRD deletes its objects first; a new CRD of the same name starts empty.
        assert_eq!(
            kubectl.ok(&["delete", "crd", "widgets.example.com"]).trim(),
            "customresourcedefinition.apiextensions.k8s.io \"widgets.example.com\" deleted"
        );
        let gone = kubectl.fails(&["get", "crd", "widgets.example.com"], None);
        assert!(gone.contains("NotFound"), "{gone}");
        kubectl.ok_with(&["apply", "-f", "-"], Some(&crd_yaml()));
        kubectl.ok(&["wait", "--for", "condition=established", "--timeout=30s", "crd/widgets.example.com"]);
        let listed = kubectl.ok(&["get", "widgets", "-o", "name"]);
        assert_eq!(listed.trim(), "", "the old objects survived their CRD");
    })
    .await
    .unwrap();
    cp.stop().await;
}

/// The CRD of [`crd_yaml`], as JSON.
fn crd_json() -> serde_json::Value {
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "required": ["image"], "properties": {
            "replicas": {"type": "integer", "minimum": 0},
            "image": {"type": "string"},
            "size": {"type": "string", "enum": ["small", "large"], "default": "small"}}},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema,
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}},
                {"name": "v1beta1", "served": true, "storage": false, "schema": schema}]}})
}

fn widgets_v1() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    )
}

#[tokio::test]
async fn a_crd_created_through_one_member_is_served_by_the_others() {
    let cp = ControlPlane::start(3).await;
    let first = cp.client_of_member(0).await;
    let second = cp.client_of_member(1).await;
    let third = cp.client_of_member(2).await;

    let crd: CustomResourceDefinition = serde_json::from_value(crd_json()).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(first.clone());
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let conditions = created.status.unwrap().conditions.unwrap();
    assert!(conditions
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True"));

    // A watcher on the second member, while the third member creates an object.
    let on_second: Api<DynamicObject> = Api::namespaced_with(second, "default", &widgets_v1());
    let on_third: Api<DynamicObject> = Api::namespaced_with(third, "default", &widgets_v1());
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"image": "busybox", "replicas": 1, "extra": true}}))
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stored = loop {
        match on_third.create(&PostParams::default(), &widget).await {
            Ok(stored) => break stored,
            Err(kube::Error::Api(e)) if e.code == 404 && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("create through the third member: {e}"),
        }
    };
    // Pruned and defaulted as the schema says.
    assert_eq!(
        stored.data["spec"],
        json!({"image": "busybox", "replicas": 1, "size": "small"})
    );

    let mut events = Box::pin(kube::runtime::watcher(
        on_second.clone(),
        kube::runtime::watcher::Config::default(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while !seen {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("the watcher saw the widget in time")
            .unwrap()
            .unwrap();
        seen = match event {
            kube::runtime::watcher::Event::InitApply(o)
            | kube::runtime::watcher::Event::Apply(o) => o.metadata.name.as_deref() == Some("w1"),
            _ => false,
        };
    }

    // The status subresource writes status alone and leaves the generation; spec moves it.
    let status = on_third
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 1}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["replicas"], 1);
    assert_eq!(status.data["spec"]["replicas"], 1);
    assert_eq!(status.metadata.generation, Some(1));
    let spec = on_second
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("the watcher saw the change in time")
            .unwrap()
            .unwrap();
        if let kube::runtime::watcher::Event::Apply(o) = event {
            if o.data["spec"]["replicas"] == 3 {
                break;
            }
        }
    }

    // A value the schema refuses: 422 with kube's cause, nothing stored.
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w2"}, "spec": {"image": "busybox", "replicas": -1}}))
    .unwrap();
    let kube::Error::Api(refused) = on_second
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err()
    else {
        panic!("not an API error");
    };
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        refused.message,
        "Widget.example.com \"w2\" is invalid: spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
    );
    assert!(on_second.get_opt("w2").await.unwrap().is_none());

    // Deleting the CRD through the second member deletes its objects, then the CRD.
    Api::<CustomResourceDefinition>::all(cp.client_of_member(1).await)
        .delete("widgets.example.com", &Default::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while crds.get_opt("widgets.example.com").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CRD was never released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match on_third.list(&Default::default()).await {
            Err(kube::Error::Api(e)) if e.code == 404 => break,
            _ if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("the third member still serves widgets: {other:?}"),
        }
    }
    cp.stop().await;
}

const PYTHON: &str = r#"
import json, sys, time
from kubernetes import client, config
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
crd = json.loads(sys.argv[2])
created = client.ApiextensionsV1Api().create_custom_resource_definition(crd)
assert created.status.accepted_names.kind == "Widget", created.status
custom = client.CustomObjectsApi()
body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "py"},
        "spec": {"image": "busybox", "replicas": 1}}
deadline = time.time() + 10
while True:
    try:
        made = custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", body)
        break
    except ApiException as e:
        if e.status != 404 or time.time() > deadline:
            raise
        time.sleep(0.05)
assert made["spec"]["size"] == "small", made
patched = custom.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "py",
                                                {"spec": {"replicas": 4}})
assert patched["spec"]["replicas"] == 4 and patched["metadata"]["generation"] == 2, patched
listed = custom.list_namespaced_custom_object("example.com", "v1beta1", "default", "widgets")
assert [(w["apiVersion"], w["metadata"]["name"]) for w in listed["items"]] == [("example.com/v1beta1", "py")], listed
try:
    custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets",
        {**body, "metadata": {"name": "bad"}, "spec": {"replicas": 1}})
    raise SystemExit("a widget without an image was created")
except ApiException as e:
    assert e.status == 422, e.status
    assert "spec.image: Required value" in e.body, e.body
custom.delete_namespaced_custom_object("example.com", "v1", "default", "widgets", "py")
print("python custom objects ok")
"#;

#[tokio::test]
async fn the_python_client_uses_custom_objects() {
    let cp = ControlPlane::start(1).await;
    let kubeconfig = cp.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg("-c")
            .arg(PYTHON)
            .arg(&kubeconfig)
            .arg(crd_json().to_string())
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
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "python custom objects ok"
    );
    cp.stop().await;
}
