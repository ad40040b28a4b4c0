//! PodDisruptionBudgets that mean something: the disruption controller's status for a
//! Deployment's pods (minAvailable, maxUnavailable as a percentage of the Deployment's
//! scale, pods turning unready), the eviction subresource stopping at the budget through
//! kube-rs and going on once a replacement is Ready (dry run, two budgets refused), and
//! `kubectl drain` retrying at the budget until the replacement is Ready.
//!
//! The test plays kubelet: it marks pods Ready (or not) through `pods/status`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, EvictParams, Patch, PatchParams, PostParams};
use kube::ResourceExt as _;
use serde_json::json;

use super::{active_pods, is_ready, mark_ready, template, wait_for, Harness};

const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

async fn create_deployment(h: &Harness, namespace: &str, replicas: i32, node: Option<&str>) {
    let mut template = template("web", "busybox:1.36");
    if let Some(node) = node {
        template["spec"]["nodeName"] = json!(node);
    }
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": template},
    }))
    .unwrap();
    Api::<Deployment>::namespaced(h.client.clone(), namespace)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
}

async fn create_budget(h: &Harness, namespace: &str, name: &str, spec: serde_json::Value) {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "web"}});
    let budget: PodDisruptionBudget =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    Api::<PodDisruptionBudget>::namespaced(h.client.clone(), namespace)
        .create(&PostParams::default(), &budget)
        .await
        .unwrap();
}

/// Marks every active web pod that is not Ready yet Ready; returns how many are active.
async fn ready_all(pods: &Api<Pod>) -> usize {
    let active = active_pods(pods, "web").await;
    for pod in active.iter().filter(|p| !is_ready(p)) {
        mark_ready(pods, &pod.name_any(), Timestamp::now()).await;
    }
    active.len()
}

async fn set_unready(pods: &Api<Pod>, name: &str) {
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(status))
        .await
        .unwrap();
}

