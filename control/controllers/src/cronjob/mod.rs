//! The CronJob controller (kube-controller-manager's `cronjob`, v2): makes a Job from the
//! CronJob's template at each time its schedule names, keeps `status.active`,
//! `lastScheduleTime` and `lastSuccessfulTime`, and deletes finished Jobs past the history
//! limits.
//!
//! One reconcile:
//!
//! ```text
//! owned Jobs ──▶ finished ones leave status.active (SawCompletedJob; lastSuccessfulTime),
//!               active refs whose Job is gone leave it (MissingJob)
//! not suspended, schedule due (see schedule) ──▶ missed past startingDeadlineSeconds?
//!   MissSchedule ──▶ Forbid with a Job active? JobAlreadyActive ──▶ Replace? active Jobs
//!   deleted ──▶ Job NAME-<minutes since the epoch> created (SuccessfulCreate), active,
//!   lastScheduleTime
//! finished Jobs past successfulJobsHistoryLimit (3) / failedJobsHistoryLimit (1), oldest
//!   first ──▶ deleted (SuccessfulDelete)
//! requeue at the next start time
//! ```
//!
//! Jobs are named from their scheduled minute, so a retried create finds the Job it made
//! (AlreadyExists) instead of making a second. `kubectl create job --from=cronjob/NAME`
//! needs nothing here: kubectl builds that Job itself.

pub mod schedule;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;

use crate::error::{is_not_found, Error, Result};
use crate::events::{EventType, Recorder};
use crate::ownership::{controller_of, controller_reference, is_controlled_by};
use schedule::{earliest_considered, Schedule};

/// The annotation on each Job with the time it was scheduled for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every CronJob.
    pub cronjobs: Store<CronJob>,
    /// Every Job.
    pub jobs: Store<Job>,
    /// Events (`cronjob-controller`).
    pub recorder: Recorder,
    /// The safety-net requeue.
    pub resync: Duration,
}

/// Runs the controller, triggered by CronJobs and by their Jobs.
pub fn run(
    ctx: Arc<Context>,
    cronjobs: impl Stream<Item = Result<CronJob, watcher::Error>> + Send + 'static,
    jobs: impl Stream<Item = Result<Job, watcher::Error>> + Send + 'static,
) -> impl Future<Output = ()> {
    Controller::for_stream(cronjobs, ctx.cronjobs.clone())
        .watches_stream(jobs, |job: Job| {
            let namespace = job.namespace().unwrap_or_default();
            controller_of(&job.metadata)
                .filter(|o| o.kind == "CronJob")
                .map(|o| ObjectRef::new(&o.name).within(&namespace))
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "cronjob reconcile");
            }
            futures::future::ready(())
        })
}

