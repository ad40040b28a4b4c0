//! The RBAC authorizer: a request's attributes checked against the bindings and roles in the
//! member's watch cache (as kube-apiserver's RBAC authorizer reads its informers), so no
//! request reads the store and every member sees a rule change as soon as its cache does.
//!
//! A request is allowed when a ClusterRoleBinding, or a RoleBinding in the request's
//! namespace, names the user (or one of their groups, or their service account) and its role
//! has a rule that allows the request. `system:masters` is allowed before any rule is read,
//! as kube's privileged-group authorizer does; a node's requests first pass the Node
//! authorizer's restriction.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::rules::PolicyRule;
use crate::auth::{Identity, MASTERS};
use crate::request::ResourceRequest;
use crate::watch_cache::WatchCache;

/// What a resource request asks for, as authorization sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// API group, "" for core.
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource, "" for none.
    pub subresource: String,
    /// Namespace, "" for cluster scope (a namespace's own requests carry its name here).
    pub namespace: String,
    /// Object name, "" for collections.
    pub name: String,
}

/// One request's attributes: its verb and either a resource or a non-resource path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, ..., or a custom verb (`bind`, `escalate`,
    /// `impersonate`); for paths, the lowercase HTTP method.
    pub verb: String,
    /// The resource, for resource requests.
    pub resource: Option<ResourceAttributes>,
    /// The path, for non-resource requests.
    pub path: String,
}

impl Attributes {
    /// The attributes of a routed resource request, read as kube's RequestInfoFactory does:
    /// `namespaces/NAME` is in namespace NAME.
    pub fn of_request(request: &ResourceRequest) -> Attributes {
        let mut namespace = request.namespace.clone().unwrap_or_default();
        if request.resource == "namespaces" && namespace.is_empty() {
            namespace = request.name.clone().unwrap_or_default();
        }
        Attributes {
            verb: request.verb.as_str().to_owned(),
            resource: Some(ResourceAttributes {
                group: request.group.clone(),
                resource: request.resource.clone(),
                subresource: request.subresource.clone().unwrap_or_default(),
                namespace,
                name: request.name.clone().unwrap_or_default(),
            }),
            path: String::new(),
        }
    }

    /// A non-resource request.
    pub fn of_path(method: &str, path: &str) -> Attributes {
        Attributes {
            verb: method.to_ascii_lowercase(),
            resource: None,
            path: path.to_owned(),
        }
    }

    /// kube's `forbiddenMessage` behind `NewForbidden`: `pods "x" is forbidden: User "alice"
    /// cannot get resource "pods" in API group "" in the namespace "default"`.
    pub fn forbidden_message(&self, user: &str) -> String {
        let Some(r) = &self.resource else {
            return format!(
                "forbidden: User \"{user}\" cannot {} path \"{}\"",
                self.verb, self.path
            );
        };
        let qualified = if r.group.is_empty() {
            r.resource.clone()
        } else {
            format!("{}.{}", r.resource, r.group)
        };
        let name = if r.name.is_empty() {
            String::new()
        } else {
            format!(" \"{}\"", r.name)
        };
        let resource = if r.subresource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        let scope = if r.namespace.is_empty() {
            " at the cluster scope".to_owned()
        } else {
            format!(" in the namespace \"{}\"", r.namespace)
        };
        format!(
            "{qualified}{name} is forbidden: User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\"{scope}",
            self.verb, r.group
        )
    }
}

const CLUSTER_ROLES: &str = "/registry/clusterroles/";
const ROLES: &str = "/registry/roles/";
const CLUSTER_ROLE_BINDINGS: &str = "/registry/clusterrolebindings/";
const ROLE_BINDINGS: &str = "/registry/rolebindings/";

/// The authorizer of one member, over its watch cache.
#[derive(Clone)]
pub struct Authorizer {
    cache: Arc<WatchCache>,
}

impl Authorizer {
    /// An authorizer reading `cache`.
    pub fn new(cache: Arc<WatchCache>) -> Authorizer {
        Authorizer { cache }
    }

    /// Waits (up to a few seconds) until the cache has loaded, so a member that has just
    /// started does not deny what its bindings allow.
    pub async fn ready(&self) {
        if *self.cache.subscribe().borrow() == 0 {
            self.cache.wait_for(0, Duration::from_secs(10)).await;
        }
    }

    fn objects(&self, prefix: &str, under: &str) -> Vec<Arc<Value>> {
        self.cache
            .shard(prefix)
            .map(|shard| shard.list(under).0)
            .unwrap_or_default()
    }

    fn object(&self, prefix: &str, key: &str) -> Option<Arc<Value>> {
        self.cache.shard(prefix).and_then(|shard| shard.get(key))
    }

    /// Whether `user` may make the request.
    pub fn allows(&self, user: &Identity, request: &Attributes) -> bool {
        if user.groups.iter().any(|g| g == MASTERS) {
            return true;
        }
        if self.node_denial(user, request).is_some() {
            return false;
        }
        let namespace = request
            .resource
            .as_ref()
            .map(|r| r.namespace.as_str())
            .unwrap_or("");
        let mut allowed = false;
        self.visit_rules(user, namespace, &mut |rule| {
            allowed = rule.allows(request);
            allowed
        });
        allowed
    }

    /// Why the Node authorizer refuses a node's request, if it does (see [`super::node`]).
    pub fn node_denial(&self, user: &Identity, request: &Attributes) -> Option<String> {
        super::node::denial(&self.cache, user, request)
    }

