//! The API through the `kube` crate, as controllers and outside programs use it.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use super::ControlPlane;

fn status_of(error: kube::Error) -> kube::core::Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

fn config_map(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": image}]}}))
    .unwrap()
}

#[tokio::test]
async fn objects_get_identity_and_optimistic_concurrency() {
    let cp = ControlPlane::start(1).await;
    namespace(&cp.client, "crud").await;
    let maps: Api<ConfigMap> = Api::namespaced(cp.client.clone(), "crud");
    let created = maps
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .expect("create");
    let meta = &created.metadata;
    assert_eq!(meta.uid.as_ref().map(String::len), Some(36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("crud"));
    let rv: i64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
    assert!(rv > 0);

    let again = status_of(
        maps.create(&PostParams::default(), &config_map("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(again.message, "configmaps \"a\" already exists");

    let mut changed = created.clone();
    changed.data = Some([("k".to_owned(), "w".to_owned())].into());
    let updated = maps
        .replace("a", &PostParams::default(), &changed)
        .await
        .expect("update");
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(updated.metadata.uid, created.metadata.uid);
    // The same stale resourceVersion again loses.
    let stale = status_of(
        maps.replace("a", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert!(
        stale.message.contains("the object has been modified"),
        "{}",
        stale.message
    );

    maps.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let gone = status_of(maps.get("a").await.unwrap_err());
    assert_eq!((gone.code, gone.reason.as_str()), (404, "NotFound"));
    assert_eq!(gone.message, "configmaps \"a\" not found");
    cp.stop().await;
}

#[tokio::test]
async fn namespaces_gate_creates() {
    let cp = ControlPlane::start(1).await;
    let maps: Api<ConfigMap> = Api::namespaced(cp.client.clone(), "nowhere");
    let missing = status_of(
        maps.create(&PostParams::default(), &config_map("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );

    namespace(&cp.client, "closing").await;
    let namespaces: Api<Namespace> = Api::all(cp.client.clone());
    namespaces
        .delete("closing", &DeleteParams::default())
        .await
        .expect("delete");
    // The namespace finalizer holds it, Terminating, until its contents are gone.
    let closing = namespaces.get("closing").await.expect("still there");
    assert_eq!(
        closing.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert!(closing.metadata.deletion_timestamp.is_some());
    let maps: Api<ConfigMap> = Api::namespaced(cp.client.clone(), "closing");
    let refused = status_of(
        maps.create(&PostParams::default(), &config_map("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    assert!(refused.message.contains("because it is being terminated"));

    // The namespace controller's last step: finalize with no finalizers left deletes it.
    let mut finalized = namespaces.get("closing").await.unwrap();
    finalized.spec.as_mut().unwrap().finalizers = Some(vec![]);
    namespaces
        .replace_subresource("finalize", "closing", &PostParams::default(), &finalized)
        .await
        .expect("finalize");
    assert!(namespaces.get_opt("closing").await.unwrap().is_none());
    cp.stop().await;
}

#[tokio::test]
async fn pods_are_defaulted_validated_and_split_into_spec_and_status() {
    let cp = ControlPlane::start(1).await;
    let pods: Api<Pod> = Api::default_namespaced(cp.client.clone());
    let invalid = status_of(
        pods.create(&PostParams::default(), &pod("p", ""))
            .await
            .unwrap_err(),
    );
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert!(
        invalid
            .message
            .contains("spec.containers[0].image: Required value"),
        "{}",
        invalid.message
    );
    assert!(pods.get_opt("p").await.unwrap().is_none(), "nothing stored");

    let created = pods
        .create(&PostParams::default(), &pod("p", "busybox"))
        .await
        .expect("create");
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(
        created.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );

    // Status goes through /status only; a main-resource write keeps the stored status.
    let mut running = created.clone();
    running.status.as_mut().unwrap().phase = Some("Running".into());
    running.spec.as_mut().unwrap().containers[0].image = Some("ignored:1".into());
    let after = pods
        .replace_status("p", &PostParams::default(), &running)
        .await
        .expect("status");
    assert_eq!(after.status.unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(
        after.spec.unwrap().containers[0].image.as_deref(),
        Some("busybox")
    );
    let mut pending = pods.get("p").await.unwrap();
    pending.status.as_mut().unwrap().phase = Some("Pending".into());
    pending.spec.as_mut().unwrap().containers[0].image = Some("busybox:2".into());
    let after = pods
        .replace("p", &PostParams::default(), &pending)
        .await
        .expect("update");
    assert_eq!(after.status.unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(
        after.spec.unwrap().containers[0].image.as_deref(),
        Some("busybox:2")
    );

    // Binding assigns a node once.
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "n1"}});
    let request = hyper::Request::post("/api/v1/namespaces/default/pods/p/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    cp.client
        .request::<kube::core::Status>(request)
        .await
        .expect("bind");
    assert_eq!(
        pods.get("p")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .as_deref(),
        Some("n1")
    );
    let request = hyper::Request::post("/api/v1/namespaces/default/pods/p/binding")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    let twice = status_of(
        cp.client
            .request::<kube::core::Status>(request)
            .await
            .unwrap_err(),
    );
    assert_eq!(twice.code, 409);

    // A bound pod is deleted gracefully: marked, until its agent confirms with grace 0.
    pods.delete("p", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = pods.get("p").await.expect("still there while terminating");
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete(
        "p",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .expect("final delete");
    assert!(pods.get_opt("p").await.unwrap().is_none());
    cp.stop().await;
}

#[tokio::test]
async fn generation_patches_and_scale() {
    let cp = ControlPlane::start(1).await;
    let deployments: Api<Deployment> = Api::default_namespaced(cp.client.clone());
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "A", "value": "1"}]}]}}}
    }))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));

    // A strategic merge patch merges containers and env by name.
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "env": [{"name": "B", "value": "2"}]}]}}}});
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("strategic patch");
    let container = &patched
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(container.image.as_deref(), Some("busybox"));
    let env: Vec<&str> = container
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    // Without `$setElementOrder`, kube puts items new to a merged list first.
    assert_eq!(env, ["B", "A"]);
    assert_eq!(patched.metadata.generation, Some(2));

    // Labels are metadata: no new generation.
    let labelled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(labelled.metadata.generation, Some(2));

    let scale = deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("scale");
    assert_eq!(scale.spec.unwrap().replicas, Some(5));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    let after = deployments.get("web").await.unwrap();
    assert_eq!(after.spec.unwrap().replicas, Some(5));
    assert_eq!(after.metadata.generation, Some(3));
    cp.stop().await;
}

