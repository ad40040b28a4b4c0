//! One pod's worker, as kubelet's pod workers are: every change to the pod goes through its
//! one task, so a pod is never synced twice at once. A sync brings the runtime to the pod's
//! spec (sandbox, init containers in order, then containers, restarts under back-off) and
//! writes the status that results; a pod being deleted is stopped with its grace period and
//! its deletion confirmed.
//!
//! ```text
//!            ┌──────────── Update(pod) / Wake / timer ◄─────────────┐
//!            ▼                                                       │
//!  sync: runtime class ─> sandbox ─> init containers ─> containers ─> status (if changed)
//!  deletionTimestamp: preStop, stop (grace), final status, DELETE gracePeriodSeconds=0 uid=…
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerStateTerminated, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use keel_runtime::{
    ContainerConfig, ContainerId, ContainerState, ContainerStatus, Limits, RuntimeError,
    SandboxConfig, SandboxId, SandboxInfo,
};
use kube::api::Api;
use kube::ResourceExt as _;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backoff::{self, Backoff};
use super::probes::{Kind, Tally};
use super::{env, labels, NodeContext};
use report::terminated;

mod report;
mod stopping;
use crate::runtimes::DynRuntime;

/// What a worker is told.
#[derive(Debug)]
pub enum Message {
    /// The pod's object changed.
    Update(Arc<Pod>),
    /// The pod's object is gone from the API: kill what runs and stop.
    Gone,
    /// Something in the runtime changed (a container exited): sync now.
    Wake,
}

/// What a runtime already runs for a pod when the agent starts.
#[derive(Debug, Clone)]
pub struct Adopted {
    /// The runtime's handler.
    pub handler: String,
    /// The pod's sandbox.
    pub sandbox: SandboxInfo,
    /// Its containers, every attempt.
    pub containers: Vec<ContainerStatus>,
}

struct SandboxRecord {
    id: SandboxId,
    ip: Option<std::net::IpAddr>,
    ready: bool,
}

/// One container of the pod, across its attempts.
#[derive(Default)]
struct Record {
    /// The latest attempt, as the runtime last reported it.
    current: Option<ContainerStatus>,
    /// How the attempt before it ended.
    last_terminated: Option<ContainerStateTerminated>,
    /// Restarts so far.
    restart_count: i32,
    /// The attempt number of the next start.
    next_attempt: u32,
    /// Why it is not running, when the agent knows better than the runtime
    /// (CrashLoopBackOff, CreateContainerConfigError, …).
    waiting: Option<(String, String)>,
    backoff: Backoff,
    /// The exited attempt whose restart is scheduled, and when.
    restart: Option<(ContainerId, Instant, Duration)>,
    /// When the agent saw the current attempt running (probes' initial delays count from it).
    started: Option<Instant>,
    /// The current attempt's probe tallies.
    probes: BTreeMap<Kind, Tally>,
}

impl Record {
    /// Whether the startup probe (if any) has passed.
    fn started_up(&self, container: &Container, probed: bool) -> bool {
        !probed
            || container.startup_probe.is_none()
            || self.probes.get(&Kind::Startup).and_then(|t| t.result) == Some(true)
    }

    /// Whether the readiness probe (if any) passes.
    fn ready(&self, container: &Container, probed: bool) -> bool {
        !probed
            || container.readiness_probe.is_none()
            || self.probes.get(&Kind::Readiness).and_then(|t| t.result) == Some(true)
    }
}

/// A pod's worker.
pub struct Worker {
    node: Arc<NodeContext>,
    pod: Arc<Pod>,
    runtime: Option<(String, Arc<dyn DynRuntime>)>,
    sandbox: Option<SandboxRecord>,
    containers: BTreeMap<String, Record>,
    start_time: Time,
    last_written: Option<Value>,
    conditions: Vec<PodCondition>,
    /// Why the sandbox could not be made, shown until it is.
    sandbox_error: Option<String>,
    /// The pod reached Succeeded or Failed: nothing more runs.
    terminal: bool,
}

