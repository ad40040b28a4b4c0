//! Reads a bbolt database page by page from a seekable input: the newer valid meta page, the
//! root bucket's entries (the top-level buckets), and a bucket's entries in key order by a
//! depth-first walk of its branch and leaf pages. Only the pages on the walk's path are in
//! memory at a time, so a large file need not fit.
//!
//! Every offset read from the file is checked against the page it is in, and the walk is
//! bounded in depth, so a damaged file gives an error, never a panic or an endless loop.

use std::io::{Read, Seek, SeekFrom};

use super::bbolt::{
    corrupt, u16_at, u32_at, u64_at, Meta, BRANCH_PAGE, BUCKET_ELEMENT, BUCKET_HEADER_LEN,
    ELEMENT_LEN, LEAF_PAGE, PAGE_HEADER_LEN,
};
use crate::error::Result;

/// A B+tree deeper than this is a damaged file (bbolt's trees of billions of keys are ~6 deep).
const MAX_DEPTH: usize = 32;
/// The smallest and largest page sizes bbolt is used with.
const PAGE_SIZES: std::ops::RangeInclusive<u32> = 512..=65536;

/// Called with each leaf element's flags, key and value.
type ElementVisitor<'a> = dyn FnMut(u32, &[u8], &[u8]) -> Result<()> + 'a;
/// Called with each entry's key and value.
pub(crate) type EntryVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// Where a bucket's tree starts.
#[derive(Clone, Debug)]
pub(crate) enum BucketRoot {
    /// A page of its own.
    Page(u64),
    /// One leaf page stored in the parent's value (bbolt's inline bucket).
    Inline(Vec<u8>),
}

/// An open bbolt database.
pub(crate) struct BboltReader<R> {
    input: R,
    /// Bytes of the database (a snapshot's trailing digest is not part of it).
    len: u64,
    meta: Meta,
}

