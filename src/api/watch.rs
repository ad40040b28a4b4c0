//! The Watch service over one HTTP exchange, as etcd's gateway does it: the request body is a
//! stream of `WatchRequest` messages, the response a stream of `{"result": WatchResponse}`
//! lines. Any number of watches share the stream, each with its id.
//!
//! One session task reads the requests and owns the watches; each watch runs in its own task
//! forwarding its [`keel_store::Watcher`] to the shared output channel. The session sends a
//! watch's `created` line before starting its task, so it always precedes the watch's events.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use keel_store::{WatchUpdate, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use warp::filters::BoxedFilter;
use warp::Filter;

use super::error::{ApiError, Code};
use super::models::{FilterType, WatchCreateRequest, WatchRequest, WatchResponse};
use super::{credentials, exact_path, gateway_lines, json_messages, streaming_reply, Shared};
use crate::auth::{Access, Credentials};

/// The id etcd 3.4 puts on answers to a progress request (they concern every watch), and
/// on a refused watch (it has no id).
const ALL_WATCHES: i64 = -1;

/// `POST /v3/watch`.
pub fn routes(api: &Shared) -> BoxedFilter<(warp::reply::Response,)> {
    let api = api.clone();
    exact_path("v3/watch")
        .and(warp::post())
        .and(credentials())
        .and(warp::body::stream())
        .map(move |credentials, body| streaming_reply(watch_stream(api.clone(), credentials, body)))
        .boxed()
}

/// The response lines of a watch session fed by `body`. The stream stays open after the body
/// ends (the watches go on) until the receiver is dropped, i.e. the client disconnects, or
/// the server shuts down. Once auth is enabled, each watch needs read on its range for the
/// user `credentials` name, and one without it is refused (created and canceled at once).
pub fn watch_stream<S, B, E>(
    api: Shared,
    credentials: Credentials,
    body: S,
) -> impl Stream<Item = Bytes> + Send + Sync
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: bytes::Buf + Send + 'static,
    E: std::fmt::Display + 'static,
{
    let requests = json_messages::<WatchRequest, _, _, _>(body);
    gateway_lines(watch_session(api, credentials, requests))
}

/// One message of a watch session: a response, or the error that ends the session.
pub type WatchMessage = Result<WatchResponse, ApiError>;

