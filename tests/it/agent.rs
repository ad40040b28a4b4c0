//! keel-agent against an in-process control plane with the scheduler and the controllers
//! running: hollow agents register their Nodes and renew their Leases, run what the
//! scheduler binds to them and report it (a Deployment becomes Available from their
//! status alone), confirm graceful deletions, show a missing ConfigMap as kube does, and
//! after a restart adopt the pods their runtime still runs and kill those whose objects went
//! away meanwhile. A stopped agent's Lease stops being renewed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use keel_agent::{NodeConfig, Runtimes, Timings};
use keel_runtime::hollow::{Hollow, Ipv4Cidr};
use keel_runtime::Runtime as _;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::ResourceExt as _;
use serde_json::json;
use tokio::sync::oneshot;

use crate::kube_api::ControlPlane;
use crate::poll::eventually;

/// Kubelet's timers shortened: a Lease renewed every 200 ms, back-off from 100 ms.
fn timings() -> Timings {
    Timings {
        lease_duration: Duration::from_secs(1),
        lease_renew_interval: Duration::from_millis(200),
        node_status_update_frequency: Duration::from_millis(500),
        node_status_report_frequency: Duration::from_secs(5),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        backoff_reset: Duration::from_secs(10),
        pod_resync: Duration::from_millis(300),
    }
}

/// A running agent of one hollow node; its runtime outlives it, as a real runtime outlives a
/// kubelet restart. Other modules' tests run their pods on it too.
pub(crate) struct Agent {
    name: String,
    runtime: Arc<Hollow>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<keel_agent::Result<()>>>,
}

/// `Hollow` behind an `Arc`, so a restarted agent finds the same sandboxes.
struct Shared(Arc<Hollow>);

impl keel_runtime::Runtime for Shared {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn run_sandbox(
        &self,
        config: &keel_runtime::SandboxConfig,
    ) -> keel_runtime::Result<keel_runtime::Sandbox> {
        self.0.run_sandbox(config).await
    }
    async fn stop_sandbox(&self, id: &keel_runtime::SandboxId) -> keel_runtime::Result<()> {
        self.0.stop_sandbox(id).await
    }
    async fn remove_sandbox(&self, id: &keel_runtime::SandboxId) -> keel_runtime::Result<()> {
        self.0.remove_sandbox(id).await
    }
    async fn create_container(
        &self,
        sandbox: &keel_runtime::SandboxId,
        config: &keel_runtime::ContainerConfig,
    ) -> keel_runtime::Result<keel_runtime::ContainerId> {
        self.0.create_container(sandbox, config).await
    }
    async fn start_container(&self, id: &keel_runtime::ContainerId) -> keel_runtime::Result<()> {
        self.0.start_container(id).await
    }
    async fn stop_container(
        &self,
        id: &keel_runtime::ContainerId,
        grace: Duration,
    ) -> keel_runtime::Result<()> {
        self.0.stop_container(id, grace).await
    }
    async fn remove_container(&self, id: &keel_runtime::ContainerId) -> keel_runtime::Result<()> {
        self.0.remove_container(id).await
    }
    async fn container_status(
        &self,
        id: &keel_runtime::ContainerId,
    ) -> keel_runtime::Result<keel_runtime::ContainerStatus> {
        self.0.container_status(id).await
    }
    async fn list_sandboxes(&self) -> keel_runtime::Result<Vec<keel_runtime::SandboxInfo>> {
        self.0.list_sandboxes().await
    }
    async fn list_containers(&self) -> keel_runtime::Result<Vec<keel_runtime::ContainerStatus>> {
        self.0.list_containers().await
    }
    async fn exec_sync(
        &self,
        id: &keel_runtime::ContainerId,
        argv: &[String],
        timeout: Duration,
    ) -> keel_runtime::Result<keel_runtime::ExecOutput> {
        self.0.exec_sync(id, argv, timeout).await
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<keel_runtime::ContainerId> {
        self.0.subscribe()
    }
}

impl Agent {
    /// Starts node `name` (pod CIDR 169.254.`index`.0/24) on member 0, as `system:node:<name>`.
    pub(crate) fn start(cp: &ControlPlane, dir: &std::path::Path, name: &str, index: u8) -> Agent {
        let cidr = format!("169.254.{}.0/24", 100 + index);
        let runtime = Arc::new(Hollow::new(Some(Ipv4Cidr::parse(&cidr).unwrap())));
        let mut agent = Agent {
            name: name.to_owned(),
            runtime,
            stop: None,
            task: None,
        };
        agent.run(cp, dir, &cidr);
        agent
    }

