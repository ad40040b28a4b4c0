//! Server-side tables (`meta.k8s.io/v1` Table) shaped like kube-apiserver's.
//!
//! kubectl 1.32 has no client-side printers: `kubectl get` asks for
//! `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever columns
//! and cells the server returns.  So the columns, their order, priorities and
//! the cell text here follow kube's printers
//! (`pkg/printers/internalversion/printers.go`), which the apiserver always runs
//! in wide mode (priority-1 columns included, kubectl hides them unless
//! `-o wide`).  Kinds without a printer get kube's fallbacks: built-in kinds
//! the default `Name, Created At` table, custom resources the CRD default
//! `Name, Age` table.
//!
//! # Layout
//!
//! This file holds the public API ([`to_table`], [`IncludeObject`], [`human_duration`]),
//! the `Column` shape, the dispatch from kind to printer and the fallback tables; the
//! printers, one file per area, are:
//!
//! - `cells`: reading objects and the formatting kube's printers share (ages, labels,
//!   selectors, conditions, host:port).
//! - `pod`: Pods, PodTemplates and PodDisruptionBudgets.
//! - `workloads`: ReplicationControllers, ReplicaSets, DaemonSets, StatefulSets,
//!   Deployments, ControllerRevisions, Jobs and CronJobs.
//! - `networking`: Services, Endpoints, EndpointSlices, Ingresses, IngressClasses and
//!   NetworkPolicies.
//! - `core_kinds`: the other core/v1 kinds: Nodes, Namespaces, ConfigMaps, Secrets,
//!   ServiceAccounts, Events, ComponentStatuses and ResourceQuotas.
//! - `storage`: PersistentVolumes, PersistentVolumeClaims, StorageClasses,
//!   VolumeAttachments, CSINodes and CSIDrivers.
//! - `cluster`: the cluster machinery of the other groups: HorizontalPodAutoscalers,
//!   (Cluster)RoleBindings, CertificateSigningRequests, Leases, PriorityClasses,
//!   RuntimeClasses, admission webhooks and policies, and APIServices.

mod cells;
mod cluster;
mod core_kinds;
#[cfg(test)]
mod fixtures;
mod networking;
mod pod;
mod storage;
mod workloads;

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::go_format::go_quote;
use cells::{age, at, name, timestamp};
use cluster::{
    api_service_cells, csr_cells, hpa_cells, lease_cells, priority_class_cells, role_binding_cells,
    runtime_class_cells, vap_binding_cells, vap_cells, webhook_cells, API_SERVICE_COLUMNS,
    CSR_COLUMNS, HPA_COLUMNS, LEASE_COLUMNS, PRIORITY_CLASS_COLUMNS, ROLE_BINDING_COLUMNS,
    RUNTIME_CLASS_COLUMNS, VAP_BINDING_COLUMNS, VAP_COLUMNS, WEBHOOK_COLUMNS,
};
use core_kinds::{
    component_status_cells, config_map_cells, event_cells, namespace_cells, node_cells,
    resource_quota_cells, secret_cells, service_account_cells, COMPONENT_STATUS_COLUMNS,
    CONFIG_MAP_COLUMNS, EVENT_COLUMNS, NAMESPACE_COLUMNS, NODE_COLUMNS, RESOURCE_QUOTA_COLUMNS,
    SECRET_COLUMNS, SERVICE_ACCOUNT_COLUMNS,
};
use networking::{
    endpoint_slice_cells, endpoints_cells, ingress_cells, ingress_class_cells,
    network_policy_cells, service_cells, ENDPOINTS_COLUMNS, ENDPOINT_SLICE_COLUMNS,
    INGRESS_CLASS_COLUMNS, INGRESS_COLUMNS, NETWORK_POLICY_COLUMNS, SERVICE_COLUMNS,
};
use pod::{
    pdb_cells, pod_cells, pod_row_conditions, pod_template_cells, PDB_COLUMNS, POD_COLUMNS,
    POD_TEMPLATE_COLUMNS,
};
use storage::{
    csi_driver_cells, csi_node_cells, pv_cells, pvc_cells, storage_class_cells,
    volume_attachment_cells, CSI_DRIVER_COLUMNS, CSI_NODE_COLUMNS, PVC_COLUMNS, PV_COLUMNS,
    STORAGE_CLASS_COLUMNS, VOLUME_ATTACHMENT_COLUMNS,
};
use workloads::{
    controller_revision_cells, cron_job_cells, daemon_set_cells, deployment_cells, job_cells,
    rc_cells, replica_set_cells, stateful_set_cells, CONTROLLER_REVISION_COLUMNS, CRON_JOB_COLUMNS,
    DAEMON_SET_COLUMNS, DEPLOYMENT_COLUMNS, JOB_COLUMNS, RC_COLUMNS, REPLICA_SET_COLUMNS,
    STATEFUL_SET_COLUMNS,
};

