//! The etcd v3 JSON gateway on warp, kept in three parts: filters (the `routes` function of
//! each service file, plus the shared ones here), handlers (the `async fn`s of each service
//! file) and [`models`] (the JSON bodies). [`error::recover`] maps every rejection to etcd's
//! error shape.
//!
//! | file | routes |
//! | --- | --- |
//! | [`kv`] | `/v3/kv/range`, `put`, `deleterange`, `txn`, `compaction` |
//! | [`watch`] | `/v3/watch` (streaming both ways) |
//! | [`lease`] | `/v3/lease/grant`, `revoke`, `keepalive` (streaming), `timetolive`, `leases`, and the `/v3/kv/lease/...` aliases |
//! | [`maintenance`] | `/v3/maintenance/status`, `hash`, `hashkv`, `snapshot` (streamed), `alarm`, `defragment` |
//! | [`cluster`] | `/v3/cluster/member/list`, `add`, `remove`, `update`, `promote` |
//! | [`auth`] | `/v3/auth/enable`, `disable`, `status`, `authenticate`, `user/*`, `role/*` |
//! | [`health`] | `GET /health`, `/readyz`, `/livez`, `/version`, `/metrics` |
//!
//! Every unary route names the [`Access`] its request needs ([`guarded`]); plain [`unary`]
//! routes need the root role once auth is enabled, so a route nobody thought about is safe.
//!
//! [`grpc`] serves the same services as etcd's gRPC API on the same port, through the same
//! handlers and the same access checks.

pub mod auth;
pub mod auth_models;
pub mod cluster;
pub mod error;
pub mod grpc;
pub mod health;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod models;
pub mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use crate::auth::{Access, Auth, Credentials};
use crate::identity::ClientCertificate;
use crate::lessor::Lessor;
use crate::metrics::Metrics;
use crate::replica::Replica;
use error::{ApiError, Code};
use models::ResponseHeader;

/// The server version reported by `/version` and `status`: the etcd API version keel speaks,
/// as plain `MAJOR.MINOR.PATCH`, because gateway clients (etcd3gw) split it on dots and parse
/// integers to pick the API path; keel's own version is [`KEEL_VERSION`], beside it in
/// `/version`.
pub fn server_version() -> String {
    "3.4.0".to_owned()
}

/// keel's own version, reported by `/version` as `keel`.
pub const KEEL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The cluster version reported by `/version`.
pub const CLUSTER_VERSION: &str = "3.4.0";

