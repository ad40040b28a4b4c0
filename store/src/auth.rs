//! Authentication and authorization state as data, the way etcd models it: users with
//! password hashes and roles, roles with permissions on a key or a range, the enabled flag
//! and an auth revision, all changed by [`AuthCommand`]s through the log.
//!
//! Only hashes ever reach this module: the proposer hashes a password (and draws the token
//! signing secret) before proposing, because hashing is salted and random — doing it while
//! applying would give every member a different hash. The store checks etcd's rules (a root
//! user with the root role before enabling, no deleting root while enabled) and nothing else;
//! deciding whether a request is permitted is the server's job, with [`Permission::covers`].
//!
//! The records live in the keyspace's one tree (`u` + user name, `r` + role name, and the
//! `mauth` meta entry), so an auth change is one atomic batch with the Raft marker, travels
//! in snapshots, and a snapshot import swaps it with everything else. `hash_kv` hashes only
//! the event log, so auth changes never show in it, as in etcd.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, Result};
use crate::index::KeyRange;
use crate::keyspace::Store;

/// The name of the user `auth enable` requires and of the role that may do everything.
pub const ROOT: &str = "root";

pub(crate) const USER: u8 = b'u';
pub(crate) const ROLE: u8 = b'r';
pub(crate) const META_AUTH: &[u8] = b"mauth";

/// What a permission allows (etcd `Permission.Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermissionType {
    /// Ranges, watches and txn compares.
    Read,
    /// Puts and deletes.
    Write,
    /// Both.
    ReadWrite,
}

impl PermissionType {
    /// Whether this type allows reading.
    pub fn reads(self) -> bool {
        matches!(self, PermissionType::Read | PermissionType::ReadWrite)
    }

    /// Whether this type allows writing.
    pub fn writes(self) -> bool {
        matches!(self, PermissionType::Write | PermissionType::ReadWrite)
    }
}

/// Access to `[key, range_end)`, with etcd's range conventions (`range_end` empty: the key
/// alone; `[0]`: every key from `key` on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// Read, write or both.
    pub perm_type: PermissionType,
    /// First key.
    pub key: Vec<u8>,
    /// End of the range, exclusive.
    pub range_end: Vec<u8>,
}

/// Whether `[key, range_end)` (etcd's range conventions) lies within the union of the
/// ranges of `permissions` that allow `need` — two adjacent grants together cover a range
/// that spans both, as in etcd's interval tree. `ReadWrite` needs both kinds.
pub fn permits<'a>(
    permissions: impl IntoIterator<Item = &'a Permission> + Clone,
    key: &[u8],
    range_end: &[u8],
    need: PermissionType,
) -> bool {
    let covered = |allows: fn(PermissionType) -> bool| {
        let mut spans: Vec<(Vec<u8>, Bound)> = permissions
            .clone()
            .into_iter()
            .filter(|p| allows(p.perm_type))
            .map(|p| bounds(&p.key, &p.range_end))
            .collect();
        spans.sort_by(|a, b| a.0.cmp(&b.0));
        let (start, end) = bounds(key, range_end);
        // Walk the grants in start order, extending how far from `start` is covered.
        let mut reached = start.clone();
        for (own_start, own_end) in spans {
            if own_start > reached {
                break;
            }
            match own_end {
                Bound::Unbounded => return true,
                Bound::Before(own_end) if own_end > reached => reached = own_end,
                Bound::Before(_) => {}
            }
            if let Bound::Before(end) = &end {
                if reached >= *end {
                    return true;
                }
            }
        }
        false
    };
    (!need.reads() || covered(PermissionType::reads))
        && (!need.writes() || covered(PermissionType::writes))
}

/// The exclusive upper end of a range.
enum Bound {
    Before(Vec<u8>),
    Unbounded,
}

/// A range as `[start, end)`; a single key ends before the key followed by a zero byte.
fn bounds(key: &[u8], range_end: &[u8]) -> (Vec<u8>, Bound) {
    match KeyRange::new(key, range_end) {
        KeyRange::Single(key) => {
            let mut end = key.clone();
            end.push(0);
            (key, Bound::Before(end))
        }
        KeyRange::Span { start, end: None } => (start, Bound::Unbounded),
        KeyRange::Span {
            start,
            end: Some(end),
        } => (start, Bound::Before(end)),
    }
}

