//! The Job controller: a Job of 3 completions, 2 at a time, runs 3 pods and completes with
//! kube's conditions and counts; a Job whose pods fail stops past its backoffLimit with
//! BackoffLimitExceeded, each replacement waiting out a doubling back-off; an Indexed Job
//! runs one pod per index (annotation, label, env var, hostname) and keeps completedIndexes
//! in kube's interval form; a suspended Job stops its pods and resumes. The test plays
//! kubelet: it ends each new pod of the namespace with the phase asked for, through
//! `pods/status`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;

use super::{events_with_reason, wait_for, Harness};

/// Plays kubelet: every pod that appears runs and ends in `phase`.
pub(super) struct Finisher(tokio::task::JoinHandle<()>);

impl Finisher {
    pub(super) fn start(client: kube::Client, namespace: &str, phase: &'static str) -> Finisher {
        Finisher::deciding(client, namespace, move |_| Some(json!({"phase": phase})))
    }

    /// Gives each new pod the status `decide` makes for it; a pod it gives none to runs on.
    fn deciding(
        client: kube::Client,
        namespace: &str,
        decide: impl Fn(&Pod) -> Option<serde_json::Value> + Send + 'static,
    ) -> Finisher {
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
                    let status = decide(&pod).unwrap_or_else(|| json!({"phase": "Running"}));
                    let status = json!({ "status": status });
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
    spec["template"] = json!({"spec": {"restartPolicy": "Never", "subdomain": "workers",
        "containers": [{"name": "c", "image": "busybox"}]}});
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

#[tokio::test]
async fn replacements_of_failed_pods_wait_a_doubling_back_off() {
    let base = Duration::from_millis(400);
    let h = Harness::start_with(|c| keel_controllers::ControllersConfig {
        job_pod_failure_backoff: base,
        ..c
    })
    .await;
    h.namespace("batch").await;
    // When each pod appeared, as the kubelet's watch sees them.
    let appeared = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = Arc::clone(&appeared);
    let _kubelet = Finisher::deciding(h.client.clone(), "batch", move |_| {
        seen.lock().unwrap().push(Instant::now());
        Some(json!({"phase": "Failed"}))
    });
    create_job(
        &h,
        "batch",
        json!({"completions": 1, "parallelism": 1, "backoffLimit": 3}),
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "batch");
    let failed = wait_for_condition(&jobs, "Failed").await;
    assert_eq!(failed.status.unwrap().failed, Some(4));
    let times = appeared.lock().unwrap().clone();
    assert_eq!(times.len(), 4, "one pod per try");
    // After the 1st, 2nd and 3rd failure: base, 2 x base, 4 x base.
    for (n, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let wait = base * (1 << n);
        assert!(
            gap >= wait,
            "replacement {n} came after {gap:?}, before {wait:?}"
        );
    }
    h.stop().await;
}

/// The value of the `JOB_COMPLETION_INDEX` variable's field path in `pod`'s first container.
fn index_env(pod: &Pod) -> Option<String> {
    let env = pod.spec.as_ref()?.containers[0].env.as_ref()?;
    let var = env.iter().find(|v| v.name == "JOB_COMPLETION_INDEX")?;
    Some(
        var.value_from
            .as_ref()?
            .field_ref
            .as_ref()?
            .field_path
            .clone(),
    )
}

#[tokio::test]
async fn an_indexed_job_completes_every_index_once() {
    let h = Harness::start().await;
    h.namespace("batch").await;
    // Indexes 2 and 4 run until the test ends them; index 1 fails once.
    let failed_once = Arc::new(Mutex::new(false));
    let _kubelet = Finisher::deciding(h.client.clone(), "batch", move |pod| {
        let index = pod.annotations()["batch.kubernetes.io/job-completion-index"].clone();
        let phase = match index.as_str() {
            "2" | "4" => return None,
            "1" if !std::mem::replace(&mut *failed_once.lock().unwrap(), true) => "Failed",
            _ => "Succeeded",
        };
        Some(json!({ "phase": phase }))
    });
    let spec = json!({"completions": 6, "parallelism": 6, "completionMode": "Indexed"});
    create_job(&h, "batch", spec).await;
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "batch");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "batch");
    let status = wait_for("indexes 0, 1, 3 and 5 completed", 30, || async {
        let status = jobs.get("work").await.unwrap().status?;
        (status.completed_indexes.as_deref() == Some("0-1,3,5") && status.active == Some(2))
            .then_some(status)
    })
    .await;
    assert_eq!((status.succeeded, status.failed), (Some(4), Some(1)));

