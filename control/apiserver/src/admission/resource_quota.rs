//! ResourceQuotas (core/v1) and the `ResourceQuota` admission plugin's rules, as kube has them
//! (kube-apiserver's `pkg/apis/core/validation`, apiserver's `admission/plugin/resourcequota`
//! and `quota/v1`, kubernetes' `pkg/quota/v1/evaluator/core`):
//!
//! * [`validate_resource_quota`]: `hard` names a quota may hold (`pods`, `requests.cpu`,
//!   `count/deployments.apps`, ...), quantities that are not negative and whole where they
//!   count objects, scopes that exist, apply to the resources named and do not conflict,
//!   scope selectors; scopes immutable on update.
//! * [`check_create`]: what a create costs each quota of its namespace: the evaluator of the
//!   resource (pods: their compute requests and limits by kube's `PodRequests`, scopes
//!   Terminating / BestEffort / PriorityClass / CrossNamespacePodAffinity; services: node
//!   ports and load balancers; any other resource: `count/<resource>.<group>` and the legacy
//!   names `configmaps`, `secrets`, ...), the pod constraint (`must specify limits.cpu for:
//!   x`), and the quotas' new `status.used`, or kube's refusal (`exceeded quota: q,
//!   requested: pods=1, used: pods=2, limited: pods=2`).
//!
//! Quotas are compared by their `status.hard`, which the resourcequota controller copies from
//! `spec.hard`: a quota the controller has not seen yet limits nothing, and one whose usage it
//! has not counted refuses what it limits (`status unknown for quota`), as in kube.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::field::{child, index, invalid, key, required, Bad, NEGATIVE_MSG};
use super::json::{list, map, scalar_text, sorted_entries, text};
use super::limit_range::{pod_totals, resources, Resources};
use super::quantity::{canonicalize_resource_list, Quantity};
use super::resources::{is_hugepages, is_native_resource, resource_name_errors};
use super::FieldError;

const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

const SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

/// Resources a pod-compute scope may limit.
const POD_COMPUTE: &[&str] = &[
    "cpu",
    "limits.cpu",
    "limits.memory",
    "memory",
    "requests.cpu",
    "requests.memory",
];

fn is_standard_quota_resource(name: &str) -> bool {
    STANDARD_QUOTA_RESOURCES.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

/// `IsExtendedResourceName`: fully qualified, not kubernetes.io's, not a quota's `requests.`.
fn is_extended(name: &str) -> bool {
    !is_native_resource(name) && !name.starts_with("requests.")
}

fn scope_valid_for(scope: &str, resource: &str) -> bool {
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => resource == "pods" || POD_COMPUTE.contains(&resource),
        "BestEffort" => resource == "pods",
        _ => true,
    }
}

/// Kube's canonical quantities in `spec.hard`, `status.hard` and `status.used`.
pub(super) fn default_resource_quota(object: &mut Value) {
    canonicalize_resource_list(object["spec"].get_mut("hard"));
    if let Some(status) = object.get_mut("status") {
        canonicalize_resource_list(status.get_mut("hard"));
        canonicalize_resource_list(status.get_mut("used"));
    }
}

fn validate_quota_list(list: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    for (name, v) in sorted_entries(list.and_then(Value::as_object)) {
        let p = key(path, name);
        resource_name_errors(name, &p, errs);
        if !name.contains('/') && !is_standard_quota_resource(name) {
            errs.push(invalid(
                &p,
                Bad::str(name),
                "must be a standard resource for quota",
            ));
        }
        match Quantity::from_json(v) {
            Err(m) => errs.push(invalid(&p, Bad::Str(scalar_text(v)), m)),
            Ok(q) => {
                if q.neg {
                    errs.push(invalid(&p, Bad::Str(q.canonical()), NEGATIVE_MSG));
                }
                let integer = INTEGER_RESOURCES.contains(&name.as_str()) || is_extended(name);
                if integer && !is_whole(&q) {
                    errs.push(invalid(&p, Bad::Str(q.canonical()), "must be an integer"));
                }
            }
        }
    }
}

