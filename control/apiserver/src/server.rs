//! The HTTPS front: TLS with optional client certificates, HTTP/1.1 and HTTP/2, the
//! in-flight limit, authentication, impersonation and RBAC authorization, then the route's
//! handler; mutating requests are audited once answered.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::audit::{self, AuditLog};
use crate::auth::{Identity, Tokens};
use crate::error::ApiError;
use crate::rbac::{self, Attributes, Authorizer};
use crate::request::{self, Query, Route, Verb};
use crate::rest::{Api, Call, Reply, MAX_BODY_BYTES};
use crate::warning::{self, Warnings};
use crate::{collection, discovery, openapi, protobuf};

/// The body every response has.
pub type Body = BoxBody<Bytes, Infallible>;

/// The Kubernetes version the server reports (`/version`): the API it serves follows it.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// How the front behaves.
pub struct Front {
    /// Bearer tokens.
    pub tokens: Tokens,
    /// Requests handled at once (watches excluded); past it, 429.
    pub max_in_flight: usize,
    /// `host:port` clients reach this server at (legacy `/api`'s serverAddress).
    pub advertise_address: String,
    /// Where mutating requests are logged, if anywhere.
    pub audit: Option<AuditLog>,
    /// How node agents are called (`pods/log`, `pods/exec`); none: those answer 503.
    pub kubelet: Option<crate::node_proxy::KubeletClient>,
}

/// The client's address, which the TLS loop puts in each request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Who a request turned out to be, for its audit event.
#[derive(Default)]
struct Who {
    user: Option<Identity>,
    impersonated: Option<Identity>,
    resource: Option<request::ResourceRequest>,
}

/// A server: the API and its front.
pub struct Server {
    api: Arc<Api>,
    front: Front,
    in_flight: Semaphore,
    authorizer: Authorizer,
}

impl Server {
    /// A server of `api`.
    pub fn new(api: Arc<Api>, front: Front) -> Arc<Server> {
        let in_flight = Semaphore::new(front.max_in_flight);
        let authorizer = Authorizer::new(Arc::clone(&api.cache));
        Arc::new(Server {
            api,
            front,
            in_flight,
            authorizer,
        })
    }

