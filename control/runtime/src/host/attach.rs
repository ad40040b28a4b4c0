//! `kubectl attach` on the host runtime: a container's own stdin, stdout and stderr (or its
//! terminal), reached after it started, by any number of clients, while it outlives them.
//!
//! ```text
//! agent (Tokio)                          supervisor (shim run, sync threads)
//!   attach() ──connect──▶ attach.sock ──▶ accept: one reader thread per client
//!   stdin bytes, resize ──frames──▶        stdin ─▶ the FIFO `stdin` (pipes) or the pty master
//!   stdout/stderr ◀──frames──              output: every chunk copied into the CRI log is also
//!   exit code ◀──frame──                   sent to each client; the exit code once it ended
//! ```
//!
//! The supervisor owns the streams because it is the one process that lives exactly as long as
//! the container (conmon's design): the agent may restart, clients come and go. A container
//! with `stdin: true` reads a FIFO the supervisor holds open for writing, so it sees end-of-file
//! only when `stdinOnce` closes it after the first client left; one with `tty: true` runs on a
//! pty whose master the supervisor reads (output) and writes (input, resizes).
//!
//! A frame is `[channel u8][length u32 big-endian][payload]`, the channels numbered as the
//! Kubernetes streaming protocol's: 0 stdin, 1 stdout, 2 stderr, 3 the exit code (i32
//! big-endian), 4 a resize (width, height as u16 big-endian), 255 stdin closed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::Inner;
use crate::{ContainerId, ExecProcess, Result, RuntimeError, TerminalSize};

/// The supervisor's socket, in the container's directory.
pub(super) const SOCKET: &str = "attach.sock";
/// The FIFO a `stdin: true` container without a terminal reads.
pub(super) const STDIN_FIFO: &str = "stdin";

const STDIN: u8 = 0;
/// Output channels, as [`Hub::output`] takes them.
pub(super) const STDOUT: u8 = 1;
pub(super) const STDERR: u8 = 2;
const EXIT: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE_STDIN: u8 = 255;
/// The largest frame a client may send (stdin is sent in chunks well below it).
const MAX_FRAME: usize = 1 << 20;
/// A client that does not read its output for this long is dropped rather than stall the
/// container's output (which also goes to the log).
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

fn write_frame(out: &mut impl Write, channel: u8, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.push(channel);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    out.write_all(&frame)
}

/// A frame header's payload length, refused past [`MAX_FRAME`] (both sides read frames).
fn payload_length(header: &[u8; 5]) -> io::Result<usize> {
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    Ok(length)
}

fn read_frame(input: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    input.read_exact(&mut header)?;
    let mut payload = vec![0u8; payload_length(&header)?];
    input.read_exact(&mut payload)?;
    Ok((header[0], payload))
}

/// A container's output stream, as the supervisor reads it.
pub(super) struct Output {
    /// [`STDOUT`] or [`STDERR`].
    pub(super) channel: u8,
    /// The pipe's read end, or the pty master.
    pub(super) file: File,
}

/// A client, and the bytes of its next frame read so far.
struct Client {
    stream: UnixStream,
    buffer: Vec<u8>,
}

/// The supervisor's streams: the container's output (into the log and to every client), the
/// attach socket, the clients, the container's stdin. One `poll` loop serves them all: the
/// supervisor cannot start threads (see log.rs).
pub(super) struct Streams {
    outputs: Vec<(Output, super::log::Lines, bool)>,
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    /// The container's stdin (the FIFO's write end, or the pty master), non-blocking, with
    /// what clients sent that it has not taken yet; `None` once closed.
    stdin: Option<(File, Vec<u8>)>,
    /// The pty master, for resizes.
    terminal: Option<File>,
    stdin_once: bool,
}

/// The most client input held for a container that does not read its stdin.
const MAX_PENDING_STDIN: usize = 1 << 20;

