//! The DaemonSet controller on an in-process control plane with the scheduler and hollow
//! agents (the real node agent over a hollow runtime: it registers its Node with labels and
//! taints, runs what the scheduler binds to it, reports readiness, confirms deletions).
//!
//! A DaemonSet gets one pod on each node that matches its nodeSelector and whose taints it
//! tolerates, placed by the scheduler through the `matchFields` affinity; a node added gets
//! its pod, a node relabelled out of the selector loses it. A rolling update with
//! maxUnavailable=1 replaces the pods one node at a time (from a watch of every pod event),
//! `kubectl rollout status ds` reports success, `kubectl rollout history ds` lists the
//! ControllerRevisions and `kubectl rollout undo ds` brings the previous template back.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use keel_agent::{NodeConfig, Runtimes};
use keel_controllers::ControllersConfig;
use keel_runtime::hollow::{Hollow, Ipv4Cidr};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;
use tokio::sync::oneshot;

use super::{events_with_reason, is_ready, Harness};
use crate::kube_api::kubectl::Kubectl;
use crate::poll::eventually;

pub(super) const NAMESPACE: &str = "daemons";

/// A control plane with the controllers, the scheduler, and hollow agents.
pub(super) struct Cluster {
    pub(super) h: Harness,
    scheduler: tokio::task::JoinHandle<()>,
    agents: HashMap<String, NodeAgent>,
    dir: tempfile::TempDir,
}

/// One hollow node's agent.
struct NodeAgent {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<keel_agent::Result<()>>,
}

impl Cluster {
    pub(super) async fn start(
        configure: impl FnOnce(ControllersConfig) -> ControllersConfig,
    ) -> Cluster {
        let h = Harness::start_with(configure).await;
        let client =
            h.cp.cluster.apiservers[0].client("system:kube-scheduler", &["system:masters"]);
        let mut config = keel_scheduler::SchedulerConfig::new("test-scheduler");
        config.lease.lease_duration = Duration::from_millis(1500);
        config.lease.renew_deadline = Duration::from_millis(1000);
        config.lease.retry_period = Duration::from_millis(100);
        let scheduler = tokio::spawn(keel_scheduler::run(client, config, std::future::pending()));
        h.namespace(NAMESPACE).await;
        Cluster {
            h,
            scheduler,
            agents: HashMap::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts the agent of node `name` with `labels` and `taints` (`key=value:Effect`), and
    /// waits for the node to be Ready.
    pub(super) async fn add_node(&mut self, name: &str, labels: &[(&str, &str)], taints: &str) {
        let index = 100 + self.agents.len() as u8;
        let cidr = format!("169.254.{index}.0/24");
        let client = self.h.cp.cluster.apiservers[0]
            .client(&format!("system:node:{name}"), &["system:nodes"]);
        let mut config = NodeConfig::new(name, self.dir.path().join(name), "hollow");
        config.pod_cidr = Some(cidr.clone());
        for (key, value) in labels {
            config.labels.insert((*key).to_owned(), (*value).to_owned());
        }
        config.taints = keel_agent::config::parse_taints(taints).unwrap();
        config.timings.lease_renew_interval = Duration::from_millis(200);
        config.timings.node_status_update_frequency = Duration::from_millis(500);
        config.timings.pod_resync = Duration::from_millis(300);
        config.timings.backoff_initial = Duration::from_millis(100);
        config.timings.backoff_max = Duration::from_secs(1);
        let make: keel_agent::MakeRuntimes = Arc::new(move |_| {
            Ok(Runtimes::new().with(Hollow::new(Some(Ipv4Cidr::parse(&cidr).unwrap()))))
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(keel_agent::run(client, vec![config], make, async move {
            let _ = stopped.await;
        }));
        self.agents
            .insert(name.to_owned(), NodeAgent { stop, task });
        let nodes: Api<Node> = Api::all(self.h.client.clone());
        eventually(&format!("node {name} Ready"), || async {
            let node = nodes.get_opt(name).await.ok()??;
            let ready = node
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(())
        })
        .await;
    }

    /// Stops the agent of `name` (its pods stay as the API has them).
    pub(super) async fn stop_node(&mut self, name: &str) {
        let agent = self.agents.remove(name).expect("a running agent");
        let _ = agent.stop.send(());
        agent.task.await.expect("agent task").expect("agent ran");
    }

    pub(super) fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.h.client.clone(), NAMESPACE)
    }

    pub(super) async fn stop(mut self) {
        let names: Vec<String> = self.agents.keys().cloned().collect();
        for name in names {
            self.stop_node(&name).await;
        }
        self.scheduler.abort();
        self.h.stop().await;
    }
}

pub(super) fn daemon_set(name: &str, image: &str, extra_spec: serde_json::Value) -> DaemonSet {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": image}],
                "terminationGracePeriodSeconds": 1},
        },
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra_spec.as_object().unwrap().clone());
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref()?.node_name.clone()
}

