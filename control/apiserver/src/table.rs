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

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::go_format::go_quote;
use crate::selector::LabelSelector;

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
pub fn to_table(
    kind: &str,
    api_version: &str,
    objects: &[Value],
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

// ---------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Reading objects
// ---------------------------------------------------------------------------

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn text(value: &Value, path: &[&str]) -> String {
    at(value, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn int(value: &Value, path: &[&str]) -> i64 {
    at(value, path).and_then(Value::as_i64).unwrap_or(0)
}

fn flag(value: &Value, path: &[&str]) -> Option<bool> {
    at(value, path).and_then(Value::as_bool)
}

fn list<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn map_len(value: &Value, path: &[&str]) -> i64 {
    at(value, path)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len() as i64)
}

fn name(object: &Value) -> Value {
    Value::from(text(object, &["metadata", "name"]))
}

fn is_set(value: &Value, path: &[&str]) -> bool {
    at(value, path).is_some_and(|v| !v.is_null())
}

/// Seconds since the epoch of a metav1.Time / MicroTime; `None` for a missing
/// or zero time, which kube prints as "<unknown>".
fn timestamp(value: Option<&Value>) -> Option<i64> {
    let parsed = OffsetDateTime::parse(value?.as_str()?, &Rfc3339).ok()?;
    const GO_ZERO_TIME: i64 = -62_135_596_800;
    let seconds = parsed.unix_timestamp();
    (seconds != GO_ZERO_TIME).then_some(seconds)
}

/// kube's translateTimestampSince.
fn since(value: Option<&Value>, now: i64) -> String {
    match timestamp(value) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

fn age(object: &Value, now: i64) -> Value {
    Value::from(since(at(object, &["metadata", "creationTimestamp"]), now))
}

/// IntOrString as kube prints it.
fn int_or_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// A resource.Quantity as stored; a missing one is kube's zero quantity "0".
fn quantity(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

/// labels.FormatLabels: sorted `k=v` pairs, "<none>" when empty.
fn format_labels(value: Option<&Value>) -> String {
    let mut pairs: Vec<String> = value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".to_string()
    } else {
        pairs.join(",")
    }
}

/// metav1.FormatLabelSelector: kube's selector string, "<none>" when empty,
/// "<error>" when invalid.
fn format_label_selector(value: Option<&Value>) -> String {
    match LabelSelector::from_json(value.unwrap_or(&Value::Null)) {
        Ok(selector) => {
            let text = selector.to_string();
            if text.is_empty() {
                "<none>".to_string()
            } else {
                text
            }
        }
        Err(_) => "<error>".to_string(),
    }
}

/// layoutContainerCells: container names and images, comma separated.
fn containers_and_images(containers: &[Value]) -> (Value, Value) {
    let names: Vec<String> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<String> = containers.iter().map(|c| text(c, &["image"])).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// "a,b,c + N more..." for lists kube truncates at `max` entries; "<unset>"
/// for an empty list.
fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items.len().min(max);
    let joined = items[..shown].join(",");
    if items.len() > max {
        format!("{joined} + {} more...", items.len() - max)
    } else if joined.is_empty() {
        "<unset>".to_string()
    } else {
        joined
    }
}

/// net.JoinHostPort: IPv6 hosts get brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn condition<'a>(object: &'a Value, path: &[&str], kind: &str) -> Option<&'a Value> {
    list(object, path)
        .iter()
        .find(|c| text(c, &["type"]) == kind)
}

fn condition_true(object: &Value, path: &[&str], kind: &str) -> bool {
    condition(object, path, kind).is_some_and(|c| text(c, &["status"]) == "True")
}

// ---------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------

const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    ),
    wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    ),
];

