//! A typed client of keel's (and etcd 3.4's) v3 JSON gateway, over reqwest.
//!
//! Every call is a `POST /v3/...` with a JSON body, answered with the types of
//! [`crate::api::models`]. Endpoints are tried in order: a connection failure, a timeout, or
//! an `Unavailable` (code 14) answer such as "not leader" moves on to the next endpoint, so a
//! client pointed at every member reaches whichever one can answer. Any other error answer is
//! final: it is the cluster's answer, and another member would give the same.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::api::models::{
    AlarmRequest, AlarmResponse, CompactionRequest, DefragmentResponse, DeleteRangeRequest,
    DeleteRangeResponse, HashKvRequest, HashKvResponse, HeaderOnly, LeaseGrantRequest,
    LeaseGrantResponse, LeaseId, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, MemberAddRequest, MemberAddResponse, MemberId,
    MemberListResponse, MoveLeaderRequest, MoveLeaderResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, SnapshotResponse, StatusResponse, StreamResult, TxnRequest,
    TxnResponse, WatchCreateRequest, WatchRequest, WatchResponse,
};

/// The gRPC code etcd answers when a member cannot serve now ("not leader", "no leader").
pub const CODE_UNAVAILABLE: i32 = 14;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster answered with an error: etcd's gRPC code and message.
    #[error("{message} (code {code}, from {endpoint})")]
    Api {
        /// The gRPC code.
        code: i32,
        /// etcd's message ("etcdserver: mvcc: required revision has been compacted").
        message: String,
        /// The endpoint that answered.
        endpoint: String,
    },
    /// No endpoint could be reached or answered in time; one reason per endpoint.
    #[error("no endpoint answered: {}", .0.join("; "))]
    Unreachable(Vec<String>),
    /// An answer that is not the gateway's JSON.
    #[error("unexpected answer from {endpoint}: {message}")]
    Malformed {
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        message: String,
    },
    /// A write reached an endpoint but its answer did not come back: it may or may not
    /// have been applied, so it is not retried elsewhere (a txn applied twice could report
    /// the failure branch for a change that was made).
    #[error(
        "no answer from {endpoint} after sending the request (it may have been applied): {message}"
    )]
    Uncertain {
        /// The endpoint.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// Writing a snapshot out failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The client was built with nothing to talk to or a bad option.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The gRPC code of an error answer.
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The client's result.
pub type Result<T> = std::result::Result<T, Error>;

/// Whether a request may be repeated on the next endpoint after a failure that happened
/// once it may have been sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Reads: repeating them changes nothing.
    Always,
    /// Writes: only failures before the request left (connect errors) or answers saying it
    /// was not applied ("not leader") move on.
    BeforeSent,
}

/// Timeouts of a [`Client`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Time allowed to open a connection to one endpoint.
    pub dial_timeout: Duration,
    /// Time allowed for a whole unary call (across every endpoint tried).
    pub command_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        // etcdctl's defaults.
        Options {
            dial_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
        }
    }
}

/// The error body of the gateway.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error: String,
}

/// A client of a set of endpoints (`http://host:port`).
///
/// ```no_run
/// # async fn demo() -> keel::client::Result<()> {
/// use keel::api::models::{PutRequest, RangeRequest};
/// use keel::client::{Client, Options};
///
/// let endpoints = vec!["http://127.0.0.1:2379".into(), "http://127.0.0.1:12379".into()];
/// let client = Client::new(endpoints, Options::default())?;
/// client
///     .put(&PutRequest { key: b"foo".to_vec(), value: b"bar".to_vec(), ..Default::default() })
///     .await?;
/// let answer = client
///     .range(&RangeRequest { key: b"foo".to_vec(), ..Default::default() })
///     .await?;
/// assert_eq!(answer.kvs[0].value, b"bar");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    endpoints: Vec<String>,
    http: reqwest::Client,
    options: Options,
}

