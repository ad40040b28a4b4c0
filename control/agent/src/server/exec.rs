//! `kubectl exec` and `kubectl attach` on the agent: the WebSocket channel protocol kubelet's
//! streaming server speaks, over a command the runtime started
//! ([`keel_runtime::Runtime::exec`]) or a running container's own streams
//! ([`keel_runtime::Runtime::attach`]).
//!
//! ```text
//! client ──ws binary [0, stdin…] ─────────────▶ the command's stdin (stdin task)
//!        ──ws binary [4, {"Width":80,…}] ─────▶ its terminal's size
//!        ──ws binary [255, 0] (v5 only) ──────▶ stdin closed
//!        ◀─ws binary [1, stdout…] / [2, stderr…]  (one pump per stream)
//!        ◀─ws binary [3, Status JSON] then close   once it exited and both streams ended
//! ```
//!
//! Subprotocols, in the client's order of preference: `v5.channel.k8s.io` (kubectl 1.30+),
//! `v4.channel.k8s.io` (the exit as a `Status`, the Python client), `channel.k8s.io` (v1: the
//! error channel carries only a failure's text). The base64 variants are not served.

use futures::{SinkExt as _, StreamExt as _};
use keel_runtime::{ExecProcess, TerminalSize};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The subprotocols served, best first.
pub const PROTOCOLS: [&str; 3] = ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// The subprotocol to speak: the first of the client's (comma-separated, in its
/// `Sec-WebSocket-Protocol` headers) that is served; `channel.k8s.io` when it names none.
pub fn negotiate<'a>(offered: impl Iterator<Item = &'a str>) -> Option<&'static str> {
    let offered: Vec<&str> = offered
        .flat_map(|header| header.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Some("channel.k8s.io");
    }
    offered
        .iter()
        .find_map(|p| PROTOCOLS.iter().find(|served| *served == p).copied())
}

/// What the exec's end is reported as on the error channel, by subprotocol.
pub fn exit_message(protocol: &str, argv: &[String], exit_code: i32) -> Option<Vec<u8>> {
    let v1 = protocol == "channel.k8s.io";
    if exit_code == 0 {
        // v1 has no success message: the channel stays silent.
        return (!v1).then(|| {
            json!({"metadata": {}, "status": "Success"})
                .to_string()
                .into_bytes()
        });
    }
    let message = format!(
        "command terminated with non-zero exit code: error executing command {}, exit code {exit_code}",
        go_string_list(argv)
    );
    if v1 {
        return Some(message.into_bytes());
    }
    Some(
        json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]},
        })
        .to_string()
        .into_bytes(),
    )
}

/// A failure to run the command at all, on the error channel.
fn failure_message(protocol: &str, message: &str) -> Vec<u8> {
    if protocol == "channel.k8s.io" {
        return message.as_bytes().to_vec();
    }
    json!({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500})
        .to_string()
        .into_bytes()
}

/// `[a b c]`, as Go prints a string slice.
fn go_string_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// The close that ends a session: a normal closure (1000), which clients read as the end of
/// every stream; a close without a code (1005) is an error to client-go.
fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(data);
    Message::Binary(bytes.into())
}

