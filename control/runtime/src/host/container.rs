//! Containers: their life from `create` to `remove`.
//!
//! ```text
//! create  container cgroup with its limits, spec.json for the shim     Created
//! start   spawn `shim run` (setsid), read its one-line handshake      Running / StartError
//!         a task waits for the supervisor (or, adopted after an agent restart, polls for
//!         exit.json) and publishes the exit to subscribers             Exited
//! stop    SIGTERM to PID 1; after the grace SIGKILL to it and to every process of the cgroup
//! exec    `shim exec` in the container's namespaces and cgroup, killed with its process
//!         group at the timeout
//! remove  cgroup and state directory (the log stays until the sandbox goes)
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncBufReadExt;

use super::state::{self, ContainerRecord, Exit, Phase, Spec};
use super::Inner;
use crate::{
    ContainerConfig, ContainerId, ContainerState, ContainerStatus, ExecOutput, Result,
    RuntimeError, SandboxId,
};

/// How long a supervisor may take to report that the argv started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGKILLed container may take to be reaped.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an adopted container's exit is looked for.
const ADOPTED_POLL: Duration = Duration::from_millis(100);

impl Inner {
    pub(super) fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.config.data_dir.join("containers").join(&id.0)
    }

    pub(super) fn record(&self, id: &ContainerId) -> Result<ContainerRecord> {
        self.containers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| RuntimeError::NotFound(format!("container {:?}", id.0)))
    }

    fn save_container(&self, record: &ContainerRecord) -> Result<()> {
        state::save(
            &self.container_dir(&record.id).join("container.json"),
            record,
        )?;
        self.containers
            .lock()
            .unwrap()
            .insert(record.id.clone(), record.clone());
        Ok(())
    }

    pub(super) fn create_container(
        &self,
        sandbox: &SandboxId,
        config: ContainerConfig,
        images: Option<&crate::image::ImageStore>,
    ) -> Result<ContainerId> {
        let Some(mut pod) = self.sandboxes.lock().unwrap().get(sandbox).cloned() else {
            return Err(RuntimeError::NotFound(format!("sandbox {:?}", sandbox.0)));
        };
        if !pod.ready {
            return Err(RuntimeError::CreateContainer(format!(
                "sandbox {:?} is not ready",
                sandbox.0
            )));
        }
        if config.argv.is_empty() && images.is_none() {
            return Err(RuntimeError::CreateContainer("no command to run".into()));
        }
        for volume in &config.mounts {
            if !volume.host_path.exists() {
                return Err(RuntimeError::CreateContainer(format!(
                    "failed to create the container: mount source path {:?} does not exist",
                    volume.host_path
                )));
            }
        }
        let id = ContainerId(state::new_id()?);
        let dir = self.container_dir(&id);
        std::fs::create_dir_all(&dir)?;
        let pod_files = self.sandbox_files(&pod);
        let image = match images {
            Some(store) => match crate::embedded::prepare(store, &config, &pod_files, &dir) {
                Ok(prepared) => Some(prepared),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e);
                }
            },
            None => None,
        };
        let cgroup = format!("{}/{}", pod.cgroup, id.0);
        if let Err(e) = self.cgroups.create(&cgroup, &config.limits) {
            let _ = self.cgroups.remove(&cgroup);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(RuntimeError::CreateContainer(format!(
                "container cgroup: {e}"
            )));
        }
        let mut mounts = image
            .as_ref()
            .map(|prepared| prepared.host_files.clone())
            .unwrap_or_default();
        mounts.extend(pod_files);
        mounts.extend(config.mounts.iter().cloned());
        let (argv, env, working_dir) = match &image {
            Some(prepared) => (
                prepared.argv.clone(),
                prepared.env.clone(),
                prepared.working_dir.clone(),
            ),
            None => (
                config.argv.clone(),
                config.env.clone(),
                config.working_dir.clone().unwrap_or_else(|| "/".into()),
            ),
        };
        let spec = Spec {
            argv,
            env,
            working_dir,
            mounts,
            netns: pod.netns.as_deref().map(super::sandbox::netns_path),
            uts: (!pod.config.host_network).then(|| self.sandbox_dir(sandbox).join("uts")),
            ipc: self.sandbox_dir(sandbox).join("ipc"),
            cgroup_dirs: self.cgroups.dirs(&cgroup),
            memory_cgroup: self.cgroups.memory_dir(&cgroup),
            cgroup_v2: self.cgroups.is_v2(),
            log_path: config.log_path.clone(),
            shim: self.config.shim.clone(),
            stdio: config.stdio,
            rootfs: image.as_ref().map(|prepared| prepared.rootfs.clone()),
            user: image.map(|prepared| prepared.user),
        };
        state::save(&dir.join("spec.json"), &spec)?;
        pod.logs.push(config.log_path.clone());
        self.save_sandbox(&pod)?;
        self.sandboxes.lock().unwrap().insert(sandbox.clone(), pod);
        let record = ContainerRecord {
            id: id.clone(),
            sandbox: sandbox.clone(),
            config,
            cgroup,
            phase: Phase::Created,
        };
        self.save_container(&record)?;
        Ok(id)
    }

    pub(super) async fn start_container(self: Arc<Self>, id: &ContainerId) -> Result<()> {
        let mut record = self.record(id)?;
        if record.phase != Phase::Created {
            return Err(RuntimeError::Start(format!(
                "container {:?} was already started",
                id.0
            )));
        }
        let dir = self.container_dir(id);
        let shim_log = std::fs::File::create(dir.join("shim.log"))?;
        let mut child = tokio::process::Command::new(&self.config.shim[0])
            .args(&self.config.shim[1..])
            .arg("run")
            .arg(&dir)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(shim_log)
            .process_group(0)
            .spawn()
            .map_err(|e| RuntimeError::Start(format!("running the shim: {e}")))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stdout);
        let read = tokio::time::timeout(START_TIMEOUT, reader.read_line(&mut line)).await;
        let line = line.trim_end();
        if let (Ok(Ok(_)), Some(pid)) = (&read, line.strip_prefix("started ")) {
            let init: i32 = pid
                .parse()
                .map_err(|_| RuntimeError::Other(format!("shim handshake {line:?}")))?;
            let supervisor = child.id().map(|pid| pid as i32).unwrap_or(0);
            record.phase = Phase::Running {
                started_at: SystemTime::now(),
                supervisor,
                init,
            };
            self.save_container(&record)?;
            let inner = Arc::clone(&self);
            let id = id.clone();
            tokio::spawn(async move {
                let _ = child.wait().await;
                inner.observe_exit(&id, true);
            });
            return Ok(());
        }
        // A start error (the supervisor wrote exit.json before its "error" line) or a broken
        // shim.
        let _ = child.start_kill();
        let _ = child.wait().await;
        let (exit, message) = match state::load::<Exit>(&dir.join("exit.json")) {
            Ok(exit) => {
                let message = exit.message.clone();
                (exit, message)
            }
            Err(_) => {
                let log = std::fs::read_to_string(dir.join("shim.log")).unwrap_or_default();
                let message = format!("the shim failed: {}", log.trim());
                let now = SystemTime::now();
                let exit = Exit {
                    started_at: now,
                    finished_at: now,
                    exit_code: 128,
                    reason: "StartError".into(),
                    message: message.clone(),
                };
                (exit, message)
            }
        };
        record.phase = Phase::Exited(exit);
        self.save_container(&record)?;
        let _ = self.events.send(id.clone());
        Err(RuntimeError::Start(message))
    }

    /// Records the container's exit if its supervisor wrote one; `gone` says the supervisor
    /// has ended, so a missing exit.json means it was lost. Returns whether it has exited.
    pub(super) fn observe_exit(&self, id: &ContainerId, gone: bool) -> bool {
        let Ok(mut record) = self.record(id) else {
            return true;
        };
        let started_at = match &record.phase {
            Phase::Exited(_) => return true,
            Phase::Created => return false,
            Phase::Running { started_at, .. } => *started_at,
        };
        let exit = match state::load::<Exit>(&self.container_dir(id).join("exit.json")) {
            Ok(exit) => exit,
            Err(_) if gone => {
                let log = std::fs::read_to_string(self.container_dir(id).join("shim.log"));
                Exit {
                    started_at,
                    finished_at: SystemTime::now(),
                    exit_code: 137,
                    reason: "Error".into(),
                    message: format!(
                        "the container's supervisor was lost: {}",
                        log.unwrap_or_default().trim()
                    ),
                }
            }
            Err(_) => return false,
        };
        record.phase = Phase::Exited(exit);
        if self.save_container(&record).is_err() {
            return false;
        }
        let _ = self.events.send(id.clone());
        true
    }

    /// Brings a running container's phase up to date (its exit.json may have appeared).
    pub(super) fn refresh(&self, id: &ContainerId) {
        let _ = self.observe_exit(id, false);
    }

    pub(super) fn is_running(&self, id: &ContainerId) -> bool {
        self.refresh(id);
        matches!(self.record(id).map(|r| r.phase), Ok(Phase::Running { .. }))
    }

    pub(super) async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<()> {
        let mut events = self.events.subscribe();
        let record = self.record(id)?;
        let init = match record.phase {
            Phase::Running { init, .. } if self.is_running(id) => init,
            _ => return Ok(()),
        };
        let _ = kill(Pid::from_raw(init), Signal::SIGTERM);
        if self.wait_exit(id, grace, &mut events).await {
            return Ok(());
        }
        let _ = kill(Pid::from_raw(init), Signal::SIGKILL);
        let cgroups = self.cgroups.clone();
        let cgroup = record.cgroup.clone();
        let _ =
            tokio::task::spawn_blocking(move || cgroups.kill_all(&cgroup, Duration::from_secs(2)))
                .await;
        if self.wait_exit(id, KILL_TIMEOUT, &mut events).await {
            return Ok(());
        }
        Err(RuntimeError::Other(format!(
            "container {:?} did not exit after SIGKILL",
            id.0
        )))
    }

    /// Waits up to `patience` for the container to have exited.
    async fn wait_exit(
        &self,
        id: &ContainerId,
        patience: Duration,
        events: &mut tokio::sync::broadcast::Receiver<ContainerId>,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if !self.is_running(id) {
                return true;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return false;
            }
            // The event is the fast path; the short poll covers a missed or lagged one.
            let poll = (deadline - now).min(Duration::from_millis(50));
            let _ = tokio::time::timeout(poll, events.recv()).await;
        }
    }

    pub(super) fn remove_container(&self, id: &ContainerId) -> Result<()> {
        let Ok(record) = self.record(id) else {
            return Ok(());
        };
        self.cgroups.remove(&record.cgroup)?;
        match std::fs::remove_dir_all(self.container_dir(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        self.containers.lock().unwrap().remove(id);
        Ok(())
    }

    pub(super) async fn exec_sync(
        &self,
        id: &ContainerId,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        if argv.is_empty() {
            return Err(RuntimeError::Other("no command to exec".into()));
        }
        if !self.is_running(id) {
            return Err(RuntimeError::Other(format!(
                "container {:?} is not running",
                id.0
            )));
        }
        let child = tokio::process::Command::new(&self.config.shim[0])
            .args(&self.config.shim[1..])
            .arg("exec")
            .arg(self.container_dir(id))
            .args(argv)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let group = child.id().map(|pid| Pid::from_raw(pid as i32));
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(output) => {
                let output = output?;
                Ok(ExecOutput {
                    exit_code: output.status.code().unwrap_or(137),
                    stdout: output.stdout,
                    stderr: output.stderr,
                })
            }
            Err(_) => {
                // The shim and the command it runs share its process group.
                if let Some(group) = group {
                    let _ = killpg(group, Signal::SIGKILL);
                }
                Err(RuntimeError::Other(format!(
                    "command {argv:?} timed out after {timeout:?}"
                )))
            }
        }
    }
}

