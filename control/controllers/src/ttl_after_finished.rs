//! The TTL-after-finished controller (kube-controller-manager's `ttl-after-finished`): a Job
//! that finished (Complete or Failed) and sets `ttlSecondsAfterFinished` is deleted that many
//! seconds after it finished (its `completionTime`, or when its Failed condition turned
//! True), and its pods with it.
//!
//! Before deleting, the Job is read again from the API server: the TTL may have been changed
//! or removed since the cache saw it, as kube checks too. The delete carries the Job's uid as
//! a precondition, so a new Job of the same name is never the one deleted. Propagation is
//! Background, where kube asks for Foreground: this controller manager's garbage collector
//! carries out foreground deletion for Deployments, ReplicaSets and pods only, and in the
//! background it removes a deleted Job's pods just the same.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::ResourceExt as _;

use crate::error::{is_not_found, Error, Result};

/// What every reconcile shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every Job.
    pub jobs: Store<Job>,
}

/// Runs the controller, triggered by Jobs.
pub fn run(
    ctx: Arc<Context>,
    jobs: impl Stream<Item = Result<Job, watcher::Error>> + Send + 'static,
) -> impl Future<Output = ()> {
    Controller::for_stream(jobs, ctx.jobs.clone())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "ttl-after-finished reconcile");
            }
            futures::future::ready(())
        })
}

fn error_policy(job: Arc<Job>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(job = %job.name_any(), %error, "ttl-after-finished reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

/// When `job` finished, if it did: its completionTime, or the time its Complete or Failed
/// condition turned True.
pub fn finished_at(job: &Job) -> Option<Timestamp> {
    let status = job.status.as_ref()?;
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    status
        .completion_time
        .as_ref()
        .filter(|_| condition.type_ == "Complete")
        .or(condition.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// When `job` is due for deletion: None if it has no TTL or has not finished.
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    Some(finished_at(job)? + SignedDuration::from_secs(i64::from(ttl)))
}

/// Deletes the Job if its time has come, or comes back when it will have.
pub async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action> {
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(expiry) = expires_at(&job) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    if now < expiry {
        return Ok(Action::requeue(remaining(now, expiry)));
    }
    let namespace = job.namespace().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    // The cache may be behind: the TTL may have been lengthened or removed meanwhile.
    let fresh = match api.get(&job.name_any()).await {
        Ok(fresh) => fresh,
        Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
        Err(e) => return Err(e.into()),
    };
    if fresh.uid() != job.uid() {
        return Ok(Action::await_change());
    }
    match expires_at(&fresh) {
        Some(expiry) if now >= expiry => {}
        Some(expiry) => return Ok(Action::requeue(remaining(now, expiry))),
        None => return Ok(Action::await_change()),
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: fresh.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&fresh.name_any(), &params).await {
        Ok(_) => {
            tracing::info!(job = %format!("{namespace}/{}", fresh.name_any()), "deleted a finished Job past its TTL");
            Ok(Action::await_change())
        }
        Err(e) if is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

/// How long until `expiry`, a little after so the Job is due when looked at again.
fn remaining(now: Timestamp, expiry: Timestamp) -> Duration {
    let left = expiry.duration_since(now).as_secs_f64().max(0.0);
    Duration::from_secs_f64(left) + Duration::from_millis(50)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(ttl: Option<i32>, status: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "j"},
            "spec": {"ttlSecondsAfterFinished": ttl, "template": {}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_finished_job_expires_its_ttl_after_it_finished() {
        let complete = json!({
            "completionTime": "2026-01-01T00:00:10Z",
            "conditions": [{"type": "Complete", "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:11Z"}],
        });
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            expires_at(&job(Some(100), complete.clone())),
            Some(at("2026-01-01T00:01:50Z"))
        );
        assert_eq!(expires_at(&job(None, complete)), None);
        let failed = json!({"conditions": [
            {"type": "FailureTarget", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"},
            {"type": "Failed", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"}]});
        assert_eq!(
            expires_at(&job(Some(0), failed)),
            Some(at("2026-01-01T00:00:05Z"))
        );
        let running = json!({"active": 1, "conditions": [
            {"type": "Suspended", "status": "False", "lastTransitionTime": "2026-01-01T00:00:01Z"}]});
        assert_eq!(expires_at(&job(Some(0), running)), None);
    }
}