/// When to sync next.
enum Next {
    /// On the next message only.
    Idle,
    /// At this instant, or on a message before it.
    At(Instant),
    /// The pod is finished with: the worker ends.
    Done,
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Worker {
    /// A worker for `pod`, taking over `adopted` when the runtime already runs it.
    pub fn new(node: Arc<NodeContext>, pod: Arc<Pod>, adopted: Option<Adopted>) -> Worker {
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .unwrap_or_else(|| Time(Timestamp::now()));
        let mut worker = Worker {
            node,
            conditions: pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default(),
            pod,
            runtime: None,
            sandbox: None,
            containers: BTreeMap::new(),
            start_time,
            last_written: None,
            sandbox_error: None,
            terminal: false,
        };
        if let Some(adopted) = adopted {
            worker.adopt(adopted);
        }
        worker
    }

    fn adopt(&mut self, adopted: Adopted) {
        let Some(runtime) = self.node.runtimes.get(&adopted.handler).cloned() else {
            return;
        };
        self.runtime = Some((adopted.handler, runtime));
        self.sandbox = Some(SandboxRecord {
            id: adopted.sandbox.id,
            ip: adopted.sandbox.ip,
            ready: adopted.sandbox.ready,
        });
        let runtime_name = self.runtime_name();
        let mut attempts = adopted.containers;
        attempts.sort_by_key(|c| c.attempt);
        for attempt in attempts {
            let record = self.containers.entry(attempt.name.clone()).or_default();
            if let Some(previous) = record.current.take() {
                record.last_terminated = terminated(&previous, &runtime_name);
            }
            record.restart_count = attempt.attempt as i32;
            record.next_attempt = attempt.attempt + 1;
            record.current = Some(attempt);
        }
    }

    fn runtime_name(&self) -> String {
        self.runtime
            .as_ref()
            .map_or_else(String::new, |(handler, _)| handler.clone())
    }

    /// Runs until the pod is finished with or the agent stops (`messages` closed: pods are
    /// left running, for the next agent to adopt).
    pub async fn run(mut self, mut messages: mpsc::UnboundedReceiver<Message>) {
        let mut gone = false;
        loop {
            let next = if gone {
                self.terminate(false).await;
                Next::Done
            } else {
                self.sync().await
            };
            let message = match next {
                Next::Done => return,
                Next::Idle => messages.recv().await,
                Next::At(when) => tokio::select! {
                    message = messages.recv() => message,
                    _ = tokio::time::sleep_until(when) => Some(Message::Wake),
                },
            };
            let Some(mut message) = message else { return };
            // Coalesce what queued up meanwhile: only the latest pod matters.
            loop {
                match message {
                    Message::Update(pod) => self.pod = pod,
                    Message::Gone => gone = true,
                    Message::Wake => {}
                }
                match messages.try_recv() {
                    Ok(next) => message = next,
                    Err(_) => break,
                }
            }
        }
    }

    async fn sync(&mut self) -> Next {
        if self.pod.metadata.deletion_timestamp.is_some() {
            self.terminate(true).await;
            return Next::Done;
        }
        self.refresh().await;
        let mut wake = None;
        if self.runtime.is_none() {
            match self.choose_runtime().await {
                Ok(runtime) => {
                    self.runtime = Some(runtime);
                    self.sandbox_error = None;
                }
                Err(message) => {
                    self.sandbox_failed(message);
                    wake = earliest(wake, Instant::now() + self.node.config.timings.pod_resync);
                }
            }
        }
        if self.runtime.is_some() && !self.terminal {
            if self.sandbox.as_ref().is_none_or(|s| !s.ready) {
                if let Err(message) = self.make_sandbox().await {
                    self.sandbox_failed(message);
                    wake = earliest(wake, Instant::now() + self.node.config.timings.pod_resync);
                }
            }
            if self.sandbox.is_some() {
                self.sync_containers(&mut wake).await;
            }
        }
        if let Some(retry) = self.post_status().await {
            wake = earliest(wake, retry);
        }
        if self.terminal {
            self.stop_finished_pod().await;
        } else if self
            .runtime
            .as_ref()
            .is_some_and(|(handler, _)| handler != "hollow")
        {
            // The runtime pushes container changes; this relist is the net under a missed
            // one, as kubelet's PLEG relists. Hollow containers change only when told to.
            wake = earliest(wake, Instant::now() + self.node.config.timings.pod_resync);
        }
        match wake {
            Some(when) => Next::At(when),
            None => Next::Idle,
        }
    }

    fn spec_containers(&self) -> (Vec<Container>, Vec<Container>) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        (spec.init_containers.unwrap_or_default(), spec.containers)
    }

