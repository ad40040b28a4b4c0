//! The Job controller (kube-controller-manager's `job`): runs pods of the template until
//! `completions` of them succeed (NonIndexed), or until every index in `0..completions` has
//! a succeeded pod (Indexed, see [`indexed`]), at most `parallelism` at once; gives up after
//! more than `backoffLimit` failures or past `activeDeadlineSeconds`; waits out an
//! exponential back-off before replacing failed pods (see [`backoff`]); and stops its pods
//! while `suspend` is set.
//!
//! One reconcile, over the Job's pods from the cache:
//!
//! ```text
//! finished pods still holding batch.kubernetes.io/job-tracking
//!   ──▶ status.uncountedTerminatedPods, or completedIndexes for Indexed successes
//!       (written first, so a crash cannot lose them)
//!   ──▶ finalizer removed from each pod ──▶ moved into status.succeeded / status.failed
//! failed > backoffLimit, or past the deadline ──▶ FailureTarget, active pods deleted,
//!   then Failed (BackoffLimitExceeded / DeadlineExceeded) once none is left
//! succeeded ≥ completions ──▶ SuccessCriteriaMet, then Complete with completionTime
//! suspended ──▶ active pods deleted, Suspended=True (JobSuspended)
//! otherwise ──▶ Suspended=False (JobResumed, startTime reset) if it was suspended;
//!   surplus pods deleted (parallelism lowered, duplicate or finished indexes);
//!   pods created up to min(parallelism, completions − succeeded) once the back-off allows
//! ```
//!
//! Pods are created with the tracking finalizer and a controller reference; creations and
//! deletions are expectations (see [`crate::expectations`]) so a cache that lags does not
//! make or delete twice as many. A failed pod is judged by the podFailurePolicy (see
//! [`failure_policy`]) as it is counted. Not done: successPolicy, backoffLimitPerIndex.

pub mod backoff;
pub mod failure_policy;
pub mod indexed;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
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
    /// How long each Job waits before replacing failed pods.
    pub backoffs: backoff::Backoffs,
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

/// What a reconcile knows of the Job it works on.
struct Work<'a> {
    job: &'a Job,
    ctx: &'a Context,
    key: String,
    namespace: String,
    pods: Api<Pod>,
}

impl Work<'_> {
    /// Creates and deletes the Job's pods, with their expectations and events.
    fn control(&self) -> pods::PodControl<'_, Job> {
        pods::PodControl {
            api: &self.pods,
            owner: self.job,
            key: &self.key,
            expectations: &self.ctx.expectations,
            recorder: &self.ctx.recorder,
        }
    }

    /// Deletes `pods` (their tracking finalizer released first), recording each as kube's
    /// pod control does.
    async fn delete_pods(&self, pods: &[&Arc<Pod>]) -> Result<()> {
        for pod in pods {
            release(&self.pods, pod).await?;
            self.control().delete_owned_pod(pod).await?;
        }
        Ok(())
    }

    /// Creates one pod of the template (for `index`, in Indexed mode); whether it was made
    /// (not when the namespace is going away).
    async fn create_pod(&self, spec: &JobSpec, index: Option<i32>) -> Result<bool> {
        let owner = controller_reference("batch/v1", "Job", &self.job.metadata);
        let mut pod = pods::from_template(&spec.template, &self.namespace, &owner);
        pod.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(TRACKING_FINALIZER.into());
        if let Some(index) = index {
            indexed::assign(&mut pod, &self.job.name_any(), index);
        }
        Ok(self.control().create_owned_pod(&pod).await?.is_some())
    }

    /// Whether the cache shows every create and delete this Job asked for.
    fn expectations_met(&self) -> bool {
        self.ctx.expectations.satisfied(&self.key, |pod| {
            match self
                .ctx
                .pods
                .get(&ObjectRef::new(pod).within(&self.namespace))
            {
                None => Seen::Absent,
                Some(p) => Seen::Present {
                    uid: p.uid().unwrap_or_default(),
                    terminating: p.metadata.deletion_timestamp.is_some(),
                },
            }
        })
    }
}

fn is_indexed(spec: &JobSpec) -> bool {
    spec.completion_mode.as_deref() == Some("Indexed")
}

/// Sets condition `type_` to `status` (adding it when absent, unless it would be False, as
/// kube's `ensureJobConditionStatus`); whether anything changed.
fn ensure_condition(
    status: &mut JobStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == value => false,
        Some(c) => {
            *c = JobCondition {
                status: value.into(),
                ..condition(type_, reason, message, now)
            };
            true
        }
        None if value == "True" => {
            conditions.push(condition(type_, reason, message, now));
            true
        }
        None => false,
    }
}

