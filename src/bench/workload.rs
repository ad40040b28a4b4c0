//! The workloads: what each operation sends and how its answer is judged.
//!
//! Keys are the key number in decimal, zero-padded to `--key-size` bytes, so a run with
//! `--sequential-keys` writes `00000000`, `00000001`, … and `range` reads keys a `put` run
//! with the same `--key-size` and `--key-space-size` wrote. Bodies are built by hand: base64
//! of the key plus the value's base64 computed once, which keeps the generator's CPU off the
//! measurement.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::Mutex;

use super::connection::{Connection, Endpoint};
use super::report::{Recorder, Report, WatchCheck};
use super::Options;
use crate::api::models::{LeaseKeepAliveResponse, PutRequest, StreamResult, WatchResponse};
use crate::client::{self, Client};

/// How long watchers wait for the last events once the writer is done; past it an event
/// counts as missing.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

/// A streamed call (watch creation, a renewal) that takes longer than this failed.
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The key with number `n`: decimal, zero-padded to `size` bytes (longer if `n` needs it).
pub fn key_of(n: u64, size: usize) -> Vec<u8> {
    format!("{n:0size$}").into_bytes()
}

/// Which key number operation `i` uses.
struct KeyChooser {
    space: u64,
    sequential: bool,
    rng: rand::rngs::StdRng,
}

impl KeyChooser {
    fn new(options: &Options) -> KeyChooser {
        KeyChooser {
            space: options.key_space_size,
            sequential: options.sequential_keys,
            rng: rand::rngs::StdRng::from_entropy(),
        }
    }

    fn key_number(&mut self, op: u64) -> u64 {
        if self.sequential {
            op % self.space
        } else {
            self.rng.gen_range(0..self.space)
        }
    }
}

/// When operation `op` may start under `--rate` (immediately without one).
fn scheduled(started: Instant, op: u64, rate: u64) -> Option<tokio::time::Instant> {
    (rate > 0).then(|| (started + Duration::from_secs_f64(op as f64 / rate as f64)).into())
}

/// Judges a 2xx answer's body: an error message for an answer that is not a success.
type Check = fn(&[u8]) -> Result<(), String>;

/// A 2xx status is success enough for puts, ranges and txns.
fn any_answer(_: &[u8]) -> Result<(), String> {
    Ok(())
}

/// Runs `--total` operations over `--clients` workers at `--rate`. `operation(worker, key
/// number)` makes one; what it does before its future is first polled (building the request)
/// happens before the clock starts, and its `Err` is the failure to count.
pub(super) async fn closed_loop<F, Fut>(
    options: &Options,
    name: &str,
    operation: F,
) -> anyhow::Result<Report>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let next_op = Arc::new(AtomicU64::new(0));
    let operation = Arc::new(operation);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.clients {
        let (next_op, operation) = (next_op.clone(), operation.clone());
        let mut keys = KeyChooser::new(options);
        let (total, rate) = (options.total, options.rate);
        workers.push(tokio::spawn(async move {
            let mut recorder = Recorder::default();
            loop {
                let op = next_op.fetch_add(1, Ordering::Relaxed);
                if op >= total {
                    break;
                }
                if let Some(at) = scheduled(started, op, rate) {
                    tokio::time::sleep_until(at).await;
                }
                let call = operation(worker, keys.key_number(op));
                // The wait for a shared connection is part of what a caller would see.
                let sent = Instant::now();
                match call.await {
                    Ok(()) => recorder.success(sent.elapsed()),
                    Err(message) => recorder.failure(message),
                }
            }
            recorder
        }));
    }
    let mut all = Recorder::default();
    for worker in workers {
        all.merge(worker.await.context("a worker panicked")?);
    }
    Ok(all.report(name, started.elapsed()))
}

/// Runs `total` unary POSTs to `path` over the shared connections; `body` makes the request
/// of a worker for a key number, and `check` judges each answer.
async fn unary<F>(
    options: &Options,
    name: &str,
    path: &'static str,
    body: F,
    check: Check,
) -> anyhow::Result<Report>
where
    F: Fn(usize, u64) -> Bytes + Send + Sync + 'static,
{
    let mut endpoints = Vec::new();
    for url in &options.endpoints {
        endpoints.push(Endpoint::resolve(url).await?);
    }
    let connections: Arc<Vec<Mutex<Connection>>> = Arc::new(
        (0..options.conns)
            .map(|i| Mutex::new(Connection::new(endpoints[i % endpoints.len()].clone())))
            .collect(),
    );
    let operation = move |worker: usize, n| {
        let request = body(worker, n);
        let connections = connections.clone();
        async move {
            let mut connection = connections[worker % connections.len()].lock().await;
            let answer = connection.post(path, request).await?;
            check(&answer)
        }
    };
    closed_loop(options, name, operation).await
}