    /// Serves TLS connections on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let acceptor = TlsAcceptor::from(tls);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("apiserver: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => return,
            };
            let _ = stream.set_nodelay(true);
            let server = Arc::clone(&self);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!("apiserver: TLS handshake with {peer} failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    };
                let identity = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| Identity::from_certificate(leaf));
                let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                    let server = Arc::clone(&server);
                    let identity = identity.clone();
                    request.extensions_mut().insert(PeerAddr(peer));
                    async move { Ok::<_, Infallible>(server.handle(request, identity).await) }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!("apiserver: connection from {peer} ended: {e}");
                }
            });
        }
    }

    /// Answers one request from `identity` (the verified client certificate's, if any).
    pub async fn handle<B>(&self, request: Request<B>, identity: Option<Identity>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let warnings = Warnings::default();
        let protobuf = request
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(protobuf::preferred);
        let received = time::OffsetDateTime::now_utc();
        let uri = request.uri().to_string();
        let peer = request
            .extensions()
            .get::<PeerAddr>()
            .map(|p| p.0.ip().to_string());
        let user_agent = request
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let started = std::time::Instant::now();
        let apply = request
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/apply-patch"));
        let dry_run = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("dryRun=All"));
        let mut who = Who::default();
        let result = self.respond(request, identity, &warnings, &mut who).await;
        let code = match &result {
            Ok(response) => response.status().as_u16(),
            Err(e) => e.code,
        };
        if let Some(resource) = &who.resource {
            let labels = crate::metrics::RequestLabels::of(resource, apply, dry_run);
            self.api.metrics.observe(&labels, code, started.elapsed());
        }
        if let (Some(log), Some(resource), Some(user)) =
            (&self.front.audit, &who.resource, &who.user)
        {
            if resource.verb.is_mutating() {
                let failure = result
                    .as_ref()
                    .err()
                    .map(|e| (e.reason, e.message.as_str()));
                let request = audit::Request {
                    uri: &uri,
                    resource,
                    user,
                    impersonated: who.impersonated.as_ref(),
                    source_ip: peer,
                    user_agent: user_agent.as_deref(),
                    received,
                };
                log.record(audit::event(&request, code, failure));
            }
        }
        let mut response = match result {
            Ok(response) => response,
            Err(error) if protobuf => protobuf_error_response(&error),
            Err(error) => error_response(&error),
        };
        for text in warnings.texts() {
            if let Ok(value) = HeaderValue::from_bytes(warning::header_value(&text).as_bytes()) {
                response.headers_mut().append("warning", value);
            }
        }
        response
    }

    async fn respond<B>(
        &self,
        request: Request<B>,
        identity: Option<Identity>,
        warnings: &Warnings,
        who: &mut Who,
    ) -> Result<Response<Body>, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let query = Query::parse(parts.uri.query());
        let route = request::route(parts.method.as_str(), parts.uri.path(), &query);
        if route == Route::Health {
            return Ok(text_response(200, "ok"));
        }
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let identity = match (identity, header("authorization")) {
            (_, Some(authorization)) => self.authenticate_token(&authorization).await?,
            (Some(identity), None) => identity,
            (None, None)
                if crate::auth::anonymous_allowed(parts.method.as_str(), parts.uri.path()) =>
            {
                Identity::anonymous()
            }
            (None, None) => return Err(ApiError::unauthorized()),
        };
        let attributes = match &route {
            Route::Resource(r) => {
                who.resource = Some(r.clone());
                Attributes::of_request(r)
            }
            _ => Attributes::of_path(parts.method.as_str(), parts.uri.path()),
        };
        who.user = Some(identity.clone());
        self.authorizer.ready().await;
        let requester = identity.clone();
        let identity =
            rbac::impersonation::impersonate(&self.authorizer, identity, &parts.headers)?;
        if identity != requester {
            who.impersonated = Some(identity.clone());
        }
        if !self.authorizer.allows(&identity, &attributes) {
            let details = attributes
                .resource
                .as_ref()
                .map(|r| json!({"name": r.name, "group": r.group, "kind": r.resource}));
            let mut message = attributes.forbidden_message(&identity.user);
            if let Some(reason) = self.authorizer.node_denial(&identity, &attributes) {
                message = format!("{message}: {reason}");
            }
            return Err(ApiError {
                details,
                ..ApiError::forbidden(message)
            });
        }
        let accept = header("accept").unwrap_or_default();
        let content_type = header("content-type");
        let reply = match route {
            Route::Resource(request) if crate::node_proxy::serves(&request) => {
                // Streams: no body to read, no in-flight slot held for their length.
                return crate::node_proxy::serve(
                    &self.api,
                    self.front.kubelet.as_ref(),
                    &request,
                    &query,
                    parts,
                )
                .await;
            }
            Route::Resource(request) => {
                let watching = request.verb == Verb::Watch;
                let _permit = if watching {
                    None
                } else {
                    Some(
                        self.in_flight
                            .try_acquire()
                            .map_err(|_| ApiError::too_many_requests())?,
                    )
                };
                let _in_flight = (!watching).then(|| {
                    self.api.metrics.in_flight(if request.verb.is_mutating() {
                        crate::metrics::RequestKind::Mutating
                    } else {
                        crate::metrics::RequestKind::ReadOnly
                    })
                });
                let body = Limited::new(body, MAX_BODY_BYTES)
                    .collect()
                    .await
                    .map_err(|e| {
                        if e.is::<http_body_util::LengthLimitError>() {
                            ApiError::too_large(MAX_BODY_BYTES)
                        } else {
                            ApiError::bad_request(format!("cannot read the request body: {e}"))
                        }
                    })?
                    .to_bytes();
                let content_type = content_type.as_deref();
                if self.front.audit.is_some()
                    && request.verb == Verb::Create
                    && request.name.is_none()
                {
                    // The audit event names the object created, as kube's does.
                    if let Some(resource) = who.resource.as_mut() {
                        resource.name = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|o| o["metadata"]["name"].as_str().map(str::to_owned));
                    }
                }
                if let Some(reply) =
                    rbac::review::serve(&self.authorizer, &identity, &request, &body)
                {
                    return reply.map(|reply| reply_response(reply, protobuf::preferred(&accept)));
                }
                let user_agent = header("user-agent");
                let incoming = RequestParts {
                    query: &query,
                    body: &body,
                    content_type,
                    accept: &accept,
                    user_agent: user_agent.as_deref(),
                };
                crate::certificates::authorize_signer(
                    &self.api,
                    &self.authorizer,
                    &identity,
                    &request,
                    &body,
                )
                .await?;
                crate::certificates::REQUESTER
                    .scope(
                        identity.clone(),
                        self.resource(&request, &identity, incoming, warnings),
                    )
                    .await?
            }
            Route::CoreVersions => {
                discovery::core_versions(&self.api.registry, &accept, &self.front.advertise_address)
            }
            Route::Groups => discovery::groups(&self.api.registry, &accept),
            Route::Group(group) => {
                discovery::group(&self.api.registry, &group).ok_or_else(ApiError::no_route)?
            }
            Route::GroupVersion { group, version } => {
                discovery::resource_list(&self.api.registry, &group, &version)
                    .ok_or_else(ApiError::no_route)?
            }
            Route::Version => Reply::Object(200, version()),
            Route::OpenApi(rest) if rest.trim_end_matches('/') == "v2" => {
                let if_none_match = header("if-none-match");
                let (status, body, content_type, etag) = self
                    .api
                    .openapi
                    .v2()
                    .serve(&accept, if_none_match.as_deref());
                return Ok(Response::builder()
                    .status(status)
                    .header("content-type", content_type)
                    .header("etag", etag)
                    .header("cache-control", "no-cache, private")
                    .header("vary", "Accept")
                    .body(full(body))
                    .expect("a valid response"));
            }
            Route::OpenApi(rest) => {
                let if_none_match = header("if-none-match");
                return self
                    .api
                    .openapi
                    .serve(&rest, query.get("hash"), if_none_match.as_deref())
                    .map(openapi_response)
                    .ok_or_else(ApiError::no_route);
            }
            Route::Metrics => {
                return Ok(Response::builder()
                    .status(200)
                    .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                    .body(full(self.api.metrics_text()))
                    .expect("a valid response"));
            }
            Route::Health => unreachable!("answered before authentication"),
            Route::Unknown => return Err(ApiError::no_route()),
        };
        Ok(reply_response(reply, protobuf::preferred(&accept)))
    }

    /// The identity of `Authorization: Bearer TOKEN`: a static token, a bootstrap token, or
    /// a service account's.
    async fn authenticate_token(&self, authorization: &str) -> Result<Identity, ApiError> {
        match self.front.tokens.authenticate(authorization) {
            Ok(identity) => Ok(identity),
            Err(unknown) => {
                let token = authorization.strip_prefix("Bearer ").unwrap_or("").trim();
                if crate::auth::parse_bootstrap_token(token).is_some() {
                    return self
                        .api
                        .authenticate_bootstrap_token(token)
                        .await
                        .ok_or(unknown);
                }
                if !crate::service_account::looks_like_jwt(token) {
                    return Err(unknown);
                }
                self.api
                    .authenticate_service_account(token)
                    .await
                    .ok_or(unknown)
            }
        }
    }

    async fn resource(
        &self,
        request: &request::ResourceRequest,
        identity: &Identity,
        incoming: RequestParts<'_>,
        warnings: &Warnings,
    ) -> Result<Reply, ApiError> {
        let RequestParts {
            query,
            body,
            content_type,
            accept,
            user_agent,
        } = incoming;
        let api = &self.api;
        let resource = api
            .registry
            .find(&request.group, &request.version, &request.resource)
            .ok_or_else(ApiError::no_route)?;
        let resource = &resource;
        if resource.namespaced && request.namespace.is_none() && request.name.is_some() {
            return Err(ApiError::no_route());
        }
        // Protobuf bodies become the JSON every handler works on (patches have no protobuf form).
        let json_body;
        let (body, content_type) =
            if protobuf::is_protobuf(content_type) && request.verb != Verb::Patch {
                json_body = protobuf::request_to_json(body, resource.kind)?;
                (&json_body[..], Some("application/json"))
            } else {
                (body, content_type)
            };
        let call = Call {
            resource,
            namespace: request.namespace.as_deref(),
            name: request.name.as_deref().unwrap_or(""),
            query,
            body,
            content_type,
            warnings,
            user_agent,
        };
        if resource.group == crate::admission::rbac::GROUP {
            self.check_escalation(&call, request, identity).await?;
        }
        let reply = match request.verb {
            Verb::List => api.list(&call, accept).await?,
            Verb::Watch => api.watch(&call, accept).await?,
            Verb::Create if request.name.is_none() => api.create(&call).await?,
            Verb::DeleteCollection => api.delete_collection(&call).await?,
            Verb::Update | Verb::Patch if request.name.is_none() => {
                return Err(ApiError::method_not_allowed(
                    request.verb.as_str(),
                    resource.plural,
                ))
            }
            verb => {
                api.object_call(&call, verb, request.subresource.as_deref())
                    .await?
            }
        };
        // Custom objects are shown at the version asked for.
        let reply = match reply {
            Reply::Object(code, mut object) if resource.custom.is_some() => {
                crate::crd::objects::to_version(resource, &mut object);
                Reply::Object(code, object)
            }
            reply => reply,
        };
        // A single object asked for as a Table is a one-row Table.
        match reply {
            Reply::Object(code, object)
                if request.verb == Verb::Get
                    && request.subresource.is_none()
                    && collection::wants_table(accept) =>
            {
                let include = crate::table::IncludeObject::parse(query.get("includeObject"))
                    .map_err(ApiError::bad_request)?;
                let rv = object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                Ok(Reply::Object(
                    code,
                    crate::crd::printer::to_table(
                        resource,
                        &[object],
                        include,
                        now,
                        &rv,
                        None,
                        true,
                    ),
                ))
            }
            reply => Ok(reply),
        }
    }
}

