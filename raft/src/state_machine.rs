//! The state machine: committed entries applied to a [`keel_store::Store`], and snapshots of it.
//!
//! Every applied entry records a marker — the last applied log id and the last membership — in
//! the same atomic batch as its command, so the keyspace and openraft's view of what was applied
//! never disagree, even after a crash between flushes.

// openraft's `StorageError` is large; it is the trait's error type, so helpers return it as is.
#![allow(clippy::result_large_err)]

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::codec;
use crate::types::{
    Entry, LogId, Response, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const SNAPSHOT_FILE: &str = "current";

/// What the state machine records with every applied entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Marker {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
}

/// A snapshot as kept on disk: its metadata and the store's export.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine of one member. Cheap to clone; clones share the store and the lock.
#[derive(Clone)]
pub struct StateMachine {
    store: keel_store::Store,
    snapshot_dir: PathBuf,
    /// Serializes applying entries against building and installing snapshots: a snapshot must
    /// be the export of exactly the state its marker names. A tokio mutex because the guard is
    /// held across the blocking-pool hop of the export.
    state: Arc<Mutex<Marker>>,
    snapshot_counter: Arc<AtomicU64>,
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(openraft::AnyError::error(e.to_string())).into()
}

fn write_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(openraft::AnyError::error(e.to_string())).into()
}

impl StateMachine {
    /// Wraps `store`; snapshots are kept in the directory `snapshot_dir`.
    pub fn open(
        store: keel_store::Store,
        snapshot_dir: impl AsRef<Path>,
    ) -> crate::Result<StateMachine> {
        let snapshot_dir = snapshot_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&snapshot_dir)?;
        let marker = match store.marker()? {
            Some(bytes) => codec::decode(&bytes).map_err(|e| {
                keel_store::Error::Corrupt(format!("raft marker in the keyspace: {e}"))
            })?,
            None => Marker::default(),
        };
        Ok(StateMachine {
            store,
            snapshot_dir,
            state: Arc::new(Mutex::new(marker)),
            snapshot_counter: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The keyspace this state machine applies to.
    pub fn store(&self) -> &keel_store::Store {
        &self.store
    }

    fn snapshot_path(&self) -> PathBuf {
        self.snapshot_dir.join(SNAPSHOT_FILE)
    }

    /// Writes the snapshot file atomically (temp file, fsync, rename, fsync the directory), so
    /// a crash leaves either the old snapshot or the new one.
    fn save_snapshot_file(dir: &Path, file: &SnapshotFile) -> std::io::Result<()> {
        let bytes = codec::encode(file).map_err(std::io::Error::other)?;
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let mut out = std::fs::File::create(&tmp)?;
        out.write_all(&bytes)?;
        out.sync_all()?;
        std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    fn load_snapshot_file(&self) -> Result<Option<SnapshotFile>, StorageError> {
        match std::fs::read(self.snapshot_path()) {
            Ok(bytes) => Ok(Some(codec::decode(&bytes).map_err(|e| {
                StorageError::from(StorageIOError::read_snapshot(
                    None,
                    openraft::AnyError::error(e.to_string()),
                ))
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageIOError::read_snapshot(None, &e).into()),
        }
    }
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
                EntryPayload::Normal(request) => {
                    let applied = self
                        .store
                        .apply(&request.command, Some(&marker))
                        .map_err(|e| StorageError::from(StorageIOError::apply(entry.log_id, &e)))?;
                    Response(Some(applied))
                }
                EntryPayload::Blank | EntryPayload::Membership(_) => {
                    self.store
                        .set_marker(&marker)
                        .map_err(|e| StorageError::from(StorageIOError::apply(entry.log_id, &e)))?;
                    Response(None)
                }
            };
            *state = next;
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let mut state = self.state.lock().await;
        let marker = Marker {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        };
        let marker_bytes = codec::encode(&marker).map_err(write_err)?;
        let store = self.store.clone();
        let dir = self.snapshot_dir.clone();
        let file = SnapshotFile {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let signature = meta.signature();
        tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
            store.import(&mut file.data.as_slice()).map_err(write_err)?;
            // The export carries the sender's marker already; writing it again makes the
            // keyspace name exactly this snapshot whatever the sender's store recorded.
            store.set_marker(&marker_bytes).map_err(write_err)?;
            store.flush().map_err(write_err)?;
            Self::save_snapshot_file(&dir, &file).map_err(|e| {
                StorageError::from(StorageIOError::write_snapshot(Some(signature), &e))
            })?;
            Ok(())
        })
        .await
        .map_err(write_err)??;
        *state = marker;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.load_snapshot_file()?.map(|file| Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(file.data)),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // Held until the export is done, so no entry is applied between reading the marker and
        // exporting the state it describes.
        let state = self.state.clone().lock_owned().await;
        let store = self.store.clone();
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
        let file_meta = meta.clone();
        let data = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, StorageError> {
            let _state = state;
            // openraft purges the log up to the snapshot once it has it, so everything the
            // snapshot covers must be durable in the keyspace first.
            store.flush().map_err(write_err)?;
            let mut data = Vec::new();
            store.export(&mut data).map_err(read_err)?;
            let file = SnapshotFile {
                meta: file_meta,
                data,
            };
            Self::save_snapshot_file(&dir, &file).map_err(|e| {
                StorageError::from(StorageIOError::write_snapshot(
                    Some(file.meta.signature()),
                    &e,
                ))
            })?;
            Ok(file.data)
        })
        .await
        .map_err(read_err)??;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
