//! The Job controller (kube-controller-manager's `job`), for NonIndexed Jobs: runs pods of
//! the template until `completions` of them succeed, at most `parallelism` at once, and
//! gives up after more than `backoffLimit` failures or past `activeDeadlineSeconds`.
//!
//! One reconcile, over the Job's pods from the cache:
//!
//! ```text
//! finished pods still holding batch.kubernetes.io/job-tracking
//!   ──▶ status.uncountedTerminatedPods (written first, so a crash cannot lose them)
//!   ──▶ finalizer removed from each pod ──▶ moved into status.succeeded / status.failed
//! failed > backoffLimit, or past the deadline ──▶ FailureTarget, active pods deleted,
//!   then Failed (BackoffLimitExceeded / DeadlineExceeded) once none is left
//! succeeded ≥ completions ──▶ SuccessCriteriaMet, then Complete with completionTime
//! otherwise ──▶ pods created up to min(parallelism, completions − succeeded)
//! ```
//!
//! Pods are created with the tracking finalizer and a controller reference; their creations
//! are expectations (see [`crate::expectations`]) so a cache that lags does not make twice
//! as many. Not done: Indexed completion mode, the exponential backoff between retries,
//! podFailurePolicy, successPolicy, suspend.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;

use crate::error::{is_not_found, Error, Result};
use crate::events::{EventType, Recorder};
use crate::expectations::{Expectations, Seen};
use crate::ownership::{controller_of, controller_reference, is_controlled_by};
use crate::pods;

/// The finalizer that keeps a finished pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every pod.
    pub pods: Store<Pod>,
    /// Every Job.
    pub jobs: Store<Job>,
    /// Pod creations not yet in the cache.
    pub expectations: Expectations,
    /// Events (`job-controller`).
    pub recorder: Recorder,
    /// The safety-net requeue.
    pub resync: Duration,
}

/// Runs the controller, triggered by Jobs and by their pods.
pub fn run(
    ctx: Arc<Context>,
    jobs: impl Stream<Item = Result<Job, watcher::Error>> + Send + 'static,
    pods: impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
) -> impl Future<Output = ()> {
    Controller::for_stream(jobs, ctx.jobs.clone())
        .watches_stream(pods, |pod: Pod| {
            let namespace = pod.namespace().unwrap_or_default();
            controller_of(&pod.metadata)
                .filter(|o| o.kind == "Job")
                .map(|o| ObjectRef::new(&o.name).within(&namespace))
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "job reconcile");
            }
            futures::future::ready(())
        })
}

