//! keel-runtime: what keel's node agent asks of the machine to run a pod.
//!
//! The agent (keel-agent) turns a Pod from the API into calls on a [`Runtime`]: one sandbox per
//! pod (the pod's network namespace, IP, hostname and cgroup parent), then its containers in
//! order. This is CRI's shape, trimmed to what the agent uses, so that a CRI runtime
//! (containerd) fits behind the same trait as keel's own runtimes. The agent has already
//! resolved everything that needs the API (env from ConfigMaps and Secrets, volumes written to
//! host paths, `$(VAR)` expansion in command and args): a runtime never talks to the cluster.
//!
//! Layout:
//! - `lib.rs` (this file): the trait and the configuration and status types it speaks.
//! - `hollow.rs`: bookkeeping only, as kubemark/KWOK do, for scale runs (no processes).
//! - `host/`: the container's command from the host's filesystem, in its own pid/mount/ipc/uts
//!   namespaces, the pod's network namespace (veth to a node bridge) and cgroup limits.
//! - `embedded/`: the host runtime's machinery with each container's root an overlay of its
//!   OCI image's layers (`HostRuntime::embedded`).
//! - `image/`: the node's local image store (OCI layout and docker-archive imports, layers
//!   unpacked for overlayfs).
//!
//! A runtime identifies its sandboxes and containers by ids it chooses, and labels each with the
//! pod's uid and the container's name and attempt, so that an agent restarted while pods run
//! finds them again with [`Runtime::list_sandboxes`] and [`Runtime::list_containers`] (adopts
//! them: no duplicate processes, no lost status).

pub mod embedded;
pub mod hollow;
pub mod host;
pub mod image;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite};

/// A runtime's id for a pod sandbox.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SandboxId(pub String);

/// A runtime's id for a container.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ContainerId(pub String);

/// What a pod's sandbox is made of.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SandboxConfig {
    /// The pod's `metadata.uid`: the key the agent finds the sandbox by after a restart.
    pub pod_uid: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The hostname inside the pod (`spec.hostname`, else the pod's name); empty with
    /// `host_network`, where the node's own UTS namespace is shared, as kubelet leaves it.
    pub hostname: String,
    /// `spec.hostNetwork`: share the node's network namespace (no veth, the node's IP).
    pub host_network: bool,
    /// Contents of the pod's `/etc/resolv.conf` (dnsPolicy resolved by the agent); `None`
    /// keeps the host's.
    pub resolv_conf: Option<String>,
    /// Limits for the pod as a whole (the pod-level cgroup): the sum of its containers'.
    pub limits: Limits,
    /// Labels the runtime keeps with the sandbox and returns in [`SandboxInfo`].
    pub labels: BTreeMap<String, String>,
}

/// A sandbox the runtime made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sandbox {
    /// Its id.
    pub id: SandboxId,
    /// The pod's IP, or `None` with host networking (the agent reports the node's IP).
    pub ip: Option<IpAddr>,
}

/// A sandbox as [`Runtime::list_sandboxes`] finds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SandboxInfo {
    /// Its id.
    pub id: SandboxId,
    /// The configuration it was made from.
    pub config: SandboxConfig,
    /// Its IP, as [`Sandbox::ip`].
    pub ip: Option<IpAddr>,
    /// Whether it still runs (false once stopped).
    pub ready: bool,
}

/// Resource limits, in the units cgroups take. `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Memory limit in bytes (`resources.limits.memory`).
    pub memory_bytes: Option<u64>,
    /// CPU limit in millicores (`resources.limits.cpu`), applied as a CFS quota.
    pub cpu_millis: Option<u64>,
    /// CPU request in millicores, applied as shares/weight.
    pub cpu_request_millis: Option<u64>,
    /// Maximum number of processes.
    pub pids: Option<u64>,
}

/// One bind mount into a container: a volume the agent has already materialised on the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// Where the volume's contents are on the host.
    pub host_path: PathBuf,
    /// Where the container sees it (`volumeMounts[].mountPath`).
    pub container_path: PathBuf,
    /// `volumeMounts[].readOnly`.
    pub read_only: bool,
}

