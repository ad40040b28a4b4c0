//! The host runtime's helper process (`keel-runtime-shim MODE …`, or the same modes behind a
//! hidden subcommand of a binary that calls [`main`]). It exists because namespaces must be
//! entered by a single-threaded process between fork and exec, which a Tokio agent cannot do
//! without `unsafe` (`pre_exec`); a fresh process can, with nix's safe `unshare`/`setns`/`mount`.
//!
//! ```text
//! agent ──spawn──▶ shim nsholder …      unshare(net, uts, ipc), sethostname, bind-mount the
//!                                       namespace files (they outlive it), exit
//! agent ──spawn──▶ shim run <dir>       the container's supervisor: setsid (it outlives the
//!   │  "started <pid>" / "error <msg>"   agent), setns(pod net, uts, ipc), unshare(pid),
//!   │◀────────── one line on stdout      spawns ▼, copies its stdout/stderr into the CRI log,
//!   │                                   waits, writes exit.json (code, reason, OOM), exits
//!   │              shim init <dir>      PID 1 of the new pid namespace: unshare(mount), joins
//!   │                                   the container's cgroups (limits already set), mounts
//!   │                                   /proc, /etc/{hosts,resolv.conf,hostname}, volumes (or,
//!   │                                   with an image, builds its root: embedded/rootfs.rs);
//!   │                                   the image's user, chdir, exec(argv) with exactly the
//!   │                                   given env. Failing that, it writes why on fd 0 (the
//!   │                                   status pipe)
//! agent ──spawn──▶ shim exec <dir> argv joins the init's namespaces and cgroups, runs argv,
//!                                       exits with its code
//! agent ──spawn──▶ shim exec-tty …      the same with a terminal (the agent's pty on fds 0-2):
//!                    └─▶ shim session   in the container: setsid, the terminal made its
//!                                       controlling one (TIOCSCTTY), exec(argv)
//! ```
//!
//! The status pipe is how a start error becomes synchronous: `init`'s stdin is the pipe's write
//! end, reopened close-on-exec through `/proc/self/fd/0` and replaced by /dev/null for the argv,
//! so a successful exec closes every write end and the supervisor reads end-of-file; a failure
//! arrives as text (`exec: "nosuch": executable file not found in $PATH`, runc's words).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::SystemTime;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::state::{self, Exit, Spec};

/// The PATH a container gets when its env has none (runc's and containerd's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs the shim mode named by `args[0]` and exits with its status.
pub fn main(args: &[String]) -> ! {
    let result = match args.first().map(String::as_str) {
        Some("nsholder") if args.len() == 5 => nsholder(&args[1], &args[2], &args[3], &args[4]),
        Some("run") if args.len() == 2 => supervise(Path::new(&args[1])),
        Some("init") if args.len() == 2 => init(Path::new(&args[1])),
        Some("exec") if args.len() >= 3 => exec(Path::new(&args[1]), &args[2..], false),
        Some("exec-tty") if args.len() >= 3 => exec(Path::new(&args[1]), &args[2..], true),
        Some("session") if args.len() >= 3 => session(&args[1], &args[2..]),
        _ => Err(
            "usage: keel-runtime-shim nsholder NET UTS IPC HOSTNAME | run DIR | init DIR | \
                  exec DIR ARGV… | exec-tty DIR ARGV… | session PROGRAM ARGV…"
                .into(),
        ),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(message) => {
            eprintln!("keel-runtime-shim: {message}");
            std::process::exit(1)
        }
    }
}

type ShimResult<T> = Result<T, String>;

fn context<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

