//! Test fixtures shared by the admission tests: defaulted objects and their errors as text.

use serde_json::{json, Value};

use super::{apply_defaults, validate, FieldError};

pub(super) fn defaulted(kind: &str, mut v: Value) -> Value {
    apply_defaults(kind, &mut v);
    v
}

/// Validation messages of a defaulted create, as "field: message" lines.
pub(super) fn create_errors(kind: &str, v: Value) -> Vec<String> {
    let v = defaulted(kind, v);
    validate(kind, &v, None)
        .iter()
        .map(FieldError::describe)
        .collect()
}

pub(super) fn update_errors(kind: &str, old: Value, new: Value) -> Vec<String> {
    let old = defaulted(kind, old);
    let new = defaulted(kind, new);
    validate(kind, &new, Some(&old))
        .iter()
        .map(FieldError::describe)
        .collect()
}

pub(super) fn pod(containers: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": containers}})
}

pub(super) fn deployment() -> Value {
    json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    })
}

pub(super) fn job() -> Value {
    json!({
        "metadata": {"name": "pi", "uid": "1234"},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "pi", "image": "perl:5.34"}]
        }}}
    })
}
