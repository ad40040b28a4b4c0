//! The watch cache: every object under `/registry/`, kept current by ONE store watch, with a
//! window of recent events per resource.
//!
//! kube-apiserver keeps a cacher per resource so that N watchers cost one etcd watch and a
//! filter each, and lists at resourceVersion 0 never touch etcd. Here one dispatcher watches
//! the whole registry prefix and splits changes into per-resource shards; each store batch
//! advances every shard's revision, so a shard's revision is the store's revision as far as
//! registry writes go, and a list from the cache is as fresh as its revision says.
//!
//! A watcher keeps a position (the last revision it delivered) and reads the shard's events
//! after it whenever its shard gets new ones. A watcher that falls behind the shard's
//! window (or starts before it) gets 410 Expired and relists, as clients of kube do.
//!
//! Shards are added while the cache runs ([`WatchCache::add_shard`]: a CustomResourceDefinition
//! brings a resource). So that a new shard starts with what the store holds under its prefix,
//! the cache also keeps the objects no shard claims; adding a shard moves them into it, at the
//! revision every applied change has reached, under the same lock the follower applies with.
//!
//! Objects are kept as the store holds them ([`Cached`]: the stored bytes and their revision)
//! and decoded only when something reads them as values (a list, a selector, a table, the
//! authorizer). A watcher with no selector sends the stored bytes with `resourceVersion`
//! written in ([`with_resource_version`]): one validating scan and a copy instead of a decode
//! and an encode, made once per event for every watcher (see [`crate::collection`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use crate::storage::{prefix_end, Change, Storage, StoredValue, WatchBatch};

/// Events kept per resource for watchers that resume from a resourceVersion.
pub const EVENTS_PER_RESOURCE: usize = 10_000;

/// ADDED, MODIFIED or DELETED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// A new object.
    Added,
    /// A changed object.
    Modified,
    /// A deleted object (its last state, at the deleting revision).
    Deleted,
}

impl EventType {
    /// As the watch stream spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One stored version of an object: the stored bytes at a revision, decoded and encoded (with
/// `metadata.resourceVersion`) on first use and then shared by every reader.
#[derive(Debug)]
pub struct Cached {
    /// The stored bytes (shared with the object's delete event).
    bytes: Arc<[u8]>,
    /// The object's resourceVersion.
    revision: i64,
    decoded: OnceLock<Option<Arc<Value>>>,
    encoded: OnceLock<Option<Vec<u8>>>,
}

impl Cached {
    /// The stored bytes at `revision`; `None` when they cannot be a JSON object.
    fn new(bytes: Arc<[u8]>, revision: i64) -> Option<Cached> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        (first == Some(&b'{')).then(|| Cached {
            bytes,
            revision,
            decoded: OnceLock::new(),
            encoded: OnceLock::new(),
        })
    }

    /// The object, with its resourceVersion; `None` if the bytes are not a JSON object.
    pub fn value(&self) -> Option<Arc<Value>> {
        self.decoded
            .get_or_init(|| {
                let mut object: Value = serde_json::from_slice(&self.bytes).ok()?;
                if !object.is_object() {
                    return None;
                }
                set_resource_version(&mut object, self.revision);
                Some(Arc::new(object))
            })
            .clone()
    }

    /// The object as one line of JSON, with its resourceVersion; `None` if the bytes are not
    /// a JSON object.
    pub fn json(&self) -> Option<&[u8]> {
        self.encoded
            .get_or_init(|| match with_resource_version(&self.bytes, self.revision) {
                Some(json) => Some(json),
                // Not in the form the API server writes (whitespace, escaped keys, no
                // metadata): the long way.
                None => serde_json::to_vec(&*self.value()?).ok(),
            })
            .as_deref()
    }
}

/// One change to one object.
#[derive(Clone, Debug)]
pub struct CacheEvent {
    /// What happened.
    pub kind: EventType,
    /// The object's key.
    pub key: String,
    /// The object after the change (for a delete: its last state, resourceVersion = the delete).
    pub object: Arc<Cached>,
    /// The object before the change, if there was one.
    pub previous: Option<Arc<Cached>>,
    /// The revision of the change.
    pub revision: i64,
}

impl CacheEvent {
    /// `object` as JSON; the first watcher to ask makes it, the others share that. `None` if
    /// the stored bytes are not a JSON object.
    pub fn object_json(&self) -> Option<&[u8]> {
        self.object.json()
    }
}

