//! The resources the server serves: one table row each (group, version, names, scope,
//! subresources), so adding a resource is a row here plus, where it needs them, its defaults
//! and validation in `admission` and its columns in `table`.
//!
//! Beside the static table, the resources CustomResourceDefinitions bring ([`crate::crd`]):
//! [`Registry`] looks a resource up in the static table first, then in the custom one.

use std::sync::Arc;

use crate::crd::{CustomResource, CustomTable};

/// A subresource beside the main object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`: writes only `.status`; the main resource's writes leave it alone.
    Status,
    /// `/scale`: `autoscaling/v1 Scale` over `.spec.replicas`.
    Scale,
    /// `pods/binding`: the scheduler's assignment of a node.
    Binding,
    /// `pods/eviction`: a delete that `kubectl drain` asks for.
    Eviction,
    /// `serviceaccounts/token`: a TokenRequest for the account.
    Token,
    /// `namespaces/finalize`: writes only `spec.finalizers` (the namespace controller's).
    Finalize,
    /// `certificatesigningrequests/approval`: writes only the Approved/Denied conditions.
    Approval,
    /// `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward`: proxied to the node agent
    /// ([`crate::node_proxy`]).
    Log,
    /// See [`Subresource::Log`].
    Exec,
    /// See [`Subresource::Log`].
    Attach,
    /// See [`Subresource::Log`].
    PortForward,
}

impl Subresource {
    /// Whether it is a stream proxied to the node agent (no object is read or written, so it
    /// has no schema and no protobuf form).
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Subresource::Log | Subresource::Exec | Subresource::Attach | Subresource::PortForward
        )
    }

    /// Its name in paths and discovery.
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Token => "token",
            Subresource::Finalize => "finalize",
            Subresource::Approval => "approval",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
        }
    }
}

/// One served resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group, "" for core.
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural name, as in paths.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// kubectl's short names.
    pub short_names: &'static [&'static str],
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Categories (`all` for `kubectl get all`).
    pub categories: &'static [&'static str],
    /// Subresources.
    pub subresources: &'static [Subresource],
    /// The key prefix under `/registry/` (the plural for most; distinct where two groups share
    /// a plural).
    pub storage_name: &'static str,
    /// What a CustomResourceDefinition says of a custom resource (`None` for built-ins).
    pub custom: Option<Arc<CustomResource>>,
}

impl Resource {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether it has a `/status` subresource (and so a spec/status split).
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&Subresource::Status)
    }

    /// Whether it has `sub`.
    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The key prefix of every object of this resource.
    pub fn prefix(&self) -> String {
        format!("/registry/{}/", self.storage_name)
    }

    /// The key prefix of the objects in `namespace` (the whole resource when `None`).
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.prefix()),
            _ => self.prefix(),
        }
    }

    /// The key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.namespace_prefix(namespace))
    }
}

use Subresource::*;

const NO_NAMES: &[&str] = &[];
const ALL: &[&str] = &["all"];

macro_rules! resource {
    ($group:expr, $version:expr, $plural:expr, $singular:expr, $kind:expr, $short:expr,
     $namespaced:expr, $categories:expr, $subs:expr) => {
        resource!(
            $group,
            $version,
            $plural,
            $singular,
            $kind,
            $short,
            $namespaced,
            $categories,
            $subs,
            $plural
        )
    };
    ($group:expr, $version:expr, $plural:expr, $singular:expr, $kind:expr, $short:expr,
     $namespaced:expr, $categories:expr, $subs:expr, $storage:expr) => {
        Resource {
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            short_names: $short,
            namespaced: $namespaced,
            categories: $categories,
            subresources: $subs,
            storage_name: $storage,
            custom: None,
        }
    };
}

