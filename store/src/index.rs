//! The layout of the one sled tree that holds a keyspace, and key ranges over it.
//!
//! Everything lives in one tree, so that a command's writes are one atomic sled batch or one
//! bracketed run of single writes (see `write_set`):
//!
//! - `e` + revision → a group of [`Record`]s from that revision on: the event log, in revision
//!   order (watch replay, `hash_kv`, compaction; see `event_log`).
//! - `h` + escaped key + revision → one kind byte: each key's history (reads at an old
//!   revision, `history`). The escape keeps key order and makes a key's entries contiguous.
//! - `c` + key → the key's current [`KeyValue`] (reads at the current revision).
//! - `l` + lease id → [`crate::LeaseInfo`]; `a` + lease id + key → nothing: attachments.
//! - `u` + user name → [`crate::User`]; `r` + role name → [`crate::Role`] (see [`crate::auth`]).
//! - `m` + name → meta (current and compacted revision, the caller's marker, `mauth`: the
//!   auth switch, revision and token secret).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kv::{Event, EventType, KeyValue};
use crate::revision::{Revision, REVISION_LEN};

pub(crate) const EVENT: u8 = b'e';
pub(crate) const HISTORY: u8 = b'h';
pub(crate) const CURRENT: u8 = b'c';
pub(crate) const LEASE: u8 = b'l';
pub(crate) const ATTACH: u8 = b'a';
pub(crate) const META: u8 = b'm';

pub(crate) const META_REVISION: &[u8] = b"mrevision";
pub(crate) const META_COMPACTED: &[u8] = b"mcompacted";
pub(crate) const META_MARKER: &[u8] = b"mmarker";
/// How far into a batch of commands the keyspace is (see `Store::apply_batch`); absent
/// between batches.
pub(crate) const META_BATCH_PROGRESS: &[u8] = b"mbatch";
/// Present while the writes of one step go into the tree key by key (see `write_set`): found
/// on open, it means a crash cut that step short.
pub(crate) const META_OPEN: &[u8] = b"mopen";

/// History entry kinds (the value of an `h` entry), so compaction and old reads can tell a
/// tombstone without decoding the event.
pub(crate) const KIND_PUT: u8 = b'p';
pub(crate) const KIND_DELETE: u8 = b'd';

/// Escaped key terminator: sorts below every escaped byte, so a key sorts before its extensions.
const TERMINATOR: [u8; 2] = [0x00, 0x01];

/// One record of the event log: what one write left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Record {
    /// The key after a put.
    Put(KeyValue),
    /// A tombstone for the key.
    Delete(#[serde(with = "crate::byte_string")] Vec<u8>),
}

impl Record {
    pub(crate) fn key(&self) -> &[u8] {
        match self {
            Record::Put(kv) => &kv.key,
            Record::Delete(key) => key,
        }
    }

    pub(crate) fn kind(&self) -> u8 {
        match self {
            Record::Put(_) => KIND_PUT,
            Record::Delete(_) => KIND_DELETE,
        }
    }

    pub(crate) fn from_event(event: &Event) -> Record {
        match event.kind {
            EventType::Put => Record::Put(event.kv.clone()),
            EventType::Delete => Record::Delete(event.kv.key.clone()),
        }
    }

    pub(crate) fn into_event(self, revision: Revision) -> Event {
        match self {
            Record::Put(kv) => Event {
                kind: EventType::Put,
                kv,
                prev_kv: None,
            },
            Record::Delete(key) => Event {
                kind: EventType::Delete,
                kv: tombstone(key, revision.main),
                prev_kv: None,
            },
        }
    }
}

/// The `kv` of a delete event: key and deleting revision only.
pub(crate) fn tombstone(key: Vec<u8>, revision: i64) -> KeyValue {
    KeyValue {
        key,
        mod_revision: revision,
        ..KeyValue::default()
    }
}

pub(crate) fn event_key(revision: Revision) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + REVISION_LEN);
    out.push(EVENT);
    out.extend_from_slice(&revision.to_bytes());
    out
}

pub(crate) fn event_revision(tree_key: &[u8]) -> Result<Revision> {
    match tree_key.split_first() {
        Some((&EVENT, rest)) => Revision::from_bytes(rest),
        _ => Err(Error::Corrupt("event key without its prefix".into())),
    }
}

fn escape_into(key: &[u8], out: &mut Vec<u8>) {
    for &byte in key {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
}

fn unescape(escaped: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.iter();
    while let Some(&byte) = bytes.next() {
        out.push(byte);
        if byte == 0 && bytes.next() != Some(&0xFF) {
            return Err(Error::Corrupt("bad key escape in history index".into()));
        }
    }
    Ok(out)
}

/// `h` + escaped key, without terminator: the lowest history entry of any key >= `key`.
pub(crate) fn history_bound(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 3);
    out.push(HISTORY);
    escape_into(key, &mut out);
    out
}

/// The prefix shared by every history entry of exactly `key`.
pub(crate) fn history_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = history_bound(key);
    out.extend_from_slice(&TERMINATOR);
    out
}

pub(crate) fn history_key(key: &[u8], revision: Revision) -> Vec<u8> {
    let mut out = history_prefix(key);
    out.extend_from_slice(&revision.to_bytes());
    out
}

