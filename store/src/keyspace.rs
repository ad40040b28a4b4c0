//! The MVCC keyspace: [`Store`] applies commands at a new revision and reads at any retained one.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::batch::{Pending, Written};
use crate::codec;
use crate::error::{Error, Result};
use crate::event_log::{self, read_record};
use crate::index::{self, KeyRange, Record, KIND_PUT};
use crate::kv::{Event, KeyValue};
use crate::lease::{LeaseInfo, LeaseKeys};
use crate::request::{
    Applied, Command, RangeRequest, RangeResponse, RequestOp, SortOrder, SortTarget, TxnRequest,
};
use crate::revision::Revision;
use crate::snapshot;
use crate::watch::{WatchCache, WatchRequest, Watcher};
use crate::write_set::WriteSet;

/// Limits and tuning of a store.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest encoded command accepted, bytes (etcd's `--max-request-bytes`, 1.5 MiB).
    pub max_request_bytes: usize,
    /// How many recent revisions' events are kept in memory for live watchers; older
    /// revisions are replayed from disk.
    pub watch_cache_revisions: usize,
    /// The most memory sled's page cache may hold, bytes. sled's own default (1 GiB) keeps a
    /// keyspace of a million keys wholly in memory; pages beyond the cache are read back
    /// from the file (and the operating system's cache) when used.
    pub cache_capacity_bytes: u64,
}

/// [`Config::cache_capacity_bytes`] by default: 64 MiB. sled counts its cache below the
/// memory it takes: with a million keys in a 3-member cluster, 128 MiB left each member at
/// about 380 MiB of RSS and 64 MiB at about 245 MiB, with the same write rate.
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 64 << 20;