fn error_policy(cronjob: Arc<CronJob>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(cronjob = %cronjob.name_any(), %error, "cronjob reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

/// "Complete" or "Failed" once the Job has finished.
fn finished(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The Job of `cronjob` for the start time `scheduled` (kube's `getJobFromTemplate2`).
pub fn job_for(cronjob: &CronJob, scheduled: Timestamp) -> Job {
    let template = cronjob
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        scheduled.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let minutes = scheduled.as_second().div_euclid(60);
    Job {
        metadata: ObjectMeta {
            name: Some(format!("{}-{minutes}", cronjob.name_any())),
            namespace: cronjob.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_reference(
                "batch/v1",
                "CronJob",
                &cronjob.metadata,
            )]),
            ..ObjectMeta::default()
        },
        spec: Some(template.spec.unwrap_or_default()),
        status: None,
    }
}

/// Brings one CronJob's Jobs and status in line with its schedule.
pub async fn reconcile(cronjob: Arc<CronJob>, ctx: Arc<Context>) -> Result<Action> {
    if cronjob.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = cronjob.namespace().unwrap_or_default();
    let uid = cronjob.uid().unwrap_or_default();
    let spec = cronjob.spec.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let old_status = cronjob.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let now = Timestamp::now();
    let owned: Vec<Arc<Job>> = ctx
        .jobs
        .state()
        .into_iter()
        .filter(|j| j.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|j| is_controlled_by(&j.metadata, &uid))
        .collect();

    reconcile_active(&cronjob, &ctx, &jobs_api, &owned, &mut status).await?;
    let mut requeue = ctx.resync;
    if spec.suspend != Some(true) {
        if let Some(next) = schedule_job(&cronjob, &ctx, &jobs_api, &mut status, now).await? {
            let wait = next.duration_since(now).as_secs_f64().max(0.0);
            requeue = requeue.min(Duration::from_secs_f64(wait) + Duration::from_millis(100));
        }
    }
    clean_up_history(
        &cronjob,
        &ctx,
        &jobs_api,
        &owned,
        spec.successful_jobs_history_limit,
        spec.failed_jobs_history_limit,
    )
    .await?;

    if status != old_status {
        let mut updated = (*cronjob).clone();
        updated.status = Some(status);
        let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &namespace);
        api.replace_status(&cronjob.name_any(), &PostParams::default(), &updated)
            .await?;
    }
    Ok(Action::requeue(requeue))
}

/// Finished Jobs leave `status.active` (and the latest success is noted); so do Jobs that
/// are gone.
async fn reconcile_active(
    cronjob: &CronJob,
    ctx: &Context,
    jobs_api: &Api<Job>,
    owned: &[Arc<Job>],
    status: &mut CronJobStatus,
) -> Result<()> {
    let mut active = status.active.clone().unwrap_or_default();
    for job in owned {
        let job_uid = job.uid();
        let listed = active.iter().any(|r| r.uid == job_uid);
        match (listed, finished(job)) {
            (false, None) => ctx.recorder.record(
                cronjob,
                EventType::Warning,
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    job.name_any()
                ),
            ),
            (true, Some(condition)) => {
                active.retain(|r| r.uid != job_uid);
                ctx.recorder.record(
                    cronjob,
                    EventType::Normal,
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {}, condition: {condition}",
                        job.name_any()
                    ),
                );
                if condition == "Complete" {
                    let done = job.status.as_ref().and_then(|s| s.completion_time.clone());
                    if done.is_some() && status.last_successful_time < done {
                        status.last_successful_time = done;
                    }
                }
            }
            _ => {}
        }
    }
    // An active reference the cache does not show: gone, if the API agrees.
    let mut kept = Vec::new();
    for r in active {
        let cached = owned.iter().any(|j| j.uid() == r.uid);
        let name = r.name.clone().unwrap_or_default();
        if !cached
            && jobs_api
                .get_opt(&name)
                .await?
                .is_none_or(|j| j.uid() != r.uid)
        {
            ctx.recorder.record(
                cronjob,
                EventType::Normal,
                "MissingJob",
                format!("Active job went missing: {name}"),
            );
            continue;
        }
        kept.push(r);
    }
    status.active = (!kept.is_empty()).then_some(kept);
    Ok(())
}

/// Starts the Job due now, if one is; the next start time.
async fn schedule_job(
    cronjob: &CronJob,
    ctx: &Context,
    jobs_api: &Api<Job>,
    status: &mut CronJobStatus,
    now: Timestamp,
) -> Result<Option<Timestamp>> {
    let spec = cronjob.spec.clone().unwrap_or_default();
    if spec
        .time_zone
        .as_deref()
        .is_some_and(|tz| tz != "UTC" && tz != "Etc/UTC")
    {
        ctx.recorder.record(
            cronjob,
            EventType::Warning,
            "UnknownTimeZone",
            format!(
                "invalid timeZone: {:?}: only UTC is supported",
                spec.time_zone.as_deref().unwrap_or_default()
            ),
        );
        return Ok(None);
    }
    let schedule = match Schedule::parse(&spec.schedule) {
        Ok(schedule) => schedule,
        Err(e) => {
            ctx.recorder.record(
                cronjob,
                EventType::Warning,
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            );
            return Ok(None);
        }
    };
    let last = status
        .last_schedule_time
        .as_ref()
        .or(cronjob.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0);
    let earliest = earliest_considered(last, spec.starting_deadline_seconds, now);
    let due = schedule.due(earliest, now);
    let Some(scheduled) = due.most_recent else {
        return Ok(due.next);
    };
    if due.missed > 100 {
        ctx.recorder.record(
            cronjob,
            EventType::Warning,
            "TooManyMissedTimes",
            format!(
                "too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds \
                 or check clock skew",
                due.missed
            ),
        );
    }
    if let Some(deadline) = spec.starting_deadline_seconds {
        if scheduled + k8s_openapi::jiff::SignedDuration::from_secs(deadline) < now {
            ctx.recorder.record(
                cronjob,
                EventType::Warning,
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
                ),
            );
            return Ok(due.next);
        }
    }
    let active = status.active.clone().unwrap_or_default();
    let mut replaced: Vec<String> = Vec::new();
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            ctx.recorder.record(
                cronjob,
                EventType::Normal,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is \
                 Forbid"
                    .into(),
            );
            return Ok(due.next);
        }
        Some("Replace") => {
            replaced = active.iter().filter_map(|r| r.uid.clone()).collect();
            for r in &active {
                let name = r.name.clone().unwrap_or_default();
                delete_job(cronjob, ctx, jobs_api, &name, r.uid.clone()).await?;
            }
            status.active = None;
        }
        _ => {}
    }
    let job = job_for(cronjob, scheduled);
    let name = job.name_any();
    let made = match jobs_api.create(&PostParams::default(), &job).await {
        Ok(made) => {
            ctx.recorder.record(
                cronjob,
                EventType::Normal,
                "SuccessfulCreate",
                format!("Created job {name}"),
            );
            made
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Made by an earlier reconcile whose status write was lost: it is this start
            // time's Job, if it is ours.
            let existing = jobs_api.get(&name).await?;
            if !is_controlled_by(&existing.metadata, &cronjob.uid().unwrap_or_default()) {
                return Ok(due.next);
            }
            // The Job just replaced, not yet gone: try again once it is.
            let leaving = existing.metadata.deletion_timestamp.is_some()
                || existing.uid().is_some_and(|uid| replaced.contains(&uid));
            if leaving {
                return Err(Error::StillDeleting(format!("job {name}")));
            }
            existing
        }
        Err(e) => {
            ctx.recorder.record(
                cronjob,
                EventType::Warning,
                "FailedCreate",
                format!("Error creating job: {e}"),
            );
            return Err(e.into());
        }
    };
    let listed = status.active.iter().flatten().any(|r| r.uid == made.uid());
    if !listed && finished(&made).is_none() {
        status
            .active
            .get_or_insert_with(Vec::new)
            .push(reference(&made));
    }
    status.last_schedule_time = Some(Time(scheduled));
    Ok(due.next)
}