#[derive(Default)]
struct ShardState {
    /// Current objects by key.
    objects: BTreeMap<String, Arc<Cached>>,
    /// Recent events, in revision order.
    events: VecDeque<Arc<CacheEvent>>,
    /// Every event after this revision is in `events`.
    oldest: i64,
    /// The store revision `objects` reflect.
    revision: i64,
}

/// What a watcher reads next.
pub enum Next {
    /// Events after its position (possibly none), and the revision they bring it to.
    Events(Vec<Arc<CacheEvent>>, i64),
    /// Its position fell out of the window.
    TooOld {
        /// The oldest position still served.
        oldest: i64,
    },
}

/// The cached objects of one resource.
pub struct Shard {
    state: RwLock<ShardState>,
    /// Moves when this shard gets events, so a resource's watchers wake for its own writes
    /// only, not for every write to the registry.
    changed: watch::Sender<i64>,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard {
            state: RwLock::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl Shard {
    /// The cached object at `key`, if any.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        let cached = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            state.objects.get(key).cloned()
        };
        cached?.value()
    }

    /// A receiver that changes whenever this shard gets events (or is reloaded).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }

    /// The objects under `prefix` (a namespace, or the whole resource), and the revision they
    /// are current at.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<Value>>, i64) {
        let (objects, revision) = self.list_cached(prefix);
        let objects = objects.iter().filter_map(|o| o.value()).collect();
        (objects, revision)
    }

    /// [`Shard::list`] as stored, decoded by whoever needs values.
    pub fn list_cached(&self, prefix: &str) -> (Vec<Arc<Cached>>, i64) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let end = String::from_utf8_lossy(&prefix_end(prefix.as_bytes())).into_owned();
        let objects = state
            .objects
            .range(prefix.to_owned()..end)
            .map(|(_, v)| Arc::clone(v))
            .collect();
        (objects, state.revision)
    }

    /// The revision this shard is current at.
    pub fn revision(&self) -> i64 {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .revision
    }

    /// The events after `position`, at most `max` of them.
    pub fn events_after(&self, position: i64, max: usize) -> Next {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if position < state.oldest {
            return Next::TooOld {
                oldest: state.oldest,
            };
        }
        let start = state.events.partition_point(|e| e.revision <= position);
        let events: Vec<Arc<CacheEvent>> =
            state.events.iter().skip(start).take(max).cloned().collect();
        let reached = if start + events.len() < state.events.len() {
            events.last().map_or(position, |e| e.revision)
        } else {
            state.revision.max(position)
        };
        Next::Events(events, reached)
    }

    fn reset(&self, objects: BTreeMap<String, Arc<Cached>>, revision: i64) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        *state = ShardState {
            objects,
            events: VecDeque::new(),
            oldest: revision,
            revision,
        };
        drop(state);
        self.changed.send_replace(revision);
    }

    fn apply(&self, key: String, object: Option<Arc<Cached>>, revision: i64) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let previous = match &object {
            Some(object) => state.objects.insert(key.clone(), Arc::clone(object)),
            None => state.objects.remove(&key),
        };
        let (kind, object) = match (object, &previous) {
            (Some(object), None) => (EventType::Added, object),
            (Some(object), Some(_)) => (EventType::Modified, object),
            (None, Some(previous)) => {
                // Its last state at the deleting revision: the same bytes, another version.
                let last = Cached {
                    bytes: Arc::clone(&previous.bytes),
                    revision,
                    decoded: OnceLock::new(),
                    encoded: OnceLock::new(),
                };
                (EventType::Deleted, Arc::new(last))
            }
            (None, None) => return,
        };
        let event = CacheEvent {
            kind,
            key,
            object,
            previous,
            revision,
        };
        if state.events.len() >= EVENTS_PER_RESOURCE {
            if let Some(dropped) = state.events.pop_front() {
                state.oldest = dropped.revision;
            }
        }
        state.events.push_back(Arc::new(event));
    }

    fn advance(&self, revision: i64) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.revision = state.revision.max(revision);
    }
}

/// Decodes a stored object, with `metadata.resourceVersion` set from its revision.
pub fn decode(stored: &StoredValue) -> Option<Value> {
    let mut object: Value = serde_json::from_slice(&stored.value).ok()?;
    if !object.is_object() {
        return None;
    }
    set_resource_version(&mut object, stored.mod_revision);
    Some(object)
}