fn is_whole(q: &Quantity) -> bool {
    let mut milli = q.clone();
    milli.round_up_milli();
    milli.exp >= 0
        || milli
            .mant
            .checked_mul(10u128.pow((3 + milli.exp).max(0) as u32))
            .is_some_and(|m| m % 1000 == 0)
}

/// Go's `%#v` of a `[]core.ResourceQuotaScope`.
fn go_scopes(scopes: &[Value]) -> String {
    let items: Vec<String> = scopes
        .iter()
        .map(|s| crate::go_format::go_quote(&scalar_text(s)))
        .collect();
    format!("[]core.ResourceQuotaScope{{{}}}", items.join(", "))
}

/// `ValidateResourceQuota` / `ValidateResourceQuotaUpdate` (metadata is the caller's).
pub(super) fn validate_resource_quota(
    object: &Value,
    old: Option<&Value>,
    errs: &mut Vec<FieldError>,
) {
    let spec = &object["spec"];
    validate_quota_list(spec.get("hard"), "spec.hard", errs);
    let hard: Vec<&String> = map(spec, "hard")
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    let scopes = list(spec, "scopes");
    let mut seen: Vec<&str> = Vec::new();
    for scope in scopes {
        let scope = scope.as_str().unwrap_or("");
        if !SCOPES.contains(&scope) {
            errs.push(invalid(
                "spec.scopes",
                Bad::Raw(go_scopes(scopes)),
                "unsupported scope",
            ));
        }
        let mut sorted = hard.clone();
        sorted.sort();
        for name in sorted {
            if is_standard_quota_resource(name) && !scope_valid_for(scope, name) {
                errs.push(invalid(
                    "spec.scopes",
                    Bad::Raw(go_scopes(scopes)),
                    "unsupported scope applied to resource",
                ));
            }
        }
        seen.push(scope);
    }
    for pair in [
        ["BestEffort", "NotBestEffort"],
        ["Terminating", "NotTerminating"],
    ] {
        if pair.iter().all(|s| seen.contains(s)) {
            errs.push(invalid(
                "spec.scopes",
                Bad::Raw(go_scopes(scopes)),
                "conflicting scopes",
            ));
        }
    }
    validate_scope_selector(spec, errs);
    if let Some(status) = object.get("status") {
        validate_quota_list(status.get("hard"), "status.hard", errs);
        validate_quota_list(status.get("used"), "status.used", errs);
    }
    if let Some(old) = old {
        let mut before: Vec<String> = list(&old["spec"], "scopes")
            .iter()
            .map(scalar_text)
            .collect();
        let mut after: Vec<String> = scopes.iter().map(scalar_text).collect();
        before.sort();
        before.dedup();
        after.sort();
        after.dedup();
        if before != after {
            errs.push(invalid(
                "spec.scopes",
                Bad::Raw(go_scopes(scopes)),
                "field is immutable",
            ));
        }
    }
}

