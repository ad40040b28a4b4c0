//! The scheduler while it leads: informers on nodes and pods feed the cache and the queue;
//! one loop takes pods from the queue and decides (synchronously, against the cache), then
//! binds in the background — the cache already counts the pod as *assumed* on its node, so
//! the next decision does not wait for the binding.
//!
//! Pod events, as kube-scheduler's handlers sort them: a bound pod is counted on its node
//! (confirming an assumption); an unbound pod for this scheduler is queued; a pod leaving a
//! node, or a node added or changed, moves the unschedulable pods that would fit there now.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cache::{Cache, ControllerKind};
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
    /// The profiles, by the scheduler name they serve.
    profiles: BTreeMap<String, Profiled>,
    state: Mutex<State>,
    /// Rung when a pod may have become ready to try.
    wake: Notify,
    /// Bindings in flight at most: the binding cycles wait their turn rather than flood the
    /// API server past its in-flight limit (where they would fail with 429 and back off).
    binding_slots: tokio::sync::Semaphore,
}

/// One profile's plugins and the recorder of its events (reported by its scheduler name).
struct Profiled {
    framework: Framework,
    events: EventRecorder,
}

/// The pod's `spec.schedulerName`, `default-scheduler` when unset.
fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or(crate::config::DEFAULT_SCHEDULER_NAME)
}