/// A resource request's query and body.
struct RequestParts<'a> {
    query: &'a Query,
    body: &'a [u8],
    content_type: Option<&'a str>,
    accept: &'a str,
    user_agent: Option<&'a str>,
}

impl Server {
    /// Refuses a write of a Role, ClusterRole or binding that would grant `identity` more than
    /// it holds (see [`rbac::escalation`]); the object checked is the one the write would store.
    async fn check_escalation(
        &self,
        call: &Call<'_>,
        request: &request::ResourceRequest,
        identity: &Identity,
    ) -> Result<(), ApiError> {
        if request.subresource.is_some() {
            return Ok(());
        }
        let (object, old) = match request.verb {
            Verb::Create => (call.json_body()?, None),
            Verb::Update | Verb::Patch => {
                let old = match self.api.get(call).await {
                    Ok(old) => old,
                    // The write itself reports the missing object.
                    Err(e) if e.code == 404 => return Ok(()),
                    Err(e) => return Err(e),
                };
                let new = if request.verb == Verb::Update {
                    call.json_body()?
                } else {
                    let Some(patch_type) = call
                        .content_type
                        .and_then(crate::patch::PatchType::from_content_type)
                    else {
                        return Ok(());
                    };
                    match crate::patch::apply(call.resource.kind, &old, patch_type, call.body) {
                        Ok(new) => new,
                        // The write reports the bad patch.
                        Err(_) => return Ok(()),
                    }
                };
                (new, Some(old))
            }
            _ => return Ok(()),
        };
        let mut object = object;
        if let Some(name) = request.name.as_deref() {
            crate::object::metadata_mut(&mut object).insert("name".into(), json!(name));
        }
        crate::admission::apply_defaults(call.resource.kind, &mut object);
        rbac::escalation::check_write(
            &self.authorizer,
            identity,
            call.resource.plural,
            call.namespace.unwrap_or(""),
            &object,
            old.as_ref(),
        )
    }
}