    async fn sync_containers(&mut self, wake: &mut Option<Instant>) {
        let (init, containers) = self.spec_containers();
        for container in &init {
            if !self.sync_container(container, true, wake).await {
                return;
            }
        }
        for container in &containers {
            self.sync_container(container, false, wake).await;
        }
    }

    /// Brings one container to its spec; true when it no longer holds up what follows it
    /// (an init container that succeeded; a regular container always).
    async fn sync_container(
        &mut self,
        container: &Container,
        init: bool,
        wake: &mut Option<Instant>,
    ) -> bool {
        let policy = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".to_owned());
        let timings = self.node.config.timings.clone();
        let (pod_name, namespace, uid) = self.identity();
        let record = self.containers.entry(container.name.clone()).or_default();
        let current = record.current.clone();
        match current.as_ref().map(|c| &c.state) {
            None => {
                self.start(container).await;
                self.note_retry(container, wake);
                !init
            }
            Some(ContainerState::Created) => {
                let id = current
                    .as_ref()
                    .map(|c| c.id.clone())
                    .expect("a current container");
                let runtime = self
                    .runtime
                    .as_ref()
                    .map(|(_, r)| r.clone())
                    .expect("a runtime");
                if let Err(e) = runtime.start_container(&id).await {
                    self.node.events.record(
                        &self.pod,
                        Some(&container.name),
                        true,
                        "Failed",
                        format!("Error: {e}"),
                    );
                }
                self.refresh_one(&container.name).await;
                !init
            }
            Some(ContainerState::Running { .. }) => {
                if !init {
                    self.probe(container, wake).await;
                }
                !init
            }
            Some(ContainerState::Exited {
                exit_code,
                started_at,
                finished_at,
                ..
            }) => {
                let exit_code = *exit_code;
                if init && exit_code == 0 {
                    return true;
                }
                let restart = match policy.as_str() {
                    "Always" => !init || exit_code != 0,
                    "OnFailure" => exit_code != 0,
                    _ => false,
                };
                if !restart {
                    return !init;
                }
                let id = current
                    .as_ref()
                    .map(|c| c.id.clone())
                    .expect("a current container");
                let now = Instant::now();
                let (restart_at, wait) = match &record.restart {
                    Some((handled, at, wait)) if *handled == id => (*at, *wait),
                    _ => {
                        let ran = finished_at.duration_since(*started_at).unwrap_or_default();
                        let wait = record.backoff.on_exit(ran, &timings);
                        record.restart = Some((id, now + wait, wait));
                        (now + wait, wait)
                    }
                };
                if now < restart_at {
                    let message =
                        backoff::message(wait, &container.name, &pod_name, &namespace, &uid);
                    if record.waiting.as_ref().map(|(r, _)| r.as_str()) != Some("CrashLoopBackOff")
                    {
                        record.waiting = Some(("CrashLoopBackOff".to_owned(), message));
                        self.node.events.record(
                            &self.pod,
                            Some(&container.name),
                            true,
                            "BackOff",
                            format!("Back-off restarting failed container {} in pod {pod_name}_{namespace}({uid})", container.name),
                        );
                    }
                    *wake = earliest(*wake, restart_at);
                    return !init;
                }
                let runtime_name = self.runtime_name();
                let record = self.containers.get_mut(&container.name).expect("just used");
                record.last_terminated =
                    current.as_ref().and_then(|c| terminated(c, &runtime_name));
                record.restart_count += 1;
                record.current = None;
                record.waiting = None;
                self.start(container).await;
                self.note_retry(container, wake);
                !init
            }
        }
    }

    /// After a start: a container left waiting on a configuration error is retried on the
    /// resync timer; one that already exited is dealt with at once.
    fn note_retry(&self, container: &Container, wake: &mut Option<Instant>) {
        let record = self.containers.get(&container.name);
        let waiting = record.and_then(|r| r.waiting.as_ref());
        if waiting.is_some_and(|(reason, _)| reason != "CrashLoopBackOff") {
            *wake = earliest(*wake, Instant::now() + self.node.config.timings.pod_resync);
        }
        let exited = record
            .and_then(|r| r.current.as_ref())
            .is_some_and(|c| matches!(c.state, ContainerState::Exited { .. }));
        if exited {
            *wake = earliest(*wake, Instant::now());
        }
    }