/// Splits a history entry's tree key into the user key and the revision.
pub(crate) fn parse_history_key(tree_key: &[u8]) -> Result<(Vec<u8>, Revision)> {
    let min = 1 + TERMINATOR.len() + REVISION_LEN;
    if tree_key.len() < min || tree_key[0] != HISTORY {
        return Err(Error::Corrupt("short history key".into()));
    }
    let rev_at = tree_key.len() - REVISION_LEN;
    let escaped = &tree_key[1..rev_at - TERMINATOR.len()];
    if tree_key[rev_at - TERMINATOR.len()..rev_at] != TERMINATOR {
        return Err(Error::Corrupt("history key without terminator".into()));
    }
    Ok((
        unescape(escaped)?,
        Revision::from_bytes(&tree_key[rev_at..])?,
    ))
}

/// Just past every `h` entry.
pub(crate) fn history_end() -> Vec<u8> {
    vec![HISTORY + 1]
}

pub(crate) fn current_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(CURRENT);
    out.extend_from_slice(key);
    out
}

pub(crate) fn lease_key(id: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.push(LEASE);
    out.extend_from_slice(&(id as u64).to_be_bytes());
    out
}

pub(crate) fn attach_prefix(id: i64) -> Vec<u8> {
    let mut out = lease_key(id);
    out[0] = ATTACH;
    out
}

pub(crate) fn attach_key(id: i64, key: &[u8]) -> Vec<u8> {
    let mut out = attach_prefix(id);
    out.extend_from_slice(key);
    out
}

pub(crate) fn meta_i64(value: Option<sled::IVec>, default: i64) -> Result<i64> {
    match value {
        None => Ok(default),
        Some(bytes) => {
            let array: [u8; 8] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| Error::Corrupt("meta revision is not 8 bytes".into()))?;
            Ok(i64::from_be_bytes(array))
        }
    }
}

/// The keys a request covers, after etcd's conventions for `range_end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyRange {
    /// `range_end` empty: exactly one key.
    Single(Vec<u8>),
    /// `[start, end)`; `end == None` (`range_end == [0]`) means no upper bound.
    Span {
        start: Vec<u8>,
        end: Option<Vec<u8>>,
    },
}

impl KeyRange {
    pub(crate) fn new(key: &[u8], range_end: &[u8]) -> KeyRange {
        if range_end.is_empty() {
            KeyRange::Single(key.to_vec())
        } else if range_end == [0] {
            KeyRange::Span {
                start: key.to_vec(),
                end: None,
            }
        } else {
            KeyRange::Span {
                start: key.to_vec(),
                end: Some(range_end.to_vec()),
            }
        }
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Single(single) => single.as_slice() == key,
            KeyRange::Span { start, end } => {
                key >= start.as_slice() && end.as_deref().is_none_or(|end| key < end)
            }
        }
    }

    /// `[lo, hi)` over tree keys with `prefix` + user key; `hi` is the end of the prefix when
    /// the range is unbounded.
    pub(crate) fn tree_bounds(&self, prefix: u8) -> (Vec<u8>, Vec<u8>) {
        let with = |key: &[u8]| {
            let mut out = Vec::with_capacity(key.len() + 1);
            out.push(prefix);
            out.extend_from_slice(key);
            out
        };
        match self {
            KeyRange::Single(key) => {
                let mut hi = with(key);
                hi.push(0);
                (with(key), hi)
            }
            KeyRange::Span { start, end } => (
                with(start),
                end.as_deref().map_or_else(|| vec![prefix + 1], with),
            ),
        }
    }

    /// `[lo, hi)` over the history index.
    pub(crate) fn history_bounds(&self) -> (Vec<u8>, Vec<u8>) {
        match self {
            KeyRange::Single(key) => {
                let mut hi = history_prefix(key);
                hi.push(0xFF);
                (history_prefix(key), hi)
            }
            KeyRange::Span { start, end } => (
                history_bound(start),
                end.as_deref().map_or_else(history_end, history_bound),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_keep_key_order_and_group_revisions() {
        let keys: [&[u8]; 6] = [b"a", b"a\0", b"a\0\0", b"a\x01", b"ab", b"b"];
        let mut encoded = Vec::new();
        for key in keys {
            for main in [1, 300] {
                encoded.push(history_key(key, Revision::new(main, 0)));
            }
        }
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
        for (i, tree_key) in encoded.iter().enumerate() {
            let (key, rev) = parse_history_key(tree_key).expect("parse");
            assert_eq!(key, keys[i / 2]);
            assert_eq!(rev.main, if i % 2 == 0 { 1 } else { 300 });
        }
    }

    #[test]
    fn history_bounds_cover_exactly_the_range() {
        let range = KeyRange::new(b"a\0", b"b");
        let (lo, hi) = range.history_bounds();
        let inside = history_key(b"a\0\0", Revision::new(5, 0));
        let before = history_key(b"a", Revision::new(5, 0));
        let after = history_key(b"b", Revision::new(5, 0));
        assert!(lo <= inside && inside < hi);
        assert!(before < lo);
        assert!(after >= hi);
    }

    #[test]
    fn ranges_follow_etcd_conventions() {
        assert!(KeyRange::new(b"a", b"").contains(b"a"));
        assert!(!KeyRange::new(b"a", b"").contains(b"ab"));
        assert!(KeyRange::new(b"a", b"\0").contains(b"zzz"));
        assert!(KeyRange::new(b"\0", b"\0").contains(b"\x01"));
        assert!(!KeyRange::new(b"a", b"b").contains(b"b"));
    }
}
