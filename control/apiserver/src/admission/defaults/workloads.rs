//! Defaults of the workload controllers: ReplicationControllers, Deployments, DaemonSets,
//! StatefulSets, Jobs (with their generated selector and labels) and CronJobs.

use serde_json::{json, Value};

use super::pod::default_pod_template;
use super::{default_persistent_volume_claim, default_status};
use crate::admission::field::MAX_INT32;
use crate::admission::json::{
    default_field, each_mut, entry_obj, flag, is_blank, obj_mut, present, text,
};
use crate::admission::Obj;

pub(crate) fn default_replication_controller(rc: &mut Value) {
    let labels = rc["spec"]["template"]["metadata"]
        .get("labels")
        .filter(|l| l.is_object())
        .cloned();
    let Some(spec) = obj_mut(rc, "spec") else {
        return;
    };
    spec.entry("replicas").or_insert(json!(1));
    if let Some(labels) = labels {
        if spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Obj::is_empty)
        {
            spec.insert("selector".into(), labels.clone());
        }
        if let Some(meta) = obj_mut(rc, "metadata") {
            if meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Obj::is_empty)
            {
                meta.insert("labels".into(), labels);
            }
        }
    }
    default_pod_template(rc["spec"].get_mut("template"));
    default_status(rc, json!({"replicas": 0}));
}

pub(crate) fn default_deployment(d: &mut Value) {
    let Some(spec) = obj_mut(d, "spec") else {
        return;
    };
    spec.entry("replicas").or_insert(json!(1));
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    spec.entry("progressDeadlineSeconds").or_insert(json!(600));
    let spec = &mut d["spec"];
    if let Some(strategy) = obj_mut(spec, "strategy") {
        let strategy_type = strategy
            .entry("type")
            .or_insert(json!("RollingUpdate"))
            .clone();
        if strategy_type == "RollingUpdate" {
            if let Some(rolling) = entry_obj(strategy, "rollingUpdate") {
                rolling.entry("maxUnavailable").or_insert(json!("25%"));
                rolling.entry("maxSurge").or_insert(json!("25%"));
            }
        }
    }
    default_pod_template(d["spec"].get_mut("template"));
    default_status(d, json!({}));
}

pub(crate) fn default_daemon_set(ds: &mut Value) {
    let Some(spec) = obj_mut(ds, "spec") else {
        return;
    };
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    let spec = &mut ds["spec"];
    if let Some(strategy) = obj_mut(spec, "updateStrategy") {
        let strategy_type = strategy
            .entry("type")
            .or_insert(json!("RollingUpdate"))
            .clone();
        if strategy_type == "RollingUpdate" {
            if let Some(rolling) = entry_obj(strategy, "rollingUpdate") {
                rolling.entry("maxUnavailable").or_insert(json!(1));
                rolling.entry("maxSurge").or_insert(json!(0));
            }
        }
    }
    default_pod_template(ds["spec"].get_mut("template"));
    default_status(
        ds,
        json!({
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }),
    );
}

pub(crate) fn default_stateful_set(sts: &mut Value) {
    let Some(spec) = obj_mut(sts, "spec") else {
        return;
    };
    spec.entry("podManagementPolicy")
        .or_insert(json!("OrderedReady"));
    spec.entry("replicas").or_insert(json!(1));
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    let spec = &mut sts["spec"];
    if let Some(strategy) = obj_mut(spec, "updateStrategy") {
        // Only an unset type gets a rollingUpdate block; an explicit RollingUpdate without one
        // stays without one, as in SetDefaults_StatefulSet.
        if is_blank(strategy.get("type")) {
            strategy.insert("type".into(), json!("RollingUpdate"));
            let slot = strategy.entry("rollingUpdate").or_insert(Value::Null);
            if slot.is_null() {
                *slot = json!({});
            }
        }
        if strategy.get("type") == Some(&json!("RollingUpdate")) {
            if let Some(rolling) = strategy.get_mut("rollingUpdate").filter(|r| r.is_object()) {
                default_field(rolling, "partition", json!(0));
            }
        }
    }
    if let Some(policy) = obj_mut(spec, "persistentVolumeClaimRetentionPolicy") {
        policy.entry("whenDeleted").or_insert(json!("Retain"));
        policy.entry("whenScaled").or_insert(json!("Retain"));
    }
    each_mut(spec, "volumeClaimTemplates", |pvc| {
        if pvc.is_object() {
            default_persistent_volume_claim(pvc);
        }
    });
    default_pod_template(sts["spec"].get_mut("template"));
    default_status(sts, json!({"replicas": 0, "availableReplicas": 0}));
}

pub(crate) const LEGACY_JOB_NAME_LABEL: &str = "job-name";
pub(crate) const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub(crate) const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub(crate) const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

