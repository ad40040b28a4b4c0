//! The `embedded` runtime: containers from OCI images, Rust end to end (no runc). It is the
//! host runtime (`host/`: sandboxes, the pod network, cgroups, the shim, logs, exec) with
//! one difference: a container's root is an overlay of its image's layers from the node's
//! image store (`image/`), and its process, env, working directory and user come from the
//! image config, overridden by the pod.
//!
//! ```text
//! HostRuntime::embedded(store)           the same sandboxes, IPs and cgroups as `host`;
//!   create_container                      sandboxes remember which handler made them
//!     prepare() (this file)  ──────────▶  spec.json + rootfs: lower = image layers,
//!       image missing → ErrImagePull      <container dir>/rootfs/{upper,work,merged}
//!   shim init ── rootfs::enter ────────▶  overlay, /proc, /dev, /sys, pod files, volumes,
//!                                         pivot_root; then the user; exec
//!   remove_container                      the container dir (upper layer) goes; the overlay
//!                                         was only ever mounted in the container's own
//!                                         mount namespace, so it ended with the container
//! ```
//!
//! An agent restart needs no mount cleanup for the same reason: nothing of a container is
//! mounted in the host's mount namespace.
//!
//! The process (containerd's rule, from Docker): the pod's `command` replaces the image's
//! Entrypoint and drops its Cmd; `args` alone follow the Entrypoint in place of Cmd; neither
//! runs Entrypoint + Cmd. The env is the image's Env then the pod's (the pod's win); the
//! working directory the pod's, else the image's, else `/`.

pub mod rootfs;
pub mod user;

use std::path::{Path, PathBuf};

use crate::image::{ImageError, ImageStore};
use crate::{ContainerConfig, Mount, RuntimeError};

pub use rootfs::RootfsSpec;
pub use user::UserIds;

/// What a container of an image runs: the parts of the shim's spec the image decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The argv.
    pub argv: Vec<String>,
    /// The env: the image's, then the pod's.
    pub env: Vec<(String, String)>,
    /// The working directory inside the root.
    pub working_dir: PathBuf,
    /// The overlay.
    pub rootfs: RootfsSpec,
    /// Who the process runs as.
    pub user: UserIds,
    /// The host's files the pod does not replace (`/etc/resolv.conf`, and with host
    /// networking `/etc/hosts`), mounted before the pod's own.
    pub host_files: Vec<Mount>,
}

/// Resolves `config.image` in `store` and works out the container's process and root, whose
/// writable layer lives under `dir` (made here).
pub fn prepare(
    store: &ImageStore,
    config: &ContainerConfig,
    pod_files: &[Mount],
    dir: &Path,
) -> Result<Prepared, RuntimeError> {
    let image = store.resolve(&config.image).map_err(|e| match e {
        ImageError::NotFound(_) | ImageError::InvalidReference(_) => RuntimeError::ImagePull {
            image: config.image.clone(),
            message: e.to_string(),
        },
        other => RuntimeError::CreateContainer(format!(
            "the image {:?} cannot be used: {other}",
            config.image
        )),
    })?;
    let run = &image.config;
    let argv = process(config, run.entrypoint.as_deref(), run.cmd.as_deref())?;
    let mut env: Vec<(String, String)> = run
        .env
        .iter()
        .flatten()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (pair.clone(), String::new()),
        })
        .collect();
    env.extend(config.env.iter().cloned());
    let user = user::resolve(run.user.as_deref().unwrap_or(""), &image.layers)
        .map_err(RuntimeError::CreateContainer)?;
    if !env.iter().any(|(key, _)| key == "HOME") {
        env.push(("HOME".into(), user.home.clone()));
    }
    let working_dir = config
        .working_dir
        .clone()
        .or_else(|| {
            run.working_dir
                .as_ref()
                .filter(|w| !w.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("/"));
    if !working_dir.is_absolute() {
        return Err(RuntimeError::CreateContainer(format!(
            "the working directory {working_dir:?} is not absolute"
        )));
    }
    let root = dir.join("rootfs");
    let rootfs = RootfsSpec {
        lower: image.layers.iter().rev().cloned().collect(),
        upper: root.join("upper"),
        work: root.join("work"),
        merged: root.join("merged"),
    };
    rootfs::overlay_options(&rootfs).map_err(RuntimeError::CreateContainer)?;
    for made in [&rootfs.upper, &rootfs.work, &rootfs.merged] {
        std::fs::create_dir_all(made)?;
    }
    let host_files = ["/etc/resolv.conf", "/etc/hosts"]
        .into_iter()
        .map(Path::new)
        .filter(|path| path.is_file() && !pod_files.iter().any(|m| m.container_path == *path))
        .map(|path| Mount {
            host_path: path.to_owned(),
            container_path: path.to_owned(),
            read_only: true,
        })
        .collect();
    Ok(Prepared {
        argv,
        env,
        working_dir,
        rootfs,
        user,
        host_files,
    })
}

/// The argv from the pod's command/args and the image's Entrypoint/Cmd.
fn process(
    config: &ContainerConfig,
    entrypoint: Option<&[String]>,
    cmd: Option<&[String]>,
) -> Result<Vec<String>, RuntimeError> {
    let argv = if config.command_given {
        config.argv.clone()
    } else {
        // An Entrypoint of [""] means "none" (Docker's `--entrypoint ""`).
        let entrypoint = entrypoint
            .filter(|e| !(e.len() == 1 && e[0].is_empty()))
            .unwrap_or(&[]);
        let args = if config.argv.is_empty() {
            cmd.unwrap_or(&[])
        } else {
            &config.argv
        };
        entrypoint.iter().chain(args).cloned().collect()
    };
    if argv.is_empty() {
        return Err(RuntimeError::CreateContainer(
            "no command specified".to_owned(),
        ));
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(command_given: bool, argv: &[&str]) -> ContainerConfig {
        ContainerConfig {
            name: "c".into(),
            attempt: 0,
            image: "app".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            command_given,
            working_dir: None,
            env: vec![],
            mounts: vec![],
            limits: Default::default(),
            log_path: "/dev/null".into(),
            labels: Default::default(),
            stdio: Default::default(),
        }
    }

    #[test]
    fn the_process_follows_containerds_rule() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (entry, cmd) = (words(&["/app"]), words(&["--serve"]));
        let run = |c: &ContainerConfig| process(c, Some(&entry), Some(&cmd)).unwrap();
        assert_eq!(run(&config(false, &[])), words(&["/app", "--serve"]));
        assert_eq!(run(&config(false, &["-v"])), words(&["/app", "-v"]));
        assert_eq!(
            run(&config(true, &["sh", "-c", "x"])),
            words(&["sh", "-c", "x"])
        );
        let none = words(&[""]);
        assert_eq!(
            process(&config(false, &[]), Some(&none), Some(&cmd)).unwrap(),
            words(&["--serve"])
        );
        let error = process(&config(false, &[]), None, None).unwrap_err();
        assert_eq!(error.to_string(), "no command specified");
    }
}
