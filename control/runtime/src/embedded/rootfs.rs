//! The container's root, built by the shim's `init` stage in the container's own mount
//! namespace (so every mount here vanishes with the container; none reaches the host's):
//!
//! ```text
//! <container dir>/rootfs/merged   overlay: lowerdir = image layers, upperdir, workdir
//!   /proc                         proc of the container's pid namespace
//!   /dev                          tmpfs: null zero full random urandom tty (bind-mounted from
//!                                 the host), pts (new devpts instance), shm, fd/std* links
//!   /sys                          sysfs, read-only
//!   /etc/hosts, resolv.conf, …    the pod's files and the volumes, bind-mounted
//! pivot_root into it, the old root detached
//! ```
//!
//! Mount points are resolved inside the root (`secure_join`): a symlink in the image (say
//! `/etc/resolv.conf → /run/…`, or a hostile `/data → /`) is followed as the container would
//! see it, never into the host's tree.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::host::shim::{bind, mount};
use crate::Mount;

/// How many symlinks a path may cross before it is refused (Linux's own limit).
const MAX_SYMLINKS: usize = 40;
/// Device nodes a container gets from the host.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Where a container's overlay comes from, as the runtime tells the shim.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RootfsSpec {
    /// The image's unpacked layers, topmost first (overlay's lowerdir order).
    pub lower: Vec<PathBuf>,
    /// The container's writable layer.
    pub upper: PathBuf,
    /// overlayfs's work directory (same filesystem as `upper`).
    pub work: PathBuf,
    /// Where the overlay is mounted (in the container's mount namespace only).
    pub merged: PathBuf,
}

/// The overlay's mount options; the kernel takes at most one page of them.
pub fn overlay_options(rootfs: &RootfsSpec) -> Result<String, String> {
    let lower: Vec<String> = rootfs
        .lower
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if lower.iter().any(|p| p.contains([':', ','])) {
        return Err("a layer path contains ':' or ','".into());
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        rootfs.upper.display(),
        rootfs.work.display()
    );
    if options.len() >= 4096 {
        return Err(format!(
            "the image has too many layers ({}) for one overlay mount",
            rootfs.lower.len()
        ));
    }
    Ok(options)
}

/// Builds the root and pivots into it (the calling process's mount namespace is already
/// private); `mounts` are the pod's files and volumes.
pub fn enter(rootfs: &RootfsSpec, mounts: &[Mount]) -> Result<(), String> {
    let root = rootfs.merged.as_path();
    let options = overlay_options(rootfs)?;
    nix::mount::mount(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| format!("mounting the image's layers (overlay): {}", e.desc()))?;
    let dir = |path: &str| -> Result<PathBuf, String> {
        let target = secure_join(root, Path::new(path))?;
        std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        Ok(target)
    };
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some(Path::new("proc")),
        &dir("/proc")?,
        Some("proc"),
        nosuid_nodev_noexec,
    )?;
    mount_with(
        "tmpfs",
        &dir("/dev")?,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        "mode=755,size=65536k",
    )?;
    let dev = secure_join(root, Path::new("/dev"))?;
    for name in DEVICES {
        let target = dev.join(name);
        File::create(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        mount(
            Some(&Path::new("/dev").join(name)),
            &target,
            None,
            MsFlags::MS_BIND,
        )?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .map_err(|e| format!("/dev/{link}: {e}"))?;
    }
    mount_with(
        "devpts",
        &dir("/dev/pts")?,
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )?;
    mount_with(
        "shm",
        &dir("/dev/shm")?,
        "tmpfs",
        nosuid_nodev_noexec,
        "mode=1777,size=65536k",
    )?;
    mount(
        Some(Path::new("sysfs")),
        &dir("/sys")?,
        Some("sysfs"),
        nosuid_nodev_noexec | MsFlags::MS_RDONLY,
    )?;
    for volume in mounts {
        let target = secure_join(root, &volume.container_path)?;
        bind(&volume.host_path, &target, volume.read_only)?;
    }
    pivot(root)
}

/// pivot_root into `root` with the old root stacked on the same directory, then detached
/// (runc's way: no directory for the old root is needed in the image).
fn pivot(root: &Path) -> Result<(), String> {
    nix::unistd::chdir(root).map_err(|e| format!("chdir {}: {}", root.display(), e.desc()))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {}", e.desc()))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| format!("detaching the old root: {}", e.desc()))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {}", e.desc()))
}

fn mount_with(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> Result<(), String> {
    nix::mount::mount(Some(source), target, Some(fstype), flags, Some(data))
        .map_err(|e| format!("mount {fstype} on {}: {}", target.display(), e.desc()))
}

/// `path` inside `root`, with symlinks resolved as if `root` were `/` (an absolute link
/// restarts at `root`, `..` stops at it).
pub fn secure_join(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let parts = |path: &Path| -> VecDeque<OsString> {
        path.components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part.to_owned()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect()
    };
    let mut pending = parts(path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let on_disk = root.join(&candidate);
        match std::fs::symlink_metadata(&on_disk) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(format!(
                        "{}: too many levels of symbolic links",
                        path.display()
                    ));
                }
                let target = std::fs::read_link(&on_disk)
                    .map_err(|e| format!("{}: {e}", on_disk.display()))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let mut expanded = parts(&target);
                expanded.extend(pending);
                pending = expanded;
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("run/systemd")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/run/systemd/resolv.conf", root.join("etc/resolv.conf"))
            .unwrap();
        std::os::unix::fs::symlink("../../..", root.join("run/systemd/up")).unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let join = |p: &str| secure_join(root, Path::new(p)).unwrap();
        assert_eq!(
            join("/etc/resolv.conf"),
            root.join("run/systemd/resolv.conf")
        );
        assert_eq!(join("/run/systemd/up/etc"), root.join("etc"));
        assert_eq!(join("/escape/etc/passwd"), root.join("etc/passwd"));
        assert_eq!(join("/../../etc"), root.join("etc"));
        assert_eq!(join("/new/dir"), root.join("new/dir"));
        assert!(secure_join(root, Path::new("/loop/x")).is_err());
    }

    #[test]
    fn overlay_options_stack_the_top_layer_first_and_have_a_limit() {
        let spec = RootfsSpec {
            lower: vec!["/l/top".into(), "/l/base".into()],
            upper: "/c/upper".into(),
            work: "/c/work".into(),
            merged: "/c/merged".into(),
        };
        assert_eq!(
            overlay_options(&spec).unwrap(),
            "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work"
        );
        let many = RootfsSpec {
            lower: (0..100)
                .map(|i| PathBuf::from(format!("/{}/{i}", "x".repeat(64))))
                .collect(),
            ..spec
        };
        assert!(overlay_options(&many)
            .unwrap_err()
            .contains("too many layers (100)"));
    }
}
