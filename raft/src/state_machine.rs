//! The state machine: committed entries applied to a [`keel_store::Store`], and snapshots of it.
//!
//! Every applied entry records a marker — the last applied log id and the last membership — in
//! the same atomic batch as its (last) command, so the keyspace and openraft's view of what was
//! applied never disagree, even after a crash between flushes. An entry carries a batch of
//! commands; keel-store notes its progress through the batch with every command
//! ([`keel_store::Store::apply_batch`]), so an entry replayed after a crash part-way through it
//! applies only the commands that were not.
//!
//! # Snapshots on disk
//!
//! A snapshot is keel-store's export ([`keel_store::Store::export`]) in a file of the snapshot
//! directory, `<snapshot id>.snap`, and is handed to openraft as an open `tokio::fs::File`: it
//! is written, sent in chunks and installed as a stream, never held in memory whole. A small
//! sidecar, `current.meta`, holds the snapshot's [`SnapshotMeta`] and names its data file; it is
//! replaced atomically (temp file, fsync, rename, fsync the directory) only once the data file
//! it names is complete and durable, so a crash leaves either the old snapshot or the new one.
//! Anything else in the directory (temp files, superseded snapshots) is removed on open.

// openraft's `StorageError` is large; it is the trait's error type, so helpers return it as is.
#![allow(clippy::result_large_err)]

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotSignature};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::codec;
use crate::observer::Observer;
use crate::types::{
    Entry, LogId, Response, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::wal::sync_dir;

/// The sidecar naming the current snapshot.
const META_FILE: &str = "current.meta";

/// What the state machine records with every applied entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Marker {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
}

impl Marker {
    /// What a keyspace holding exactly the snapshot `meta` describes records.
    fn of_snapshot(meta: &SnapshotMeta) -> Marker {
        Marker {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        }
    }
}

/// The content of [`META_FILE`]: what the current snapshot covers and which file holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CurrentSnapshot {
    meta: SnapshotMeta,
    /// The data file's name in the snapshot directory.
    file: String,
}

/// The snapshot directory: the current snapshot, and the file openraft is receiving into.
struct SnapshotDir {
    dir: PathBuf,
    current: Option<CurrentSnapshot>,
    receiving: Option<PathBuf>,
}

/// The state machine of one member. Cheap to clone; clones share the store and the locks.
#[derive(Clone)]
pub struct StateMachine {
    store: keel_store::Store,
    snapshot_dir: PathBuf,
    /// Serializes applying entries against building and installing snapshots: a snapshot must
    /// be the export of exactly the state its marker names. A tokio mutex because the guard is
    /// held across the blocking-pool hop of the export.
    state: Arc<Mutex<Marker>>,
    /// Held by a snapshot build while the keyspace is exported. Applying goes on meanwhile,
    /// except entries with a command that waits for exports (compactions, leases, auth): they
    /// wait here, asynchronously, rather than on keel-store's lock on a runtime thread.
    exporting: Arc<Mutex<()>>,
    /// A std mutex: it is only taken in synchronous code (on the blocking pool, or to open a
    /// file), never held across an await.
    snapshots: Arc<std::sync::Mutex<SnapshotDir>>,
    snapshot_counter: Arc<AtomicU64>,
    observer: Observer,
    /// How far the log may be purged: a log id the keyspace holds durably and, once the member
    /// built or installed a snapshot, the durable current snapshot covers too (on open, what
    /// the keyspace holds; openraft purges only what its snapshot covers). The log store
    /// waits for it before purging: see [`crate::LogStore::gated_by`].
    durable: Arc<tokio::sync::watch::Sender<Option<LogId>>>,
    /// The index of the last entry applied (installed snapshots included), published once the
    /// keyspace holds it. Members wait on it to read their own writes and to serve a read at
    /// a read index: openraft's metrics would wake every such waiter on each change of any
    /// metric (append, flush, commit, replication) with a copy of all of them.
    applied: Arc<tokio::sync::watch::Sender<Option<u64>>>,
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(openraft::AnyError::error(e.to_string())).into()
}

fn write_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(openraft::AnyError::error(e.to_string())).into()
}

fn snapshot_write_err(
    signature: &SnapshotSignature<u64>,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageIOError::write_snapshot(
        Some(signature.clone()),
        openraft::AnyError::error(e.to_string()),
    )
    .into()
}

fn snapshot_read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_snapshot(None, openraft::AnyError::error(e.to_string())).into()
}

