//! The records a client sees: key-value pairs with their revisions, and watch events.

use serde::{Deserialize, Serialize};

/// One version of a key, as etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key, arbitrary bytes, never empty.
    #[serde(with = "crate::byte_string")]
    pub key: Vec<u8>,
    /// Main revision of the write that created this key (since its last deletion).
    pub create_revision: i64,
    /// Main revision of the last write to this key.
    pub mod_revision: i64,
    /// Number of writes since creation; 1 on create, reset by deletion.
    pub version: i64,
    /// The value, arbitrary bytes.
    #[serde(with = "crate::byte_string")]
    pub value: Vec<u8>,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// Whether an event wrote or removed a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// A put: the key now holds `kv`.
    Put,
    /// A delete: `kv` carries the key and the deleting revision, with version 0 and no value.
    Delete,
}

/// One change to one key, as etcd's `mvccpb.Event`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Put or delete.
    pub kind: EventType,
    /// The key after the change (for a delete: key and mod_revision only).
    pub kv: KeyValue,
    /// The key before the change, when the watcher asked for it and history still holds it.
    pub prev_kv: Option<KeyValue>,
}
