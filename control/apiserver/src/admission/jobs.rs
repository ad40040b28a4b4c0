//! Jobs and CronJobs (batch/v1), with robfig/cron's schedule parser and Go's duration syntax.

use serde_json::{json, Value};

use super::field::{
    child, enum_field, go_label_selector, go_string_map, invalid, json_bad, key, nonnegative,
    not_supported, required, Bad, IMMUTABLE_MSG,
};
use super::json::{flag, int, map, present, scalar_text, sem_eq, text};
use super::label_selector::{
    immutable_selector, mismatch_error, selector_matches, selector_mismatch,
    validate_label_selector,
};
use super::names::dns1123_label;
use super::pod_spec::validate_pod_template;
use super::{FieldError, Obj};
use crate::admission::defaults::workloads::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};
use crate::go_format::go_quote;

/// `validateJobSpec`: the parts shared by Jobs and CronJob job templates.
fn validate_job_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        nonnegative(spec, field, &child(path, field), errs);
    }
    if let Some(mode) = spec.get("completionMode").filter(|m| !m.is_null()) {
        let mode = scalar_text(mode);
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(not_supported(
                &child(path, "completionMode"),
                Bad::str(&mode),
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" && !present(spec, "completions") {
            errs.push(required(
                &child(path, "completions"),
                "when completion mode is Indexed",
            ));
        }
    }
    let template_path = child(path, "template");
    validate_pod_template(&spec["template"], &template_path, errs);
    let restart_path = child(&template_path, "spec.restartPolicy");
    let restart = text(&spec["template"]["spec"], "restartPolicy");
    let failure_policy = present(spec, "podFailurePolicy");
    match restart {
        "Always" | "" => errs.push(required(
            &restart_path,
            if failure_policy {
                "only \"Never\" is supported when podFailurePolicy is specified"
            } else {
                "valid values: \"OnFailure\", \"Never\""
            },
        )),
        "OnFailure" | "Never" => {
            if failure_policy && restart != "Never" {
                errs.push(invalid(
                    &restart_path,
                    Bad::str(restart),
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        other => errs.push(not_supported(
            &restart_path,
            Bad::str(other),
            &["OnFailure", "Never"],
        )),
    }
}

fn has_label(template: &Value, label: &str, expected: &str, errs: &mut Vec<FieldError>) {
    let labels = map(&template["metadata"], "labels");
    let path = key("spec.template.metadata.labels", label);
    let detail = format!("must be '{expected}'");
    match labels.and_then(|l| l.get(label)) {
        None => errs.push(required(&path, &detail)),
        Some(v) if scalar_text(v) != expected => {
            errs.push(invalid(&path, Bad::Raw(go_string_map(labels)), &detail));
        }
        Some(_) => {}
    }
}

pub(super) fn validate_job(job: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &job["spec"];
    let name = text(&job["metadata"], "name");
    let uid = text(&job["metadata"], "uid");
    let selector_value = spec.get("selector").filter(|s| !s.is_null());
    if old.is_none() && !flag(spec, "manualSelector") {
        if let Some(selector) = selector_value {
            if uid.is_empty() {
                errs.push(required("metadata.uid", ""));
            }
            let template = &spec["template"];
            has_label(template, LEGACY_CONTROLLER_UID_LABEL, uid, errs);
            has_label(template, LEGACY_JOB_NAME_LABEL, name, errs);
            has_label(template, CONTROLLER_UID_LABEL, uid, errs);
            has_label(template, JOB_NAME_LABEL, name, errs);
            let mut expected = Obj::new();
            for (k, v) in [
                (LEGACY_CONTROLLER_UID_LABEL, uid),
                (LEGACY_JOB_NAME_LABEL, name),
                (CONTROLLER_UID_LABEL, uid),
                (JOB_NAME_LABEL, name),
            ] {
                expected.insert(k.into(), json!(v));
            }
            if !selector_matches(selector, Some(&expected)) {
                errs.push(invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(selector)),
                    "`selector` not auto-generated",
                ));
            }
        }
    }
    validate_job_spec(spec, "spec", errs);
    if selector_value.is_none() {
        errs.push(required("spec.selector", ""));
    }
    let selector = validate_label_selector(selector_value, "spec.selector", errs);
    let template = &spec["template"];
    if selector_mismatch(&selector, map(&template["metadata"], "labels")) {
        errs.push(mismatch_error(template, "spec.template"));
    }
    if old.is_none() && text(spec, "completionMode") == "Indexed" {
        if let Some(completions) = int(spec, "completions").filter(|c| *c > 0) {
            // Indexed pods are named "<job>-<index>" and that must stay a DNS label.
            let hostname = format!("{name}-{}", completions - 1);
            if !dns1123_label(&hostname).is_empty() {
                errs.push(invalid(
                    "metadata.name",
                    Bad::str(name),
                    &format!("will not able to create pod with invalid DNS label: {hostname}"),
                ));
            }
        }
    }
    if let Some(old) = old {
        let old_spec = &old["spec"];
        let completions_changed = !sem_eq(spec.get("completions"), old_spec.get("completions"));
        if completions_changed {
            // Elastic indexed Jobs may scale completions together with parallelism.
            let elastic = text(spec, "completionMode") == "Indexed"
                && present(spec, "completions")
                && present(old_spec, "completions");
            if !elastic {
                errs.push(invalid(
                    "spec.completions",
                    json_bad(spec.get("completions")),
                    IMMUTABLE_MSG,
                ));
            } else if int(spec, "completions") != int(spec, "parallelism") {
                errs.push(invalid(
                    "spec.completions",
                    json_bad(spec.get("completions")),
                    "can only be modified in tandem with spec.parallelism",
                ));
            }
        }
        immutable_selector(job, old, errs);
        let mut new_template = spec.get("template").cloned().unwrap_or(Value::Null);
        let old_template = old_spec.get("template").cloned().unwrap_or(Value::Null);
        // A suspended Job that never started may still have its scheduling directives changed.
        if flag(old_spec, "suspend") && !present(&old["status"], "startTime") {
            for (section, fields) in [
                ("metadata", &["labels", "annotations"][..]),
                (
                    "spec",
                    &["nodeSelector", "affinity", "tolerations", "schedulingGates"][..],
                ),
            ] {
                for field in fields {
                    let old_value = old_template[section].get(*field).cloned();
                    if let Some(m) = new_template.get_mut(section).and_then(Value::as_object_mut) {
                        match old_value {
                            Some(v) => m.insert((*field).into(), v),
                            None => m.remove(*field),
                        };
                    }
                }
            }
        }
        if !sem_eq(Some(&new_template), Some(&old_template)) {
            errs.push(invalid(
                "spec.template",
                json_bad(spec.get("template")),
                IMMUTABLE_MSG,
            ));
        }
        if !sem_eq(spec.get("completionMode"), old_spec.get("completionMode")) {
            errs.push(invalid(
                "spec.completionMode",
                Bad::str(text(spec, "completionMode")),
                IMMUTABLE_MSG,
            ));
        }
    }
}

pub(super) fn validate_cron_job(cj: &Value, errs: &mut Vec<FieldError>) {
    let spec = &cj["spec"];
    let schedule = text(spec, "schedule");
    if schedule.is_empty() {
        errs.push(required("spec.schedule", ""));
    } else {
        let tz_prefixed = schedule.starts_with("TZ=") || schedule.starts_with("CRON_TZ=");
        if !tz_prefixed {
            if let Err(e) = parse_cron(schedule) {
                errs.push(invalid("spec.schedule", Bad::str(schedule), &e));
            }
        }
        if schedule.contains("TZ") {
            errs.push(invalid(
                "spec.schedule",
                Bad::str(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    for field in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        nonnegative(spec, field, &child("spec", field), errs);
    }
    enum_field(
        spec,
        "concurrencyPolicy",
        "spec.concurrencyPolicy",
        &["Allow", "Forbid", "Replace"],
        errs,
    );
    let job_spec = &spec["jobTemplate"]["spec"];
    validate_job_spec(job_spec, "spec.jobTemplate.spec", errs);
    if let Some(selector) = job_spec.get("selector").filter(|s| !s.is_null()) {
        errs.push(invalid(
            "spec.jobTemplate.spec.selector",
            Bad::Raw(go_label_selector(selector)),
            "`selector` will be auto-generated",
        ));
    }
    if flag(job_spec, "manualSelector") {
        errs.push(not_supported(
            "spec.jobTemplate.spec.manualSelector",
            Bad::Raw("true".into()),
            &["nil", "false"],
        ));
    }
}

/// robfig/cron's standard parser (five fields or a descriptor), with its error texts.
fn parse_cron(spec: &str) -> Result<(), String> {
    if spec.starts_with('@') {
        return match spec {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            s if s.starts_with("@every ") => {
                let d = &s["@every ".len()..];
                if go_duration_ok(d) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {s}: time: invalid duration {}",
                        go_quote(d)
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(i64, i64, &[&str], i64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, first)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            cron_range(expr, min, max, names, first)?;
        }
    }
    Ok(())
}

fn cron_int(expr: &str) -> Result<i64, String> {
    let n: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            go_quote(expr)
        )
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n)
}

fn cron_range(expr: &str, min: i64, max: i64, names: &[&str], first: i64) -> Result<(), String> {
    let int_or_name = |s: &str| -> Result<i64, String> {
        match names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            Some(i) => Ok(i as i64 + first),
            None => cron_int(s),
        }
    };
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end) = if low_high[0] == "*" || low_high[0] == "?" {
        (min, max)
    } else {
        let start = int_or_name(low_high[0])?;
        match low_high.len() {
            1 => (start, start),
            2 => (start, int_or_name(low_high[1])?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = cron_int(range_and_step[1])?;
            if low_high.len() == 1 {
                end = max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// Whether Go's `time.ParseDuration` accepts `s` ("1h30m", "90s", "0").
fn go_duration_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{create_errors, defaulted, job, update_errors};
    use crate::admission::validate;

    #[test]
    fn job_templates_must_not_restart_always() {
        let mut v = job();
        v["spec"]["template"]["spec"]
            .as_object_mut()
            .map(|s| s.remove("restartPolicy"));
        assert_eq!(
            create_errors("Job", v),
            [
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
            ]
        );
        let mut sometimes = job();
        sometimes["spec"]["template"]["spec"]["restartPolicy"] = json!("Sometimes");
        assert_eq!(
            create_errors("Job", sometimes),
            [
                "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"OnFailure\", \"Never\"",
            ]
        );
    }

    #[test]
    fn job_generated_selector_is_checked_and_immutable() {
        let mut tampered = defaulted("Job", job());
        tampered["spec"]["template"]["metadata"]["labels"]["controller-uid"] = json!("other");
        let errs: Vec<String> = validate("Job", &tampered, None)
            .iter()
            .map(FieldError::describe)
            .collect();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with(
            "spec.template.metadata.labels[controller-uid]: Invalid value: map[string]string{"
        ));
        assert!(errs[0].ends_with(": must be '1234'"));

        let old = job();
        let mut new = job();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.40");
        let errs = update_errors("Job", old.clone(), new);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("spec.template: Invalid value: {"));
        assert!(errs[0].ends_with(": field is immutable"));

        let mut suspended = job();
        suspended["spec"]["suspend"] = json!(true);
        let mut relabelled = suspended.clone();
        relabelled["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert!(update_errors("Job", suspended, relabelled).is_empty());

        let mut more = job();
        more["spec"]["completions"] = json!(3);
        assert_eq!(
            update_errors("Job", old, more),
            ["spec.completions: Invalid value: 3: field is immutable"]
        );
    }

    #[test]
    fn indexed_jobs_need_completions_and_short_names() {
        let mut v = job();
        v["spec"]["completionMode"] = json!("Indexed");
        v["spec"]["parallelism"] = json!(2);
        assert_eq!(
            create_errors("Job", v),
            ["spec.completions: Required value: when completion mode is Indexed"]
        );
        let mut long = job();
        let name = "a".repeat(62);
        long["metadata"]["name"] = json!(name);
        long["spec"]["completionMode"] = json!("Indexed");
        long["spec"]["completions"] = json!(10);
        let errs = create_errors("Job", long);
        assert!(errs.contains(&format!(
            "metadata.name: Invalid value: \"{name}\": will not able to create pod with invalid DNS label: {name}-9"
        )));
    }

    #[test]
    fn cron_jobs() {
        let cj = |schedule: &str, restart: &str| {
            json!({"metadata": {"name": "c"}, "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}}}}}})
        };
        assert!(create_errors("CronJob", cj("*/5 * * * *", "OnFailure")).is_empty());
        assert!(create_errors("CronJob", cj("0 9-17/2 * jan-jun MON-FRI", "Never")).is_empty());
        assert!(create_errors("CronJob", cj("@hourly", "Never")).is_empty());
        assert_eq!(
            create_errors("CronJob", cj("* * *", "Always")),
            [
                "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]",
                "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
            ]
        );
        assert_eq!(
            create_errors("CronJob", cj("61 * * * *", "Never")),
            [
                "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
            ]
        );
        assert_eq!(
            create_errors("CronJob", cj("x * * * *", "Never")),
            [
                "spec.schedule: Invalid value: \"x * * * *\": failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
            ]
        );
        assert_eq!(
            create_errors("CronJob", cj("@often", "Never")),
            ["spec.schedule: Invalid value: \"@often\": unrecognized descriptor: @often"]
        );
        assert!(create_errors("CronJob", cj("@every 1h30m", "Never")).is_empty());
    }
}
