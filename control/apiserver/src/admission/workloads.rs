//! The apps/v1 workload controllers and ReplicationControllers: Deployments, ReplicaSets,
//! DaemonSets and StatefulSets (and the update rules of each).

use serde_json::{json, Value};

use super::field::{
    child, forbidden, go_int_or_string, go_label_selector, invalid, json_bad, nonnegative,
    not_supported, required, Bad, NEGATIVE_MSG,
};
use super::json::{int, list, map, present, sem_eq, text};
use super::label_selector::{
    immutable_selector, mismatch_error, selector_mismatch, validate_label_selector, Selector,
};
use super::meta::{validate_annotations, validate_labels};
use super::names::{percent_value, PERCENT_MSG};
use super::pod_spec::validate_pod_template;
use super::{FieldError, Obj};
use crate::go_format::go_quote;

/// `ValidatePodTemplateSpecForReplicaSet` (also used for Deployments) and the RC equivalent.
fn validate_template_for_replicas(
    template: &Value,
    selector: &Selector,
    path: &str,
    owner: &str,
    errs: &mut Vec<FieldError>,
) {
    if selector_mismatch(selector, map(&template["metadata"], "labels")) {
        errs.push(mismatch_error(template, path));
    }
    validate_pod_template(template, path, errs);
    let restart = text(&template["spec"], "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            &child(path, "spec.restartPolicy"),
            Bad::str(restart),
            &["Always"],
        ));
    }
    if present(&template["spec"], "activeDeadlineSeconds") {
        errs.push(forbidden(
            &child(path, "spec.activeDeadlineSeconds"),
            &format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
}

/// The selector checks shared by Deployment, ReplicaSet and StatefulSet.
fn required_selector<'a>(spec: &'a Value, owner: &str, errs: &mut Vec<FieldError>) -> Selector<'a> {
    let selector = spec.get("selector").filter(|s| !s.is_null());
    if selector.is_none() {
        errs.push(required("spec.selector", ""));
    }
    let parsed = validate_label_selector(selector, "spec.selector", errs);
    if let Some(s) = selector {
        if map(s, "matchLabels").is_none_or(Obj::is_empty) && list(s, "matchExpressions").is_empty()
        {
            errs.push(invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(s)),
                &format!("empty selector is invalid for {owner}"),
            ));
        }
    }
    parsed
}

fn validate_replica_set_like(spec: &Value, errs: &mut Vec<FieldError>) {
    nonnegative(spec, "replicas", "spec.replicas", errs);
    let selector = required_selector(spec, "deployment", errs);
    if matches!(selector, Selector::Invalid) {
        errs.push(invalid(
            "spec.selector",
            Bad::Raw(go_label_selector(&spec["selector"])),
            "invalid label selector",
        ));
    } else {
        validate_template_for_replicas(
            &spec["template"],
            &selector,
            "spec.template",
            "ReplicaSet",
            errs,
        );
    }
}

