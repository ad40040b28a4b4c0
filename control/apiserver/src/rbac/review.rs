//! The review APIs, answered and never stored: `authorization.k8s.io/v1`
//! SelfSubjectAccessReview (`kubectl auth can-i`), SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectRulesReview (`kubectl auth can-i --list`), and
//! `authentication.k8s.io/v1` SelfSubjectReview (`kubectl auth whoami`).

use serde_json::{json, Value};

use super::authorizer::{Attributes, Authorizer, ResourceAttributes};
use super::rules::PolicyRule;
use crate::admission::FieldError;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::request::{ResourceRequest, Verb};
use crate::rest::Reply;

const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTHENTICATION: &str = "authentication.k8s.io";

/// The review kinds: (group, plural, kind, namespaced).
pub const REVIEWS: &[(&str, &str, &str, bool)] = &[
    (
        AUTHENTICATION,
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    (
        AUTHORIZATION,
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
    (
        AUTHORIZATION,
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        AUTHORIZATION,
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    (
        AUTHORIZATION,
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
];

/// Answers `request` if it is for a review (None otherwise): `user` is who asks.
pub fn serve(
    authorizer: &Authorizer,
    user: &Identity,
    request: &ResourceRequest,
    body: &[u8],
) -> Option<Result<Reply, ApiError>> {
    let &(group, plural, kind, namespaced) = REVIEWS
        .iter()
        .find(|(g, p, _, _)| *g == request.group && *p == request.resource)?;
    if request.version != "v1" {
        return None;
    }
    if request.verb != Verb::Create || request.name.is_some() {
        return Some(Err(ApiError::method_not_allowed(
            request.verb.as_str(),
            plural,
        )));
    }
    if namespaced != request.namespace.is_some() {
        return Some(Err(ApiError::no_route()));
    }
    Some(answer(authorizer, user, request, body, group, kind))
}

fn invalid(kind: &str, group: &str, reason: &'static str, field: &str, message: &str) -> ApiError {
    ApiError::invalid(
        kind,
        group,
        "",
        &[FieldError {
            reason,
            field: field.into(),
            message: message.into(),
        }],
    )
}

fn answer(
    authorizer: &Authorizer,
    user: &Identity,
    request: &ResourceRequest,
    body: &[u8],
    group: &str,
    kind: &str,
) -> Result<Reply, ApiError> {
    let mut review: Value = if super::review_proto::is_protobuf(body) {
        super::review_proto::decode(kind, body).map_err(ApiError::bad_request)?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    if !review.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    review["apiVersion"] = json!(format!("{group}/v1"));
    review["kind"] = json!(kind);
    if review["metadata"].is_null() {
        review["metadata"] = json!({"creationTimestamp": null});
    }
    let spec = review["spec"].clone();
    review["status"] = match kind {
        "SelfSubjectReview" => json!({"userInfo": user_info(user)}),
        "SelfSubjectRulesReview" => {
            let namespace = spec["namespace"].as_str().unwrap_or("");
            rules_review(authorizer, user, namespace)
        }
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let subject = Identity {
                user: spec["user"].as_str().unwrap_or("").to_owned(),
                groups: strings(&spec["groups"]),
            };
            if subject.user.is_empty() && subject.groups.is_empty() {
                return Err(invalid(
                    kind,
                    group,
                    "FieldValueInvalid",
                    "spec.user",
                    "Invalid value: \"\": at least one of user or group must be specified",
                ));
            }
            let mut attributes = access_attributes(&spec, kind, group)?;
            if kind == "LocalSubjectAccessReview" {
                let namespace = request.namespace.clone().unwrap_or_default();
                if let Some(r) = attributes.resource.as_mut() {
                    if r.namespace != namespace {
                        return Err(invalid(
                            kind,
                            group,
                            "FieldValueInvalid",
                            "spec.resourceAttributes.namespace",
                            &format!(
                                "Invalid value: \"{}\": must match metadata.namespace",
                                r.namespace
                            ),
                        ));
                    }
                }
            }
            decision(authorizer.allows(&subject, &attributes))
        }
        _ => decision(authorizer.allows(user, &access_attributes(&spec, kind, group)?)),
    };
    Ok(Reply::Object(201, review))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn user_info(user: &Identity) -> Value {
    json!({"username": user.user, "groups": user.groups})
}

fn decision(allowed: bool) -> Value {
    json!({"allowed": allowed})
}

/// The attributes a review's spec asks about: exactly one of resourceAttributes and
/// nonResourceAttributes.
fn access_attributes(spec: &Value, kind: &str, group: &str) -> Result<Attributes, ApiError> {
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
    match (resource, non_resource) {
        (Some(r), None) => Ok(Attributes {
            verb: text(r, "verb"),
            resource: Some(ResourceAttributes {
                group: text(r, "group"),
                resource: text(r, "resource"),
                subresource: text(r, "subresource"),
                namespace: text(r, "namespace"),
                name: text(r, "name"),
            }),
            path: String::new(),
        }),
        (None, Some(n)) => Ok(Attributes {
            verb: text(n, "verb"),
            resource: None,
            path: text(n, "path"),
        }),
        (None, None) => Err(invalid(kind, group, "FieldValueRequired", "spec.resourceAttributes",
            "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified")),
        (Some(_), Some(_)) => Err(invalid(kind, group, "FieldValueInvalid", "spec.nonResourceAttributes",
            "Invalid value: \"\": cannot be specified in combination with resourceAttributes")),
    }
}

/// The rules `user` holds in `namespace`, split as SelfSubjectRulesReview reports them.
fn rules_review(authorizer: &Authorizer, user: &Identity, namespace: &str) -> Value {
    let (rules, errors) = authorizer.rules_for(user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    let mut seen: Vec<&PolicyRule> = Vec::new();
    for rule in &rules {
        if seen.contains(&rule) {
            continue;
        }
        seen.push(rule);
        if rule.non_resource_urls.is_empty() {
            let mut entry = json!({"verbs": rule.verbs, "apiGroups": rule.api_groups,
                "resources": rule.resources});
            if !rule.resource_names.is_empty() {
                entry["resourceNames"] = json!(rule.resource_names);
            }
            resource_rules.push(entry);
        } else {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}
