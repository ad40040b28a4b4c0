//! Reading objects and formatting what kube's printers share: lenient accessors by path,
//! timestamps and ages, quantities, labels and label selectors, truncated lists,
//! `net.JoinHostPort` and status conditions.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::human_duration;
use crate::selector::LabelSelector;

pub(super) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

pub(super) fn text(value: &Value, path: &[&str]) -> String {
    at(value, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub(super) fn int(value: &Value, path: &[&str]) -> i64 {
    at(value, path).and_then(Value::as_i64).unwrap_or(0)
}

pub(super) fn flag(value: &Value, path: &[&str]) -> Option<bool> {
    at(value, path).and_then(Value::as_bool)
}

pub(super) fn list<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(super) fn map_len(value: &Value, path: &[&str]) -> i64 {
    at(value, path)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len() as i64)
}

pub(super) fn name(object: &Value) -> Value {
    Value::from(text(object, &["metadata", "name"]))
}

pub(super) fn is_set(value: &Value, path: &[&str]) -> bool {
    at(value, path).is_some_and(|v| !v.is_null())
}

/// Seconds since the epoch of a metav1.Time / MicroTime; `None` for a missing
/// or zero time, which kube prints as "<unknown>".
pub(super) fn timestamp(value: Option<&Value>) -> Option<i64> {
    let parsed = OffsetDateTime::parse(value?.as_str()?, &Rfc3339).ok()?;
    const GO_ZERO_TIME: i64 = -62_135_596_800;
    let seconds = parsed.unix_timestamp();
    (seconds != GO_ZERO_TIME).then_some(seconds)
}

/// kube's translateTimestampSince.
pub(super) fn since(value: Option<&Value>, now: i64) -> String {
    match timestamp(value) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

pub(super) fn age(object: &Value, now: i64) -> Value {
    Value::from(since(at(object, &["metadata", "creationTimestamp"]), now))
}

/// IntOrString as kube prints it.
pub(super) fn int_or_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// A resource.Quantity as stored; a missing one is kube's zero quantity "0".
pub(super) fn quantity(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

/// labels.FormatLabels: sorted `k=v` pairs, "<none>" when empty.
pub(super) fn format_labels(value: Option<&Value>) -> String {
    let mut pairs: Vec<String> = value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".to_string()
    } else {
        pairs.join(",")
    }
}

/// metav1.FormatLabelSelector: kube's selector string, "<none>" when empty,
/// "<error>" when invalid.
pub(super) fn format_label_selector(value: Option<&Value>) -> String {
    match LabelSelector::from_json(value.unwrap_or(&Value::Null)) {
        Ok(selector) => {
            let text = selector.to_string();
            if text.is_empty() {
                "<none>".to_string()
            } else {
                text
            }
        }
        Err(_) => "<error>".to_string(),
    }
}

/// layoutContainerCells: container names and images, comma separated.
pub(super) fn containers_and_images(containers: &[Value]) -> (Value, Value) {
    let names: Vec<String> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<String> = containers.iter().map(|c| text(c, &["image"])).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// "a,b,c + N more..." for lists kube truncates at `max` entries; "<unset>"
/// for an empty list.
pub(super) fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items.len().min(max);
    let joined = items[..shown].join(",");
    if items.len() > max {
        format!("{joined} + {} more...", items.len() - max)
    } else if joined.is_empty() {
        "<unset>".to_string()
    } else {
        joined
    }
}

/// net.JoinHostPort: IPv6 hosts get brackets.
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) fn condition<'a>(object: &'a Value, path: &[&str], kind: &str) -> Option<&'a Value> {
    list(object, path)
        .iter()
        .find(|c| text(c, &["type"]) == kind)
}

pub(super) fn condition_true(object: &Value, path: &[&str], kind: &str) -> bool {
    condition(object, path, kind).is_some_and(|c| text(c, &["status"]) == "True")
}
