//! bbolt's on-disk layout, the part both the writer and the reader need.
//!
//! A bbolt file is a sequence of pages of one size. Every page starts with a 16-byte header:
//! its id (u64), flags (u16), element count (u16) and overflow (u32: how many pages after it
//! continue it). All integers are little-endian. Pages 0 and 1 are meta pages (the newer valid
//! one wins); the meta names the root bucket's page, the freelist page and the high-water mark.
//!
//! ```text
//! page 0  meta  { magic, version 2, page size, flags, root {pgid, seq}, freelist, pgid, txid, fnv64a }
//! page 1  meta  (same, other txid)
//! page 2  freelist (ids of free pages; none in the files keel writes)
//! ...     leaf pages: [header][elements: flags u32, pos u32, ksize u32, vsize u32][keys, values]
//!         branch pages: [header][elements: pos u32, ksize u32, pgid u64][keys]
//! ```
//!
//! `pos` counts from the element's own first byte. A bucket is a leaf element with the
//! bucket flag whose value is `{root pgid u64, sequence u64}`; root 0 means the bucket's one
//! leaf page follows inline in the value.

use crate::error::{Error, Result};

/// bbolt's magic number, first in a meta page's body.
pub(crate) const MAGIC: u32 = 0xED0C_DAED;
/// The only data format version bbolt has.
pub(crate) const VERSION: u32 = 2;
/// The page size keel writes (the usual OS page size, what etcd's files use on Linux).
pub(crate) const PAGE_SIZE: usize = 4096;
/// Bytes before a page's elements.
pub(crate) const PAGE_HEADER_LEN: usize = 16;
/// Bytes of one leaf or branch element.
pub(crate) const ELEMENT_LEN: usize = 16;
/// Bytes of a bucket's header (the value of its leaf element).
pub(crate) const BUCKET_HEADER_LEN: usize = 16;

pub(crate) const BRANCH_PAGE: u16 = 0x01;
pub(crate) const LEAF_PAGE: u16 = 0x02;
pub(crate) const META_PAGE: u16 = 0x04;
pub(crate) const FREELIST_PAGE: u16 = 0x10;
/// A leaf element that is a nested bucket.
pub(crate) const BUCKET_ELEMENT: u32 = 0x01;

/// Bytes of the meta body that the checksum covers: everything before the checksum itself.
const META_CHECKED_LEN: usize = 56;

/// A meta page's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) page_size: u32,
    pub(crate) root: u64,
    pub(crate) freelist: u64,
    /// The high-water mark: the number of pages in use.
    pub(crate) pages: u64,
    pub(crate) txid: u64,
}

/// FNV-1a, 64 bits: bbolt's meta checksum.
fn fnv64a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl Meta {
    /// The whole meta page `id` (0 or 1), header included, padded to `page_size`.
    pub(crate) fn page(&self, id: u64) -> Vec<u8> {
        let mut page = page_header(id, META_PAGE, 0, 0);
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&MAGIC.to_le_bytes());
        body.extend_from_slice(&VERSION.to_le_bytes());
        body.extend_from_slice(&self.page_size.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&self.root.to_le_bytes());
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(&self.freelist.to_le_bytes());
        body.extend_from_slice(&self.pages.to_le_bytes());
        body.extend_from_slice(&self.txid.to_le_bytes());
        debug_assert_eq!(body.len(), META_CHECKED_LEN);
        let checksum = fnv64a(&body);
        body.extend_from_slice(&checksum.to_le_bytes());
        page.extend_from_slice(&body);
        page.resize(self.page_size as usize, 0);
        page
    }

    /// Reads a meta page's first bytes; an error says what is wrong with it.
    pub(crate) fn parse(page: &[u8]) -> Result<Meta> {
        let body = page
            .get(PAGE_HEADER_LEN..PAGE_HEADER_LEN + META_CHECKED_LEN + 8)
            .ok_or_else(|| corrupt("file too short for a meta page"))?;
        if u32_at(body, 0) != MAGIC {
            return Err(corrupt("bad magic: not a bbolt database"));
        }
        if u32_at(body, 4) != VERSION {
            return Err(corrupt("unsupported bbolt version"));
        }
        if u64_at(body, META_CHECKED_LEN) != fnv64a(&body[..META_CHECKED_LEN]) {
            return Err(corrupt("meta page checksum mismatch"));
        }
        Ok(Meta {
            page_size: u32_at(body, 8),
            root: u64_at(body, 16),
            freelist: u64_at(body, 32),
            pages: u64_at(body, 40),
            txid: u64_at(body, 48),
        })
    }
}

/// A page header.
pub(crate) fn page_header(id: u64, flags: u16, count: u16, overflow: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(PAGE_SIZE);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&overflow.to_le_bytes());
    out
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    out.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(out)
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(out)
}

pub(crate) fn corrupt(what: &str) -> Error {
    Error::Corrupt(format!("etcd snapshot: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv64a_matches_the_reference_vectors() {
        assert_eq!(fnv64a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv64a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_meta_page_reads_back_and_a_flipped_bit_is_caught() {
        let meta = Meta {
            page_size: PAGE_SIZE as u32,
            root: 7,
            freelist: 2,
            pages: 9,
            txid: 3,
        };
        let mut page = meta.page(1);
        assert_eq!(page.len(), PAGE_SIZE);
        assert_eq!(u16_at(&page, 8), META_PAGE);
        assert_eq!(Meta::parse(&page).unwrap(), meta);
        page[PAGE_HEADER_LEN + 16] ^= 1;
        assert!(Meta::parse(&page).is_err());
    }
}
