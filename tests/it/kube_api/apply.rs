//! Server-side apply and managedFields, driven by kubectl v1.32 (`apply --server-side`,
//! `--force-conflicts`, `--show-managed-fields`), kube-rs (`Patch::Apply`) and raw requests
//! for the bad input kube-apiserver answers with a Status; the Python client's dynamic client
//! applies and meets a conflict.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

use super::kubectl::Kubectl;
use super::{call, https, ControlPlane};

fn deployment(replicas: u32, image: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: c
        image: {image}
        ports:
        - containerPort: 80
"#
    )
}

/// The managedFields entry of `manager` in `object` (JSON).
fn entry<'a>(object: &'a Value, manager: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

#[tokio::test]
async fn kubectl_applies_server_side_with_conflicts_and_forced_takeover() {
    let cp = ControlPlane::start(1).await;
    let kubectl = Kubectl::new(&cp);
    tokio::task::spawn_blocking(move || {
        // Client-side apply first: its fields belong to kubectl-client-side-apply.
        let created = kubectl.ok_with(&["apply", "-f", "-"], Some(&deployment(2, "busybox:1.36")));
        assert_eq!(created.trim(), "deployment.apps/web created");
        let live: Value = serde_json::from_str(&kubectl.ok(&[
            "get", "deployment", "web", "-o", "json", "--show-managed-fields",
        ]))
        .unwrap();
        let csa = entry(&live, "kubectl-client-side-apply").expect("an Update entry");
        assert_eq!(csa["operation"], "Update");
        assert_eq!(csa["apiVersion"], "apps/v1");
        assert_eq!(csa["fieldsType"], "FieldsV1");
        assert_eq!(csa["fieldsV1"]["f:spec"]["f:replicas"], json!({}));

        // Another manager changing replicas conflicts, with kube's message.
        let conflict = kubectl.fails(
            &["apply", "--server-side", "--field-manager=ops", "-f", "-"],
            Some(&deployment(3, "busybox:1.36")),
        );
        assert!(
            conflict.contains(
                "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
            ),
            "{conflict}"
        );
        // The same values are shared, not a conflict. (kubectl then moves what its client-side
        // apply owned to the new manager with a JSON patch of managedFields, and drops the
        // last-applied annotation.)
        let shared = kubectl.ok_with(
            &["apply", "--server-side", "--field-manager=sharer", "-f", "-"],
            Some(&deployment(2, "busybox:1.36")),
        );
        assert_eq!(shared.trim(), "deployment.apps/web serverside-applied");
        // Forced, the applier takes replicas over.
        kubectl.ok_with(
            &[
                "apply",
                "--server-side",
                "--field-manager=ops",
                "--force-conflicts",
                "-f",
                "-",
            ],
            Some(&deployment(3, "busybox:1.36")),
        );
        let live: Value = serde_json::from_str(&kubectl.ok(&[
            "get", "deployment", "web", "-o", "json", "--show-managed-fields",
        ]))
        .unwrap();
        assert_eq!(live["spec"]["replicas"], 3);
        let ops = entry(&live, "ops").unwrap();
        assert_eq!(ops["operation"], "Apply");
        assert_eq!(ops["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
        let containers = &ops["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"];
        assert_eq!(
            containers["k:{\"name\":\"c\"}"]["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]
                ["f:containerPort"],
            json!({}),
            "{containers}"
        );
        assert!(entry(&live, "kubectl-client-side-apply").is_none());
        let sharer = &entry(&live, "sharer").unwrap()["fieldsV1"]["f:spec"];
        assert!(sharer.get("f:replicas").is_none(), "{sharer}");
        assert_eq!(sharer["f:selector"], json!({}));

        // One other applier of replicas is one conflict, two are two.
        let two = kubectl.fails(
            &["apply", "--server-side", "-f", "-"],
            Some(&deployment(4, "busybox:1.36")),
        );
        assert!(
            two.contains("Apply failed with 1 conflict: conflict with \"ops\": .spec.replicas"),
            "{two}"
        );
        kubectl.ok_with(
            &[
                "apply",
                "--server-side",
                "--field-manager=sharer",
                "-f",
                "-",
            ],
            Some(&deployment(3, "busybox:1.36")),
        );
        let plural = kubectl.fails(
            &["apply", "--server-side", "-f", "-"],
            Some(&deployment(4, "busybox:1.36")),
        );
        assert!(
            plural.contains(
                "Apply failed with 2 conflicts: conflicts with \"ops\":\n- .spec.replicas\nconflicts with \"sharer\":\n- .spec.replicas"
            ),
            "{plural}"
        );
        let shown = kubectl.ok(&["get", "deployment", "web", "-o", "yaml", "--show-managed-fields"]);
        assert!(shown.contains("manager: ops") && shown.contains("operation: Apply"), "{shown}");
        let hidden = kubectl.ok(&["get", "deployment", "web", "-o", "yaml"]);
        assert!(!hidden.contains("managedFields"), "{hidden}");

        // Fields an applier drops are removed when nobody else owns them.
        let config = |data: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n{data}")
        };
        let applied = kubectl.ok_with(
            &["apply", "--server-side", "-f", "-"],
            Some(&config("  a: \"1\"\n  b: \"2\"\n")),
        );
        assert_eq!(applied.trim(), "configmap/settings serverside-applied");
        kubectl.ok_with(
            &["apply", "--server-side", "-f", "-"],
            Some(&config("  a: \"1\"\n")),
        );
        let data = kubectl.ok(&["get", "configmap", "settings", "-o", "jsonpath={.data}"]);
        assert_eq!(data, r#"{"a":"1"}"#);

        // kubectl's server-side apply over its own client-side apply takes over the fields
        // the last-applied annotation names, without conflicts (kube's upgrade path).
        let csa = kubectl.ok_with(&["apply", "-f", "-"], Some(&config("  a: \"1\"\n").replace("settings", "legacy")));
        assert_eq!(csa.trim(), "configmap/legacy created");
        kubectl.ok_with(
            &["apply", "--server-side", "-f", "-"],
            Some(&config("  a: \"2\"\n").replace("settings", "legacy")),
        );
        let data = kubectl.ok(&["get", "configmap", "legacy", "-o", "jsonpath={.data.a}"]);
        assert_eq!(data, "2");

        // A Service's ports are keyed by port and protocol.
        let service = |port: u16| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: front\nspec:\n  selector: {{app: web}}\n  ports:\n  - name: http\n    port: {port}\n    targetPort: 80\n"
            )
        };
        kubectl.ok_with(&["apply", "--server-side", "-f", "-"], Some(&service(80)));
        kubectl.ok_with(&["apply", "--server-side", "-f", "-"], Some(&service(8080)));
        let ports = kubectl.ok(&["get", "service", "front", "-o", "jsonpath={.spec.ports[*].port}"]);
        assert_eq!(ports, "8080");

        // A load balancer's address is applied to the status subresource.
        let edge = "apiVersion: v1\nkind: Service\nmetadata:\n  name: edge\nspec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports:\n  - port: 443\n";
        kubectl.ok_with(&["apply", "--server-side", "-f", "-"], Some(edge));
        let status = format!(
            "{edge}status:\n  loadBalancer:\n    ingress:\n    - ip: 169.254.9.9\n"
        );
        let applied = kubectl.ok_with(
            &[
                "apply",
                "--server-side",
                "--subresource=status",
                "--field-manager=lb",
                "-f",
                "-",
            ],
            Some(&status),
        );
        assert_eq!(applied.trim(), "service/edge serverside-applied");
        let live: Value = serde_json::from_str(&kubectl.ok(&[
            "get", "service", "edge", "-o", "json", "--show-managed-fields",
        ]))
        .unwrap();
        assert_eq!(live["status"]["loadBalancer"]["ingress"][0]["ip"], "169.254.9.9");
        let lb = entry(&live, "lb").unwrap();
        assert_eq!((lb["operation"].as_str(), lb["subresource"].as_str()), (Some("Apply"), Some("status")));
        assert_eq!(lb["fieldsV1"], json!({"f:status": {"f:loadBalancer": {"f:ingress": {}}}}));
    })
    .await
    .unwrap();
    cp.stop().await;
}

const CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "routes.example.com"},
  "spec": {
    "group": "example.com",
    "scope": "Namespaced",
    "names": {"plural": "routes", "singular": "route", "kind": "Route"},
    "versions": [{
      "name": "v1", "served": true, "storage": true,
      "subresources": {"status": {}},
      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
          "hosts": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
          "rules": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {
              "name": {"type": "string"}, "backend": {"type": "string"}}}},
          "args": {"type": "array", "items": {"type": "string"}}}},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}
    }]
  }
}"#;