/// A watch session for `credentials`' user, whatever the wire: the responses to
/// `requests`, as long as the receiver is kept and the server runs. The gateway writes them
/// as JSON lines, gRPC as messages.
pub fn watch_session(
    api: Shared,
    credentials: Credentials,
    requests: impl Stream<Item = Result<WatchRequest, ApiError>> + Send + 'static,
) -> impl Stream<Item = WatchMessage> + Send + Sync {
    let (lines, rx) = mpsc::channel::<WatchMessage>(64);
    tokio::spawn(session(api, credentials, requests, lines));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

struct RunningWatch {
    task: JoinHandle<()>,
    /// Every revision up to this one has been delivered (for progress answers).
    progress: Arc<AtomicI64>,
}

impl Drop for RunningWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(
    api: Shared,
    credentials: Credentials,
    requests: impl Stream<Item = Result<WatchRequest, ApiError>>,
    lines: mpsc::Sender<WatchMessage>,
) {
    let mut requests = std::pin::pin!(requests);
    let mut watches: HashMap<i64, RunningWatch> = HashMap::new();
    let mut next_id: i64 = 0;
    let mut body_open = true;
    let closed = api.closed();
    tokio::pin!(closed);
    loop {
        let request = tokio::select! {
            request = requests.next(), if body_open => request,
            _ = lines.closed() => break,
            _ = &mut closed => break,
        };
        watches.retain(|_, w| !w.task.is_finished());
        let line = match request {
            None => {
                // The client sent everything it will send; its watches go on.
                body_open = false;
                continue;
            }
            Some(Err(e)) => {
                // The gateway reports a broken request stream as Unknown and ends it.
                let error = ApiError::new(Code::Unknown, e.message);
                let _ = lines.send(Err(error)).await;
                break;
            }
            Some(Ok(WatchRequest::CreateRequest(create))) => {
                let id = if create.watch_id != 0 {
                    create.watch_id
                } else {
                    while watches.contains_key(&next_id) {
                        next_id += 1;
                    }
                    next_id
                };
                match watches.entry(id) {
                    Entry::Occupied(_) => Ok(WatchResponse {
                        header: api.current_header(),
                        watch_id: id,
                        created: true,
                        canceled: true,
                        cancel_reason: "etcdserver: duplicate watch ID".into(),
                        ..Default::default()
                    }),
                    Entry::Vacant(slot) => {
                        match start(&api, &credentials, id, create, &lines).await {
                            Ok(watch) => {
                                slot.insert(watch);
                                continue;
                            }
                            Err(line) => line,
                        }
                    }
                }
            }
            Some(Ok(WatchRequest::CancelRequest(cancel))) => {
                let Some(watch) = watches.remove(&cancel.watch_id) else {
                    continue;
                };
                drop(watch);
                Ok(WatchResponse {
                    header: api.current_header(),
                    watch_id: cancel.watch_id,
                    canceled: true,
                    ..Default::default()
                })
            }
            Some(Ok(WatchRequest::ProgressRequest(_))) => {
                let current = api.replica.store().current_revision();
                let revision = watches
                    .values()
                    .map(|w| w.progress.load(Ordering::SeqCst))
                    .min()
                    .unwrap_or(current);
                Ok(WatchResponse {
                    header: api.header(revision),
                    watch_id: ALL_WATCHES,
                    ..Default::default()
                })
            }
        };
        if lines.send(line).await.is_err() {
            break;
        }
    }
}

/// Starts one watch: sends its `created` line, then spawns its task. On failure returns the
/// line that tells the client the watch was refused.
async fn start(
    api: &Shared,
    credentials: &Credentials,
    id: i64,
    create: WatchCreateRequest,
    lines: &mpsc::Sender<WatchMessage>,
) -> Result<RunningWatch, WatchMessage> {
    let access = Access::read(&create.key, &create.range_end);
    if let Err(e) = api.auth.authorize(credentials, &access) {
        // etcd 3.4 answers with the invalid watch id -1 and the gRPC error's text.
        return Err(Ok(WatchResponse {
            header: api.current_header(),
            watch_id: ALL_WATCHES,
            created: true,
            canceled: true,
            cancel_reason: format!("rpc error: code = {:?} desc = {}", e.code, e.message),
            ..Default::default()
        }));
    }
    let progress_notify = create.progress_notify;
    let fragment = create.fragment;
    let request = keel_store::WatchRequest {
        no_put: create.filters.contains(&FilterType::NoPut),
        no_delete: create.filters.contains(&FilterType::NoDelete),
        key: create.key,
        range_end: create.range_end,
        start_revision: create.start_revision,
        prev_kv: create.prev_kv,
    };
    let watcher = match api.replica.store().watch(request) {
        Ok(watcher) => watcher,
        Err(e) => {
            return Err(Ok(WatchResponse {
                header: api.current_header(),
                watch_id: id,
                created: true,
                canceled: true,
                cancel_reason: e.to_string(),
                ..Default::default()
            }))
        }
    };
    let created = Ok(WatchResponse {
        header: api.current_header(),
        watch_id: id,
        created: true,
        ..Default::default()
    });
    // If the client is gone, the task notices at once and ends.
    let _ = lines.send(created).await;
    let progress = Arc::new(AtomicI64::new(watcher.next_revision() - 1));
    let task = tokio::spawn(forward(
        api.clone(),
        id,
        watcher,
        Options {
            progress_notify,
            fragment,
        },
        progress.clone(),
        lines.clone(),
    ));
    Ok(RunningWatch { task, progress })
}

/// Decrements the watcher gauge however the task ends (abort included).
struct WatcherGauge(Shared);

impl Drop for WatcherGauge {
    fn drop(&mut self) {
        self.0.metrics.watchers_add(-1);
    }
}

/// What a create request asked of its watch beyond the keys.
struct Options {
    /// Periodic progress notifications.
    progress_notify: bool,
    /// Split responses larger than the request limit.
    fragment: bool,
}

async fn forward(
    api: Shared,
    id: i64,
    mut watcher: Watcher,
    options: Options,
    progress: Arc<AtomicI64>,
    lines: mpsc::Sender<WatchMessage>,
) {
    api.metrics.watchers_add(1);
    let _gauge = WatcherGauge(api.clone());
    let interval = api.progress_interval;
    let mut ticker = options.progress_notify.then(|| {
        let start = tokio::time::Instant::now() + interval;
        let mut ticker = tokio::time::interval_at(start, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    });
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(ticker) => {
                    ticker.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        let (responses, last) = tokio::select! {
            update = watcher.next() => match update {
                None => return,
                Some(WatchUpdate::Events { revision, events }) => {
                    progress.store(revision, Ordering::SeqCst);
                    let response = WatchResponse {
                        header: api.header(revision),
                        watch_id: id,
                        events: events.into_iter().map(Into::into).collect(),
                        ..Default::default()
                    };
                    let responses = if options.fragment {
                        fragments(response, api.max_request_bytes)
                    } else {
                        vec![response]
                    };
                    (responses, false)
                }
                Some(WatchUpdate::Compacted { compact_revision }) => {
                    // etcd leaves the revision out of this header.
                    let response = WatchResponse {
                        header: api.header(0),
                        watch_id: id,
                        canceled: true,
                        compact_revision,
                        ..Default::default()
                    };
                    (vec![response], true)
                }
            },
            _ = tick => {
                let response = WatchResponse {
                    header: api.header(progress.load(Ordering::SeqCst)),
                    watch_id: id,
                    ..Default::default()
                };
                (vec![response], false)
            }
            _ = lines.closed() => return,
        };
        for response in responses {
            if lines.send(Ok(response)).await.is_err() {
                return;
            }
        }
        if last {
            return;
        }
    }
}

/// Splits a response whose events exceed `limit` bytes into several, each under it (or one
/// event, if that alone exceeds it), all but the last marked `fragment`, as etcd does for a
/// watch created with `fragment`: a client reassembles them, and no message outgrows what
/// the client accepts.
pub fn fragments(response: WatchResponse, limit: usize) -> Vec<WatchResponse> {
    fn size(event: &super::models::Event) -> usize {
        // Keys and values dominate; the rest of an event is a few varints.
        let kv = |kv: &super::models::KeyValue| kv.key.len() + kv.value.len() + 32;
        kv(&event.kv) + event.prev_kv.as_ref().map_or(0, kv)
    }
    let total: usize = response.events.iter().map(size).sum();
    if total <= limit {
        return vec![response];
    }
    let mut pieces: Vec<WatchResponse> = Vec::new();
    let mut current = WatchResponse {
        events: Vec::new(),
        ..response.clone()
    };
    let mut current_size = 0;
    for event in response.events {
        let event_size = size(&event);
        if !current.events.is_empty() && current_size + event_size > limit {
            let next = WatchResponse {
                events: Vec::new(),
                ..current.clone()
            };
            pieces.push(std::mem::replace(&mut current, next));
            current_size = 0;
        }
        current_size += event_size;
        current.events.push(event);
    }
    pieces.push(current);
    let count = pieces.len();
    for piece in &mut pieces[..count - 1] {
        piece.fragment = true;
    }
    pieces
}
