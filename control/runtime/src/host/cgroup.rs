//! Cgroups for pods and containers: one directory per pod under the agent's parent, one per
//! container under its pod's, in each hierarchy the runtime uses.
//!
//! ```text
//! v1 (this machine, hybrid):  /sys/fs/cgroup/{memory,cpu,pids}/<parent>/pod-<sandbox>/<container>
//! v2 (unified):               /sys/fs/cgroup/<parent>/pod-<sandbox>/<container>
//! ```
//!
//! The version is found at run time: `/sys/fs/cgroup` itself a cgroup2 mount means v2; otherwise
//! each v1 controller's mount point is read from `/proc/mounts`. cpuset is left alone (a v1
//! cpuset child takes no process until `cpuset.cpus`/`cpuset.mems` are copied into it, and kube's
//! limits do not need it). Limits are written when the directory is made, before any process
//! joins, so a container never runs unlimited. The container's init joins by writing `0` (itself)
//! to each `cgroup.procs` before it execs the argv.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Limits;

/// CFS period kube uses (100 ms).
const CFS_PERIOD_US: u64 = 100_000;

/// The cgroup hierarchies the runtime writes to.
#[derive(Debug, Clone)]
pub enum Cgroups {
    /// cgroup v1: one mount point per controller (`None` when the controller is not mounted).
    V1 {
        /// The memory controller's mount point.
        memory: Option<PathBuf>,
        /// The cpu controller's mount point.
        cpu: Option<PathBuf>,
        /// The pids controller's mount point.
        pids: Option<PathBuf>,
    },
    /// cgroup v2: the unified hierarchy's root.
    V2 {
        /// Its mount point.
        root: PathBuf,
    },
}

