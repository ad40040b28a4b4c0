//! Custom objects against their version's `openAPIV3Schema`, in kube's order: prune unknown
//! fields (reporting them for `fieldValidation`), apply `default`s, then validate.
//!
//! What the schema may say and this checks: `type` (with `nullable`), `required`, `enum`,
//! `minimum`/`maximum` (and their exclusive forms), `multipleOf`, `minLength`/`maxLength`,
//! `pattern`, `minItems`/`maxItems`, `minProperties`/`maxProperties`, the formats kube checks
//! (`date`, `date-time`, `duration`, `uuid`, `ipv4`, `ipv6`, `cidr`, `mac`, `byte`, `email`,
//! `hostname`), `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields` and
//! `x-kubernetes-embedded-resource`. Messages are kube's: `spec.replicas: Invalid value:
//! "string": spec.replicas in body must be of type integer: "string"`.

use serde_json::{json, Value};

use crate::admission::FieldError;
use crate::go_format::go_quote;

/// The fields of `metadata` kube keeps (ObjectMeta's); others are pruned.
const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// A value as kube shows it after `Invalid value:`.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => go_quote(s),
        Value::Null => "null".into(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// A schema number as Go's `%v` prints it: `0`, not `0.0` (schemas reach here as float64).
fn go_number(value: &Value) -> String {
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => value.to_string(),
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"] == true
}

fn embedded(schema: &Value) -> bool {
    schema["x-kubernetes-embedded-resource"] == true
}

/// Removes from a whole custom object the fields its schema does not know, returning their
/// paths in document order (`spec.foo`, `spec.items[0].bar`). `apiVersion`, `kind` and
/// `metadata` (pruned to ObjectMeta's fields) are every object's.
pub fn prune_object(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    prune_resource(schema, object, "", &mut unknown);
    unknown
}

fn prune_resource(schema: &Value, object: &mut Value, path: &str, unknown: &mut Vec<String>) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        let extra: Vec<String> = metadata
            .keys()
            .filter(|k| !OBJECT_META.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in extra {
            metadata.remove(&key);
            unknown.push(join(&join(path, "metadata"), &key));
        }
    }
    prune_fields(
        schema,
        map,
        path,
        &["apiVersion", "kind", "metadata"],
        unknown,
    );
}

fn prune_fields(
    schema: &Value,
    map: &mut serde_json::Map<String, Value>,
    path: &str,
    always: &[&str],
    unknown: &mut Vec<String>,
) {
    let properties = schema["properties"].as_object();
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        if always.contains(&key.as_str()) {
            continue;
        }
        let field_path = join(path, &key);
        let child = properties.and_then(|p| p.get(&key)).or(additional);
        match child {
            Some(child) => {
                if let Some(value) = map.get_mut(&key) {
                    prune(child, value, &field_path, unknown);
                }
            }
            None if preserves(schema)
                || schema.get("additionalProperties") == Some(&json!(true)) => {}
            None => {
                map.remove(&key);
                unknown.push(field_path);
            }
        }
    }
}

