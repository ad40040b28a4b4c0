//! `pods/NAME/eviction`: a delete that honours PodDisruptionBudgets, as kube-apiserver's
//! `EvictionREST` does; `kubectl drain` evicts through it.
//!
//! ```text
//! pod finished, Pending or being deleted ──────────────────────────────▶ delete
//! budgets selecting the pod:  none ─────────────────────────────────────▶ delete
//!                             more than one ──▶ 500 (not supported)
//!                             one: pod not Ready and the budget can spare it
//!                                  (AlwaysAllow, or healthy ≥ desired > 0) ──▶ delete, if
//!                                  the pod is unchanged (resourceVersion precondition)
//!                                  else status behind spec ──▶ 429 (still being processed)
//!                                       disruptionsAllowed 0 ──▶ 429 (would violate)
//!                                       else decrement, note the pod in disruptedPods
//!                                       (compare-and-swap on the budget) ──▶ delete
//! ```
//!
//! Every delete first marks the pod `DisruptionTarget=True` (reason `EvictionByEvictionAPI`)
//! and then deletes it with the eviction's `deleteOptions` (its grace period, its
//! preconditions). `dryRun` (in the query or in `deleteOptions`) checks everything and
//! writes nothing.

use serde_json::{json, Value};

use crate::apply;
use crate::error::{ApiError, Result, Target};
use crate::object::{self, meta_str, Current, Part};
use crate::request::Query;
use crate::rest::{Api, Call, Reply};
use crate::selector::LabelSelector;

/// kube's `MaxDisruptedPodSize`: past this many approved evictions the disruption controller
/// has not confirmed yet, a budget refuses more.
pub const MAX_DISRUPTED_POD_SIZE: usize = 2000;

/// The message of every refusal for a budget's sake.
pub const VIOLATION_MESSAGE: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";

/// The message when a pod is covered by several budgets.
pub const MULTIPLE_BUDGETS_MESSAGE: &str =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

/// How many times the check-and-delete of a pod that may skip the budgets is retried after
/// it lost a race (kube's `EvictionsRetry` steps).
const EVICTION_RETRIES: usize = 20;

/// The budgets of the pod's namespace are kept here.
const PREFIX: &str = "/registry/poddisruptionbudgets/";

/// 429 with kube's message and a `DisruptionBudget` cause.
fn too_many_requests(retry_after: u64, cause: String) -> ApiError {
    ApiError {
        code: 429,
        reason: "TooManyRequests",
        message: VIOLATION_MESSAGE.into(),
        details: Some(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]})),
        retry_after: (retry_after > 0).then_some(retry_after),
    }
}

/// kube's `createTooManyRequestsError`: the budget's status does not reflect its spec yet,
/// or the pod changed under the eviction.
fn still_processing(budget: &str) -> ApiError {
    too_many_requests(
        10,
        format!("The disruption budget {budget} is still being processed by the server."),
    )
}

