//! keel-store: etcd's data model on sled.
//!
//! Every write takes one main revision; writes inside a transaction take sub-revisions of it.
//! Every key carries its create revision, mod revision, version and lease. Deletes write
//! tombstones, so reads at an old revision and watches from an old revision see exactly what
//! was there, until compaction drops the history below a revision.
//!
//! # Layout
//!
//! - [`kv`]: `KeyValue` and `Event`, the records clients see.
//! - [`request`]: range / put / delete / txn requests and the replicated [`Command`].
//! - [`keyspace`]: [`Store`], applying commands and reading at a revision.
//! - [`lease`]: the lease table; expiry arrives as a command, never from a clock.
//! - [`auth`]: users, roles, permissions and the enabled flag, as replicated data.
//! - [`alarm`]: the armed alarms (NOSPACE, CORRUPT) by member id, as replicated data.
//! - [`watch`]: watchers that replay from a revision, then follow live writes.
//! - [`error`]: the one error enum.
//! - [`revision`]: `Revision {main, sub}` and its big-endian encoding.
//! - `index`: the layout of the one sled tree (event log, per-key history, current keys, leases).
//! - `event_log`: the event log's entries, each a group of one step's records.
//! - `batch`: executing a command into an in-memory overlay that becomes one step's writes.
//! - `write_set`: a step's writes, and how they reach the tree (a sled batch, or key by key
//!   between open and close marks: [`Store::torn`] after a crash part-way).
//! - `snapshot`: the framed export / import stream.
//! - [`etcd_format`]: etcd v3 snapshot files (bbolt), written and read.
//! - `codec`: the only place bincode is called; `byte_string`: byte strings as bytes for serde.
//!
//! # What this crate must not depend on
//!
//! openraft, warp, any networking, or the wall clock. It is deterministic: the same commands
//! in the same order give the same state and the same [`Store::hash_kv`] on every member.

pub mod alarm;
pub mod auth;
mod batch;
mod byte_string;
mod codec;
pub mod error;
pub mod etcd_format;
mod event_log;
mod index;
pub mod keyspace;
pub mod kv;
pub mod lease;
pub mod request;
pub mod revision;
mod snapshot;
pub mod watch;
mod write_set;

pub use alarm::{Alarm, AlarmCommand, AlarmType};
pub use auth::{permits, AuthCommand, AuthState, Permission, PermissionType, Role, User};
pub use error::{Error, Result};
pub use etcd_format::{EtcdExported, EtcdImportOptions, EtcdImported, SnapshotFormat};
pub use keyspace::{
    open_db, waits_for_exports, Config, ExportPoint, HashKv, Store, DEFAULT_CACHE_CAPACITY_BYTES,
};
pub use kv::{Event, EventType, KeyValue};
pub use lease::{LeaseInfo, LeaseKeys};
pub use request::*;
pub use revision::Revision;
pub use watch::{WatchRequest, WatchUpdate, Watcher};