/// A user (etcd `authpb.User`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The name, never empty.
    pub name: String,
    /// The password's hash (a bcrypt string), or `None` for a user that can only be
    /// identified by its client certificate (etcd's `--no-password`).
    pub password_hash: Option<String>,
    /// Granted roles, sorted, without duplicates.
    pub roles: Vec<String>,
}

impl User {
    /// Whether the user has the root role.
    pub fn is_root(&self) -> bool {
        self.roles.iter().any(|role| role == ROOT)
    }
}

/// A role (etcd `authpb.Role`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The name, never empty.
    pub name: String,
    /// Permissions, sorted by (key, range_end), at most one per range.
    pub permissions: Vec<Permission>,
}

/// Whether auth is on, its revision and the secret tokens are signed with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    /// Whether requests are checked.
    pub enabled: bool,
    /// Bumped by every auth change that succeeded.
    pub revision: u64,
    /// The token signing secret chosen by whoever proposed the last `auth enable`; empty
    /// while auth is disabled.
    pub token_secret: Vec<u8>,
}

/// A change to the auth state: the `Command::Auth` payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthCommand {
    /// Turn checking on; needs a `root` user with the `root` role. Enabling while enabled
    /// keeps the secret already in use, so tokens issued before stay valid.
    Enable {
        /// Signs tokens from now on.
        token_secret: Vec<u8>,
    },
    /// Turn checking off.
    Disable,
    /// Add a user.
    UserAdd {
        /// Its name.
        name: String,
        /// The password's hash, or `None` for a certificate-only user.
        password_hash: Option<String>,
    },
    /// Delete a user.
    UserDelete {
        /// Its name.
        name: String,
    },
    /// Replace a user's password hash.
    UserChangePassword {
        /// The user.
        name: String,
        /// The new password's hash.
        password_hash: Option<String>,
    },
    /// Grant a role to a user.
    UserGrantRole {
        /// The user.
        user: String,
        /// The role (`root` need not exist as a role record, as in etcd).
        role: String,
    },
    /// Revoke a role from a user.
    UserRevokeRole {
        /// The user.
        name: String,
        /// The role.
        role: String,
    },
    /// Add a role.
    RoleAdd {
        /// Its name.
        name: String,
    },
    /// Delete a role, and revoke it from every user.
    RoleDelete {
        /// Its name.
        name: String,
    },
    /// Grant (or change the type of) a permission on a range.
    RoleGrantPermission {
        /// The role.
        name: String,
        /// The permission; one on the same range is replaced.
        permission: Permission,
    },
    /// Revoke the permission on exactly `[key, range_end)`.
    RoleRevokePermission {
        /// The role.
        name: String,
        /// First key of the permission's range.
        key: Vec<u8>,
        /// End of the permission's range.
        range_end: Vec<u8>,
    },
}

pub(crate) fn user_key(name: &str) -> Vec<u8> {
    let mut key = vec![USER];
    key.extend_from_slice(name.as_bytes());
    key
}

pub(crate) fn role_key(name: &str) -> Vec<u8> {
    let mut key = vec![ROLE];
    key.extend_from_slice(name.as_bytes());
    key
}

fn get<T: serde::de::DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>> {
    tree.get(key)?
        .map(|bytes| codec::decode(&bytes))
        .transpose()
}

pub(crate) fn scan<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    prefix: u8,
) -> Result<Vec<T>> {
    tree.scan_prefix([prefix])
        .map(|entry| codec::decode(&entry?.1))
        .collect()
}

pub(crate) fn state(tree: &sled::Tree) -> Result<AuthState> {
    Ok(get(tree, META_AUTH)?.unwrap_or_default())
}

