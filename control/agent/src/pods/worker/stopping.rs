//! A pod worker's endings: probes that may kill a container, a finished pod's sandbox
//! released, and a deleted pod stopped (preStop hooks, the grace period) with its deletion
//! confirmed to the API.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use keel_runtime::{ContainerId, ContainerState};
use kube::api::{Api, DeleteParams, Preconditions};
use tokio::time::Instant;

use super::super::probes::{self, Kind, Tally};
use super::{earliest, SandboxRecord, Worker};

impl Worker {
    /// Runs the container's due probes; a failed liveness or startup probe stops the
    /// container (it then restarts by its policy), as kubelet's prober does.
    pub(super) async fn probe(&mut self, container: &Container, wake: &mut Option<Instant>) {
        let Some((handler, runtime)) = self.runtime.clone() else {
            return;
        };
        if handler == "hollow" {
            return;
        }
        let pod_ip = self.pod_ip();
        let node = self.node.clone();
        let pod = self.pod.clone();
        let Some(record) = self.containers.get_mut(&container.name) else {
            return;
        };
        let Some(id) = record.current.as_ref().map(|c| c.id.clone()) else {
            return;
        };
        let started = *record.started.get_or_insert_with(Instant::now);
        let kinds: &[Kind] = if record.started_up(container, true) {
            &[Kind::Liveness, Kind::Readiness]
        } else {
            &[Kind::Startup]
        };
        for &kind in kinds {
            let Some(probe) = kind.of(container) else {
                continue;
            };
            let tally = record
                .probes
                .entry(kind)
                .or_insert_with(|| Tally::new(probe, started));
            let now = Instant::now();
            if now >= tally.next {
                let (ok, output) = probes::run(&*runtime, &id, container, probe, &pod_ip).await;
                let settled = tally.record(probe, ok, Instant::now());
                if !ok {
                    node.events.record(
                        &pod,
                        Some(&container.name),
                        true,
                        "Unhealthy",
                        format!("{} probe failed: {output}", kind.title()),
                    );
                }
                if settled == Some(false) && kind != Kind::Readiness {
                    let which = if kind == Kind::Liveness {
                        "liveness"
                    } else {
                        "startup"
                    };
                    node.events.record(
                        &pod,
                        Some(&container.name),
                        false,
                        "Killing",
                        format!(
                            "Container {} failed {which} probe, will be restarted",
                            container.name
                        ),
                    );
                    let grace = probe
                        .termination_grace_period_seconds
                        .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
                        .unwrap_or(30)
                        .max(0) as u64;
                    if let Err(e) = runtime
                        .stop_container(&id, Duration::from_secs(grace))
                        .await
                    {
                        tracing::warn!("stopping container {}: {e}", container.name);
                    }
                    self.refresh_one(&container.name).await;
                    *wake = earliest(*wake, Instant::now());
                    return;
                }
            }
            *wake = earliest(*wake, tally.next);
        }
    }

    /// A pod that reached Succeeded or Failed keeps no sandbox (its IP goes back).
    pub(super) async fn stop_finished_pod(&mut self) {
        let (Some((_, runtime)), Some(sandbox)) = (self.runtime.clone(), self.sandbox.as_mut())
        else {
            return;
        };
        if sandbox.ready {
            if let Err(e) = runtime.stop_sandbox(&sandbox.id).await {
                tracing::warn!("stopping a finished pod's sandbox: {e}");
            }
            sandbox.ready = false;
        }
    }

    /// Stops the pod: preStop hooks, each container with the pod's grace period, the
    /// sandbox; writes the final status; confirms the deletion when `confirm`.
    pub(super) async fn terminate(&mut self, confirm: bool) {
        let grace = Duration::from_secs(
            self.pod
                .metadata
                .deletion_grace_period_seconds
                .or_else(|| self.pod.spec.as_ref()?.termination_grace_period_seconds)
                .unwrap_or(30)
                .max(0) as u64,
        );
        if let Some((_, runtime)) = self.runtime.clone() {
            self.refresh().await;
            let (init, containers) = self.spec_containers();
            let running: Vec<(Container, ContainerId)> = init
                .into_iter()
                .chain(containers)
                .filter_map(|c| {
                    let current = self.containers.get(&c.name)?.current.as_ref()?;
                    matches!(
                        current.state,
                        ContainerState::Running { .. } | ContainerState::Created
                    )
                    .then(|| (c, current.id.clone()))
                })
                .collect();
            let stops = running.iter().map(|(container, id)| {
                let runtime = runtime.clone();
                let node = self.node.clone();
                let pod = self.pod.clone();
                let ip = self.pod_ip();
                async move {
                    let started = Instant::now();
                    if let Some(hook) = container
                        .lifecycle
                        .as_ref()
                        .and_then(|l| l.pre_stop.as_ref())
                    {
                        super::super::hooks::run(&*runtime, id, hook, &ip, grace).await;
                    }
                    node.events.record(
                        &pod,
                        Some(&container.name),
                        false,
                        "Killing",
                        format!("Stopping container {}", container.name),
                    );
                    let left = grace.saturating_sub(started.elapsed());
                    if let Err(e) = runtime.stop_container(id, left).await {
                        tracing::warn!("stopping container {}: {e}", container.name);
                    }
                }
            });
            futures::future::join_all(stops).await;
            self.refresh().await;
            if let Some(sandbox) = self.sandbox.take() {
                if let Err(e) = runtime.stop_sandbox(&sandbox.id).await {
                    tracing::warn!("stopping sandbox: {e}");
                }
                self.sandbox = Some(SandboxRecord {
                    ready: false,
                    ..sandbox
                });
            }
        }
        if confirm {
            self.terminal = true;
            let _ = self.post_status().await;
        }
        if let (Some((_, runtime)), Some(sandbox)) = (&self.runtime, &self.sandbox) {
            if let Err(e) = runtime.remove_sandbox(&sandbox.id).await {
                tracing::warn!("removing sandbox: {e}");
            }
        }
        if confirm {
            let (name, namespace, uid) = self.identity();
            let pods: Api<Pod> = Api::namespaced(self.node.client.clone(), &namespace);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match pods.delete(&name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => tracing::warn!(pod = %name, "confirming deletion: {e}"),
            }
        }
    }
}
