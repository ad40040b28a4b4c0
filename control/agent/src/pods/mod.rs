//! The pods of one node: a manager that hands each pod's changes to the pod's own worker
//! (one task per pod, so a pod is synced by one task at a time), adopts what the runtimes
//! already run when the agent starts, and kills what runs for pods that no longer exist.
//!
//! ```text
//! shared pod watch (source.rs) ──PodEvent──> Manager ──Message──> Worker (one per pod uid)
//! runtime.subscribe() ──container id──> Manager ──Wake──────────┘
//! ```
//!
//! Layout: `worker/` (one pod's sync; `report.rs` its status, `stopping.rs` probes and
//! deletion), `status.rs` (phase and conditions, pure),
//! `env.rs` (environment and `$(VAR)`), `dns.rs` (resolv.conf from dnsPolicy), `volumes.rs`, `hooks.rs` (preStop), `backoff.rs`
//! (CrashLoopBackOff), `labels.rs` (what the runtime keeps for adoption).

pub mod backoff;
pub mod dns;
pub mod env;
pub mod hooks;
pub mod labels;
pub mod probes;
pub mod status;
pub mod volumes;
pub mod worker;
#[cfg(test)]
mod worker_tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::node::v1::RuntimeClass;
use keel_runtime::ContainerId;
use kube::api::Api;
use kube::ResourceExt as _;
use tokio::sync::mpsc;

use crate::config::NodeConfig;
use crate::events::Recorder;
use crate::runtimes::Runtimes;
use worker::{Adopted, Message, Worker};

/// What a node's workers share.
pub struct NodeContext {
    /// The API.
    pub client: kube::Client,
    /// The node's settings.
    pub config: NodeConfig,
    /// Its runtimes.
    pub runtimes: Runtimes,
    /// Its event recorder.
    pub events: Recorder,
    /// Allocatable CPU (the downward API's default `limits.cpu`).
    pub allocatable_cpu_millis: u64,
    /// Allocatable memory (the downward API's default `limits.memory`).
    pub allocatable_memory_bytes: u64,
    /// RuntimeClass handlers.
    pub runtime_classes: RuntimeClasses,
}

/// RuntimeClass name → handler, read from the API once per class (shared by the nodes of a
/// hollow agent).
#[derive(Clone, Default)]
pub struct RuntimeClasses(Arc<Mutex<HashMap<String, String>>>);

