//! Liveness, readiness and startup probes as kubelet runs them: exec through the runtime's
//! `exec_sync`, httpGet as an HTTP/1.1 GET (200–399 passes), tcpSocket as a connect, each to
//! the pod's IP (reachable from the host through the node bridge) within `timeoutSeconds`;
//! a result counts once `successThreshold` or `failureThreshold` results in a row agree.
//! grpc probes are checked as a connect to their port for now.
//!
//! Hollow pods are never probed: their IPs lead nowhere, so they pass as kubemark's do.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use keel_runtime::ContainerId;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use crate::runtimes::DynRuntime;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// startupProbe.
    Startup,
    /// livenessProbe.
    Liveness,
    /// readinessProbe.
    Readiness,
}

impl Kind {
    /// As kubelet's events name it (`Liveness probe failed: …`).
    pub fn title(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }

    /// The container's probe of this kind.
    pub fn of(self, container: &Container) -> Option<&Probe> {
        match self {
            Kind::Startup => container.startup_probe.as_ref(),
            Kind::Liveness => container.liveness_probe.as_ref(),
            Kind::Readiness => container.readiness_probe.as_ref(),
        }
    }
}

/// One probe's running tally for one container attempt.
#[derive(Debug, Clone)]
pub struct Tally {
    /// When it runs next.
    pub next: Instant,
    successes: i32,
    failures: i32,
    /// The settled result: `None` until a threshold is first reached.
    pub result: Option<bool>,
}

impl Tally {
    /// A tally for a container that started at `started`.
    pub fn new(probe: &Probe, started: Instant) -> Tally {
        let delay = probe.initial_delay_seconds.unwrap_or(0).max(0) as u64;
        Tally {
            next: started + Duration::from_secs(delay),
            successes: 0,
            failures: 0,
            result: None,
        }
    }

    /// Counts one result; the settled result afterwards.
    pub fn record(&mut self, probe: &Probe, ok: bool, now: Instant) -> Option<bool> {
        let period = probe.period_seconds.unwrap_or(10).max(1) as u64;
        self.next = now + Duration::from_secs(period);
        if ok {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= probe.success_threshold.unwrap_or(1).max(1) {
                self.result = Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= probe.failure_threshold.unwrap_or(3).max(1) {
                self.result = Some(false);
            }
        }
        self.result
    }
}

fn port(container: &Container, port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("couldn't find port: {name} in {}", container.name)),
    }
}

/// Runs `probe` once: whether it passed, and kubelet's output when it did not.
pub async fn run(
    runtime: &dyn DynRuntime,
    id: &ContainerId,
    container: &Container,
    probe: &Probe,
    pod_ip: &str,
) -> (bool, String) {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(exec) = &probe.exec {
        let argv = exec.command.clone().unwrap_or_default();
        return match runtime.exec_sync(id, &argv, timeout).await {
            Ok(out) if out.exit_code == 0 => (true, String::new()),
            Ok(out) => {
                let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
                (false, text)
            }
            Err(e) => (false, e.to_string()),
        };
    }
    let target = if let Some(http) = &probe.http_get {
        port(container, &http.port).map(|p| (http.host.clone(), p, Some(http)))
    } else if let Some(tcp) = &probe.tcp_socket {
        port(container, &tcp.port).map(|p| (tcp.host.clone(), p, None))
    } else if let Some(grpc) = &probe.grpc {
        u16::try_from(grpc.port)
            .map(|p| (None, p, None))
            .map_err(|_| format!("invalid port {}", grpc.port))
    } else {
        return (true, String::new());
    };
    let (host, port, http) = match target {
        Ok(target) => target,
        Err(message) => return (false, message),
    };
    let host = host
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod_ip.to_owned());
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        let Some(http) = http else { return Ok(None) };
        let path = http.path.clone().unwrap_or_else(|| "/".to_owned());
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = vec![0u8; 64];
        let read = stream.read(&mut head).await?;
        let line = String::from_utf8_lossy(&head[..read]).into_owned();
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok::<_, std::io::Error>(Some(code))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(None)) => (true, String::new()),
        Ok(Ok(Some(code))) if (200..400).contains(&code) => (true, String::new()),
        Ok(Ok(Some(code))) => (false, format!("HTTP probe failed with statuscode: {code}")),
        Ok(Err(e)) => (false, format!("dial tcp {host}:{port}: {e}")),
        Err(_) => (
            false,
            format!("dial tcp {host}:{port}: i/o timeout (Client.Timeout exceeded while awaiting headers)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test(start_paused = true)]
    async fn thresholds_settle_results() {
        let probe: Probe = serde_json::from_value(json!({
            "initialDelaySeconds": 5, "periodSeconds": 2, "failureThreshold": 2, "successThreshold": 2
        }))
        .unwrap();
        let start = Instant::now();
        let mut tally = Tally::new(&probe, start);
        assert_eq!(tally.next, start + Duration::from_secs(5));
        assert_eq!(tally.record(&probe, true, start), None);
        assert_eq!(tally.record(&probe, true, start), Some(true));
        assert_eq!(tally.next, start + Duration::from_secs(2));
        assert_eq!(
            tally.record(&probe, false, start),
            Some(true),
            "one failure is not enough"
        );
        assert_eq!(tally.record(&probe, false, start), Some(false));
    }

    #[tokio::test]
    async fn http_and_tcp_probes_reach_a_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 512];
                let _ = socket.read(&mut buffer).await;
                let text = String::from_utf8_lossy(&buffer);
                let answer = if text.starts_with("GET /healthz") {
                    "200 OK"
                } else {
                    "503 Unavailable"
                };
                let _ = socket
                    .write_all(format!("HTTP/1.1 {answer}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let runtime = keel_runtime::hollow::Hollow::new(None);
        let id = ContainerId("none".into());
        let container = Container::default();
        let probe = |value| serde_json::from_value::<Probe>(value).unwrap();
        let healthy = probe(json!({"httpGet": {"path": "/healthz", "port": port}}));
        assert_eq!(
            run(&runtime, &id, &container, &healthy, "127.0.0.1").await,
            (true, String::new())
        );
        let sick = probe(json!({"httpGet": {"path": "/other", "port": port}}));
        let (ok, message) = run(&runtime, &id, &container, &sick, "127.0.0.1").await;
        assert!(!ok);
        assert_eq!(message, "HTTP probe failed with statuscode: 503");
        let tcp = probe(json!({"tcpSocket": {"port": port}}));
        assert!(run(&runtime, &id, &container, &tcp, "127.0.0.1").await.0);
    }
}