    let all = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(all.len(), 7, "six indexes and one retry");
    for pod in &all {
        let index = pod.annotations()["batch.kubernetes.io/job-completion-index"].clone();
        assert_eq!(
            pod.labels()["batch.kubernetes.io/job-completion-index"],
            index
        );
        assert!(
            pod.name_any().starts_with(&format!("work-{index}-")),
            "{}",
            pod.name_any()
        );
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(
            spec.hostname.as_deref(),
            Some(format!("work-{index}").as_str())
        );
        assert_eq!(spec.subdomain.as_deref(), Some("workers"));
        assert_eq!(
            index_env(pod).as_deref(),
            Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
        );
    }
    let mut indexes: Vec<String> = all
        .iter()
        .map(|p| p.annotations()["batch.kubernetes.io/job-completion-index"].clone())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "1", "2", "3", "4", "5"]);

    // The last two end: every index is done.
    for pod in all.iter().filter(|p| pods_phase(p) == "Running") {
        let done = json!({"status": {"phase": "Succeeded"}});
        pods.patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(done),
        )
        .await
        .unwrap();
    }
    let done = wait_for_condition(&jobs, "Complete").await;
    let status = done.status.unwrap();
    assert_eq!(status.completed_indexes.as_deref(), Some("0-5"));
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (Some(6), Some(1), Some(0))
    );
    h.stop().await;
}

fn pods_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

async fn active_job_pods(pods: &Api<Pod>) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

#[tokio::test]
async fn a_suspended_job_stops_its_pods_and_resumes() {
    let h = Harness::start().await;
    h.namespace("batch").await;
    let _kubelet = super::Kubelet::start(h.client.clone(), "batch");
    let spec = json!({"completions": 3, "parallelism": 2, "activeDeadlineSeconds": 3600});
    create_job(&h, "batch", spec).await;
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "batch");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "batch");
    wait_for("two running pods", 30, || async {
        (active_job_pods(&pods).await.len() == 2).then_some(())
    })
    .await;
    let started = jobs.get("work").await.unwrap().status.unwrap().start_time;

    let suspend = |on: bool| Patch::Merge(json!({"spec": {"suspend": on}}));
    jobs.patch("work", &PatchParams::default(), &suspend(true))
        .await
        .unwrap();
    let suspended = wait_for_condition(&jobs, "Suspended").await;
    assert_eq!(
        conditions(&suspended),
        strings(&[("Suspended", "True", "JobSuspended")])
    );
    assert_eq!(suspended.status.unwrap().active, Some(0));
    wait_for("the pods to go", 30, || async {
        active_job_pods(&pods).await.is_empty().then_some(())
    })
    .await;
    let deleted = wait_for("two SuccessfulDelete events", 30, || async {
        let events = events_with_reason(&h.client, "batch", "SuccessfulDelete").await;
        (events.len() == 2).then_some(events)
    })
    .await;
    assert!(deleted[0]
        .message
        .as_deref()
        .unwrap()
        .starts_with("Deleted pod: work-"));
    wait_for("the Suspended event", 30, || async {
        let events = events_with_reason(&h.client, "batch", "Suspended").await;
        (events.first()?.message.as_deref() == Some("Job suspended")).then_some(())
    })
    .await;

    jobs.patch("work", &PatchParams::default(), &suspend(false))
        .await
        .unwrap();
    let resumed = wait_for("the job to resume", 30, || async {
        let job = jobs.get("work").await.unwrap();
        conditions(&job)
            .contains(&("Suspended".into(), "False".into(), "JobResumed".into()))
            .then_some(job)
    })
    .await;
    wait_for("two running pods again", 30, || async {
        (active_job_pods(&pods).await.len() == 2).then_some(())
    })
    .await;
    wait_for("the Resumed event", 30, || async {
        let events = events_with_reason(&h.client, "batch", "Resumed").await;
        (events.first()?.message.as_deref() == Some("Job resumed")).then_some(())
    })
    .await;
    // The deadline's clock starts again: startTime is the resume's.
    let restarted = resumed.status.unwrap().start_time;
    assert!(
        restarted.is_some() && restarted >= started,
        "{restarted:?} {started:?}"
    );
    assert_eq!(
        events_with_reason(&h.client, "batch", "SuccessfulCreate")
            .await
            .len(),
        4
    );
    h.stop().await;
}

