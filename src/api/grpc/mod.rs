//! etcd's v3 gRPC API (package `etcdserverpb`) on tonic, beside the JSON gateway on the same
//! port. Both front ends run the same handlers (`crate::api::{kv, lease, watch, maintenance,
//! cluster}`): each RPC converts its prost message into the gateway's model
//! ([`conversions`]), calls the handler, and converts the answer back, so semantics, errors,
//! leader forwarding and linearizable reads are the gateway's by construction.
//!
//! | file | service |
//! | --- | --- |
//! | [`kv`] | `KV`: Range, Put, DeleteRange, Txn, Compact |
//! | [`watch`] | `Watch`: the bidirectional watch stream |
//! | [`lease`] | `Lease`: grant, revoke, the keepalive stream, time-to-live, leases |
//! | [`cluster`] | `Cluster`: member list, add, remove, update, promote |
//! | [`maintenance`] | `Maintenance`: alarm, status, defragment, hash, hashKV, snapshot stream, move leader |
//! | [`auth`] | `Auth`: enable, disable, status, authenticate, users, roles, permissions |
//! | [`dispatch`] | one port for both: `content-type: application/grpc*` to tonic, the rest to warp |
//!
//! Every RPC and stream passes the gateway route's access check, with the caller's token
//! from the `token` metadata (what etcd clients send after Authenticate) or the client
//! certificate the TLS listener verified.

pub mod auth;
pub mod cluster;
pub mod conversions;
pub mod dispatch;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod watch;

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::Status;

use super::error::{ApiError, Code};
use super::{leader_url, Shared, FORWARDED};
use crate::auth::{Access, Credentials};
use crate::identity::ClientCertificate;

/// The code generated from `proto/` by build.rs.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    /// `mvccpb`: key-values and events.
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    /// `authpb`: users, roles, permissions.
    pub mod authpb {
        tonic::include_proto!("authpb");
    }
    /// `etcdserverpb`: the services and their messages.
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
}

pub use dispatch::Dispatch;

/// Every gRPC service keel serves, as one router.
pub fn router(api: &Shared) -> tonic::service::Routes {
    use proto::etcdserverpb::{
        auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
        lease_server::LeaseServer, maintenance_server::MaintenanceServer,
        watch_server::WatchServer,
    };
    // etcd accepts requests up to --max-request-bytes plus this much gRPC overhead; tonic's
    // default decoding limit (4 MiB) would refuse a large txn etcd takes.
    let limit = api.max_request_bytes + 512 * 1024;
    tonic::service::Routes::new(
        KvServer::new(kv::KvService::new(api)).max_decoding_message_size(limit),
    )
    .add_service(WatchServer::new(watch::WatchService::new(api)).max_decoding_message_size(limit))
    .add_service(LeaseServer::new(lease::LeaseService::new(api)))
    .add_service(ClusterServer::new(cluster::ClusterService::new(api)))
    .add_service(MaintenanceServer::new(
        maintenance::MaintenanceService::new(api),
    ))
    .add_service(AuthServer::new(auth::AuthService::new(api)))
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        Status::new(tonic::Code::from(e.code as i32), e.message)
    }
}

/// What the gateway's route for an RPC says about it.
pub(crate) struct Rpc<Req> {
    /// The gateway's path, where a follower forwards the call.
    pub path: &'static str,
    /// The RPC's name in metrics.
    pub method: &'static str,
    /// Only the leader answers (it keeps lease deadlines, hands over leadership).
    pub on_leader: bool,
    /// What the request needs once auth is enabled: the gateway route's guard.
    pub access: fn(&Req) -> Access,
}

/// Root's once auth is enabled: the gateway's plain `unary` routes.
pub(crate) fn admin<T>(_: &T) -> Access {
    Access::Admin
}

/// The caller as the gateway sees it: the token etcd's gRPC clients send after
/// Authenticate (metadata `token`; `authorization`, the gateway's header, is taken too) and
/// the client certificate the TLS listener verified, which tonic keeps in the extensions.
pub(crate) fn credentials<T>(request: &tonic::Request<T>) -> Credentials {
    let metadata = request.metadata();
    let token = ["token", "authorization"]
        .iter()
        .find_map(|key| metadata.get(*key))
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let certificate = request.extensions().get::<ClientCertificate>().cloned();
    Credentials::new(token, certificate)
}

