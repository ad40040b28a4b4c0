//! The `host` runtime: a container's argv runs from the host's own filesystem (the image is
//! only recorded), isolated as a pod's container is: its own pid namespace (the argv is PID 1,
//! /proc remounted) and mount namespace, the pod's network, UTS and IPC namespaces (shared by
//! the pod's containers, as kube shares them), a veth to the node bridge with an IP from the
//! pod CIDR, and cgroup limits in place before the argv execs.
//!
//! ```text
//! HostRuntime (in the agent, Tokio)            files under data_dir (state.rs)
//!   sandbox.rs   run/stop/remove a sandbox ──▶ shim nsholder; ip (network.rs); cgroup.rs
//!   container.rs create/start/stop/exec ─────▶ shim run ──▶ shim init ──exec──▶ argv
//!                                               (supervisor)  (PID 1)
//! ```
//!
//! ## How namespaces are made without `unsafe`
//! The workspace forbids `unsafe`, which rules out `pre_exec` (the only way to run code between
//! fork and exec in std). nix's `unshare`, `setns` and `mount` are safe functions but must run in
//! a single-threaded process, which the Tokio agent is not. So the runtime spawns a small helper,
//! [`shim`] (the `keel-runtime-shim` binary, or any binary calling [`shim::main`] — `keel` can
//! expose it as a hidden subcommand), whose short sync modes enter namespaces and then spawn or
//! exec. Compared with util-linux `unshare`/`nsenter` chains: one Rust code path, exact control
//! of the env (nothing inherited), cgroup membership before exec, and start errors reported
//! synchronously through a close-on-exec status pipe (see `shim.rs`). iproute2's `ip` still
//! sets links and addresses (batched; no netlink code here). youki's `libcontainer` was
//! weighed and left for the image-based runtime: it wants an OCI bundle and rootfs, which the
//! host runtime does not have.
//!
//! ## How containers outlive the agent and their exits are still learned
//! Each container has a supervisor process (`shim run`): it calls `setsid`, so it is in no
//! process group or session of the agent and nothing kills it with the agent; it is the parent
//! of the container's PID 1, so it alone reaps it, copies its stdout/stderr into the CRI log and
//! writes `exit.json` (exit code, `OOMKilled` from the memory cgroup's `oom_kill` counter,
//! times). The agent learns an exit from the supervisor's own exit while it is the
//! supervisor's parent, and after a restart by watching for `exit.json` (polled every 100 ms,
//! with the supervisor's liveness from /proc) — no pidfd is needed.

mod attach;
mod cgroup;
mod container;
mod exec;
mod log;
mod network;
mod sandbox;
pub mod shim;
mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use network::Ipv4Cidr;

use crate::{
    ContainerConfig, ContainerId, ContainerStatus, ExecOutput, ExecProcess, ExecRequest, Result,
    Runtime, RuntimeError, Sandbox, SandboxConfig, SandboxId, SandboxInfo,
};
use state::{ContainerRecord, SandboxRecord};

/// How a [`HostRuntime`] is set up. Several agents may share one machine (as in `keel dev`):
/// each needs its own data dir, pod CIDR, bridge name and cgroup parent.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where sandboxes' and containers' state lives (kept across agent restarts).
    pub data_dir: PathBuf,
    /// The node's pod network; its first address is the gateway, on the bridge.
    pub pod_cidr: Ipv4Cidr,
    /// The node bridge's name (at most 15 bytes), made on first use.
    pub bridge: String,
    /// The name of the agent's cgroup under each hierarchy (`keel-<node>`).
    pub cgroup_parent: String,
    /// The command that runs the shim: the `keel-runtime-shim` binary, or a binary and the
    /// hidden subcommand that calls [`shim::main`].
    pub shim: Vec<String>,
}

/// The `host` runtime (or, made by [`HostRuntime::embedded`], the `embedded` one over the
/// same state). Cheap to clone; must be made inside a Tokio runtime.
#[derive(Clone)]
pub struct HostRuntime {
    inner: Arc<Inner>,
    /// The image store containers' roots come from (`embedded`); none runs them on the host's
    /// filesystem (`host`).
    images: Option<crate::image::ImageStore>,
}

