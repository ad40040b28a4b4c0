//! The Raft log's files: an append-only write-ahead log in segment files, as etcd keeps its
//! WAL next to its keyspace.
//!
//! The log was a sled database until it showed in profiles: every flush of a sled database is a
//! job for sled's IO pool, whose queue wakes all seven idle pool threads for each job, and a
//! member flushes its log once per append. A log only appends, cuts its tail and drops its
//! head, which plain files do with one `write` and one `fdatasync` per append.
//!
//! # Format
//!
//! The directory holds segments `<seq>.wal` (`seq` as 16 hex digits), oldest first. A segment
//! is a sequence of records, each `len: u32 LE | crc32: u32 LE | kind: u8 | body`, where `len`
//! counts the kind byte and the body and the checksum covers both:
//!
//! - `ENTRY`: the entry's log id (term, leader node, index: three u64 BE), then the entry as
//!   [`crate::log_store`] encodes it. An entry at or below the last one replaces it and
//!   everything after it.
//! - `TRUNCATE`: an index (u64 BE); entries from it on are gone.
//! - `PURGE`, `VOTE`, `COMMITTED`: the encoded log id, vote or optional log id.
//!
//! A new segment starts with the vote, committed id and purge point so far, so the segments
//! before it can be deleted once every entry they hold is purged.
//!
//! # Crashes
//!
//! Records reach the disk in order up to the last `fdatasync`; a crash can leave a torn record
//! at the end of the last segment (short, or failing its checksum). Opening cuts it off, with
//! whatever followed it: nothing after it was acknowledged. A bad record anywhere else is
//! corruption, and opening fails rather than dropping acknowledged entries.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{CommittedLeaderId, Vote};

use crate::codec;
use crate::types::LogId;

const ENTRY: u8 = 1;
const TRUNCATE: u8 = 2;
const PURGE: u8 = 3;
const VOTE: u8 = 4;
const COMMITTED: u8 = 5;

/// Bytes before a record's kind: its length and checksum.
const HEADER_LEN: usize = 8;
/// Bytes of an entry's log id at the start of its body.
const LOG_ID_LEN: usize = 24;
/// A record longer than this is taken for garbage (a torn length): no entry comes near it, as
/// a request is limited far below.
const MAX_RECORD_LEN: usize = 1 << 30;
/// A segment that has grown past this is closed and a new one started at the next append.
#[cfg(not(test))]
pub(crate) const SEGMENT_BYTES: u64 = 64 << 20;
/// Small in unit tests, so segments roll over after a few entries.
#[cfg(test)]
pub(crate) const SEGMENT_BYTES: u64 = 1 << 20;

fn corrupt(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Where an entry's bytes are: a segment file (kept open, so reads go on after the segment is
/// deleted by a purge) and the range of the encoded entry in it.
#[derive(Clone)]
pub(crate) struct Slot {
    log_id: LogId,
    file: Arc<File>,
    offset: u64,
    len: u32,
}

struct Segment {
    seq: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Bytes of whole records.
    len: u64,
    /// The highest index of an entry written to it, live or since truncated.
    max_index: Option<u64>,
}

/// What a log holds, replayed from its segments. Not thread-safe by itself: the log store
/// keeps it behind a mutex, and only Raft's core writes (one call at a time).
pub(crate) struct Wal {
    dir: PathBuf,
    /// Oldest first; the last one is written to.
    segments: VecDeque<Segment>,
    /// Consecutive entries, oldest first.
    entries: VecDeque<Slot>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId>,
    /// Whether `committed` changed since it was last written (it goes out with the next append).
    committed_unwritten: bool,
    last_purged: Option<LogId>,
}

fn segment_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

fn segment_seq(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".wal")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Makes the creation or removal of files in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (and missing parents) and makes its entry, and its parent's, durable: the
/// log's files must not vanish with a directory a crash forgot.
fn create_dir_durably(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut parent = dir.parent();
    for _ in 0..2 {
        match parent {
            Some(p) if !p.as_os_str().is_empty() => {
                sync_dir(p)?;
                parent = p.parent();
            }
            _ => break,
        }
    }
    Ok(())
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, buf, offset)?;
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Appends one record to `out`.
fn put_record(out: &mut Vec<u8>, kind: u8, body: &[&[u8]]) {
    let len = 1 + body.iter().map(|part| part.len()).sum::<usize>();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    for part in body {
        crc.update(part);
    }
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.push(kind);
    for part in body {
        out.extend_from_slice(part);
    }
}

fn encode_log_id(log_id: &LogId) -> [u8; LOG_ID_LEN] {
    let mut bytes = [0; LOG_ID_LEN];
    bytes[..8].copy_from_slice(&log_id.leader_id.term.to_be_bytes());
    bytes[8..16].copy_from_slice(&log_id.leader_id.node_id.to_be_bytes());
    bytes[16..].copy_from_slice(&log_id.index.to_be_bytes());
    bytes
}

fn decode_log_id(bytes: &[u8]) -> LogId {
    let word = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    LogId::new(CommittedLeaderId::new(word(0), word(8)), word(16))
}

fn encode_value<T: serde::Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    codec::encode(value).map_err(std::io::Error::other)
}