/// Tree writes an auth command makes; `None` removes the key.
pub(crate) type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Checks `command` against the state in `tree` and returns the writes that carry it out,
/// the auth revision bump included, and the auth revision after it. Writes nothing itself.
pub(crate) fn execute(tree: &sled::Tree, command: &AuthCommand) -> Result<(u64, Writes)> {
    let mut state = state(tree)?;
    let mut writes: Writes = Vec::new();
    let user = |name: &str| -> Result<User> {
        if name.is_empty() {
            return Err(Error::UserEmpty);
        }
        get(tree, &user_key(name))?.ok_or(Error::UserNotFound)
    };
    let role = |name: &str| -> Result<Role> {
        if name.is_empty() {
            return Err(Error::RoleEmpty);
        }
        get(tree, &role_key(name))?.ok_or(Error::RoleNotFound)
    };
    let put_user = |writes: &mut Writes, user: &User| -> Result<()> {
        writes.push((user_key(&user.name), Some(codec::encode(user)?)));
        Ok(())
    };
    let put_role = |writes: &mut Writes, role: &Role| -> Result<()> {
        writes.push((role_key(&role.name), Some(codec::encode(role)?)));
        Ok(())
    };
    match command {
        AuthCommand::Enable { token_secret } => {
            let root = get::<User>(tree, &user_key(ROOT))?.ok_or(Error::RootUserMissing)?;
            if !root.is_root() {
                return Err(Error::RootRoleMissing);
            }
            if !state.enabled {
                state.enabled = true;
                state.token_secret = token_secret.clone();
            }
        }
        AuthCommand::Disable => {
            state.enabled = false;
            state.token_secret = Vec::new();
        }
        AuthCommand::UserAdd {
            name,
            password_hash,
        } => {
            if name.is_empty() {
                return Err(Error::UserEmpty);
            }
            if tree.contains_key(user_key(name))? {
                return Err(Error::UserExists);
            }
            let user = User {
                name: name.clone(),
                password_hash: password_hash.clone(),
                roles: Vec::new(),
            };
            put_user(&mut writes, &user)?;
        }
        AuthCommand::UserDelete { name } => {
            user(name)?;
            if state.enabled && name == ROOT {
                return Err(Error::InvalidAuthManagement);
            }
            writes.push((user_key(name), None));
        }
        AuthCommand::UserChangePassword {
            name,
            password_hash,
        } => {
            let mut user = user(name)?;
            user.password_hash = password_hash.clone();
            put_user(&mut writes, &user)?;
        }
        AuthCommand::UserGrantRole {
            user: name,
            role: granted,
        } => {
            let mut user = user(name)?;
            if granted != ROOT {
                role(granted)?;
            }
            if let Err(at) = user.roles.binary_search(granted) {
                user.roles.insert(at, granted.clone());
            }
            put_user(&mut writes, &user)?;
        }
        AuthCommand::UserRevokeRole {
            name,
            role: revoked,
        } => {
            let mut user = user(name)?;
            let at = user
                .roles
                .binary_search(revoked)
                .map_err(|_| Error::RoleNotGranted)?;
            if state.enabled && name == ROOT && revoked == ROOT {
                return Err(Error::InvalidAuthManagement);
            }
            user.roles.remove(at);
            put_user(&mut writes, &user)?;
        }
        AuthCommand::RoleAdd { name } => {
            if name.is_empty() {
                return Err(Error::RoleEmpty);
            }
            if tree.contains_key(role_key(name))? {
                return Err(Error::RoleExists);
            }
            let role = Role {
                name: name.clone(),
                permissions: Vec::new(),
            };
            put_role(&mut writes, &role)?;
        }
        AuthCommand::RoleDelete { name } => {
            role(name)?;
            if state.enabled && name == ROOT {
                return Err(Error::InvalidAuthManagement);
            }
            writes.push((role_key(name), None));
            for mut user in scan::<User>(tree, USER)? {
                if let Ok(at) = user.roles.binary_search(name) {
                    user.roles.remove(at);
                    put_user(&mut writes, &user)?;
                }
            }
        }
        AuthCommand::RoleGrantPermission { name, permission } => {
            if permission.key.is_empty() {
                return Err(Error::EmptyKey);
            }
            let mut role = role(name)?;
            let range = |p: &Permission| (p.key.clone(), p.range_end.clone());
            match role
                .permissions
                .binary_search_by_key(&range(permission), range)
            {
                Ok(at) => role.permissions[at] = permission.clone(),
                Err(at) => role.permissions.insert(at, permission.clone()),
            }
            put_role(&mut writes, &role)?;
        }
        AuthCommand::RoleRevokePermission {
            name,
            key,
            range_end,
        } => {
            let mut role = role(name)?;
            let at = role
                .permissions
                .iter()
                .position(|p| p.key == *key && p.range_end == *range_end)
                .ok_or(Error::PermissionNotGranted)?;
            role.permissions.remove(at);
            put_role(&mut writes, &role)?;
        }
    }
    state.revision += 1;
    writes.push((META_AUTH.to_vec(), Some(codec::encode(&state)?)));
    Ok((state.revision, writes))
}

