//! etcd's schema inside the bbolt file: bucket names, meta keys, the revision keys of the
//! `key` bucket, and the protobuf messages stored as values (mvccpb.KeyValue, leasepb.Lease,
//! authpb.User and authpb.Role), declared here with prost's derive, field for field.

use crate::error::Result;
use crate::revision::Revision;

use super::bbolt::corrupt;

/// Every bucket an etcd 3.4 backend creates; etcd fails to start on a file missing one.
pub(crate) const KEY: &[u8] = b"key";
pub(crate) const LEASE: &[u8] = b"lease";
pub(crate) const META: &[u8] = b"meta";
pub(crate) const MEMBERS: &[u8] = b"members";
pub(crate) const MEMBERS_REMOVED: &[u8] = b"members_removed";
pub(crate) const CLUSTER: &[u8] = b"cluster";
pub(crate) const AUTH: &[u8] = b"auth";
pub(crate) const AUTH_USERS: &[u8] = b"authUsers";
pub(crate) const AUTH_ROLES: &[u8] = b"authRoles";
pub(crate) const ALARM: &[u8] = b"alarm";

/// `meta` bucket keys.
pub(crate) const CONSISTENT_INDEX: &[u8] = b"consistent_index";
pub(crate) const FINISHED_COMPACT: &[u8] = b"finishedCompactRev";
pub(crate) const SCHEDULED_COMPACT: &[u8] = b"scheduledCompactRev";

/// `auth` bucket keys and the enabled flag's values.
pub(crate) const AUTH_ENABLED: &[u8] = b"authEnabled";
pub(crate) const AUTH_REVISION: &[u8] = b"authRevision";

/// Bytes of a revision key: main, `_`, sub.
const REVISION_KEY_LEN: usize = 17;
/// The suffix that marks a tombstone's revision key.
const TOMBSTONE: u8 = b't';

/// The `key` bucket's key for a write at `revision`: 8-byte big-endian main, `_`, 8-byte
/// big-endian sub, then `t` for a deletion. Byte order is revision order.
pub(crate) fn revision_key(revision: Revision, tombstone: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(REVISION_KEY_LEN + 1);
    out.extend_from_slice(&revision.main.to_be_bytes());
    out.push(b'_');
    out.extend_from_slice(&revision.sub.to_be_bytes());
    if tombstone {
        out.push(TOMBSTONE);
    }
    out
}

/// The revision in a `key` bucket key, and whether it marks a tombstone.
pub(crate) fn parse_revision_key(key: &[u8]) -> Result<(Revision, bool)> {
    let tombstone = match key.len() {
        REVISION_KEY_LEN => false,
        len if len == REVISION_KEY_LEN + 1 && key[REVISION_KEY_LEN] == TOMBSTONE => true,
        _ => return Err(corrupt("key bucket entry is not a revision")),
    };
    if key[8] != b'_' {
        return Err(corrupt("key bucket entry is not a revision"));
    }
    let mut main = [0u8; 8];
    main.copy_from_slice(&key[..8]);
    let mut sub = [0u8; 8];
    sub.copy_from_slice(&key[9..17]);
    let revision = Revision::new(i64::from_be_bytes(main), i64::from_be_bytes(sub));
    if revision.main <= 0 || revision.sub < 0 {
        return Err(corrupt("key bucket entry has a negative revision"));
    }
    Ok((revision, tombstone))
}

/// mvccpb.KeyValue.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct KeyValue {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) key: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub(crate) create_revision: i64,
    #[prost(int64, tag = "3")]
    pub(crate) mod_revision: i64,
    #[prost(int64, tag = "4")]
    pub(crate) version: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub(crate) value: Vec<u8>,
    #[prost(int64, tag = "6")]
    pub(crate) lease: i64,
}

/// A key's version as etcd stores it: the same fields as keel's, field by field.
impl From<crate::kv::KeyValue> for KeyValue {
    fn from(kv: crate::kv::KeyValue) -> Self {
        KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

impl From<KeyValue> for crate::kv::KeyValue {
    fn from(kv: KeyValue) -> Self {
        crate::kv::KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

/// leasepb.Lease.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Lease {
    #[prost(int64, tag = "1")]
    pub(crate) id: i64,
    #[prost(int64, tag = "2")]
    pub(crate) ttl: i64,
    #[prost(int64, tag = "3")]
    pub(crate) remaining_ttl: i64,
}

/// authpb.UserAddOptions.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct UserAddOptions {
    #[prost(bool, tag = "1")]
    pub(crate) no_password: bool,
}

/// authpb.User; `password` holds the bcrypt hash.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct User {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) password: Vec<u8>,
    #[prost(string, repeated, tag = "3")]
    pub(crate) roles: Vec<String>,
    #[prost(message, optional, tag = "4")]
    pub(crate) options: Option<UserAddOptions>,
}

/// authpb.Permission; `perm_type` is READ 0, WRITE 1, READWRITE 2.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Permission {
    #[prost(int32, tag = "1")]
    pub(crate) perm_type: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) range_end: Vec<u8>,
}

/// authpb.Role.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Role {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) name: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub(crate) key_permission: Vec<Permission>,
}

pub(crate) fn perm_type_to_etcd(perm: crate::PermissionType) -> i32 {
    match perm {
        crate::PermissionType::Read => 0,
        crate::PermissionType::Write => 1,
        crate::PermissionType::ReadWrite => 2,
    }
}

pub(crate) fn perm_type_from_etcd(perm: i32) -> Result<crate::PermissionType> {
    match perm {
        0 => Ok(crate::PermissionType::Read),
        1 => Ok(crate::PermissionType::Write),
        2 => Ok(crate::PermissionType::ReadWrite),
        _ => Err(corrupt(&format!("unknown permission type {perm}"))),
    }
}

/// Decodes a protobuf value, naming what it should have been.
pub(crate) fn decode<M: prost::Message + Default>(what: &str, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| corrupt(&format!("bad {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_keys_sort_by_revision_and_parse_back() {
        let a = revision_key(Revision::new(2, 5), false);
        let b = revision_key(Revision::new(2, 5), true);
        let c = revision_key(Revision::new(256, 0), false);
        assert_eq!(a.len(), 17);
        assert!(a < c && b < c);
        assert_eq!(
            parse_revision_key(&a).unwrap(),
            (Revision::new(2, 5), false)
        );
        assert_eq!(parse_revision_key(&b).unwrap(), (Revision::new(2, 5), true));
        assert!(parse_revision_key(b"not a revision!!!").is_err());
    }
}