fn validate_scope_selector(spec: &Value, errs: &mut Vec<FieldError>) {
    let path = "spec.scopeSelector.matchExpressions";
    for (i, requirement) in list(&spec["scopeSelector"], "matchExpressions")
        .iter()
        .enumerate()
    {
        let at = index(path, i);
        let scope = text(requirement, "scopeName");
        if !SCOPES.contains(&scope) {
            errs.push(invalid(
                &child(&at, "scopeName"),
                Bad::str(scope),
                "unsupported scope",
            ));
        }
        let operator = text(requirement, "operator");
        let exists_only = [
            "BestEffort",
            "NotBestEffort",
            "Terminating",
            "NotTerminating",
            "CrossNamespacePodAffinity",
        ];
        if exists_only.contains(&scope) && operator != "Exists" {
            errs.push(invalid(&child(&at, "operator"), Bad::str(operator), "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"));
        }
        let values = list(requirement, "values");
        match operator {
            "In" | "NotIn" if values.is_empty() => errs.push(required(
                &child(&at, "values"),
                "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(invalid(
                &child(&at, "values"),
                Bad::Raw(format!(
                    "[]string{{{}}}",
                    values
                        .iter()
                        .map(|v| crate::go_format::go_quote(&scalar_text(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(invalid(
                &child(&at, "operator"),
                Bad::str(other),
                "not a valid selector operator",
            )),
        }
    }
}

/// One scope requirement: `spec.scopes` entries are `Exists` requirements.
struct ScopeRequirement {
    scope: String,
    operator: String,
    values: Vec<String>,
}

fn scope_requirements(quota: &Value) -> Vec<ScopeRequirement> {
    let spec = &quota["spec"];
    let mut all: Vec<ScopeRequirement> = list(spec, "scopes")
        .iter()
        .map(|s| ScopeRequirement {
            scope: scalar_text(s),
            operator: "Exists".into(),
            values: Vec::new(),
        })
        .collect();
    all.extend(
        list(&spec["scopeSelector"], "matchExpressions")
            .iter()
            .map(|r| ScopeRequirement {
                scope: text(r, "scopeName").to_owned(),
                operator: text(r, "operator").to_owned(),
                values: list(r, "values").iter().map(scalar_text).collect(),
            }),
    );
    all
}

/// Which quota resources a resource's objects use: kube's evaluators.
enum Evaluator {
    Pods,
    Services,
    /// Objects counted by name (`count/configmaps`, and the legacy `configmaps`).
    Count(Vec<String>),
}

const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.nodeports",
    "services.loadbalancers",
];

/// `count/<resource>` for core, `count/<resource>.<group>` otherwise.
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

impl Evaluator {
    fn of(group: &str, plural: &str) -> Evaluator {
        match (group, plural) {
            ("", "pods") => Evaluator::Pods,
            ("", "services") => Evaluator::Services,
            _ => {
                let mut names = vec![count_name(group, plural)];
                let legacy = [
                    "configmaps",
                    "resourcequotas",
                    "replicationcontrollers",
                    "secrets",
                ];
                if group.is_empty() && legacy.contains(&plural) {
                    names.push(plural.to_owned());
                }
                Evaluator::Count(names)
            }
        }
    }

    fn matching_resources(&self, names: &[&String]) -> Vec<String> {
        let mut matched: Vec<String> = names
            .iter()
            .filter(|n| match self {
                Evaluator::Pods => {
                    POD_RESOURCES.contains(&n.as_str())
                        || n.starts_with("hugepages-")
                        || n.starts_with("requests.hugepages-")
                        || (!is_native_resource(n) && n.starts_with("requests."))
                }
                Evaluator::Services => SERVICE_RESOURCES.contains(&n.as_str()),
                Evaluator::Count(counted) => counted.contains(n),
            })
            .map(|n| n.to_string())
            .collect();
        matched.sort();
        matched.dedup();
        matched
    }

    fn matches_scope(&self, requirement: &ScopeRequirement, object: &Value) -> bool {
        match self {
            Evaluator::Pods => pod_matches_scope(requirement, object),
            // Only pods have scopes: a scoped quota matches nothing else.
            _ => false,
        }
    }

    fn constraints(&self, required: &[String], object: &Value) -> Result<(), String> {
        match self {
            Evaluator::Pods => pod_constraints(required, object),
            _ => Ok(()),
        }
    }

    fn usage(&self, object: &Value) -> Resources {
        let one = || Quantity::parse("1").expect("1 parses");
        match self {
            Evaluator::Pods => pod_usage(object),
            Evaluator::Services => service_usage(object),
            Evaluator::Count(names) => names.iter().map(|n| (n.clone(), one())).collect(),
        }
    }
}

fn quantity(n: usize) -> Quantity {
    Quantity::parse(&n.to_string()).expect("a count parses")
}

fn is_best_effort(pod: &Value) -> bool {
    let containers = list(&pod["spec"], "containers")
        .iter()
        .chain(list(&pod["spec"], "initContainers"));
    for container in containers {
        for field in ["requests", "limits"] {
            let set = map(&container["resources"], field);
            if set.is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory")) {
                return false;
            }
        }
    }
    true
}

fn uses_cross_namespace_affinity(pod: &Value) -> bool {
    let affinity = &pod["spec"]["affinity"];
    let cross = |term: &Value| {
        !list(term, "namespaces").is_empty()
            || term.get("namespaceSelector").is_some_and(|s| !s.is_null())
    };
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let a = &affinity[*kind];
        list(a, "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .any(cross)
            || list(a, "preferredDuringSchedulingIgnoredDuringExecution")
                .iter()
                .any(|w| cross(&w["podAffinityTerm"]))
    })
}

fn pod_matches_scope(requirement: &ScopeRequirement, pod: &Value) -> bool {
    let terminating = pod["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|s| s >= 0);
    match requirement.scope.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(pod),
        "PriorityClass" => {
            let class = text(&pod["spec"], "priorityClassName");
            let has = !class.is_empty();
            match requirement.operator.as_str() {
                "Exists" => has,
                "DoesNotExist" => !has,
                "In" => has && requirement.values.iter().any(|v| v == class),
                "NotIn" => !has || !requirement.values.iter().any(|v| v == class),
                _ => false,
            }
        }
        _ => false,
    }
}

/// `podComputeUsageHelper`: what requests and limits count as, per quota resource name.
fn compute_usage(requests: &Resources, limits: &Resources) -> Resources {
    let mut usage = Resources::new();
    usage.insert("pods".into(), quantity(1));
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(name) {
            usage.insert(name.into(), q.clone());
            usage.insert(format!("requests.{name}"), q.clone());
        }
        if let Some(q) = limits.get(name) {
            usage.insert(format!("limits.{name}"), q.clone());
        }
    }
    for (name, q) in requests {
        if is_hugepages(name) {
            usage.insert(name.clone(), q.clone());
            usage.insert(format!("requests.{name}"), q.clone());
        }
        if is_extended(name) {
            usage.insert(format!("requests.{name}"), q.clone());
        }
    }
    usage
}

/// `PodUsageFunc`: every pod counts in `count/pods`; only pods that have not finished (and
/// are not past their deletion grace period) count their compute resources and in `pods`.
fn pod_usage(pod: &Value) -> Resources {
    let mut usage = Resources::new();
    usage.insert("count/pods".into(), quantity(1));
    let phase = text(&pod["status"], "phase");
    if phase == "Succeeded" || phase == "Failed" {
        return usage;
    }
    let (requests, limits) = pod_totals(pod);
    add(&mut usage, &compute_usage(&requests, &limits));
    usage
}

fn service_usage(service: &Value) -> Resources {
    let mut usage = Resources::new();
    usage.insert("count/services".into(), quantity(1));
    usage.insert("services".into(), quantity(1));
    let ports = list(&service["spec"], "ports");
    let (node_ports, load_balancers) = match text(&service["spec"], "type") {
        "NodePort" => (ports.len(), 0),
        "LoadBalancer" => {
            let allocate =
                service["spec"]["allocateLoadBalancerNodePorts"].as_bool() != Some(false);
            let counted = if allocate {
                ports.len()
            } else {
                ports
                    .iter()
                    .filter(|p| p["nodePort"].as_i64().is_some_and(|n| n != 0))
                    .count()
            };
            (counted, 1)
        }
        _ => (0, 0),
    };
    usage.insert("services.nodeports".into(), quantity(node_ports));
    usage.insert("services.loadbalancers".into(), quantity(load_balancers));
    usage
}

/// A quota on cpu or memory requires every container to say how much it wants.
fn pod_constraints(required: &[String], pod: &Value) -> Result<(), String> {
    let enforced = [
        "cpu",
        "memory",
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ];
    let required: Vec<&String> = required
        .iter()
        .filter(|r| enforced.contains(&r.as_str()))
        .collect();
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let containers = list(&pod["spec"], "containers")
        .iter()
        .chain(list(&pod["spec"], "initContainers"));
    for container in containers {
        let usage = compute_usage(
            &resources(container["resources"].get("requests")),
            &resources(container["resources"].get("limits")),
        );
        for name in &required {
            if !usage.contains_key(name.as_str()) {
                let names = missing.entry(name.as_str()).or_default();
                names.push(text(container, "name").to_owned());
                names.sort();
                names.dedup();
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(resource, names)| format!("{resource} for: {}", names.join(",")))
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

fn add(total: &mut Resources, more: &Resources) {
    for (name, q) in more {
        let sum = match total.get(name) {
            Some(t) if !t.is_zero() => t.add(q).unwrap_or_else(|| t.clone()),
            _ => q.clone(),
        };
        total.insert(name.clone(), sum);
    }
}

/// `prettyPrint`: `name=value` pairs sorted by name, joined by commas.
fn pretty(list: &Resources, names: &[&String]) -> String {
    let parts: Vec<String> = list
        .iter()
        .filter(|(k, _)| names.contains(k))
        .map(|(k, v)| format!("{k}={}", v.canonical()))
        .collect();
    parts.join(",")
}

/// A quota's new `status.used` after a create, by the quota's index in the list given.
pub type Charges = Vec<(usize, Value)>;

/// What creating `object` of `group`/`plural` costs each of `quotas` (the namespace's), or
/// why it may not be created (the text after `<resource> "<name>" is forbidden: `).
pub fn check_create(
    quotas: &[impl Borrow<Value>],
    group: &str,
    plural: &str,
    object: &Value,
) -> Result<Charges, String> {
    let evaluator = Evaluator::of(group, plural);
    let mut interesting = Vec::new();
    for (i, quota) in quotas.iter().enumerate() {
        let quota: &Value = quota.borrow();
        let name = text(&quota["metadata"], "name");
        let hard_names: Vec<&String> = map(&quota["status"], "hard")
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        let restricted = evaluator.matching_resources(&hard_names);
        if restricted.is_empty()
            || !scope_requirements(quota)
                .iter()
                .all(|r| evaluator.matches_scope(r, object))
        {
            continue;
        }
        evaluator
            .constraints(&restricted, object)
            .map_err(|e| format!("failed quota: {name}: {e}"))?;
        let used = map(&quota["status"], "used");
        if restricted
            .iter()
            .any(|r| !used.is_some_and(|u| u.contains_key(r)))
        {
            return Err(format!(
                "status unknown for quota: {name}, resources: {}",
                restricted.join(",")
            ));
        }
        interesting.push(i);
    }
    if interesting.is_empty() {
        return Ok(Vec::new());
    }
    let usage: Resources = evaluator
        .usage(object)
        .into_iter()
        .filter(|(_, q)| !q.is_zero())
        .collect();
    let mut charges = Vec::new();
    for i in interesting {
        let quota: &Value = quotas[i].borrow();
        let name = text(&quota["metadata"], "name");
        let hard = resources(quota["status"].get("hard"));
        let used = resources(quota["status"].get("used"));
        let requested: Resources = usage
            .iter()
            .filter(|(k, _)| hard.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if requested.is_empty() {
            continue;
        }
        let mut new_used = used.clone();
        add(&mut new_used, &requested);
        let exceeded: Vec<&String> = requested
            .keys()
            .filter(|k| new_used[*k].cmp(&hard[*k]) == Ordering::Greater)
            .collect();
        if !exceeded.is_empty() {
            return Err(format!(
                "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                pretty(&requested, &exceeded),
                pretty(&used, &exceeded),
                pretty(&hard, &exceeded)
            ));
        }
        let mut status_used = quota["status"]["used"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (k, v) in &new_used {
            status_used.insert(k.clone(), json!(v.canonical()));
        }
        charges.push((i, Value::Object(status_used)));
    }
    Ok(charges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{create_errors, update_errors};

    fn quota(name: &str, hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": name}, "spec": {"hard": hard},
            "status": {"hard": hard, "used": used}})
    }

    fn pod(resources: Value) -> Value {
        json!({"metadata": {"name": "x"}, "spec": {"containers": [
            {"name": "app", "image": "i", "resources": resources}]}, "status": {"phase": "Pending"}})
    }

    #[test]
    fn hard_names_and_quantities_are_checked() {
        let errs = create_errors(
            "ResourceQuota",
            json!({"metadata": {"name": "q"}, "spec": {"hard": {
                "pods": "1.5", "gpus": "1", "count/deployments.apps": "2", "requests.cpu": "-1"},
                "scopes": ["BestEffort", "NotBestEffort"]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.hard[gpus]: Invalid value: \"gpus\": must be a standard resource type or fully qualified",
                "spec.hard[gpus]: Invalid value: \"gpus\": must be a standard resource for quota",
                "spec.hard[pods]: Invalid value: \"1500m\": must be an integer",
                "spec.hard[requests.cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: unsupported scope applied to resource",
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: conflicting scopes",
            ]
        );
        let old = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}, "scopes": ["Terminating"]}});
        let new = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}});
        assert_eq!(
            update_errors("ResourceQuota", old, new),
            ["spec.scopes: Invalid value: []core.ResourceQuotaScope{}: field is immutable"]
        );
    }

    #[test]
    fn a_pod_over_quota_is_refused_with_kubes_message() {
        let q = quota("q", json!({"pods": "2"}), json!({"pods": "2"}));
        assert_eq!(
            check_create(&[q], "", "pods", &pod(json!({}))),
            Err("exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2".into())
        );
        let q = quota(
            "q",
            json!({"pods": "2", "requests.cpu": "1"}),
            json!({"pods": "1", "requests.cpu": "800m"}),
        );
        assert_eq!(
            check_create(std::slice::from_ref(&q), "", "pods", &pod(json!({"requests": {"cpu": "300m"}}))),
            Err("exceeded quota: q, requested: requests.cpu=300m, used: requests.cpu=800m, limited: requests.cpu=1".into())
        );
        let charges =
            check_create(&[q], "", "pods", &pod(json!({"requests": {"cpu": "200m"}}))).unwrap();
        assert_eq!(charges, [(0, json!({"pods": "2", "requests.cpu": "1"}))]);
    }

    #[test]
    fn quotas_on_compute_need_every_container_to_ask() {
        let q = quota(
            "q",
            json!({"limits.cpu": "2", "requests.memory": "1Gi"}),
            json!({"limits.cpu": "0", "requests.memory": "0"}),
        );
        assert_eq!(
            check_create(&[q], "", "pods", &pod(json!({}))),
            Err(
                "failed quota: q: must specify limits.cpu for: app; requests.memory for: app"
                    .into()
            )
        );
        let unknown = json!({"metadata": {"name": "q"}, "status": {"hard": {"pods": "1"}}});
        assert_eq!(
            check_create(&[unknown], "", "pods", &pod(json!({}))),
            Err("status unknown for quota: q, resources: pods".into())
        );
    }

    #[test]
    fn finished_pods_and_other_scopes_cost_nothing() {
        let q = quota(
            "q",
            json!({"pods": "1", "count/pods": "5"}),
            json!({"pods": "1", "count/pods": "1"}),
        );
        let mut done = pod(json!({}));
        done["status"]["phase"] = json!("Succeeded");
        let charges = check_create(&[q], "", "pods", &done).unwrap();
        assert_eq!(charges, [(0, json!({"pods": "1", "count/pods": "2"}))]);

        let mut scoped = quota("best-effort", json!({"pods": "0"}), json!({"pods": "0"}));
        scoped["spec"]["scopes"] = json!(["BestEffort"]);
        assert!(check_create(
            &[scoped.clone()],
            "",
            "pods",
            &pod(json!({"requests": {"cpu": "1"}}))
        )
        .unwrap()
        .is_empty());
        assert!(check_create(&[scoped.clone()], "", "pods", &pod(json!({}))).is_err());
        assert!(check_create(&[scoped], "", "configmaps", &json!({}))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn objects_are_counted_by_their_names() {
        let q = quota(
            "q",
            json!({"configmaps": "3", "count/deployments.apps": "1", "services.nodeports": "1"}),
            json!({"configmaps": "1", "count/deployments.apps": "1", "services.nodeports": "0"}),
        );
        assert_eq!(
            check_create(std::slice::from_ref(&q), "", "configmaps", &json!({})).unwrap(),
            [(
                0,
                json!({"configmaps": "2", "count/deployments.apps": "1", "services.nodeports": "0"})
            )]
        );
        assert_eq!(
            check_create(std::slice::from_ref(&q), "apps", "deployments", &json!({})),
            Err("exceeded quota: q, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1".into())
        );
        let node_port =
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            check_create(&[q], "", "services", &node_port),
            Err("exceeded quota: q, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1".into())
        );
    }
}
