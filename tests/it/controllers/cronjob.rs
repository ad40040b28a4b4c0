//! The CronJob controller: a CronJob whose start time is due makes its Job (named by the
//! scheduled minute, annotated with it, owned by the CronJob, listed in `status.active`);
//! with Forbid it starts no second while one runs, with Replace it replaces the running one;
//! a finished Job leaves `status.active` and sets `lastSuccessfulTime`; finished Jobs past
//! the history limit are deleted.
//!
//! Schedules count in minutes; rather than wait for one, a test sets the CronJob's
//! `status.lastScheduleTime` minutes back, as if the controller had been down since, so the
//! current minute's start time is due at once.

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt as _;
use serde_json::json;

use super::job::Finisher;
use super::{events_with_reason, rfc3339, wait_for, Harness, Kubelet};

fn cronjob(name: &str, policy: &str, extra: serde_json::Value) -> CronJob {
    let mut spec = json!({
        "schedule": "* * * * *",
        "suspend": true,
        "concurrencyPolicy": policy,
        "jobTemplate": {"metadata": {"labels": {"cron": name}}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}},
    });
    for (key, value) in extra.as_object().unwrap() {
        spec[key] = value.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// Makes the current minute's start time due: the last one five minutes ago.
async fn make_due(cronjobs: &Api<CronJob>, name: &str) {
    let past = rfc3339(Timestamp::now() - SignedDuration::from_mins(5));
    cronjobs
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"lastScheduleTime": past}})),
        )
        .await
        .unwrap();
}

async fn owned_jobs(jobs: &Api<Job>, cron: &str) -> Vec<Job> {
    jobs.list(&ListParams::default().labels(&format!("cron={cron}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect()
}

#[tokio::test]
async fn a_due_cron_job_starts_its_job_and_follows_its_concurrency_policy() {
    let h = Harness::start().await;
    h.namespace("cron").await;
    let _kubelet = Kubelet::start(h.client.clone(), "cron");
    let cronjobs: Api<CronJob> = Api::namespaced(h.client.clone(), "cron");
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "cron");
    cronjobs
        .create(
            &PostParams::default(),
            &cronjob("tick", "Forbid", json!({})),
        )
        .await
        .unwrap();
    make_due(&cronjobs, "tick").await;
    let resume = |on: bool| Patch::Merge(json!({"spec": {"suspend": !on}}));
    cronjobs
        .patch("tick", &PatchParams::default(), &resume(true))
        .await
        .unwrap();

    let first = wait_for("the due Job", 30, || async {
        owned_jobs(&jobs, "tick").await.pop()
    })
    .await;
    let scheduled: Timestamp = first.annotations()
        ["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .parse()
        .unwrap();
    assert_eq!(scheduled.as_second() % 60, 0, "a whole minute: {scheduled}");
    assert!(scheduled <= Timestamp::now());
    assert_eq!(
        first.name_any(),
        format!("tick-{}", scheduled.as_second() / 60)
    );
    let owner = &first.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("CronJob", Some(true))
    );
    let status = wait_for("the CronJob's status", 30, || async {
        let status = cronjobs.get("tick").await.unwrap().status?;
        let active = status.active.clone()?;
        (active.len() == 1 && active[0].uid == first.uid()).then_some(status)
    })
    .await;
    assert_eq!(status.last_schedule_time.map(|t| t.0), Some(scheduled));
    let created = events_with_reason(&h.client, "cron", "SuccessfulCreate").await;
    assert!(
        created
            .iter()
            .any(|e| e.message.as_deref() == Some(&format!("Created job {}", first.name_any()))),
        "{created:?}"
    );

    // Forbid: due again while the Job runs, and nothing starts.
    make_due(&cronjobs, "tick").await;
    wait_for("JobAlreadyActive", 30, || async {
        let events = events_with_reason(&h.client, "cron", "JobAlreadyActive").await;
        let message = events.first()?.message.clone()?;
        (message
            == "Not starting job because prior execution is running and concurrency policy is Forbid")
            .then_some(())
    })
    .await;
    let now = owned_jobs(&jobs, "tick").await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].uid(), first.uid());

    // Replace: due again, and the running Job gives way to a new one.
    cronjobs
        .patch(
            "tick",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"concurrencyPolicy": "Replace"}})),
        )
        .await
        .unwrap();
    make_due(&cronjobs, "tick").await;
    let second = wait_for("the replacement Job", 30, || async {
        let now = owned_jobs(&jobs, "tick").await;
        (now.len() == 1 && now[0].uid() != first.uid()).then(|| now[0].clone())
    })
    .await;
    let deleted = events_with_reason(&h.client, "cron", "SuccessfulDelete").await;
    assert!(
        deleted
            .iter()
            .any(|e| e.message.as_deref() == Some(&format!("Deleted job {}", first.name_any()))),
        "{deleted:?}"
    );

    // The Job's pod succeeds: the Job leaves status.active, lastSuccessfulTime is set.
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "cron");
    let pod = wait_for("the second Job's pod", 30, || async {
        // By uid: the replaced Job had the same name, and its pod may not be collected yet.
        let selector = format!(
            "batch.kubernetes.io/controller-uid={}",
            second.uid().unwrap()
        );
        pods.list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
            .pop()
    })
    .await;
    pods.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .unwrap();
    wait_for("the finished Job to leave status.active", 30, || async {
        let status = cronjobs.get("tick").await.unwrap().status?;
        (status.active.is_none() && status.last_successful_time.is_some()).then_some(())
    })
    .await;
    wait_for("SawCompletedJob", 30, || async {
        let events = events_with_reason(&h.client, "cron", "SawCompletedJob").await;
        let expected = format!(
            "Saw completed job: {}, condition: Complete",
            second.name_any()
        );
        events
            .iter()
            .any(|e| e.message.as_deref() == Some(expected.as_str()))
            .then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn finished_jobs_past_the_history_limit_are_deleted() {
    let h = Harness::start().await;
    h.namespace("cron").await;
    let _kubelet = Finisher::start(h.client.clone(), "cron", "Succeeded");
    let cronjobs: Api<CronJob> = Api::namespaced(h.client.clone(), "cron");
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "cron");
    let cj = cronjobs
        .create(
            &PostParams::default(),
            &cronjob("hist", "Allow", json!({"successfulJobsHistoryLimit": 1})),
        )
        .await
        .unwrap();
    // Three Jobs made from it by hand, as `kubectl create job --from=cronjob/hist` does.
    for i in 0..3 {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": format!("hist-manual-{i}"), "labels": {"cron": "hist"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hist",
                    "uid": cj.uid().unwrap(), "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}},
        }))
        .unwrap();
        jobs.create(&PostParams::default(), &job).await.unwrap();
    }
    wait_for("one finished Job kept", 30, || async {
        let left = owned_jobs(&jobs, "hist").await;
        let done = left.iter().all(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Complete"))
        });
        (left.len() == 1 && done).then_some(())
    })
    .await;
    let deleted = wait_for("two SuccessfulDelete events", 30, || async {
        let events = events_with_reason(&h.client, "cron", "SuccessfulDelete").await;
        (events.len() == 2).then_some(events)
    })
    .await;
    for event in deleted {
        let message = event.message.unwrap();
        assert!(message.starts_with("Deleted job hist-manual-"), "{message}");
    }
    h.stop().await;
}
