//! Pods, and `ValidatePodUpdate`: the few fields a Pod update may change, with kube's
//! message listing them and a diff of what changed otherwise.

use serde_json::Value;

use super::field::{child, forbidden, index, invalid, required, Bad, MAX_INT32};
use super::json::{int, list, sem_eq, text};
use super::pod_spec::{validate_pod_spec, validate_tolerations};
use super::FieldError;

const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub(super) fn validate_pod(pod: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &pod["spec"];
    validate_pod_spec(spec, "spec", true, errs);
    // A whitespace-padded image is tolerated in templates (some tools use " " as a placeholder)
    // but not in a Pod that is about to run.
    for field in ["containers", "initContainers"] {
        for (i, c) in list(spec, field).iter().enumerate() {
            let image = text(c, "image");
            if image.trim() != image {
                errs.push(invalid(
                    &child(&index(&child("spec", field), i), "image"),
                    Bad::str(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    if let Some(old) = old {
        validate_pod_update(spec, &old["spec"], errs);
    }
}

fn validate_pod_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    for field in ["containers", "initContainers"] {
        let path = child("spec", field);
        let (new_list, old_list) = (list(new, field), list(old, field));
        if new_list.len() != old_list.len() {
            errs.push(forbidden(
                &path,
                "pod updates may not add or remove containers",
            ));
            return;
        }
        for (i, c) in new_list.iter().enumerate() {
            let image = text(c, "image");
            let p = child(&index(&path, i), "image");
            if image.is_empty() {
                errs.push(required(&p, ""));
            }
            if image.trim() != image {
                errs.push(invalid(
                    &p,
                    Bad::str(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    let deadline_path = "spec.activeDeadlineSeconds";
    match (
        int(new, "activeDeadlineSeconds"),
        int(old, "activeDeadlineSeconds"),
    ) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(invalid(
                deadline_path,
                Bad::Int(n),
                "must be between 0 and 2147483647, inclusive",
            ));
            return;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(invalid(
                deadline_path,
                Bad::Int(n),
                "must be less than or equal to previous value",
            ));
            return;
        }
        (None, Some(_)) => errs.push(invalid(
            deadline_path,
            Bad::Raw("null".into()),
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }

    // Existing tolerations may only gain tolerationSeconds changes; new ones may be added.
    let new_tolerations = list(new, "tolerations");
    for old_t in list(old, "tolerations") {
        let kept = new_tolerations.iter().any(|t| {
            ["key", "operator", "value", "effect"]
                .iter()
                .all(|f| sem_eq(t.get(*f), old_t.get(*f)))
        });
        if !kept {
            errs.push(forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    validate_tolerations(new_tolerations, "spec.tolerations", errs);

    // Everything else must be unchanged once the mutable fields are copied from the old spec.
    let mut munged = new.clone();
    for field in ["containers", "initContainers"] {
        if let Some(items) = munged.get_mut(field).and_then(Value::as_array_mut) {
            for (c, o) in items.iter_mut().zip(list(old, field)) {
                if let (Some(c), Some(image)) = (c.as_object_mut(), o.get("image")) {
                    c.insert("image".into(), image.clone());
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        let old_grace = int(old, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0)
            && int(&munged, "terminationGracePeriodSeconds") == Some(1)
        {
            if let (Some(m), Some(g)) = (
                munged.as_object_mut(),
                old.get("terminationGracePeriodSeconds"),
            ) {
                m.insert("terminationGracePeriodSeconds".into(), g.clone());
            }
        }
    }
    if !sem_eq(Some(&munged), Some(old)) {
        let mut lines = Vec::new();
        diff_lines("spec", Some(old), Some(&munged), &mut lines);
        errs.push(forbidden(
            "spec",
            &format!("{POD_UPDATE_MSG}\n{}", lines.join("\n")),
        ));
    }
}

/// One "-old"/"+new" pair per differing leaf, for the Pod update message (kube prints a
/// `cmp.Diff` of its internal structs there, which this only approximates).
fn diff_lines(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    if sem_eq(a, b) {
        return;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                diff_lines(&child(path, k), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_lines(&index(path, i), Some(p), Some(q), out);
            }
        }
        _ => {
            let show = |v: Option<&Value>| v.map_or_else(|| "null".to_owned(), Value::to_string);
            out.push(format!("- \t{path}: {}", show(a)));
            out.push(format!("+ \t{path}: {}", show(b)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{pod, update_errors};
    use serde_json::json;

    #[test]
    fn pod_updates_may_change_images_only() {
        let old = pod(json!([{"name": "c", "image": "nginx:1.26"}]));
        let new = pod(json!([{"name": "c", "image": "nginx:1.27"}]));
        assert!(update_errors("Pod", old.clone(), new).is_empty());

        let mut moved = pod(json!([{"name": "c", "image": "nginx:1.26"}]));
        moved["spec"]["nodeName"] = json!("node-b");
        let errs = update_errors("Pod", old.clone(), moved);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(&format!("spec: Forbidden: {POD_UPDATE_MSG}\n")),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains("spec.nodeName"));

        let more = pod(json!([{"name": "c", "image": "nginx:1.26"}, {"name": "d", "image": "x"}]));
        assert_eq!(
            update_errors("Pod", old, more),
            ["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
    }

    #[test]
    fn pod_update_deadlines_tolerations_and_grace_period() {
        let mut old = pod(json!([{"name": "c", "image": "i"}]));
        old["spec"]["activeDeadlineSeconds"] = json!(100);
        old["spec"]["tolerations"] = json!([{"key": "a", "operator": "Exists"}]);
        let mut lower = old.clone();
        lower["spec"]["activeDeadlineSeconds"] = json!(50);
        lower["spec"]["tolerations"] =
            json!([{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]);
        assert!(update_errors("Pod", old.clone(), lower).is_empty());

        let mut higher = old.clone();
        higher["spec"]["activeDeadlineSeconds"] = json!(200);
        assert_eq!(
            update_errors("Pod", old.clone(), higher),
            [
                "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
            ]
        );

        let mut unset = old.clone();
        unset["spec"]
            .as_object_mut()
            .map(|s| s.remove("activeDeadlineSeconds"));
        assert_eq!(
            update_errors("Pod", old.clone(), unset),
            [
                "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
            ]
        );

        let mut retoleration = old.clone();
        retoleration["spec"]["tolerations"] = json!([{"key": "b", "operator": "Exists"}]);
        let errs = update_errors("Pod", old.clone(), retoleration);
        assert_eq!(
            errs[0],
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        );

        let mut negative = pod(json!([{"name": "c", "image": "i"}]));
        negative["spec"]["terminationGracePeriodSeconds"] = json!(-1);
        let mut one = negative.clone();
        one["spec"]["terminationGracePeriodSeconds"] = json!(1);
        assert!(update_errors("Pod", negative, one).is_empty());
        let mut thirty = old.clone();
        thirty["spec"]["terminationGracePeriodSeconds"] = json!(10);
        assert!(update_errors("Pod", old, thirty)[0]
            .starts_with("spec: Forbidden: pod updates may not change fields"));
    }
}
