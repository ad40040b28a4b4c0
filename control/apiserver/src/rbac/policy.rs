//! The bootstrap policy: the ClusterRoles and ClusterRoleBindings every cluster starts with,
//! after kube's `plugin/pkg/auth/authorizer/rbac/bootstrappolicy` (written here as a table of
//! keel's own: the roles kube ships that keel's components and users need).
//!
//! keel's controller manager runs every controller under one identity
//! (`system:kube-controller-manager`, as kube-controller-manager does without
//! `--use-service-account-credentials`), so its role is the union of the controller roles kube
//! gives each controller its own service account for: read and write every kind (the
//! garbage collector and namespace controller act on all of them) and create the kinds the
//! workload, endpoint and service account controllers make.

use serde_json::{json, Value};

use super::rules::PolicyRule;

/// The label kube puts on every bootstrap object.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
/// The annotation that lets reconciliation update a bootstrap object (`"false"`: leave it).
pub const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
const EVENTS_WRITE: &[&str] = &["create", "update", "patch"];

fn r(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule::resource(verbs, groups, resources)
}

fn events_rule() -> Vec<PolicyRule> {
    vec![r(EVENTS_WRITE, &["", "events.k8s.io"], &["events"])]
}

/// One bootstrap ClusterRole: its name, rules, the labels it carries and, for the aggregated
/// ones, the label its aggregationRule selects.
pub struct BootstrapRole {
    /// Name.
    pub name: &'static str,
    /// Rules (empty for aggregated roles, whose rules the aggregation fills).
    pub rules: Vec<PolicyRule>,
    /// Labels besides the bootstrap label (`aggregate-to-*`).
    pub labels: Vec<(&'static str, &'static str)>,
    /// The label selecting the roles aggregated into this one.
    pub aggregate_from: Option<&'static str>,
}

fn role(name: &'static str, rules: Vec<PolicyRule>) -> BootstrapRole {
    BootstrapRole {
        name,
        rules,
        labels: Vec::new(),
        aggregate_from: None,
    }
}

fn labelled(mut role: BootstrapRole, label: &'static str) -> BootstrapRole {
    role.labels.push((label, "true"));
    role
}

fn aggregated(name: &'static str, from: &'static str) -> BootstrapRole {
    BootstrapRole {
        aggregate_from: Some(from),
        ..role(name, Vec::new())
    }
}

const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

