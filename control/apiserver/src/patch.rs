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
//!   server does not have; [`merge_strategy`] is the table of those tags, keyed
//!   by kind and by the path of field names from the object root.
//!
//! Status codes follow kube-apiserver with the default field validation
//! (`Warn`, or `Strict` as kubectl sends): an undecodable body is 400, a JSON
//! Patch that cannot be applied is 422, strategic-merge directive format errors
//! are 400, lists of lists are 422, and the strategic-merge errors that
//! kube-apiserver does not translate (a missing merge key, a `$setElementOrder`
//! that contradicts its list, an unknown `$patch`) are 500, as there.
//! Strategic merge of a kind without Go types (a custom resource) is 415.

use serde_json::{Map, Value};
use std::fmt;

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

/// kube-apiserver refuses longer JSON Patches outright, before applying any.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The patch types a custom resource endpoint lists in its 415 answer
/// (CBOR apply is behind a feature gate that is off in 1.32).
const CUSTOM_RESOURCE_PATCH_TYPES: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

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

// ---------------------------------------------------------------------------
// JSON Patch, with the semantics of evanphx/json-patch v4.12.0.
// ---------------------------------------------------------------------------

fn apply_json_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let operations = decode_json_patch(body)?;
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::new(
            413,
            format!(
                "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                operations.len()
            ),
        ));
    }
    let mut doc = original.clone();
    for operation in &operations {
        apply_operation(&mut doc, operation).map_err(PatchError::unprocessable)?;
    }
    require_object(doc)
}

/// Decodes the operation list. With field validation on (the default), kube
/// first decodes into a struct whose `op`, `path` and `from` are strings, so a
/// wrongly typed field is a 400 before anything is applied.
fn decode_json_patch(body: &[u8]) -> Result<Vec<Map<String, Value>>, PatchError> {
    let decode_error =
        |detail: String| PatchError::bad_request(format!("error decoding patch: {detail}"));
    let value: Value = serde_json::from_slice(body).map_err(|e| decode_error(e.to_string()))?;
    let items = match value {
        // Go decodes `null` into an empty operation list.
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(decode_error(format!(
                "json: cannot unmarshal {} into Go value of type []handlers.jsonPatchOp",
                json_type_name(&other)
            )))
        }
    };
    let mut operations = Vec::with_capacity(items.len());
    for item in items {
        match item {
            // A null operation decodes as an empty one and fails later as an unknown kind.
            Value::Null => operations.push(Map::new()),
            Value::Object(operation) => {
                for field in ["op", "path", "from"] {
                    if let Some(v) = operation.get(field) {
                        if !v.is_null() && !v.is_string() {
                            return Err(decode_error(format!(
                                "json: cannot unmarshal {} into Go struct field jsonPatchOp.{field} of type string",
                                json_type_name(v)
                            )));
                        }
                    }
                }
                operations.push(operation);
            }
            other => {
                return Err(decode_error(format!(
                    "json: cannot unmarshal {} into Go value of type handlers.jsonPatchOp",
                    json_type_name(&other)
                )))
            }
        }
    }
    Ok(operations)
}

fn operation_string<'o>(operation: &'o Map<String, Value>, field: &str) -> Option<&'o str> {
    operation.get(field).and_then(Value::as_str)
}

fn operation_path(operation: &Map<String, Value>) -> Result<&str, String> {
    operation_string(operation, "path")
        .ok_or_else(|| "operation missing path field: missing value".to_string())
}

fn operation_from(operation: &Map<String, Value>) -> Result<&str, String> {
    operation_string(operation, "from")
        .ok_or_else(|| "operation, missing from field: missing value".to_string())
}

fn apply_operation(doc: &mut Value, operation: &Map<String, Value>) -> Result<(), String> {
    let kind = operation_string(operation, "op").unwrap_or("unknown");
    match kind {
        "add" => operation_add(doc, operation),
        "remove" => operation_remove(doc, operation),
        "replace" => operation_replace(doc, operation),
        "move" => operation_move(doc, operation),
        "test" => operation_test(doc, operation),
        "copy" => operation_copy(doc, operation),
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn operation_add(doc: &mut Value, operation: &Map<String, Value>) -> Result<(), String> {
    let path = operation_path(operation)
        .map_err(|_| "add operation failed to decode path: missing value".to_string())?;
    // evanphx adds a null when the value is absent rather than refusing.
    let value = operation.get("value").cloned().unwrap_or(Value::Null);
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("add operation does not apply: doc is missing path: \"{path}\": missing value")
    })?;
    container_add(container, &key, value)
        .map_err(|e| format!("error in add for path: '{path}': {e}"))
}

fn operation_remove(doc: &mut Value, operation: &Map<String, Value>) -> Result<(), String> {
    let path = operation_path(operation)
        .map_err(|_| "remove operation failed to decode path: missing value".to_string())?;
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("remove operation does not apply: doc is missing path: \"{path}\": missing value")
    })?;
    container_remove(container, &key)
        .map(drop)
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn operation_replace(doc: &mut Value, operation: &Map<String, Value>) -> Result<(), String> {
    let path = operation_path(operation)
        .map_err(|e| format!("replace operation failed to decode path: {e}"))?;
    if path.is_empty() {
        // evanphx swaps the whole document only for an object or array value
        // and silently ignores anything else.
        if let Some(value @ (Value::Object(_) | Value::Array(_))) = operation.get("value") {
            *doc = value.clone();
        }
        return Ok(());
    }
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("replace operation does not apply: doc is missing path: {path}: missing value")
    })?;
    // Only an array index can be "missing" here: a missing object member is
    // simply set, which is how kube lets `replace` add a field.
    container_get(container, &key).map_err(|_| {
        format!("replace operation does not apply: doc is missing key: {path}: missing value")
    })?;
    let value = operation.get("value").cloned().unwrap_or(Value::Null);
    container_set(container, &key, value)
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn operation_move(doc: &mut Value, operation: &Map<String, Value>) -> Result<(), String> {
    let from = operation_from(operation)
        .map_err(|e| format!("move operation failed to decode from: {e}"))?;
    let (container, key) = find_container(doc, from).ok_or_else(|| {
        format!("move operation does not apply: doc is missing from path: {from}: missing value")
    })?;
    container_get(container, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let value = container_remove(container, &key)
        .map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let path = operation_path(operation)
        .map_err(|e| format!("move operation failed to decode path: {e}"))?;
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!(
            "move operation does not apply: doc is missing destination path: {path}: missing value"
        )
    })?;
    container_add(container, &key, value)
        .map_err(|e| format!("error in move for path: '{path}': {e}"))
}

fn operation_test(doc: &mut Value, operation: &Map<String, Value>) -> Result<(), String> {
    let path = operation_path(operation)
        .map_err(|e| format!("test operation failed to decode path: {e}"))?;
    let expected = operation.get("value");
    let failed = || format!("testing value {path} failed: test failed");
    if path.is_empty() {
        return match expected {
            Some(expected) if expected == &*doc => Ok(()),
            _ => Err(failed()),
        };
    }
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("test operation does not apply: is missing path: {path}: missing value")
    })?;
    let actual = container_get(container, &key)
        .map_err(|e| format!("error in test for path: '{path}': {e}"))?;
    match (actual.filter(|v| !v.is_null()), expected) {
        // A missing or null member equals an explicit null.
        (None, Some(Value::Null)) => Ok(()),
        (Some(actual), Some(expected)) if actual == expected => Ok(()),
        _ => Err(failed()),
    }
}

fn operation_copy(doc: &mut Value, operation: &Map<String, Value>) -> Result<(), String> {
    let from = operation_from(operation)
        .map_err(|e| format!("copy operation failed to decode from: {e}"))?;
    let (container, key) = find_container(doc, from).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing from path: {from}: missing value")
    })?;
    // Copying a missing object member copies a null, as evanphx does.
    let value = container_get(container, &key)
        .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
        .cloned()
        .unwrap_or(Value::Null);
    let path = operation_path(operation)
        .map_err(|_| "copy operation failed to decode path: missing value".to_string())?;
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!(
            "copy operation does not apply: doc is missing destination path: {path}: missing value"
        )
    })?;
    container_add(container, &key, value)
        .map_err(|e| format!("error while adding value during copy: {e}"))
}

