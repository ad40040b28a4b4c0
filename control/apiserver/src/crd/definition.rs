//! The CustomResourceDefinition itself: its defaults, kube's validation of it (names, group,
//! scope, versions, structural schemas, `<plural>.<group>` as its name), and the status the
//! server owns.
//!
//! kube-apiextensions-server sets `NamesAccepted` and `Established` from two controllers that
//! run after the write; keel sets them in the write itself (create, update and status writes
//! alike). One writer and no loop: a CRD is established the moment it is stored, which every
//! member then learns from its watch cache, so kube's establishing delay (waiting for HA
//! apiservers to see the CRD) has no keel counterpart. Names are checked against the other
//! CRDs of the group the cache holds; two CRDs racing for one name may both win, a limit kube's
//! single naming controller does not have.

use serde_json::{json, Map, Value};

use crate::admission::{self, FieldError};
use crate::go_format::go_quote;
use crate::object::now_rfc3339;

/// Whether the CRD's condition `kind` is `True`.
pub fn condition_true(crd: &Value, kind: &str) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

fn required(field: &str, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueRequired",
        field: field.into(),
        message: if detail.is_empty() {
            "Required value".into()
        } else {
            format!("Required value: {detail}")
        },
    }
}

fn invalid(field: &str, shown: String, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: field.into(),
        message: format!("Invalid value: {shown}: {detail}"),
    }
}

fn forbidden(field: &str, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueForbidden",
        field: field.into(),
        message: format!("Forbidden: {detail}"),
    }
}

fn not_supported(field: &str, value: &str, supported: &[&str]) -> FieldError {
    let values: Vec<String> = supported.iter().map(|v| go_quote(v)).collect();
    FieldError {
        reason: "FieldValueNotSupported",
        field: field.into(),
        message: format!(
            "Unsupported value: {}: supported values: {}",
            go_quote(value),
            values.join(", ")
        ),
    }
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or("")
}

/// kube's defaults: `singular` is the lowercase kind, `listKind` `<Kind>List`, conversion
/// `None`.
pub fn apply_defaults(crd: &mut Value) {
    let names = &mut crd["spec"]["names"];
    if names.is_object() {
        let kind = text(names, "kind").to_owned();
        if text(names, "singular").is_empty() && !kind.is_empty() {
            names["singular"] = json!(kind.to_lowercase());
        }
        if text(names, "listKind").is_empty() && !kind.is_empty() {
            names["listKind"] = json!(format!("{kind}List"));
        }
    }
    if crd["spec"].is_object() && !crd["spec"]["conversion"].is_object() {
        crd["spec"]["conversion"] = json!({"strategy": "None"});
    }
}

