//! Container resource requirements: which resource names are allowed, quantities that parse
//! and are not negative, whole units for integer resources, and requests within limits.

use serde_json::Value;
use std::cmp::Ordering;

use super::field::{child, invalid, key, required, Bad, NEGATIVE_MSG};
use super::json::{map, scalar_text, sorted_entries};
use super::names::qualified_name;
use super::quantity::{pow10, Quantity};
use super::FieldError;

const STANDARD_RESOURCES: &[&str] = &[
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
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

pub(super) fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

pub(super) fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// `IsOvercommitAllowed`: extended resources and hugepages must request exactly their limit.
pub(super) fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepages(name)
}

/// `validateResourceName`: a qualified name, and a standard one unless it has a prefix.
pub(super) fn resource_name_errors(name: &str, path: &str, errs: &mut Vec<FieldError>) {
    let messages = qualified_name(name);
    if !messages.is_empty() {
        for m in messages {
            errs.push(invalid(path, Bad::str(name), &m));
        }
    } else if !name.contains('/')
        && !STANDARD_RESOURCES.contains(&name)
        && !is_hugepages(name)
        && !name.starts_with("requests.hugepages-")
    {
        errs.push(invalid(
            path,
            Bad::str(name),
            "must be a standard resource type or fully qualified",
        ));
    }
}

/// `validateContainerResourceName`: [`resource_name_errors`], then what a container may ask for.
pub(super) fn container_resource_name_errors(name: &str, path: &str, errs: &mut Vec<FieldError>) {
    resource_name_errors(name, path, errs);
    if !name.contains('/') {
        if !["cpu", "memory", "ephemeral-storage"].contains(&name) && !is_hugepages(name) {
            errs.push(invalid(
                path,
                Bad::str(name),
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) {
        let extended = !name.starts_with("requests.")
            && qualified_name(&format!("requests.{name}")).is_empty();
        if !extended {
            errs.push(invalid(
                path,
                Bad::str(name),
                "doesn't follow extended resource name standard",
            ));
        }
    }
}

/// Parses one entry of a ResourceList, reporting what kube would: a malformed quantity (which
/// kube rejects while decoding), a negative one, or a fractional count of an integer resource.
fn resource_quantity(
    name: &str,
    v: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<Quantity> {
    let q = match Quantity::from_json(v) {
        Ok(q) => q,
        Err(m) => {
            errs.push(invalid(path, Bad::Str(scalar_text(v)), m));
            return None;
        }
    };
    if q.neg {
        errs.push(invalid(path, Bad::Str(q.canonical()), NEGATIVE_MSG));
    }
    // Extended resources are counted in whole units.
    if !is_native_resource(name) && !name.starts_with("requests.") {
        let mut milli = q.clone();
        milli.round_up_milli();
        let whole =
            milli.exp >= 0 || pow10((-milli.exp) as u32).is_some_and(|d| milli.mant % d == 0);
        if !whole {
            errs.push(invalid(path, Bad::Str(q.canonical()), "must be an integer"));
        }
    }
    Some(q)
}

pub(super) fn validate_resources(resources: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let limits_path = child(path, "limits");
    let requests_path = child(path, "requests");
    let mut limits: Vec<(&str, Quantity)> = Vec::new();
    for (name, v) in sorted_entries(map(resources, "limits")) {
        let p = key(&limits_path, name);
        container_resource_name_errors(name, &p, errs);
        if let Some(q) = resource_quantity(name, v, &p, errs) {
            limits.push((name, q));
        }
    }
    let limit_names: Vec<&str> = sorted_entries(map(resources, "limits"))
        .into_iter()
        .map(|(k, _)| k.as_str())
        .collect();
    for (name, v) in sorted_entries(map(resources, "requests")) {
        let p = key(&requests_path, name);
        container_resource_name_errors(name, &p, errs);
        let Some(q) = resource_quantity(name, v, &p, errs) else {
            continue;
        };
        match limits.iter().find(|(n, _)| n == name) {
            Some((_, limit)) => {
                let order = q.cmp(limit);
                if order != Ordering::Equal && !overcommit_allowed(name) {
                    errs.push(invalid(
                        &requests_path,
                        Bad::Str(q.canonical()),
                        &format!("must be equal to {name} limit of {}", limit.canonical()),
                    ));
                } else if order == Ordering::Greater {
                    errs.push(invalid(
                        &requests_path,
                        Bad::Str(q.canonical()),
                        &format!(
                            "must be less than or equal to {name} limit of {}",
                            limit.canonical()
                        ),
                    ));
                }
            }
            None if !limit_names.contains(&name.as_str()) && !overcommit_allowed(name) => {
                errs.push(required(
                    &limits_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {

    use crate::admission::fixtures::{create_errors, pod};
    use serde_json::json;

    #[test]
    fn resources_must_parse_and_requests_fit_limits() {
        let errs = create_errors(
            "Pod",
            pod(json!([{"name": "c", "image": "i", "resources": {
                "requests": {"cpu": "2", "memory": "lots"},
                "limits": {"cpu": "1", "gpu": "1"}
            }}])),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
                "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
                "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
                "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
                "spec.containers[0].resources.requests[memory]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ]
        );
        let negative = create_errors(
            "Pod",
            pod(
                json!([{"name": "c", "image": "i", "resources": {"requests": {"memory": "-1Gi"}}}]),
            ),
        );
        assert_eq!(
            negative,
            [
                "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0"
            ]
        );
    }

    #[test]
    fn extended_resources_must_request_their_limit_in_whole_units() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "image": "i", "resources": {
                "requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "2"}}}]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2"
            ]
        );
        let errs = create_errors(
            "ReplicaSet",
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"example.com/gpu": "500m"}}}]}}}}),
        );
        assert_eq!(
            errs,
            [
                "spec.template.spec.containers[0].resources.requests[example.com/gpu]: Invalid value: \"500m\": must be an integer",
                "spec.template.spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
            ]
        );
    }
}