struct Inner {
    config: HostConfig,
    cgroups: cgroup::Cgroups,
    sandboxes: Mutex<BTreeMap<SandboxId, SandboxRecord>>,
    containers: Mutex<BTreeMap<ContainerId, ContainerRecord>>,
    ipam: Mutex<network::Ipam>,
    /// Held while the bridge is made, so two first pods do not race for it.
    bridge: Mutex<bool>,
    events: tokio::sync::broadcast::Sender<ContainerId>,
}

impl HostRuntime {
    /// Opens the runtime over `config.data_dir`, adopting the sandboxes and containers an
    /// earlier instance left running there.
    pub fn new(config: HostConfig) -> Result<Self> {
        if config.bridge.is_empty() || config.bridge.len() > 15 {
            return Err(RuntimeError::Other(format!(
                "bridge name {:?} must be 1 to 15 bytes",
                config.bridge
            )));
        }
        if config.shim.is_empty() {
            return Err(RuntimeError::Other("no shim command given".into()));
        }
        tokio::runtime::Handle::try_current().map_err(|_| {
            RuntimeError::Other("HostRuntime::new must be called inside a Tokio runtime".into())
        })?;
        let cgroups = cgroup::Cgroups::detect()?;
        std::fs::create_dir_all(config.data_dir.join("sandboxes"))?;
        std::fs::create_dir_all(config.data_dir.join("containers"))?;
        let sandboxes: BTreeMap<SandboxId, SandboxRecord> =
            load_records(&config.data_dir.join("sandboxes"), "sandbox.json")?
                .into_iter()
                .map(|record: SandboxRecord| (record.id.clone(), record))
                .collect();
        let containers: BTreeMap<ContainerId, ContainerRecord> =
            load_records(&config.data_dir.join("containers"), "container.json")?
                .into_iter()
                .map(|record: ContainerRecord| (record.id.clone(), record))
                .collect();
        let ipam = network::Ipam::load(config.data_dir.join("ipam.json"), config.pod_cidr)?;
        let adopted: Vec<ContainerId> = containers
            .values()
            .filter(|record| matches!(record.phase, state::Phase::Running { .. }))
            .map(|record| record.id.clone())
            .collect();
        let inner = Arc::new(Inner {
            config,
            cgroups,
            sandboxes: Mutex::new(sandboxes),
            containers: Mutex::new(containers),
            ipam: Mutex::new(ipam),
            bridge: Mutex::new(false),
            events: tokio::sync::broadcast::channel(1024).0,
        });
        for id in adopted {
            tokio::spawn(container::watch_adopted(Arc::clone(&inner), id));
        }
        Ok(HostRuntime {
            inner,
            images: None,
        })
    }

    /// The `embedded` runtime beside this one: the same sandboxes, pod network, IPs and
    /// cgroups (one IPAM per node), containers on overlays of `images`' layers (see
    /// [`crate::embedded`]). Each lists only the sandboxes it made.
    pub fn embedded(&self, images: crate::image::ImageStore) -> HostRuntime {
        HostRuntime {
            inner: Arc::clone(&self.inner),
            images: Some(images),
        }
    }

    /// Whether the sandbox was made by this handler (sandboxes are listed per handler, so
    /// the agent adopts each pod through the runtime that made it).
    fn owns(&self, sandbox: &SandboxId) -> bool {
        let sandboxes = self.inner.sandboxes.lock().unwrap();
        sandboxes
            .get(sandbox)
            .is_some_and(|record| record.handler == Runtime::name(self))
    }

    /// Stops and removes every sandbox, then the bridge and the agent's parent cgroups: what
    /// tests and an agent shutting down with cleanup call.
    pub async fn teardown_all(&self) -> Result<()> {
        // What another runtime over this data dir made since this one opened goes too.
        let dir = &self.inner.config.data_dir;
        let on_disk: Vec<SandboxRecord> = load_records(&dir.join("sandboxes"), "sandbox.json")?;
        let containers: Vec<ContainerRecord> =
            load_records(&dir.join("containers"), "container.json")?;
        for record in on_disk {
            let mut sandboxes = self.inner.sandboxes.lock().unwrap();
            sandboxes.entry(record.id.clone()).or_insert(record);
        }
        for record in containers {
            let mut known = self.inner.containers.lock().unwrap();
            known.entry(record.id.clone()).or_insert(record);
        }
        let ids: Vec<SandboxId> = self
            .inner
            .sandboxes
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for id in ids {
            self.remove_sandbox(&id).await?;
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            network::remove_bridge(&inner.config.bridge)?;
            *inner.bridge.lock().unwrap() = false;
            inner.cgroups.remove(&inner.config.cgroup_parent)?;
            Ok(())
        })
        .await
    }
}