/// Everything kube finds wrong with a CRD (`old`: the stored one, on update).
pub fn validate(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = text(spec, "group");
    let name = crd["metadata"]["name"].as_str().unwrap_or("");
    let wanted = format!("{}.{group}", text(names, "plural"));
    if !name.is_empty() && name != wanted {
        errs.push(invalid(
            "metadata.name",
            go_quote(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errs.push(required("spec.group", ""));
    } else if let Some(why) = admission::dns1123_subdomain_errors(group).first() {
        errs.push(invalid("spec.group", go_quote(group), why));
    } else if !group.contains('.') {
        errs.push(invalid(
            "spec.group",
            go_quote(group),
            "should be a domain with at least one dot",
        ));
    }
    match text(spec, "scope") {
        "" => errs.push(required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    validate_versions(spec, &mut errs);
    for field in ["plural", "singular", "kind", "listKind"] {
        if text(names, field).is_empty() {
            errs.push(required(&format!("spec.names.{field}"), ""));
        }
    }
    validate_names(names, "spec.names", &mut errs);
    if let Some(old) = old {
        let old_spec = &old["spec"];
        for (field, path) in [
            (&spec["group"], "spec.group"),
            (&spec["names"]["plural"], "spec.names.plural"),
        ] {
            let was = if path == "spec.group" {
                &old_spec["group"]
            } else {
                &old_spec["names"]["plural"]
            };
            if field != was {
                errs.push(invalid(
                    path,
                    go_quote(field.as_str().unwrap_or("")),
                    "field is immutable",
                ));
            }
        }
        if condition_true(old, "Established") && spec["scope"] != old_spec["scope"] {
            errs.push(invalid(
                "spec.scope",
                go_quote(text(spec, "scope")),
                "field is immutable",
            ));
        }
    }
    errs
}

fn validate_versions(spec: &Value, errs: &mut Vec<FieldError>) {
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errs.push(required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
        return;
    }
    let mut seen = Vec::new();
    let mut storage = 0;
    let status_everywhere = spec["subresources"].is_object();
    for (i, version) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = text(version, "name");
        if version["storage"] == true {
            storage += 1;
        }
        if let Some(why) = admission::dns1035_label_errors(name).first() {
            errs.push(invalid(&format!("{path}.name"), go_quote(name), why));
        }
        if seen.contains(&name) {
            errs.push(invalid(
                "spec.versions",
                format!("[]apiextensions.CustomResourceDefinitionVersion{{... {name} ...}}"),
                "must contain unique version names",
            ));
        }
        seen.push(name);
        let schema = &version["schema"]["openAPIV3Schema"];
        let schema_path = format!("{path}.schema.openAPIV3Schema");
        if !schema.is_object() {
            errs.push(required(&schema_path, "schemas are required"));
        } else {
            validate_structural(schema, &schema_path, true, errs);
        }
        for (j, column) in version["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let column_path = format!("{path}.additionalPrinterColumns[{j}]");
            if text(column, "name").is_empty() {
                errs.push(required(&format!("{column_path}.name"), ""));
            }
            match text(column, "type") {
                "" => errs.push(required(&format!("{column_path}.type"), "")),
                "integer" | "number" | "string" | "boolean" | "date" => {}
                other => errs.push(not_supported(
                    &format!("{column_path}.type"),
                    other,
                    &["integer", "number", "string", "boolean", "date"],
                )),
            }
            if text(column, "jsonPath").is_empty() {
                errs.push(required(&format!("{column_path}.jsonPath"), ""));
            } else if let Err(why) = super::printer::JsonPath::parse(text(column, "jsonPath")) {
                errs.push(invalid(
                    &format!("{column_path}.jsonPath"),
                    go_quote(text(column, "jsonPath")),
                    &why,
                ));
            }
        }
        let scale = &version["subresources"]["scale"];
        if scale.is_object() {
            for field in ["specReplicasPath", "statusReplicasPath"] {
                let value = text(scale, field);
                let field_path = format!("{path}.subresources.scale.{field}");
                if value.is_empty() {
                    errs.push(required(&field_path, ""));
                } else if !value.starts_with('.') {
                    errs.push(invalid(
                        &field_path,
                        go_quote(value),
                        "should be a json path under .spec or .status",
                    ));
                }
            }
        }
    }
    if status_everywhere {
        errs.push(forbidden(
            "spec.subresources",
            "top-level and per-version subresources are mutually exclusive; use per-version subresources",
        ));
    }
    if storage != 1 {
        errs.push(invalid(
            "spec.versions",
            format!(
                "[]apiextensions.CustomResourceDefinitionVersion{{{}}}",
                seen.join(", ")
            ),
            "must have exactly one version marked as storage version",
        ));
    }
}

fn validate_names(names: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for field in ["plural", "singular"] {
        let value = text(names, field);
        if let Some(why) = admission::dns1035_label_errors(value)
            .first()
            .filter(|_| !value.is_empty())
        {
            errs.push(invalid(&format!("{path}.{field}"), go_quote(value), why));
        }
    }
    for field in ["kind", "listKind"] {
        let value = text(names, field);
        let lower = value.to_lowercase();
        if let Some(why) = admission::dns1035_label_errors(&lower)
            .first()
            .filter(|_| !value.is_empty())
        {
            errs.push(invalid(
                &format!("{path}.{field}"),
                go_quote(value),
                &format!("may have mixed case, but should otherwise match: {why}"),
            ));
        }
    }
    for list in ["shortNames", "categories"] {
        for (i, item) in names[list].as_array().into_iter().flatten().enumerate() {
            let value = item.as_str().unwrap_or("");
            if let Some(why) = admission::dns1035_label_errors(value).first() {
                errs.push(invalid(
                    &format!("{path}.{list}[{i}]"),
                    go_quote(value),
                    why,
                ));
            }
        }
    }
    let kind = text(names, "kind");
    if !kind.is_empty() && kind == text(names, "listKind") {
        errs.push(invalid(
            &format!("{path}.listKind"),
            go_quote(kind),
            "kind and listKind may not be the same",
        ));
    }
}

const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// kube's structural schema rules, for the parts a schema may break them in: every specified
/// field has a type (unless int-or-string or preserving unknown fields), the root is an object,
/// arrays have items, properties and additionalProperties exclude each other.
fn validate_structural(schema: &Value, path: &str, root: bool, errs: &mut Vec<FieldError>) {
    let kind = text(schema, "type");
    let int_or_string = schema["x-kubernetes-int-or-string"] == true;
    let preserve = &schema["x-kubernetes-preserve-unknown-fields"];
    if preserve == &json!(false) {
        errs.push(invalid(
            &format!("{path}.x-kubernetes-preserve-unknown-fields"),
            "false".into(),
            "must be true or undefined",
        ));
    }
    if int_or_string && !kind.is_empty() {
        errs.push(invalid(
            &format!("{path}.type"),
            go_quote(kind),
            "must be empty if x-kubernetes-int-or-string is true",
        ));
    } else if kind.is_empty() && !int_or_string && preserve != &json!(true) {
        errs.push(required(
            &format!("{path}.type"),
            "must not be empty for specified object fields",
        ));
    } else if !kind.is_empty() && !TYPES.contains(&kind) {
        errs.push(not_supported(&format!("{path}.type"), kind, TYPES));
    }
    if root && !kind.is_empty() && kind != "object" {
        errs.push(invalid(
            &format!("{path}.type"),
            go_quote(kind),
            "must be object at the root",
        ));
    }
    if schema["uniqueItems"] == true {
        errs.push(forbidden(
            &format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let properties = schema["properties"].as_object();
    if let Some(additional) = schema.get("additionalProperties") {
        if properties.is_some_and(|p| !p.is_empty()) && additional != &json!(true) {
            errs.push(forbidden(
                &format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if additional.is_object() {
            validate_structural(
                additional,
                &format!("{path}.additionalProperties"),
                false,
                errs,
            );
        }
    }
    for (name, property) in properties.into_iter().flatten() {
        validate_structural(property, &format!("{path}.properties[{name}]"), false, errs);
    }
    if kind == "array" {
        match schema.get("items") {
            Some(items) if items.is_object() => {
                validate_structural(items, &format!("{path}.items"), false, errs)
            }
            _ => errs.push(required(&format!("{path}.items"), "must be specified")),
        }
    }
    if let Some(default) = schema.get("default") {
        if root {
            errs.push(forbidden(
                &format!("{path}.default"),
                "must not be set at the root",
            ));
        } else if let Some(why) =
            super::structural::check(schema, default, &format!("{path}.default")).first()
        {
            errs.push(invalid(
                &format!("{path}.default"),
                crate::crd::structural::go_value(default),
                &why.message,
            ));
        }
    }
}

/// The server-owned part of a CRD's status after a write: `acceptedNames` and the
/// `NamesAccepted` and `Established` conditions (from the names the group's `others` accepted),
/// and `storedVersions` (every version objects may have been stored at).
pub fn set_status(crd: &mut Value, others: &[std::sync::Arc<Value>]) {
    let group = crd["spec"]["group"].clone();
    let names = crd["spec"]["names"].clone();
    let mine = crd["metadata"]["name"].clone();
    let conflict = others
        .iter()
        .filter(|o| o["metadata"]["name"] != mine && o["spec"]["group"] == group)
        .find_map(|other| name_conflict(&names, &other["status"]["acceptedNames"]));
    if !crd["status"].is_object() {
        crd["status"] = json!({});
    }
    let status = crd["status"].as_object_mut().expect("made an object");
    match &conflict {
        None => {
            status.insert("acceptedNames".into(), names.clone());
            set_condition(
                status,
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
            );
            set_condition(
                status,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            );
        }
        Some((reason, message)) => {
            status
                .entry("acceptedNames")
                .or_insert_with(|| json!({"plural": "", "kind": ""}));
            set_condition(status, "NamesAccepted", "False", reason, message);
            if !status["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Established"))
            {
                set_condition(
                    status,
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                );
            }
        }
    }
    let storage = crd["spec"]["versions"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["storage"] == true))
        .map(|v| v["name"].clone());
    let status = crd["status"].as_object_mut().expect("made an object");
    let stored = status.entry("storedVersions").or_insert_with(|| json!([]));
    if let (Some(list), Some(version)) = (stored.as_array_mut(), storage) {
        if !list.contains(&version) {
            list.push(version);
        }
    }
}

/// The first name of `names` that `accepted` (another CRD of the group) already holds.
fn name_conflict(names: &Value, accepted: &Value) -> Option<(&'static str, String)> {
    let holds = |field: &str, value: &Value| {
        value.as_str().is_some_and(|v| {
            !v.is_empty()
                && (["plural", "singular"]
                    .iter()
                    .any(|f| accepted[f].as_str() == Some(v))
                    || accepted["shortNames"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(v))))
                && field != "kind"
        })
    };
    for (field, reason) in [
        ("plural", "PluralConflict"),
        ("singular", "SingularConflict"),
    ] {
        if holds(field, &names[field]) {
            return Some((
                reason,
                format!(
                    "{} is already in use",
                    go_quote(names[field].as_str().unwrap_or(""))
                ),
            ));
        }
    }
    for short in names["shortNames"].as_array().into_iter().flatten() {
        if holds("shortNames", short) {
            return Some((
                "ShortNamesConflict",
                format!(
                    "{} is already in use",
                    go_quote(short.as_str().unwrap_or(""))
                ),
            ));
        }
    }
    for (field, reason) in [("kind", "KindConflict"), ("listKind", "ListKindConflict")] {
        let value = names[field].as_str().unwrap_or("");
        if !value.is_empty()
            && (accepted["kind"].as_str() == Some(value)
                || accepted["listKind"].as_str() == Some(value))
        {
            return Some((reason, format!("{} is already in use", go_quote(value))));
        }
    }
    None
}

/// Sets condition `kind`, moving its transition time only when its status changes.
pub fn set_condition(
    status: &mut Map<String, Value>,
    kind: &str,
    value: &str,
    reason: &str,
    message: &str,
) {
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let list = conditions.as_array_mut().expect("made an array");
    let next = |since: Value| {
        json!({"type": kind, "status": value, "lastTransitionTime": since,
            "reason": reason, "message": message})
    };
    match list.iter_mut().find(|c| c["type"] == kind) {
        Some(old) if old["status"] == value => {
            let since = old["lastTransitionTime"].clone();
            *old = next(since);
        }
        Some(old) => *old = next(json!(now_rfc3339())),
        None => list.push(next(json!(now_rfc3339()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn crd() -> Value {
        json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"replicas": {"type": "integer", "default": 1}}}}}}}]}})
    }

    fn messages(crd: &Value) -> Vec<String> {
        validate(crd, None)
            .iter()
            .map(FieldError::describe)
            .collect()
    }

    #[test]
    fn a_good_crd_passes_after_its_defaults() {
        let mut good = crd();
        apply_defaults(&mut good);
        assert_eq!(good["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(good["spec"]["names"]["singular"], "widget");
        assert_eq!(messages(&good), Vec::<String>::new());
    }

    #[test]
    fn bad_crds_get_kubes_messages() {
        let mut bad = crd();
        apply_defaults(&mut bad);
        bad["metadata"]["name"] = json!("widget.example.com");
        bad["spec"]["versions"][0]["storage"] = json!(false);
        bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["size"] = json!({});
        let found = messages(&bad);
        assert!(found.contains(&"metadata.name: Invalid value: \"widget.example.com\": must be spec.names.plural+\".\"+spec.group".to_owned()), "{found:?}");
        assert!(
            found
                .iter()
                .any(|m| m.ends_with("must have exactly one version marked as storage version")),
            "{found:?}"
        );
        assert!(found.contains(&"spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type: Required value: must not be empty for specified object fields".to_owned()), "{found:?}");
        let mut no_dot = crd();
        apply_defaults(&mut no_dot);
        no_dot["spec"]["group"] = json!("example");
        no_dot["metadata"]["name"] = json!("widgets.example");
        assert_eq!(
            messages(&no_dot),
            ["spec.group: Invalid value: \"example\": should be a domain with at least one dot"]
        );
        let mut no_schema = crd();
        apply_defaults(&mut no_schema);
        no_schema["spec"]["versions"][0]["schema"] = json!(null);
        assert_eq!(
            messages(&no_schema),
            ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]
        );
    }

    #[test]
    fn names_are_accepted_unless_another_crd_holds_them() {
        let mut first = crd();
        apply_defaults(&mut first);
        set_status(&mut first, &[]);
        assert!(condition_true(&first, "Established"));
        assert!(condition_true(&first, "NamesAccepted"));
        assert_eq!(first["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(first["status"]["acceptedNames"]["kind"], "Widget");
        let mut second = crd();
        second["metadata"]["name"] = json!("gadgets.example.com");
        second["spec"]["names"] = json!({"plural": "gadgets", "kind": "Widget"});
        set_status(&mut second, &[Arc::new(first)]);
        assert!(!condition_true(&second, "NamesAccepted"));
        assert!(!condition_true(&second, "Established"));
    }
}