impl Default for Config {
    fn default() -> Self {
        Config {
            max_request_bytes: 1536 * 1024,
            watch_cache_revisions: 4096,
            cache_capacity_bytes: DEFAULT_CACHE_CAPACITY_BYTES,
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
pub struct Store {
    inner: Arc<Inner>,
}

/// A write of a meta key (`None` removes it) that goes into a command's atomic batch.
type MetaWrite = (&'static [u8], Option<Vec<u8>>);

fn add_meta(batch: &mut WriteSet, meta: &[MetaWrite]) {
    for (key, value) in meta {
        match value {
            Some(value) => batch.insert(*key, value.clone()),
            None => batch.remove(*key),
        }
    }
}

/// How far into the batch named by `marker` [`Store::apply_batch`] got.
#[derive(serde::Serialize, serde::Deserialize)]
struct BatchProgress {
    marker: Vec<u8>,
    applied: usize,
}

/// The meta writes that go with the write ending at the `applied`th of `total` commands of
/// the batch named by `marker`: the marker itself after the last, a note of progress before.
fn batch_meta(marker: Option<&[u8]>, applied: usize, total: usize) -> Result<Vec<MetaWrite>> {
    Ok(match marker {
        None => Vec::new(),
        Some(marker) if applied == total => vec![
            (index::META_MARKER, Some(marker.to_vec())),
            (index::META_BATCH_PROGRESS, None),
        ],
        Some(marker) => {
            let progress = BatchProgress {
                marker: marker.to_vec(),
                applied,
            };
            vec![(index::META_BATCH_PROGRESS, Some(codec::encode(&progress)?))]
        }
    })
}

/// Whether `command` may be written in one run with the commands around it: it reads only the
/// keys' current values, which a run keeps for its later commands ([`Written`]), and writes
/// no lease, compaction or auth record. A transaction reading at an explicit revision reads
/// the history, which the run does not keep, so it goes alone.
fn runs_with_others(command: &Command) -> bool {
    fn reads_only_current(txn: &TxnRequest) -> bool {
        txn.success.iter().chain(&txn.failure).all(|op| match op {
            RequestOp::Range(range) => range.revision <= 0,
            RequestOp::Txn(nested) => reads_only_current(nested),
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => true,
        })
    }
    match command {
        Command::Put(_) | Command::DeleteRange(_) => true,
        Command::Txn(txn) => reads_only_current(txn),
        Command::Compact { .. }
        | Command::LeaseGrant { .. }
        | Command::LeaseRevoke { .. }
        | Command::Auth(_)
        | Command::Alarm(_) => false,
    }
}

/// Whether applying `command` waits for an export in progress ([`Store::export_point`]):
/// compactions, leases and auth changes do; puts, deletes and transactions do not.
pub fn waits_for_exports(command: &Command) -> bool {
    !runs_with_others(command)
}

/// Commands of one [`Store::apply_batch`] executed and not yet written to the tree.
#[derive(Default)]
struct Run {
    /// How many commands ran, failed ones included.
    commands: usize,
    batch: WriteSet,
    /// The keys' current values as the run left them.
    written: Written,
    /// Each revision the run wrote, with its events, in order.
    events: Vec<(i64, Vec<Event>)>,
    /// The revision after the run's last write.
    revision: i64,
}

/// The name under which the database's default tree records which tree is live; an import
/// fills a fresh tree and flips this name, so a crash mid-import leaves the old state.
const ACTIVE_TREE: &[u8] = b"active-keyspace";
const TREE_PREFIX: &str = "keyspace-";

pub(crate) struct Inner {
    db: sled::Db,
    tree: RwLock<sled::Tree>,
    pub(crate) config: Config,
    current: AtomicI64,
    compacted: AtomicI64,
    /// Serializes writers. Only the Raft apply loop writes, so there is no contention to
    /// speak of, and a std mutex keeps `apply` callable from sync code; it is never held
    /// across an await.
    writer: Mutex<()>,
    /// Held by an export for its whole length, and by every write an export could not see
    /// past (compactions, leases, auth, imports), which take it before `writer`. Puts,
    /// deletes and transactions do not take it: an export reads the keyspace as of its
    /// revision, which they cannot change (see [`Store::export`]).
    exclusive: Mutex<()>,
    /// Readers hold it shared so a multi-key read never sees half of a command; `apply`
    /// takes it exclusively only around the batch write and the revision bump.
    view: RwLock<()>,
    pub(crate) cache: Mutex<WatchCache>,
    /// The current revision, published after every apply to wake watchers.
    pub(crate) published: tokio::sync::watch::Sender<i64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these half-updated in a way that matters: the guarded
    // data is `()` or a cache that is rebuilt from disk when it has a gap.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Inner {
    fn drop(&mut self) {
        // sled writes back on its IO threads, which keep the database (and its file lock)
        // alive for a moment after the last handle goes; flushing first lets a reopen of
        // the same path right after the drop find the lock free.
        if let Err(e) = self.db.flush() {
            tracing::warn!(error = %e, "flush on close failed");
        }
    }
}

impl Inner {
    pub(crate) fn tree(&self) -> sled::Tree {
        read(&self.tree).clone()
    }

    /// The live tree, with the view held shared: `import` drops the old tree after swapping
    /// in the new one under the exclusive view, so a reader holding this guard never reads a
    /// dropped tree.
    pub(crate) fn viewed_tree(&self) -> (RwLockReadGuard<'_, ()>, sled::Tree) {
        let view = read(&self.view);
        (view, self.tree())
    }

    pub(crate) fn current_revision(&self) -> i64 {
        self.current.load(Ordering::Acquire)
    }

    pub(crate) fn compact_revision(&self) -> i64 {
        self.compacted.load(Ordering::Acquire)
    }
}

impl Store {
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Opens (or creates) the keyspace in `path`.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Store> {
        Store::with_db(open_db(path.as_ref(), config.cache_capacity_bytes)?, config)
    }

    /// A keyspace in a temporary directory, removed on drop (tests, benches).
    pub fn temporary(config: Config) -> Result<Store> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(config.cache_capacity_bytes)
            .open()?;
        Store::with_db(db, config)
    }

    fn with_db(db: sled::Db, config: Config) -> Result<Store> {
        // A new database's file stays empty until sled's first write of its IO buffer: runs
        // of single writes (see `write_set`) leave that to its background flush, up to half a
        // second later, so a new member reported a size on disk of 0 (`endpoint status`'s
        // dbSize) after its first writes. Writing the new database out once ends that.
        if db.size_on_disk()? == 0 {
            db.flush()?;
        }
        let active = match db.get(ACTIVE_TREE)? {
            Some(name) => name.to_vec(),
            None => format!("{TREE_PREFIX}0").into_bytes(),
        };
        // Leftovers of an import that did not finish.
        for name in db.tree_names() {
            if name.starts_with(TREE_PREFIX.as_bytes()) && name.as_ref() != active.as_slice() {
                db.drop_tree(&name)?;
            }
        }
        let tree = db.open_tree(&active)?;
        let current = index::meta_i64(tree.get(index::META_REVISION)?, 1)?;
        let compacted = index::meta_i64(tree.get(index::META_COMPACTED)?, 0)?;
        let (published, _) = tokio::sync::watch::channel(current);
        let cache = WatchCache::new(config.watch_cache_revisions);
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                tree: RwLock::new(tree),
                config,
                current: AtomicI64::new(current),
                compacted: AtomicI64::new(compacted),
                writer: Mutex::new(()),
                exclusive: Mutex::new(()),
                view: RwLock::new(()),
                cache: Mutex::new(cache),
                published,
            }),
        })
    }

    /// Checks what can be checked without the keyspace: key presence, flag combinations and
    /// the encoded size. `apply` runs the same checks; the server may call this to reject a
    /// request before proposing it.
    pub fn validate(&self, command: &Command) -> Result<()> {
        let size = command.encoded_len()?;
        let limit = self.inner.config.max_request_bytes;
        if size > limit {
            return Err(Error::RequestTooLarge { size, limit });
        }
        match command {
            Command::Put(put) => validate_put(&put.key, put),
            Command::DeleteRange(delete) => non_empty(&delete.key),
            Command::Txn(txn) => validate_txn(txn),
            Command::Compact { .. }
            | Command::LeaseGrant { .. }
            | Command::LeaseRevoke { .. }
            | Command::Auth(_)
            | Command::Alarm(_) => Ok(()),
        }
    }

    /// Applies one write and records `marker` (opaque caller state, e.g. the last applied Raft
    /// log id) in the same atomic batch. Does not flush. The outer error is a storage failure
    /// (fatal); the inner result is the client-visible outcome.
    pub fn apply(&self, command: &Command, marker: Option<&[u8]>) -> Result<Applied> {
        let _exclusive = waits_for_exports(command).then(|| lock(&self.inner.exclusive));
        let _writer = lock(&self.inner.writer);
        let meta: Vec<MetaWrite> = marker
            .map(|marker| (index::META_MARKER, Some(marker.to_vec())))
            .into_iter()
            .collect();
        self.apply_locked(command, &meta)
    }

    /// Applies `commands` in order, each exactly as [`Store::apply`] would: its own revision,
    /// its own outcome (a client error in one leaves the others alone), its own watch events.
    /// `marker` is recorded with the last one. Does not flush.
    ///
    /// Runs of puts, deletes and transactions are written together: each such command reads
    /// what the earlier ones of its run wrote, and the run's writes go into the tree key by
    /// key between an open mark and its removal, not as a sled batch, which costs sled two
    /// IO-buffer writes on its thread pool (see `write_set`). A crash part-way through a run
    /// leaves the mark, and [`Store::torn`] says so on the next open. Compactions, leases and
    /// auth changes, which read the keyspace more widely and are rare, are written alone, as
    /// atomic sled batches, after the run before them.
    ///
    /// Each write also records how far into this batch the keyspace is, keyed by `marker`;
    /// so a crash between two writes leaves a keyspace that is a consistent prefix of the
    /// commands, and calling `apply_batch` again with the same commands and marker (a Raft log
    /// replaying its entry) applies only the rest. The commands applied before the crash are
    /// answered with an [`Error::InvalidRequest`] then: their outcome was not kept, and nobody
    /// who asked for it survived the crash. The note of progress travels in [`Store::export`],
    /// so a snapshot of such a keyspace resumes the same way wherever it is installed.
    pub fn apply_batch(&self, commands: &[Command], marker: Option<&[u8]>) -> Result<Vec<Applied>> {
        let waits = commands.iter().any(waits_for_exports);
        let _exclusive = waits.then(|| lock(&self.inner.exclusive));
        let _writer = lock(&self.inner.writer);
        let tree = self.inner.tree();
        let resume_after = match (marker, tree.get(index::META_BATCH_PROGRESS)?) {
            (Some(marker), Some(bytes)) => {
                let progress: BatchProgress = codec::decode(&bytes)?;
                if progress.marker == marker {
                    progress.applied
                } else {
                    0
                }
            }
            _ => 0,
        };
        let progress = |applied: usize| batch_meta(marker, applied, commands.len());
        let mut applied = Vec::with_capacity(commands.len());
        let mut run = Run::default();
        for (position, command) in commands.iter().enumerate() {
            if position < resume_after {
                applied.push(Applied {
                    revision: self.inner.current_revision(),
                    result: Err(Error::InvalidRequest(
                        "applied before a restart; its outcome was not kept".into(),
                    )),
                });
                continue;
            }
            if runs_with_others(command) {
                applied.push(self.execute_in_run(&tree, &mut run, command)?);
                continue;
            }
            self.write_run(&tree, &mut run, &progress(position)?)?;
            applied.push(self.apply_locked(command, &progress(position + 1)?)?);
        }
        self.write_run(&tree, &mut run, &progress(commands.len())?)?;
        if commands.is_empty() {
            if let Some(marker) = marker {
                tree.insert(index::META_MARKER, marker)?;
            }
        }
        Ok(applied)
    }

    /// Executes `command` after the earlier commands of `run`, adding its writes to the run's
    /// batch: nothing reaches the tree until [`Store::write_run`].
    fn execute_in_run(
        &self,
        tree: &sled::Tree,
        run: &mut Run,
        command: &Command,
    ) -> Result<Applied> {
        if run.commands == 0 {
            run.revision = self.inner.current_revision();
        }
        run.commands += 1;
        let compacted = self.inner.compact_revision();
        let mut pending = Pending::new(tree, &run.written, run.revision, compacted);
        let response = match self
            .validate(command)
            .and_then(|()| pending.execute(command))
        {
            Ok(response) => response,
            Err(fatal @ (Error::Storage(_) | Error::Corrupt(_))) => return Err(fatal),
            Err(client) => {
                return Ok(Applied {
                    revision: run.revision,
                    result: Err(client),
                })
            }
        };
        let revision = pending.revision_after();
        pending.write_into(&mut run.batch)?;
        let (written, events) = pending.into_writes();
        run.written.extend(written);
        if revision != run.revision {
            run.events.push((revision, events));
            run.revision = revision;
        }
        Ok(Applied {
            revision,
            result: Ok(response),
        })
    }

    /// Writes `run`'s commands with `meta` as one bracketed step, then publishes their
    /// revisions to readers and watchers, as [`Store::apply_locked`] does for one command.
    fn write_run(&self, tree: &sled::Tree, run: &mut Run, meta: &[MetaWrite]) -> Result<()> {
        if run.commands == 0 {
            return Ok(());
        }
        let Run {
            mut batch,
            events,
            revision,
            ..
        } = std::mem::take(run);
        add_meta(&mut batch, meta);
        let inner = &*self.inner;
        {
            let _view = write(&inner.view);
            batch.write_bracketed(tree)?;
            inner.current.store(revision, Ordering::Release);
        }
        if !events.is_empty() {
            let mut cache = lock(&inner.cache);
            for (revision, events) in events {
                cache.push(revision, events);
            }
            drop(cache);
            inner.published.send_replace(revision);
        }
        Ok(())
    }

    /// [`Store::apply`] with the writer lock held, writing `meta` in the command's batch.
    fn apply_locked(&self, command: &Command, meta: &[MetaWrite]) -> Result<Applied> {
        let inner = &*self.inner;
        let tree = inner.tree();
        let current = inner.current_revision();
        let compacted = inner.compact_revision();
        let nothing_earlier = Written::new();
        let mut pending = Pending::new(&tree, &nothing_earlier, current, compacted);
        let outcome = self
            .validate(command)
            .and_then(|()| pending.execute(command));
        let response = match outcome {
            Ok(response) => response,
            Err(fatal @ (Error::Storage(_) | Error::Corrupt(_))) => return Err(fatal),
            Err(client) => {
                if !meta.is_empty() {
                    let mut batch = WriteSet::default();
                    add_meta(&mut batch, meta);
                    batch.write_atomically(&tree)?;
                }
                return Ok(Applied {
                    revision: current,
                    result: Err(client),
                });
            }
        };
        let mut batch = WriteSet::default();
        pending.write_into(&mut batch)?;
        add_meta(&mut batch, meta);
        let revision = pending.revision_after();
        {
            let _view = write(&inner.view);
            batch.write_atomically(&tree)?;
            inner.current.store(revision, Ordering::Release);
            if let Some(compact_to) = pending.compact_to {
                inner.compacted.store(compact_to, Ordering::Release);
            }
        }
        if revision != current {
            let events = std::mem::take(&mut pending.events);
            lock(&inner.cache).push(revision, events);
        }
        if revision != current || pending.compact_to.is_some() {
            inner.published.send_replace(revision);
        }
        Ok(Applied {
            revision,
            result: Ok(response),
        })
    }

    /// Records `marker` alone (for log entries that carry no command).
    pub fn set_marker(&self, marker: &[u8]) -> Result<()> {
        let _writer = lock(&self.inner.writer);
        self.inner.tree().insert(index::META_MARKER, marker)?;
        Ok(())
    }

    /// Forgets the recorded marker, so the keyspace claims nothing about what was applied to
    /// it (a snapshot restored as the first state of a new cluster, whose log starts empty).
    pub fn clear_marker(&self) -> Result<()> {
        let _writer = lock(&self.inner.writer);
        self.inner.tree().remove(index::META_MARKER)?;
        Ok(())
    }

    /// The last recorded marker.
    pub fn marker(&self) -> Result<Option<Vec<u8>>> {
        let (_view, tree) = self.inner.viewed_tree();
        Ok(tree.get(index::META_MARKER)?.map(|m| m.to_vec()))
    }

    /// Makes everything applied so far durable (fsync). Durability is the caller's choice.
    pub fn flush(&self) -> Result<()> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// Reads a range at the current or a retained revision.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse> {
        non_empty(&request.key)?;
        let inner = &*self.inner;
        let _view = read(&inner.view);
        read_range(
            &inner.tree(),
            request,
            inner.current_revision(),
            inner.compact_revision(),
        )
    }

    /// The current revision (1 on an empty store, as etcd).
    pub fn current_revision(&self) -> i64 {
        self.inner.current_revision()
    }

    /// The compacted revision (0 if never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.inner.compact_revision()
    }

    /// Every retained version of `key` (puts and deletes), oldest first.
    pub fn history(&self, key: &[u8]) -> Result<Vec<Event>> {
        let _view = read(&self.inner.view);
        let tree = self.inner.tree();
        let mut events = Vec::new();
        for entry in tree.scan_prefix(index::history_prefix(key)) {
            let (tree_key, _) = entry?;
            let (_, rev) = index::parse_history_key(&tree_key)?;
            events.push(read_record(&tree, rev)?.into_event(rev));
        }
        Ok(events)
    }

    /// Every lease, in id order.
    pub fn leases(&self) -> Result<Vec<LeaseInfo>> {
        let (_view, tree) = self.inner.viewed_tree();
        tree.scan_prefix([index::LEASE])
            .map(|entry| codec::decode(&entry?.1))
            .collect()
    }

    /// One lease with its attached keys, or `None` if it does not exist.
    pub fn lease(&self, id: i64) -> Result<Option<LeaseKeys>> {
        let _view = read(&self.inner.view);
        let tree = self.inner.tree();
        let Some(bytes) = tree.get(index::lease_key(id))? else {
            return Ok(None);
        };
        let lease: LeaseInfo = codec::decode(&bytes)?;
        let prefix = index::attach_prefix(id);
        let keys = tree
            .scan_prefix(&prefix)
            .map(|entry| Ok(entry?.0[prefix.len()..].to_vec()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(LeaseKeys { lease, keys }))
    }

    /// Starts a watch.
    pub fn watch(&self, request: WatchRequest) -> Result<Watcher> {
        Ok(Watcher::new(&self.inner, request))
    }

    /// Checksum of the retained history up to `revision` (0 = current).
    pub fn hash_kv(&self, revision: i64) -> Result<HashKv> {
        let inner = &*self.inner;
        let _view = read(&inner.view);
        let current = inner.current_revision();
        let compacted = inner.compact_revision();
        let revision = if revision <= 0 { current } else { revision };
        check_readable(revision, current, compacted)?;
        let mut hasher = crc32fast::Hasher::new();
        // Record by record, each under its own revision: members group records by how
        // their applies were batched, which differs between members.
        let end = index::event_key(Revision::new(revision + 1, 0));
        for entry in inner.tree().range(vec![index::EVENT]..end) {
            let (key, value) = entry?;
            for (rev, record) in event_log::records(&key, &value)? {
                if rev.main > revision {
                    break;
                }
                hasher.update(&index::event_key(rev));
                hasher.update(record);
            }
        }
        Ok(HashKv {
            hash: hasher.finalize(),
            revision,
            compact_revision: compacted,
        })
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.inner.db.size_on_disk()?)
    }

    /// Writes the whole state (keyspace, history, leases, auth, revisions, marker) to `out`.
    pub fn export(&self, out: &mut dyn std::io::Write) -> Result<u64> {
        self.export_point()?.write(out)
    }

    /// Fixes the state [`ExportPoint::write`] writes: the keyspace as it is now. Applies go on
    /// meanwhile, except those an export could not see past (compactions, leases, auth,
    /// imports), which wait until the point is written or dropped.
    ///
    /// sled's iterators are not snapshots, so the export reads the keyspace as of the point's
    /// revision instead, which later puts, deletes and transactions do not change: events and
    /// history entries up to it, each key's value and lease attachment at it (from the
    /// history), and the meta entries (revision, marker, batch progress) as they are now.
    pub fn export_point(&self) -> Result<ExportPoint<'_>> {
        let exclusive = lock(&self.inner.exclusive);
        let _writer = lock(&self.inner.writer);
        let tree = self.inner.tree();
        let meta = tree
            .scan_prefix([index::META])
            .map(|entry| entry.map(|(key, value)| (key.to_vec(), value.to_vec())))
            .collect::<std::result::Result<_, _>>()?;
        Ok(ExportPoint {
            _exclusive: exclusive,
            tree,
            revision: self.inner.current_revision(),
            meta,
        })
    }

    /// Replaces the whole state with a stream written by [`Store::export`]; watchers are
    /// carried over (replaying from the new state, or told Compacted).
    /// An etcd snapshot (see [`crate::etcd_format`]) is recognised and imported too, if auth
    /// is off in it (otherwise use [`Store::import_etcd`] with a token secret).
    pub fn import(&self, input: &mut dyn std::io::Read) -> Result<()> {
        use std::io::Read as _;
        let mut head = Vec::with_capacity(crate::etcd_format::DETECT_LEN);
        input
            .take(crate::etcd_format::DETECT_LEN as u64)
            .read_to_end(&mut head)?;
        if crate::etcd_format::SnapshotFormat::detect(&head)
            == Some(crate::etcd_format::SnapshotFormat::Etcd)
        {
            // bbolt is read by page, so the stream is held whole.
            input.read_to_end(&mut head)?;
            // A digest is checked when the file has one; a stream's reader may have taken it
            // off already (etcd sends it as a message of its own).
            let options = crate::etcd_format::EtcdImportOptions {
                skip_hash_check: true,
                ..Default::default()
            };
            self.import_etcd(std::io::Cursor::new(head), &options)?;
            return Ok(());
        }
        let mut input = (&head[..]).chain(input);
        self.replace_with(|staging| snapshot::import(staging, &mut input))
    }

    /// Replaces the whole state with an empty keyspace, as [`Store::import`] would.
    pub fn clear(&self) -> Result<()> {
        self.replace_with(|_| Ok(()))
    }

    /// Whether a crash cut the last write short, leaving part of a step's writes in the
    /// keyspace (see [`Store::apply_batch`]). Such a keyspace must not be read or applied to:
    /// its owner rebuilds it ([`Store::import`] of a snapshot it was built from, or
    /// [`Store::clear`]) and applies again what came after.
    pub fn torn(&self) -> Result<bool> {
        Ok(self.inner.tree().contains_key(index::META_OPEN)?)
    }

    /// Leaves the keyspace as a crash part-way through a step would: the step's open mark
    /// and `key` set to `value` (not an encoded value). For crash tests of the owner.
    #[doc(hidden)]
    pub fn cut_short_for_tests(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let _writer = lock(&self.inner.writer);
        let tree = self.inner.tree();
        tree.insert(index::META_OPEN, &[][..])?;
        tree.insert(index::current_key(key), value)?;
        self.inner.db.flush()?;
        Ok(())
    }

    /// Fills a fresh tree with `fill` and switches the keyspace to it, durably.
    pub(crate) fn replace_with(&self, fill: impl FnOnce(&sled::Tree) -> Result<()>) -> Result<()> {
        let inner = &*self.inner;
        let _exclusive = lock(&inner.exclusive);
        let old_name = read(&inner.tree).name();
        let generation = old_name
            .strip_prefix(TREE_PREFIX.as_bytes())
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let staging_name = format!("{TREE_PREFIX}{}", generation + 1);
        inner.db.drop_tree(staging_name.as_bytes())?;
        let staging = inner.db.open_tree(staging_name.as_bytes())?;
        if let Err(e) = fill(&staging) {
            drop(staging);
            inner.db.drop_tree(staging_name.as_bytes())?;
            return Err(e);
        }
        let current = index::meta_i64(staging.get(index::META_REVISION)?, 1)?;
        let compacted = index::meta_i64(staging.get(index::META_COMPACTED)?, 0)?;
        // The staged state must be durable before the switch points at it.
        inner.db.flush()?;
        let _writer = lock(&inner.writer);
        {
            let _view = write(&inner.view);
            inner.db.insert(ACTIVE_TREE, staging_name.as_bytes())?;
            inner.db.flush()?;
            *write(&inner.tree) = staging;
            inner.current.store(current, Ordering::Release);
            inner.compacted.store(compacted, Ordering::Release);
            lock(&inner.cache).clear();
        }
        inner.db.drop_tree(&old_name)?;
        inner.published.send_replace(current);
        Ok(())
    }
}