/// Resolves all but the last token of `path` to the object or array that holds
/// the target, and returns it with the last token decoded. Like evanphx it
/// splits on every `/` without requiring a leading one, so "a/b" addresses
/// "b" at the root and "" has no parent at all.
fn find_container<'d>(doc: &'d mut Value, path: &str) -> Option<(&'d mut Value, String)> {
    let mut tokens: Vec<&str> = path.split('/').collect();
    if tokens.len() < 2 {
        return None;
    }
    let last = unescape_token(tokens.pop()?);
    if !is_container(doc) {
        return None;
    }
    let mut current = doc;
    for token in tokens.iter().skip(1) {
        let token = unescape_token(token);
        let next = match current {
            Value::Object(map) => map.get_mut(&token)?,
            Value::Array(items) => {
                let index = array_index(items.len(), &token).ok()?;
                items.get_mut(index)?
            }
            _ => return None,
        };
        if !is_container(next) {
            return None;
        }
        current = next;
    }
    Some((current, last))
}

fn is_container(value: &Value) -> bool {
    value.is_object() || value.is_array()
}

/// RFC 6901 unescaping, left to right so that "~01" becomes "~1".
fn unescape_token(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.peek() {
                Some('1') => {
                    out.push('/');
                    chars.next();
                    continue;
                }
                Some('0') => {
                    out.push('~');
                    chars.next();
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// Go's strconv.Atoi, which also takes a sign and leading zeros.
fn parse_index(token: &str) -> Result<i64, String> {
    token.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {token:?}: {why}")
    })
}

fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: invalid index referenced")
}

fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// Index of an existing element; negative indices count from the end.
fn array_index(len: usize, token: &str) -> Result<usize, String> {
    let len = len_i64(len);
    let mut index = parse_index(token)?;
    if index < 0 {
        if index < -len {
            return Err(invalid_index(index));
        }
        index += len;
    }
    if index >= len {
        return Err(invalid_index(index));
    }
    usize::try_from(index).map_err(|_| invalid_index(index))
}

fn container_get<'c>(container: &'c Value, key: &str) -> Result<Option<&'c Value>, String> {
    match container {
        Value::Object(map) => Ok(map.get(key)),
        Value::Array(items) => Ok(items.get(array_index(items.len(), key)?)),
        _ => Err("invalid state detected".to_string()),
    }
}

fn container_set(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(items.len(), key)?;
            let slot = items
                .get_mut(index)
                .ok_or_else(|| invalid_index(len_i64(index)))?;
            *slot = value;
            Ok(())
        }
        _ => Err("invalid state detected".to_string()),
    }
}

fn container_add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            if key == "-" {
                items.push(value);
                return Ok(());
            }
            let mut index = parse_index(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            // Inserting may also address the slot just past the end.
            let size = len_i64(items.len()).saturating_add(1);
            if index >= size {
                return Err(invalid_index(index));
            }
            if index < 0 {
                if index < -size {
                    return Err(invalid_index(index));
                }
                index += size;
            }
            let index = usize::try_from(index).map_err(|_| invalid_index(index))?;
            items.insert(index, value);
            Ok(())
        }
        _ => Err("invalid state detected".to_string()),
    }
}

fn container_remove(container: &mut Value, key: &str) -> Result<Value, String> {
    match container {
        Value::Object(map) => map
            .remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: missing value")),
        Value::Array(items) => {
            let len = len_i64(items.len());
            let mut index = parse_index(key)?;
            if index >= len {
                return Err(invalid_index(index));
            }
            if index < 0 {
                if index < -len {
                    return Err(invalid_index(index));
                }
                index += len;
            }
            let index = usize::try_from(index).map_err(|_| invalid_index(index))?;
            Ok(items.remove(index))
        }
        _ => Err("invalid state detected".to_string()),
    }
}

// ---------------------------------------------------------------------------
// JSON merge patch.
// ---------------------------------------------------------------------------

fn apply_merge_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::bad_request(format!("error decoding patch: {e}")))?;
    let patch = match patch {
        Value::Object(patch) => patch,
        // evanphx refuses a null document with this exact message.
        Value::Null => return Err(PatchError::bad_request("Invalid JSON Patch")),
        // Field validation decodes the body into a map first, so a non-object
        // is a 400 here rather than RFC 7386's "replace the whole target".
        other => {
            return Err(PatchError::bad_request(format!(
                "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type_name(&other)
            )))
        }
    };
    let patch = prune_merge_patch(original.as_object(), patch);
    let mut doc = original.clone();
    json_patch::merge(&mut doc, &Value::Object(patch));
    require_object(doc)
}

/// Drops the nulls evanphx drops: inside any value that lands where the target
/// has no object to merge into (it prunes nested objects, arrays included),
/// but not inside a non-object that replaces an object (it keeps those as
/// sent). `null` members that delete target keys stay.
fn prune_merge_patch(
    target: Option<&Map<String, Value>>,
    patch: Map<String, Value>,
) -> Map<String, Value> {
    patch
        .into_iter()
        .map(|(key, value)| {
            let current = target.and_then(|t| t.get(&key)).filter(|v| !v.is_null());
            let value = match (current, value) {
                (_, Value::Null) => Value::Null,
                (Some(Value::Object(current)), Value::Object(value)) => {
                    Value::Object(prune_merge_patch(Some(current), value))
                }
                (Some(Value::Object(_)), value) => value,
                (_, value) => prune_nulls(value),
            };
            (key, value)
        })
        .collect()
}

fn prune_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, prune_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune_nulls).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------
// Strategic merge patch: the strategy table.
// ---------------------------------------------------------------------------

/// How a field merges, from the `patchStrategy`/`patchMergeKey` tags of the
/// Go type that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    /// No tag: maps merge key by key, lists are replaced whole.
    Untagged,
    /// `patchStrategy:"merge"` with `patchMergeKey`: a list of objects merged
    /// item by item on this key.
    MergeKey(&'static str),
    /// `patchStrategy:"merge"` on a list of scalars: a set union.
    MergeSet,
    /// `patchStrategy:"replace"` on an object: the patch value replaces it.
    Replace,
}

/// Kinds that kube-apiserver serves from Go types, so strategic merge patch is
/// accepted for them. Any other kind is taken to be a custom resource.
const BUILT_IN_KINDS: &[&str] = &[
    // core/v1
    "Binding",
    "ComponentStatus",
    "ConfigMap",
    "Endpoints",
    "Event",
    "LimitRange",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Pod",
    "PodTemplate",
    "ReplicationController",
    "ResourceQuota",
    "Secret",
    "Service",
    "ServiceAccount",
    // apps, batch, autoscaling, policy
    "ControllerRevision",
    "CronJob",
    "DaemonSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Job",
    "PodDisruptionBudget",
    "ReplicaSet",
    "Scale",
    "StatefulSet",
    // coordination, discovery, networking, node, scheduling
    "EndpointSlice",
    "Ingress",
    "IngressClass",
    "Lease",
    "NetworkPolicy",
    "PriorityClass",
    "RuntimeClass",
    // rbac, storage, certificates
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "CSIDriver",
    "CSINode",
    "CSIStorageCapacity",
    "Role",
    "RoleBinding",
    "StorageClass",
    "VolumeAttachment",
    // admission, flow control, API extension
    "APIService",
    "CustomResourceDefinition",
    "FlowSchema",
    "MutatingWebhookConfiguration",
    "PriorityLevelConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
];

/// The strategy of the field at `path` (field names from the object root, list
/// indices left out) in an object of `kind`, transcribed from the struct tags
/// in k8s.io/api v0.32 `*/v1/types.go` and apimachinery's `ObjectMeta`.
///
/// `patchStrategy:"retainKeys"` (Deployment `spec.strategy`, PodSpec
/// `volumes`, `resourceClaims`) needs no entry: the server obeys a
/// `$retainKeys` directive wherever the client put one. Lists not listed here
/// (`tolerations`, `args`, `command`, `envFrom`, `resizePolicy`, `taints`,
/// `containerStatuses`, …) carry no tag and are replaced whole.
fn merge_strategy(kind: &str, path: &[&str]) -> Strategy {
    use Strategy::{MergeKey, Replace, Untagged};
    if let ["metadata", rest @ ..] = path {
        return object_meta_strategy(rest);
    }
    match (kind, path) {
        ("Pod", ["spec", rest @ ..]) => pod_spec_strategy(rest),
        ("Pod", ["status", rest @ ..]) => pod_status_strategy(rest),
        ("PodTemplate", ["template", rest @ ..]) => pod_template_strategy(rest),
        (
            "Deployment"
            | "ReplicaSet"
            | "DaemonSet"
            | "StatefulSet"
            | "Job"
            | "ReplicationController",
            ["spec", "template", rest @ ..],
        ) => pod_template_strategy(rest),
        ("CronJob", ["spec", "jobTemplate", "metadata", rest @ ..]) => object_meta_strategy(rest),
        ("CronJob", ["spec", "jobTemplate", "spec", "template", rest @ ..]) => {
            pod_template_strategy(rest)
        }
        (
            "Deployment"
            | "ReplicaSet"
            | "DaemonSet"
            | "StatefulSet"
            | "Job"
            | "ReplicationController"
            | "Node"
            | "Service"
            | "Namespace"
            | "PersistentVolumeClaim"
            | "PodDisruptionBudget"
            | "HorizontalPodAutoscaler"
            | "FlowSchema"
            | "PriorityLevelConfiguration",
            ["status", "conditions"],
        ) => MergeKey("type"),
        ("ComponentStatus", ["conditions"]) => MergeKey("type"),
        ("Node", ["spec", "podCIDRs"]) => Strategy::MergeSet,
        ("Node", ["status", "addresses"]) => MergeKey("type"),
        ("Service", ["spec", "ports"]) => MergeKey("port"),
        ("ServiceAccount", ["secrets"]) => MergeKey("name"),
        ("PodDisruptionBudget", ["spec", "selector"]) => Replace,
        ("CSINode", ["spec", "drivers"]) => MergeKey("name"),
        (
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
            ["webhooks"] | ["webhooks", "matchConditions"],
        ) => MergeKey("name"),
        ("ValidatingAdmissionPolicy", ["spec", "matchConditions" | "variables"]) => {
            MergeKey("name")
        }
        _ => Untagged,
    }
}

