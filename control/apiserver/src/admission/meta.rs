//! Object metadata: labels, annotations, finalizers, owner references and the identity an
//! update may not change; a Namespace's `spec.finalizers` follow the same finalizer rule.

use serde_json::Value;

use super::field::{
    child, forbidden, go_string_slice, index, invalid, json_bad, too_long, Bad, IMMUTABLE_MSG,
};
use super::json::{flag, list, map, present, scalar_text, sorted_entries, text};
use super::names::{label_value, qualified_name};
use super::{FieldError, Obj};
use crate::go_format::go_quote;

const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;

pub(super) fn validate_labels(labels: Option<&Obj>, path: &str, errs: &mut Vec<FieldError>) {
    for (k, v) in sorted_entries(labels) {
        for m in qualified_name(k) {
            errs.push(invalid(path, Bad::str(k), &m));
        }
        let v = scalar_text(v);
        for m in label_value(&v) {
            errs.push(invalid(path, Bad::str(&v), &m));
        }
    }
}

pub(super) fn validate_annotations(
    annotations: Option<&Obj>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let mut total = 0usize;
    for (k, v) in sorted_entries(annotations) {
        // Annotation keys are qualified names in any case.
        for m in qualified_name(&k.to_lowercase()) {
            errs.push(invalid(path, Bad::str(k), &m));
        }
        total += k.len() + scalar_text(v).len();
    }
    if total > MAX_ANNOTATIONS_SIZE {
        errs.push(too_long(path, MAX_ANNOTATIONS_SIZE));
    }
}

const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Core's `validateKubeFinalizerName`: a qualified name, and a bare name must be a standard one.
fn kube_finalizer_errors(f: &str, path: &str, errs: &mut Vec<FieldError>) {
    let messages = qualified_name(f);
    if !messages.is_empty() {
        for m in messages {
            errs.push(invalid(path, Bad::str(f), &m));
        }
    } else if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
        errs.push(invalid(
            path,
            Bad::str(f),
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
}

pub(super) fn validate_meta(meta: &Value, path: &str, errs: &mut Vec<FieldError>) {
    validate_labels(map(meta, "labels"), &child(path, "labels"), errs);
    validate_annotations(map(meta, "annotations"), &child(path, "annotations"), errs);

    let owners_path = child(path, "ownerReferences");
    let mut controller: Option<String> = None;
    for owner in list(meta, "ownerReferences") {
        let api_version = text(owner, "apiVersion");
        // ParseGroupVersion: "v1", "group/v1"; anything with more slashes has no version.
        let version = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] | [_, v] => *v,
            _ => "",
        };
        if version.is_empty() {
            errs.push(invalid(
                &child(&owners_path, "apiVersion"),
                Bad::str(api_version),
                "version must not be empty",
            ));
        }
        for field in ["kind", "name", "uid"] {
            if text(owner, field).is_empty() {
                errs.push(invalid(
                    &child(&owners_path, field),
                    Bad::str(""),
                    "must not be empty",
                ));
            }
        }
        if flag(owner, "controller") {
            let current = format!("{}/{}", text(owner, "kind"), text(owner, "name"));
            match &controller {
                Some(first) => errs.push(invalid(
                    &owners_path,
                    json_bad(meta.get("ownerReferences")),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => controller = Some(current),
            }
        }
    }

    let finalizers_path = child(path, "finalizers");
    let finalizers: Vec<String> = list(meta, "finalizers").iter().map(scalar_text).collect();
    for f in &finalizers {
        for m in qualified_name(f) {
            errs.push(invalid(&finalizers_path, Bad::str(f), &m));
        }
    }
    if finalizers.iter().any(|f| f == "orphan")
        && finalizers.iter().any(|f| f == "foregroundDeletion")
    {
        errs.push(invalid(
            &finalizers_path,
            Bad::Raw(go_string_slice(
                meta.get("finalizers").and_then(Value::as_array),
            )),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    for (i, f) in finalizers.iter().enumerate() {
        kube_finalizer_errors(f, &index(&finalizers_path, i), errs);
    }
}

pub(super) fn validate_meta_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    if present(old, "deletionTimestamp") {
        let old_finalizers: Vec<String> = list(old, "finalizers").iter().map(scalar_text).collect();
        let mut added: Vec<String> = list(new, "finalizers")
            .iter()
            .map(scalar_text)
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        added.sort();
        added.dedup();
        if !added.is_empty() {
            let quoted: Vec<String> = added.iter().map(|f| go_quote(f)).collect();
            errs.push(forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    for field in ["name", "namespace", "uid"] {
        let new_value = text(new, field);
        if field == "uid" && new_value.is_empty() {
            continue;
        }
        if new_value != text(old, field) {
            errs.push(invalid(
                &child("metadata", field),
                Bad::str(new_value),
                IMMUTABLE_MSG,
            ));
        }
    }
}

pub(super) fn validate_namespace(ns: &Value, errs: &mut Vec<FieldError>) {
    for f in list(&ns["spec"], "finalizers") {
        kube_finalizer_errors(&scalar_text(f), "spec.finalizers", errs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::create_errors;
    use crate::admission::validate;
    use serde_json::json;

    #[test]
    fn labels_and_annotations_are_checked() {
        let errs = create_errors(
            "ConfigMap",
            json!({"metadata": {"name": "c", "labels": {"a/b/c": "ok", "app": "-bad"},
                "annotations": {"Example.com/Key": "fine", "bad key": "v"}}}),
        );
        assert_eq!(
            errs,
            [
                "metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                "metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ]
        );
    }

    #[test]
    fn annotations_are_capped_at_256_kib() {
        let big = "x".repeat(MAX_ANNOTATIONS_SIZE);
        let errs = validate(
            "ConfigMap",
            &json!({"metadata": {"name": "c", "annotations": {"k": big}}}),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, "FieldValueTooLong");
        assert_eq!(
            errs[0].describe(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn finalizers_must_be_standard_or_qualified() {
        let errs = create_errors(
            "ConfigMap",
            json!({"metadata": {"name": "c", "finalizers": ["kubernetes", "example.com/x", "custom"]}}),
        );
        assert_eq!(
            errs,
            [
                "metadata.finalizers[2]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
    }

    #[test]
    fn metadata_identity_is_immutable_and_deleting_objects_take_no_new_finalizers() {
        let old = json!({"metadata": {"name": "c", "uid": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x"]}});
        let new =
            json!({"metadata": {"name": "c", "uid": "2", "finalizers": ["a.io/x", "b.io/y"]}});
        let errs: Vec<String> = validate("ConfigMap", &new, Some(&old))
            .iter()
            .map(FieldError::describe)
            .collect();
        assert_eq!(
            errs,
            [
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\"}",
                "metadata.uid: Invalid value: \"2\": field is immutable",
            ]
        );
    }

    #[test]
    fn namespace_finalizers_are_checked() {
        let errs = create_errors(
            "Namespace",
            json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes", "mine"]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.finalizers: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
    }
}
