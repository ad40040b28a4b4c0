//! The event log: every write's [`Record`] in revision order, several to a tree entry.
//!
//! A step of the keyspace (a run of commands, see `Store::apply_batch`) writes its records as
//! one group under `e` + the revision of its first record, instead of one tree entry each.
//! Each put then costs sled two inserts (history, current value) and a share of one, not
//! three: sled's inserts were the largest part of applying a put, and the event log's
//! appends split a leaf every few records.
//!
//! A group's value is [`GROUP_TAG`], then per record its revision ([`Revision::to_bytes`]),
//! the length of its encoding (u32, big-endian) and the encoding. Keyspaces written before
//! groups hold one encoded record per entry, keyed by its own revision; a record's encoding
//! starts with its variant index (0 or 1), never the tag, so both kinds read alike. Groups
//! never overlap, so the record at a revision is in the last entry keyed at or below it.
//!
//! A group stays below [`MAX_GROUP_BYTES`] (a record larger than that gets one to itself):
//! sled splits leaves by entry count only, and writes a leaf out whole as one log message when
//! it consolidates it, so large groups would make large messages (sled stores a message over
//! a quarter of its 512 KiB segment as a separate blob file).

use crate::codec;
use crate::error::{Error, Result};
use crate::index::{self, Record, EVENT};
use crate::revision::{Revision, REVISION_LEN};

/// The first byte of a group's value.
const GROUP_TAG: u8 = 0xFF;

/// A group is closed once adding the next record would take it past this many bytes.
const MAX_GROUP_BYTES: usize = 4096;

/// Bytes before each record's encoding in a group: its revision and length.
const RECORD_HEADER_LEN: usize = REVISION_LEN + 4;

/// One group being built: the tree entry it will become.
struct Group {
    first: Revision,
    value: Vec<u8>,
}

impl Group {
    fn new(first: Revision) -> Group {
        Group {
            first,
            value: vec![GROUP_TAG],
        }
    }

    fn push(&mut self, revision: Revision, record: &[u8]) {
        self.value.extend_from_slice(&revision.to_bytes());
        self.value
            .extend_from_slice(&(record.len() as u32).to_be_bytes());
        self.value.extend_from_slice(record);
    }

    /// The tree entry: key and value.
    fn into_entry(self) -> (Vec<u8>, Vec<u8>) {
        (index::event_key(self.first), self.value)
    }
}

/// Records of one step, in revision order, cut into groups of at most [`MAX_GROUP_BYTES`].
#[derive(Default)]
pub(crate) struct Groups {
    groups: Vec<Group>,
}

impl Groups {
    /// Adds the record at `revision`, which follows every record added before.
    pub(crate) fn push(&mut self, revision: Revision, record: &Record) -> Result<()> {
        let encoded = codec::encode(record)?;
        let fits = self.groups.last().is_some_and(|group| {
            group.value.len() + RECORD_HEADER_LEN + encoded.len() <= MAX_GROUP_BYTES
        });
        if !fits {
            self.groups.push(Group::new(revision));
        }
        let group = self.groups.last_mut().expect("a group was just pushed");
        group.push(revision, &encoded);
        Ok(())
    }

    /// The groups' tree entries: key and value.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> {
        self.groups.into_iter().map(Group::into_entry)
    }
}

/// The records in one event-log entry (a group or, from before groups, a single record),
/// each with its revision and encoding, in revision order.
pub(crate) fn records<'a>(tree_key: &[u8], value: &'a [u8]) -> Result<Vec<(Revision, &'a [u8])>> {
    let Some((&GROUP_TAG, mut rest)) = value.split_first() else {
        return Ok(vec![(index::event_revision(tree_key)?, value)]);
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.len() < RECORD_HEADER_LEN {
            return Err(truncated(tree_key));
        }
        let (header, tail) = rest.split_at(RECORD_HEADER_LEN);
        let revision = Revision::from_bytes(&header[..REVISION_LEN])?;
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[REVISION_LEN..]);
        let len = u32::from_be_bytes(len) as usize;
        if tail.len() < len {
            return Err(truncated(tree_key));
        }
        let (record, tail) = tail.split_at(len);
        out.push((revision, record));
        rest = tail;
    }
    Ok(out)
}

fn truncated(tree_key: &[u8]) -> Error {
    let at = index::event_revision(tree_key)
        .map(|rev| format!("{}.{}", rev.main, rev.sub))
        .unwrap_or_else(|_| "?".into());
    Error::Corrupt(format!("event log group at {at} is truncated"))
}

/// The key to start a forward scan at so that it sees the record at `revision` and every
/// later one: the last entry keyed at or below `revision` (which holds it, if any does), else
/// `revision`'s own key.
pub(crate) fn scan_start(tree: &sled::Tree, revision: Revision) -> Result<Vec<u8>> {
    match entry_at_or_below(tree, revision)? {
        Some((tree_key, _)) => Ok(tree_key.to_vec()),
        None => Ok(index::event_key(revision)),
    }
}

