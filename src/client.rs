//! A typed client of keel's (and etcd 3.4's) v3 JSON gateway, over reqwest.
//!
//! Every call is a `POST /v3/...` with a JSON body, answered with the types of
//! [`crate::api::models`]. Endpoints are tried in order: a connection failure, a timeout, or
//! an `Unavailable` (code 14) answer such as "not leader" moves on to the next endpoint, so a
//! client pointed at every member reaches whichever one can answer. Any other error answer is
//! final: it is the cluster's answer, and another member would give the same.

use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::api::auth_models::{
    AuthStatusResponse, AuthenticateRequest, AuthenticateResponse, Empty, Name, Permission,
    RoleGetResponse, RoleGrantPermissionRequest, RoleListResponse, RoleName,
    RoleRevokePermissionRequest, UserAddOptions, UserAddRequest, UserChangePasswordRequest,
    UserGetResponse, UserGrantRoleRequest, UserListResponse, UserRevokeRoleRequest,
};
use crate::api::models::{
    AlarmRequest, AlarmResponse, CompactionRequest, DefragmentResponse, DeleteRangeRequest,
    DeleteRangeResponse, HashKvRequest, HashKvResponse, HeaderOnly, LeaseGrantRequest,
    LeaseGrantResponse, LeaseId, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, MemberAddRequest, MemberAddResponse, MemberId,
    MemberListResponse, MemberUpdateRequest, MoveLeaderRequest, MoveLeaderResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, SnapshotResponse, StatusResponse, StreamResult,
    TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest, WatchResponse,
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

/// TLS settings of a [`Client`] (etcdctl's `--cacert`, `--cert`, `--key`,
/// `--insecure-skip-tls-verify`). The default trusts the public CAs and presents no
/// certificate, which is all plain http endpoints need.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// Trust only the CA certificates of this PEM file.
    pub ca_file: Option<std::path::PathBuf>,
    /// Present this client certificate (PEM); needs `key_file`.
    pub cert_file: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<std::path::PathBuf>,
    /// Accept any server certificate (testing only: anyone on the path can read the traffic).
    pub insecure_skip_verify: bool,
}

impl Tls {
    /// Whether anything is set, so bare `host:port` endpoints mean https.
    pub fn is_configured(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.insecure_skip_verify
    }

    fn apply(&self, mut builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder> {
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                Error::Config(format!("cannot read the {what} {}: {e}", path.display()))
            })
        };
        builder = builder.use_rustls_tls();
        if let Some(path) = &self.ca_file {
            let certs = reqwest::Certificate::from_pem_bundle(&read("CA file", path)?)
                .ok()
                .filter(|certs| !certs.is_empty())
                .ok_or_else(|| {
                    Error::Config(format!("{} holds no PEM CA certificate", path.display()))
                })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
            builder = builder.tls_built_in_root_certs(false);
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = read("key file", key)?;
                pem.push(b'\n');
                pem.extend(read("certificate file", cert)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    Error::Config(format!(
                        "{} and {} are not a certificate and its key: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "a client certificate needs both its certificate and its key file".into(),
                ))
            }
        }
        Ok(builder.danger_accept_invalid_certs(self.insecure_skip_verify))
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
    /// Sent as the `Authorization` header of every request (see [`Client::login`]).
    token: Option<String>,
}

impl Client {
    /// A client of `endpoints`, tried in order.
    pub fn new(endpoints: Vec<String>, options: Options) -> Result<Client> {
        Client::with_tls(endpoints, options, &Tls::default())
    }

