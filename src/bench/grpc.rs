//! The workloads over etcd's gRPC API (`keel bench --protocol grpc`), with the clients
//! build.rs generates from keel's protos.
//!
//! Each of `--conns` tonic [`Channel`]s is one HTTP/2 connection (connection `i` to endpoint
//! `i % endpoints`), opened on first use; worker `i` multiplexes its calls on connection
//! `i % conns`, as etcd's benchmark spreads its clients over its connections. Keys, values,
//! rates and the report are the gateway workloads' ([`super::workload`]), so a run differs
//! from a gateway run only in the API it goes through.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use super::connection::{Endpoint, REQUEST_TIMEOUT};
use super::workload::{self, closed_loop, key_of, prefix_end, EventStream, Writer};
use super::{Options, Report, Workload};
use crate::api::grpc::proto::etcdserverpb as pb;
use pb::kv_client::KvClient;
use pb::lease_client::LeaseClient;
use pb::watch_client::WatchClient;

/// How long a connection may take to open before the operation waiting on it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `workload` over gRPC.
pub async fn run(workload: &Workload, options: &Options) -> anyhow::Result<Report> {
    match workload {
        Workload::Put => put(options).await,
        Workload::Range { serializable } => range(options, *serializable).await,
        Workload::TxnPut { ops } => txn_put(options, *ops).await,
        Workload::Watch { watchers } => watch(options, *watchers).await,
        Workload::LeaseKeepalive => lease_keepalive(options).await,
    }
}

/// `count` connections spread over the endpoints in turn, each opened on its first call (a
/// dead endpoint fails its operations, counted as errors, instead of the whole run).
async fn channels(options: &Options, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut addresses = Vec::new();
    for url in &options.endpoints {
        addresses.push(Endpoint::resolve(url).await?.address());
    }
    (0..count)
        .map(|i| {
            let uri = format!("http://{}", addresses[i % addresses.len()]);
            let endpoint = tonic::transport::Endpoint::from_shared(uri.clone())
                .with_context(|| format!("{uri} is no gRPC endpoint"))?;
            Ok(endpoint
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .connect_lazy())
        })
        .collect()
}

/// One call's answer, or the message of its failure; a call without an answer in
/// [`REQUEST_TIMEOUT`] fails too.
async fn answer<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(failure(&status)),
        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
    }
}

/// A status as a report's error message: the code, and etcd's text (or the transport's
/// reason, such as a refused connection, which tonic keeps in the source).
fn failure(status: &tonic::Status) -> String {
    use std::error::Error as _;
    let mut message = format!("gRPC {:?}: {}", status.code(), status.message());
    let mut source = status.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// The KV clients of `--conns` connections.
async fn kv_clients(options: &Options) -> anyhow::Result<Arc<Vec<KvClient<Channel>>>> {
    let channels = channels(options, options.conns).await?;
    Ok(Arc::new(channels.into_iter().map(KvClient::new).collect()))
}

fn put_request(key: Vec<u8>, value: Vec<u8>) -> pb::PutRequest {
    pb::PutRequest {
        key,
        value,
        ..pb::PutRequest::default()
    }
}

/// `put`: `Put(key, value)`.
pub async fn put(options: &Options) -> anyhow::Result<Report> {
    let clients = kv_clients(options).await?;
    let (key_size, value) = (options.key_size, vec![b'v'; options.val_size]);
    let operation = move |worker: usize, n| {
        let mut kv = clients[worker % clients.len()].clone();
        let request = put_request(key_of(n, key_size), value.clone());
        async move { answer(kv.put(request)).await.map(drop) }
    };
    closed_loop(options, "put", operation).await
}

/// `range`: one key per `Range`, linearizable or serializable.
pub async fn range(options: &Options, serializable: bool) -> anyhow::Result<Report> {
    let clients = kv_clients(options).await?;
    let key_size = options.key_size;
    let operation = move |worker: usize, n| {
        let mut kv = clients[worker % clients.len()].clone();
        let request = pb::RangeRequest {
            key: key_of(n, key_size),
            serializable,
            ..pb::RangeRequest::default()
        };
        async move { answer(kv.range(request)).await.map(drop) }
    };
    let name = Workload::Range { serializable }.name();
    closed_loop(options, name, operation).await
}

/// `txn-put`: a `Txn` without compares putting `ops` consecutive keys.
pub async fn txn_put(options: &Options, ops: usize) -> anyhow::Result<Report> {
    workload::check_txn_ops(options, ops)?;
    let clients = kv_clients(options).await?;
    let (key_size, space) = (options.key_size, options.key_space_size);
    let value = vec![b'v'; options.val_size];
    let operation = move |worker: usize, n: u64| {
        let mut kv = clients[worker % clients.len()].clone();
        let success = (0..ops as u64)
            .map(|j| pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(put_request(
                    key_of((n + j) % space, key_size),
                    value.clone(),
                ))),
            })
            .collect();
        let request = pb::TxnRequest {
            success,
            ..pb::TxnRequest::default()
        };
        async move { answer(kv.txn(request)).await.map(drop) }
    };
    closed_loop(options, "txn-put", operation).await
}