impl Cgroups {
    /// Finds the machine's hierarchies.
    pub fn detect() -> io::Result<Self> {
        let root = Path::new("/sys/fs/cgroup");
        let is_v2 = nix::sys::statfs::statfs(root)
            .map(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            .unwrap_or(false);
        if is_v2 {
            return Ok(Cgroups::V2 { root: root.into() });
        }
        let mounts = std::fs::read_to_string("/proc/mounts")?;
        let find = |controller: &str| {
            mounts.lines().find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.len() > 3
                    && fields[2] == "cgroup"
                    && fields[3].split(',').any(|option| option == controller))
                .then(|| PathBuf::from(fields[1]))
            })
        };
        Ok(Cgroups::V1 {
            memory: find("memory"),
            cpu: find("cpu"),
            pids: find("pids"),
        })
    }

    /// Whether this is the unified (v2) hierarchy.
    pub fn is_v2(&self) -> bool {
        matches!(self, Cgroups::V2 { .. })
    }

    /// The directories of the cgroup `relative` (one per hierarchy).
    pub fn dirs(&self, relative: &str) -> Vec<PathBuf> {
        match self {
            Cgroups::V1 { memory, cpu, pids } => [memory, cpu, pids]
                .into_iter()
                .flatten()
                .map(|mount| mount.join(relative))
                .collect(),
            Cgroups::V2 { root } => vec![root.join(relative)],
        }
    }

    /// The directory holding the memory controller's files of `relative`.
    pub fn memory_dir(&self, relative: &str) -> Option<PathBuf> {
        match self {
            Cgroups::V1 { memory, .. } => memory.as_ref().map(|mount| mount.join(relative)),
            Cgroups::V2 { root } => Some(root.join(relative)),
        }
    }

    /// Makes the cgroup `relative` (and its parents) and writes `limits` into it.
    pub fn create(&self, relative: &str, limits: &Limits) -> io::Result<()> {
        match self {
            Cgroups::V1 { memory, cpu, pids } => {
                for mount in [memory, cpu, pids].into_iter().flatten() {
                    std::fs::create_dir_all(mount.join(relative))?;
                }
                let need = |what: &str, mount: &Option<PathBuf>| -> io::Result<PathBuf> {
                    mount.as_ref().map(|m| m.join(relative)).ok_or_else(|| {
                        io::Error::other(format!("cannot set a {what} limit: no {what} cgroup"))
                    })
                };
                if let Some(bytes) = limits.memory_bytes {
                    write(&need("memory", memory)?, "memory.limit_in_bytes", bytes)?;
                }
                if let Some(millis) = limits.cpu_millis {
                    let dir = need("cpu", cpu)?;
                    write(&dir, "cpu.cfs_period_us", CFS_PERIOD_US)?;
                    write(&dir, "cpu.cfs_quota_us", cfs_quota(millis))?;
                }
                if let Some(millis) = limits.cpu_request_millis {
                    write(&need("cpu", cpu)?, "cpu.shares", cpu_shares(millis))?;
                }
                if let Some(max) = limits.pids {
                    write(&need("pids", pids)?, "pids.max", max)?;
                }
            }
            Cgroups::V2 { root } => {
                let dir = root.join(relative);
                std::fs::create_dir_all(&dir)?;
                // Controllers must be enabled in every ancestor's subtree_control for the
                // child's files to exist; an ancestor that refuses is reported by the write.
                let mut ancestor = root.clone();
                for part in Path::new(relative).components() {
                    let _ = std::fs::write(
                        ancestor.join("cgroup.subtree_control"),
                        "+memory +cpu +pids",
                    );
                    ancestor.push(part);
                }
                if let Some(bytes) = limits.memory_bytes {
                    write(&dir, "memory.max", bytes)?;
                }
                if let Some(millis) = limits.cpu_millis {
                    let max = format!("{} {CFS_PERIOD_US}", cfs_quota(millis));
                    write(&dir, "cpu.max", max)?;
                }
                if let Some(millis) = limits.cpu_request_millis {
                    // The mapping runc and kubelet use from v1 shares to v2 weight.
                    let weight = 1 + (cpu_shares(millis).saturating_sub(2) * 9999) / 262_142;
                    write(&dir, "cpu.weight", weight)?;
                }
                if let Some(max) = limits.pids {
                    write(&dir, "pids.max", max)?;
                }
            }
        }
        Ok(())
    }

    /// The processes in the cgroup `relative` (any hierarchy: a process is in all of them).
    pub fn procs(&self, relative: &str) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in self.dirs(relative) {
            if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(
                    text.lines()
                        .filter_map(|line| line.trim().parse::<i32>().ok()),
                );
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILLs every process of the cgroup `relative` until none is left (at most `patience`).
    pub fn kill_all(&self, relative: &str, patience: Duration) {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let pids = self.procs(relative);
            if pids.is_empty() || std::time::Instant::now() > deadline {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Removes the cgroup `relative` (its processes killed first); a missing one is fine.
    pub fn remove(&self, relative: &str) -> io::Result<()> {
        self.kill_all(relative, Duration::from_secs(5));
        for dir in self.dirs(relative) {
            // A killed process leaves its cgroup a moment after the signal; retry briefly.
            let mut tries = 0;
            loop {
                match std::fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if tries < 200 => {
                        let _ = e;
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("removing cgroup {}: {e}", dir.display()),
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

/// The OOM-kill counter of a memory cgroup directory (`memory.oom_control` in v1,
/// `memory.events` in v2; both have an `oom_kill N` line).
pub fn oom_kills_in(dir: &Path, v2: bool) -> u64 {
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Moves the calling process into the cgroup directories `dirs` (writing `0` means "me").
pub fn join(dirs: &[PathBuf]) -> io::Result<()> {
    for dir in dirs {
        std::fs::write(dir.join("cgroup.procs"), "0").map_err(|e| {
            io::Error::new(e.kind(), format!("joining cgroup {}: {e}", dir.display()))
        })?;
    }
    Ok(())
}

/// kube's CFS quota for a CPU limit: millicores × period / 1000, at least 1 ms.
fn cfs_quota(millis: u64) -> u64 {
    (millis * CFS_PERIOD_US / 1000).max(1000)
}

/// kube's cpu.shares for a CPU request: millicores × 1024 / 1000, at least 2.
fn cpu_shares(millis: u64) -> u64 {
    (millis * 1024 / 1000).max(2)
}

fn write(dir: &Path, file: &str, value: impl ToString) -> io::Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value.to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_cpu_conversions() {
        assert_eq!(cfs_quota(500), 50_000);
        assert_eq!(cfs_quota(1), 1000);
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_shares(1), 2);
    }
}
