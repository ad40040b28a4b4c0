//! Events through the controller manager's correlator, as `kubectl describe` reads them: a
//! ReplicaSet creating 30 pods writes nine `Created pod: …` Events and one aggregate,
//! `(combined from similar events): …`, whose count the later creates raise (patched, not
//! created again); past the spam filter's burst of 25 writes per object nothing more is
//! written, yet every pod exists.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::{active_pods, events_with_reason, template, wait_for, Harness};

const REPLICAS: usize = 30;

#[tokio::test]
async fn a_burst_of_creates_becomes_one_counted_event() {
    let h = Harness::start().await;
    h.namespace("burst").await;
    let replicasets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "burst");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "burst");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template("web", "nginx:1.27"),
        },
    }))
    .unwrap();
    replicasets
        .create(&PostParams::default(), &rs)
        .await
        .unwrap();
    wait_for("every pod", 30, || async {
        (active_pods(&pods, "web").await.len() == REPLICAS).then_some(())
    })
    .await;

    // The spam filter lets 25 writes through: 9 creates, the aggregate's create, 15 patches.
    let aggregate = wait_for("the aggregate counted up to 16", 30, || async {
        events_with_reason(&h.client, "burst", "SuccessfulCreate")
            .await
            .into_iter()
            .find(|e| e.count == Some(16))
    })
    .await;
    let message = aggregate.message.clone().unwrap();
    assert!(
        message.starts_with("(combined from similar events): Created pod: web-"),
        "{message}"
    );
    assert_eq!(
        aggregate.involved_object.name.as_deref(),
        Some("web"),
        "about the ReplicaSet"
    );
    assert!(aggregate.last_timestamp >= aggregate.first_timestamp);
    let created = events_with_reason(&h.client, "burst", "SuccessfulCreate").await;
    assert_eq!(created.len(), 10, "nine single events and the aggregate");
    let single: Vec<_> = created
        .iter()
        .filter(|e| e.count == Some(1))
        .filter_map(|e| e.message.as_deref())
        .collect();
    assert_eq!(single.len(), 9, "{single:?}");
    assert!(single.iter().all(|m| m.starts_with("Created pod: web-")));
    h.stop().await;
}
