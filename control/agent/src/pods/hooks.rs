//! Lifecycle hooks (preStop) as kubelet runs them: an exec hook through the runtime's
//! `exec_sync`, an httpGet hook as a plain HTTP/1.1 GET to the pod, each within the grace
//! period. A failing hook is logged and the container is stopped anyway, as in kube.

use std::time::Duration;

use k8s_openapi::api::core::v1::LifecycleHandler;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use keel_runtime::ContainerId;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::runtimes::DynRuntime;

/// Runs `hook` for container `id` of a pod at `pod_ip`, at most `grace`.
pub async fn run(
    runtime: &dyn DynRuntime,
    id: &ContainerId,
    hook: &LifecycleHandler,
    pod_ip: &str,
    grace: Duration,
) {
    if let Some(exec) = &hook.exec {
        let argv = exec.command.clone().unwrap_or_default();
        match runtime.exec_sync(id, &argv, grace).await {
            Ok(output) if output.exit_code != 0 => {
                tracing::info!("preStop hook exited with {}", output.exit_code)
            }
            Ok(_) => {}
            Err(e) => tracing::info!("preStop hook failed: {e}"),
        }
    } else if let Some(http) = &hook.http_get {
        let host = http.host.clone().unwrap_or_else(|| pod_ip.to_owned());
        let port = match &http.port {
            IntOrString::Int(port) => *port as u16,
            IntOrString::String(_) => 80,
        };
        let path = http.path.clone().unwrap_or_else(|| "/".to_owned());
        let get = async {
            let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let request = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-lifecycle/1.33\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await?;
            let mut head = [0u8; 64];
            let _ = stream.read(&mut head).await?;
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout(grace, get).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::info!("preStop hook failed: {e}"),
            Err(_) => tracing::info!("preStop hook timed out"),
        }
    }
}