/// `watch`: each watcher a `Watch` stream of its own, multiplexed over the connections
/// (at least one per endpoint, so watchers are spread over the members as over the gateway);
/// the writer puts over the first connection.
pub async fn watch(options: &Options, watchers: usize) -> anyhow::Result<Report> {
    anyhow::ensure!(watchers > 0, "--watchers must be at least 1");
    let channels = channels(options, options.conns.max(options.endpoints.len())).await?;
    let prefix = workload::watch_prefix();
    let create = pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: prefix.clone(),
                range_end: prefix_end(&prefix),
                ..pb::WatchCreateRequest::default()
            },
        )),
    };
    let mut streams: Vec<EventStream> = Vec::new();
    for w in 0..watchers {
        let mut client = WatchClient::new(channels[w % channels.len()].clone());
        // The request side stays open: a client that half-closes asks for the end of the
        // stream.
        let requests = futures::stream::iter([create.clone()]).chain(futures::stream::pending());
        let mut responses = answer(client.watch(requests))
            .await
            .map_err(|e| anyhow::anyhow!("cannot open watcher {w}: {e}"))?;
        let created = tokio::time::timeout(REQUEST_TIMEOUT, responses.message()).await;
        match created {
            Ok(Ok(Some(response))) if response.created => {}
            other => anyhow::bail!("watcher {w} was not created: {other:?}"),
        }
        let events = responses.map(|response| match response {
            Ok(response) => Ok(response
                .events
                .iter()
                .map(|event| event.kv.as_ref().map_or(0, |kv| kv.mod_revision))
                .collect()),
            Err(status) => Err(failure(&status)),
        });
        streams.push(Box::pin(events));
    }
    let kv = KvClient::new(channels[0].clone());
    let writer: Writer = Box::new(move |key, value| {
        let mut kv = kv.clone();
        Box::pin(async move {
            let answer = answer(kv.put(put_request(key, value))).await?;
            Ok(answer.header.map_or(0, |header| header.revision))
        })
    });
    workload::watch_with(options, prefix, streams, writer).await
}

/// A client's keep-alive stream: where its renewals go and their answers come back.
struct KeepAlive {
    requests: futures::channel::mpsc::Sender<pb::LeaseKeepAliveRequest>,
    responses: tonic::Streaming<pb::LeaseKeepAliveResponse>,
}

/// `lease-keepalive`: one lease and one `LeaseKeepAlive` stream per client, renewed
/// `--total` times in all, each renewal waiting for its answer.
pub async fn lease_keepalive(options: &Options) -> anyhow::Result<Report> {
    use futures::SinkExt as _;
    let channels = channels(options, options.conns).await?;
    let mut leases = Vec::new();
    let mut streams = Vec::new();
    for worker in 0..options.clients {
        let channel = channels[worker % channels.len()].clone();
        let request = pb::LeaseGrantRequest { ttl: 60, id: 0 };
        let granted = answer(LeaseClient::new(channel.clone()).lease_grant(request))
            .await
            .map_err(|e| anyhow::anyhow!("cannot grant a lease: {e}"))?;
        leases.push((channel.clone(), granted.id));
        // etcd (grpc-go) sends a stream's headers with its first message, and tonic's call
        // returns with the headers: the stream opens with one renewal, outside the count.
        let (mut requests, outgoing) = futures::channel::mpsc::channel(1);
        let first = pb::LeaseKeepAliveRequest { id: granted.id };
        requests
            .send(first)
            .await
            .context("the keep-alive stream")?;
        let mut responses = answer(LeaseClient::new(channel).lease_keep_alive(outgoing))
            .await
            .map_err(|e| anyhow::anyhow!("cannot open a keep-alive stream: {e}"))?;
        match tokio::time::timeout(REQUEST_TIMEOUT, responses.message()).await {
            Ok(Ok(Some(renewal))) if renewal.ttl > 0 => {}
            other => anyhow::bail!("lease {:x} was not renewed: {other:?}", granted.id),
        }
        streams.push(Mutex::new(KeepAlive {
            requests,
            responses,
        }));
    }
    let streams = Arc::new(streams);
    let ids: Vec<i64> = leases.iter().map(|(_, id)| *id).collect();
    let operation = move |worker: usize, _| {
        let (streams, id) = (streams.clone(), ids[worker]);
        async move {
            // Only this worker uses its stream: the lock is never contended.
            let mut stream = streams[worker].lock().await;
            stream
                .requests
                .send(pb::LeaseKeepAliveRequest { id })
                .await
                .map_err(|_| "the keep-alive stream is closed".to_owned())?;
            let renewal = tokio::time::timeout(REQUEST_TIMEOUT, stream.responses.message()).await;
            match renewal {
                Ok(Ok(Some(renewal))) if renewal.ttl > 0 => Ok(()),
                Ok(Ok(Some(renewal))) => Err(format!("lease {:x} expired", renewal.id)),
                Ok(Ok(None)) => Err("the keep-alive stream ended".to_owned()),
                Ok(Err(status)) => Err(failure(&status)),
                Err(_) => Err(format!("no renewal within {REQUEST_TIMEOUT:?}")),
            }
        }
    };
    let report = closed_loop(options, "lease-keepalive", operation).await;
    for (channel, id) in leases {
        // Best effort: leases left behind expire after their 60 s anyway.
        let _ = answer(LeaseClient::new(channel).lease_revoke(pb::LeaseRevokeRequest { id })).await;
    }
    report
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failure_names_the_code_and_etcds_text() {
        let status = tonic::Status::invalid_argument("etcdserver: request is too large");
        assert_eq!(
            super::failure(&status),
            "gRPC InvalidArgument: etcdserver: request is too large"
        );
    }
}