fn error_policy(job: Arc<Job>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(job = %job.name_any(), %error, "job reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

fn condition_true(status: &JobStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

fn condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// Removes the tracking finalizer from `pod` (a JSON patch guarded by the list it read).
async fn release(api: &Api<Pod>, pod: &Pod) -> Result<()> {
    let finalizers: Vec<&String> = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": pod.resource_version()}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Brings one Job's pods and status in line with its spec.
pub async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let key = format!("{namespace}/{name}");
    let uid = job.uid().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let job_api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut current = (*job).clone();
    let old_status = job.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let now = Timestamp::now();

    let owned: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .collect();
    let finished = condition_true(&status, "Complete") || condition_true(&status, "Failed");

    // Count finished pods: uncounted first, then release them, then the counts.
    let newly_finished: Vec<&Arc<Pod>> = owned
        .iter()
        .filter(|p| matches!(pods::phase(p), "Succeeded" | "Failed") && has_finalizer(p))
        .collect();
    if !newly_finished.is_empty() && !finished {
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        for pod in &newly_finished {
            let list = if pods::phase(pod) == "Succeeded" {
                uncounted.succeeded.get_or_insert_with(Vec::new)
            } else {
                uncounted.failed.get_or_insert_with(Vec::new)
            };
            let pod_uid = pod.uid().unwrap_or_default();
            if !list.contains(&pod_uid) {
                list.push(pod_uid);
            }
        }
        write_status(&job_api, &mut current, &status).await?;
    }
    for pod in &newly_finished {
        release(&pod_api, pod).await?;
    }
    // A pod deleted before it finished is not waited for.
    for pod in owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && has_finalizer(p))
    {
        if !matches!(pods::phase(pod), "Succeeded" | "Failed") {
            release(&pod_api, pod).await?;
        }
    }
    if let Some(uncounted) = status.uncounted_terminated_pods.take() {
        let succeeded = uncounted.succeeded.as_ref().map_or(0, Vec::len);
        let failed = uncounted.failed.as_ref().map_or(0, Vec::len);
        status.succeeded =
            Some(status.succeeded.unwrap_or(0) + i32::try_from(succeeded).unwrap_or(0));
        status.failed = Some(status.failed.unwrap_or(0) + i32::try_from(failed).unwrap_or(0));
    }
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods::default());
    if finished {
        return Ok(Action::requeue(ctx.resync));
    }

    let active: Vec<&Arc<Pod>> = owned.iter().filter(|p| pods::is_active(p)).collect();
    status.active = Some(i32::try_from(active.len()).unwrap_or(i32::MAX));
    status.ready =
        Some(i32::try_from(active.iter().filter(|p| pods::is_ready(p)).count()).unwrap_or(0));
    let start = status.start_time.get_or_insert(Time(now)).0;
    let succeeded = status.succeeded.unwrap_or(0);
    let failed = status.failed.unwrap_or(0);
    let completions = spec.completions;
    let parallelism = spec.parallelism.unwrap_or(1);
    let deadline = spec
        .active_deadline_seconds
        .map(|s| start + k8s_openapi::jiff::SignedDuration::from_secs(s));
    let mut requeue = ctx.resync;

    // A target already set, or a new one.
    let failure_target = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "FailureTarget" && c.status == "True")
        .and_then(|c| c.reason.clone());
    let failure = failure_target.or_else(|| {
        if failed > spec.backoff_limit.unwrap_or(6) {
            Some("BackoffLimitExceeded".to_owned())
        } else if deadline.is_some_and(|d| now >= d) {
            Some("DeadlineExceeded".to_owned())
        } else {
            None
        }
    });
    let success = succeeded > 0 && completions.map_or(active.is_empty(), |c| succeeded >= c);

    if let Some(reason) = failure {
        let message = if reason == "DeadlineExceeded" {
            "Job was active longer than specified deadline"
        } else {
            "Job has reached the specified backoff limit"
        };
        if !condition_true(&status, "FailureTarget") {
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(condition("FailureTarget", &reason, message, now));
        }
        delete_pods(&pod_api, &active).await?;
        if active.is_empty() {
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(condition("Failed", &reason, message, now));
            ctx.recorder.record(
                job.as_ref(),
                EventType::Warning,
                &reason,
                message.to_owned(),
            );
        }
    } else if success {
        if !condition_true(&status, "SuccessCriteriaMet") {
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ));
        }
        delete_pods(&pod_api, &active).await?;
        if active.is_empty() {
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(condition(
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ));
            status.completion_time = Some(Time(now));
            ctx.recorder.record(
                job.as_ref(),
                EventType::Normal,
                "Completed",
                "Job completed".into(),
            );
        }
    } else {
        let satisfied = ctx.expectations.satisfied(&key, |pod| {
            match ctx.pods.get(&ObjectRef::new(pod).within(&namespace)) {
                None => Seen::Absent,
                Some(p) => Seen::Present {
                    uid: p.uid().unwrap_or_default(),
                    terminating: p.metadata.deletion_timestamp.is_some(),
                },
            }
        });
        let remaining = completions.map_or(parallelism, |c| (c - succeeded).min(parallelism));
        let missing = usize::try_from(remaining)
            .unwrap_or(0)
            .saturating_sub(active.len());
        if satisfied && missing > 0 {
            let owner = controller_reference("batch/v1", "Job", &job.metadata);
            for _ in 0..missing {
                let mut pod = pods::from_template(&spec.template, &namespace, &owner);
                pod.metadata
                    .finalizers
                    .get_or_insert_with(Vec::new)
                    .push(TRACKING_FINALIZER.into());
                let made = pod_api.create(&PostParams::default(), &pod).await?;
                ctx.expectations.created(&key, &made.name_any());
                status.active = Some(status.active.unwrap_or(0) + 1);
                ctx.recorder.record(
                    job.as_ref(),
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!("Created pod: {}", made.name_any()),
                );
            }
        }
        if let Some(d) = deadline {
            let left = d.duration_since(now).as_secs_f64().max(0.0);
            requeue = requeue.min(Duration::from_secs_f64(left) + Duration::from_millis(100));
        }
    }
    if status != old_status {
        write_status(&job_api, &mut current, &status).await?;
    }
    Ok(Action::requeue(requeue))
}

async fn delete_pods(api: &Api<Pod>, pods: &[&Arc<Pod>]) -> Result<()> {
    for pod in pods {
        release(api, pod).await?;
        match api.delete(&pod.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Replaces the Job's status (guarded by its resourceVersion: a conflict is retried).
/// `job` becomes what the server answered, so a second write in one reconcile carries the
/// new resourceVersion.
async fn write_status(api: &Api<Job>, job: &mut Job, status: &JobStatus) -> Result<()> {
    let mut updated = job.clone();
    updated.status = Some(status.clone());
    *job = api
        .replace_status(&updated.name_any(), &PostParams::default(), &updated)
        .await?;
    Ok(())
}