    fn identity(&self) -> (String, String, String) {
        (
            self.pod.name_any(),
            self.pod.namespace().unwrap_or_else(|| "default".to_owned()),
            self.pod.uid().unwrap_or_default(),
        )
    }

    /// The image could not be had: `ErrImagePull` the first time, `ImagePullBackOff` while
    /// it keeps failing (retried on the resync timer), with kubelet's events.
    fn image_pull_failed(&mut self, name: &str, image: &str, message: &str) {
        let record = self.containers.entry(name.to_owned()).or_default();
        let again = record
            .waiting
            .as_ref()
            .is_some_and(|(reason, _)| reason == "ErrImagePull" || reason == "ImagePullBackOff");
        let events = &self.node.events;
        if again {
            record.waiting = Some((
                "ImagePullBackOff".to_owned(),
                format!("Back-off pulling image {image:?}: ErrImagePull: {message}"),
            ));
            let backoff = format!("Back-off pulling image {image:?}");
            events.record(&self.pod, Some(name), false, "BackOff", backoff);
            let error = "Error: ImagePullBackOff".to_owned();
            events.record(&self.pod, Some(name), true, "Failed", error);
        } else {
            record.waiting = Some(("ErrImagePull".to_owned(), message.to_owned()));
            let failed = format!("Failed to pull image {image:?}: {message}");
            events.record(&self.pod, Some(name), true, "Failed", failed);
            let error = "Error: ErrImagePull".to_owned();
            events.record(&self.pod, Some(name), true, "Failed", error);
        }
    }

    /// Creates and starts the next attempt of `container`, recording why when it cannot.
    async fn start(&mut self, container: &Container) {
        let (handler, runtime) = self.runtime.clone().expect("a runtime");
        let sandbox = self
            .sandbox
            .as_ref()
            .map(|s| s.id.clone())
            .expect("a sandbox");
        let name = container.name.clone();
        let fail = |worker: &mut Worker, reason: &str, message: String| {
            let record = worker.containers.entry(name.clone()).or_default();
            record.waiting = Some((reason.to_owned(), message.clone()));
            worker.node.events.record(
                &worker.pod,
                Some(&name),
                true,
                "Failed",
                format!("Error: {message}"),
            );
        };
        let env = match self.environment(container).await {
            Ok(env) => env,
            Err(message) => return fail(self, "CreateContainerConfigError", message),
        };
        let argv = env::argv(container, &env);
        if argv.is_empty() && handler == "host" {
            // The host runtime has no image to read an entrypoint from.
            return fail(
                self,
                "CreateContainerError",
                "no command specified".to_owned(),
            );
        }
        let mounts = match super::volumes::mounts(
            &self.node,
            &self.pod,
            container,
            &handler,
            &self.downward(),
        )
        .await
        {
            Ok(mounts) => mounts,
            Err(message) => {
                // As kubelet's volume manager: the pod waits in ContainerCreating.
                let record = self.containers.entry(name.clone()).or_default();
                record.waiting = Some(("ContainerCreating".to_owned(), message.clone()));
                self.node
                    .events
                    .record(&self.pod, None, true, "FailedMount", message);
                return;
            }
        };
        let (pod_name, namespace, uid) = self.identity();
        let record = self.containers.entry(name.clone()).or_default();
        let attempt = record.next_attempt;
        let log_dir = crate::server::logs::container_log_dir(
            &self.node.config.data_dir,
            &namespace,
            &pod_name,
            &uid,
            &name,
        );
        if handler != "hollow" {
            if let Err(e) = std::fs::create_dir_all(&log_dir) {
                return fail(
                    self,
                    "CreateContainerError",
                    format!("create container log directory for container {name} failed: {e}"),
                );
            }
        }
        let config = ContainerConfig {
            name: name.clone(),
            attempt,
            image: container.image.clone().unwrap_or_default(),
            argv,
            command_given: container.command.as_ref().is_some_and(|c| !c.is_empty()),
            working_dir: container.working_dir.as_ref().map(Into::into),
            env,
            mounts,
            limits: container_limits(container),
            log_path: log_dir.join(format!("{attempt}.log")),
            labels: labels::container(&self.pod, &name, attempt),
            stdio: keel_runtime::Stdio {
                stdin: container.stdin.unwrap_or(false),
                stdin_once: container.stdin_once.unwrap_or(false),
                tty: container.tty.unwrap_or(false),
            },
        };
        let id = match runtime.create_container(&sandbox, &config).await {
            Ok(id) => id,
            Err(RuntimeError::ImagePull { image, message }) => {
                return self.image_pull_failed(&name, &image, &message)
            }
            Err(e) => return fail(self, "CreateContainerError", e.to_string()),
        };
        if handler != "hollow" {
            self.node.events.record(
                &self.pod,
                Some(&name),
                false,
                "Pulled",
                format!(
                    "Container image {:?} already present on machine",
                    config.image
                ),
            );
        }
        let record = self.containers.entry(name.clone()).or_default();
        record.next_attempt = attempt + 1;
        record.waiting = None;
        record.started = Some(Instant::now());
        record.probes.clear();
        self.node.events.record(
            &self.pod,
            Some(&name),
            false,
            "Created",
            format!("Created container: {name}"),
        );
        match runtime.start_container(&id).await {
            Ok(()) => self.node.events.record(
                &self.pod,
                Some(&name),
                false,
                "Started",
                format!("Started container {name}"),
            ),
            Err(e) => self.node.events.record(
                &self.pod,
                Some(&name),
                true,
                "Failed",
                format!("Error: {e}"),
            ),
        }
        let status = runtime.container_status(&id).await.ok();
        let record = self.containers.entry(name).or_default();
        if let Some(status) = &status {
            if status.state == ContainerState::Created {
                record.waiting = Some((
                    "RunContainerError".to_owned(),
                    "the container did not start".to_owned(),
                ));
            }
        }
        record.current = status;
    }

