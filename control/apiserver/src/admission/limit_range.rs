//! LimitRanges (core/v1) and the `LimitRanger` admission plugin's rules, as kube-apiserver has
//! them:
//!
//! * [`default_limit_range`]: `SetDefaults_LimitRangeItem`: a Container item's default limit
//!   comes from its max, its default request from its default limit, then from its min.
//! * [`validate_limit_range`]: `ValidateLimitRange`: known types, resource names, quantities,
//!   min ≤ default request ≤ default ≤ max, a max limit/request ratio of at least 1 that
//!   max/min allows.
//! * [`mutate_pod`]: the mutating half on a pod being created: each container's missing
//!   requests and limits from the Container items' `defaultRequest` and `default`, recorded
//!   in the `kubernetes.io/limit-ranger` annotation.
//! * [`validate_pod`]: the validating half: every Container and Pod item's min, max and
//!   maxLimitRequestRatio, with kube's messages (`minimum cpu usage per Container is 100m,
//!   but request is 50m`), joined as apimachinery's aggregate error joins them.
//!
//! Where the namespace's LimitRanges come from is `crate::quota`'s business.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::field::{child, duplicate, forbidden, index, invalid, key, required, Bad, NEGATIVE_MSG};
use super::json::{list, map, scalar_text, sorted_entries, text};
use super::names::qualified_name;
use super::quantity::{canonicalize_resource_list, Quantity};
use super::resources::{container_resource_name_errors, overcommit_allowed, resource_name_errors};
use super::FieldError;

/// The annotation recording which defaults the plugin set.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

const ITEM_LISTS: [&str; 5] = [
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
];

/// A ResourceList read leniently: entries that do not parse are left out (validation has
/// reported them when the object was written).
pub(super) type Resources = BTreeMap<String, Quantity>;

pub(super) fn resources(list: Option<&Value>) -> Resources {
    list.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Quantity::from_json(v).ok()?)))
        .collect()
}

