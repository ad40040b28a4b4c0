//! Watches: a watcher starting at any retained revision replays history, then follows live
//! writes, with no gap and no duplicate.
//!
//! Watchers pull. The store only publishes its current revision (a `tokio::sync::watch`
//! channel, so publishing never blocks and never queues); each watcher remembers the next
//! revision it owes its client and, when woken, reads the events from there up to the current
//! revision in bounded batches: from a shared in-memory ring of recent revisions when it still
//! holds them, else from the event log on disk. A slow watcher therefore costs nothing until it
//! is polled, and there is no per-watcher queue that could grow.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::event_log::{self, read_record};
use crate::index::{self, KeyRange, Record, KIND_PUT};
use crate::keyspace::Inner;
use crate::kv::{Event, EventType, KeyValue};
use crate::revision::Revision;

/// At most about this many events are read per update (a revision is never split).
const MAX_EVENTS_PER_UPDATE: usize = 1000;

/// What to watch (the store's part of etcd's `WatchCreateRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRequest {
    /// First key; same range conventions as a range request.
    pub key: Vec<u8>,
    /// End of the range, exclusive.
    pub range_end: Vec<u8>,
    /// First revision to deliver; 0 or less means "from the next write".
    pub start_revision: i64,
    /// Attach the previous key-value to each event.
    pub prev_kv: bool,
    /// Drop put events (etcd filter NOPUT).
    pub no_put: bool,
    /// Drop delete events (etcd filter NODELETE).
    pub no_delete: bool,
}

/// What a watcher yields next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchUpdate {
    /// Events of one or more consecutive revisions, in revision order; `revision` is the
    /// highest revision this update covers (it may be past the last event's revision).
    Events {
        /// Highest revision covered.
        revision: i64,
        /// The events, possibly empty after filtering is never sent: updates carry >= 1 event.
        events: Vec<Event>,
    },
    /// The watcher's next revision was compacted away; the watch is over.
    Compacted {
        /// The store's compacted revision.
        compact_revision: i64,
    },
}

/// The events of one revision, with every `prev_kv` filled, shared by all watchers.
pub(crate) struct CachedRevision {
    revision: i64,
    events: Vec<Event>,
}

/// The ring of the most recent revisions' events.
pub(crate) struct WatchCache {
    capacity: usize,
    revisions: VecDeque<Arc<CachedRevision>>,
}

impl WatchCache {
    pub(crate) fn new(capacity: usize) -> WatchCache {
        WatchCache {
            capacity,
            revisions: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, revision: i64, events: Vec<Event>) {
        if self.capacity == 0 {
            return;
        }
        // The ring must stay contiguous to answer "everything from revision r" on its own.
        if self
            .revisions
            .back()
            .is_some_and(|last| last.revision + 1 != revision)
        {
            self.revisions.clear();
        }
        while self.revisions.len() >= self.capacity {
            self.revisions.pop_front();
        }
        self.revisions
            .push_back(Arc::new(CachedRevision { revision, events }));
    }

    pub(crate) fn clear(&mut self) {
        self.revisions.clear();
    }

    /// The cached revisions from `from` on, if the ring reaches back that far.
    fn from(&self, from: i64, up_to: i64) -> Option<Vec<Arc<CachedRevision>>> {
        let first = self.revisions.front()?.revision;
        if from < first {
            return None;
        }
        let skip = usize::try_from(from - first).ok()?;
        let mut out = Vec::new();
        let mut events = 0;
        for cached in self.revisions.iter().skip(skip) {
            if cached.revision > up_to || (events >= MAX_EVENTS_PER_UPDATE && !out.is_empty()) {
                break;
            }
            events += cached.events.len();
            out.push(Arc::clone(cached));
        }
        Some(out)
    }
}

/// A running watch. Dropping it cancels it.
pub struct Watcher {
    store: Weak<Inner>,
    published: tokio::sync::watch::Receiver<i64>,
    range: KeyRange,
    request: WatchRequest,
    next_revision: i64,
    finished: bool,
}

impl Watcher {
    pub(crate) fn new(inner: &Arc<Inner>, request: WatchRequest) -> Watcher {
        // Subscribe before reading the revision, so no write can fall between the two.
        let published = inner.published.subscribe();
        let next_revision = if request.start_revision <= 0 {
            inner.current_revision() + 1
        } else {
            request.start_revision
        };
        Watcher {
            store: Arc::downgrade(inner),
            published,
            range: KeyRange::new(&request.key, &request.range_end),
            request,
            next_revision,
            finished: false,
        }
    }

