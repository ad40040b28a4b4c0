//! The peer network: openraft's RPCs as HTTP POSTs with bincode bodies.
//!
//! | path                       | request body                    | response body                                   |
//! |----------------------------|---------------------------------|-------------------------------------------------|
//! | `/raft/append`             | `AppendEntriesRequest`          | `Result<AppendEntriesResponse, RaftError>`      |
//! | `/raft/vote`               | `VoteRequest`                   | `Result<VoteResponse, RaftError>`               |
//! | `/raft/install-snapshot`   | `InstallSnapshotRequest` (chunk)| `Result<InstallSnapshotResponse, RaftError<_>>` |
//! | `/raft/forward`            | `Command` (a follower's write)  | `Result<Written, Refusal>`                      |
//! | `/raft/forward-batch`      | `Vec<Command>` (its writes)     | `Vec<Result<Written, Refusal>>`, one per command |
//! | `/raft/read-index`         | `()` (empty)                    | `Result<Option<LogId>, Refusal>`                |
//! | `/raft/campaign`           | `()` (empty)                    | `Result<(), Refusal>`                           |
//!
//! A snapshot goes over the wire as openraft's chunked install-snapshot RPCs (openraft's
//! default `RaftNetwork::full_snapshot`), each chunk at most
//! [`crate::RaftConfig::snapshot_chunk_bytes`] read from the leader's snapshot file and written
//! by the follower into its receiving file: neither side holds a whole snapshot in memory.
//!
//! The last four are [`crate::forward`]'s: a follower forwards writes (one, as keel did before
//! it batched them, or several, see [`crate::forwarder`]), or asks the leader for
//! the read index of a linearizable read; a leader handing over its leadership asks the
//! transferee to campaign.
//!
//! Outbound, [`HttpNetworkFactory`] posts to the target's [`KeelNode::peer_addr`] with the
//! caller's `reqwest::Client` (its connection pool is shared by every peer; TLS is configured on
//! it). Every request names its sender in the [`SENDER_HEADER`] header, so something between
//! members (the chaos tests' fault-injecting proxy) can cut or delay one link and not another. Inbound, [`peer_routes`] is a warp filter the server mounts. A 200 answer always carries
//! a bincode body; a 400 carries a text reason (a body that did not decode).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::codec;
use crate::forward::{self, LeaderLink, LinkError, Refusal, Written};
use crate::proposer::Proposer;
use crate::types::{KeelNode, LogId, Raft, TypeConfig};

/// The header naming the member id that sent a peer request. Informational: the receiver
/// does not trust or need it.
pub const SENDER_HEADER: &str = "x-keel-from";

/// Creates an [`HttpNetwork`] per peer, all sharing one `reqwest::Client`.
#[derive(Clone)]
pub struct HttpNetworkFactory {
    id: u64,
    client: reqwest::Client,
}

impl HttpNetworkFactory {
    /// The network of member `id` over `client` (build it with TLS settings, or use
    /// [`HttpNetworkFactory::default_client`]).
    pub fn new(id: u64, client: reqwest::Client) -> HttpNetworkFactory {
        HttpNetworkFactory { id, client }
    }

    /// A plain-HTTP client with keep-alive: idle connections to peers are kept for reuse, and
    /// TCP_NODELAY avoids Nagle's delay on small append-entries bodies.
    pub fn default_client() -> reqwest::Result<reqwest::Client> {
        HttpNetworkFactory::client_builder().build()
    }

    /// [`HttpNetworkFactory::default_client`]'s settings, for the caller to add TLS (roots,
    /// identity) before building.
    pub fn client_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(8)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
    }
}

