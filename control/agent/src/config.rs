//! The agent's settings: who the node is, what it reserves, and the timers kubelet has
//! (tests shorten them; their defaults are kubelet's).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;

use crate::error::{Error, Result};

/// kubelet's timers, as durations so tests can shorten them.
#[derive(Debug, Clone)]
pub struct Timings {
    /// The node Lease's `leaseDurationSeconds` (kubelet: 40 s).
    pub lease_duration: Duration,
    /// How often the Lease is renewed (kubelet: every 10 s, a quarter of its duration).
    pub lease_renew_interval: Duration,
    /// How often the node's conditions are checked; they are posted when they change.
    pub node_status_update_frequency: Duration,
    /// Conditions are posted at least this often even unchanged (kubelet: 5 min).
    pub node_status_report_frequency: Duration,
    /// The first CrashLoopBackOff delay (kubelet: 10 s), doubled on each crash.
    pub backoff_initial: Duration,
    /// The longest CrashLoopBackOff delay (kubelet: 5 min).
    pub backoff_max: Duration,
    /// A container that ran this long starts its back-off over (kubelet: 10 min).
    pub backoff_reset: Duration,
    /// How often each pod worker resyncs against the runtime when nothing woke it (kubelet's
    /// PLEG relist is 1 s; runtimes also push container changes, so this is only a net).
    pub pod_resync: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            lease_duration: Duration::from_secs(40),
            lease_renew_interval: Duration::from_secs(10),
            node_status_update_frequency: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(300),
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            backoff_reset: Duration::from_secs(600),
            pod_resync: Duration::from_secs(10),
        }
    }
}

/// Resources held back from pods (`--system-reserved cpu=500m,memory=1Gi`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reserved {
    /// Millicores.
    pub cpu_millis: u64,
    /// Bytes.
    pub memory_bytes: u64,
    /// Bytes.
    pub ephemeral_storage_bytes: u64,
}

impl Reserved {
    /// Parses `cpu=500m,memory=1Gi,ephemeral-storage=1Gi`.
    pub fn parse(text: &str) -> Result<Reserved> {
        let mut reserved = Reserved::default();
        for entry in text.split(',').filter(|e| !e.trim().is_empty()) {
            let (key, value) = entry.split_once('=').ok_or_else(|| {
                Error::Config(format!("--system-reserved: {entry:?} is not NAME=QUANTITY"))
            })?;
            let bad = || Error::Config(format!("--system-reserved: {value:?} is not a quantity"));
            match key.trim() {
                "cpu" => reserved.cpu_millis = crate::quantity::millis(value).ok_or_else(bad)?,
                "memory" => reserved.memory_bytes = crate::quantity::bytes(value).ok_or_else(bad)?,
                "ephemeral-storage" => {
                    reserved.ephemeral_storage_bytes =
                        crate::quantity::bytes(value).ok_or_else(bad)?
                }
                other => {
                    return Err(Error::Config(format!(
                        "--system-reserved: unknown resource {other:?} (cpu, memory, ephemeral-storage)"
                    )))
                }
            }
        }
        Ok(reserved)
    }
}

/// One node's settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The Node's name (also its Lease's and its `kubernetes.io/hostname` label).
    pub name: String,
    /// Where pods' volumes and logs live (`<data-dir>/pods/<uid>/…`).
    pub data_dir: PathBuf,
    /// The node's address (InternalIP; pods' hostIP).
    pub address: IpAddr,
    /// The pod CIDR to use; `None` waits for `spec.podCIDR` from the cluster's node IPAM.
    pub pod_cidr: Option<String>,
    /// Held back from allocatable.
    pub system_reserved: Reserved,
    /// Extra labels (`--node-labels`).
    pub labels: BTreeMap<String, String>,
    /// Taints to register with (`--register-with-taints`).
    pub taints: Vec<Taint>,
    /// The runtime handler pods without a `runtimeClassName` use.
    pub default_runtime: String,
    /// A hollow node reports a fixed machine (kubemark's) instead of reading this one.
    pub hollow: bool,
    /// The agent API's port (`status.daemonEndpoints.kubeletEndpoint.port`): set from the
    /// port [`NodeConfig::api`] bound.
    pub api_port: Option<u16>,
    /// The agent API (logs, exec) to serve, if any.
    pub api: Option<crate::server::ApiConfig>,
    /// Timers.
    pub timings: Timings,
    /// The cluster DNS pods are pointed at (kubelet's `--cluster-dns`, `--cluster-domain`).
    pub cluster_dns: crate::pods::dns::ClusterDns,
}

impl NodeConfig {
    /// A node named `name` with data under `data_dir`, on 127.0.0.1, kubelet's timers.
    pub fn new(name: &str, data_dir: PathBuf, default_runtime: &str) -> NodeConfig {
        NodeConfig {
            name: name.to_owned(),
            data_dir,
            address: IpAddr::from([127, 0, 0, 1]),
            pod_cidr: None,
            system_reserved: Reserved::default(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            default_runtime: default_runtime.to_owned(),
            hollow: default_runtime == "hollow",
            api_port: None,
            api: None,
            timings: Timings::default(),
            cluster_dns: Default::default(),
        }
    }
}

/// Parses `--node-labels a=b,c=d`.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>> {
    text.split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|entry| {
            let (key, value) = entry.split_once('=').ok_or_else(|| {
                Error::Config(format!("--node-labels: {entry:?} is not KEY=VALUE"))
            })?;
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// Parses `--register-with-taints key=value:Effect,key:Effect`.
pub fn parse_taints(text: &str) -> Result<Vec<Taint>> {
    text.split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|entry| {
            let (key_value, effect) = entry.rsplit_once(':').ok_or_else(|| {
                Error::Config(format!("--register-with-taints: {entry:?} has no :Effect"))
            })?;
            if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                return Err(Error::Config(format!(
                    "--register-with-taints: invalid taint effect: {effect}, unsupported taint effect"
                )));
            }
            let (key, value) = match key_value.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (key_value, None),
            };
            Ok(Taint {
                key: key.to_owned(),
                value,
                effect: effect.to_owned(),
                time_added: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let reserved = Reserved::parse("cpu=500m,memory=1Gi").unwrap();
        assert_eq!(reserved.cpu_millis, 500);
        assert_eq!(reserved.memory_bytes, 1 << 30);
        assert!(Reserved::parse("gpu=1").is_err());
        assert!(Reserved::parse("cpu=lots").is_err());
        let labels = parse_labels("zone=a,tier=web").unwrap();
        assert_eq!(labels["zone"], "a");
        let taints = parse_taints("dedicated=infra:NoSchedule,spot:NoExecute").unwrap();
        assert_eq!(taints[0].value.as_deref(), Some("infra"));
        assert_eq!(taints[1].key, "spot");
        assert!(parse_taints("a=b:Never").is_err());
    }
}
