//! Strategic merge patch: the strategy table. kube reads a list's strategy from the
//! `patchStrategy`/`patchMergeKey` tags of its Go types; this server has no Go types, so
//! [`merge_strategy`] answers for each kind and path of field names from the object root.

/// How a field merges, from the `patchStrategy`/`patchMergeKey` tags of the
/// Go type that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Strategy {
    /// No tag: maps merge key by key, lists are replaced whole.
    Untagged,
    /// `patchStrategy:"merge"` with `patchMergeKey`: a list of objects merged
    /// item by item on this key.
    MergeKey(&'static str),
    /// `patchStrategy:"merge"` on a list of scalars: a set union.
    MergeSet,
    /// `patchStrategy:"replace"` on an object: the patch value replaces it.
    Replace,
}

/// Kinds that kube-apiserver serves from Go types, so strategic merge patch is
/// accepted for them. Any other kind is taken to be a custom resource.
pub(super) const BUILT_IN_KINDS: &[&str] = &[
    // core/v1
    "Binding",
    "ComponentStatus",
    "ConfigMap",
    "Endpoints",
    "Event",
    "LimitRange",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Pod",
    "PodTemplate",
    "ReplicationController",
    "ResourceQuota",
    "Secret",
    "Service",
    "ServiceAccount",
    // apps, batch, autoscaling, policy
    "ControllerRevision",
    "CronJob",
    "DaemonSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Job",
    "PodDisruptionBudget",
    "ReplicaSet",
    "Scale",
    "StatefulSet",
    // coordination, discovery, networking, node, scheduling
    "EndpointSlice",
    "Ingress",
    "IngressClass",
    "Lease",
    "NetworkPolicy",
    "PriorityClass",
    "RuntimeClass",
    // rbac, storage, certificates
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "CSIDriver",
    "CSINode",
    "CSIStorageCapacity",
    "Role",
    "RoleBinding",
    "StorageClass",
    "VolumeAttachment",
    // admission, flow control, API extension
    "APIService",
    "CustomResourceDefinition",
    "FlowSchema",
    "MutatingWebhookConfiguration",
    "PriorityLevelConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
];

/// The strategy of the field at `path` (field names from the object root, list
/// indices left out) in an object of `kind`, transcribed from the struct tags
/// in k8s.io/api v0.32 `*/v1/types.go` and apimachinery's `ObjectMeta`.
///
/// `patchStrategy:"retainKeys"` (Deployment `spec.strategy`, PodSpec
/// `volumes`, `resourceClaims`) needs no entry: the server obeys a
/// `$retainKeys` directive wherever the client put one. Lists not listed here
/// (`tolerations`, `args`, `command`, `envFrom`, `resizePolicy`, `taints`,
/// `containerStatuses`, …) carry no tag and are replaced whole.
pub(super) fn merge_strategy(kind: &str, path: &[&str]) -> Strategy {
    use Strategy::{MergeKey, Replace, Untagged};
    if let ["metadata", rest @ ..] = path {
        return object_meta_strategy(rest);
    }
    match (kind, path) {
        ("Pod", ["spec", rest @ ..]) => pod_spec_strategy(rest),
        ("Pod", ["status", rest @ ..]) => pod_status_strategy(rest),
        ("PodTemplate", ["template", rest @ ..]) => pod_template_strategy(rest),
        (
            "Deployment"
            | "ReplicaSet"
            | "DaemonSet"
            | "StatefulSet"
            | "Job"
            | "ReplicationController",
            ["spec", "template", rest @ ..],
        ) => pod_template_strategy(rest),
        ("CronJob", ["spec", "jobTemplate", "metadata", rest @ ..]) => object_meta_strategy(rest),
        ("CronJob", ["spec", "jobTemplate", "spec", "template", rest @ ..]) => {
            pod_template_strategy(rest)
        }
        (
            "Deployment"
            | "ReplicaSet"
            | "DaemonSet"
            | "StatefulSet"
            | "Job"
            | "ReplicationController"
            | "Node"
            | "Service"
            | "Namespace"
            | "PersistentVolumeClaim"
            | "PodDisruptionBudget"
            | "HorizontalPodAutoscaler"
            | "FlowSchema"
            | "PriorityLevelConfiguration",
            ["status", "conditions"],
        ) => MergeKey("type"),
        ("ComponentStatus", ["conditions"]) => MergeKey("type"),
        ("Node", ["spec", "podCIDRs"]) => Strategy::MergeSet,
        ("Node", ["status", "addresses"]) => MergeKey("type"),
        ("Service", ["spec", "ports"]) => MergeKey("port"),
        ("ServiceAccount", ["secrets"]) => MergeKey("name"),
        ("PodDisruptionBudget", ["spec", "selector"]) => Replace,
        ("CSINode", ["spec", "drivers"]) => MergeKey("name"),
        (
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
            ["webhooks"] | ["webhooks", "matchConditions"],
        ) => MergeKey("name"),
        ("ValidatingAdmissionPolicy", ["spec", "matchConditions" | "variables"]) => {
            MergeKey("name")
        }
        _ => Untagged,
    }
}