/// The row conditions kube attaches to finished pods.
fn pod_row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, &["status", "phase"]).as_str() {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

fn finished_at(status: &Value) -> Option<i64> {
    timestamp(at(status, &["lastState", "terminated", "finishedAt"]))
}

/// printPod: READY, STATUS and RESTARTS follow kube's rules exactly, including
/// init containers, sidecars (restartable init containers), waiting and
/// terminated reasons and deletion.
fn pod_cells(pod: &Value, now: i64) -> Vec<Value> {
    let init_specs = list(pod, &["spec", "initContainers"]);
    let is_sidecar = |container_name: &str| {
        init_specs.iter().any(|c| {
            text(c, &["name"]) == container_name && text(c, &["restartPolicy"]) == "Always"
        })
    };
    let total = list(pod, &["spec", "containers"]).len() as i64
        + init_specs
            .iter()
            .filter(|c| text(c, &["restartPolicy"]) == "Always")
            .count() as i64;
    let mut ready = 0i64;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<i64> = None;
    let mut last_sidecar_restart: Option<i64> = None;

    let phase = text(pod, &["status", "phase"]);
    let status_reason = text(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase.clone()
    } else {
        status_reason.clone()
    };
    for condition in list(pod, &["status", "conditions"]) {
        if text(condition, &["type"]) == "PodScheduled"
            && text(condition, &["reason"]) == "SchedulingGated"
        {
            reason = "SchedulingGated".to_string();
        }
    }

    let mut initializing = false;
    for (i, status) in list(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let container_restarts = int(status, &["restartCount"]);
        restarts += container_restarts;
        if let Some(t) = finished_at(status) {
            last_restart = last_restart.max(Some(t));
        }
        let sidecar = is_sidecar(&text(status, &["name"]));
        if sidecar {
            sidecar_restarts += container_restarts;
            if let Some(t) = finished_at(status) {
                last_sidecar_restart = last_sidecar_restart.max(Some(t));
            }
        }
        let terminated = at(status, &["state", "terminated"]).filter(|t| !t.is_null());
        let waiting_reason = text(status, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && flag(status, &["started"]) == Some(true) {
            if flag(status, &["ready"]) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(terminated) = terminated {
            let terminated_reason = text(terminated, &["reason"]);
            reason = if !terminated_reason.is_empty() {
                format!("Init:{terminated_reason}")
            } else if int(terminated, &["signal"]) != 0 {
                format!("Init:Signal:{}", int(terminated, &["signal"]))
            } else {
                format!("Init:ExitCode:{}", int(terminated, &["exitCode"]))
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, &["status", "conditions"], "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(status, &["restartCount"]);
            if let Some(t) = finished_at(status) {
                last_restart = last_restart.max(Some(t));
            }
            let waiting_reason = text(status, &["state", "waiting", "reason"]);
            let terminated = at(status, &["state", "terminated"]).filter(|t| !t.is_null());
            if !waiting_reason.is_empty() {
                reason = waiting_reason;
            } else if let Some(terminated) = terminated {
                let terminated_reason = text(terminated, &["reason"]);
                reason = if !terminated_reason.is_empty() {
                    terminated_reason
                } else if int(terminated, &["signal"]) != 0 {
                    format!("Signal:{}", int(terminated, &["signal"]))
                } else {
                    format!("ExitCode:{}", int(terminated, &["exitCode"]))
                };
            } else if flag(status, &["ready"]) == Some(true)
                && is_set(status, &["state", "running"])
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose main containers finished but a sidecar still runs is not "Completed".
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, &["status", "conditions"], "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = is_set(pod, &["metadata", "deletionTimestamp"]);
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let mut ip = list(pod, &["status", "podIPs"])
        .first()
        .map(|ip| text(ip, &["ip"]))
        .unwrap_or_default();
    if ip.is_empty() {
        ip = text(pod, &["status", "podIP"]);
    }
    let none_if_empty = |s: String| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s
        }
    };
    let gates = list(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list(pod, &["status", "conditions"]);
        let satisfied = gates
            .iter()
            .filter(|gate| {
                let wanted = text(gate, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| text(c, &["type"]) == wanted)
                    .is_some_and(|c| text(c, &["status"]) == "True")
            })
            .count();
        format!("{satisfied}/{}", gates.len())
    };

    vec![
        name(pod),
        Value::from(format!("{ready}/{total}")),
        Value::from(reason),
        Value::from(restarts_text),
        age(pod, now),
        Value::from(none_if_empty(ip)),
        Value::from(none_if_empty(text(pod, &["spec", "nodeName"]))),
        Value::from(none_if_empty(text(pod, &["status", "nominatedNodeName"]))),
        Value::from(readiness_gates),
    ]
}

const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    col("Containers", "string", CONTAINERS_DESC),
    col("Images", "string", IMAGES_DESC),
    col("Pod Labels", "string", "The labels for the pod template."),
];

fn pod_template_cells(object: &Value, _now: i64) -> Vec<Value> {
    let (names, images) = containers_and_images(list(object, &["template", "spec", "containers"]));
    vec![
        name(object),
        names,
        images,
        Value::from(format_labels(at(
            object,
            &["template", "metadata", "labels"],
        ))),
    ]
}

const PDB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pdb_cells(object: &Value, now: i64) -> Vec<Value> {
    let bound = |field: &str| {
        at(object, &["spec", field])
            .filter(|v| !v.is_null())
            .map_or_else(|| "N/A".to_string(), int_or_string)
    };
    vec![
        name(object),
        Value::from(bound("minAvailable")),
        Value::from(bound("maxUnavailable")),
        Value::from(int(object, &["status", "disruptionsAllowed"])),
        age(object, now),
    ]
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

/// spec.replicas, which kube defaults to 1 for every scalable workload.
fn desired_replicas(object: &Value) -> i64 {
    at(object, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

const RC_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replication controller.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

fn rc_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(desired_replicas(object)),
        Value::from(int(object, &["status", "replicas"])),
        Value::from(int(object, &["status", "readyReplicas"])),
        age(object, now),
        names,
        images,
        Value::from(format_labels(at(object, &["spec", "selector"]))),
    ]
}

const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

fn replica_set_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(desired_replicas(object)),
        Value::from(int(object, &["status", "replicas"])),
        Value::from(int(object, &["status", "readyReplicas"])),
        age(object, now),
        names,
        images,
        Value::from(format_label_selector(at(object, &["spec", "selector"]))),
    ]
}

const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    col(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    col(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
    ),
    col(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
    ),
    col(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    col(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

fn daemon_set_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(int(object, &["status", "desiredNumberScheduled"])),
        Value::from(int(object, &["status", "currentNumberScheduled"])),
        Value::from(int(object, &["status", "numberReady"])),
        Value::from(int(object, &["status", "updatedNumberScheduled"])),
        Value::from(int(object, &["status", "numberAvailable"])),
        Value::from(format_labels(at(
            object,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        age(object, now),
        names,
        images,
        Value::from(format_label_selector(at(object, &["spec", "selector"]))),
    ]
}

const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
];

fn stateful_set_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(format!(
            "{}/{}",
            int(object, &["status", "readyReplicas"]),
            desired_replicas(object)
        )),
        age(object, now),
        names,
        images,
    ]
}

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    ),
];

fn deployment_cells(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    // Unlike the other workloads, printDeployment prints an empty selector as "".
    let selector =
        match LabelSelector::from_json(at(object, &["spec", "selector"]).unwrap_or(&Value::Null)) {
            Ok(selector) => selector.to_string(),
            Err(_) => "<invalid>".to_string(),
        };
    vec![
        name(object),
        Value::from(format!(
            "{}/{}",
            int(object, &["status", "readyReplicas"]),
            desired_replicas(object)
        )),
        Value::from(int(object, &["status", "updatedReplicas"])),
        Value::from(int(object, &["status", "availableReplicas"])),
        age(object, now),
        names,
        images,
        Value::from(selector),
    ]
}

const JOB_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

fn job_cells(object: &Value, now: i64) -> Vec<Value> {
    let succeeded = int(object, &["status", "succeeded"]);
    let completions = match at(object, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => {
            let parallelism = int(object, &["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        timestamp(at(object, &["status", "startTime"])),
        timestamp(at(object, &["status", "completionTime"])),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let conditions = ["status", "conditions"];
    let status = if condition_true(object, &conditions, "Complete") {
        "Complete"
    } else if condition_true(object, &conditions, "Failed") {
        "Failed"
    } else if is_set(object, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if condition_true(object, &conditions, "Suspended") {
        "Suspended"
    } else if condition_true(object, &conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) =
        containers_and_images(list(object, &["spec", "template", "spec", "containers"]));
    vec![
        name(object),
        Value::from(status),
        Value::from(completions),
        Value::from(duration),
        age(object, now),
        names,
        images,
        Value::from(format_label_selector(at(object, &["spec", "selector"]))),
    ]
}

const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    ),
    col(
        "Timezone",
        "string",
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
    ),
    col(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
    ),
    col(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
    ),
    col(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

fn cron_job_cells(object: &Value, now: i64) -> Vec<Value> {
    let last_schedule = if is_set(object, &["status", "lastScheduleTime"]) {
        since(at(object, &["status", "lastScheduleTime"]), now)
    } else {
        "<none>".to_string()
    };
    let time_zone = at(object, &["spec", "timeZone"])
        .and_then(Value::as_str)
        .unwrap_or("<none>")
        .to_string();
    let suspend = match flag(object, &["spec", "suspend"]) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let template = [
        "spec",
        "jobTemplate",
        "spec",
        "template",
        "spec",
        "containers",
    ];
    let (names, images) = containers_and_images(list(object, &template));
    vec![
        name(object),
        Value::from(text(object, &["spec", "schedule"])),
        Value::from(time_zone),
        Value::from(suspend),
        Value::from(list(object, &["status", "active"]).len() as i64),
        Value::from(last_schedule),
        age(object, now),
        names,
        images,
        Value::from(format_label_selector(at(
            object,
            &["spec", "jobTemplate", "spec", "selector"],
        ))),
    ]
}

// ---------------------------------------------------------------------------
// Networking
// ---------------------------------------------------------------------------

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
    ),
    col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    ),
    col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    ),
];

/// Load balancer ingress points, sorted and deduplicated (kube uses a set);
/// the apiserver prints wide, so nothing is clipped.
fn load_balancer_ingress(object: &Value) -> Vec<String> {
    let mut points: Vec<String> = list(object, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            let ip = text(i, &["ip"]);
            let host = text(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    points.sort();
    points.dedup();
    points
}

fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn service_cells(object: &Value, now: i64) -> Vec<Value> {
    // Stored services are defaulted to ClusterIP; tolerate undefaulted ones.
    let service_type = at(object, &["spec", "type"])
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let cluster_ip = list(object, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            at(object, &["spec", "clusterIP"])
                .and_then(Value::as_str)
                .filter(|ip| !ip.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "<none>".to_string());
    let external_ips = strings(list(object, &["spec", "externalIPs"]));
    let external = match service_type.as_str() {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut points = load_balancer_ingress(object);
            if !external_ips.is_empty() {
                points.extend(external_ips);
                points.join(",")
            } else if !points.is_empty() {
                points.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => text(object, &["spec", "externalName"]),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list(object, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int(p, &["port"]);
            let protocol = at(p, &["protocol"])
                .and_then(Value::as_str)
                .unwrap_or("TCP");
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name(object),
        Value::from(service_type),
        Value::from(cluster_ip),
        Value::from(external),
        Value::from(ports),
        age(object, now),
        Value::from(format_labels(at(object, &["spec", "selector"]))),
    ]
}

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    AGE,
];

/// formatEndpoints: ready addresses (with each port), at most three shown.
fn endpoints_cells(object: &Value, now: i64) -> Vec<Value> {
    let subsets = list(object, &["subsets"]);
    let formatted = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        const MAX: usize = 3;
        let mut shown = Vec::new();
        let mut more = false;
        let mut count = 0usize;
        for subset in subsets {
            let addresses = list(subset, &["addresses"]);
            let ports = list(subset, &["ports"]);
            if ports.is_empty() {
                count += addresses.len();
                for address in addresses {
                    if shown.len() == MAX {
                        more = true;
                        break;
                    }
                    shown.push(text(address, &["ip"]));
                }
                continue;
            }
            for port in ports {
                count += addresses.len();
                for address in addresses {
                    if shown.len() == MAX {
                        more = true;
                        break;
                    }
                    shown.push(join_host_port(
                        &text(address, &["ip"]),
                        int(port, &["port"]),
                    ));
                }
            }
        }
        let joined = shown.join(",");
        if more {
            format!("{joined} + {} more...", count.saturating_sub(MAX))
        } else {
            joined
        }
    };
    vec![name(object), Value::from(formatted), age(object, now)]
}

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
    ),
    col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.",
    ),
    col(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    ),
    AGE,
];

fn endpoint_slice_cells(object: &Value, now: i64) -> Vec<Value> {
    let ports: Vec<String> = list(object, &["ports"])
        .iter()
        .map(|p| match at(p, &["port"]).and_then(Value::as_i64) {
            Some(port) => port.to_string(),
            None => at(p, &["name"])
                .and_then(Value::as_str)
                .map_or_else(|| "*".to_string(), str::to_string),
        })
        .collect();
    let addresses: Vec<String> = list(object, &["endpoints"])
        .iter()
        .flat_map(|e| strings(list(e, &["addresses"])))
        .collect();
    vec![
        name(object),
        Value::from(text(object, &["addressType"])),
        Value::from(list_with_more(&ports, 3)),
        Value::from(list_with_more(&addresses, 3)),
        age(object, now),
    ]
}

const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

fn ingress_cells(object: &Value, now: i64) -> Vec<Value> {
    let class = at(object, &["spec", "ingressClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<none>")
        .to_string();
    let rules = list(object, &["spec", "rules"]);
    const MAX: usize = 3;
    let mut hosts = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = text(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let ports = if list(object, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(object),
        Value::from(class),
        Value::from(hosts),
        Value::from(load_balancer_ingress(object).join(",")),
        Value::from(ports),
        age(object, now),
    ]
}

const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

fn ingress_class_cells(object: &Value, now: i64) -> Vec<Value> {
    let parameters = match at(object, &["spec", "parameters"]).filter(|p| p.is_object()) {
        Some(p) => {
            let mut kind = text(p, &["kind"]);
            if let Some(group) = at(p, &["apiGroup"]).and_then(Value::as_str) {
                kind = format!("{kind}.{group}");
            }
            format!("{kind}/{}", text(p, &["name"]))
        }
        None => "<none>".to_string(),
    };
    vec![
        name(object),
        Value::from(text(object, &["spec", "controller"])),
        Value::from(parameters),
        age(object, now),
    ]
}

const NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Pod-Selector",
        "string",
        "Selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.",
    ),
    AGE,
];

fn network_policy_cells(object: &Value, now: i64) -> Vec<Value> {
    // podSelector is a struct, never nil, so absent means "everything".
    let selector = at(object, &["spec", "podSelector"])
        .cloned()
        .unwrap_or_else(|| json!({}));
    vec![
        name(object),
        Value::from(format_label_selector(Some(&selector))),
        age(object, now),
    ]
}

// ---------------------------------------------------------------------------
// Cluster and core objects
// ---------------------------------------------------------------------------

const NODE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide("Internal-IP", "string", NODE_ADDRESSES_DESC),
    wide("External-IP", "string", NODE_ADDRESSES_DESC),
    wide(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];
const NODE_ADDRESSES_DESC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";

fn node_cells(object: &Value, now: i64) -> Vec<Value> {
    let mut status = Vec::new();
    if let Some(ready) = condition(object, &["status", "conditions"], "Ready") {
        status.push(if text(ready, &["status"]) == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if flag(object, &["spec", "unschedulable"]) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = at(object, &["metadata", "labels"])
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| {
                    if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                        (!role.is_empty()).then(|| role.to_string())
                    } else if key == "kubernetes.io/role" {
                        value.as_str().filter(|v| !v.is_empty()).map(str::to_string)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |kind: &str| {
        list(object, &["status", "addresses"])
            .iter()
            .find(|a| text(a, &["type"]) == kind)
            .map_or_else(|| "<none>".to_string(), |a| text(a, &["address"]))
    };
    let info = |field: &str| {
        let value = text(object, &["status", "nodeInfo", field]);
        if value.is_empty() {
            "<unknown>".to_string()
        } else {
            value
        }
    };
    vec![
        name(object),
        Value::from(status.join(",")),
        Value::from(roles),
        age(object, now),
        Value::from(text(object, &["status", "nodeInfo", "kubeletVersion"])),
        Value::from(address("InternalIP")),
        Value::from(address("ExternalIP")),
        Value::from(info("osImage")),
        Value::from(info("kernelVersion")),
        Value::from(info("containerRuntimeVersion")),
    ]
}

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

fn namespace_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["status", "phase"])),
        age(object, now),
    ]
}

const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    AGE,
];

