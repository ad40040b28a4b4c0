//! Who is asking, and whether they may: authentication by client certificate (CN = user,
//! O = groups, as kube-apiserver reads them) or bearer token (a static token file), and the
//! authorization every request passes.
//!
//! Authorization admits `system:masters` (kube's superuser group) for now; RBAC comes with the
//! control plane's bootstrap. Everyone else gets 403 with kube-apiserver's wording, and a
//! request with no credentials gets 401, except the health checks a load balancer probes.

use std::collections::HashMap;
use std::path::Path;

use crate::error::ApiError;
use crate::request::ResourceRequest;

/// The superuser group.
pub const MASTERS: &str = "system:masters";

/// The group of node agents (kubelets): user `system:node:<name>`.
pub const NODES: &str = "system:nodes";

/// What kube's `system:node` role grants a node agent, by resource (group, plural and
/// subresource), whatever the verb. Coarser than kube's Node authorizer, which also limits a
/// node to its own pods' secrets and its own Node object: that comes with RBAC.
fn node_may(request: &ResourceRequest) -> bool {
    matches!(
        (
            request.group.as_str(),
            request.resource.as_str(),
            request.subresource.as_deref()
        ),
        ("", "nodes", None | Some("status"))
            | ("", "pods", None | Some("status"))
            | (
                "",
                "events" | "configmaps" | "secrets" | "services" | "endpoints",
                None
            )
            | ("", "persistentvolumeclaims" | "persistentvolumes", None)
            | ("", "serviceaccounts", Some("token"))
            | ("events.k8s.io", "events", None)
            | ("coordination.k8s.io", "leases", None)
            | ("node.k8s.io", "runtimeclasses", None)
            | ("discovery.k8s.io", "endpointslices", None)
    )
}

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// User name.
    pub user: String,
    /// Groups, `system:authenticated` included.
    pub groups: Vec<String>,
}

impl Identity {
    fn new(user: String, mut groups: Vec<String>) -> Identity {
        groups.push("system:authenticated".into());
        Identity { user, groups }
    }

    /// The identity a verified client certificate carries.
    pub fn from_certificate(der: &[u8]) -> Option<Identity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect();
        Some(Identity::new(user, groups))
    }
}

/// Bearer tokens and whom they stand for.
#[derive(Clone, Debug, Default)]
pub struct Tokens(HashMap<String, Identity>);

impl Tokens {
    /// Reads kube's static token file: `token,user,uid[,"group1,group2"]` per line.
    pub fn from_file(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("token file {}: {e}", path.display()))
    }

    /// Parses the token file's text.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut tokens = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
                return Err(format!(
                    "line {}: expected token,user,uid[,\"groups\"]",
                    number + 1
                ));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(fields[0].clone(), Identity::new(fields[1].clone(), groups));
        }
        Ok(Tokens(tokens))
    }

    /// Adds one token.
    pub fn insert(&mut self, token: &str, user: &str, groups: &[&str]) {
        self.0.insert(
            token.to_owned(),
            Identity::new(
                user.to_owned(),
                groups.iter().map(|g| (*g).to_owned()).collect(),
            ),
        );
    }

    /// The identity of `Authorization: Bearer TOKEN`; `Err` for a token that is not known.
    pub fn authenticate(&self, authorization: &str) -> Result<Identity, ApiError> {
        let token = authorization
            .strip_prefix("Bearer ")
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        self.0
            .get(token)
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields.iter().map(|f| f.trim().to_owned()).collect()
}

/// Whether `identity` may make `request` (403 with kube's message if not).
pub fn authorize(identity: &Identity, request: Option<&ResourceRequest>) -> Result<(), ApiError> {
    if identity.groups.iter().any(|g| g == MASTERS) {
        return Ok(());
    }
    if identity.groups.iter().any(|g| g == NODES) && request.is_some_and(node_may) {
        return Ok(());
    }
    let Some(request) = request else {
        // Discovery and version documents are readable by every authenticated user, as kube's
        // system:discovery role grants.
        return Ok(());
    };
    let resource = match &request.subresource {
        Some(sub) => format!("{}/{sub}", request.resource),
        None => request.resource.clone(),
    };
    let scope = match &request.namespace {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".into(),
    };
    let name = request
        .name
        .as_deref()
        .map(|n| format!(" \"{n}\""))
        .unwrap_or_default();
    Err(ApiError::forbidden(format!(
        "{}{name} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\"{scope}",
        request.resource,
        identity.user,
        request.verb.as_str(),
        request.group
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Verb;

    #[test]
    fn token_file_lines_name_user_and_groups() {
        let tokens = Tokens::parse("# comment\nabc,alice,1,\"dev,ops\"\nxyz,bob,2\n").unwrap();
        let alice = tokens.authenticate("Bearer abc").unwrap();
        assert_eq!(alice.user, "alice");
        assert_eq!(alice.groups, ["dev", "ops", "system:authenticated"]);
        assert_eq!(tokens.authenticate("Bearer nope").unwrap_err().code, 401);
        assert_eq!(tokens.authenticate("Basic abc").unwrap_err().code, 401);
        assert!(Tokens::parse("only,two").is_err());
    }

    #[test]
    fn only_masters_pass_for_now() {
        let admin = Identity::new("admin".into(), vec![MASTERS.into()]);
        let alice = Identity::new("alice".into(), vec![]);
        let request = ResourceRequest {
            group: "".into(),
            version: "v1".into(),
            namespace: Some("default".into()),
            resource: "pods".into(),
            name: None,
            subresource: None,
            verb: Verb::List,
        };
        assert!(authorize(&admin, Some(&request)).is_ok());
        let denied = authorize(&alice, Some(&request)).unwrap_err();
        assert_eq!(denied.code, 403);
        assert_eq!(
            denied.message,
            "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        assert!(authorize(&alice, None).is_ok());
    }

    #[test]
    fn nodes_reach_what_a_kubelet_needs_only() {
        let node = Identity::new("system:node:n1".into(), vec![NODES.into()]);
        let request = |group: &str, resource: &str, subresource: Option<&str>| ResourceRequest {
            group: group.into(),
            version: "v1".into(),
            namespace: Some("default".into()),
            resource: resource.into(),
            name: Some("x".into()),
            subresource: subresource.map(Into::into),
            verb: Verb::Patch,
        };
        assert!(authorize(&node, Some(&request("", "pods", Some("status")))).is_ok());
        assert!(authorize(&node, Some(&request("coordination.k8s.io", "leases", None))).is_ok());
        assert!(authorize(&node, Some(&request("", "serviceaccounts", None))).is_err());
        assert!(authorize(&node, Some(&request("apps", "deployments", None))).is_err());
    }
}
