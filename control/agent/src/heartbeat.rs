//! A node's heartbeats, as kubelet sends them: its Lease in `kube-node-lease` renewed every
//! 10 s (the node lifecycle controller reads it for liveness), and its status conditions
//! posted when they change or every 5 minutes.
//!
//! ```text
//! every lease_renew_interval:          PUT leases/<node>   renewTime = now
//! every node_status_update_frequency:  conditions changed or report_frequency passed?
//!                                      -> PATCH nodes/<node>/status
//! ```

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::ResourceExt as _;
use serde_json::json;
use tokio::time::Instant;

use crate::config::NodeConfig;
use crate::machine::Machine;
use crate::node::{self, Pressure};

/// How soon a failed renewal or status post is tried again.
const RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// The namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Renews `config`'s Lease and posts its status until `stop` resolves. Failures are logged and
/// retried at the next tick, as kubelet keeps trying.
pub async fn run(
    client: kube::Client,
    config: NodeConfig,
    machine: Machine,
    registered: Node,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut heart = Heart {
        leases: Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE),
        client,
        lease: None,
        conditions: registered
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default(),
        last_report: None,
        node_uid: registered.uid().unwrap_or_default(),
        config,
        machine,
    };
    let timings = heart.config.timings.clone();
    let mut lease_tick = tokio::time::interval(timings.lease_renew_interval);
    let mut status_tick = tokio::time::interval(timings.node_status_update_frequency);
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = lease_tick.tick() => {
                if let Err(e) = heart.renew_lease().await {
                    tracing::warn!(node = %heart.config.name, "renewing the node lease: {e}");
                    heart.lease = None;
                    // Retried soon, as kubelet's lease controller backs off from 200 ms: a
                    // lease must not lapse for one failed call.
                    lease_tick.reset_after(RETRY.min(timings.lease_renew_interval));
                }
            }
            _ = status_tick.tick() => {
                if let Err(e) = heart.post_status().await {
                    tracing::warn!(node = %heart.config.name, "posting node status: {e}");
                    status_tick.reset_after(RETRY.min(timings.node_status_update_frequency));
                }
            }
        }
    }
}

struct Heart {
    client: kube::Client,
    leases: Api<Lease>,
    lease: Option<Lease>,
    conditions: Vec<NodeCondition>,
    last_report: Option<Instant>,
    node_uid: String,
    config: NodeConfig,
    machine: Machine,
}

impl Heart {
    async fn renew_lease(&mut self) -> crate::Result<()> {
        let now = MicroTime(Timestamp::now());
        let lease = match self.lease.take() {
            Some(lease) => lease,
            None => match self.leases.get_opt(&self.config.name).await? {
                Some(lease) => lease,
                None => {
                    let lease: Lease = serde_json::from_value(json!({
                        "metadata": {
                            "name": self.config.name,
                            "namespace": NODE_LEASE_NAMESPACE,
                            // The Lease goes with its Node, as kubelet's does.
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                "name": self.config.name, "uid": self.node_uid}],
                        },
                        "spec": {
                            "holderIdentity": self.config.name,
                            "leaseDurationSeconds": self.config.timings.lease_duration.as_secs().max(1),
                            "renewTime": now,
                        },
                    }))
                    .expect("a Lease's JSON");
                    self.lease = Some(self.leases.create(&PostParams::default(), &lease).await?);
                    return Ok(());
                }
            },
        };
        let mut lease = lease;
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = Some(self.config.name.clone());
        spec.lease_duration_seconds =
            Some(self.config.timings.lease_duration.as_secs().max(1) as i32);
        spec.renew_time = Some(now);
        self.lease = Some(
            self.leases
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await?,
        );
        Ok(())
    }

    async fn post_status(&mut self) -> crate::Result<()> {
        let now = Time(Timestamp::now());
        let pressure = Pressure::read(&self.config);
        let conditions = node::conditions(pressure, &now, &self.conditions);
        let changed = strip_heartbeats(&conditions) != strip_heartbeats(&self.conditions);
        let due = self
            .last_report
            .is_none_or(|at| at.elapsed() >= self.config.timings.node_status_report_frequency);
        if !changed && !due {
            return Ok(());
        }
        if !self.config.hollow {
            // Disk size may change (a resized volume); it is cheap to read.
            self.machine.ephemeral_storage_bytes = crate::machine::disk(&self.config.data_dir)
                .map_or(self.machine.ephemeral_storage_bytes, |(total, _)| total);
        }
        let status = node::status(&self.config, &self.machine, &conditions);
        node::post_status(&self.client, &self.config.name, &status).await?;
        self.conditions = conditions;
        self.last_report = Some(Instant::now());
        Ok(())
    }
}

fn strip_heartbeats(conditions: &[NodeCondition]) -> Vec<(String, String, Option<String>)> {
    conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect()
}