/// Runs blocking host work (files, cgroups, `ip`) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RuntimeError::Other(format!("runtime task failed: {e}")))?
}

/// Reads `file` in every subdirectory of `dir` (a directory without it is skipped: it was
/// being made or removed when the agent stopped).
fn load_records<T: serde::de::DeserializeOwned>(
    dir: &std::path::Path,
    file: &str,
) -> Result<Vec<T>> {
    let mut records = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path().join(file);
        match state::load(&path) {
            Ok(record) => records.push(record),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(records)
}

impl Runtime for HostRuntime {
    fn name(&self) -> &str {
        if self.images.is_some() {
            "embedded"
        } else {
            "host"
        }
    }

    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<Sandbox> {
        let inner = Arc::clone(&self.inner);
        let config = config.clone();
        let handler = Runtime::name(self).to_owned();
        blocking(move || inner.run_sandbox(config, &handler)).await
    }

    async fn stop_sandbox(&self, id: &SandboxId) -> Result<()> {
        let running: Vec<ContainerId> = self.inner.containers_of(id, true);
        for container in running {
            self.inner
                .stop_container(&container, Duration::ZERO)
                .await?;
        }
        let inner = Arc::clone(&self.inner);
        let id = id.clone();
        blocking(move || inner.stop_sandbox(&id)).await
    }

    async fn remove_sandbox(&self, id: &SandboxId) -> Result<()> {
        if !self.inner.sandboxes.lock().unwrap().contains_key(id) {
            return Ok(());
        }
        self.stop_sandbox(id).await?;
        for container in self.inner.containers_of(id, false) {
            self.remove_container(&container).await?;
        }
        let inner = Arc::clone(&self.inner);
        let id = id.clone();
        blocking(move || inner.remove_sandbox(&id)).await
    }

    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId> {
        let inner = Arc::clone(&self.inner);
        let (sandbox, config) = (sandbox.clone(), config.clone());
        let images = self.images.clone();
        blocking(move || inner.create_container(&sandbox, config, images.as_ref())).await
    }

    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        Arc::clone(&self.inner).start_container(id).await
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<()> {
        self.inner.stop_container(id, grace).await
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        if !self.inner.containers.lock().unwrap().contains_key(id) {
            return Ok(());
        }
        self.inner.stop_container(id, Duration::ZERO).await?;
        let inner = Arc::clone(&self.inner);
        let id = id.clone();
        blocking(move || inner.remove_container(&id)).await
    }

    async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus> {
        self.inner.refresh(id);
        let containers = self.inner.containers.lock().unwrap();
        let record = containers
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound(format!("container {:?}", id.0)))?;
        Ok(container::status_of(record))
    }

    async fn list_sandboxes(&self) -> Result<Vec<SandboxInfo>> {
        let sandboxes = self.inner.sandboxes.lock().unwrap();
        Ok(sandboxes
            .values()
            .filter(|record| record.handler == Runtime::name(self))
            .map(|record| SandboxInfo {
                id: record.id.clone(),
                config: record.config.clone(),
                ip: record.ip.map(Into::into),
                ready: record.ready,
            })
            .collect())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        let ids: Vec<ContainerId> = self
            .inner
            .containers
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for id in &ids {
            self.inner.refresh(id);
        }
        let containers: Vec<ContainerStatus> = {
            let containers = self.inner.containers.lock().unwrap();
            containers.values().map(container::status_of).collect()
        };
        Ok(containers
            .into_iter()
            .filter(|status| self.owns(&status.sandbox))
            .collect())
    }

    async fn exec_sync(
        &self,
        id: &ContainerId,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        self.inner.exec_sync(id, argv, timeout).await
    }

    async fn exec(&self, id: &ContainerId, request: &ExecRequest) -> Result<ExecProcess> {
        self.inner.exec_streaming(id, request)
    }

    async fn attach(&self, id: &ContainerId, stdin: bool) -> Result<ExecProcess> {
        self.inner.attach(id, stdin).await
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ContainerId> {
        self.inner.events.subscribe()
    }
}