    /// The container's environment, with the ConfigMaps and Secrets it names fetched.
    async fn environment(&self, container: &Container) -> Result<Vec<(String, String)>, String> {
        let (config_maps, secrets) = env::referenced(container);
        let namespace = self.pod.namespace().unwrap_or_else(|| "default".to_owned());
        let mut fetched = env::Fetched::default();
        let api_error = |e: kube::Error| e.to_string();
        for name in config_maps {
            let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
                Api::namespaced(self.node.client.clone(), &namespace);
            if let Some(cm) = api.get_opt(&name).await.map_err(api_error)? {
                fetched.config_maps.insert(name, cm);
            }
        }
        for name in secrets {
            let api: Api<k8s_openapi::api::core::v1::Secret> =
                Api::namespaced(self.node.client.clone(), &namespace);
            if let Some(secret) = api.get_opt(&name).await.map_err(api_error)? {
                fetched.secrets.insert(name, secret);
            }
        }
        env::resolve(&self.pod, container, &fetched, &self.downward())
    }

    fn downward(&self) -> env::Downward {
        env::Downward {
            pod_ip: self.pod_ip(),
            host_ip: self.node.config.address.to_string(),
            node_cpu_millis: self.node.allocatable_cpu_millis,
            node_memory_bytes: self.node.allocatable_memory_bytes,
        }
    }

    fn pod_ip(&self) -> String {
        match self.sandbox.as_ref().and_then(|s| s.ip) {
            Some(ip) => ip.to_string(),
            None if self.sandbox.is_some() => self.node.config.address.to_string(),
            None => String::new(),
        }
    }