impl Client {
    /// A client of `endpoints`, tried in order.
    pub fn new(endpoints: Vec<String>, options: Options) -> Result<Client> {
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(|e| e.trim().trim_end_matches('/').to_owned())
            .filter(|e| !e.is_empty())
            .map(|e| {
                // etcdctl takes bare host:port too.
                if e.contains("://") {
                    e
                } else {
                    format!("http://{e}")
                }
            })
            .collect();
        if endpoints.is_empty() {
            return Err(Error::Config("no endpoints given".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(options.dial_timeout)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            endpoints,
            http,
            options,
        })
    }

    /// The endpoints, normalized.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The same client (timeouts, connections) for other endpoints.
    pub fn with_endpoints(&self, endpoints: Vec<String>) -> Result<Client> {
        let mut client = Client::new(endpoints, self.options.clone())?;
        client.http = self.http.clone();
        Ok(client)
    }

    /// A client of one of this client's endpoints only (for per-endpoint status).
    pub fn for_endpoint(&self, endpoint: &str) -> Client {
        Client {
            endpoints: vec![endpoint.to_owned()],
            http: self.http.clone(),
            options: self.options.clone(),
        }
    }

    /// POSTs `body` to `path` on each endpoint in turn until one answers for good. A failure
    /// after the request may have reached a member moves on only when `retry` says the
    /// request is safe to repeat.
    async fn send(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Option<Duration>,
        retry: Retry,
    ) -> Result<(String, reqwest::Response)> {
        let mut reasons = Vec::new();
        for endpoint in &self.endpoints {
            let mut request = self
                .http
                .post(format!("{endpoint}{path}"))
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) if e.is_connect() || retry == Retry::Always => {
                    reasons.push(format!("{endpoint}: {}", describe(&e)));
                    continue;
                }
                Err(e) => {
                    return Err(Error::Uncertain {
                        endpoint: endpoint.clone(),
                        message: describe(&e),
                    })
                }
            };
            if response.status().is_success() {
                return Ok((endpoint.clone(), response));
            }
            let error = error_of(endpoint, response).await;
            match error {
                // "not leader", "no leader", "stopping": another member may serve it.
                Error::Api { code, .. } if code == CODE_UNAVAILABLE => {
                    reasons.push(error.to_string());
                }
                // Not the gateway at all (a wrong port, a proxy's error page): not the
                // cluster's answer either.
                Error::Malformed { .. } => reasons.push(error.to_string()),
                other => return Err(other),
            }
        }
        Err(Error::Unreachable(reasons))
    }

    /// A unary call that is safe to repeat (a read): retried on the next endpoint after any
    /// failure.
    pub async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
    ) -> Result<A> {
        self.unary(path, request, Retry::Always).await
    }

    /// A unary call that changes state: retried on the next endpoint only when it surely
    /// did not reach the first (connection refused, "not leader").
    pub async fn call_write<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
    ) -> Result<A> {
        self.unary(path, request, Retry::BeforeSent).await
    }

    async fn unary<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
        retry: Retry,
    ) -> Result<A> {
        let body = serde_json::to_vec(request).expect("request models always serialize");
        let call = async {
            let (endpoint, response) = self.send(path, body, None, retry).await?;
            let bytes = response.bytes().await.map_err(|e| Error::Malformed {
                endpoint: endpoint.clone(),
                message: describe(&e),
            })?;
            serde_json::from_slice(&bytes).map_err(|e| Error::Malformed {
                endpoint,
                message: e.to_string(),
            })
        };
        let timed_out = format!("command timed out after {:?}", self.options.command_timeout);
        match tokio::time::timeout(self.options.command_timeout, call).await {
            Ok(result) => result,
            Err(_) if retry == Retry::BeforeSent => Err(Error::Uncertain {
                endpoint: self.endpoints.join(","),
                message: timed_out,
            }),
            Err(_) => Err(Error::Unreachable(vec![format!(
                "{}: {timed_out}",
                self.endpoints.join(",")
            )])),
        }
    }

    /// `Range`.
    pub async fn range(&self, request: &RangeRequest) -> Result<RangeResponse> {
        self.call("/v3/kv/range", request).await
    }

    /// `Put`.
    pub async fn put(&self, request: &PutRequest) -> Result<PutResponse> {
        self.call_write("/v3/kv/put", request).await
    }

    /// `DeleteRange`.
    pub async fn delete_range(&self, request: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        self.call_write("/v3/kv/deleterange", request).await
    }

    /// `Txn`.
    pub async fn txn(&self, request: &TxnRequest) -> Result<TxnResponse> {
        self.call_write("/v3/kv/txn", request).await
    }

    /// `Compact`.
    pub async fn compact(&self, revision: i64, physical: bool) -> Result<HeaderOnly> {
        self.call_write(
            "/v3/kv/compaction",
            &CompactionRequest { revision, physical },
        )
        .await
    }

    /// `LeaseGrant`; `id` 0 lets the server choose.
    pub async fn lease_grant(&self, ttl: i64, id: i64) -> Result<LeaseGrantResponse> {
        self.call_write("/v3/lease/grant", &LeaseGrantRequest { ttl, id })
            .await
    }

    /// `LeaseRevoke`.
    pub async fn lease_revoke(&self, id: i64) -> Result<HeaderOnly> {
        self.call_write("/v3/lease/revoke", &LeaseId { id }).await
    }

    /// `LeaseTimeToLive`.
    pub async fn lease_time_to_live(&self, id: i64, keys: bool) -> Result<LeaseTimeToLiveResponse> {
        self.call("/v3/lease/timetolive", &LeaseTimeToLiveRequest { id, keys })
            .await
    }

    /// `LeaseLeases`.
    pub async fn leases(&self) -> Result<LeaseLeasesResponse> {
        self.call("/v3/lease/leases", &serde_json::json!({})).await
    }

    /// Opens a `LeaseKeepAlive` stream on the first endpoint that serves it; each
    /// [`KeepAlive::renew`] is one round on it.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<KeepAlive> {
        let first = serde_json::to_vec(&LeaseId { id }).expect("request models serialize");
        let (first_answer, responses, requests) =
            self.open_stream("/v3/lease/keepalive", first).await?;
        Ok(KeepAlive {
            id,
            first: Some(first_answer),
            responses,
            requests,
        })
    }

    /// One `LeaseKeepAlive` round.
    pub async fn lease_keep_alive_once(&self, id: i64) -> Result<LeaseKeepAliveResponse> {
        self.lease_keep_alive(id).await?.renew().await
    }

    /// `MemberList`.
    pub async fn member_list(&self) -> Result<MemberListResponse> {
        self.call("/v3/cluster/member/list", &serde_json::json!({}))
            .await
    }

    /// `MemberAdd`.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<MemberAddResponse> {
        self.call_write(
            "/v3/cluster/member/add",
            &MemberAddRequest {
                peer_urls,
                is_learner,
            },
        )
        .await
    }

    /// `MemberRemove`.
    pub async fn member_remove(&self, id: u64) -> Result<MemberListResponse> {
        self.call_write("/v3/cluster/member/remove", &MemberId { id })
            .await
    }

    /// `MemberPromote`.
    pub async fn member_promote(&self, id: u64) -> Result<MemberListResponse> {
        self.call_write("/v3/cluster/member/promote", &MemberId { id })
            .await
    }

    /// `Status` of the first endpoint that answers.
    pub async fn status(&self) -> Result<StatusResponse> {
        self.call("/v3/maintenance/status", &serde_json::json!({}))
            .await
    }

    /// `MoveLeader`: hands the leadership to voter `target_id`. Only the leader accepts it
    /// (a follower answers "not leader", and the next endpoint is tried).
    pub async fn move_leader(&self, target_id: u64) -> Result<MoveLeaderResponse> {
        self.call_write(
            "/v3/maintenance/transfer-leadership",
            &MoveLeaderRequest { target_id },
        )
        .await
    }

    /// `Defragment` (etcd defragments the member answering; keel's sled needs nothing).
    pub async fn defragment(&self) -> Result<DefragmentResponse> {
        self.call_write("/v3/maintenance/defragment", &serde_json::json!({}))
            .await
    }

    /// `Alarm`: lists (`Get`), raises or clears alarms of the member answering.
    pub async fn alarm(&self, request: &AlarmRequest) -> Result<AlarmResponse> {
        self.call_write("/v3/maintenance/alarm", request).await
    }

    /// `GET /health` of the first endpoint that answers (etcd's health check).
    pub async fn health(&self) -> Result<crate::api::models::Health> {
        let mut reasons = Vec::new();
        for endpoint in &self.endpoints {
            let answer = self
                .http
                .get(format!("{endpoint}/health"))
                .timeout(self.options.command_timeout)
                .send()
                .await;
            let response = match answer {
                Ok(response) => response,
                Err(e) => {
                    reasons.push(format!("{endpoint}: {}", describe(&e)));
                    continue;
                }
            };
            // An unhealthy member answers 503 with the same body.
            let bytes = response.bytes().await.unwrap_or_default();
            return serde_json::from_slice(&bytes).map_err(|e| Error::Malformed {
                endpoint: endpoint.clone(),
                message: e.to_string(),
            });
        }
        Err(Error::Unreachable(reasons))
    }

    /// `HashKV`.
    pub async fn hash_kv(&self, revision: i64) -> Result<HashKvResponse> {
        self.call("/v3/maintenance/hashkv", &HashKvRequest { revision })
            .await
    }

    /// `Snapshot`: streams the state into `out`; returns the bytes written.
    pub async fn snapshot<W: AsyncWrite + Unpin>(&self, out: &mut W) -> Result<u64> {
        self.snapshot_with_progress(out, |_, _| {}).await
    }

    /// [`Client::snapshot`], calling `progress(written, total)` after each chunk (the total
    /// is what the member said was still to come, plus what has arrived). Neither this nor
    /// `snapshot` is bounded by the command timeout: a large state takes as long as it takes.
    pub async fn snapshot_with_progress<W: AsyncWrite + Unpin>(
        &self,
        out: &mut W,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64> {
        let (endpoint, response) = self
            .send(
                "/v3/maintenance/snapshot",
                b"{}".to_vec(),
                None,
                Retry::Always,
            )
            .await?;
        let mut chunks = Box::pin(result_lines::<SnapshotResponse>(endpoint, response));
        let mut written = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            out.write_all(&chunk.blob).await?;
            written += chunk.blob.len() as u64;
            progress(written, written + chunk.remaining_bytes);
        }
        out.flush().await?;
        Ok(written)
    }

    /// Starts a watch. The request body stays open for as long as the returned [`Watch`]
    /// lives: etcd's gateway cancels a session's watches when its body ends, and an open body
    /// is where later requests (cancel, progress) would go.
    pub async fn watch(&self, request: WatchCreateRequest) -> Result<Watch> {
        let first = serde_json::to_vec(&WatchRequest::CreateRequest(request))
            .expect("request models serialize");
        let (first_answer, responses, requests) = self.open_stream("/v3/watch", first).await?;
        Ok(Watch {
            first: Some(first_answer),
            responses,
            _requests: requests,
        })
    }

    /// Opens a bidirectional stream on the first endpoint whose first answer is not
    /// `Unavailable`: a streamed reply is always HTTP 200, so a member that cannot serve
    /// ("not leader") says so in the first line rather than in the status.
    async fn open_stream<T: DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
        first: Vec<u8>,
    ) -> Result<(T, Lines<T>, RequestSender)> {
        let mut reasons = Vec::new();
        for endpoint in &self.endpoints {
            let (sender, receiver) = mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(4);
            sender
                .send(Ok(Bytes::from(first.clone())))
                .await
                .expect("the receiver is alive");
            let body =
                reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
            let opened = self
                .http
                .post(format!("{endpoint}{path}"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let response = match opened {
                Ok(response) if response.status().is_success() => response,
                Ok(response) => match error_of(endpoint, response).await {
                    error @ Error::Api { code, .. } if code == CODE_UNAVAILABLE => {
                        reasons.push(error.to_string());
                        continue;
                    }
                    other => return Err(other),
                },
                Err(e) => {
                    reasons.push(format!("{endpoint}: {}", describe(&e)));
                    continue;
                }
            };
            let mut lines: Lines<T> = Box::pin(result_lines::<T>(endpoint.clone(), response));
            let answer = tokio::time::timeout(self.options.command_timeout, lines.next()).await;
            match answer {
                Ok(Some(Ok(answer))) => return Ok((answer, lines, sender)),
                Ok(Some(Err(error @ Error::Api { code, .. }))) if code == CODE_UNAVAILABLE => {
                    reasons.push(error.to_string());
                }
                Ok(Some(Err(other))) => return Err(other),
                Ok(None) => reasons.push(format!("{endpoint}: the stream ended at once")),
                Err(_) => reasons.push(format!("{endpoint}: no first answer in time")),
            }
        }
        Err(Error::Unreachable(reasons))
    }
}

type Lines<T> = std::pin::Pin<Box<dyn Stream<Item = Result<T>> + Send>>;
type RequestSender = mpsc::Sender<std::result::Result<Bytes, std::io::Error>>;

/// An open keep-alive stream of one lease.
pub struct KeepAlive {
    id: i64,
    first: Option<LeaseKeepAliveResponse>,
    responses: Lines<LeaseKeepAliveResponse>,
    requests: RequestSender,
}

impl KeepAlive {
    /// Renews the lease once; a TTL of 0 in the answer means it no longer exists.
    pub async fn renew(&mut self) -> Result<LeaseKeepAliveResponse> {
        // Opening the stream already sent the first request.
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        let request =
            serde_json::to_vec(&LeaseId { id: self.id }).expect("request models serialize");
        let closed = || Error::Unreachable(vec!["the keep-alive stream was closed".into()]);
        self.requests
            .send(Ok(Bytes::from(request)))
            .await
            .map_err(|_| closed())?;
        self.responses.next().await.unwrap_or_else(|| Err(closed()))
    }
}

/// A running watch: a stream of [`WatchResponse`]s. Dropping it ends the session.
pub struct Watch {
    first: Option<WatchResponse>,
    responses: Lines<WatchResponse>,
    // Held only to keep the request body open.
    _requests: RequestSender,
}

impl Watch {
    /// The next response (the first is the `created` answer); `None` when the server ended
    /// the stream.
    pub async fn next(&mut self) -> Option<Result<WatchResponse>> {
        if let Some(first) = self.first.take() {
            return Some(Ok(first));
        }
        self.responses.next().await
    }
}

/// Parses a streamed body: one `{"result": T}` per line, or an error body ending it.
fn result_lines<T: DeserializeOwned + Send + 'static>(
    endpoint: String,
    response: reqwest::Response,
) -> impl Stream<Item = Result<T>> + Send {
    let bytes = response.bytes_stream();
    futures::stream::unfold(
        (Box::pin(bytes), Vec::<u8>::new(), endpoint, false),
        |(mut bytes, mut buffer, endpoint, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(newline) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=newline).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let item = parse_line::<T>(&endpoint, &line);
                    let done = item.is_err();
                    return Some((item, (bytes, buffer, endpoint, done)));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        let error =
                            Error::Unreachable(vec![format!("{endpoint}: {}", describe(&e))]);
                        return Some((Err(error), (bytes, buffer, endpoint, true)));
                    }
                    None if buffer.iter().all(u8::is_ascii_whitespace) => return None,
                    // A last line without its newline.
                    None => {
                        let line = std::mem::take(&mut buffer);
                        let item = parse_line::<T>(&endpoint, &line);
                        return Some((item, (bytes, buffer, endpoint, true)));
                    }
                }
            }
        },
    )
}