#[tokio::test]
async fn a_pod_failure_policy_ignores_disruptions_and_fails_the_job_on_an_exit_code() {
    let h = Harness::start().await;
    h.namespace("batch").await;
    // The first pod is disrupted (ignored); the second exits 42 (FailJob).
    let tries = Arc::new(Mutex::new(0));
    let _kubelet = Finisher::deciding(h.client.clone(), "batch", move |_| {
        let mut tries = tries.lock().unwrap();
        *tries += 1;
        Some(if *tries == 1 {
            json!({"phase": "Failed", "conditions": [
                {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]})
        } else {
            json!({"phase": "Failed", "containerStatuses": [{"name": "c", "image": "busybox",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 42, "reason": "Error"}}}]})
        })
    });
    let spec = json!({"completions": 1, "parallelism": 1, "backoffLimit": 6,
    "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}},
    ]}});
    create_job(&h, "batch", spec).await;
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "batch");
    let failed = wait_for_condition(&jobs, "Failed").await;
    assert_eq!(
        conditions(&failed),
        strings(&[
            ("FailureTarget", "True", "PodFailurePolicy"),
            ("Failed", "True", "PodFailurePolicy"),
        ])
    );
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "batch");
    let mut all = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(all.len(), 2);
    all.sort_by_key(|p| p.metadata.creation_timestamp.clone());
    let second = all
        .iter()
        .find(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some()
        })
        .unwrap();
    let message = failed.status.as_ref().unwrap().conditions.as_ref().unwrap()[1]
        .message
        .clone();
    assert_eq!(
        message.as_deref(),
        Some(
            format!(
                "Container c for pod batch/{} failed with exit code 42 matching FailJob rule at index 1",
                second.name_any()
            )
            .as_str()
        )
    );
    // The disrupted pod is not counted against the backoffLimit.
    assert_eq!(failed.status.unwrap().failed, Some(1));
    h.stop().await;
}

#[tokio::test]
async fn a_finished_job_goes_with_its_pods_after_its_ttl() {
    let h = Harness::start().await;
    h.namespace("batch").await;
    let _kubelet = Finisher::start(h.client.clone(), "batch", "Succeeded");
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "batch");
    for (name, ttl) in [("kept", None), ("short", Some(1))] {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"ttlSecondsAfterFinished": ttl, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
        }))
        .unwrap();
        jobs.create(&PostParams::default(), &job).await.unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "batch");
    wait_for("the TTL'd Job and its pod to go", 30, || async {
        let gone = jobs.get_opt("short").await.unwrap().is_none();
        let its_pods = pods
            .list(&ListParams::default().labels("batch.kubernetes.io/job-name=short"))
            .await
            .unwrap()
            .items;
        (gone && its_pods.is_empty()).then_some(())
    })
    .await;
    // The Job without a TTL finished too, and stays with its pod.
    let kept = jobs.get("kept").await.unwrap();
    assert!(conditions(&kept).iter().any(|c| c.0 == "Complete"));
    let its_pods = pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=kept"))
        .await
        .unwrap()
        .items;
    assert_eq!(its_pods.len(), 1);
    h.stop().await;
}
