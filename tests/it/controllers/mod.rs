//! keel-controllers against an in-process control plane, through real informers: a
//! ReplicaSet keeps its pods (replaced when deleted by hand, the right ones removed on scale
//! down), a Deployment rolls out and back without its available pods ever dropping below the
//! desired count (checked from a watch of every pod event), a deleted namespace is
//! emptied and then goes away, and the garbage collector carries out each propagation
//! policy of a Deployment's delete (Background, Orphan, Foreground) and collects objects
//! whose owners of any kind are gone.
//!
//! Submodules: `endpoints` (EndpointSlices and Endpoints of Services), `cronjob`, `failover`
//! (the leader killed mid-rollout), `job`, `node_lifecycle` (silent nodes, taints, eviction),
//! `node_ipam` (pod CIDRs), `service_account` (a default account per namespace), `daemonset`
//! (one pod per eligible node, rolling update, rollout undo; on hollow agents), `pod_gc`
//! (pods of deleted nodes, terminated pods past the threshold), `disruption`
//! (PodDisruptionBudgets' status, eviction, `kubectl drain`).
//!
//! There is no node agent yet, so a test plays kubelet itself: it marks pods Running and
//! Ready through `pods/status` (see [`Kubelet`]).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use keel_controllers::ControllersConfig;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::json;

use crate::kube_api::ControlPlane;

mod cronjob;
mod daemonset;
mod disruption;
mod endpoints;
mod events;
mod failover;
mod job;
mod node_ipam;
mod node_lifecycle;
mod pod_gc;
mod service_account;

/// A control plane with the controllers running on it, and an admin client.
struct Harness {
    cp: ControlPlane,
    client: kube::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    controllers: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_with(|config| config).await
    }

    /// A harness whose controllers run with `configure`'s changes to the test timings.
    async fn start_with(configure: impl FnOnce(ControllersConfig) -> ControllersConfig) -> Harness {
        Harness::start_on(ControlPlane::start(1).await, configure).await
    }

    /// Starts the controllers on `cp`, which a test may have filled first.
    async fn start_on(
        cp: ControlPlane,
        configure: impl FnOnce(ControllersConfig) -> ControllersConfig,
    ) -> Harness {
        let apiserver = &cp.cluster.apiservers[0];
        let controller_client = apiserver.client("system:kube-controller-manager", &[]);
        let client = apiserver.client("admin", &["system:masters"]);
        let config = ControllersConfig {
            lease_duration: Duration::from_millis(1500),
            renew_deadline: Duration::from_millis(1000),
            retry_period: Duration::from_millis(100),
            namespace_recheck: Duration::from_millis(200),
            job_pod_failure_backoff: Duration::from_millis(50),
            ..ControllersConfig::new("test-controller-manager")
        };
        let config = configure(config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let controllers = tokio::spawn(keel_controllers::run(
            controller_client,
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        Harness {
            cp,
            client,
            stop,
            controllers,
        }
    }

    async fn namespace(&self, name: &str) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.controllers.await.unwrap();
        self.cp.stop().await;
    }
}

/// Polls `check` every 50 ms until it gives a value, failing after `seconds`.
async fn wait_for<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Marks a pod Running and Ready since `since`, as its kubelet would.
async fn mark_ready(pods: &Api<Pod>, name: &str, since: Timestamp) {
    let status = json!({"status": {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(since)},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": rfc3339(since)},
        ],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap_or_else(|e| panic!("marking {name} ready: {e}"));
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Plays kubelet for one namespace: every pod that appears is marked Running and Ready.
struct Kubelet(tokio::task::JoinHandle<()>);

impl Kubelet {
    fn start(client: kube::Client, namespace: &str) -> Kubelet {
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        Kubelet(tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher(pods.clone(), watcher::Config::default()));
            while let Some(event) = events.next().await {
                let pod = match event {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
                    _ => continue,
                };
                if pod.metadata.deletion_timestamp.is_none() && !is_ready(&pod) {
                    let status = json!({"status": {
                        "phase": "Running",
                        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(Timestamp::now())}],
                    }});
                    // A pod deleted meanwhile answers 404; nothing to do then.
                    let _ = pods
                        .patch_status(
                            &pod.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(status),
                        )
                        .await;
                }
            }
        }))
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The active pods of `namespace` whose labels include `app=<app>`.
async fn active_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn template(app: &str, image: &str) -> serde_json::Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": image}]},
    })
}