fn config_map_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(map_len(object, &["data"]) + map_len(object, &["binaryData"])),
        age(object, now),
    ]
}

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    col(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    ),
    AGE,
];

fn secret_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["type"])),
        Value::from(map_len(object, &["data"])),
        age(object, now),
    ]
}

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
    ),
    AGE,
];

fn service_account_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(list(object, &["secrets"]).len() as i64),
        age(object, now),
    ]
}

const EVENT_COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
    ),
    wide(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: NAME_DESC,
        priority: 1,
    },
];

/// printEvent, reading core/v1 events and events.k8s.io/v1 events alike.
fn event_cells(object: &Value, now: i64) -> Vec<Value> {
    let pick = |paths: &[&[&str]]| {
        paths
            .iter()
            .find_map(|p| at(object, p))
            .filter(|v| !v.is_null())
    };
    let first_timestamp = pick(&[&["firstTimestamp"], &["deprecatedFirstTimestamp"]]);
    let last_timestamp = pick(&[&["lastTimestamp"], &["deprecatedLastTimestamp"]]);
    let first_seen = if timestamp(first_timestamp).is_some() {
        since(first_timestamp, now)
    } else {
        since(at(object, &["eventTime"]), now)
    };
    let mut last_seen = if timestamp(last_timestamp).is_some() {
        since(last_timestamp, now)
    } else {
        first_seen.clone()
    };
    let mut count = pick(&[&["count"], &["deprecatedCount"]])
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if let Some(series) = at(object, &["series"]).filter(|s| s.is_object()) {
        last_seen = since(at(series, &["lastObservedTime"]), now);
        count = int(series, &["count"]);
    } else if count == 0 {
        // Singleton events written through events.k8s.io carry no count.
        count = 1;
    }
    let reference = pick(&[&["involvedObject"], &["regarding"]])
        .cloned()
        .unwrap_or_else(|| json!({}));
    let involved_kind = text(&reference, &["kind"]).to_lowercase();
    let involved_name = text(&reference, &["name"]);
    let target = if involved_name.is_empty() {
        involved_kind
    } else {
        format!("{involved_kind}/{involved_name}")
    };
    let source = pick(&[&["source"], &["deprecatedSource"]])
        .cloned()
        .unwrap_or_else(|| json!({}));
    let first_non_empty = |a: String, b: String| if a.is_empty() { b } else { a };
    let component = first_non_empty(
        text(&source, &["component"]),
        text(object, &["reportingController"]),
    );
    let host = first_non_empty(
        text(&source, &["host"]),
        text(object, &["reportingInstance"]),
    );
    let source = if host.is_empty() {
        component
    } else {
        format!("{component}, {host}")
    };
    let message = pick(&[&["message"], &["note"]])
        .and_then(Value::as_str)
        .unwrap_or_default();
    vec![
        Value::from(last_seen),
        Value::from(text(object, &["type"])),
        Value::from(text(object, &["reason"])),
        Value::from(target),
        Value::from(text(&reference, &["fieldPath"])),
        Value::from(source),
        Value::from(message.trim()),
        Value::from(first_seen),
        Value::from(count),
        name(object),
    ]
}