/// Follows a container an earlier runtime started: its supervisor is not this process's
/// child, so its exit is learned from exit.json (or from the supervisor vanishing).
pub(super) async fn watch_adopted(inner: Arc<Inner>, id: ContainerId) {
    loop {
        let supervisor = match inner.record(&id).map(|record| record.phase) {
            Ok(Phase::Running { supervisor, .. }) => supervisor,
            _ => return,
        };
        if inner.observe_exit(&id, false) {
            return;
        }
        if !alive(supervisor) {
            // It may have written exit.json just before going.
            inner.observe_exit(&id, true);
            return;
        }
        tokio::time::sleep(ADOPTED_POLL).await;
    }
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The trait's view of a container record.
pub(super) fn status_of(record: &ContainerRecord) -> ContainerStatus {
    let state = match &record.phase {
        Phase::Created => ContainerState::Created,
        Phase::Running { started_at, .. } => ContainerState::Running {
            started_at: *started_at,
        },
        Phase::Exited(exit) => ContainerState::Exited {
            started_at: exit.started_at,
            finished_at: exit.finished_at,
            exit_code: exit.exit_code,
            reason: exit.reason.clone(),
            message: exit.message.clone(),
        },
    };
    ContainerStatus {
        id: record.id.clone(),
        sandbox: record.sandbox.clone(),
        name: record.config.name.clone(),
        attempt: record.config.attempt,
        image: record.config.image.clone(),
        state,
        labels: record.config.labels.clone(),
    }
}
