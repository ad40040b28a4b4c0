//! Cluster machinery from the other API groups: HorizontalPodAutoscalers (with their
//! targets column), RoleBindings and ClusterRoleBindings, CertificateSigningRequests, Leases,
//! PriorityClasses, RuntimeClasses, admission webhooks, ValidatingAdmissionPolicies and their
//! bindings, and APIServices.

use serde_json::{json, Value};

use super::cells::{
    age, at, condition, flag, format_label_selector, int, is_set, list, name, text,
};
use super::{col, human_duration, wide, Column, AGE, NAME};

pub(super) const HPA_COLUMNS: &[Column] = &[
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

pub(super) fn hpa_cells(object: &Value, now: i64) -> Vec<Value> {
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

pub(super) const ROLE_BINDING_COLUMNS: &[Column] = &[
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

pub(super) fn role_binding_cells(object: &Value, now: i64) -> Vec<Value> {
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

pub(super) const CSR_COLUMNS: &[Column] = &[
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

pub(super) fn csr_cells(object: &Value, now: i64) -> Vec<Value> {
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

pub(super) const LEASE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    AGE,
];

pub(super) fn lease_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["spec", "holderIdentity"])),
        age(object, now),
    ]
}

pub(super) const PRIORITY_CLASS_COLUMNS: &[Column] = &[
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

pub(super) fn priority_class_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(int(object, &["value"])),
        Value::from(flag(object, &["globalDefault"]).unwrap_or(false)),
        age(object, now),
        Value::from(text(object, &["preemptionPolicy"])),
    ]
}

pub(super) const RUNTIME_CLASS_COLUMNS: &[Column] = &[
    NAME,
    // kube looks this description up under a key ObjectMeta lacks, so it is empty.
    col("Handler", "string", ""),
    AGE,
];

pub(super) fn runtime_class_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["handler"])),
        age(object, now),
    ]
}

pub(super) const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

pub(super) fn webhook_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(list(object, &["webhooks"]).len() as i64),
        age(object, now),
    ]
}

pub(super) const VAP_COLUMNS: &[Column] = &[
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

pub(super) fn vap_cells(object: &Value, now: i64) -> Vec<Value> {
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

pub(super) const VAP_BINDING_COLUMNS: &[Column] = &[
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

pub(super) fn vap_binding_cells(object: &Value, now: i64) -> Vec<Value> {
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

pub(super) const API_SERVICE_COLUMNS: &[Column] = &[
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
pub(super) fn api_service_cells(object: &Value, now: i64) -> Vec<Value> {
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
