//! The scheduler while it leads: informers on nodes and pods feed the cache and the queue;
//! one loop takes pods from the queue and decides (synchronously, against the cache), then
//! binds in the background — the cache already counts the pod as *assumed* on its node, so
//! the next decision does not wait for the binding.
//!
//! Pod events, as kube-scheduler's handlers sort them: a bound pod is counted on its node
//! (confirming an assumption); an unbound pod for this scheduler is queued; a pod leaving a
//! node, or a node added or changed, moves the unschedulable pods that would fit there now.

use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cache::Cache;
use crate::config::SchedulerConfig;
use crate::disruption::Budget;
use crate::events::EventRecorder;
use crate::framework::{FitError, Framework, PodInfo, Unschedulable};
use crate::informers::{self, Change};
use crate::plugins::default_preemption::Candidate;
use crate::queue::{Place, QueuedPod, SchedulingQueue};
use crate::{binder, preemption, status};

/// How many bindings (with their events) the scheduler has in flight at once.
pub const MAX_BINDINGS_IN_FLIGHT: usize = 64;

/// The pods the scheduler watches: all but finished ones, which hold no resources.
pub const POD_FIELD_SELECTOR: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// The cache and the queue, changed together under one lock.
struct State {
    cache: Cache,
    queue: SchedulingQueue,
    /// Where the next filter pass starts (`nextStartNodeIndex`).
    next_start: usize,
    nodes_synced: bool,
    pods_synced: bool,
}

/// One leadership term's scheduler.
pub struct Scheduler {
    client: kube::Client,
    config: SchedulerConfig,
    framework: Framework,
    state: Mutex<State>,
    /// Rung when a pod may have become ready to try.
    wake: Notify,
    /// Bindings in flight at most: the binding cycles wait their turn rather than flood the
    /// API server past its in-flight limit (where they would fail with 429 and back off).
    binding_slots: tokio::sync::Semaphore,
    events: EventRecorder,
}

/// Whether the pod's status names a nominated node.
fn nominated_in_status(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Whether the node changed in a way that can change where pods fit (not a heartbeat).
fn node_changed(old: &Node, new: &Node) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.status.as_ref().and_then(|s| s.allocatable.as_ref())
            != new.status.as_ref().and_then(|s| s.allocatable.as_ref())
}

impl Scheduler {
    /// A scheduler with empty cache and queue.
    pub fn new(client: kube::Client, config: SchedulerConfig) -> Scheduler {
        Scheduler {
            framework: Framework::new(&config.weights),
            state: Mutex::new(State {
                cache: Cache::default(),
                queue: SchedulingQueue::new(config.initial_backoff, config.max_backoff),
                next_start: 0,
                nodes_synced: false,
                pods_synced: false,
            }),
            wake: Notify::new(),
            binding_slots: tokio::sync::Semaphore::new(MAX_BINDINGS_IN_FLIGHT),
            events: EventRecorder::new(client.clone(), &config.scheduler_name, &config.identity),
            client,
            config,
        }
    }

