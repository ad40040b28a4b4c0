//! Writes a bbolt database front to back, the way a bulk load would: each bucket's entries
//! arrive in key order and fill leaf pages one after another; when a bucket is done, branch
//! pages over its leaves are written level by level up to its root; the root bucket's page
//! (naming every bucket) comes last, and the meta pages at the front are written once
//! everything they point at is on disk. Nothing but the branch keys of the bucket being
//! written is held in memory, so a keyspace of any size streams through.
//!
//! Every page is reachable from the root or is a meta or freelist page, and the freelist is
//! empty, so bbolt's consistency check (`etcdctl snapshot status` runs it) finds nothing.

use std::io::{Seek, SeekFrom, Write};

use super::bbolt::{
    page_header, Meta, BRANCH_PAGE, BUCKET_ELEMENT, ELEMENT_LEN, FREELIST_PAGE, LEAF_PAGE,
    PAGE_HEADER_LEN, PAGE_SIZE,
};
use crate::error::{Error, Result};

/// The first page after the two meta pages and the freelist.
const FIRST_DATA_PAGE: u64 = 3;
const FREELIST_PAGE_ID: u64 = 2;

/// Where pages go: the output and the id of the next page.
struct Pages<W> {
    out: W,
    next: u64,
}

impl<W: Write> Pages<W> {
    /// Writes `page` (header included) padded to whole pages; returns its id.
    fn write(&mut self, flags: u16, count: usize, body: &[u8]) -> Result<u64> {
        let id = self.next;
        let len = PAGE_HEADER_LEN + body.len();
        let pages = len.div_ceil(PAGE_SIZE).max(1);
        let count = u16::try_from(count)
            .map_err(|_| Error::Storage("too many elements for one bbolt page".into()))?;
        let overflow = u32::try_from(pages - 1)
            .map_err(|_| Error::Storage("value too large for a bbolt page".into()))?;
        self.out
            .write_all(&page_header(id, flags, count, overflow))?;
        self.out.write_all(body)?;
        self.out.write_all(&vec![0u8; pages * PAGE_SIZE - len])?;
        self.next += pages as u64;
        Ok(id)
    }
}

/// One page being filled: its elements and the bytes of their keys and values.
#[derive(Default)]
struct PageBuilder {
    /// (flags or child page id, key, value) per element.
    elements: Vec<(u64, Vec<u8>, Vec<u8>)>,
    data_len: usize,
}

impl PageBuilder {
    fn len(&self) -> usize {
        PAGE_HEADER_LEN + self.elements.len() * ELEMENT_LEN + self.data_len
    }

    /// Whether the element would push a page that already holds something past one page.
    fn is_full_for(&self, key: &[u8], value: &[u8]) -> bool {
        !self.elements.is_empty()
            && (self.len() + ELEMENT_LEN + key.len() + value.len() > PAGE_SIZE
                || self.elements.len() == usize::from(u16::MAX))
    }

    fn push(&mut self, tag: u64, key: Vec<u8>, value: Vec<u8>) {
        self.data_len += key.len() + value.len();
        self.elements.push((tag, key, value));
    }

    /// The page body: elements, then keys and values; `pos` counts from each element.
    fn body(&self, branch: bool) -> Vec<u8> {
        let count = self.elements.len();
        let mut elements = Vec::with_capacity(count * ELEMENT_LEN);
        let mut data = Vec::with_capacity(self.data_len);
        for (i, (tag, key, value)) in self.elements.iter().enumerate() {
            let pos = (count - i) * ELEMENT_LEN + data.len();
            let pos = pos as u32;
            if branch {
                elements.extend_from_slice(&pos.to_le_bytes());
                elements.extend_from_slice(&(key.len() as u32).to_le_bytes());
                elements.extend_from_slice(&tag.to_le_bytes());
            } else {
                elements.extend_from_slice(&(*tag as u32).to_le_bytes());
                elements.extend_from_slice(&pos.to_le_bytes());
                elements.extend_from_slice(&(key.len() as u32).to_le_bytes());
                elements.extend_from_slice(&(value.len() as u32).to_le_bytes());
            }
            data.extend_from_slice(key);
            data.extend_from_slice(value);
        }
        elements.extend_from_slice(&data);
        elements
    }
}

/// One B+tree (a bucket's, or the root bucket's) being bulk-loaded.
#[derive(Default)]
struct TreeBuilder {
    leaf: PageBuilder,
    /// First key and page id of every leaf written so far.
    leaves: Vec<(Vec<u8>, u64)>,
    last_key: Option<Vec<u8>>,
}

