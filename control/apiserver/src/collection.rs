//! The verbs on a collection: list (from the watch cache or the store, paged), watch (from
//! the watch cache) and deletecollection.
//!
//! Which source a list reads, as kube-apiserver decides it: `resourceVersion=0` is any recent
//! state, so the cache; unset is the latest state, so a linearizable store read (paged with
//! `limit`/`continue`, the token holding the list's revision so every page reads the same
//! snapshot); `N` with `resourceVersionMatch=Exact` is the store at N; `N` otherwise
//! (NotOlderThan) is the cache once it has reached N.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::{ApiError, Result};
use crate::registry::Resource;
use crate::request::Query;
use crate::rest::{Api, Call, Reply};
use crate::selector::{self, FieldSelector, LabelSelector};
use crate::storage::prefix_end;
use crate::table::IncludeObject;
use crate::watch_cache::{decode, CacheEvent, Cached, EventType, Next, Shard};

/// How long a list at resourceVersion N waits for the cache to reach N before reading the
/// store at N instead (which is as good: NotOlderThan N). Short, because the cache's revision
/// only moves with registry writes: an N from a write elsewhere in the keyspace is never
/// reached, and waiting kube's 3 s for it would only delay the answer.
const CACHE_CATCH_UP: Duration = Duration::from_millis(100);

/// How long a watch waits for the cache's first load.
const CACHE_LOAD: Duration = Duration::from_secs(3);

/// Events a watcher takes from its shard at a time.
const WATCH_BATCH: usize = 500;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);

/// The selectors of a list or watch.
pub struct Filter {
    kind: &'static str,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// From `labelSelector` and `fieldSelector`; 400 for a malformed one or an unsupported field.
    pub fn from_query(resource: &Resource, query: &Query) -> Result<Filter> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let supported = selector::supported_fields_for(&resource.api_version(), resource.kind);
        for field in fields.fields() {
            if !supported.contains(&field) {
                return Err(ApiError::bad_request(
                    selector::unsupported_field_message_for(resource.kind, field),
                ));
            }
        }
        Ok(Filter {
            kind: resource.kind,
            labels,
            fields,
        })
    }

    /// Whether `object` passes.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels
            .matches(object["metadata"]["labels"].as_object())
            && self
                .fields
                .matches(|f| selector::field_value(self.kind, object, f))
    }

    fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

/// A continue token: the list's revision and the key to resume after, as kube encodes it.
fn encode_continue(revision: i64, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String)> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token))
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let revision = value["rv"].as_i64().filter(|r| *r > 0).ok_or_else(bad)?;
    let start = value["start"].as_str().ok_or_else(bad)?.to_owned();
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((revision, start))
}

/// Whether the client asked for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn parse_resource_version(query: &Query) -> Result<Option<i64>> {
    match query.non_empty("resourceVersion") {
        None => Ok(None),
        Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resource version: {text:?} is not a valid resource version"
            ))
        }),
    }
}

impl Api {
    fn shard(&self, resource: &Resource) -> Result<Arc<Shard>> {
        self.cache
            .shard(&resource.prefix())
            .ok_or_else(|| ApiError::internal("resource has no watch cache"))
    }

    /// LIST of a collection.
    pub async fn list(&self, call: &Call<'_>, accept: &str) -> Result<Reply> {
        let resource = call.resource;
        let query = call.query;
        let filter = Filter::from_query(resource, query)?;
        let limit = query
            .integer("limit")
            .map_err(ApiError::bad_request)?
            .unwrap_or(0)
            .max(0);
        let rv = parse_resource_version(query)?;
        let exact = query.get("resourceVersionMatch") == Some("Exact");
        let prefix = resource.namespace_prefix(call.namespace);
        let cached = match (query.non_empty("continue"), rv) {
            (None, Some(n)) if !exact => self.list_cache(resource, &prefix, n, &filter).await?,
            _ => None,
        };
        let (items, revision, next) = match cached {
            Some((items, revision)) => (items, revision, None),
            None => {
                let (start, revision) = match query.non_empty("continue") {
                    Some(token) => {
                        let (revision, start) = decode_continue(token)?;
                        (format!("{}{start}", resource.prefix()), revision)
                    }
                    None => (prefix.clone(), rv.unwrap_or(0)),
                };
                let (items, revision, next) = self
                    .list_store(&prefix, &start, revision, limit, &filter, resource)
                    .await?;
                (items.into_iter().map(Arc::new).collect(), revision, next)
            }
        };
        let revision = revision.to_string();
        let items = shown_at_version(resource, items);
        if wants_table(accept) {
            let include =
                IncludeObject::parse(query.get("includeObject")).map_err(ApiError::bad_request)?;
            let table = crate::crd::printer::to_table(
                resource,
                &items,
                include,
                now_unix(),
                &revision,
                next.as_deref(),
                true,
            );
            return Ok(Reply::Object(200, table));
        }
        let mut metadata = json!({"resourceVersion": revision});
        if let Some(next) = next {
            metadata["continue"] = json!(next);
        }
        let list_kind = match &resource.custom {
            Some(custom) => custom.list_kind.clone(),
            None => format!("{}List", resource.kind),
        };
        let head = json!({
            "kind": list_kind,
            "apiVersion": resource.api_version(),
            "metadata": metadata,
        });
        Ok(Reply::Json(200, list_body(&head, &items)?))
    }