/// `object` (stored JSON) with `metadata.resourceVersion` set to `revision`, written into the
/// bytes without decoding them: the member replaced, or inserted where a sorted map puts it
/// (so the API server's own writes come out exactly as encoding the decoded object would).
/// `None` when the bytes are not valid JSON, span lines, have no metadata object, or a key
/// on the way has escapes: the caller decodes instead.
pub fn with_resource_version(object: &[u8], revision: i64) -> Option<Vec<u8>> {
    if memchr_newline(object) {
        return None;
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(object).ok()?;
    let top = members(object, 0)?;
    let metadata = top.iter().find(|m| m.key == b"metadata")?;
    if object.get(metadata.value.0) != Some(&b'{') {
        return None;
    }
    let inner = members(object, metadata.value.0)?;
    let value = format!("\"{revision}\"");
    let mut out = Vec::with_capacity(object.len() + value.len() + 20);
    match inner
        .iter()
        .find(|m| m.key.as_slice() >= b"resourceVersion".as_slice())
    {
        Some(m) if m.key == b"resourceVersion" => {
            out.extend_from_slice(&object[..m.value.0]);
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(&object[m.value.1..]);
        }
        Some(m) => {
            out.extend_from_slice(&object[..m.start]);
            out.extend_from_slice(b"\"resourceVersion\":");
            out.extend_from_slice(value.as_bytes());
            out.push(b',');
            out.extend_from_slice(&object[m.start..]);
        }
        None => {
            // After the last member, before the closing brace.
            let close = metadata.value.1 - 1;
            out.extend_from_slice(&object[..close]);
            if !inner.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"resourceVersion\":");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(&object[close..]);
        }
    }
    Some(out)
}

fn memchr_newline(bytes: &[u8]) -> bool {
    bytes.iter().any(|b| *b == b'\n' || *b == b'\r')
}

/// One member of a JSON object: where it starts, its key (unescaped keys only) and the span
/// of its value.
struct Member {
    start: usize,
    key: Vec<u8>,
    value: (usize, usize),
}

/// The members of the object starting at `at` (valid JSON, checked by the caller); `None`
/// when a key has escapes.
fn members(json: &[u8], at: usize) -> Option<Vec<Member>> {
    let mut i = skip_whitespace(json, at);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_whitespace(json, i + 1);
    let mut found = Vec::new();
    if json.get(i) == Some(&b'}') {
        return Some(found);
    }
    loop {
        let start = i;
        let key_end = skip_string(json, i)?;
        let key = &json[i + 1..key_end - 1];
        if key.contains(&b'\\') {
            return None;
        }
        i = skip_whitespace(json, key_end);
        if json.get(i) != Some(&b':') {
            return None;
        }
        let value_start = skip_whitespace(json, i + 1);
        let value_end = skip_value(json, value_start)?;
        found.push(Member {
            start,
            key: key.to_vec(),
            value: (value_start, value_end),
        });
        i = skip_whitespace(json, value_end);
        match json.get(i)? {
            b',' => i = skip_whitespace(json, i + 1),
            b'}' => return Some(found),
            _ => return None,
        }
    }
}