/// The struct tags of the field at `path` in `kind` as kube's OpenAPI publishes them:
/// `x-kubernetes-patch-strategy` (`merge`, `replace`, `retainKeys`, `merge,retainKeys`) and
/// `x-kubernetes-patch-merge-key`. kubectl computes the strategic merge patches of `apply`
/// from them, so they must say what this server applies. `None` for an untagged field.
pub fn patch_tags(kind: &str, path: &[&str]) -> Option<(&'static str, Option<&'static str>)> {
    let retain_keys = retains_keys(kind, path);
    match merge_strategy(kind, path) {
        Strategy::MergeKey(key) if retain_keys => Some(("merge,retainKeys", Some(key))),
        Strategy::MergeKey(key) => Some(("merge", Some(key))),
        Strategy::MergeSet => Some(("merge", None)),
        Strategy::Replace => Some(("replace", None)),
        Strategy::Untagged if retain_keys => Some(("retainKeys", None)),
        Strategy::Untagged => None,
    }
}

/// The fields tagged `patchStrategy:"retainKeys"`: Deployment `spec.strategy`, and a pod
/// spec's `volumes` and `resourceClaims` wherever one is. The merge itself needs no table for
/// them (the `$retainKeys` directive says it all); clients need it to send the directive.
fn retains_keys(kind: &str, path: &[&str]) -> bool {
    let pod_spec: &[&str] = match (kind, path) {
        ("Deployment", ["spec", "strategy"]) => return true,
        ("Pod", ["spec", rest @ ..]) => rest,
        ("PodTemplate", ["template", "spec", rest @ ..]) => rest,
        (
            "Deployment"
            | "ReplicaSet"
            | "DaemonSet"
            | "StatefulSet"
            | "Job"
            | "ReplicationController",
            ["spec", "template", "spec", rest @ ..],
        ) => rest,
        ("CronJob", ["spec", "jobTemplate", "spec", "template", "spec", rest @ ..]) => rest,
        _ => return false,
    };
    matches!(pod_spec, ["volumes" | "resourceClaims"])
}

/// `ObjectMeta`, wherever an object or template carries one.
fn object_meta_strategy(path: &[&str]) -> Strategy {
    match path {
        ["ownerReferences"] => Strategy::MergeKey("uid"),
        ["finalizers"] => Strategy::MergeSet,
        _ => Strategy::Untagged,
    }
}

/// `PodTemplateSpec`: `metadata` and `spec`.
fn pod_template_strategy(path: &[&str]) -> Strategy {
    match path {
        ["metadata", rest @ ..] => object_meta_strategy(rest),
        ["spec", rest @ ..] => pod_spec_strategy(rest),
        _ => Strategy::Untagged,
    }
}

fn pod_spec_strategy(path: &[&str]) -> Strategy {
    use Strategy::{MergeKey, Untagged};
    match path {
        ["containers" | "initContainers" | "ephemeralContainers"] => MergeKey("name"),
        ["containers" | "initContainers" | "ephemeralContainers", rest @ ..] => {
            container_strategy(rest)
        }
        ["volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims"] => MergeKey("name"),
        ["volumes", "ephemeral", "volumeClaimTemplate", "metadata", rest @ ..] => {
            object_meta_strategy(rest)
        }
        ["hostAliases"] => MergeKey("ip"),
        ["topologySpreadConstraints"] => MergeKey("topologyKey"),
        _ => Untagged,
    }
}

/// `Container` and `EphemeralContainerCommon`.
fn container_strategy(path: &[&str]) -> Strategy {
    match path {
        ["ports"] => Strategy::MergeKey("containerPort"),
        ["env"] => Strategy::MergeKey("name"),
        ["volumeMounts"] => Strategy::MergeKey("mountPath"),
        ["volumeDevices"] => Strategy::MergeKey("devicePath"),
        _ => Strategy::Untagged,
    }
}

fn pod_status_strategy(path: &[&str]) -> Strategy {
    match path {
        ["conditions"] => Strategy::MergeKey("type"),
        ["hostIPs" | "podIPs"] => Strategy::MergeKey("ip"),
        ["resourceClaimStatuses"] => Strategy::MergeKey("name"),
        _ => Strategy::Untagged,
    }
}

// ---------------------------------------------------------------------------
// Strategic merge patch: the merge, after strategicpatch.mergeMap and friends.
// ---------------------------------------------------------------------------

const DIRECTIVE_MARKER: &str = "$patch";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const GO_MAP_TYPE: &str = "map[string]interface {}";
const GO_SLICE_TYPE: &str = "[]interface {}";

fn apply_strategic_merge_patch(
    kind: &str,
    original: &Value,
    body: &[u8],
) -> Result<Value, PatchError> {
    if !BUILT_IN_KINDS.contains(&kind) {
        return Err(PatchError::new(
            415,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {CUSTOM_RESOURCE_PATCH_TYPES}"
            ),
        ));
    }
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| PatchError::bad_request(e.to_string()))?;
    let patch = match patch {
        Value::Object(patch) => patch,
        // Go decodes `null` into a nil map, which merges as no change.
        Value::Null => return Ok(original.clone()),
        other => {
            return Err(PatchError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type {GO_MAP_TYPE}",
                json_type_name(&other)
            )))
        }
    };
    let Value::Object(original) = original.clone() else {
        return Err(PatchError::bad_request("invalid JSON document"));
    };
    let merger = StrategicMerge { kind };
    let mut path = Vec::new();
    merger
        .merge_map(original, patch, &mut path)
        .map(Value::Object)
}

/// The kind of the elements of a list, as far as merging cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ElementKind {
    Map,
    String,
    Number,
    Bool,
    Null,
}

struct StrategicMerge<'k> {
    kind: &'k str,
}