    /// A list from the cache once it has reached `revision`; `None` when it does not in time.
    async fn list_cache(
        &self,
        resource: &Resource,
        prefix: &str,
        revision: i64,
        filter: &Filter,
    ) -> Result<Option<(Vec<Arc<Value>>, i64)>> {
        if !self.cache.wait_for(revision, CACHE_CATCH_UP).await {
            return Ok(None);
        }
        let (mut objects, at) = self.shard(resource)?.list(prefix);
        // The cache's own objects, shared, not copied: a list of 10,000 pods is written out
        // from them directly.
        objects.retain(|o| filter.matches(o));
        Ok(Some((objects, at)))
    }

    /// A page from the store: up to `limit` matching objects from `start`, read at `revision`
    /// (0: now, linearizably), with a continue token when more remain.
    async fn list_store(
        &self,
        prefix: &str,
        start: &str,
        revision: i64,
        limit: i64,
        filter: &Filter,
        resource: &Resource,
    ) -> Result<(Vec<Value>, i64, Option<String>)> {
        let end = prefix_end(prefix.as_bytes());
        let mut from = start.as_bytes().to_vec();
        let mut at = revision;
        let mut items = Vec::new();
        loop {
            let want = if limit > 0 {
                // Fetch a little more than needed when filtering, so a selective filter does
                // not turn into one round trip per object.
                let missing = limit - items.len() as i64;
                if filter.is_everything() {
                    missing
                } else {
                    missing.max(64)
                }
            } else {
                0
            };
            let page = self
                .storage
                .range(from.clone(), end.clone(), at, want)
                .await?;
            at = page.revision;
            let mut last_key = None;
            for (index, stored) in page.items.iter().enumerate() {
                last_key = Some(stored.key.clone());
                let Some(object) = decode(stored).filter(|o| filter.matches(o)) else {
                    continue;
                };
                items.push(object);
                if limit > 0 && items.len() as i64 == limit {
                    let more = page.more || index + 1 < page.items.len();
                    let next = more.then(|| {
                        let key = String::from_utf8_lossy(&stored.key).into_owned();
                        let rest = key.strip_prefix(&resource.prefix()).unwrap_or(&key);
                        encode_continue(at, &format!("{rest}\u{0}"))
                    });
                    return Ok((items, at, next));
                }
            }
            match (page.more, last_key) {
                (true, Some(mut key)) => {
                    key.push(0);
                    from = key;
                }
                _ => return Ok((items, at, None)),
            }
        }
    }

    /// WATCH of a collection: a stream of newline-delimited events.
    pub async fn watch(&self, call: &Call<'_>, accept: &str) -> Result<Reply> {
        let resource = call.resource.clone();
        let query = call.query;
        let filter = Filter::from_query(&resource, query)?;
        let rv = parse_resource_version(query)?;
        let bookmarks = query.flag("allowWatchBookmarks");
        let initial_events_end = query.flag("sendInitialEvents");
        let timeout = match query
            .integer("timeoutSeconds")
            .map_err(ApiError::bad_request)?
        {
            Some(seconds) if seconds > 0 => Duration::from_secs(seconds as u64),
            // kube-apiserver ends a watch after its minimum request timeout, 30 to 60 minutes.
            _ => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
        };
        let table = wants_table(accept).then(|| IncludeObject::parse(query.get("includeObject")));
        let table = match table {
            Some(Err(e)) => return Err(ApiError::bad_request(e)),
            Some(Ok(include)) => Some(include),
            None => None,
        };
        if !self.cache.wait_for(0, CACHE_LOAD).await {
            return Err(ApiError::timeout("the watch cache is not ready yet"));
        }
        let shard = self.shard(&resource)?;
        let prefix = resource.namespace_prefix(call.namespace);
        // A watch from "" or "0" starts with the current state as ADDED events.
        let (initial, position) = match rv {
            None | Some(0) => {
                let (mut objects, at) = shard.list_cached(&prefix);
                if !filter.is_everything() {
                    objects.retain(|o| o.value().is_some_and(|o| filter.matches(&o)));
                }
                (objects, at)
            }
            Some(n) => (Vec::new(), n),
        };
        let (sender, receiver) = mpsc::channel::<Bytes>(64);
        let events_sent =
            self.metrics
                .watch_counter(resource.group, resource.version, resource.kind);
        let watcher = Watcher {
            events_sent,
            resource,
            filter,
            prefix,
            table,
            published: shard.subscribe(),
            shard,
            sender,
            position,
            first_row: true,
            bookmarks,
        };
        tokio::spawn(watcher.run(initial, initial_events_end, timeout));
        let content_type = if table.is_some() {
            "application/json;as=Table;v=v1;g=meta.k8s.io"
        } else {
            "application/json"
        };
        Ok(Reply::Stream(receiver, content_type))
    }

