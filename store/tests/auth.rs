//! The auth state as replicated data: etcd's rules, durability, snapshots, and staying out of
//! the keyspace's revision and hash.

use keel_store::{
    AuthCommand, Command, CommandResponse, Config, Error, Permission, PermissionType, PutRequest,
    Store,
};

fn apply(store: &Store, command: AuthCommand) -> Result<u64, Error> {
    let applied = store.apply(&Command::Auth(command), None).expect("storage");
    match applied.result? {
        CommandResponse::Auth { auth_revision } => Ok(auth_revision),
        other => panic!("auth command answered {other:?}"),
    }
}

fn must(store: &Store, command: AuthCommand) -> u64 {
    let shown = format!("{command:?}");
    apply(store, command).unwrap_or_else(|e| panic!("{shown}: {e}"))
}

fn user_add(name: &str) -> AuthCommand {
    AuthCommand::UserAdd {
        name: name.into(),
        password_hash: Some(format!("hash-of-{name}")),
    }
}

fn grant_role(user: &str, role: &str) -> AuthCommand {
    AuthCommand::UserGrantRole {
        user: user.into(),
        role: role.into(),
    }
}

fn read_prefix(role: &str, prefix: &str) -> AuthCommand {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    AuthCommand::RoleGrantPermission {
        name: role.into(),
        permission: Permission {
            perm_type: PermissionType::Read,
            key: prefix.as_bytes().to_vec(),
            range_end: end,
        },
    }
}

/// A root user with the root role, and `alice` who may read `/app/`.
fn populate(store: &Store) {
    must(store, user_add("root"));
    must(store, grant_role("root", "root"));
    must(store, AuthCommand::RoleAdd { name: "app".into() });
    must(store, read_prefix("app", "/app/"));
    must(store, user_add("alice"));
    must(store, grant_role("alice", "app"));
    must(
        store,
        AuthCommand::Enable {
            token_secret: b"secret".to_vec(),
        },
    );
}

#[test]
fn enable_needs_a_root_user_with_the_root_role() {
    let store = Store::temporary(Config::default()).unwrap();
    let enable = || AuthCommand::Enable {
        token_secret: b"s".to_vec(),
    };
    assert_eq!(apply(&store, enable()), Err(Error::RootUserMissing));
    must(&store, user_add("root"));
    assert_eq!(apply(&store, enable()), Err(Error::RootRoleMissing));
    assert_eq!(
        Error::RootRoleMissing.to_string(),
        "etcdserver: root user does not have root role"
    );
    must(&store, grant_role("root", "root"));
    must(&store, enable());
    let state = store.auth_state().unwrap();
    assert!(state.enabled);
    assert_eq!(state.token_secret, b"s");

    // Enabling again keeps the secret tokens were signed with.
    must(
        &store,
        AuthCommand::Enable {
            token_secret: b"other".to_vec(),
        },
    );
    assert_eq!(store.auth_state().unwrap().token_secret, b"s");

    // Root stays while auth is on.
    let delete_root = || AuthCommand::UserDelete {
        name: "root".into(),
    };
    assert_eq!(
        apply(&store, delete_root()),
        Err(Error::InvalidAuthManagement)
    );
    let revoke_root = AuthCommand::UserRevokeRole {
        name: "root".into(),
        role: "root".into(),
    };
    assert_eq!(
        apply(&store, revoke_root),
        Err(Error::InvalidAuthManagement)
    );
    must(&store, AuthCommand::Disable);
    assert!(!store.auth_state().unwrap().enabled);
    must(&store, delete_root());
}