async fn events_with_reason(client: &kube::Client, namespace: &str, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

#[tokio::test]
async fn a_replica_set_keeps_its_pods_and_scales_down_the_right_ones() {
    let h = Harness::start().await;
    h.namespace("rs").await;
    let replicasets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "rs");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "rs");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template("web", "nginx:1.27"),
        },
    }))
    .unwrap();
    let rs = replicasets
        .create(&PostParams::default(), &rs)
        .await
        .unwrap();
    let uid = rs.uid().unwrap();

    let owned = wait_for("3 pods", 20, || async {
        let now = active_pods(&pods, "web").await;
        (now.len() == 3).then_some(now)
    })
    .await;
    for pod in &owned {
        assert!(pod.name_any().starts_with("web-"), "{}", pod.name_any());
        let owner = &pod.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ReplicaSet", "web")
        );
        assert_eq!(owner.uid, uid);
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
        assert_eq!(pod.labels()["app"], "web");
    }
    let status = wait_for("the status", 20, || async {
        let rs = replicasets.get("web").await.unwrap();
        let status = rs.status.clone()?;
        (status.replicas == 3 && status.observed_generation == rs.metadata.generation)
            .then_some(status)
    })
    .await;
    assert_eq!(status.fully_labeled_replicas, Some(3));
    assert_eq!(status.ready_replicas, Some(0));
    let created = wait_for("SuccessfulCreate events", 20, || async {
        let events = events_with_reason(&h.client, "rs", "SuccessfulCreate").await;
        (events.len() >= 3).then_some(events)
    })
    .await;
    assert!(created[0]
        .message
        .as_deref()
        .unwrap()
        .starts_with("Created pod: web-"));
    assert_eq!(
        created[0].involved_object.kind.as_deref(),
        Some("ReplicaSet")
    );

    // A pod deleted by hand is replaced, once.
    let victim = owned[0].name_any();
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    let replaced = wait_for("a replacement", 20, || async {
        let now = active_pods(&pods, "web").await;
        (now.len() == 3 && now.iter().all(|p| p.name_any() != victim)).then_some(now)
    })
    .await;
    // Exactly one pod was created for the one deleted: 3 + 1 SuccessfulCreate events.
    let creates = wait_for("the replacement's event", 20, || async {
        let n = events_with_reason(&h.client, "rs", "SuccessfulCreate")
            .await
            .len();
        (n >= 4).then_some(n)
    })
    .await;
    assert_eq!(creates, 4, "no double create");
    assert_eq!(active_pods(&pods, "web").await.len(), 3, "no double create");

    // An orphan with matching labels is adopted, and the surplus removed.
    let stray: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stray", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &stray).await.unwrap();
    wait_for("the orphan claimed and the surplus gone", 20, || async {
        let now = active_pods(&pods, "web").await;
        let all_owned = now
            .iter()
            .all(|p| p.owner_references().iter().any(|o| o.uid == uid));
        (now.len() == 3 && all_owned).then_some(())
    })
    .await;

    // Scale down: the not-ready pod goes first, then the one ready for the shorter time.
    let current = active_pods(&pods, "web").await;
    let names: Vec<String> = current.iter().map(ResourceExt::name_any).collect();
    let (long_ready, just_ready, not_ready) = (&names[0], &names[1], &names[2]);
    mark_ready(
        &pods,
        long_ready,
        Timestamp::now() - SignedDuration::from_hours(2),
    )
    .await;
    mark_ready(&pods, just_ready, Timestamp::now()).await;
    wait_for("2 ready in the status", 20, || async {
        let s = replicasets.get("web").await.unwrap().status?;
        (s.ready_replicas == Some(2) && s.available_replicas == Some(2)).then_some(())
    })
    .await;
    let scale = |n: i32| Patch::Merge(json!({"spec": {"replicas": n}}));
    replicasets
        .patch("web", &PatchParams::default(), &scale(2))
        .await
        .unwrap();
    let left = wait_for("scale to 2", 20, || async {
        let now = active_pods(&pods, "web").await;
        (now.len() == 2).then_some(now)
    })
    .await;
    let left: Vec<String> = left.iter().map(ResourceExt::name_any).collect();
    assert!(
        !left.contains(not_ready),
        "{not_ready} should have gone first: {left:?}"
    );
    replicasets
        .patch("web", &PatchParams::default(), &scale(1))
        .await
        .unwrap();
    let left = wait_for("scale to 1", 20, || async {
        let now = active_pods(&pods, "web").await;
        (now.len() == 1).then_some(now)
    })
    .await;
    assert_eq!(
        &left[0].name_any(),
        long_ready,
        "the newest-ready pod goes before the oldest-ready"
    );
    wait_for("the status after scaling", 20, || async {
        let rs = replicasets.get("web").await.unwrap();
        let s = rs.status?;
        (s.replicas == 1
            && s.ready_replicas == Some(1)
            && s.observed_generation == rs.metadata.generation)
            .then_some(())
    })
    .await;
    let deleted = events_with_reason(&h.client, "rs", "SuccessfulDelete").await;
    assert!(deleted
        .iter()
        .any(|e| e.message.as_deref() == Some(&format!("Deleted pod: {not_ready}"))));
    drop(replaced);
    h.stop().await;
}