const PV_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes",
    ),
    col(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming",
    ),
    col(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase",
    ),
    col(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding",
    ),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.",
    ),
];

/// helper.GetAccessModesAsString.
fn access_modes(modes: &[Value]) -> String {
    let modes = strings(modes);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The beta storage-class annotation wins over spec.storageClassName.
fn storage_class(object: &Value) -> String {
    at(
        object,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .and_then(Value::as_str)
    .map_or_else(
        || text(object, &["spec", "storageClassName"]),
        str::to_string,
    )
}

fn unset_or(object: &Value, path: &[&str]) -> String {
    at(object, path)
        .and_then(Value::as_str)
        .unwrap_or("<unset>")
        .to_string()
}

fn pv_cells(object: &Value, now: i64) -> Vec<Value> {
    let claim = match at(object, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(claim) => format!("{}/{}", text(claim, &["namespace"]), text(claim, &["name"])),
        None => String::new(),
    };
    let phase = if is_set(object, &["metadata", "deletionTimestamp"]) {
        "Terminating".to_string()
    } else {
        text(object, &["status", "phase"])
    };
    vec![
        name(object),
        Value::from(quantity(at(object, &["spec", "capacity", "storage"]))),
        Value::from(access_modes(list(object, &["spec", "accessModes"]))),
        Value::from(text(object, &["spec", "persistentVolumeReclaimPolicy"])),
        Value::from(phase),
        Value::from(claim),
        Value::from(storage_class(object)),
        Value::from(unset_or(object, &["spec", "volumeAttributesClassName"])),
        Value::from(text(object, &["status", "reason"])),
        age(object, now),
        Value::from(unset_or(object, &["spec", "volumeMode"])),
    ]
}

const PVC_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    col(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    col(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
    ),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.",
    ),
];

fn pvc_cells(object: &Value, now: i64) -> Vec<Value> {
    let phase = if is_set(object, &["metadata", "deletionTimestamp"]) {
        "Terminating".to_string()
    } else {
        text(object, &["status", "phase"])
    };
    let volume = text(object, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(object, &["status", "capacity", "storage"])),
            access_modes(list(object, &["status", "accessModes"])),
        )
    };
    vec![
        name(object),
        Value::from(phase),
        Value::from(volume),
        Value::from(capacity),
        Value::from(modes),
        Value::from(storage_class(object)),
        Value::from(unset_or(object, &["spec", "volumeAttributesClassName"])),
        age(object, now),
        Value::from(unset_or(object, &["spec", "volumeMode"])),
    ]
}

const COMPONENT_STATUS_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the component conditions"),
    col("Message", "string", "Message of the component conditions"),
    col("Error", "string", "Error of the component conditions"),
];

fn component_status_cells(object: &Value, _now: i64) -> Vec<Value> {
    let (status, message, error) = match condition(object, &["conditions"], "Healthy") {
        Some(c) => (
            if text(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            text(c, &["message"]),
            text(c, &["error"]),
        ),
        None => ("Unknown", String::new(), String::new()),
    };
    vec![
        name(object),
        Value::from(status),
        Value::from(message),
        Value::from(error),
    ]
}

const HPA_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Reference",
        "string",
        "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
    ),
    col(
        "Targets",
        "string",
        "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond.",
    ),
    col(
        "MinPods",
        "string",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.",
    ),
    col(
        "MaxPods",
        "string",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.",
    ),
    col(
        "Replicas",
        "string",
        "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
    ),
    AGE,
];