    /// A client of `endpoints` (http or https, by scheme) with `tls`.
    pub fn with_tls(endpoints: Vec<String>, options: Options, tls: &Tls) -> Result<Client> {
        // etcdctl takes bare host:port too, meaning https when TLS flags are given.
        let scheme = if tls.is_configured() { "https" } else { "http" };
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(|e| e.trim().trim_end_matches('/').to_owned())
            .filter(|e| !e.is_empty())
            .map(|e| {
                if e.contains("://") {
                    e
                } else {
                    format!("{scheme}://{e}")
                }
            })
            .collect();
        if endpoints.is_empty() {
            return Err(Error::Config("no endpoints given".into()));
        }
        let builder = reqwest::Client::builder().connect_timeout(options.dial_timeout);
        let http = tls
            .apply(builder)?
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            endpoints,
            http,
            options,
            token: None,
        })
    }

    /// The endpoints, normalized.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The same client (timeouts, connections) for other endpoints.
    pub fn with_endpoints(&self, endpoints: Vec<String>) -> Result<Client> {
        // The connections (and so the TLS settings) carry over; bare host:port means http.
        let mut client = Client::new(endpoints, self.options.clone())?;
        client.http = self.http.clone();
        client.token = self.token.clone();
        Ok(client)
    }

    /// A client of one of this client's endpoints only (for per-endpoint status).
    pub fn for_endpoint(&self, endpoint: &str) -> Client {
        Client {
            endpoints: vec![endpoint.to_owned()],
            http: self.http.clone(),
            options: self.options.clone(),
            token: self.token.clone(),
        }
    }

    /// The same client, sending `token` (from [`Client::authenticate`]) with every request.
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// Authenticates as `name` and returns a client that sends the token it got.
    pub async fn login(&self, name: &str, password: &str) -> Result<Client> {
        let answer = self.authenticate(name, password).await?;
        Ok(self.with_token(answer.token))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.header("authorization", token),
            None => request,
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
        self.send_with_headers(path, body, timeout, retry, &[])
            .await
    }

    /// [`Client::send`] with extra request headers.
    async fn send_with_headers(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Option<Duration>,
        retry: Retry,
        headers: &[(&str, &str)],
    ) -> Result<(String, reqwest::Response)> {
        let mut reasons = Vec::new();
        for endpoint in &self.endpoints {
            let mut request = self
                .authorized(self.http.post(format!("{endpoint}{path}")))
                .header("content-type", "application/json")
                .body(body.clone());
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
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
                // "not leader", "no leader", "stopping": another member may serve it. A write
                // moves on only if this member surely did not propose it.
                Error::Api {
                    code, ref message, ..
                } if code == CODE_UNAVAILABLE
                    && (retry == Retry::Always || was_not_proposed(message)) =>
                {
                    reasons.push(error.to_string());
                }
                // "request timed out": the write was proposed and may still be applied;
                // repeating it elsewhere could apply it twice, and reporting it as failed
                // would be wrong if it was applied.
                Error::Api {
                    code,
                    message,
                    endpoint,
                } if code == CODE_UNAVAILABLE => {
                    return Err(Error::Uncertain { endpoint, message })
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

    /// Renews lease `id` once, then hands back a [`KeepAlive`] whose every
    /// [`KeepAlive::renew`] is one more `LeaseKeepAlive` round, each on a stream of its own
    /// (see [`Client::open_stream`] for why the gateway allows no more than one request per
    /// stream).
    pub async fn lease_keep_alive(&self, id: i64) -> Result<KeepAlive> {
        let first = self.keep_alive_round(id).await?;
        Ok(KeepAlive {
            client: self.clone(),
            id,
            first: Some(first),
        })
    }

    async fn keep_alive_round(&self, id: i64) -> Result<LeaseKeepAliveResponse> {
        let request = serde_json::to_vec(&LeaseId { id }).expect("request models serialize");
        let (answer, _rest) = self
            .open_stream::<LeaseKeepAliveResponse>("/v3/lease/keepalive", request)
            .await?;
        Ok(answer)
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

    /// `MemberUpdate`: replaces a member's peer URLs.
    pub async fn member_update(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> Result<MemberListResponse> {
        self.call_write(
            "/v3/cluster/member/update",
            &MemberUpdateRequest { id, peer_urls },
        )
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

    /// `Snapshot`: streams the state into `out` in keel's format; returns the bytes written.
    pub async fn snapshot<W: AsyncWrite + Unpin>(&self, out: &mut W) -> Result<u64> {
        self.snapshot_with_progress(out, keel_store::SnapshotFormat::Keel, |_, _| {})
            .await
    }

    /// [`Client::snapshot`], calling `progress(written, total)` after each chunk (the total
    /// is what the member said was still to come, plus what has arrived). Neither this nor
    /// `snapshot` is bounded by the command timeout: a large state takes as long as it takes.
    /// `format` chooses keel's own format or an etcd v3 snapshot file (with its SHA-256).
    pub async fn snapshot_with_progress<W: AsyncWrite + Unpin>(
        &self,
        out: &mut W,
        format: keel_store::SnapshotFormat,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64> {
        let format = match format {
            keel_store::SnapshotFormat::Keel => "keel",
            keel_store::SnapshotFormat::Etcd => "etcd",
        };
        let (endpoint, response) = self
            .send_with_headers(
                "/v3/maintenance/snapshot",
                b"{}".to_vec(),
                None,
                Retry::Always,
                &[(crate::api::maintenance::SNAPSHOT_FORMAT_HEADER, format)],
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

    /// `Authenticate`: a token for `name`, valid on every member.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<AuthenticateResponse> {
        let request = AuthenticateRequest {
            name: name.to_owned(),
            password: password.to_owned(),
        };
        self.call("/v3/auth/authenticate", &request).await
    }

    /// `AuthEnable` (needs a `root` user with the `root` role).
    pub async fn auth_enable(&self) -> Result<HeaderOnly> {
        self.call_write("/v3/auth/enable", &Empty {}).await
    }

    /// `AuthDisable`.
    pub async fn auth_disable(&self) -> Result<HeaderOnly> {
        self.call_write("/v3/auth/disable", &Empty {}).await
    }

    /// `AuthStatus`.
    pub async fn auth_status(&self) -> Result<AuthStatusResponse> {
        self.call("/v3/auth/status", &Empty {}).await
    }

    /// `UserAdd`; `no_password` makes a user that only a client certificate identifies.
    pub async fn user_add(
        &self,
        name: &str,
        password: &str,
        no_password: bool,
    ) -> Result<HeaderOnly> {
        let request = UserAddRequest {
            name: name.to_owned(),
            password: password.to_owned(),
            options: no_password.then_some(UserAddOptions { no_password }),
        };
        self.call_write("/v3/auth/user/add", &request).await
    }

    /// `UserGet`: the user's roles.
    pub async fn user_get(&self, name: &str) -> Result<UserGetResponse> {
        self.call(
            "/v3/auth/user/get",
            &Name {
                name: name.to_owned(),
            },
        )
        .await
    }

    /// `UserList`.
    pub async fn user_list(&self) -> Result<UserListResponse> {
        self.call("/v3/auth/user/list", &Empty {}).await
    }

    /// `UserDelete`.
    pub async fn user_delete(&self, name: &str) -> Result<HeaderOnly> {
        self.call_write(
            "/v3/auth/user/delete",
            &Name {
                name: name.to_owned(),
            },
        )
        .await
    }

    /// `UserChangePassword`.
    pub async fn user_change_password(&self, name: &str, password: &str) -> Result<HeaderOnly> {
        let request = UserChangePasswordRequest {
            name: name.to_owned(),
            password: password.to_owned(),
        };
        self.call_write("/v3/auth/user/changepw", &request).await
    }

    /// `UserGrantRole`.
    pub async fn user_grant_role(&self, user: &str, role: &str) -> Result<HeaderOnly> {
        let request = UserGrantRoleRequest {
            user: user.to_owned(),
            role: role.to_owned(),
        };
        self.call_write("/v3/auth/user/grant", &request).await
    }

    /// `UserRevokeRole`.
    pub async fn user_revoke_role(&self, user: &str, role: &str) -> Result<HeaderOnly> {
        let request = UserRevokeRoleRequest {
            name: user.to_owned(),
            role: role.to_owned(),
        };
        self.call_write("/v3/auth/user/revoke", &request).await
    }

    /// `RoleAdd`.
    pub async fn role_add(&self, name: &str) -> Result<HeaderOnly> {
        self.call_write(
            "/v3/auth/role/add",
            &Name {
                name: name.to_owned(),
            },
        )
        .await
    }

    /// `RoleGet`: the role's permissions.
    pub async fn role_get(&self, role: &str) -> Result<RoleGetResponse> {
        self.call(
            "/v3/auth/role/get",
            &RoleName {
                role: role.to_owned(),
            },
        )
        .await
    }

    /// `RoleList`.
    pub async fn role_list(&self) -> Result<RoleListResponse> {
        self.call("/v3/auth/role/list", &Empty {}).await
    }

    /// `RoleDelete`.
    pub async fn role_delete(&self, role: &str) -> Result<HeaderOnly> {
        self.call_write(
            "/v3/auth/role/delete",
            &RoleName {
                role: role.to_owned(),
            },
        )
        .await
    }

    /// `RoleGrantPermission`.
    pub async fn role_grant_permission(
        &self,
        role: &str,
        permission: Permission,
    ) -> Result<HeaderOnly> {
        let request = RoleGrantPermissionRequest {
            name: role.to_owned(),
            perm: Some(permission),
        };
        self.call_write("/v3/auth/role/grant", &request).await
    }

    /// `RoleRevokePermission` of the permission on exactly `[key, range_end)`.
    pub async fn role_revoke_permission(
        &self,
        role: &str,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<HeaderOnly> {
        let request = RoleRevokePermissionRequest {
            role: role.to_owned(),
            key: key.to_vec(),
            range_end: range_end.to_vec(),
        };
        self.call_write("/v3/auth/role/revoke", &request).await
    }

    /// Starts a watch; its responses stream for as long as the returned [`Watch`] lives
    /// (dropping it closes the connection, which ends the session on the server).
    pub async fn watch(&self, request: WatchCreateRequest) -> Result<Watch> {
        let first = serde_json::to_vec(&WatchRequest::CreateRequest(request))
            .expect("request models serialize");
        let (first_answer, responses) = self.open_stream("/v3/watch", first).await?;
        Ok(Watch {
            first: Some(first_answer),
            responses,
        })
    }

    /// Opens a streamed call on the first endpoint whose first answer is not `Unavailable`:
    /// a streamed reply is always HTTP 200, so a member that cannot serve ("not leader") says
    /// so in the first line rather than in the status.
    ///
    /// The request is one message in a body that ends with it. etcd's gateway (Go's HTTP/1
    /// server) answers a stream only once its request body has ended, and a watch session
    /// outlives its body on both etcd and keel; so a stream carries one request, and a call
    /// that needs more (keep-alive rounds) opens a stream per request.
    async fn open_stream<T: DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
        request: Vec<u8>,
    ) -> Result<(T, Lines<T>)> {
        let mut reasons = Vec::new();
        for endpoint in &self.endpoints {
            let body = reqwest::Body::from(request.clone());
            let opening = self
                .authorized(self.http.post(format!("{endpoint}{path}")))
                .header("content-type", "application/json")
                .body(body)
                .send();
            // Only the opening is bounded: a member that accepts the connection and never
            // answers must not hold the stream forever, but a stream once open lives on.
            let Ok(opened) = tokio::time::timeout(self.options.command_timeout, opening).await
            else {
                reasons.push(format!(
                    "{endpoint}: no answer within the command timeout ({:?})",
                    self.options.command_timeout
                ));
                continue;
            };
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
                Ok(Some(Ok(answer))) => return Ok((answer, lines)),
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

/// Renewals of one lease.
pub struct KeepAlive {
    client: Client,
    id: i64,
    first: Option<LeaseKeepAliveResponse>,
}

impl KeepAlive {
    /// Renews the lease once; a TTL of 0 in the answer means it no longer exists.
    pub async fn renew(&mut self) -> Result<LeaseKeepAliveResponse> {
        // Opening already renewed it once.
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        self.client.keep_alive_round(self.id).await
    }
}

/// A running watch: a stream of [`WatchResponse`]s. Dropping it ends the session.
pub struct Watch {
    first: Option<WatchResponse>,
    responses: Lines<WatchResponse>,
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
/// Whether an `Unavailable` answer to a write says the member refused it before proposing
/// it (etcd's and keel's "not leader" and "no leader"), as opposed to a proposal whose fate is
/// unknown ("request timed out") or a member failing mid-way.
fn was_not_proposed(message: &str) -> bool {
    message.ends_with("not leader") || message.ends_with("no leader")
}

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

    #[tokio::test]
    async fn a_timed_out_write_is_uncertain_and_not_repeated_but_a_timed_out_read_is() {
        let timed_out = fixed_answer(
            503,
            r#"{"error":"etcdserver: request timed out","code":14,"message":"etcdserver: request timed out"}"#,
        )
        .await;
        let good = fixed_answer(200, r#"{"header":{"revision":"7"}}"#).await;
        let client = Client::new(vec![timed_out.clone(), good], Options::default()).unwrap();
        let read = client.range(&RangeRequest::default()).await.unwrap();
        assert_eq!(read.header.revision, 7);
        let write = client.put(&PutRequest::default()).await.unwrap_err();
        assert!(
            matches!(&write, Error::Uncertain { endpoint, message }
                if *endpoint == timed_out && message.contains("request timed out")),
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
