//! What objects use of a quota, as kube's quota evaluators count it: a pod its compute
//! requests and limits (kube's `PodRequests`: the containers' sum, or the largest init
//! container) and one `pods` unless it finished; a Service one `services`, its node ports
//! and load balancer; any other object one `count/<resource>.<group>` (and the legacy
//! `configmaps`, `secrets`, ... names). Scopes select pods by their deadline, QoS class,
//! priority class and cross-namespace affinity.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceQuota, Service};

use super::quantity::Amount;

/// Resource name to amount.
pub type Usage = BTreeMap<String, Amount>;

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

/// Whether a quota resource name is counted from pods.
pub fn is_pod_resource(name: &str) -> bool {
    POD_RESOURCES.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
        || (name.starts_with("requests.") && is_extended(&name["requests.".len()..]))
}

/// Whether a quota resource name is counted from Services.
pub fn is_service_resource(name: &str) -> bool {
    SERVICE_RESOURCES.contains(&name)
}

/// The group and resource an object-count name counts (`count/deployments.apps`, or a legacy
/// name like `configmaps`), unless pods or Services count it.
pub fn counted_resource(name: &str) -> Option<(String, String)> {
    if is_pod_resource(name) || is_service_resource(name) {
        return None;
    }
    if let Some(rest) = name.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((plural, group)) => (group.to_owned(), plural.to_owned()),
            None => (String::new(), rest.to_owned()),
        });
    }
    [
        "configmaps",
        "secrets",
        "resourcequotas",
        "replicationcontrollers",
    ]
    .contains(&name)
    .then(|| (String::new(), name.to_owned()))
}

fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/")
}

fn add(total: &mut Usage, name: &str, amount: Amount) {
    let sum = total
        .get(name)
        .copied()
        .unwrap_or(Amount::ZERO)
        .plus(amount);
    total.insert(name.to_owned(), sum);
}

fn list(container: &Container, limits: bool) -> Usage {
    let resources = container.resources.as_ref();
    let list = if limits {
        resources.and_then(|r| r.limits.as_ref())
    } else {
        resources.and_then(|r| r.requests.as_ref())
    };
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Amount::parse(&v.0)?)))
        .collect()
}

fn sum_into(total: &mut Usage, more: &Usage) {
    for (name, amount) in more {
        add(total, name, *amount);
    }
}

fn max_into(total: &mut Usage, more: &Usage) {
    for (name, amount) in more {
        if total.get(name).is_none_or(|t| amount.milli > t.milli) {
            total.insert(name.clone(), *amount);
        }
    }
}

/// kube's `PodRequests` (or `PodLimits`): the containers and sidecars summed, or the largest
/// init container if more.
fn pod_total(pod: &Pod, limits: bool) -> Usage {
    let mut total = Usage::new();
    let Some(spec) = pod.spec.as_ref() else {
        return total;
    };
    for container in &spec.containers {
        sum_into(&mut total, &list(container, limits));
    }
    let (mut sidecars, mut init_max) = (Usage::new(), Usage::new());
    for container in spec.init_containers.iter().flatten() {
        let own = list(container, limits);
        if container.restart_policy.as_deref() == Some("Always") {
            sum_into(&mut total, &own);
            sum_into(&mut sidecars, &own);
            max_into(&mut init_max, &sidecars);
        } else {
            let mut with_sidecars = own;
            sum_into(&mut with_sidecars, &sidecars);
            max_into(&mut init_max, &with_sidecars);
        }
    }
    max_into(&mut total, &init_max);
    total
}

/// `PodUsageFunc`.
pub fn pod_usage(pod: &Pod) -> Usage {
    let mut usage = Usage::new();
    add(&mut usage, "count/pods", Amount::count(1));
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded") | Some("Failed")) {
        return usage;
    }
    let (requests, limits) = (pod_total(pod, false), pod_total(pod, true));
    add(&mut usage, "pods", Amount::count(1));
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(name) {
            add(&mut usage, name, *q);
            add(&mut usage, &format!("requests.{name}"), *q);
        }
        if let Some(q) = limits.get(name) {
            add(&mut usage, &format!("limits.{name}"), *q);
        }
    }
    for (name, q) in &requests {
        if name.starts_with("hugepages-") {
            add(&mut usage, name, *q);
        }
        if name.starts_with("hugepages-") || is_extended(name) {
            add(&mut usage, &format!("requests.{name}"), *q);
        }
    }
    usage
}

/// The Service evaluator's usage.
pub fn service_usage(service: &Service) -> Usage {
    let mut usage = Usage::new();
    add(&mut usage, "count/services", Amount::count(1));
    add(&mut usage, "services", Amount::count(1));
    let spec = service.spec.as_ref();
    let ports = spec.and_then(|s| s.ports.as_ref()).map_or(0, Vec::len);
    let (node_ports, load_balancers) = match spec.and_then(|s| s.type_.as_deref()) {
        Some("NodePort") => (ports, 0),
        Some("LoadBalancer") => {
            let allocate = spec.and_then(|s| s.allocate_load_balancer_node_ports) != Some(false);
            let counted = if allocate {
                ports
            } else {
                spec.and_then(|s| s.ports.as_ref())
                    .into_iter()
                    .flatten()
                    .filter(|p| p.node_port.is_some_and(|n| n != 0))
                    .count()
            };
            (counted, 1)
        }
        _ => (0, 0),
    };
    add(&mut usage, "services.nodeports", Amount::count(node_ports));
    add(
        &mut usage,
        "services.loadbalancers",
        Amount::count(load_balancers),
    );
    usage
}