/// Deletes finished Jobs past the history limits, oldest first.
async fn clean_up_history(
    cronjob: &CronJob,
    ctx: &Context,
    jobs_api: &Api<Job>,
    owned: &[Arc<Job>],
    successful_limit: Option<i32>,
    failed_limit: Option<i32>,
) -> Result<()> {
    for (condition, limit) in [
        ("Complete", successful_limit.unwrap_or(3)),
        ("Failed", failed_limit.unwrap_or(1)),
    ] {
        let mut done: Vec<&Arc<Job>> = owned
            .iter()
            .filter(|j| finished(j) == Some(condition) && j.metadata.deletion_timestamp.is_none())
            .collect();
        let keep = usize::try_from(limit.max(0)).unwrap_or(0);
        if done.len() <= keep {
            continue;
        }
        done.sort_by_key(|j| {
            let started = j.status.as_ref().and_then(|s| s.start_time.clone());
            (
                started.or_else(|| j.metadata.creation_timestamp.clone()),
                j.name_any(),
            )
        });
        for job in &done[..done.len() - keep] {
            delete_job(cronjob, ctx, jobs_api, &job.name_any(), job.uid()).await?;
        }
    }
    Ok(())
}

async fn delete_job(
    cronjob: &CronJob,
    ctx: &Context,
    jobs_api: &Api<Job>,
    name: &str,
    uid: Option<String>,
) -> Result<()> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: uid.map(|uid| kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match jobs_api.delete(name, &params).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    ctx.recorder.record(
        cronjob,
        EventType::Normal,
        "SuccessfulDelete",
        format!("Deleted job {name}"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_scheduled_job_is_named_by_its_minute_and_owned_by_its_cronjob() {
        let cronjob: CronJob = serde_json::from_value(json!({
            "metadata": {"name": "backup", "namespace": "ops", "uid": "u-1"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {
                "metadata": {"labels": {"team": "ops"}, "annotations": {"a": "b"}},
                "spec": {"backoffLimit": 2, "template": {"spec": {"containers": []}}}}},
        }))
        .unwrap();
        let scheduled: Timestamp = "2026-01-01T10:15:00Z".parse().unwrap();
        let job = job_for(&cronjob, scheduled);
        assert_eq!(job.metadata.name.as_deref(), Some("backup-29454375"));
        assert_eq!(job.metadata.namespace.as_deref(), Some("ops"));
        assert_eq!(job.labels()["team"], "ops");
        assert_eq!(job.annotations()["a"], "b");
        assert_eq!(
            job.annotations()[SCHEDULED_TIMESTAMP],
            "2026-01-01T10:15:00Z"
        );
        let owner = &job.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("CronJob", "u-1", Some(true))
        );
        assert_eq!(job.spec.unwrap().backoff_limit, Some(2));
    }
}