fn json_string(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

fn value_of(options: &Options) -> String {
    json_string(&vec![b'v'; options.val_size])
}

/// `put`: `PUT key value`, etcd benchmark's `put`.
pub async fn put(options: &Options) -> anyhow::Result<Report> {
    let (key_size, value) = (options.key_size, value_of(options));
    let body = move |_, n| {
        let key = json_string(&key_of(n, key_size));
        Bytes::from(format!(r#"{{"key":"{key}","value":"{value}"}}"#))
    };
    unary(options, "put", "/v3/kv/put", body, any_answer).await
}

/// `range`: one key per request, linearizable (read barrier) or serializable.
pub async fn range(options: &Options, serializable: bool) -> anyhow::Result<Report> {
    let key_size = options.key_size;
    let name = if serializable {
        "range-serializable"
    } else {
        "range-linearizable"
    };
    let body = move |_, n| {
        let key = json_string(&key_of(n, key_size));
        Bytes::from(format!(
            r#"{{"key":"{key}","serializable":{serializable}}}"#
        ))
    };
    unary(options, name, "/v3/kv/range", body, any_answer).await
}

/// `txn-put`: a txn without compares putting `ops` consecutive keys (distinct, since a txn
/// may not put one key twice).
pub async fn txn_put(options: &Options, ops: usize) -> anyhow::Result<Report> {
    check_txn_ops(options, ops)?;
    let (key_size, space, value) = (options.key_size, options.key_space_size, value_of(options));
    let body = move |_, n: u64| {
        let puts: Vec<String> = (0..ops as u64)
            .map(|j| {
                let key = json_string(&key_of((n + j) % space, key_size));
                format!(r#"{{"request_put":{{"key":"{key}","value":"{value}"}}}}"#)
            })
            .collect();
        Bytes::from(format!(r#"{{"success":[{}]}}"#, puts.join(",")))
    };
    unary(options, "txn-put", "/v3/kv/txn", body, any_answer).await
}

/// Refuses a txn size the key space cannot fill with distinct keys.
pub(super) fn check_txn_ops(options: &Options, ops: usize) -> anyhow::Result<()> {
    anyhow::ensure!(ops > 0, "--txn-ops must be at least 1");
    anyhow::ensure!(
        ops as u64 <= options.key_space_size,
        "--txn-ops {ops} needs a --key-space-size of at least {ops} (a txn may not put one key twice)"
    );
    Ok(())
}

fn typed_client(options: &Options) -> anyhow::Result<Client> {
    Ok(Client::new(
        options.endpoints.clone(),
        client::Options {
            dial_timeout: Duration::from_secs(2),
            command_timeout: STREAM_TIMEOUT,
        },
    )?)
}

/// The end of the range of keys starting with `prefix`.
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The lines of a streamed answer, each a `{"result": ...}` (or an error body ending it).
struct Lines {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
}

impl Lines {
    /// The next message, `None` when the stream ended.
    async fn next<T: serde::de::DeserializeOwned>(&mut self) -> Option<Result<T, String>> {
        use http_body_util::BodyExt as _;
        loop {
            if let Some(newline) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=newline).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(parse_result(&line));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Some(Err(format!("stream broke: {e}"))),
                None if self.buffer.iter().all(u8::is_ascii_whitespace) => return None,
                None => {
                    let line = std::mem::take(&mut self.buffer);
                    return Some(parse_result(&line));
                }
            }
        }
    }
}

/// A `{"result": T}` line, or the error the line carries instead.
fn parse_result<T: serde::de::DeserializeOwned>(line: &[u8]) -> Result<T, String> {
    serde_json::from_slice::<StreamResult<T>>(line)
        .map(|message| message.result)
        .map_err(|_| format!("error answer: {}", String::from_utf8_lossy(line).trim()))
}

/// What one watcher received: each event's revision and when its response arrived.
struct Delivered {
    events: Vec<(i64, Instant)>,
    error: Option<String>,
}

/// One created watch: the mod revisions of each response's events, as they arrive.
pub(super) type EventStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<Vec<i64>, String>> + Send>>;

/// The writer of a watch run: puts a key and value, answers the put's revision.
pub(super) type Writer = Box<
    dyn FnMut(Vec<u8>, Vec<u8>) -> futures::future::BoxFuture<'static, Result<i64, String>> + Send,
>;

/// A prefix per run, so another run's leftovers or concurrent writers never show up.
pub(super) fn watch_prefix() -> Vec<u8> {
    format!(
        "keel-bench-watch/{}-{}/",
        std::process::id(),
        rand::random::<u32>()
    )
    .into_bytes()
}

/// `watch`: `watchers` watchers on a prefix of their own, one writer putting `--total` keys
/// under it at `--rate`; every watcher must see every acknowledged put once, in order.
pub async fn watch(options: &Options, watchers: usize) -> anyhow::Result<Report> {
    anyhow::ensure!(watchers > 0, "--watchers must be at least 1");
    let client = typed_client(options)?;
    let prefix = watch_prefix();
    let create = Bytes::from(format!(
        r#"{{"create_request":{{"key":"{}","range_end":"{}"}}}}"#,
        json_string(&prefix),
        json_string(&prefix_end(&prefix))
    ));
    let mut streams: Vec<EventStream> = Vec::new();
    for w in 0..watchers {
        let url = &options.endpoints[w % options.endpoints.len()];
        let mut connection = Connection::new(Endpoint::resolve(url).await?);
        let body = connection
            .post_streaming("/v3/watch", create.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot open watcher {w} on {url}: {e}"))?;
        let mut lines = Lines {
            body,
            buffer: Vec::new(),
        };
        let created = tokio::time::timeout(STREAM_TIMEOUT, lines.next::<WatchResponse>()).await;
        match created {
            Ok(Some(Ok(answer))) if answer.created => {}
            other => anyhow::bail!("watcher {w} on {url} was not created: {other:?}"),
        }
        // The connection must outlive the stream it carries.
        let events =
            futures::stream::unfold((connection, lines), |(connection, mut lines)| async move {
                let answer = lines.next::<WatchResponse>().await?;
                let revisions =
                    answer.map(|a| a.events.iter().map(|e| e.kv.mod_revision).collect());
                Some((revisions, (connection, lines)))
            });
        streams.push(Box::pin(events));
    }
    let writer: Writer = Box::new(move |key, value| {
        let client = client.clone();
        Box::pin(async move {
            let request = PutRequest {
                key,
                value,
                ..PutRequest::default()
            };
            client
                .put(&request)
                .await
                .map(|answer| answer.header.revision)
                .map_err(|e| e.to_string())
        })
    });
    watch_with(options, prefix, streams, writer).await
}

/// The watch run over created `streams` on `prefix`: the writer's puts, each watcher's
/// deliveries, and the check that every acknowledged put reached every watcher once, in order.
pub(super) async fn watch_with(
    options: &Options,
    prefix: Vec<u8>,
    streams: Vec<EventStream>,
    mut writer: Writer,
) -> anyhow::Result<Report> {
    use futures::StreamExt as _;
    let watchers = streams.len();
    let (writer_done, done) = tokio::sync::watch::channel(None::<Instant>);
    let expected = options.total as usize;
    let mut readers = Vec::new();
    for mut events in streams {
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut delivered = Delivered {
                events: Vec::with_capacity(expected),
                error: None,
            };
            while delivered.events.len() < expected {
                match tokio::time::timeout(Duration::from_millis(200), events.next()).await {
                    Ok(Some(Ok(revisions))) => {
                        let at = Instant::now();
                        delivered
                            .events
                            .extend(revisions.into_iter().map(|revision| (revision, at)));
                    }
                    Ok(Some(Err(e))) => {
                        delivered.error = Some(format!("watch stream failed: {e}"));
                        break;
                    }
                    Ok(None) => {
                        delivered.error = Some("watch stream ended early".into());
                        break;
                    }
                    Err(_) => {}
                }
                if done
                    .borrow()
                    .is_some_and(|at| at.elapsed() > DELIVERY_GRACE)
                {
                    break;
                }
            }
            delivered
        }));
    }

    let started = Instant::now();
    let mut keys = KeyChooser::new(options);
    let value = vec![b'v'; options.val_size];
    let mut put_failures = Vec::new();
    let mut acked: HashMap<i64, Instant> = HashMap::with_capacity(expected);
    for op in 0..options.total {
        if let Some(at) = scheduled(started, op, options.rate) {
            tokio::time::sleep_until(at).await;
        }
        let mut key = prefix.clone();
        key.extend(key_of(keys.key_number(op), options.key_size));
        match writer(key, value.clone()).await {
            Ok(revision) => {
                acked.insert(revision, Instant::now());
            }
            Err(e) => put_failures.push(format!("put: {e}")),
        }
    }
    let _ = writer_done.send(Some(Instant::now()));

    let mut events = Recorder::default();
    for failure in put_failures {
        events.failure(failure);
    }
    let mut check = WatchCheck {
        watchers: watchers as u64,
        puts_acked: acked.len() as u64,
        ..WatchCheck::default()
    };
    for reader in readers {
        let delivered = reader.await.context("a watcher panicked")?;
        if let Some(error) = delivered.error {
            events.failure(error);
        }
        let mut seen = std::collections::HashSet::with_capacity(delivered.events.len());
        let mut last = 0;
        for (revision, at) in delivered.events {
            check.events_delivered += 1;
            if revision < last {
                check.out_of_order += 1;
                events.failure("event delivered out of revision order");
            }
            last = last.max(revision);
            let Some(ack) = acked.get(&revision) else {
                // A put whose answer was lost: applied, but not in the expected set.
                continue;
            };
            if seen.insert(revision) {
                // The event can beat the writer's ack; that is zero latency, not negative.
                events.success(at.saturating_duration_since(*ack));
            } else {
                check.duplicates += 1;
                events.failure("event delivered twice");
            }
        }
        let missing = acked.len() as u64 - seen.len() as u64;
        check.missing += missing;
        for _ in 0..missing {
            events.failure("event never delivered");
        }
    }
    let elapsed = started.elapsed();
    let mut report = events.report("watch", elapsed);
    report.watch = Some(check);
    Ok(report)
}

/// `lease-keepalive`: one lease per client, each renewed `--total` times in all by unary
/// keep-alive calls (a one-message stream each: etcd 3.4's gateway answers a stream only once
/// its request body has ended).
pub async fn lease_keepalive(options: &Options) -> anyhow::Result<Report> {
    let client = typed_client(options)?;
    let mut leases = Vec::new();
    for _ in 0..options.clients {
        let granted = client
            .lease_grant(60, 0)
            .await
            .context("cannot grant a lease")?;
        leases.push(granted.id);
    }
    let ids = leases.clone();
    let body = move |worker: usize, _| Bytes::from(format!(r#"{{"ID":"{}"}}"#, ids[worker]));
    let report = unary(
        options,
        "lease-keepalive",
        "/v3/lease/keepalive",
        body,
        renewed,
    )
    .await;
    for id in leases {
        // Best effort: leases left behind expire after their 60 s anyway.
        let _ = client.lease_revoke(id).await;
    }
    report
}

/// A keep-alive answer renewed its lease (a TTL of 0 means the lease is gone).
fn renewed(answer: &[u8]) -> Result<(), String> {
    let renewal: LeaseKeepAliveResponse = Lines::first_message(answer)?;
    if renewal.ttl > 0 {
        Ok(())
    } else {
        Err(format!("lease {:x} expired", renewal.id))
    }
}

impl Lines {
    /// The first message of a whole streamed answer.
    fn first_message<T: serde::de::DeserializeOwned>(answer: &[u8]) -> Result<T, String> {
        let line = answer
            .split(|b| *b == b'\n')
            .find(|line| !line.iter().all(u8::is_ascii_whitespace))
            .ok_or_else(|| "empty keep-alive answer".to_owned())?;
        parse_result(line)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_padded_decimal_and_prefix_ends_are_exclusive() {
        assert_eq!(super::key_of(42, 8), b"00000042");
        assert_eq!(super::key_of(123_456, 3), b"123456");
        assert_eq!(super::prefix_end(b"a/"), b"a0");
        assert_eq!(super::prefix_end(b"a\xff"), b"b");
        assert_eq!(super::prefix_end(b"\xff"), b"\0");
    }

    #[test]
    fn sequential_keys_wrap_around_the_key_space() {
        let options = super::Options {
            key_space_size: 3,
            sequential_keys: true,
            ..super::Options::default()
        };
        let mut keys = super::KeyChooser::new(&options);
        let chosen: Vec<u64> = (0..5).map(|op| keys.key_number(op)).collect();
        assert_eq!(chosen, [0, 1, 2, 0, 1]);
        let random = super::Options {
            key_space_size: 5,
            ..super::Options::default()
        };
        let mut keys = super::KeyChooser::new(&random);
        assert!((0..100).all(|op| keys.key_number(op) < 5));
    }
}