    fn run(&mut self, cp: &ControlPlane, dir: &std::path::Path, cidr: &str) {
        let client = cp.cluster.apiservers[0]
            .client(&format!("system:node:{}", self.name), &["system:nodes"]);
        let mut config = NodeConfig::new(&self.name, dir.join(&self.name), "hollow");
        config.pod_cidr = Some(cidr.to_owned());
        config.labels.insert("keel.dev/test".into(), "agent".into());
        config.timings = timings();
        let runtime = self.runtime.clone();
        let make: keel_agent::MakeRuntimes =
            Arc::new(move |_| Ok(Runtimes::new().with(Shared(runtime.clone()))));
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(keel_agent::run(
            client,
            vec![config],
            make,
            async move {
                let _ = stopped.await;
            },
        )));
    }

    pub(crate) async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("agent task").expect("agent ran");
        }
    }
}

/// A control plane with the scheduler, the controllers and two hollow agents.
struct Harness {
    cp: ControlPlane,
    client: kube::Client,
    agents: Vec<Agent>,
    dir: tempfile::TempDir,
    components: Vec<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl Harness {
    async fn start(nodes: usize) -> Harness {
        let cp = ControlPlane::start(1).await;
        let apiserver = &cp.cluster.apiservers[0];
        let client = apiserver.client("admin", &["system:masters"]);
        let mut components = Vec::new();
        let mut scheduler = keel_scheduler::SchedulerConfig::new("test-scheduler");
        scheduler.lease.lease_duration = Duration::from_millis(1500);
        scheduler.lease.renew_deadline = Duration::from_millis(1000);
        scheduler.lease.retry_period = Duration::from_millis(100);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(keel_scheduler::run(
            apiserver.client("system:kube-scheduler", &["system:masters"]),
            scheduler,
            async move {
                let _ = stopped.await;
            },
        ));
        components.push((stop, task));
        let controllers = keel_controllers::ControllersConfig {
            lease_duration: Duration::from_millis(1500),
            renew_deadline: Duration::from_millis(1000),
            retry_period: Duration::from_millis(100),
            ..keel_controllers::ControllersConfig::new("test-controller-manager")
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(keel_controllers::run(
            apiserver.client("system:kube-controller-manager", &["system:masters"]),
            controllers,
            async move {
                let _ = stopped.await;
            },
        ));
        components.push((stop, task));
        let dir = tempfile::tempdir().unwrap();
        let agents = (0..nodes)
            .map(|i| Agent::start(&cp, dir.path(), &format!("hollow-{i}"), i as u8))
            .collect();
        let harness = Harness {
            cp,
            client,
            agents,
            dir,
            components,
        };
        for agent in &harness.agents {
            harness.ready_node(&agent.name).await;
        }
        harness
    }

    async fn ready_node(&self, name: &str) -> Node {
        let nodes: Api<Node> = Api::all(self.client.clone());
        eventually(&format!("node {name} Ready"), || async {
            let node = nodes.get_opt(name).await.ok()??;
            let ready = node
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(node)
        })
        .await
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn create_pod(&self, name: &str, node: &str, extra: serde_json::Value) -> Pod {
        let mut pod = json!({
            "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30,
                "containers": [{"name": "app", "image": "busybox"}]},
        });
        crate_merge(&mut pod, extra);
        let pod: Pod = serde_json::from_value(pod).unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap()
    }

    async fn running(&self, name: &str) -> Pod {
        let pods = self.pods();
        eventually(&format!("pod {name} Running and Ready"), || async {
            let pod = pods.get_opt(name).await.ok()??;
            let status = pod.status.as_ref()?;
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (status.phase.as_deref() == Some("Running") && ready).then_some(pod)
        })
        .await
    }

    async fn stop(mut self) {
        for agent in &mut self.agents {
            agent.stop().await;
        }
        for (stop, task) in self.components {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.cp.stop().await;
        drop(self.dir);
    }
}

fn crate_merge(into: &mut serde_json::Value, extra: serde_json::Value) {
    match (into, extra) {
        (serde_json::Value::Object(into), serde_json::Value::Object(extra)) => {
            for (key, value) in extra {
                crate_merge(into.entry(key).or_insert(serde_json::Value::Null), value);
            }
        }
        (into, extra) => *into = extra,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_becomes_available_on_two_hollow_nodes() {
    let h = Harness::start(2).await;
    let node = h.ready_node("hollow-0").await;
    let labels = node.labels();
    assert_eq!(labels["kubernetes.io/hostname"], "hollow-0");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["keel.dev/test"], "agent");
    let status = node.status.unwrap();
    assert_eq!(status.capacity.as_ref().unwrap()["pods"].0, "110");
    assert_eq!(
        status.node_info.as_ref().unwrap().kubelet_version,
        keel_agent::node::AGENT_VERSION
    );

    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    eventually("the Deployment Available with 3 ready replicas", || async {
        let d = deployments.get("web").await.ok()?;
        let status = d.status?;
        let available = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Available" && c.status == "True");
        (available && status.available_replicas == Some(3)).then_some(())
    })
    .await;
    let pods = h.pods().list(&ListParams::default()).await.unwrap();
    assert_eq!(pods.items.len(), 3);
    for pod in &pods.items {
        let status = pod.status.as_ref().unwrap();
        let ip: std::net::Ipv4Addr = status.pod_ip.as_deref().unwrap().parse().unwrap();
        assert_eq!(ip.octets()[..2], [169, 254], "pod IPs are link-local");
        let node = pod.spec.as_ref().unwrap().node_name.as_deref().unwrap();
        let third = if node == "hollow-0" { 100 } else { 101 };
        assert_eq!(
            ip.octets()[2],
            third,
            "the pod's IP is from its node's CIDR"
        );
        let container = &status.container_statuses.as_ref().unwrap()[0];
        assert!(container.ready);
        assert!(container
            .container_id
            .as_deref()
            .unwrap()
            .starts_with("hollow://"));
        assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
        let types: Vec<&str> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        for kind in [
            "PodScheduled",
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "Ready",
        ] {
            assert!(types.contains(&kind), "{kind} in {types:?}");
        }
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_is_stopped_and_its_deletion_confirmed() {
    let h = Harness::start(1).await;
    h.create_pod("doomed", "hollow-0", json!({})).await;
    h.running("doomed").await;
    assert_eq!(h.agents[0].runtime.list_sandboxes().await.unwrap().len(), 1);
    // A 30 s grace period: only the agent's confirmation removes the object sooner.
    h.pods()
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the agent to confirm the deletion", || async {
        h.pods()
            .get_opt("doomed")
            .await
            .ok()
            .and_then(|p| p.is_none().then_some(()))
    })
    .await;
    assert!(h.agents[0]
        .runtime
        .list_sandboxes()
        .await
        .unwrap()
        .is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_config_map_holds_the_container_until_it_exists() {
    let h = Harness::start(1).await;
    let env = json!({"spec": {"containers": [{"name": "app", "image": "busybox",
        "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}]}]}});
    h.create_pod("configured", "hollow-0", env).await;
    let pods = h.pods();
    let waiting = eventually("CreateContainerConfigError", || async {
        let pod = pods.get_opt("configured").await.ok()??;
        let status = pod.status?.container_statuses?.into_iter().next()?;
        let waiting = status.state?.waiting?;
        (waiting.reason.as_deref() == Some("CreateContainerConfigError")).then_some(waiting)
    })
    .await;
    assert_eq!(
        waiting.message.as_deref(),
        Some("configmap \"settings\" not found")
    );
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings"}, "data": {"mode": "fast"}}))
    .unwrap();
    Api::<ConfigMap>::namespaced(h.client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    h.running("configured").await;
    h.stop().await;
}

/// The node's Lease renewTime, in microseconds.
async fn renew_time(client: &kube::Client, node: &str) -> Option<i64> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = leases.get_opt(node).await.ok()??;
    let spec = lease.spec?;
    assert_eq!(spec.holder_identity.as_deref(), Some(node));
    assert_eq!(spec.lease_duration_seconds, Some(1));
    Some(spec.renew_time?.0.as_microsecond() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_renewed_until_the_agent_stops_and_a_restarted_agent_adopts_its_pods() {
    let mut h = Harness::start(1).await;
    let first = eventually("the node Lease", || renew_time(&h.client, "hollow-0")).await;
    eventually("a renewal", || async {
        let now = renew_time(&h.client, "hollow-0").await?;
        (now > first).then_some(())
    })
    .await;

    h.create_pod("keeper", "hollow-0", json!({})).await;
    h.create_pod("orphan", "hollow-0", json!({})).await;
    let keeper = h.running("keeper").await;
    h.running("orphan").await;
    let container_id = |pod: &Pod| {
        pod.status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0]
            .container_id
            .clone()
    };

    h.agents[0].stop().await;
    let stopped_at = renew_time(&h.client, "hollow-0").await.unwrap();
    // Ten renew intervals with no renewal: nothing renews the Lease of a stopped agent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        renew_time(&h.client, "hollow-0").await,
        Some(stopped_at),
        "a stopped agent's Lease is not renewed"
    );
    // While the agent is down, one pod's object goes away for good.
    h.pods()
        .delete("orphan", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert_eq!(h.agents[0].runtime.list_sandboxes().await.unwrap().len(), 2);

    let dir = h.dir.path().to_owned();
    h.agents[0].run(&h.cp, &dir, "169.254.100.0/24");
    let runtime = h.agents[0].runtime.clone();
    eventually("the orphan's sandbox killed", || async {
        let sandboxes = runtime.list_sandboxes().await.ok()?;
        (sandboxes.len() == 1).then_some(())
    })
    .await;
    eventually("renewals again", || async {
        let now = renew_time(&h.client, "hollow-0").await?;
        (now > stopped_at).then_some(())
    })
    .await;
    let adopted = h.running("keeper").await;
    assert_eq!(
        container_id(&adopted),
        container_id(&keeper),
        "the running container is adopted, not started again"
    );
    let status = &adopted
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(status.restart_count, 0);
    assert_eq!(keeper.uid(), adopted.uid());
    h.stop().await;
}
