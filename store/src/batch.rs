//! Executing one command into an in-memory write batch.
//!
//! Nothing touches the tree until the whole command has succeeded: writes go to an overlay
//! that later reads of the same transaction see, and the overlay becomes the step's
//! [`WriteSet`] at the end. A client error anywhere simply drops the overlay, so nothing is
//! written.

use std::collections::{BTreeMap, BTreeSet};

use crate::codec;
use crate::error::{Error, Result};
use crate::event_log;
use crate::index::{self, KeyRange, Record, KIND_DELETE, KIND_PUT};
use crate::keyspace::{finish_range, read_range, scan_current};
use crate::kv::{Event, EventType, KeyValue};
use crate::lease::LeaseInfo;
use crate::request::{
    Command, CommandResponse, Compare, CompareResult, CompareTarget, DeleteRangeRequest,
    DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    ResponseOp, TxnRequest, TxnResponse,
};
use crate::revision::Revision;
use crate::write_set::WriteSet;

/// The current values of keys that earlier commands of a group wrote (`None`: deleted), for
/// commands applied together in one step (see `Store::apply_batch`).
pub(crate) type Written = BTreeMap<Vec<u8>, Option<KeyValue>>;

/// The writes of one command, not yet applied.
pub(crate) struct Pending<'a> {
    tree: &'a sled::Tree,
    /// What earlier commands of the same group left, not yet in `tree`: reads see it between
    /// `tree` and this command's own `overlay`.
    earlier: &'a Written,
    current: i64,
    compacted: i64,
    /// The revision this command's writes take (current + 1); only used if it writes a key.
    main: i64,
    /// Key writes in sub-revision order, each with the key's previous value.
    pub(crate) events: Vec<Event>,
    overlay: BTreeMap<Vec<u8>, Option<KeyValue>>,
    /// Lease attachments to add (true) or remove (false).
    attach: BTreeMap<(i64, Vec<u8>), bool>,
    /// Other tree writes (leases, compaction), applied last.
    raw: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub(crate) compact_to: Option<i64>,
}

/// Which branch each (nested) transaction takes, decided before any write as etcd does.
struct TxnPath {
    succeeded: bool,
    nested: Vec<TxnPath>,
}