impl Store {
    /// Whether auth is enabled, its revision and signing secret.
    pub fn auth_state(&self) -> Result<AuthState> {
        let (_view, tree) = self.inner().viewed_tree();
        state(&tree)
    }

    /// One user, or `None`.
    pub fn user(&self, name: &str) -> Result<Option<User>> {
        let (_view, tree) = self.inner().viewed_tree();
        get(&tree, &user_key(name))
    }

    /// Every user, in name order.
    pub fn users(&self) -> Result<Vec<User>> {
        let (_view, tree) = self.inner().viewed_tree();
        scan(&tree, USER)
    }

    /// One role, or `None`.
    pub fn role(&self, name: &str) -> Result<Option<Role>> {
        let (_view, tree) = self.inner().viewed_tree();
        get(&tree, &role_key(name))
    }

    /// Every role, in name order.
    pub fn roles(&self) -> Result<Vec<Role>> {
        let (_view, tree) = self.inner().viewed_tree();
        scan(&tree, ROLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(key: &str, range_end: &[u8]) -> Permission {
        Permission {
            perm_type: PermissionType::Read,
            key: key.as_bytes().to_vec(),
            range_end: range_end.to_vec(),
        }
    }

    fn covers(permission: &Permission, key: &[u8], range_end: &[u8]) -> bool {
        permits([permission], key, range_end, PermissionType::Read)
    }

    #[test]
    fn a_prefix_covers_its_keys_and_subranges_only() {
        let prefix = perm("/app/", b"/app0");
        assert!(covers(&prefix, b"/app/x", b""));
        assert!(covers(&prefix, b"/app/", b"/app0"));
        assert!(covers(&prefix, b"/app/a", b"/app/b"));
        assert!(!covers(&prefix, b"/other", b""));
        assert!(!covers(&prefix, b"/app", b""));
        assert!(!covers(&prefix, b"/app/", b"/app1"));
        assert!(!covers(&prefix, b"/app/", b"\0"), "an open end is wider");

        let single = perm("k", b"");
        assert!(covers(&single, b"k", b""));
        assert!(!covers(&single, b"k", b"l"), "a range past the key");
        assert!(covers(&single, b"k", b"k\0"));
        assert!(!covers(&single, b"k1", b""));

        let from = perm("m", b"\0");
        assert!(covers(&from, b"z", b"\0"));
        assert!(covers(&from, b"m", b""));
        assert!(!covers(&from, b"a", b""));

        let everything = perm("\0", b"\0");
        assert!(covers(&everything, b"\0", b"\0"));
        assert!(covers(&everything, b"anything", b""));
    }

    #[test]
    fn adjacent_grants_cover_together_and_types_count() {
        let grants = [perm("a", b"c"), perm("c", b"e")];
        assert!(permits(&grants, b"b", b"d", PermissionType::Read));
        assert!(!permits(&grants, b"b", b"f", PermissionType::Read));
        let gap = [perm("a", b"c"), perm("d", b"e")];
        assert!(!permits(&gap, b"b", b"d", PermissionType::Read));
        assert!(!permits(&grants, b"b", b"", PermissionType::Write));
        let mut write = perm("a", b"z");
        write.perm_type = PermissionType::Write;
        let mixed = [perm("a", b"z"), write];
        assert!(permits(&mixed, b"q", b"", PermissionType::ReadWrite));
        assert!(!permits(&grants, b"b", b"", PermissionType::ReadWrite));
    }
}