fn image_of(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

/// The live (not terminating) pods of `app`, by node, once every one is bound and ready.
pub(super) async fn ready_by_node(pods: &Api<Pod>, app: &str) -> BTreeMap<String, Pod> {
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items;
    list.into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(is_ready)
        .filter_map(|p| Some((node_of(&p)?, p)))
        .collect()
}

/// Waits until the pods of `app` are exactly one ready pod on each of `nodes` (and nothing
/// else, terminating ones included), running `image`.
async fn settled_on(
    pods: &Api<Pod>,
    app: &str,
    nodes: &[&str],
    image: &str,
) -> BTreeMap<String, Pod> {
    eventually(
        &format!("{app} ready on exactly {nodes:?} with {image}"),
        || async {
            let all = pods
                .list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .ok()?
                .items;
            let ready = ready_by_node(pods, app).await;
            let on: Vec<&str> = ready.keys().map(String::as_str).collect();
            (all.len() == nodes.len()
                && on == nodes
                && ready.values().all(|p| image_of(p) == image))
            .then_some(ready)
        },
    )
    .await
}

#[tokio::test]
async fn a_daemon_set_runs_one_pod_on_each_eligible_node() {
    let mut c = Cluster::start(|config| config).await;
    let worker = [("role", "worker")];
    c.add_node("node-a", &worker, "").await;
    c.add_node("node-b", &worker, "").await;
    c.add_node("node-tainted", &worker, "dedicated=infra:NoSchedule")
        .await;
    c.add_node("node-other", &[("role", "db")], "").await;

    let daemonsets: Api<DaemonSet> = Api::namespaced(c.h.client.clone(), NAMESPACE);
    let pods = c.pods();
    let ds = daemon_set("agent", "busybox:1", json!({}));
    let mut ds = ds;
    ds.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .node_selector = Some([("role".to_owned(), "worker".to_owned())].into());
    daemonsets
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();

    let placed = settled_on(&pods, "agent", &["node-a", "node-b"], "busybox:1").await;
    let pod = &placed["node-a"];
    // Placed by the scheduler through the node affinity the controller pinned it with.
    let terms = &pod
        .spec
        .as_ref()
        .unwrap()
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    let fields = terms[0].match_fields.as_ref().unwrap();
    assert_eq!(
        (
            fields[0].key.as_str(),
            fields[0].operator.as_str(),
            fields[0].values.as_deref()
        ),
        ("metadata.name", "In", Some(&["node-a".to_owned()][..]))
    );
    let tolerations = pod.spec.as_ref().unwrap().tolerations.clone().unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let toleration = tolerations
            .iter()
            .find(|t| t.key.as_deref() == Some(key))
            .unwrap();
        assert_eq!(toleration.effect.as_deref(), Some("NoExecute"));
        assert_eq!(
            toleration.toleration_seconds, None,
            "{key} is tolerated forever"
        );
    }
    assert!(tolerations
        .iter()
        .any(|t| t.key.as_deref() == Some("node.kubernetes.io/unschedulable")));
    let revisions: Api<ControllerRevision> = Api::namespaced(c.h.client.clone(), NAMESPACE);
    let revision_list = revisions.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(revision_list.len(), 1);
    let hash = &revision_list[0].labels()["controller-revision-hash"];
    assert_eq!(revision_list[0].name_any(), format!("agent-{hash}"));
    assert_eq!(revision_list[0].revision, 1);
    assert_eq!(&pod.labels()["controller-revision-hash"], hash);
    let owner = &pod.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("DaemonSet", Some(true))
    );

    let status = eventually("the status counts", || async {
        let ds = daemonsets.get("agent").await.ok()?;
        let s = ds.status.clone()?;
        (s.number_available == Some(2) && s.observed_generation == ds.metadata.generation)
            .then_some(s)
    })
    .await;
    assert_eq!(
        (
            status.desired_number_scheduled,
            status.current_number_scheduled,
            status.number_ready,
            status.updated_number_scheduled,
            status.number_misscheduled,
            status.number_unavailable,
        ),
        (2, 2, 2, Some(2), 0, Some(0))
    );
    let created = events_with_reason(&c.h.client, NAMESPACE, "SuccessfulCreate").await;
    for pod in placed.values() {
        let message = format!("Created pod: {}", pod.name_any());
        assert!(created
            .iter()
            .any(|e| e.message.as_deref() == Some(message.as_str())
                && e.involved_object.kind.as_deref() == Some("DaemonSet")
                && e.source.as_ref().and_then(|s| s.component.as_deref())
                    == Some("daemonset-controller")));
    }

    // A daemon pod that failed is deleted and replaced on its node.
    let failed = placed["node-a"].name_any();
    let phase =
        json!({"status": {"phase": "Failed", "reason": "Test", "message": "failed by the test"}});
    pods.patch_status(&failed, &PatchParams::default(), &Patch::Merge(phase))
        .await
        .unwrap();
    let replacement = eventually("a new pod on node-a", || async {
        let ready = ready_by_node(&pods, "agent").await;
        let pod = ready.get("node-a")?;
        (pod.name_any() != failed).then(|| pod.name_any())
    })
    .await;
    let warnings = events_with_reason(&c.h.client, NAMESPACE, "FailedDaemonPod").await;
    let expected =
        format!("Found failed daemon pod {NAMESPACE}/{failed} on node node-a, will try to kill it");
    assert!(
        warnings
            .iter()
            .any(|e| e.message.as_deref() == Some(expected.as_str())
                && e.type_.as_deref() == Some("Warning")),
        "{warnings:?}"
    );
    assert!(!replacement.is_empty());

    // A node added gets its pod; a node relabelled out of the selector loses its pod.
    c.add_node("node-c", &worker, "").await;
    settled_on(&pods, "agent", &["node-a", "node-b", "node-c"], "busybox:1").await;
    let nodes: Api<Node> = Api::all(c.h.client.clone());
    let relabel = json!({"metadata": {"labels": {"role": "db"}}});
    nodes
        .patch("node-b", &PatchParams::default(), &Patch::Merge(relabel))
        .await
        .unwrap();
    settled_on(&pods, "agent", &["node-a", "node-c"], "busybox:1").await;
    let deleted = events_with_reason(&c.h.client, NAMESPACE, "SuccessfulDelete").await;
    let gone = format!("Deleted pod: {}", placed["node-b"].name_any());
    assert!(deleted
        .iter()
        .any(|e| e.message.as_deref() == Some(gone.as_str())));
    eventually("desired 2 after the relabel", || async {
        let s = daemonsets.get("agent").await.ok()?.status?;
        (s.desired_number_scheduled == 2 && s.number_available == Some(2)).then_some(())
    })
    .await;
    c.stop().await;
}

