//! The Lease service: grant, revoke, keepalive (a stream both ways), time-to-live, list.
//!
//! Grants and revokes are replicated writes; deadlines live in the [`crate::lessor::Lessor`].
//! etcd's gateway serves some of these under `/v3/kv/lease/...` as well; both paths work.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use keel_store::{Command, CommandResponse};
use rand::Rng;
use warp::filters::BoxedFilter;
use warp::Filter;

use super::error::{ApiError, Code};
use super::kv::{propose, unexpected};
use super::models::{
    HeaderOnly, LeaseGrantRequest, LeaseGrantResponse, LeaseId, LeaseKeepAliveResponse,
    LeaseLeasesResponse, LeaseStatus, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
    StreamResult,
};
use super::{
    blocking, credentials, exact_path, gateway_lines, guarded, guarded_on_leader, json_messages,
    streaming_reply, Shared, FORWARDED,
};
use crate::auth::{Access, Credentials};
use crate::lessor::MAX_TTL;

/// Any user may grant, renew and look at leases (ids are not secret in etcd either).
pub(crate) fn authenticated<T>(_: &T) -> Access {
    Access::Authenticated
}

/// A revoke deletes the lease's keys, so it needs write on each of them.
pub(crate) fn revoke_access(request: &LeaseId) -> Access {
    Access::LeaseKeys(request.id)
}

/// Lease routes, with the `/v3/kv/lease/...` aliases etcd 3.4 also serves.
pub fn routes(api: &Shared) -> BoxedFilter<(warp::reply::Response,)> {
    let keepalive = {
        let api = api.clone();
        exact_path("v3/lease/keepalive")
            .and(warp::post())
            .and(warp::header::optional::<String>(FORWARDED))
            .and(credentials())
            .and(warp::body::stream())
            .map(
                move |forwarded: Option<String>, credentials: Credentials, body| {
                    let api = api.clone();
                    streaming_reply(keepalive_stream(
                        api,
                        credentials,
                        forwarded.is_some(),
                        body,
                    ))
                },
            )
    };
    guarded_on_leader(api, "v3/lease/grant", "LeaseGrant", authenticated, grant)
        .or(guarded_on_leader(
            api,
            "v3/lease/revoke",
            "LeaseRevoke",
            revoke_access,
            revoke,
        ))
        .unify()
        .or(guarded_on_leader(
            api,
            "v3/kv/lease/revoke",
            "LeaseRevoke",
            revoke_access,
            revoke,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/lease/timetolive",
            "LeaseTimeToLive",
            authenticated,
            time_to_live,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/kv/lease/timetolive",
            "LeaseTimeToLive",
            authenticated,
            time_to_live,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/lease/leases",
            "LeaseLeases",
            authenticated,
            leases,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/kv/lease/leases",
            "LeaseLeases",
            authenticated,
            leases,
        ))
        .unify()
        .or(keepalive)
        .unify()
        .boxed()
}

/// Grants a lease; id 0 lets the server choose a random positive one.
pub async fn grant(
    api: Shared,
    request: LeaseGrantRequest,
) -> Result<LeaseGrantResponse, ApiError> {
    if request.ttl > MAX_TTL {
        return Err(ApiError::new(
            Code::OutOfRange,
            "etcdserver: too large lease TTL",
        ));
    }
    if request.id < 0 {
        return Err(ApiError::invalid_argument(
            "etcdserver: lease id must be positive",
        ));
    }
    let ttl = api.lessor.effective_ttl(request.ttl);
    // A chosen id can collide with an existing lease; choose again a few times then.
    let attempts = if request.id == 0 { 5 } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let id = if request.id == 0 {
            rand::thread_rng().gen_range(1..i64::MAX)
        } else {
            request.id
        };
        match propose(&api, Command::LeaseGrant { id, ttl }).await {
            Ok((revision, CommandResponse::LeaseGrant(info))) => {
                api.lessor.grant(info.id, info.ttl);
                return Ok(LeaseGrantResponse {
                    header: api.header(revision),
                    id: info.id,
                    ttl: info.ttl,
                    error: String::new(),
                });
            }
            Ok((_, other)) => return Err(unexpected(other)),
            Err(e) if e.code == Code::FailedPrecondition && request.id == 0 => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| ApiError::new(Code::Internal, "no free lease id found")))
}

/// Revokes a lease and deletes its keys.
pub async fn revoke(api: Shared, request: LeaseId) -> Result<HeaderOnly, ApiError> {
    let (revision, _) = propose(&api, Command::LeaseRevoke { id: request.id }).await?;
    api.lessor.forget(request.id);
    Ok(HeaderOnly {
        header: api.header(revision),
    })
}

/// Remaining and granted TTL of a lease, with its keys if asked; TTL -1 if it does not exist.
pub async fn time_to_live(
    api: Shared,
    request: LeaseTimeToLiveRequest,
) -> Result<LeaseTimeToLiveResponse, ApiError> {
    api.replica.read_barrier().await?;
    let store = api.replica.store().clone();
    let id = request.id;
    let (lease, revision) =
        blocking(move || Ok((store.lease(id)?, store.current_revision()))).await?;
    let header = api.header(revision);
    let Some(lease) = lease else {
        return Ok(LeaseTimeToLiveResponse {
            header,
            id,
            ttl: -1,
            ..Default::default()
        });
    };
    let ttl = api.lessor.remaining(id).unwrap_or(lease.lease.ttl);
    Ok(LeaseTimeToLiveResponse {
        header,
        id,
        ttl,
        granted_ttl: lease.lease.ttl,
        keys: if request.keys { lease.keys } else { Vec::new() },
    })
}