/// What every handler shares.
pub struct Api {
    /// The replicated keyspace.
    pub replica: Arc<dyn Replica>,
    /// Lease deadlines.
    pub lessor: Arc<Lessor>,
    /// Who may do what, and the tokens that say who is asking.
    pub auth: Auth,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Largest request the store accepts (etcd's `--max-request-bytes`).
    pub max_request_bytes: usize,
    /// How often a watch with `progress_notify` gets a progress notification (etcd: 10 min).
    pub progress_interval: Duration,
    /// Set when the server shuts down: streams (watch, keepalive) end then, or a graceful
    /// shutdown would wait for them as long as their clients stay connected.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Forwards requests a follower cannot serve to the leader.
    pub http: reqwest::Client,
    /// The database may grow to this size; past it writes that add data are refused
    /// (etcd's `--quota-backend-bytes` and its NOSPACE alarm).
    pub quota_backend_bytes: u64,
    /// How often the database size is measured against the quota (it walks sled's files).
    pub quota_check_interval: Duration,
    /// When the database size was last measured.
    last_size_check: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The handle filters clone into handlers.
pub type Shared = Arc<Api>;

impl Api {
    /// An API over `replica` with etcd's defaults.
    pub fn new(replica: Arc<dyn Replica>, lessor: Arc<Lessor>) -> Self {
        let metrics = Arc::new(Metrics::observing(replica.observer()));
        Api {
            auth: Auth::new(replica.store().clone()),
            replica,
            lessor,
            metrics,
            max_request_bytes: keel_store::Config::default().max_request_bytes,
            progress_interval: Duration::from_secs(600),
            closing: tokio::sync::watch::channel(false).0,
            http: reqwest::Client::new(),
            quota_backend_bytes: 2 * 1024 * 1024 * 1024,
            quota_check_interval: Duration::from_secs(1),
            last_size_check: Default::default(),
        }
    }

    /// Refuses `command` as etcd 3.4 does under an armed alarm: while any CORRUPT alarm is
    /// armed, every write ("corrupt cluster"); while any NOSPACE alarm is armed, whatever
    /// member it names, the writes that add data ("database space exceeded"). A write that
    /// finds the database over its quota arms NOSPACE for this member (through the log, so
    /// every member refuses from then on) and is refused.
    pub(crate) async fn check_alarms(&self, command: &keel_store::Command) -> Result<(), ApiError> {
        use keel_store::{Alarm, AlarmCommand, AlarmType, Command};
        let alarms = self.replica.store().alarms(AlarmType::None)?;
        let armed = |kind: AlarmType| alarms.iter().any(|alarm| alarm.alarm == kind);
        let writes = !matches!(command, Command::Auth(_) | Command::Alarm(_));
        if writes && armed(AlarmType::Corrupt) {
            return Err(ApiError::new(Code::DataLoss, "etcdserver: corrupt cluster"));
        }
        if !kv::adds_data(command) {
            return Ok(());
        }
        let no_space = || {
            ApiError::new(
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
            )
        };
        if armed(AlarmType::NoSpace) {
            return Err(no_space());
        }
        if !self.over_quota() {
            return Ok(());
        }
        let alarm = Alarm {
            member_id: self.replica.status().member_id,
            alarm: AlarmType::NoSpace,
        };
        // The refusal stands whether or not the alarm could be proposed; the next write
        // over the quota tries again.
        if let Err(e) = self
            .replica
            .write(Command::Alarm(AlarmCommand::Activate(alarm)))
            .await
        {
            tracing::warn!(error = %e, "could not arm the NOSPACE alarm");
        }
        Err(no_space())
    }

    /// Whether the database is over its quota, measured at most once per
    /// `quota_check_interval` (the measurement walks sled's files).
    fn over_quota(&self) -> bool {
        let now = std::time::Instant::now();
        {
            let mut last = self
                .last_size_check
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| now.duration_since(at) < self.quota_check_interval) {
                return false;
            }
            *last = Some(now);
        }
        let size = self.replica.store().size_on_disk().unwrap_or(0);
        if size > self.quota_backend_bytes {
            tracing::warn!(
                size,
                quota = self.quota_backend_bytes,
                "database over its quota: NOSPACE alarm raised"
            );
            return true;
        }
        false
    }

    /// Resolves once the server is shutting down.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            // An error means the sender is gone, which is a shutdown too.
            let _ = closing.wait_for(|closing| *closing).await;
        }
    }

    /// A response header at `revision` (0 leaves it out, as etcd does for member calls).
    pub fn header(&self, revision: i64) -> ResponseHeader {
        let status = self.replica.status();
        ResponseHeader {
            cluster_id: status.cluster_id,
            member_id: status.member_id,
            revision,
            raft_term: status.raft_term,
        }
    }

    /// A header at the store's current revision.
    pub fn current_header(&self) -> ResponseHeader {
        self.header(self.replica.store().current_revision())
    }

    /// The largest HTTP body accepted. JSON carries bytes as base64 (4/3 larger) plus field
    /// names, and etcd's gRPC layer itself allows 512 KiB above the request limit, so the
    /// body may be this much larger than the store's limit; the store's own check then gives
    /// etcd's precise "request is too large".
    pub fn body_limit(&self) -> usize {
        self.max_request_bytes * 2 + 512 * 1024
    }
}

/// Every route, with rejections recovered into etcd's error shape.
pub fn routes(
    api: Shared,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    kv::routes(&api)
        .or(lease::routes(&api))
        .unify()
        .or(watch::routes(&api))
        .unify()
        .or(maintenance::routes(&api))
        .unify()
        .or(cluster::routes(&api))
        .unify()
        .or(auth::routes(&api))
        .unify()
        .or(health::routes(&api))
        .unify()
        .recover(error::recover)
        .unify()
}

/// Matches the exact path `path` ("v3/kv/range"). Routes check the path before the method,
/// so an unknown path is "not found" rather than "method not allowed" by some other route.
pub(crate) fn exact_path(path: &'static str) -> BoxedFilter<()> {
    let mut filter = warp::any().boxed();
    for segment in path.split('/') {
        filter = filter.and(warp::path(segment)).boxed();
    }
    filter.and(warp::path::end()).boxed()
}