fn skip_whitespace(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The end of the string starting at `i` (just past its closing quote).
fn skip_string(json: &[u8], mut i: usize) -> Option<usize> {
    if json.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        match json.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end of the value starting at `i`.
fn skip_value(json: &[u8], mut i: usize) -> Option<usize> {
    match json.get(i)? {
        b'"' => skip_string(json, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match json.get(i)? {
                    b'"' => {
                        i = skip_string(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while json
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                i += 1;
            }
            Some(i)
        }
    }
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(object: &mut Value, revision: i64) {
    if let Some(map) = object.as_object_mut() {
        let metadata = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
        }
    }
}

/// The cache of the whole registry: a shard per resource prefix, fed by one store watch.
pub struct WatchCache {
    /// The shards and the objects none claims.
    routing: RwLock<Routing>,
    /// The revision every shard has reached; watchers wake on its changes.
    published: watch::Sender<i64>,
}

/// Where a key's changes go.
#[derive(Default)]
struct Routing {
    /// Shards by their key prefix (`/registry/pods/`).
    shards: HashMap<String, Arc<Shard>>,
    /// Objects under `/registry/` no shard claims (yet), by key.
    unclaimed: BTreeMap<String, Arc<Cached>>,
    /// The revision of the last change applied.
    revision: i64,
}

impl Routing {
    fn shard_of(&self, key: &str) -> Option<(&Arc<Shard>, &str)> {
        // Resource prefixes never nest (the registry test checks, and a custom resource's
        // `/registry/<group>/<plural>/` has a dot where no built-in has one), so the first
        // prefix that matches is the one; names may themselves hold a '/'.
        self.shards
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix.as_str()))
            .map(|(prefix, shard)| (shard, prefix.as_str()))
    }
}

impl WatchCache {
    /// A cache with one shard per prefix. Nothing is loaded until [`WatchCache::run`].
    pub fn new(prefixes: impl IntoIterator<Item = String>) -> Arc<WatchCache> {
        let shards = prefixes
            .into_iter()
            .map(|p| (p, Arc::new(Shard::default())))
            .collect();
        Arc::new(WatchCache {
            routing: RwLock::new(Routing {
                shards,
                ..Routing::default()
            }),
            published: watch::channel(0).0,
        })
    }

    /// The shard of a resource prefix.
    pub fn shard(&self, prefix: &str) -> Option<Arc<Shard>> {
        self.routing().shards.get(prefix).cloned()
    }

    /// Adds a shard for `prefix` (nothing if it has one), holding the objects already stored
    /// under it as of the last change the cache applied.
    pub fn add_shard(&self, prefix: &str) -> Arc<Shard> {
        let mut routing = self.routing.write().unwrap_or_else(|e| e.into_inner());
        if let Some(shard) = routing.shards.get(prefix) {
            return Arc::clone(shard);
        }
        let end = String::from_utf8_lossy(&prefix_end(prefix.as_bytes())).into_owned();
        let keys: Vec<String> = routing
            .unclaimed
            .range(prefix.to_owned()..end)
            .map(|(k, _)| k.clone())
            .collect();
        let objects = keys
            .into_iter()
            .filter_map(|k| routing.unclaimed.remove(&k).map(|v| (k, v)))
            .collect();
        let shard = Arc::new(Shard::default());
        shard.reset(objects, routing.revision);
        routing.shards.insert(prefix.to_owned(), Arc::clone(&shard));
        shard
    }

    /// How many objects each shard holds now, by its prefix (`apiserver_storage_objects`).
    pub fn object_counts(&self) -> Vec<(String, usize)> {
        self.routing()
            .shards
            .iter()
            .map(|(prefix, shard)| {
                let state = shard.state.read().unwrap_or_else(|e| e.into_inner());
                (prefix.clone(), state.objects.len())
            })
            .collect()
    }

    fn routing(&self) -> std::sync::RwLockReadGuard<'_, Routing> {
        self.routing.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver that changes whenever the cache moves on.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.published.subscribe()
    }

    /// Waits until the cache has loaded and reached `revision` (0: merely loaded), or until
    /// `timeout`. Returns whether it did.
    pub async fn wait_for(&self, revision: i64, timeout: Duration) -> bool {
        let mut published = self.subscribe();
        let target = revision.max(1);
        tokio::time::timeout(timeout, published.wait_for(|r| *r >= target))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Loads the registry and follows it, forever: the server aborts this task when it stops.
    /// Relists when the watch ends or is compacted; watchers from before a relist get 410.
    pub async fn run(self: Arc<Self>, storage: Arc<dyn Storage>) {
        let start = b"/registry/".to_vec();
        let end = prefix_end(&start);
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.load_and_follow(&*storage, &start, &end).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(why) => {
                    tracing::warn!(%why, "watch cache: reloading");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn load_and_follow(
        &self,
        storage: &dyn Storage,
        start: &[u8],
        end: &[u8],
    ) -> Result<(), String> {
        let page = storage
            .range(start.to_vec(), end.to_vec(), 0, 0)
            .await
            .map_err(|e| e.to_string())?;
        let revision = page.revision;
        {
            let mut routing = self.routing.write().unwrap_or_else(|e| e.into_inner());
            let mut loaded: HashMap<String, BTreeMap<String, Arc<Cached>>> = HashMap::new();
            let mut unclaimed = BTreeMap::new();
            for stored in page.items {
                let key = String::from_utf8_lossy(&stored.key).into_owned();
                let Some(object) = Cached::new(stored.value.into(), stored.mod_revision) else {
                    continue;
                };
                match routing.shard_of(&key) {
                    Some((_, prefix)) => {
                        let prefix = prefix.to_owned();
                        loaded
                            .entry(prefix)
                            .or_default()
                            .insert(key, Arc::new(object));
                    }
                    None => {
                        unclaimed.insert(key, Arc::new(object));
                    }
                }
            }
            for (prefix, shard) in &routing.shards {
                shard.reset(loaded.remove(prefix.as_str()).unwrap_or_default(), revision);
            }
            routing.unclaimed = unclaimed;
            routing.revision = revision;
        }
        self.published.send_replace(revision);
        let mut changes = storage
            .watch(start.to_vec(), end.to_vec(), revision + 1)
            .await
            .map_err(|e| e.to_string())?;
        while let Some(batch) = changes.next().await {
            match batch {
                WatchBatch::Changes { revision, changes } => {
                    let mut routing = self.routing.write().unwrap_or_else(|e| e.into_inner());
                    let mut touched: Vec<Arc<Shard>> = Vec::new();
                    for change in changes {
                        if let Some(shard) = Self::apply(&mut routing, change) {
                            if !touched.iter().any(|t| Arc::ptr_eq(t, &shard)) {
                                touched.push(shard);
                            }
                        }
                    }
                    for shard in routing.shards.values() {
                        shard.advance(revision);
                    }
                    routing.revision = revision;
                    drop(routing);
                    for shard in touched {
                        shard.changed.send_replace(revision);
                    }
                    self.published.send_replace(revision);
                }
                WatchBatch::Compacted { compact_revision } => {
                    return Err(format!("watch compacted at {compact_revision}"));
                }
            }
        }
        Err("store watch ended".into())
    }

    /// Applies one change to its shard (or to the unclaimed objects); returns the shard, if
    /// the key belongs to one.
    fn apply(routing: &mut Routing, change: Change) -> Option<Arc<Shard>> {
        let revision = change.revision();
        let (key, object) = match change {
            Change::Put { value, .. } => {
                let key = String::from_utf8_lossy(&value.key).into_owned();
                match Cached::new(value.value.into(), value.mod_revision) {
                    Some(object) => (key, Some(Arc::new(object))),
                    None => {
                        tracing::warn!(%key, "watch cache: not a JSON object; treated as absent");
                        (key, None)
                    }
                }
            }
            Change::Delete { key, .. } => (String::from_utf8_lossy(&key).into_owned(), None),
        };
        let Some((shard, _)) = routing.shard_of(&key) else {
            match object {
                Some(object) => routing.unclaimed.insert(key, object),
                None => routing.unclaimed.remove(&key),
            };
            return None;
        };
        let shard = Arc::clone(shard);
        shard.apply(key, object, revision);
        Some(shard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(name: &str, rv: i64) -> Arc<Cached> {
        let bytes = serde_json::to_vec(&json!({"metadata": {"name": name}})).unwrap();
        Arc::new(Cached::new(bytes.into(), rv).unwrap())
    }

    #[test]
    fn a_shard_turns_writes_into_events() {
        let shard = Shard::default();
        shard.reset(BTreeMap::new(), 10);
        shard.apply("/registry/pods/a/x".into(), Some(object("x", 11)), 11);
        shard.apply("/registry/pods/a/x".into(), Some(object("x", 12)), 12);
        shard.apply("/registry/pods/a/x".into(), None, 13);
        shard.advance(14);
        let Next::Events(events, reached) = shard.events_after(10, 100) else {
            panic!("too old")
        };
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventType::Added, EventType::Modified, EventType::Deleted]
        );
        let deleted = events[2].object.value().unwrap();
        assert_eq!(deleted["metadata"]["resourceVersion"], "13");
        let sent: Value = serde_json::from_slice(events[2].object_json().unwrap()).unwrap();
        assert_eq!(sent, *deleted);
        assert_eq!(reached, 14);
        let Next::Events(events, _) = shard.events_after(12, 100) else {
            panic!("too old")
        };
        assert_eq!(events.len(), 1);
        assert!(matches!(
            shard.events_after(9, 100),
            Next::TooOld { oldest: 10 }
        ));
    }

    /// The slow way: decode, set, encode.
    fn decoded_and_encoded(object: &Value, revision: i64) -> Vec<u8> {
        let mut object = object.clone();
        set_resource_version(&mut object, revision);
        serde_json::to_vec(&object).unwrap()
    }

    #[test]
    fn the_resource_version_is_written_into_stored_bytes_as_encoding_would() {
        let objects = [
            json!({"kind": "Pod", "metadata": {"name": "a", "namespace": "n"}, "spec": {}}),
            json!({"metadata": {"name": "a", "resourceVersion": "3", "uid": "u"}}),
            json!({"metadata": {"annotations": {"resourceVersion": "x"}, "uid": "u"}}),
            json!({"metadata": {}, "z": [1, {"metadata": {"a": "}{\""}}]}),
            json!({"metadata": {"name": "a\"b\\", "selfLink": "/x"}, "status": null}),
            json!({"a": "metadata", "metadata": {"zz": 1.5e3, "labels": {"k": "v"}}}),
        ];
        for object in objects {
            let stored = serde_json::to_vec(&object).unwrap();
            assert_eq!(
                with_resource_version(&stored, 42).unwrap(),
                decoded_and_encoded(&object, 42),
                "{object}"
            );
        }
    }

    #[test]
    fn bytes_not_in_the_api_servers_form_are_decoded_instead() {
        let pretty = b"{\n  \"metadata\": {\"name\": \"a\"}\n}";
        let escaped_key = br#"{"met\u0061data":{"name":"a"}}"#;
        let spaced = br#" { "metadata" : { "name" : "a" } } "#;
        for (bytes, splices) in [
            (&pretty[..], false),
            (&escaped_key[..], false),
            (br#"{"spec":{}}"#, false),
            (br#"{"metadata":[]}"#, false),
            (br#"{"metadata":{"name":"a"},"spec":tru}"#, false),
            (br#"{"metadata":{"name":"a""#, false),
            (&spaced[..], true),
        ] {
            assert_eq!(with_resource_version(bytes, 7).is_some(), splices);
            // Either way a valid object is sent as one line with its resourceVersion.
            let cached = Cached::new(bytes.to_vec().into(), 7).unwrap();
            if let Some(value) = cached.value() {
                let line = cached.json().unwrap();
                assert!(!line.contains(&b'\n'));
                let sent: Value = serde_json::from_slice(line).unwrap();
                assert_eq!(sent, *value);
                if sent["metadata"].is_object() {
                    assert_eq!(sent["metadata"]["resourceVersion"], "7");
                }
            } else {
                assert!(cached.json().is_none());
            }
        }
        assert!(Cached::new(b"[1]".to_vec().into(), 1).is_none());
    }

    #[test]
    fn the_window_forgets_the_oldest_events() {
        let shard = Shard::default();
        shard.reset(BTreeMap::new(), 0);
        for rv in 1..=(EVENTS_PER_RESOURCE as i64 + 5) {
            shard.apply(format!("/registry/pods/a/{rv}"), Some(object("x", rv)), rv);
        }
        assert!(matches!(
            shard.events_after(2, 10),
            Next::TooOld { oldest: 5 }
        ));
        let Next::Events(events, reached) = shard.events_after(5, 10) else {
            panic!("too old")
        };
        assert_eq!(events.len(), 10);
        assert_eq!(reached, 15);
    }
    #[test]
    fn a_shard_added_later_takes_the_objects_stored_under_its_prefix() {
        let cache = WatchCache::new(["/registry/pods/".to_owned()]);
        {
            let mut routing = cache.routing.write().unwrap();
            let put = |key: &str, rv: i64| Change::Put {
                value: StoredValue {
                    key: key.as_bytes().to_vec(),
                    value: br#"{"metadata":{"name":"w"}}"#.to_vec(),
                    mod_revision: rv,
                },
                previous: None,
            };
            WatchCache::apply(&mut routing, put("/registry/example.com/widgets/d/w", 5));
            WatchCache::apply(&mut routing, put("/registry/example.com/gadgets/d/g", 6));
            routing.revision = 6;
        }
        let widgets = cache.add_shard("/registry/example.com/widgets/");
        let (objects, at) = widgets.list("/registry/example.com/widgets/");
        assert_eq!((objects.len(), at), (1, 6));
        assert_eq!(objects[0]["metadata"]["resourceVersion"], "5");
        assert!(Arc::ptr_eq(
            &widgets,
            &cache.add_shard("/registry/example.com/widgets/")
        ));
        // Later changes under the prefix go to the new shard as events.
        let mut routing = cache.routing.write().unwrap();
        let deleted = Change::Delete {
            key: b"/registry/example.com/widgets/d/w".to_vec(),
            revision: 7,
            previous: None,
        };
        assert!(WatchCache::apply(&mut routing, deleted).is_some());
        drop(routing);
        let Next::Events(events, _) = widgets.events_after(6, 10) else {
            panic!("too old")
        };
        assert_eq!(events[0].kind, EventType::Deleted);
    }
}