/// A state of the keyspace to export, fixed by [`Store::export_point`].
pub struct ExportPoint<'a> {
    _exclusive: MutexGuard<'a, ()>,
    tree: sled::Tree,
    revision: i64,
    meta: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ExportPoint<'_> {
    /// The revision the export holds the keyspace at.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Writes the keyspace as of this point in [`Store::import`]'s format; returns the bytes
    /// written.
    pub fn write(self, out: &mut dyn std::io::Write) -> Result<u64> {
        snapshot::export_at(&self.tree, self.revision, &self.meta, out)
    }

    /// The tree, the revision and the compaction revision the point holds (compactions wait
    /// while it is held, so the tree's is the point's).
    pub(crate) fn parts(&self) -> Result<(sled::Tree, i64, i64)> {
        let compacted = index::meta_i64(self.tree.get(index::META_COMPACTED)?, 0)?;
        Ok((self.tree.clone(), self.revision, compacted))
    }
}

/// Opens the sled database in `path`, waiting briefly for the file lock when this process has
/// just dropped a database on the same path: sled's IO threads release it a moment after the
/// last handle. (Raft's log opens its own database this way too.)
pub fn open_db(path: &Path, cache_capacity_bytes: u64) -> sled::Result<sled::Db> {
    const ATTEMPTS: u32 = 200;
    let mut attempt = 0;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            .open()
        {
            Err(sled::Error::Io(e))
                if attempt < ATTEMPTS && e.to_string().contains("could not acquire lock") =>
            {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn non_empty(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        Err(Error::EmptyKey)
    } else {
        Ok(())
    }
}

fn validate_put(key: &[u8], put: &crate::request::PutRequest) -> Result<()> {
    non_empty(key)?;
    if put.ignore_value && !put.value.is_empty() {
        return Err(Error::InvalidRequest(
            "value is provided with ignore_value".into(),
        ));
    }
    if put.ignore_lease && put.lease != 0 {
        return Err(Error::InvalidRequest(
            "lease is provided with ignore_lease".into(),
        ));
    }
    Ok(())
}

fn validate_txn(txn: &TxnRequest) -> Result<()> {
    for compare in &txn.compare {
        non_empty(&compare.key)?;
    }
    for op in txn.success.iter().chain(&txn.failure) {
        match op {
            RequestOp::Range(range) => non_empty(&range.key)?,
            RequestOp::Put(put) => validate_put(&put.key, put)?,
            RequestOp::DeleteRange(delete) => non_empty(&delete.key)?,
            RequestOp::Txn(inner) => validate_txn(inner)?,
        }
    }
    Ok(())
}

pub(crate) fn check_readable(revision: i64, current: i64, compacted: i64) -> Result<()> {
    if revision > current {
        return Err(Error::FutureRevision {
            current_revision: current,
        });
    }
    if revision < compacted {
        return Err(Error::Compacted {
            compact_revision: compacted,
        });
    }
    Ok(())
}

/// A range at the current or an older revision, with every option applied.
pub(crate) fn read_range(
    tree: &sled::Tree,
    request: &RangeRequest,
    current: i64,
    compacted: i64,
) -> Result<RangeResponse> {
    let revision = if request.revision <= 0 {
        current
    } else {
        request.revision
    };
    check_readable(revision, current, compacted)?;
    let range = KeyRange::new(&request.key, &request.range_end);
    if revision == current && counts_without_decoding(request, &range) {
        return count_current(tree, &range, request);
    }
    let kvs = if revision == current {
        scan_current(tree, &range)?
    } else {
        scan_at(tree, &range, revision)?
    };
    Ok(finish_range(request, kvs))
}

/// Whether a current read needs only the first `limit` values decoded: key order, no
/// revision filters, and a limit (or count only). Paginated lists of a large prefix — what
/// Kubernetes does all day — then cost a key scan, not a decode of every value.
fn counts_without_decoding(request: &RangeRequest, range: &KeyRange) -> bool {
    let key_order = matches!(
        (request.sort_order, request.sort_target),
        (SortOrder::None, SortTarget::Key) | (SortOrder::Ascend, SortTarget::Key)
    );
    let filtered = request.min_mod_revision > 0
        || request.max_mod_revision > 0
        || request.min_create_revision > 0
        || request.max_create_revision > 0;
    let single = matches!(range, KeyRange::Single(_));
    key_order && !filtered && !single && (request.limit > 0 || request.count_only)
}

/// [`read_range`] at the current revision when [`counts_without_decoding`] holds.
fn count_current(
    tree: &sled::Tree,
    range: &KeyRange,
    request: &RangeRequest,
) -> Result<RangeResponse> {
    let (lo, hi) = range.tree_bounds(index::CURRENT);
    let mut response = RangeResponse::default();
    if lo >= hi {
        return Ok(response);
    }
    let wanted = if request.count_only {
        0
    } else {
        request.limit as usize
    };
    for entry in tree.range(lo..hi) {
        let (_, bytes) = entry?;
        response.count += 1;
        if response.kvs.len() < wanted {
            let mut kv: KeyValue = codec::decode(&bytes)?;
            if request.keys_only {
                kv.value = Vec::new();
            }
            response.kvs.push(kv);
        }
    }
    response.more = !request.count_only && response.count > request.limit;
    Ok(response)
}

/// The live keys in `range`, in key order.
pub(crate) fn scan_current(tree: &sled::Tree, range: &KeyRange) -> Result<Vec<KeyValue>> {
    if let KeyRange::Single(key) = range {
        return match tree.get(index::current_key(key))? {
            Some(bytes) => Ok(vec![codec::decode(&bytes)?]),
            None => Ok(Vec::new()),
        };
    }
    let (lo, hi) = range.tree_bounds(index::CURRENT);
    if lo >= hi {
        return Ok(Vec::new());
    }
    tree.range(lo..hi)
        .map(|entry| codec::decode(&entry?.1))
        .collect()
}

/// The put of `key` at `revision`, which its history names as a put. Most keys in a read at
/// a recent revision (or an export) have not changed since, and their current entry is one
/// lookup; the event log's entry holding the revision is a range lookup and a walk through
/// its group.
pub(crate) fn put_at(tree: &sled::Tree, key: &[u8], revision: Revision) -> Result<KeyValue> {
    if let Some(bytes) = tree.get(index::current_key(key))? {
        let kv: KeyValue = codec::decode(&bytes)?;
        if kv.mod_revision == revision.main {
            return Ok(kv);
        }
    }
    match read_record(tree, revision)? {
        Record::Put(kv) => Ok(kv),
        Record::Delete(_) => Err(Error::Corrupt(format!(
            "history holds a put at {}.{} but the event log a tombstone",
            revision.main, revision.sub
        ))),
    }
}

/// The keys in `range` as they were at `revision`, in key order.
fn scan_at(tree: &sled::Tree, range: &KeyRange, revision: i64) -> Result<Vec<KeyValue>> {
    let (lo, hi) = range.history_bounds();
    if lo >= hi {
        return Ok(Vec::new());
    }
    let mut kvs = Vec::new();
    // Per key, the newest entry at or below `revision`; entries come oldest first.
    let mut candidate: Option<(Vec<u8>, Revision, bool)> = None;
    let mut take = |candidate: Option<(Vec<u8>, Revision, bool)>| -> Result<()> {
        if let Some((key, rev, true)) = candidate {
            kvs.push(put_at(tree, &key, rev)?);
        }
        Ok(())
    };
    for entry in tree.range(lo..hi) {
        let (tree_key, kind) = entry?;
        let (key, rev) = index::parse_history_key(&tree_key)?;
        let same_key = candidate.as_ref().is_some_and(|(k, _, _)| *k == key);
        if !same_key {
            take(candidate.take())?;
        }
        if rev.main <= revision {
            let is_put = kind.first() == Some(&KIND_PUT);
            candidate = Some((key, rev, is_put));
        } else if !same_key {
            candidate = Some((key, rev, false));
        }
    }
    take(candidate)?;
    Ok(kvs)
}

/// Applies filters, count, sort, limit and the keys-only / count-only options.
pub(crate) fn finish_range(request: &RangeRequest, kvs: Vec<KeyValue>) -> RangeResponse {
    let mut kvs: Vec<KeyValue> = kvs
        .into_iter()
        .filter(|kv| {
            (request.min_mod_revision <= 0 || kv.mod_revision >= request.min_mod_revision)
                && (request.max_mod_revision <= 0 || kv.mod_revision <= request.max_mod_revision)
                && (request.min_create_revision <= 0
                    || kv.create_revision >= request.min_create_revision)
                && (request.max_create_revision <= 0
                    || kv.create_revision <= request.max_create_revision)
        })
        .collect();
    let count = kvs.len() as i64;
    if request.count_only {
        return RangeResponse {
            kvs: Vec::new(),
            more: false,
            count,
        };
    }
    let by_target = |a: &KeyValue, b: &KeyValue| match request.sort_target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    };
    // etcd sorts ascending when a target other than the key is named without an order; the
    // scan is already in key order, so key-ascending needs no sort. Sorts are stable, so ties
    // stay in key order on every member.
    match (request.sort_order, request.sort_target) {
        (SortOrder::None, SortTarget::Key) | (SortOrder::Ascend, SortTarget::Key) => {}
        (SortOrder::None | SortOrder::Ascend, _) => kvs.sort_by(by_target),
        (SortOrder::Descend, _) => kvs.sort_by(|a, b| by_target(b, a)),
    }
    let mut more = false;
    if request.limit > 0 && kvs.len() as i64 > request.limit {
        kvs.truncate(request.limit as usize);
        more = true;
    }
    if request.keys_only {
        for kv in &mut kvs {
            kv.value = Vec::new();
        }
    }
    RangeResponse { kvs, more, count }
}

pub(crate) fn lock_cache(inner: &Inner) -> MutexGuard<'_, WatchCache> {
    lock(&inner.cache)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::PutRequest;

    fn put(key: &str, value: &str, lease: i64) -> Command {
        Command::Put(PutRequest {
            key: key.into(),
            value: value.into(),
            lease,
            prev_kv: true,
            ..PutRequest::default()
        })
    }

    /// A batch that exercises revisions, a failing command in the middle, a lease granted and
    /// used within the batch, and a compaction that sees the batch's own earlier writes.
    fn commands() -> Vec<Command> {
        vec![
            put("a", "1", 0),
            put("b", "1", 77),
            Command::LeaseGrant { id: 77, ttl: 10 },
            put("b", "2", 77),
            put("a", "2", 0),
            Command::Compact { revision: 3 },
            Command::LeaseRevoke { id: 77 },
        ]
    }

    fn one_by_one(commands: &[Command]) -> (Store, Vec<Applied>) {
        let store = Store::temporary(Config::default()).unwrap();
        let applied = commands
            .iter()
            .map(|c| store.apply(c, None).unwrap())
            .collect();
        (store, applied)
    }

    #[test]
    fn a_batch_applies_like_its_commands_one_by_one() {
        let commands = commands();
        let (expected_store, expected) = one_by_one(&commands);
        let store = Store::temporary(Config::default()).unwrap();
        let applied = store.apply_batch(&commands, Some(b"entry-9")).unwrap();
        assert_eq!(applied, expected);
        assert_eq!(
            applied.iter().map(|a| a.revision).collect::<Vec<_>>(),
            vec![2, 2, 2, 3, 4, 4, 5],
            "each write its own revision; the unknown lease and non-key commands take none"
        );
        assert_eq!(
            applied[1].result,
            Err(Error::LeaseNotFound { id: 77 }),
            "the put before the grant fails alone"
        );
        assert_eq!(
            store.hash_kv(0).unwrap(),
            expected_store.hash_kv(0).unwrap()
        );
        assert_eq!(store.compact_revision(), 3);
        assert_eq!(store.marker().unwrap().as_deref(), Some(&b"entry-9"[..]));
        assert!(store
            .inner
            .tree()
            .get(index::META_BATCH_PROGRESS)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_batch_cut_short_by_a_crash_resumes_where_it_stopped() {
        let commands = commands();
        let (expected_store, expected) = one_by_one(&commands);
        let store = Store::temporary(Config::default()).unwrap();
        store.apply_batch(&[], Some(b"entry-8")).unwrap();
        // What a crash after the third command's (atomic) sled batch leaves: its writes and
        // the note of progress, with the previous entry's marker.
        store
            .apply_batch(&commands[..3], Some(b"not this batch"))
            .unwrap();
        let progress = BatchProgress {
            marker: b"entry-9".to_vec(),
            applied: 3,
        };
        let tree = store.inner.tree();
        tree.insert(index::META_MARKER, &b"entry-8"[..]).unwrap();
        tree.insert(
            index::META_BATCH_PROGRESS,
            codec::encode(&progress).unwrap(),
        )
        .unwrap();

        let replayed = store.apply_batch(&commands, Some(b"entry-9")).unwrap();
        assert!(replayed[..3].iter().all(|a| a.result.is_err()));
        assert_eq!(replayed[3..], expected[3..]);
        assert_eq!(
            store.hash_kv(0).unwrap(),
            expected_store.hash_kv(0).unwrap()
        );
        assert_eq!(store.current_revision(), expected_store.current_revision());
        assert_eq!(store.marker().unwrap().as_deref(), Some(&b"entry-9"[..]));

        // Progress noted for another batch is stale and ignored.
        let (fresh, _) = one_by_one(&[]);
        let stale = BatchProgress {
            marker: b"entry-1".to_vec(),
            applied: 5,
        };
        fresh
            .inner
            .tree()
            .insert(index::META_BATCH_PROGRESS, codec::encode(&stale).unwrap())
            .unwrap();
        assert_eq!(
            fresh.apply_batch(&commands, Some(b"entry-2")).unwrap(),
            expected
        );
    }

    /// Rewrites the event log as keel wrote it before groups: one record per entry.
    fn to_ungrouped_event_log(store: &Store) {
        let tree = store.inner.tree();
        let entries: Vec<_> = tree
            .scan_prefix([index::EVENT])
            .collect::<sled::Result<_>>()
            .unwrap();
        for (key, value) in entries {
            tree.remove(&key).unwrap();
            for (rev, record) in event_log::records(&key, &value).unwrap() {
                tree.insert(index::event_key(rev), record).unwrap();
            }
        }
    }

    fn everything_at(store: &Store, revision: i64) -> Vec<KeyValue> {
        let request = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision,
            ..RangeRequest::default()
        };
        store.range(&request).unwrap().kvs
    }

    #[test]
    fn an_event_log_from_before_groups_reads_and_compacts_alike() {
        let commands = commands();
        let (grouped, _) = one_by_one(&commands[..5]);
        let (ungrouped, _) = one_by_one(&commands[..5]);
        grouped
            .apply_batch(&[put("c", "1", 0), put("a", "3", 0)], None)
            .unwrap();
        ungrouped
            .apply_batch(&[put("c", "1", 0), put("a", "3", 0)], None)
            .unwrap();
        to_ungrouped_event_log(&ungrouped);
        assert_eq!(ungrouped.hash_kv(0).unwrap(), grouped.hash_kv(0).unwrap());
        for revision in 1..=grouped.current_revision() {
            assert_eq!(
                everything_at(&ungrouped, revision),
                everything_at(&grouped, revision)
            );
        }
        assert_eq!(
            ungrouped.history(b"a").unwrap(),
            grouped.history(b"a").unwrap()
        );
        for store in [&grouped, &ungrouped] {
            let compacted = store
                .apply(&Command::Compact { revision: 5 }, None)
                .unwrap();
            assert!(compacted.result.is_ok());
        }
        assert_eq!(ungrouped.hash_kv(0).unwrap(), grouped.hash_kv(0).unwrap());
        assert_eq!(everything_at(&ungrouped, 5), everything_at(&grouped, 5));
        let mut exported = Vec::new();
        ungrouped.export(&mut exported).unwrap();
        let restored = Store::temporary(Config::default()).unwrap();
        restored.import(&mut exported.as_slice()).unwrap();
        assert_eq!(restored.hash_kv(0).unwrap(), grouped.hash_kv(0).unwrap());
    }
}