fn openapi_response(served: openapi::Served) -> Response<Body> {
    let mut builder = Response::builder()
        .status(served.status)
        .header("etag", served.etag)
        .header("cache-control", served.cache_control)
        .header("vary", "Accept");
    if served.status == 200 {
        builder = builder.header("content-type", "application/json");
    }
    if let Some(location) = served.location {
        builder = builder.header("location", location);
    }
    builder.body(full(served.body)).expect("a valid response")
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_VERSION.split('.').nth(1).unwrap_or("33"),
        "gitVersion": format!("{KUBERNETES_VERSION}+keel"),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "none (keel is written in Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }),
    })
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn text_response(code: u16, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain; charset=utf-8")
        .body(full(text))
        .expect("a valid response")
}

fn json_response(code: u16, value: &Value, content_type: &str) -> Response<Body> {
    bytes_response(code, value.to_string().into_bytes(), content_type)
}

fn bytes_response(code: u16, body: Vec<u8>, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", content_type)
        .header("cache-control", "no-cache, private")
        .body(full(body))
        .expect("a valid response")
}

/// The response of an error: its Status, and Retry-After when it has one.
pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.status(), "application/json");
    if let Some(seconds) = error.retry_after {
        response.headers_mut().insert("retry-after", seconds.into());
    }
    response
}

