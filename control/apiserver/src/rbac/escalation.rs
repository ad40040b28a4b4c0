//! Escalation prevention (kube's `rbac/*/policybased` storage): a user may write a Role or
//! ClusterRole only with rules they hold themselves, and a binding only to a role whose rules
//! they hold, unless they may `escalate` (roles) or `bind` (bindings) that role, or are in
//! `system:masters`.

use serde_json::{json, Value};

use super::authorizer::{Attributes, Authorizer, ResourceAttributes};
use super::rules::{compact, covers, PolicyRule};
use crate::admission::rbac::GROUP;
use crate::auth::{Identity, MASTERS};
use crate::error::ApiError;
use crate::go_format::go_quote;

fn forbidden(plural: &str, name: &str, why: &str) -> ApiError {
    let qualified = format!("{plural}.{GROUP}");
    let message = if name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} \"{name}\" is forbidden: {why}")
    };
    ApiError {
        details: Some(json!({"name": name, "group": GROUP, "kind": plural})),
        ..ApiError::forbidden(message)
    }
}

fn may(
    authorizer: &Authorizer,
    user: &Identity,
    verb: &str,
    plural: &str,
    namespace: &str,
    name: &str,
) -> bool {
    authorizer.allows(
        user,
        &Attributes {
            verb: verb.into(),
            resource: Some(ResourceAttributes {
                group: GROUP.into(),
                resource: plural.into(),
                subresource: String::new(),
                namespace: namespace.into(),
                name: name.into(),
            }),
            path: String::new(),
        },
    )
}

/// kube's `ConfirmNoEscalation`: Err with its message when `user` lacks some of `rules` in
/// `namespace`.
fn confirm_no_escalation(
    authorizer: &Authorizer,
    user: &Identity,
    namespace: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    let (owned, errors) = authorizer.rules_for(user, namespace);
    let (covered, missing) = covers(&owned, rules);
    if covered {
        return Ok(());
    }
    let mut lines: Vec<String> = compact(missing)
        .iter()
        .map(PolicyRule::compact_string)
        .collect();
    lines.sort();
    lines.dedup();
    let groups: Vec<String> = user.groups.iter().map(|g| go_quote(g)).collect();
    let mut message = format!(
        "user {} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(&user.user),
        groups.join(" "),
        lines.join("\n")
    );
    if !errors.is_empty() {
        message.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(message)
}

/// Checks a write by `user` of `object` (the object as it will be stored) to the RBAC
/// resource `plural` in `namespace` ("" for cluster scope). `old` is the stored object on
/// update: a write that leaves the rules (or roleRef and subjects) as they were is not checked.
pub fn check_write(
    authorizer: &Authorizer,
    user: &Identity,
    plural: &str,
    namespace: &str,
    object: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if user.groups.iter().any(|g| g == MASTERS) {
        return Ok(());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    match plural {
        "roles" | "clusterroles" => {
            if old.is_some_and(|old| {
                old["rules"] == object["rules"]
                    && old["aggregationRule"] == object["aggregationRule"]
            }) || may(authorizer, user, "escalate", plural, namespace, name)
            {
                return Ok(());
            }
            let rules = PolicyRule::of_role(object);
            confirm_no_escalation(authorizer, user, namespace, &rules)
                .map_err(|why| forbidden(plural, name, &why))?;
            if !object["aggregationRule"].is_null() {
                let everything = [
                    PolicyRule::resource(&["*"], &["*"], &["*"]),
                    PolicyRule::urls(&["*"], &["*"]),
                ];
                confirm_no_escalation(authorizer, user, namespace, &everything).map_err(|_| {
                    forbidden(
                        plural,
                        name,
                        "must have cluster-admin privileges to use the aggregationRule",
                    )
                })?;
            }
            Ok(())
        }
        "rolebindings" | "clusterrolebindings" => {
            if old.is_some_and(|old| {
                old["roleRef"] == object["roleRef"] && old["subjects"] == object["subjects"]
            }) {
                return Ok(());
            }
            let role_ref = &object["roleRef"];
            let role_plural = match role_ref["kind"].as_str() {
                Some("Role") => "roles",
                _ => "clusterroles",
            };
            let role_name = role_ref["name"].as_str().unwrap_or("");
            if may(authorizer, user, "bind", role_plural, namespace, role_name) {
                return Ok(());
            }
            let rules = authorizer
                .role_reference_rules(role_ref, namespace)
                .map_err(|why| forbidden(plural, name, &why))?;
            confirm_no_escalation(authorizer, user, namespace, &rules)
                .map_err(|why| forbidden(plural, name, &why))
        }
        _ => Ok(()),
    }
}
