//! The agent's own HTTPS API (kubelet's port 10250 role): container logs, exec and attach,
//! which the API server proxies `pods/log`, `pods/exec` and `pods/attach` to. Only the API
//! server may call it.
//!
//! ```text
//! GET  /healthz                                  ok
//! GET  /containerLogs/{ns}/{pod}/{container}?…   text/plain, streamed     (logs.rs)
//! GET  /exec/{ns}/{pod}/{container}?command=…    101 WebSocket channels    (exec.rs)
//! GET  /attach/{ns}/{pod}/{container}?stdin=…     101 WebSocket channels    (exec.rs)
//! ```
//!
//! ## Who may call it
//! TLS with a client certificate required and verified against the cluster CA, and its common
//! name in [`ApiConfig::allowed_users`] (by default `kube-apiserver-kubelet-client`, the name
//! kubeadm gives the API server's kubelet client certificate). kubelet asks the API server
//! (a SubjectAccessReview on `nodes/proxy`) whether the caller may; the allow-list is the fixed
//! equivalent for an agent whose only caller is the API server: a node's or a user's certificate,
//! though signed by the same CA, is refused (403).

pub mod exec;
pub mod logs;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use keel_runtime::{ContainerState, ContainerStatus, ExecRequest};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::pods::labels;
use crate::runtimes::{DynRuntime, Runtimes};

/// The common name the API server's client certificate has by default.
pub const API_SERVER_CLIENT: &str = "kube-apiserver-kubelet-client";

/// How the agent API is served.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Where it listens; port 0 takes any free port (the one bound is reported in the Node's
    /// `status.daemonEndpoints.kubeletEndpoint.Port`).
    pub address: SocketAddr,
    /// Its TLS: serving certificate, and the CA client certificates must be signed by
    /// ([`tls_config`]).
    pub tls: Arc<rustls::ServerConfig>,
    /// The client certificate common names allowed to call it.
    pub allowed_users: Vec<String>,
}

impl ApiConfig {
    /// The API at `address`, serving `cert_pem`/`key_pem`, called only by the API server
    /// ([`API_SERVER_CLIENT`]) with a certificate signed by `client_ca_pem`.
    pub fn for_api_server(
        address: SocketAddr,
        cert_pem: &[u8],
        key_pem: &[u8],
        client_ca_pem: &[u8],
    ) -> Result<ApiConfig, String> {
        Ok(ApiConfig {
            address,
            tls: tls_config(cert_pem, key_pem, client_ca_pem)?,
            allowed_users: vec![API_SERVER_CLIENT.to_owned()],
        })
    }
}

/// A TLS configuration for the agent API: `cert_pem`/`key_pem` serve, and every client must
/// present a certificate signed by `client_ca_pem`. HTTP/1.1 only (WebSocket upgrades).
pub fn tls_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("serving certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("serving key: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca_pem) {
        let ca = ca.map_err(|e| format!("client CA: {e}"))?;
        roots.add(ca).map_err(|e| format!("client CA: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("client CA: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("serving key does not fit the certificate: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What the API's handlers read: the node's data dir (logs) and its runtimes.
pub struct State {
    /// The node's data dir.
    pub data_dir: PathBuf,
    /// Its runtimes.
    pub runtimes: Runtimes,
    /// Who may call.
    pub allowed_users: Vec<String>,
}

type Body = BoxBody<Bytes, Infallible>;

/// Serves the agent API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("agent API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(
                Duration::from_secs(10),
                acceptor.accept(stream),
            )
            .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!("agent API: TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            let user = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| common_name(leaf));
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let state = Arc::clone(&state);
                let user = user.clone();
                async move { Ok::<_, Infallible>(handle(&state, user.as_deref(), request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = connection.await {
                tracing::debug!("agent API: connection from {peer} ended: {e}");
            }
        });
    }
}

fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(name.to_owned())
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.into())).boxed())
        .expect("a valid response")
}

/// An error the handlers answer with: its status and text (kubelet answers in plain text).
type Failure = (StatusCode, String);

