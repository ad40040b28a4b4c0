//! JSON Patch (RFC 6902), with the semantics of evanphx/json-patch v4.12.0, which
//! kube-apiserver uses: `replace` of a missing member adds it, negative indices count from the
//! end, `test` of a missing member against `null` passes, and every failure to apply is a 422.

use serde_json::{Map, Value};

use super::messages::json_type_name;
use super::{require_object, PatchError};

/// kube-apiserver refuses longer JSON Patches outright, before applying any.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

pub(super) fn apply_json_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::fixtures::{deployment, json_patch_err, patch_ok};
    use crate::patch::{apply, PatchType};
    use serde_json::json;

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
}