impl StrategicMerge<'_> {
    fn strategy(&self, path: &[String], field: &str) -> Strategy {
        let mut full: Vec<&str> = path.iter().map(String::as_str).collect();
        full.push(field);
        merge_strategy(self.kind, &full)
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE_MARKER).cloned() {
            return match directive.as_str() {
                Some("replace") => {
                    patch.remove(DIRECTIVE_MARKER);
                    Ok(clean_replacement_map(patch))
                }
                Some("delete") => Ok(Map::new()),
                // kube accepts no `$patch: merge` on a map: merging is the default.
                _ => Err(bad_patch_type(&directive, &patch)),
            };
        }

        apply_retain_keys(&mut original, &mut patch)?;
        self.merge_ordered_lists(&mut original, &mut patch, path)?;

        for (key, patch_value) in patch {
            let (field, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                let field = extract_directive_key(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?;
                (if field.is_empty() { key } else { field }, true)
            } else {
                (key, false)
            };

            if patch_value.is_null() {
                original.remove(&field);
                continue;
            }
            let Some(original_value) = original.remove(&field) else {
                // Deleting from a list that is not there is a no-op.
                if !is_delete_list {
                    if let Some(value) = clean_new_value(patch_value) {
                        original.insert(field, value);
                    }
                }
                continue;
            };

            let merged = match (original_value, patch_value) {
                (Value::Object(current), Value::Object(update)) => {
                    if self.strategy(path, &field) == Strategy::Replace {
                        Some(Value::Object(clean_replacement_map(update)))
                    } else {
                        path.push(field.clone());
                        let merged = self.merge_map(current, update, path);
                        path.pop();
                        Some(Value::Object(merged?))
                    }
                }
                (Value::Array(current), Value::Array(update)) => {
                    let strategy = self.strategy(path, &field);
                    path.push(field.clone());
                    let merged =
                        self.merge_list_field(current, update, strategy, is_delete_list, path);
                    path.pop();
                    Some(Value::Array(merged?))
                }
                (current, update) if json_type_name(&current) == json_type_name(&update) => {
                    clean_new_value(update)
                }
                // A delete list against a field of another type leaves it alone.
                (current, _) if is_delete_list => Some(current),
                (_, update) => clean_new_value(update),
            };
            if let Some(value) = merged {
                original.insert(field, value);
            }
        }
        Ok(original)
    }

    fn merge_list_field(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        strategy: Strategy,
        is_delete_list: bool,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        match strategy {
            Strategy::MergeKey(merge_key) => {
                self.merge_list(original, patch, merge_key, is_delete_list, path)
            }
            Strategy::MergeSet => self.merge_list(original, patch, "", is_delete_list, path),
            // A `$deleteFromPrimitiveList` applies whatever the field's strategy.
            _ if is_delete_list => self.merge_list(original, patch, "", true, path),
            _ => Ok(patch.into_iter().map(clean_replacement).collect()),
        }
    }

    /// strategicpatch.mergeSlice: union of scalars, or item-by-item merge of
    /// objects on `merge_key`, then kube's ordering: patch items in patch
    /// order, interleaved with server-only items by their original positions.
    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        merge_key: &str,
        is_delete_list: bool,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        let Some(kind) = element_kind(&original, &patch)? else {
            return Ok(original);
        };
        if kind != ElementKind::Map {
            if is_delete_list {
                return Ok(original
                    .into_iter()
                    .filter(|v| !patch.contains(v))
                    .collect());
            }
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for value in original.iter().chain(patch.iter()) {
                if !merged.contains(value) {
                    merged.push(value.clone());
                }
            }
            let (patch_items, server_only) = partition_by_presence(merged, &patch, merge_key)?;
            return normalize_element_order(
                patch_items,
                server_only,
                &patch,
                &original,
                merge_key,
                kind,
            );
        }
        if merge_key.is_empty() {
            return Err(PatchError::internal(format!(
                "cannot merge lists without merge key for {}",
                path.last().map(String::as_str).unwrap_or_default()
            )));
        }
        let (original, patch) = apply_list_directives(original, patch, merge_key)?;
        let merged = self.merge_list_items(original.clone(), patch.clone(), merge_key, path)?;
        let (patch_items, server_only) = partition_by_presence(merged, &patch, merge_key)?;
        normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
    }

    fn merge_list_items(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        merge_key: &str,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        for item in patch {
            let Value::Object(item) = item else {
                return Err(PatchError::internal(bad_arg_type(GO_MAP_TYPE, &item)));
            };
            let Some(key_value) = item.get(merge_key).cloned() else {
                return Err(PatchError::internal(no_merge_key(
                    &Value::Object(item),
                    merge_key,
                )));
            };
            match find_by_merge_key(&original, merge_key, &key_value)? {
                Some(index) => {
                    if let Some(slot) = original.get_mut(index) {
                        let Value::Object(current) = std::mem::take(slot) else {
                            return Err(PatchError::internal(format!(
                                "value for key {index} is not a map"
                            )));
                        };
                        *slot = Value::Object(self.merge_map(current, item, path)?);
                    }
                }
                None => original.push(clean_replacement(Value::Object(item))),
            }
        }
        Ok(original)
    }

    /// strategicpatch.mergePatchIntoOriginal: each `$setElementOrder/<field>`
    /// merges `<field>` now and orders the result by the list given, then by
    /// the patch, then by the live object.
    fn merge_ordered_lists(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<(), PatchError> {
        let directives: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        for directive in directives {
            let Some(order) = patch.remove(&directive) else {
                continue;
            };
            let Value::Array(order) = order else {
                return Err(PatchError::internal(bad_arg_type(GO_SLICE_TYPE, &order)));
            };
            let field = extract_directive_key(&directive, SET_ELEMENT_ORDER_PREFIX)?;
            let original_list = take_list(original, &field, true)?;
            let patch_list = take_list(patch, &field, false)?;

            let strategy = self.strategy(path, &field);
            let merge_key = match strategy {
                Strategy::MergeKey(merge_key) => merge_key,
                _ => "",
            };
            validate_patch_with_set_order(
                patch_list.as_deref().unwrap_or_default(),
                &order,
                merge_key,
            )?;
            let kind = element_kind(
                original_list.as_deref().unwrap_or_default(),
                patch_list.as_deref().unwrap_or_default(),
            )?;
            let server_order = original_list.clone().unwrap_or_default();
            let merged = match (original_list, patch_list) {
                (Some(current), None) => current,
                (None, Some(update)) => update.into_iter().filter_map(clean_new_value).collect(),
                (Some(current), Some(update)) => {
                    path.push(field.clone());
                    let merged = self.merge_list_field(current, update, strategy, false, path);
                    path.pop();
                    merged?
                }
                (None, None) => continue,
            };
            // kube errors on two empty lists; a live object never holds one
            // there, so an empty list is simply kept as it is.
            let Some(kind) = kind else {
                original.insert(field, Value::Array(merged));
                continue;
            };
            let (patch_items, server_only) = partition_by_presence(merged, &order, merge_key)?;
            let ordered = normalize_element_order(
                patch_items,
                server_only,
                &order,
                &server_order,
                merge_key,
                kind,
            )?;
            original.insert(field, Value::Array(ordered));
        }
        Ok(())
    }
}

/// Removes `field` from `map` as a list. In the live object a null counts as
/// absent, since a typed Go object never holds one; in the patch it is an
/// error, as in kube.
fn take_list(
    map: &mut Map<String, Value>,
    field: &str,
    null_is_absent: bool,
) -> Result<Option<Vec<Value>>, PatchError> {
    match map.remove(field) {
        None => Ok(None),
        Some(Value::Null) if null_is_absent => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(PatchError::internal(bad_arg_type(GO_SLICE_TYPE, &other))),
    }
}

/// strategicpatch.applyRetainKeysDirective: every key the patch sets must be
/// listed, and keys of the original that are not listed are dropped.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let bad_format = || PatchError::bad_request("invalid patch format of retainKeys");
    let Value::Array(retain) = retain else {
        return Err(bad_format());
    };
    let listed = |key: &str| retain.iter().any(|v| v.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !listed(key) {
            return Err(bad_format());
        }
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// Splits "<prefix>/<field>"; anything else is the directive's 400.
fn extract_directive_key(key: &str, prefix: &str) -> Result<String, PatchError> {
    let mut parts = key.splitn(2, '/');
    let head = parts.next().unwrap_or_default();
    match parts.next() {
        Some(field) if head == prefix => Ok(field.to_string()),
        _ if prefix == SET_ELEMENT_ORDER_PREFIX => Err(PatchError::bad_request(
            "invalid patch format of setElementOrder list",
        )),
        _ => Err(PatchError::bad_request(
            "invalid patch format of primitive list",
        )),
    }
}

/// strategicpatch.mergeSliceWithSpecialElements: `$patch: delete` items remove
/// every original item with that key, `$patch: replace` makes the remaining
/// patch items the whole list.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut kept = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        if item.get(DIRECTIVE_MARKER).is_none() {
            kept.push(item);
            continue;
        }
        let directive = item.get(DIRECTIVE_MARKER).unwrap_or(&Value::Null);
        match directive.as_str() {
            Some("delete") => {
                let Some(key_value) = item.get(merge_key) else {
                    return Err(PatchError::internal(no_merge_key(&item, merge_key)));
                };
                original.retain(|o| o.get(merge_key) != Some(key_value));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::internal(
                    "merging lists cannot yet be specified in the patch",
                ))
            }
            _ => {
                let Value::Object(map) = &item else {
                    return Err(PatchError::internal(bad_arg_type(GO_MAP_TYPE, &item)));
                };
                return Err(bad_patch_type(directive, map));
            }
        }
    }
    if replace {
        return Ok((
            kept.into_iter().map(clean_replacement).collect(),
            Vec::new(),
        ));
    }
    Ok((original, kept))
}