/// What a container is made of, fully resolved by the agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerConfig {
    /// The container's name in the pod spec.
    pub name: String,
    /// How many times the agent has started this container before (0 for the first start);
    /// the pair (name, attempt) is unique within a sandbox.
    pub attempt: u32,
    /// The image reference as the pod gives it (the host runtime only records it).
    pub image: String,
    /// The argv to run: `command` + `args` with `$(VAR)` expanded. Without `command_given` it
    /// holds the pod's `args` only (maybe none), which an image runtime puts after the image's
    /// Entrypoint (or takes from its Cmd when empty); the host runtime runs it as it is.
    pub argv: Vec<String>,
    /// Whether the pod gave `command` (so the image's Entrypoint and Cmd do not apply).
    #[serde(default)]
    pub command_given: bool,
    /// `workingDir`, or `None` for the runtime's default.
    pub working_dir: Option<PathBuf>,
    /// The environment, in order (later entries win, as in kube).
    pub env: Vec<(String, String)>,
    /// Volumes to mount.
    pub mounts: Vec<Mount>,
    /// The container's own limits.
    pub limits: Limits,
    /// Where the runtime writes the container's stdout and stderr, in the CRI log format
    /// (`<RFC 3339 nano time> stdout|stderr F|P <line>`), so the agent can serve
    /// `kubectl logs` from it.
    pub log_path: PathBuf,
    /// Labels the runtime keeps with the container and returns in [`ContainerStatus`].
    pub labels: BTreeMap<String, String>,
    /// How its stdin and terminal are set up (`stdin`, `stdinOnce`, `tty` of the pod spec),
    /// for `kubectl attach` and `kubectl run -i`.
    #[serde(default)]
    pub stdio: Stdio,
}

/// A container's stdin and terminal, as the pod spec asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Stdio {
    /// Its stdin stays open for attached clients to write to (otherwise it reads /dev/null).
    pub stdin: bool,
    /// Its stdin is closed once the first attached client detaches.
    pub stdin_once: bool,
    /// It runs on a terminal (stdout and stderr are then one stream).
    pub tty: bool,
}

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ContainerState {
    /// Created and not started.
    Created,
    /// Its process runs.
    Running {
        /// When it started.
        started_at: SystemTime,
    },
    /// Its process ended.
    Exited {
        /// When it started.
        started_at: SystemTime,
        /// When it ended.
        finished_at: SystemTime,
        /// The exit code (128 + signal number when killed by a signal, as a shell reports).
        exit_code: i32,
        /// kube's reason: `Completed` (exit 0), `Error`, `OOMKilled`, `StartError`.
        reason: String,
        /// A message for the pod's status (why it failed to start, for example).
        message: String,
    },
}

/// A container as the runtime sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerStatus {
    /// Its id.
    pub id: ContainerId,
    /// The sandbox it runs in.
    pub sandbox: SandboxId,
    /// Its name in the pod spec.
    pub name: String,
    /// Its attempt number, as in [`ContainerConfig::attempt`].
    pub attempt: u32,
    /// The image it was created from.
    pub image: String,
    /// Its state.
    pub state: ContainerState,
    /// The labels it was created with.
    pub labels: BTreeMap<String, String>,
}

/// The result of running a command in a container to completion (exec probes, `exec_sync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The command's exit code.
    pub exit_code: i32,
    /// What it wrote to stdout.
    pub stdout: Vec<u8>,
    /// What it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// A command to start in a running container with its streams attached (`kubectl exec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The argv (never empty).
    pub argv: Vec<String>,
    /// Whether the caller sends stdin; without it the command reads end-of-file at once.
    pub stdin: bool,
    /// Whether the command gets a terminal (stdout and stderr are then one stream).
    pub tty: bool,
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TerminalSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// Changes the size of an exec session's terminal.
pub type Resize = Box<dyn Fn(TerminalSize) -> std::io::Result<()> + Send + Sync>;

/// A command [`Runtime::exec`] started: its streams and its end. Dropping it kills the
/// command (a client that leaves takes its command with it, as kubelet's streaming server
/// does when the connection ends).
pub struct ExecProcess {
    /// Its stdin, when asked for; dropping it closes the command's stdin.
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// Its stdout (with a terminal: the terminal's output).
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// Its stderr; none with a terminal.
    pub stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// Resolves to the command's exit code once it ended.
    pub exit: Pin<Box<dyn std::future::Future<Output = Result<i32>> + Send>>,
    /// Resizes its terminal; none without one.
    pub resize: Option<Resize>,
}

