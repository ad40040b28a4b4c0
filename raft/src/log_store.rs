//! The Raft log: entries, the vote, the committed log id and the purge point, in a
//! write-ahead log of segment files ([`crate::wal`]) in `<data_dir>/raft/wal`.
//!
//! # Entry format
//!
//! An entry is stored as the byte `BATCH_FORMAT` followed by its encoding, its payload a batch of
//! commands ([`crate::Request`]). Logs written before batching hold entries of one command,
//! without the leading byte; they are still read, as entries of a batch of one, so a data
//! directory of that version opens and replays.
//!
//! # Logs kept in sled
//!
//! Before the write-ahead log, the log was a sled database in `<data_dir>/raft`. Opening such a
//! directory copies the log into a new write-ahead log, makes it durable, renames it into
//! place and only then removes sled's files: a crash at any point leaves one whole log.

// openraft's `StorageError` is large; it is the trait's error type, so helpers return it as is.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::fs::File;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError, Vote};

use crate::codec;
use crate::observer::Observer;
use crate::types::{self, Entry, LegacyTypeConfig, LogId, StorageError, TypeConfig};
use crate::wal::{self, Wal};

/// The first byte of every entry written since entries carry a batch of commands. No entry
/// written before starts with it: those start with their term as a bincode varint, and no
/// varint of a u64 starts with 255.
const BATCH_FORMAT: u8 = 0xFF;

/// The write-ahead log's directory inside the log directory.
const WAL_DIR: &str = "wal";
/// Where a log kept in sled is copied before it is renamed to [`WAL_DIR`].
const MIGRATING_DIR: &str = "wal.partial";

/// The Raft log of one member. Cheap to clone; clones share the log.
#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Mutex<Wal>>,
    observer: Observer,
    durable: Option<tokio::sync::watch::Receiver<Option<LogId>>>,
}

