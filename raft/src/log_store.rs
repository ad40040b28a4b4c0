//! The Raft log in sled: entries keyed by big-endian index (so sled's byte order is log
//! order), plus the vote, the committed log id and the last purged log id.
//!
//! # Entry format
//!
//! An entry is stored as the byte `BATCH_FORMAT` followed by its encoding, its payload a batch of
//! commands ([`crate::Request`]). Logs written before batching hold entries of one command,
//! without the leading byte; they are still read, as entries of a batch of one, so a data
//! directory of that version opens and replays.

// openraft's `StorageError` is large; it is the trait's error type, so helpers return it as is.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError, Vote};

use crate::codec;
use crate::observer::Observer;
use crate::types::{self, Entry, LegacyTypeConfig, LogId, StorageError, TypeConfig};

/// The first byte of every entry written since entries carry a batch of commands. No entry
/// written before starts with it: those start with their term as a bincode varint, and no
/// varint of a u64 starts with 255.
const BATCH_FORMAT: u8 = 0xFF;

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The Raft log of one member. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    entries: sled::Tree,
    meta: sled::Tree,
    observer: Observer,
    durable: Option<tokio::sync::watch::Receiver<Option<LogId>>>,
}

/// The most memory sled's page cache holds for the log, bytes (sled's default is 1 GiB).
/// Replication and apply read the newest entries, which were written last and stay cached;
/// a follower far behind is sent a snapshot rather than old entries.
const CACHE_CAPACITY_BYTES: u64 = 32 << 20;

/// Most entries a purge removes in one sled batch.
const PURGE_BATCH: usize = 1024;

/// How long a purge waits for the state machine to make the snapshot it covers durable.
const PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl LogStore {
    /// Opens (or creates) the log in the directory `path` (keel uses `<data_dir>/raft`).
    pub fn open(path: impl AsRef<Path>) -> crate::Result<LogStore> {
        let db = keel_store::open_db(path.as_ref(), CACHE_CAPACITY_BYTES)?;
        let entries = db.open_tree("entries")?;
        let meta = db.open_tree("meta")?;
        Ok(LogStore {
            db,
            entries,
            meta,
            observer: Observer::default(),
            durable: None,
        })
    }

    /// Times this log's fsyncs into `observer`.
    pub fn observed_by(mut self, observer: Observer) -> LogStore {
        self.observer = observer;
        self
    }

    /// Purges only entries the state machine holds durably (`durable`, its flushed last
    /// applied log id). openraft 0.9 purges a follower's log as soon as it hands a received
    /// snapshot to the state machine, while the install still runs: a crash in between left
    /// the log purged past an empty keyspace, and the member could never start again (openraft
    /// panics on purged > committed; found by the chaos suite).
    pub fn gated_by(mut self, durable: tokio::sync::watch::Receiver<Option<LogId>>) -> LogStore {
        self.durable = Some(durable);
        self
    }

    /// Makes every write so far durable. sled's flush is a blocking fsync, so it runs on the
    /// blocking pool and the Raft core's runtime thread keeps serving RPCs meanwhile.
    async fn flush(&self) -> Result<(), sled::Error> {
        let db = self.db.clone();
        let started = std::time::Instant::now();
        let flushed = tokio::task::spawn_blocking(move || db.flush()).await;
        self.observer.log_synced(started.elapsed());
        match flushed {
            Ok(result) => result.map(|_| ()),
            Err(join) => Err(sled::Error::Io(std::io::Error::other(join.to_string()))),
        }
    }

    /// [`LogStore::flush`] for callers outside the runtime (shutdown, on the blocking pool).
    pub(crate) fn flush_blocking(&self) -> Result<(), sled::Error> {
        self.db.flush().map(|_| ())
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self.meta.get(key).map_err(|e| StorageIOError::read(&e))? else {
            return Ok(None);
        };
        Ok(Some(
            codec::decode(&bytes).map_err(|e| StorageIOError::read(&e))?,
        ))
    }

    fn write_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let bytes = codec::encode(value).map_err(|e| StorageIOError::write(&e))?;
        self.meta
            .insert(key, bytes)
            .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }
}

/// What a stopped member's log holds, for offline inspection (`keelctl inspect … status`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSummary {
    /// The last vote saved, if any.
    pub vote: Option<Vote<u64>>,
    /// The last log id (the last purged one when every entry was purged).
    pub last_log_id: Option<LogId>,
    /// The last log id known to be committed.
    pub committed: Option<LogId>,
    /// The last log id purged (compacted into a snapshot).
    pub last_purged: Option<LogId>,
}

