//! Applies the body of a PATCH request to a stored object, the way
//! kube-apiserver 1.32 does, so that kubectl and the Python `kubernetes`
//! client see the same results, status codes and (near enough) messages.
//!
//! Three formats arrive on PATCH, chosen by Content-Type:
//!
//! * JSON Patch (RFC 6902). kube-apiserver runs it through
//!   `gopkg.in/evanphx/json-patch.v4`, whose behaviour differs from the RFC in
//!   ways clients can see: `replace` of a missing object member adds it,
//!   negative array indices count from the end, `test` of a missing member
//!   against `null` passes, `add` at the root path fails, and every failure to
//!   apply is a 422. The `json-patch` crate follows the RFC instead, so this
//!   module carries its own small interpreter with the evanphx rules.
//! * JSON merge patch (RFC 7386). The `json-patch` crate's `merge` does the
//!   work; the patch is first trimmed of the `null`s that evanphx drops from
//!   newly inserted values, which the crate would otherwise keep inside arrays.
//! * Strategic merge patch, kube's own format, implemented here after
//!   `k8s.io/apimachinery/pkg/util/strategicpatch` (server side:
//!   `StrategicMergeMapPatch`). How a list merges depends on the
//!   `patchStrategy`/`patchMergeKey` struct tags of the Go types, which this
//!   server does not have; `strategy::merge_strategy` is the table of those tags, keyed
//!   by kind and by the path of field names from the object root.
//!
//! Status codes follow kube-apiserver with the default field validation
//! (`Warn`, or `Strict` as kubectl sends): an undecodable body is 400, a JSON
//! Patch that cannot be applied is 422, strategic-merge directive format errors
//! are 400, lists of lists are 422, and the strategic-merge errors that
//! kube-apiserver does not translate (a missing merge key, a `$setElementOrder`
//! that contradicts its list, an unknown `$patch`) are 500, as there.
//! Strategic merge of a kind without Go types (a custom resource) is 415.
//!
//! # Layout
//!
//! This file holds the public API ([`PatchType`], [`PatchError`], [`apply`]); the formats are:
//!
//! - `json_patch`: JSON Patch, with the semantics of evanphx/json-patch v4.12.0.
//! - `merge`: JSON merge patch.
//! - `strategic`: strategic merge patch: the merge of maps and lists, after
//!   `strategicpatch.mergeMap` and friends.
//! - `strategy`: the strategy table: which lists merge, and by which key, per kind and path.
//! - `lists`: merging lists by key, and the order `$setElementOrder` asks for.
//! - `directives`: the `$patch`, `$retainKeys`, `$setElementOrder` and
//!   `$deleteFromPrimitiveList` directives, and stripping them from new values.
//! - `messages`: messages in the shape Go prints them.

mod directives;
#[cfg(test)]
mod fixtures;
mod json_patch;
mod lists;
mod merge;
mod messages;
mod strategic;
mod strategy;

pub use strategy::patch_tags;

use serde_json::Value;
use std::fmt;

// `self::` because the json-patch crate, which `merge` uses, has the same name.
use self::json_patch::apply_json_patch;
use merge::apply_merge_patch;
use messages::json_type_name;
use strategic::apply_strategic_merge_patch;

/// The patch formats of a PATCH request, by Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`: an RFC 6902 list of operations.
    Json,
    /// `application/merge-patch+json`: an RFC 7386 merge patch.
    Merge,
    /// `application/strategic-merge-patch+json`: kube's strategic merge patch.
    StrategicMerge,
}

impl PatchType {
    /// From the request's Content-Type (parameters like `; charset=utf-8`
    /// ignored): application/json-patch+json, application/merge-patch+json,
    /// application/strategic-merge-patch+json. None for anything else (the
    /// caller answers 415; apply-patch+yaml is handled elsewhere).
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or(content_type)
            .trim();
        // Media types are case-insensitive (RFC 9110); kube-apiserver compares
        // exactly, but no client relies on a differently cased type failing.
        [
            ("application/json-patch+json", PatchType::Json),
            ("application/merge-patch+json", PatchType::Merge),
            (
                "application/strategic-merge-patch+json",
                PatchType::StrategicMerge,
            ),
        ]
        .into_iter()
        .find(|(name, _)| media_type.eq_ignore_ascii_case(name))
        .map(|(_, patch_type)| patch_type)
    }
}

/// Why a patch could not be applied, with the HTTP status kube-apiserver
/// answers it with: 400 for a body that does not decode or a malformed
/// strategic-merge directive, 413 for a JSON Patch of more than 10000
/// operations, 415 for a strategic merge patch of a custom resource, 422 for a
/// JSON Patch that does not apply (a failed `test` included) or a result that
/// is not an object, and 500 for the strategic-merge errors kube-apiserver
/// passes through untranslated (for example an item without its merge key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchError {
    /// Human-readable reason, worded like kube-apiserver's where it has one.
    pub message: String,
    /// HTTP status code for the response.
    pub code: u16,
}

impl PatchError {
    fn new(code: u16, message: impl Into<String>) -> Self {
        PatchError {
            message: message.into(),
            code,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatchError {}

/// Applies `patch` (raw body bytes) of `patch_type` to `original`, an object
/// of `kind` (e.g. "Deployment", "Pod"). A strategic merge patch of a kind with
/// no known strategy, i.e. a custom resource, is refused with kube-apiserver's
/// 415 message. The result is always a JSON object.
pub fn apply(
    kind: &str,
    original: &Value,
    patch_type: PatchType,
    patch: &[u8],
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => apply_merge_patch(original, patch),
        PatchType::StrategicMerge => apply_strategic_merge_patch(kind, original, patch),
    }
}

/// A JSON Patch result that is not an object cannot be decoded into a typed
/// object; this is the tail of the decoder's complaint kube-apiserver reports.
const GO_KIND_PROBE_TYPE: &str = r#"struct { APIVersion string "json:\"apiVersion,omitempty\""; Kind string "json:\"kind,omitempty\"" }"#;

/// kube decodes the patched JSON into the Go type; anything but an object
/// fails there with this complaint, which it reports as the 422 cause on the
/// `patch` field (the caller adds that wrapping).
fn require_object(doc: Value) -> Result<Value, PatchError> {
    if doc.is_object() {
        return Ok(doc);
    }
    Err(PatchError::unprocessable(format!(
        "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type {GO_KIND_PROBE_TYPE}",
        json_type_name(&doc)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_map_to_patch_types() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json;charset=UTF-8"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            None
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(PatchType::from_content_type(""), None);
    }

    #[test]
    fn errors_display_their_message() {
        let e = PatchError::unprocessable("nope");
        assert_eq!(e.to_string(), "nope");
        assert_eq!(e.code, 422);
    }
}
