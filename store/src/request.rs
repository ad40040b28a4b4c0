//! Requests and responses of the keyspace, shaped after etcd's `etcdserverpb` messages.
//!
//! Write requests are wrapped in [`Command`], the unit the Raft log replicates: applying the
//! same commands in the same order gives the same keyspace on every member.

use serde::{Deserialize, Serialize};

use crate::alarm::{Alarm, AlarmCommand};
use crate::auth::AuthCommand;
use crate::kv::KeyValue;
use crate::lease::LeaseInfo;

/// How range results are ordered (etcd `SortOrder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    /// Key order, ascending (the natural order; etcd's NONE).
    #[default]
    None,
    /// Ascending by the sort target.
    Ascend,
    /// Descending by the sort target.
    Descend,
}

/// What range results are sorted by (etcd `SortTarget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortTarget {
    /// The key.
    #[default]
    Key,
    /// The version.
    Version,
    /// The create revision.
    Create,
    /// The mod revision.
    Mod,
    /// The value bytes.
    Value,
}

/// Read keys in `[key, range_end)` (etcd `RangeRequest`).
///
/// `range_end` empty means the single key `key`; `range_end == [0]` means every key >= `key`;
/// `key == [0]` with `range_end == [0]` means every key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    /// First key of the range.
    #[serde(with = "crate::byte_string")]
    pub key: Vec<u8>,
    /// End of the range, exclusive (see the type doc for the special values).
    #[serde(with = "crate::byte_string")]
    pub range_end: Vec<u8>,
    /// At most this many keys are returned; 0 means no limit.
    pub limit: i64,
    /// Read at this revision; 0 or less means the current revision.
    pub revision: i64,
    /// Result order.
    pub sort_order: SortOrder,
    /// Sort key.
    pub sort_target: SortTarget,
    /// Served from the local member without a read-index round (used by the server, not the store).
    pub serializable: bool,
    /// Return keys without values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
    /// Filter out keys with a lower mod revision (0 = no filter).
    pub min_mod_revision: i64,
    /// Filter out keys with a higher mod revision (0 = no filter).
    pub max_mod_revision: i64,
    /// Filter out keys with a lower create revision (0 = no filter).
    pub min_create_revision: i64,
    /// Filter out keys with a higher create revision (0 = no filter).
    pub max_create_revision: i64,
}

/// The answer to a [`RangeRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    /// The matching keys (empty for `count_only`), at most `limit` of them.
    pub kvs: Vec<KeyValue>,
    /// Whether more keys matched than were returned.
    pub more: bool,
    /// The number of keys in the range at the read revision (before `limit`, after revision filters).
    pub count: i64,
}

/// Write one key (etcd `PutRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    /// The key, never empty.
    #[serde(with = "crate::byte_string")]
    pub key: Vec<u8>,
    /// The value.
    #[serde(with = "crate::byte_string")]
    pub value: Vec<u8>,
    /// Attach to this lease (0 = none); the lease must exist.
    pub lease: i64,
    /// Return the previous key-value.
    pub prev_kv: bool,
    /// Keep the current value (the key must exist).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist).
    pub ignore_lease: bool,
}

/// The answer to a [`PutRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResponse {
    /// The key before the put, if asked for and it existed.
    pub prev_kv: Option<KeyValue>,
}

/// Delete keys in `[key, range_end)` (etcd `DeleteRangeRequest`); same range conventions as ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    /// First key of the range.
    #[serde(with = "crate::byte_string")]
    pub key: Vec<u8>,
    /// End of the range, exclusive.
    #[serde(with = "crate::byte_string")]
    pub range_end: Vec<u8>,
    /// Return the deleted key-values.
    pub prev_kv: bool,
}

/// The answer to a [`DeleteRangeRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeResponse {
    /// How many keys were deleted.
    pub deleted: i64,
    /// The deleted key-values, if asked for.
    pub prev_kvs: Vec<KeyValue>,
}

/// How a compare relates the key's field to the given value (etcd `Compare.CompareResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    /// Equal.
    Equal,
    /// Field > value.
    Greater,
    /// Field < value.
    Less,
    /// Not equal.
    NotEqual,
}

/// The field a compare looks at, with the value to compare against.
///
/// A key that does not exist has version, create and mod revision 0, lease 0 and an empty
/// value... except that a value compare on a missing key is false, as in etcd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// The key's version.
    Version(i64),
    /// The key's create revision.
    CreateRevision(i64),
    /// The key's mod revision.
    ModRevision(i64),
    /// The key's value.
    Value(#[serde(with = "crate::byte_string")] Vec<u8>),
    /// The key's lease.
    Lease(i64),
}