/// Brings one Job's pods and status in line with its spec.
pub async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let uid = job.uid().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let work = Work {
        job: job.as_ref(),
        ctx: ctx.as_ref(),
        key: format!("{namespace}/{name}"),
        pods: Api::namespaced(ctx.client.clone(), &namespace),
        namespace: namespace.clone(),
    };
    let job_api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut current = (*job).clone();
    let old_status = job.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let now = Timestamp::now();
    let indexed = is_indexed(&spec);
    let completions = spec.completions;
    let suspended = spec.suspend == Some(true);

    let owned: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .collect();
    let finished = condition_true(&status, "Complete") || condition_true(&status, "Failed");
    let mut completed = indexed.then(|| {
        indexed::Indexes::parse(
            status.completed_indexes.as_deref().unwrap_or(""),
            completions.unwrap_or(0),
        )
    });

    // Count finished pods: uncounted (or completed indexes) first, then release them, then
    // the counts.
    let newly_finished: Vec<&Arc<Pod>> = owned
        .iter()
        .filter(|p| matches!(pods::phase(p), "Succeeded" | "Failed") && has_finalizer(p))
        .collect();
    if !newly_finished.is_empty() && !finished {
        for pod in &newly_finished {
            let succeeded = pods::phase(pod) == "Succeeded";
            if let (true, Some(completed)) = (succeeded, completed.as_mut()) {
                // The index is the record: a second pod of the same index adds nothing.
                let index = indexed::index_of(pod).filter(|i| *i < completions.unwrap_or(0));
                if let Some(index) = index {
                    completed.insert(index);
                }
                continue;
            }
            if !succeeded {
                match failure_policy::judge(spec.pod_failure_policy.as_ref(), pod) {
                    failure_policy::Verdict::Ignore => continue,
                    failure_policy::Verdict::Count => {}
                    // Written with the uncounted pods, before their finalizers go, so a
                    // crash cannot lose why the Job failed.
                    failure_policy::Verdict::FailJob(message) => {
                        if !condition_true(&status, "FailureTarget") {
                            let target =
                                condition("FailureTarget", "PodFailurePolicy", &message, now);
                            status.conditions.get_or_insert_with(Vec::new).push(target);
                        }
                    }
                }
            }
            let uncounted = status
                .uncounted_terminated_pods
                .get_or_insert_with(Default::default);
            let list = if succeeded {
                uncounted.succeeded.get_or_insert_with(Vec::new)
            } else {
                uncounted.failed.get_or_insert_with(Vec::new)
            };
            let pod_uid = pod.uid().unwrap_or_default();
            if !list.contains(&pod_uid) {
                list.push(pod_uid);
            }
        }
        if let Some(completed) = &completed {
            status.completed_indexes = Some(completed.to_string());
        }
        write_status(&job_api, &mut current, &status).await?;
    }
    for pod in &newly_finished {
        release(&work.pods, pod).await?;
    }
    // A pod deleted before it finished is not waited for.
    for pod in owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && has_finalizer(p))
    {
        if !matches!(pods::phase(pod), "Succeeded" | "Failed") {
            release(&work.pods, pod).await?;
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
    if let Some(completed) = &completed {
        status.succeeded = Some(i32::try_from(completed.len()).unwrap_or(i32::MAX));
        status.completed_indexes = Some(completed.to_string());
    }
    if finished {
        ctx.backoffs.forget(&uid);
        return Ok(Action::requeue(ctx.resync));
    }

    let active: Vec<&Arc<Pod>> = owned.iter().filter(|p| pods::is_active(p)).collect();
    status.active = Some(i32::try_from(active.len()).unwrap_or(i32::MAX));
    status.ready =
        Some(i32::try_from(active.iter().filter(|p| pods::is_ready(p)).count()).unwrap_or(0));
    // A suspended Job's clock does not run (kube leaves startTime unset until it resumes).
    if !suspended {
        status.start_time.get_or_insert(Time(now));
    }
    let succeeded = status.succeeded.unwrap_or(0);
    let failed = status.failed.unwrap_or(0);
    let parallelism = spec.parallelism.unwrap_or(1);
    let deadline = match (&status.start_time, spec.active_deadline_seconds, suspended) {
        (Some(start), Some(s), false) => {
            Some(start.0 + k8s_openapi::jiff::SignedDuration::from_secs(s))
        }
        _ => None,
    };
    let mut requeue = ctx.resync;

    // A target already set, or a new one.
    let failure_target = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "FailureTarget" && c.status == "True")
        .map(|c| (c.reason.clone().unwrap_or_default(), c.message.clone()));
    let failure = failure_target.or_else(|| {
        if failed > spec.backoff_limit.unwrap_or(6) {
            Some(("BackoffLimitExceeded".to_owned(), None))
        } else if deadline.is_some_and(|d| now >= d) {
            Some(("DeadlineExceeded".to_owned(), None))
        } else {
            None
        }
    });
    let success = match (&completed, completions) {
        (Some(completed), Some(c)) => i32::try_from(completed.len()).unwrap_or(i32::MAX) >= c,
        _ => succeeded > 0 && completions.map_or(active.is_empty(), |c| succeeded >= c),
    };

    if let Some((reason, message)) = failure {
        let message = message.unwrap_or_else(|| {
            if reason == "DeadlineExceeded" {
                "Job was active longer than specified deadline".into()
            } else {
                "Job has reached the specified backoff limit".into()
            }
        });
        let message = message.as_str();
        if !condition_true(&status, "FailureTarget") {
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(condition("FailureTarget", &reason, message, now));
        }
        work.delete_pods(&active).await?;
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
        work.delete_pods(&active).await?;
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
    } else if suspended {
        work.delete_pods(&active).await?;
        status.active = Some(0);
        status.ready = Some(0);
        let changed = ensure_condition(
            &mut status,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        );
        if changed {
            ctx.recorder.record(
                job.as_ref(),
                EventType::Normal,
                "Suspended",
                "Job suspended".into(),
            );
        }
    } else {
        let resumed = ensure_condition(
            &mut status,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        );
        if resumed {
            // activeDeadlineSeconds counts the time the Job is continuously active.
            status.start_time = Some(Time(now));
            ctx.recorder.record(
                job.as_ref(),
                EventType::Normal,
                "Resumed",
                "Job resumed".into(),
            );
        }
        let wait = ctx
            .backoffs
            .observe(&uid, failed, succeeded, tokio::time::Instant::now());
        if work.expectations_met() {
            let wanted = completions.map_or(parallelism, |c| (c - succeeded).min(parallelism));
            let wanted = usize::try_from(wanted).unwrap_or(0);
            let (surplus, indexes) = match &completed {
                Some(completed) => {
                    indexed_surplus(&active, completed, completions.unwrap_or(0), wanted)
                }
                None => (surplus(&active, wanted, now), BTreeSet::new()),
            };
            work.delete_pods(&surplus).await?;
            let running = active.len() - surplus.len();
            let missing = wanted.saturating_sub(running);
            if missing > 0 && !wait.is_zero() {
                requeue = requeue.min(wait);
            } else if missing > 0 {
                let to_make: Vec<Option<i32>> = match &completed {
                    Some(completed) => {
                        indexed::pending(completions.unwrap_or(0), completed, &indexes, missing)
                            .into_iter()
                            .map(Some)
                            .collect()
                    }
                    None => vec![None; missing],
                };
                for index in to_make {
                    if work.create_pod(&spec, index).await? {
                        status.active = Some(status.active.unwrap_or(0) + 1);
                    }
                }
            }
            status.active =
                Some(status.active.unwrap_or(0) - i32::try_from(surplus.len()).unwrap_or(0));
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

/// The active pods past `wanted` (parallelism lowered), kube's deletion order: unscheduled,
/// pending, not ready, newer first.
fn surplus<'a>(active: &[&'a Arc<Pod>], wanted: usize, now: Timestamp) -> Vec<&'a Arc<Pod>> {
    if active.len() <= wanted {
        return Vec::new();
    }
    let mut ranked: Vec<&Pod> = active.iter().map(|p| &***p).collect();
    let related = ranked.clone();
    pods::sort_for_deletion(&mut ranked, &related, now);
    let doomed: BTreeSet<String> = ranked[..active.len() - wanted]
        .iter()
        .map(|p| p.name_any())
        .collect();
    active
        .iter()
        .copied()
        .filter(|p| doomed.contains(&p.name_any()))
        .collect()
}

/// For an Indexed Job: the active pods to delete (no index or one past the completions, an
/// index already completed, a second pod of one index, the highest indexes past `wanted`),
/// and the indexes the rest run.
fn indexed_surplus<'a>(
    active: &[&'a Arc<Pod>],
    completed: &indexed::Indexes,
    completions: i32,
    wanted: usize,
) -> (Vec<&'a Arc<Pod>>, BTreeSet<i32>) {
    let mut doomed = Vec::new();
    let mut by_index: BTreeMap<i32, &'a Arc<Pod>> = BTreeMap::new();
    let mut oldest_first: Vec<&'a Arc<Pod>> = active.to_vec();
    oldest_first.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    for pod in oldest_first {
        match indexed::index_of(pod) {
            Some(i) if i < completions && !completed.contains(i) && !by_index.contains_key(&i) => {
                by_index.insert(i, pod);
            }
            _ => doomed.push(pod),
        }
    }
    while by_index.len() > wanted {
        let (_, pod) = by_index.pop_last().expect("more than wanted");
        doomed.push(pod);
    }
    (doomed, by_index.into_keys().collect())
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