    /// Every rule `user` holds in `namespace` ("" for the cluster scope only), and the errors
    /// met resolving role references (a binding to a role that does not exist).
    pub fn rules_for(&self, user: &Identity, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let errors = self.visit_rules(user, namespace, &mut |rule| {
            rules.push(rule.clone());
            false
        });
        (rules, errors)
    }

    /// The rules of the role `role_ref` names, for a binding in `namespace` ("" for a
    /// ClusterRoleBinding); Err with kube's NotFound text if the role does not exist.
    pub fn role_reference_rules(
        &self,
        role_ref: &Value,
        namespace: &str,
    ) -> Result<Vec<PolicyRule>, String> {
        let name = role_ref["name"].as_str().unwrap_or("");
        match role_ref["kind"].as_str().unwrap_or("") {
            "ClusterRole" => self
                .object(CLUSTER_ROLES, &format!("{CLUSTER_ROLES}{name}"))
                .map(|role| PolicyRule::of_role(&role))
                .ok_or_else(|| {
                    format!("clusterrole.rbac.authorization.k8s.io \"{name}\" not found")
                }),
            "Role" if !namespace.is_empty() => self
                .object(ROLES, &format!("{ROLES}{namespace}/{name}"))
                .map(|role| PolicyRule::of_role(&role))
                .ok_or_else(|| format!("role.rbac.authorization.k8s.io \"{name}\" not found")),
            kind => Err(format!("unsupported role reference kind: \"{kind}\"")),
        }
    }

    /// Calls `visit` with every rule that applies to `user` in `namespace` until it returns
    /// true; returns the resolution errors met on the way.
    fn visit_rules(
        &self,
        user: &Identity,
        namespace: &str,
        visit: &mut dyn FnMut(&PolicyRule) -> bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let mut bindings = self.objects(CLUSTER_ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS);
        let cluster_bindings = bindings.len();
        if !namespace.is_empty() {
            bindings.extend(self.objects(ROLE_BINDINGS, &format!("{ROLE_BINDINGS}{namespace}/")));
        }
        for (i, binding) in bindings.iter().enumerate() {
            let binding_namespace = if i < cluster_bindings { "" } else { namespace };
            if !applies_to(binding, user, binding_namespace) {
                continue;
            }
            match self.role_reference_rules(&binding["roleRef"], binding_namespace) {
                Ok(rules) => {
                    if rules.iter().any(&mut *visit) {
                        return errors;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }
}

/// Whether a binding's subjects name `user` (service accounts without a namespace are in the
/// binding's own).
fn applies_to(binding: &Value, user: &Identity, namespace: &str) -> bool {
    let Some(subjects) = binding["subjects"].as_array() else {
        return false;
    };
    subjects.iter().any(|subject| {
        let name = subject["name"].as_str().unwrap_or("");
        match subject["kind"].as_str().unwrap_or("") {
            "User" => user.user == name,
            "Group" => user.groups.iter().any(|g| g == name),
            "ServiceAccount" => {
                let sa_namespace = subject["namespace"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(namespace);
                !sa_namespace.is_empty()
                    && user.user == format!("system:serviceaccount:{sa_namespace}:{name}")
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Verb;

    fn request(
        verb: Verb,
        namespace: Option<&str>,
        resource: &str,
        name: Option<&str>,
    ) -> ResourceRequest {
        ResourceRequest {
            group: "".into(),
            version: "v1".into(),
            namespace: namespace.map(str::to_owned),
            resource: resource.into(),
            name: name.map(str::to_owned),
            subresource: None,
            verb,
        }
    }

    #[test]
    fn forbidden_messages_read_as_kubes() {
        let list = Attributes::of_request(&request(Verb::List, Some("default"), "pods", None));
        assert_eq!(
            list.forbidden_message("alice"),
            "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let mut status = request(Verb::Update, Some("d"), "pods", Some("p"));
        status.subresource = Some("status".into());
        assert_eq!(
            Attributes::of_request(&status).forbidden_message("bob"),
            "pods \"p\" is forbidden: User \"bob\" cannot update resource \"pods/status\" in API group \"\" in the namespace \"d\""
        );
        let mut nodes = request(Verb::Watch, None, "deployments", None);
        nodes.group = "apps".into();
        assert_eq!(
            Attributes::of_request(&nodes).forbidden_message("bob"),
            "deployments.apps is forbidden: User \"bob\" cannot watch resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
        let ns = Attributes::of_request(&request(Verb::Get, None, "namespaces", Some("team")));
        assert_eq!(
            ns.forbidden_message("bob"),
            "namespaces \"team\" is forbidden: User \"bob\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"team\""
        );
        assert_eq!(
            Attributes::of_path("GET", "/metrics").forbidden_message("bob"),
            "forbidden: User \"bob\" cannot get path \"/metrics\""
        );
    }

    #[test]
    fn subjects_name_users_groups_and_service_accounts() {
        let binding = serde_json::json!({"subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "builder"},
        ]});
        let who = |user: &str, groups: &[&str]| Identity {
            user: user.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        assert!(applies_to(&binding, &who("alice", &[]), ""));
        assert!(applies_to(&binding, &who("bob", &["devs"]), ""));
        assert!(applies_to(
            &binding,
            &who("system:serviceaccount:ci:builder", &[]),
            "ci"
        ));
        assert!(!applies_to(
            &binding,
            &who("system:serviceaccount:ci:builder", &[]),
            ""
        ));
        assert!(!applies_to(&binding, &who("carol", &["ops"]), "ci"));
    }
}
