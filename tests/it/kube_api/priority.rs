//! PriorityClasses (`scheduling.k8s.io/v1`) and the Priority admission plugin through
//! kube-rs and kubectl: the system classes exist from the start, kube's validation and its
//! messages, one global default, and pods getting their priority from their class.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::kubectl::Kubectl;
use super::ControlPlane;

fn priority_class(body: serde_json::Value) -> PriorityClass {
    let mut class = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass"});
    for (key, value) in body.as_object().unwrap() {
        class[key] = value.clone();
    }
    serde_json::from_value(class).unwrap()
}

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]}});
    for (key, value) in spec.as_object().unwrap() {
        pod["spec"][key] = value.clone();
    }
    serde_json::from_value(pod).unwrap()
}

/// The API error's code, reason and message.
fn refused<T: std::fmt::Debug>(result: kube::Result<T>) -> (u16, String, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn priority_classes_are_validated_and_pods_take_their_priority() {
    let cp = ControlPlane::start(1).await;
    let classes = Api::<PriorityClass>::all(cp.client.clone());
    let pods = Api::<Pod>::namespaced(cp.client.clone(), "default");
    let create = PostParams::default();

    let node_critical = classes.get("system-node-critical").await.unwrap();
    assert_eq!(node_critical.value, 2_000_001_000);
    assert_eq!(
        classes.get("system-cluster-critical").await.unwrap().value,
        2_000_000_000
    );

    let too_high =
        priority_class(json!({"metadata": {"name": "too-high"}, "value": 1_000_000_001}));
    assert_eq!(
        refused(classes.create(&create, &too_high).await),
        (422, "Invalid".into(), "PriorityClass.scheduling.k8s.io \"too-high\" is invalid: value: Forbidden: maximum allowed value of a user defined priority is 1000000000".into())
    );
    let reserved = priority_class(json!({"metadata": {"name": "system-mine"}, "value": 5}));
    assert_eq!(
        refused(classes.create(&create, &reserved).await),
        (422, "Invalid".into(), "PriorityClass.scheduling.k8s.io \"system-mine\" is invalid: metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class".into())
    );

    let default = priority_class(json!({"metadata": {"name": "normal"}, "value": 100,
        "globalDefault": true}));
    let stored = classes.create(&create, &default).await.unwrap();
    assert_eq!(
        stored.preemption_policy.as_deref(),
        Some("PreemptLowerPriority")
    );
    let second = priority_class(json!({"metadata": {"name": "also-default"}, "value": 5,
        "globalDefault": true}));
    assert_eq!(
        refused(classes.create(&create, &second).await),
        (403, "Forbidden".into(), "priorityclasses.scheduling.k8s.io \"also-default\" is forbidden: PriorityClass normal is already marked as default. Only one default can exist".into())
    );
    let batch = priority_class(json!({"metadata": {"name": "batch"}, "value": 50,
        "preemptionPolicy": "Never"}));
    classes.create(&create, &batch).await.unwrap();
    let change = json!({"value": 60});
    assert_eq!(
        refused(
            classes
                .patch("batch", &PatchParams::default(), &Patch::Merge(&change))
                .await
        ),
        (422, "Invalid".into(), "PriorityClass.scheduling.k8s.io \"batch\" is invalid: value: Forbidden: may not be changed in an update.".into())
    );
    let described = json!({"description": "batch work"});
    classes
        .patch("batch", &PatchParams::default(), &Patch::Merge(&described))
        .await
        .expect("the description may change");

    // Pods: the global default, a named class, an unknown class, a priority of their own.
    let plain = pods
        .create(&create, &pod("plain", json!({})))
        .await
        .unwrap();
    let spec = plain.spec.unwrap();
    assert_eq!(spec.priority_class_name.as_deref(), Some("normal"));
    assert_eq!(spec.priority, Some(100));
    let batch_pod = pods
        .create(
            &create,
            &pod("batch-1", json!({"priorityClassName": "batch"})),
        )
        .await
        .unwrap();
    let spec = batch_pod.spec.unwrap();
    assert_eq!(spec.priority, Some(50));
    assert_eq!(spec.preemption_policy.as_deref(), Some("Never"));
    let critical = pods
        .create(
            &create,
            &pod(
                "critical",
                json!({"priorityClassName": "system-node-critical"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(critical.spec.unwrap().priority, Some(2_000_001_000));
    assert_eq!(
        refused(
            pods.create(&create, &pod("lost", json!({"priorityClassName": "nope"})))
                .await
        ),
        (
            403,
            "Forbidden".into(),
            "pods \"lost\" is forbidden: no PriorityClass with name nope was found".into()
        )
    );
    assert_eq!(
        refused(
            pods.create(
                &create,
                &pod("sneaky", json!({"priorityClassName": "batch", "priority": 1_000_000}))
            )
            .await
        ),
        (403, "Forbidden".into(), "pods \"sneaky\" is forbidden: the integer value of priority (1000000) must not be provided in pod spec; priority admission controller computed 50 from the given PriorityClass name".into())
    );
    assert!(
        pods.get_opt("lost").await.unwrap().is_none(),
        "nothing stored"
    );

    // kubectl finds the resource by its short name and prints kube's columns.
    let kubectl = Kubectl::new(&cp);
    let table = tokio::task::spawn_blocking(move || kubectl.ok(&["get", "pc"]))
        .await
        .unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "NAME",
            "VALUE",
            "GLOBAL-DEFAULT",
            "AGE",
            "PREEMPTIONPOLICY"
        ]),
        "{table}"
    );
    let normal = table
        .lines()
        .find(|l| l.starts_with("normal "))
        .expect(&table);
    let cells: Vec<&str> = normal.split_whitespace().collect();
    assert_eq!((cells[1], cells[2]), ("100", "true"), "{normal}");
    assert!(table.contains("system-node-critical"), "{table}");

    cp.stop().await;
}