fn too_large(size: u64, limit: usize) -> Rejection {
    // etcd's gRPC layer words it so, with code 8 and HTTP 429.
    warp::reject::custom(ApiError::new(
        Code::ResourceExhausted,
        format!("grpc: received message larger than max ({size} vs. {limit})"),
    ))
}

/// Reads the whole body, refusing more than `limit` bytes without reading them all.
pub(crate) fn limited_body(limit: usize) -> BoxedFilter<(Bytes,)> {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |length: Option<u64>, body| collect_limited(length, body, limit))
        .boxed()
}

async fn collect_limited<S, B>(
    length: Option<u64>,
    body: S,
    limit: usize,
) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if let Some(length) = length.filter(|l| *l > limit as u64) {
        return Err(too_large(length, limit));
    }
    let mut body = std::pin::pin!(body);
    let mut buffer = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|e| warp::reject::custom(ApiError::invalid_argument(e.to_string())))?;
        let size = buffer.len() + chunk.remaining();
        if size > limit {
            return Err(too_large(size as u64, limit));
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            let n = piece.len();
            buffer.extend_from_slice(piece);
            chunk.advance(n);
        }
    }
    Ok(buffer.freeze())
}

/// Decodes a unary request body; an empty body is the default message, as in the gateway.
pub(crate) fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid_argument(json_error(&e)))
}

/// A JSON decoding error without serde's " at line 1 column 9" suffix, which etcd's
/// messages do not have.
fn json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(end) => message[..end].to_owned(),
        None => message,
    }
}

/// Who sent the request: the `Authorization` header's token and the verified client
/// certificate the TLS listener put into the request's extensions.
pub fn credentials() -> BoxedFilter<(Credentials,)> {
    warp::header::optional::<String>("authorization")
        .and(warp::ext::optional::<ClientCertificate>())
        .map(Credentials::new)
        .boxed()
}

