//! Pod workers against a scripted runtime and an in-memory API, on paused tokio time:
//! restart policies and CrashLoopBackOff without processes or an API server. A container
//! whose command is `exit N` exits with N as soon as it starts; any other runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use keel_runtime::{
    ContainerConfig, ContainerId, ContainerState, ContainerStatus, ExecOutput, Result, Runtime,
    RuntimeError, Sandbox, SandboxConfig, SandboxId, SandboxInfo,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::worker::{Message, Worker};
use super::{NodeContext, RuntimeClasses};
use crate::config::{NodeConfig, Timings};
use crate::events::Recorder;
use crate::runtimes::Runtimes;

#[derive(Default)]
struct Scripted {
    containers: Mutex<BTreeMap<ContainerId, (ContainerStatus, Vec<String>)>>,
    next: Mutex<u64>,
}

impl Runtime for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    async fn run_sandbox(&self, _: &SandboxConfig) -> Result<Sandbox> {
        Ok(Sandbox {
            id: SandboxId("s".into()),
            ip: Some("169.254.9.2".parse().unwrap()),
        })
    }
    async fn stop_sandbox(&self, _: &SandboxId) -> Result<()> {
        Ok(())
    }
    async fn remove_sandbox(&self, _: &SandboxId) -> Result<()> {
        Ok(())
    }
    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId> {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        let id = ContainerId(format!("c{next}"));
        let status = ContainerStatus {
            id: id.clone(),
            sandbox: sandbox.clone(),
            name: config.name.clone(),
            attempt: config.attempt,
            image: config.image.clone(),
            state: ContainerState::Created,
            labels: config.labels.clone(),
        };
        self.containers
            .lock()
            .unwrap()
            .insert(id.clone(), (status, config.argv.clone()));
        Ok(id)
    }
    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        let mut containers = self.containers.lock().unwrap();
        let (status, argv) = containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound(id.0.clone()))?;
        let now = SystemTime::now();
        status.state = match argv.as_slice() {
            [exit, code] if exit == "exit" => {
                let exit_code: i32 = code.parse().unwrap();
                ContainerState::Exited {
                    started_at: now,
                    finished_at: now,
                    exit_code,
                    reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
                    message: String::new(),
                }
            }
            _ => ContainerState::Running { started_at: now },
        };
        Ok(())
    }
    async fn stop_container(&self, id: &ContainerId, _: Duration) -> Result<()> {
        let mut containers = self.containers.lock().unwrap();
        if let Some((status, _)) = containers.get_mut(id) {
            if let ContainerState::Running { started_at } = status.state {
                status.state = ContainerState::Exited {
                    started_at,
                    finished_at: SystemTime::now(),
                    exit_code: 0,
                    reason: "Completed".into(),
                    message: String::new(),
                };
            }
        }
        Ok(())
    }
    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        self.containers.lock().unwrap().remove(id);
        Ok(())
    }
    async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus> {
        let containers = self.containers.lock().unwrap();
        containers
            .get(id)
            .map(|(s, _)| s.clone())
            .ok_or_else(|| RuntimeError::NotFound(id.0.clone()))
    }
    async fn list_sandboxes(&self) -> Result<Vec<SandboxInfo>> {
        Ok(Vec::new())
    }
    async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        Ok(Vec::new())
    }
    async fn exec_sync(&self, _: &ContainerId, argv: &[String], _: Duration) -> Result<ExecOutput> {
        // `false` fails, as the shell's does; anything else passes.
        let exit_code = if argv == ["false"] { 1 } else { 0 };
        Ok(ExecOutput {
            exit_code,
            stdout: b"probe says no".to_vec(),
            stderr: Vec::new(),
        })
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ContainerId> {
        tokio::sync::broadcast::channel(1).1
    }
}

/// What the in-memory API was sent: each pod status written, with when, and event reasons.
#[derive(Default)]
struct Sent {
    statuses: Vec<(Instant, Value)>,
    events: Vec<String>,
}

