//! The node lifecycle controller (kube's `pkg/controller/nodelifecycle`): it notices nodes
//! whose agent went silent or reports them not ready, taints them, and evicts their pods.
//!
//! ```text
//!  Node status ─┐                      ┌─ Ready/…=Unknown  (NodeNotReady event, pods NotReady)
//!  node Leases ─┼─ monitor, every ─────┼─ NoSchedule taints (not-ready, unreachable, pressure)
//!               │  node_monitor_period └─ NoExecute taints, through the eviction rate limit
//!  Pods, Nodes ─── taint eviction ──────── pods deleted at once or after tolerationSeconds
//! ```
//!
//! # Layout
//!
//! - `health`: when a node last showed life (status heartbeat or Lease renewal, judged on the
//!   controller's own clock) and the Unknown conditions of a silent one.
//! - `taints`: which taints a node's conditions call for; whether a toleration tolerates a taint.
//! - `disruption`: how sick the cluster is, and the token bucket that paces NoExecute taints.
//! - `eviction`: deletes pods under NoExecute taints they do not tolerate (long enough).

mod disruption;
mod eviction;
mod health;
pub mod taints;

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;
use tokio::time::Instant;

use crate::error::{is_conflict, is_not_found};
use crate::events::{EventType, Recorder};
use crate::pods;
use disruption::TokenBucket;
pub use disruption::{disruption, Disruption, Rates};
pub use eviction::{verdict, Verdict};
use health::{ready_condition, unknown_conditions, HealthTracker};

/// The namespace of the agents' heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// How the controller judges and paces (kube-controller-manager's node flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// How often nodes are looked at (`--node-monitor-period`, 5 s).
    pub monitor_period: Duration,
    /// How long a node may be silent before it is Unknown (`--node-monitor-grace-period`).
    pub grace_period: Duration,
    /// The same for a node that never posted a Ready condition (`--node-startup-grace-period`).
    pub startup_grace_period: Duration,
    /// Eviction pacing.
    pub rates: Rates,
    /// The share of not-ready nodes past which the cluster is partly disrupted.
    pub unhealthy_threshold: f64,
}

/// What the controller shares with its eviction half.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every node.
    pub nodes: Store<Node>,
    /// The Leases of `kube-node-lease`.
    pub leases: Store<Lease>,
    /// Every pod.
    pub pods: Store<Pod>,
    /// Events (`node-controller`).
    pub recorder: Recorder,
    /// Events of taint eviction (`taint-eviction-controller`).
    pub eviction_recorder: Recorder,
    /// Timers and rates.
    pub config: Config,
}

/// Runs the monitor and taint eviction until the future is dropped; eviction is triggered by
/// `nodes` and `pods` changes.
pub async fn run(
    ctx: Arc<Context>,
    nodes: impl Stream<Item = Result<Node, watcher::Error>> + Send + 'static,
    pods: impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
) {
    tokio::join!(monitor(Arc::clone(&ctx)), eviction::run(ctx, nodes, pods));
}

/// The monitor's memory between passes.
struct Monitor {
    ctx: Arc<Context>,
    health: HealthTracker,
    bucket: TokenBucket,
    state: Disruption,
}

