//! The tree writes of one step of the keyspace, and the two ways they reach the tree.
//!
//! A sled batch is atomic across a crash, but sled pays for that on every batch: it seals
//! and writes out its IO buffer twice (before and after reserving the batch's manifest),
//! each write a job for its IO pool that wakes all seven of the pool's idle threads and
//! waits on a `sync_file_range`. For the Raft apply loop, one batch per entry, that was the
//! largest single cost of a put after the Raft log's own fsync.
//!
//! [`WriteSet::write_bracketed`] writes one key at a time instead, between an opening and a
//! closing write of [`index::META_OPEN`]. sled recovers a prefix of its log, in the order the
//! writes were made, so after a crash the keyspace either holds whole steps only (no open
//! mark) or ends part-way through the last one (the mark is there): [`crate::Store::torn`]
//! then tells the owner to rebuild the keyspace from what it was built from (for keel, the
//! last snapshot and the Raft log after it). Nothing acknowledged depends on the keyspace
//! alone: the Raft log is fsynced before any entry is applied.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::event_log::Groups;
use crate::index::{self, Record};
use crate::revision::Revision;

/// Writes to the keyspace tree, in key order; the last write of a key wins (`None` removes it).
/// The step's event-log records are kept apart until written, to go in as groups.
#[derive(Default)]
pub(crate) struct WriteSet {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    events: Groups,
}

impl WriteSet {
    /// Adds the event-log record at `revision`, which follows every record added before.
    pub(crate) fn push_event(&mut self, revision: Revision, record: &Record) -> Result<()> {
        self.events.push(revision, record)
    }

    pub(crate) fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), Some(value.into()));
    }

    pub(crate) fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), None);
    }

    /// Writes everything as one sled batch: atomic across a crash, at sled's price per batch.
    pub(crate) fn write_atomically(self, tree: &sled::Tree) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (key, value) in self.into_writes() {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    /// Writes key by key between the open mark and its removal (see the module's docs).
    pub(crate) fn write_bracketed(self, tree: &sled::Tree) -> Result<()> {
        tree.insert(index::META_OPEN, &[][..])?;
        for (key, value) in self.into_writes() {
            match value {
                Some(value) => tree.insert(key, value)?,
                None => tree.remove(key)?,
            };
        }
        tree.remove(index::META_OPEN)?;
        Ok(())
    }

    /// Every write, the event-log groups among them, in key order.
    fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        let mut writes = self.writes;
        for (key, value) in self.events.into_entries() {
            writes.insert(key, Some(value));
        }
        writes
    }
}