impl<R: Read + Seek> BboltReader<R> {
    /// Opens the database in the first `len` bytes of `input`.
    pub(crate) fn open(mut input: R, len: u64) -> Result<BboltReader<R>> {
        let mut first = vec![0u8; 1024];
        read_at(&mut input, 0, &mut first)?;
        // The first meta page tells the page size, which places the second; either may be
        // the one a crash left half-written, so each is checked on its own.
        let meta0 = Meta::parse(&first);
        let page_size = match &meta0 {
            Ok(meta) => meta.page_size,
            Err(_) => 4096,
        };
        if !PAGE_SIZES.contains(&page_size) || !page_size.is_power_of_two() {
            return Err(corrupt("unsupported page size"));
        }
        let mut second = vec![0u8; 1024];
        let meta1 = if u64::from(page_size) * 2 <= len {
            read_at(&mut input, u64::from(page_size), &mut second)
                .and_then(|()| Meta::parse(&second))
        } else {
            Err(corrupt("file too short for two meta pages"))
        };
        let meta = match (meta0, meta1) {
            (Ok(a), Ok(b)) => {
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            (Ok(a), Err(_)) => a,
            (Err(_), Ok(b)) => b,
            (Err(e), Err(_)) => return Err(e),
        };
        if meta.page_size != page_size {
            return Err(corrupt("meta pages disagree on the page size"));
        }
        if meta.pages.saturating_mul(u64::from(page_size)) > len {
            return Err(corrupt(
                "database is shorter than its meta page says (truncated?)",
            ));
        }
        Ok(BboltReader { input, len, meta })
    }

    /// The top-level buckets, by name.
    pub(crate) fn buckets(&mut self) -> Result<Vec<(Vec<u8>, BucketRoot)>> {
        let mut out = Vec::new();
        let root = BucketRoot::Page(self.meta.root);
        self.walk(&root, &mut |flags, key, value| {
            if flags & BUCKET_ELEMENT != 0 {
                out.push((key.to_vec(), bucket_root(value)?));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `visit(key, value)` for every entry of a bucket, in key order (nested buckets
    /// are skipped: etcd's buckets have none).
    pub(crate) fn for_each(
        &mut self,
        bucket: &BucketRoot,
        visit: &mut EntryVisitor<'_>,
    ) -> Result<()> {
        self.walk(bucket, &mut |flags, key, value| {
            if flags & BUCKET_ELEMENT == 0 {
                visit(key, value)?;
            }
            Ok(())
        })
    }

    fn walk(&mut self, root: &BucketRoot, visit: &mut ElementVisitor<'_>) -> Result<()> {
        match root {
            BucketRoot::Page(id) => self.walk_page(*id, 0, visit),
            BucketRoot::Inline(page) => visit_leaf(page, visit),
        }
    }

    fn walk_page(&mut self, id: u64, depth: usize, visit: &mut ElementVisitor<'_>) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(corrupt("tree too deep (a page cycle?)"));
        }
        let page = self.page(id)?;
        match u16_at(&page, 8) {
            LEAF_PAGE => visit_leaf(&page, visit),
            BRANCH_PAGE => {
                let count = usize::from(u16_at(&page, 10));
                for i in 0..count {
                    let at = PAGE_HEADER_LEN + i * ELEMENT_LEN;
                    let element = page
                        .get(at..at + ELEMENT_LEN)
                        .ok_or_else(|| corrupt("branch element past its page"))?;
                    let child = u64_at(element, 8);
                    self.walk_page(child, depth + 1, visit)?;
                }
                Ok(())
            }
            _ => Err(corrupt(&format!(
                "page {id} is neither a branch nor a leaf"
            ))),
        }
    }

    /// Page `id` with its overflow pages.
    fn page(&mut self, id: u64) -> Result<Vec<u8>> {
        if id < 2 || id >= self.meta.pages {
            return Err(corrupt(&format!("page {id} is out of bounds")));
        }
        let page_size = u64::from(self.meta.page_size);
        let offset = id * page_size;
        let mut header = vec![0u8; PAGE_HEADER_LEN];
        read_at(&mut self.input, offset, &mut header)?;
        if u64_at(&header, 0) != id {
            return Err(corrupt(&format!("page {id} claims another id")));
        }
        let pages = 1 + u64::from(u32_at(&header, 12));
        let end = offset + pages * page_size;
        if id + pages > self.meta.pages || end > self.len {
            return Err(corrupt(&format!("page {id} overflows the file")));
        }
        let mut page = vec![0u8; (pages * page_size) as usize];
        read_at(&mut self.input, offset, &mut page)?;
        Ok(page)
    }
}

/// Calls `visit(flags, key, value)` for each element of a leaf page.
fn visit_leaf(page: &[u8], visit: &mut ElementVisitor<'_>) -> Result<()> {
    if page.len() < PAGE_HEADER_LEN {
        return Err(corrupt("leaf page too short"));
    }
    let count = usize::from(u16_at(page, 10));
    for i in 0..count {
        let at = PAGE_HEADER_LEN + i * ELEMENT_LEN;
        let element = page
            .get(at..at + ELEMENT_LEN)
            .ok_or_else(|| corrupt("leaf element past its page"))?;
        let flags = u32_at(element, 0);
        let key_at = at + u32_at(element, 4) as usize;
        let key_len = u32_at(element, 8) as usize;
        let value_len = u32_at(element, 12) as usize;
        let key = page
            .get(key_at..key_at + key_len)
            .ok_or_else(|| corrupt("leaf key past its page"))?;
        let value_at = key_at + key_len;
        let value = page
            .get(value_at..value_at + value_len)
            .ok_or_else(|| corrupt("leaf value past its page"))?;
        visit(flags, key, value)?;
    }
    Ok(())
}

/// A bucket element's value: its root page, or its inline page.
fn bucket_root(value: &[u8]) -> Result<BucketRoot> {
    if value.len() < BUCKET_HEADER_LEN {
        return Err(corrupt("bucket header too short"));
    }
    match u64_at(value, 0) {
        0 => Ok(BucketRoot::Inline(value[BUCKET_HEADER_LEN..].to_vec())),
        page => Ok(BucketRoot::Page(page)),
    }
}

fn read_at<R: Read + Seek>(input: &mut R, offset: u64, buf: &mut [u8]) -> Result<()> {
    input.seek(SeekFrom::Start(offset))?;
    input.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt("file is truncated")
        } else {
            e.into()
        }
    })
}