/// One unary RPC through the gateway's handler, with the gateway's access check and leader
/// forwarding: an RPC `on_leader` goes to the leader first; any RPC a follower answers with
/// "not leader" (and the leader's address) is sent there once, with the caller's
/// credentials. The leader is asked through its JSON gateway (`path`), the one forwarding
/// protocol keel members speak to each other.
pub(crate) async fn unary<Req, Resp, Out, F, Fut>(
    api: &Shared,
    rpc: Rpc<Req>,
    credentials: Credentials,
    request: Req,
    handler: F,
) -> Result<tonic::Response<Out>, Status>
where
    Req: Serialize + Clone,
    Resp: DeserializeOwned + Into<Out>,
    F: FnOnce(Shared, Req) -> Fut,
    Fut: Future<Output = Result<Resp, ApiError>>,
{
    let started = std::time::Instant::now();
    let method = rpc.method;
    let result = answer(api, rpc, &credentials, request, handler).await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(response) => {
            api.metrics.observe(method, None, seconds);
            Ok(tonic::Response::new(response.into()))
        }
        Err(e) => {
            api.metrics.observe(method, Some(e.code as i32), seconds);
            Err(e.into())
        }
    }
}

async fn answer<Req, Resp, F, Fut>(
    api: &Shared,
    rpc: Rpc<Req>,
    credentials: &Credentials,
    request: Req,
    handler: F,
) -> Result<Resp, ApiError>
where
    Req: Serialize + Clone,
    Resp: DeserializeOwned,
    F: FnOnce(Shared, Req) -> Fut,
    Fut: Future<Output = Result<Resp, ApiError>>,
{
    if rpc.on_leader && !api.replica.status().is_leader() {
        if let Some(leader) = leader_url(api).await {
            let token = api.auth.forwarding_token(credentials);
            if let Some(answer) = forward(api, &leader, rpc.path, &request, token).await {
                return answer;
            }
        }
    }
    // The access check may walk a whole txn; skip it while nobody is checked.
    if api.auth.enabled()? {
        api.auth.authorize(credentials, &(rpc.access)(&request))?;
    }
    let result = handler(api.clone(), request.clone()).await;
    if let Err(ApiError {
        leader_url: Some(leader),
        ..
    }) = &result
    {
        let token = api.auth.forwarding_token(credentials);
        if let Some(answer) = forward(api, leader, rpc.path, &request, token).await {
            return answer;
        }
    }
    result
}

/// Asks the leader's gateway as `token`'s user; `None` if it could not be reached or
/// answered something that is neither a response nor an etcd error (the caller then
/// answers with its own error).
async fn forward<Req: Serialize, Resp: DeserializeOwned>(
    api: &Shared,
    leader: &str,
    path: &str,
    request: &Req,
    token: Option<String>,
) -> Option<Result<Resp, ApiError>> {
    let url = format!("{}/{path}", leader.trim_end_matches('/'));
    let mut call = api.http.post(&url).header(FORWARDED, "1").json(request);
    if let Some(token) = token {
        call = call.header("authorization", token);
    }
    let answer = match call.send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::debug!("cannot forward to the leader at {url}: {e}");
            return None;
        }
    };
    let ok = answer.status().is_success();
    let body = answer.bytes().await.ok()?;
    if ok {
        return serde_json::from_slice(&body).ok().map(Ok);
    }
    ApiError::from_body(&body).map(Err)
}

/// A stream handed to tonic as a server stream.
pub(crate) type ResponseStream<T> =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A client stream's messages as the gateway's models; a broken stream or a message that
/// does not convert becomes the error that ends the session.
pub(crate) fn requests<P, Model>(
    stream: tonic::Streaming<P>,
) -> impl futures::Stream<Item = Result<Model, ApiError>> + Send + 'static
where
    P: Send + 'static,
    Model: TryFrom<P, Error = ApiError> + Send + 'static,
{
    use futures::StreamExt as _;
    stream.map(|message| match message {
        Ok(message) => Model::try_from(message),
        Err(status) => Err(ApiError::new(
            Code::from_number(status.code() as i32),
            status.message().to_owned(),
        )),
    })
}