    // A panic elsewhere must not stop scheduling: the state is consistent between calls.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn responsible_for(&self, pod: &PodInfo) -> bool {
        let name = pod
            .spec()
            .scheduler_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(crate::config::DEFAULT_SCHEDULER_NAME);
        name == self.config.scheduler_name
    }

    /// Schedules until dropped: runs the informers and the scheduling loop.
    pub async fn run(self: Arc<Self>) {
        let pods = informers::inform(
            Api::<Pod>::all(self.client.clone()),
            watcher::Config::default().fields(POD_FIELD_SELECTOR),
            |change| self.on_pod(change),
        );
        let nodes = informers::inform(
            Api::<Node>::all(self.client.clone()),
            watcher::Config::default(),
            |change| self.on_node(change),
        );
        let budgets = informers::inform(
            Api::<PodDisruptionBudget>::all(self.client.clone()),
            watcher::Config::default(),
            |change| self.on_budget(change),
        );
        tokio::select! {
            () = pods => {}
            () = nodes => {}
            () = budgets => {}
            () = self.schedule_loop() => {}
        }
    }

    /// A pod was added, changed or deleted.
    fn on_pod(&self, change: Change<Pod>) {
        let now = Instant::now();
        let mut state = self.lock();
        let wake = match change {
            Change::Synced => {
                state.pods_synced = true;
                true
            }
            Change::Applied { old, new } => {
                let info = Arc::new(PodInfo::new(new));
                if info.node_name().is_some() {
                    state.queue.delete(&info.uid);
                    state.cache.nominated.remove(&info.uid);
                    state.cache.add_pod(info);
                    false
                } else if !self.responsible_for(&info) || state.cache.is_assumed(&info.uid) {
                    // Another scheduler's pod; or ours with its binding in flight.
                    false
                } else {
                    state
                        .cache
                        .nominated
                        .update(old.as_deref(), Arc::clone(&info));
                    state.queue.add(info, now)
                }
            }
            Change::Deleted(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                state.queue.delete(&uid);
                state.cache.nominated.remove(&uid);
                self.events.forget(&uid);
                match state.cache.remove_pod(&uid) {
                    // A pod left its node: pods that fit there now may go.
                    Some(node) => {
                        let State { cache, queue, .. } = &mut *state;
                        cache.node(&node).is_some_and(|node| {
                            queue.move_all(|p| self.framework.fits(p, node), now)
                        })
                    }
                    None => false,
                }
            }
        };
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }

    /// A PodDisruptionBudget was added, changed or deleted.
    fn on_budget(&self, change: Change<PodDisruptionBudget>) {
        let key = |pdb: &PodDisruptionBudget| {
            format!(
                "{}/{}",
                pdb.metadata.namespace.as_deref().unwrap_or(""),
                pdb.metadata.name.as_deref().unwrap_or("")
            )
        };
        let mut state = self.lock();
        match change {
            Change::Applied { new, .. } => {
                state.cache.set_budget(&key(&new), Some(Budget::of(&new)))
            }
            Change::Deleted(old) => state.cache.set_budget(&key(&old), None),
            Change::Synced => {}
        }
    }

    /// A node was added, changed or deleted.
    fn on_node(&self, change: Change<Node>) {
        let now = Instant::now();
        let mut state = self.lock();
        let wake = match change {
            Change::Synced => {
                state.nodes_synced = true;
                true
            }
            Change::Applied { old, new } => {
                let name = new.metadata.name.clone().unwrap_or_default();
                let relevant = old.as_ref().is_none_or(|old| node_changed(old, &new));
                state.cache.add_node(new);
                let State { cache, queue, .. } = &mut *state;
                relevant
                    && cache
                        .node(&name)
                        .is_some_and(|node| queue.move_all(|p| self.framework.fits(p, node), now))
            }
            Change::Deleted(node) => {
                state
                    .cache
                    .remove_node(node.metadata.name.as_deref().unwrap_or(""));
                false
            }
        };
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Takes pods from the queue, one decision at a time, once both informers have synced.
    async fn schedule_loop(self: &Arc<Self>) {
        let mut tasks = JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let (next, wake_at) = {
                let mut state = self.lock();
                if state.nodes_synced && state.pods_synced {
                    (state.queue.pop(Instant::now()), state.queue.next_wake())
                } else {
                    (None, None)
                }
            };
            let Some(pod) = next else {
                let woken = self.wake.notified();
                match wake_at {
                    Some(at) => {
                        tokio::select! {
                            () = woken => {}
                            () = tokio::time::sleep_until(at) => {}
                        }
                    }
                    None => woken.await,
                }
                continue;
            };
            self.schedule_one(pod, &mut tasks).await;
        }
    }

    /// One scheduling cycle: decide, assume and bind in the background, or report why not.
    ///
    /// A failure is reported (event, condition) before the pod goes back to the queue, as
    /// kube-scheduler's failure handler does, so a `PodScheduled=False` write can never land
    /// after a later attempt's binding.
    async fn schedule_one(self: &Arc<Self>, queued: QueuedPod, tasks: &mut JoinSet<()>) {
        let pod = Arc::clone(&queued.info);
        let decision = {
            let mut state = self.lock();
            if pod.pod.metadata.deletion_timestamp.is_some() {
                state.queue.done(&pod.uid);
                None
            } else if state.cache.is_assumed(&pod.uid) {
                state.queue.done(&pod.uid);
                return;
            } else {
                let State {
                    cache, next_start, ..
                } = &mut *state;
                let decision = self.framework.schedule(&pod, cache, next_start);
                match &decision {
                    Ok(result) => {
                        state.cache.nominated.remove(&pod.uid);
                        state.cache.assume(Arc::clone(&pod), &result.node);
                    }
                    Err(Unschedulable::Fit(FitError {
                        preemption: Some(candidate),
                        ..
                    })) => {
                        // Held at once: the next pods must not take the room being made.
                        state
                            .cache
                            .nominated
                            .nominate(Arc::clone(&pod), &candidate.node);
                    }
                    Err(_) => {
                        state.cache.nominated.remove(&pod.uid);
                    }
                }
                Some(decision)
            }
        };
        match decision {
            None => {
                let message = format!("skip schedule deleting pod: {}", pod.key());
                self.report_event(
                    &pod.pod,
                    "Warning",
                    "FailedScheduling",
                    "Scheduling",
                    &message,
                )
                .await;
            }
            Some(Ok(result)) => {
                tracing::debug!(pod = %pod.key(), node = %result.node, evaluated = result.evaluated, feasible = result.feasible, "assumed pod on node");
                let this = Arc::clone(self);
                tasks.spawn(async move { this.bind(queued, result.node).await });
            }
            Some(Err(unschedulable)) => {
                let message = unschedulable.to_string();
                tracing::info!(pod = %pod.key(), %message, "unable to schedule pod; waiting");
                let latest = self.latest(&pod);
                match &unschedulable {
                    Unschedulable::Fit(FitError {
                        preemption: Some(candidate),
                        ..
                    }) => self.preempt(&pod, candidate).await,
                    _ if nominated_in_status(&latest) => {
                        if let Err(error) =
                            preemption::set_nominated_node(&self.client, &pod, None).await
                        {
                            tracing::debug!(%error, "could not clear the nominated node");
                        }
                    }
                    _ => {}
                }
                self.report_failure(&latest, status::REASON_UNSCHEDULABLE, &message)
                    .await;
                self.lock()
                    .queue
                    .requeue_unschedulable(&pod.uid, Instant::now());
            }
        }
    }

    /// Evicts `candidate`'s victims for `pod`, nominates `pod` to the node, and takes the
    /// nomination from lower-priority pods nominated there.
    async fn preempt(&self, pod: &PodInfo, candidate: &Candidate) {
        tracing::info!(pod = %pod.key(), node = %candidate.node, victims = candidate.victims.len(), pdb_violations = candidate.pdb_violations, "preempting");
        let displaced: Vec<Arc<PodInfo>> = {
            let mut state = self.lock();
            let lower: Vec<Arc<PodInfo>> = state
                .cache
                .nominated
                .on(&candidate.node)
                .iter()
                .filter(|p| p.priority < pod.priority)
                .cloned()
                .collect();
            for other in &lower {
                state.cache.nominated.remove(&other.uid);
            }
            lower
        };
        for victim in &candidate.victims {
            if let Err(error) = preemption::evict(
                &self.client,
                &self.events,
                &self.config.scheduler_name,
                pod,
                &candidate.node,
                victim,
            )
            .await
            {
                tracing::warn!(%error, "preemption failed");
            }
        }
        let nominations = std::iter::once((pod, Some(candidate.node.as_str())))
            .chain(displaced.iter().map(|p| (&**p, None)));
        for (nominee, node) in nominations {
            if let Err(error) = preemption::set_nominated_node(&self.client, nominee, node).await {
                tracing::debug!(%error, "could not write the nominated node");
            }
        }
    }

    /// The pod as the informer last showed it (the queue keeps it up to date).
    fn latest(&self, pod: &PodInfo) -> Arc<Pod> {
        self.lock()
            .queue
            .get(&pod.uid)
            .map_or_else(|| Arc::clone(&pod.pod), |q| Arc::clone(&q.info.pod))
    }

    /// The binding cycle: bind, then confirm; or forget the assumption and back off.
    async fn bind(self: Arc<Self>, queued: QueuedPod, node: String) {
        let _slot = self.binding_slots.acquire().await;
        let pod = &queued.info;
        match binder::bind(&self.client, pod, &node).await {
            Ok(()) => {
                self.lock().queue.done(&pod.uid);
                self.events.forget(&pod.uid);
                tracing::debug!(pod = %pod.key(), %node, "bound pod to node");
                let message = format!("Successfully assigned {} to {node}", pod.key());
                self.report_event(&pod.pod, "Normal", "Scheduled", "Binding", &message)
                    .await;
            }
            Err(error) => {
                tracing::warn!(pod = %pod.key(), %node, %error, "binding failed");
                let waiting = {
                    let mut state = self.lock();
                    let State { cache, queue, .. } = &mut *state;
                    // The assumption held resources on the node: that is a pod leaving it.
                    if let Some(freed) = cache.forget(&pod.uid) {
                        if let Some(freed) = cache.node(&freed) {
                            queue.move_all(
                                |p| p.uid != pod.uid && self.framework.fits(p, freed),
                                Instant::now(),
                            );
                        }
                    }
                    // Still waiting: not deleted, not bound by someone else meanwhile.
                    matches!(
                        queue.place(&pod.uid),
                        Some(Place::InFlight { deleted: false, .. })
                    )
                };
                self.wake.notify_one();
                if waiting {
                    let latest = self.latest(pod);
                    self.report_failure(
                        &latest,
                        status::REASON_SCHEDULER_ERROR,
                        &error.to_string(),
                    )
                    .await;
                }
                self.lock()
                    .queue
                    .requeue_after_error(&pod.uid, Instant::now());
                self.wake.notify_one();
            }
        }
    }

    /// The `FailedScheduling` event and the `PodScheduled=False` condition.
    async fn report_failure(&self, pod: &Pod, reason: &str, message: &str) {
        self.report_event(pod, "Warning", "FailedScheduling", "Scheduling", message)
            .await;
        if let Err(error) = status::mark_unschedulable(&self.client, pod, reason, message).await {
            tracing::debug!(%error, "could not update the pod's condition");
        }
    }

    async fn report_event(
        &self,
        pod: &Pod,
        type_: &str,
        reason: &str,
        action: &str,
        message: &str,
    ) {
        if let Err(error) = self
            .events
            .record(pod, type_, reason, action, message)
            .await
        {
            tracing::debug!(%error, "could not record an event");
        }
    }
}
