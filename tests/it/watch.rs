//! The watch stream: replay from an old revision, live events, compaction, several watches
//! on one stream, cancel, progress.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::{b64, must_post, node, node_with, put};

/// A watch session whose request body stays open; send requests, read response lines.
struct Session {
    requests: mpsc::UnboundedSender<Result<Bytes, Infallible>>,
    lines: std::pin::Pin<Box<dyn Stream<Item = Bytes> + Send + Sync>>,
}

impl Session {
    fn open(api: &keel::api::Shared) -> Session {
        let (requests, body) = mpsc::unbounded_channel();
        let body = tokio_stream::wrappers::UnboundedReceiverStream::new(body);
        let lines = keel::api::watch::watch_stream(api.clone(), Default::default(), body);
        Session {
            requests,
            lines: Box::pin(lines),
        }
    }

    fn send(&self, request: Value) {
        self.requests
            .send(Ok(Bytes::from(request.to_string())))
            .unwrap();
    }

    /// The next `result`, failing after a while instead of hanging.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(5), self.lines.next())
            .await
            .expect("a watch response within 5 s")
            .expect("the stream is open");
        let value: Value = serde_json::from_slice(&line).unwrap();
        value.get("result").cloned().unwrap_or(value)
    }
}

#[tokio::test]
async fn watch_replays_from_an_old_revision_then_follows() {
    let api = node();
    put(&api, "a", "1").await; // 2
    put(&api, "a", "2").await; // 3
    must_post(&api, "/v3/kv/deleterange", json!({"key": b64("a")})).await; // 4

    let mut session = Session::open(&api);
    session
        .send(json!({"create_request": {"key": b64("a"), "start_revision": "2", "prev_kv": true}}));
    let created = session.next().await;
    assert_eq!(created["created"], true);
    assert!(
        created.get("watch_id").is_none(),
        "id 0 is omitted: {created}"
    );
    assert_eq!(created["header"]["revision"], "4");

    let mut events = Vec::new();
    while events.len() < 3 {
        let update = session.next().await;
        events.extend(update["events"].as_array().unwrap().clone());
    }
    assert!(
        events[0].get("type").is_none(),
        "PUT is the default, omitted"
    );
    assert_eq!(events[0]["kv"]["value"], b64("1"));
    assert_eq!(events[1]["prev_kv"]["value"], b64("1"));
    assert_eq!(events[2]["type"], "DELETE");
    assert_eq!(
        events[2]["kv"],
        json!({"key": b64("a"), "mod_revision": "4"})
    );

    put(&api, "a", "live").await; // 5
    let live = session.next().await;
    assert_eq!(live["header"]["revision"], "5");
    assert_eq!(live["events"][0]["kv"]["value"], b64("live"));
}

#[tokio::test]
async fn a_compacted_start_cancels_the_watch() {
    let api = node();
    put(&api, "k", "1").await;
    put(&api, "k", "2").await;
    must_post(&api, "/v3/kv/compaction", json!({"revision": "3"})).await;

    let mut session = Session::open(&api);
    session.send(json!({"create_request": {"key": b64("k"), "start_revision": 1}}));
    assert_eq!(session.next().await["created"], true);
    let canceled = session.next().await;
    assert_eq!(canceled["canceled"], true);
    assert_eq!(canceled["compact_revision"], "3");
    assert!(canceled["header"].get("revision").is_none(), "{canceled}");
}

#[tokio::test]
async fn several_watches_share_a_stream() {
    let api = node();
    let mut session = Session::open(&api);
    session.send(json!({"create_request": {"key": b64("x"), "watch_id": "7"}}));
    assert_eq!(session.next().await["watch_id"], "7");
    session.send(json!({"create_request": {"key": b64("y"), "filters": ["NOPUT"]}}));
    let second = session.next().await;
    assert!(
        second.get("watch_id").is_none(),
        "auto ids start at 0: {second}"
    );
    session.send(json!({"create_request": {"key": b64("z")}}));
    assert_eq!(session.next().await["watch_id"], "1");
    session.send(json!({"create_request": {"key": b64("z"), "watch_id": 7}}));
    let duplicate = session.next().await;
    assert_eq!(duplicate["canceled"], true);

    put(&api, "y", "ignored by NOPUT").await;
    put(&api, "x", "seen").await;
    let event = session.next().await;
    assert_eq!(event["watch_id"], "7");
    assert_eq!(event["events"][0]["kv"]["key"], b64("x"));

    session.send(json!({"progress_request": {}}));
    let progress = session.next().await;
    assert_eq!(progress["watch_id"], "-1");
    assert!(progress.get("events").is_none());

    session.send(json!({"cancel_request": {"watch_id": "7"}}));
    let canceled = session.next().await;
    assert_eq!(
        (&canceled["watch_id"], &canceled["canceled"]),
        (&json!("7"), &json!(true))
    );

    must_post(&api, "/v3/kv/deleterange", json!({"key": b64("y")})).await;
    let deleted = session.next().await;
    assert!(deleted.get("watch_id").is_none());
    assert_eq!(deleted["events"][0]["type"], "DELETE");
}

#[tokio::test]
async fn progress_notify_sends_header_only_updates() {
    let api = node_with(|api| api.progress_interval = Duration::from_millis(50));
    put(&api, "p", "1").await;
    let mut session = Session::open(&api);
    session.send(json!({"create_request": {"key": b64("p"), "progress_notify": true}}));
    assert_eq!(session.next().await["created"], true);
    let progress = session.next().await;
    assert_eq!(progress["header"]["revision"], "2");
    assert!(progress.get("events").is_none(), "{progress}");
}

#[tokio::test]
async fn a_malformed_request_ends_the_stream_with_an_error() {
    let api = node();
    let mut session = Session::open(&api);
    session
        .requests
        .send(Ok(Bytes::from_static(b"{\"create_request\":{}} {bad")))
        .unwrap();
    assert_eq!(session.next().await["created"], true);
    let error = session.next().await;
    assert_eq!(error["code"], 2);
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("key must be a string"));
    let end = tokio::time::timeout(Duration::from_secs(5), session.lines.next()).await;
    assert!(end.unwrap().is_none(), "the stream ends after the error");
}