    async fn choose_runtime(&self) -> Result<(String, Arc<dyn DynRuntime>), String> {
        let handler = match self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.runtime_class_name.clone())
        {
            None => self.node.config.default_runtime.clone(),
            Some(class) => {
                self.node
                    .runtime_classes
                    .handler(&self.node.client, &class)
                    .await?
            }
        };
        match self.node.runtimes.get(&handler) {
            Some(runtime) => Ok((handler, runtime.clone())),
            None => Err(format!("no runtime for {handler:?} is configured")),
        }
    }

    fn sandbox_failed(&mut self, message: String) {
        if self.sandbox_error.as_deref() != Some(message.as_str()) {
            self.node.events.record(
                &self.pod,
                None,
                true,
                "FailedCreatePodSandBox",
                format!("Failed to create pod sandbox: {message}"),
            );
        }
        self.sandbox_error = Some(message);
    }

    async fn make_sandbox(&mut self) -> Result<(), String> {
        let (_, runtime) = self.runtime.clone().expect("a runtime");
        if let Some(old) = self.sandbox.take() {
            // A sandbox that stopped under a live pod is replaced, its containers with it, as
            // kubelet does when a sandbox dies.
            let _ = runtime.remove_sandbox(&old.id).await;
            for record in self.containers.values_mut() {
                if let Some(current) = record.current.take() {
                    record.last_terminated = terminated(&current, runtime.name());
                }
            }
        }
        let spec = self.pod.spec.clone().unwrap_or_default();
        let (pod_name, namespace, uid) = self.identity();
        let host_network = spec.host_network == Some(true);
        let config = SandboxConfig {
            pod_uid: uid,
            namespace,
            name: pod_name.clone(),
            hostname: if host_network {
                String::new()
            } else {
                spec.hostname.clone().unwrap_or(pod_name)
            },
            host_network,
            resolv_conf: super::dns::resolv_conf(&self.pod, &self.node.config.cluster_dns, || {
                std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
            }),
            limits: pod_limits(&spec.containers),
            labels: labels::sandbox(&self.pod),
        };
        let sandbox = runtime
            .run_sandbox(&config)
            .await
            .map_err(|e| e.to_string())?;
        self.sandbox = Some(SandboxRecord {
            id: sandbox.id,
            ip: sandbox.ip,
            ready: true,
        });
        self.sandbox_error = None;
        Ok(())
    }

    /// Reads every current container's state from the runtime.
    async fn refresh(&mut self) {
        let names: Vec<String> = self.containers.keys().cloned().collect();
        for name in names {
            self.refresh_one(&name).await;
        }
    }

    async fn refresh_one(&mut self, name: &str) {
        let Some((_, runtime)) = self.runtime.clone() else {
            return;
        };
        let Some(record) = self.containers.get_mut(name) else {
            return;
        };
        let Some(current) = &record.current else {
            return;
        };
        match runtime.container_status(&current.id).await {
            Ok(status) => {
                if matches!(status.state, ContainerState::Running { .. }) {
                    record.waiting = None;
                }
                record.current = Some(status);
            }
            Err(keel_runtime::RuntimeError::NotFound(_)) => {
                // Removed behind the agent's back: it ends as killed, and starts again.
                let runtime_name = runtime.name().to_owned();
                let gone = current.clone();
                record.last_terminated = terminated(&gone, &runtime_name);
                record.current = None;
            }
            Err(e) => tracing::warn!("container status of {name}: {e}"),
        }
    }
}

/// A container's limits in the runtime's units.
fn container_limits(container: &Container) -> Limits {
    let resources = container.resources.as_ref();
    let limit = |name: &str| {
        resources
            .and_then(|r| r.limits.as_ref()?.get(name))
            .map(|q| q.0.clone())
    };
    let request = |name: &str| {
        resources
            .and_then(|r| r.requests.as_ref()?.get(name))
            .map(|q| q.0.clone())
    };
    Limits {
        memory_bytes: limit("memory").and_then(|q| crate::quantity::bytes(&q)),
        cpu_millis: limit("cpu").and_then(|q| crate::quantity::millis(&q)),
        cpu_request_millis: request("cpu")
            .or_else(|| limit("cpu"))
            .and_then(|q| crate::quantity::millis(&q)),
        pids: None,
    }
}

/// The pod-level limits: the sum of its containers', when every container sets one.
fn pod_limits(containers: &[Container]) -> Limits {
    let each: Vec<Limits> = containers.iter().map(container_limits).collect();
    let sum = |get: fn(&Limits) -> Option<u64>| each.iter().map(get).sum::<Option<u64>>();
    Limits {
        memory_bytes: sum(|l| l.memory_bytes),
        cpu_millis: sum(|l| l.cpu_millis),
        cpu_request_millis: Some(each.iter().filter_map(|l| l.cpu_request_millis).sum()),
        pids: None,
    }
}