/// `http://` + `peer_addr` unless it names its scheme, without a trailing slash.
fn base_url(node: &KeelNode) -> String {
    if node.peer_addr.contains("://") {
        node.peer_addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", node.peer_addr.trim_end_matches('/'))
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetworkFactory {
    type Network = HttpNetwork;

    async fn new_client(&mut self, target: u64, node: &KeelNode) -> HttpNetwork {
        HttpNetwork {
            id: self.id,
            target,
            base: base_url(node),
            client: self.client.clone(),
        }
    }
}

impl LeaderLink for HttpNetworkFactory {
    fn forward_writes(
        &self,
        leader: u64,
        node: &KeelNode,
        commands: Vec<keel_store::Command>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Result<Written, Refusal>>, LinkError>> {
        let (client, base, from) = (self.client.clone(), base_url(node), self.id);
        Box::pin(async move {
            let url = format!("{base}/raft/forward-batch");
            match exchange(&client, &url, from, &commands, timeout).await {
                // A leader of a keel from before batched forwarding: one request per write.
                Err(PostError::NoRoute(_)) => {
                    let url = format!("{base}/raft/forward");
                    let answers = commands.iter().map(|command| {
                        let (client, url) = (&client, &url);
                        async move {
                            exchange::<_, Result<Written, Refusal>>(
                                client, url, from, command, timeout,
                            )
                            .await
                        }
                    });
                    futures::future::join_all(answers)
                        .await
                        .into_iter()
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.link(leader))
                }
                answer => answer.map_err(|e| e.link(leader)),
            }
        })
    }

    fn read_index(
        &self,
        leader: u64,
        node: &KeelNode,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Result<Option<LogId>, Refusal>, LinkError>> {
        let (client, url, from) = (
            self.client.clone(),
            format!("{}/raft/read-index", base_url(node)),
            self.id,
        );
        Box::pin(async move {
            exchange(&client, &url, from, &(), timeout)
                .await
                .map_err(|e| e.link(leader))
        })
    }

    fn campaign(
        &self,
        target: u64,
        node: &KeelNode,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Result<(), Refusal>, LinkError>> {
        self.campaign_at(target, node, timeout)
    }
}

impl HttpNetworkFactory {
    fn campaign_at(
        &self,
        target: u64,
        node: &KeelNode,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Result<(), Refusal>, LinkError>> {
        let (client, url, from) = (
            self.client.clone(),
            format!("{}/raft/campaign", base_url(node)),
            self.id,
        );
        Box::pin(async move {
            exchange(&client, &url, from, &(), timeout)
                .await
                .map_err(|e| e.link(target))
        })
    }
}

/// Why one POST got no decodable answer.
enum PostError {
    /// Never encoded or never connected: nothing reached the peer.
    Encode(codec::CodecError),
    Connect(reqwest::Error),
    /// Sent; the answer did not come in time.
    Timeout(reqwest::Error),
    /// Sent; the connection failed or the body did not decode.
    Broken(String),
    /// The peer answered without running the handler (400: undecodable body).
    Rejected(String),
    /// The peer has no such route (404): a member of an older keel.
    NoRoute(String),
}

impl PostError {
    /// As the forwarding rules see it: only what provably did not reach the handler is
    /// [`LinkError::NotSent`].
    fn link(self, leader: u64) -> LinkError {
        match self {
            PostError::Encode(e) => LinkError::NotSent(e.to_string()),
            PostError::Connect(e) => LinkError::NotSent(format!("connecting to {leader}: {e}")),
            PostError::Rejected(reason) | PostError::NoRoute(reason) => LinkError::NotSent(reason),
            PostError::Timeout(e) => LinkError::NoAnswer(format!("from {leader}: {e}")),
            PostError::Broken(reason) => LinkError::NoAnswer(format!("from {leader}: {reason}")),
        }
    }
}

/// POSTs `request` bincode-encoded to `url` and decodes the 200 answer.
async fn exchange<Req: Serialize, Resp: DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    from: u64,
    request: &Req,
    timeout: Duration,
) -> Result<Resp, PostError> {
    let body = codec::encode(request).map_err(PostError::Encode)?;
    // Connect first: a connect timeout is also a timeout, but nothing was sent.
    let classify = |e: reqwest::Error| {
        if e.is_connect() {
            PostError::Connect(e)
        } else if e.is_timeout() {
            PostError::Timeout(e)
        } else {
            PostError::Broken(e.to_string())
        }
    };
    let response = client
        .post(url)
        .header("content-type", "application/octet-stream")
        .header(SENDER_HEADER, from)
        .timeout(timeout)
        .body(body)
        .send()
        .await
        .map_err(classify)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(classify)?;
    if status != StatusCode::OK.as_u16() {
        let reason = format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        // 500 is sent after the handler ran (its answer did not encode).
        return Err(if status == StatusCode::NOT_FOUND.as_u16() {
            PostError::NoRoute(reason)
        } else if status.is_client_error() {
            PostError::Rejected(reason)
        } else {
            PostError::Broken(reason)
        });
    }
    codec::decode(&bytes).map_err(|e| PostError::Broken(e.to_string()))
}

/// The connection from one member to one peer.
pub struct HttpNetwork {
    id: u64,
    target: u64,
    base: String,
    client: reqwest::Client,
}

/// Why an RPC got no answer; converts into each of openraft's error shapes.
enum Failure {
    Unreachable(Unreachable),
    Timeout(Timeout<u64>),
    Network(NetworkError),
}

impl Failure {
    fn rpc<E: std::error::Error>(self) -> RPCError<u64, KeelNode, E> {
        match self {
            Failure::Unreachable(e) => RPCError::Unreachable(e),
            Failure::Timeout(e) => RPCError::Timeout(e),
            Failure::Network(e) => RPCError::Network(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

impl HttpNetwork {
    async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        request: &Req,
        timeout: Duration,
        action: RPCTypes,
    ) -> Result<Resp, Failure> {
        let url = format!("{}{path}", self.base);
        exchange(&self.client, &url, self.id, request, timeout)
            .await
            .map_err(|e| match e {
                PostError::Timeout(_) => Failure::Timeout(Timeout {
                    action,
                    id: self.id,
                    target: self.target,
                    timeout,
                }),
                // openraft backs off from an unreachable peer instead of retrying at once.
                PostError::Connect(e) => Failure::Unreachable(Unreachable::new(&e)),
                PostError::Encode(e) => Failure::Network(NetworkError::new(&e)),
                PostError::Broken(reason)
                | PostError::Rejected(reason)
                | PostError::NoRoute(reason) => {
                    Failure::Network(NetworkError::new(&Message(reason)))
                }
            })
    }
}

impl RaftNetwork<TypeConfig> for HttpNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, KeelNode, RaftError<u64>>> {
        let answer: Result<AppendEntriesResponse<u64>, RaftError<u64>> = self
            .post(
                "/raft/append",
                &rpc,
                option.hard_ttl(),
                RPCTypes::AppendEntries,
            )
            .await
            .map_err(Failure::rpc)?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, KeelNode, RaftError<u64, InstallSnapshotError>>,
    > {
        let answer: Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> =
            self.post(
                "/raft/install-snapshot",
                &rpc,
                option.hard_ttl(),
                RPCTypes::InstallSnapshot,
            )
            .await
            .map_err(Failure::rpc)?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, KeelNode, RaftError<u64>>> {
        let answer: Result<VoteResponse<u64>, RaftError<u64>> = self
            .post("/raft/vote", &rpc, option.hard_ttl(), RPCTypes::Vote)
            .await
            .map_err(Failure::rpc)?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// What a member's peer routes answer with: its Raft, and the proposer and read-index rounds
/// its own writes and reads use, so forwarded ones share entries and rounds with them.
#[derive(Clone)]
pub struct PeerEndpoints {
    pub(crate) raft: Raft,
    pub(crate) proposer: Proposer,
    pub(crate) read_index: crate::read_index::ReadIndex,
}

/// The server side of the peer network: `POST /raft/{append,vote,install-snapshot}`,
/// each handed to `raft`, `POST /raft/campaign`, and `POST /raft/{forward,forward-batch,read-index}`, answered by `raft` if it leads
/// (see [`crate::forward`]). Mount it on the peer listener.
pub fn peer_routes(
    endpoints: PeerEndpoints,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    // Writes forwarded by followers go into the entries of the member's own writes, and its
    // reads share read-index rounds (see crate::proposer, crate::read_index): one proposer per
    // member, so the entries in flight are bounded per member, not per route.
    let PeerEndpoints {
        raft,
        proposer,
        read_index,
    } = endpoints;
    let with_raft = warp::any().map(move || raft.clone());
    let route = |path: &'static str| {
        warp::post()
            .and(warp::path("raft"))
            .and(warp::path(path))
            .and(warp::path::end())
            .and(warp::body::bytes())
            .and(with_raft.clone())
    };
    let append = route("append").then(|body: Bytes, raft: Raft| async move {
        answer(&body, |rpc| async move { raft.append_entries(rpc).await }).await
    });
    let vote = route("vote").then(|body: Bytes, raft: Raft| async move {
        answer(&body, |rpc| async move { raft.vote(rpc).await }).await
    });
    let install_snapshot = route("install-snapshot").then(|body: Bytes, raft: Raft| async move {
        answer(&body, |rpc| async move { raft.install_snapshot(rpc).await }).await
    });
    let forward = route("forward").then({
        let proposer = proposer.clone();
        move |body: Bytes, _raft: Raft| {
            let proposer = proposer.clone();
            async move {
                answer(&body, |command: keel_store::Command| async move {
                    forward::leader_write(&proposer, command)
                        .await
                        .map_err(Refusal::from)
                })
                .await
            }
        }
    });
    let forward_batch = route("forward-batch").then({
        move |body: Bytes, _raft: Raft| {
            let proposer = proposer.clone();
            async move {
                answer(&body, |commands: Vec<keel_store::Command>| async move {
                    forward::leader_writes(&proposer, commands).await
                })
                .await
            }
        }
    });
    let read_index = route("read-index").then(move |body: Bytes, _raft: Raft| {
        let read_index = read_index.clone();
        async move {
            answer(&body, |()| async move {
                forward::leader_read_index(&read_index)
                    .await
                    .map_err(Refusal::from)
            })
            .await
        }
    });
    let campaign = route("campaign").then(|body: Bytes, raft: Raft| async move {
        answer(&body, |()| async move {
            forward::campaign(&raft).await.map_err(Refusal::from)
        })
        .await
    });
    append
        .or(vote)
        .unify()
        .or(install_snapshot)
        .unify()
        .or(forward)
        .unify()
        .or(forward_batch)
        .unify()
        .or(read_index)
        .unify()
        .or(campaign)
        .unify()
}

/// Decodes the request, runs `handle`, and encodes its result (success and Raft error alike);
/// a body that does not decode is the caller's fault, answered with 400.
async fn answer<Req, Resp, Fut>(
    body: &[u8],
    handle: impl FnOnce(Req) -> Fut,
) -> warp::reply::WithStatus<Vec<u8>>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    Fut: Future<Output = Resp>,
{
    let request = match codec::decode::<Req>(body) {
        Ok(request) => request,
        Err(e) => {
            return warp::reply::with_status(e.to_string().into_bytes(), StatusCode::BAD_REQUEST)
        }
    };
    let response = handle(request).await;
    match codec::encode(&response) {
        Ok(bytes) => warp::reply::with_status(bytes, StatusCode::OK),
        Err(e) => warp::reply::with_status(
            e.to_string().into_bytes(),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}
