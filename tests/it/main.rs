//! keel's integration tests, one binary: a real in-process cluster over HTTP (`cluster`), route tests through `warp::test::request()` against
//! a single-member replica over a temporary store, plus a real server on port 0.

mod agent;
mod agent_host;
mod agent_process;
mod agent_streams;
mod auth;
mod bench;
mod chaos;
mod cluster;
mod cluster_auth;
mod cluster_leases;
mod compactor;
mod controllers;
mod embedded;
mod etcd3gw;
mod etcd_alarm;
mod etcd_snapshot;
mod etcdctl;
mod grpc;
mod keelctl;
mod keelctl_auth;
mod kube_api;
mod kv;
mod lease;
mod maintenance;
mod node_join;
mod poll;
mod process;
mod quota;
mod restore;
mod scheduler;
mod scheduler_preemption;
mod server;
mod service_dns;
mod service_proxy;
mod tls;
mod watch;

use std::sync::Arc;

use futures::future::BoxFuture;
use keel::api::{Api, Shared};
use keel::lessor::Lessor;
use keel::replica::LocalReplica;
use keel::replica::{Member, Replica, ReplicaError, ReplicaStatus};
use keel_store::{Applied, Command, Store};
use serde_json::Value;

/// Opens a gateway watch of `key` at `url` whose request body stays open, as a real watch
/// client's does; returns the body's sender (drop it to end the request) and the 200 answer.
pub async fn open_watch(
    client: &reqwest::Client,
    url: &str,
    key: &str,
) -> (
    tokio::sync::mpsc::UnboundedSender<Result<String, std::io::Error>>,
    reqwest::Response,
) {
    let (requests, body) = tokio::sync::mpsc::unbounded_channel::<Result<String, std::io::Error>>();
    requests
        .send(Ok(
            serde_json::json!({"create_request": {"key": b64(key)}}).to_string()
        ))
        .unwrap();
    let body =
        reqwest::Body::wrap_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(body));
    let response = client
        .post(format!("{url}/v3/watch"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    (requests, response)
}

/// A fresh single-member API with etcd's defaults (minimum lease TTL 2 s).
pub fn node() -> Shared {
    node_with(|_| {})
}

/// A fresh API, tuned by `tune` before it is shared.
pub fn node_with(tune: impl FnOnce(&mut Api)) -> Shared {
    let replica = Arc::new(LocalReplica::temporary().expect("temporary store"));
    let mut api = Api::new(replica, Arc::new(Lessor::new(2)));
    tune(&mut api);
    Arc::new(api)
}

/// A port on 127.0.0.1 that was free a moment ago, for a child process that must be told its
/// port before it starts (peers name each other in `initial-cluster`). Drawn at random below
/// Linux's ephemeral range (32768+), where the kernel picks the ports of this process's own
/// port-0 listeners: one of those could otherwise take the port between the check and the
/// child's bind, and the child would fail with "address in use".
pub fn free_port() -> u16 {
    use rand::Rng as _;
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between 20000 and 32000")
}

/// Base64 of a string, as the gateway wants bytes.
pub fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// POSTs `body` (raw text) to `path`; returns the status and the body parsed as JSON (or as
/// a JSON string when it is not JSON).
pub async fn post_raw(api: &Shared, path: &str, body: &str) -> (u16, Value) {
    let response = warp::test::request()
        .method("POST")
        .path(path)
        .body(body)
        .reply(&keel::api::routes(api.clone()))
        .await;
    let status = response.status().as_u16();
    let text = String::from_utf8_lossy(response.body()).into_owned();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// POSTs a JSON body to `path`.
pub async fn post(api: &Shared, path: &str, body: Value) -> (u16, Value) {
    post_raw(api, path, &body.to_string()).await
}

/// POSTs and insists on 200, failing with the body otherwise.
pub async fn must_post(api: &Shared, path: &str, body: Value) -> Value {
    let (status, value) = post(api, path, body.clone()).await;
    assert_eq!(status, 200, "POST {path} {body} answered {value}");
    value
}

/// Asserts an etcd-shaped error: HTTP status, gRPC code, and a message containing `text`.
pub fn assert_error(answer: &(u16, Value), status: u16, code: i64, text: &str) {
    let (got_status, body) = answer;
    assert_eq!(*got_status, status, "status of {body}");
    assert_eq!(body["code"], code, "code of {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(text), "{message:?} lacks {text:?}");
    assert_eq!(body["error"], body["message"], "{body}");
}

/// Puts `key=value`, returning the revision.
pub async fn put(api: &Shared, key: &str, value: &str) -> i64 {
    let answer = must_post(
        api,
        "/v3/kv/put",
        serde_json::json!({"key": b64(key), "value": b64(value)}),
    )
    .await;
    answer["header"]["revision"]
        .as_str()
        .expect("revision is a string")
        .parse()
        .unwrap()
}

/// A single member that applies commands inline: no blocking thread, so paused time does not
/// auto-advance while a write is in flight.
pub struct InlineReplica {
    /// The keyspace.
    pub store: Store,
}

impl Replica for InlineReplica {
    fn write(&self, command: Command) -> BoxFuture<'_, Result<Applied, ReplicaError>> {
        let applied = self
            .store
            .apply(&command, None)
            .map_err(|e| ReplicaError::Fatal(e.to_string()));
        Box::pin(async move { applied })
    }
    fn read_barrier(&self) -> BoxFuture<'_, Result<(), ReplicaError>> {
        Box::pin(async { Ok(()) })
    }
    fn store(&self) -> &Store {
        &self.store
    }
    fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            member_id: 1,
            cluster_id: 1,
            raft_term: 1,
            leader: Some(1),
            ..Default::default()
        }
    }
    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, ReplicaError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Lets background loops run after a jump of paused time.
pub async fn settle() {
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}
