//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: checked here as
//! kube-apiserver's pod REST checks them, then proxied to the node agent's own HTTPS API
//! (kubelet's port) on the pod's node.
//!
//! ```text
//! client ─GET pods/P/log?container=c&follow=true──▶ here: pod, container, its state
//!                                                   node ─▶ InternalIP : kubeletEndpoint.Port
//!        ◀──────── text/plain, streamed ─────────── GET https://ip:port/containerLogs/ns/P/c?…
//! client ─GET pods/P/exec (Upgrade: websocket)────▶ here: pod, container, host assigned
//!        ◀═══ 101, then bytes both ways ══════════▶ GET https://ip:port/exec/ns/P/c?… (101)
//! ```
//!
//! The upgrade is proxied as kube-apiserver's UpgradeAwareHandler does it: the agent's
//! handshake answer goes back as is and, once both sides switched, the two connections are
//! spliced, so the WebSocket subprotocol (v5, v4, …) is between the client and the agent.
//! The API server presents its kubelet client certificate ([`KubeletClient`]) and checks the
//! agent's serving certificate against the cluster CA for the node's address.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::error::{ApiError, Target};
use crate::request::{Query, ResourceRequest};
use crate::rest::Api;
use crate::server::Body;

/// How long connecting to an agent (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an agent's error answer that is read.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// The subresources proxied to the node agent.
pub const SUBRESOURCES: [&str; 4] = ["log", "exec", "attach", "portforward"];

/// Whether `request` is one this module serves.
pub fn serves(request: &ResourceRequest) -> bool {
    request.group.is_empty()
        && request.resource == "pods"
        && request.name.is_some()
        && request
            .subresource
            .as_deref()
            .is_some_and(|sub| SUBRESOURCES.contains(&sub))
}

/// How the API server calls node agents (kube-apiserver's `--kubelet-client-certificate`,
/// `--kubelet-client-key` and `--kubelet-certificate-authority`).
#[derive(Clone)]
pub struct KubeletClient {
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for KubeletClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeletClient")
    }
}

impl KubeletClient {
    /// A client presenting `cert_pem`/`key_pem`, trusting agents' serving certificates signed
    /// by `ca_pem`.
    pub fn new(cert_pem: &[u8], key_pem: &[u8], ca_pem: &[u8]) -> Result<KubeletClient, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("kubelet client certificate: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| format!("kubelet client key: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem) {
            let ca = ca.map_err(|e| format!("kubelet certificate authority: {e}"))?;
            roots
                .add(ca)
                .map_err(|e| format!("kubelet certificate authority: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("kubelet client key does not fit its certificate: {e}"))?;
        // Upgrades are HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            tls: Arc::new(config),
        })
    }
}

fn error(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        reason,
        message: message.into(),
        details: None,
        retry_after: None,
    }
}

/// The reason kube gives a status code of an agent's answer.
fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

