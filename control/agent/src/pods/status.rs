//! A pod's status from its containers' statuses, as kubelet computes it (`getPhase`,
//! `GeneratePodReadyCondition` and friends): pure functions, so they are tested without a
//! runtime or an API.
//!
//! ```text
//! init containers done? ──no──> Pending (Failed if one failed and restartPolicy is Never)
//!        │yes
//! containers: waiting ─> Pending · running ─> Running · all exited ─> Succeeded / Failed
//!             (Always, or OnFailure with a failure: Running, they restart)
//! ```

use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The pod's phase.
pub fn phase(
    spec: &PodSpec,
    init: &[ContainerStatus],
    containers: &[ContainerStatus],
) -> &'static str {
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if !initialized(spec, init) {
        let init_failed = init.iter().any(|s| {
            terminated_code(s).is_some_and(|code| code != 0)
                || last_terminated_code(s).is_some_and(|code| code != 0) && waiting(s)
        });
        if init_failed && restart_policy == "Never" {
            return "Failed";
        }
        return "Pending";
    }
    let (mut running, mut waiting_count, mut stopped, mut succeeded, mut unknown) = (0, 0, 0, 0, 0);
    for container in &spec.containers {
        let Some(status) = containers.iter().find(|s| s.name == container.name) else {
            unknown += 1;
            continue;
        };
        let state = status.state.as_ref();
        if state.and_then(|s| s.running.as_ref()).is_some() {
            running += 1;
        } else if let Some(code) = terminated_code(status) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if waiting(status) {
            // A container waiting to restart has run: it counts as stopped, as kubelet's
            // getPhase counts it.
            match last_terminated_code(status) {
                Some(code) => {
                    stopped += 1;
                    if code == 0 {
                        succeeded += 1;
                    }
                }
                None => waiting_count += 1,
            }
        } else {
            unknown += 1;
        }
    }
    match () {
        _ if waiting_count > 0 => "Pending",
        _ if running > 0 && unknown == 0 => "Running",
        _ if running == 0 && stopped > 0 && unknown == 0 => match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        },
        _ => "Pending",
    }
}

fn waiting(status: &ContainerStatus) -> bool {
    status
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .is_some()
}

fn terminated_code(status: &ContainerStatus) -> Option<i32> {
    status
        .state
        .as_ref()?
        .terminated
        .as_ref()
        .map(|t| t.exit_code)
}

fn last_terminated_code(status: &ContainerStatus) -> Option<i32> {
    status
        .last_state
        .as_ref()?
        .terminated
        .as_ref()
        .map(|t| t.exit_code)
}

/// Whether every init container has succeeded (true without init containers). A restartable
/// (sidecar) init container counts once it has started.
pub fn initialized(spec: &PodSpec, init: &[ContainerStatus]) -> bool {
    spec.init_containers.iter().flatten().all(|c| {
        let status = init.iter().find(|s| s.name == c.name);
        if c.restart_policy.as_deref() == Some("Always") {
            return status.is_some_and(|s| s.started == Some(true));
        }
        status.and_then(terminated_code) == Some(0)
    })
}

