//! An etcd v3 snapshot file → keel's keyspace, written into an empty staging tree.
//!
//! The `key` bucket is read in revision order and each entry becomes what applying that write
//! would have left in keel: an event-log record, a history entry, and the key's current value
//! (replaced by later puts, removed by a tombstone). The revisions, create revisions and
//! versions are etcd's, untouched. Leases keep their TTL and the keys that name them are
//! attached; users, roles and the auth switch carry over; the compaction revision becomes
//! keel's. etcd's Raft state (members, consistent index, term) is not carried: the restored
//! member starts a new cluster, as with `etcdctl snapshot restore`.

use std::io::{Read, Seek, SeekFrom};

use sha2::Digest as _;

use super::bbolt::corrupt;
use super::bbolt_read::{BboltReader, BucketRoot};
use super::schema;
use crate::auth::{self, AuthState, Permission, Role, User};
use crate::codec;
use crate::error::{Error, Result};
use crate::event_log::Groups;
use crate::index::{self, Record, CURRENT};
use crate::kv::KeyValue;
use crate::lease::LeaseInfo;
use crate::revision::Revision;

/// How to read an etcd snapshot.
#[derive(Clone, Debug, Default)]
pub struct EtcdImportOptions {
    /// Accept a file without the trailing SHA-256 (a copy of a member's `member/snap/db`),
    /// as `etcdctl snapshot restore --skip-hash-check`. A file that has one is still checked.
    pub skip_hash_check: bool,
    /// Signs auth tokens if the snapshot has auth enabled (keel's tokens are signed with a
    /// secret the keyspace keeps; etcd's are not in its file). Required in that case.
    pub token_secret: Vec<u8>,
}

/// What an import read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdImported {
    /// The keyspace's revision after the import.
    pub revision: i64,
    /// Entries of the `key` bucket (revisions, tombstones included).
    pub revisions: u64,
    /// Keys that exist at the last revision.
    pub keys: u64,
    /// Leases.
    pub leases: u64,
    /// Users and roles.
    pub users: u64,
    /// Roles.
    pub roles: u64,
    /// etcd's finished compaction revision (0: never compacted).
    pub compacted: i64,
    /// A compaction etcd had scheduled but not finished: the caller compacts to it, as etcd
    /// does when it opens such a file.
    pub scheduled_compaction: Option<i64>,
}

/// Records kept in memory before their event-log groups go to the tree.
const GROUP_FLUSH_RECORDS: usize = 1024;

/// Checks the digest, opens the database, and fills `staging` (empty) from it.
pub(crate) fn import<R: Read + Seek>(
    staging: &sled::Tree,
    mut input: R,
    options: &EtcdImportOptions,
) -> Result<EtcdImported> {
    let len = input.seek(SeekFrom::End(0))?;
    // etcd's rule: a file whose size is 32 past a multiple of 512 carries a SHA-256.
    let has_digest = len % 512 == 32;
    let db_len = if has_digest { len - 32 } else { len };
    if has_digest {
        verify_digest(&mut input, db_len)?;
    } else if !options.skip_hash_check {
        return Err(corrupt(
            "no SHA-256 after the database (a copy of a member's db file?); \
             skip the hash check to accept it",
        ));
    }
    let mut db = BboltReader::open(input, db_len)?;
    let buckets = db.buckets()?;
    let bucket = |name: &[u8]| {
        buckets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, root)| root.clone())
    };
    let keys_root = bucket(schema::KEY)
        .ok_or_else(|| corrupt("no `key` bucket: a bbolt file, but not etcd's"))?;
    let mut imported = EtcdImported::default();
    let last = import_keys(staging, &mut db, &keys_root, &mut imported)?;
    if let Some(root) = bucket(schema::LEASE) {
        import_leases(staging, &mut db, &root, &mut imported)?;
    }
    attach_leased_keys(staging, &mut imported)?;
    let meta = match bucket(schema::META) {
        Some(root) => read_all(&mut db, &root)?,
        None => Vec::new(),
    };
    let compact_at = |name: &[u8]| -> Result<i64> {
        match meta.iter().find(|(k, _)| k == name) {
            Some((_, value)) => Ok(schema::parse_revision_key(value)?.0.main),
            None => Ok(0),
        }
    };
    let finished = compact_at(schema::FINISHED_COMPACT)?;
    let scheduled = compact_at(schema::SCHEDULED_COMPACT)?;
    imported.compacted = finished;
    imported.scheduled_compaction = (scheduled > finished).then_some(scheduled);
    import_auth(staging, &mut db, &bucket, options, &mut imported)?;
    // etcd's current revision: the last write's, or the compaction's if that removed it.
    let revision = last.max(finished).max(scheduled).max(1);
    imported.revision = revision;
    staging.insert(index::META_REVISION, &revision.to_be_bytes())?;
    if finished > 0 {
        staging.insert(index::META_COMPACTED, &finished.to_be_bytes())?;
    }
    Ok(imported)
}