/// The data file of snapshot `snapshot_id`. Ids come from the leader, so anything but ASCII
/// letters, digits, `-` and `_` is replaced: an id never names a path outside the directory.
fn data_file_name(snapshot_id: &str) -> String {
    let safe: String = snapshot_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.snap")
}

/// Whether `file` is the file at `path` (same device and inode). Elsewhere than on unix, never:
/// the caller then copies instead of renaming, which is slower but as correct.
#[cfg(unix)]
fn is_file_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_file_at(_file: &File, _path: &Path) -> bool {
    false
}

impl SnapshotDir {
    /// Loads the current snapshot's sidecar and removes everything else from `dir`: temp files
    /// of an interrupted build or transfer, and data files no sidecar names.
    fn open(dir: PathBuf) -> crate::Result<SnapshotDir> {
        std::fs::create_dir_all(&dir)?;
        let mut current = match std::fs::read(dir.join(META_FILE)) {
            Ok(bytes) => Some(codec::decode::<CurrentSnapshot>(&bytes).map_err(|e| {
                keel_store::Error::Corrupt(format!("snapshot sidecar {META_FILE}: {e}"))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(named) = &current {
            if !dir.join(&named.file).is_file() {
                tracing::warn!(
                    "{META_FILE} names {} which is missing; starting without a snapshot",
                    named.file
                );
                std::fs::remove_file(dir.join(META_FILE))?;
                current = None;
            }
        }
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let keep =
                name == META_FILE || current.as_ref().is_some_and(|c| name == c.file.as_str());
            if !keep && entry.file_type()?.is_file() {
                tracing::info!("removing stale snapshot file {}", entry.path().display());
                // Only disk space is at stake: not worth refusing to start over.
                if let Err(e) = std::fs::remove_file(entry.path()) {
                    tracing::warn!("removing {}: {e}", entry.path().display());
                }
            }
        }
        Ok(SnapshotDir {
            dir,
            current,
            receiving: None,
        })
    }

    /// Makes `next` (whose data file is complete and durable) the current snapshot and removes
    /// the previous one's data file. Refused (`false`) if the current snapshot is newer: a build
    /// that raced with the install of a newer snapshot must not replace it.
    fn switch(&mut self, next: CurrentSnapshot) -> std::io::Result<bool> {
        if let Some(current) = &self.current {
            if current.meta.last_log_id > next.meta.last_log_id {
                return Ok(false);
            }
        }
        let bytes = codec::encode(&next).map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!("{META_FILE}.tmp"));
        let mut out = File::create(&tmp)?;
        out.write_all(&bytes)?;
        out.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(META_FILE))?;
        sync_dir(&self.dir)?;
        if let Some(previous) = self.current.replace(next) {
            if self
                .current
                .as_ref()
                .is_some_and(|c| c.file != previous.file)
            {
                // A transfer still reading the old file keeps its open handle (on unix).
                if let Err(e) = std::fs::remove_file(self.dir.join(&previous.file)) {
                    tracing::warn!("removing superseded snapshot {}: {e}", previous.file);
                }
            }
        }
        Ok(true)
    }

    /// Opens the current snapshot's data file for reading.
    fn open_current(&self) -> std::io::Result<Option<Snapshot<TypeConfig>>> {
        let Some(current) = &self.current else {
            return Ok(None);
        };
        let file = File::open(self.dir.join(&current.file))?;
        Ok(Some(Snapshot {
            meta: current.meta.clone(),
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }
}

impl StateMachine {
    /// Wraps `store`; snapshots are kept in the directory `snapshot_dir`.
    pub fn open(
        store: keel_store::Store,
        snapshot_dir: impl AsRef<Path>,
    ) -> crate::Result<StateMachine> {
        let snapshot_dir = snapshot_dir.as_ref().to_path_buf();
        let snapshots = SnapshotDir::open(snapshot_dir.clone())?;
        if store.torn()? {
            rebuild_torn(&store, &snapshots)?;
        }
        let marker = match store.marker()? {
            Some(bytes) => codec::decode(&bytes).map_err(|e| {
                keel_store::Error::Corrupt(format!("raft marker in the keyspace: {e}"))
            })?,
            None => Marker::default(),
        };
        // What the keyspace holds on open is on disk already.
        let (durable, _) = tokio::sync::watch::channel(marker.last_applied);
        let (applied, _) = tokio::sync::watch::channel(marker.last_applied.map(|l| l.index));
        Ok(StateMachine {
            store,
            snapshot_dir,
            durable: Arc::new(durable),
            applied: Arc::new(applied),
            state: Arc::new(Mutex::new(marker)),
            exporting: Arc::new(Mutex::new(())),
            snapshots: Arc::new(std::sync::Mutex::new(snapshots)),
            snapshot_counter: Arc::new(AtomicU64::new(0)),
            observer: Observer::default(),
        })
    }

    /// Times this state machine's applies into `observer`.
    pub fn observed_by(mut self, observer: Observer) -> StateMachine {
        self.observer = observer;
        self
    }

    /// The keyspace this state machine applies to.
    pub fn store(&self) -> &keel_store::Store {
        &self.store
    }

    /// Follows the index of the last applied entry (see the `applied` field).
    pub fn applied_index(&self) -> tokio::sync::watch::Receiver<Option<u64>> {
        self.applied.subscribe()
    }

    /// Follows how far the log may be purged (see the `durable` field).
    pub fn durable_applied(&self) -> tokio::sync::watch::Receiver<Option<LogId>> {
        self.durable.subscribe()
    }

    /// Repairs what a crash part-way through [`RaftStateMachine::install_snapshot`] can leave:
    /// the keyspace holds the received snapshot (imported and flushed) while the sidecar still
    /// names the previous one. If the log (`last_log_id`) also ends before the keyspace, as it
    /// does for a member that needed a snapshot, openraft closes that hole at startup by
    /// purging the log up to the keyspace, past the snapshot the sidecar names, and then
    /// refuses the state it made (it panics; found by the chaos suite). A snapshot of the
    /// keyspace built first covers what it purges. Returns whether one was built; call it
    /// before handing the state machine to openraft.
    pub async fn recover_interrupted_install(
        &mut self,
        last_log_id: Option<LogId>,
    ) -> Result<bool, StorageError> {
        let applied = self.state.lock().await.last_applied;
        let snapshot = self
            .snapshots()
            .current
            .as_ref()
            .and_then(|c| c.meta.last_log_id);
        if last_log_id >= applied || snapshot >= applied {
            return Ok(false);
        }
        tracing::warn!(
            "the keyspace ({applied:?}) is ahead of the log ({last_log_id:?}) and of the snapshot \
             ({snapshot:?}), as an install of a snapshot interrupted by a crash leaves it: \
             snapshotting the keyspace"
        );
        self.build_snapshot().await?;
        Ok(true)
    }

    fn snapshots(&self) -> std::sync::MutexGuard<'_, SnapshotDir> {
        lock(&self.snapshots)
    }
}

/// The last log id applied to `store`, as its Raft marker records it (`None`: nothing applied,
/// e.g. a keyspace restored from a snapshot for a new cluster). For offline inspection.
pub fn last_applied(store: &keel_store::Store) -> crate::Result<Option<LogId>> {
    let Some(bytes) = store.marker()? else {
        return Ok(None);
    };
    let marker: Marker = codec::decode(&bytes)
        .map_err(|e| keel_store::Error::Corrupt(format!("raft marker in the keyspace: {e}")))?;
    Ok(marker.last_applied)
}

/// Raises the purge gate to `log_id` (never lowers it).
fn advance(durable: &tokio::sync::watch::Sender<Option<LogId>>, log_id: Option<LogId>) {
    durable.send_if_modified(|covered| {
        let newer = *covered < log_id;
        if newer {
            *covered = log_id;
        }
        newer
    });
}

/// Rebuilds a keyspace that a crash left part-way through an entry ([`keel_store::Store::torn`])
/// from the current snapshot, or empties it if there is none; openraft then applies the log
/// after that again. The log holds every entry after the current snapshot: it is purged only
/// up to a snapshot's last log id, and only once that snapshot is durable. (Without a
/// snapshot, a log purged all the same is refused when the node starts.)
fn rebuild_torn(store: &keel_store::Store, snapshots: &SnapshotDir) -> crate::Result<()> {
    match &snapshots.current {
        Some(current) => {
            tracing::warn!(
                snapshot = %current.file,
                "the keyspace was cut short by a crash part-way through an entry; \
                 rebuilding it from the current snapshot and the log after it"
            );
            let file = File::open(snapshots.dir.join(&current.file))?;
            store.import(&mut BufReader::new(file))?;
            let bytes = codec::encode(&Marker::of_snapshot(&current.meta)).map_err(|e| {
                keel_store::Error::Storage(format!("encoding the raft marker: {e}"))
            })?;
            store.set_marker(&bytes)?;
        }
        None => {
            tracing::warn!(
                "the keyspace was cut short by a crash part-way through an entry; \
                 rebuilding it from the log"
            );
            store.clear()?;
        }
    }
    store.flush()?;
    Ok(())
}

fn lock(snapshots: &std::sync::Mutex<SnapshotDir>) -> std::sync::MutexGuard<'_, SnapshotDir> {
    snapshots
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.state.lock().await;
        Ok((state.last_applied, state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut state = self.state.lock().await;
        let mut responses = Vec::new();
        for entry in entries {
            let started = std::time::Instant::now();
            // sled writes without a flush are memory operations plus an append to sled's
            // in-memory log buffer, so they run inline rather than on the blocking pool.
            let mut next = state.clone();
            next.last_applied = Some(entry.log_id);
            if let EntryPayload::Membership(membership) = &entry.payload {
                next.last_membership =
                    StoredMembership::new(Some(entry.log_id), membership.clone());
            }
            let marker = codec::encode(&next).map_err(write_err)?;
            let response = match &entry.payload {
                // The marker names the entry, so a batch cut short by a crash resumes after
                // its last applied command when the log replays the entry.
                EntryPayload::Normal(request) => {
                    let _export_done = if request.commands.iter().any(keel_store::waits_for_exports)
                    {
                        Some(self.exporting.lock().await)
                    } else {
                        None
                    };
                    let applied = self
                        .store
                        .apply_batch(&request.commands, Some(&marker))
                        .map_err(|e| StorageError::from(StorageIOError::apply(entry.log_id, &e)))?;
                    Response(applied)
                }
                EntryPayload::Blank | EntryPayload::Membership(_) => {
                    self.store
                        .set_marker(&marker)
                        .map_err(|e| StorageError::from(StorageIOError::apply(entry.log_id, &e)))?;
                    Response::default()
                }
            };
            *state = next;
            responses.push(response);
            self.observer.applied(started.elapsed());
        }
        self.applied
            .send_replace(state.last_applied.map(|l| l.index));
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    /// A fresh file in the snapshot directory; openraft writes the received chunks into it.
    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let sequence = self.snapshot_counter.fetch_add(1, Ordering::Relaxed);
        let mut snapshots = self.snapshots();
        let path = snapshots.dir.join(format!("receiving-{sequence}.snap.tmp"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, &e)))?;
        // openraft receives one snapshot at a time: a transfer begun before this one was
        // abandoned (or is being installed through its open handle, which outlives the name).
        if let Some(abandoned) = snapshots.receiving.replace(path) {
            let _ = std::fs::remove_file(abandoned);
        }
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    /// Makes the received file the current snapshot and replaces the keyspace with it: the file
    /// is fsynced and renamed to `<id>.snap`, imported through a buffered reader, the marker is
    /// set to the snapshot's and the keyspace flushed; only then does the sidecar switch to it.
    /// (Switching first would let a crash leave a sidecar newer than the keyspace, and openraft
    /// would take the log as covered by a snapshot that was never applied.)
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let mut state = self.state.lock().await;
        let marker = Marker::of_snapshot(meta);
        let marker_bytes = codec::encode(&marker).map_err(write_err)?;
        let store = self.store.clone();
        let snapshots = self.snapshots.clone();
        let dir = self.snapshot_dir.clone();
        let meta = meta.clone();
        let durable = self.durable.clone();
        // Waits for openraft's last buffered write to reach the file.
        let received = snapshot.into_std().await;
        tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
            let signature = meta.signature();
            let io = |e: std::io::Error| snapshot_write_err(&signature, e);
            let file_name = data_file_name(&meta.snapshot_id);
            let target = dir.join(&file_name);
            let receiving = {
                let mut snapshots = lock(&snapshots);
                match snapshots.receiving.take() {
                    Some(path) if is_file_at(&received, &path) => Some(path),
                    other => {
                        snapshots.receiving = other;
                        None
                    }
                }
            };
            match receiving {
                Some(path) => {
                    received.sync_all().map_err(io)?;
                    std::fs::rename(&path, &target).map_err(io)?;
                }
                // Not the file openraft received into (a caller of `install_full_snapshot`
                // with a file of its own): copied, in bounded memory, into the directory.
                None => {
                    let tmp = dir.join(format!("{file_name}.tmp"));
                    let mut source = BufReader::new(received);
                    source.seek(SeekFrom::Start(0)).map_err(io)?;
                    let mut out = BufWriter::new(File::create(&tmp).map_err(io)?);
                    std::io::copy(&mut source, &mut out).map_err(io)?;
                    out.into_inner()
                        .map_err(|e| io(e.into_error()))?
                        .sync_all()
                        .map_err(io)?;
                    std::fs::rename(&tmp, &target).map_err(io)?;
                }
            }
            sync_dir(&dir).map_err(io)?;

            let imported = File::open(&target).map_err(io).and_then(|file| {
                store
                    .import(&mut BufReader::new(file))
                    .map_err(|e| snapshot_write_err(&signature, e))
            });
            if let Err(e) = imported {
                // Unless it is (a resend of) the current snapshot, nothing names the file.
                let is_current = lock(&snapshots)
                    .current
                    .as_ref()
                    .is_some_and(|c| c.file == file_name);
                if !is_current {
                    let _ = std::fs::remove_file(&target);
                }
                return Err(e);
            }
            // The export carries the sender's marker already; writing it again makes the
            // keyspace name exactly this snapshot whatever the sender's store recorded.
            store.set_marker(&marker_bytes).map_err(write_err)?;
            store.flush().map_err(write_err)?;
            lock(&snapshots)
                .switch(CurrentSnapshot {
                    meta: meta.clone(),
                    file: file_name,
                })
                .map_err(io)?;
            // Only now may the log be purged up to the snapshot (openraft purges while this
            // install runs): a crash after a purge past a sidecar still naming the previous
            // snapshot left a log purged beyond the snapshot, and openraft panics at startup
            // on that (found by the chaos suite).
            advance(&durable, meta.last_log_id);
            Ok(())
        })
        .await
        .map_err(write_err)??;
        *state = marker;
        self.applied
            .send_replace(state.last_applied.map(|l| l.index));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        self.snapshots().open_current().map_err(snapshot_read_err)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    /// Exports the keyspace into `<id>.snap.tmp` through a buffered writer, fsyncs and renames
    /// it to `<id>.snap`, switches the sidecar to it, and hands openraft the file opened for
    /// reading.
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // Held until the export's point is fixed, so no entry is applied between reading the
        // marker and fixing the state it describes; the export itself goes on beside applying.
        // `state` before `exporting`, as `apply` takes them.
        let state = self.state.clone().lock_owned().await;
        let exporting = self.exporting.clone().lock_owned().await;
        let store = self.store.clone();
        let snapshots = self.snapshots.clone();
        let dir = self.snapshot_dir.clone();
        let sequence = self.snapshot_counter.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match state.last_applied {
            Some(log_id) => format!(
                "{}-{}-{}-{sequence}",
                log_id.leader_id.term, log_id.leader_id.node_id, log_id.index
            ),
            None => format!("0-0-0-{sequence}"),
        };
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.last_membership.clone(),
            snapshot_id,
        };
        let current = CurrentSnapshot {
            meta: meta.clone(),
            file: data_file_name(&meta.snapshot_id),
        };
        let durable = self.durable.clone();
        let file = tokio::task::spawn_blocking(move || -> Result<File, StorageError> {
            let signature = current.meta.signature();
            let io = |e: std::io::Error| snapshot_write_err(&signature, e);
            // The keyspace holds what the snapshot covers durably before the snapshot names
            // it, so the keyspace is never behind the current snapshot.
            store.flush().map_err(write_err)?;
            let tmp = dir.join(format!("{}.tmp", current.file));
            let mut out = BufWriter::new(File::create(&tmp).map_err(io)?);
            // The point is the state the marker names; applying resumes while it is written.
            let point = store.export_point().map_err(read_err)?;
            drop(state);
            point.write(&mut out).map_err(read_err)?;
            drop(exporting);
            let written = out.into_inner().map_err(|e| io(e.into_error()))?;
            written.sync_all().map_err(io)?;
            drop(written);
            let path = dir.join(&current.file);
            std::fs::rename(&tmp, &path).map_err(io)?;
            sync_dir(&dir).map_err(io)?;
            let file = File::open(&path).map_err(io)?;
            let file_name = current.file.clone();
            let last_log_id = current.meta.last_log_id;
            if !lock(&snapshots).switch(current).map_err(io)? {
                // A newer snapshot was installed meanwhile; this one is still returned, read
                // through the open handle.
                let _ = std::fs::remove_file(dir.join(file_name));
            }
            // Both the keyspace and a durable snapshot cover `last_log_id` now: the log may
            // be purged up to it.
            advance(&durable, last_log_id);
            Ok(file)
        })
        .await
        .map_err(read_err)??;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        })
    }
}