/// A kube client whose API records status patches and events and answers 404 to reads.
fn api() -> (kube::Client, Arc<Mutex<Sent>>) {
    use http_body_util::BodyExt as _;
    let sent = Arc::new(Mutex::new(Sent::default()));
    let log = sent.clone();
    let service = tower::service_fn(move |request: hyper::Request<kube::client::Body>| {
        let log = log.clone();
        async move {
            let path = request.uri().path().to_owned();
            let method = request.method().clone();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (code, answer) = if path.ends_with("/status") {
                log.lock()
                    .unwrap()
                    .statuses
                    .push((Instant::now(), body["status"].clone()));
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
                )
            } else if path.contains("/events") {
                log.lock()
                    .unwrap()
                    .events
                    .push(body["reason"].as_str().unwrap_or("").to_owned());
                (201, body)
            } else if method == hyper::Method::DELETE {
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
                )
            } else {
                (
                    404,
                    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 404, "reason": "NotFound", "message": "not found"}),
                )
            };
            let response = hyper::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(
                    serde_json::to_vec(&answer).unwrap(),
                ))
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    (kube::Client::new(service, "default"), sent)
}

fn node(client: kube::Client, data_dir: &std::path::Path) -> Arc<NodeContext> {
    let mut config = NodeConfig::new("n1", data_dir.to_owned(), "scripted");
    config.timings = Timings::default();
    Arc::new(NodeContext {
        events: Recorder::new(client.clone(), "n1"),
        client,
        config,
        runtimes: Runtimes::new().with(Scripted::default()),
        allocatable_cpu_millis: 4000,
        allocatable_memory_bytes: 1 << 30,
        runtime_classes: RuntimeClasses::default(),
    })
}

fn pod(policy: &str, command: &[&str]) -> Arc<Pod> {
    probed_pod(policy, command, json!({}))
}

fn probed_pod(policy: &str, command: &[&str], probes: Value) -> Arc<Pod> {
    let mut container = json!({"name": "app", "image": "busybox", "command": command});
    for (key, value) in probes.as_object().unwrap() {
        container[key] = value.clone();
    }
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"nodeName": "n1", "restartPolicy": policy, "containers": [container]},
        }))
        .unwrap(),
    )
}

/// Runs a worker for `pod` until `done` holds for the statuses written (paused time runs ahead
/// whenever every task waits).
async fn run_until(
    pod: Arc<Pod>,
    done: impl Fn(&[(Instant, Value)]) -> bool,
) -> (Vec<(Instant, Value)>, Vec<String>) {
    let (client, sent) = api();
    // Log directories are made under the data dir.
    let data_dir = tempfile::tempdir().unwrap();
    let worker = Worker::new(node(client, data_dir.path()), pod, None);
    let (messages, receiver) = mpsc::unbounded_channel::<Message>();
    let task = tokio::spawn(worker.run(receiver));
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if done(&sent.lock().unwrap().statuses) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never got there: {:?}",
            sent.lock().unwrap().statuses
        );
    }
    drop(messages);
    let _ = task.await;
    let sent = sent.lock().unwrap();
    (sent.statuses.clone(), sent.events.clone())
}

fn container(status: &Value) -> &Value {
    &status["containerStatuses"][0]
}