impl<'a> Pending<'a> {
    /// A command over `tree` as `earlier` commands of its group have left it, at revision
    /// `current`.
    pub(crate) fn new(
        tree: &'a sled::Tree,
        earlier: &'a Written,
        current: i64,
        compacted: i64,
    ) -> Pending<'a> {
        Pending {
            tree,
            earlier,
            current,
            compacted,
            main: current + 1,
            events: Vec::new(),
            overlay: BTreeMap::new(),
            attach: BTreeMap::new(),
            raw: Vec::new(),
            compact_to: None,
        }
    }

    /// The revision after this command: bumped only if it wrote a key.
    pub(crate) fn revision_after(&self) -> i64 {
        if self.events.is_empty() {
            self.current
        } else {
            self.main
        }
    }

    pub(crate) fn execute(&mut self, command: &Command) -> Result<CommandResponse> {
        match command {
            Command::Put(put) => Ok(CommandResponse::Put(self.put(put)?)),
            Command::DeleteRange(delete) => {
                Ok(CommandResponse::DeleteRange(self.delete_range(delete)?))
            }
            Command::Txn(txn) => {
                let path = self.plan(txn)?;
                check_duplicates(txn, &path)?;
                Ok(CommandResponse::Txn(self.txn(txn, &path)?))
            }
            Command::Compact { revision } => {
                self.compact(*revision)?;
                Ok(CommandResponse::Compact)
            }
            Command::LeaseGrant { id, ttl } => {
                Ok(CommandResponse::LeaseGrant(self.lease_grant(*id, *ttl)?))
            }
            Command::LeaseRevoke { id } => {
                self.lease_revoke(*id)?;
                Ok(CommandResponse::LeaseRevoke)
            }
            Command::Auth(auth) => {
                // Auth changes take no keyspace revision: etcd keeps them out of the MVCC
                // history, so no watcher sees them.
                let (auth_revision, writes) = crate::auth::execute(self.tree, auth)?;
                self.raw.extend(writes);
                Ok(CommandResponse::Auth { auth_revision })
            }
            Command::Alarm(alarm) => {
                // Alarms too stay outside the MVCC history (etcd's own bucket).
                let (alarms, writes) = crate::alarm::execute(self.tree, alarm)?;
                self.raw.extend(writes);
                Ok(CommandResponse::Alarm(alarms))
            }
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        if let Some(value) = self.overlay.get(key).or_else(|| self.earlier.get(key)) {
            return Ok(value.clone());
        }
        match self.tree.get(index::current_key(key))? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The keys in `range` as this command has left them so far, in key order.
    fn scan(&self, range: &KeyRange) -> Result<Vec<KeyValue>> {
        if let KeyRange::Single(key) = range {
            return Ok(self.get(key)?.into_iter().collect());
        }
        let mut merged: BTreeMap<Vec<u8>, KeyValue> = scan_current(self.tree, range)?
            .into_iter()
            .map(|kv| (kv.key.clone(), kv))
            .collect();
        for (key, value) in self.earlier.iter().chain(&self.overlay) {
            if !range.contains(key) {
                continue;
            }
            match value {
                Some(kv) => merged.insert(key.clone(), kv.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_values().collect())
    }

    fn lease_exists(&self, id: i64) -> Result<bool> {
        Ok(self.tree.contains_key(index::lease_key(id))?)
    }

    fn range(&self, request: &RangeRequest) -> Result<RangeResponse> {
        if request.revision > 0 {
            // A read at an explicit revision sees history, not this transaction's writes.
            return read_range(self.tree, request, self.current, self.compacted);
        }
        let range = KeyRange::new(&request.key, &request.range_end);
        let mut written = self.earlier.keys().chain(self.overlay.keys());
        if !written.any(|key| range.contains(key)) {
            // Nothing this command or its group wrote is in the range: the tree answers, with
            // the plain read's shortcuts (paginated reads decode only what they return).
            return read_range(self.tree, request, self.current, self.compacted);
        }
        Ok(finish_range(request, self.scan(&range)?))
    }

    fn put(&mut self, request: &PutRequest) -> Result<PutResponse> {
        if request.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let prev = self.get(&request.key)?;
        let needs_existing = request.ignore_value || request.ignore_lease;
        let existing = match (&prev, needs_existing) {
            (None, true) => return Err(Error::KeyNotFound),
            (prev, _) => prev.as_ref(),
        };
        let value = match existing {
            Some(prev) if request.ignore_value => prev.value.clone(),
            _ => request.value.clone(),
        };
        let lease = match existing {
            Some(prev) if request.ignore_lease => prev.lease,
            _ => request.lease,
        };
        if lease != 0 && !self.lease_exists(lease)? {
            return Err(Error::LeaseNotFound { id: lease });
        }
        let kv = KeyValue {
            key: request.key.clone(),
            create_revision: existing.map_or(self.main, |p| p.create_revision),
            mod_revision: self.main,
            version: existing.map_or(1, |p| p.version + 1),
            value,
            lease,
        };
        if let Some(prev) = existing {
            if prev.lease != 0 && prev.lease != lease {
                self.attach.insert((prev.lease, kv.key.clone()), false);
            }
        }
        if lease != 0 {
            self.attach.insert((lease, kv.key.clone()), true);
        }
        self.overlay.insert(kv.key.clone(), Some(kv.clone()));
        self.events.push(Event {
            kind: EventType::Put,
            kv,
            prev_kv: prev.clone(),
        });
        Ok(PutResponse {
            prev_kv: if request.prev_kv { prev } else { None },
        })
    }

    fn delete_range(&mut self, request: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        if request.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let range = KeyRange::new(&request.key, &request.range_end);
        let doomed = self.scan(&range)?;
        let deleted = doomed.len() as i64;
        for kv in &doomed {
            if kv.lease != 0 {
                self.attach.insert((kv.lease, kv.key.clone()), false);
            }
            self.overlay.insert(kv.key.clone(), None);
            self.events.push(Event {
                kind: EventType::Delete,
                kv: index::tombstone(kv.key.clone(), self.main),
                prev_kv: Some(kv.clone()),
            });
        }
        Ok(DeleteRangeResponse {
            deleted,
            prev_kvs: if request.prev_kv { doomed } else { Vec::new() },
        })
    }

    /// Evaluates every compare, nested ones included, against the state before the command.
    fn plan(&self, txn: &TxnRequest) -> Result<TxnPath> {
        let mut succeeded = true;
        for compare in &txn.compare {
            if !self.compare_holds(compare)? {
                succeeded = false;
                break;
            }
        }
        let branch = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut nested = Vec::new();
        for op in branch {
            if let RequestOp::Txn(inner) = op {
                nested.push(self.plan(inner)?);
            }
        }
        Ok(TxnPath { succeeded, nested })
    }

    fn compare_holds(&self, compare: &Compare) -> Result<bool> {
        let range = KeyRange::new(&compare.key, &compare.range_end);
        let kvs = self.scan(&range)?;
        if kvs.is_empty() {
            if matches!(compare.target, CompareTarget::Value(_)) {
                return Ok(false);
            }
            return Ok(compare_one(compare, &KeyValue::default()));
        }
        Ok(kvs.iter().all(|kv| compare_one(compare, kv)))
    }

    fn txn(&mut self, txn: &TxnRequest, path: &TxnPath) -> Result<TxnResponse> {
        let branch = if path.succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut nested = path.nested.iter();
        let mut responses = Vec::with_capacity(branch.len());
        for op in branch {
            responses.push(match op {
                RequestOp::Range(range) => ResponseOp::Range(self.range(range)?),
                RequestOp::Put(put) => ResponseOp::Put(self.put(put)?),
                RequestOp::DeleteRange(delete) => {
                    ResponseOp::DeleteRange(self.delete_range(delete)?)
                }
                RequestOp::Txn(inner) => {
                    let inner_path = nested
                        .next()
                        .ok_or_else(|| Error::Storage("txn plan out of step".into()))?;
                    ResponseOp::Txn(self.txn(inner, inner_path)?)
                }
            });
        }
        Ok(TxnResponse {
            succeeded: path.succeeded,
            responses,
        })
    }

    fn compact(&mut self, revision: i64) -> Result<()> {
        if revision <= self.compacted {
            return Err(Error::Compacted {
                compact_revision: self.compacted,
            });
        }
        if revision > self.current {
            return Err(Error::FutureRevision {
                current_revision: self.current,
            });
        }
        // Per key, entries arrive oldest first; everything at or below `revision` goes except
        // the newest such entry when it is a put (reads at `revision` still need it).
        let mut removed = BTreeSet::new();
        let mut group: Vec<(Vec<u8>, Revision, u8)> = Vec::new();
        let mut group_key: Option<Vec<u8>> = None;
        let flush = |group: &mut Vec<(Vec<u8>, Revision, u8)>,
                     raw: &mut Vec<_>,
                     removed: &mut BTreeSet<Revision>| {
            if let Some((last, rest)) = group.split_last() {
                for (tree_key, rev, _) in rest {
                    raw.push((tree_key.clone(), None));
                    removed.insert(*rev);
                }
                if last.2 == KIND_DELETE {
                    raw.push((last.0.clone(), None));
                    removed.insert(last.1);
                }
            }
            group.clear();
        };
        for entry in self.tree.range(vec![index::HISTORY]..index::history_end()) {
            let (tree_key, kind) = entry?;
            let (key, rev) = index::parse_history_key(&tree_key)?;
            if group_key.as_deref() != Some(key.as_slice()) {
                flush(&mut group, &mut self.raw, &mut removed);
                group_key = Some(key);
            }
            if rev.main <= revision {
                let kind = kind.first().copied().unwrap_or(KIND_PUT);
                group.push((tree_key.to_vec(), rev, kind));
            }
        }
        flush(&mut group, &mut self.raw, &mut removed);
        // The event log loses the same records; an entry that keeps some is rewritten.
        let end = index::event_key(Revision::new(revision + 1, 0));
        for entry in self.tree.range(vec![index::EVENT]..end) {
            let (tree_key, value) = entry?;
            if let Some(rest) = event_log::retain(&tree_key, &value, |rev| !removed.contains(&rev))?
            {
                self.raw.push((tree_key.to_vec(), rest));
            }
        }
        self.raw.push((
            index::META_COMPACTED.to_vec(),
            Some(revision.to_be_bytes().to_vec()),
        ));
        self.compact_to = Some(revision);
        Ok(())
    }

    fn lease_grant(&mut self, id: i64, ttl: i64) -> Result<LeaseInfo> {
        if id <= 0 {
            return Err(Error::InvalidLease(format!(
                "lease id {id} must be positive"
            )));
        }
        if ttl <= 0 {
            return Err(Error::InvalidLease(format!(
                "lease ttl {ttl} must be positive"
            )));
        }
        if self.lease_exists(id)? {
            return Err(Error::LeaseExists { id });
        }
        let info = LeaseInfo { id, ttl };
        self.raw
            .push((index::lease_key(id), Some(codec::encode(&info)?)));
        Ok(info)
    }

    fn lease_revoke(&mut self, id: i64) -> Result<()> {
        if !self.lease_exists(id)? {
            return Err(Error::LeaseNotFound { id });
        }
        let prefix = index::attach_prefix(id);
        let mut keys = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (tree_key, _) = entry?;
            keys.push(tree_key[prefix.len()..].to_vec());
            self.raw.push((tree_key.to_vec(), None));
        }
        for key in keys {
            self.delete_range(&DeleteRangeRequest {
                key,
                ..DeleteRangeRequest::default()
            })?;
        }
        self.raw.push((index::lease_key(id), None));
        Ok(())
    }

    /// Adds the command's writes to `batch`: the event log, history, current values, lease
    /// attachments, its other writes and the revision.
    pub(crate) fn write_into(&self, batch: &mut WriteSet) -> Result<()> {
        for (sub, event) in self.events.iter().enumerate() {
            let rev = Revision::new(self.main, sub as i64);
            let record = Record::from_event(event);
            batch.insert(index::history_key(record.key(), rev), vec![record.kind()]);
            batch.push_event(rev, &record)?;
        }
        for (key, value) in &self.overlay {
            match value {
                Some(kv) => batch.insert(index::current_key(key), codec::encode(kv)?),
                None => batch.remove(index::current_key(key)),
            }
        }
        for ((lease, key), attached) in &self.attach {
            if *attached {
                batch.insert(index::attach_key(*lease, key), Vec::new());
            } else {
                batch.remove(index::attach_key(*lease, key));
            }
        }
        for (key, value) in &self.raw {
            match value {
                Some(value) => batch.insert(key.clone(), value.clone()),
                None => batch.remove(key.clone()),
            }
        }
        if !self.events.is_empty() {
            batch.insert(index::META_REVISION, self.main.to_be_bytes().to_vec());
        }
        Ok(())
    }

    /// The keys' current values as this command left them, and its watch events.
    pub(crate) fn into_writes(self) -> (Written, Vec<Event>) {
        (self.overlay, self.events)
    }
}

fn compare_one(compare: &Compare, kv: &KeyValue) -> bool {
    use std::cmp::Ordering;
    let ordering: Ordering = match &compare.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::CreateRevision(v) => kv.create_revision.cmp(v),
        CompareTarget::ModRevision(v) => kv.mod_revision.cmp(v),
        CompareTarget::Value(v) => kv.value.as_slice().cmp(v.as_slice()),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
    };
    match compare.result {
        CompareResult::Equal => ordering == Ordering::Equal,
        CompareResult::Greater => ordering == Ordering::Greater,
        CompareResult::Less => ordering == Ordering::Less,
        CompareResult::NotEqual => ordering != Ordering::Equal,
    }
}

/// Rejects a transaction whose chosen branches write one key twice, before anything runs.
fn check_duplicates(txn: &TxnRequest, path: &TxnPath) -> Result<()> {
    let mut puts = BTreeSet::new();
    let mut deletes = Vec::new();
    collect_writes(txn, path, &mut puts, &mut deletes)?;
    for put in &puts {
        if deletes.iter().any(|range: &KeyRange| range.contains(put)) {
            return Err(Error::DuplicateKey);
        }
    }
    Ok(())
}

fn collect_writes(
    txn: &TxnRequest,
    path: &TxnPath,
    puts: &mut BTreeSet<Vec<u8>>,
    deletes: &mut Vec<KeyRange>,
) -> Result<()> {
    let branch = if path.succeeded {
        &txn.success
    } else {
        &txn.failure
    };
    let mut nested = path.nested.iter();
    for op in branch {
        match op {
            RequestOp::Range(_) => {}
            RequestOp::Put(put) => {
                if !puts.insert(put.key.clone()) {
                    return Err(Error::DuplicateKey);
                }
            }
            RequestOp::DeleteRange(delete) => {
                deletes.push(KeyRange::new(&delete.key, &delete.range_end));
            }
            RequestOp::Txn(inner) => {
                let inner_path = nested
                    .next()
                    .ok_or_else(|| Error::Storage("txn plan out of step".into()))?;
                collect_writes(inner, inner_path, puts, deletes)?;
            }
        }
    }
    Ok(())
}
