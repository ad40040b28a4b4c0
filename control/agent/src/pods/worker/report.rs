//! A pod worker's report: the pod's status as kubelet writes it through `pods/status` (only
//! when it changed), built from what the runtime said and what the worker decided.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{
    Container, ContainerState as KubeState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as KubeStatus, Pod,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use keel_runtime::{ContainerState, ContainerStatus};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::super::status;
use super::Worker;

impl Worker {
    /// The pod's status as kubelet writes it; `None` when nothing changed or it was written,
    /// else when to try again.
    pub(super) async fn post_status(&mut self) -> Option<Instant> {
        let status = self.status();
        if self.last_written.as_ref() == Some(&status) {
            return None;
        }
        let (name, namespace, _) = self.identity();
        let pods: Api<Pod> = Api::namespaced(self.node.client.clone(), &namespace);
        match pods
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            Ok(_) => {
                self.last_written = Some(status);
                None
            }
            Err(kube::Error::Api(e)) if e.code == 404 => None,
            Err(e) => {
                tracing::warn!(pod = %name, "writing pod status: {e}");
                Some(Instant::now() + Duration::from_secs(1))
            }
        }
    }

    fn status(&mut self) -> Value {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let runtime_name = self.runtime_name();
        let (init, containers) = self.spec_containers();
        let init_done_before = |index: usize, statuses: &[KubeStatus]| {
            init[..index].iter().all(|c| {
                statuses
                    .iter()
                    .find(|s| s.name == c.name)
                    .and_then(|s| s.state.as_ref()?.terminated.as_ref())
                    .is_some_and(|t| t.exit_code == 0)
            })
        };
        let mut init_statuses = Vec::new();
        for (index, container) in init.iter().enumerate() {
            let initializing = init_done_before(index, &init_statuses);
            init_statuses.push(self.container_status(container, &runtime_name, !initializing));
        }
        let initialized = status::initialized(&spec, &init_statuses);
        let container_statuses: Vec<KubeStatus> = containers
            .iter()
            .map(|c| self.container_status(c, &runtime_name, !initialized))
            .collect();
        let phase = status::phase(&spec, &init_statuses, &container_statuses);
        if matches!(phase, "Succeeded" | "Failed") {
            self.terminal = true;
        }
        let sandbox_ready = self.sandbox.as_ref().is_some_and(|s| s.ready) && !self.terminal;
        let now = Time(Timestamp::now());
        self.conditions = status::conditions(
            &spec,
            &init_statuses,
            &container_statuses,
            phase,
            sandbox_ready,
            &self.conditions,
            &now,
        );
        let host_ip = self.node.config.address.to_string();
        let pod_ip = self.pod_ip();
        let mut status = json!({
            "phase": phase,
            "conditions": self.conditions,
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "startTime": self.start_time,
            "containerStatuses": container_statuses,
            "qosClass": status::qos_class(&spec),
        });
        if !pod_ip.is_empty() {
            status["podIP"] = json!(pod_ip);
            status["podIPs"] = json!([{"ip": pod_ip}]);
        }
        if !init_statuses.is_empty() {
            status["initContainerStatuses"] = json!(init_statuses);
        }
        if let Some(message) = &self.sandbox_error {
            status["message"] = json!(message);
        }
        status
    }

    /// One container's status. `blocked`: an earlier init container has not finished.
    fn container_status(
        &self,
        container: &Container,
        runtime_name: &str,
        blocked: bool,
    ) -> KubeStatus {
        let record = self.containers.get(&container.name);
        let current = record.and_then(|r| r.current.as_ref());
        let waiting = |reason: &str, message: Option<String>| KubeState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.to_owned()),
                message,
            }),
            ..Default::default()
        };
        let state = match (
            record.and_then(|r| r.waiting.clone()),
            current.map(|c| &c.state),
        ) {
            (Some((reason, message)), _) => waiting(&reason, Some(message)),
            (None, Some(ContainerState::Running { started_at })) => KubeState {
                running: Some(ContainerStateRunning {
                    started_at: Some(time(*started_at)),
                }),
                ..Default::default()
            },
            (None, Some(ContainerState::Exited { .. })) => KubeState {
                terminated: current.and_then(|c| terminated(c, runtime_name)),
                ..Default::default()
            },
            _ if blocked => waiting("PodInitializing", None),
            _ => waiting("ContainerCreating", None),
        };
        let running = state.running.is_some();
        let probed = runtime_name != "hollow";
        let started = running && record.is_none_or(|r| r.started_up(container, probed));
        let ready = started && record.is_none_or(|r| r.ready(container, probed));
        let image = container.image.clone().unwrap_or_default();
        KubeStatus {
            name: container.name.clone(),
            image: image.clone(),
            image_id: current.map(|c| c.image.clone()).unwrap_or_default(),
            container_id: current.map(|c| format!("{runtime_name}://{}", c.id.0)),
            restart_count: record.map_or(0, |r| r.restart_count),
            ready,
            started: Some(started),
            state: Some(state),
            last_state: Some(KubeState {
                terminated: record.and_then(|r| r.last_terminated.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

pub(super) fn time(at: SystemTime) -> Time {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    // Status times are whole seconds in kube.
    Time(Timestamp::from_second(since.as_secs() as i64).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// How an exited container ended, as a pod status shows it.
pub(super) fn terminated(
    status: &ContainerStatus,
    runtime_name: &str,
) -> Option<ContainerStateTerminated> {
    let container_id = Some(format!("{runtime_name}://{}", status.id.0));
    match &status.state {
        ContainerState::Exited {
            started_at,
            finished_at,
            exit_code,
            reason,
            message,
        } => Some(ContainerStateTerminated {
            container_id,
            exit_code: *exit_code,
            reason: Some(reason.clone()),
            message: (!message.is_empty()).then(|| message.clone()),
            started_at: Some(time(*started_at)),
            finished_at: Some(time(*finished_at)),
            signal: None,
        }),
        // A container lost while running ended unknown, as kubelet reports a vanished one.
        ContainerState::Running { started_at } => Some(ContainerStateTerminated {
            container_id,
            exit_code: 137,
            reason: Some("ContainerStatusUnknown".to_owned()),
            message: Some(
                "The container could not be located when the pod was terminated".to_owned(),
            ),
            started_at: Some(time(*started_at)),
            finished_at: Some(time(SystemTime::now())),
            signal: None,
        }),
        ContainerState::Created => None,
    }
}