impl Streams {
    /// Streams for `outputs`, listening on `dir`'s socket (without one if it cannot be bound:
    /// the container runs anyway, unattachable, and `shim.log` says why).
    pub(super) fn new(
        dir: &Path,
        outputs: Vec<Output>,
        stdin: Option<File>,
        terminal: Option<File>,
        stdin_once: bool,
    ) -> Streams {
        let path = dir.join(SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener = match UnixListener::bind(&path) {
            Ok(listener) => Some(listener),
            Err(e) => {
                eprintln!("attach socket {}: {e}", path.display());
                None
            }
        };
        Streams {
            outputs: outputs
                .into_iter()
                .map(|output| {
                    let name = if output.channel == STDERR {
                        "stderr"
                    } else {
                        "stdout"
                    };
                    (output, super::log::Lines::new(name), true)
                })
                .collect(),
            listener,
            clients: Vec::new(),
            stdin: stdin.map(|file| (file, Vec::new())),
            terminal,
            stdin_once,
        }
    }

    /// Copies the output into `log` and to the clients, and the clients' input into the
    /// container, until every output stream ended (the container's PID 1 died).
    pub(super) fn run(&mut self, log: &mut File) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        #[derive(Clone, Copy)]
        enum Source {
            Output(usize),
            Listener,
            Client(usize),
            Stdin,
        }
        let mut chunk = vec![0u8; 32 * 1024];
        while self.outputs.iter().any(|(_, _, open)| *open) {
            let mut ready: Vec<Source> = Vec::new();
            {
                let mut fds = Vec::new();
                let mut sources = Vec::new();
                for (index, (output, _, open)) in self.outputs.iter().enumerate() {
                    if *open {
                        fds.push(PollFd::new(output.file.as_fd(), PollFlags::POLLIN));
                        sources.push(Source::Output(index));
                    }
                }
                if let Some(listener) = &self.listener {
                    fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
                    sources.push(Source::Listener);
                }
                for (index, client) in self.clients.iter().enumerate() {
                    fds.push(PollFd::new(client.stream.as_fd(), PollFlags::POLLIN));
                    sources.push(Source::Client(index));
                }
                if let Some((file, pending)) = &self.stdin {
                    if !pending.is_empty() {
                        fds.push(PollFd::new(file.as_fd(), PollFlags::POLLOUT));
                        sources.push(Source::Stdin);
                    }
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
                for (fd, source) in fds.iter().zip(sources) {
                    if fd.any().unwrap_or(true) {
                        ready.push(source);
                    }
                }
            }
            let mut gone = Vec::new();
            for source in ready {
                match source {
                    Source::Output(index) => self.copy_output(index, &mut chunk, log),
                    Source::Listener => self.accept(),
                    Source::Client(index) => {
                        if !self.read_client(index, &mut chunk) {
                            gone.push(index);
                        }
                    }
                    Source::Stdin => self.write_stdin(),
                }
            }
            for index in gone.into_iter().rev() {
                self.clients.remove(index);
                // kube's stdinOnce: the container's stdin ends when a client leaves.
                if self.stdin_once && self.terminal.is_none() {
                    self.stdin = None;
                }
            }
        }
    }

    fn copy_output(&mut self, index: usize, chunk: &mut [u8], log: &mut File) {
        let (output, lines, open) = &mut self.outputs[index];
        match output.file.read(chunk) {
            Ok(0) => {
                *open = false;
                lines.finish(log);
            }
            Ok(read) => {
                lines.feed(&chunk[..read], log);
                let channel = output.channel;
                self.clients.retain_mut(|client| {
                    write_frame(&mut client.stream, channel, &chunk[..read]).is_ok()
                });
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            // A pty master says EIO once the terminal's last holder is gone: its end-of-file.
            Err(_) => {
                *open = false;
                lines.finish(log);
            }
        }
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        if let Ok((stream, _)) = listener.accept() {
            let _ = stream.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT));
            self.clients.push(Client {
                stream,
                buffer: Vec::new(),
            });
        }
    }