/// Reads a segment's records in order up to its end or its first bad record, handing each to
/// `replay` (its kind, its body, and the offset of the body in the file). Returns the length of
/// the good prefix and of the file; `Err` for a failure to read or to replay.
fn read_segment(
    file: &File,
    mut replay: impl FnMut(u8, &[u8], u64) -> std::io::Result<()>,
) -> std::io::Result<(u64, u64)> {
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut payload = Vec::new();
    let mut good: u64 = 0;
    loop {
        let mut header = [0u8; HEADER_LEN];
        if !read_full(&mut reader, &mut header)? {
            break;
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD_LEN || good + (HEADER_LEN + len) as u64 > file_len {
            break;
        }
        payload.resize(len, 0);
        if !read_full(&mut reader, &mut payload)? || crc32fast::hash(&payload) != crc {
            break;
        }
        replay(payload[0], &payload[1..], good + HEADER_LEN as u64 + 1)?;
        good += (HEADER_LEN + len) as u64;
    }
    Ok((good, file_len))
}

/// Fills `buf`; `false` if the file ended first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

impl Wal {
    /// Opens the log in `dir`, creating it if there is none. With `repair`, a torn record at
    /// the end is cut off the file (a member does so before appending after it); without, the
    /// files are only read (offline inspection).
    pub(crate) fn open(dir: &Path, repair: bool) -> std::io::Result<Wal> {
        if repair && !dir.is_dir() {
            create_dir_durably(dir)?;
        }
        let mut seqs = Vec::new();
        for item in std::fs::read_dir(dir)? {
            let name = item?.file_name();
            if let Some(seq) = name.to_str().and_then(segment_seq) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            segments: VecDeque::new(),
            entries: VecDeque::new(),
            vote: None,
            committed: None,
            committed_unwritten: false,
            last_purged: None,
        };
        for (i, &seq) in seqs.iter().enumerate() {
            let path = dir.join(segment_name(seq));
            let file = if repair {
                OpenOptions::new().read(true).write(true).open(&path)?
            } else {
                File::open(&path)?
            };
            let mut segment = Segment {
                seq,
                path,
                file: Arc::new(file),
                len: 0,
                max_index: None,
            };
            let file = segment.file.clone();
            let (good, file_len) = read_segment(&file, |kind, body, offset| {
                wal.replay(kind, body, offset, &mut segment)
            })?;
            if good < file_len {
                if i + 1 < seqs.len() {
                    return Err(corrupt(format!(
                        "{}: bad record at byte {good} of {file_len}, and later segments follow",
                        segment.path.display()
                    )));
                }
                tracing::warn!(
                    "{}: cutting off {} bytes of a record torn by a crash",
                    segment.path.display(),
                    file_len - good
                );
                if repair {
                    file.set_len(good)?;
                    file.sync_all()?;
                }
            }
            segment.len = good;
            wal.segments.push_back(segment);
        }
        wal.drop_purged_entries();
        if wal.segments.is_empty() && repair {
            wal.start_segment(1)?;
        }
        Ok(wal)
    }

    fn replay(
        &mut self,
        kind: u8,
        body: &[u8],
        body_offset: u64,
        segment: &mut Segment,
    ) -> std::io::Result<()> {
        let bad = |what: &str| {
            corrupt(format!(
                "{}: bad {what} record at byte {body_offset}",
                segment.path.display(),
            ))
        };
        match kind {
            ENTRY => {
                if body.len() < LOG_ID_LEN {
                    return Err(bad("entry"));
                }
                let log_id = decode_log_id(body);
                let index = log_id.index;
                if let Some(last) = self.last_index().filter(|last| index > last + 1) {
                    return Err(corrupt(format!(
                        "{}: entry {index} follows entry {last}",
                        segment.path.display()
                    )));
                }
                segment.max_index = segment.max_index.max(Some(index));
                self.place(Slot {
                    log_id,
                    file: segment.file.clone(),
                    offset: body_offset + LOG_ID_LEN as u64,
                    len: (body.len() - LOG_ID_LEN) as u32,
                });
            }
            TRUNCATE => {
                let bytes: [u8; 8] = body.try_into().map_err(|_| bad("truncate"))?;
                self.cut_from(u64::from_be_bytes(bytes));
            }
            PURGE => {
                let log_id: LogId = codec::decode(body).map_err(|_| bad("purge"))?;
                self.last_purged = self.last_purged.max(Some(log_id));
                self.drop_purged_entries();
            }
            VOTE => self.vote = Some(codec::decode(body).map_err(|_| bad("vote"))?),
            COMMITTED => self.committed = codec::decode(body).map_err(|_| bad("committed"))?,
            other => {
                return Err(corrupt(format!(
                    "{}: unknown record kind {other} at byte {body_offset}",
                    segment.path.display(),
                )))
            }
        }
        Ok(())
    }

    /// Adds an entry after the last one; one at or below the last replaces it and every
    /// entry after it.
    fn place(&mut self, slot: Slot) {
        if self
            .last_index()
            .is_some_and(|last| slot.log_id.index <= last)
        {
            self.cut_from(slot.log_id.index);
        }
        self.entries.push_back(slot);
    }

    fn last_index(&self) -> Option<u64> {
        self.entries.back().map(|slot| slot.log_id.index)
    }

    /// Drops the entries from `index` on (from memory only).
    fn cut_from(&mut self, index: u64) {
        let Some(first) = self.entries.front().map(|slot| slot.log_id.index) else {
            return;
        };
        self.entries.truncate(index.saturating_sub(first) as usize);
    }

    fn drop_purged_entries(&mut self) {
        let Some(purged) = self.last_purged else {
            return;
        };
        while self
            .entries
            .front()
            .is_some_and(|slot| slot.log_id.index <= purged.index)
        {
            self.entries.pop_front();
        }
    }

    /// Creates segment `seq` and writes into it the state a replay starting there needs.
    fn start_segment(&mut self, seq: u64) -> std::io::Result<()> {
        let path = self.dir.join(segment_name(seq));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut header = Vec::new();
        if let Some(vote) = &self.vote {
            put_record(&mut header, VOTE, &[&encode_value(vote)?]);
        }
        put_record(&mut header, COMMITTED, &[&encode_value(&self.committed)?]);
        self.committed_unwritten = false;
        if let Some(purged) = &self.last_purged {
            put_record(&mut header, PURGE, &[&encode_value(purged)?]);
        }
        write_at(&file, &header, 0)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        self.segments.push_back(Segment {
            seq,
            path,
            file: Arc::new(file),
            len: header.len() as u64,
            max_index: None,
        });
        Ok(())
    }

    fn active(&mut self) -> &mut Segment {
        self.segments.back_mut().expect("an open log has a segment")
    }

    /// Writes `records` at the end of the log and returns the file to sync to make them
    /// durable. They are readable at once. A full segment is synced and closed first.
    fn write(&mut self, records: &[u8]) -> std::io::Result<Arc<File>> {
        if self.active().len >= SEGMENT_BYTES {
            let full = self.active();
            full.file.sync_data()?;
            let next = full.seq + 1;
            self.start_segment(next)?;
        }
        let segment = self.active();
        write_at(&segment.file, records, segment.len)?;
        segment.len += records.len() as u64;
        Ok(segment.file.clone())
    }

    /// [`Wal::write`] of one record.
    fn write_record(&mut self, kind: u8, body: &[u8]) -> std::io::Result<Arc<File>> {
        let mut record = Vec::new();
        put_record(&mut record, kind, &[body]);
        self.write(&record)
    }

    /// Appends entries, given as log id and encoded entry, with the committed id if it changed.
    /// Returns the file to sync.
    pub(crate) fn append(&mut self, entries: &[(LogId, Vec<u8>)]) -> std::io::Result<Arc<File>> {
        let mut records = Vec::with_capacity(
            entries
                .iter()
                .map(|(_, bytes)| HEADER_LEN + 1 + LOG_ID_LEN + bytes.len())
                .sum::<usize>()
                + 64,
        );
        if self.committed_unwritten {
            put_record(&mut records, COMMITTED, &[&encode_value(&self.committed)?]);
        }
        let mut expected = self.last_index().map(|last| last + 1);
        for (log_id, _) in entries {
            if expected.is_some_and(|next| log_id.index > next) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "entry {} would leave a gap after {:?}",
                        log_id.index,
                        self.last_index()
                    ),
                ));
            }
            expected = Some(log_id.index + 1);
        }
        let mut positions = Vec::with_capacity(entries.len());
        for (log_id, bytes) in entries {
            put_record(&mut records, ENTRY, &[&encode_log_id(log_id), bytes]);
            positions.push(records.len() - bytes.len());
        }
        let file = self.write(&records)?;
        self.committed_unwritten = false;
        let base = self.active().len - records.len() as u64;
        for ((log_id, bytes), position) in entries.iter().zip(positions) {
            let segment = self.active();
            segment.max_index = segment.max_index.max(Some(log_id.index));
            self.place(Slot {
                log_id: *log_id,
                file: file.clone(),
                offset: base + position as u64,
                len: bytes.len() as u32,
            });
        }
        Ok(file)
    }

    /// Removes the entries from `index` on. Returns the file to sync.
    pub(crate) fn truncate(&mut self, index: u64) -> std::io::Result<Arc<File>> {
        let file = self.write_record(TRUNCATE, &index.to_be_bytes())?;
        self.cut_from(index);
        Ok(file)
    }

    /// Records the purge point and forgets the entries up to it. Returns the file to sync;
    /// once it is synced, [`Wal::remove_purged_segments`] may delete the files.
    pub(crate) fn purge(&mut self, log_id: LogId) -> std::io::Result<Arc<File>> {
        let file = self.write_record(PURGE, &encode_value(&log_id)?)?;
        self.last_purged = self.last_purged.max(Some(log_id));
        self.drop_purged_entries();
        Ok(file)
    }

    /// Deletes the oldest segments whose every entry is purged. Only after the purge record is
    /// durable: a replay must not find the entries gone without it.
    pub(crate) fn remove_purged_segments(&mut self) -> std::io::Result<()> {
        let purged = self.last_purged.map(|log_id| log_id.index);
        let mut removed = false;
        while self.segments.len() > 1
            && self
                .segments
                .front()
                .is_some_and(|segment| segment.max_index <= purged)
        {
            let segment = self.segments.pop_front().expect("checked");
            std::fs::remove_file(&segment.path)?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Records the vote. Returns the file to sync.
    pub(crate) fn save_vote(&mut self, vote: &Vote<u64>) -> std::io::Result<Arc<File>> {
        let file = self.write_record(VOTE, &encode_value(vote)?)?;
        self.vote = Some(*vote);
        Ok(file)
    }

    /// Notes the committed id; it is written with the next append (or [`Wal::write_committed`]).
    pub(crate) fn set_committed(&mut self, committed: Option<LogId>) {
        if self.committed != committed {
            self.committed = committed;
            self.committed_unwritten = true;
        }
    }

    /// Writes the committed id if it changed. Returns the file to sync.
    pub(crate) fn write_committed(&mut self) -> std::io::Result<Arc<File>> {
        if self.committed_unwritten {
            self.write_record(COMMITTED, &encode_value(&self.committed)?)?;
            self.committed_unwritten = false;
        }
        Ok(self.active().file.clone())
    }

    pub(crate) fn vote(&self) -> Option<Vote<u64>> {
        self.vote
    }

    pub(crate) fn committed(&self) -> Option<LogId> {
        self.committed
    }

    pub(crate) fn last_purged(&self) -> Option<LogId> {
        self.last_purged
    }

    /// The last entry's log id, or the purge point when no entry is left.
    pub(crate) fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .back()
            .map(|slot| slot.log_id)
            .or(self.last_purged)
    }

    /// Where the entries with indexes in `range` are, to read with [`Slot::read`] outside the
    /// lock.
    pub(crate) fn locate(&self, range: impl std::ops::RangeBounds<u64>) -> Vec<Slot> {
        let Some(first) = self.entries.front().map(|slot| slot.log_id.index) else {
            return Vec::new();
        };
        let start = match range.start_bound() {
            std::ops::Bound::Included(&i) => i,
            std::ops::Bound::Excluded(&i) => i.saturating_add(1),
            std::ops::Bound::Unbounded => first,
        }
        .max(first);
        let end = match range.end_bound() {
            std::ops::Bound::Included(&i) => i.saturating_add(1),
            std::ops::Bound::Excluded(&i) => i,
            std::ops::Bound::Unbounded => u64::MAX,
        };
        let from = (start - first) as usize;
        let to = (end.saturating_sub(first) as usize).min(self.entries.len());
        if from >= to {
            return Vec::new();
        }
        self.entries.range(from..to).cloned().collect()
    }

    /// Segments on disk, for tests.
    #[cfg(test)]
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

impl Slot {
    /// Reads the encoded entry.
    pub(crate) fn read(&self) -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0; self.len as usize];
        read_at(&self.file, &mut bytes, self.offset)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn contents(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
        wal.locate(..)
            .iter()
            .map(|slot| (slot.log_id.index, slot.read().unwrap()))
            .collect()
    }

    fn append(wal: &mut Wal, indexes: std::ops::RangeInclusive<u64>) {
        let entries: Vec<_> = indexes
            .map(|i| (log_id(1, i), format!("entry {i}").into_bytes()))
            .collect();
        wal.append(&entries).unwrap().sync_data().unwrap();
    }

    /// A record torn by a crash at the end of the last segment is cut off; the entries before
    /// it survive, and the log appends after them.
    #[test]
    fn a_torn_tail_is_cut_off_and_the_log_goes_on() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut wal = Wal::open(dir.path(), true).unwrap();
        append(&mut wal, 1..=3);
        let path = wal.segments.back().unwrap().path.clone();
        drop(wal);
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut bytes = std::fs::read(&path).unwrap();
        // Half of the last entry's record reached the disk.
        bytes.truncate(bytes.len() - 5);
        std::fs::write(&path, &bytes).unwrap();

        let mut wal = Wal::open(dir.path(), true).unwrap();
        assert_eq!(
            contents(&wal).iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(std::fs::metadata(&path).unwrap().len() < whole);
        append(&mut wal, 3..=4);
        drop(wal);
        let wal = Wal::open(dir.path(), true).unwrap();
        assert_eq!(contents(&wal)[2], (3, b"entry 3".to_vec()));
        assert_eq!(contents(&wal).len(), 4);
    }

    /// A flipped bit in a segment that is not the last is corruption, not a torn write:
    /// opening fails rather than dropping entries that were acknowledged.
    #[test]
    fn a_bad_record_before_the_last_segment_fails_the_open() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut wal = Wal::open(dir.path(), true).unwrap();
        append(&mut wal, 1..=3);
        let first = wal.segments.front().unwrap().path.clone();
        wal.start_segment(2).unwrap();
        append(&mut wal, 4..=5);
        drop(wal);
        let mut bytes = std::fs::read(&first).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x40;
        std::fs::write(&first, &bytes).unwrap();
        let error = Wal::open(dir.path(), true)
            .err()
            .expect("corruption detected");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
    }

    /// Segments roll over, and a purge deletes the old ones whose entries it covers; the
    /// state (vote, committed, purge point, entries) replays the same from what is left.
    #[test]
    fn purged_segments_are_deleted_and_the_rest_replays() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut wal = Wal::open(dir.path(), true).unwrap();
        wal.save_vote(&Vote::new(4, 2)).unwrap();
        append(&mut wal, 1..=10);
        wal.start_segment(2).unwrap();
        append(&mut wal, 11..=20);
        wal.set_committed(Some(log_id(1, 15)));
        wal.start_segment(3).unwrap();
        append(&mut wal, 21..=25);
        wal.truncate(24).unwrap();
        append(&mut wal, 24..=24);

        wal.purge(log_id(1, 12)).unwrap().sync_data().unwrap();
        wal.remove_purged_segments().unwrap();
        assert_eq!(
            wal.segment_count(),
            2,
            "only the first segment is all purged"
        );
        wal.purge(log_id(1, 20)).unwrap().sync_data().unwrap();
        wal.remove_purged_segments().unwrap();
        assert_eq!(wal.segment_count(), 1);
        let before = contents(&wal);
        drop(wal);

        let wal = Wal::open(dir.path(), true).unwrap();
        assert_eq!(wal.vote(), Some(Vote::new(4, 2)));
        assert_eq!(wal.committed(), Some(log_id(1, 15)));
        assert_eq!(wal.last_purged(), Some(log_id(1, 20)));
        assert_eq!(wal.last_log_id(), Some(log_id(1, 24)));
        assert_eq!(contents(&wal), before);
        assert_eq!(
            before.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (21..=24).collect::<Vec<_>>()
        );
    }

    /// Offline inspection reads a log without changing its files, torn tail included.
    #[test]
    fn opening_without_repair_changes_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut wal = Wal::open(dir.path(), true).unwrap();
        append(&mut wal, 1..=2);
        let path = wal.segments.back().unwrap().path.clone();
        drop(wal);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[7, 0, 0]);
        std::fs::write(&path, &bytes).unwrap();
        let wal = Wal::open(dir.path(), false).unwrap();
        assert_eq!(wal.last_log_id(), Some(log_id(1, 2)));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
