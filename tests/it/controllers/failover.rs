//! The controller manager's leader failing mid-rollout: three members each run a controller
//! manager under the one Lease, a Deployment rolls out a new template on two hollow nodes
//! (the scheduler and real keel-agents run its pods), and the leading member's controller
//! manager is killed (its task aborted, the Lease left to expire, as a crashed process leaves
//! it) while old and new pods run side by side. Another member must finish the rollout once:
//! one new ReplicaSet, exactly `replicas` pods created for each template, never more pods
//! alive than maxSurge allows nor fewer ready than maxUnavailable allows (from a watch of every
//! pod event), and `replicas` pods at the end.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use keel_controllers::ControllersConfig;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;
use tokio::sync::oneshot;

use super::{events_with_reason, is_ready, replica_sets_by_revision, rolled_out, wait_for};
use crate::agent::Agent;
use crate::kube_api::ControlPlane;

const NAMESPACE: &str = "failover";
const REPLICAS: usize = 6;
const MAX_SURGE: usize = 1;

/// What a watch of every pod event saw: pods alive (not terminating, not finished) by name
/// with their template hash, the most alive and the fewest ready at once, and every pod name
/// ever seen per template hash.
#[derive(Default)]
struct PodHistory {
    alive: HashMap<String, (String, bool)>,
    max_alive: usize,
    min_ready: Option<usize>,
    seen: HashMap<String, HashSet<String>>,
}

impl PodHistory {
    fn apply(&mut self, pod: &Pod) {
        let name = pod.name_any();
        let hash = pod
            .labels()
            .get("pod-template-hash")
            .cloned()
            .unwrap_or_default();
        self.seen
            .entry(hash.clone())
            .or_default()
            .insert(name.clone());
        let finished = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| p == "Succeeded" || p == "Failed");
        if pod.metadata.deletion_timestamp.is_some() || finished {
            self.alive.remove(&name);
        } else {
            self.alive.insert(name, (hash, is_ready(pod)));
        }
    }

    fn count(&mut self, armed: bool) {
        self.max_alive = self.max_alive.max(self.alive.len());
        if armed {
            let ready = self.alive.values().filter(|(_, ready)| *ready).count();
            self.min_ready = Some(self.min_ready.map_or(ready, |m| m.min(ready)));
        }
    }

    fn ready(&self) -> usize {
        self.alive.values().filter(|(_, ready)| *ready).count()
    }
}

/// Watches every pod event of the namespace into a [`PodHistory`]; the fewest-ready count is
/// kept once `arm` is set (after the first rollout, when all pods are ready).
fn watch_pods(
    client: kube::Client,
    history: Arc<Mutex<PodHistory>>,
    armed: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, NAMESPACE);
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(pods, watcher::Config::default()));
        while let Some(event) = events.next().await {
            let mut history = history.lock().unwrap();
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    history.apply(&pod)
                }
                Ok(watcher::Event::Delete(pod)) => {
                    history.alive.remove(&pod.name_any());
                }
                _ => continue,
            }
            history.count(armed.load(std::sync::atomic::Ordering::SeqCst));
        }
    })
}

