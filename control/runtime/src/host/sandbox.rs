//! Sandboxes: what a pod's containers share.
//!
//! ```text
//! run_sandbox     pod cgroup (limits) → shim nsholder: net, uts (hostname), ipc namespaces
//!                 pinned on files → bridge (first pod) → IP → veth → hosts/resolv.conf/hostname
//! stop_sandbox    (containers killed by the caller) veth, netns, IP released; kept, not ready
//! remove_sandbox  (containers removed by the caller) uts/ipc unmounted, pod cgroup, files, logs
//! ```
//!
//! A failure half-way undoes what was made, so a failed sandbox leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::state::{self, SandboxRecord};
use super::{network, Inner};
use crate::{ContainerId, Result, RuntimeError, Sandbox, SandboxConfig, SandboxId};

impl Inner {
    pub(super) fn sandbox_dir(&self, id: &SandboxId) -> PathBuf {
        self.config.data_dir.join("sandboxes").join(&id.0)
    }

    /// The ids of the sandbox's containers (only the running ones when `running_only`).
    pub(super) fn containers_of(
        &self,
        sandbox: &SandboxId,
        running_only: bool,
    ) -> Vec<ContainerId> {
        let ids: Vec<ContainerId> = {
            let containers = self.containers.lock().unwrap();
            containers
                .values()
                .filter(|record| &record.sandbox == sandbox)
                .map(|record| record.id.clone())
                .collect()
        };
        ids.into_iter()
            .filter(|id| !running_only || self.is_running(id))
            .collect()
    }

    pub(super) fn run_sandbox(&self, config: SandboxConfig, handler: &str) -> Result<Sandbox> {
        let id = SandboxId(state::new_id()?);
        let short = &id.0[..12];
        let mut record = SandboxRecord {
            id: id.clone(),
            ip: None,
            ready: true,
            netns: (!config.host_network).then(|| format!("keel-{}", id.0)),
            host_veth: (!config.host_network).then(|| format!("kv{short}")),
            cgroup: format!("{}/pod-{}", self.config.cgroup_parent, id.0),
            logs: Vec::new(),
            handler: handler.to_owned(),
            config,
        };
        std::fs::create_dir_all(self.sandbox_dir(&id))?;
        // Saved first, so an agent that dies half-way finds and can remove what it made.
        self.save_sandbox(&record)?;
        self.sandboxes
            .lock()
            .unwrap()
            .insert(id.clone(), record.clone());
        if let Err(error) = self.build_sandbox(&mut record) {
            let _ = self.release_network(&record);
            let _ = self.remove_sandbox(&id);
            return Err(RuntimeError::Sandbox(error));
        }
        self.save_sandbox(&record)?;
        self.sandboxes
            .lock()
            .unwrap()
            .insert(id.clone(), record.clone());
        Ok(Sandbox {
            id,
            ip: record.ip.map(Into::into),
        })
    }