/// How long a purge waits for the state machine to make the snapshot it covers durable.
const PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl LogStore {
    /// Opens (or creates) the log in the directory `path` (keel uses `<data_dir>/raft`),
    /// first moving a log kept in sled there into a write-ahead log.
    pub fn open(path: impl AsRef<Path>) -> crate::Result<LogStore> {
        let path = path.as_ref();
        let wal_dir = path.join(WAL_DIR);
        if !wal_dir.is_dir() && sled_log::is_in(path) {
            migrate_from_sled(path)?;
        }
        // Left by a crash after a migration's rename (sled's files) or before it (the copy).
        remove_all_but(path, WAL_DIR)?;
        let wal = Wal::open(&wal_dir, true)?;
        Ok(LogStore {
            wal: Arc::new(Mutex::new(wal)),
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

    fn wal(&self) -> MutexGuard<'_, Wal> {
        self.wal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes everything written to `file` durable. `fdatasync` blocks, so it runs on the
    /// blocking pool and the Raft core's runtime thread keeps serving RPCs meanwhile.
    async fn sync(&self, file: Arc<File>) -> std::io::Result<()> {
        let started = std::time::Instant::now();
        let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
        self.observer.log_synced(started.elapsed());
        synced.map_err(|join| std::io::Error::other(join.to_string()))?
    }

    /// Writes the committed id and makes the log durable, for callers outside the runtime
    /// (shutdown, on the blocking pool).
    pub(crate) fn flush_blocking(&self) -> std::io::Result<()> {
        let file = self.wal().write_committed()?;
        file.sync_data()
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
    /// What this log holds.
    pub fn summary(&self) -> LogSummary {
        summarize(&self.wal())
    }

    /// What the log in `path` holds, read without changing any file (a torn tail is not cut
    /// off, a log kept in sled is not moved); `None` if there is no log. The member must be
    /// stopped.
    pub fn inspect(path: impl AsRef<Path>) -> crate::Result<Option<LogSummary>> {
        let path = path.as_ref();
        let wal_dir = path.join(WAL_DIR);
        if wal_dir.is_dir() {
            return Ok(Some(summarize(&Wal::open(&wal_dir, false)?)));
        }
        if sled_log::is_in(path) {
            return sled_log::SledLog::open(path)?.summary().map(Some);
        }
        Ok(None)
    }
}

fn summarize(wal: &Wal) -> LogSummary {
    LogSummary {
        vote: wal.vote(),
        last_log_id: wal.last_log_id(),
        committed: wal.committed(),
        last_purged: wal.last_purged(),
    }
}

/// Removes everything in `dir` but `keep`.
fn remove_all_but(dir: &Path, keep: &str) -> std::io::Result<()> {
    let Ok(items) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut removed = false;
    for item in items {
        let item = item?;
        if item.file_name() == keep {
            continue;
        }
        tracing::info!(
            "removing {} from the raft log directory",
            item.path().display()
        );
        if item.file_type()?.is_dir() {
            std::fs::remove_dir_all(item.path())?;
        } else {
            std::fs::remove_file(item.path())?;
        }
        removed = true;
    }
    if removed {
        wal::sync_dir(dir)?;
    }
    Ok(())
}

/// Copies the log kept in sled in `path` into a new write-ahead log and renames it into place.
fn migrate_from_sled(path: &Path) -> crate::Result<()> {
    let partial: PathBuf = path.join(MIGRATING_DIR);
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    let old = sled_log::SledLog::open(path)?;
    let summary = old.summary()?;
    tracing::info!(
        "moving the raft log in {} from sled to a write-ahead log ({summary:?})",
        path.display()
    );
    let mut wal = Wal::open(&partial, true)?;
    if let Some(vote) = &summary.vote {
        wal.save_vote(vote)?;
    }
    if let Some(purged) = summary.last_purged {
        wal.purge(purged)?;
    }
    wal.set_committed(summary.committed);
    let mut chunk = Vec::new();
    for item in old.entries() {
        let (log_id, bytes) = item?;
        if Some(log_id) <= summary.last_purged {
            continue;
        }
        chunk.push((log_id, bytes));
        if chunk.len() == 1024 {
            wal.append(&chunk)?;
            chunk.clear();
        }
    }
    wal.append(&chunk)?;
    wal.write_committed()?.sync_all()?;
    drop(wal);
    wal::sync_dir(&partial)?;
    drop(old);
    std::fs::rename(&partial, path.join(WAL_DIR))?;
    wal::sync_dir(path)?;
    Ok(())
}

/// Reading a log kept in sled (before the write-ahead log).
mod sled_log {
    use super::*;

    const VOTE: &[u8] = b"vote";
    const COMMITTED: &[u8] = b"committed";
    const LAST_PURGED: &[u8] = b"last_purged";

    /// The log's page cache, bytes: it is read once, in order.
    const CACHE_CAPACITY_BYTES: u64 = 32 << 20;

    /// Whether `path` holds a sled database.
    pub(super) fn is_in(path: &Path) -> bool {
        path.join("db").is_file() && path.join("conf").is_file()
    }

    pub(super) struct SledLog {
        entries: sled::Tree,
        meta: sled::Tree,
    }

    fn decode_err(e: codec::CodecError) -> crate::Error {
        crate::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("raft log: {e}"),
        ))
    }

    impl SledLog {
        pub(super) fn open(path: &Path) -> crate::Result<SledLog> {
            let db = keel_store::open_db(path, CACHE_CAPACITY_BYTES)?;
            Ok(SledLog {
                entries: db.open_tree("entries")?,
                meta: db.open_tree("meta")?,
            })
        }

        fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> crate::Result<Option<T>> {
            match self.meta.get(key)? {
                Some(bytes) => Ok(Some(codec::decode(&bytes).map_err(decode_err)?)),
                None => Ok(None),
            }
        }

        pub(super) fn summary(&self) -> crate::Result<LogSummary> {
            let last_purged: Option<LogId> = self.meta(LAST_PURGED)?;
            let last_log_id = match self.entries.last()? {
                Some((_, bytes)) => Some(decode_entry_bytes(&bytes).map_err(decode_err)?.log_id),
                None => last_purged,
            };
            Ok(LogSummary {
                vote: self.meta(VOTE)?,
                last_log_id,
                committed: self.meta::<Option<LogId>>(COMMITTED)?.flatten(),
                last_purged,
            })
        }

        /// Every entry, in index order, as its log id and its bytes as stored.
        pub(super) fn entries(&self) -> impl Iterator<Item = crate::Result<(LogId, Vec<u8>)>> + '_ {
            self.entries.iter().map(|item| {
                let (_, bytes) = item?;
                let log_id = decode_entry_bytes(&bytes).map_err(decode_err)?.log_id;
                Ok((log_id, bytes.to_vec()))
            })
        }

        /// Writes a log in sled as keel did before the write-ahead log (tests of the migration).
        #[cfg(test)]
        pub(super) fn write(
            path: &Path,
            vote: Option<Vote<u64>>,
            committed: Option<LogId>,
            last_purged: Option<LogId>,
            entries: &[(u64, Vec<u8>)],
        ) -> crate::Result<()> {
            let db = keel_store::open_db(path, CACHE_CAPACITY_BYTES)?;
            let meta = db.open_tree("meta")?;
            let tree = db.open_tree("entries")?;
            let encode = |bytes: Result<Vec<u8>, codec::CodecError>| bytes.map_err(decode_err);
            if let Some(vote) = vote {
                meta.insert(VOTE, encode(codec::encode(&vote))?)?;
            }
            meta.insert(COMMITTED, encode(codec::encode(&committed))?)?;
            if let Some(purged) = last_purged {
                meta.insert(LAST_PURGED, encode(codec::encode(&purged))?)?;
            }
            for (index, bytes) in entries {
                tree.insert(index.to_be_bytes(), bytes.as_slice())?;
            }
            db.flush()?;
            Ok(())
        }
    }
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
        let located = self.wal().locate(range);
        located
            .iter()
            .map(|at| decode_entry(&at.read().map_err(|e| StorageIOError::read_logs(&e))?))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let wal = self.wal();
        Ok(LogState {
            last_purged_log_id: wal.last_purged(),
            last_log_id: wal.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let file = self
            .wal()
            .save_vote(vote)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        // A vote must survive a crash, or this member could vote twice in one term.
        self.sync(file)
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        Ok(self.wal().vote())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Written with the next append, and not synced on its own: losing it only means
        // re-applying a little later after a restart.
        self.wal().set_committed(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.wal().committed())
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
            encoded.push((entry.log_id, bytes));
        }
        let written = self.wal().append(&encoded);
        let file = written.map_err(|e| StorageIOError::write_logs(&e))?;
        // The callback tells openraft the entries are durable (a follower then acks them to the
        // leader, which counts them toward commit), so it must come after the fsync.
        match self.sync(file).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let error = StorageIOError::write_logs(&e).into();
                callback.log_io_completed(Err(e));
                Err(error)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let written = self.wal().truncate(log_id.index);
        let file = written.map_err(|e| StorageIOError::write_logs(&e))?;
        // Durable before entries that replace the truncated ones are appended and acked.
        self.sync(file)
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
        let written = self.wal().purge(log_id);
        let file = written.map_err(|e| StorageIOError::write_logs(&e))?;
        // The purge point is durable before the files of the entries it covers go: a replay
        // must never find entries missing that no purge record accounts for.
        self.sync(file)
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        let wal = self.wal.clone();
        let removed = tokio::task::spawn_blocking(move || {
            wal.lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove_purged_segments()
        })
        .await
        .map_err(|join| std::io::Error::other(join.to_string()))
        .and_then(|removed| removed);
        removed.map_err(|e| StorageIOError::write_logs(&e))?;
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

    async fn indexes(log: &mut LogStore) -> Vec<u64> {
        log.try_get_log_entries(0..u64::MAX)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect()
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
            log.flush_blocking().unwrap();
        }
        let mut log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
        assert_eq!(log.read_committed().await.unwrap(), Some(entry(8).log_id));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(entry(3).log_id));
        assert_eq!(state.last_log_id, Some(entry(8).log_id));
        assert_eq!(indexes(&mut log).await, (4..=8).collect::<Vec<_>>());
        let summary = LogSummary {
            vote: Some(Vote::new(2, 1)),
            last_log_id: Some(entry(8).log_id),
            committed: Some(entry(8).log_id),
            last_purged: Some(entry(3).log_id),
        };
        assert_eq!(log.summary(), summary);
        drop(log);
        assert_eq!(LogStore::inspect(dir.path()).unwrap(), Some(summary));
    }

    /// The committed id goes out with the next append, without a sync of its own.
    #[tokio::test]
    async fn the_committed_id_is_written_with_the_next_append() {
        let dir = tempfile::TempDir::new().unwrap();
        {
            let mut log = LogStore::open(dir.path()).unwrap();
            log.blocking_append((1..=3).map(entry)).await.unwrap();
            log.save_committed(Some(entry(2).log_id)).await.unwrap();
            log.blocking_append([entry(4)]).await.unwrap();
        }
        let mut log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.read_committed().await.unwrap(), Some(entry(2).log_id));
    }

    /// A purge deletes the segment files every entry of which it covers, and the log reads
    /// and reopens the same after.
    #[tokio::test]
    async fn a_purge_deletes_the_segments_it_covers() {
        let dir = tempfile::TempDir::new().unwrap();
        let wal_files = || std::fs::read_dir(dir.path().join(WAL_DIR)).unwrap().count();
        let mut log = LogStore::open(dir.path()).unwrap();
        // Entries big enough that a few hundred fill a segment.
        let big = |index: u64| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(crate::Request::from(keel_store::Command::Put(
                keel_store::PutRequest {
                    key: index.to_be_bytes().to_vec(),
                    value: vec![7; 64 << 10],
                    ..Default::default()
                },
            ))),
        };
        let per_segment = wal::SEGMENT_BYTES / (64 << 10);
        let last = 3 * per_segment;
        for index in 1..=last {
            log.blocking_append([big(index)]).await.unwrap();
        }
        assert!(wal_files() >= 3, "{} segments", wal_files());
        let upto = 2 * per_segment + 7;
        log.purge(entry(upto).log_id).await.unwrap();
        assert_eq!(
            wal_files(),
            2,
            "the two segments before the purge point are gone"
        );
        assert_eq!(
            indexes(&mut log).await,
            (upto + 1..=last).collect::<Vec<_>>()
        );
        drop(log);
        let mut log = LogStore::open(dir.path()).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(entry(upto).log_id));
        assert_eq!(state.last_log_id, Some(entry(last).log_id));
        assert_eq!(
            indexes(&mut log).await,
            (upto + 1..=last).collect::<Vec<_>>()
        );
        assert_eq!(
            log.try_get_log_entries(last..=last).await.unwrap(),
            vec![big(last)]
        );
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

    /// A log kept in sled (keel before the write-ahead log) moves into a write-ahead log on
    /// open: vote, committed id, purge point and entries, including entries of one command
    /// written before batching, which read as batches of one. sled's files are gone after.
    #[tokio::test]
    async fn a_log_kept_in_sled_moves_to_the_write_ahead_log() {
        let dir = tempfile::TempDir::new().unwrap();
        let command = keel_store::Command::LeaseGrant { id: 5, ttl: 10 };
        let log_id = |index| LogId::new(CommittedLeaderId::new(1, 1), index);
        let legacy = openraft::Entry::<LegacyTypeConfig> {
            log_id: log_id(3),
            payload: EntryPayload::Normal(crate::types::LegacyRequest {
                command: command.clone(),
            }),
        };
        let batch = Entry {
            log_id: log_id(4),
            payload: EntryPayload::Normal(crate::Request {
                commands: vec![command.clone(), command.clone()],
            }),
        };
        sled_log::SledLog::write(
            dir.path(),
            Some(Vote::new(3, 1)),
            Some(log_id(3)),
            Some(log_id(1)),
            &[
                // Left over from a purge interrupted by a crash: dropped.
                (1, encode_entry(&entry(1)).unwrap()),
                (2, encode_entry(&entry(2)).unwrap()),
                (3, codec::encode(&legacy).unwrap()),
                (4, encode_entry(&batch).unwrap()),
            ],
        )
        .unwrap();
        let expected = LogSummary {
            vote: Some(Vote::new(3, 1)),
            last_log_id: Some(log_id(4)),
            committed: Some(log_id(3)),
            last_purged: Some(log_id(1)),
        };
        assert_eq!(
            LogStore::inspect(dir.path()).unwrap(),
            Some(expected.clone())
        );
        assert!(sled_log::is_in(dir.path()), "inspecting moves nothing");

        let mut log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.summary(), expected);
        assert!(!sled_log::is_in(dir.path()));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|item| item.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(WAL_DIR)]);
        let read = log.try_get_log_entries(0..10).await.unwrap();
        assert_eq!(
            read,
            vec![
                entry(2),
                Entry {
                    log_id: log_id(3),
                    payload: EntryPayload::Normal(crate::Request::from(command)),
                },
                batch,
            ]
        );
        log.blocking_append([entry(5)]).await.unwrap();
        drop(log);
        let log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.summary().last_log_id, Some(log_id(5)));
    }

    #[test]
    fn an_empty_log_summarizes_to_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        assert_eq!(LogStore::inspect(dir.path()).unwrap(), None);
        let log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.summary(), LogSummary::default());
    }
}