/// What each row carries in `object` (the `includeObject` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No `object` key on rows.
    None,
    /// A `PartialObjectMetadata` holding the object's metadata (kube's default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Reads the `includeObject` parameter: `None`, `Metadata` or `Object`;
    /// absent or empty means `Metadata`.  Anything else gets kube's 400 text.
    pub fn parse(text: Option<&str>) -> Result<IncludeObject, String> {
        match text.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(format!(
                "Unable to convert to Table as requested: includeObject: Unsupported value: {}: supported values: \"Metadata\", \"None\", \"Object\"",
                go_quote(other)
            )),
        }
    }
}

/// A Table of `objects` of one kind. `api_version` is the objects' apiVersion (e.g. "apps/v1"),
/// `now_unix` the current time in seconds for AGE, `resource_version` the list's resourceVersion,
/// `with_definitions` false for watch events after the first.
///
/// kube-apiserver sends `columnDefinitions: null` on every watch event after
/// the first (it flips `NoHeaders` once headers went out), so that is what
/// `with_definitions == false` produces.  For a single object (a GET or a
/// watch event) pass the object's own resourceVersion, as kube does.
#[allow(clippy::too_many_arguments)]
pub fn to_table<O: std::borrow::Borrow<Value>>(
    kind: &str,
    api_version: &str,
    objects: &[O],
    include: IncludeObject,
    now_unix: i64,
    resource_version: &str,
    continue_token: Option<&str>,
    with_definitions: bool,
) -> Value {
    let printer = printer_for(kind, api_version);
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), Value::from(resource_version));
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), Value::from(token));
    }
    let column_definitions = if with_definitions {
        Value::Array(printer.columns.iter().map(Column::to_json).collect())
    } else {
        Value::Null
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let object: &Value = object.borrow();
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array((printer.cells)(object, now_unix)));
            if let Some(conditions) = (kind == "Pod").then(|| pod_row_conditions(object)).flatten() {
                row.insert("conditions".into(), conditions);
            }
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    let metadata = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
                    row.insert(
                        "object".into(),
                        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}),
                    );
                }
                IncludeObject::Object => {
                    let mut full = object.clone();
                    if let Value::Object(map) = &mut full {
                        // Stored objects may lack type meta; kube always sets it.
                        map.entry("kind").or_insert_with(|| Value::from(kind));
                        map.entry("apiVersion").or_insert_with(|| Value::from(api_version));
                    }
                    row.insert("object".into(), full);
                }
            }
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