fn is_best_effort(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .all(|c| {
            [false, true].iter().all(|limits| {
                let set = list(c, *limits);
                !set.contains_key("cpu") && !set.contains_key("memory")
            })
        })
}

fn uses_cross_namespace_affinity(pod: &Pod) -> bool {
    let Some(affinity) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return false;
    };
    let cross = |term: &k8s_openapi::api::core::v1::PodAffinityTerm| {
        term.namespaces.as_ref().is_some_and(|n| !n.is_empty()) || term.namespace_selector.is_some()
    };
    let affinity_terms = affinity.pod_affinity.as_ref().map(|a| {
        (
            a.required_during_scheduling_ignored_during_execution
                .as_ref(),
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref(),
        )
    });
    let anti_terms = affinity.pod_anti_affinity.as_ref().map(|a| {
        (
            a.required_during_scheduling_ignored_during_execution
                .as_ref(),
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref(),
        )
    });
    [affinity_terms, anti_terms]
        .into_iter()
        .flatten()
        .any(|(required, preferred)| {
            required.into_iter().flatten().any(cross)
                || preferred
                    .into_iter()
                    .flatten()
                    .any(|w| cross(&w.pod_affinity_term))
        })
}

/// Whether `pod` is selected by every scope of `quota` (its `scopes` and `scopeSelector`).
pub fn pod_in_scope(quota: &ResourceQuota, pod: &Pod) -> bool {
    let spec = quota.spec.as_ref();
    let mut requirements: Vec<(String, String, Vec<String>)> = spec
        .and_then(|s| s.scopes.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (s.clone(), "Exists".to_owned(), Vec::new()))
        .collect();
    requirements.extend(
        spec.and_then(|s| s.scope_selector.as_ref())
            .and_then(|s| s.match_expressions.as_ref())
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r.scope_name.clone(),
                    r.operator.clone(),
                    r.values.clone().unwrap_or_default(),
                )
            }),
    );
    let terminating = pod
        .spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .is_some_and(|s| s >= 0);
    let class = pod
        .spec
        .as_ref()
        .and_then(|s| s.priority_class_name.as_deref())
        .unwrap_or("");
    requirements
        .iter()
        .all(|(scope, operator, values)| match scope.as_str() {
            "Terminating" => terminating,
            "NotTerminating" => !terminating,
            "BestEffort" => is_best_effort(pod),
            "NotBestEffort" => !is_best_effort(pod),
            "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(pod),
            "PriorityClass" => match operator.as_str() {
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                "In" => !class.is_empty() && values.iter().any(|v| v == class),
                "NotIn" => class.is_empty() || !values.iter().any(|v| v == class),
                _ => false,
            },
            _ => false,
        })
}

/// Whether the quota has scopes (then it counts pods only).
pub fn has_scopes(quota: &ResourceQuota) -> bool {
    let spec = quota.spec.as_ref();
    spec.and_then(|s| s.scopes.as_ref())
        .is_some_and(|s| !s.is_empty())
        || spec
            .and_then(|s| s.scope_selector.as_ref())
            .and_then(|s| s.match_expressions.as_ref())
            .is_some_and(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn pods_count_their_requests_until_they_finish() {
        let running = pod(json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}}},
            {"name": "b", "resources": {"requests": {"cpu": "200m"}}}]},
            "status": {"phase": "Running"}}));
        let usage = pod_usage(&running);
        let text: Vec<String> = usage
            .iter()
            .map(|(k, v)| format!("{k}={}", v.canonical()))
            .collect();
        assert_eq!(
            text,
            [
                "count/pods=1",
                "cpu=300m",
                "limits.cpu=1",
                "memory=64Mi",
                "pods=1",
                "requests.cpu=300m",
                "requests.memory=64Mi"
            ]
        );
        let done = pod(json!({"spec": {"containers": []}, "status": {"phase": "Failed"}}));
        assert_eq!(pod_usage(&done).keys().collect::<Vec<_>>(), ["count/pods"]);
    }

    #[test]
    fn names_say_what_they_count() {
        assert!(is_pod_resource("requests.cpu"));
        assert!(is_service_resource("services.nodeports"));
        assert_eq!(
            counted_resource("count/deployments.apps"),
            Some(("apps".into(), "deployments".into()))
        );
        assert_eq!(
            counted_resource("configmaps"),
            Some(("".into(), "configmaps".into()))
        );
        assert_eq!(counted_resource("count/pods"), None);
    }

    #[test]
    fn scopes_select_pods() {
        let quota: ResourceQuota =
            serde_json::from_value(json!({"spec": {"scopes": ["BestEffort"]}})).unwrap();
        assert!(pod_in_scope(
            &quota,
            &pod(json!({"spec": {"containers": [{"name": "a"}]}}))
        ));
        let busy = pod(
            json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}}),
        );
        assert!(!pod_in_scope(&quota, &busy));
        let by_class: ResourceQuota =
            serde_json::from_value(json!({"spec": {"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}}))
            .unwrap();
        let high = pod(json!({"spec": {"priorityClassName": "high", "containers": []}}));
        assert!(pod_in_scope(&by_class, &high));
        assert!(!pod_in_scope(&by_class, &busy));
    }
}