/// Index of the first item whose `merge_key` equals `value`. Like kube, every
/// item scanned must be an object.
fn find_by_merge_key(
    list: &[Value],
    merge_key: &str,
    value: &Value,
) -> Result<Option<usize>, PatchError> {
    for (index, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(PatchError::internal(format!(
                "value for key {index} is not a map"
            )));
        };
        if map.get(merge_key) == Some(value) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// The element kind shared by both lists, None when both are empty. As in
/// strategicpatch.sliceElementType, a list as the first element is the 422
/// "lists of lists", and any other mix of kinds is an (untranslated) error.
fn element_kind(first: &[Value], second: &[Value]) -> Result<Option<ElementKind>, PatchError> {
    let mut kind: Option<ElementKind> = None;
    for value in first.iter().chain(second.iter()) {
        let this = match value {
            Value::Object(_) => Some(ElementKind::Map),
            Value::String(_) => Some(ElementKind::String),
            Value::Number(_) => Some(ElementKind::Number),
            Value::Bool(_) => Some(ElementKind::Bool),
            Value::Null => Some(ElementKind::Null),
            Value::Array(_) if kind.is_none() => {
                return Err(PatchError::unprocessable(
                    "lists of lists are not supported",
                ))
            }
            Value::Array(_) => None,
        };
        match (kind, this) {
            (None, Some(this)) => kind = Some(this),
            (Some(previous), Some(this)) if previous == this => {}
            _ => {
                let both = Value::Array(vec![
                    Value::Array(first.to_vec()),
                    Value::Array(second.to_vec()),
                ]);
                return Err(PatchError::internal(format!(
                    "list element types are not identical: {}",
                    go_format(&both)
                )));
            }
        }
    }
    Ok(kind)
}

/// Splits `merged` into the items present in `by` and the rest (server-only),
/// by merge key for lists of objects and by value otherwise.
fn partition_by_presence(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::with_capacity(merged.len());
    let mut server_only = Vec::with_capacity(merged.len());
    for item in merged {
        let found = if merge_key.is_empty() {
            by.contains(&item)
        } else {
            let key_value = merge_key_value(&item, merge_key)?;
            find_by_merge_key(by, merge_key, key_value)?.is_some()
        };
        if found {
            present.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((present, server_only))
}

fn merge_key_value<'v>(item: &'v Value, merge_key: &str) -> Result<&'v Value, PatchError> {
    let Value::Object(map) = item else {
        return Err(PatchError::internal(bad_arg_type(GO_MAP_TYPE, item)));
    };
    map.get(merge_key)
        .ok_or_else(|| PatchError::internal(no_merge_key(item, merge_key)))
}

/// strategicpatch.validatePatchWithSetOrderList: the patch items (deletions
/// and other directives aside) must appear in the `$setElementOrder` list, in
/// the same relative order.
fn validate_patch_with_set_order(
    patch: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut items: Vec<&Value> = Vec::with_capacity(patch.len());
    for item in patch {
        if !merge_key.is_empty() {
            let Value::Object(map) = item else {
                return Err(PatchError::internal(bad_arg_type(GO_MAP_TYPE, item)));
            };
            if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        items.push(item);
    }
    let (mut patch_index, mut order_index) = (0, 0);
    while let (Some(item), Some(ordered)) = (items.get(patch_index), order.get(order_index)) {
        if item.get(DIRECTIVE_MARKER).is_some() {
            patch_index += 1;
            continue;
        }
        if merge_key_equal(item, ordered, merge_key)? {
            patch_index += 1;
        }
        order_index += 1;
    }
    if patch_index < items.len() && order_index >= order.len() {
        return Err(PatchError::internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_format(&Value::Array(patch.to_vec())),
            go_format(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    Ok(merge_key_value(left, merge_key)? == merge_key_value(right, merge_key)?)
}

/// Position of `item` in `list`: by merge key for objects, by value otherwise.
fn position_in(list: &[Value], item: &Value, merge_key: &str, kind: ElementKind) -> Option<usize> {
    if kind == ElementKind::Map {
        let key = item.get(merge_key);
        list.iter().position(|v| v.get(merge_key) == key)
    } else {
        list.iter().position(|v| v == item)
    }
}

/// strategicpatch.normalizeElementOrder.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = sort_by_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

/// Stable sort of `items` by their position in `order`.
fn sort_by_order(
    mut items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>, PatchError> {
    if kind == ElementKind::Map {
        for item in items.iter().chain(order.iter()) {
            merge_key_value(item, merge_key)?;
        }
    }
    items
        .sort_by_cached_key(|item| position_in(order, item, merge_key, kind).unwrap_or(usize::MAX));
    Ok(items)
}

/// strategicpatch.mergeSortedSlice: walks both sorted lists and takes the
/// server-only item first only when both are in the live list and it came
/// first there. An item new to the live list therefore goes before the
/// server-only items still waiting, which is why kube puts an item added
/// without `$setElementOrder` at the front of the list.
fn merge_sorted(
    server_only: Vec<Value>,
    patch_items: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(server_only.len() + patch_items.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!(
                (
                    position_in(server_order, l, merge_key, kind),
                    position_in(server_order, r, merge_key, kind),
                ),
                (Some(li), Some(ri)) if li < ri
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE_MARKER
        || key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// A patch value stored where the original had nothing to merge with. kube
/// drops its nulls and every object that carries `$patch` (strategicpatch's
/// discardNullValuesFromPatch and removeDirectives); the other directive keys
/// vanish when the result is decoded into the Go type. None: drop the field.
fn clean_new_value(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.get(DIRECTIVE_MARKER).is_some_and(|d| !d.is_null()) {
                return None;
            }
            Some(Value::Object(
                map.into_iter()
                    .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
                    .filter_map(|(k, v)| clean_new_value(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(clean_new_value).collect(),
        )),
        other => Some(other),
    }
}

/// A patch value kube stores as sent (a replaced list or map, an appended list
/// item): decoding into the Go type is what drops its nulls and directive
/// keys, while items carrying `$patch` stay.
fn clean_replacement(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(clean_replacement_map(map)),
        Value::Array(items) => Value::Array(items.into_iter().map(clean_replacement).collect()),
        other => other,
    }
}

fn clean_replacement_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
        .map(|(k, v)| (k, clean_replacement(v)))
        .collect()
}

// ---------------------------------------------------------------------------
// Messages in the shape Go prints them.
// ---------------------------------------------------------------------------

/// The JSON type word encoding/json uses in "cannot unmarshal X into ...".
fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The Go type a decoded JSON value has, as reflect prints it.
fn go_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => GO_SLICE_TYPE,
        Value::Object(_) => GO_MAP_TYPE,
    }
}

/// Go's `%v` of a decoded JSON value: `map[k:v]`, `[a b]`, bare strings.
fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn bad_arg_type(expected: &str, actual: &Value) -> String {
    format!(
        "expected a {expected}, but received a {}",
        go_type_name(actual)
    )
}

fn no_merge_key(item: &Value, merge_key: &str) -> String {
    format!(
        "map: {} does not contain declared merge key: {merge_key}",
        go_format(item)
    )
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    let shown = match directive {
        Value::String(s) => s.clone(),
        other => format!("%!s({}={})", go_type_name(other), go_format(other)),
    };
    PatchError::internal(format!(
        "unknown patch type: {shown} in map: {}",
        go_format(&Value::Object(map.clone()))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch_ok(kind: &str, original: &Value, patch_type: PatchType, patch: &Value) -> Value {
        let body = serde_json::to_vec(patch).expect("test patch serializes");
        match apply(kind, original, patch_type, &body) {
            Ok(v) => v,
            Err(e) => panic!("patch failed with {}: {}", e.code, e.message),
        }
    }

    fn smp(kind: &str, original: Value, patch: Value) -> Value {
        patch_ok(kind, &original, PatchType::StrategicMerge, &patch)
    }

    fn smp_err(kind: &str, original: Value, patch: Value) -> PatchError {
        let body = serde_json::to_vec(&patch).expect("test patch serializes");
        apply(kind, &original, PatchType::StrategicMerge, &body).expect_err("patch should fail")
    }

    fn json_patch_err(original: &Value, body: &str) -> PatchError {
        apply("Pod", original, PatchType::Json, body.as_bytes()).expect_err("patch should fail")
    }

    fn names(list: &Value, key: &str) -> Vec<Value> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|item| item[key].clone())
            .collect()
    }

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

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web", "tier": "fe"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "old"}
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "image": "nginx",
                                "args": ["-x", "-y"],
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                "ports": [
                                    {"containerPort": 80, "protocol": "TCP"},
                                    {"containerPort": 443, "protocol": "TCP"}
                                ],
                                "volumeMounts": [
                                    {"name": "v1", "mountPath": "/a"},
                                    {"name": "v2", "mountPath": "/b"}
                                ]
                            },
                            {"name": "d", "image": "busybox"}
                        ],
                        "tolerations": [{"key": "a", "operator": "Exists"}],
                        "volumes": [{"name": "v1", "emptyDir": {}}, {"name": "v2", "emptyDir": {}}]
                    }
                }
            }
        })
    }

    #[test]
    fn kubectl_apply_body_for_a_deployment() {
        let body = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"..."},"labels":{"tier":null}},
 "spec":{"replicas":null,
  "strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"},
  "template":{"spec":{
   "$setElementOrder/containers":[{"name":"d"},{"name":"c"}],
   "$setElementOrder/volumes":[{"name":"v1"}],
   "containers":[{"name":"c","args":["-a"],
     "$setElementOrder/env":[{"name":"B"}],"env":[{"name":"B","value":"3"},{"$patch":"delete","name":"A"}],
     "$setElementOrder/ports":[{"containerPort":80}],"ports":[{"$patch":"delete","containerPort":443}],
     "$setElementOrder/volumeMounts":[{"mountPath":"/a"}],"volumeMounts":[{"$patch":"delete","mountPath":"/b"}]}],
   "tolerations":[{"key":"b","operator":"Exists"}],
   "volumes":[{"$patch":"delete","name":"v2"}]}}}}"#;
        let result = apply(
            "Deployment",
            &deployment(),
            PatchType::StrategicMerge,
            body.as_bytes(),
        )
        .expect("kubectl's body applies");
        let expected = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "..."}
            },
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "Recreate"},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "d", "image": "busybox"},
                            {
                                "name": "c",
                                "image": "nginx",
                                "args": ["-a"],
                                "env": [{"name": "B", "value": "3"}],
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "volumeMounts": [{"name": "v1", "mountPath": "/a"}]
                            }
                        ],
                        "tolerations": [{"key": "b", "operator": "Exists"}],
                        "volumes": [{"name": "v1", "emptyDir": {}}]
                    }
                }
            }
        });
        assert_eq!(result, expected);
    }

    #[test]
    fn rollout_restart_adds_a_template_annotation() {
        let result = smp(
            "Deployment",
            deployment(),
            json!({"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}),
        );
        assert_eq!(
            result["spec"]["template"]["metadata"],
            json!({
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
            })
        );
        assert_eq!(
            result["spec"]["template"]["spec"],
            deployment()["spec"]["template"]["spec"]
        );
    }

    #[test]
    fn cordon_and_uncordon_a_node() {
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.0.0.0/24"}});
        let cordoned = smp(
            "Node",
            node.clone(),
            json!({"spec": {"unschedulable": true}}),
        );
        assert_eq!(
            cordoned["spec"],
            json!({"podCIDR": "10.0.0.0/24", "unschedulable": true})
        );
        let uncordoned = smp("Node", cordoned, json!({"spec": {"unschedulable": null}}));
        assert_eq!(uncordoned, node);
    }

    #[test]
    fn label_merge_patch_sets_and_removes_labels() {
        let pod = json!({"metadata": {"name": "p", "labels": {"c": "d", "keep": "me"}}});
        let result = patch_ok(
            "Pod",
            &pod,
            PatchType::Merge,
            &json!({"metadata": {"labels": {"a": "b", "c": null}}}),
        );
        assert_eq!(
            result["metadata"]["labels"],
            json!({"a": "b", "keep": "me"})
        );
    }

    #[test]
    fn scale_merge_patch_sets_replicas() {
        let result = patch_ok(
            "Deployment",
            &deployment(),
            PatchType::Merge,
            &json!({"spec": {"replicas": 5}}),
        );
        assert_eq!(result["spec"]["replicas"], json!(5));
        assert_eq!(result["spec"]["strategy"], deployment()["spec"]["strategy"]);
    }

    #[test]
    fn merge_patch_replaces_lists_and_drops_nulls_inside_new_values() {
        let pod = json!({"spec": {"tolerations": [{"key": "a"}], "nodeSelector": "oops"}});
        let result = patch_ok(
            "Pod",
            &pod,
            PatchType::Merge,
            &json!({"spec": {
                "tolerations": [{"key": "b", "value": null}],
                "nodeSelector": {"disk": "ssd", "zone": null},
                "affinity": {"a": [{"x": null, "y": 1}]}
            }}),
        );
        // The target list is not an object, so evanphx prunes inside the array.
        assert_eq!(result["spec"]["tolerations"], json!([{"key": "b"}]));
        assert_eq!(result["spec"]["nodeSelector"], json!({"disk": "ssd"}));
        assert_eq!(result["spec"]["affinity"], json!({"a": [{"y": 1}]}));
    }

    #[test]
    fn merge_patch_keeps_nulls_in_an_array_that_replaces_an_object() {
        let doc = json!({"a": {"b": 1}});
        let result = patch_ok(
            "ConfigMap",
            &doc,
            PatchType::Merge,
            &json!({"a": [{"x": null}]}),
        );
        assert_eq!(result, json!({"a": [{"x": null}]}));
    }

    #[test]
    fn merge_patch_rejects_non_objects() {
        let doc = json!({"a": 1});
        let array = apply("Pod", &doc, PatchType::Merge, b"[1]").expect_err("array refused");
        assert_eq!(array.code, 400);
        assert_eq!(
            array.message,
            "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        let null = apply("Pod", &doc, PatchType::Merge, b"null").expect_err("null refused");
        assert_eq!(
            (null.code, null.message.as_str()),
            (400, "Invalid JSON Patch")
        );
        let malformed = apply("Pod", &doc, PatchType::Merge, b"{\"a\":").expect_err("malformed");
        assert_eq!(malformed.code, 400);
        assert!(
            malformed
                .message
                .starts_with("error decoding patch: EOF while parsing"),
            "{}",
            malformed.message
        );
    }

    #[test]
    fn rollout_undo_json_patch_replaces_template_and_annotations() {
        let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.0"}]}});
        let annotations = json!({"deployment.kubernetes.io/revision": "1"});
        let result = patch_ok(
            "Deployment",
            &deployment(),
            PatchType::Json,
            &json!([
                {"op": "replace", "path": "/spec/template", "value": template},
                {"op": "replace", "path": "/metadata/annotations", "value": annotations}
            ]),
        );
        assert_eq!(result["spec"]["template"], template);
        assert_eq!(result["metadata"]["annotations"], annotations);
        assert_eq!(result["spec"]["replicas"], json!(3));
    }

    #[test]
    fn json_patch_add_remove_move_copy_test() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}, "list": [1, 2, 3]});
        let result = patch_ok(
            "Pod",
            &doc,
            PatchType::Json,
            &json!([
                {"op": "test", "path": "/metadata/labels/a", "value": "1"},
                {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/a"},
                {"op": "add", "path": "/list/-", "value": 4},
                {"op": "add", "path": "/list/0", "value": 0},
                {"op": "move", "from": "/list/1", "path": "/moved"},
                {"op": "copy", "from": "/moved", "path": "/copied"}
            ]),
        );
        assert_eq!(
            result,
            json!({"metadata": {"labels": {"b/c": "2"}}, "list": [0, 2, 3, 4], "moved": 1, "copied": 1})
        );
    }

    #[test]
    fn json_patch_replace_of_a_missing_member_adds_it_like_kube() {
        let doc = json!({"metadata": {"labels": {}}});
        let result = patch_ok(
            "Pod",
            &doc,
            PatchType::Json,
            &json!([{"op": "replace", "path": "/metadata/labels/new", "value": "x"}]),
        );
        assert_eq!(result, json!({"metadata": {"labels": {"new": "x"}}}));
    }

    #[test]
    fn json_patch_negative_indices_count_from_the_end() {
        let doc = json!({"l": ["a", "b", "c"]});
        let result = patch_ok(
            "Pod",
            &doc,
            PatchType::Json,
            &json!([
                {"op": "replace", "path": "/l/-1", "value": "z"},
                {"op": "remove", "path": "/l/-3"},
                {"op": "add", "path": "/l/-1", "value": "end"}
            ]),
        );
        assert_eq!(result, json!({"l": ["b", "z", "end"]}));
    }

    #[test]
    fn json_patch_test_of_missing_member_against_null_passes() {
        let doc = json!({"a": {}});
        let result = patch_ok(
            "Pod",
            &doc,
            PatchType::Json,
            &json!([{"op": "test", "path": "/a/b", "value": null}]),
        );
        assert_eq!(result, doc);
    }

    #[test]
    fn json_patch_missing_path_is_a_422_in_evanphx_words() {
        let doc = json!({"metadata": {"name": "p"}});
        let e = json_patch_err(
            &doc,
            r#"[{"op":"add","path":"/metadata/labels/a","value":"b"}]"#,
        );
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "add operation does not apply: doc is missing path: \"/metadata/labels/a\": missing value"
        );
        let e = json_patch_err(&doc, r#"[{"op":"remove","path":"/metadata/labels"}]"#);
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "error in remove for path: '/metadata/labels': Unable to remove nonexistent key: labels: missing value"
        );
        let e = json_patch_err(
            &json!({"l": [1]}),
            r#"[{"op":"replace","path":"/l/5","value":2}]"#,
        );
        assert_eq!(
            e.message,
            "replace operation does not apply: doc is missing key: /l/5: missing value"
        );
    }

    #[test]
    fn json_patch_failed_test_is_a_422_and_changes_nothing() {
        let doc = json!({"spec": {"replicas": 3}});
        let e = json_patch_err(
            &doc,
            r#"[{"op":"replace","path":"/spec/replicas","value":1},{"op":"test","path":"/spec/replicas","value":3}]"#,
        );
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "testing value /spec/replicas failed: test failed"
        );
    }

    #[test]
    fn json_patch_unknown_op_and_bad_fields() {
        let doc = json!({});
        let e = json_patch_err(&doc, r#"[{"op":"frobnicate","path":"/a"}]"#);
        assert_eq!(
            (e.code, e.message.as_str()),
            (422, "Unexpected kind: frobnicate")
        );
        let e = json_patch_err(&doc, r#"[{"op":"add","path":1,"value":2}]"#);
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.path of type string"
        );
        let e = json_patch_err(&doc, r#"{"op":"add"}"#);
        assert_eq!(e.code, 400);
        assert!(e
            .message
            .contains("cannot unmarshal object into Go value of type []handlers.jsonPatchOp"));
        let e = json_patch_err(&doc, r#"[{"op":"add","value":1}]"#);
        assert_eq!(
            (e.code, e.message.as_str()),
            (422, "add operation failed to decode path: missing value")
        );
        let e = json_patch_err(&doc, r#"[{"op":"add","path":"","value":{}}]"#);
        assert_eq!(
            e.message,
            "add operation does not apply: doc is missing path: \"\": missing value"
        );
        let e = json_patch_err(
            &json!({"l": []}),
            r#"[{"op":"add","path":"/l/x","value":1}]"#,
        );
        assert_eq!(
            e.message,
            "error in add for path: '/l/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn json_patch_malformed_body_is_a_400_naming_the_problem() {
        let e = json_patch_err(&json!({}), r#"[{"op":"add""#);
        assert_eq!(e.code, 400);
        assert!(
            e.message.starts_with("error decoding patch: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("line 1"), "{}", e.message);
    }

    #[test]
    fn json_patch_null_body_changes_nothing() {
        let doc = json!({"a": 1});
        assert_eq!(apply("Pod", &doc, PatchType::Json, b"null"), Ok(doc));
    }

    #[test]
    fn json_patch_with_too_many_operations_is_413() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let body = serde_json::to_vec(&ops).expect("serializes");
        let e = apply("Pod", &json!({"a": 1}), PatchType::Json, &body).expect_err("too many");
        assert_eq!(e.code, 413);
        assert_eq!(
            e.message,
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }

    #[test]
    fn json_patch_result_must_be_an_object() {
        let e = json_patch_err(
            &json!({"a": 1}),
            r#"[{"op":"replace","path":"","value":[1]}]"#,
        );
        assert_eq!(e.code, 422);
        assert!(
            e.message.starts_with(
                "couldn't get version/kind; json parse error: json: cannot unmarshal array"
            ),
            "{}",
            e.message
        );
        // A scalar replacement of the root is ignored by evanphx.
        let doc = json!({"a": 1});
        let same = patch_ok(
            "Pod",
            &doc,
            PatchType::Json,
            &json!([{"op": "replace", "path": "", "value": 3}]),
        );
        assert_eq!(same, doc);
    }

    #[test]
    fn strategic_merge_of_a_custom_resource_is_415() {
        let e = smp_err("Widget", json!({}), json!({"spec": {}}));
        assert_eq!(e.code, 415);
        assert_eq!(
            e.message,
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        );
        // JSON and merge patches still work for it.
        let result = patch_ok(
            "Widget",
            &json!({"spec": {"a": 1}}),
            PatchType::Merge,
            &json!({"spec": {"b": 2}}),
        );
        assert_eq!(result, json!({"spec": {"a": 1, "b": 2}}));
    }

    #[test]
    fn strategic_merge_body_that_is_not_an_object() {
        let pod = json!({"metadata": {"name": "p"}});
        let e = apply("Pod", &pod, PatchType::StrategicMerge, b"[1]").expect_err("array refused");
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert_eq!(
            apply("Pod", &pod, PatchType::StrategicMerge, b"null"),
            Ok(pod.clone())
        );
        let e = apply("Pod", &pod, PatchType::StrategicMerge, b"{,}").expect_err("malformed");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("line 1 column 2"), "{}", e.message);
    }

    #[test]
    fn new_list_item_without_set_element_order_goes_first() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"name": "new", "image": "x"}]}}),
        );
        assert_eq!(
            names(&result["spec"]["containers"], "name"),
            vec![json!("new"), json!("a"), json!("b")]
        );
    }

    #[test]
    fn patch_order_wins_over_live_order_for_items_it_names() {
        let pod = json!({"spec": {"containers": [
            {"name": "one"}, {"name": "two", "image": "b"}, {"name": "three"}
        ]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"name": "three", "image": "c"}, {"name": "one", "image": "a"}]}}),
        );
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "two", "image": "b"}, {"name": "three", "image": "c"}, {"name": "one", "image": "a"}])
        );
    }

    #[test]
    fn set_element_order_interleaves_server_only_items() {
        let pod = json!({"spec": {"containers": [
            {"name": "1"}, {"name": "2"}, {"name": "9"}, {"name": "3"}, {"name": "4"}
        ]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"$setElementOrder/containers": [{"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}]}}),
        );
        assert_eq!(
            names(&result["spec"]["containers"], "name"),
            ["2", "1", "9", "4", "3"].map(|n| json!(n)).to_vec()
        );
    }

    #[test]
    fn set_element_order_places_new_items() {
        let pod = json!({"spec": {"initContainers": [{"name": "a"}, {"name": "b", "image": "x"}]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {
                "$setElementOrder/initContainers": [{"name": "d"}, {"name": "a"}, {"name": "b"}, {"name": "c"}],
                "initContainers": [{"name": "d", "image": "4"}, {"name": "c", "image": "3"}]
            }}),
        );
        assert_eq!(
            result["spec"]["initContainers"],
            json!([{"name": "d", "image": "4"}, {"name": "a"}, {"name": "b", "image": "x"}, {"name": "c", "image": "3"}])
        );
    }

    #[test]
    fn set_element_order_that_contradicts_the_patch_is_an_error() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let e = smp_err(
            "Pod",
            pod,
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b", "image": "1"}, {"name": "a", "image": "2"}]
            }}),
        );
        assert_eq!(e.code, 500);
        assert!(
            e.message.contains("doesn't match $setElementOrder list"),
            "{}",
            e.message
        );
    }

    #[test]
    fn list_replace_directive_replaces_the_whole_list() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "z", "image": "2", "bogus": null}]}}),
        );
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "z", "image": "2"}])
        );
    }

    #[test]
    fn map_directives_replace_and_delete() {
        let pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}});
        let result = smp(
            "Pod",
            pod,
            json!({"metadata": {
                "labels": {"$patch": "replace", "c": "3"},
                "annotations": {"$patch": "delete"}
            }}),
        );
        assert_eq!(
            result["metadata"],
            json!({"labels": {"c": "3"}, "annotations": {}})
        );
    }

    #[test]
    fn explicit_merge_directives_are_refused_like_kube() {
        let pod =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "a"}]}});
        let e = smp_err(
            "Pod",
            pod.clone(),
            json!({"metadata": {"labels": {"$patch": "merge", "b": "2"}}}),
        );
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            "unknown patch type: merge in map: map[$patch:merge b:2]"
        );
        let e = smp_err(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}}),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (500, "merging lists cannot yet be specified in the patch")
        );
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
        let pod = json!({"metadata": {"finalizers": ["a", "b"]}});
        let added = smp("Pod", pod, json!({"metadata": {"finalizers": ["c", "a"]}}));
        assert_eq!(added["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let removed = smp(
            "Pod",
            added,
            json!({"metadata": {
                "$setElementOrder/finalizers": ["a", "b"],
                "$deleteFromPrimitiveList/finalizers": ["c"]
            }}),
        );
        assert_eq!(removed["metadata"]["finalizers"], json!(["a", "b"]));
        // Deleting from a list that is not there leaves it absent.
        let untouched = smp(
            "Pod",
            json!({"metadata": {}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        );
        assert_eq!(untouched, json!({"metadata": {}}));
    }

    #[test]
    fn node_pod_cidrs_union_and_addresses_merge_by_type() {
        let node = json!({
            "spec": {"podCIDRs": ["10.0.0.0/24"]},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.1.1.1"}, {"type": "Hostname", "address": "n1"}]}
        });
        let result = smp(
            "Node",
            node,
            json!({
                "spec": {"podCIDRs": ["fd00::/64"]},
                "status": {"addresses": [{"type": "InternalIP", "address": "10.1.1.2"}]}
            }),
        );
        assert_eq!(
            result["spec"]["podCIDRs"],
            json!(["fd00::/64", "10.0.0.0/24"])
        );
        assert_eq!(
            result["status"]["addresses"],
            json!([{"type": "InternalIP", "address": "10.1.1.2"}, {"type": "Hostname", "address": "n1"}])
        );
    }

    #[test]
    fn pod_status_conditions_merge_by_type() {
        let pod = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}
        ]}});
        let result = smp(
            "Pod",
            pod,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            result["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
    }

    #[test]
    fn service_ports_merge_by_port_and_owner_references_by_uid() {
        let svc = json!({
            "metadata": {"ownerReferences": [{"uid": "u1", "name": "a"}]},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}
        });
        let result = smp(
            "Service",
            svc,
            json!({
                "metadata": {"ownerReferences": [{"uid": "u1", "controller": true}]},
                "spec": {"ports": [{"port": 80, "targetPort": 9090}]}
            }),
        );
        assert_eq!(
            result["metadata"]["ownerReferences"],
            json!([{"uid": "u1", "name": "a", "controller": true}])
        );
        assert_eq!(
            result["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
    }

    #[test]
    fn untagged_lists_are_replaced_whole() {
        let pod = json!({"spec": {
            "tolerations": [{"key": "a"}, {"key": "b"}],
            "containers": [{"name": "c", "args": ["1", "2"], "resizePolicy": [{"resourceName": "cpu"}]}]
        }});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {
                "tolerations": [{"key": "b", "effect": "NoSchedule"}],
                "containers": [{"name": "c", "args": ["3"], "resizePolicy": [{"resourceName": "memory"}]}]
            }}),
        );
        assert_eq!(
            result["spec"]["tolerations"],
            json!([{"key": "b", "effect": "NoSchedule"}])
        );
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "c", "args": ["3"], "resizePolicy": [{"resourceName": "memory"}]}])
        );
    }

    #[test]
    fn cron_job_containers_merge_deep_in_the_job_template() {
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
            {"name": "a", "env": [{"name": "X", "value": "1"}]}, {"name": "b"}
        ]}}}}}});
        let result = smp(
            "CronJob",
            cron,
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "a", "env": [{"name": "Y", "value": "2"}]}
            ]}}}}}}),
        );
        assert_eq!(
            result["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]}, {"name": "b"}])
        );
    }

    #[test]
    fn volume_retain_keys_switches_the_volume_source() {
        let pod = json!({"spec": {"volumes": [
            {"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "emptyDir": {}}
        ]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"volumes": [
                {"$retainKeys": ["name", "secret"], "name": "v", "secret": {"secretName": "s"}, "configMap": null}
            ]}}),
        );
        assert_eq!(
            result["spec"]["volumes"],
            json!([{"name": "v", "secret": {"secretName": "s"}}, {"name": "w", "emptyDir": {}}])
        );
    }

    #[test]
    fn retain_keys_must_list_every_key_the_patch_sets() {
        let e = smp_err(
            "Deployment",
            deployment(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "invalid patch format of retainKeys")
        );
        let e = smp_err(
            "Deployment",
            deployment(),
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
        );
        assert_eq!(e.code, 400);
    }

    #[test]
    fn pdb_selector_is_replaced_not_merged() {
        let pdb = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}});
        let result = smp(
            "PodDisruptionBudget",
            pdb,
            json!({"spec": {"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}}),
        );
        assert_eq!(
            result["spec"],
            json!({"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}, "minAvailable": 1})
        );
    }

    #[test]
    fn missing_merge_key_is_a_500_like_kube() {
        let pod = json!({"spec": {"containers": [{"name": "a"}]}});
        let e = smp_err(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"image": "x"}]}}),
        );
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            "map: map[image:x] does not contain declared merge key: name"
        );
    }

    #[test]
    fn lists_of_lists_are_422_and_mixed_lists_500() {
        let doc = json!({"metadata": {"finalizers": [["a"]]}});
        let e = smp_err("Pod", doc, json!({"metadata": {"finalizers": [["b"]]}}));
        assert_eq!(
            (e.code, e.message.as_str()),
            (422, "lists of lists are not supported")
        );
        let doc = json!({"metadata": {"finalizers": ["a"]}});
        let e = smp_err("Pod", doc, json!({"metadata": {"finalizers": [1]}}));
        assert_eq!(e.code, 500);
        assert_eq!(e.message, "list element types are not identical: [[a] [1]]");
    }

    #[test]
    fn bad_directive_prefixes_are_400() {
        let pod = json!({"metadata": {"finalizers": ["a"]}});
        let e = smp_err(
            "Pod",
            pod.clone(),
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "invalid patch format of primitive list")
        );
        let e = smp_err("Pod", pod, json!({"metadata": {"$setElementOrder": ["a"]}}));
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "invalid patch format of setElementOrder list")
        );
    }

    #[test]
    fn new_values_lose_nulls_and_directives() {
        let pod = json!({"spec": {"containers": [{"name": "a"}]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {
                "securityContext": {"runAsUser": 1, "fsGroup": null, "seLinuxOptions": {"$patch": "delete"}},
                "containers": [{"name": "b", "env": [{"name": "E", "value": null}], "$setElementOrder/env": [{"name": "E"}]}]
            }}),
        );
        assert_eq!(result["spec"]["securityContext"], json!({"runAsUser": 1}));
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "b", "env": [{"name": "E"}]}, {"name": "a"}])
        );
    }

    #[test]
    fn a_value_of_another_type_replaces_the_original() {
        let doc = json!({"spec": {"nodeSelector": {"a": "b"}, "priority": 1}});
        let result = smp(
            "Pod",
            doc,
            json!({"spec": {"nodeSelector": "x", "priority": {"v": null, "w": 2}}}),
        );
        assert_eq!(
            result["spec"],
            json!({"nodeSelector": "x", "priority": {"w": 2}})
        );
    }

    #[test]
    fn strategy_table_follows_the_go_tags() {
        use Strategy::*;
        let cases: &[(&str, &[&str], Strategy)] = &[
            ("Pod", &["spec", "containers"], MergeKey("name")),
            (
                "Pod",
                &["spec", "ephemeralContainers", "env"],
                MergeKey("name"),
            ),
            (
                "Pod",
                &["spec", "containers", "ports"],
                MergeKey("containerPort"),
            ),
            (
                "Pod",
                &["spec", "initContainers", "volumeMounts"],
                MergeKey("mountPath"),
            ),
            (
                "Pod",
                &["spec", "containers", "volumeDevices"],
                MergeKey("devicePath"),
            ),
            ("Pod", &["spec", "containers", "resizePolicy"], Untagged),
            ("Pod", &["spec", "containers", "args"], Untagged),
            ("Pod", &["spec", "volumes"], MergeKey("name")),
            ("Pod", &["spec", "imagePullSecrets"], MergeKey("name")),
            ("Pod", &["spec", "hostAliases"], MergeKey("ip")),
            (
                "Pod",
                &["spec", "topologySpreadConstraints"],
                MergeKey("topologyKey"),
            ),
            ("Pod", &["spec", "schedulingGates"], MergeKey("name")),
            ("Pod", &["spec", "tolerations"], Untagged),
            ("Pod", &["status", "conditions"], MergeKey("type")),
            ("Pod", &["status", "podIPs"], MergeKey("ip")),
            ("Pod", &["metadata", "ownerReferences"], MergeKey("uid")),
            ("ConfigMap", &["metadata", "finalizers"], MergeSet),
            (
                "Deployment",
                &["spec", "template", "spec", "containers", "env"],
                MergeKey("name"),
            ),
            (
                "Deployment",
                &["spec", "template", "metadata", "finalizers"],
                MergeSet,
            ),
            (
                "StatefulSet",
                &["spec", "template", "spec", "volumes"],
                MergeKey("name"),
            ),
            (
                "Job",
                &["spec", "template", "spec", "initContainers"],
                MergeKey("name"),
            ),
            ("Job", &["status", "conditions"], MergeKey("type")),
            (
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers",
                ],
                MergeKey("name"),
            ),
            (
                "CronJob",
                &["spec", "template", "spec", "containers"],
                Untagged,
            ),
            ("DaemonSet", &["status", "conditions"], MergeKey("type")),
            ("Node", &["spec", "podCIDRs"], MergeSet),
            ("Node", &["spec", "taints"], Untagged),
            ("Node", &["status", "addresses"], MergeKey("type")),
            ("Service", &["spec", "ports"], MergeKey("port")),
            ("ServiceAccount", &["secrets"], MergeKey("name")),
            ("PodDisruptionBudget", &["spec", "selector"], Replace),
            ("EndpointSlice", &["endpoints"], Untagged),
            ("Endpoints", &["subsets"], Untagged),
        ];
        for (kind, path, expected) in cases {
            assert_eq!(merge_strategy(kind, path), *expected, "{kind} {path:?}");
        }
    }
}