/// Makes the pod's namespaces and pins each one by bind-mounting it onto a file (`-` skips
/// one): network, UTS (with `hostname`), IPC.
fn nsholder(net: &str, uts: &str, ipc: &str, hostname: &str) -> ShimResult<i32> {
    let mut flags = CloneFlags::CLONE_NEWIPC;
    if net != "-" {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if uts != "-" {
        flags |= CloneFlags::CLONE_NEWUTS;
    }
    nix::sched::unshare(flags).map_err(context("unshare"))?;
    if uts != "-" {
        nix::unistd::sethostname(hostname).map_err(context("sethostname"))?;
    }
    for (kind, target) in [("net", net), ("uts", uts), ("ipc", ipc)] {
        if target == "-" {
            continue;
        }
        let target = Path::new(target);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(context(parent.display()))?;
        }
        File::create(target).map_err(context(target.display()))?;
        let source = format!("/proc/self/ns/{kind}");
        nix::mount::mount(
            Some(source.as_str()),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(context(format!(
            "bind-mounting {source} on {}",
            target.display()
        )))?;
    }
    Ok(0)
}

/// The container's supervisor: see the module doc. Its stdout is the agent's handshake pipe.
fn supervise(dir: &Path) -> ShimResult<i32> {
    // Its own session: the agent's terminal signals and death do not reach it.
    let _ = nix::unistd::setsid();
    let spec: Spec = state::load(&dir.join("spec.json")).map_err(|e| e.to_string())?;
    let started_at = SystemTime::now();
    let log = open_log(&spec.log_path)?;
    let outcome = spawn_init(dir, &spec);
    let mut handshake = std::io::stdout();
    let Spawned {
        mut child,
        outputs,
        stdin,
        terminal,
    } = match outcome {
        Ok(parts) => parts,
        Err(message) => {
            let exit = Exit {
                started_at,
                finished_at: SystemTime::now(),
                exit_code: 128,
                reason: "StartError".into(),
                message: message.clone(),
            };
            state::save(&dir.join("exit.json"), &exit).map_err(|e| e.to_string())?;
            let _ = writeln!(handshake, "error {}", message.replace('\n', " "));
            return Ok(0);
        }
    };
    // The attach socket is bound before the agent hears "started", so an attach right after
    // the start finds it.
    let mut streams =
        super::attach::Streams::new(dir, outputs, stdin, terminal, spec.stdio.stdin_once);
    let init_pid = child.id();
    let _ = writeln!(handshake, "started {init_pid}");
    let _ = handshake.flush();
    let mut log = log;
    // PID 1's death ends its pid namespace, so every holder of the pipes (or the terminal) is
    // gone and the copy sees end-of-file.
    streams.run(&mut log);
    let status = child.wait().map_err(context("waiting for the container"))?;
    let exit_code = exit_code(status);
    let oom = spec
        .memory_cgroup
        .as_deref()
        .map(|memory| super::cgroup::oom_kills_in(memory, spec.cgroup_v2) > 0)
        .unwrap_or(false);
    let reason = if oom {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let exit = Exit {
        started_at,
        finished_at: SystemTime::now(),
        exit_code,
        reason: reason.into(),
        message: String::new(),
    };
    state::save(&dir.join("exit.json"), &exit).map_err(|e| e.to_string())?;
    streams.exited(dir, exit_code);
    Ok(0)
}

/// The container's init, spawned, and its streams as the supervisor holds them.
struct Spawned {
    child: std::process::Child,
    /// Its stdout and stderr pipes, or its terminal's master.
    outputs: Vec<super::attach::Output>,
    /// Where attached clients' input goes (non-blocking), when it keeps stdin open.
    stdin: Option<File>,
    /// Its terminal's master, for resizes.
    terminal: Option<File>,
}

/// Enters the pod's namespaces, makes the pid namespace and spawns `init` as its PID 1; returns
/// once `init` has exec'd the argv (or with why it could not).
fn spawn_init(dir: &Path, spec: &Spec) -> ShimResult<Spawned> {
    for (path, flag) in [
        (spec.netns.as_deref(), CloneFlags::CLONE_NEWNET),
        (spec.uts.as_deref(), CloneFlags::CLONE_NEWUTS),
        (Some(spec.ipc.as_path()), CloneFlags::CLONE_NEWIPC),
    ] {
        if let Some(path) = path {
            let file = File::open(path)
                .map_err(context(format!("the pod's namespace {}", path.display())))?;
            nix::sched::setns(&file, flag).map_err(context(format!("setns {}", path.display())))?;
        }
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(context("unshare(pid)"))?;
    let (status_read, status_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(context("pipe"))?;
    let mut status_read = File::from(status_read);
    let mut command = Command::new("/proc/self/exe");
    command
        .args(spec.shim.iter().skip(1))
        .arg("init")
        .arg(dir)
        .env_clear()
        .stdin(Stdio::from(status_write));
    let terminal = if spec.stdio.tty {
        let (master, slave) = super::exec::open_pty().map_err(context("a terminal"))?;
        command
            .stdout(Stdio::from(
                slave.try_clone().map_err(context("a terminal"))?,
            ))
            .stderr(Stdio::from(slave));
        Some(master)
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        None
    };
    // A container that keeps stdin open reads a FIFO; the supervisor holds it open for
    // writing (O_RDWR never blocks on open) so it sees end-of-file only when that is closed.
    let fifo = if spec.stdio.stdin && !spec.stdio.tty {
        let path = dir.join(super::attach::STDIN_FIFO);
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(
            &path,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .map_err(context("the stdin FIFO"))?;
        Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
                .open(&path)
                .map_err(context("the stdin FIFO"))?,
        )
    } else {
        None
    };
    let mut child = command
        .spawn()
        .map_err(context("spawning the container's init"))?;
    // The command holds the write end and the terminal's slave until dropped; the read must
    // see only init's, and the master must see end-of-file once the container is gone.
    drop(command);
    let mut message = String::new();
    let _ = status_read.read_to_string(&mut message);
    if !message.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(message);
    }
    if let Some(master) = terminal {
        // Output is read when poll says so; input must never block the supervisor's loop.
        let flags = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(context("the terminal"))?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(context("the terminal"))?;
        let clone = |file: &File| file.try_clone().map_err(context("the terminal"));
        return Ok(Spawned {
            child,
            outputs: vec![super::attach::Output {
                channel: super::attach::STDOUT,
                file: clone(&master)?,
            }],
            stdin: spec.stdio.stdin.then(|| clone(&master)).transpose()?,
            terminal: Some(master),
        });
    }
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    Ok(Spawned {
        child,
        outputs: vec![
            super::attach::Output {
                channel: super::attach::STDOUT,
                file: File::from(std::os::fd::OwnedFd::from(stdout)),
            },
            super::attach::Output {
                channel: super::attach::STDERR,
                file: File::from(std::os::fd::OwnedFd::from(stderr)),
            },
        ],
        stdin: fifo,
        terminal: None,
    })
}

/// PID 1 of the container: see the module doc. Returns only on failure, after reporting it.
fn init(dir: &Path) -> ShimResult<i32> {
    let mut status = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/0")
        .map_err(context("the status pipe"))?;
    let error = match prepare_and_exec(dir) {
        Ok(never) => match never {},
        Err(error) => error,
    };
    let _ = status.write_all(error.as_bytes());
    Ok(127)
}

fn prepare_and_exec(dir: &Path) -> ShimResult<std::convert::Infallible> {
    let spec: Spec = state::load(&dir.join("spec.json")).map_err(|e| e.to_string())?;
    // Opened before the chdir below, which a relative `dir` would not survive; the supervisor
    // holds the FIFO open for writing, so this open does not block.
    let stdin_fifo = (spec.stdio.stdin && !spec.stdio.tty)
        .then(|| File::open(dir.join(super::attach::STDIN_FIFO)))
        .transpose()
        .map_err(context("stdin"))?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(context("unshare(mount)"))?;
    // Nothing mounted here may propagate back to the host.
    mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
    )?;
    // Before any root change: the cgroup files are the host's.
    super::cgroup::join(&spec.cgroup_dirs).map_err(|e| e.to_string())?;
    match &spec.rootfs {
        Some(rootfs) => crate::embedded::rootfs::enter(rootfs, &spec.mounts)?,
        None => {
            mount(
                Some(Path::new("proc")),
                Path::new("/proc"),
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            )?;
            for volume in &spec.mounts {
                bind(&volume.host_path, &volume.container_path, volume.read_only)?;
            }
        }
    }
    if spec.rootfs.is_some() {
        // As runc: a working directory the image lacks is made.
        let _ = std::fs::create_dir_all(&spec.working_dir);
    }
    become_user(spec.user.as_ref())?;
    std::env::set_current_dir(&spec.working_dir).map_err(|e| {
        format!(
            "chdir to cwd ({:?}) set in config.json failed: {}",
            spec.working_dir,
            io_reason(&e)
        )
    })?;
    let program = resolve(&spec.argv[0], &spec.env)?;
    // fd 0 was the status pipe (its other copy is close-on-exec); the argv gets its terminal,
    // its stdin FIFO, or /dev/null.
    if spec.stdio.tty {
        // The terminal is on fds 1 and 2: it becomes stdin and this session's controlling
        // terminal, so ^C and job control reach the argv.
        nix::unistd::setsid().map_err(context("setsid"))?;
        nix::unistd::dup2_stdin(std::io::stdout()).map_err(context("stdin"))?;
        rustix::process::ioctl_tiocsctty(std::io::stdin()).map_err(context("TIOCSCTTY"))?;
    } else if spec.stdio.stdin {
        let fifo = stdin_fifo.ok_or("no stdin FIFO")?;
        nix::unistd::dup2_stdin(&fifo).map_err(context("stdin"))?;
    } else {
        let null = File::open("/dev/null").map_err(context("/dev/null"))?;
        nix::unistd::dup2_stdin(&null).map_err(context("stdin"))?;
    }
    // execve rather than std's Command, whose env is sorted: the env keeps the pod's order.
    let c_string = |text: &str| {
        std::ffi::CString::new(text).map_err(|_| format!("{text:?} contains a NUL byte"))
    };
    let path = std::ffi::CString::new(program.into_os_string().into_vec())
        .map_err(|_| "the program path contains a NUL byte".to_string())?;
    let args = spec
        .argv
        .iter()
        .map(|arg| c_string(arg))
        .collect::<ShimResult<Vec<_>>>()?;
    let env = exact_env(&spec.env)
        .iter()
        .map(|pair| c_string(pair))
        .collect::<ShimResult<Vec<_>>>()?;
    let error = match nix::unistd::execve(&path, &args, &env) {
        Ok(never) => match never {},
        Err(error) => error,
    };
    Err(format!(
        "exec: {:?}: {}",
        spec.argv[0],
        error.desc().to_lowercase()
    ))
}

/// `KEY=value` pairs in the given order; a key given twice keeps its first place and its last
/// value (later entries win, as in kube).
fn exact_env(env: &[(String, String)]) -> Vec<String> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (key, value) in env {
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value,
            None => pairs.push((key, value)),
        }
    }
    pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Joins a running container (its init's namespaces and cgroups) and runs `argv` there, with
/// this process's stdin, stdout and stderr; with `tty` they are a terminal, which the command
/// gets as its controlling one through the `session` stage.
fn exec(dir: &Path, argv: &[String], tty: bool) -> ShimResult<i32> {
    let spec: Spec = state::load(&dir.join("spec.json")).map_err(|e| e.to_string())?;
    let record: super::state::ContainerRecord =
        state::load(&dir.join("container.json")).map_err(|e| e.to_string())?;
    let super::state::Phase::Running { init, .. } = record.phase else {
        return Err("container is not running".into());
    };
    // Every namespace file is opened before the first setns: afterwards /proc is the
    // container's, where the init's host pid means nothing.
    let mut namespaces = Vec::new();
    for (kind, flag, wanted) in [
        ("net", CloneFlags::CLONE_NEWNET, spec.netns.is_some()),
        ("uts", CloneFlags::CLONE_NEWUTS, spec.uts.is_some()),
        ("ipc", CloneFlags::CLONE_NEWIPC, true),
        ("pid", CloneFlags::CLONE_NEWPID, true),
        ("mnt", CloneFlags::CLONE_NEWNS, true),
    ] {
        if wanted {
            let path = format!("/proc/{init}/ns/{kind}");
            namespaces.push((File::open(&path).map_err(context(&path))?, flag));
        }
    }
    super::cgroup::join(&spec.cgroup_dirs).map_err(|e| e.to_string())?;
    for (file, flag) in &namespaces {
        nix::sched::setns(file, *flag).map_err(context(format!("setns {flag:?}")))?;
    }
    become_user(spec.user.as_ref())?;
    let _ = std::env::set_current_dir(&spec.working_dir);
    let program = match resolve(&argv[0], &spec.env) {
        Ok(program) => program,
        Err(message) => {
            eprintln!("{message}");
            return Ok(127);
        }
    };
    let mut command = if tty {
        // `/proc/self/exe` is resolved by the child, inside the container's pid namespace and
        // its /proc: the shim binary again.
        let mut command = Command::new("/proc/self/exe");
        command
            .args(spec.shim.iter().skip(1))
            .arg("session")
            .arg(&program)
            .args(argv);
        command
    } else {
        let mut command = Command::new(&program);
        command.arg0(&argv[0]).args(&argv[1..]);
        command
    };
    let status = command
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .status()
        .map_err(|e| format!("exec: {:?}: {}", argv[0], io_reason(&e)))?;
    Ok(exit_code(status))
}

/// The terminal exec's last stage, already in the container: a session of its own whose
/// controlling terminal is stdin (the pty), so job control and ^C reach the command, then
/// `program` with `argv` (argv[0] as given) and the environment it was given.
fn session(program: &str, argv: &[String]) -> ShimResult<i32> {
    nix::unistd::setsid().map_err(context("setsid"))?;
    rustix::process::ioctl_tiocsctty(std::io::stdin()).map_err(context("TIOCSCTTY"))?;
    let error = Command::new(program).arg0(&argv[0]).args(&argv[1..]).exec();
    eprintln!("exec: {:?}: {}", argv[0], io_reason(&error));
    Ok(127)
}

/// Finds `name` as exec would: a path with a slash as is, else the first executable file of
/// that name on the container's PATH (runc's error when there is none).
fn resolve(name: &str, env: &[(String, String)]) -> ShimResult<PathBuf> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .rev()
        .find(|(key, _)| key == "PATH")
        .map(|(_, value)| value.as_str())
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| format!("exec: {name:?}: executable file not found in $PATH"))
}

