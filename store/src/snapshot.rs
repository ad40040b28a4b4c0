//! Export and import of a whole keyspace as one framed stream.
//!
//! Format: the magic `KEELSNAP`, a big-endian u32 format version, then per tree entry a
//! big-endian u32 key length, the key, a u32 value length and the value; then the end marker
//! `u32::MAX` and the CRC32 of every byte before it. Import writes into a staging tree and
//! only returns success once the end marker and checksum have been read and verified.

use std::io::{Read, Write};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"KEELSNAP";
const FORMAT_VERSION: u32 = 1;
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
}

pub(crate) fn export(tree: &sled::Tree, out: &mut dyn Write) -> Result<u64> {
    let mut writer = HashingWriter {
        out,
        hasher: crc32fast::Hasher::new(),
        written: 0,
    };
    writer.put(MAGIC)?;
    writer.put(&FORMAT_VERSION.to_be_bytes())?;
    for entry in tree.iter() {
        let (key, value) = entry?;
        writer.put_len(key.len())?;
        writer.put(&key)?;
        writer.put_len(value.len())?;
        writer.put(&value)?;
    }
    writer.put(&END.to_be_bytes())?;
    let crc = writer.hasher.clone().finalize();
    writer.out.write_all(&crc.to_be_bytes())?;
    writer.out.flush()?;
    Ok(writer.written + 4)
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
    if version != FORMAT_VERSION {
        return Err(Error::Corrupt(format!(
            "snapshot format {version}, expected {FORMAT_VERSION}"
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