fn view_rules() -> Vec<PolicyRule> {
    vec![
        r(
            READ,
            &[""],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        r(
            READ,
            &[""],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        r(READ, &[""], &["namespaces"]),
        r(READ, &["discovery.k8s.io"], &["endpointslices"]),
        r(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
            ],
        ),
        r(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        r(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        r(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        r(
            READ,
            &["networking.k8s.io"],
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
    ]
}

fn edit_rules() -> Vec<PolicyRule> {
    vec![
        r(&["impersonate"], &[""], &["serviceaccounts"]),
        r(
            WRITE,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        r(&["create"], &[""], &["pods/eviction"]),
        r(
            WRITE,
            &[""],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
            ],
        ),
        r(&["create"], &[""], &["serviceaccounts/token"]),
        r(
            WRITE,
            &["apps"],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        r(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        r(WRITE, &["batch"], &["cronjobs", "jobs"]),
        r(WRITE, &["policy"], &["poddisruptionbudgets"]),
        r(
            WRITE,
            &["networking.k8s.io"],
            &["networkpolicies", "ingresses"],
        ),
        r(&["create"], &["coordination.k8s.io"], &["leases"]),
        r(
            READ,
            &[""],
            &[
                "secrets",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "services/proxy",
            ],
        ),
    ]
}

fn admin_rules() -> Vec<PolicyRule> {
    vec![
        r(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
        ),
        r(
            READ_WRITE,
            &["rbac.authorization.k8s.io"],
            &["roles", "rolebindings"],
        ),
    ]
}

fn scheduler_rules() -> Vec<PolicyRule> {
    let mut rules = events_rule();
    rules.extend([
        r(&["create"], &["coordination.k8s.io"], &["leases"]),
        r(&["get", "update"], &["coordination.k8s.io"], &["leases"])
            .named(&["kube-scheduler", "keel-scheduler"]),
        r(&["create"], &[""], &["endpoints"]),
        r(&["get", "update"], &[""], &["endpoints"]).named(&["kube-scheduler"]),
        r(READ, &[""], &["nodes"]),
        r(&["get", "list", "watch", "delete"], &[""], &["pods"]),
        r(&["create"], &[""], &["bindings", "pods/binding"]),
        r(&["patch", "update"], &[""], &["pods/status"]),
        r(
            READ,
            &[""],
            &[
                "replicationcontrollers",
                "services",
                "namespaces",
                "persistentvolumeclaims",
                "persistentvolumes",
            ],
        ),
        r(READ, &["apps"], &["replicasets", "statefulsets"]),
        r(READ, &["policy"], &["poddisruptionbudgets"]),
        r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        r(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
        ),
        r(
            READ,
            &["storage.k8s.io"],
            &[
                "csinodes",
                "csidrivers",
                "csistoragecapacities",
                "storageclasses",
            ],
        ),
    ]);
    rules
}

fn controller_manager_rules() -> Vec<PolicyRule> {
    let mut rules = events_rule();
    rules.extend([
        // Every controller's informers, the garbage collector's and namespace controller's
        // writes to any kind.
        r(
            &[
                "get",
                "list",
                "watch",
                "update",
                "patch",
                "delete",
                "deletecollection",
            ],
            &["*"],
            &["*"],
        ),
        r(
            &["create"],
            &[""],
            &[
                "pods",
                "endpoints",
                "secrets",
                "serviceaccounts",
                "configmaps",
                "serviceaccounts/token",
                "pods/eviction",
                "pods/binding",
                "bindings",
            ],
        ),
        r(
            &["create"],
            &["apps"],
            &["replicasets", "controllerrevisions"],
        ),
        r(&["create"], &["batch"], &["jobs"]),
        r(&["create"], &["discovery.k8s.io"], &["endpointslices"]),
        r(&["create"], &["coordination.k8s.io"], &["leases"]),
        r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        r(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
        ),
        r(
            &["create"],
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
        ),
        r(&["approve"], &["certificates.k8s.io"], &["signers"]).named(&[
            "kubernetes.io/kube-apiserver-client-kubelet",
            "kubernetes.io/kubelet-serving",
        ]),
        r(&["sign"], &["certificates.k8s.io"], &["signers"]).named(&[
            "kubernetes.io/kube-apiserver-client",
            "kubernetes.io/kube-apiserver-client-kubelet",
            "kubernetes.io/kubelet-serving",
            "kubernetes.io/legacy-unknown",
        ]),
    ]);
    rules
}

fn node_rules() -> Vec<PolicyRule> {
    let mut rules = events_rule();
    rules.extend([
        r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        r(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        r(READ, &[""], &["services"]),
        r(
            &["create", "get", "list", "watch", "patch", "update"],
            &[""],
            &["nodes"],
        ),
        r(&["patch", "update"], &[""], &["nodes/status"]),
        r(READ, &[""], &["pods"]),
        r(&["create", "delete"], &[""], &["pods"]),
        r(&["patch", "update"], &[""], &["pods/status"]),
        r(&["create"], &[""], &["pods/eviction"]),
        r(READ, &[""], &["secrets", "configmaps"]),
        r(
            &["get"],
            &[""],
            &["persistentvolumeclaims", "persistentvolumes", "endpoints"],
        ),
        r(
            &["get", "update", "patch"],
            &[""],
            &["persistentvolumeclaims/status"],
        ),
        r(
            &["create", "get", "list", "watch"],
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
        ),
        r(
            &["create", "delete", "get", "patch", "update"],
            &["coordination.k8s.io"],
            &["leases"],
        ),
        r(&["get"], &["storage.k8s.io"], &["volumeattachments"]),
        r(READ, &["storage.k8s.io"], &["csidrivers"]),
        r(
            &["create", "delete", "get", "patch", "update"],
            &["storage.k8s.io"],
            &["csinodes"],
        ),
        r(&["create"], &[""], &["serviceaccounts/token"]),
        r(READ, &["node.k8s.io"], &["runtimeclasses"]),
    ]);
    rules
}

fn csr_create(subresource: &str) -> PolicyRule {
    PolicyRule::resource(
        &["create"],
        &["certificates.k8s.io"],
        &[&format!("certificatesigningrequests/{subresource}")],
    )
}

/// The bootstrap ClusterRoles, in creation order (the roles aggregated into admin, edit and
/// view come before them).
pub fn cluster_roles() -> Vec<BootstrapRole> {
    let discovery_urls = &[
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    let public_urls = &["/healthz", "/livez", "/readyz", "/version", "/version/"];
    vec![
        role(
            "cluster-admin",
            vec![r(&["*"], &["*"], &["*"]), PolicyRule::urls(&["*"], &["*"])],
        ),
        role(
            "system:discovery",
            vec![PolicyRule::urls(&["get"], discovery_urls)],
        ),
        role(
            "system:public-info-viewer",
            vec![PolicyRule::urls(&["get"], public_urls)],
        ),
        role(
            "system:monitoring",
            vec![PolicyRule::urls(
                &["get"],
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
            )],
        ),
        role(
            "system:basic-user",
            vec![
                r(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
            ],
        ),
        role(
            "system:service-account-issuer-discovery",
            vec![PolicyRule::urls(
                &["get"],
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
            )],
        ),
        labelled(role("system:aggregate-to-view", view_rules()), TO_VIEW),
        labelled(role("system:aggregate-to-edit", edit_rules()), TO_EDIT),
        labelled(role("system:aggregate-to-admin", admin_rules()), TO_ADMIN),
        // view is aggregated into edit, and edit into admin, so each holds the one below it.
        aggregated("admin", TO_ADMIN),
        labelled(aggregated("edit", TO_EDIT), TO_ADMIN),
        labelled(aggregated("view", TO_VIEW), TO_EDIT),
        role("system:kube-scheduler", scheduler_rules()),
        role(
            "system:volume-scheduler",
            vec![
                r(
                    &["get", "list", "watch", "patch", "update"],
                    &[""],
                    &["persistentvolumes"],
                ),
                r(READ, &["storage.k8s.io"], &["storageclasses"]),
                r(
                    &["get", "list", "watch", "patch", "update"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
            ],
        ),
        role("system:kube-controller-manager", controller_manager_rules()),
        role("system:node", node_rules()),
        role("system:node-proxier", {
            let mut rules = events_rule();
            rules.extend([
                r(&["list", "watch"], &[""], &["services", "endpoints"]),
                r(READ, &[""], &["nodes"]),
                r(
                    &["list", "watch"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
            ]);
            rules
        }),
        role(
            "system:kube-dns",
            vec![
                r(&["list", "watch"], &[""], &["endpoints", "services"]),
                r(
                    &["list", "watch"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
            ],
        ),
        role(
            "system:node-bootstrapper",
            vec![r(
                &["create", "get", "list", "watch"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
            )],
        ),
        role(
            "system:auth-delegator",
            vec![
                r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![csr_create("nodeclient")],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![csr_create("selfnodeclient")],
        ),
        role(
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            vec![r(&["approve"], &["certificates.k8s.io"], &["signers"])
                .named(&["kubernetes.io/kube-apiserver-client"])],
        ),
        role(
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            vec![r(&["approve"], &["certificates.k8s.io"], &["signers"])
                .named(&["kubernetes.io/kube-apiserver-client-kubelet"])],
        ),
        role(
            "system:certificates.k8s.io:kubelet-serving-approver",
            vec![r(&["approve"], &["certificates.k8s.io"], &["signers"])
                .named(&["kubernetes.io/kubelet-serving"])],
        ),
        role(
            "system:certificates.k8s.io:legacy-unknown-approver",
            vec![r(&["approve"], &["certificates.k8s.io"], &["signers"])
                .named(&["kubernetes.io/legacy-unknown"])],
        ),
    ]
}

/// One bootstrap ClusterRoleBinding: name, role and subjects (kind, name, namespace).
pub struct BootstrapBinding {
    /// Name (and the ClusterRole it binds).
    pub name: &'static str,
    /// Subjects as (kind, name, namespace).
    pub subjects: Vec<(&'static str, &'static str, &'static str)>,
}

/// The bootstrap ClusterRoleBindings; each binds the ClusterRole of its own name.
pub fn cluster_role_bindings() -> Vec<BootstrapBinding> {
    let group = |name| ("Group", name, "");
    let user = |name| ("User", name, "");
    let binding = |name, subjects| BootstrapBinding { name, subjects };
    vec![
        binding("cluster-admin", vec![group(crate::auth::MASTERS)]),
        binding("system:discovery", vec![group("system:authenticated")]),
        binding("system:basic-user", vec![group("system:authenticated")]),
        binding(
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        binding("system:monitoring", vec![group("system:monitoring")]),
        binding(
            "system:service-account-issuer-discovery",
            vec![group("system:serviceaccounts")],
        ),
        binding("system:kube-scheduler", vec![user("system:kube-scheduler")]),
        binding(
            "system:volume-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        binding(
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        binding("system:node", vec![group("system:nodes")]),
        // `keel agent --proxy` does kube-proxy's job with the node's own credentials, so
        // nodes get kube-proxy's role beside kube-proxy's user.
        binding(
            "system:node-proxier",
            vec![user("system:kube-proxy"), group("system:nodes")],
        ),
        binding(
            "system:kube-dns",
            vec![("ServiceAccount", "kube-dns", "kube-system")],
        ),
        // Joining nodes, as kubeadm binds them: a bootstrap token may create CSRs, and its
        // node-client requests are auto-approved; a node may renew its own certificate.
        binding(
            "system:node-bootstrapper",
            vec![group(crate::auth::BOOTSTRAPPERS)],
        ),
        binding(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![group(crate::auth::BOOTSTRAPPERS)],
        ),
        binding(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![group(crate::auth::NODES)],
        ),
    ]
}

fn metadata(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut all = serde_json::Map::new();
    all.insert(BOOTSTRAP_LABEL.0.into(), json!(BOOTSTRAP_LABEL.1));
    for (k, v) in labels {
        all.insert((*k).into(), json!(v));
    }
    json!({"name": name, "labels": all, "annotations": {AUTOUPDATE: "true"}})
}

impl BootstrapRole {
    /// The ClusterRole object.
    pub fn to_object(&self) -> Value {
        let mut role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata(self.name, &self.labels),
            "rules": self.rules.iter().map(PolicyRule::to_json).collect::<Vec<_>>(),
        });
        if let Some(label) = self.aggregate_from {
            role["aggregationRule"] =
                json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
        }
        role
    }
}

impl BootstrapBinding {
    /// The ClusterRoleBinding object.
    pub fn to_object(&self) -> Value {
        let subjects: Vec<Value> = self
            .subjects
            .iter()
            .map(|(kind, name, namespace)| match *kind {
                "ServiceAccount" => json!({"kind": kind, "name": name, "namespace": namespace}),
                _ => json!({"kind": kind, "name": name, "apiGroup": "rbac.authorization.k8s.io"}),
            })
            .collect();
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata(self.name, &[]),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": self.name},
            "subjects": subjects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binding_names_a_bootstrap_role_and_every_object_validates() {
        let roles = cluster_roles();
        for binding in cluster_role_bindings() {
            assert!(
                roles.iter().any(|r| r.name == binding.name),
                "{}",
                binding.name
            );
            let object = binding.to_object();
            let errors = crate::admission::validate("ClusterRoleBinding", &object, None);
            assert!(errors.is_empty(), "{}: {errors:?}", binding.name);
        }
        for role in &roles {
            let errors = crate::admission::validate("ClusterRole", &role.to_object(), None);
            assert!(errors.is_empty(), "{}: {errors:?}", role.name);
        }
    }
}