/// formatHPAMetrics for autoscaling/v2 objects (autoscaling/v1's CPU target
/// is read as the Resource metric kube converts it to).
fn hpa_targets(object: &Value) -> String {
    let mut specs: Vec<Value> = list(object, &["spec", "metrics"]).to_vec();
    let mut statuses: Vec<Value> = list(object, &["status", "currentMetrics"]).to_vec();
    let v1_target = at(object, &["spec", "targetCPUUtilizationPercentage"]).and_then(Value::as_i64);
    if let (true, Some(target)) = (specs.is_empty(), v1_target) {
        specs.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}));
        if let Some(current) =
            at(object, &["status", "currentCPUUtilizationPercentage"]).and_then(Value::as_i64)
        {
            statuses.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}));
        }
    }
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let value_text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<unknown>".to_string(),
    };
    let entries: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status = statuses.get(i);
            let source = |field: &str| {
                status
                    .and_then(|s| at(s, &[field]))
                    .filter(|v| v.is_object())
            };
            match text(spec, &["type"]).as_str() {
                kind @ ("External" | "Object") => {
                    let field = if kind == "External" {
                        "external"
                    } else {
                        "object"
                    };
                    let target = at(spec, &[field, "target"])
                        .cloned()
                        .unwrap_or_else(|| json!({}));
                    if is_set(&target, &["averageValue"]) {
                        let current = value_text(
                            source(field).and_then(|s| at(s, &["current", "averageValue"])),
                        );
                        format!(
                            "{current}/{} (avg)",
                            value_text(at(&target, &["averageValue"]))
                        )
                    } else {
                        let current =
                            value_text(source(field).and_then(|s| at(s, &["current", "value"])));
                        format!("{current}/{}", value_text(at(&target, &["value"])))
                    }
                }
                "Pods" => {
                    let current = value_text(
                        source("pods").and_then(|s| at(s, &["current", "averageValue"])),
                    );
                    format!(
                        "{current}/{}",
                        value_text(at(spec, &["pods", "target", "averageValue"]))
                    )
                }
                kind @ ("Resource" | "ContainerResource") => {
                    let field = if kind == "Resource" {
                        "resource"
                    } else {
                        "containerResource"
                    };
                    let resource = text(spec, &[field, "name"]);
                    let target = at(spec, &[field, "target"])
                        .cloned()
                        .unwrap_or_else(|| json!({}));
                    if is_set(&target, &["averageValue"]) {
                        let current = value_text(
                            source(field).and_then(|s| at(s, &["current", "averageValue"])),
                        );
                        format!(
                            "{resource}: {current}/{}",
                            value_text(at(&target, &["averageValue"]))
                        )
                    } else {
                        let current = source(field)
                            .and_then(|s| at(s, &["current", "averageUtilization"]))
                            .and_then(Value::as_i64)
                            .map_or_else(|| "<unknown>".to_string(), |u| format!("{u}%"));
                        let wanted = at(&target, &["averageUtilization"])
                            .and_then(Value::as_i64)
                            .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                        format!("{resource}: {current}/{wanted}")
                    }
                }
                _ => "<unknown type>".to_string(),
            }
        })
        .collect();
    const MAX: usize = 2;
    if entries.len() > MAX {
        format!(
            "{} + {} more...",
            entries[..MAX].join(", "),
            entries.len() - MAX
        )
    } else {
        entries.join(", ")
    }
}

fn hpa_cells(object: &Value, now: i64) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        text(object, &["spec", "scaleTargetRef", "kind"]),
        text(object, &["spec", "scaleTargetRef", "name"])
    );
    let min_pods = at(object, &["spec", "minReplicas"])
        .and_then(Value::as_i64)
        .map_or_else(|| "<unset>".to_string(), |m| m.to_string());
    vec![
        name(object),
        Value::from(reference),
        Value::from(hpa_targets(object)),
        Value::from(min_pods),
        Value::from(int(object, &["spec", "maxReplicas"])),
        Value::from(int(object, &["status", "currentReplicas"])),
        age(object, now),
    ]
}

const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.",
    ),
    AGE,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

fn role_binding_cells(object: &Value, now: i64) -> Vec<Value> {
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in list(object, &["subjects"]) {
        match text(subject, &["kind"]).as_str() {
            "ServiceAccount" => accounts.push(format!(
                "{}/{}",
                text(subject, &["namespace"]),
                text(subject, &["name"])
            )),
            "User" => users.push(text(subject, &["name"])),
            "Group" => groups.push(text(subject, &["name"])),
            _ => {}
        }
    }
    vec![
        name(object),
        Value::from(format!(
            "{}/{}",
            text(object, &["roleRef", "kind"]),
            text(object, &["roleRef", "name"])
        )),
        age(object, now),
        Value::from(users.join(", ")),
        Value::from(groups.join(", ")),
        Value::from(accounts.join(", ")),
    ]
}

const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    col(
        "SignerName",
        "string",
        "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`. If empty, it will be defaulted:\n 1. If it's a kubelet client certificate, it is assigned\n    \"kubernetes.io/kube-apiserver-client-kubelet\".\n 2. If it's a kubelet serving certificate, it is assigned\n    \"kubernetes.io/kubelet-serving\".\n 3. Otherwise, it is assigned \"kubernetes.io/legacy-unknown\".\nDistribution of trust for signers happens out of band. You can select on this field using `spec.signerName`.",
    ),
    col("Requestor", "string", "Base64-encoded PKCS#10 CSR data"),
    col(
        "RequestedDuration",
        "string",
        "expirationSeconds is the requested duration of validity of the issued certificate. The certificate signer may issue a certificate with a different validity duration so a client must check the delta between the notBefore and and notAfter fields in the issued certificate to determine the actual duration.",
    ),
    col(
        "Condition",
        "string",
        "Conditions applied to the request, such as approval or denial.",
    ),
];

fn csr_cells(object: &Value, now: i64) -> Vec<Value> {
    let conditions = list(object, &["status", "conditions"]);
    let has = |kind: &str| conditions.iter().any(|c| text(c, &["type"]) == kind);
    let mut condition = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        condition.push_str(",Failed");
    }
    if !text(object, &["status", "certificate"]).is_empty() {
        condition.push_str(",Issued");
    }
    let signer = text(object, &["spec", "signerName"]);
    let duration = at(object, &["spec", "expirationSeconds"])
        .and_then(Value::as_i64)
        .map_or_else(|| "<none>".to_string(), human_duration);
    vec![
        name(object),
        age(object, now),
        Value::from(if signer.is_empty() {
            "<none>".to_string()
        } else {
            signer
        }),
        Value::from(text(object, &["spec", "username"])),
        Value::from(duration),
        Value::from(condition),
    ]
}

const LEASE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    AGE,
];

fn lease_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["spec", "holderIdentity"])),
        age(object, now),
    ]
}

const STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "provisioner indicates the type of the provisioner.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    AGE,
];

