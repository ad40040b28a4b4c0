//! keel's keyspace → an etcd v3 snapshot file.
//!
//! The event log is etcd's `key` bucket already: every retained write in revision order,
//! compacted the same way (the newest put at or below the compaction revision stays). Each
//! record becomes a revision key and an mvccpb.KeyValue (a tombstone: the key alone, as etcd
//! writes it). Leases, users, roles and the auth switch go to their buckets; the compaction
//! revision to `meta`. Raft state (members, consistent index) is not carried: etcd's restore
//! makes its own, as it does for its own snapshots.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};

use prost::Message as _;
use sha2::Digest as _;

use super::bbolt_write::BboltWriter;
use super::schema;
use crate::auth::{self, Role, User, ROOT};
use crate::codec;
use crate::error::Result;
use crate::event_log;
use crate::index::{self, Record, EVENT, LEASE};
use crate::lease::LeaseInfo;
use crate::revision::Revision;

/// One bucket entry, key and value, or why it could not be read.
type Entry = Result<(Vec<u8>, Vec<u8>)>;

/// What an export wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtcdExported {
    /// The keyspace's revision.
    pub revision: i64,
    /// Entries of the `key` bucket (every retained revision, tombstones included).
    pub revisions: u64,
    /// Bytes written: the database and its SHA-256.
    pub bytes: u64,
}

/// Writes the keyspace in `tree` as of `revision` to `out` as etcd's snapshot: a bbolt
/// database followed by its SHA-256. The caller keeps compactions, leases and auth changes
/// out meanwhile (see `Store::export_point`).
pub(crate) fn export_at<W: Read + Write + Seek>(
    tree: &sled::Tree,
    revision: i64,
    compacted: i64,
    out: W,
) -> Result<(EtcdExported, W)> {
    let mut db = BboltWriter::new(out)?;
    let mut revisions = 0u64;
    db.bucket(
        schema::KEY,
        key_bucket(tree, revision).inspect(|_| revisions += 1),
    )?;
    db.bucket(schema::LEASE, lease_bucket(tree))?;
    db.bucket(schema::META, meta_bucket(compacted))?;
    let state = auth::state(tree)?;
    let enabled = vec![u8::from(state.enabled)];
    db.bucket(
        schema::AUTH,
        [
            Ok((schema::AUTH_ENABLED.to_vec(), enabled)),
            Ok((
                schema::AUTH_REVISION.to_vec(),
                state.revision.to_be_bytes().to_vec(),
            )),
        ],
    )?;
    db.bucket(schema::AUTH_USERS, users_bucket(tree)?)?;
    db.bucket(schema::AUTH_ROLES, roles_bucket(tree)?)?;
    for empty in [
        schema::MEMBERS,
        schema::MEMBERS_REMOVED,
        schema::CLUSTER,
        schema::ALARM,
    ] {
        db.bucket(empty, [])?;
    }
    let mut out = db.finish()?;
    // The digest covers the meta pages, written last at the front, so it is a second pass.
    let len = out.stream_position()?;
    out.seek(SeekFrom::Start(0))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut (&mut out).take(len), &mut hasher)?;
    out.seek(SeekFrom::Start(len))?;
    out.write_all(&hasher.finalize())?;
    out.flush()?;
    let exported = EtcdExported {
        revision,
        revisions,
        bytes: len + 32,
    };
    Ok((exported, out))
}

/// The event log up to `revision`, as `key` bucket entries in revision order.
fn key_bucket(tree: &sled::Tree, revision: i64) -> impl Iterator<Item = Entry> + '_ {
    let end = index::event_key(Revision::new(revision + 1, 0));
    tree.range(vec![EVENT]..end)
        .map(move |entry| -> Result<Vec<Entry>> {
            let (tree_key, value) = entry?;
            let mut out = Vec::new();
            for (rev, record) in event_log::records(&tree_key, &value)? {
                if rev.main > revision {
                    break;
                }
                out.push(key_entry(rev, codec::decode(record)?));
            }
            Ok(out)
        })
        .flat_map(|group| match group {
            Ok(entries) => entries,
            Err(e) => vec![Err(e)],
        })
}

fn key_entry(revision: Revision, record: Record) -> Entry {
    let (tombstone, kv) = match record {
        Record::Put(kv) => (false, schema::KeyValue::from(kv)),
        Record::Delete(key) => (
            true,
            schema::KeyValue {
                key,
                ..Default::default()
            },
        ),
    };
    Ok((
        schema::revision_key(revision, tombstone),
        kv.encode_to_vec(),
    ))
}

fn lease_bucket(tree: &sled::Tree) -> impl Iterator<Item = Entry> {
    tree.scan_prefix([LEASE]).map(|entry| {
        let lease: LeaseInfo = codec::decode(&entry?.1)?;
        let value = schema::Lease {
            id: lease.id,
            ttl: lease.ttl,
            remaining_ttl: 0,
        };
        Ok((lease.id.to_be_bytes().to_vec(), value.encode_to_vec()))
    })
}

fn meta_bucket(compacted: i64) -> Vec<Entry> {
    let mut entries = vec![Ok((schema::CONSISTENT_INDEX.to_vec(), vec![0u8; 8]))];
    if compacted > 0 {
        let at = schema::revision_key(Revision::new(compacted, 0), false);
        entries.push(Ok((schema::FINISHED_COMPACT.to_vec(), at.clone())));
        entries.push(Ok((schema::SCHEDULED_COMPACT.to_vec(), at)));
    }
    entries
}

fn users_bucket(tree: &sled::Tree) -> Result<Vec<Entry>> {
    let users: Vec<User> = auth::scan(tree, auth::USER)?;
    Ok(users
        .into_iter()
        .map(|user| {
            let value = schema::User {
                name: user.name.clone().into_bytes(),
                password: user.password_hash.clone().unwrap_or_default().into_bytes(),
                roles: user.roles,
                options: user
                    .password_hash
                    .is_none()
                    .then_some(schema::UserAddOptions { no_password: true }),
            };
            Ok((user.name.into_bytes(), value.encode_to_vec()))
        })
        .collect())
}

/// Roles by name; keel lets a user hold `root` with no role record, etcd keeps one, so a
/// missing `root` record is written empty (etcd's root role needs no permissions).
fn roles_bucket(tree: &sled::Tree) -> Result<Vec<Entry>> {
    let mut roles: BTreeMap<Vec<u8>, Vec<schema::Permission>> = BTreeMap::new();
    let users: Vec<User> = auth::scan(tree, auth::USER)?;
    if users.iter().any(User::is_root) {
        roles.insert(ROOT.as_bytes().to_vec(), Vec::new());
    }
    let stored: Vec<Role> = auth::scan(tree, auth::ROLE)?;
    for role in stored {
        let permissions = role
            .permissions
            .into_iter()
            .map(|p| schema::Permission {
                perm_type: schema::perm_type_to_etcd(p.perm_type),
                key: p.key,
                range_end: p.range_end,
            })
            .collect();
        roles.insert(role.name.into_bytes(), permissions);
    }
    Ok(roles
        .into_iter()
        .map(|(name, key_permission)| {
            let value = schema::Role {
                name: name.clone(),
                key_permission,
            };
            Ok((name, value.encode_to_vec()))
        })
        .collect())
}
