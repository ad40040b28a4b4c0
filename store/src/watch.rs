//! Watches: a watcher starting at any retained revision replays history, then follows live
//! writes, with no gap and no duplicate.

use serde::{Deserialize, Serialize};

use crate::kv::Event;

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

/// A running watch. Dropping it cancels it.
pub struct Watcher {}

impl Watcher {
    /// The next update; `None` once the store is gone.
    pub async fn next(&mut self) -> Option<WatchUpdate> {
        todo!()
    }
    /// The next revision this watcher will deliver: everything below it has been delivered, so
    /// a progress notification may report `next_revision() - 1`.
    pub fn next_revision(&self) -> i64 {
        todo!()
    }
}