/// Serves a `pods/{log,exec,attach,portforward}` request already authorized.
pub async fn serve(
    api: &Api,
    kubelet: Option<&KubeletClient>,
    request: &ResourceRequest,
    query: &Query,
    mut parts: hyper::http::request::Parts,
) -> Result<Response<Body>, ApiError> {
    let namespace = request.namespace.as_deref().unwrap_or("default");
    let name = request.name.as_deref().unwrap_or_default();
    let subresource = request.subresource.as_deref().unwrap_or_default();
    let pod = read(api, "pods", Some(namespace), name).await?;
    let is_log = subresource == "log";
    if is_log && parts.method != hyper::Method::GET {
        return Err(error(
            405,
            "MethodNotAllowed",
            format!("{} is not supported on pods/log", parts.method),
        ));
    }
    let upgrade = if is_log {
        None
    } else {
        let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let asks = parts.headers.get("upgrade").is_some_and(|v| !v.is_empty());
        match upgrade {
            Some(upgrade) if asks => Some(upgrade),
            _ => return Err(ApiError::bad_request("Upgrade request required")),
        }
    };
    let container = if subresource == "portforward" {
        None
    } else if is_log {
        Some(log_container(&pod, query.non_empty("container"))?)
    } else {
        Some(stream_container(&pod, name, query.non_empty("container"))?)
    };
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node_name.is_empty() {
        if is_log {
            // kube-apiserver streams nothing for a pod not yet on a node.
            return Ok(text_response(200, Bytes::new()));
        }
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    if let (true, Some(container)) = (is_log, &container) {
        log_state(&pod, container, query.flag("previous"))?;
    }
    let node = read(api, "nodes", None, node_name).await?;
    let (address, port) = agent_endpoint(&node, node_name)?;
    let Some(kubelet) = kubelet else {
        return Err(error(
            503,
            "ServiceUnavailable",
            "this API server has no client certificate for node agents",
        ));
    };
    let path = match subresource {
        "log" => "containerLogs",
        "portforward" => "portForward",
        other => other,
    };
    let mut target = format!("/{path}/{namespace}/{name}");
    if let Some(container) = &container {
        target.push('/');
        target.push_str(container);
    }
    // The agent takes the container from the path, the rest from the query as given.
    let forwarded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .filter(|(key, _)| key != "container"),
        )
        .finish();
    if !forwarded.is_empty() {
        target.push('?');
        target.push_str(&forwarded);
    }
    let mut sender = connect(kubelet, address, port).await?;
    let mut outgoing = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(&target)
        .header("host", format!("{}:{port}", host_text(address)));
    for (header, value) in &parts.headers {
        let keep = match header.as_str() {
            "connection" | "upgrade" | "accept" | "user-agent" => true,
            // Compression extensions are not negotiated through the proxy.
            "sec-websocket-extensions" => false,
            other => other.starts_with("sec-websocket-") || other == "x-stream-protocol-version",
        };
        if keep {
            outgoing = outgoing.header(header, value);
        }
    }
    let outgoing = outgoing
        .body(Empty::<Bytes>::new())
        .map_err(ApiError::internal)?;
    let response = sender
        .send_request(outgoing)
        .await
        .map_err(|e| ApiError::internal(format!("the node agent on {node_name}: {e}")))?;
    let status = response.status().as_u16();
    if let Some(client_upgrade) = upgrade {
        if status == 101 {
            return Ok(splice(client_upgrade, response));
        }
    }
    if status != 200 {
        let body = http_body_util::Limited::new(response.into_body(), MAX_ERROR_BYTES)
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        let message = String::from_utf8_lossy(&body).trim().to_owned();
        // An agent's Status passes as is; its plain text becomes one.
        if let Ok(status_object) = serde_json::from_slice::<Value>(&body) {
            if status_object["kind"] == "Status" {
                return Ok(json_passthrough(status, body));
            }
        }
        return Err(error(status, reason_of(status), message));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .cloned()
        .unwrap_or_else(|| hyper::header::HeaderValue::from_static("text/plain"));
    let body = response.into_body();
    let chunks = futures::stream::unfold(body, |mut body| async move {
        loop {
            match body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok::<_, Infallible>(Frame::data(data)), body));
                    }
                }
                // The agent went away mid-stream: the log ends there.
                Err(_) => return None,
            }
        }
    });
    Ok(Response::builder()
        .status(200)
        .header("content-type", content_type)
        .body(StreamBody::new(chunks).boxed())
        .expect("a valid response"))
}

