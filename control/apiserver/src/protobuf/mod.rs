//! Protobuf bodies (`application/vnd.kubernetes.protobuf`), which kubectl and client-go send
//! and ask for with the built-in kinds. JSON stays what the server stores and works on: a
//! protobuf request body becomes JSON before any handler sees it, and a reply becomes
//! protobuf only on its way out, when the client's Accept prefers it.
//!
//! # Layout
//!
//! - [`messages`]: every message's fields (tag, JSON name, type), from `messages.txt`, which
//!   `scripts/gen-protobuf-messages.py` generates from the k8s-pb and k8s-openapi crates;
//!   the message of an apiVersion and kind.
//! - [`decode`]: wire bytes to JSON, dropping the zeros Go's JSON leaves out.
//! - [`encode`]: JSON to wire bytes.
//! - [`special`]: messages whose JSON is not an object (quantities, times, int-or-string,
//!   raw extensions, FieldsV1).
//! - [`envelope`]: the `k8s\0` + `runtime.Unknown` envelope and the watch stream's frames.
//!
//! The server hooks in at three points: [`request_to_json`] on create and update bodies,
//! [`object_body`] on replies and errors, [`watch_frames`] on watch streams.

pub mod decode;
pub mod encode;
pub mod envelope;
pub mod messages;
pub mod special;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// The media type of protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The Content-Type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Whether a request's Content-Type is protobuf.
pub fn is_protobuf(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| media(c) == MEDIA_TYPE)
}

fn media(range: &str) -> &str {
    range.split(';').next().unwrap_or("").trim()
}

/// Whether an Accept header prefers protobuf: its most preferred media range (highest `q`,
/// the first among equals) is protobuf and asks for no other shape (`as=Table`).
/// client-go sends `application/vnd.kubernetes.protobuf, */*` for built-in kinds.
pub fn preferred(accept: &str) -> bool {
    let mut best: Option<(f32, &str)> = None;
    for range in accept.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let q = range
            .split(';')
            .skip(1)
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(best_q, _)| q > best_q) {
            best = Some((q, range));
        }
    }
    best.is_some_and(|(q, range)| q > 0.0 && media(range) == MEDIA_TYPE && !range.contains("as="))
}

/// The JSON of a protobuf request body for a resource of `kind`, or kube-apiserver's 400.
pub fn request_to_json(body: &[u8], kind: &str) -> Result<Vec<u8>, ApiError> {
    match envelope::decode(body) {
        Ok(object) => Ok(object.to_string().into_bytes()),
        Err(envelope::DecodeError::NotProtobuf(reason)) => Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): {reason} ({})",
            summarize(body)
        ))),
        Err(envelope::DecodeError::Object {
            api_version,
            kind: data_kind,
            reason,
        }) => {
            let version = api_version.rsplit('/').next().unwrap_or_default();
            Err(ApiError::bad_request(format!(
                "{data_kind} in version {version:?} cannot be handled as a {kind}: {reason}"
            )))
        }
    }
}

/// kube's summary of a body in decode errors: its first 30 bytes, in hex unless JSON.
fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    let head = &body[..body.len().min(MAX)];
    let more = if body.len() > MAX { " ..." } else { "" };
    match body.first() {
        None => "<empty>".into(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(head)),
        Some(_) => {
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}{more}")
        }
    }
}

/// The protobuf body of a JSON reply, or `None` when its kind has no message (it is then
/// sent as JSON, as kube-apiserver does for kinds without a protobuf form).
pub fn object_body(object: &Value) -> Option<Vec<u8>> {
    envelope::encode(object)
}

/// A watch stream of protobuf frames from one of JSON lines.
pub fn watch_frames(mut lines: mpsc::Receiver<Bytes>) -> mpsc::Receiver<Bytes> {
    let (sender, frames) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(chunk) = lines.recv().await {
            for line in chunk.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let frame = serde_json::from_slice::<Value>(line)
                    .ok()
                    .and_then(|event| envelope::watch_frame(&event));
                let Some(frame) = frame else {
                    tracing::warn!("protobuf: a watch event has no protobuf form; the stream ends");
                    return;
                };
                if sender.send(Bytes::from(frame)).await.is_err() {
                    return;
                }
            }
        }
    });
    frames
}

#[cfg(test)]
mod tests;