/// The live pods of `app` that are ready, counted at every pod event; the minimum is kept
/// once armed.
struct AvailabilityWatch {
    current: Arc<AtomicI64>,
    min: Arc<AtomicI64>,
    /// Every pod the watch saw start terminating, in order.
    terminated: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl AvailabilityWatch {
    fn start(pods: Api<Pod>, app: &str) -> AvailabilityWatch {
        let current = Arc::new(AtomicI64::new(0));
        let min = Arc::new(AtomicI64::new(i64::MAX));
        let terminated = Arc::new(Mutex::new(Vec::new()));
        let config = watcher::Config::default().labels(&format!("app={app}"));
        let (current_seen, min_seen, terminated_seen) = (
            Arc::clone(&current),
            Arc::clone(&min),
            Arc::clone(&terminated),
        );
        let task = tokio::spawn(async move {
            let mut ready: HashMap<String, bool> = HashMap::new();
            let mut events = std::pin::pin!(watcher(pods, config));
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        let name = pod.name_any();
                        if pod.metadata.deletion_timestamp.is_some() {
                            let mut seen = terminated_seen.lock().unwrap();
                            if !seen.contains(&name) {
                                seen.push(name.clone());
                            }
                        }
                        ready.insert(
                            name,
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
        AvailabilityWatch {
            current,
            min,
            terminated,
            task,
        }
    }

    async fn arm_at(&self, n: i64) {
        eventually("the watch to see the ready pods", || async {
            (self.current.load(Ordering::SeqCst) == n).then_some(())
        })
        .await;
        self.min.store(n, Ordering::SeqCst);
    }

    fn min(&self) -> i64 {
        self.min.load(Ordering::SeqCst)
    }
}

/// Runs kubectl off the runtime's threads.
async fn kubectl(k: &Arc<Kubectl>, args: &[&str]) -> String {
    let k = Arc::clone(k);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        k.ok(&args)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_rolling_update_goes_one_node_at_a_time_and_undo_returns() {
    let mut c = Cluster::start(|config| config).await;
    let nodes = ["node-a", "node-b", "node-c"];
    for node in nodes {
        c.add_node(node, &[], "").await;
    }
    let daemonsets: Api<DaemonSet> = Api::namespaced(c.h.client.clone(), NAMESPACE);
    let pods = c.pods();
    let ds = daemon_set(
        "web",
        "busybox:1",
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}),
    );
    daemonsets
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
    let first = settled_on(&pods, "web", &nodes, "busybox:1").await;
    let k = Arc::new(Kubectl::new(&c.h.cp));
    let status = kubectl(
        &k,
        &[
            "rollout",
            "status",
            "ds/web",
            "-n",
            NAMESPACE,
            "--timeout=60s",
        ],
    )
    .await;
    assert!(
        status.contains("daemon set \"web\" successfully rolled out"),
        "{status}"
    );

    let watch = AvailabilityWatch::start(pods.clone(), "web");
    watch.arm_at(3).await;
    let image = |image: &str| {
        Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "main", "image": image}]}}}}))
    };
    daemonsets
        .patch("web", &PatchParams::default(), &image("busybox:2"))
        .await
        .unwrap();
    let status = kubectl(
        &k,
        &[
            "rollout",
            "status",
            "ds/web",
            "-n",
            NAMESPACE,
            "--timeout=90s",
        ],
    )
    .await;
    assert!(
        status.contains("daemon set \"web\" successfully rolled out"),
        "{status}"
    );
    let second = settled_on(&pods, "web", &nodes, "busybox:2").await;
    // The API server counts template changes; the pods carry the count.
    let updated = daemonsets.get("web").await.unwrap();
    assert_eq!(
        updated.annotations()["deprecated.daemonset.template.generation"],
        "2"
    );
    for pod in second.values() {
        assert_eq!(pod.labels()["pod-template-generation"], "2");
    }
    // Every old pod was replaced, and never more than one node was without a ready pod.
    assert_eq!(
        watch.min(),
        2,
        "maxUnavailable=1 of 3: ready pods go down to exactly 2"
    );
    let replaced: Vec<String> = watch.terminated.lock().unwrap().clone();
    let mut old: Vec<String> = first.values().map(|p| p.name_any()).collect();
    old.sort();
    let mut replaced_sorted = replaced.clone();
    replaced_sorted.sort();
    assert_eq!(
        replaced_sorted, old,
        "each old pod terminated once: {replaced:?}"
    );
    for pod in second.values() {
        assert!(!old.contains(&pod.name_any()));
    }

    let history = kubectl(&k, &["rollout", "history", "ds/web", "-n", NAMESPACE]).await;
    let revisions: Vec<&str> = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let shown = kubectl(
        &k,
        &[
            "rollout",
            "history",
            "ds/web",
            "-n",
            NAMESPACE,
            "--revision=1",
        ],
    )
    .await;
    assert!(shown.contains("busybox:1"), "{shown}");

    // Undo: the template of revision 1 returns, rolled out one node at a time again, and its
    // revision is renumbered 3.
    watch.arm_at(3).await;
    let undo = kubectl(&k, &["rollout", "undo", "ds/web", "-n", NAMESPACE]).await;
    assert!(undo.contains("rolled back"), "{undo}");
    let status = kubectl(
        &k,
        &[
            "rollout",
            "status",
            "ds/web",
            "-n",
            NAMESPACE,
            "--timeout=90s",
        ],
    )
    .await;
    assert!(status.contains("successfully rolled out"), "{status}");
    settled_on(&pods, "web", &nodes, "busybox:1").await;
    assert!(watch.min() >= 2, "ready pods fell to {}", watch.min());
    let template = daemonsets.get("web").await.unwrap().spec.unwrap().template;
    assert_eq!(
        template.spec.unwrap().containers[0].image.as_deref(),
        Some("busybox:1")
    );
    let revisions: Api<ControllerRevision> = Api::namespaced(c.h.client.clone(), NAMESPACE);
    let numbers = eventually("revision 1 renumbered 3", || async {
        let mut numbers: Vec<(i64, String)> = revisions
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .map(|r| (r.revision, r.labels()["controller-revision-hash"].clone()))
            .collect();
        numbers.sort();
        (numbers.iter().map(|(n, _)| *n).collect::<Vec<_>>() == [2, 3]).then_some(numbers)
    })
    .await;
    let first_hash = first.values().next().unwrap().labels()["controller-revision-hash"].clone();
    assert_eq!(
        numbers[1].1, first_hash,
        "the first template's revision came back"
    );
    watch.task.abort();
    c.stop().await;
}