/// Ready pods of `app` by a watch of every pod event: the count now, and the lowest count
/// seen since the watch was armed (`min` set to the current count).
struct ReadyWatch {
    current: Arc<AtomicI64>,
    min: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    fn start(pods: Api<Pod>, app: &str) -> ReadyWatch {
        let current = Arc::new(AtomicI64::new(0));
        let min = Arc::new(AtomicI64::new(i64::MAX));
        let config = watcher::Config::default().labels(&format!("app={app}"));
        let (current_seen, min_seen) = (Arc::clone(&current), Arc::clone(&min));
        let task = tokio::spawn(async move {
            let mut ready: HashMap<String, bool> = HashMap::new();
            let mut events = std::pin::pin!(watcher(pods, config));
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        ready.insert(
                            pod.name_any(),
                            is_ready(&pod) && pod.metadata.deletion_timestamp.is_none(),
                        );
                    }
                    Ok(watcher::Event::Delete(pod)) => {
                        ready.remove(&pod.name_any());
                    }
                    Ok(watcher::Event::Init) => ready.clear(),
                    _ => {}
                }
                let count = ready.values().filter(|r| **r).count() as i64;
                current_seen.store(count, Ordering::SeqCst);
                min_seen.fetch_min(count, Ordering::SeqCst);
            }
        });
        ReadyWatch { current, min, task }
    }

    /// Waits until `n` pods are ready, then starts keeping the minimum from there.
    async fn arm_at(&self, n: i64) {
        wait_for("the watch to see the ready pods", 10, || async {
            (self.current.load(Ordering::SeqCst) == n).then_some(())
        })
        .await;
        self.min.store(n, Ordering::SeqCst);
    }

    fn min(&self) -> i64 {
        self.min.load(Ordering::SeqCst)
    }
}

/// Waits until the Deployment reports a finished rollout of its current generation, as
/// `kubectl rollout status` judges it.
async fn rolled_out(deployments: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    wait_for("the rollout to finish", 60, || async {
        let d = deployments.get(name).await.unwrap();
        let s = d.status.clone()?;
        let progressing = s
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Progressing")?
            .reason
            .clone();
        (s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && progressing.as_deref() == Some("NewReplicaSetAvailable"))
        .then_some(d)
    })
    .await
}

