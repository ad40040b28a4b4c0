//! keel-scheduler: places pods on nodes the way kube-scheduler does, talking to the cluster
//! only through the Kubernetes API (the `kube` crate and `k8s-openapi` types), as any
//! outside program would. It depends on no keel crate but keel-lease.
//!
//! Every control-plane member runs it; one leads at a time, elected on the Lease
//! `kube-system/keel-scheduler`. The leader watches nodes and pods, takes pending pods for
//! its profiles' scheduler names from a queue, filters the nodes with the profile's plugins
//! (default profile: NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
//! NodeResourcesFit, PodTopologySpread, InterPodAffinity), scores the feasible ones
//! (TaintToleration 3, NodeAffinity 2, NodeResourcesFit LeastAllocated 1, PodTopologySpread 2,
//! InterPodAffinity 2, NodeResourcesBalancedAllocation 1, ImageLocality 1), and binds the pod
//! to the best through `pods/NAME/binding`. A pod no node fits gets `PodScheduled=False`
//! (Unschedulable) and a `FailedScheduling` event whose message is kube-scheduler's, word for
//! word. A `KubeSchedulerConfiguration` file ([`config_file`]) gives other profiles: more
//! scheduler names, plugins enabled or disabled, weights, NodeResourcesFit's MostAllocated or
//! RequestedToCapacityRatio strategy, PodTopologySpread's default constraints.
//! When evicting pods of lower priority would make room, it preempts as DefaultPreemption
//! does: victims chosen per node (PodDisruptionBudgets respected where possible), the best
//! node nominated (`status.nominatedNodeName`), the victims marked `DisruptionTarget` and
//! deleted gracefully; the room is held for the preemptor until it is bound.
//!
//! # Layout
//!
//! - [`config`]: [`SchedulerConfig`]: identity, scheduler name, weights, backoff, lease timings.
//! - [`config_file`]: a `KubeSchedulerConfiguration` YAML file read into profiles.
//! - [`profile`]: one profile's scheduler name, plugins, weights and plugin arguments.
//! - [`scheduler`]: the leader's work: informers → cache and queue; the scheduling loop.
//! - [`informers`]: watchers turned into add/update/delete changes with the old object.
//! - [`queue`]: active (priority, then age), backoff (1 s doubling to 10 s), unschedulable.
//! - [`cache`]: nodes with allocatable vs requested, bound and assumed pods, host ports,
//!   images; namespace labels and Service/controller selectors.
//! - [`cycle_state`]: what pre-filters and pre-scores leave for their filters and scores.
//! - [`framework`]: pre-filter → filter → score → select with a per-cycle state;
//!   `FitError`, the failure message.
//! - [`plugins`]: one file per plugin, each with its table tests.
//! - [`label_selector`]: `metav1.LabelSelector` matching.
//! - [`resources`]: a pod's requests (init containers, sidecars, overhead); node allocatable.
//! - [`quantity`]: `"500m"`, `"4Gi"` as numbers, rounded as apimachinery rounds.
//! - [`nominator`]: pods nominated to nodes; filters count them (room held for preemptors).
//! - [`disruption`]: PodDisruptionBudgets as preemption reads them.
//! - [`preemption`]: a preemption carried out: victims marked, deleted, reported.
//! - [`binder`]: the binding subresource.
//! - [`status`]: the `PodScheduled=False` condition through `pods/status`.
//! - [`events`]: `FailedScheduling` and `Scheduled` core/v1 Events.
//! - [`error`]: the errors of API writes.

pub mod binder;
pub mod cache;
pub mod config;
pub mod config_file;
pub mod cycle_state;
pub mod disruption;
pub mod error;
pub mod events;
pub mod framework;
pub mod informers;
pub mod label_selector;
pub mod nominator;
pub mod plugins;
pub mod preemption;
pub mod profile;
pub mod quantity;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod status;

#[cfg(test)]
mod testing;

use std::future::Future;
use std::sync::Arc;

pub use config::{LeaseTimings, SchedulerConfig, ScoreWeights};
pub use error::{Error, Result};

/// Schedules pods whenever this instance leads, until `shutdown` resolves (then the Lease is
/// released, so another instance takes over at once). Each leadership term starts from a
/// fresh list of nodes and pods.
pub async fn run(
    client: kube::Client,
    config: SchedulerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let lease = config.lease_config();
    let leader_client = client.clone();
    keel_lease::run_while_leader(
        leader_client,
        lease,
        move || {
            let scheduler = Arc::new(scheduler::Scheduler::new(client.clone(), config.clone()));
            tracing::info!(identity = %config.identity, "leading: scheduling pods");
            scheduler.run()
        },
        shutdown,
    )
    .await;
}