async fn monitor(ctx: Arc<Context>) {
    let mut ticks = tokio::time::interval(ctx.config.monitor_period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut monitor = Monitor {
        bucket: TokenBucket::new(ctx.config.rates.primary, Instant::now()),
        ctx,
        health: HealthTracker::default(),
        state: Disruption::Normal,
    };
    loop {
        ticks.tick().await;
        monitor.pass().await;
    }
}

impl Monitor {
    /// One look at every node: health first, then the cluster's state, then taints.
    async fn pass(&mut self) {
        let nodes = self.ctx.nodes.state();
        self.health
            .retain(|name| nodes.iter().any(|n| n.name_any() == name));
        let mut current = Vec::with_capacity(nodes.len());
        for node in nodes {
            let node = match self.update_health(&node).await {
                Ok(Some(updated)) => Arc::new(updated),
                Ok(None) => node,
                Err(e) => {
                    tracing::debug!(node = %node.name_any(), error = %e, "node health not written");
                    node
                }
            };
            current.push(node);
        }

        let ready = current.iter().filter(|n| taints::is_ready(n)).count();
        let state = disruption(
            ready,
            current.len() - ready,
            self.ctx.config.unhealthy_threshold,
        );
        let now = Instant::now();
        if state != self.state {
            tracing::info!(from = ?self.state, to = ?state, "cluster disruption state changed");
            if self.state == Disruption::Full {
                // Back from a full disruption: the silence was most likely ours.
                self.health.reset(now);
            }
            self.state = state;
        }
        let rate = self.ctx.config.rates.rate(state, current.len());
        self.bucket.set_rate(rate, now);

        for node in current {
            if let Err(e) = self.update_taints(&node).await {
                tracing::debug!(node = %node.name_any(), error = %e, "node taints not written");
            }
        }
    }

    /// Marks a node silent past its grace period Unknown; returns the node as written.
    async fn update_health(&mut self, node: &Node) -> kube::Result<Option<Node>> {
        let name = node.name_any();
        let lease = self
            .ctx
            .leases
            .get(&ObjectRef::new(&name).within(LEASE_NAMESPACE));
        let now = Instant::now();
        let alive = self.health.observe(node, lease.as_deref(), now);
        let grace = if ready_condition(node).is_none() {
            self.ctx.config.startup_grace_period
        } else {
            self.ctx.config.grace_period
        };
        if now.saturating_duration_since(alive) <= grace {
            return Ok(None);
        }
        let Some(conditions) = unknown_conditions(node, Timestamp::now()) else {
            return Ok(None);
        };
        let was_ready = taints::is_ready(node);
        let mut updated = node.clone();
        updated
            .status
            .get_or_insert_with(Default::default)
            .conditions = Some(conditions);
        let nodes: Api<Node> = Api::all(self.ctx.client.clone());
        let written = match nodes
            .replace_status(&name, &PostParams::default(), &updated)
            .await
        {
            Ok(written) => written,
            // A newer node than the cache's (the agent came back): the next pass sees it.
            Err(e) if is_conflict(&e) || is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        tracing::info!(node = %name, "node stopped posting status; marked Unknown");
        if was_ready {
            self.ctx.recorder.record(
                node,
                EventType::Normal,
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
            self.mark_pods_not_ready(&name).await;
        }
        Ok(Some(written))
    }

    /// Sets the Ready condition of the node's pods False (kube's `MarkPodsNotReady`): their
    /// agent cannot, and Services must stop sending them traffic.
    async fn mark_pods_not_ready(&self, node: &str) {
        let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        for pod in self.ctx.pods.state() {
            if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node)
                || !pods::is_ready(&pod)
            {
                continue;
            }
            let namespace = pod.namespace().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &namespace);
            let patch = json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": now},
            ]}});
            match api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await
            {
                Ok(_) => self.ctx.recorder.record(
                    pod.as_ref(),
                    EventType::Warning,
                    "NodeNotReady",
                    "Node is not ready".into(),
                ),
                Err(e) => {
                    tracing::debug!(pod = %pod.name_any(), error = %e, "pod not marked not ready")
                }
            }
        }
    }

    /// Brings the node's managed taints in line with its conditions; a new NoExecute taint
    /// waits for a token of the eviction rate limit (a swap between not-ready and unreachable
    /// does not, as in kube).
    async fn update_taints(&mut self, node: &Node) -> kube::Result<()> {
        let current = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let no_schedule = taints::no_schedule_keys(node);
        let had = taints::current_no_execute(&current).map(str::to_owned);
        let mut no_execute = match self.state {
            // Every node down: most likely our own fault; evict nothing.
            Disruption::Full => None,
            _ => taints::no_execute_key(node),
        };
        if no_execute.is_some() && had.is_none() && !self.bucket.try_take(Instant::now()) {
            no_execute = None;
        }
        let Some(next) = taints::retaint(&current, &no_schedule, no_execute, Timestamp::now())
        else {
            return Ok(());
        };
        let mut updated = node.clone();
        updated.spec.get_or_insert_with(Default::default).taints = Some(next);
        let nodes: Api<Node> = Api::all(self.ctx.client.clone());
        match nodes
            .replace(&node.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