#[tokio::test]
async fn lists_select_page_and_watches_follow() {
    let cp = ControlPlane::start(1).await;
    namespace(&cp.client, "lw").await;
    let maps: Api<ConfigMap> = Api::namespaced(cp.client.clone(), "lw");
    let events = watcher::watcher(maps.clone(), watcher::Config::default().labels("app=x"));
    let mut events = std::pin::pin!(events);
    // The initial list ends with InitDone; the watch is live from there.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await {
            Ok(Ok(Some(Event::InitDone))) => break,
            Ok(Ok(Some(_))) => {}
            other => panic!("watcher did not start: {other:?}"),
        }
    }
    for i in 0..5 {
        let app = if i % 2 == 0 { "x" } else { "y" };
        maps.create(
            &PostParams::default(),
            &config_map(&format!("m{i}"), json!({"app": app})),
        )
        .await
        .expect("create");
    }
    let selected = maps
        .list(&ListParams::default().labels("app=x"))
        .await
        .expect("list");
    let names: Vec<_> = selected
        .items
        .iter()
        .map(|m| m.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["m0", "m2", "m4"]);
    let not_x = maps
        .list(&ListParams::default().labels("app!=x"))
        .await
        .unwrap();
    assert_eq!(not_x.items.len(), 2);
    let by_name = maps
        .list(&ListParams::default().fields("metadata.name=m3"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let bad = status_of(
        maps.list(&ListParams::default().fields("spec.nope=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(bad.code, 400);

    // Pages of 2 share the first page's revision.
    let first = maps.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().expect("more to come");
    maps.create(&PostParams::default(), &config_map("m9", json!({})))
        .await
        .unwrap();
    let second = maps
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    let third = maps
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(third.items.len(), 1);
    assert!(third.metadata.continue_.as_deref().unwrap_or("").is_empty());
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );

    // The watcher saw the three app=x creates, then sees a relabel as a delete.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await {
            Ok(Ok(Some(Event::Apply(m)))) => seen.push(m.metadata.name.unwrap()),
            Ok(Ok(Some(_))) => {}
            other => panic!("watch stalled: {other:?}"),
        }
    }
    assert_eq!(seen, ["m0", "m2", "m4"]);
    maps.patch(
        "m0",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "z"}}})),
    )
    .await
    .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await {
            Ok(Ok(Some(Event::Delete(m)))) => {
                assert_eq!(m.metadata.name.as_deref(), Some("m0"));
                break;
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("watch stalled: {other:?}"),
        }
    }
    cp.stop().await;
}

#[tokio::test]
async fn finalizers_hold_a_delete_until_removed() {
    let cp = ControlPlane::start(1).await;
    let maps: Api<ConfigMap> = Api::default_namespaced(cp.client.clone());
    let mut held = config_map("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    maps.create(&PostParams::default(), &held).await.unwrap();
    maps.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = maps.get("held").await.expect("held by its finalizer");
    assert!(marked.metadata.deletion_timestamp.is_some());
    maps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        maps.get_opt("held").await.unwrap().is_none(),
        "the last finalizer deletes it"
    );
    cp.stop().await;
}

#[tokio::test]
async fn every_member_serves_the_same_objects() {
    let cp = ControlPlane::start(3).await;
    let second = cp.client_of_member(1).await;
    let third = cp.client_of_member(2).await;
    let on_third: Api<ConfigMap> = Api::default_namespaced(third);
    let changes = on_third
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();
    let mut changes = changes;
    let on_first: Api<ConfigMap> = Api::default_namespaced(cp.client.clone());
    let created = on_first
        .create(&PostParams::default(), &config_map("shared", json!({})))
        .await
        .unwrap();
    // Reads are linearizable: the second member answers with the write at once.
    let on_second: Api<ConfigMap> = Api::default_namespaced(second);
    let read = on_second
        .get("shared")
        .await
        .expect("read on another member");
    assert_eq!(
        read.metadata.resource_version,
        created.metadata.resource_version
    );
    loop {
        match tokio::time::timeout(Duration::from_secs(10), changes.next()).await {
            Ok(Some(Ok(kube::api::WatchEvent::Added(m))))
                if m.metadata.name.as_deref() == Some("shared") =>
            {
                break
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the third member's watch did not see it: {other:?}"),
        }
    }
    cp.stop().await;
}