/// Reads one object, kube's NotFound when it is missing.
async fn read(
    api: &Api,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let resource = api
        .registry
        .find("", "v1", plural)
        .ok_or_else(ApiError::no_route)?;
    let target = Target {
        resource: resource.plural,
        group: "",
        name,
    };
    Ok(
        crate::object::must_read(&*api.storage, &resource.key(namespace, name), &target)
            .await?
            .object,
    )
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

/// The container a log request reads (kube's `validateContainer` for logs).
fn log_container(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers = names(pod, "containers");
    let all: Vec<String> = names(pod, "initContainers")
        .into_iter()
        .chain(containers.iter().cloned())
        .chain(names(pod, "ephemeralContainers"))
        .collect();
    match asked {
        Some(name) if all.iter().any(|c| c == name) => Ok(name.to_owned()),
        Some(name) => Err(ApiError::bad_request(format!(
            "container {name} is not valid for pod {pod_name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None if containers.is_empty() => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}"
        ))),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// The container an exec, attach or port-forward reaches (kube's `streamLocation`).
fn stream_container(pod: &Value, pod_name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    let ephemeral = names(pod, "ephemeralContainers");
    match asked {
        Some(name)
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|c| c == name) =>
        {
            Ok(name.to_owned())
        }
        Some(name) => Err(ApiError::bad_request(format!(
            "container {name} is not valid for pod {pod_name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None if containers.is_empty() => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}"
        ))),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

/// Whether the container has logs to serve, with kubelet's messages when not
/// (`validateContainerLogStatus`), read from the pod's reported status.
fn log_state(pod: &Value, container: &str, previous: bool) -> Result<(), ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let status = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .flat_map(|list| pod["status"][*list].as_array().into_iter().flatten())
    .find(|s| s["name"] == container);
    let bad = |what: String| {
        Err(ApiError::bad_request(format!(
            "container {container:?} in pod {pod_name:?} {what}"
        )))
    };
    let Some(status) = status else {
        return bad("is waiting to start: ContainerCreating".into());
    };
    let last_terminated = &status["lastState"]["terminated"];
    let state = &status["state"];
    if previous {
        if last_terminated.is_object() {
            return Ok(());
        }
        return Err(ApiError::bad_request(format!(
            "previous terminated container {container:?} in pod {pod_name:?} not found"
        )));
    }
    if state["running"].is_object()
        || state["terminated"].is_object()
        || last_terminated.is_object()
    {
        return Ok(());
    }
    match state["waiting"]["reason"].as_str() {
        Some("ErrImagePull") => bad("is waiting to start: image can't be pulled".into()),
        Some("ImagePullBackOff") => {
            bad("is waiting to start: trying and failing to pull image".into())
        }
        Some(reason) => bad(format!("is waiting to start: {reason}")),
        None => bad("is waiting to start - no logs yet".into()),
    }
}

/// The node's agent: its InternalIP and `daemonEndpoints.kubeletEndpoint.Port`.
fn agent_endpoint(node: &Value, node_name: &str) -> Result<(IpAddr, u16), ApiError> {
    let addresses = node["status"]["addresses"].as_array();
    let address = addresses
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "InternalIP" || a["type"] == "ExternalIP")
        .find_map(|a| a["address"].as_str()?.parse::<IpAddr>().ok())
        .ok_or_else(|| {
            ApiError::internal(format!("node {node_name:?} reports no InternalIP address"))
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .filter(|p| (1..=65535).contains(p))
        .ok_or_else(|| {
            error(
                503,
                "ServiceUnavailable",
                format!("the node agent of {node_name:?} serves no API (no kubeletEndpoint port)"),
            )
        })?;
    Ok((address, port as u16))
}

fn host_text(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// An HTTP/1.1 connection to the agent at `address:port`, its certificate checked for
/// `address`.
async fn connect(
    kubelet: &KubeletClient,
    address: IpAddr,
    port: u16,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, ApiError> {
    let url = format!("https://{}:{port}", host_text(address));
    let connecting = async {
        let tcp = tokio::net::TcpStream::connect((address, port))
            .await
            .map_err(|e| format!("dial tcp {}:{port}: {e}", host_text(address)))?;
        let _ = tcp.set_nodelay(true);
        let server_name = rustls_pki_types::ServerName::IpAddress(address.into());
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&kubelet.tls))
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.with_upgrades().await;
        });
        Ok::<_, String>(sender)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(sender)) => Ok(sender),
        Ok(Err(e)) => Err(ApiError::internal(format!(
            "error dialing backend {url}: {e}"
        ))),
        Err(_) => Err(ApiError::internal(format!(
            "error dialing backend {url}: timed out"
        ))),
    }
}

/// Answers the client with the agent's `101` and splices the two connections once both have
/// switched.
fn splice(
    client: hyper::upgrade::OnUpgrade,
    mut agent: Response<hyper::body::Incoming>,
) -> Response<Body> {
    let mut answer = Response::builder().status(101);
    for (header, value) in agent.headers() {
        answer = answer.header(header, value);
    }
    let agent_upgrade = hyper::upgrade::on(&mut agent);
    tokio::spawn(async move {
        let (client, agent) = match tokio::join!(client, agent_upgrade) {
            (Ok(client), Ok(agent)) => (client, agent),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!("pod stream proxy: upgrade failed: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut agent = TokioIo::new(agent);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut agent).await;
    });
    answer
        .body(Full::new(Bytes::new()).boxed())
        .expect("a valid response")
}

fn text_response(code: u16, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain")
        .body(Full::new(body).boxed())
        .expect("a valid response")
}

fn json_passthrough(code: u16, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(body).boxed())
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str], status: Value) -> Value {
        let list = |names: &[&str]| -> Value {
            names
                .iter()
                .map(|n| json!({"name": n, "image": "x"}))
                .collect()
        };
        json!({"metadata": {"name": "web"}, "spec": {"containers": list(containers),
            "initContainers": list(init)}, "status": status})
    }

    #[test]
    fn the_container_is_named_or_the_only_one() {
        let one = pod(&["main"], &[], json!({}));
        assert_eq!(log_container(&one, None).unwrap(), "main");
        assert_eq!(stream_container(&one, "web", None).unwrap(), "main");
        let two = pod(&["a", "b"], &["setup"], json!({}));
        assert_eq!(
            log_container(&two, None).unwrap_err().message,
            "a container name must be specified for pod web, choose one of: [setup a b]"
        );
        assert_eq!(
            stream_container(&two, "web", None).unwrap_err().message,
            "a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [setup]"
        );
        let unknown = stream_container(&two, "web", Some("nope")).unwrap_err();
        assert_eq!(unknown.code, 400);
        assert_eq!(unknown.message, "container nope is not valid for pod web");
        assert_eq!(log_container(&two, Some("setup")).unwrap(), "setup");
    }

    #[test]
    fn logs_need_a_container_that_started() {
        let waiting = pod(
            &["main"],
            &[],
            json!({"containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        );
        assert_eq!(
            log_state(&waiting, "main", false).unwrap_err().message,
            r#"container "main" in pod "web" is waiting to start: CrashLoopBackOff"#
        );
        assert_eq!(
            log_state(&waiting, "main", true).unwrap_err().message,
            r#"previous terminated container "main" in pod "web" not found"#
        );
        let restarted = pod(
            &["main"],
            &[],
            json!({"containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1}}}]}),
        );
        assert!(log_state(&restarted, "main", false).is_ok());
        assert!(log_state(&restarted, "main", true).is_ok());
        let fresh = pod(&["main"], &[], json!({}));
        assert_eq!(
            log_state(&fresh, "main", false).unwrap_err().message,
            r#"container "main" in pod "web" is waiting to start: ContainerCreating"#
        );
    }

    #[test]
    fn the_agent_is_found_from_the_node() {
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"},
            {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 41000}}}});
        assert_eq!(
            agent_endpoint(&node, "n1").unwrap(),
            ("127.0.0.1".parse().unwrap(), 41000)
        );
        let silent = json!({"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}}});
        assert_eq!(agent_endpoint(&silent, "n1").unwrap_err().code, 503);
    }
}