    /// DELETE of a collection: every object matching the selectors, each as a delete would.
    pub async fn delete_collection(&self, call: &Call<'_>) -> Result<Reply> {
        let resource = call.resource;
        let filter = Filter::from_query(resource, call.query)?;
        let prefix = resource.namespace_prefix(call.namespace);
        let (items, _, _) = self
            .list_store(&prefix, &prefix, 0, 0, &filter, resource)
            .await?;
        let mut deleted = Vec::new();
        let no_query = Query::default();
        for item in items {
            let name = item["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let namespace = item["metadata"]["namespace"].as_str().map(str::to_owned);
            let one = Call {
                resource,
                namespace: namespace.as_deref(),
                name: &name,
                query: if call.query.get("dryRun").is_some() {
                    call.query
                } else {
                    &no_query
                },
                body: call.body,
                content_type: call.content_type,
                warnings: call.warnings,
                user_agent: call.user_agent,
            };
            match self.delete(&one).await {
                Ok(_) => deleted.push(item),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Reply::Object(
            200,
            json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(),
                "metadata": {}, "items": deleted}),
        ))
    }
}

/// Custom objects as the version asked for shows them (stored at the storage version); others
/// as they are, still shared with the cache.
fn shown_at_version(resource: &Resource, items: Vec<Arc<Value>>) -> Vec<Arc<Value>> {
    if resource.custom.is_none() {
        return items;
    }
    let api_version = resource.api_version();
    items
        .into_iter()
        .map(|item| {
            if item["apiVersion"] == api_version.as_str() {
                item
            } else {
                let mut shown = (*item).clone();
                crate::crd::objects::to_version(resource, &mut shown);
                Arc::new(shown)
            }
        })
        .collect()
}