fn prune(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    if embedded(schema) {
        prune_resource(schema, value, path, unknown);
        return;
    }
    match value {
        Value::Object(map) => {
            let typed =
                schema["properties"].is_object() || schema["additionalProperties"].is_object();
            if typed || !preserves(schema) {
                prune_fields(schema, map, path, &[], unknown);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Applies the schema's `default`s to absent fields (and to `null` ones that are not
/// `nullable`), deepest last, as kube does after pruning.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    let nullable = property["nullable"] == true;
                    if let Some(default) = property.get("default") {
                        let absent = match map.get(name) {
                            None => true,
                            Some(Value::Null) => !nullable,
                            Some(_) => false,
                        };
                        if absent {
                            map.insert(name.clone(), default.clone());
                        }
                    }
                    if let Some(child) = map.get_mut(name) {
                        apply_defaults(property, child);
                    }
                }
            } else if let Some(additional) =
                schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for child in map.values_mut() {
                    apply_defaults(additional, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// Everything `value` (at `path`) breaks of `schema`.
pub fn check(schema: &Value, value: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    check_into(schema, value, path, &mut errs);
    errs
}

fn invalid(path: &str, shown: String, detail: String) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: path.to_owned(),
        message: format!("Invalid value: {shown}: {detail}"),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_fits(wanted: &str, value: &Value) -> bool {
    match (wanted, value) {
        ("", _) => true,
        ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (wanted, value) => wanted == type_name(value),
    }
}

fn check_into(schema: &Value, value: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let display = if path.is_empty() { "body" } else { path };
    let wanted = schema["type"].as_str().unwrap_or("");
    if value.is_null() {
        if schema["nullable"] == true
            || (wanted.is_empty()
                && !schema["x-kubernetes-int-or-string"]
                    .as_bool()
                    .unwrap_or(false))
        {
            return;
        }
        let expected = if schema["x-kubernetes-int-or-string"] == true {
            "integer,string"
        } else {
            wanted
        };
        errs.push(invalid(
            path,
            "\"null\"".into(),
            format!("{display} in body must be of type {expected}: \"null\""),
        ));
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !matches!(value, Value::String(_)) && type_name(value) != "integer" {
            errs.push(invalid(
                path,
                go_quote(type_name(value)),
                format!(
                    "{display} in body must be of type integer,string: {}",
                    go_quote(type_name(value))
                ),
            ));
            return;
        }
    } else if !type_fits(wanted, value) {
        errs.push(invalid(
            path,
            go_quote(type_name(value)),
            format!(
                "{display} in body must be of type {wanted}: {}",
                go_quote(type_name(value))
            ),
        ));
        return;
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            let supported: Vec<String> = options.iter().map(go_value).collect();
            errs.push(FieldError {
                reason: "FieldValueNotSupported",
                field: path.to_owned(),
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    go_value(value),
                    supported.join(", ")
                ),
            });
        }
    }
    match value {
        Value::Number(n) => check_number(
            schema,
            n.as_f64().unwrap_or(0.0),
            value,
            path,
            display,
            errs,
        ),
        Value::String(s) => check_string(schema, s, path, display, errs),
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(max) = schema["maxItems"].as_u64().filter(|m| count > *m) {
                errs.push(FieldError {
                    reason: "FieldValueTooMany",
                    field: path.to_owned(),
                    message: format!("Too many: {count}: must have at most {max} items"),
                });
            }
            if let Some(min) = schema["minItems"].as_u64().filter(|m| count < *m) {
                errs.push(invalid(
                    path,
                    count.to_string(),
                    format!("{display} in body should have at least {min} items"),
                ));
            }
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    check_into(item_schema, item, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(map) => {
            let count = map.len() as u64;
            if let Some(max) = schema["maxProperties"].as_u64().filter(|m| count > *m) {
                errs.push(FieldError {
                    reason: "FieldValueTooMany",
                    field: path.to_owned(),
                    message: format!("Too many: {count}: must have at most {max} items"),
                });
            }
            if let Some(min) = schema["minProperties"].as_u64().filter(|m| count < *m) {
                errs.push(invalid(
                    path,
                    count.to_string(),
                    format!("{display} in body should have at least {min} properties"),
                ));
            }
            for name in schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(name) {
                    errs.push(FieldError {
                        reason: "FieldValueRequired",
                        field: join(path, name),
                        message: "Required value".into(),
                    });
                }
            }
            if embedded(schema) {
                for name in ["apiVersion", "kind"] {
                    if map
                        .get(name)
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        errs.push(FieldError {
                            reason: "FieldValueRequired",
                            field: join(path, name),
                            message: "Required value: must not be empty".into(),
                        });
                    }
                }
            }
            let properties = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (name, child) in map {
                if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(child_schema) = properties.and_then(|p| p.get(name)).or(additional) {
                    check_into(child_schema, child, &join(path, name), errs);
                }
            }
        }
        _ => {}
    }
}

fn check_number(
    schema: &Value,
    n: f64,
    value: &Value,
    path: &str,
    display: &str,
    errs: &mut Vec<FieldError>,
) {
    let shown = value.to_string();
    if let Some(max) = schema["maximum"].as_f64() {
        if schema["exclusiveMaximum"] == true && n >= max {
            errs.push(invalid(
                path,
                shown.clone(),
                format!(
                    "{display} in body should be less than {}",
                    go_number(&schema["maximum"])
                ),
            ));
        } else if n > max {
            errs.push(invalid(
                path,
                shown.clone(),
                format!(
                    "{display} in body should be less than or equal to {}",
                    go_number(&schema["maximum"])
                ),
            ));
        }
    }
    if let Some(min) = schema["minimum"].as_f64() {
        if schema["exclusiveMinimum"] == true && n <= min {
            errs.push(invalid(
                path,
                shown.clone(),
                format!(
                    "{display} in body should be greater than {}",
                    go_number(&schema["minimum"])
                ),
            ));
        } else if n < min {
            errs.push(invalid(
                path,
                shown.clone(),
                format!(
                    "{display} in body should be greater than or equal to {}",
                    go_number(&schema["minimum"])
                ),
            ));
        }
    }
    if let Some(factor) = schema["multipleOf"].as_f64().filter(|f| *f > 0.0) {
        let ratio = n / factor;
        if (ratio - ratio.round()).abs() > 1e-9 {
            errs.push(invalid(
                path,
                shown,
                format!(
                    "{display} in body should be a multiple of {}",
                    go_number(&schema["multipleOf"])
                ),
            ));
        }
    }
}

fn check_string(schema: &Value, s: &str, path: &str, display: &str, errs: &mut Vec<FieldError>) {
    let length = s.chars().count() as u64;
    if let Some(max) = schema["maxLength"].as_u64().filter(|m| length > *m) {
        errs.push(FieldError {
            reason: "FieldValueTooLong",
            field: path.to_owned(),
            message: format!("Too long: may not be more than {max} bytes"),
        });
    }
    if let Some(min) = schema["minLength"].as_u64().filter(|m| length < *m) {
        errs.push(invalid(
            path,
            go_quote(s),
            format!("{display} in body should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => errs.push(invalid(
                path,
                go_quote(s),
                format!("{display} in body should match '{pattern}'"),
            )),
            _ => {}
        }
    }
    if let Some(format) = schema["format"].as_str() {
        if !format_fits(format, s) {
            errs.push(invalid(
                path,
                go_quote(s),
                format!(
                    "{display} in body must be of type {format}: {}",
                    go_quote(s)
                ),
            ));
        }
    }
}

/// Whether `s` is of `format`, for the formats kube checks; others pass.
fn format_fits(format: &str, s: &str) -> bool {
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    match format {
        "date" => {
            let parts: Vec<&str> = s.split('-').collect();
            parts.len() == 3 && digits(parts[0], 4) && digits(parts[1], 2) && digits(parts[2], 2)
        }
        "date-time" | "datetime" => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        }
        "uuid" | "uuid3" | "uuid4" | "uuid5" => {
            let groups: Vec<&str> = s.split('-').collect();
            groups.len() == 5
                && [8, 4, 4, 4, 12]
                    .iter()
                    .zip(&groups)
                    .all(|(n, g)| g.len() == *n && g.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::IpAddr>().is_ok()
                && bits
                    .parse::<u8>()
                    .is_ok_and(|b| b <= if ip.contains(':') { 128 } else { 32 })
        }),
        "mac" => {
            let parts: Vec<&str> = s.split([':', '-']).collect();
            parts.len() == 6
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        "email" => s
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.')),
        "hostname" => {
            !s.is_empty()
                && s.len() <= 253
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
        }
        "duration" => duration_fits(s),
        _ => true,
    }
}

/// Go's `time.ParseDuration` forms: `1h30m`, `-5s`, `1.5h`, `300ms`.
fn duration_fits(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let number = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number == 0 {
            return false;
        }
        rest = &rest[number..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["image"], "properties": {
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "image": {"type": "string", "pattern": "^[a-z]+$"},
                "color": {"type": "string", "enum": ["red", "blue"]},
                "port": {"x-kubernetes-int-or-string": true},
                "note": {"type": "string", "nullable": true},
                "when": {"type": "string", "format": "date"},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "properties": {"spec": {"type": "object"}}},
                "items": {"type": "array", "maxItems": 2, "items": {"type": "object",
                    "properties": {"name": {"type": "string"}}}}}}}})
    }

    fn messages(object: &Value) -> Vec<String> {
        check(&schema(), object, "")
            .iter()
            .map(FieldError::describe)
            .collect()
    }

    #[test]
    fn unknown_fields_are_pruned_and_reported() {
        let mut object = json!({"apiVersion": "example.com/v1", "kind": "W",
            "metadata": {"name": "w", "bogus": 1},
            "spec": {"image": "x", "foo": 1, "extra": {"any": {"thing": 1}},
                "items": [{"name": "a", "bar": 2}],
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "junk": 1}},
            "top": true});
        let unknown = prune_object(&schema(), &mut object);
        assert_eq!(
            unknown,
            [
                "metadata.bogus",
                "spec.foo",
                "spec.items[0].bar",
                "spec.template.junk",
                "top"
            ]
        );
        assert_eq!(object["spec"]["extra"], json!({"any": {"thing": 1}}));
        assert_eq!(object["spec"]["template"]["metadata"]["name"], "p");
        assert!(object.get("top").is_none());
    }

    #[test]
    fn defaults_fill_absent_fields() {
        let mut object = json!({"spec": {"image": "x"}});
        apply_defaults(&schema(), &mut object);
        assert_eq!(object["spec"]["replicas"], 1);
        let mut nulled = json!({"spec": {"image": "x", "replicas": null}});
        apply_defaults(&schema(), &mut nulled);
        assert_eq!(nulled["spec"]["replicas"], 1);
    }

    #[test]
    fn violations_get_kubes_messages() {
        assert_eq!(
            messages(&json!({"spec": {"image": "x", "replicas": "three"}})),
            ["spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""]
        );
        assert_eq!(
            messages(&json!({"spec": {}})),
            ["spec.image: Required value"]
        );
        let found = messages(&json!({"spec": {"image": "X1", "replicas": 20, "color": "pink"}}));
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.contains(&"spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10".to_owned()));
        assert!(found.contains(
            &"spec.image: Invalid value: \"X1\": spec.image in body should match '^[a-z]+$'"
                .to_owned()
        ));
        assert!(found.contains(
            &"spec.color: Unsupported value: \"pink\": supported values: \"red\", \"blue\""
                .to_owned()
        ));
        assert_eq!(
            messages(&json!({"spec": {"image": "x", "port": 80, "note": null}})),
            Vec::<String>::new()
        );
        assert_eq!(
            messages(&json!({"spec": {"image": "x", "port": "http"}})),
            Vec::<String>::new()
        );
        assert_eq!(
            messages(&json!({"spec": {"image": "x", "port": true}})),
            ["spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""]
        );
        assert_eq!(
            messages(&json!({"spec": {"image": "x", "when": "tomorrow"}})),
            ["spec.when: Invalid value: \"tomorrow\": spec.when in body must be of type date: \"tomorrow\""]
        );
        assert_eq!(
            messages(&json!({"spec": {"image": "x", "items": [{}, {}, {}]}})),
            ["spec.items: Too many: 3: must have at most 2 items"]
        );
        assert_eq!(
            messages(&json!({"spec": {"image": "x", "template": {"spec": {}}}})),
            [
                "spec.template.apiVersion: Required value: must not be empty",
                "spec.template.kind: Required value: must not be empty"
            ]
        );
    }

    #[test]
    fn durations_parse_as_go_parses_them() {
        assert!(duration_fits("1h30m"));
        assert!(duration_fits("300ms"));
        assert!(!duration_fits("5 minutes"));
    }
}
