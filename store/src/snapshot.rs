//! Export and import of a whole keyspace as one framed stream.
//!
//! Format: the magic `KEELSNAP`, a big-endian u32 format version, then per tree entry a
//! big-endian u32 key length, the key, a u32 value length and the value; then the end marker
//! `u32::MAX` and the CRC32 of every byte before it. Import writes into a staging tree and
//! only returns success once the end marker and checksum have been read and verified.

use std::io::{Read, Write};

use crate::codec;
use crate::error::{Error, Result};
use crate::event_log;
use crate::index::{self, ATTACH, CURRENT, EVENT, HISTORY, KIND_PUT, META};
use crate::revision::Revision;

const MAGIC: &[u8; 8] = b"KEELSNAP";
/// Version 2 writes the event log in groups (see `event_log`); version 1, one record per
/// entry, still imports, since the event log reads both.
const FORMAT_VERSION: u32 = 2;
const OLDEST_READABLE_VERSION: u32 = 1;
const END: u32 = u32::MAX;

struct HashingWriter<'a> {
    out: &'a mut dyn Write,
    hasher: crc32fast::Hasher,
    written: u64,
}

impl HashingWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn put_len(&mut self, len: usize) -> Result<()> {
        let len = u32::try_from(len)
            .ok()
            .filter(|&len| len != END)
            .ok_or_else(|| {
                Error::Storage(format!("entry of {len} bytes is too large to export"))
            })?;
        self.put(&len.to_be_bytes())
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put_len(key.len())?;
        self.put(key)?;
        self.put_len(value.len())?;
        self.put(value)
    }
}

/// Writes the keyspace in `tree` as it was at `revision`, while later commands may be
/// writing to it (see `Store::export_point`): events and history entries up to `revision`;
/// each key's current value and lease attachment as of `revision`, rebuilt from its newest
/// history entry at or below it; `meta` in place of the tree's meta entries; every other
/// entry (leases, auth) as it is, since the caller keeps their writers out.
pub(crate) fn export_at(
    tree: &sled::Tree,
    revision: i64,
    meta: &[(Vec<u8>, Vec<u8>)],
    out: &mut dyn Write,
) -> Result<u64> {
    let mut writer = HashingWriter {
        out,
        hasher: crc32fast::Hasher::new(),
        written: 0,
    };
    writer.put(MAGIC)?;
    writer.put(&FORMAT_VERSION.to_be_bytes())?;
    // The key whose history is being read, with its newest entry at or below `revision`.
    let mut newest: Option<(Vec<u8>, Revision, bool)> = None;
    for entry in tree.iter() {
        let (key, value) = entry?;
        match key.first().copied() {
            Some(ATTACH | CURRENT | META) => continue,
            Some(EVENT) => {
                if index::event_revision(&key)?.main > revision {
                    continue;
                }
                // A group started at or below `revision` was written whole before the export
                // point, so this keeps it as it is; the check only guards that.
                match event_log::retain(&key, &value, |rev| rev.main <= revision)? {
                    None => writer.entry(&key, &value)?,
                    Some(Some(kept)) => writer.entry(&key, &kept)?,
                    Some(None) => {}
                }
                continue;
            }
            Some(HISTORY) => {
                let (user_key, rev) = index::parse_history_key(&key)?;
                if rev.main > revision {
                    continue;
                }
                if newest.as_ref().is_some_and(|(k, _, _)| *k != user_key) {
                    write_current(tree, &mut writer, newest.take())?;
                }
                newest = Some((user_key, rev, value.first() == Some(&KIND_PUT)));
            }
            _ => {}
        }
        writer.entry(&key, &value)?;
    }
    write_current(tree, &mut writer, newest)?;
    for (key, value) in meta {
        writer.entry(key, value)?;
    }
    writer.put(&END.to_be_bytes())?;
    let crc = writer.hasher.clone().finalize();
    writer.out.write_all(&crc.to_be_bytes())?;
    writer.out.flush()?;
    Ok(writer.written + 4)
}

/// The `c` entry (and `a` entry if leased) of a key whose newest history entry at the
/// export's revision is `newest`: nothing if that entry is a tombstone.
fn write_current(
    tree: &sled::Tree,
    writer: &mut HashingWriter<'_>,
    newest: Option<(Vec<u8>, Revision, bool)>,
) -> Result<()> {
    let Some((key, revision, true)) = newest else {
        return Ok(());
    };
    let kv = crate::keyspace::put_at(tree, &key, revision)?;
    let encoded = codec::encode(&kv)?;
    writer.entry(&index::current_key(&kv.key), &encoded)?;
    if kv.lease != 0 {
        writer.entry(&index::attach_key(kv.lease, &kv.key), &[])?;
    }
    Ok(())
}

struct HashingReader<'a> {
    input: &'a mut dyn Read,
    hasher: crc32fast::Hasher,
}

fn read_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::Corrupt("snapshot is truncated".into())
    } else {
        Error::from(e)
    }
}

impl HashingReader<'_> {
    fn exact<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.input.read_exact(&mut buf).map_err(read_error)?;
        self.hasher.update(&buf);
        Ok(buf)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.exact::<4>()?))
    }

    /// Reads `len` bytes without trusting `len` for an allocation up front.
    fn bytes(&mut self, len: u32) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let read = (&mut *self.input)
            .take(u64::from(len))
            .read_to_end(&mut buf)
            .map_err(read_error)?;
        if read != len as usize {
            return Err(Error::Corrupt("snapshot is truncated".into()));
        }
        self.hasher.update(&buf);
        Ok(buf)
    }
}

/// Fills `staging` (empty) from `input`; an error leaves `staging` partly filled.
pub(crate) fn import(staging: &sled::Tree, input: &mut dyn Read) -> Result<()> {
    let mut reader = HashingReader {
        input,
        hasher: crc32fast::Hasher::new(),
    };
    if &reader.exact::<8>()? != MAGIC {
        return Err(Error::Corrupt("not a keel snapshot".into()));
    }
    let version = reader.u32()?;
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::Corrupt(format!(
            "snapshot format {version}, expected {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}"
        )));
    }
    loop {
        let key_len = reader.u32()?;
        if key_len == END {
            break;
        }
        let key = reader.bytes(key_len)?;
        let value_len = reader.u32()?;
        if value_len == END {
            return Err(Error::Corrupt("snapshot entry without a value".into()));
        }
        let value = reader.bytes(value_len)?;
        staging.insert(key, value)?;
    }
    let expected = reader.hasher.clone().finalize();
    let mut crc = [0u8; 4];
    reader.input.read_exact(&mut crc).map_err(read_error)?;
    if u32::from_be_bytes(crc) != expected {
        return Err(Error::Corrupt("snapshot checksum mismatch".into()));
    }
    Ok(())
}
