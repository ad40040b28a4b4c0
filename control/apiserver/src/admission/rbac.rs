//! Roles, ClusterRoles and their bindings (`rbac.authorization.k8s.io/v1`): the defaults of
//! `pkg/apis/rbac/v1/defaults.go` and the rules of `pkg/apis/rbac/validation`: every rule has
//! verbs, a resource rule names API groups and resources, non-resource URLs stand alone and
//! only in ClusterRoles, a binding's roleRef names a Role or ClusterRole of this group and
//! never changes, and subjects are Users, Groups or ServiceAccounts.

use serde_json::{json, Value};

use super::field::{child, index, invalid, not_supported, required, Bad};
use super::json::{list, map, text};
use super::label_selector::{selector_matches, validate_label_selector};
use super::names::{dns1123_subdomain, path_segment_name};
use super::FieldError;
use crate::go_format::go_quote;

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// Fills a binding's `roleRef.apiGroup` and its Users' and Groups' `apiGroup`, as kube does.
pub(super) fn default_binding(object: &mut Value) {
    if let Some(role_ref) = object.get_mut("roleRef").and_then(Value::as_object_mut) {
        if role_ref
            .get("apiGroup")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            role_ref.insert("apiGroup".into(), json!(GROUP));
        }
    }
    if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_array_mut) {
        for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
            let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
            let group = subject
                .get("apiGroup")
                .and_then(Value::as_str)
                .unwrap_or("");
            if group.is_empty() && matches!(kind, "User" | "Group") {
                subject.insert("apiGroup".into(), json!(GROUP));
            }
        }
    }
}