/// One member's controller manager: its identity, its task and the way to stop it.
struct ControllerManager {
    identity: String,
    task: tokio::task::JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

fn start_controller_manager(cp: &ControlPlane, member: usize) -> ControllerManager {
    let identity = format!("controller-manager-{member}");
    let config = ControllersConfig {
        lease_duration: Duration::from_millis(1500),
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(100),
        ..ControllersConfig::new(&identity)
    };
    let client = cp.cluster.apiservers[member].client("system:kube-controller-manager", &[]);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(keel_controllers::run(client, config, async move {
        let _ = stopped.await;
    }));
    ControllerManager {
        identity,
        task,
        stop: Some(stop),
    }
}

async fn lease_holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), keel_controllers::LEASE_NAMESPACE);
    leases
        .get_opt(keel_controllers::LEASE_NAME)
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_survives_its_leader_and_completes_once() {
    let cp = ControlPlane::start(3).await;
    let client = cp.cluster.apiservers[0].client("admin", &["system:masters"]);
    let mut scheduler_config = keel_scheduler::SchedulerConfig::new("test-scheduler");
    scheduler_config.lease.lease_duration = Duration::from_millis(1500);
    scheduler_config.lease.renew_deadline = Duration::from_millis(1000);
    scheduler_config.lease.retry_period = Duration::from_millis(100);
    let (stop_scheduler, scheduler_stopped) = oneshot::channel::<()>();
    let scheduler = tokio::spawn(keel_scheduler::run(
        cp.cluster.apiservers[0].client("system:kube-scheduler", &[]),
        scheduler_config,
        async move {
            let _ = scheduler_stopped.await;
        },
    ));
    let mut managers: Vec<ControllerManager> =
        (0..3).map(|i| start_controller_manager(&cp, i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut agents: Vec<Agent> = (0..2)
        .map(|i| Agent::start(&cp, dir.path(), &format!("failover-{i}"), i as u8))
        .collect();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let history = Arc::new(Mutex::new(PodHistory::default()));
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = watch_pods(client.clone(), Arc::clone(&history), Arc::clone(&armed));

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), NAMESPACE);
    // minReadySeconds 1: each step of the rollout takes at least a second, so the leader can
    // be killed with old and new pods running side by side.
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": REPLICAS,
            "minReadySeconds": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": MAX_SURGE, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "busybox:1.36"}]},
            },
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    rolled_out(&deployments, "web", REPLICAS as i32).await;
    wait_for("the watch to see every pod ready", 20, || async {
        (history.lock().unwrap().ready() == REPLICAS).then_some(())
    })
    .await;
    armed.store(true, std::sync::atomic::Ordering::SeqCst);

    // The rollout starts; once the new ReplicaSet has an available pod and the old one still
    // has pods, the leader dies.
    let image = Patch::Strategic(json!({"spec": {"template": {"spec": {
        "containers": [{"name": "main", "image": "busybox:1.37"}]}}}}));
    deployments
        .patch("web", &PatchParams::default(), &image)
        .await
        .unwrap();
    wait_for("the rollout half-way", 60, || async {
        let by_revision = replica_sets_by_revision(&replicasets).await;
        let new = by_revision.get("2")?.status.clone()?;
        let old = by_revision.get("1")?.status.clone()?;
        (new.available_replicas.unwrap_or(0) >= 1 && old.replicas > 0).then_some(())
    })
    .await;
    let leader = lease_holder(&client).await.expect("a leader");
    let killed = managers
        .iter()
        .position(|m| m.identity == leader)
        .expect("the leader is one of the members");
    let victim = managers.remove(killed);
    victim.task.abort();
    let _ = victim.task.await;
    let successor = wait_for("another member to lead", 30, || async {
        lease_holder(&client).await.filter(|h| *h != leader)
    })
    .await;
    assert!(
        managers.iter().any(|m| m.identity == successor),
        "{successor} is not a live member"
    );

    // The new leader finishes the rollout: one new ReplicaSet, revision 2.
    let done = rolled_out(&deployments, "web", REPLICAS as i32).await;
    assert_eq!(done.annotations()["deployment.kubernetes.io/revision"], "2");
    let replica_sets = replica_sets_by_revision(&replicasets).await;
    assert_eq!(
        replica_sets.keys().cloned().collect::<Vec<_>>(),
        ["1", "2"],
        "one ReplicaSet per template"
    );
    let old_hash = replica_sets["1"].labels()["pod-template-hash"].clone();
    let new_hash = replica_sets["2"].labels()["pod-template-hash"].clone();
    assert_eq!(replica_sets["1"].spec.as_ref().unwrap().replicas, Some(0));
    // The successor did part of the work: it scaled the ReplicaSets after taking over.
    let scalers: HashSet<String> = events_with_reason(&client, NAMESPACE, "ScalingReplicaSet")
        .await
        .into_iter()
        .filter_map(|e| e.reporting_instance)
        .collect();
    assert!(
        scalers.contains(&leader) && scalers.contains(&successor),
        "both leaders scaled ReplicaSets: {scalers:?}"
    );
    // Exactly `replicas` pods at the end, every one of the new template (the old ones' final
    // deletes come from the agents, after their grace).
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let left = wait_for("only the new pods left", 30, || async {
        let all = pods.list(&ListParams::default()).await.unwrap().items;
        (all.len() == REPLICAS).then_some(all)
    })
    .await;
    assert!(
        left.iter()
            .all(|p| p.labels()["pod-template-hash"] == new_hash
                && p.metadata.deletion_timestamp.is_none()),
        "{:?}",
        left.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );

    watch.abort();
    let (old_made, new_made, max_alive, min_ready) = {
        let history = history.lock().unwrap();
        let created = |hash: &str| history.seen.get(hash).map_or(0, HashSet::len);
        (
            created(&old_hash),
            created(&new_hash),
            history.max_alive,
            history.min_ready,
        )
    };
    assert_eq!(old_made, REPLICAS, "pods made for the first template");
    assert_eq!(
        new_made, REPLICAS,
        "pods made for the second template: no duplicates across the failover"
    );
    assert!(
        max_alive <= REPLICAS + MAX_SURGE,
        "{max_alive} pods alive at once; maxSurge allows {}",
        REPLICAS + MAX_SURGE
    );
    assert!(
        min_ready.is_some_and(|m| m >= REPLICAS),
        "ready pods fell to {min_ready:?} with maxUnavailable 0"
    );

    for agent in &mut agents {
        agent.stop().await;
    }
    for manager in managers {
        let _ = manager.stop.map(|s| s.send(()));
        manager.task.await.unwrap();
    }
    let _ = stop_scheduler.send(());
    scheduler.await.unwrap();
    cp.stop().await;
    drop(dir);
}