fn storage_class_cells(object: &Value, now: i64) -> Vec<Value> {
    let annotation = |key: &str| text(object, &["metadata", "annotations", key]) == "true";
    let mut display_name = text(object, &["metadata", "name"]);
    if annotation("storageclass.kubernetes.io/is-default-class")
        || annotation("storageclass.beta.kubernetes.io/is-default-class")
    {
        display_name.push_str(" (default)");
    }
    let or_default = |field: &str, default: &str| {
        at(object, &[field])
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    vec![
        Value::from(display_name),
        Value::from(text(object, &["provisioner"])),
        Value::from(or_default("reclaimPolicy", "Delete")),
        Value::from(or_default("volumeBindingMode", "Immediate")),
        Value::from(flag(object, &["allowVolumeExpansion"]).unwrap_or(false)),
        age(object, now),
    ]
}

const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

fn controller_revision_cells(object: &Value, now: i64) -> Vec<Value> {
    let controller = list(object, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| flag(r, &["controller"]) == Some(true))
        .map_or_else(
            || "<none>".to_string(),
            |owner| {
                let api_version = text(owner, &["apiVersion"]);
                let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
                let kind = text(owner, &["kind"]);
                let group_kind = if group.is_empty() {
                    kind
                } else {
                    format!("{kind}.{group}")
                };
                if group_kind.is_empty() {
                    text(owner, &["name"])
                } else {
                    format!("{}/{}", group_kind.to_lowercase(), text(owner, &["name"]))
                }
            },
        );
    vec![
        name(object),
        Value::from(controller),
        Value::from(int(object, &["revision"])),
        age(object, now),
    ]
}

const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

fn resource_quota_cells(object: &Value, now: i64) -> Vec<Value> {
    let mut resources: Vec<&String> = at(object, &["status", "hard"])
        .and_then(Value::as_object)
        .map(|hard| hard.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for resource in resources {
        let entry = format!(
            "{resource}: {}/{}",
            quantity(at(object, &["status", "used", resource])),
            quantity(at(object, &["status", "hard", resource]))
        );
        let mut pieces = resource.split('.');
        let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
        if is_limit {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(object),
        Value::from(requests.join(", ")),
        Value::from(limits.join(", ")),
        age(object, now),
    ]
}

const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Value",
        "integer",
        "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
    ),
    col(
        "Global-Default",
        "boolean",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.",
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.",
    ),
];

fn priority_class_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(int(object, &["value"])),
        Value::from(flag(object, &["globalDefault"]).unwrap_or(false)),
        age(object, now),
        Value::from(text(object, &["preemptionPolicy"])),
    ]
}

const RUNTIME_CLASS_COLUMNS: &[Column] = &[
    NAME,
    // kube looks this description up under a key ObjectMeta lacks, so it is empty.
    col("Handler", "string", ""),
    AGE,
];

fn runtime_class_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["handler"])),
        age(object, now),
    ]
}

const VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        name: "Attacher",
        kind: "string",
        format: "name",
        description: "attacher indicates the name of the volume driver that MUST handle this request. This is the name returned by GetPluginName().",
        priority: 0,
    },
    col(
        "PV",
        "string",
        "persistentVolumeName represents the name of the persistent volume to attach.",
    ),
    col(
        "Node",
        "string",
        "nodeName represents the node that the volume should be attached to.",
    ),
    col(
        "Attached",
        "boolean",
        "attached indicates the volume is successfully attached. This field must only be set by the entity completing the attach operation, i.e. the external-attacher.",
    ),
    AGE,
];

fn volume_attachment_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["spec", "attacher"])),
        Value::from(text(object, &["spec", "source", "persistentVolumeName"])),
        Value::from(text(object, &["spec", "nodeName"])),
        Value::from(flag(object, &["status", "attached"]).unwrap_or(false)),
        age(object, now),
    ]
}

const CSI_NODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

fn csi_node_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(list(object, &["spec", "drivers"]).len() as i64),
        age(object, now),
    ]
}

const CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AttachRequired",
        "boolean",
        "attachRequired indicates this CSI volume driver requires an attach operation (because it implements the CSI ControllerPublishVolume() method), and that the Kubernetes attach detach controller should call the attach volume interface which checks the volumeattachment status and waits until the volume is attached before proceeding to mounting. The CSI external-attacher coordinates with CSI volume driver and updates the volumeattachment status when the attach operation is complete. If the value is specified to false, the attach operation will be skipped. Otherwise the attach operation will be called.\n\nThis field is immutable.",
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations, if set to true. If set to false, pod information will not be passed on mount. Default is false.",
    ),
    col(
        "StorageCapacity",
        "boolean",
        "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report by creating CSIStorageCapacity objects with capacity information, if set to true.",
    ),
    col(
        "TokenRequests",
        "string",
        "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.",
    ),
    col(
        "RequiresRepublish",
        "boolean",
        "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume. This field defaults to false.",
    ),
    col(
        "Modes",
        "string",
        "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports. The default if the list is empty is \"Persistent\", which is the usage defined by the CSI specification and implemented in Kubernetes via the usual PV/PVC mechanism.",
    ),
    AGE,
];

fn csi_driver_cells(object: &Value, now: i64) -> Vec<Value> {
    let token_requests = match at(object, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        Some(requests) => requests
            .iter()
            .map(|r| text(r, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".to_string(),
    };
    let modes = strings(list(object, &["spec", "volumeLifecycleModes"])).join(",");
    vec![
        name(object),
        Value::from(flag(object, &["spec", "attachRequired"]).unwrap_or(true)),
        Value::from(flag(object, &["spec", "podInfoOnMount"]).unwrap_or(false)),
        Value::from(flag(object, &["spec", "storageCapacity"]).unwrap_or(false)),
        Value::from(token_requests),
        Value::from(flag(object, &["spec", "requiresRepublish"]).unwrap_or(false)),
        Value::from(if modes.is_empty() {
            "<none>".to_string()
        } else {
            modes
        }),
        age(object, now),
    ]
}

const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

fn webhook_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(list(object, &["webhooks"]).len() as i64),
        age(object, now),
    ]
}

const VAP_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    col(
        "ParamKind",
        "string",
        "ParamKind specifies the kind of resources used to parameterize this policy",
    ),
    AGE,
];

fn vap_cells(object: &Value, now: i64) -> Vec<Value> {
    let param_kind = match at(object, &["spec", "paramKind"]).filter(|p| p.is_object()) {
        Some(p) => format!("{}/{}", text(p, &["apiVersion"]), text(p, &["kind"])),
        None => "<unset>".to_string(),
    };
    vec![
        name(object),
        Value::from(list(object, &["spec", "validations"]).len() as i64),
        Value::from(param_kind),
        age(object, now),
    ]
}

const VAP_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    col(
        "ParamRef",
        "string",
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE,
];

fn vap_binding_cells(object: &Value, now: i64) -> Vec<Value> {
    let param = match at(object, &["spec", "paramRef"]).filter(|p| p.is_object()) {
        Some(p) => {
            let param_name = text(p, &["name"]);
            if !param_name.is_empty() {
                let namespace = text(p, &["namespace"]);
                if namespace.is_empty() {
                    format!("*/{param_name}")
                } else {
                    format!("{namespace}/{param_name}")
                }
            } else if is_set(p, &["selector"]) {
                format_label_selector(at(p, &["selector"]))
            } else {
                "<unset>".to_string()
            }
        }
        None => "<unset>".to_string(),
    };
    vec![
        name(object),
        Value::from(text(object, &["spec", "policyName"])),
        Value::from(param),
        age(object, now),
    ]
}

