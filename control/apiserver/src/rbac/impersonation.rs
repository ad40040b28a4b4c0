//! Impersonation (kube's `WithImpersonation` filter): `Impersonate-User` and
//! `Impersonate-Group` headers make a request act as another user, if the requester may
//! `impersonate` that user (or service account) and each group.

use hyper::HeaderMap;
use serde_json::json;

use super::authorizer::{Attributes, Authorizer, ResourceAttributes};
use crate::auth::Identity;
use crate::error::ApiError;

/// The identity a request acts as: `requester` itself when it names no one to impersonate.
pub fn impersonate(
    authorizer: &Authorizer,
    requester: Identity,
    headers: &HeaderMap,
) -> Result<Identity, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    };
    let users = values("impersonate-user");
    let groups = values("impersonate-group");
    let Some(user) = users.first() else {
        if groups.is_empty() {
            return Ok(requester);
        }
        return Err(ApiError::bad_request(format!(
            "requested {} without impersonating a user",
            groups
                .iter()
                .map(|g| format!("{{Group  {g}  authentication.k8s.io/v1  }}"))
                .collect::<Vec<_>>()
                .join(" ")
        )));
    };
    let service_account = user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    let user_attributes = match service_account {
        Some((namespace, name)) => target("serviceaccounts", namespace, name),
        None => target("users", "", user),
    };
    check(authorizer, &requester, &user_attributes)?;
    for group in &groups {
        check(authorizer, &requester, &target("groups", "", group))?;
    }
    let mut all_groups = groups;
    if let Some((namespace, _)) = service_account {
        for group in [
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{namespace}"),
        ] {
            if !all_groups.contains(&group) {
                all_groups.push(group);
            }
        }
    }
    // kube adds the authenticated group to every impersonated user but the anonymous one.
    if user != "system:anonymous" && !all_groups.iter().any(|g| g == "system:authenticated") {
        all_groups.push("system:authenticated".into());
    }
    Ok(Identity {
        user: user.clone(),
        groups: all_groups,
    })
}

fn target(resource: &str, namespace: &str, name: &str) -> Attributes {
    Attributes {
        verb: "impersonate".into(),
        resource: Some(ResourceAttributes {
            group: String::new(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: namespace.into(),
            name: name.into(),
        }),
        path: String::new(),
    }
}

fn check(
    authorizer: &Authorizer,
    requester: &Identity,
    attributes: &Attributes,
) -> Result<(), ApiError> {
    if authorizer.allows(requester, attributes) {
        return Ok(());
    }
    let r = attributes.resource.as_ref().expect("a resource request");
    Err(ApiError {
        details: Some(json!({"name": r.name, "kind": r.resource})),
        ..ApiError::forbidden(attributes.forbidden_message(&requester.user))
    })
}