/// A unary RPC: `POST path` with a JSON body, answered by `handler` with a JSON body.
/// Counts and times the call as `method`. Once auth is enabled, only root may call it.
pub(crate) fn unary<Req, Resp, F, Fut>(
    api: &Shared,
    path: &'static str,
    method: &'static str,
    handler: F,
) -> BoxedFilter<(warp::reply::Response,)>
where
    Req: DeserializeOwned + Default + Send + 'static,
    Resp: Serialize + Send,
    F: Fn(Shared, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ApiError>> + Send,
{
    unary_where(api, path, method, false, |_| Access::Admin, handler)
}

/// A unary RPC allowed to whoever has the [`Access`] `guard` says its request needs.
pub(crate) fn guarded<Req, Resp, F, Fut>(
    api: &Shared,
    path: &'static str,
    method: &'static str,
    guard: fn(&Req) -> Access,
    handler: F,
) -> BoxedFilter<(warp::reply::Response,)>
where
    Req: DeserializeOwned + Default + Send + 'static,
    Resp: Serialize + Send,
    F: Fn(Shared, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ApiError>> + Send,
{
    unary_where(api, path, method, false, guard, handler)
}

/// A unary RPC that only the leader answers (it needs the leader's lease deadlines): a
/// follower forwards it to the leader whole, with the caller's credentials. Once auth is
/// enabled, only root may call it.
pub(crate) fn unary_on_leader<Req, Resp, F, Fut>(
    api: &Shared,
    path: &'static str,
    method: &'static str,
    handler: F,
) -> BoxedFilter<(warp::reply::Response,)>
where
    Req: DeserializeOwned + Default + Send + 'static,
    Resp: Serialize + Send,
    F: Fn(Shared, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ApiError>> + Send,
{
    unary_where(api, path, method, true, |_| Access::Admin, handler)
}

/// [`unary_on_leader`] allowed to whoever has the [`Access`] `guard` names.
pub(crate) fn guarded_on_leader<Req, Resp, F, Fut>(
    api: &Shared,
    path: &'static str,
    method: &'static str,
    guard: fn(&Req) -> Access,
    handler: F,
) -> BoxedFilter<(warp::reply::Response,)>
where
    Req: DeserializeOwned + Default + Send + 'static,
    Resp: Serialize + Send,
    F: Fn(Shared, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ApiError>> + Send,
{
    unary_where(api, path, method, true, guard, handler)
}

/// Decodes the request and checks it against the caller's credentials.
fn admit<Req: DeserializeOwned + Default>(
    api: &Api,
    credentials: &Credentials,
    guard: fn(&Req) -> Access,
    body: &[u8],
) -> Result<Req, ApiError> {
    let request = decode::<Req>(body)?;
    // The guard may walk a whole txn; skip it while nobody is checked.
    if api.auth.enabled()? {
        api.auth.authorize(credentials, &guard(&request))?;
    }
    Ok(request)
}

fn unary_where<Req, Resp, F, Fut>(
    api: &Shared,
    path: &'static str,
    method: &'static str,
    on_leader: bool,
    guard: fn(&Req) -> Access,
    handler: F,
) -> BoxedFilter<(warp::reply::Response,)>
where
    Req: DeserializeOwned + Default + Send + 'static,
    Resp: Serialize + Send,
    F: Fn(Shared, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ApiError>> + Send,
{
    let api = api.clone();
    let limit = api.body_limit();
    exact_path(path)
        .and(warp::post())
        .and(warp::header::optional::<String>(FORWARDED))
        .and(credentials())
        .and(limited_body(limit))
        .and_then(
            move |forwarded: Option<String>, credentials: Credentials, body: Bytes| {
                let api = api.clone();
                let handler = handler.clone();
                async move {
                    let started = std::time::Instant::now();
                    if on_leader && forwarded.is_none() && !api.replica.status().is_leader() {
                        if let Some(leader) = leader_url(&api).await {
                            let token = api.auth.forwarding_token(&credentials);
                            if let Some(response) =
                                forward(&api, &leader, path, body.clone(), token).await
                            {
                                let seconds = started.elapsed().as_secs_f64();
                                api.metrics.observe(method, None, seconds);
                                return Ok(response);
                            }
                        }
                    }
                    let result = match admit(&api, &credentials, guard, &body) {
                        Ok(request) => handler(api.clone(), request).await,
                        Err(e) => Err(e),
                    };
                    // A follower hands what needs the leader to the leader, as etcd does; once
                    // only, so two members that each think the other leads cannot loop.
                    if let Err(ApiError {
                        leader_url: Some(leader),
                        ..
                    }) = &result
                    {
                        if forwarded.is_none() {
                            let token = api.auth.forwarding_token(&credentials);
                            if let Some(response) = forward(&api, leader, path, body, token).await {
                                let seconds = started.elapsed().as_secs_f64();
                                api.metrics.observe(method, None, seconds);
                                return Ok(response);
                            }
                        }
                    }
                    let seconds = started.elapsed().as_secs_f64();
                    match result {
                        Ok(response) => {
                            api.metrics.observe(method, None, seconds);
                            Ok(warp::reply::json(&response).into_response())
                        }
                        Err(e) => {
                            api.metrics.observe(method, Some(e.code as i32), seconds);
                            Err(warp::reject::custom(e))
                        }
                    }
                }
            },
        )
        .boxed()
}

/// Where the leader serves the client API, if another member leads: the replica's own
/// answer, else the leader's entry in the member list (client URL, or the peer URL, where
/// keel members serve the client API too).
pub(crate) async fn leader_url(api: &Api) -> Option<String> {
    if let Some(url) = api.replica.leader_url() {
        return Some(url);
    }
    let status = api.replica.status();
    let leader = status.leader.filter(|leader| *leader != status.member_id)?;
    let members = api.replica.members().await.ok()?;
    let member = members.into_iter().find(|m| m.id == leader)?;
    member
        .client_urls
        .into_iter()
        .chain(member.peer_urls)
        .next()
}

/// Marks a request forwarded by a follower.
pub(crate) const FORWARDED: &str = "x-keel-forwarded";

/// Sends a unary request to the leader, with `token` as its credentials, and relays its
/// answer; `None` if the leader could not be reached (the caller then answers with its own
/// "not leader" error).
async fn forward(
    api: &Api,
    leader: &str,
    path: &str,
    body: Bytes,
    token: Option<String>,
) -> Option<warp::reply::Response> {
    let url = format!("{}/{path}", leader.trim_end_matches('/'));
    let mut request = api
        .http
        .post(&url)
        .header(FORWARDED, "1")
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    let answer = request.body(body).send().await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            tracing::debug!("cannot forward to the leader at {url}: {e}");
            return None;
        }
    };
    let status = answer.status().as_u16();
    let bytes = answer.bytes().await.ok()?;
    let status = warp::http::StatusCode::from_u16(status).ok()?;
    let reply = warp::reply::with_header(bytes.to_vec(), "content-type", "application/json");
    Some(warp::reply::with_status(reply, status).into_response())
}

/// One line of a streamed response: `{"result": message}` and a newline.
pub(crate) fn stream_line<T: Serialize>(message: T) -> Bytes {
    let mut line = serde_json::to_vec(&models::StreamResult { result: message })
        .expect("response models always serialize");
    line.push(b'\n');
    line.into()
}

/// The line ending a stream on error, in the gateway's shape.
pub(crate) fn error_line(error: &ApiError) -> Bytes {
    let mut line = serde_json::to_vec(&error.body()).expect("error bodies always serialize");
    line.push(b'\n');
    line.into()
}

/// A session's messages as the gateway's lines: a `{"result": ...}` line per answer, an error
/// line for the error that ends it. (gRPC sends the same messages as protobuf instead.)
pub(crate) fn gateway_lines<T: Serialize>(
    messages: impl Stream<Item = Result<T, ApiError>> + Send + Sync,
) -> impl Stream<Item = Bytes> + Send + Sync {
    messages.map(|message| match message {
        Ok(response) => stream_line(response),
        Err(e) => error_line(&e),
    })
}

/// A streamed reply: newline-delimited JSON, flushed per message.
pub(crate) fn streaming_reply(
    lines: impl Stream<Item = Bytes> + Send + Sync + 'static,
) -> warp::reply::Response {
    let reply = warp::reply::stream(lines.map(Ok::<_, Infallible>));
    warp::reply::with_header(reply, "content-type", "application/json").into_response()
}

/// Splits a request body into the JSON messages written one after another in it (how the
/// gateway takes a client stream). Ends after the first malformed message, yielding its error.
pub fn json_messages<T, S, B, E>(body: S) -> impl Stream<Item = Result<T, ApiError>> + Send
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: Buf + Send + 'static,
    E: std::fmt::Display + 'static,
{
    struct State<S> {
        body: std::pin::Pin<Box<S>>,
        buffer: BytesMut,
        done: bool,
    }
    let state = State {
        body: Box::pin(body),
        buffer: BytesMut::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            let start = state
                .buffer
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(state.buffer.len());
            state.buffer.advance(start);
            if !state.buffer.is_empty() {
                let mut messages =
                    serde_json::Deserializer::from_slice(&state.buffer).into_iter::<T>();
                match messages.next() {
                    Some(Ok(message)) => {
                        let used = messages.byte_offset();
                        state.buffer.advance(used);
                        return Some((Ok(message), state));
                    }
                    Some(Err(e)) if e.is_eof() => {}
                    Some(Err(e)) => {
                        state.done = true;
                        return Some((Err(ApiError::invalid_argument(json_error(&e))), state));
                    }
                    None => {}
                }
            }
            match state.body.next().await {
                Some(Ok(mut chunk)) => {
                    while chunk.has_remaining() {
                        let piece = chunk.chunk();
                        let n = piece.len();
                        state.buffer.extend_from_slice(piece);
                        chunk.advance(n);
                    }
                }
                Some(Err(e)) => {
                    state.done = true;
                    return Some((Err(ApiError::new(Code::Unknown, e.to_string())), state));
                }
                None if state.buffer.is_empty() => return None,
                None => {
                    state.done = true;
                    let error = ApiError::invalid_argument("unexpected EOF");
                    return Some((Err(error), state));
                }
            }
        }
    })
}

/// Runs `f` on a blocking thread: sled calls may touch the disk.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(Code::Internal, format!("blocking task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn json_messages_split_across_chunks() {
        let chunks: Vec<Result<Bytes, Infallible>> = vec![
            Ok(Bytes::from_static(b"{\"ID\":\"1\"} {\"I")),
            Ok(Bytes::from_static(b"D\":2}\n")),
            Ok(Bytes::from_static(b"{bad")),
        ];
        let out: Vec<Result<models::LeaseId, ApiError>> =
            json_messages(futures::stream::iter(chunks)).collect().await;
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().unwrap().id, 1);
        assert_eq!(out[1].as_ref().unwrap().id, 2);
        assert_eq!(out[2].as_ref().unwrap_err().code, Code::InvalidArgument);
    }
}