/// The struct tags of the field at `path` in `kind` as kube's OpenAPI publishes them:
/// `x-kubernetes-patch-strategy` (`merge`, `replace`, `retainKeys`, `merge,retainKeys`) and
/// `x-kubernetes-patch-merge-key`. kubectl computes the strategic merge patches of `apply`
/// from them, so they must say what this server applies. `None` for an untagged field.
pub fn patch_tags(kind: &str, path: &[&str]) -> Option<(&'static str, Option<&'static str>)> {
    let retain_keys = retains_keys(kind, path);
    match merge_strategy(kind, path) {
        Strategy::MergeKey(key) if retain_keys => Some(("merge,retainKeys", Some(key))),
        Strategy::MergeKey(key) => Some(("merge", Some(key))),
        Strategy::MergeSet => Some(("merge", None)),
        Strategy::Replace => Some(("replace", None)),
        Strategy::Untagged if retain_keys => Some(("retainKeys", None)),
        Strategy::Untagged => None,
    }
}

/// The fields tagged `patchStrategy:"retainKeys"`: Deployment `spec.strategy`, and a pod
/// spec's `volumes` and `resourceClaims` wherever one is. The merge itself needs no table for
/// them (the `$retainKeys` directive says it all); clients need it to send the directive.
fn retains_keys(kind: &str, path: &[&str]) -> bool {
    let pod_spec: &[&str] = match (kind, path) {
        ("Deployment", ["spec", "strategy"]) => return true,
        ("Pod", ["spec", rest @ ..]) => rest,
        ("PodTemplate", ["template", "spec", rest @ ..]) => rest,
        (
            "Deployment"
            | "ReplicaSet"
            | "DaemonSet"
            | "StatefulSet"
            | "Job"
            | "ReplicationController",
            ["spec", "template", "spec", rest @ ..],
        ) => rest,
        ("CronJob", ["spec", "jobTemplate", "spec", "template", "spec", rest @ ..]) => rest,
        _ => return false,
    };
    matches!(pod_spec, ["volumes" | "resourceClaims"])
}

/// `ObjectMeta`, wherever an object or template carries one.
fn object_meta_strategy(path: &[&str]) -> Strategy {
    match path {
        ["ownerReferences"] => Strategy::MergeKey("uid"),
        ["finalizers"] => Strategy::MergeSet,
        _ => Strategy::Untagged,
    }
}

/// `PodTemplateSpec`: `metadata` and `spec`.
fn pod_template_strategy(path: &[&str]) -> Strategy {
    match path {
        ["metadata", rest @ ..] => object_meta_strategy(rest),
        ["spec", rest @ ..] => pod_spec_strategy(rest),
        _ => Strategy::Untagged,
    }
}

