//! `kubectl exec` in a host container: the shim's `exec` mode (or `exec-tty`) started with its
//! stdin, stdout and stderr attached to the caller, as pipes or as one terminal.
//!
//! ```text
//! agent ─ pipes ──────────▶ shim exec DIR argv      (its own process group: killed whole
//!                              └─▶ argv              when the caller drops the process)
//! agent ─ pty master ◀─▶ slave on fds 0-2 ─▶ shim exec-tty DIR argv ─▶ shim session ─▶ argv
//! ```
//!
//! The pty is made here (in the agent) rather than in the shim so the agent holds the master
//! for reading, writing and resizing; the command, in its own session, gets SIGHUP when the
//! master closes, as with any terminal that goes away.

use std::fs::File;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, ReadBuf};

use super::Inner;
use crate::{ContainerId, ExecProcess, ExecRequest, Result, RuntimeError, TerminalSize};

/// Kills the shim's process group when dropped before the command ended.
struct KillGroup(Option<Pid>);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Inner {
    pub(super) fn exec_streaming(
        &self,
        id: &ContainerId,
        request: &ExecRequest,
    ) -> Result<ExecProcess> {
        if request.argv.is_empty() {
            return Err(RuntimeError::Other("no command to exec".into()));
        }
        self.record(id)?;
        if !self.is_running(id) {
            return Err(RuntimeError::Other(format!(
                "container {:?} is not running",
                id.0
            )));
        }
        let mut command = tokio::process::Command::new(&self.config.shim[0]);
        command
            .args(&self.config.shim[1..])
            .arg(if request.tty { "exec-tty" } else { "exec" })
            .arg(self.container_dir(id))
            .args(&request.argv)
            .env_clear()
            .process_group(0);
        let terminal = if request.tty {
            let (master, slave) = open_pty()?;
            command
                .stdin(Stdio::from(slave.try_clone()?))
                .stdout(Stdio::from(slave.try_clone()?))
                .stderr(Stdio::from(slave));
            Some(master)
        } else {
            let stdin = if request.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            };
            command
                .stdin(stdin)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            None
        };
        let mut child = command.spawn()?;
        // The command held the pty's slave copies; only the shim's may stay open, so that
        // reading the master ends once the command and its children are gone.
        drop(command);
        let guard = KillGroup(child.id().map(|pid| Pid::from_raw(pid as i32)));
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let exit = Box::pin(async move {
            let mut guard = guard;
            let status = child.wait().await;
            guard.0 = None;
            let status = status?;
            Ok(status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9)
            }))
        });
        let Some(master) = terminal else {
            let (stdin, stdout, stderr) = pipes;
            let stdout = stdout.ok_or_else(|| RuntimeError::Other("no stdout pipe".into()))?;
            return Ok(ExecProcess {
                stdin: stdin.map(|s| Box::pin(s) as Pin<Box<dyn tokio::io::AsyncWrite + Send>>),
                stdout: Box::pin(stdout),
                stderr: stderr.map(|s| Box::pin(s) as Pin<Box<dyn AsyncRead + Send>>),
                exit,
                resize: None,
            });
        };
        let resize_fd = master.try_clone()?;
        let reader = tokio::fs::File::from_std(master.try_clone()?);
        let writer = tokio::fs::File::from_std(master);
        Ok(ExecProcess {
            stdin: request
                .stdin
                .then(|| Box::pin(writer) as Pin<Box<dyn tokio::io::AsyncWrite + Send>>),
            stdout: Box::pin(TerminalOutput(reader)),
            stderr: None,
            exit,
            resize: Some(Box::new(move |size: TerminalSize| {
                let size = rustix::termios::Winsize {
                    ws_row: size.height,
                    ws_col: size.width,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                rustix::termios::tcsetwinsize(&resize_fd, size).map_err(io::Error::from)
            })),
        })
    }
}

/// A new pty: its master (close-on-exec) and its slave.
pub(super) fn open_pty() -> Result<(File, File)> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .map_err(io::Error::from)?;
    grantpt(&master).map_err(io::Error::from)?;
    unlockpt(&master).map_err(io::Error::from)?;
    let name = ptsname(&master, Vec::new()).map_err(io::Error::from)?;
    let path = std::path::PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(name.into_bytes()),
    );
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(&path)?;
    Ok((File::from(master), slave))
}

use std::os::unix::fs::OpenOptionsExt as _;

/// A pty master's output: reading it fails with EIO once every slave is closed, which is the
/// terminal's end-of-file.
struct TerminalOutput(tokio::fs::File);

impl AsyncRead for TerminalOutput {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}
