//! The one door to the keyspace: the [`Storage`] trait the API server is written against.
//!
//! kube-apiserver alone talks to etcd; keel-apiserver alone talks to keel, and only through
//! this trait, so it never depends on keel's crates. keel implements it in-process over the
//! local member (writes through Raft, linearizable reads after a read barrier); any store with
//! etcd's model (revisions, compare on mod_revision, watch from a revision) can back it.
//!
//! Expected outcomes are values: a create that finds the key, an update whose compare fails
//! and a read below the compacted revision come back as data ([`Written`], [`StorageError::Compacted`]
//! is the only error a caller is expected to act on).

use futures::future::BoxFuture;
use futures::stream::BoxStream;

/// One stored version of a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value (a JSON object).
    pub value: Vec<u8>,
    /// The revision of the write that made this version: the object's resourceVersion.
    pub mod_revision: i64,
}

/// A page of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// The keys, in key order.
    pub items: Vec<StoredValue>,
    /// The store revision the page was read at.
    pub revision: i64,
    /// Whether keys past the last one remain in the range.
    pub more: bool,
}

/// What a conditional write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// Done, at this revision.
    Done {
        /// The revision of the write.
        revision: i64,
    },
    /// The condition failed: the key is as `current` says (`None`: it does not exist).
    Conflict {
        /// The key's current version.
        current: Option<StoredValue>,
    },
}

/// A change to a key, as a watch delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The key was written.
    Put {
        /// The new version.
        value: StoredValue,
        /// The version before, if there was one.
        previous: Option<StoredValue>,
    },
    /// The key was deleted at `revision`.
    Delete {
        /// The key.
        key: Vec<u8>,
        /// The deleting revision.
        revision: i64,
        /// The version deleted, if history still holds it.
        previous: Option<StoredValue>,
    },
}

impl Change {
    /// The revision of the change.
    pub fn revision(&self) -> i64 {
        match self {
            Change::Put { value, .. } => value.mod_revision,
            Change::Delete { revision, .. } => *revision,
        }
    }
}

/// What a store watch yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchBatch {
    /// Changes in revision order, up to and including `revision`.
    Changes {
        /// The highest revision covered.
        revision: i64,
        /// The changes.
        changes: Vec<Change>,
    },
    /// The watch's next revision was compacted away; it is over.
    Compacted {
        /// The store's compacted revision.
        compact_revision: i64,
    },
}

/// Why storage could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The revision asked for is below the compacted one.
    #[error("required revision has been compacted (compacted at {compact_revision})")]
    Compacted {
        /// The store's compacted revision.
        compact_revision: i64,
    },
    /// A revision past the store's current one.
    #[error("required revision is a future revision")]
    FutureRevision,
    /// The store is unavailable (no leader, stopped, timed out, ...).
    #[error("{0}")]
    Unavailable(String),
}

/// Result of a storage call.
pub type StorageResult<T> = std::result::Result<T, StorageError>;

/// The keyspace as the API server uses it. Futures are boxed so a server holds an
/// `Arc<dyn Storage>` without caring what is behind it.
pub trait Storage: Send + Sync + 'static {
    /// The keys in `[start, end)`, at most `limit` of them (0: all), read at `revision`
    /// (0: the current revision, linearizably).
    fn range(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        revision: i64,
        limit: i64,
    ) -> BoxFuture<'_, StorageResult<Page>>;

    /// Writes `value` under `key` if the key does not exist.
    fn create(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFuture<'_, StorageResult<Written>>;

    /// Writes `value` under `key` if its mod revision is still `expected_revision`.
    fn update(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> BoxFuture<'_, StorageResult<Written>>;

    /// Deletes `key` if its mod revision is still `expected_revision`.
    fn delete(&self, key: Vec<u8>, expected_revision: i64)
        -> BoxFuture<'_, StorageResult<Written>>;

    /// Changes to keys in `[start, end)` from `start_revision` on (0: from the next write),
    /// each with its previous version.
    fn watch(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        start_revision: i64,
    ) -> BoxFuture<'_, StorageResult<BoxStream<'static, WatchBatch>>>;
}

/// The end of the range of every key starting with `prefix` (etcd's prefix rule).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// One key read linearizably, if it exists.
pub async fn get(storage: &dyn Storage, key: &[u8]) -> StorageResult<Option<StoredValue>> {
    let page = storage.range(key.to_vec(), Vec::new(), 0, 1).await?;
    Ok(page.items.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b".to_vec());
        assert_eq!(prefix_end(&[0xff]), vec![0]);
    }
}