/// Every built-in resource, in discovery order: group, version, plural, singular, kind, short
/// names, namespaced, categories, subresources (and a storage name where two groups share a plural).
#[rustfmt::skip]
pub static BUILT_IN: &[Resource] = &[
    resource!("", "v1", "namespaces", "namespace", "Namespace", &["ns"], false, NO_NAMES, &[Status, Finalize]),
    resource!("", "v1", "nodes", "node", "Node", &["no"], false, NO_NAMES, &[Status]),
    resource!("", "v1", "pods", "pod", "Pod", &["po"], true, ALL, &[Status, Binding, Eviction, Log, Exec, Attach, PortForward]),
    resource!("", "v1", "services", "service", "Service", &["svc"], true, ALL, &[Status]),
    resource!("", "v1", "endpoints", "endpoints", "Endpoints", &["ep"], true, NO_NAMES, &[]),
    resource!("", "v1", "configmaps", "configmap", "ConfigMap", &["cm"], true, NO_NAMES, &[]),
    resource!("", "v1", "secrets", "secret", "Secret", NO_NAMES, true, NO_NAMES, &[]),
    resource!("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", &["sa"], true, NO_NAMES, &[Token]),
    resource!("", "v1", "events", "event", "Event", &["ev"], true, NO_NAMES, &[]),
    resource!("", "v1", "limitranges", "limitrange", "LimitRange", &["limits"], true, NO_NAMES, &[]),
    resource!("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", &["quota"], true, NO_NAMES, &[Status]),
    resource!("apps", "v1", "deployments", "deployment", "Deployment", &["deploy"], true, ALL, &[Status, Scale]),
    resource!("apps", "v1", "replicasets", "replicaset", "ReplicaSet", &["rs"], true, ALL, &[Status, Scale]),
    resource!("apps", "v1", "daemonsets", "daemonset", "DaemonSet", &["ds"], true, ALL, &[Status]),
    resource!("apps", "v1", "statefulsets", "statefulset", "StatefulSet", &["sts"], true, ALL, &[Status, Scale]),
    resource!("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", NO_NAMES, true, NO_NAMES, &[]),
    resource!("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", &["crd", "crds"], false, &["api-extensions"], &[Status]),
    resource!("batch", "v1", "jobs", "job", "Job", NO_NAMES, true, ALL, &[Status]),
    resource!("batch", "v1", "cronjobs", "cronjob", "CronJob", &["cj"], true, ALL, &[Status]),
    resource!("certificates.k8s.io", "v1", "certificatesigningrequests", "certificatesigningrequest", "CertificateSigningRequest", &["csr"], false, NO_NAMES, &[Status, Approval]),
    resource!("coordination.k8s.io", "v1", "leases", "lease", "Lease", NO_NAMES, true, NO_NAMES, &[]),
    resource!("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", NO_NAMES, true, NO_NAMES, &[]),
    resource!("events.k8s.io", "v1", "events", "event", "Event", &["ev"], true, NO_NAMES, &[], "events.k8s.io/events"),
    resource!("node.k8s.io", "v1", "runtimeclasses", "runtimeclass", "RuntimeClass", NO_NAMES, false, NO_NAMES, &[]),
    resource!("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", NO_NAMES, false, NO_NAMES, &[]),
    resource!("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", NO_NAMES, false, NO_NAMES, &[]),
    resource!("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", NO_NAMES, true, NO_NAMES, &[]),
    resource!("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", NO_NAMES, true, NO_NAMES, &[]),
    resource!("scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", &["pc"], false, NO_NAMES, &[]),
    resource!("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", &["pdb"], true, NO_NAMES, &[Status]),
];

/// The served resources, looked up by group, version and plural: the static table, then the
/// custom resources of the established CustomResourceDefinitions.
#[derive(Clone, Debug)]
pub struct Registry {
    resources: Vec<Resource>,
    custom: CustomTable,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            resources: BUILT_IN.to_vec(),
            custom: CustomTable::default(),
        }
    }
}

impl Registry {
    /// The built-in resources and the custom ones `custom` holds (it changes as CRDs do).
    pub fn with_custom(custom: CustomTable) -> Registry {
        Registry {
            custom,
            ..Registry::default()
        }
    }

    /// The custom resources' table.
    pub fn custom(&self) -> &CustomTable {
        &self.custom
    }

    /// The built-in resources, in discovery order.
    pub fn built_in(&self) -> &[Resource] {
        &self.resources
    }

    /// Every resource, in discovery order (custom resources last).
    pub fn resources(&self) -> Vec<Resource> {
        let mut all = self.resources.clone();
        all.extend(self.custom.resources());
        all
    }

    /// The resource at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
            .or_else(|| self.custom.find(group, version, plural))
    }

    /// The groups, each with its versions, in discovery order (core first; a custom group's
    /// versions by kube's version priority, so the first is the preferred one).
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for resource in self.resources() {
            match groups.iter_mut().find(|(g, _)| *g == resource.group) {
                Some((_, versions)) if !versions.contains(&resource.version) => {
                    versions.push(resource.version)
                }
                Some(_) => {}
                None => groups.push((resource.group, vec![resource.version])),
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by(|a, b| crate::crd::version_priority(a, b));
        }
        groups
    }

    /// The resources of one group version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Resource> {
        self.resources()
            .into_iter()
            .filter(move |r| r.group == group && r.version == version)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_kubernetes_layout() {
        let registry = Registry::default();
        let pods = registry.find("", "v1", "pods").unwrap();
        assert_eq!(pods.key(Some("default"), "x"), "/registry/pods/default/x");
        let nodes = registry.find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key(Some("ignored"), "n1"), "/registry/nodes/n1");
        let events = registry.find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(events.prefix(), "/registry/events.k8s.io/events/");
    }

    #[test]
    fn no_two_resources_share_a_prefix() {
        let registry = Registry::default();
        let mut prefixes: Vec<String> = registry.resources().iter().map(Resource::prefix).collect();
        prefixes.sort();
        for pair in prefixes.windows(2) {
            assert!(!pair[1].starts_with(&pair[0]), "{pair:?}");
        }
        assert_eq!(registry.groups()[0], ("", vec!["v1"]));
    }
}
