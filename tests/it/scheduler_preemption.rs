//! Priority and preemption against a real control plane: PriorityClasses resolved by the
//! API server's Priority admission, a node full of low-priority pods, and a high-priority
//! pod that preempts them (victims marked `DisruptionTarget` and deleted gracefully, the
//! preemptor nominated, then bound once the victims are gone), with no lower-priority pod
//! taking the room meanwhile; a PodDisruptionBudget steering the choice of victims (by hand,
//! and as the disruption controller counts it); and a pod kept out by anti-affinity alone
//! preempting the pod it avoids.
//!
//! No node agent runs here, so the test finishes the victims' graceful deletion itself,
//! as the kubelet would once their containers stopped.

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::kube_api::ControlPlane;
use crate::poll::eventually;
use crate::scheduler::{
    create_node, create_pod, failed_scheduling, node_of, start_scheduler, wait_bound,
};

async fn create_priority_class(client: &kube::Client, name: &str, value: i32) {
    let class: PriorityClass = serde_json::from_value(json!({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": name}, "value": value,
    }))
    .unwrap();
    Api::<PriorityClass>::all(client.clone())
        .create(&PostParams::default(), &class)
        .await
        .expect("create priority class");
}

fn class(name: &str) -> serde_json::Value {
    json!({"spec": {"priorityClassName": name}})
}

async fn get(client: &kube::Client, name: &str) -> Pod {
    Api::<Pod>::namespaced(client.clone(), "default")
        .get(name)
        .await
        .expect("get pod")
}

/// The `DisruptionTarget` condition's reason and message, once the pod is also being
/// deleted.
fn preempted(pod: &Pod) -> Option<(String, String)> {
    pod.metadata.deletion_timestamp.as_ref()?;
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")?;
    Some((
        condition.reason.clone().unwrap_or_default(),
        condition.message.clone().unwrap_or_default(),
    ))
}

/// Waits until the scheduler preempted `name`, checks how, and finishes its deletion as
/// its node's agent would.
async fn wait_preempted_and_finish(client: &kube::Client, name: &str) {
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let (reason, message) = eventually(&format!("{name} to be preempted"), || async {
        preempted(&pods.get(name).await.ok()?)
    })
    .await;
    assert_eq!(reason, "PreemptionByScheduler");
    assert_eq!(
        message,
        "default-scheduler: preempting to accommodate a higher priority pod"
    );
    pods.delete(name, &DeleteParams::default().grace_period(0))
        .await
        .expect("finish the deletion");
}