/// `SetDefaults_LimitRangeItem`, and kube's canonical quantities in every list.
pub(super) fn default_limit_range(object: &mut Value) {
    let Some(items) = object["spec"]
        .get_mut("limits")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for item in items {
        if !item.is_object() {
            continue;
        }
        for field in ITEM_LISTS {
            canonicalize_resource_list(item.get_mut(field));
        }
        if item["type"] != "Container" {
            continue;
        }
        let mut defaults = item["default"].as_object().cloned().unwrap_or_default();
        for (k, v) in item["max"].as_object().into_iter().flatten() {
            defaults.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let mut default_requests = item["defaultRequest"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (k, v) in defaults.iter() {
            default_requests
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        for (k, v) in item["min"].as_object().into_iter().flatten() {
            default_requests
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        // Empty maps are left out, as Go's omitempty leaves them.
        if !defaults.is_empty() {
            item["default"] = Value::Object(defaults);
        }
        if !default_requests.is_empty() {
            item["defaultRequest"] = Value::Object(default_requests);
        }
    }
}

const STANDARD_LIMIT_TYPES: [&str; 3] = ["Pod", "Container", "PersistentVolumeClaim"];

/// `ValidateLimitRange` (metadata is validated by the caller).
pub(super) fn validate_limit_range(object: &Value, errs: &mut Vec<FieldError>) {
    let mut seen_types: Vec<String> = Vec::new();
    for (i, item) in list(&object["spec"], "limits").iter().enumerate() {
        let path = index("spec.limits", i);
        let limit_type = text(item, "type");
        let type_path = child(&path, "type");
        let messages = qualified_name(limit_type);
        if !messages.is_empty() {
            for m in messages {
                errs.push(invalid(&type_path, Bad::str(limit_type), &m));
            }
        } else if !limit_type.contains('/') && !STANDARD_LIMIT_TYPES.contains(&limit_type) {
            errs.push(invalid(
                &type_path,
                Bad::str(limit_type),
                "must be a standard limit type or fully qualified",
            ));
        }
        if seen_types.iter().any(|t| t == limit_type) {
            errs.push(duplicate(&type_path, Bad::str(limit_type)));
        }
        seen_types.push(limit_type.to_owned());
        let is_pod = limit_type == "Pod";
        let mut lists: BTreeMap<&str, Resources> = BTreeMap::new();
        for field in ITEM_LISTS {
            let list_path = child(&path, field);
            if is_pod && (field == "default" || field == "defaultRequest") {
                if map(item, field).is_some_and(|m| !m.is_empty()) {
                    errs.push(forbidden(
                        &list_path,
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
                continue;
            }
            let mut parsed = Resources::new();
            for (name, v) in sorted_entries(map(item, field)) {
                let p = key(&list_path, name);
                if is_pod || limit_type == "Container" {
                    container_resource_name_errors(name, &p, errs);
                } else {
                    resource_name_errors(name, &p, errs);
                }
                match Quantity::from_json(v) {
                    Ok(q) if q.neg => {
                        errs.push(invalid(&p, Bad::Str(q.canonical()), NEGATIVE_MSG));
                        parsed.insert(name.clone(), q);
                    }
                    Ok(q) => {
                        parsed.insert(name.clone(), q);
                    }
                    Err(m) => errs.push(invalid(&p, Bad::Str(scalar_text(v)), m)),
                }
            }
            lists.insert(field, parsed);
        }
        if limit_type == "PersistentVolumeClaim"
            && !lists["min"].contains_key("storage")
            && !lists["max"].contains_key("storage")
        {
            errs.push(required(
                &child(&path, "limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        validate_item_bounds(&path, &lists, errs);
    }
}

/// min ≤ default request ≤ default ≤ max, and the ratio, per resource named anywhere.
fn validate_item_bounds(path: &str, lists: &BTreeMap<&str, Resources>, errs: &mut Vec<FieldError>) {
    let empty = Resources::new();
    let get = |field: &str| lists.get(field).unwrap_or(&empty);
    let (min, max, defaults, requests, ratios) = (
        get("min"),
        get("max"),
        get("default"),
        get("defaultRequest"),
        get("maxLimitRequestRatio"),
    );
    let mut names: Vec<&String> = [min, max, defaults, requests, ratios]
        .iter()
        .flat_map(|l| l.keys())
        .collect();
    names.sort();
    names.dedup();
    let over = |a: &Quantity, b: &Quantity| a.cmp(b) == Ordering::Greater;
    for name in names {
        let (lo, hi) = (min.get(name), max.get(name));
        let (default, request) = (defaults.get(name), requests.get(name));
        let at = |field: &str| key(&child(path, field), name);
        let c = Quantity::canonical;
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if over(lo, hi) {
                let message = format!("min value {} is greater than max value {}", c(lo), c(hi));
                errs.push(invalid(&at("min"), Bad::Str(c(lo)), &message));
            }
        }
        if let Some(request) = request {
            if let Some(lo) = lo.filter(|lo| over(lo, request)) {
                let message = format!(
                    "min value {} is greater than default request value {}",
                    c(lo),
                    c(request)
                );
                errs.push(invalid(
                    &at("defaultRequest"),
                    Bad::Str(c(request)),
                    &message,
                ));
            }
            if let Some(hi) = hi.filter(|hi| over(request, hi)) {
                let message = format!(
                    "default request value {} is greater than max value {}",
                    c(request),
                    c(hi)
                );
                errs.push(invalid(
                    &at("defaultRequest"),
                    Bad::Str(c(request)),
                    &message,
                ));
            }
            if let Some(default) = default.filter(|d| over(request, d)) {
                let message = format!(
                    "default request value {} is greater than default limit value {}",
                    c(request),
                    c(default)
                );
                errs.push(invalid(
                    &at("defaultRequest"),
                    Bad::Str(c(request)),
                    &message,
                ));
            }
        }
        if let Some(default) = default {
            if let Some(lo) = lo.filter(|lo| over(lo, default)) {
                let message = format!(
                    "min value {} is greater than default value {}",
                    c(lo),
                    c(default)
                );
                errs.push(invalid(&at("default"), Bad::Str(c(lo)), &message));
            }
            if let Some(hi) = hi.filter(|hi| over(default, hi)) {
                let message = format!(
                    "default value {} is greater than max value {}",
                    c(default),
                    c(hi)
                );
                errs.push(invalid(&at("default"), Bad::Str(c(hi)), &message));
            }
        }
        if let Some(ratio) = ratios.get(name) {
            let one = Quantity::parse("1").expect("1 parses");
            if ratio.cmp(&one) == Ordering::Less {
                let message = format!("ratio {} is less than 1", c(ratio));
                errs.push(invalid(
                    &at("maxLimitRequestRatio"),
                    Bad::Str(c(ratio)),
                    &message,
                ));
            }
            if let (Some(lo), Some(hi)) = (lo, hi) {
                let allowed = milli(hi) / milli(lo);
                if milli(ratio) / 1000.0 > allowed {
                    let message =
                        format!("ratio {} is greater than max/min = {allowed:.6}", c(ratio));
                    errs.push(invalid(
                        &at("maxLimitRequestRatio"),
                        Bad::Str(c(ratio)),
                        &message,
                    ));
                }
            }
        }
        if !overcommit_allowed(name) {
            if let (Some(default), Some(request)) = (default, request) {
                if default.cmp(request) != Ordering::Equal {
                    let message = format!(
                        "default value {} must equal to defaultRequest value {} in {name}",
                        c(default),
                        c(request)
                    );
                    errs.push(invalid(
                        &at("defaultRequest"),
                        Bad::Str(c(request)),
                        &message,
                    ));
                }
            }
        }
    }
}

/// The quantity in thousandths, as `MilliValue()` gives it (rounded up), as a float for ratios.
pub(super) fn milli(q: &Quantity) -> f64 {
    let value = q.mant as f64 * 10f64.powi(q.exp + 3);
    let rounded = value.ceil();
    if q.neg {
        -rounded
    } else {
        rounded
    }
}

/// The containers of a pod spec, with how the annotation names them.
fn containers_mut(pod: &mut Value) -> Vec<(&'static str, &mut Value)> {
    let mut all = Vec::new();
    let spec = &mut pod["spec"];
    let Some(spec) = spec.as_object_mut() else {
        return all;
    };
    let mut containers = None;
    let mut init = None;
    for (field, value) in spec.iter_mut() {
        match field.as_str() {
            "containers" => containers = value.as_array_mut(),
            "initContainers" => init = value.as_array_mut(),
            _ => {}
        }
    }
    all.extend(containers.into_iter().flatten().map(|c| ("container", c)));
    all.extend(init.into_iter().flatten().map(|c| ("init container", c)));
    all
}

/// The mutating half: defaults from every Container item of `ranges`, later ranges' values
/// winning where two name the same resource, as kube's loop over the namespace's ranges does.
pub fn mutate_pod(pod: &mut Value, ranges: &[Value]) {
    for range in ranges {
        let mut default_limits = serde_json::Map::new();
        let mut default_requests = serde_json::Map::new();
        for item in list(&range["spec"], "limits") {
            if text(item, "type") != "Container" {
                continue;
            }
            for (k, v) in map(item, "defaultRequest").into_iter().flatten() {
                default_requests.insert(k.clone(), v.clone());
            }
            for (k, v) in map(item, "default").into_iter().flatten() {
                default_limits.insert(k.clone(), v.clone());
            }
        }
        let mut notes: Vec<String> = Vec::new();
        for (what, container) in containers_mut(pod) {
            if !container.is_object() {
                continue;
            }
            let name = text(container, "name").to_owned();
            let resources = &mut container["resources"];
            if !resources.is_object() {
                *resources = json!({});
            }
            let mut set = |field: &str, defaults: &serde_json::Map<String, Value>| {
                let current = &mut resources[field];
                if !current.is_object() {
                    *current = json!({});
                }
                let current = current.as_object_mut().expect("made an object");
                let mut names: Vec<String> = Vec::new();
                for (k, v) in defaults {
                    if !current.contains_key(k) {
                        current.insert(k.clone(), v.clone());
                        names.push(k.clone());
                    }
                }
                names.sort();
                names
            };
            let limits_set = set("limits", &default_limits);
            let requests_set = set("requests", &default_requests);
            // Go drops empty maps when it writes the pod.
            for field in ["limits", "requests"] {
                if resources[field].as_object().is_some_and(|m| m.is_empty()) {
                    resources.as_object_mut().expect("object").remove(field);
                }
            }
            if !requests_set.is_empty() {
                notes.push(format!(
                    "{} request for {what} {name}",
                    requests_set.join(", ")
                ));
            }
            if !limits_set.is_empty() {
                notes.push(format!("{} limit for {what} {name}", limits_set.join(", ")));
            }
        }
        if !notes.is_empty() {
            let metadata = &mut pod["metadata"];
            if !metadata["annotations"].is_object() {
                metadata["annotations"] = json!({});
            }
            metadata["annotations"][ANNOTATION] =
                json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
    }
}

/// The validating half: the first range a pod breaks, as the message kube's Forbidden carries.
pub fn validate_pod(pod: &Value, ranges: &[Value]) -> Result<(), String> {
    for range in ranges {
        let mut errors: Vec<String> = Vec::new();
        for item in list(&range["spec"], "limits") {
            let limit_type = text(item, "type");
            let checks = |requests: &Resources, limits: &Resources, errors: &mut Vec<String>| {
                for (name, q) in resources(item.get("min")) {
                    errors.extend(min_constraint(limit_type, &name, &q, requests, limits));
                }
                for (name, q) in resources(item.get("max")) {
                    errors.extend(max_constraint(limit_type, &name, &q, requests, limits));
                }
                for (name, q) in resources(item.get("maxLimitRequestRatio")) {
                    errors.extend(ratio_constraint(limit_type, &name, &q, requests, limits));
                }
            };
            match limit_type {
                "Container" => {
                    for container in list(&pod["spec"], "containers")
                        .iter()
                        .chain(list(&pod["spec"], "initContainers"))
                    {
                        let requests = resources(container["resources"].get("requests"));
                        let limits = resources(container["resources"].get("limits"));
                        checks(&requests, &limits, &mut errors);
                    }
                }
                "Pod" => {
                    let (requests, limits) = pod_totals(pod);
                    checks(&requests, &limits, &mut errors);
                }
                _ => {}
            }
        }
        if !errors.is_empty() {
            return Err(aggregate(errors));
        }
    }
    Ok(())
}

/// apimachinery's aggregate error text: one message alone, several deduplicated in brackets.
pub(super) fn aggregate(errors: Vec<String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    if seen.len() == 1 {
        seen.remove(0)
    } else {
        format!("[{}]", seen.join(", "))
    }
}

fn add_into(total: &mut Resources, list: &Resources) {
    for (name, q) in list {
        let sum = match total.get(name) {
            Some(t) if !t.is_zero() => t.add(q).unwrap_or_else(|| t.clone()),
            _ => q.clone(),
        };
        total.insert(name.clone(), sum);
    }
}

fn max_into(total: &mut Resources, list: &Resources) {
    for (name, q) in list {
        if total
            .get(name)
            .is_none_or(|t| q.cmp(t) == Ordering::Greater)
        {
            total.insert(name.clone(), q.clone());
        }
    }
}

/// A pod's requests and limits as kube's `PodRequests`/`PodLimits` add them up: the sum of
/// its containers (and sidecars), or the largest init container if that is more.
pub(super) fn pod_totals(pod: &Value) -> (Resources, Resources) {
    let mut totals = (Resources::new(), Resources::new());
    for (total, field) in [(&mut totals.0, "requests"), (&mut totals.1, "limits")] {
        for container in list(&pod["spec"], "containers") {
            add_into(total, &resources(container["resources"].get(field)));
        }
        let mut sidecars = Resources::new();
        let mut init_max = Resources::new();
        for container in list(&pod["spec"], "initContainers") {
            let own = resources(container["resources"].get(field));
            if text(container, "restartPolicy") == "Always" {
                add_into(total, &own);
                add_into(&mut sidecars, &own);
                max_into(&mut init_max, &sidecars);
            } else {
                let mut with_sidecars = own;
                add_into(&mut with_sidecars, &sidecars);
                max_into(&mut init_max, &with_sidecars);
            }
        }
        max_into(total, &init_max);
    }
    totals
}

fn min_constraint(
    limit_type: &str,
    name: &str,
    enforced: &Quantity,
    requests: &Resources,
    limits: &Resources,
) -> Option<String> {
    let e = enforced.canonical();
    let Some(request) = requests.get(name) else {
        return Some(format!(
            "minimum {name} usage per {limit_type} is {e}.  No request is specified"
        ));
    };
    if request.cmp(enforced) == Ordering::Less {
        return Some(format!(
            "minimum {name} usage per {limit_type} is {e}, but request is {}",
            request.canonical()
        ));
    }
    match limits.get(name) {
        Some(limit) if limit.cmp(enforced) == Ordering::Less => Some(format!(
            "minimum {name} usage per {limit_type} is {e}, but limit is {}",
            limit.canonical()
        )),
        _ => None,
    }
}

fn max_constraint(
    limit_type: &str,
    name: &str,
    enforced: &Quantity,
    requests: &Resources,
    limits: &Resources,
) -> Option<String> {
    let e = enforced.canonical();
    let Some(limit) = limits.get(name) else {
        return Some(format!(
            "maximum {name} usage per {limit_type} is {e}.  No limit is specified"
        ));
    };
    if limit.cmp(enforced) == Ordering::Greater {
        return Some(format!(
            "maximum {name} usage per {limit_type} is {e}, but limit is {}",
            limit.canonical()
        ));
    }
    match requests.get(name) {
        Some(request) if request.cmp(enforced) == Ordering::Greater => Some(format!(
            "maximum {name} usage per {limit_type} is {e}, but request is {}",
            request.canonical()
        )),
        _ => None,
    }
}

fn ratio_constraint(
    limit_type: &str,
    name: &str,
    enforced: &Quantity,
    requests: &Resources,
    limits: &Resources,
) -> Option<String> {
    let e = enforced.canonical();
    let request = requests.get(name).map(milli).filter(|r| *r != 0.0);
    let Some(request) = request else {
        return Some(format!("{name} max limit to request ratio per {limit_type} is {e}, but no request is specified or request is 0"));
    };
    let limit = limits.get(name).map(milli).filter(|l| *l != 0.0);
    let Some(limit) = limit else {
        return Some(format!("{name} max limit to request ratio per {limit_type} is {e}, but no limit is specified or limit is 0"));
    };
    let ratio = limit / request;
    (ratio * 1000.0 > milli(enforced)).then(|| {
        format!("{name} max limit to request ratio per {limit_type} is {e}, but provided ratio is {ratio:.6}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{create_errors, defaulted};

    fn range(limits: Value) -> Value {
        defaulted(
            "LimitRange",
            json!({"metadata": {"name": "lr"}, "spec": {"limits": limits}}),
        )
    }

    #[test]
    fn container_defaults_come_from_max_then_default_then_min() {
        let lr = range(
            json!([{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
            "default": {"memory": "1024Mi"}}]),
        );
        assert_eq!(
            lr["spec"]["limits"][0],
            json!({"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
                "default": {"cpu": "2", "memory": "1Gi"},
                "defaultRequest": {"cpu": "2", "memory": "1Gi"}})
        );
        let pod_item = range(json!([{"type": "Pod", "max": {"cpu": "2"}}]));
        assert_eq!(
            pod_item["spec"]["limits"][0],
            json!({"type": "Pod", "max": {"cpu": "2"}})
        );
    }

    #[test]
    fn bounds_are_checked_with_kubes_messages() {
        let errs = create_errors(
            "LimitRange",
            json!({"metadata": {"name": "lr"}, "spec": {"limits": [
                {"type": "Container", "min": {"cpu": "500m"}, "max": {"cpu": "200m"},
                 "maxLimitRequestRatio": {"cpu": "500m"}},
                {"type": "Pod", "default": {"cpu": "1"}},
                {"type": "Pod"},
                {"type": "Sometimes"}
            ]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.limits[0].min[cpu]: Invalid value: \"500m\": min value 500m is greater than max value 200m",
                "spec.limits[0].defaultRequest[cpu]: Invalid value: \"200m\": min value 500m is greater than default request value 200m",
                "spec.limits[0].default[cpu]: Invalid value: \"500m\": min value 500m is greater than default value 200m",
                "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"500m\": ratio 500m is less than 1",
                "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"500m\": ratio 500m is greater than max/min = 0.400000",
                "spec.limits[1].default: Forbidden: may not be specified when `type` is 'Pod'",
                "spec.limits[2].type: Duplicate value: \"Pod\"",
                "spec.limits[3].type: Invalid value: \"Sometimes\": must be a standard limit type or fully qualified",
            ]
        );
        let errs = create_errors(
            "LimitRange",
            json!({"metadata": {"name": "lr"}, "spec": {"limits": [
                {"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "200m"},
                 "maxLimitRequestRatio": {"cpu": "3"}, "default": {"memory": "lots"}}]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.limits[0].default[memory]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                // Defaulting copied the bad default into defaultRequest (kube's decoder would
                // have refused the body before); both are reported.
                "spec.limits[0].defaultRequest[memory]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"3\": ratio 3 is greater than max/min = 2.000000",
            ]
        );
    }

    fn pod(resources: Value) -> Value {
        json!({"metadata": {"name": "x"}, "spec": {"containers": [
            {"name": "app", "image": "i", "resources": resources}]}})
    }

    #[test]
    fn missing_requests_and_limits_are_defaulted_and_annotated() {
        let lr = range(
            json!([{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m"}}]),
        );
        let mut p = pod(json!({"limits": {"memory": "1Gi"}}));
        mutate_pod(&mut p, &[lr]);
        assert_eq!(
            p["spec"]["containers"][0]["resources"],
            json!({"limits": {"memory": "1Gi", "cpu": "500m"},
                "requests": {"cpu": "100m", "memory": "256Mi"}})
        );
        assert_eq!(
            p["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container app; cpu limit for container app"
        );
        let mut untouched = pod(json!({}));
        mutate_pod(
            &mut untouched,
            &[range(json!([{"type": "Pod", "max": {"cpu": "1"}}]))],
        );
        assert_eq!(untouched, pod(json!({})));
    }

    #[test]
    fn violations_read_as_kubes() {
        let lr =
            range(json!([{"type": "Container", "min": {"cpu": "100m"}, "max": {"memory": "1Gi"}}]));
        let low = pod(json!({"requests": {"cpu": "50m"}, "limits": {"memory": "512Mi"}}));
        assert_eq!(
            validate_pod(&low, std::slice::from_ref(&lr)),
            Err("minimum cpu usage per Container is 100m, but request is 50m".into())
        );
        let both = pod(json!({"requests": {"cpu": "50m"}}));
        assert_eq!(
            validate_pod(&both, std::slice::from_ref(&lr)),
            Err("[minimum cpu usage per Container is 100m, but request is 50m, maximum memory usage per Container is 1Gi.  No limit is specified]".into())
        );
        let fine = pod(json!({"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}));
        assert_eq!(validate_pod(&fine, &[lr]), Ok(()));

        let ratio = range(json!([{"type": "Pod", "maxLimitRequestRatio": {"cpu": "2"}}]));
        let greedy = pod(json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "300m"}}));
        assert_eq!(
            validate_pod(&greedy, &[ratio]),
            Err(
                "cpu max limit to request ratio per Pod is 2, but provided ratio is 3.000000"
                    .into()
            )
        );
    }

    #[test]
    fn pod_totals_take_the_largest_init_container() {
        let p = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "100m"}}}, {"resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}});
        let (requests, _) = pod_totals(&p);
        assert_eq!(requests["cpu"].canonical(), "1");
        assert_eq!(requests["memory"].canonical(), "1Gi");
    }
}