impl TreeBuilder {
    fn put<W: Write>(
        &mut self,
        pages: &mut Pages<W>,
        flags: u32,
        key: &[u8],
        value: &[u8],
    ) -> Result<()> {
        if key.is_empty() {
            return Err(Error::Storage("bbolt keys cannot be empty".into()));
        }
        if self.last_key.as_deref().is_some_and(|last| last >= key) {
            return Err(Error::Storage(
                "bbolt keys must be written in increasing order".into(),
            ));
        }
        self.last_key = Some(key.to_vec());
        if self.leaf.is_full_for(key, value) {
            self.flush_leaf(pages)?;
        }
        self.leaf
            .push(u64::from(flags), key.to_vec(), value.to_vec());
        Ok(())
    }

    fn flush_leaf<W: Write>(&mut self, pages: &mut Pages<W>) -> Result<()> {
        let leaf = std::mem::take(&mut self.leaf);
        let first = leaf
            .elements
            .first()
            .map(|e| e.1.clone())
            .unwrap_or_default();
        let id = pages.write(LEAF_PAGE, leaf.elements.len(), &leaf.body(false))?;
        self.leaves.push((first, id));
        Ok(())
    }

    /// Writes what is left and the branch levels; returns the root page's id.
    fn finish<W: Write>(mut self, pages: &mut Pages<W>) -> Result<u64> {
        if !self.leaf.elements.is_empty() || self.leaves.is_empty() {
            self.flush_leaf(pages)?;
        }
        let mut level = self.leaves;
        while level.len() > 1 {
            let mut parents = Vec::new();
            let mut page = PageBuilder::default();
            for (key, child) in level {
                if page.is_full_for(&key, &[]) {
                    let first = page.elements[0].1.clone();
                    let count = page.elements.len();
                    parents.push((first, pages.write(BRANCH_PAGE, count, &page.body(true))?));
                    page = PageBuilder::default();
                }
                page.push(child, key, Vec::new());
            }
            let first = page.elements[0].1.clone();
            let count = page.elements.len();
            parents.push((first, pages.write(BRANCH_PAGE, count, &page.body(true))?));
            level = parents;
        }
        Ok(level[0].1)
    }
}

/// A bbolt database being written to `W`; buckets one at a time, in any order.
pub(crate) struct BboltWriter<W> {
    pages: Pages<W>,
    /// Name and root page of every finished bucket.
    buckets: Vec<(Vec<u8>, u64)>,
}

impl<W: Write + Seek> BboltWriter<W> {
    /// Starts a database at the beginning of `out`: room for the meta pages, then the
    /// (empty) freelist.
    pub(crate) fn new(mut out: W) -> Result<BboltWriter<W>> {
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&vec![0u8; 2 * PAGE_SIZE])?;
        let mut pages = Pages { out, next: 2 };
        let freelist = pages.write(FREELIST_PAGE, 0, &[])?;
        debug_assert_eq!(freelist, FREELIST_PAGE_ID);
        debug_assert_eq!(pages.next, FIRST_DATA_PAGE);
        Ok(BboltWriter {
            pages,
            buckets: Vec::new(),
        })
    }

    /// Writes the bucket `name` from `entries`, which must come in increasing key order.
    pub(crate) fn bucket(
        &mut self,
        name: &[u8],
        entries: impl IntoIterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    ) -> Result<()> {
        let mut tree = TreeBuilder::default();
        for entry in entries {
            let (key, value) = entry?;
            tree.put(&mut self.pages, 0, &key, &value)?;
        }
        let root = tree.finish(&mut self.pages)?;
        self.buckets.push((name.to_vec(), root));
        Ok(())
    }

    /// Writes the root bucket and the meta pages; returns the output, positioned at the end
    /// of the database.
    pub(crate) fn finish(mut self) -> Result<W> {
        self.buckets.sort();
        let mut root = TreeBuilder::default();
        for (name, page) in &self.buckets {
            let mut header = page.to_le_bytes().to_vec();
            header.extend_from_slice(&0u64.to_le_bytes());
            root.put(&mut self.pages, BUCKET_ELEMENT, name, &header)?;
        }
        let root = root.finish(&mut self.pages)?;
        let Pages { mut out, next } = self.pages;
        let end = out.stream_position()?;
        out.seek(SeekFrom::Start(0))?;
        for id in 0..2 {
            let meta = Meta {
                page_size: PAGE_SIZE as u32,
                root,
                freelist: FREELIST_PAGE_ID,
                pages: next,
                // Both valid; the reader takes the higher.
                txid: 1 + id,
            };
            out.write_all(&meta.page(id))?;
        }
        out.seek(SeekFrom::Start(end))?;
        out.flush()?;
        Ok(out)
    }
}