pub(super) fn validate_deployment(d: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &d["spec"];
    validate_replica_set_like(spec, errs);
    let strategy = &spec["strategy"];
    let strategy_type = text(strategy, "type");
    match strategy_type {
        "Recreate" => {
            if present(strategy, "rollingUpdate") {
                errs.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|r| !r.is_null()) {
            None => errs.push(required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(rolling) => {
                let p = "spec.strategy.rollingUpdate";
                let unavailable = rolling.get("maxUnavailable");
                let surge = rolling.get("maxSurge");
                int_or_percent(unavailable, &child(p, "maxUnavailable"), errs);
                int_or_percent(surge, &child(p, "maxSurge"), errs);
                if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
                    errs.push(invalid(
                        &child(p, "maxUnavailable"),
                        Bad::Raw(go_int_or_string(unavailable)),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_over_100_percent(unavailable, &child(p, "maxUnavailable"), errs);
            }
        },
        other => {
            let rolling = if present(strategy, "rollingUpdate") {
                json_bad(strategy.get("rollingUpdate")).render()
            } else {
                "(*apps.RollingUpdateDeployment)(nil)".into()
            };
            errs.push(not_supported(
                "spec.strategy",
                Bad::Raw(format!(
                    "apps.DeploymentStrategy{{Type:{}, RollingUpdate:{rolling}}}",
                    go_quote(other)
                )),
                &["Recreate", "RollingUpdate"],
            ));
        }
    }
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(
        spec,
        "revisionHistoryLimit",
        "spec.revisionHistoryLimit",
        errs,
    );
    if let Some(deadline) = int(spec, "progressDeadlineSeconds") {
        nonnegative(
            spec,
            "progressDeadlineSeconds",
            "spec.progressDeadlineSeconds",
            errs,
        );
        if deadline <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(invalid(
                "spec.progressDeadlineSeconds",
                Bad::Int(deadline),
                "must be greater than minReadySeconds",
            ));
        }
    }
    if let Some(old) = old {
        immutable_selector(d, old, errs);
    }
}

pub(super) fn validate_replica_set(rs: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &rs["spec"];
    validate_replica_set_like(spec, errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    if let Some(old) = old {
        immutable_selector(rs, old, errs);
    }
}

pub(super) fn validate_replication_controller(rc: &Value, errs: &mut Vec<FieldError>) {
    let spec = &rc["spec"];
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    let selector = map(spec, "selector");
    if selector.is_none_or(Obj::is_empty) {
        errs.push(required("spec.selector", ""));
    }
    nonnegative(spec, "replicas", "spec.replicas", errs);
    let Some(template) = spec.get("template").filter(|t| t.is_object()) else {
        errs.push(required("spec.template", ""));
        return;
    };
    // An RC selector is a plain label map; an empty one selects everything.
    let as_selector = json!({"matchLabels": selector.cloned().unwrap_or_default()});
    let parsed = if selector.is_none_or(Obj::is_empty) {
        Selector::Everything
    } else {
        Selector::Parsed(&as_selector)
    };
    validate_template_for_replicas(
        template,
        &parsed,
        "spec.template",
        "ReplicationController",
        errs,
    );
}

fn int_or_percent(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    match v {
        Some(Value::String(s)) if percent_value(s).is_none() => {
            errs.push(invalid(path, Bad::Raw(go_int_or_string(v)), PERCENT_MSG));
        }
        Some(n) => {
            let n = n.as_i64().unwrap_or(0);
            if n < 0 {
                errs.push(invalid(path, Bad::Int(n), NEGATIVE_MSG));
            }
        }
        None => {}
    }
}

/// `getIntOrPercentValue`: a percentage's number, an int, or a numeric string's value.
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => percent_value(s).unwrap_or_else(|| s.parse().unwrap_or(0)),
        Some(n) => n.as_i64().unwrap_or(0),
        None => 0,
    }
}

fn not_over_100_percent(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(Value::String(s)) = v {
        if percent_value(s).is_some_and(|p| p > 100) {
            errs.push(invalid(
                path,
                Bad::Raw(go_int_or_string(v)),
                "must not be greater than 100%",
            ));
        }
    }
}

pub(super) fn validate_daemon_set(ds: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &ds["spec"];
    let selector_value = spec.get("selector").filter(|s| !s.is_null());
    let selector = validate_label_selector(selector_value, "spec.selector", errs);
    let template = &spec["template"];
    if selector_mismatch(&selector, map(&template["metadata"], "labels")) {
        errs.push(mismatch_error(template, "spec.template"));
    }
    if let Some(s) = selector_value {
        if map(s, "matchLabels").is_none_or(Obj::is_empty) && list(s, "matchExpressions").is_empty()
        {
            errs.push(invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(s)),
                "empty selector is invalid for daemonset",
            ));
        }
    }
    validate_pod_template(template, "spec.template", errs);
    let restart = text(&template["spec"], "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            "spec.template.spec.restartPolicy",
            Bad::str(restart),
            &["Always"],
        ));
    }
    if present(&template["spec"], "activeDeadlineSeconds") {
        errs.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(spec, "templateGeneration", "spec.templateGeneration", errs);
    let strategy = &spec["updateStrategy"];
    match text(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|r| !r.is_null()) {
            None => errs.push(required("spec.updateStrategy.rollingUpdate", "")),
            Some(rolling) => {
                let p = "spec.updateStrategy.rollingUpdate";
                let unavailable = rolling.get("maxUnavailable");
                let surge = rolling.get("maxSurge");
                int_or_percent(unavailable, &child(p, "maxUnavailable"), errs);
                int_or_percent(surge, &child(p, "maxSurge"), errs);
                not_over_100_percent(unavailable, &child(p, "maxUnavailable"), errs);
                not_over_100_percent(surge, &child(p, "maxSurge"), errs);
                let has_unavailable = int_or_percent_value(unavailable) != 0;
                let has_surge = int_or_percent_value(surge) != 0;
                if has_unavailable && has_surge {
                    errs.push(invalid(
                        &child(p, "maxSurge"),
                        Bad::Raw(go_int_or_string(surge)),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_unavailable && !has_surge {
                    errs.push(required(&child(p, "maxUnavailable"), "cannot be 0 when maxSurge is 0"));
                }
            }
        },
        other => errs.push(not_supported(
            "spec.updateStrategy",
            Bad::Raw(format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                go_quote(other)
            )),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    nonnegative(
        spec,
        "revisionHistoryLimit",
        "spec.revisionHistoryLimit",
        errs,
    );
    if let Some(old) = old {
        immutable_selector(ds, old, errs);
    }
}

const STATEFULSET_UPDATE_MSG: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

pub(super) fn validate_stateful_set(sts: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &sts["spec"];
    match text(spec, "podManagementPolicy") {
        "" => errs.push(required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid(
            "spec.podManagementPolicy",
            Bad::str(other),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = &spec["updateStrategy"];
    match text(strategy, "type") {
        "" => errs.push(required("spec.updateStrategy", "")),
        "OnDelete" => {
            if present(strategy, "rollingUpdate") {
                errs.push(invalid(
                    "spec.updateStrategy.rollingUpdate",
                    json_bad(strategy.get("rollingUpdate")),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(rolling) = strategy.get("rollingUpdate").filter(|r| !r.is_null()) {
                let p = "spec.updateStrategy.rollingUpdate";
                nonnegative(rolling, "partition", &child(p, "partition"), errs);
                if let Some(unavailable) = rolling.get("maxUnavailable").filter(|v| !v.is_null()) {
                    let up = child(p, "maxUnavailable");
                    int_or_percent(Some(unavailable), &up, errs);
                    if int_or_percent_value(Some(unavailable)) == 0 {
                        errs.push(invalid(&up, Bad::Raw(go_int_or_string(Some(unavailable))), "cannot be 0"));
                    }
                    not_over_100_percent(Some(unavailable), &up, errs);
                }
            }
        }
        other => errs.push(invalid(
            "spec.updateStrategy",
            Bad::Raw(format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}",
                go_quote(other)
            )),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = spec
        .get("persistentVolumeClaimRetentionPolicy")
        .filter(|p| !p.is_null())
    {
        for field in ["whenDeleted", "whenScaled"] {
            let value = text(policy, field);
            if value != "Retain" && value != "Delete" {
                errs.push(not_supported(
                    &child("spec.persistentVolumeClaimRetentionPolicy", field),
                    Bad::str(value),
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonnegative(spec, "replicas", "spec.replicas", errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(&spec["ordinals"], "start", "spec.ordinals.start", errs);
    let selector = required_selector(spec, "statefulset", errs);
    let template = &spec["template"];
    if matches!(selector, Selector::Invalid) {
        errs.push(invalid(
            "spec.selector",
            Bad::Raw(go_label_selector(&spec["selector"])),
            "",
        ));
    } else {
        if selector_mismatch(&selector, map(&template["metadata"], "labels")) {
            errs.push(mismatch_error(template, "spec.template"));
        }
        // v1.32/1.33 check only the template's metadata, not its pod spec (kube#131790).
        validate_labels(
            map(&template["metadata"], "labels"),
            "spec.template.labels",
            errs,
        );
        validate_annotations(
            map(&template["metadata"], "annotations"),
            "spec.template.annotations",
            errs,
        );
    }
    let restart = text(&template["spec"], "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            "spec.template.spec.restartPolicy",
            Bad::str(restart),
            &["Always"],
        ));
    }
    if present(&template["spec"], "activeDeadlineSeconds") {
        errs.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    if let Some(old) = old {
        let strip = |s: &Value| {
            let mut s = s.clone();
            if let Some(m) = s.as_object_mut() {
                for field in [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                ] {
                    m.remove(field);
                }
            }
            s
        };
        if !sem_eq(Some(&strip(spec)), Some(&strip(&old["spec"]))) {
            errs.push(forbidden("spec", STATEFULSET_UPDATE_MSG));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{create_errors, defaulted, deployment, update_errors};
    use crate::admission::validate;

    #[test]
    fn a_defaulted_deployment_is_valid() {
        assert!(create_errors("Deployment", deployment()).is_empty());
    }

    #[test]
    fn deployment_selector_is_required_and_must_match() {
        let mut no_selector = deployment();
        no_selector["spec"]
            .as_object_mut()
            .map(|s| s.remove("selector"));
        assert_eq!(
            create_errors("Deployment", no_selector),
            [
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        let mut other = deployment();
        other["spec"]["selector"] =
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]});
        assert_eq!(
            create_errors("Deployment", other),
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
            ]
        );
        let mut empty = deployment();
        empty["spec"]["selector"] = json!({});
        assert_eq!(
            create_errors("Deployment", empty),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
            ]
        );
        let mut bad_op = deployment();
        bad_op["spec"]["selector"] =
            json!({"matchExpressions": [{"key": "app", "operator": "Near"}]});
        assert_eq!(
            create_errors("Deployment", bad_op),
            [
                "spec.selector.matchExpressions[0].operator: Invalid value: \"Near\": not a valid selector operator",
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"app\", Operator:\"Near\", Values:[]string(nil)}}}: invalid label selector",
            ]
        );
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old = deployment();
        let mut new = deployment();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "front"}});
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("front");
        assert_eq!(
            update_errors("Deployment", old.clone(), new),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"front\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
        let mut scaled = deployment();
        scaled["spec"]["replicas"] = json!(5);
        assert!(update_errors("Deployment", old, scaled).is_empty());
    }

    #[test]
    fn deployment_spec_rules() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}});
        assert_eq!(
            create_errors("Deployment", d),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.containers[0].image: Required value",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
            ]
        );
        let mut bad = deployment();
        bad["spec"]["strategy"] = json!({"type": "Blue"});
        bad["spec"]["progressDeadlineSeconds"] = json!(5);
        bad["spec"]["minReadySeconds"] = json!(10);
        assert_eq!(
            create_errors("Deployment", bad),
            [
                "spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"Blue\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\"",
                "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
            ]
        );
        let mut percent = deployment();
        percent["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%", "maxSurge": "x"}});
        assert_eq!(
            create_errors("Deployment", percent),
            [
                format!("spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{{Type:1, IntVal:0, StrVal:\"x\"}}: {PERCENT_MSG}"),
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%".to_owned(),
            ]
        );
    }

    #[test]
    fn replica_sets_and_replication_controllers() {
        let rs = json!({"metadata": {"name": "rs"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "c"}}, "spec": {"containers": [{"name": "c", "image": "i"}], "activeDeadlineSeconds": 5}}}});
        assert_eq!(
            create_errors("ReplicaSet", rs),
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"a\":\"c\"}: `selector` does not match template `labels`",
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
            ]
        );
        let rc = defaulted(
            "ReplicationController",
            json!({"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert_eq!(rc["spec"]["selector"], json!({"a": "b"}));
        assert_eq!(rc["metadata"]["labels"], json!({"a": "b"}));
        assert!(validate("ReplicationController", &rc, None).is_empty());
    }

    #[test]
    fn daemon_sets() {
        let ds = json!({"metadata": {"name": "ds"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        assert_eq!(
            create_errors("DaemonSet", ds.clone()),
            [
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
            ]
        );
        let mut ok = ds.clone();
        ok["spec"]
            .as_object_mut()
            .map(|s| s.remove("updateStrategy"));
        assert!(create_errors("DaemonSet", ok.clone()).is_empty());
        let mut moved = ok.clone();
        moved["spec"]["selector"] = json!({"matchLabels": {"a": "b", "c": "d"}});
        moved["spec"]["template"]["metadata"]["labels"]["c"] = json!("d");
        assert!(update_errors("DaemonSet", ok, moved)[0]
            .starts_with("spec.selector: Invalid value: v1.LabelSelector{"));
    }

    #[test]
    fn stateful_sets_check_template_metadata_but_not_its_pod_spec() {
        let sts = json!({"metadata": {"name": "db"}, "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db"}]}}}});
        assert!(create_errors("StatefulSet", sts.clone()).is_empty());
        let mut never = sts.clone();
        never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        never["spec"]["podManagementPolicy"] = json!("Random");
        assert_eq!(
            create_errors("StatefulSet", never),
            [
                "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
        let mut renamed = sts.clone();
        renamed["spec"]["serviceName"] = json!("other");
        renamed["spec"]["replicas"] = json!(3);
        assert_eq!(
            update_errors("StatefulSet", sts.clone(), renamed),
            [format!("spec: Forbidden: {STATEFULSET_UPDATE_MSG}")]
        );
        let mut scaled = sts.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
        assert!(update_errors("StatefulSet", sts, scaled).is_empty());
    }
}