impl LogStore {
    /// Reads the log's vote, last, committed and purged ids without changing anything.
    /// The member must be stopped (sled locks its directory).
    pub fn summary(&self) -> crate::Result<LogSummary> {
        let meta = |key: &[u8]| -> crate::Result<Option<Vec<u8>>> {
            Ok(self.meta.get(key)?.map(|bytes| bytes.to_vec()))
        };
        let decode_err = |e: codec::CodecError| {
            crate::Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("raft log: {e}"),
            ))
        };
        let vote: Option<Vote<u64>> = match meta(VOTE)? {
            Some(bytes) => Some(codec::decode(&bytes).map_err(decode_err)?),
            None => None,
        };
        let committed: Option<LogId> = match meta(COMMITTED)? {
            Some(bytes) => codec::decode::<Option<LogId>>(&bytes).map_err(decode_err)?,
            None => None,
        };
        let last_purged: Option<LogId> = match meta(LAST_PURGED)? {
            Some(bytes) => Some(codec::decode(&bytes).map_err(decode_err)?),
            None => None,
        };
        let last_log_id = match self.entries.last()? {
            Some((_, bytes)) => Some(decode_entry_bytes(&bytes).map_err(decode_err)?.log_id),
            None => last_purged,
        };
        Ok(LogSummary {
            vote,
            last_log_id,
            committed,
            last_purged,
        })
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn encode_entry(entry: &Entry) -> Result<Vec<u8>, codec::CodecError> {
    let encoded = codec::encode(entry)?;
    let mut bytes = Vec::with_capacity(1 + encoded.len());
    bytes.push(BATCH_FORMAT);
    bytes.extend_from_slice(&encoded);
    Ok(bytes)
}

fn decode_entry_bytes(bytes: &[u8]) -> Result<Entry, codec::CodecError> {
    match bytes.split_first() {
        Some((&BATCH_FORMAT, encoded)) => codec::decode(encoded),
        _ => codec::decode::<openraft::Entry<LegacyTypeConfig>>(bytes).map(types::from_legacy),
    }
}