/// Why a runtime call failed. The variants map to the reasons kubelet reports in a pod's
/// container statuses and events.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No such sandbox or container.
    #[error("{0} not found")]
    NotFound(String),
    /// The image could not be had (`ErrImagePull`).
    #[error("failed to pull image {image:?}: {message}")]
    ImagePull {
        /// The image reference.
        image: String,
        /// Why.
        message: String,
    },
    /// The container's configuration cannot be realised (`CreateContainerError`), for
    /// example a mount whose source is missing.
    #[error("{0}")]
    CreateContainer(String),
    /// The container's process could not start (`StartError`), for example an executable
    /// that does not exist.
    #[error("{0}")]
    Start(String),
    /// The sandbox could not be made (`FailedCreatePodSandBox`).
    #[error("{0}")]
    Sandbox(String),
    /// A command or a timeout failed inside the runtime.
    #[error("{0}")]
    Other(String),
    /// An I/O error from the host.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The result of a runtime call.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Runs pods' sandboxes and containers. Every method is idempotent where CRI's is: stopping a
/// stopped container or removing a removed one succeeds.
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's name as a RuntimeClass's `handler` names it (`hollow`, `host`, …).
    fn name(&self) -> &str;

    /// Makes a pod's sandbox: network namespace and IP, pod cgroup.
    fn run_sandbox(&self, config: &SandboxConfig) -> impl Future<Output = Result<Sandbox>> + Send;

    /// Stops every container of the sandbox (SIGKILL) and releases its network; the sandbox
    /// stays listed (not ready) until removed.
    fn stop_sandbox(&self, id: &SandboxId) -> impl Future<Output = Result<()>> + Send;

    /// Forgets a stopped sandbox and removes what is left of it (its containers included).
    fn remove_sandbox(&self, id: &SandboxId) -> impl Future<Output = Result<()>> + Send;

    /// Creates a container in a sandbox without starting it.
    fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> impl Future<Output = Result<ContainerId>> + Send;

    /// Starts a created container's process.
    fn start_container(&self, id: &ContainerId) -> impl Future<Output = Result<()>> + Send;

    /// Stops a container: SIGTERM, then SIGKILL once `grace` has passed (a PID 1 without a
    /// handler ignores SIGTERM, so the escalation is what ends it). Returns once it exited.
    fn stop_container(
        &self,
        id: &ContainerId,
        grace: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Forgets an exited container (its log file stays until the sandbox is removed).
    fn remove_container(&self, id: &ContainerId) -> impl Future<Output = Result<()>> + Send;

    /// One container's status.
    fn container_status(
        &self,
        id: &ContainerId,
    ) -> impl Future<Output = Result<ContainerStatus>> + Send;

    /// Every sandbox the runtime knows, ready or not (for adoption after an agent restart).
    fn list_sandboxes(&self) -> impl Future<Output = Result<Vec<SandboxInfo>>> + Send;

    /// Every container the runtime knows, running or not.
    fn list_containers(&self) -> impl Future<Output = Result<Vec<ContainerStatus>>> + Send;

    /// Runs `argv` inside a running container and waits for it, at most `timeout`
    /// (exec probes; `kubectl exec` without a terminal).
    fn exec_sync(
        &self,
        id: &ContainerId,
        argv: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecOutput>> + Send;

    /// Starts `request.argv` in a running container with its stdin, stdout and stderr (or a
    /// terminal) attached (`kubectl exec`). Runtimes that run no processes say so.
    fn exec(
        &self,
        id: &ContainerId,
        request: &ExecRequest,
    ) -> impl Future<Output = Result<ExecProcess>> + Send {
        let _ = (id, request);
        let name = self.name().to_owned();
        async move {
            Err(RuntimeError::Other(format!(
                "the {name} runtime does not support exec"
            )))
        }
    }

    /// Attaches to a running container's own streams (`kubectl attach`): its output from now
    /// on, and its stdin when `stdin` and the container keeps one open. The returned
    /// process's `exit` resolves when the container ends; dropping it detaches, leaving the
    /// container running. Runtimes that run no processes say so.
    fn attach(
        &self,
        id: &ContainerId,
        stdin: bool,
    ) -> impl Future<Output = Result<ExecProcess>> + Send {
        let _ = (id, stdin);
        let name = self.name().to_owned();
        async move {
            Err(RuntimeError::Other(format!(
                "the {name} runtime does not support attach"
            )))
        }
    }

    /// A receiver told the id of each container whose state changed (it exited, mostly), so
    /// the agent reacts at once instead of at its next relist; the agent still relists
    /// periodically, as kubelet's PLEG does, so a missed message only delays.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ContainerId>;
}