    fn build_sandbox(&self, record: &mut SandboxRecord) -> Result<(), String> {
        let dir = self.sandbox_dir(&record.id);
        self.cgroups
            .create(&record.cgroup, &record.config.limits)
            .map_err(|e| format!("pod cgroup: {e}"))?;
        let netns_path = record.netns.as_ref().map(|name| netns_path(name));
        let host_network = record.config.host_network;
        let hostname = if record.config.hostname.is_empty() {
            record.config.name.clone()
        } else {
            record.config.hostname.clone()
        };
        let path_or_dash = |path: Option<PathBuf>| {
            path.map(|p| p.display().to_string())
                .unwrap_or_else(|| "-".into())
        };
        let output = std::process::Command::new(&self.config.shim[0])
            .args(&self.config.shim[1..])
            .arg("nsholder")
            .arg(path_or_dash(netns_path))
            .arg(path_or_dash((!host_network).then(|| dir.join("uts"))))
            .arg(dir.join("ipc"))
            .arg(&hostname)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running the shim {:?}: {e}", self.config.shim[0]))?;
        if !output.status.success() {
            return Err(format!(
                "making the pod's namespaces: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        if let (Some(netns), Some(veth)) = (&record.netns, &record.host_veth) {
            {
                let mut made = self.bridge.lock().unwrap();
                if !*made {
                    network::ensure_bridge(&self.config.bridge, &self.config.pod_cidr)
                        .map_err(|e| format!("node bridge {}: {e}", self.config.bridge))?;
                    *made = true;
                }
            }
            let ip = self
                .ipam
                .lock()
                .unwrap()
                .allocate(&record.id.0)
                .map_err(|e| e.to_string())?;
            record.ip = Some(ip);
            self.save_sandbox(record).map_err(|e| e.to_string())?;
            network::attach(&self.config.bridge, &self.config.pod_cidr, netns, veth, ip)
                .map_err(|e| format!("pod network: {e}"))?;
        }
        let mut hosts = String::from(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost \
             ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n",
        );
        if let Some(ip) = record.ip {
            hosts.push_str(&format!("{ip}\t{hostname}\n"));
        }
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
        };
        write("hosts", &hosts)?;
        write("hostname", &format!("{hostname}\n"))?;
        if let Some(resolv) = &record.config.resolv_conf {
            write("resolv.conf", resolv)?;
        }
        Ok(())
    }

    /// The pod's own files bind-mounted over the host's in each container.
    pub(super) fn sandbox_files(&self, record: &SandboxRecord) -> Vec<crate::Mount> {
        let dir = self.sandbox_dir(&record.id);
        let mut files = Vec::new();
        if !record.config.host_network {
            for name in ["hosts", "hostname"] {
                files.push(crate::Mount {
                    host_path: dir.join(name),
                    container_path: Path::new("/etc").join(name),
                    read_only: false,
                });
            }
        }
        if record.config.resolv_conf.is_some() {
            files.push(crate::Mount {
                host_path: dir.join("resolv.conf"),
                container_path: "/etc/resolv.conf".into(),
                read_only: false,
            });
        }
        files
    }

    pub(super) fn stop_sandbox(&self, id: &SandboxId) -> Result<()> {
        // Stopping a sandbox that is gone succeeds, as CRI's StopPodSandbox does.
        let Some(mut record) = self.sandboxes.lock().unwrap().get(id).cloned() else {
            return Ok(());
        };
        self.release_network(&record)?;
        record.ready = false;
        self.save_sandbox(&record)?;
        self.sandboxes.lock().unwrap().insert(id.clone(), record);
        Ok(())
    }

    /// Removes the veth and the network namespace and gives the IP back (idempotent).
    fn release_network(&self, record: &SandboxRecord) -> Result<()> {
        if let Some(veth) = &record.host_veth {
            network::detach(veth)?;
        }
        if let Some(netns) = &record.netns {
            unpin(&netns_path(netns))?;
        }
        self.ipam.lock().unwrap().release(&record.id.0)?;
        Ok(())
    }

    /// Removes what is left of a stopped sandbox whose containers are removed.
    pub(super) fn remove_sandbox(&self, id: &SandboxId) -> Result<()> {
        let Some(record) = self.sandboxes.lock().unwrap().get(id).cloned() else {
            return Ok(());
        };
        let dir = self.sandbox_dir(id);
        self.release_network(&record)?;
        unpin(&dir.join("uts"))?;
        unpin(&dir.join("ipc"))?;
        self.cgroups.remove(&record.cgroup)?;
        for log in &record.logs {
            let _ = std::fs::remove_file(log);
        }
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        self.sandboxes.lock().unwrap().remove(id);
        Ok(())
    }

    pub(super) fn save_sandbox(&self, record: &SandboxRecord) -> std::io::Result<()> {
        state::save(&self.sandbox_dir(&record.id).join("sandbox.json"), record)
    }
}

/// Where a pod's network namespace is pinned (so `ip -n keel-<id>` and `ip netns` see it).
pub(super) fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// Unmounts a pinned namespace file and removes it; a missing one is fine.
fn unpin(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(RuntimeError::Other(format!(
                "unmounting {}: {e}",
                path.display()
            )))
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}