/// A Role's or ClusterRole's rules and aggregation rule.
pub(super) fn validate_role(object: &Value, namespaced: bool, errs: &mut Vec<FieldError>) {
    for (i, rule) in list(object, "rules").iter().enumerate() {
        validate_rule(rule, namespaced, &index("rules", i), errs);
    }
    let Some(aggregation) = object.get("aggregationRule").filter(|a| !a.is_null()) else {
        return;
    };
    let path = "aggregationRule.clusterRoleSelectors";
    let selectors = list(aggregation, "clusterRoleSelectors");
    if selectors.is_empty() {
        errs.push(required(
            path,
            "at least one clusterRoleSelector required if aggregationRule is non-nil",
        ));
    }
    for (i, selector) in selectors.iter().enumerate() {
        validate_label_selector(Some(selector), &index(path, i), errs);
    }
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_strings(values: &[Value]) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| go_quote(v.as_str().unwrap_or("")))
        .collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn validate_rule(rule: &Value, namespaced: bool, path: &str, errs: &mut Vec<FieldError>) {
    if list(rule, "verbs").is_empty() {
        errs.push(required(
            &child(path, "verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = list(rule, "nonResourceURLs");
    if !urls.is_empty() {
        let field = child(path, "nonResourceURLs");
        if namespaced {
            errs.push(invalid(
                &field,
                Bad::Raw(go_strings(urls)),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !list(rule, "apiGroups").is_empty()
            || !list(rule, "resources").is_empty()
            || !list(rule, "resourceNames").is_empty()
        {
            errs.push(invalid(
                &field,
                Bad::Raw(go_strings(urls)),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if list(rule, "apiGroups").is_empty() {
        errs.push(required(
            &child(path, "apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if list(rule, "resources").is_empty() {
        errs.push(required(
            &child(path, "resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

/// A RoleBinding (`namespaced`) or ClusterRoleBinding; `old` on update, whose roleRef stays.
pub(super) fn validate_binding(
    object: &Value,
    old: Option<&Value>,
    namespaced: bool,
    errs: &mut Vec<FieldError>,
) {
    let role_ref = &object["roleRef"];
    let group = text(role_ref, "apiGroup");
    if group != GROUP {
        errs.push(not_supported("roleRef.apiGroup", Bad::str(group), &[GROUP]));
    }
    let kind = text(role_ref, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        errs.push(not_supported("roleRef.kind", Bad::str(kind), kinds));
    }
    let name = text(role_ref, "name");
    if name.is_empty() {
        errs.push(required("roleRef.name", ""));
    } else {
        for message in path_segment_name(name) {
            errs.push(invalid("roleRef.name", Bad::str(name), &message));
        }
    }
    for (i, subject) in list(object, "subjects").iter().enumerate() {
        validate_subject(subject, namespaced, &index("subjects", i), errs);
    }
    if let Some(old) = old {
        let old_ref = &old["roleRef"];
        if ["apiGroup", "kind", "name"]
            .iter()
            .any(|k| text(role_ref, k) != text(old_ref, k))
        {
            let shown = format!(
                "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                go_quote(group),
                go_quote(kind),
                go_quote(name)
            );
            errs.push(invalid("roleRef", Bad::Raw(shown), "cannot change roleRef"));
        }
    }
}

fn validate_subject(subject: &Value, namespaced: bool, path: &str, errs: &mut Vec<FieldError>) {
    let name = text(subject, "name");
    if name.is_empty() {
        errs.push(required(&child(path, "name"), ""));
    }
    let group = text(subject, "apiGroup");
    match text(subject, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for message in dns1123_subdomain(name) {
                    errs.push(invalid(&child(path, "name"), Bad::str(name), &message));
                }
            }
            if !group.is_empty() {
                errs.push(not_supported(
                    &child(path, "apiGroup"),
                    Bad::str(group),
                    &[""],
                ));
            }
            if !namespaced && text(subject, "namespace").is_empty() {
                errs.push(required(&child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errs.push(not_supported(
                    &child(path, "apiGroup"),
                    Bad::str(group),
                    &[GROUP],
                ));
            }
        }
        kind => errs.push(not_supported(
            &child(path, "kind"),
            Bad::str(kind),
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

/// Whether a ClusterRole selector (a metav1 LabelSelector) selects an object's labels.
pub fn label_selector_selects(selector: &Value, object: &Value) -> bool {
    let empty = map(selector, "matchLabels").is_none_or(|m| m.is_empty())
        && list(selector, "matchExpressions").is_empty();
    // An empty selector selects everything, as metav1.LabelSelectorAsSelector reads it.
    empty || selector_matches(selector, map(&object["metadata"], "labels"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(kind: &str, object: Value, old: Option<Value>) -> Vec<String> {
        let mut object = object;
        crate::admission::apply_defaults(kind, &mut object);
        crate::admission::validate(kind, &object, old.as_ref())
            .iter()
            .map(FieldError::describe)
            .collect()
    }

    #[test]
    fn rules_need_verbs_groups_and_resources() {
        let role = json!({"metadata": {"name": "r", "namespace": "d"},
            "rules": [{"resources": ["pods"]},
                      {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert_eq!(
            errors("Role", role, None),
            [
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
            ]
        );
        let cluster = json!({"metadata": {"name": "c"},
            "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["pods"]}]});
        assert_eq!(
            errors("ClusterRole", cluster, None),
            ["rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: rules cannot apply to both regular resources and non-resource URLs"]
        );
        let aggregated = json!({"metadata": {"name": "c"}, "aggregationRule": {}});
        assert_eq!(
            errors("ClusterRole", aggregated, None),
            ["aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"]
        );
    }

    #[test]
    fn bindings_check_role_refs_and_subjects() {
        let binding = json!({"metadata": {"name": "b"},
            "roleRef": {"kind": "Role", "name": "x"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "r"}]});
        assert_eq!(
            errors("ClusterRoleBinding", binding, None),
            [
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[0].namespace: Required value",
                "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
        let new = json!({"metadata": {"name": "b", "namespace": "d"},
            "roleRef": {"kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "User", "name": "alice"}]});
        let old = json!({"metadata": {"name": "b", "namespace": "d"},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "view"}});
        assert_eq!(
            errors("RoleBinding", new.clone(), Some(old)),
            ["roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"]
        );
        assert!(errors("RoleBinding", new, None).is_empty());
    }

    #[test]
    fn selectors_select_labelled_roles() {
        let role = json!({"metadata": {"labels": {"rbac.example.com/aggregate-to-view": "true"}}});
        assert!(label_selector_selects(
            &json!({"matchLabels": {"rbac.example.com/aggregate-to-view": "true"}}),
            &role
        ));
        assert!(!label_selector_selects(
            &json!({"matchLabels": {"other": "true"}}),
            &role
        ));
    }
}