#[tokio::test]
async fn kube_rs_applies_built_ins_and_custom_objects() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();

    // An apply to a missing object creates it, owned by the applier alone.
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let applied = maps
        .patch(
            "cfg",
            &PatchParams::apply("deployer"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cfg", "labels": {"team": "a"}}, "data": {"k": "v"}})),
        )
        .await
        .unwrap();
    let managed = applied.metadata.managed_fields.unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("deployer"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
    assert_eq!(
        managed[0].fields_v1.as_ref().unwrap().0,
        json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:team": {}}}})
    );
    assert!(managed[0].time.is_some());

    // Another applier of a different value conflicts; forced, it takes the field.
    let other = PatchParams::apply("other");
    let change = Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg"}, "data": {"k": "w"}}));
    match maps.patch("cfg", &other, &change).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert_eq!(
                status.message,
                "Apply failed with 1 conflict: conflict with \"deployer\": .data.k"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = maps
        .patch("cfg", &PatchParams::apply("other").force(), &change)
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["k"], "w");
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|e| e.manager)
        .collect();
    assert_eq!(managers, ["deployer", "other"]);

    // A plain update is recorded as an Update by its field manager.
    let mut edited = maps.get("cfg").await.unwrap();
    edited
        .data
        .as_mut()
        .unwrap()
        .insert("extra".into(), "1".into());
    let params = PostParams {
        field_manager: Some("editor".into()),
        ..Default::default()
    };
    let edited = maps.replace("cfg", &params, &edited).await.unwrap();
    let editor = edited
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|e| e.manager.as_deref() == Some("editor"))
        .unwrap();
    assert_eq!(editor.operation.as_deref(), Some("Update"));
    assert_eq!(editor.api_version.as_deref(), Some("v1"));
    assert_eq!(
        editor.fields_v1.unwrap().0,
        json!({"f:data": {"f:extra": {}}})
    );

    // A Deployment's containers merge by name across appliers.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let base = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}});
    deployments
        .patch(
            "web",
            &PatchParams::apply("base"),
            &Patch::Apply(base.clone()),
        )
        .await
        .unwrap();
    let sidecar = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox:1.36"}]}}}});
    let both = deployments
        .patch(
            "web",
            &PatchParams::apply("sidecar"),
            &Patch::Apply(sidecar),
        )
        .await
        .unwrap();
    let names: Vec<String> = both
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["c", "side"]);
    // Applying the same again changes nothing: no write, no new generation.
    let again = deployments
        .patch("web", &PatchParams::apply("base"), &Patch::Apply(base))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        both.metadata.resource_version
    );
    assert_eq!(again.metadata.generation, Some(2));

    // A CRD's list types: map lists merge by key, sets by value, others are replaced.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &serde_json::from_str(CRD).unwrap())
        .await
        .unwrap();
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Route"),
        "routes",
    );
    let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let route = |spec: Value| {
        Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Route",
            "metadata": {"name": "r"}, "spec": spec}))
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let first = routes
            .patch(
                "r",
                &PatchParams::apply("a"),
                &route(json!({"hosts": ["a.example"], "rules": [{"name": "x", "backend": "one"}], "args": ["1"]})),
            )
            .await;
        match first {
            Ok(_) => break,
            // Not served yet: the CRD is being established.
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the CRD was never served: {e}"),
        }
    }
    let merged = routes
        .patch(
            "r",
            &PatchParams::apply("b").force(),
            &route(json!({"hosts": ["b.example"], "rules": [{"name": "y", "backend": "two"}], "args": ["2"]})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data["spec"]["hosts"],
        json!(["a.example", "b.example"])
    );
    assert_eq!(
        merged.data["spec"]["rules"],
        json!([{"name": "x", "backend": "one"}, {"name": "y", "backend": "two"}])
    );
    assert_eq!(merged.data["spec"]["args"], json!(["2"]));
    let a = merged
        .metadata
        .managed_fields
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.manager.as_deref() == Some("a"))
        .unwrap();
    // "a" lost args to the forced apply, and keeps its host and rule.
    assert_eq!(
        a.fields_v1.as_ref().unwrap().0["f:spec"],
        json!({"f:hosts": {"v:\"a.example\"": {}}, "f:rules": {"k:{\"name\":\"x\"}": {".": {}, "f:backend": {}, "f:name": {}}}})
    );
    // "a" applies again without its rule: the rule goes, b's stays.
    let pruned = routes
        .patch(
            "r",
            &PatchParams::apply("a"),
            &route(json!({"hosts": ["a.example"]})),
        )
        .await
        .unwrap();
    assert_eq!(
        pruned.data["spec"]["rules"],
        json!([{"name": "y", "backend": "two"}])
    );

    // The status subresource is applied too, and recorded with its subresource.
    let status = routes
        .patch_status(
            "r",
            &PatchParams::apply("controller"),
            &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Route",
                "metadata": {"name": "r"}, "status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["ready"], true);
    let controller = status
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|e| e.manager.as_deref() == Some("controller"))
        .unwrap();
    assert_eq!(controller.subresource.as_deref(), Some("status"));
    assert_eq!(
        controller.fields_v1.unwrap().0,
        json!({"f:status": {"f:ready": {}}})
    );
    cp.stop().await;
}

