//! Round trips keel → etcd file → keel, and the file's own checks.

use std::io::Cursor;

use super::bbolt::{u16_at, BRANCH_PAGE, PAGE_SIZE};
use super::*;
use crate::auth::{AuthCommand, Permission, PermissionType};
use crate::keyspace::Config;
use crate::request::{DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};

fn put(key: &[u8], value: &[u8], lease: i64) -> Command {
    Command::Put(PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        lease,
        ..PutRequest::default()
    })
}

fn store_with(commands: &[Command]) -> Store {
    let store = Store::temporary(Config::default()).unwrap();
    for command in commands {
        store.apply(command, None).unwrap();
    }
    store
}

fn export(store: &Store) -> (EtcdExported, Vec<u8>) {
    let point = store.export_point().unwrap();
    let (exported, out) = point.write_etcd(Cursor::new(Vec::new())).unwrap();
    (exported, out.into_inner())
}

fn import(file: &[u8], options: &EtcdImportOptions) -> crate::Result<(Store, EtcdImported)> {
    let store = Store::temporary(Config::default()).unwrap();
    let imported = store.import_etcd(Cursor::new(file.to_vec()), options)?;
    Ok((store, imported))
}

fn everything_at(store: &Store, revision: i64) -> Vec<crate::KeyValue> {
    store
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision,
            ..Default::default()
        })
        .unwrap()
        .kvs
}

/// Puts, overwrites, a delete, a two-write transaction (sub-revisions), a lease with a key,
/// a compaction, and auth with a user, a role and a certificate-only user.
fn busy_store() -> Store {
    let secret = b"secret".to_vec();
    let grant = PermissionType::ReadWrite;
    store_with(&[
        put(b"a", b"1", 0),
        put(b"b", b"1", 0),
        put(b"a", b"2", 0),
        Command::LeaseGrant { id: 7, ttl: 60 },
        put(b"leased", b"x", 7),
        Command::DeleteRange(DeleteRangeRequest {
            key: b"b".to_vec(),
            ..Default::default()
        }),
        Command::Compact { revision: 4 },
        Command::Txn(TxnRequest {
            success: vec![
                RequestOp::Put(PutRequest {
                    key: b"t1".to_vec(),
                    value: b"v".to_vec(),
                    ..Default::default()
                }),
                RequestOp::Put(PutRequest {
                    key: b"t2".to_vec(),
                    value: b"v".to_vec(),
                    ..Default::default()
                }),
            ],
            ..Default::default()
        }),
        put(b"a", b"3", 0),
        Command::Auth(AuthCommand::UserAdd {
            name: "root".into(),
            password_hash: Some("$2a$10$abcdefghijklmnopqrstuv".into()),
        }),
        Command::Auth(AuthCommand::UserGrantRole {
            user: "root".into(),
            role: "root".into(),
        }),
        Command::Auth(AuthCommand::RoleAdd {
            name: "reader".into(),
        }),
        Command::Auth(AuthCommand::RoleGrantPermission {
            name: "reader".into(),
            permission: Permission {
                perm_type: grant,
                key: b"a".to_vec(),
                range_end: b"b".to_vec(),
            },
        }),
        Command::Auth(AuthCommand::UserAdd {
            name: "cert-only".into(),
            password_hash: None,
        }),
        Command::Auth(AuthCommand::Enable {
            token_secret: secret,
        }),
    ])
}

#[test]
fn a_keyspace_survives_the_round_trip_through_an_etcd_file() {
    let store = busy_store();
    let (exported, file) = export(&store);
    assert_eq!(exported.revision, store.current_revision());
    assert_eq!(exported.bytes as usize, file.len());
    assert_eq!(file.len() % 512, 32, "etcd's rule for a file with a digest");
    assert_eq!(SnapshotFormat::detect(&file), Some(SnapshotFormat::Etcd));

    // Auth is on in the file, so a secret is needed.
    let refused = import(&file, &EtcdImportOptions::default());
    assert!(refused.is_err());
    let options = EtcdImportOptions {
        token_secret: b"new secret".to_vec(),
        ..Default::default()
    };
    let (restored, imported) = import(&file, &options).unwrap();
    assert_eq!(imported.revision, store.current_revision());
    assert_eq!(imported.compacted, 4);
    assert_eq!(imported.keys, 4);
    assert_eq!(imported.revisions, exported.revisions);

    assert_eq!(restored.current_revision(), store.current_revision());
    assert_eq!(restored.compact_revision(), store.compact_revision());
    for revision in store.compact_revision()..=store.current_revision() {
        assert_eq!(
            everything_at(&restored, revision),
            everything_at(&store, revision)
        );
    }
    for key in [&b"a"[..], b"b", b"leased", b"t1", b"t2"] {
        assert_eq!(restored.history(key).unwrap(), store.history(key).unwrap());
    }
    // The event log is record for record the same: the hashes agree.
    assert_eq!(restored.hash_kv(0).unwrap(), store.hash_kv(0).unwrap());
    assert_eq!(restored.leases().unwrap(), store.leases().unwrap());
    assert_eq!(restored.lease(7).unwrap(), store.lease(7).unwrap());
    assert_eq!(restored.users().unwrap(), store.users().unwrap());
    // etcd keeps a record for the root role; keel had none.
    let mut roles = restored.roles().unwrap();
    roles.retain(|r| r.name != "root");
    assert_eq!(roles, store.roles().unwrap());
    let state = restored.auth_state().unwrap();
    assert!(state.enabled);
    assert_eq!(state.revision, store.auth_state().unwrap().revision);
    assert_eq!(state.token_secret, b"new secret");
}

