//! etcd v3 snapshot files, both ways: so a keel keyspace moves to etcd and an etcd one to keel.
//!
//! An etcd 3.4/3.5 snapshot is a bbolt database followed by the SHA-256 of every byte before
//! it. Its `key` bucket maps revisions (8-byte big-endian main, `_`, 8-byte sub, `t` for a
//! tombstone) to mvccpb.KeyValue; `lease`, `auth`, `authUsers`, `authRoles` and `meta` hold
//! the rest of what keel carries (members, cluster version and alarms are the old cluster's
//! and are not). keel's event log is that `key` bucket, compacted the same way, so the
//! mapping is one record per entry and revisions survive both ways.
//!
//! - `bbolt`: page and meta layout shared by both directions.
//! - `bbolt_write`: a front-to-back bulk loader (leaf pages, then branches, then metas).
//! - `bbolt_read`: meta selection and in-order walks of a bucket's pages.
//! - `schema`: bucket and meta names, revision keys, the protobuf values.
//! - `export`: keel → etcd ([`crate::ExportPoint::write_etcd`]).
//! - `import`: etcd → keel ([`crate::Store::import_etcd`]).
//!
//! keel's own snapshot format (`snapshot`) stays the one Raft and `keelctl` use by default:
//! it is a straight copy of the tree, with nothing to rebuild on import.

mod bbolt;
mod bbolt_read;
mod bbolt_write;
mod export;
mod import;
mod schema;

use std::io::{Read, Seek, Write};

pub use export::EtcdExported;
pub use import::{EtcdImportOptions, EtcdImported};

use crate::error::Result;
use crate::keyspace::{ExportPoint, Store};
use crate::request::Command;

/// Which format a snapshot file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotFormat {
    /// keel's own (`KEELSNAP`...).
    Keel,
    /// etcd's: a bbolt database and its SHA-256.
    Etcd,
}

/// Bytes of a file's start that [`SnapshotFormat::detect`] needs.
pub const DETECT_LEN: usize = 20;

impl SnapshotFormat {
    /// The format of a file starting with `head` (at least [`DETECT_LEN`] bytes), if either.
    pub fn detect(head: &[u8]) -> Option<SnapshotFormat> {
        if head.starts_with(b"KEELSNAP") {
            return Some(SnapshotFormat::Keel);
        }
        // bbolt's first page is a meta page: its magic follows the 16-byte page header.
        let magic = head.get(16..20)?;
        (magic == bbolt::MAGIC.to_le_bytes()).then_some(SnapshotFormat::Etcd)
    }
}

impl Store {
    /// Replaces the whole state with an etcd snapshot's (see the module doc), verifying its
    /// SHA-256 first unless told not to. Like [`Store::import`], it is all or nothing.
    pub fn import_etcd<R: Read + Seek>(
        &self,
        input: R,
        options: &EtcdImportOptions,
    ) -> Result<EtcdImported> {
        let mut imported = None;
        self.replace_with(|staging| {
            imported = Some(import::import(staging, input, options)?);
            Ok(())
        })?;
        let imported = imported.expect("a successful fill sets it");
        if let Some(revision) = imported.scheduled_compaction {
            self.apply(&Command::Compact { revision }, None)?;
        }
        Ok(imported)
    }
}

impl ExportPoint<'_> {
    /// Writes the keyspace as of this point as an etcd v3 snapshot into `out` from its
    /// start: the database, then its SHA-256. Returns what was written and `out`.
    pub fn write_etcd<W: Read + Write + Seek>(self, out: W) -> Result<(EtcdExported, W)> {
        let (tree, revision, compacted) = self.parts()?;
        export::export_at(&tree, revision, compacted, out)
    }
}

#[cfg(test)]
mod tests;