/// Whether the pod waits for other pods (required pod affinity terms).
fn has_required_pod_affinity(pod: &PodInfo) -> bool {
    pod.spec()
        .affinity
        .as_ref()
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|terms| !terms.is_empty())
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
            profiles: config
                .profiles()
                .into_iter()
                .map(|profile| {
                    let name = profile.scheduler_name.clone();
                    let profiled = Profiled {
                        framework: Framework::from_profile(&profile),
                        events: EventRecorder::new(client.clone(), &name, &config.identity),
                    };
                    (name, profiled)
                })
                .collect(),
            state: Mutex::new(State {
                cache: Cache::default(),
                queue: SchedulingQueue::new(config.initial_backoff, config.max_backoff),
                next_start: 0,
                nodes_synced: false,
                pods_synced: false,
            }),
            wake: Notify::new(),
            binding_slots: tokio::sync::Semaphore::new(MAX_BINDINGS_IN_FLIGHT),
            client,
        }
    }

    // A panic elsewhere must not stop scheduling: the state is consistent between calls.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The profile for the pod's `spec.schedulerName`, if this scheduler serves it.
    fn profile_for(&self, pod: &PodInfo) -> Option<&Profiled> {
        self.profiles.get(scheduler_name(&pod.pod))
    }

    fn responsible_for(&self, pod: &PodInfo) -> bool {
        self.profile_for(pod).is_some()
    }

    /// Whether `pod` would fit `node` as it is now, by its profile's filters.
    fn fits(&self, pod: &PodInfo, node: &crate::cache::NodeInfo) -> bool {
        self.profile_for(pod)
            .is_some_and(|p| p.framework.fits(pod, node))
    }

    fn forget_events(&self, uid: &str) {
        for profile in self.profiles.values() {
            profile.events.forget(uid);
        }
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
            () = self.inform_cluster_objects() => {}
            () = budgets => {}
            () = self.schedule_loop() => {}
        }
    }

    /// Watches what plugins read besides nodes and pods: namespace labels (pod affinity's
    /// `namespaceSelector`), Service, ReplicationController, ReplicaSet and StatefulSet
    /// selectors (PodTopologySpread's default constraints).
    async fn inform_cluster_objects(&self) {
        use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
        use k8s_openapi::api::core::v1::{Namespace, ReplicationController, Service};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
        let key = |meta: &kube::api::ObjectMeta| {
            (
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            )
        };
        let namespaces = informers::inform(
            Api::<Namespace>::all(self.client.clone()),
            watcher::Config::default(),
            |change| match change {
                Change::Applied { new, .. } => self.lock().cache.set_namespace(
                    new.metadata.name.as_deref().unwrap_or(""),
                    new.metadata.labels.clone().unwrap_or_default(),
                ),
                Change::Deleted(old) => self
                    .lock()
                    .cache
                    .remove_namespace(old.metadata.name.as_deref().unwrap_or("")),
                Change::Synced => {}
            },
        );
        let services = informers::inform(
            Api::<Service>::all(self.client.clone()),
            watcher::Config::default(),
            |change| {
                let (object, selector) = match change {
                    Change::Applied { new, .. } => {
                        let selector = new.spec.as_ref().and_then(|s| s.selector.clone());
                        (new, selector)
                    }
                    Change::Deleted(old) => (old, None),
                    Change::Synced => return,
                };
                let (namespace, name) = key(&object.metadata);
                self.lock().cache.set_service(&namespace, &name, selector);
            },
        );
        // One handler per controller kind: its selector as a LabelSelector.
        let controller = |kind: ControllerKind| {
            move |meta: &kube::api::ObjectMeta, selector: Option<LabelSelector>| {
                let (namespace, name) = key(meta);
                self.lock()
                    .cache
                    .set_controller(kind, &namespace, &name, selector);
            }
        };
        let rc = controller(ControllerKind::ReplicationController);
        let controllers = informers::inform(
            Api::<ReplicationController>::all(self.client.clone()),
            watcher::Config::default(),
            |change| match change {
                Change::Applied { new, .. } => rc(
                    &new.metadata,
                    new.spec
                        .as_ref()
                        .and_then(|s| s.selector.clone())
                        .map(|labels| LabelSelector {
                            match_labels: Some(labels),
                            match_expressions: None,
                        }),
                ),
                Change::Deleted(old) => rc(&old.metadata, None),
                Change::Synced => {}
            },
        );
        let rs = controller(ControllerKind::ReplicaSet);
        let replica_sets = informers::inform(
            Api::<ReplicaSet>::all(self.client.clone()),
            watcher::Config::default(),
            |change| match change {
                Change::Applied { new, .. } => {
                    rs(&new.metadata, new.spec.as_ref().map(|s| s.selector.clone()))
                }
                Change::Deleted(old) => rs(&old.metadata, None),
                Change::Synced => {}
            },
        );
        let sts = controller(ControllerKind::StatefulSet);
        let stateful_sets = informers::inform(
            Api::<StatefulSet>::all(self.client.clone()),
            watcher::Config::default(),
            |change| match change {
                Change::Applied { new, .. } => {
                    sts(&new.metadata, new.spec.as_ref().map(|s| s.selector.clone()))
                }
                Change::Deleted(old) => sts(&old.metadata, None),
                Change::Synced => {}
            },
        );
        futures::join!(
            namespaces,
            services,
            controllers,
            replica_sets,
            stateful_sets
        );
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
                    let confirmed = state.cache.is_assumed(&info.uid);
                    let node = info.node_name().map(str::to_owned);
                    state.cache.nominated.remove(&info.uid);
                    state.cache.add_pod(info);
                    // A new pod on a node may be what a waiting pod's affinity needs.
                    let State { cache, queue, .. } = &mut *state;
                    !confirmed
                        && node.and_then(|n| cache.node(&n)).is_some_and(|node| {
                            queue.move_all(
                                |p| has_required_pod_affinity(p) && self.fits(p, node),
                                now,
                            )
                        })
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
                self.forget_events(&uid);
                match state.cache.remove_pod(&uid) {
                    // A pod left its node: pods that fit there now may go.
                    Some(node) => {
                        let State { cache, queue, .. } = &mut *state;
                        cache
                            .node(&node)
                            .is_some_and(|node| queue.move_all(|p| self.fits(p, node), now))
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
                        .is_some_and(|node| queue.move_all(|p| self.fits(p, node), now))
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
                let Some(profile) = self.profile_for(&pod) else {
                    state.queue.done(&pod.uid);
                    return;
                };
                let decision = profile.framework.schedule(&pod, cache, next_start);
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
                );
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
        let Some((scheduler_name, profile)) = self.profiles.get_key_value(scheduler_name(&pod.pod))
        else {
            return;
        };
        for victim in &candidate.victims {
            if let Err(error) = preemption::evict(
                &self.client,
                &profile.events,
                scheduler_name,
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
                tracing::debug!(pod = %pod.key(), %node, "bound pod to node");
                let message = format!("Successfully assigned {} to {node}", pod.key());
                self.report_event(&pod.pod, "Normal", "Scheduled", "Binding", &message);
                // A bound pod has no more events to count (its Scheduled one included).
                self.forget_events(&pod.uid);
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
                                |p| p.uid != pod.uid && self.fits(p, freed),
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
        self.report_event(pod, "Warning", "FailedScheduling", "Scheduling", message);
        if let Err(error) = status::mark_unschedulable(&self.client, pod, reason, message).await {
            tracing::debug!(%error, "could not update the pod's condition");
        }
    }

    fn report_event(&self, pod: &Pod, type_: &str, reason: &str, action: &str, message: &str) {
        let Some(profile) = self.profiles.get(scheduler_name(pod)) else {
            return;
        };
        profile.events.record(pod, type_, reason, action, message);
    }
}