fn decode_entry(bytes: &[u8]) -> Result<Entry, StorageError> {
    Ok(decode_entry_bytes(bytes).map_err(|e| StorageIOError::read_logs(&e))?)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => Bound::Included(index_key(i)),
            Bound::Excluded(&i) => Bound::Excluded(index_key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(index_key(i)),
            Bound::Excluded(&i) => Bound::Excluded(index_key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut entries = Vec::new();
        for item in self.entries.range::<[u8; 8], _>((start, end)) {
            let (_, bytes) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            entries.push(decode_entry(&bytes)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(LAST_PURGED)?;
        let last_log_id = match self
            .entries
            .last()
            .map_err(|e| StorageIOError::read_logs(&e))?
        {
            Some((_, bytes)) => Some(decode_entry(&bytes)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        self.write_meta(VOTE, vote)?;
        // A vote must survive a crash, or this member could vote twice in one term.
        self.flush()
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.read_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed: losing it only means re-applying a little later after a restart.
        self.write_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = encode_entry(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            encoded.push((index_key(entry.log_id.index), bytes));
        }
        // One entry (what a leader appends) is a plain insert: a sled batch would seal and
        // write out sled's IO buffer on its own, on top of the flush below, and one insert is
        // atomic by itself.
        let written = if let [(index, bytes)] = encoded.as_slice() {
            self.entries.insert(index, bytes.as_slice()).map(|_| ())
        } else {
            let mut batch = sled::Batch::default();
            for (index, bytes) in encoded {
                batch.insert(&index, bytes);
            }
            self.entries.apply_batch(batch)
        };
        written.map_err(|e| StorageIOError::write_logs(&e))?;
        // The callback tells openraft the entries are durable (a follower then acks them to the
        // leader, which counts them toward commit), so it must come after the fsync.
        let flushed = self.flush().await;
        match flushed {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.entries.range(index_key(log_id.index)..) {
            let (key, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(key);
        }
        self.entries
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        // Durable before entries that replace the truncated ones are appended and acked.
        self.flush()
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        if let Some(durable) = &self.durable {
            let mut durable = durable.clone();
            let installed = tokio::time::timeout(
                PURGE_WAIT,
                durable.wait_for(|applied| *applied >= Some(log_id)),
            )
            .await
            .is_ok_and(|waited| waited.is_ok());
            if !installed {
                let e = std::io::Error::other(format!(
                    "the state machine did not make {log_id} durable within {PURGE_WAIT:?}"
                ));
                return Err(StorageIOError::write_logs(&e).into());
            }
        }
        // Record the purge point first: entries at or below it are ignored from then on, so a
        // crash between the two steps leaves only harmless leftovers.
        self.write_meta(LAST_PURGED, &log_id)?;
        // In batches of a bounded size: sled holds one epoch guard across a whole batch, so
        // nothing it replaces meanwhile can be freed. One batch of every entry a snapshot
        // covers (100,000 by default) grew each member by 2 GB, never returned.
        let doomed = self
            .entries
            .range(..=index_key(log_id.index))
            .keys()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        for keys in doomed.chunks(PURGE_BATCH) {
            let mut batch = sled::Batch::default();
            for key in keys {
                batch.remove(key.clone());
            }
            self.entries
                .apply_batch(batch)
                .map_err(|e| StorageIOError::write_logs(&e))?;
        }
        self.flush()
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    #[tokio::test]
    async fn vote_entries_purge_and_truncate_survive_reopen() {
        let dir = tempfile::TempDir::new().unwrap();
        {
            let mut log = LogStore::open(dir.path()).unwrap();
            log.save_vote(&Vote::new(2, 1)).await.unwrap();
            log.blocking_append((1..=10).map(entry)).await.unwrap();
            log.purge(entry(3).log_id).await.unwrap();
            log.truncate(entry(9).log_id).await.unwrap();
            log.save_committed(Some(entry(8).log_id)).await.unwrap();
        }
        let mut log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
        assert_eq!(log.read_committed().await.unwrap(), Some(entry(8).log_id));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(entry(3).log_id));
        assert_eq!(state.last_log_id, Some(entry(8).log_id));
        let indexes: Vec<u64> = log
            .try_get_log_entries(0..100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(indexes, (4..=8).collect::<Vec<_>>());
        assert_eq!(
            log.summary().unwrap(),
            LogSummary {
                vote: Some(Vote::new(2, 1)),
                last_log_id: Some(entry(8).log_id),
                committed: Some(entry(8).log_id),
                last_purged: Some(entry(3).log_id),
            }
        );
    }

    /// A purge larger than one removal batch removes every entry it covers, and no other.
    #[tokio::test]
    async fn a_purge_of_many_entries_removes_exactly_those_it_covers() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut log = LogStore::open(dir.path()).unwrap();
        let last = 3 * PURGE_BATCH as u64 + 10;
        log.blocking_append((1..=last).map(entry)).await.unwrap();
        let upto = 2 * PURGE_BATCH as u64 + 7;
        log.purge(entry(upto).log_id).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(entry(upto).log_id));
        assert_eq!(state.last_log_id, Some(entry(last).log_id));
        let indexes: Vec<u64> = log
            .try_get_log_entries(0..=last)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(indexes, (upto + 1..=last).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_purge_waits_until_the_state_machine_holds_the_entries_durably() {
        let dir = tempfile::TempDir::new().unwrap();
        let (durable, follows) = tokio::sync::watch::channel(Some(entry(2).log_id));
        let mut log = LogStore::open(dir.path()).unwrap().gated_by(follows);
        log.blocking_append((1..=10).map(entry)).await.unwrap();
        let mut purging = log.clone();
        let purge = tokio::spawn(async move { purging.purge(entry(6).log_id).await });
        // One thread: the purge runs up to its wait here.
        tokio::task::yield_now().await;
        assert!(!purge.is_finished());
        assert_eq!(log.get_log_state().await.unwrap().last_purged_log_id, None);
        durable.send_replace(Some(entry(6).log_id));
        purge.await.unwrap().unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(entry(6).log_id));
    }

    /// A log written before entries carried batches still reads: its entries come back as
    /// batches of one, next to entries written since.
    #[tokio::test]
    async fn entries_of_one_command_written_before_batching_still_read() {
        let dir = tempfile::TempDir::new().unwrap();
        let command = keel_store::Command::LeaseGrant { id: 5, ttl: 10 };
        let log_id = |index| LogId::new(CommittedLeaderId::new(1, 1), index);
        let mut log = LogStore::open(dir.path()).unwrap();
        let legacy = openraft::Entry::<LegacyTypeConfig> {
            log_id: log_id(1),
            payload: EntryPayload::Normal(crate::types::LegacyRequest {
                command: command.clone(),
            }),
        };
        log.entries
            .insert(index_key(1), codec::encode(&legacy).unwrap())
            .unwrap();
        let batch = Entry {
            log_id: log_id(2),
            payload: EntryPayload::Normal(crate::Request {
                commands: vec![command.clone(), command.clone()],
            }),
        };
        log.blocking_append([batch.clone()]).await.unwrap();

        let read = log.try_get_log_entries(1..=2).await.unwrap();
        assert_eq!(
            read,
            vec![
                Entry {
                    log_id: log_id(1),
                    payload: EntryPayload::Normal(crate::Request::from(command)),
                },
                batch,
            ]
        );
        assert_eq!(log.summary().unwrap().last_log_id, Some(log_id(2)));
    }

    #[test]
    fn an_empty_log_summarizes_to_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        let log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.summary().unwrap(), LogSummary::default());
    }
}