/// One condition of a transaction (etcd `Compare`); over a range, every key must satisfy it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The relation.
    pub result: CompareResult,
    /// The field and value.
    pub target: CompareTarget,
    /// The key.
    #[serde(with = "crate::byte_string")]
    pub key: Vec<u8>,
    /// If non-empty, compare every key in `[key, range_end)`.
    #[serde(with = "crate::byte_string")]
    pub range_end: Vec<u8>,
}

/// One operation inside a transaction branch (etcd `RequestOp`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOp {
    /// A read; sees the writes made earlier in the same transaction.
    Range(RangeRequest),
    /// A write.
    Put(PutRequest),
    /// A delete.
    DeleteRange(DeleteRangeRequest),
    /// A nested transaction.
    Txn(TxnRequest),
}

/// The result of one [`RequestOp`] (etcd `ResponseOp`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOp {
    /// From a range.
    Range(RangeResponse),
    /// From a put.
    Put(PutResponse),
    /// From a delete.
    DeleteRange(DeleteRangeResponse),
    /// From a nested transaction.
    Txn(TxnResponse),
}

/// If every compare holds run `success`, else `failure` (etcd `TxnRequest`).
///
/// The whole transaction takes one main revision (if it writes at all); each write inside it
/// takes the next sub-revision. Writing the same key twice in one transaction is an error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    /// The conditions.
    pub compare: Vec<Compare>,
    /// Operations run when every compare holds.
    pub success: Vec<RequestOp>,
    /// Operations run otherwise.
    pub failure: Vec<RequestOp>,
}

/// The answer to a [`TxnRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    /// Whether the compares held.
    pub succeeded: bool,
    /// One response per operation of the branch that ran.
    pub responses: Vec<ResponseOp>,
}

/// A write to the keyspace: the payload of one Raft log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Write one key.
    Put(PutRequest),
    /// Delete a range.
    DeleteRange(DeleteRangeRequest),
    /// A transaction (it may hold only reads; then it writes nothing).
    Txn(TxnRequest),
    /// Drop history below `revision`.
    Compact {
        /// Keep the latest version of each key at or below this revision, drop the rest.
        revision: i64,
    },
    /// Create a lease. The id is chosen by the proposer (never by the store), so every member agrees.
    LeaseGrant {
        /// Lease id, > 0.
        id: i64,
        /// Time to live, seconds, > 0.
        ttl: i64,
    },
    /// Delete a lease and, in one revision, every key attached to it (revocation and expiry alike).
    LeaseRevoke {
        /// Lease id.
        id: i64,
    },
    /// Change users, roles or the enabled flag; carries hashes, never passwords.
    Auth(AuthCommand),
    /// Arm or disarm an alarm. Last, so that log entries written before it existed decode.
    Alarm(AlarmCommand),
}

impl Command {
    /// Its encoded size, bytes: what `--max-request-bytes` limits, and what a command adds
    /// to a Raft entry (keel-raft encodes entries the same way).
    pub fn encoded_len(&self) -> crate::Result<usize> {
        crate::codec::encoded_len(self)
    }
}

/// What applying a [`Command`] returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResponse {
    /// From [`Command::Put`].
    Put(PutResponse),
    /// From [`Command::DeleteRange`].
    DeleteRange(DeleteRangeResponse),
    /// From [`Command::Txn`].
    Txn(TxnResponse),
    /// From [`Command::Compact`].
    Compact,
    /// From [`Command::LeaseGrant`].
    LeaseGrant(LeaseInfo),
    /// From [`Command::LeaseRevoke`].
    LeaseRevoke,
    /// From [`Command::Auth`]: the auth revision after it.
    Auth {
        /// Bumped by every successful auth change.
        auth_revision: u64,
    },
    /// From [`Command::Alarm`]: the alarm activated, or the one deactivated (none if it was
    /// not armed), as etcd answers.
    Alarm(Vec<Alarm>),
}

/// A command's response together with the keyspace revision after it was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The store's current revision after this command (the `header.revision` etcd returns).
    pub revision: i64,
    /// The command's outcome: a value, or the error the client gets (nothing was written then).
    pub result: std::result::Result<CommandResponse, crate::Error>,
}