#[tokio::test]
async fn bad_applies_get_kube_statuses_and_managed_fields_stay_sound() {
    let cp = ControlPlane::start(1).await;
    let client = https(&cp, true);
    let base = cp.server(0);
    let url = |name: &str, query: &str| {
        format!("{base}/api/v1/namespaces/default/configmaps/{name}{query}")
    };
    let apply = |name: &str, query: &str, body: &'static str| {
        client
            .patch(url(name, query))
            .header("content-type", "application/apply-patch+yaml")
            .body(body)
    };

    let (code, body) = call(apply(
        "c",
        "",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    ))
    .await;
    assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(
        body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let (code, body) = call(apply("c", "?fieldManager=m", "metadata: {name: [c\n")).await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("error encoding patch: error converting YAML to JSON: yaml: "),
        "{body}"
    );
    let (code, body) = call(apply(
        "c",
        "?fieldManager=m",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
    ))
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (
            400,
            Some("the name of the object (other) does not match the name on the URL (c)")
        )
    );
    let (code, body) = call(apply(
        "c",
        "?fieldManager=m",
        "apiVersion: v2\nkind: ConfigMap\nmetadata: {name: c}\n",
    ))
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (400, Some("Incorrect version specified in apply patch. Specified patch version: v2, expected: v1"))
    );
    let (code, body) = call(apply(
        "c",
        "?fieldManager=m",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, managedFields: [{manager: x}]}\n",
    ))
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (400, Some("metadata.managedFields must be nil"))
    );
    let (code, body) = call(apply(
        "c",
        "?fieldManager=m",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, uid: 6a4ff1b0-0000-0000-0000-000000000000}\n",
    ))
    .await;
    assert_eq!((code, body["reason"].as_str()), (409, Some("Conflict")));
    // Nothing was created by any of them.
    let (code, _) = call(client.get(url("c", ""))).await;
    assert_eq!(code, 404);

    // A create without ?fieldManager is recorded under the User-Agent's program.
    let (code, created) = call(
        client
            .post(format!("{base}/api/v1/namespaces/default/configmaps"))
            .header("content-type", "application/json")
            .header("user-agent", "deploy-tool/2.1 (linux)")
            .body(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1"}}"#),
    )
    .await;
    assert_eq!(code, 201);
    let by_agent = entry(&created, "deploy-tool").expect("the user agent's manager");
    assert_eq!(by_agent["operation"], "Update");
    assert_eq!(
        by_agent["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}}})
    );

    // Malformed managedFields on an update are ignored: the live ones stay.
    let patch = |body: &'static str| {
        client
            .patch(url("c", "?fieldManager=patcher"))
            .header("content-type", "application/merge-patch+json")
            .body(body)
    };
    let (code, kept) = call(patch(r#"{"metadata":{"managedFields":[{"manager":"evil","operation":"Delete"}]},"data":{"b":"2"}}"#)).await;
    assert_eq!(code, 200);
    let managers: Vec<&str> = kept["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["deploy-tool", "patcher"]);
    // A list of one empty entry resets them: the object is untracked until an apply.
    let (code, reset) = call(patch(r#"{"metadata":{"managedFields":[{}]}}"#)).await;
    assert_eq!(code, 200);
    assert!(reset["metadata"].get("managedFields").is_none(), "{reset}");
    // The first apply records what was there as before-first-apply.
    let (code, applied) = call(apply(
        "c",
        "?fieldManager=m",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: \"1\"}\n",
    ))
    .await;
    assert_eq!(code, 200);
    let before = entry(&applied, "before-first-apply").expect("before-first-apply");
    assert_eq!(
        before["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}})
    );
    assert_eq!(
        entry(&applied, "m").unwrap()["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
    cp.stop().await;
}

const PYTHON: &str = r#"
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

config.load_kube_config(config_file=sys.argv[1])
dyn = DynamicClient(client.ApiClient())
maps = dyn.resources.get(api_version="v1", kind="ConfigMap")
body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py"}, "data": {"k": "1"}}
made = maps.server_side_apply(body=body, namespace="default", field_manager="py-one")
assert made.data.k == "1", made
assert [e.manager for e in made.metadata.managedFields] == ["py-one"], made.metadata.managedFields
body["data"]["k"] = "2"
try:
    maps.server_side_apply(body=body, namespace="default", field_manager="py-two")
    raise SystemExit("a conflicting apply succeeded")
except ApiException as e:
    assert e.status == 409, e.status
    assert 'conflict with \\"py-one\\": .data.k' in e.body, e.body
    assert "FieldManagerConflict" in e.body, e.body
taken = maps.server_side_apply(body=body, namespace="default", field_manager="py-two", force_conflicts=True)
assert taken.data.k == "2", taken
print("python apply ok")
"#;

#[tokio::test]
async fn the_python_dynamic_client_applies_server_side() {
    let cp = ControlPlane::start(1).await;
    let kubeconfig = cp.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg("-c")
            .arg(PYTHON)
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
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "python apply ok"
    );
    cp.stop().await;
}