/// An error's Status in protobuf, for a client that prefers it.
fn protobuf_error_response(error: &ApiError) -> Response<Body> {
    let Some(body) = protobuf::object_body(&error.status()) else {
        return error_response(error);
    };
    let mut response = bytes_response(error.code, body, protobuf::MEDIA_TYPE);
    if let Some(seconds) = error.retry_after {
        response.headers_mut().insert("retry-after", seconds.into());
    }
    response
}

/// A JSON object's response, in protobuf when preferred and its kind has a protobuf form.
fn object_response(code: u16, value: &Value, protobuf: bool) -> Response<Body> {
    match protobuf.then(|| protobuf::object_body(value)).flatten() {
        Some(body) => bytes_response(code, body, protobuf::MEDIA_TYPE),
        None => json_response(code, value, "application/json"),
    }
}

fn reply_response(reply: Reply, protobuf: bool) -> Response<Body> {
    match reply {
        Reply::Object(code, value) => object_response(code, &value, protobuf),
        Reply::Json(code, body) if protobuf => match serde_json::from_slice::<Value>(&body) {
            Ok(value) => object_response(code, &value, true),
            Err(_) => bytes_response(code, body, "application/json"),
        },
        Reply::Stream(receiver, "application/json") if protobuf => reply_response(
            Reply::Stream(protobuf::watch_frames(receiver), protobuf::WATCH_MEDIA_TYPE),
            false,
        ),
        Reply::Typed(code, value, content_type) => json_response(code, &value, content_type),
        Reply::Json(code, body) => bytes_response(code, body, "application/json"),
        Reply::Stream(receiver, content_type) => {
            let stream =
                tokio_stream_of(receiver).map(|line| Ok::<_, Infallible>(Frame::data(line)));
            Response::builder()
                .status(200)
                .header("content-type", content_type)
                .header("cache-control", "no-cache, private")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .expect("a valid response")
        }
    }
}