fn verify_digest<R: Read + Seek>(input: &mut R, db_len: u64) -> Result<()> {
    input.seek(SeekFrom::Start(0))?;
    let mut hasher = sha2::Sha256::new();
    let copied = std::io::copy(&mut (&mut *input).take(db_len), &mut hasher)?;
    if copied != db_len {
        return Err(corrupt("file is truncated"));
    }
    let mut expected = [0u8; 32];
    input.read_exact(&mut expected)?;
    if hasher.finalize().as_slice() != expected {
        return Err(corrupt(
            "SHA-256 mismatch: the file is damaged or was cut short",
        ));
    }
    Ok(())
}

fn read_all<R: Read + Seek>(
    db: &mut BboltReader<R>,
    root: &BucketRoot,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    db.for_each(root, &mut |key, value| {
        out.push((key.to_vec(), value.to_vec()));
        Ok(())
    })?;
    Ok(out)
}

/// The `key` bucket; returns the last revision's main.
fn import_keys<R: Read + Seek>(
    staging: &sled::Tree,
    db: &mut BboltReader<R>,
    root: &BucketRoot,
    imported: &mut EtcdImported,
) -> Result<i64> {
    let mut groups = Groups::default();
    let mut pending = 0usize;
    let mut last = Revision::new(0, 0);
    let flush = |groups: &mut Groups| -> Result<()> {
        for (key, value) in std::mem::take(groups).into_entries() {
            staging.insert(key, value)?;
        }
        Ok(())
    };
    db.for_each(root, &mut |key, value| {
        let (revision, tombstone) = schema::parse_revision_key(key)?;
        if revision <= last {
            return Err(corrupt("key bucket out of revision order"));
        }
        last = revision;
        let kv: schema::KeyValue = schema::decode("mvccpb.KeyValue", value)?;
        if kv.key.is_empty() {
            return Err(corrupt("a key bucket entry without a key"));
        }
        let current = index::current_key(&kv.key);
        let record = if tombstone {
            staging.remove(current)?;
            Record::Delete(kv.key)
        } else {
            let kv = KeyValue::from(kv);
            staging.insert(current, codec::encode(&kv)?)?;
            Record::Put(kv)
        };
        staging.insert(
            index::history_key(record.key(), revision),
            vec![record.kind()],
        )?;
        groups.push(revision, &record)?;
        pending += 1;
        imported.revisions += 1;
        if pending >= GROUP_FLUSH_RECORDS {
            flush(&mut groups)?;
            pending = 0;
        }
        Ok(())
    })?;
    flush(&mut groups)?;
    Ok(last.main)
}