/// Every lease.
pub async fn leases(api: Shared, _request: LeaseId) -> Result<LeaseLeasesResponse, ApiError> {
    api.replica.read_barrier().await?;
    let store = api.replica.store().clone();
    let (leases, revision) =
        blocking(move || Ok((store.leases()?, store.current_revision()))).await?;
    Ok(LeaseLeasesResponse {
        header: api.header(revision),
        leases: leases
            .into_iter()
            .map(|l| LeaseStatus { id: l.id })
            .collect(),
    })
}

/// Renews one lease: its TTL, or 0 if it does not exist (etcd answers so, not with an error).
pub async fn keep_alive(api: &Shared, id: i64) -> Result<LeaseKeepAliveResponse, ApiError> {
    if !api.replica.status().is_leader() {
        // Only the leader keeps deadlines: the stream forwards the keepalive there.
        let mut error = ApiError::new(Code::Unavailable, "etcdserver: not leader");
        error.leader_url = super::leader_url(api).await;
        return Err(error);
    }
    let ttl = match api.lessor.renew(id) {
        Some(ttl) => ttl,
        None => {
            // A lease this leader has no deadline for yet (granted through another member a
            // moment ago): adopt it with a full TTL if the store has it.
            let store = api.replica.store().clone();
            match blocking(move || Ok(store.lease(id)?)).await? {
                Some(lease) => {
                    api.lessor.grant(id, lease.lease.ttl);
                    lease.lease.ttl
                }
                None => 0,
            }
        }
    };
    Ok(LeaseKeepAliveResponse {
        header: api.current_header(),
        id,
        ttl,
    })
}

/// Renews `id` on the leader at `leader`, as `token`'s user: its answer, or `None` if it
/// cannot be reached or answers something else than a keepalive response or an etcd error.
async fn forward_keepalive(
    api: &Shared,
    leader: &str,
    id: i64,
    token: Option<&str>,
) -> Option<Result<LeaseKeepAliveResponse, ApiError>> {
    let url = format!("{}/v3/lease/keepalive", leader.trim_end_matches('/'));
    let mut request = api.http.post(&url).header(FORWARDED, "1");
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    let answer = request
        .body(format!(r#"{{"ID":"{id}"}}"#))
        .send()
        .await
        .ok()?;
    let body = answer.bytes().await.ok()?;
    let line = body.split(|b| *b == b'\n').next()?;
    match serde_json::from_slice::<StreamResult<LeaseKeepAliveResponse>>(line) {
        Ok(message) => Some(Ok(message.result)),
        Err(_) => ApiError::from_body(line).map(Err),
    }
}

/// The keepalive stream: one `{"result": ...}` line per `{"ID": ...}` message in the body,
/// ending with the body (or with an error line). A follower forwards each keepalive to the
/// leader, unless the stream was itself `forwarded` by a follower. Once auth is enabled, a
/// stream from nobody `credentials` names ends with the error at once.
pub fn keepalive_stream<S, B, E>(
    api: Shared,
    credentials: Credentials,
    forwarded: bool,
    body: S,
) -> impl Stream<Item = Bytes> + Send + Sync
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: bytes::Buf + Send + 'static,
    E: std::fmt::Display + 'static,
{
    let requests = json_messages::<LeaseId, _, _, _>(body);
    gateway_lines(keepalive_session(api, credentials, forwarded, requests))
}

/// A keepalive session for `credentials`' user, whatever the wire: one answer per request,
/// ending with the requests, after the first error, or when the server shuts down. The
/// gateway writes the answers as JSON lines, gRPC as messages.
pub fn keepalive_session(
    api: Shared,
    credentials: Credentials,
    forwarded: bool,
    requests: impl Stream<Item = Result<LeaseId, ApiError>> + Send + 'static,
) -> impl Stream<Item = Result<LeaseKeepAliveResponse, ApiError>> + Send + Sync {
    let (answers, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        if let Err(e) = api.auth.authorize(&credentials, &Access::Authenticated) {
            let _ = answers.send(Err(e)).await;
            return;
        }
        let token = api.auth.forwarding_token(&credentials);
        let mut requests = std::pin::pin!(requests);
        let closed = api.closed();
        tokio::pin!(closed);
        loop {
            let request = tokio::select! {
                request = requests.next() => match request {
                    Some(request) => request,
                    None => break,
                },
                _ = &mut closed => break,
            };
            let started = std::time::Instant::now();
            let (id, mut result) = match request {
                Ok(request) => (request.id, keep_alive(&api, request.id).await),
                Err(e) => (0, Err(e)),
            };
            if let Err(ApiError {
                leader_url: Some(leader),
                ..
            }) = &result
            {
                if !forwarded {
                    let token = token.as_deref();
                    if let Some(answer) = forward_keepalive(&api, leader, id, token).await {
                        result = answer;
                    }
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            let code = result.as_ref().err().map(|e| e.code as i32);
            api.metrics.observe("LeaseKeepAlive", code, seconds);
            let failed = result.is_err();
            if answers.send(result).await.is_err() || failed {
                break;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