async fn handle(state: &State, user: Option<&str>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if parts == ["healthz"] {
        return text(StatusCode::OK, "ok");
    }
    let verb = if request.method() == hyper::Method::GET {
        "get"
    } else {
        "create"
    };
    let subresource = match parts.first() {
        Some(&"containerLogs") => "log",
        Some(&"exec") | Some(&"attach") => "exec",
        _ => "proxy",
    };
    match user {
        Some(user) if state.allowed_users.iter().any(|allowed| allowed == user) => {}
        _ => {
            return text(
                StatusCode::FORBIDDEN,
                format!(
                    "Forbidden (user={}, verb={verb}, resource=nodes, subresource={subresource})",
                    user.unwrap_or("system:anonymous")
                ),
            )
        }
    }
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let result = match parts.as_slice() {
        ["containerLogs", namespace, pod, container] if request.method() == hyper::Method::GET => {
            container_logs(state, namespace, pod, container, &query).await
        }
        ["exec", namespace, pod, container] => {
            exec(
                state,
                namespace,
                pod,
                container,
                &query,
                request,
                Stream::Exec,
            )
            .await
        }
        ["attach", namespace, pod, container] => {
            exec(
                state,
                namespace,
                pod,
                container,
                &query,
                request,
                Stream::Attach,
            )
            .await
        }
        ["portForward", ..] => Err((
            StatusCode::BAD_REQUEST,
            "keel-agent does not serve /portForward (yet); kubectl exec works".into(),
        )),
        _ => Err((StatusCode::NOT_FOUND, "404 page not found".into())),
    };
    result.unwrap_or_else(|(status, message)| text(status, message))
}

/// A pod's container as the runtimes have it.
struct Found {
    runtime: Arc<dyn DynRuntime>,
    uid: String,
    /// Every attempt of it the runtime still has, oldest first.
    attempts: Vec<ContainerStatus>,
}

impl Found {
    fn current(&self) -> &ContainerStatus {
        self.attempts
            .last()
            .expect("found containers have an attempt")
    }
}

/// Finds container `name` of pod `namespace/pod` in the node's runtimes (a pod recreated
/// under the same name: its newest instance).
async fn find(state: &State, namespace: &str, pod: &str, name: &str) -> Result<Found, Failure> {
    let mut pod_seen = false;
    let mut best: Option<Found> = None;
    for (_, runtime) in state.runtimes.iter() {
        let containers = runtime.list_containers().await.map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("listing containers: {e}"),
            )
        })?;
        for status in containers {
            let label = |key: &str| status.labels.get(key).map(String::as_str);
            if label(labels::POD_NAMESPACE) != Some(namespace)
                || label(labels::POD_NAME) != Some(pod)
            {
                continue;
            }
            pod_seen = true;
            if status.name != name {
                continue;
            }
            let uid = label(labels::POD_UID).unwrap_or_default().to_owned();
            match &mut best {
                Some(found) if found.uid == uid => found.attempts.push(status),
                Some(found) if found.current().attempt >= status.attempt => {}
                _ => {
                    best = Some(Found {
                        runtime: Arc::clone(runtime),
                        uid,
                        attempts: vec![status],
                    })
                }
            }
        }
    }
    match best {
        Some(mut found) => {
            found.attempts.sort_by_key(|c| c.attempt);
            Ok(found)
        }
        None if pod_seen => Err((
            StatusCode::NOT_FOUND,
            format!("container not found ({name:?})"),
        )),
        None => Err((StatusCode::NOT_FOUND, format!("pod {pod:?} does not exist"))),
    }
}