async fn replica_sets_by_revision(replicasets: &Api<ReplicaSet>) -> BTreeMap<String, ReplicaSet> {
    replicasets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|rs| {
            (
                rs.annotations()
                    .get("deployment.kubernetes.io/revision")
                    .cloned()
                    .unwrap_or_default(),
                rs,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_deployment_rolls_out_and_back_without_losing_availability() {
    let h = Harness::start().await;
    h.namespace("dep").await;
    let _kubelet = Kubelet::start(h.client.clone(), "dep");
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "dep");
    let replicasets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "dep");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "dep");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": template("web", "nginx:1.27"),
        },
    }))
    .unwrap();
    let d = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let done = rolled_out(&deployments, "web", 3).await;
    assert_eq!(done.annotations()["deployment.kubernetes.io/revision"], "1");
    let available = done
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Available")
        .cloned()
        .unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("True", Some("MinimumReplicasAvailable"))
    );
    let first = replica_sets_by_revision(&replicasets).await;
    assert_eq!(first.len(), 1);
    let rs1 = first["1"].clone();
    let hash = rs1.labels()["pod-template-hash"].clone();
    assert_eq!(rs1.name_any(), format!("web-{hash}"));
    assert_eq!(
        rs1.spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()["pod-template-hash"],
        hash
    );
    let owner = &rs1.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Deployment", d.uid().unwrap().as_str(), Some(true))
    );
    for pod in active_pods(&pods, "web").await {
        assert_eq!(pod.labels()["pod-template-hash"], hash);
    }

    // A new template rolls out a new ReplicaSet; with maxUnavailable=0 the ready pods never
    // drop below 3, by the watch of every pod event.
    let watch = ReadyWatch::start(pods.clone(), "web");
    watch.arm_at(3).await;
    let image = |image: &str| {
        Patch::Strategic(
            json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}),
        )
    };
    deployments
        .patch("web", &PatchParams::default(), &image("nginx:1.28"))
        .await
        .unwrap();
    let done = rolled_out(&deployments, "web", 3).await;
    assert_eq!(done.annotations()["deployment.kubernetes.io/revision"], "2");
    let second = replica_sets_by_revision(&replicasets).await;
    assert_eq!(second.len(), 2, "{:?}", second.keys());
    assert_eq!(second["1"].spec.as_ref().unwrap().replicas, Some(0));
    assert_eq!(second["2"].spec.as_ref().unwrap().replicas, Some(3));
    assert!(watch.min() >= 3, "ready pods fell to {}", watch.min());
    let scaling: Vec<String> = events_with_reason(&h.client, "dep", "ScalingReplicaSet")
        .await
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    let rs2 = second["2"].name_any();
    assert!(
        scaling.contains(&format!("Scaled up replica set {rs2} from 0 to 1")),
        "{scaling:?}"
    );
    assert!(
        scaling.contains(&format!(
            "Scaled down replica set {} from 3 to 2",
            rs1.name_any()
        )),
        "{scaling:?}"
    );

    // `kubectl rollout undo`: the template goes back; the old ReplicaSet returns as revision 3.
    deployments
        .patch("web", &PatchParams::default(), &image("nginx:1.27"))
        .await
        .unwrap();
    let done = rolled_out(&deployments, "web", 3).await;
    assert_eq!(done.annotations()["deployment.kubernetes.io/revision"], "3");
    let third = replica_sets_by_revision(&replicasets).await;
    let back = &third["3"];
    assert_eq!(back.uid(), rs1.uid(), "the first ReplicaSet came back");
    assert_eq!(
        back.annotations()["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert!(watch.min() >= 3, "ready pods fell to {}", watch.min());

    // revisionHistoryLimit 1: a fourth template leaves the new one and one old ReplicaSet.
    deployments
        .patch("web", &PatchParams::default(), &image("nginx:1.29"))
        .await
        .unwrap();
    rolled_out(&deployments, "web", 3).await;
    let fourth = wait_for("the cleanup", 20, || async {
        let now = replica_sets_by_revision(&replicasets).await;
        (now.len() == 2).then_some(now)
    })
    .await;
    assert_eq!(fourth.keys().cloned().collect::<Vec<_>>(), ["3", "4"]);
    assert!(watch.min() >= 3, "ready pods fell to {}", watch.min());
    watch.task.abort();
    let finished = deployments.get("web").await.unwrap();
    eprintln!(
        "finished rollout: generation {:?}, annotations {:?}, status {}",
        finished.metadata.generation,
        finished.annotations(),
        serde_json::to_string_pretty(&finished.status).unwrap()
    );
    h.stop().await;
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_objects_and_then_the_namespace() {
    let h = Harness::start().await;
    h.namespace("doomed").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(h.client.clone(), "doomed");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"a": "b"}}))
            .unwrap();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "doomed");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template("web", "nginx:1.27")},
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "doomed");
    wait_for("the deployment's pods", 30, || async {
        (active_pods(&pods, "web").await.len() == 2).then_some(())
    })
    .await;

    let namespaces: Api<Namespace> = Api::all(h.client.clone());
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the namespace to go", 30, || async {
        let ns = namespaces.get_opt("doomed").await.unwrap();
        ns.is_none().then_some(())
    })
    .await;
    assert!(configmaps
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    let replicasets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "doomed");
    assert!(replicasets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(deployments
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    h.stop().await;
}

#[tokio::test]
async fn recreate_replaces_every_pod_and_a_paused_deployment_waits() {
    let h = Harness::start().await;
    h.namespace("re").await;
    let _kubelet = Kubelet::start(h.client.clone(), "re");
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "re");
    let replicasets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "re");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "re");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "db"}},
            "strategy": {"type": "Recreate"},
            "template": template("db", "postgres:16"),
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    rolled_out(&deployments, "db", 2).await;
    let first = replica_sets_by_revision(&replicasets).await;
    let old_hash = first["1"].labels()["pod-template-hash"].clone();

    // Recreate: never an old and a new pod alive together.
    let mixed = Arc::new(AtomicI64::new(0));
    let seen_mixed = Arc::clone(&mixed);
    let watched = pods.clone();
    let watch = tokio::spawn(async move {
        let mut alive: HashMap<String, String> = HashMap::new();
        let mut events = std::pin::pin!(watcher(watched, watcher::Config::default()));
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    if pod.metadata.deletion_timestamp.is_none() {
                        alive.insert(pod.name_any(), pod.labels()["pod-template-hash"].clone());
                    } else {
                        alive.remove(&pod.name_any());
                    }
                }
                Ok(watcher::Event::Delete(pod)) => {
                    alive.remove(&pod.name_any());
                }
                _ => {}
            }
            let hashes: std::collections::HashSet<&String> = alive.values().collect();
            if hashes.len() > 1 {
                seen_mixed.store(1, Ordering::SeqCst);
            }
        }
    });
    let image = |image: &str| {
        Patch::Strategic(
            json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}),
        )
    };
    deployments
        .patch("db", &PatchParams::default(), &image("postgres:17"))
        .await
        .unwrap();
    rolled_out(&deployments, "db", 2).await;
    let pods_now = active_pods(&pods, "db").await;
    assert_eq!(pods_now.len(), 2);
    assert!(pods_now
        .iter()
        .all(|p| p.labels()["pod-template-hash"] != old_hash));
    assert_eq!(
        mixed.load(Ordering::SeqCst),
        0,
        "old and new pods ran together"
    );
    watch.abort();

    // Paused: a template change waits; resumed, it rolls out.
    let pause = |paused: bool| Patch::Merge(json!({"spec": {"paused": paused}}));
    deployments
        .patch("db", &PatchParams::default(), &pause(true))
        .await
        .unwrap();
    wait_for("the paused condition", 20, || async {
        let d = deployments.get("db").await.unwrap();
        let reason = d
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing")?
            .reason;
        (reason.as_deref() == Some("DeploymentPaused")).then_some(())
    })
    .await;
    deployments
        .patch("db", &PatchParams::default(), &image("postgres:18"))
        .await
        .unwrap();
    // The controller saw the change (observedGeneration) and still rolled nothing out.
    wait_for("the paused change observed", 20, || async {
        let d = deployments.get("db").await.unwrap();
        (d.status?.observed_generation == d.metadata.generation).then_some(())
    })
    .await;
    assert_eq!(
        replica_sets_by_revision(&replicasets).await.len(),
        2,
        "no rollout while paused"
    );
    deployments
        .patch("db", &PatchParams::default(), &pause(false))
        .await
        .unwrap();
    let done = rolled_out(&deployments, "db", 2).await;
    assert_eq!(done.annotations()["deployment.kubernetes.io/revision"], "3");
    h.stop().await;
}