/// kube's duration formatting for AGE ("5s", "3m20s", "2d3h", …) —
/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration` on whole seconds.
///
/// Negative durations of up to a second read "0s" (clock skew), longer ones
/// "<invalid>".  A missing timestamp prints "<unknown>", but that is decided
/// before a duration exists, so callers print it themselves.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i64,
}

impl Column {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const fn col(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
const AGE: Column = col("Age", "string", AGE_DESC);

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

/// Computes one row's cells from an object and the current time.
type CellsFn = fn(&Value, i64) -> Vec<Value>;

struct Printer {
    columns: &'static [Column],
    cells: CellsFn,
}

fn printer_for(kind: &str, api_version: &str) -> Printer {
    let (columns, cells): (&'static [Column], CellsFn) = match kind {
        "Pod" => (POD_COLUMNS, pod_cells),
        "PodTemplate" => (POD_TEMPLATE_COLUMNS, pod_template_cells),
        "PodDisruptionBudget" => (PDB_COLUMNS, pdb_cells),
        "ReplicationController" => (RC_COLUMNS, rc_cells),
        "ReplicaSet" => (REPLICA_SET_COLUMNS, replica_set_cells),
        "DaemonSet" => (DAEMON_SET_COLUMNS, daemon_set_cells),
        "Job" => (JOB_COLUMNS, job_cells),
        "CronJob" => (CRON_JOB_COLUMNS, cron_job_cells),
        "Service" => (SERVICE_COLUMNS, service_cells),
        "Ingress" => (INGRESS_COLUMNS, ingress_cells),
        "IngressClass" => (INGRESS_CLASS_COLUMNS, ingress_class_cells),
        "StatefulSet" => (STATEFUL_SET_COLUMNS, stateful_set_cells),
        "Endpoints" => (ENDPOINTS_COLUMNS, endpoints_cells),
        "Node" => (NODE_COLUMNS, node_cells),
        "Event" => (EVENT_COLUMNS, event_cells),
        "Namespace" => (NAMESPACE_COLUMNS, namespace_cells),
        "Secret" => (SECRET_COLUMNS, secret_cells),
        "ServiceAccount" => (SERVICE_ACCOUNT_COLUMNS, service_account_cells),
        "PersistentVolume" => (PV_COLUMNS, pv_cells),
        "PersistentVolumeClaim" => (PVC_COLUMNS, pvc_cells),
        "ComponentStatus" => (COMPONENT_STATUS_COLUMNS, component_status_cells),
        "Deployment" => (DEPLOYMENT_COLUMNS, deployment_cells),
        "HorizontalPodAutoscaler" => (HPA_COLUMNS, hpa_cells),
        "ConfigMap" => (CONFIG_MAP_COLUMNS, config_map_cells),
        "NetworkPolicy" => (NETWORK_POLICY_COLUMNS, network_policy_cells),
        "RoleBinding" | "ClusterRoleBinding" => (ROLE_BINDING_COLUMNS, role_binding_cells),
        "CertificateSigningRequest" => (CSR_COLUMNS, csr_cells),
        "Lease" => (LEASE_COLUMNS, lease_cells),
        "StorageClass" => (STORAGE_CLASS_COLUMNS, storage_class_cells),
        "ControllerRevision" => (CONTROLLER_REVISION_COLUMNS, controller_revision_cells),
        "ResourceQuota" => (RESOURCE_QUOTA_COLUMNS, resource_quota_cells),
        "PriorityClass" => (PRIORITY_CLASS_COLUMNS, priority_class_cells),
        "RuntimeClass" => (RUNTIME_CLASS_COLUMNS, runtime_class_cells),
        "VolumeAttachment" => (VOLUME_ATTACHMENT_COLUMNS, volume_attachment_cells),
        "EndpointSlice" => (ENDPOINT_SLICE_COLUMNS, endpoint_slice_cells),
        "CSINode" => (CSI_NODE_COLUMNS, csi_node_cells),
        "CSIDriver" => (CSI_DRIVER_COLUMNS, csi_driver_cells),
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
            (WEBHOOK_COLUMNS, webhook_cells)
        }
        "ValidatingAdmissionPolicy" => (VAP_COLUMNS, vap_cells),
        "ValidatingAdmissionPolicyBinding" => (VAP_BINDING_COLUMNS, vap_binding_cells),
        "APIService" => (API_SERVICE_COLUMNS, api_service_cells),
        _ if is_builtin_api(api_version) => (DEFAULT_COLUMNS, default_cells),
        _ => (CUSTOM_RESOURCE_COLUMNS, custom_resource_cells),
    };
    Printer { columns, cells }
}

/// Groups served by kube-apiserver itself.  Custom resource groups must contain
/// a dot, so dotless groups are always built in.
const BUILTIN_GROUPS: &[&str] = &[
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

fn is_builtin_api(api_version: &str) -> bool {
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    !group.contains('.') || BUILTIN_GROUPS.contains(&group)
}

/// rest.NewDefaultTableConvertor, used by built-in kinds without a printer
/// (ClusterRole, Role, LimitRange, CustomResourceDefinition, ...).
const DEFAULT_COLUMNS: &[Column] = &[NAME, col("Created At", "date", AGE_DESC)];

fn default_cells(object: &Value, _now: i64) -> Vec<Value> {
    let created = timestamp(at(object, &["metadata", "creationTimestamp"]))
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![name(object), Value::from(created)]
}

/// The table of a custom resource whose CRD declares no printer columns: the
/// apiextensions server adds an Age column of type "date".
const CUSTOM_RESOURCE_COLUMNS: &[Column] = &[NAME, col("Age", "date", AGE_DESC)];

fn custom_resource_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![name(object), age(object, now)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::fixtures::{ago, cells, column_names, tab, visible_columns, NOW};

    #[test]
    fn human_duration_boundaries() {
        let cases = [
            (-5, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60 * 5 + 7, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 3599, "47h"),
            (48 * 3600, "2d"),
            (2 * 86400 + 3 * 3600, "2d3h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400, "8y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds}s");
        }
    }

    #[test]
    fn include_object_parsing() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        assert_eq!(IncludeObject::default(), IncludeObject::Metadata);
        assert_eq!(
            IncludeObject::parse(Some("All")).unwrap_err(),
            "Unable to convert to Table as requested: includeObject: Unsupported value: \"All\": supported values: \"Metadata\", \"None\", \"Object\""
        );
    }

    #[test]
    fn table_envelope_and_row_objects() {
        let pod =
            json!({"metadata": {"name": "p", "namespace": "ns", "creationTimestamp": ago(10)}});
        let metadata = to_table(
            "Pod",
            "v1",
            std::slice::from_ref(&pod),
            IncludeObject::Metadata,
            NOW,
            "42",
            Some("tok"),
            true,
        );
        assert_eq!(metadata["kind"], "Table");
        assert_eq!(metadata["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            metadata["metadata"],
            json!({"resourceVersion": "42", "continue": "tok"})
        );
        assert_eq!(
            metadata["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": pod["metadata"]})
        );
        let first = &metadata["columnDefinitions"][0];
        assert_eq!(
            first,
            &json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0})
        );

        let full = to_table(
            "Pod",
            "v1",
            std::slice::from_ref(&pod),
            IncludeObject::Object,
            NOW,
            "",
            None,
            false,
        );
        assert_eq!(full["rows"][0]["object"]["kind"], "Pod");
        assert_eq!(full["rows"][0]["object"]["apiVersion"], "v1");
        assert_eq!(full["rows"][0]["object"]["metadata"]["name"], "p");
        assert_eq!(full["metadata"], json!({}));
        assert!(
            full["columnDefinitions"].is_null(),
            "later watch events carry no definitions"
        );

        let bare = to_table(
            "Pod",
            "v1",
            &[pod],
            IncludeObject::None,
            NOW,
            "1",
            None,
            true,
        );
        assert!(bare["rows"][0].get("object").is_none());
        assert!(
            to_table::<Value>("Pod", "v1", &[], IncludeObject::None, NOW, "1", None, true)["rows"]
                .as_array()
                .expect("rows")
                .is_empty()
        );
    }

    #[test]
    fn fallback_tables() {
        let crd = json!({"metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        let table = tab("CustomResourceDefinition", "apiextensions.k8s.io/v1", crd);
        assert_eq!(column_names(&table), ["Name", "Created At"]);
        assert_eq!(table["columnDefinitions"][1]["type"], "date");
        assert_eq!(
            cells(&table),
            vec![json!("widgets.example.com"), json!("2024-01-02T03:04:05Z")]
        );

        let role = tab(
            "ClusterRole",
            "rbac.authorization.k8s.io/v1",
            json!({"metadata": {"name": "r"}}),
        );
        assert_eq!(cells(&role)[1], "0001-01-01T00:00:00Z");

        let widget = json!({"metadata": {"name": "w", "creationTimestamp": ago(90)}});
        let table = tab("Widget", "example.com/v1", widget);
        assert_eq!(column_names(&table), ["Name", "Age"]);
        assert_eq!(table["columnDefinitions"][1]["type"], "date");
        assert_eq!(cells(&table), vec![json!("w"), json!("90s")]);
    }

    #[test]
    fn other_printers() {
        let cron = tab(
            "CronJob",
            "batch/v1",
            json!({"spec": {"schedule": "*/5 * * * *", "suspend": false}, "status": {"active": [{}]}}),
        );
        assert_eq!(
            visible_columns(&cron),
            [
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age"
            ]
        );
        assert_eq!(
            cells(&cron)[1..6],
            [
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("<none>")
            ]
        );

        let pvc = tab(
            "PersistentVolumeClaim",
            "v1",
            json!({"spec": {"volumeName": "pv1", "storageClassName": "std"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}}),
        );
        assert_eq!(
            cells(&pvc)[1..7],
            [
                json!("Bound"),
                json!("pv1"),
                json!("1Gi"),
                json!("RWO,ROX"),
                json!("std"),
                json!("<unset>")
            ]
        );

        let binding = tab(
            "ClusterRoleBinding",
            "rbac.authorization.k8s.io/v1",
            json!({"roleRef": {"kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "namespace": "kube-system", "name": "sa"}]}),
        );
        assert_eq!(cells(&binding)[1], "ClusterRole/admin");
        assert_eq!(cells(&binding)[3], "alice");
        assert_eq!(cells(&binding)[5], "kube-system/sa");

        let hpa = tab(
            "HorizontalPodAutoscaler",
            "autoscaling/v2",
            json!({
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
                "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35}}}]}
            }),
        );
        assert_eq!(
            cells(&hpa)[1..6],
            [
                json!("Deployment/web"),
                json!("cpu: 35%/80%"),
                json!("<unset>"),
                json!(5),
                json!(2)
            ]
        );

        let sc = tab(
            "StorageClass",
            "storage.k8s.io/v1",
            json!({"metadata": {"name": "std",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"}),
        );
        assert_eq!(
            cells(&sc)[0..5],
            [
                json!("std (default)"),
                json!("x"),
                json!("Delete"),
                json!("Immediate"),
                json!(false)
            ]
        );

        let revision = tab(
            "ControllerRevision",
            "apps/v1",
            json!({"revision": 2, "metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": true}]}}),
        );
        assert_eq!(
            cells(&revision)[1..3],
            [json!("daemonset.apps/ds"), json!(2)]
        );

        let quota = tab(
            "ResourceQuota",
            "v1",
            json!({"status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
            "used": {"pods": "3", "requests.cpu": "500m"}}}),
        );
        assert_eq!(
            cells(&quota)[1..3],
            [
                json!("pods: 3/10, requests.cpu: 500m/1"),
                json!("limits.cpu: 0/2")
            ]
        );

        let api = tab(
            "APIService",
            "apiregistration.k8s.io/v1",
            json!({"spec": {"service": {"namespace": "kube-system", "name": "metrics"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}}),
        );
        assert_eq!(
            cells(&api)[1..3],
            [
                json!("kube-system/metrics"),
                json!("False (MissingEndpoints)")
            ]
        );
    }
}
