//! Kubernetes' protobuf envelope: the magic `k8s\0`, then a `runtime.Unknown` whose typeMeta
//! names the object's apiVersion and kind and whose raw bytes are the object's message; and
//! the watch stream's frames, each a 4-byte big-endian length and a `meta/v1 WatchEvent`
//! whose object is an enveloped object.

use k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use prost::Message as _;
use serde_json::Value;

use super::messages::Table;
use super::{decode, encode};

/// The bytes every enveloped object starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// Why an enveloped body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not an envelope at all (no magic, or an unreadable `Unknown`): kube names no kind.
    NotProtobuf(String),
    /// The envelope names a kind, but its object cannot be read.
    Object {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
        /// What went wrong.
        reason: String,
    },
}

/// The JSON object of an enveloped body, with its apiVersion and kind.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let Some(unknown) = body.strip_prefix(MAGIC) else {
        // Go prints the prefix as %v prints a byte slice.
        return Err(DecodeError::NotProtobuf(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]".into(),
        ));
    };
    let unknown = Unknown::decode(unknown).map_err(|e| DecodeError::NotProtobuf(e.to_string()))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let failed = |reason: String| DecodeError::Object {
        api_version: api_version.clone(),
        kind: kind.clone(),
        reason,
    };
    if kind.is_empty() {
        return Err(DecodeError::NotProtobuf(
            "Object 'Kind' is missing in the body".into(),
        ));
    }
    if let Some(encoding) = unknown.content_encoding.filter(|e| !e.is_empty()) {
        return Err(failed(format!("unsupported content encoding {encoding:?}")));
    }
    let table = Table::get();
    let message = table.of_kind(&api_version, &kind).ok_or_else(|| {
        failed(format!(
            "no kind {kind:?} is registered for version {api_version:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        ))
    })?;
    let mut object =
        decode::message(table, message, &unknown.raw.unwrap_or_default()).map_err(failed)?;
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), Value::String(api_version.clone()));
        map.insert("kind".into(), Value::String(kind.clone()));
    }
    Ok(object)
}

/// An enveloped object embedded in another (a raw extension), as JSON.
pub fn decode_any(body: &[u8]) -> Result<Value, String> {
    decode(body).map_err(|e| match e {
        DecodeError::NotProtobuf(reason) => reason,
        DecodeError::Object { reason, .. } => reason,
    })
}

/// The enveloped protobuf of a JSON object, or `None` when its kind has no message (a
/// Table, a discovery document).
pub fn encode(object: &Value) -> Option<Vec<u8>> {
    let api_version = object["apiVersion"].as_str()?;
    let kind = object["kind"].as_str()?;
    let table = Table::get();
    let message = table.of_kind(api_version, kind)?;
    let raw = match encode::message(table, message, object) {
        Ok(raw) => raw,
        Err(e) => {
            tracing::warn!("protobuf: cannot encode a {kind}: {e}");
            return None;
        }
    };
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    unknown.encode(&mut out).expect("a Vec grows");
    Some(out)
}

/// One frame of a protobuf watch stream from one JSON watch event
/// (`{"type": "ADDED", "object": {...}}`).
pub fn watch_frame(event: &Value) -> Option<Vec<u8>> {
    let event = WatchEvent {
        r#type: Some(event["type"].as_str()?.to_owned()),
        object: Some(RawExtension {
            raw: Some(encode(&event["object"])?),
        }),
    };
    let body = event.encode_to_vec();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    Some(frame)
}