#[test]
fn large_values_overflow_pages_and_many_keys_make_branch_pages() {
    let mut commands: Vec<Command> = (0..3000)
        .map(|i| put(format!("key/{i:05}").as_bytes(), &[b'v'; 40], 0))
        .collect();
    // Several pages long, and one just under a page.
    commands.push(put(b"big", &vec![7u8; 3 * PAGE_SIZE + 100], 0));
    commands.push(put(b"almost", &vec![8u8; PAGE_SIZE - 100], 0));
    let store = store_with(&commands);
    let (_, file) = export(&store);
    let page_flags: Vec<u16> = file[..file.len() - 32]
        .chunks(PAGE_SIZE)
        .map(|page| u16_at(page, 8))
        .collect();
    assert!(page_flags.contains(&BRANCH_PAGE), "3000 keys need branches");
    // Overflow pages continue their page, so their headers are data: the big value shows as
    // a leaf whose overflow count is set.
    let overflowing = file[..file.len() - 32]
        .chunks(PAGE_SIZE)
        .any(|page| u16_at(page, 8) == super::bbolt::LEAF_PAGE && page[12..16] != [0; 4]);
    assert!(overflowing);
    let (restored, imported) = import(&file, &EtcdImportOptions::default()).unwrap();
    assert_eq!(imported.keys, 3002);
    assert_eq!(everything_at(&restored, 0), everything_at(&store, 0));
    assert_eq!(restored.hash_kv(0).unwrap(), store.hash_kv(0).unwrap());
}

#[test]
fn an_empty_keyspace_exports_and_imports() {
    let store = Store::temporary(Config::default()).unwrap();
    let (_, file) = export(&store);
    let (restored, imported) = import(&file, &EtcdImportOptions::default()).unwrap();
    assert_eq!(imported.keys, 0);
    assert_eq!(restored.current_revision(), 1);
}

#[test]
fn a_damaged_or_cut_file_is_refused_and_nothing_changes() {
    let store = store_with(&[put(b"a", b"1", 0)]);
    let (_, file) = export(&store);
    let target = store_with(&[put(b"kept", b"yes", 0)]);
    let mut flipped = file.clone();
    flipped[3 * PAGE_SIZE + 40] ^= 0x10;
    let err = target
        .import_etcd(Cursor::new(flipped), &EtcdImportOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("SHA-256 mismatch"), "{err}");
    let cut = &file[..file.len() - 1000];
    assert!(target
        .import_etcd(Cursor::new(cut.to_vec()), &EtcdImportOptions::default())
        .is_err());
    // Without its digest (a member's db file) it needs the check skipped.
    let bare = &file[..file.len() - 32];
    let err = target
        .import_etcd(Cursor::new(bare.to_vec()), &EtcdImportOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("skip the hash check"), "{err}");
    assert_eq!(everything_at(&target, 0)[0].key, b"kept");
    let skip = EtcdImportOptions {
        skip_hash_check: true,
        ..Default::default()
    };
    target
        .import_etcd(Cursor::new(bare.to_vec()), &skip)
        .unwrap();
    assert_eq!(everything_at(&target, 0)[0].key, b"a");
}

#[test]
fn import_recognises_either_format() {
    let store = store_with(&[put(b"a", b"1", 0), put(b"a", b"2", 0)]);
    let (_, etcd) = export(&store);
    let mut keel = Vec::new();
    store.export(&mut keel).unwrap();
    assert_eq!(SnapshotFormat::detect(&keel), Some(SnapshotFormat::Keel));
    assert_eq!(SnapshotFormat::detect(b"hello, world, not it"), None);
    for file in [etcd, keel] {
        let restored = Store::temporary(Config::default()).unwrap();
        restored.import(&mut &file[..]).unwrap();
        assert_eq!(
            restored.history(b"a").unwrap(),
            store.history(b"a").unwrap()
        );
    }
}