    /// The next update; `None` once the store is gone.
    pub async fn next(&mut self) -> Option<WatchUpdate> {
        loop {
            if self.finished {
                return None;
            }
            {
                let inner = self.store.upgrade()?;
                // Mark the published value seen before reading the revision: a write after
                // this point wakes `changed` below.
                self.published.borrow_and_update();
                match self.poll_store(&inner) {
                    Ok(Some(update)) => return Some(update),
                    Ok(None) => {}
                    Err(e) => {
                        // A watch cannot report storage errors; end it loudly rather than
                        // skip events.
                        tracing::error!(error = %e, "watch ended by a storage error");
                        self.finished = true;
                        return None;
                    }
                }
            }
            if self.published.changed().await.is_err() {
                return None;
            }
        }
    }

    /// The next revision this watcher will deliver: everything below it has been delivered, so
    /// a progress notification may report `next_revision() - 1`.
    pub fn next_revision(&self) -> i64 {
        self.next_revision
    }

    fn compacted(&mut self, inner: &Inner) -> Option<WatchUpdate> {
        let compact_revision = inner.compact_revision();
        if self.next_revision < compact_revision {
            self.finished = true;
            return Some(WatchUpdate::Compacted { compact_revision });
        }
        None
    }

    /// The next non-empty update available now, or `None` when caught up.
    fn poll_store(&mut self, inner: &Inner) -> Result<Option<WatchUpdate>> {
        loop {
            if let Some(compacted) = self.compacted(inner) {
                return Ok(Some(compacted));
            }
            let current = inner.current_revision();
            if self.next_revision > current {
                return Ok(None);
            }
            let cached = crate::keyspace::lock_cache(inner).from(self.next_revision, current);
            let (events, covered) = match cached {
                Some(revisions) if !revisions.is_empty() => {
                    let covered = revisions.last().map_or(current, |r| r.revision);
                    let events = revisions
                        .iter()
                        .flat_map(|r| r.events.iter())
                        .filter(|event| self.wanted(event))
                        .map(|event| self.shaped(event))
                        .collect::<Vec<_>>();
                    (events, covered)
                }
                _ => {
                    let (events, covered) = self.read_log(inner, current)?;
                    // Compaction may have removed part of what was just read.
                    if let Some(compacted) = self.compacted(inner) {
                        return Ok(Some(compacted));
                    }
                    (events, covered)
                }
            };
            self.next_revision = covered + 1;
            if !events.is_empty() {
                return Ok(Some(WatchUpdate::Events {
                    revision: covered,
                    events,
                }));
            }
        }
    }

    fn wanted(&self, event: &Event) -> bool {
        let kind_wanted = match event.kind {
            EventType::Put => !self.request.no_put,
            EventType::Delete => !self.request.no_delete,
        };
        kind_wanted && self.range.contains(&event.kv.key)
    }

    fn shaped(&self, event: &Event) -> Event {
        Event {
            kind: event.kind,
            kv: event.kv.clone(),
            prev_kv: if self.request.prev_kv {
                event.prev_kv.clone()
            } else {
                None
            },
        }
    }

    /// Reads whole revisions from the event log, starting at `next_revision`, up to about
    /// [`MAX_EVENTS_PER_UPDATE`] events; returns the wanted ones and the last revision covered.
    fn read_log(&self, inner: &Inner, current: i64) -> Result<(Vec<Event>, i64)> {
        let (_view, tree) = inner.viewed_tree();
        let lo = event_log::scan_start(&tree, Revision::new(self.next_revision, 0))?;
        let hi = index::event_key(Revision::new(current + 1, 0));
        let mut events = Vec::new();
        let mut covered = current;
        let mut last_main = 0;
        let mut read = 0;
        'entries: for entry in tree.range(lo..hi) {
            let (tree_key, bytes) = entry?;
            for (rev, record) in event_log::records(&tree_key, &bytes)? {
                if rev.main < self.next_revision {
                    continue;
                }
                if rev.main > current {
                    break 'entries;
                }
                // Stop only between revisions: one revision's events stay in one update.
                if read >= MAX_EVENTS_PER_UPDATE && rev.main != last_main {
                    covered = rev.main - 1;
                    break 'entries;
                }
                read += 1;
                last_main = rev.main;
                let record: Record = crate::codec::decode(record)?;
                let mut event = record.into_event(rev);
                if !self.wanted(&event) {
                    continue;
                }
                if self.request.prev_kv {
                    event.prev_kv = previous(&tree, &event.kv.key, rev)?;
                }
                events.push(event);
            }
        }
        Ok((events, covered))
    }
}

/// The key's value just before `revision`, if history still holds it.
fn previous(tree: &sled::Tree, key: &[u8], revision: Revision) -> Result<Option<KeyValue>> {
    let lo = index::history_prefix(key);
    let hi = index::history_key(key, revision);
    let Some(entry) = tree.range(lo..hi).next_back() else {
        return Ok(None);
    };
    let (tree_key, kind) = entry?;
    if kind.first() != Some(&KIND_PUT) {
        return Ok(None);
    }
    let (_, rev) = index::parse_history_key(&tree_key)?;
    match read_record(tree, rev)? {
        Record::Put(kv) => Ok(Some(kv)),
        Record::Delete(_) => Ok(None),
    }
}