fn pod_spec_strategy(path: &[&str]) -> Strategy {
    use Strategy::{MergeKey, Untagged};
    match path {
        ["containers" | "initContainers" | "ephemeralContainers"] => MergeKey("name"),
        ["containers" | "initContainers" | "ephemeralContainers", rest @ ..] => {
            container_strategy(rest)
        }
        ["volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims"] => MergeKey("name"),
        ["volumes", "ephemeral", "volumeClaimTemplate", "metadata", rest @ ..] => {
            object_meta_strategy(rest)
        }
        ["hostAliases"] => MergeKey("ip"),
        ["topologySpreadConstraints"] => MergeKey("topologyKey"),
        _ => Untagged,
    }
}

/// `Container` and `EphemeralContainerCommon`.
fn container_strategy(path: &[&str]) -> Strategy {
    match path {
        ["ports"] => Strategy::MergeKey("containerPort"),
        ["env"] => Strategy::MergeKey("name"),
        ["volumeMounts"] => Strategy::MergeKey("mountPath"),
        ["volumeDevices"] => Strategy::MergeKey("devicePath"),
        _ => Strategy::Untagged,
    }
}

fn pod_status_strategy(path: &[&str]) -> Strategy {
    match path {
        ["conditions"] => Strategy::MergeKey("type"),
        ["hostIPs" | "podIPs"] => Strategy::MergeKey("ip"),
        ["resourceClaimStatuses"] => Strategy::MergeKey("name"),
        _ => Strategy::Untagged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::fixtures::smp;
    use serde_json::json;

    #[test]
    fn node_pod_cidrs_union_and_addresses_merge_by_type() {
        let node = json!({
            "spec": {"podCIDRs": ["169.254.0.0/24"]},
            "status": {"addresses": [{"type": "InternalIP", "address": "169.254.1.1"}, {"type": "Hostname", "address": "n1"}]}
        });
        let result = smp(
            "Node",
            node,
            json!({
                "spec": {"podCIDRs": ["fd00::/64"]},
                "status": {"addresses": [{"type": "InternalIP", "address": "169.254.1.2"}]}
            }),
        );
        assert_eq!(
            result["spec"]["podCIDRs"],
            json!(["fd00::/64", "169.254.0.0/24"])
        );
        assert_eq!(
            result["status"]["addresses"],
            json!([{"type": "InternalIP", "address": "169.254.1.2"}, {"type": "Hostname", "address": "n1"}])
        );
    }

    #[test]
    fn pod_status_conditions_merge_by_type() {
        let pod = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}
        ]}});
        let result = smp(
            "Pod",
            pod,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            result["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
    }

    #[test]
    fn service_ports_merge_by_port_and_owner_references_by_uid() {
        let svc = json!({
            "metadata": {"ownerReferences": [{"uid": "u1", "name": "a"}]},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}
        });
        let result = smp(
            "Service",
            svc,
            json!({
                "metadata": {"ownerReferences": [{"uid": "u1", "controller": true}]},
                "spec": {"ports": [{"port": 80, "targetPort": 9090}]}
            }),
        );
        assert_eq!(
            result["metadata"]["ownerReferences"],
            json!([{"uid": "u1", "name": "a", "controller": true}])
        );
        assert_eq!(
            result["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
    }

    #[test]
    fn untagged_lists_are_replaced_whole() {
        let pod = json!({"spec": {
            "tolerations": [{"key": "a"}, {"key": "b"}],
            "containers": [{"name": "c", "args": ["1", "2"], "resizePolicy": [{"resourceName": "cpu"}]}]
        }});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {
                "tolerations": [{"key": "b", "effect": "NoSchedule"}],
                "containers": [{"name": "c", "args": ["3"], "resizePolicy": [{"resourceName": "memory"}]}]
            }}),
        );
        assert_eq!(
            result["spec"]["tolerations"],
            json!([{"key": "b", "effect": "NoSchedule"}])
        );
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "c", "args": ["3"], "resizePolicy": [{"resourceName": "memory"}]}])
        );
    }

    #[test]
    fn cron_job_containers_merge_deep_in_the_job_template() {
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
            {"name": "a", "env": [{"name": "X", "value": "1"}]}, {"name": "b"}
        ]}}}}}});
        let result = smp(
            "CronJob",
            cron,
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "a", "env": [{"name": "Y", "value": "2"}]}
            ]}}}}}}),
        );
        assert_eq!(
            result["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]}, {"name": "b"}])
        );
    }

    #[test]
    fn pdb_selector_is_replaced_not_merged() {
        let pdb = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}});
        let result = smp(
            "PodDisruptionBudget",
            pdb,
            json!({"spec": {"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}}),
        );
        assert_eq!(
            result["spec"],
            json!({"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}, "minAvailable": 1})
        );
    }

    #[test]
    fn strategy_table_follows_the_go_tags() {
        use Strategy::*;
        let cases: &[(&str, &[&str], Strategy)] = &[
            ("Pod", &["spec", "containers"], MergeKey("name")),
            (
                "Pod",
                &["spec", "ephemeralContainers", "env"],
                MergeKey("name"),
            ),
            (
                "Pod",
                &["spec", "containers", "ports"],
                MergeKey("containerPort"),
            ),
            (
                "Pod",
                &["spec", "initContainers", "volumeMounts"],
                MergeKey("mountPath"),
            ),
            (
                "Pod",
                &["spec", "containers", "volumeDevices"],
                MergeKey("devicePath"),
            ),
            ("Pod", &["spec", "containers", "resizePolicy"], Untagged),
            ("Pod", &["spec", "containers", "args"], Untagged),
            ("Pod", &["spec", "volumes"], MergeKey("name")),
            ("Pod", &["spec", "imagePullSecrets"], MergeKey("name")),
            ("Pod", &["spec", "hostAliases"], MergeKey("ip")),
            (
                "Pod",
                &["spec", "topologySpreadConstraints"],
                MergeKey("topologyKey"),
            ),
            ("Pod", &["spec", "schedulingGates"], MergeKey("name")),
            ("Pod", &["spec", "tolerations"], Untagged),
            ("Pod", &["status", "conditions"], MergeKey("type")),
            ("Pod", &["status", "podIPs"], MergeKey("ip")),
            ("Pod", &["metadata", "ownerReferences"], MergeKey("uid")),
            ("ConfigMap", &["metadata", "finalizers"], MergeSet),
            (
                "Deployment",
                &["spec", "template", "spec", "containers", "env"],
                MergeKey("name"),
            ),
            (
                "Deployment",
                &["spec", "template", "metadata", "finalizers"],
                MergeSet,
            ),
            (
                "StatefulSet",
                &["spec", "template", "spec", "volumes"],
                MergeKey("name"),
            ),
            (
                "Job",
                &["spec", "template", "spec", "initContainers"],
                MergeKey("name"),
            ),
            ("Job", &["status", "conditions"], MergeKey("type")),
            (
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers",
                ],
                MergeKey("name"),
            ),
            (
                "CronJob",
                &["spec", "template", "spec", "containers"],
                Untagged,
            ),
            ("DaemonSet", &["status", "conditions"], MergeKey("type")),
            ("Node", &["spec", "podCIDRs"], MergeSet),
            ("Node", &["spec", "taints"], Untagged),
            ("Node", &["status", "addresses"], MergeKey("type")),
            ("Service", &["spec", "ports"], MergeKey("port")),
            ("ServiceAccount", &["secrets"], MergeKey("name")),
            ("PodDisruptionBudget", &["spec", "selector"], Replace),
            ("EndpointSlice", &["endpoints"], Untagged),
            ("Endpoints", &["subsets"], Untagged),
        ];
        for (kind, path, expected) in cases {
            assert_eq!(merge_strategy(kind, path), *expected, "{kind} {path:?}");
        }
    }
}