pub(crate) fn default_job(job: &mut Value) {
    let name = text(&job["metadata"], "name").to_owned();
    let uid = text(&job["metadata"], "uid").to_owned();
    let Some(spec) = obj_mut(job, "spec") else {
        return;
    };
    let spec_value = Value::Object(spec.clone());
    if is_blank(spec_value.get("completions")) && is_blank(spec_value.get("parallelism")) {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    let spec = &mut job["spec"];
    default_field(spec, "parallelism", json!(1));
    let backoff = if present(spec, "backoffLimitPerIndex") {
        json!(MAX_INT32)
    } else {
        json!(6)
    };
    default_field(spec, "backoffLimit", backoff);
    default_field(spec, "completionMode", json!("NonIndexed"));
    default_field(spec, "suspend", json!(false));
    if let Some(policy) = spec.get_mut("podFailurePolicy").filter(|p| p.is_object()) {
        each_mut(policy, "rules", |rule| {
            each_mut(rule, "onPodConditions", |c| {
                default_field(c, "status", json!("True"))
            });
        });
    }
    let replacement = if present(spec, "podFailurePolicy") {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_field(spec, "podReplacementPolicy", json!(replacement));
    default_field(spec, "manualSelector", json!(false));

    // The Job strategy's generateSelector: pods carry the Job's name and uid, and the selector
    // picks them by uid alone.
    if !flag(spec, "manualSelector") && !uid.is_empty() {
        let labels = obj_mut(spec, "template")
            .and_then(|t| entry_obj(t, "metadata"))
            .and_then(|m| entry_obj(m, "labels"));
        if let Some(labels) = labels {
            for (k, v) in [
                (LEGACY_JOB_NAME_LABEL, &name),
                (JOB_NAME_LABEL, &name),
                (LEGACY_CONTROLLER_UID_LABEL, &uid),
                (CONTROLLER_UID_LABEL, &uid),
            ] {
                labels.entry(k).or_insert(json!(v));
            }
        }
        let match_labels = obj_mut(spec, "selector").and_then(|s| entry_obj(s, "matchLabels"));
        if let Some(match_labels) = match_labels {
            match_labels
                .entry(CONTROLLER_UID_LABEL)
                .or_insert(json!(uid));
        }
    }
    default_pod_template(job["spec"].get_mut("template"));

    // SetDefaults_Job copies the template's labels onto an unlabelled Job; kube shares the
    // map, so the Job ends up with the generated labels too.
    let template_labels = job["spec"]["template"]["metadata"]
        .get("labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(meta) = obj_mut(job, "metadata") {
            if meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Obj::is_empty)
            {
                meta.insert("labels".into(), labels);
            }
        }
    }
    default_status(job, json!({}));
}

pub(crate) fn default_cron_job(cj: &mut Value) {
    let Some(spec) = obj_mut(cj, "spec") else {
        return;
    };
    spec.entry("concurrencyPolicy").or_insert(json!("Allow"));
    spec.entry("suspend").or_insert(json!(false));
    spec.entry("successfulJobsHistoryLimit").or_insert(json!(3));
    spec.entry("failedJobsHistoryLimit").or_insert(json!(1));
    if let Some(job_spec) = cj["spec"]
        .get_mut("jobTemplate")
        .and_then(|t| t.get_mut("spec"))
        .filter(|s| s.is_object())
    {
        if let Some(policy) = job_spec
            .get_mut("podFailurePolicy")
            .filter(|p| p.is_object())
        {
            each_mut(policy, "rules", |rule| {
                each_mut(rule, "onPodConditions", |c| {
                    default_field(c, "status", json!("True"))
                });
            });
        }
        default_pod_template(job_spec.get_mut("template"));
    }
    default_status(cj, json!({}));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{create_errors, defaulted, deployment, job};

    #[test]
    fn deployment_defaults_match_kube() {
        let d = defaulted("Deployment", deployment());
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let recreate = defaulted(
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}, "replicas": 3}}),
        );
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(recreate["spec"]["replicas"], 3);
    }

    #[test]
    fn replica_set_daemon_set_and_stateful_set_defaults() {
        let rs = defaulted("ReplicaSet", json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);
        assert_eq!(rs["status"], json!({"replicas": 0}));

        let ds = defaulted("DaemonSet", json!({"spec": {}}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(ds["status"]["numberReady"], 0);

        let sts = defaulted(
            "StatefulSet",
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"resources": {"requests": {"storage": "1024Mi"}}}}]}}),
        );
        let spec = &sts["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        let claim = &spec["volumeClaimTemplates"][0];
        assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
        assert_eq!(claim["status"]["phase"], "Pending");

        let explicit = defaulted(
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}),
        );
        assert_eq!(
            explicit["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let j = defaulted("Job", job());
        let spec = &j["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}})
        );
        let labels = json!({
            "batch.kubernetes.io/controller-uid": "1234",
            "batch.kubernetes.io/job-name": "pi",
            "controller-uid": "1234",
            "job-name": "pi"
        });
        assert_eq!(spec["template"]["metadata"]["labels"], labels);
        assert_eq!(j["metadata"]["labels"], labels);
        assert!(create_errors("Job", job()).is_empty());
    }

    #[test]
    fn job_parallelism_alone_leaves_completions_unset() {
        let mut v = job();
        v["spec"]["parallelism"] = json!(3);
        v["spec"]["backoffLimitPerIndex"] = json!(1);
        let j = defaulted("Job", v);
        assert!(j["spec"].get("completions").is_none());
        assert_eq!(j["spec"]["parallelism"], 3);
        assert_eq!(j["spec"]["backoffLimit"], MAX_INT32);
    }

    #[test]
    fn manual_selector_jobs_keep_their_labels() {
        let mut v = job();
        v["spec"]["manualSelector"] = json!(true);
        v["spec"]["selector"] = json!({"matchLabels": {"run": "pi"}});
        v["spec"]["template"]["metadata"] = json!({"labels": {"run": "pi"}});
        v["metadata"]["labels"] = json!({"team": "a"});
        let j = defaulted("Job", v);
        assert_eq!(
            j["spec"]["template"]["metadata"]["labels"],
            json!({"run": "pi"})
        );
        assert_eq!(j["metadata"]["labels"], json!({"team": "a"}));
        assert_eq!(j["spec"]["selector"], json!({"matchLabels": {"run": "pi"}}));
    }

    #[test]
    fn cronjob_defaults_leave_the_job_template_alone() {
        let cj = defaulted(
            "CronJob",
            json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
        );
        let spec = &cj["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        let job_spec = &spec["jobTemplate"]["spec"];
        assert!(job_spec.get("backoffLimit").is_none());
        assert_eq!(job_spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(
            job_spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
    }
}
