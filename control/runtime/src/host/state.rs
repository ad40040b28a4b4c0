//! What the host runtime keeps on disk, one directory per sandbox and per container:
//!
//! ```text
//! <data_dir>/ipam.json                         pod IP → sandbox id
//! <data_dir>/sandboxes/<id>/sandbox.json       SandboxRecord
//!                          /uts /ipc            the pod's namespaces, bind-mounted
//!                          /hosts /resolv.conf /hostname
//! <data_dir>/containers/<id>/container.json    ContainerRecord (written by the runtime)
//!                           /spec.json         Spec (read by the shim)
//!                           /exit.json         Exit (written by the supervisor when it ends)
//!                           /shim.log          the supervisor's own errors
//!                           /attach.sock       the supervisor's attach socket (attach.rs)
//!                           /stdin             the FIFO a `stdin: true` container reads
//! /run/netns/keel-<sandbox id>                  the pod's network namespace, bind-mounted
//! ```
//!
//! Every file is replaced atomically (write to a temporary name, rename), so a crash leaves the
//! old or the new version, never half of one.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::{ContainerConfig, Mount, SandboxConfig, SandboxId};

/// A sandbox as persisted.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SandboxRecord {
    /// Its id.
    pub id: SandboxId,
    /// What it was made from.
    pub config: SandboxConfig,
    /// Its IP (none with host networking).
    pub ip: Option<std::net::Ipv4Addr>,
    /// False once stopped.
    pub ready: bool,
    /// The network namespace's name under /run/netns (none with host networking).
    pub netns: Option<String>,
    /// The host side of its veth.
    pub host_veth: Option<String>,
    /// The pod cgroup, relative to each hierarchy's mount point.
    pub cgroup: String,
    /// Its containers' log files, removed with it.
    #[serde(default)]
    pub logs: Vec<PathBuf>,
    /// The runtime handler that made it (`host` or `embedded`: both share this state).
    #[serde(default = "host_handler")]
    pub handler: String,
}

fn host_handler() -> String {
    "host".into()
}

/// Where a container is, as persisted by the runtime.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    /// Created, never started.
    Created,
    /// Its supervisor runs it.
    Running {
        /// When its argv started.
        started_at: SystemTime,
        /// The supervisor's pid (host pid namespace).
        supervisor: i32,
        /// The container's PID 1, seen from the host.
        init: i32,
    },
    /// It ended (or never started: `StartError`).
    Exited(Exit),
}

/// A container as persisted.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ContainerRecord {
    /// Its id.
    pub id: crate::ContainerId,
    /// Its sandbox.
    pub sandbox: SandboxId,
    /// What it was made from.
    pub config: ContainerConfig,
    /// Its cgroup, relative to each hierarchy's mount point.
    pub cgroup: String,
    /// Where it is.
    pub phase: Phase,
}

/// How a container ended, written by its supervisor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Exit {
    /// When the argv started (equal to `finished_at` when it never did).
    pub started_at: SystemTime,
    /// When it ended.
    pub finished_at: SystemTime,
    /// Exit code, 128 + signal when killed.
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled` or `StartError`.
    pub reason: String,
    /// Why it failed to start, for example.
    pub message: String,
}

/// What the shim needs to run a container (written by the runtime before it starts it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// The argv.
    pub argv: Vec<String>,
    /// The environment, exactly (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub working_dir: PathBuf,
    /// Bind mounts, after the pod's files.
    pub mounts: Vec<Mount>,
    /// The pod's network namespace file (none with host networking).
    pub netns: Option<PathBuf>,
    /// The pod's UTS namespace file (none with host networking).
    pub uts: Option<PathBuf>,
    /// The pod's IPC namespace file.
    pub ipc: PathBuf,
    /// The container's cgroup directories, one per hierarchy.
    pub cgroup_dirs: Vec<PathBuf>,
    /// Its memory cgroup directory, for the OOM-kill counter.
    pub memory_cgroup: Option<PathBuf>,
    /// Whether the cgroups are v2 (the counter's file name differs).
    pub cgroup_v2: bool,
    /// The CRI log file.
    pub log_path: PathBuf,
    /// The command prefix that runs the shim again (its `init` stage).
    pub shim: Vec<String>,
    /// Its stdin and terminal.
    #[serde(default)]
    pub stdio: crate::Stdio,
    /// The container's own root (the `embedded` runtime); none runs on the host's.
    #[serde(default)]
    pub rootfs: Option<crate::embedded::RootfsSpec>,
    /// Who the process runs as; none keeps the shim's (root).
    #[serde(default)]
    pub user: Option<crate::embedded::UserIds>,
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// Writes `value` as JSON to `path` atomically.
pub fn save<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    write_atomic(
        path,
        &serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?,
    )
}

/// Reads the JSON in `path`.
pub fn load<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// A fresh random id: 16 hex digits from the kernel's generator.
pub fn new_id() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
