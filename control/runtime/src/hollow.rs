//! The hollow runtime: pods as bookkeeping only, as kubemark's hollow kubelet and KWOK run
//! them, for scale runs of the control plane. A sandbox gets the next free IP of the node's
//! pod CIDR at once; a container is Running as soon as it is started and never exits until
//! stopped. No process, namespace, cgroup or file is made, so a node costs a few hundred bytes
//! per pod and one agent process can stand for a thousand nodes.
//!
//! ```text
//! run_sandbox ──> IP from the CIDR ──> create_container ──> start_container (Running)
//!                                                     stop_container (Exited 137, or 0 by grace)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::{
    ContainerConfig, ContainerId, ContainerState, ContainerStatus, ExecOutput, ExecProcess,
    ExecRequest, Result, Runtime, RuntimeError, Sandbox, SandboxConfig, SandboxId, SandboxInfo,
};

/// An IPv4 range `address/prefix`, as a Node's `spec.podCIDR` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/n` (host bits are cleared: `169.254.1.7/24` is `169.254.1.0/24`).
    pub fn parse(text: &str) -> Result<Ipv4Cidr, String> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR (address/prefix)"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{text:?}: {address:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 30)
            .ok_or_else(|| format!("{text:?}: the prefix must be a number from 0 to 30"))?;
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Ok(Ipv4Cidr {
            network: u32::from(address) & mask,
            prefix,
        })
    }

    /// The addresses pods may have: all but the network address, the first host (the node
    /// bridge's gateway) and the broadcast address.
    fn pod_addresses(&self) -> std::ops::Range<u32> {
        let size = 1u64 << (32 - u32::from(self.prefix));
        let first = self.network + 2;
        let end = (u64::from(self.network) + size - 1) as u32;
        first..end
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// What the hollow runtime remembers of a sandbox.
struct HollowSandbox {
    config: SandboxConfig,
    ip: Option<IpAddr>,
    ready: bool,
}

/// The state behind the runtime's lock.
#[derive(Default)]
struct State {
    sandboxes: BTreeMap<SandboxId, HollowSandbox>,
    containers: BTreeMap<ContainerId, ContainerStatus>,
    used_addresses: BTreeSet<u32>,
}

/// A [`Runtime`] of bookkeeping only (see the module doc).
pub struct Hollow {
    cidr: Option<Ipv4Cidr>,
    next_id: AtomicU64,
    // A std mutex: every critical section is a few map operations and never awaits.
    state: Mutex<State>,
    changes: tokio::sync::broadcast::Sender<ContainerId>,
}

impl Hollow {
    /// A hollow runtime handing out pod IPs from `cidr` (`None`: sandboxes get no IP, as with
    /// host networking).
    pub fn new(cidr: Option<Ipv4Cidr>) -> Hollow {
        Hollow {
            cidr,
            next_id: AtomicU64::new(1),
            state: Mutex::new(State::default()),
            changes: tokio::sync::broadcast::channel(64).0,
        }
    }

    fn new_id(&self) -> String {
        format!("{:016x}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn allocate(&self, state: &mut State) -> Result<Option<IpAddr>> {
        let Some(cidr) = self.cidr else {
            return Ok(None);
        };
        let free = cidr
            .pod_addresses()
            .find(|a| !state.used_addresses.contains(a))
            .ok_or_else(|| RuntimeError::Sandbox(format!("no free IP left in {cidr}")))?;
        state.used_addresses.insert(free);
        Ok(Some(IpAddr::V4(Ipv4Addr::from(free))))
    }

    fn stop_one(status: &mut ContainerStatus, exit_code: i32) -> bool {
        let now = SystemTime::now();
        let started_at = match status.state {
            ContainerState::Running { started_at } => started_at,
            ContainerState::Created => now,
            ContainerState::Exited { .. } => return false,
        };
        status.state = ContainerState::Exited {
            started_at,
            finished_at: now,
            exit_code,
            reason: if exit_code == 0 { "Completed" } else { "Error" }.to_owned(),
            message: String::new(),
        };
        true
    }
}

fn not_found(what: &str, id: &str) -> RuntimeError {
    RuntimeError::NotFound(format!("{what} {id:?}"))
}

impl Runtime for Hollow {
    fn name(&self) -> &str {
        "hollow"
    }

    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<Sandbox> {
        let id = SandboxId(self.new_id());
        let mut state = self.state();
        let ip = if config.host_network {
            None
        } else {
            self.allocate(&mut state)?
        };
        state.sandboxes.insert(
            id.clone(),
            HollowSandbox {
                config: config.clone(),
                ip,
                ready: true,
            },
        );
        Ok(Sandbox { id, ip })
    }

    async fn stop_sandbox(&self, id: &SandboxId) -> Result<()> {
        let mut changed = Vec::new();
        {
            let mut guard = self.state();
            let state = &mut *guard;
            let sandbox = state
                .sandboxes
                .get_mut(id)
                .ok_or_else(|| not_found("sandbox", &id.0))?;
            sandbox.ready = false;
            if let Some(IpAddr::V4(ip)) = sandbox.ip {
                state.used_addresses.remove(&u32::from(ip));
            }
            for (container_id, status) in state.containers.iter_mut() {
                // SIGKILL, as CRI's StopPodSandbox leaves no time.
                if &status.sandbox == id && Hollow::stop_one(status, 137) {
                    changed.push(container_id.clone());
                }
            }
        }
        for id in changed {
            let _ = self.changes.send(id);
        }
        Ok(())
    }

    async fn remove_sandbox(&self, id: &SandboxId) -> Result<()> {
        let mut state = self.state();
        if let Some(sandbox) = state.sandboxes.remove(id) {
            if let Some(IpAddr::V4(ip)) = sandbox.ip {
                state.used_addresses.remove(&u32::from(ip));
            }
        }
        state.containers.retain(|_, c| &c.sandbox != id);
        Ok(())
    }

    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId> {
        let mut state = self.state();
        match state.sandboxes.get(sandbox) {
            Some(s) if s.ready => {}
            Some(_) => {
                return Err(RuntimeError::CreateContainer(format!(
                    "sandbox {:?} is stopped",
                    sandbox.0
                )))
            }
            None => return Err(not_found("sandbox", &sandbox.0)),
        }
        let id = ContainerId(self.new_id());
        state.containers.insert(
            id.clone(),
            ContainerStatus {
                id: id.clone(),
                sandbox: sandbox.clone(),
                name: config.name.clone(),
                attempt: config.attempt,
                image: config.image.clone(),
                state: ContainerState::Created,
                labels: config.labels.clone(),
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        let mut state = self.state();
        let status = state
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", &id.0))?;
        match status.state {
            ContainerState::Created => {
                status.state = ContainerState::Running {
                    started_at: SystemTime::now(),
                };
                Ok(())
            }
            _ => Err(RuntimeError::Start(format!(
                "container {:?} is not in the created state",
                id.0
            ))),
        }
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<()> {
        let stopped = {
            let mut state = self.state();
            let status = state
                .containers
                .get_mut(id)
                .ok_or_else(|| not_found("container", &id.0))?;
            // A hollow process "handles" SIGTERM when given any grace at all, and is killed
            // (128 + SIGKILL) otherwise.
            Hollow::stop_one(status, if grace.is_zero() { 137 } else { 0 })
        };
        if stopped {
            let _ = self.changes.send(id.clone());
        }
        Ok(())
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        self.state().containers.remove(id);
        Ok(())
    }

    async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus> {
        self.state()
            .containers
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("container", &id.0))
    }

    async fn list_sandboxes(&self) -> Result<Vec<SandboxInfo>> {
        Ok(self
            .state()
            .sandboxes
            .iter()
            .map(|(id, s)| SandboxInfo {
                id: id.clone(),
                config: s.config.clone(),
                ip: s.ip,
                ready: s.ready,
            })
            .collect())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        Ok(self.state().containers.values().cloned().collect())
    }

    async fn exec_sync(
        &self,
        id: &ContainerId,
        _argv: &[String],
        _timeout: Duration,
    ) -> Result<ExecOutput> {
        // Every command "succeeds" in a running hollow container, so exec probes pass.
        match self.container_status(id).await?.state {
            ContainerState::Running { .. } => Ok(ExecOutput {
                exit_code: 0,
                stdout: Vec::new(),
                stderr: Vec::new(),
            }),
            _ => Err(RuntimeError::Other(format!(
                "container {:?} is not running",
                id.0
            ))),
        }
    }

    async fn exec(&self, id: &ContainerId, _request: &ExecRequest) -> Result<ExecProcess> {
        // Known containers get the reason; unknown ones NotFound, as from any runtime.
        self.container_status(id).await?;
        Err(RuntimeError::Other(
            "the hollow runtime runs no processes: there is nothing to exec in".into(),
        ))
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ContainerId> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    fn sandbox_config(uid: &str, host_network: bool) -> SandboxConfig {
        SandboxConfig {
            pod_uid: uid.into(),
            namespace: "default".into(),
            name: uid.into(),
            hostname: uid.into(),
            host_network,
            resolv_conf: None,
            limits: Limits::default(),
            labels: BTreeMap::new(),
        }
    }

    fn container_config(name: &str) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            attempt: 0,
            image: "busybox".into(),
            argv: vec!["sleep".into(), "inf".into()],
            command_given: true,
            working_dir: None,
            env: Vec::new(),
            mounts: Vec::new(),
            limits: Limits::default(),
            log_path: "/nonexistent".into(),
            labels: BTreeMap::from([("name".to_owned(), name.to_owned())]),
            stdio: Default::default(),
        }
    }

    #[test]
    fn cidrs_parse_and_leave_gateway_and_broadcast_out() {
        let cidr = Ipv4Cidr::parse("169.254.1.9/24").unwrap();
        assert_eq!(cidr.to_string(), "169.254.1.0/24");
        let range = cidr.pod_addresses();
        assert_eq!(Ipv4Addr::from(range.start), Ipv4Addr::new(169, 254, 1, 2));
        assert_eq!(range.len(), 253);
        assert!(Ipv4Cidr::parse("169.254.1.0").is_err());
        assert!(Ipv4Cidr::parse("169.254.1.0/31").is_err());
        assert!(Ipv4Cidr::parse("nope/24").is_err());
    }

    #[tokio::test]
    async fn containers_run_at_once_until_stopped_and_ips_are_reused() {
        let runtime = Hollow::new(Some(Ipv4Cidr::parse("169.254.7.0/30").unwrap()));
        let sandbox = runtime
            .run_sandbox(&sandbox_config("a", false))
            .await
            .unwrap();
        assert_eq!(sandbox.ip, Some("169.254.7.2".parse().unwrap()));
        // A /30 holds one pod address: the next sandbox fails until the first is removed.
        assert!(runtime
            .run_sandbox(&sandbox_config("b", false))
            .await
            .is_err());
        let host = runtime
            .run_sandbox(&sandbox_config("h", true))
            .await
            .unwrap();
        assert_eq!(host.ip, None);

        let mut changes = runtime.subscribe();
        let id = runtime
            .create_container(&sandbox.id, &container_config("app"))
            .await
            .unwrap();
        runtime.start_container(&id).await.unwrap();
        let status = runtime.container_status(&id).await.unwrap();
        assert!(matches!(status.state, ContainerState::Running { .. }));
        assert_eq!(status.labels["name"], "app");
        let exec = runtime.exec_sync(&id, &[], Duration::from_secs(1)).await;
        assert_eq!(exec.unwrap().exit_code, 0);

        runtime
            .stop_container(&id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(changes.recv().await.unwrap(), id);
        let ContainerState::Exited {
            exit_code, reason, ..
        } = runtime.container_status(&id).await.unwrap().state
        else {
            panic!("still running");
        };
        assert_eq!((exit_code, reason.as_str()), (0, "Completed"));

        runtime.stop_sandbox(&sandbox.id).await.unwrap();
        assert!(!runtime.list_sandboxes().await.unwrap()[0].ready);
        runtime.remove_sandbox(&sandbox.id).await.unwrap();
        assert!(runtime.list_containers().await.unwrap().is_empty());
        let again = runtime
            .run_sandbox(&sandbox_config("b", false))
            .await
            .unwrap();
        assert_eq!(again.ip, sandbox.ip);
    }
}
