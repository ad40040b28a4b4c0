//! Messages in the shape Go prints them: JSON and Go type names, Go's `%v` of a decoded
//! value, and the strategic-merge errors kube-apiserver passes through.

use serde_json::{Map, Value};

use super::PatchError;

pub(super) const GO_MAP_TYPE: &str = "map[string]interface {}";
pub(super) const GO_SLICE_TYPE: &str = "[]interface {}";

/// The JSON type word encoding/json uses in "cannot unmarshal X into ...".
pub(super) fn json_type_name(value: &Value) -> &'static str {
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
pub(super) fn go_format(value: &Value) -> String {
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

pub(super) fn bad_arg_type(expected: &str, actual: &Value) -> String {
    format!(
        "expected a {expected}, but received a {}",
        go_type_name(actual)
    )
}

pub(super) fn no_merge_key(item: &Value, merge_key: &str) -> String {
    format!(
        "map: {} does not contain declared merge key: {merge_key}",
        go_format(item)
    )
}

pub(super) fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    let shown = match directive {
        Value::String(s) => s.clone(),
        other => format!("%!s({}={})", go_type_name(other), go_format(other)),
    };
    PatchError::internal(format!(
        "unknown patch type: {shown} in map: {}",
        go_format(&Value::Object(map.clone()))
    ))
}