/// Waits until the budget's status satisfies `check` (with its generation observed); a
/// timeout shows the last status seen.
async fn wait_status(
    budgets: &Api<PodDisruptionBudget>,
    what: &str,
    check: impl Fn(&PodDisruptionBudgetStatus) -> bool,
) -> PodDisruptionBudgetStatus {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let budget = budgets.get("web").await.unwrap();
        if let Some(status) = &budget.status {
            if status.observed_generation == budget.metadata.generation && check(status) {
                return status.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the budget is {budget:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// (expectedPods, currentHealthy, desiredHealthy, disruptionsAllowed).
fn counts(s: &PodDisruptionBudgetStatus) -> (i32, i32, i32, i32) {
    (
        s.expected_pods,
        s.current_healthy,
        s.desired_healthy,
        s.disruptions_allowed,
    )
}

fn condition(s: &PodDisruptionBudgetStatus) -> (String, String) {
    let c = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")
        .expect("the DisruptionAllowed condition");
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn a_budget_counts_a_deployments_ready_pods() {
    let h = Harness::start().await;
    let ns = "pdb-status";
    h.namespace(ns).await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), ns);
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(h.client.clone(), ns);
    create_deployment(&h, ns, 3, None).await;
    wait_for("three web pods", 30, || async {
        (active_pods(&pods, "web").await.len() == 3).then_some(())
    })
    .await;
    ready_all(&pods).await;

    create_budget(&h, ns, "web", json!({"minAvailable": 2})).await;
    let status = wait_status(&budgets, "minAvailable 2 counted", |s| {
        counts(s) == (3, 3, 2, 1)
    })
    .await;
    assert_eq!(condition(&status), ("True".into(), "SufficientPods".into()));

    // maxUnavailable 50% of the Deployment's 3 replicas rounds up to 2: one must stay.
    let spec = json!({"spec": {"minAvailable": null, "maxUnavailable": "50%"}});
    budgets
        .patch("web", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    wait_status(&budgets, "maxUnavailable 50% counted", |s| {
        counts(s) == (3, 3, 1, 2)
    })
    .await;

    // Pods turning unready lower what is allowed, down to nothing.
    let names: Vec<String> = active_pods(&pods, "web")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    set_unready(&pods, &names[0]).await;
    wait_status(&budgets, "one pod unready", |s| counts(s) == (3, 2, 1, 1)).await;
    set_unready(&pods, &names[1]).await;
    let status = wait_status(&budgets, "two pods unready", |s| counts(s) == (3, 1, 1, 0)).await;
    assert_eq!(
        condition(&status),
        ("False".into(), "InsufficientPods".into())
    );
    h.stop().await;
}

fn api_error(result: Result<kube::core::response::Status, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn eviction_stops_at_the_budget_and_goes_on_once_a_replacement_is_ready() {
    let h = Harness::start().await;
    let ns = "pdb-evict";
    h.namespace(ns).await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), ns);
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(h.client.clone(), ns);
    create_deployment(&h, ns, 3, None).await;
    wait_for("three web pods", 30, || async {
        (active_pods(&pods, "web").await.len() == 3).then_some(())
    })
    .await;
    ready_all(&pods).await;
    create_budget(&h, ns, "web", json!({"minAvailable": 2})).await;
    wait_status(&budgets, "one disruption allowed", |s| {
        counts(s) == (3, 3, 2, 1)
    })
    .await;

    let names: Vec<String> = active_pods(&pods, "web")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    pods.evict(&names[0], &EvictParams::default())
        .await
        .expect("the first eviction fits the budget");
    let gone = pods.get_opt(&names[0]).await.unwrap();
    assert!(gone.is_none(), "the evicted pod is gone");
    // The budget is spent until the replacement is Ready.
    let (code, message) = api_error(pods.evict(&names[1], &EvictParams::default()).await);
    assert_eq!((code, message.as_str()), (429, VIOLATION));
    assert!(pods
        .get(&names[1])
        .await
        .unwrap()
        .metadata
        .deletion_timestamp
        .is_none());

    wait_for("the replacement", 30, || async {
        (active_pods(&pods, "web").await.len() == 3).then_some(())
    })
    .await;
    ready_all(&pods).await;
    wait_status(&budgets, "the replacement counted", |s| {
        counts(s) == (3, 3, 2, 1)
    })
    .await;
    pods.evict(&names[1], &EvictParams::default())
        .await
        .expect("the budget allows one again");

    wait_for("the second replacement", 30, || async {
        (active_pods(&pods, "web").await.len() == 3).then_some(())
    })
    .await;
    ready_all(&pods).await;
    wait_status(&budgets, "all three healthy", |s| counts(s) == (3, 3, 2, 1)).await;
    // A dry run checks everything and changes nothing.
    let dry = EvictParams {
        delete_options: Some(DeleteParams {
            dry_run: true,
            ..DeleteParams::default()
        }),
        post_options: PostParams {
            dry_run: true,
            ..PostParams::default()
        },
    };
    pods.evict(&names[2], &dry).await.expect("a dry run");
    let kept = pods.get(&names[2]).await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_none());
    let status = budgets.get("web").await.unwrap().status.unwrap();
    assert_eq!(status.disruptions_allowed, 1);
    assert!(status.disrupted_pods.unwrap_or_default().is_empty());

    // Two budgets over one pod: the eviction subresource refuses.
    create_budget(&h, ns, "web-too", json!({"maxUnavailable": 1})).await;
    let (code, message) = api_error(pods.evict(&names[2], &EvictParams::default()).await);
    assert_eq!(code, 500);
    assert_eq!(
        message,
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    assert!(pods
        .get(&names[2])
        .await
        .unwrap()
        .metadata
        .deletion_timestamp
        .is_none());
    h.stop().await;
}

/// kubectl running in the background: its stderr lines as they come, and its end.
struct Background {
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    done: tokio::task::JoinHandle<(bool, String)>,
    _cache: tempfile::TempDir,
}

fn kubectl_in_background(kubeconfig: &std::path::Path, args: &[&str]) -> Background {
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    let (send, lines) = tokio::sync::mpsc::unbounded_channel();
    let stderr = child.stderr.take().unwrap();
    let done = tokio::task::spawn_blocking(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = send.send(line);
        }
        let out = child.wait_with_output().unwrap();
        all.push_str(&String::from_utf8_lossy(&out.stdout));
        (out.status.success(), all)
    });
    Background {
        lines,
        done,
        _cache: cache,
    }
}

#[tokio::test]
async fn kubectl_drain_waits_for_the_budget() {
    let h = Harness::start().await;
    let ns = "pdb-drain";
    h.namespace(ns).await;
    crate::scheduler::create_node(&h.client, "node-1", "4", json!({})).await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), ns);
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(h.client.clone(), ns);
    // Both pods on node-1 (and their replacements: there is no scheduler to move them).
    create_deployment(&h, ns, 2, Some("node-1")).await;
    wait_for("two web pods", 30, || async {
        (active_pods(&pods, "web").await.len() == 2).then_some(())
    })
    .await;
    ready_all(&pods).await;
    create_budget(&h, ns, "web", json!({"minAvailable": 1})).await;
    wait_status(&budgets, "one disruption allowed", |s| {
        counts(s) == (2, 2, 1, 1)
    })
    .await;
    let originals: Vec<String> = active_pods(&pods, "web")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();

    let mut drain = kubectl_in_background(
        &h.cp.kubeconfig,
        &[
            "drain",
            "node-1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--grace-period=0",
            "--timeout=60s",
        ],
    );
    // One pod goes; the other is refused until the first one's replacement is Ready.
    let refused = wait_for("drain to meet the budget", 30, || {
        let line = drain.lines.try_recv().ok();
        async move { line.filter(|l| l.contains(VIOLATION)) }
    })
    .await;
    assert!(
        refused.contains("will retry after 5s"),
        "kubectl retries: {refused}"
    );
    let left: Vec<String> = active_pods(&pods, "web")
        .await
        .iter()
        .map(|p| p.name_any())
        .filter(|n| originals.contains(n))
        .collect();
    assert_eq!(left.len(), 1, "one original pod still runs: {left:?}");
    wait_for("the replacement", 30, || async {
        (active_pods(&pods, "web").await.len() == 2).then_some(())
    })
    .await;
    ready_all(&pods).await;

    let (ok, output) = drain.done.await.unwrap();
    assert!(ok, "kubectl drain failed: {output}");
    assert!(output.contains("node/node-1 drained"), "{output}");
    for name in &originals {
        assert!(
            output.contains(&format!("pod/{name} evicted")),
            "{name} evicted: {output}"
        );
    }
    h.stop().await;
}