fn import_leases<R: Read + Seek>(
    staging: &sled::Tree,
    db: &mut BboltReader<R>,
    root: &BucketRoot,
    imported: &mut EtcdImported,
) -> Result<()> {
    db.for_each(root, &mut |_, value| {
        let lease: schema::Lease = schema::decode("leasepb.Lease", value)?;
        if lease.id <= 0 || lease.ttl <= 0 {
            return Err(corrupt(&format!(
                "lease {} with TTL {}",
                lease.id, lease.ttl
            )));
        }
        let info = LeaseInfo {
            id: lease.id,
            ttl: lease.ttl,
        };
        staging.insert(index::lease_key(lease.id), codec::encode(&info)?)?;
        imported.leases += 1;
        Ok(())
    })
}

/// Attaches each current key to its lease, as etcd's restore does; a key naming a lease the
/// file does not hold stays unattached (etcd ignores it too).
fn attach_leased_keys(staging: &sled::Tree, imported: &mut EtcdImported) -> Result<()> {
    let mut attachments = Vec::new();
    for entry in staging.scan_prefix([CURRENT]) {
        let (_, value) = entry?;
        imported.keys += 1;
        let kv: KeyValue = codec::decode(&value)?;
        if kv.lease != 0 && staging.contains_key(index::lease_key(kv.lease))? {
            attachments.push(index::attach_key(kv.lease, &kv.key));
        }
    }
    for key in attachments {
        staging.insert(key, Vec::new())?;
    }
    Ok(())
}

fn import_auth<R: Read + Seek>(
    staging: &sled::Tree,
    db: &mut BboltReader<R>,
    bucket: &dyn Fn(&[u8]) -> Option<BucketRoot>,
    options: &EtcdImportOptions,
    imported: &mut EtcdImported,
) -> Result<()> {
    if let Some(root) = bucket(schema::AUTH_USERS) {
        for (_, value) in read_all(db, &root)? {
            let user: schema::User = schema::decode("authpb.User", &value)?;
            let name = utf8("user name", user.name)?;
            let no_password = user.options.is_some_and(|o| o.no_password);
            let password_hash = (!no_password && !user.password.is_empty())
                .then(|| utf8("password hash", user.password))
                .transpose()?;
            let mut roles = user.roles;
            roles.sort();
            roles.dedup();
            let user = User {
                name,
                password_hash,
                roles,
            };
            staging.insert(auth::user_key(&user.name), codec::encode(&user)?)?;
            imported.users += 1;
        }
    }
    if let Some(root) = bucket(schema::AUTH_ROLES) {
        for (_, value) in read_all(db, &root)? {
            let role: schema::Role = schema::decode("authpb.Role", &value)?;
            let mut permissions = role
                .key_permission
                .into_iter()
                .map(|p| {
                    Ok(Permission {
                        perm_type: schema::perm_type_from_etcd(p.perm_type)?,
                        key: p.key,
                        range_end: p.range_end,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            permissions.sort_by(|a, b| (&a.key, &a.range_end).cmp(&(&b.key, &b.range_end)));
            let role = Role {
                name: utf8("role name", role.name)?,
                permissions,
            };
            staging.insert(auth::role_key(&role.name), codec::encode(&role)?)?;
            imported.roles += 1;
        }
    }
    let Some(root) = bucket(schema::AUTH) else {
        return Ok(());
    };
    let entries = read_all(db, &root)?;
    let value = |name: &[u8]| entries.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let enabled = value(schema::AUTH_ENABLED).is_some_and(|v| v.as_slice() == [1]);
    let revision = match value(schema::AUTH_REVISION) {
        Some(bytes) => u64::from_be_bytes(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("authRevision is not 8 bytes"))?,
        ),
        None => 0,
    };
    if enabled && options.token_secret.is_empty() {
        return Err(Error::Storage(
            "the etcd snapshot has auth enabled: a token secret is needed to import it".into(),
        ));
    }
    let state = AuthState {
        enabled,
        revision,
        token_secret: if enabled {
            options.token_secret.clone()
        } else {
            Vec::new()
        },
    };
    staging.insert(auth::META_AUTH, codec::encode(&state)?)?;
    Ok(())
}

fn utf8(what: &str, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| corrupt(&format!("{what} is not UTF-8")))
}