async fn container_logs(
    state: &State,
    namespace: &str,
    pod: &str,
    name: &str,
    query: &[(String, String)],
) -> Result<Response<Body>, Failure> {
    let options = logs::LogOptions::parse(query, time::OffsetDateTime::now_utc())
        .map_err(|message| (StatusCode::BAD_REQUEST, message))?;
    let found = find(state, namespace, pod, name).await?;
    let dir = logs::container_log_dir(&state.data_dir, namespace, pod, &found.uid, name);
    let current = found.current().clone();
    let (attempt, follow_id) = if options.previous {
        let previous = current
            .attempt
            .checked_sub(1)
            .filter(|attempt| dir.join(format!("{attempt}.log")).exists());
        match previous {
            Some(attempt) => (attempt, None),
            None => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("previous terminated container {name:?} in pod {pod:?} not found"),
                ))
            }
        }
    } else {
        (current.attempt, Some(current.id.clone()))
    };
    let path = dir.join(format!("{attempt}.log"));
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    let runtime = Arc::clone(&found.runtime);
    tokio::spawn(async move {
        let running = move || -> futures::future::BoxFuture<'static, bool> {
            let runtime = Arc::clone(&runtime);
            let id = follow_id.clone();
            Box::pin(async move {
                let Some(id) = id else { return false };
                matches!(
                    runtime.container_status(&id).await.map(|s| s.state),
                    Ok(ContainerState::Running { .. } | ContainerState::Created)
                )
            })
        };
        if let Err(e) = logs::stream(&path, options, sender, running).await {
            tracing::warn!("serving {}: {e}", path.display());
        }
    });
    let chunks = futures::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((
            Ok::<_, Infallible>(Frame::data(Bytes::from(chunk))),
            receiver,
        ))
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body(StreamBody::new(chunks).boxed())
        .expect("a valid response"))
}

/// Which of a container's streams a session reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// A new command's (`kubectl exec`).
    Exec,
    /// The container's own (`kubectl attach`, `kubectl run -i`).
    Attach,
}

async fn exec(
    state: &State,
    namespace: &str,
    pod: &str,
    name: &str,
    query: &[(String, String)],
    mut request: Request<Incoming>,
    stream: Stream,
) -> Result<Response<Body>, Failure> {
    let bad = |message: &str| (StatusCode::BAD_REQUEST, message.to_owned());
    let flag = |key: &str| {
        query
            .iter()
            .any(|(k, v)| k == key && matches!(v.as_str(), "1" | "true" | ""))
    };
    let argv: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let (stdin, stdout, stderr, tty) = (flag("stdin"), flag("stdout"), flag("stderr"), flag("tty"));
    if !stdin && !stdout && !stderr {
        return Err(bad("you must specify at least 1 of stdin, stdout, stderr"));
    }
    if argv.is_empty() && stream == Stream::Exec {
        return Err(bad(
            "you must specify at least one command for the container",
        ));
    }
    let found = find(state, namespace, pod, name).await?;
    let header = |name: &str| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let websocket = header("upgrade")
        .iter()
        .any(|u| u.eq_ignore_ascii_case("websocket"));
    let key = header("sec-websocket-key").into_iter().next();
    let (true, Some(key)) = (websocket, key) else {
        return Err(bad(&format!(
            "keel-agent serves exec over WebSocket only ({}); SPDY is not supported",
            exec::PROTOCOLS.join(", ")
        )));
    };
    let offered = header("sec-websocket-protocol");
    let Some(protocol) = exec::negotiate(offered.iter().map(String::as_str)) else {
        return Err(bad(&format!(
            "none of the offered subprotocols {offered:?} is served ({})",
            exec::PROTOCOLS.join(", ")
        )));
    };
    let current = found.current();
    if !matches!(current.state, ContainerState::Running { .. }) {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("container not running ({:?})", current.id.0),
        ));
    }
    let process = match stream {
        Stream::Exec => {
            let exec_request = ExecRequest {
                argv: argv.clone(),
                stdin,
                tty,
            };
            found.runtime.exec(&current.id, &exec_request).await
        }
        Stream::Attach => found.runtime.attach(&current.id, stdin).await,
    }
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let argv = (stream == Stream::Exec).then_some(argv);
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => exec::serve(TokioIo::new(upgraded), protocol, argv, Ok(process)).await,
            Err(e) => tracing::debug!("agent API: exec upgrade failed: {e}"),
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", protocol)
        .body(Full::new(Bytes::new()).boxed())
        .expect("a valid response"))
}