const API_SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Service",
        "string",
        "The reference to the service that hosts this API endpoint.",
    ),
    col("Available", "string", "Whether this service is available."),
    AGE,
];

/// kube-aggregator's APIService table.
fn api_service_cells(object: &Value, now: i64) -> Vec<Value> {
    let service = match at(object, &["spec", "service"]).filter(|s| s.is_object()) {
        Some(s) => format!("{}/{}", text(s, &["namespace"]), text(s, &["name"])),
        None => "Local".to_string(),
    };
    let available = match condition(object, &["status", "conditions"], "Available") {
        Some(c) => {
            let status = text(c, &["status"]);
            let reason = text(c, &["reason"]);
            if status != "True" && !reason.is_empty() {
                format!("{status} ({reason})")
            } else {
                status
            }
        }
        None => "Unknown".to_string(),
    };
    vec![
        name(object),
        Value::from(service),
        Value::from(available),
        age(object, now),
    ]
}

// ---------------------------------------------------------------------------
// Fallback tables
// ---------------------------------------------------------------------------

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

    const NOW: i64 = 1_700_000_000;

    fn ago(seconds: i64) -> String {
        OffsetDateTime::from_unix_timestamp(NOW - seconds)
            .expect("valid time")
            .format(&Rfc3339)
            .expect("formats")
    }

    fn tab(kind: &str, api_version: &str, object: Value) -> Value {
        to_table(
            kind,
            api_version,
            &[object],
            IncludeObject::None,
            NOW,
            "7",
            None,
            true,
        )
    }

    fn column_names(table: &Value) -> Vec<String> {
        table["columnDefinitions"]
            .as_array()
            .expect("definitions")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn visible_columns(table: &Value) -> Vec<String> {
        table["columnDefinitions"]
            .as_array()
            .expect("definitions")
            .iter()
            .filter(|c| c["priority"] == 0)
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn cells(table: &Value) -> Vec<Value> {
        table["rows"][0]["cells"].as_array().expect("cells").clone()
    }

    fn cell(kind: &str, api_version: &str, object: Value, column: &str) -> Value {
        let table = tab(kind, api_version, object);
        let index = column_names(&table)
            .iter()
            .position(|c| c == column)
            .expect("column exists");
        cells(&table)[index].clone()
    }

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
            to_table("Pod", "v1", &[], IncludeObject::None, NOW, "1", None, true)["rows"]
                .as_array()
                .expect("rows")
                .is_empty()
        );
    }

    #[test]
    fn pod_columns_and_ready_count() {
        let pod = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(200)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "10.1.0.4"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                    {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}
                ]
            }
        });
        let table = tab("Pod", "v1", pod);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(
            visible_columns(&table),
            ["Name", "Ready", "Status", "Restarts", "Age"]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("web"),
                json!("1/2"),
                json!("Running"),
                json!("0"),
                json!("3m20s"),
                json!("10.1.0.4"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pod_status_reasons() {
        let waiting = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 4,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}}
            ]}
        });
        assert_eq!(
            cell("Pod", "v1", waiting.clone(), "Status"),
            "CrashLoopBackOff"
        );
        assert_eq!(cell("Pod", "v1", waiting, "Restarts"), "4 (5m ago)");

        let creating = json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending",
            "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(cell("Pod", "v1", creating, "Status"), "ContainerCreating");

        let init = json!({
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                {"name": "i2", "state": {"running": {}}}
            ]}
        });
        assert_eq!(cell("Pod", "v1", init, "Status"), "Init:1/2");

        let init_failed = json!({
            "spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
            ]}
        });
        assert_eq!(
            cell("Pod", "v1", init_failed, "Status"),
            "Init:ImagePullBackOff"
        );

        let completed = json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Succeeded",
            "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        let table = tab("Pod", "v1", completed);
        assert_eq!(cells(&table)[2], "Completed");
        assert_eq!(table["rows"][0]["conditions"][0]["reason"], "Succeeded");

        let terminating = json!({"metadata": {"deletionTimestamp": ago(1)}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}});
        assert_eq!(cell("Pod", "v1", terminating, "Status"), "Terminating");

        let signalled = json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed",
            "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}});
        assert_eq!(cell("Pod", "v1", signalled, "Status"), "Signal:9");

        let gated = json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}});
        assert_eq!(cell("Pod", "v1", gated, "Status"), "SchedulingGated");

        let sidecar = json!({
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1, "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}
        });
        assert_eq!(cell("Pod", "v1", sidecar.clone(), "Ready"), "2/2");
        assert_eq!(cell("Pod", "v1", sidecar, "Restarts"), "1");
    }

    #[test]
    fn empty_pod_never_panics() {
        let row = cells(&tab("Pod", "v1", json!({})));
        assert_eq!(row[0], "");
        assert_eq!(row[1], "0/0");
        assert_eq!(row[4], "<unknown>");
        assert_eq!(row[5], "<none>");
        for kind in [
            "Node",
            "Service",
            "Deployment",
            "Event",
            "Job",
            "CronJob",
            "HorizontalPodAutoscaler",
            "Widget",
        ] {
            let table = tab(kind, "v1", json!({"spec": null, "status": 3}));
            assert_eq!(cells(&table).len(), column_names(&table).len(), "{kind}");
        }
    }

    #[test]
    fn node_status_and_roles() {
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": ago(3 * 86400),
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "", "kubernetes.io/role": "master"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.0.2"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian"}}
        });
        let table = tab("Node", "v1", node);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime"
            ]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,etcd,master"),
                json!("3d"),
                json!("v1.32.0"),
                json!("192.168.0.2"),
                json!("<none>"),
                json!("Debian"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
        assert_eq!(cell("Node", "v1", json!({}), "Status"), "Unknown");
        assert_eq!(cell("Node", "v1", json!({}), "Roles"), "<none>");
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(cell("Node", "v1", not_ready, "Status"), "NotReady");
    }

    #[test]
    fn service_cells_and_ports() {
        let service = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(60)},
            "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"],
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}],
                "selector": {"app": "web", "tier": "fe"}}
        });
        let table = tab("Service", "v1", service);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector"
            ]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80/TCP,443:30443/TCP"),
                json!("60s"),
                json!("app=web,tier=fe")
            ]
        );
        let pending = json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1"}});
        assert_eq!(cell("Service", "v1", pending, "External-IP"), "<pending>");
        let balanced = json!({"spec": {"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}}});
        assert_eq!(
            cell("Service", "v1", balanced, "External-IP"),
            "5.6.7.8,lb.example,9.9.9.9"
        );
        let external = json!({"spec": {"type": "ExternalName", "externalName": "db.example"}});
        assert_eq!(
            cell("Service", "v1", external.clone(), "External-IP"),
            "db.example"
        );
        assert_eq!(cell("Service", "v1", external.clone(), "Port(s)"), "<none>");
        assert_eq!(cell("Service", "v1", external, "Cluster-IP"), "<none>");
    }

    #[test]
    fn workload_tables() {
        let template = json!({"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}});
        let deployment = json!({
            "metadata": {"name": "d", "creationTimestamp": ago(30)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}}, "template": template},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let table = tab("Deployment", "apps/v1", deployment);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("d"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("30s"),
                json!("a,b"),
                json!("nginx,busybox"),
                json!("app=d")
            ]
        );

        let replica_set = json!({"spec": {"replicas": 2, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}},
            "status": {"replicas": 2, "readyReplicas": 1}});
        let table = tab("ReplicaSet", "apps/v1", replica_set);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(cells(&table)[1..4], [json!(2), json!(2), json!(1)]);
        assert_eq!(cells(&table)[7], "app in (x)");

        let stateful = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        let table = tab("StatefulSet", "apps/v1", stateful);
        assert_eq!(visible_columns(&table), ["Name", "Ready", "Age"]);
        assert_eq!(cells(&table)[1], "3/3");

        let daemon = tab(
            "DaemonSet",
            "apps/v1",
            json!({"status": {"desiredNumberScheduled": 4, "numberReady": 3}}),
        );
        assert_eq!(
            visible_columns(&daemon),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Up-to-date",
                "Available",
                "Node Selector",
                "Age"
            ]
        );
        assert_eq!(
            cells(&daemon)[1..7],
            [
                json!(4),
                json!(0),
                json!(3),
                json!(0),
                json!(0),
                json!("<none>")
            ]
        );
        assert_eq!(cells(&daemon)[10], "<none>");
    }

    #[test]
    fn job_status_completions_and_duration() {
        let job = json!({
            "metadata": {"name": "j", "creationTimestamp": ago(400)},
            "spec": {"completions": 3},
            "status": {"succeeded": 3, "startTime": ago(390), "completionTime": ago(300),
                "conditions": [{"type": "Complete", "status": "True"}]}
        });
        let table = tab("Job", "batch/v1", job);
        assert_eq!(
            visible_columns(&table),
            ["Name", "Status", "Completions", "Duration", "Age"]
        );
        assert_eq!(
            cells(&table)[1..5],
            [
                json!("Complete"),
                json!("3/3"),
                json!("90s"),
                json!("6m40s")
            ]
        );
        let running = json!({"spec": {"parallelism": 2}, "status": {"startTime": ago(5)}});
        assert_eq!(
            cell("Job", "batch/v1", running.clone(), "Completions"),
            "0/1 of 2"
        );
        assert_eq!(
            cell("Job", "batch/v1", running.clone(), "Status"),
            "Running"
        );
        assert_eq!(cell("Job", "batch/v1", running, "Duration"), "5s");
        assert_eq!(cell("Job", "batch/v1", json!({}), "Duration"), "");
    }

    #[test]
    fn simple_core_tables() {
        let cm = tab(
            "ConfigMap",
            "v1",
            json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}}),
        );
        assert_eq!(column_names(&cm), ["Name", "Data", "Age"]);
        assert_eq!(cells(&cm)[1], 3);
        let secret = tab(
            "Secret",
            "v1",
            json!({"type": "Opaque", "data": {"k": "dg=="}}),
        );
        assert_eq!(column_names(&secret), ["Name", "Type", "Data", "Age"]);
        assert_eq!(cells(&secret)[1..3], [json!("Opaque"), json!(1)]);
        let sa = tab("ServiceAccount", "v1", json!({"secrets": [{"name": "t"}]}));
        assert_eq!(column_names(&sa), ["Name", "Secrets", "Age"]);
        assert_eq!(cells(&sa)[1], 1);
        let ns = tab("Namespace", "v1", json!({"status": {"phase": "Active"}}));
        assert_eq!(column_names(&ns), ["Name", "Status", "Age"]);
        assert_eq!(cells(&ns)[1], "Active");
        let lease = tab(
            "Lease",
            "coordination.k8s.io/v1",
            json!({"spec": {"holderIdentity": "me"}}),
        );
        assert_eq!(column_names(&lease), ["Name", "Holder", "Age"]);
        assert_eq!(cells(&lease)[1], "me");
        let runtime = tab("RuntimeClass", "node.k8s.io/v1", json!({"handler": "runc"}));
        assert_eq!(column_names(&runtime), ["Name", "Handler", "Age"]);
        assert_eq!(cells(&runtime)[1], "runc");
        let pdb = tab(
            "PodDisruptionBudget",
            "policy/v1",
            json!({"spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}),
        );
        assert_eq!(
            column_names(&pdb),
            [
                "Name",
                "Min Available",
                "Max Unavailable",
                "Allowed Disruptions",
                "Age"
            ]
        );
        assert_eq!(cells(&pdb)[1..4], [json!("50%"), json!("N/A"), json!(1)]);
    }

    #[test]
    fn endpoints_and_slices() {
        let endpoints = json!({"subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]}
        ]});
        let table = tab("Endpoints", "v1", endpoints);
        assert_eq!(column_names(&table), ["Name", "Endpoints", "Age"]);
        assert_eq!(
            cells(&table)[1],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."
        );
        assert_eq!(cell("Endpoints", "v1", json!({}), "Endpoints"), "<none>");
        let v6 = json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(cell("Endpoints", "v1", v6, "Endpoints"), "[fd00::1]:80");

        let slice = json!({"addressType": "IPv4", "ports": [{"port": 80}, {"name": "dns"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]});
        let table = tab("EndpointSlice", "discovery.k8s.io/v1", slice);
        assert_eq!(
            column_names(&table),
            ["Name", "AddressType", "Ports", "Endpoints", "Age"]
        );
        assert_eq!(
            cells(&table)[1..4],
            [
                json!("IPv4"),
                json!("80,dns,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
            ]
        );
        assert_eq!(
            cell(
                "EndpointSlice",
                "discovery.k8s.io/v1",
                json!({}),
                "Endpoints"
            ),
            "<unset>"
        );
    }

    #[test]
    fn events_print_like_kubectl_get_events() {
        let event = json!({
            "metadata": {"name": "p.123"},
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
            "reason": "Pulled", "type": "Normal", "message": " pulled \n",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 4
        });
        let table = tab("Event", "v1", event);
        assert_eq!(
            visible_columns(&table),
            ["Last Seen", "Type", "Reason", "Object", "Message"]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("30s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/p"),
                json!("spec.containers{a}"),
                json!("kubelet, n1"),
                json!("pulled"),
                json!("10m"),
                json!(4),
                json!("p.123")
            ]
        );
        let new_style = json!({
            "regarding": {"kind": "Node", "name": "n1"}, "note": "hi", "reportingController": "ctl",
            "eventTime": "2023-11-14T22:13:10.000000Z"
        });
        let row = cells(&table_for_event(new_style));
        assert_eq!(row[3], "node/n1");
        assert_eq!(row[5], "ctl");
        assert_eq!(row[6], "hi");
        assert_eq!(row[8], 1);
        assert_eq!(row[0], row[7]);
    }

    fn table_for_event(event: Value) -> Value {
        tab("Event", "events.k8s.io/v1", event)
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