#[tokio::test]
async fn on_delete_waits_for_a_deletion_and_surge_keeps_every_node_served() {
    let mut c = Cluster::start(|config| config).await;
    let nodes = ["node-a", "node-b"];
    for node in nodes {
        c.add_node(node, &[], "").await;
    }
    let daemonsets: Api<DaemonSet> = Api::namespaced(c.h.client.clone(), NAMESPACE);
    let pods = c.pods();
    let image = |image: &str| {
        Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "main", "image": image}]}}}}))
    };

    // OnDelete: a new template changes nothing until a pod is deleted by hand.
    let ds = daemon_set(
        "manual",
        "busybox:1",
        json!({"updateStrategy": {"type": "OnDelete"}}),
    );
    daemonsets
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
    let first = settled_on(&pods, "manual", &nodes, "busybox:1").await;
    daemonsets
        .patch("manual", &PatchParams::default(), &image("busybox:2"))
        .await
        .unwrap();
    eventually("the new generation observed, nothing updated", || async {
        let ds = daemonsets.get("manual").await.ok()?;
        let s = ds.status.clone()?;
        (s.observed_generation == ds.metadata.generation
            && s.updated_number_scheduled == Some(0)
            && s.number_available == Some(2))
        .then_some(())
    })
    .await;
    let unchanged = ready_by_node(&pods, "manual").await;
    for node in nodes {
        assert_eq!(unchanged[node].name_any(), first[node].name_any());
    }
    pods.delete(&first["node-a"].name_any(), &Default::default())
        .await
        .unwrap();
    let after = eventually("node-a's pod replaced with the new template", || async {
        let ready = ready_by_node(&pods, "manual").await;
        (ready.get("node-a").map(image_of).as_deref() == Some("busybox:2")).then_some(ready)
    })
    .await;
    assert_eq!(after["node-b"].name_any(), first["node-b"].name_any());

    // maxSurge=1, maxUnavailable=0: the new pod starts beside the old one, which goes only
    // once its successor is ready, so every node keeps a ready pod throughout.
    let ds = daemon_set(
        "surge",
        "busybox:1",
        json!({"updateStrategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
    );
    daemonsets
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
    settled_on(&pods, "surge", &nodes, "busybox:1").await;
    let watch = AvailabilityWatch::start(pods.clone(), "surge");
    watch.arm_at(2).await;
    daemonsets
        .patch("surge", &PatchParams::default(), &image("busybox:2"))
        .await
        .unwrap();
    settled_on(&pods, "surge", &nodes, "busybox:2").await;
    assert!(watch.min() >= 2, "ready pods fell to {}", watch.min());
    assert_eq!(watch.terminated.lock().unwrap().len(), 2);
    watch.task.abort();
    c.stop().await;
}