/// Creates Deployment `name` with `replicas` pods in `namespace` and waits for its
/// ReplicaSet and pods.
async fn deployment_with_pods(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    replicas: usize,
) -> Deployment {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template(name, "nginx:1.27")},
    }))
    .unwrap();
    let d = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    wait_for("the deployment's pods", 30, || async {
        (active_pods(&pods, name).await.len() == replicas).then_some(())
    })
    .await;
    d
}

async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = api.list(&ListParams::default()).await.unwrap();
    list.items.iter().map(|o| o.name_any()).collect()
}

#[tokio::test]
async fn a_deleted_deployment_takes_its_replica_sets_and_pods_with_it() {
    let h = Harness::start().await;
    h.namespace("gc-bg").await;
    deployment_with_pods(&h.client, "gc-bg", "web", 2).await;
    // An unrelated pod with no owner stays.
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "gc-bg");
    let loner: Pod = serde_json::from_value(json!({
        "metadata": {"name": "loner", "labels": {"app": "loner"}},
        "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &loner).await.unwrap();

    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "gc-bg");
    // kubectl's default.
    deployments
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    let replicasets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "gc-bg");
    wait_for("the replica set and its pods to go", 30, || async {
        (names(&replicasets).await.is_empty() && names(&pods).await == ["loner"]).then_some(())
    })
    .await;
    assert!(deployments.get_opt("web").await.unwrap().is_none());
    h.stop().await;
}