/// The last event-log entry keyed at or below `revision`: the one holding `revision`, if any
/// holds it, since entries never overlap.
fn entry_at_or_below(
    tree: &sled::Tree,
    revision: Revision,
) -> Result<Option<(sled::IVec, sled::IVec)>> {
    let at = index::event_key(revision);
    Ok(tree.range(vec![EVENT]..=at).next_back().transpose()?)
}

/// The record at `revision`.
pub(crate) fn read_record(tree: &sled::Tree, revision: Revision) -> Result<Record> {
    let missing = || {
        Error::Corrupt(format!(
            "history names revision {}.{} but the event log does not hold it",
            revision.main, revision.sub
        ))
    };
    let (tree_key, value) = entry_at_or_below(tree, revision)?.ok_or_else(missing)?;
    let (_, record) = records(&tree_key, &value)?
        .into_iter()
        .find(|(rev, _)| *rev == revision)
        .ok_or_else(missing)?;
    codec::decode(record)
}

/// What becomes of an event-log entry if it keeps only the records whose revision `keep`s:
/// `None` if it keeps them all, `Some(None)` if it keeps none, else `Some(Some(value))`.
pub(crate) fn retain(
    tree_key: &[u8],
    value: &[u8],
    keep: impl Fn(Revision) -> bool,
) -> Result<Option<Option<Vec<u8>>>> {
    let records = records(tree_key, value)?;
    let kept: Vec<_> = records.iter().filter(|(rev, _)| keep(*rev)).collect();
    if kept.len() == records.len() {
        return Ok(None);
    }
    let Some(((first, _), _)) = kept.split_first() else {
        return Ok(Some(None));
    };
    let mut group = Group::new(*first);
    for (rev, record) in kept {
        group.push(*rev, record);
    }
    Ok(Some(Some(group.value)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::kv::KeyValue;

    fn put(key: &str, value_len: usize) -> Record {
        Record::Put(KeyValue {
            key: key.as_bytes().to_vec(),
            value: vec![b'v'; value_len],
            ..KeyValue::default()
        })
    }

    #[test]
    fn a_step_is_cut_into_groups_that_read_back_in_order() {
        let mut groups = Groups::default();
        let revisions: Vec<Revision> = (1..=40).map(|main| Revision::new(main, 0)).collect();
        for (i, rev) in revisions.iter().enumerate() {
            groups.push(*rev, &put(&format!("k{i}"), 300)).unwrap();
        }
        let entries: Vec<_> = groups.into_entries().collect();
        assert!(
            entries.len() > 1,
            "40 records of 300 bytes fit no single group"
        );
        let mut read = Vec::new();
        for (key, value) in entries {
            assert!(value.len() <= MAX_GROUP_BYTES);
            let records = records(&key, &value).unwrap();
            assert_eq!(records[0].0, index::event_revision(&key).unwrap());
            read.extend(records.into_iter().map(|(rev, _)| rev));
        }
        assert_eq!(read, revisions);
    }

    #[test]
    fn a_record_larger_than_a_group_gets_a_group_to_itself() {
        let mut groups = Groups::default();
        groups.push(Revision::new(1, 0), &put("a", 10)).unwrap();
        groups
            .push(Revision::new(2, 0), &put("b", MAX_GROUP_BYTES))
            .unwrap();
        groups.push(Revision::new(3, 0), &put("c", 10)).unwrap();
        let firsts: Vec<_> = groups
            .into_entries()
            .map(|(key, _)| index::event_revision(&key).unwrap().main)
            .collect();
        assert_eq!(firsts, [1, 2, 3]);
    }

    #[test]
    fn an_entry_from_before_groups_reads_as_its_one_record() {
        let record = codec::encode(&put("a", 3)).unwrap();
        let key = index::event_key(Revision::new(7, 1));
        assert_eq!(
            records(&key, &record).unwrap(),
            vec![(Revision::new(7, 1), &record[..])]
        );
    }

    #[test]
    fn a_truncated_group_is_corruption() {
        let mut groups = Groups::default();
        groups.push(Revision::new(5, 0), &put("a", 20)).unwrap();
        let (key, value) = groups.into_entries().next().unwrap();
        let err = records(&key, &value[..value.len() - 1]).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt(ref m) if m.contains("5.0")),
            "{err}"
        );
    }

    #[test]
    fn removing_records_rewrites_or_drops_the_entry() {
        let mut groups = Groups::default();
        for main in 1..=3 {
            groups.push(Revision::new(main, 0), &put("a", 1)).unwrap();
        }
        let (key, value) = groups.into_entries().next().unwrap();
        assert_eq!(retain(&key, &value, |_| true).unwrap(), None);
        let first_two = BTreeSet::from([Revision::new(1, 0), Revision::new(2, 0)]);
        let rest = retain(&key, &value, |rev| !first_two.contains(&rev));
        let rest = rest.unwrap().unwrap().unwrap();
        let revs: Vec<_> = records(&key, &rest)
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(revs, [Revision::new(3, 0)]);
        assert_eq!(retain(&key, &value, |_| false).unwrap(), Some(None));
    }
}
