//! The MVCC keyspace: [`Store`] applies commands at a new revision and reads at any retained one.
//!
//! CONTRACT SKETCH — bodies are being written (issue 2). Signatures are what keel-raft and the
//! server build against; change them only together with their callers.

use std::path::Path;

use crate::error::Result;
use crate::kv::Event;
use crate::lease::{LeaseInfo, LeaseKeys};
use crate::request::{Applied, Command, RangeRequest, RangeResponse};
use crate::watch::{WatchRequest, Watcher};

/// Limits and tuning of a store.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest encoded command accepted, bytes (etcd's `--max-request-bytes`, 1.5 MiB).
    pub max_request_bytes: usize,
    /// How many recent revisions' events are kept in memory for live watchers; older
    /// revisions are replayed from disk.
    pub watch_cache_revisions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_request_bytes: 1536 * 1024,
            watch_cache_revisions: 4096,
        }
    }
}

/// `hash_kv` result: a checksum of the retained history up to a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashKv {
    /// CRC32 over every retained (revision, key, record) up to `revision`.
    pub hash: u32,
    /// The revision the hash covers.
    pub revision: i64,
    /// The compacted revision at the time of hashing.
    pub compact_revision: i64,
}

/// A handle to one keyspace; cheap to clone, all clones share the same database.
#[derive(Clone)]
pub struct Store {}

impl Store {
    /// Opens (or creates) the keyspace in `path`.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Store> {
        let _ = (path, config);
        todo!()
    }
    /// A keyspace in a temporary directory, removed on drop (tests, benches).
    pub fn temporary(config: Config) -> Result<Store> {
        let _ = config;
        todo!()
    }
    /// Applies one write and records `marker` (opaque caller state, e.g. the last applied Raft
    /// log id) in the same atomic batch. Does not flush. The outer error is a storage failure
    /// (fatal); the inner result is the client-visible outcome.
    pub fn apply(&self, command: &Command, marker: Option<&[u8]>) -> Result<Applied> {
        let _ = (command, marker);
        todo!()
    }
    /// Records `marker` alone (for log entries that carry no command).
    pub fn set_marker(&self, marker: &[u8]) -> Result<()> {
        let _ = marker;
        todo!()
    }
    /// The last recorded marker.
    pub fn marker(&self) -> Result<Option<Vec<u8>>> {
        todo!()
    }
    /// Makes everything applied so far durable (fsync). Durability is the caller's choice.
    pub fn flush(&self) -> Result<()> {
        todo!()
    }
    /// Reads a range at the current or a retained revision.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse> {
        let _ = request;
        todo!()
    }
    /// The current revision (1 on an empty store, as etcd).
    pub fn current_revision(&self) -> i64 {
        todo!()
    }
    /// The compacted revision (0 if never compacted).
    pub fn compact_revision(&self) -> i64 {
        todo!()
    }
    /// Every retained version of `key` (puts and deletes), oldest first.
    pub fn history(&self, key: &[u8]) -> Result<Vec<Event>> {
        let _ = key;
        todo!()
    }
    /// Every lease, in id order.
    pub fn leases(&self) -> Result<Vec<LeaseInfo>> {
        todo!()
    }
    /// One lease with its attached keys, or `None` if it does not exist.
    pub fn lease(&self, id: i64) -> Result<Option<LeaseKeys>> {
        let _ = id;
        todo!()
    }
    /// Starts a watch.
    pub fn watch(&self, request: WatchRequest) -> Result<Watcher> {
        let _ = request;
        todo!()
    }
    /// Checksum of the retained history up to `revision` (0 = current).
    pub fn hash_kv(&self, revision: i64) -> Result<HashKv> {
        let _ = revision;
        todo!()
    }
    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        todo!()
    }
    /// Writes the whole state (keyspace, history, leases, revisions, marker) to `out`.
    pub fn export(&self, out: &mut dyn std::io::Write) -> Result<u64> {
        let _ = out;
        todo!()
    }
    /// Replaces the whole state with a stream written by [`Store::export`]; watchers are
    /// carried over (replaying from the new state, or told Compacted).
    pub fn import(&self, input: &mut dyn std::io::Read) -> Result<()> {
        let _ = input;
        todo!()
    }
}