fn parse_line<T: DeserializeOwned>(endpoint: &str, line: &[u8]) -> Result<T> {
    if let Ok(message) = serde_json::from_slice::<StreamResult<T>>(line) {
        return Ok(message.result);
    }
    match serde_json::from_slice::<ErrorBody>(line) {
        Ok(body) if body.code != 0 => Err(api_error(endpoint, body)),
        _ => Err(Error::Malformed {
            endpoint: endpoint.to_owned(),
            message: format!("unexpected line {}", String::from_utf8_lossy(line).trim()),
        }),
    }
}

fn api_error(endpoint: &str, body: ErrorBody) -> Error {
    Error::Api {
        code: body.code,
        message: if body.message.is_empty() {
            body.error
        } else {
            body.message
        },
        endpoint: endpoint.to_owned(),
    }
}

async fn error_of(endpoint: &str, response: reqwest::Response) -> Error {
    let status = response.status();
    let bytes = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) if body.code != 0 => api_error(endpoint, body),
        _ => Error::Malformed {
            endpoint: endpoint.to_owned(),
            message: format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes).trim()),
        },
    }
}

/// reqwest's Display hides the cause ("error sending request"); the source names it.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        error.to_string()
    };
    // The innermost cause is the one a person can act on ("Connection refused").
    let mut source = std::error::Error::source(error);
    let mut innermost = None;
    while let Some(cause) = source {
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    if let Some(cause) = innermost {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_lines_and_error_lines_parse() {
        let ok: WatchResponse = parse_line(
            "e",
            br#"{"result":{"header":{"revision":"3"},"created":true}}"#,
        )
        .unwrap();
        assert!(ok.created);
        assert_eq!(ok.header.revision, 3);
        let err = parse_line::<WatchResponse>(
            "e",
            br#"{"error":"etcdserver: mvcc: required revision has been compacted","code":11,"message":"etcdserver: mvcc: required revision has been compacted"}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), Some(11));
        assert!(err.to_string().contains("compacted"));
    }

    /// A server answering every POST with `status` and `body`; returns its URL.
    async fn fixed_answer(status: u16, body: &'static str) -> String {
        use warp::Filter as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let route = warp::post().map(move || {
            warp::reply::with_status(body, warp::http::StatusCode::from_u16(status).unwrap())
        });
        tokio::spawn(warp::serve(route).incoming(listener).run());
        url
    }

    /// A server that reads each request and hangs up without answering.
    async fn hangs_up() -> String {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn a_write_without_an_answer_is_not_repeated_elsewhere_but_a_read_is() {
        let silent = hangs_up().await;
        let good = fixed_answer(200, r#"{"header":{"revision":"7"}}"#).await;
        let client = Client::new(vec![silent.clone(), good], Options::default()).unwrap();
        let read = client.range(&RangeRequest::default()).await.unwrap();
        assert_eq!(read.header.revision, 7);
        let write = client.put(&PutRequest::default()).await.unwrap_err();
        assert!(
            matches!(&write, Error::Uncertain { endpoint, .. } if *endpoint == silent),
            "{write}"
        );
    }

    /// A URL nothing listens on.
    fn dead_endpoint() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    #[tokio::test]
    async fn fails_over_past_dead_and_not_leader_endpoints_but_not_past_real_errors() {
        let not_leader = fixed_answer(
            503,
            r#"{"error":"etcdserver: not leader","code":14,"message":"etcdserver: not leader"}"#,
        )
        .await;
        let not_found = fixed_answer(
            404,
            r#"{"error":"etcdserver: requested lease not found","code":5,"message":"etcdserver: requested lease not found"}"#,
        )
        .await;
        let good = fixed_answer(200, r#"{"header":{"revision":"7"},"count":"1"}"#).await;
        let dead = dead_endpoint();
        let options = Options {
            dial_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(10),
        };

        let client = Client::new(
            vec![dead.clone(), not_leader.clone(), good.clone()],
            options.clone(),
        )
        .unwrap();
        let answer = client.range(&RangeRequest::default()).await.unwrap();
        assert_eq!((answer.header.revision, answer.count), (7, 1));

        let client = Client::new(vec![dead.clone(), not_leader.clone()], options.clone()).unwrap();
        let error = client.range(&RangeRequest::default()).await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::Unreachable(_)), "{text}");
        assert!(
            text.contains(&dead) && text.contains("not leader"),
            "{text}"
        );

        let client = Client::new(vec![not_found, good], options).unwrap();
        let error = client.lease_revoke(1).await.unwrap_err();
        assert_eq!(error.code(), Some(5), "{error}");
    }

    #[test]
    fn endpoints_are_normalized() {
        let client = Client::new(
            vec!["127.0.0.1:2379".into(), "http://a:1/".into(), "".into()],
            Options::default(),
        )
        .unwrap();
        assert_eq!(client.endpoints(), ["http://127.0.0.1:2379", "http://a:1"]);
        assert!(Client::new(vec![], Options::default()).is_err());
    }
}