#[tokio::test]
async fn an_orphaning_delete_leaves_the_replica_set_without_its_owner() {
    let h = Harness::start().await;
    h.namespace("gc-orphan").await;
    let d = deployment_with_pods(&h.client, "gc-orphan", "web", 2).await;
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "gc-orphan");
    let replicasets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "gc-orphan");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "gc-orphan");
    let owned = names(&replicasets).await;
    assert_eq!(owned.len(), 1);

    deployments
        .delete("web", &DeleteParams::orphan())
        .await
        .unwrap();
    wait_for("the deployment to go", 30, || async {
        deployments
            .get_opt("web")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let uid = d.uid().unwrap();
    let rs = replicasets.get(&owned[0]).await.unwrap();
    assert!(
        rs.owner_references().iter().all(|r| r.uid != uid),
        "the replica set still names its deleted owner: {:?}",
        rs.owner_references()
    );
    assert!(rs.owner_references().is_empty());
    assert!(rs.metadata.deletion_timestamp.is_none());
    // The orphaned ReplicaSet keeps running its pods.
    assert_eq!(active_pods(&pods, "web").await.len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn a_foreground_delete_removes_the_pods_and_replica_sets_before_the_deployment() {
    let h = Harness::start().await;
    h.namespace("gc-fg").await;
    deployment_with_pods(&h.client, "gc-fg", "web", 3).await;
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "gc-fg");
    let replicasets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "gc-fg");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "gc-fg");

    let held = deployments
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("a foreground delete keeps the deployment for now");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(held.finalizers().iter().any(|f| f == "foregroundDeletion"));
    wait_for("the deployment to go after its dependents", 30, || async {
        let deployment = deployments.get_opt("web").await.unwrap();
        let (rs_left, pods_left) = (names(&replicasets).await, names(&pods).await);
        match deployment {
            Some(d) => {
                assert!(d.metadata.deletion_timestamp.is_some());
                None
            }
            None => {
                assert!(
                    rs_left.is_empty() && pods_left.is_empty(),
                    "the deployment went before its dependents: {rs_left:?} {pods_left:?}"
                );
                Some(())
            }
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn owners_of_unwatched_kinds_are_looked_up_through_discovery() {
    let h = Harness::start().await;
    h.namespace("gc-dyn").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(h.client.clone(), "gc-dyn");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let cm = configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let present =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": cm.uid().unwrap()});
    let gone_cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "gone",
        "uid": "3f0c1b9e-0000-4000-8000-000000000001"});
    let gone_rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone",
        "uid": "3f0c1b9e-0000-4000-8000-000000000002"});
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "gc-dyn");
    for (name, owners) in [
        ("kept", json!([present])),
        ("mixed", json!([gone_rs, present])),
        ("dangling", json!([gone_cm, gone_rs])),
    ] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "ownerReferences": owners},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    wait_for("the pod whose owners are all gone to go", 30, || async {
        pods.get_opt("dangling")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(names(&pods).await, ["kept", "mixed"]);
    h.stop().await;
}