#[tokio::test(start_paused = true)]
async fn a_crashing_container_restarts_under_a_doubling_back_off() {
    let (statuses, events) = run_until(pod("Always", &["exit", "1"]), |statuses| {
        statuses
            .iter()
            .any(|(_, s)| container(s)["restartCount"] == 4)
    })
    .await;
    // When each restart happened: the first at once, then 10 s, 20 s, 40 s apart.
    let mut restarts: Vec<(i64, Instant)> = Vec::new();
    for (at, status) in &statuses {
        let count = container(status)["restartCount"].as_i64().unwrap();
        if restarts.last().is_none_or(|(c, _)| *c != count) {
            restarts.push((count, *at));
        }
    }
    let gaps: Vec<u64> = restarts
        .windows(2)
        .map(|w| (w[1].1 - w[0].1).as_secs())
        .collect();
    assert_eq!(gaps, [0, 10, 20, 40], "restarts {restarts:?}");
    let waiting: Vec<&str> = statuses
        .iter()
        .filter_map(|(_, s)| container(s)["state"]["waiting"]["message"].as_str())
        .collect();
    assert!(
        waiting.contains(&"back-off 10s restarting failed container=app pod=p_default(u1)"),
        "{waiting:?}"
    );
    assert!(waiting.contains(&"back-off 40s restarting failed container=app pod=p_default(u1)"));
    let (_, last) = statuses.last().unwrap();
    assert_eq!(last["phase"], "Running", "a restarting pod stays Running");
    assert_eq!(container(last)["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(
        container(last)["lastState"]["terminated"]["reason"],
        "Error"
    );
    assert!(events.iter().any(|e| e == "BackOff"), "{events:?}");
    assert!(events.iter().filter(|e| *e == "Started").count() >= 4);
}

#[tokio::test(start_paused = true)]
async fn restart_policies_end_pods_as_kube_does() {
    let failed = |s: &[(Instant, Value)]| s.iter().any(|(_, s)| s["phase"] == "Failed");
    let (statuses, _) = run_until(pod("Never", &["exit", "3"]), failed).await;
    let (_, last) = statuses.last().unwrap();
    assert_eq!(container(last)["state"]["terminated"]["exitCode"], 3);
    assert_eq!(container(last)["restartCount"], 0);
    assert_eq!(last["conditions"][2]["reason"], "PodCompleted");

    let succeeded = |s: &[(Instant, Value)]| s.iter().any(|(_, s)| s["phase"] == "Succeeded");
    let (statuses, _) = run_until(pod("OnFailure", &["exit", "0"]), succeeded).await;
    assert_eq!(container(&statuses.last().unwrap().1)["restartCount"], 0);

    let running = |s: &[(Instant, Value)]| s.iter().any(|(_, s)| s["phase"] == "Running");
    let (statuses, _) = run_until(pod("Never", &["sleep", "inf"]), running).await;
    let (_, last) = statuses.last().unwrap();
    assert_eq!(last["podIP"], "169.254.9.2");
    assert!(container(last)["state"]["running"]["startedAt"].is_string());
}

#[tokio::test(start_paused = true)]
async fn a_failing_liveness_probe_restarts_and_readiness_gates_ready() {
    let failing =
        json!({"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2});
    let live = probed_pod(
        "Always",
        &["sleep", "inf"],
        json!({"livenessProbe": failing}),
    );
    let (statuses, events) = run_until(live, |statuses| {
        statuses
            .iter()
            .any(|(_, s)| container(s)["restartCount"] == 1)
    })
    .await;
    assert!(events.iter().any(|e| e == "Unhealthy"), "{events:?}");
    assert!(events.iter().any(|e| e == "Killing"), "{events:?}");
    let (_, last) = statuses.last().unwrap();
    assert!(container(last)["lastState"]["terminated"].is_object());

    let unready = probed_pod(
        "Always",
        &["sleep", "inf"],
        json!({
            "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1},
        }),
    );
    let (statuses, _) = run_until(unready, |statuses| {
        statuses.iter().any(|(_, s)| s["phase"] == "Running")
    })
    .await;
    let (_, last) = statuses.last().unwrap();
    assert_eq!(container(last)["ready"], false);
    let ready = last["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["message"], "containers with unready status: [app]");

    let passing = probed_pod(
        "Always",
        &["sleep", "inf"],
        json!({
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
            "startupProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
        }),
    );
    let (statuses, _) = run_until(passing, |statuses| {
        statuses.iter().any(|(_, s)| container(s)["ready"] == true)
    })
    .await;
    assert_eq!(container(&statuses.last().unwrap().1)["started"], true);
}
