//! The Node object: registered once (created, or an existing one adopted), then its status
//! (capacity, allocatable, addresses, nodeInfo, conditions) posted through `nodes/status`.
//! The conditions and their reasons are kubelet's, so `kubectl describe node` reads the same.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use crate::config::NodeConfig;
use crate::machine::Machine;
use crate::quantity::{format_bytes, format_millis};
use crate::Result;

/// The version a node reports as `nodeInfo.kubeletVersion`: the API's, marked as keel's.
pub const AGENT_VERSION: &str = "v1.33.0+keel";

/// Pods a node takes (kubelet's `--max-pods` default).
pub const MAX_PODS: u64 = 110;

/// The node's labels: kube's well-known ones, then `--node-labels`.
pub fn labels(config: &NodeConfig) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), config.name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        (
            "kubernetes.io/arch".to_owned(),
            crate::machine::architecture(),
        ),
        ("beta.kubernetes.io/os".to_owned(), "linux".to_owned()),
        (
            "beta.kubernetes.io/arch".to_owned(),
            crate::machine::architecture(),
        ),
    ]);
    if config.hollow {
        labels.insert("keel.dev/hollow".to_owned(), "true".to_owned());
    }
    labels.extend(config.labels.clone());
    labels
}

/// The node's conditions as kubelet words them; `pressure` says which pressures hold.
pub fn conditions(
    pressure: Pressure,
    now: &Time,
    previous: &[NodeCondition],
) -> Vec<NodeCondition> {
    let condition = |kind: &str, status: bool, reason: &str, message: &str| {
        let status = if status { "True" } else { "False" };
        // lastTransitionTime moves only when the status does.
        let since = previous
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            type_: kind.to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(since),
        }
    };
    vec![
        if pressure.memory {
            condition(
                "MemoryPressure",
                true,
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            )
        } else {
            condition(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            )
        },
        if pressure.disk {
            condition(
                "DiskPressure",
                true,
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
            )
        } else {
            condition(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            )
        },
        if pressure.pid {
            condition(
                "PIDPressure",
                true,
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            )
        } else {
            condition(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            )
        },
        condition(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
}

/// Which resource pressures the node is under (kubelet's default hard eviction thresholds:
/// memory.available < 100Mi, nodefs.available < 10%, and PIDs: fewer than 10% left).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// memory.available < 100Mi.
    pub memory: bool,
    /// The data dir's filesystem has less than 10% free.
    pub disk: bool,
    /// Fewer than 10% of pid_max left.
    pub pid: bool,
}

impl Pressure {
    /// The pressures on this machine now (a hollow node has none).
    pub fn read(config: &NodeConfig) -> Pressure {
        if config.hollow {
            return Pressure::default();
        }
        let memory = crate::machine::meminfo("MemAvailable").is_some_and(|a| a < 100 << 20);
        let disk = crate::machine::disk(&config.data_dir)
            .is_some_and(|(total, available)| total > 0 && available * 10 < total);
        let pid = pid_pressure().unwrap_or(false);
        Pressure { memory, disk, pid }
    }
}

fn pid_pressure() -> Option<bool> {
    let max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let running = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count() as u64;
    Some(running * 10 > max * 9)
}

/// The status document kubelet posts: capacity, allocatable, addresses, nodeInfo, endpoints.
pub fn status(config: &NodeConfig, machine: &Machine, conditions: &[NodeCondition]) -> Value {
    let reserved = &config.system_reserved;
    let capacity = json!({
        "cpu": format_millis(machine.cpu_millis),
        "memory": format_bytes(machine.memory_bytes),
        "ephemeral-storage": format_bytes(machine.ephemeral_storage_bytes),
        "pods": MAX_PODS.to_string(),
    });
    let allocatable = json!({
        "cpu": format_millis(machine.cpu_millis.saturating_sub(reserved.cpu_millis)),
        "memory": format_bytes(machine.memory_bytes.saturating_sub(reserved.memory_bytes)),
        "ephemeral-storage": format_bytes(
            machine.ephemeral_storage_bytes.saturating_sub(reserved.ephemeral_storage_bytes)
        ),
        "pods": MAX_PODS.to_string(),
    });
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": config.address.to_string()},
            {"type": "Hostname", "address": config.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.api_port.unwrap_or(0)}},
        "nodeInfo": {
            "machineID": machine.machine_id,
            "systemUUID": machine.machine_id,
            "bootID": machine.boot_id,
            "kernelVersion": machine.kernel_version,
            "osImage": machine.os_image,
            "containerRuntimeVersion": format!("{}://{}", config.default_runtime, env!("CARGO_PKG_VERSION")),
            "kubeletVersion": AGENT_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": machine.architecture,
        },
    })
}

/// Creates the Node, or adopts the one already there (its labels and taints brought to the
/// flags' and its pod CIDR kept). Returns the Node as stored.
pub async fn register(
    client: &kube::Client,
    config: &NodeConfig,
    machine: &Machine,
) -> Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut spec = json!({});
    if let Some(cidr) = &config.pod_cidr {
        spec["podCIDR"] = json!(cidr);
        spec["podCIDRs"] = json!([cidr]);
    }
    if !config.taints.is_empty() {
        spec["taints"] = json!(config.taints);
    }
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": config.name, "labels": labels(config)},
        "spec": spec,
        // Created with its status, as kubelet's initialNode: the scheduler sees its capacity
        // from the first moment.
        "status": status(config, machine, &conditions(Pressure::read(config), &Time(k8s_openapi::jiff::Timestamp::now()), &[])),
    }))
    .expect("a Node's JSON");
    match nodes.create(&PostParams::default(), &node).await {
        Ok(node) => Ok(node),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // As kubelet's tryRegisterWithAPIServer: the node exists, keep it and bring its
            // labels up to date.
            let patch = json!({"metadata": {"labels": labels(config)}});
            Ok(nodes
                .patch(&config.name, &PatchParams::default(), &Patch::Merge(patch))
                .await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Posts the node's status.
pub async fn post_status(client: &kube::Client, name: &str, status: &Value) -> Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    Ok(nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn conditions_keep_their_transition_time_while_unchanged() {
        let then = Time(Timestamp::from_second(1_000).unwrap());
        let now = Time(Timestamp::from_second(2_000).unwrap());
        let first = conditions(Pressure::default(), &then, &[]);
        let ready = first.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("kubelet is posting ready status")
        );
        let later = conditions(
            Pressure {
                memory: true,
                ..Pressure::default()
            },
            &now,
            &first,
        );
        let memory = later.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
        assert_eq!(memory.status, "True");
        assert_eq!(memory.last_transition_time, Some(now.clone()));
        let ready = later.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.last_transition_time, Some(then));
        assert_eq!(ready.last_heartbeat_time, Some(now));
    }

    #[test]
    fn allocatable_is_capacity_minus_reserved() {
        let mut config = NodeConfig::new("n1", "/tmp".into(), "hollow");
        config.system_reserved = crate::config::Reserved::parse("cpu=500m,memory=1Gi").unwrap();
        let status = status(&config, &Machine::hollow(), &[]);
        assert_eq!(status["capacity"]["cpu"], "4");
        assert_eq!(status["allocatable"]["cpu"], "3500m");
        assert_eq!(status["allocatable"]["memory"], format_bytes(31 << 30));
        assert_eq!(status["nodeInfo"]["kubeletVersion"], AGENT_VERSION);
        assert_eq!(status["addresses"][0]["address"], "127.0.0.1");
    }
}