/// A list's JSON: `head`'s fields, then `items`, each written straight from its object.
fn list_body(head: &Value, items: &[Arc<Value>]) -> Result<Vec<u8>> {
    let mut body = serde_json::to_vec(head).map_err(ApiError::internal)?;
    // `head` is an object: reopen it to add the items.
    body.pop();
    body.extend_from_slice(br#","items":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, &**item).map_err(ApiError::internal)?;
    }
    body.extend_from_slice(b"]}");
    Ok(body)
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The watch line `{"object":OBJECT,"type":KIND}` (as `Watcher::send_raw` writes it, keys
/// in order) around an object already encoded.
fn frame_encoded(kind: &str, object: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(object.len() + kind.len() + 24);
    line.extend_from_slice(b"{\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b",\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\"}\n");
    line
}

/// One watch stream's state: its position in its shard and how it writes events.
struct Watcher {
    events_sent: crate::metrics::WatchCounter,
    resource: Resource,
    filter: Filter,
    prefix: String,
    table: Option<IncludeObject>,
    shard: Arc<Shard>,
    published: tokio::sync::watch::Receiver<i64>,
    sender: mpsc::Sender<Bytes>,
    position: i64,
    first_row: bool,
    bookmarks: bool,
}

impl Watcher {
    async fn run(mut self, initial: Vec<Arc<Cached>>, initial_events_end: bool, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        for object in initial {
            if !self.send_cached("ADDED", &object).await {
                return;
            }
        }
        if initial_events_end {
            let mut bookmark = self.bookmark();
            bookmark["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            if !self.send("BOOKMARK", bookmark).await {
                return;
            }
        }
        let mut bookmark_timer = tokio::time::interval(BOOKMARK_EVERY);
        bookmark_timer.tick().await;
        loop {
            match self.shard.events_after(self.position, WATCH_BATCH) {
                Next::TooOld { oldest } => {
                    let status = ApiError::expired(format!(
                        "too old resource version: {} ({oldest})",
                        self.position
                    ))
                    .status();
                    let _ = self.send_raw("ERROR", status).await;
                    return;
                }
                Next::Events(events, reached) => {
                    let caught_up = events.len() < WATCH_BATCH;
                    for event in events {
                        if !self.deliver(&event).await {
                            return;
                        }
                    }
                    self.position = reached;
                    if !caught_up {
                        continue;
                    }
                }
            }
            tokio::select! {
                changed = self.published.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = bookmark_timer.tick(), if self.bookmarks => {
                    let bookmark = self.bookmark();
                    if !self.send_raw("BOOKMARK", bookmark).await {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = self.sender.closed() => return,
            }
        }
    }

    fn bookmark(&self) -> Value {
        json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(),
            "metadata": {"resourceVersion": self.position.to_string()}})
    }

    /// Sends one cache event as the filter sees it: an object that starts matching is ADDED,
    /// one that stops matching is DELETED. Objects are decoded only for a selector.
    async fn deliver(&mut self, event: &CacheEvent) -> bool {
        if !event.key.starts_with(&self.prefix) {
            return true;
        }
        let (before, now) = if self.filter.is_everything() {
            (event.previous.is_some(), event.kind != EventType::Deleted)
        } else {
            let matches = |o: &Cached| o.value().is_some_and(|o| self.filter.matches(&o));
            (
                event.previous.as_deref().is_some_and(matches),
                matches(&event.object),
            )
        };
        let kind = match (event.kind, before, now) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            (EventType::Deleted, true, _) => "DELETED",
            _ => return true,
        };
        self.send_cached(kind, &event.object).await
    }

    /// Sends `object`: as stored (one encoding shared by every watcher) unless a table or a
    /// custom resource's version asks for changes. An object that is not JSON is skipped.
    async fn send_cached(&mut self, kind: &str, object: &Cached) -> bool {
        if self.table.is_none() && self.resource.custom.is_none() {
            return match object.json() {
                Some(json) => self.send_encoded(kind, json).await,
                None => true,
            };
        }
        match object.value() {
            Some(value) => self.send(kind, (*value).clone()).await,
            None => true,
        }
    }

    async fn send_encoded(&self, kind: &str, object: &[u8]) -> bool {
        self.events_sent.sent();
        let line = frame_encoded(kind, object);
        self.sender.send(Bytes::from(line)).await.is_ok()
    }

    async fn send(&mut self, kind: &str, mut object: Value) -> bool {
        crate::crd::objects::to_version(&self.resource, &mut object);
        let object = match self.table {
            Some(include) => {
                let with_definitions = std::mem::take(&mut self.first_row);
                crate::crd::printer::to_table(
                    &self.resource,
                    &[object],
                    include,
                    now_unix(),
                    "",
                    None,
                    with_definitions,
                )
            }
            None => object,
        };
        self.send_raw(kind, object).await
    }

    async fn send_raw(&self, kind: &str, object: Value) -> bool {
        if kind != "BOOKMARK" {
            self.events_sent.sent();
        }
        let mut line = json!({"type": kind, "object": object}).to_string();
        line.push('\n');
        self.sender.send(Bytes::from(line)).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_junk() {
        let token = encode_continue(42, "default/web\u{0}");
        assert_eq!(
            decode_continue(&token).unwrap(),
            (42, "default/web\u{0}".into())
        );
        assert_eq!(decode_continue("not base64!").unwrap_err().code, 400);
        let escape = encode_continue(42, "../secrets/x");
        assert_eq!(decode_continue(&escape).unwrap_err().code, 400);
    }

    #[test]
    fn list_bodies_are_json_with_their_items() {
        let head =
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}});
        let items = vec![
            Arc::new(json!({"metadata": {"name": "a"}})),
            Arc::new(json!({"metadata": {"name": "b"}})),
        ];
        let body: Value = serde_json::from_slice(&list_body(&head, &items).unwrap()).unwrap();
        assert_eq!(body["items"][1]["metadata"]["name"], "b");
        assert_eq!(body["metadata"]["resourceVersion"], "7");
        let empty: Value = serde_json::from_slice(&list_body(&head, &[]).unwrap()).unwrap();
        assert_eq!(empty["items"], json!([]));
    }

    #[test]
    fn shared_encodings_frame_events_as_send_raw_does() {
        let object = json!({"kind": "Pod", "metadata": {"name": "a\"b"}, "spec": {"x": [1, 2]}});
        let encoded = serde_json::to_vec(&object).unwrap();
        for kind in ["ADDED", "MODIFIED", "DELETED"] {
            let expected = format!("{}\n", json!({"type": kind, "object": object.clone()}));
            let line = frame_encoded(kind, &encoded);
            assert_eq!(String::from_utf8(line).unwrap(), expected);
        }
    }

    #[test]
    fn tables_are_asked_for_first() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