async fn events_about(client: &kube::Client, pod: &str, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(pod) && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

#[tokio::test]
async fn a_high_priority_pod_preempts_low_priority_pods_and_is_bound_when_they_are_gone() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    create_priority_class(&client, "low", 10).await;
    create_priority_class(&client, "high", 1000).await;
    create_node(&client, "node-1", "2", json!({})).await;
    let (task, stop) = start_scheduler(&cp, "scheduler-a");

    for name in ["low-1", "low-2"] {
        create_pod(&client, name, "1", class("low")).await;
        assert_eq!(wait_bound(&client, name).await, "node-1");
    }
    let low = get(&client, "low-1").await;
    let spec = low.spec.as_ref().unwrap();
    assert_eq!(spec.priority, Some(10), "admission resolved the class");
    assert_eq!(
        spec.preemption_policy.as_deref(),
        Some("PreemptLowerPriority")
    );

    create_pod(&client, "high", "2", class("high")).await;
    let high_uid = get(&client, "high").await.metadata.uid.unwrap();
    let nominated = eventually("high to be nominated", || async {
        get(&client, "high").await.status?.nominated_node_name
    })
    .await;
    assert_eq!(nominated, "node-1");
    // Preemption makes room, so the message has no "preemption:" verdict.
    let failed = eventually("FailedScheduling for high", || async {
        failed_scheduling(&client, "high").await.into_iter().next()
    })
    .await;
    assert_eq!(
        failed.message.as_deref(),
        Some("0/1 nodes are available: 1 Insufficient cpu.")
    );

    // A low-priority pod arriving now must not take the room held for high.
    create_pod(&client, "low-late", "500m", class("low")).await;
    for name in ["low-1", "low-2"] {
        let event = eventually(&format!("Preempted event on {name}"), || async {
            events_about(&client, name, "Preempted")
                .await
                .into_iter()
                .next()
        })
        .await;
        assert_eq!(
            event.message.unwrap(),
            format!("Preempted by pod {high_uid} on node node-1")
        );
        assert_eq!(event.type_.as_deref(), Some("Normal"));
        wait_preempted_and_finish(&client, name).await;
    }
    // 2 cpu on a 2-cpu node: bound there means low-late did not take any of it.
    assert_eq!(wait_bound(&client, "high").await, "node-1");
    assert_eq!(node_of(&client, "low-late").await, None);

    stop.send(()).unwrap();
    task.await.unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn a_disruption_budget_makes_the_scheduler_preempt_on_another_node() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    create_priority_class(&client, "low", 10).await;
    create_priority_class(&client, "high", 1000).await;
    create_node(&client, "node-a", "1", json!({})).await;
    create_node(&client, "node-b", "1", json!({})).await;
    let (task, stop) = start_scheduler(&cp, "scheduler-a");

    // A budget that allows no disruption of the web pods (as the disruption controller
    // would report with minAvailable 1 and one healthy pod).
    let budgets = Api::<PodDisruptionBudget>::namespaced(client.clone(), "default");
    let budget: PodDisruptionBudget = serde_json::from_value(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }))
    .unwrap();
    budgets
        .create(&PostParams::default(), &budget)
        .await
        .unwrap();
    let status = json!({"status": {"disruptionsAllowed": 0, "currentHealthy": 1,
        "desiredHealthy": 1, "expectedPods": 1, "observedGeneration": 1}});
    budgets
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    let web = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"priorityClassName": "low"}});
    create_pod(&client, "web", "1", web).await;
    let web_node = wait_bound(&client, "web").await;
    create_pod(&client, "batch", "1", class("low")).await;
    let batch_node = wait_bound(&client, "batch").await;
    assert_ne!(web_node, batch_node);

    create_pod(&client, "high", "1", class("high")).await;
    wait_preempted_and_finish(&client, "batch").await;
    let web_pod = get(&client, "web").await;
    assert!(
        web_pod.metadata.deletion_timestamp.is_none(),
        "the pod the budget protects stays"
    );
    assert_eq!(wait_bound(&client, "high").await, batch_node);

    stop.send(()).unwrap();
    task.await.unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn a_pod_kept_out_only_by_anti_affinity_preempts_the_pod_it_avoids() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    create_priority_class(&client, "low", 10).await;
    create_priority_class(&client, "high", 1000).await;
    create_node(&client, "node-1", "4", json!({})).await;
    let (task, stop) = start_scheduler(&cp, "scheduler-a");

    let web = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"priorityClassName": "low"}});
    create_pod(&client, "web", "100m", web).await;
    create_pod(&client, "bystander", "100m", class("low")).await;
    for name in ["web", "bystander"] {
        assert_eq!(wait_bound(&client, name).await, "node-1");
    }
    // Room enough for everyone: only the anti-affinity to app=web keeps high out.
    let avoid_web = json!({"spec": {"priorityClassName": "high", "affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": "web"}},
            "topologyKey": "kubernetes.io/hostname"}]}}}});
    create_pod(&client, "high", "100m", avoid_web).await;
    wait_preempted_and_finish(&client, "web").await;
    assert_eq!(wait_bound(&client, "high").await, "node-1");
    let bystander = get(&client, "bystander").await;
    assert!(
        bystander.metadata.deletion_timestamp.is_none(),
        "the pod that does not block high stays"
    );

    stop.send(()).unwrap();
    task.await.unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn a_budget_the_disruption_controller_counts_steers_preemption() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    create_priority_class(&client, "low", 10).await;
    create_priority_class(&client, "high", 1000).await;
    create_node(&client, "node-a", "1", json!({})).await;
    create_node(&client, "node-b", "1", json!({})).await;
    let (task, stop) = start_scheduler(&cp, "scheduler-a");
    let controller_client = cp.cluster.apiservers[0].client("system:kube-controller-manager", &[]);
    let config = keel_controllers::ControllersConfig {
        lease_duration: std::time::Duration::from_millis(1500),
        renew_deadline: std::time::Duration::from_millis(1000),
        retry_period: std::time::Duration::from_millis(100),
        ..keel_controllers::ControllersConfig::new("test-controller-manager")
    };
    let (stop_controllers, stopped) = tokio::sync::oneshot::channel::<()>();
    let controllers = tokio::spawn(keel_controllers::run(
        controller_client,
        config,
        async move {
            let _ = stopped.await;
        },
    ));

    let web = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"priorityClassName": "low"}});
    create_pod(&client, "web", "1", web).await;
    let web_node = wait_bound(&client, "web").await;
    // Play kubelet: the web pod runs and is Ready, so the budget counts it healthy.
    let ready = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    Api::<Pod>::namespaced(client.clone(), "default")
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();
    create_pod(&client, "batch", "1", class("low")).await;
    let batch_node = wait_bound(&client, "batch").await;
    assert_ne!(web_node, batch_node);

    let budgets = Api::<PodDisruptionBudget>::namespaced(client.clone(), "default");
    let budget: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }))
    .unwrap();
    budgets
        .create(&PostParams::default(), &budget)
        .await
        .unwrap();
    eventually("the controller to count the budget", || async {
        let status = budgets.get("web").await.ok()?.status?;
        (status.current_healthy == 1 && status.desired_healthy == 1 && status.expected_pods == 1)
            .then_some(())
    })
    .await;

    create_pod(&client, "high", "1", class("high")).await;
    wait_preempted_and_finish(&client, "batch").await;
    assert!(
        get(&client, "web")
            .await
            .metadata
            .deletion_timestamp
            .is_none(),
        "the pod the budget protects stays"
    );
    assert_eq!(wait_bound(&client, "high").await, batch_node);

    stop_controllers.send(()).unwrap();
    controllers.await.unwrap();
    stop.send(()).unwrap();
    task.await.unwrap();
    cp.stop().await;
}