/// Runs one exec session over an upgraded connection until the command ended and its output
/// was sent, or the client left (which kills the command: `process` is dropped). With no
/// `argv` it is an attach: the container's end is reported as success whatever its code (the
/// pod's status tells it), and a client leaving only detaches.
pub async fn serve<S>(
    io: S,
    protocol: &'static str,
    argv: Option<Vec<String>>,
    process: Result<ExecProcess, String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let (mut sink, mut incoming) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let last = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || last {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let process = match process {
        Ok(process) => process,
        Err(message) => {
            let _ = out
                .send(frame(ERROR, &failure_message(protocol, &message)))
                .await;
            let _ = out.send(normal_close()).await;
            let _ = writer.await;
            return;
        }
    };
    let ExecProcess {
        stdin,
        stdout,
        stderr,
        mut exit,
        resize,
    } = process;
    let pump = |mut reader: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>, channel: u8| {
        let out = out.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => {
                        if out.send(frame(channel, &buffer[..read])).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
    };
    let mut pumps = vec![pump(stdout, STDOUT)];
    if let Some(stderr) = stderr {
        pumps.push(pump(stderr, STDERR));
    }
    let mut pumps = Box::pin(futures::future::join_all(pumps));
    // Stdin is written by its own task, so a command that does not read it never holds up
    // the session; dropping the sender closes the command's stdin.
    let mut stdin_sender = stdin.map(|mut stdin| {
        let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(16);
        tokio::spawn(async move {
            while let Some(data) = receiver.recv().await {
                if stdin.write_all(&data).await.is_err() || stdin.flush().await.is_err() {
                    return;
                }
            }
            let _ = stdin.shutdown().await;
        });
        sender
    });
    let mut exit_code = None;
    let mut pumps_done = false;
    let mut reading = true;
    while exit_code.is_none() || !pumps_done {
        tokio::select! {
            message = incoming.next(), if reading => match message {
                Some(Ok(Message::Binary(data))) if !data.is_empty() => match data[0] {
                    STDIN => {
                        if let Some(sender) = &stdin_sender {
                            if sender.send(data[1..].to_vec()).await.is_err() {
                                stdin_sender = None;
                            }
                        }
                    }
                    RESIZE => {
                        if let (Some(resize), Ok(size)) =
                            (&resize, serde_json::from_slice::<serde_json::Value>(&data[1..]))
                        {
                            let dimension = |key: &str| size[key].as_u64().unwrap_or(0) as u16;
                            let _ = resize(TerminalSize {
                                width: dimension("Width"),
                                height: dimension("Height"),
                            });
                        }
                    }
                    CLOSE if protocol == PROTOCOLS[0] && data.get(1) == Some(&STDIN) => {
                        stdin_sender = None;
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    // The client is gone: the command goes with it.
                    reading = false;
                    if exit_code.is_none() {
                        writer.abort();
                        return;
                    }
                }
                Some(Ok(_)) => {}
            },
            code = &mut exit, if exit_code.is_none() => {
                exit_code = Some(code);
            }
            _ = &mut pumps, if !pumps_done => pumps_done = true,
        }
    }
    let message = match exit_code.expect("the loop ends once it exited") {
        Ok(code) => match &argv {
            Some(argv) => exit_message(protocol, argv, code),
            None => exit_message(protocol, &[], 0),
        },
        Err(e) => Some(failure_message(protocol, &e.to_string())),
    };
    if let Some(message) = message {
        let _ = out.send(frame(ERROR, &message)).await;
    }
    let _ = out.send(normal_close()).await;
    drop(out);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subprotocols_in_the_clients_order() {
        assert_eq!(
            negotiate(["v5.channel.k8s.io, v4.channel.k8s.io"].into_iter()),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(
            negotiate(["base64.channel.k8s.io", "v4.channel.k8s.io,channel.k8s.io"].into_iter()),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(negotiate(std::iter::empty()), Some("channel.k8s.io"));
        assert_eq!(negotiate(["SPDY/3.1"].into_iter()), None);
    }

    #[test]
    fn exit_codes_as_kubelet_reports_them() {
        let argv = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        let failure: serde_json::Value =
            serde_json::from_slice(&exit_message("v5.channel.k8s.io", &argv, 3).unwrap()).unwrap();
        assert_eq!(failure["reason"], "NonZeroExitCode");
        assert_eq!(failure["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failure["details"]["causes"][0]["message"], "3");
        assert_eq!(
            failure["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        let success: serde_json::Value =
            serde_json::from_slice(&exit_message("v4.channel.k8s.io", &argv, 0).unwrap()).unwrap();
        assert_eq!(success["status"], "Success");
        assert_eq!(exit_message("channel.k8s.io", &argv, 0), None);
    }
}