/// The conditions kubelet owns, in kube's order, each keeping its `lastTransitionTime` from
/// `previous` while its status is unchanged. `sandbox_ready`: the pod's sandbox and network
/// exist. PodScheduled and any other conditions in `previous` are kept as they are.
pub fn conditions(
    spec: &PodSpec,
    init: &[ContainerStatus],
    containers: &[ContainerStatus],
    phase: &str,
    sandbox_ready: bool,
    previous: &[PodCondition],
    now: &Time,
) -> Vec<PodCondition> {
    let completed = matches!(phase, "Succeeded" | "Failed");
    let condition = |kind: &str, ok: bool, reason: Option<String>, message: Option<String>| {
        let status = if ok { "True" } else { "False" }.to_owned();
        let since = previous
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        PodCondition {
            type_: kind.to_owned(),
            status,
            reason,
            message,
            last_transition_time: Some(since),
            last_probe_time: None,
            observed_generation: None,
        }
    };
    let incomplete: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| {
            init.iter()
                .find(|s| s.name == c.name)
                .and_then(terminated_code)
                != Some(0)
        })
        .filter(|c| c.restart_policy.as_deref() != Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let initialized_condition = if initialized(spec, init) {
        condition(
            "Initialized",
            true,
            completed.then(|| "PodCompleted".to_owned()),
            None,
        )
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized".to_owned()),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    };
    let unready: Vec<&str> = spec
        .containers
        .iter()
        .filter(|c| !containers.iter().any(|s| s.name == c.name && s.ready))
        .map(|c| c.name.as_str())
        .collect();
    let (ready, reason, message) = if completed {
        (false, Some("PodCompleted".to_owned()), None)
    } else if !unready.is_empty() {
        (
            false,
            Some("ContainersNotReady".to_owned()),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    } else {
        (true, None, None)
    };
    let mut out = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None),
        initialized_condition,
        condition("Ready", ready, reason.clone(), message.clone()),
        condition("ContainersReady", ready, reason, message),
    ];
    let owned = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    out.extend(
        previous
            .iter()
            .filter(|c| !owned.contains(&c.type_.as_str()))
            .cloned(),
    );
    out
}

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let mut any_set = false;
    let mut guaranteed = true;
    for container in all {
        let resources = container.resources.as_ref();
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any_set = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            match (limit, request) {
                (Some(limit), Some(request)) if limit == request => {}
                _ => guaranteed = false,
            }
        }
    }
    match (any_set, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).unwrap()
    }

    fn status(name: &str, value: serde_json::Value) -> ContainerStatus {
        let mut value = value;
        value["name"] = json!(name);
        value["image"] = json!("busybox");
        value["imageID"] = json!("");
        value["restartCount"] = value.get("restartCount").cloned().unwrap_or(json!(0));
        value["ready"] = value.get("ready").cloned().unwrap_or(json!(false));
        serde_json::from_value(value).unwrap()
    }

    fn running(name: &str, ready: bool) -> ContainerStatus {
        status(
            name,
            json!({"ready": ready, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}),
        )
    }

    fn exited(name: &str, code: i32) -> ContainerStatus {
        status(name, json!({"state": {"terminated": {"exitCode": code}}}))
    }

    fn backing_off(name: &str, code: i32) -> ContainerStatus {
        status(
            name,
            json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": code}}, "restartCount": 1}),
        )
    }

    fn creating(name: &str) -> ContainerStatus {
        status(
            name,
            json!({"state": {"waiting": {"reason": "ContainerCreating"}}}),
        )
    }

    #[test]
    fn phases_follow_kubelets_get_phase() {
        let two = |policy: &str| {
            spec(json!({"restartPolicy": policy, "containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "x"}]}))
        };
        let always = two("Always");
        assert_eq!(phase(&always, &[], &[]), "Pending");
        assert_eq!(
            phase(&always, &[], &[running("a", true), creating("b")]),
            "Pending"
        );
        assert_eq!(
            phase(&always, &[], &[running("a", true), running("b", false)]),
            "Running"
        );
        assert_eq!(
            phase(&always, &[], &[running("a", true), backing_off("b", 1)]),
            "Running"
        );
        assert_eq!(
            phase(&always, &[], &[exited("a", 0), exited("b", 0)]),
            "Running"
        );
        let never = two("Never");
        assert_eq!(
            phase(&never, &[], &[exited("a", 0), exited("b", 0)]),
            "Succeeded"
        );
        assert_eq!(
            phase(&never, &[], &[exited("a", 0), exited("b", 2)]),
            "Failed"
        );
        assert_eq!(
            phase(&never, &[], &[exited("a", 0), running("b", true)]),
            "Running"
        );
        let on_failure = two("OnFailure");
        assert_eq!(
            phase(&on_failure, &[], &[exited("a", 0), exited("b", 0)]),
            "Succeeded"
        );
        assert_eq!(
            phase(&on_failure, &[], &[exited("a", 0), backing_off("b", 1)]),
            "Running"
        );
    }

    #[test]
    fn init_containers_hold_the_pod_pending_or_fail_it() {
        let with_init = |policy: &str| {
            spec(json!({"restartPolicy": policy,
            "initContainers": [{"name": "setup", "image": "x"}],
            "containers": [{"name": "app", "image": "x"}]}))
        };
        let always = with_init("Always");
        assert_eq!(phase(&always, &[running("setup", false)], &[]), "Pending");
        assert_eq!(phase(&always, &[backing_off("setup", 1)], &[]), "Pending");
        assert_eq!(
            phase(&with_init("Never"), &[exited("setup", 1)], &[]),
            "Failed"
        );
        assert_eq!(
            phase(&always, &[exited("setup", 0)], &[running("app", true)]),
            "Running"
        );
        let now = Time(Timestamp::from_second(100).unwrap());
        let conditions = conditions(
            &always,
            &[running("setup", false)],
            &[],
            "Pending",
            true,
            &[],
            &now,
        );
        let initialized = conditions
            .iter()
            .find(|c| c.type_ == "Initialized")
            .unwrap();
        assert_eq!(initialized.status, "False");
        assert_eq!(
            initialized.reason.as_deref(),
            Some("ContainersNotInitialized")
        );
        assert_eq!(
            initialized.message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
    }

    #[test]
    fn readiness_conditions_name_unready_containers_and_keep_transition_times() {
        let spec =
            spec(json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]}));
        let then = Time(Timestamp::from_second(100).unwrap());
        let now = Time(Timestamp::from_second(200).unwrap());
        let scheduled = PodCondition {
            type_: "PodScheduled".into(),
            status: "True".into(),
            last_transition_time: Some(then.clone()),
            ..Default::default()
        };
        let first = conditions(
            &spec,
            &[],
            &[running("a", true), running("b", false)],
            "Running",
            true,
            std::slice::from_ref(&scheduled),
            &then,
        );
        let ready = first.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [b]")
        );
        assert!(
            first.iter().any(|c| c == &scheduled),
            "PodScheduled is kept"
        );
        let second = conditions(
            &spec,
            &[],
            &[running("a", true), running("b", true)],
            "Running",
            true,
            &first,
            &now,
        );
        let ready = second.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.clone()),
            ("True", Some(now.clone()))
        );
        let started = second
            .iter()
            .find(|c| c.type_ == "PodReadyToStartContainers")
            .unwrap();
        assert_eq!(started.last_transition_time, Some(then));
        let done = conditions(
            &spec,
            &[],
            &[exited("a", 0), exited("b", 0)],
            "Succeeded",
            false,
            &second,
            &now,
        );
        let ready = done.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.reason.as_deref(), Some("PodCompleted"));
    }

    #[test]
    fn qos_classes() {
        let best = spec(json!({"containers": [{"name": "a", "image": "x"}]}));
        assert_eq!(qos_class(&best), "BestEffort");
        let guaranteed = spec(json!({"containers": [{"name": "a", "image": "x",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}));
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        let burstable = spec(json!({"containers": [{"name": "a", "image": "x",
            "resources": {"requests": {"cpu": "100m"}}}]}));
        assert_eq!(qos_class(&burstable), "Burstable");
    }
}