/// Takes the image user's ids (groups first: after setuid they could not change).
fn become_user(user: Option<&crate::embedded::UserIds>) -> ShimResult<()> {
    let Some(user) = user else {
        return Ok(());
    };
    let groups: Vec<nix::unistd::Gid> = user
        .groups
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(context("setgroups"))?;
    nix::unistd::setgid(nix::unistd::Gid::from_raw(user.gid)).map_err(context("setgid"))?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(user.uid)).map_err(context("setuid"))?;
    Ok(())
}

/// Bind-mounts `source` on `target` (made, as a directory or a file like the source, if
/// missing), read-only when asked.
pub(crate) fn bind(source: &Path, target: &Path, read_only: bool) -> ShimResult<()> {
    let metadata = source
        .metadata()
        .map_err(|e| format!("mount source {:?}: {}", source, io_reason(&e)))?;
    if !target.exists() {
        if metadata.is_dir() {
            std::fs::create_dir_all(target)
        } else {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(context(parent.display()))?;
            }
            File::create(target).map(drop)
        }
        .map_err(context(format!("mount point {}", target.display())))?;
    }
    mount(
        Some(source),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
    )?;
    if read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None, target, None, flags)?;
    }
    Ok(())
}

/// nix's mount with the shim's error text.
pub(crate) fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
) -> ShimResult<()> {
    nix::mount::mount(source, target, fstype, flags, None::<&str>).map_err(|e| {
        format!(
            "mount {} on {}: {}",
            source.map(|s| s.display().to_string()).unwrap_or_default(),
            target.display(),
            e.desc().to_lowercase()
        )
    })
}

fn open_log(path: &Path) -> ShimResult<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(context(parent.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(context(format!("log file {}", path.display())))
}

/// A process's exit code as a shell reports it: 128 + signal when killed by one.
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// An I/O error's text without Rust's " (os error N)" suffix, as Go prints it.
fn io_reason(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keeps_order_and_the_last_value() {
        let env = [("B", "1"), ("A", "2"), ("B", "3")].map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(exact_env(&env), ["B=3", "A=2"]);
    }

    #[test]
    fn resolve_uses_the_containers_path() {
        let env = vec![("PATH".to_string(), "/nonexistent:/bin".to_string())];
        assert_eq!(resolve("sh", &env).unwrap(), PathBuf::from("/bin/sh"));
        assert_eq!(
            resolve("nosuch", &env).unwrap_err(),
            r#"exec: "nosuch": executable file not found in $PATH"#
        );
        assert_eq!(resolve("./x", &env).unwrap(), PathBuf::from("./x"));
    }
}