impl RuntimeClasses {
    /// The handler of RuntimeClass `name`, or kubelet's error when there is none.
    pub async fn handler(&self, client: &kube::Client, name: &str) -> Result<String, String> {
        if let Some(handler) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(handler.clone());
        }
        let classes: Api<RuntimeClass> = Api::all(client.clone());
        match classes.get_opt(name).await {
            Ok(Some(class)) => {
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.to_owned(), class.handler.clone());
                Ok(class.handler)
            }
            Ok(None) => Err(format!(
                "RuntimeHandler not found: RuntimeClass {name:?} not found"
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A change to the pods bound to a node, from the shared watch.
#[derive(Debug, Clone)]
pub enum PodEvent {
    /// The pod was created or changed.
    Apply(Arc<Pod>),
    /// The pod is gone from the API.
    Delete(Arc<Pod>),
    /// The watch starts a full relist: what follows until [`PodEvent::RelistDone`] is
    /// every pod there is.
    Relist,
    /// The relist is complete: pods not in it are gone.
    RelistDone,
}

struct WorkerHandle {
    messages: mpsc::UnboundedSender<Message>,
    /// Tells this worker's end from a later worker's of the same pod.
    generation: u64,
}

/// The pods of one node.
pub struct Manager {
    node: Arc<NodeContext>,
    workers: HashMap<String, WorkerHandle>,
    /// What the runtimes ran when the agent started, by pod uid, until a worker takes it.
    adopted: HashMap<String, Adopted>,
    /// Pods seen during a relist.
    relisting: Option<HashSet<String>>,
    done_tx: mpsc::UnboundedSender<(String, u64)>,
    done_rx: mpsc::UnboundedReceiver<(String, u64)>,
    generation: u64,
}

impl Manager {
    /// A manager for `node`, with what its runtimes already run.
    pub async fn new(node: Arc<NodeContext>) -> Manager {
        let mut adopted: HashMap<String, Adopted> = HashMap::new();
        for (handler, runtime) in node.runtimes.iter() {
            let (sandboxes, containers) = match (
                runtime.list_sandboxes().await,
                runtime.list_containers().await,
            ) {
                (Ok(s), Ok(c)) => (s, c),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(runtime = handler, "listing what the runtime runs: {e}");
                    continue;
                }
            };
            for sandbox in sandboxes {
                let Some(uid) = sandbox.config.labels.get(labels::POD_UID).cloned() else {
                    continue;
                };
                let own: Vec<_> = containers
                    .iter()
                    .filter(|c| c.sandbox == sandbox.id)
                    .cloned()
                    .collect();
                // A pod has one live sandbox; a stopped one left over loses to it.
                let keep = adopted
                    .get(&uid)
                    .is_none_or(|a| !a.sandbox.ready && sandbox.ready);
                if keep {
                    adopted.insert(
                        uid,
                        Adopted {
                            handler: handler.to_owned(),
                            sandbox,
                            containers: own,
                        },
                    );
                }
            }
        }
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Manager {
            node,
            workers: HashMap::new(),
            adopted,
            relisting: None,
            done_tx,
            done_rx,
            generation: 0,
        }
    }

    /// Runs until `events` closes (the agent stops; pods keep running).
    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<PodEvent>) {
        let (changed_tx, mut changed) = mpsc::unbounded_channel::<(String, ContainerId)>();
        let mut forwarders = Vec::new();
        for (handler, runtime) in self.node.runtimes.iter() {
            let mut receiver = runtime.subscribe();
            let changed_tx = changed_tx.clone();
            let handler = handler.to_owned();
            forwarders.push(tokio::spawn(async move {
                loop {
                    match receiver.recv().await {
                        Ok(id) => {
                            if changed_tx.send((handler.clone(), id)).is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    }
                }
            }));
        }
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.handle(event).await,
                    None => break,
                },
                Some((handler, id)) = changed.recv() => self.wake_owner(&handler, &id).await,
                Some((uid, generation)) = self.done_rx.recv() => {
                    if self.workers.get(&uid).is_some_and(|w| w.generation == generation) {
                        self.workers.remove(&uid);
                    }
                }
            }
        }
        for forwarder in forwarders {
            forwarder.abort();
        }
    }

    async fn handle(&mut self, event: PodEvent) {
        match event {
            PodEvent::Apply(pod) => {
                let uid = pod.uid().unwrap_or_default();
                if let Some(seen) = &mut self.relisting {
                    seen.insert(uid.clone());
                }
                match self.workers.get(&uid) {
                    Some(worker) if !worker.messages.is_closed() => {
                        let _ = worker.messages.send(Message::Update(pod));
                    }
                    // Workers end only once their pod is deleted; one seen again (a deletion
                    // still to confirm) gets a new worker.
                    _ => self.spawn(uid, pod),
                }
            }
            PodEvent::Delete(pod) => {
                let uid = pod.uid().unwrap_or_default();
                match self.workers.get(&uid) {
                    Some(worker) => {
                        let _ = worker.messages.send(Message::Gone);
                    }
                    None => self.kill_adopted(&uid).await,
                }
            }
            PodEvent::Relist => self.relisting = Some(HashSet::new()),
            PodEvent::RelistDone => {
                let Some(seen) = self.relisting.take() else {
                    return;
                };
                let vanished: Vec<String> = self
                    .workers
                    .keys()
                    .filter(|uid| !seen.contains(*uid))
                    .cloned()
                    .collect();
                for uid in vanished {
                    if let Some(worker) = self.workers.get(&uid) {
                        let _ = worker.messages.send(Message::Gone);
                    }
                }
                // What the runtimes ran for pods that no longer exist is killed.
                let orphans: Vec<String> = self
                    .adopted
                    .keys()
                    .filter(|uid| !seen.contains(*uid))
                    .cloned()
                    .collect();
                for uid in orphans {
                    self.kill_adopted(&uid).await;
                }
            }
        }
    }

    fn spawn(&mut self, uid: String, pod: Arc<Pod>) {
        let adopted = self.adopted.remove(&uid);
        let (messages, receiver) = mpsc::unbounded_channel();
        let worker = Worker::new(self.node.clone(), pod, adopted);
        self.generation += 1;
        let generation = self.generation;
        let done = self.done_tx.clone();
        let ended = uid.clone();
        tokio::spawn(async move {
            worker.run(receiver).await;
            let _ = done.send((ended, generation));
        });
        self.workers.insert(
            uid,
            WorkerHandle {
                messages,
                generation,
            },
        );
    }

    async fn kill_adopted(&mut self, uid: &str) {
        let Some(adopted) = self.adopted.remove(uid) else {
            return;
        };
        let Some(runtime) = self.node.runtimes.get(&adopted.handler) else {
            return;
        };
        tracing::info!(
            pod_uid = uid,
            "killing the containers of a pod that no longer exists"
        );
        if let Err(e) = runtime.stop_sandbox(&adopted.sandbox.id).await {
            tracing::warn!("stopping an orphaned sandbox: {e}");
        }
        if let Err(e) = runtime.remove_sandbox(&adopted.sandbox.id).await {
            tracing::warn!("removing an orphaned sandbox: {e}");
        }
    }

    async fn wake_owner(&mut self, handler: &str, id: &ContainerId) {
        let Some(runtime) = self.node.runtimes.get(handler) else {
            return;
        };
        let Ok(status) = runtime.container_status(id).await else {
            return;
        };
        if let Some(uid) = status.labels.get(labels::POD_UID) {
            if let Some(worker) = self.workers.get(uid) {
                let _ = worker.messages.send(Message::Wake);
            }
        }
    }
}