fn tokio_stream_of(
    mut receiver: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Bytes> + Send {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// A TLS server configuration from PEM: the serving certificate chain and key, and the CA
/// whose client certificates identify users (a client without one may still use a token).
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
    .allow_unauthenticated()
    .build()
    .map_err(|e| format!("client CA: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("serving key does not fit the certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Page, StorageError, StorageResult, WatchBatch, Written};
    use futures::future::BoxFuture;
    use futures::stream::BoxStream;

    /// Storage that is never reached: the front answers before any handler runs.
    struct Unreachable;

    impl crate::Storage for Unreachable {
        fn range(
            &self,
            _: Vec<u8>,
            _: Vec<u8>,
            _: i64,
            _: i64,
        ) -> BoxFuture<'_, StorageResult<Page>> {
            Box::pin(async { Err(StorageError::Unavailable("unreachable".into())) })
        }
        fn create(&self, _: Vec<u8>, _: Vec<u8>) -> BoxFuture<'_, StorageResult<Written>> {
            Box::pin(async { Err(StorageError::Unavailable("unreachable".into())) })
        }
        fn update(&self, _: Vec<u8>, _: Vec<u8>, _: i64) -> BoxFuture<'_, StorageResult<Written>> {
            Box::pin(async { Err(StorageError::Unavailable("unreachable".into())) })
        }
        fn delete(&self, _: Vec<u8>, _: i64) -> BoxFuture<'_, StorageResult<Written>> {
            Box::pin(async { Err(StorageError::Unavailable("unreachable".into())) })
        }
        fn watch(
            &self,
            _: Vec<u8>,
            _: Vec<u8>,
            _: i64,
        ) -> BoxFuture<'_, StorageResult<BoxStream<'static, WatchBatch>>> {
            Box::pin(async { Err(StorageError::Unavailable("unreachable".into())) })
        }
    }

    fn server(max_in_flight: usize) -> (Arc<Server>, tokio::task::JoinHandle<()>) {
        let (api, cache) = Api::start(Arc::new(Unreachable), None);
        let mut tokens = Tokens::default();
        tokens.insert("admin-token", "admin", &[crate::auth::MASTERS]);
        let front = Front {
            tokens,
            max_in_flight,
            advertise_address: "127.0.0.1:6443".into(),
            audit: None,
            kubelet: None,
        };
        (Server::new(api, front), cache)
    }

    async fn call(
        server: &Server,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Value, Option<String>) {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(http_body_util::Empty::<Bytes>::new()).unwrap();
        let response = server.handle(request, None).await;
        let code = response.status().as_u16();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            code,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            retry,
        )
    }

    #[tokio::test]
    async fn past_the_in_flight_limit_requests_get_429_with_retry_after() {
        let (server, cache) = server(0);
        let (code, status, retry) = call(&server, "/api/v1/pods", Some("admin-token")).await;
        assert_eq!(
            (code, status["reason"].as_str()),
            (429, Some("TooManyRequests"))
        );
        assert_eq!(retry.as_deref(), Some("1"));
        // Discovery is not a resource request and is not limited.
        let (code, body, _) = call(&server, "/api", Some("admin-token")).await;
        assert_eq!((code, body["kind"].as_str()), (200, Some("APIVersions")));
        cache.abort();
    }

    #[tokio::test]
    async fn tokens_are_checked_and_health_is_open() {
        let (server, cache) = server(10);
        assert_eq!(call(&server, "/api", None).await.0, 401);
        assert_eq!(call(&server, "/api", Some("wrong")).await.0, 401);
        assert_eq!(call(&server, "/api", Some("a.b.c")).await.0, 401);
        let (code, body, _) = call(&server, "/version", Some("admin-token")).await;
        assert_eq!(code, 200);
        assert!(body["gitVersion"].as_str().unwrap().starts_with("v1."));
        let response = server
            .handle(
                Request::get("/livez")
                    .body(http_body_util::Empty::<Bytes>::new())
                    .unwrap(),
                None,
            )
            .await;
        assert_eq!(response.status().as_u16(), 200);
        cache.abort();
    }
}
