//! Field errors the way apimachinery's `field` package builds them (`Required value`,
//! `Invalid value: <bad>: <detail>`, `Unsupported value: ...`), field paths, bad values printed
//! as Go's `%q` and `%#v` would print them, and the small checks (non-negative, enum-like) and
//! messages that many kinds share.

use serde_json::Value;

use super::json::{int, text};
use super::{FieldError, Obj};
use crate::go_format::go_quote;

/// A bad value as Go's `ErrorBody` prints it: strings through `%q`, numbers plainly, and
/// anything else pre-rendered (usually Go's `%#v`).
pub(super) enum Bad {
    Str(String),
    Int(i64),
    Raw(String),
}

impl Bad {
    pub(super) fn str(s: &str) -> Bad {
        Bad::Str(s.to_owned())
    }

    pub(super) fn render(&self) -> String {
        match self {
            Bad::Str(s) => go_quote(s),
            Bad::Int(i) => i.to_string(),
            Bad::Raw(s) => s.clone(),
        }
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

pub(super) fn required(field: &str, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueRequired",
        field: field.to_owned(),
        message: with_detail("Required value".into(), detail),
    }
}

pub(super) fn forbidden(field: &str, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueForbidden",
        field: field.to_owned(),
        message: with_detail("Forbidden".into(), detail),
    }
}

pub(super) fn too_long(field: &str, max: usize) -> FieldError {
    FieldError {
        reason: "FieldValueTooLong",
        field: field.to_owned(),
        message: format!("Too long: may not be more than {max} bytes"),
    }
}

pub(super) fn invalid(field: &str, bad: Bad, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: field.to_owned(),
        message: with_detail(format!("Invalid value: {}", bad.render()), detail),
    }
}

pub(super) fn not_supported(field: &str, bad: Bad, supported: &[&str]) -> FieldError {
    let values: Vec<String> = supported.iter().map(|v| go_quote(v)).collect();
    FieldError {
        reason: "FieldValueNotSupported",
        field: field.to_owned(),
        message: with_detail(
            format!("Unsupported value: {}", bad.render()),
            &format!("supported values: {}", values.join(", ")),
        ),
    }
}

pub(super) fn duplicate(field: &str, bad: Bad) -> FieldError {
    FieldError {
        reason: "FieldValueDuplicate",
        field: field.to_owned(),
        message: format!("Duplicate value: {}", bad.render()),
    }
}

pub(super) fn not_found(field: &str, bad: Bad) -> FieldError {
    FieldError {
        reason: "FieldValueNotFound",
        field: field.to_owned(),
        message: format!("Not found: {}", bad.render()),
    }
}

pub(super) fn child(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}.{name}")
    }
}

pub(super) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

pub(super) fn key(base: &str, k: &str) -> String {
    format!("{base}[{k}]")
}

/// A JSON scalar as Go's `%#v` would show the string it decodes into.
fn go_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        other => go_quote(&other.to_string()),
    }
}

/// `%#v` of a `map[string]string`; Go prints map keys sorted.
pub(super) fn go_string_map(map: Option<&Obj>) -> String {
    match map {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_scalar(v)))
                .collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
    }
}

/// `%#v` of a `[]string`.
pub(super) fn go_string_slice(list: Option<&Vec<Value>>) -> String {
    match list {
        None => "[]string(nil)".into(),
        Some(items) => {
            let body: Vec<String> = items.iter().map(go_scalar).collect();
            format!("[]string{{{}}}", body.join(", "))
        }
    }
}

/// `%#v` of a `metav1.LabelSelector`, which is how kube shows an immutable or mismatched
/// selector ("v1.LabelSelector{MatchLabels:map[string]string{...}, MatchExpressions:...}").
pub(super) fn go_label_selector(selector: &Value) -> String {
    if !selector.is_object() {
        return "null".into();
    }
    let labels = go_string_map(selector.get("matchLabels").and_then(Value::as_object));
    let exprs = match selector.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_owned(),
        Some(list) => {
            let body: Vec<String> = list
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(text(e, "key")),
                        go_quote(text(e, "operator")),
                        go_string_slice(e.get("values").and_then(Value::as_array)),
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", body.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

/// `%#v` of an `intstr.IntOrString`.
pub(super) fn go_int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => {
            format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                go_quote(s)
            )
        }
        Some(n) => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            n.as_i64().unwrap_or(0)
        ),
        None => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".into(),
    }
}

/// A bad value too big for Go's `%#v` to be worth imitating, shown as compact JSON.
pub(super) fn json_bad(v: Option<&Value>) -> Bad {
    Bad::Raw(v.map_or_else(|| "null".to_owned(), Value::to_string))
}

pub(super) const PORT_RANGE_MSG: &str = "must be between 1 and 65535, inclusive";
pub(super) const NEGATIVE_MSG: &str = "must be greater than or equal to 0";
pub(super) const IMMUTABLE_MSG: &str = "field is immutable";

pub(super) const MAX_INT32: i64 = 2_147_483_647;

pub(super) fn nonnegative(v: &Value, k: &str, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = int(v, k) {
        if n < 0 {
            errs.push(invalid(path, Bad::Int(n), NEGATIVE_MSG));
        }
    }
}

/// Validates an enum-like string: empty is Required, unknown is NotSupported.
pub(super) fn enum_field(
    v: &Value,
    k: &str,
    path: &str,
    supported: &[&str],
    errs: &mut Vec<FieldError>,
) {
    let value = text(v, k);
    if value.is_empty() {
        errs.push(required(path, ""));
    } else if !supported.contains(&value) {
        errs.push(not_supported(path, Bad::str(value), supported));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_quoting_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
        assert_eq!(go_string_map(None), "map[string]string(nil)");
        let m = json!({"b": "2", "a": "1"});
        assert_eq!(
            go_string_map(m.as_object()),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
    }
}
