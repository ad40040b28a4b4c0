//! The Job controller: a Job of 3 completions, 2 at a time, runs 3 pods and completes with
//! kube's conditions and counts; a Job whose pods fail stops past its backoffLimit with
//! BackoffLimitExceeded. The test plays kubelet: it ends each new pod of the namespace
//! with the phase asked for, through `pods/status`.

use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;

use super::{events_with_reason, wait_for, Harness};

/// Plays kubelet: every pod that appears runs and ends in `phase`.
struct Finisher(tokio::task::JoinHandle<()>);

impl Finisher {
    fn start(client: kube::Client, namespace: &str, phase: &'static str) -> Finisher {
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        Finisher(tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher(pods.clone(), watcher::Config::default()));
            while let Some(event) = events.next().await {
                let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event else {
                    continue;
                };
                let status = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if pod.metadata.deletion_timestamp.is_none()
                    && status.is_none_or(|p| p == "Pending")
                {
                    let status = json!({"status": {"phase": phase}});
                    let _ = pods
                        .patch_status(
                            &pod.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(status),
                        )
                        .await;
                }
            }
        }))
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn create_job(h: &Harness, namespace: &str, spec: serde_json::Value) -> Job {
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), namespace);
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}});
    let job: Job =
        serde_json::from_value(json!({"metadata": {"name": "work"}, "spec": spec})).unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap()
}

/// The Job's conditions as (type, status, reason).
fn conditions(job: &Job) -> Vec<(String, String, String)> {
    job.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
            )
        })
        .collect()
}

async fn wait_for_condition(jobs: &Api<Job>, type_: &str) -> Job {
    wait_for(&format!("the job's {type_} condition"), 30, || async {
        let job = jobs.get("work").await.unwrap();
        conditions(&job)
            .iter()
            .any(|c| c.0 == type_ && c.1 == "True")
            .then_some(job)
    })
    .await
}

fn strings(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    v.iter()
        .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
        .collect()
}

#[tokio::test]
async fn a_job_runs_its_completions_and_completes() {
    let h = Harness::start().await;
    h.namespace("batch").await;
    let _kubelet = Finisher::start(h.client.clone(), "batch", "Succeeded");
    let job = create_job(&h, "batch", json!({"completions": 3, "parallelism": 2})).await;
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "batch");
    let done = wait_for_condition(&jobs, "Complete").await;
    assert_eq!(
        conditions(&done),
        strings(&[
            ("SuccessCriteriaMet", "True", "CompletionsReached"),
            ("Complete", "True", "CompletionsReached"),
        ])
    );
    let status = done.status.unwrap();
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (Some(3), Some(0), Some(0))
    );
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    let uncounted = status.uncounted_terminated_pods.unwrap_or_default();
    assert!(uncounted.succeeded.unwrap_or_default().is_empty());

    // Exactly three pods, labelled for the Job, owned by it, counted and released.
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "batch");
    let list = pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=work"))
        .await
        .unwrap()
        .items;
    assert_eq!(list.len(), 3);
    for pod in &list {
        assert_eq!(
            pod.labels()["batch.kubernetes.io/controller-uid"],
            job.uid().unwrap()
        );
        assert_eq!(pod.owner_references()[0].kind, "Job");
        assert!(
            !pod.finalizers()
                .iter()
                .any(|f| f == "batch.kubernetes.io/job-tracking"),
            "{pod:?}"
        );
    }
    assert_eq!(
        events_with_reason(&h.client, "batch", "SuccessfulCreate")
            .await
            .len(),
        3
    );
    wait_for("the Completed event", 30, || async {
        (!events_with_reason(&h.client, "batch", "Completed")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_failing_job_stops_at_its_backoff_limit() {
    let h = Harness::start().await;
    h.namespace("batch").await;
    let _kubelet = Finisher::start(h.client.clone(), "batch", "Failed");
    create_job(
        &h,
        "batch",
        json!({"completions": 1, "parallelism": 1, "backoffLimit": 2}),
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "batch");
    let failed = wait_for_condition(&jobs, "Failed").await;
    assert_eq!(
        conditions(&failed),
        strings(&[
            ("FailureTarget", "True", "BackoffLimitExceeded"),
            ("Failed", "True", "BackoffLimitExceeded"),
        ])
    );
    let status = failed.status.unwrap();
    // backoffLimit 2: the third failure ends it, and no fourth pod is made.
    assert_eq!(
        (status.failed, status.succeeded, status.active),
        (Some(3), Some(0), Some(0))
    );
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "batch");
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
    wait_for("the BackoffLimitExceeded event", 30, || async {
        (!events_with_reason(&h.client, "batch", "BackoffLimitExceeded")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_job_past_its_deadline_fails_and_its_pods_go() {
    let h = Harness::start().await;
    h.namespace("batch").await;
    let _kubelet = super::Kubelet::start(h.client.clone(), "batch");
    let spec = json!({"completions": 4, "parallelism": 2, "activeDeadlineSeconds": 1});
    create_job(&h, "batch", spec).await;
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "batch");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "batch");
    wait_for("two running pods", 30, || async {
        let job = jobs.get("work").await.unwrap();
        (job.status?.active == Some(2)).then_some(())
    })
    .await;
    let failed = wait_for_condition(&jobs, "Failed").await;
    assert_eq!(
        conditions(&failed),
        strings(&[
            ("FailureTarget", "True", "DeadlineExceeded"),
            ("Failed", "True", "DeadlineExceeded"),
        ])
    );
    assert_eq!(failed.status.unwrap().active, Some(0));
    wait_for("the running pods to be deleted", 30, || async {
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    wait_for("the DeadlineExceeded event", 30, || async {
        (!events_with_reason(&h.client, "batch", "DeadlineExceeded")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    h.stop().await;
}
