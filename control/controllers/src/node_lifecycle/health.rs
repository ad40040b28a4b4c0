//! When a node last showed signs of life, and what its conditions become when it has been
//! silent too long.
//!
//! As kube's `tryUpdateNodeHealth` does, the controller never trusts the node's clock: it
//! notes the local time at which it saw something change — the Ready condition's
//! `lastHeartbeatTime` or `lastTransitionTime` in the node's status, or the `renewTime` of
//! its Lease in `kube-node-lease` — and judges silence against that. A node first seen by
//! this controller (a new leader, a new node) gets a whole grace period from then.

use std::collections::HashMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

/// kube's reason for a condition the controller set to Unknown.
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
/// kube's message beside it.
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
/// kube's reason for a condition the agent never posted.
pub const REASON_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
/// kube's message beside it.
pub const MESSAGE_NEVER_UPDATED: &str = "Kubelet never posted node status.";

/// The conditions kube sets to Unknown on a silent node.
const CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What was last seen of one node, and when.
#[derive(Clone, Debug)]
struct Probe {
    heartbeat: Option<Timestamp>,
    transition: Option<Timestamp>,
    lease_renewed: Option<Timestamp>,
    seen_alive: Instant,
}

/// The local time of every node's last sign of life.
#[derive(Debug, Default)]
pub struct HealthTracker {
    probes: HashMap<String, Probe>,
}

impl HealthTracker {
    /// Notes what `node` and its `lease` say now; returns when the node last showed life.
    pub fn observe(&mut self, node: &Node, lease: Option<&Lease>, now: Instant) -> Instant {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready = ready_condition(node);
        let heartbeat = ready.and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0));
        let transition = ready.and_then(|c| c.last_transition_time.as_ref().map(|t| t.0));
        let lease_renewed = lease
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0);
        let probe = self.probes.entry(name).or_insert_with(|| Probe {
            heartbeat,
            transition,
            lease_renewed,
            seen_alive: now,
        });
        if probe.heartbeat != heartbeat || probe.transition != transition {
            probe.heartbeat = heartbeat;
            probe.transition = transition;
            probe.seen_alive = now;
        }
        // Only a newer renewal counts: a lease read from a lagging cache must not move time back.
        if lease_renewed > probe.lease_renewed {
            probe.lease_renewed = lease_renewed;
            probe.seen_alive = now;
        }
        probe.seen_alive
    }

    /// Gives every node a fresh grace period from `now` (kube does so when a fully disrupted
    /// cluster comes back: the silence was most likely the controller's own network).
    pub fn reset(&mut self, now: Instant) {
        for probe in self.probes.values_mut() {
            probe.seen_alive = now;
        }
    }

    /// Forgets nodes no longer in `names`.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.probes.retain(|name, _| keep(name));
    }
}

/// The node's Ready condition.
pub fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The node's conditions with Ready and the pressure conditions turned Unknown, as kube sets
/// them on a silent node (a missing Ready is added as never updated); None when they all are
/// Unknown already.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for type_ in CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(condition) if condition.status == "Unknown" => {}
            Some(condition) => {
                condition.status = "Unknown".into();
                condition.reason = Some(REASON_UNKNOWN.into());
                condition.message = Some(MESSAGE_UNKNOWN.into());
                condition.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: type_.into(),
                    status: "Unknown".into(),
                    reason: Some(REASON_NEVER_UPDATED.into()),
                    message: Some(MESSAGE_NEVER_UPDATED.into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn node(heartbeat: &str) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": "n1"}, "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "MemoryPressure", "status": "False"},
            ]}}),
        )
        .unwrap()
    }

    fn lease(renewed: &str) -> Lease {
        serde_json::from_value(json!({"metadata": {"name": "n1"},
            "spec": {"renewTime": renewed}}))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_or_a_newer_lease_renewal_is_a_sign_of_life() {
        let mut tracker = HealthTracker::default();
        let start = Instant::now();
        let n = node("2026-01-01T00:00:00Z");
        assert_eq!(tracker.observe(&n, None, start), start);
        tokio::time::advance(Duration::from_secs(10)).await;
        // Nothing changed: still the first sighting.
        assert_eq!(tracker.observe(&n, None, Instant::now()), start);
        let renewed = lease("2026-01-01T00:00:10.000000Z");
        let t1 = Instant::now();
        assert_eq!(tracker.observe(&n, Some(&renewed), t1), t1);
        tokio::time::advance(Duration::from_secs(10)).await;
        // An older renewal (a stale cache) does not count.
        let older = lease("2026-01-01T00:00:05.000000Z");
        assert_eq!(tracker.observe(&n, Some(&older), Instant::now()), t1);
        let t2 = Instant::now();
        let beat = node("2026-01-01T00:00:20Z");
        assert_eq!(tracker.observe(&beat, Some(&older), t2), t2);
    }

    #[test]
    fn a_silent_node_turns_unknown_with_kubes_reason() {
        let now = Timestamp::UNIX_EPOCH;
        let conditions = unknown_conditions(&node("2026-01-01T00:00:00Z"), now).unwrap();
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        // The heartbeat stays what the agent last posted.
        assert_eq!(
            ready.last_heartbeat_time.as_ref().unwrap().0.to_string(),
            "2026-01-01T00:00:00Z"
        );
        let disk = conditions
            .iter()
            .find(|c| c.type_ == "DiskPressure")
            .unwrap();
        assert_eq!(disk.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(conditions.len(), 4);
        let mut unknown = node("2026-01-01T00:00:00Z");
        unknown.status.as_mut().unwrap().conditions = Some(conditions);
        assert_eq!(unknown_conditions(&unknown, now), None);
    }
}