    /// Reads what a client sent and acts on its whole frames; false once it left.
    fn read_client(&mut self, index: usize, chunk: &mut [u8]) -> bool {
        let client = &mut self.clients[index];
        let read = match client.stream.read(chunk) {
            Ok(0) => return false,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        };
        client.buffer.extend_from_slice(&chunk[..read]);
        let mut frames = Vec::new();
        loop {
            let mut cursor = io::Cursor::new(&client.buffer[..]);
            match read_frame(&mut cursor) {
                Ok(frame) => {
                    let used = cursor.position() as usize;
                    client.buffer.drain(..used);
                    frames.push(frame);
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(_) => return false,
            }
        }
        for (channel, payload) in frames {
            self.handle(channel, &payload);
        }
        true
    }

    fn handle(&mut self, channel: u8, payload: &[u8]) {
        match channel {
            STDIN => {
                if let Some((_, pending)) = &mut self.stdin {
                    let room = MAX_PENDING_STDIN.saturating_sub(pending.len());
                    pending.extend_from_slice(&payload[..payload.len().min(room)]);
                    self.write_stdin();
                }
            }
            RESIZE if payload.len() == 4 => {
                if let Some(terminal) = &self.terminal {
                    let size = rustix::termios::Winsize {
                        ws_col: u16::from_be_bytes([payload[0], payload[1]]),
                        ws_row: u16::from_be_bytes([payload[2], payload[3]]),
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    let _ = rustix::termios::tcsetwinsize(terminal, size);
                }
            }
            CLOSE_STDIN if self.terminal.is_none() => self.stdin = None,
            _ => {}
        }
    }

    /// Hands the container as much pending input as it takes without blocking.
    fn write_stdin(&mut self) {
        let Some((file, pending)) = &mut self.stdin else {
            return;
        };
        while !pending.is_empty() {
            match file.write(pending) {
                Ok(written) => {
                    pending.drain(..written);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.stdin = None;
                    return;
                }
            }
        }
    }

    /// Tells every client the container ended with `code`, and lets them go.
    pub(super) fn exited(&mut self, dir: &Path, code: i32) {
        for mut client in self.clients.drain(..) {
            let _ = write_frame(&mut client.stream, EXIT, &code.to_be_bytes());
            let _ = client.stream.shutdown(std::net::Shutdown::Both);
        }
        if self.listener.take().is_some() {
            let _ = std::fs::remove_file(dir.join(SOCKET));
        }
    }
}

/// [`read_frame`] on the agent's (async) side of the socket.
async fn read_frame_async(
    input: &mut tokio::net::unix::OwnedReadHalf,
) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    input.read_exact(&mut header).await?;
    let mut payload = vec![0u8; payload_length(&header)?];
    input.read_exact(&mut payload).await?;
    Ok((header[0], payload))
}

/// Resolves once the caller dropped the session's exit future (never after the exit came).
async fn caller_gone(exit: &mut Option<tokio::sync::oneshot::Sender<i32>>) {
    match exit {
        Some(sender) => sender.closed().await,
        None => std::future::pending().await,
    }
}

impl Inner {
    /// The agent's side: connects to the container's supervisor and turns its frames into an
    /// [`ExecProcess`].
    pub(super) async fn attach(&self, id: &ContainerId, stdin: bool) -> Result<ExecProcess> {
        let record = self.record(id)?;
        if !self.is_running(id) {
            return Err(RuntimeError::Other(format!(
                "container {:?} is not running",
                id.0
            )));
        }
        let path = self.container_dir(id).join(SOCKET);
        let socket = tokio::net::UnixStream::connect(&path).await.map_err(|e| {
            RuntimeError::Other(format!(
                "cannot attach to container {:?} ({}): {e}",
                id.0,
                path.display()
            ))
        })?;
        let tty = record.config.stdio.tty;
        let (mut from_supervisor, to_supervisor) = socket.into_split();
        let to_supervisor = Arc::new(tokio::sync::Mutex::new(to_supervisor));
        let (stdout_writer, stdout_reader) = tokio::io::duplex(64 * 1024);
        let (stderr_writer, stderr_reader) = tokio::io::duplex(64 * 1024);
        let (exit_sender, exit_receiver) = tokio::sync::oneshot::channel::<i32>();
        // Demultiplexes the supervisor's frames until it closes (the container ended) or the
        // caller dropped the streams. It keeps the socket's write half: dropping that would
        // shut the socket down for writing, which the supervisor reads as the client leaving.
        let keep_open = Arc::clone(&to_supervisor);
        tokio::spawn(async move {
            let _keep_open = keep_open;
            let mut outputs = [Some(stdout_writer), Some(stderr_writer)];
            let mut exit_sender = Some(exit_sender);
            loop {
                // A caller that dropped the session (detached) lets the supervisor go too.
                let frame = tokio::select! {
                    frame = read_frame_async(&mut from_supervisor) => frame,
                    () = caller_gone(&mut exit_sender) => return,
                };
                let Ok((channel, payload)) = frame else {
                    return;
                };
                match channel {
                    STDOUT | STDERR => {
                        let slot = &mut outputs[usize::from(channel - STDOUT)];
                        if let Some(writer) = slot {
                            if writer.write_all(&payload).await.is_err() {
                                *slot = None;
                            }
                        }
                    }
                    EXIT if payload.len() == 4 => {
                        let code =
                            i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        if let Some(sender) = exit_sender.take() {
                            let _ = sender.send(code);
                        }
                    }
                    _ => {}
                }
            }
        });
        let exit = Box::pin(async move {
            exit_receiver
                .await
                .map_err(|_| RuntimeError::Other("the container's supervisor went away".into()))
        });
        // The caller's stdin: written into a pipe whose far end a task frames onto the socket;
        // its end-of-file becomes "stdin closed".
        let stdin_writer = (stdin && record.config.stdio.stdin).then(|| {
            let (writer, mut reader) = tokio::io::duplex(64 * 1024);
            let to_supervisor = Arc::clone(&to_supervisor);
            tokio::spawn(async move {
                let mut chunk = vec![0u8; 32 * 1024];
                loop {
                    let (channel, read) = match reader.read(&mut chunk).await {
                        Ok(0) | Err(_) => (CLOSE_STDIN, 0),
                        Ok(read) => (STDIN, read),
                    };
                    let mut frame = Vec::with_capacity(read + 5);
                    let _ = write_frame(&mut frame, channel, &chunk[..read]);
                    let sent = to_supervisor.lock().await.write_all(&frame).await;
                    if channel == CLOSE_STDIN || sent.is_err() {
                        return;
                    }
                }
            });
            Box::pin(writer) as Pin<Box<dyn tokio::io::AsyncWrite + Send>>
        });
        let resize: Option<crate::Resize> = tty.then(|| {
            let to_supervisor = Arc::clone(&to_supervisor);
            Box::new(move |size: TerminalSize| {
                let mut payload = size.width.to_be_bytes().to_vec();
                payload.extend_from_slice(&size.height.to_be_bytes());
                let to_supervisor = Arc::clone(&to_supervisor);
                tokio::spawn(async move {
                    let mut frame = Vec::new();
                    let _ = write_frame(&mut frame, RESIZE, &payload);
                    let _ = to_supervisor.lock().await.write_all(&frame).await;
                });
                Ok(())
            }) as crate::Resize
        });
        Ok(ExecProcess {
            stdin: stdin_writer,
            stdout: Box::pin(stdout_reader),
            stderr: (!tty)
                .then(|| Box::pin(stderr_reader) as Pin<Box<dyn tokio::io::AsyncRead + Send>>),
            exit,
            resize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, STDIN, b"hello").unwrap();
        write_frame(&mut wire, RESIZE, &[0, 80, 0, 24]).unwrap();
        let mut input = io::Cursor::new(wire);
        assert_eq!(read_frame(&mut input).unwrap(), (STDIN, b"hello".to_vec()));
        assert_eq!(
            read_frame(&mut input).unwrap(),
            (RESIZE, vec![0, 80, 0, 24])
        );
        assert!(read_frame(&mut input).is_err());
        let mut huge = vec![STDIN];
        huge.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(read_frame(&mut io::Cursor::new(huge)).is_err());
    }
}