#[test]
fn users_and_roles_follow_etcds_rules() {
    let store = Store::temporary(Config::default()).unwrap();
    must(&store, user_add("alice"));
    assert_eq!(apply(&store, user_add("alice")), Err(Error::UserExists));
    assert_eq!(apply(&store, user_add("")), Err(Error::UserEmpty));
    assert_eq!(
        apply(&store, grant_role("alice", "nope")),
        Err(Error::RoleNotFound)
    );
    assert_eq!(
        apply(&store, grant_role("bob", "root")),
        Err(Error::UserNotFound)
    );
    must(&store, AuthCommand::RoleAdd { name: "b".into() });
    must(&store, AuthCommand::RoleAdd { name: "a".into() });
    assert_eq!(
        apply(&store, AuthCommand::RoleAdd { name: "a".into() }),
        Err(Error::RoleExists)
    );
    must(&store, grant_role("alice", "b"));
    must(&store, grant_role("alice", "a"));
    must(&store, grant_role("alice", "a"));
    assert_eq!(store.user("alice").unwrap().unwrap().roles, ["a", "b"]);

    // A grant on the same range replaces the type; a revoke must name the exact range.
    must(&store, read_prefix("a", "/x/"));
    let mut write = read_prefix("a", "/x/");
    if let AuthCommand::RoleGrantPermission { permission, .. } = &mut write {
        permission.perm_type = PermissionType::ReadWrite;
    }
    must(&store, write);
    let role = store.role("a").unwrap().unwrap();
    assert_eq!(role.permissions.len(), 1);
    assert_eq!(role.permissions[0].perm_type, PermissionType::ReadWrite);
    let revoke = |range_end: &[u8]| AuthCommand::RoleRevokePermission {
        name: "a".into(),
        key: b"/x/".to_vec(),
        range_end: range_end.to_vec(),
    };
    assert_eq!(apply(&store, revoke(b"")), Err(Error::PermissionNotGranted));
    must(&store, revoke(b"/x0"));
    assert!(store.role("a").unwrap().unwrap().permissions.is_empty());

    // Deleting a role takes it from its users.
    must(&store, AuthCommand::RoleDelete { name: "a".into() });
    assert_eq!(store.user("alice").unwrap().unwrap().roles, ["b"]);
    assert_eq!(
        apply(
            &store,
            AuthCommand::UserRevokeRole {
                name: "alice".into(),
                role: "a".into()
            }
        ),
        Err(Error::RoleNotGranted)
    );
    let names: Vec<String> = store.roles().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["b"]);
    must(
        &store,
        AuthCommand::UserDelete {
            name: "alice".into(),
        },
    );
    assert!(store.users().unwrap().is_empty());
}

#[test]
fn auth_changes_take_no_keyspace_revision_and_stay_out_of_hash_kv() {
    let store = Store::temporary(Config::default()).unwrap();
    let before = store.hash_kv(0).unwrap();
    let first = must(&store, user_add("root"));
    let second = must(&store, grant_role("root", "root"));
    assert_eq!(second, first + 1);
    // A refused change does not bump the auth revision either.
    assert!(apply(&store, user_add("root")).is_err());
    assert_eq!(store.auth_state().unwrap().revision, second);
    assert_eq!(store.current_revision(), 1);
    assert_eq!(store.hash_kv(0).unwrap(), before);
}

#[test]
fn auth_state_survives_restart_and_snapshot_import() {
    let dir = tempfile::tempdir().unwrap();
    let (state, users, roles) = {
        let store = Store::open(dir.path(), Config::default()).unwrap();
        populate(&store);
        store.flush().unwrap();
        (
            store.auth_state().unwrap(),
            store.users().unwrap(),
            store.roles().unwrap(),
        )
    };
    let reopened = Store::open(dir.path(), Config::default()).unwrap();
    assert_eq!(reopened.auth_state().unwrap(), state);
    assert_eq!(reopened.users().unwrap(), users);
    assert_eq!(reopened.roles().unwrap(), roles);
    assert_eq!(
        reopened
            .user("alice")
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("hash-of-alice")
    );

    let mut stream = Vec::new();
    reopened.export(&mut stream).unwrap();
    let target = Store::temporary(Config::default()).unwrap();
    target
        .apply(
            &Command::Put(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..PutRequest::default()
            }),
            None,
        )
        .unwrap();
    must(&target, user_add("stranger"));
    target.import(&mut stream.as_slice()).unwrap();
    assert_eq!(target.auth_state().unwrap(), state);
    assert_eq!(target.users().unwrap(), users);
    assert_eq!(target.roles().unwrap(), roles);
    assert!(target.user("stranger").unwrap().is_none());
}