/// 403 about a budget, in kube's `NewForbidden` form.
fn budget_forbidden(budget: &str, why: &str) -> ApiError {
    ApiError {
        details: Some(json!({"name": budget, "group": "policy", "kind": "poddisruptionbudget"})),
        ..ApiError::forbidden(format!(
            "poddisruptionbudget.policy \"{budget}\" is forbidden: {why}"
        ))
    }
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

fn is_deleting(pod: &Value) -> bool {
    pod["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// `canIgnorePDB`: a pod that finished, has not started, or is already going disrupts
/// nothing more.
fn can_ignore_budgets(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || is_deleting(pod)
}

/// `shouldEnforceResourceVersion`: the delete of a pod that could still become Ready is
/// guarded, so it is not evicted after it started counting for a budget.
fn should_enforce_resource_version(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !is_deleting(pod)
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Whether the budget selects the pod. A selector that does not parse, or an empty one,
/// selects nothing here, as kube's eviction reads budgets.
pub fn selects(budget: &Value, pod: &Value) -> bool {
    let Ok(selector) = LabelSelector::from_json(&budget["spec"]["selector"]) else {
        return false;
    };
    !selector.is_empty() && selector.matches(pod["metadata"]["labels"].as_object())
}

/// `propagateDryRun`: the dry-run of the request and of `deleteOptions` must agree; the
/// options carry it on.
fn merge_dry_run(options: &mut Value, query: &Query) -> Result<bool> {
    let requested: Vec<Value> = query
        .get("dryRun")
        .map(|d| vec![json!(d)])
        .unwrap_or_default();
    let in_body: Vec<Value> = options["dryRun"].as_array().cloned().unwrap_or_default();
    if in_body.is_empty() {
        if !requested.is_empty() {
            options["dryRun"] = Value::Array(requested);
        }
    } else if !requested.is_empty() && requested != in_body {
        let show = |v: &[Value]| {
            let items: Vec<&str> = v.iter().filter_map(Value::as_str).collect();
            format!("[{}]", items.join(" "))
        };
        return Err(ApiError::bad_request(format!(
            "Non-matching dry-run options in request and content: {} and {}",
            show(&requested),
            show(&in_body)
        )));
    }
    let dry = options["dryRun"]
        .as_array()
        .is_some_and(|d| d.iter().any(|v| v == "All"));
    if let Some(unknown) = options["dryRun"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| *v != "All")
    {
        return Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {unknown}: supported values: \"All\""
        )));
    }
    Ok(dry)
}

fn resource_version_unset(options: &Value) -> bool {
    options["preconditions"]["resourceVersion"]
        .as_str()
        .is_none_or(str::is_empty)
}

/// `checkAndDecrement` on the budget as stored now: the next status, or the refusal.
pub fn check_and_decrement(budget: &Value, pod_name: &str, now: &str) -> Result<Value> {
    let name = meta_str(budget, "name").unwrap_or("");
    let status = &budget["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    let generation = budget["metadata"]["generation"].as_i64().unwrap_or(0);
    if observed < generation {
        return Err(still_processing(name));
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed < 0 {
        return Err(budget_forbidden(
            name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = status["disruptedPods"].as_object().map_or(0, |d| d.len());
    if disrupted > MAX_DISRUPTED_POD_SIZE {
        return Err(budget_forbidden(
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(too_many_requests(
            0,
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                status["desiredHealthy"].as_i64().unwrap_or(0),
                status["currentHealthy"].as_i64().unwrap_or(0)
            ),
        ));
    }
    let mut next = budget.clone();
    next["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed == 1 {
        set_insufficient_pods(&mut next["status"], now);
    }
    if !next["status"]["disruptedPods"].is_object() {
        next["status"]["disruptedPods"] = json!({});
    }
    // The disruption controller counts this pod as gone from now on, and forgets it if it
    // is not deleted within its timeout.
    next["status"]["disruptedPods"][pod_name] = json!(now);
    Ok(next)
}

/// `UpdateDisruptionAllowedCondition` once no disruption is left: `DisruptionAllowed` False
/// with reason InsufficientPods, its transition time moved only if it was True.
fn set_insufficient_pods(status: &mut Value, now: &str) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let observed = status["observedGeneration"].clone();
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    let mut condition = json!({"type": "DisruptionAllowed", "status": "False",
        "reason": "InsufficientPods", "message": "", "observedGeneration": observed,
        "lastTransitionTime": now});
    match conditions
        .iter_mut()
        .find(|c| c["type"] == "DisruptionAllowed")
    {
        Some(old) => {
            if old["status"] == "False" {
                condition["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
            *old = condition;
        }
        None => conditions.push(condition),
    }
}

/// The pod with `DisruptionTarget=True` for an eviction (`podutil.UpdatePodCondition`).
pub fn with_disruption_target(pod: &Value, now: &str) -> Value {
    let mut next = pod.clone();
    if !next["status"].is_object() {
        next["status"] = json!({});
    }
    if !next["status"]["conditions"].is_array() {
        next["status"]["conditions"] = json!([]);
    }
    let mut condition = json!({"type": "DisruptionTarget", "status": "True",
        "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
        "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(conditions) = next["status"]["conditions"].as_array_mut() {
        match conditions
            .iter_mut()
            .find(|c| c["type"] == "DisruptionTarget")
        {
            Some(old) => {
                if old["status"] == "True" {
                    condition["lastTransitionTime"] = old["lastTransitionTime"].clone();
                }
                *old = condition;
            }
            None => conditions.push(condition),
        }
    }
    next
}

/// A failed eviction: the Status kube returns as the result, with its own code.
fn failure(code: u16, message: &str) -> Reply {
    Reply::Object(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "code": code}),
    )
}

fn success() -> Reply {
    Reply::Object(
        201,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

/// What the budget check decided.
enum Verdict {
    /// Delete with the options as given.
    Delete,
    /// Delete only if the pod is still the one judged (its resourceVersion).
    DeleteIfUnchanged(String),
    /// Refuse with this reply.
    Refuse(Reply),
}

impl Api {
    /// `pods/NAME/eviction`.
    pub async fn evict(&self, call: &Call<'_>) -> Result<Reply> {
        let eviction = call.json_body()?;
        if meta_str(&eviction, "name") != Some(call.name) {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let mut options = match &eviction["deleteOptions"] {
            Value::Null => json!({}),
            Value::Object(o) => Value::Object(o.clone()),
            _ => return Err(ApiError::bad_request("deleteOptions must be an object")),
        };
        let dry_run = merge_dry_run(&mut options, call.query)?;
        let target = call.target();
        let key = call.resource.key(call.namespace, call.name);

        // A pod that may skip the budgets is deleted at once; a lost race is retried unless
        // the client named the resourceVersion itself.
        let mut pod = None;
        for _ in 0..EVICTION_RETRIES {
            let current = object::must_read(&*self.storage, &key, &target).await?;
            if !can_ignore_budgets(&current.object) {
                pod = Some(current);
                break;
            }
            let mut guarded = options.clone();
            if should_enforce_resource_version(&current.object) && resource_version_unset(&options)
            {
                guarded["preconditions"]["resourceVersion"] = json!(current.revision.to_string());
            }
            match self.mark_and_delete(call, &guarded, dry_run).await {
                Err(e) if e.code == 409 && resource_version_unset(&options) => continue,
                other => return other.map(|()| success()),
            }
        }
        let Some(pod) = pod else {
            return Err(ApiError::modified(&target));
        };

        let (verdict, budget_name) = self.check_budgets(call, &pod, dry_run).await?;
        let options = match verdict {
            Verdict::Refuse(reply) => return Ok(reply),
            Verdict::Delete => options,
            Verdict::DeleteIfUnchanged(revision) => {
                let mut guarded = options.clone();
                guarded["preconditions"]["resourceVersion"] = json!(revision);
                match self.mark_and_delete(call, &guarded, dry_run).await {
                    Err(e) if e.code == 409 && resource_version_unset(&options) => {
                        // The pod changed since it was judged (it may count now): the
                        // client tries again.
                        return Err(still_processing(&budget_name));
                    }
                    other => return other.map(|()| success()),
                }
            }
        };
        self.mark_and_delete(call, &options, dry_run).await?;
        Ok(success())
    }

    /// The budgets covering `pod`: the verdict, and the budget's name ("" when none).
    async fn check_budgets(
        &self,
        call: &Call<'_>,
        pod: &Current,
        dry_run: bool,
    ) -> Result<(Verdict, String)> {
        let namespace = call.namespace.unwrap_or("");
        let prefix = format!("{PREFIX}{namespace}/");
        let end = crate::storage::prefix_end(prefix.as_bytes());
        let page = self
            .storage
            .range(prefix.clone().into_bytes(), end, 0, 0)
            .await?;
        let budgets: Vec<Value> = page
            .items
            .iter()
            .filter_map(crate::watch_cache::decode)
            .filter(|b| selects(b, &pod.object))
            .collect();
        let budget = match budgets.as_slice() {
            [] => return Ok((Verdict::Delete, String::new())),
            [one] => one,
            _ => {
                return Ok((
                    Verdict::Refuse(failure(500, MULTIPLE_BUDGETS_MESSAGE)),
                    String::new(),
                ))
            }
        };
        let name = meta_str(budget, "name").unwrap_or("").to_owned();
        // A pod that is not Ready does not count as healthy: taking it costs the budget
        // nothing when the policy says so or the budget has its healthy pods.
        if !is_ready(&pod.object) {
            let always = budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow";
            let status = &budget["status"];
            let current = status["currentHealthy"].as_i64().unwrap_or(0);
            let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
            if always || (current >= desired && desired > 0) {
                return Ok((Verdict::DeleteIfUnchanged(pod.revision.to_string()), name));
            }
        }
        let Some(resource) = self.registry.find("policy", "v1", "poddisruptionbudgets") else {
            return Err(ApiError::internal("poddisruptionbudgets are not served"));
        };
        let query = dry_run_query(dry_run);
        let budget_call = Call {
            resource: &resource,
            namespace: call.namespace,
            name: &name,
            query: &query,
            body: &[],
            content_type: None,
            warnings: call.warnings,
            user_agent: call.user_agent,
        };
        let now = object::now_rfc3339();
        // The decrement is a compare-and-swap on the budget; a lost race re-reads it and
        // checks again, so two evictions never spend the same disruption.
        self.write_over(
            &budget_call,
            Part::Status,
            None,
            &apply::Tracking::Untracked,
            |current| check_and_decrement(&current.object, call.name, &now),
        )
        .await?;
        Ok((Verdict::Delete, name))
    }

    /// Marks the pod `DisruptionTarget` and deletes it with `options` (unless `dry_run`).
    async fn mark_and_delete(&self, call: &Call<'_>, options: &Value, dry_run: bool) -> Result<()> {
        let query = dry_run_query(dry_run);
        let mut options = options.clone();
        if !dry_run {
            let preconditions = options["preconditions"].clone();
            let now = object::now_rfc3339();
            let target = call.target();
            let status_call = Call {
                query: &query,
                body: &[],
                content_type: None,
                ..*call
            };
            let (_, marked) = self
                .write_over(
                    &status_call,
                    Part::Status,
                    None,
                    &apply::Tracking::Untracked,
                    |current| {
                        check_delete_preconditions(&preconditions, current, &target)?;
                        Ok(with_disruption_target(&current.object, &now))
                    },
                )
                .await?;
            // The mark moved the pod's resourceVersion: a precondition on it now names
            // the marked pod.
            if !resource_version_unset(&options) {
                if let Some(rv) = meta_str(&marked, "resourceVersion") {
                    options["preconditions"]["resourceVersion"] = json!(rv);
                }
            }
        }
        let body = serde_json::to_vec(&options).map_err(ApiError::internal)?;
        let delete = Call {
            query: &query,
            body: &body,
            content_type: Some("application/json"),
            ..*call
        };
        self.delete(&delete).await.map(|_| ())
    }
}

fn dry_run_query(dry_run: bool) -> Query {
    Query::parse(dry_run.then_some("dryRun=All"))
}

/// The delete's preconditions against the pod as stored, with the delete's messages.
fn check_delete_preconditions(
    preconditions: &Value,
    current: &Current,
    target: &Target<'_>,
) -> Result<()> {
    let checks = [
        (
            "uid",
            "UID",
            meta_str(&current.object, "uid").unwrap_or("").to_owned(),
        ),
        (
            "resourceVersion",
            "ResourceVersion",
            current.revision.to_string(),
        ),
    ];
    for (field, label, actual) in checks {
        if let Some(wanted) = preconditions[field].as_str().filter(|w| !w.is_empty()) {
            if wanted != actual {
                return Err(ApiError::conflict(
                    target,
                    &format!(
                        "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(status: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": 1},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": status})
    }

    #[test]
    fn a_budget_with_room_is_decremented_and_notes_the_pod() {
        let now = "2026-12-06T01:00:00Z";
        let b = budget(json!({"observedGeneration": 1, "disruptionsAllowed": 1,
            "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
            "conditions": [{"type": "DisruptionAllowed", "status": "True",
                "reason": "SufficientPods", "lastTransitionTime": "2026-12-06T00:00:00Z"}]}));
        let next = check_and_decrement(&b, "web-1", now).unwrap();
        assert_eq!(next["status"]["disruptionsAllowed"], 0);
        assert_eq!(next["status"]["disruptedPods"]["web-1"], now);
        let condition = &next["status"]["conditions"][0];
        assert_eq!(condition["status"], "False");
        assert_eq!(condition["reason"], "InsufficientPods");
        assert_eq!(condition["lastTransitionTime"], now);
    }

    #[test]
    fn refusals_in_kubes_words() {
        let now = "2026-12-06T01:00:00Z";
        let none_left = budget(json!({"observedGeneration": 1, "disruptionsAllowed": 0,
            "currentHealthy": 2, "desiredHealthy": 2}));
        let e = check_and_decrement(&none_left, "web-1", now).unwrap_err();
        assert_eq!((e.code, e.reason), (429, "TooManyRequests"));
        assert_eq!(e.message, VIOLATION_MESSAGE);
        assert_eq!(e.retry_after, None);
        assert_eq!(
            e.status()["details"]["causes"][0],
            json!({"reason": "DisruptionBudget",
                "message": "The disruption budget web needs 2 healthy pods and has 2 currently"})
        );

        let behind = budget(json!({"observedGeneration": 0, "disruptionsAllowed": 3}));
        let e = check_and_decrement(&behind, "web-1", now).unwrap_err();
        assert_eq!((e.code, e.retry_after), (429, Some(10)));
        let status = e.status();
        assert_eq!(status["details"]["retryAfterSeconds"], 10);
        assert_eq!(
            status["details"]["causes"][0]["message"],
            "The disruption budget web is still being processed by the server."
        );

        let negative = budget(json!({"observedGeneration": 1, "disruptionsAllowed": -1}));
        let e = check_and_decrement(&negative, "web-1", now).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "poddisruptionbudget.policy \"web\" is forbidden: pdb disruptions allowed is negative"
        );
    }

    #[test]
    fn which_pods_skip_the_budgets_and_which_budgets_select() {
        let pod = |phase: &str| json!({"metadata": {"labels": {"app": "web"}}, "status": {"phase": phase}});
        assert!(can_ignore_budgets(&pod("Succeeded")));
        assert!(can_ignore_budgets(&pod("Pending")));
        assert!(!can_ignore_budgets(&pod("Running")));
        assert!(should_enforce_resource_version(&pod("Pending")));
        assert!(!should_enforce_resource_version(&pod("Failed")));
        let b = budget(json!({}));
        assert!(selects(&b, &pod("Running")));
        let everything = json!({"spec": {"selector": {}}});
        assert!(
            !selects(&everything, &pod("Running")),
            "an empty selector selects nothing here"
        );
        assert!(!selects(&json!({"spec": {}}), &pod("Running")));
    }

    #[test]
    fn dry_run_must_agree() {
        let mut options = json!({"dryRun": ["All"]});
        assert_eq!(merge_dry_run(&mut options, &Query::parse(None)), Ok(true));
        let mut options = json!({});
        assert_eq!(
            merge_dry_run(&mut options, &Query::parse(Some("dryRun=All"))),
            Ok(true)
        );
        assert_eq!(options["dryRun"], json!(["All"]));
        let mut options = json!({"dryRun": ["All"]});
        assert_eq!(
            merge_dry_run(&mut options, &Query::parse(Some("dryRun=Nope")))
                .unwrap_err()
                .code,
            400
        );
        let marked = with_disruption_target(&json!({"status": {"phase": "Running"}}), "t");
        assert_eq!(
            marked["status"]["conditions"][0],
            json!({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting", "lastProbeTime": null, "lastTransitionTime": "t"})
        );
    }
}
