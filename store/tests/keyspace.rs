//! Corner cases of the keyspace: revisions, ranges, transactions, compaction, leases, markers
//! and snapshots.

use keel_store::*;

fn store() -> Store {
    Store::temporary(Config::default()).expect("temporary store")
}

fn ok(store: &Store, command: Command) -> (i64, CommandResponse) {
    let applied = store.apply(&command, None).expect("storage");
    match applied.result {
        Ok(response) => (applied.revision, response),
        Err(e) => panic!("{command:?} failed: {e}"),
    }
}

fn err(store: &Store, command: Command) -> Error {
    let before = store.current_revision();
    let hash = store.hash_kv(0).expect("hash");
    let applied = store.apply(&command, None).expect("storage");
    assert_eq!(applied.revision, before, "a failed command must not bump");
    assert_eq!(
        store.hash_kv(0).expect("hash"),
        hash,
        "a failed command wrote"
    );
    match applied.result {
        Ok(response) => panic!("{command:?} succeeded: {response:?}"),
        Err(e) => e,
    }
}

fn put(store: &Store, key: &str, value: &str) -> i64 {
    ok(store, Command::Put(put_req(key, value))).0
}

fn put_req(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..PutRequest::default()
    }
}

fn del(store: &Store, key: &str, range_end: &str) -> (i64, DeleteRangeResponse) {
    match ok(store, Command::DeleteRange(del_req(key, range_end))) {
        (rev, CommandResponse::DeleteRange(resp)) => (rev, resp),
        other => panic!("unexpected {other:?}"),
    }
}

fn del_req(key: &str, range_end: &str) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: key.into(),
        range_end: range_end.into(),
        prev_kv: true,
    }
}

fn range(key: &str, range_end: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        range_end: range_end.into(),
        ..RangeRequest::default()
    }
}

fn get(store: &Store, key: &str) -> Option<KeyValue> {
    let resp = store.range(&range(key, "")).expect("range");
    resp.kvs.into_iter().next()
}

fn keys(resp: &RangeResponse) -> Vec<String> {
    resp.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

fn txn(store: &Store, request: TxnRequest) -> (i64, TxnResponse) {
    match ok(store, Command::Txn(request)) {
        (rev, CommandResponse::Txn(resp)) => (rev, resp),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn starts_at_revision_one() {
    let s = store();
    assert_eq!(s.current_revision(), 1);
    assert_eq!(s.compact_revision(), 0);
    assert_eq!(s.range(&range("\0", "\0")).expect("range").count, 0);
}

#[test]
fn versions_and_tombstones() {
    let s = store();
    assert_eq!(put(&s, "a", "1"), 2);
    assert_eq!(put(&s, "a", "2"), 3);
    let kv = get(&s, "a").expect("a");
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    let (rev, resp) = del(&s, "a", "");
    assert_eq!((rev, resp.deleted), (4, 1));
    assert_eq!(resp.prev_kvs[0].value, b"2");
    assert_eq!(get(&s, "a"), None);
    assert_eq!(put(&s, "a", "3"), 5);
    let kv = get(&s, "a").expect("a");
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
    let history = s.history(b"a").expect("history");
    let kinds: Vec<_> = history
        .iter()
        .map(|e| (e.kind, e.kv.mod_revision))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventType::Put, 2),
            (EventType::Put, 3),
            (EventType::Delete, 4),
            (EventType::Put, 5)
        ]
    );
    // Old revisions read what was there.
    let at = |rev| {
        s.range(&RangeRequest {
            revision: rev,
            ..range("a", "")
        })
        .expect("range")
        .kvs
        .first()
        .map(|kv| kv.value.clone())
    };
    assert_eq!(at(1), None);
    assert_eq!(at(2), Some(b"1".to_vec()));
    assert_eq!(at(3), Some(b"2".to_vec()));
    assert_eq!(at(4), None);
    assert_eq!(at(5), Some(b"3".to_vec()));
}

#[test]
fn revision_bumps_only_on_change() {
    let s = store();
    put(&s, "a", "1");
    assert_eq!(put(&s, "a", "1"), 3, "a put always bumps");
    let (rev, resp) = del(&s, "zzz", "");
    assert_eq!((rev, resp.deleted), (3, 0));
    let (rev, _) = txn(
        &s,
        TxnRequest {
            success: vec![RequestOp::Range(range("a", ""))],
            ..TxnRequest::default()
        },
    );
    assert_eq!(rev, 3);
    let (rev, resp) = txn(
        &s,
        TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal,
                target: CompareTarget::Version(99),
                key: "a".into(),
                range_end: vec![],
            }],
            success: vec![RequestOp::Put(put_req("b", "x"))],
            failure: vec![],
        },
    );
    assert_eq!((rev, resp.succeeded), (3, false));
    assert_eq!(s.current_revision(), 3);
}

#[test]
fn range_conventions_limit_count_and_sort() {
    let s = store();
    for (k, v) in [("b", "3"), ("a", "2"), ("c", "1"), ("ab", "9"), ("d", "0")] {
        put(&s, k, v);
    }
    let all = s.range(&range("\0", "\0")).expect("range");
    assert_eq!(keys(&all), ["a", "ab", "b", "c", "d"]);
    assert_eq!(keys(&s.range(&range("a", "")).expect("r")), ["a"]);
    assert_eq!(keys(&s.range(&range("a", "b")).expect("r")), ["a", "ab"]);
    assert_eq!(keys(&s.range(&range("c", "\0")).expect("r")), ["c", "d"]);
    assert_eq!(s.range(&range("x", "a")).expect("r").count, 0);

    let limited = s
        .range(&RangeRequest {
            limit: 2,
            ..range("\0", "\0")
        })
        .expect("r");
    assert_eq!(
        (keys(&limited), limited.more, limited.count),
        (vec!["a".to_string(), "ab".into()], true, 5)
    );
    let exact = s
        .range(&RangeRequest {
            limit: 5,
            ..range("\0", "\0")
        })
        .expect("r");
    assert!(!exact.more);

    let by_value_desc = s
        .range(&RangeRequest {
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Value,
            limit: 2,
            ..range("\0", "\0")
        })
        .expect("r");
    assert_eq!(keys(&by_value_desc), ["ab", "b"]);
    let by_mod_asc = s
        .range(&RangeRequest {
            sort_order: SortOrder::Ascend,
            sort_target: SortTarget::Mod,
            ..range("\0", "\0")
        })
        .expect("r");
    assert_eq!(keys(&by_mod_asc), ["b", "a", "c", "ab", "d"]);
    let by_key_desc = s
        .range(&RangeRequest {
            sort_order: SortOrder::Descend,
            ..range("\0", "\0")
        })
        .expect("r");
    assert_eq!(keys(&by_key_desc), ["d", "c", "b", "ab", "a"]);

    let filtered = s
        .range(&RangeRequest {
            min_mod_revision: 3,
            max_mod_revision: 5,
            limit: 1,
            ..range("\0", "\0")
        })
        .expect("r");
    assert_eq!(
        (keys(&filtered), filtered.count, filtered.more),
        (vec!["a".to_string()], 3, true)
    );
    let created = s
        .range(&RangeRequest {
            min_create_revision: 4,
            max_create_revision: 4,
            ..range("\0", "\0")
        })
        .expect("r");
    assert_eq!(keys(&created), ["c"]);

    let keys_only = s
        .range(&RangeRequest {
            keys_only: true,
            ..range("a", "")
        })
        .expect("r");
    assert!(keys_only.kvs[0].value.is_empty());
    let count_only = s
        .range(&RangeRequest {
            count_only: true,
            ..range("a", "\0")
        })
        .expect("r");
    assert_eq!((count_only.kvs.len(), count_only.count), (0, 5));
}

#[test]
fn compacted_and_future_revisions() {
    let s = store();
    for i in 0..5 {
        put(&s, "k", &i.to_string());
    }
    let at = |rev| {
        s.range(&RangeRequest {
            revision: rev,
            ..range("k", "")
        })
    };
    assert_eq!(
        at(7).unwrap_err(),
        Error::FutureRevision {
            current_revision: 6
        }
    );
    ok(&s, Command::Compact { revision: 4 });
    assert_eq!(s.compact_revision(), 4);
    assert_eq!(
        at(3).unwrap_err(),
        Error::Compacted {
            compact_revision: 4
        }
    );
    assert_eq!(at(4).expect("readable").kvs[0].value, b"2");
    assert_eq!(
        err(&s, Command::Compact { revision: 4 }),
        Error::Compacted {
            compact_revision: 4
        }
    );
    assert_eq!(
        err(&s, Command::Compact { revision: 9 }),
        Error::FutureRevision {
            current_revision: 6
        }
    );
    assert_eq!(
        s.hash_kv(3).unwrap_err(),
        Error::Compacted {
            compact_revision: 4
        }
    );
}

#[test]
fn compaction_keeps_latest_and_drops_tombstones() {
    let s = store();
    put(&s, "a", "1"); // 2
    put(&s, "a", "2"); // 3
    put(&s, "b", "1"); // 4
    del(&s, "b", ""); // 5
    put(&s, "a", "3"); // 6
    put(&s, "c", "1"); // 7
    del(&s, "c", ""); // 8
    ok(&s, Command::Compact { revision: 5 });
    let revs = |key: &[u8]| {
        s.history(key)
            .expect("history")
            .iter()
            .map(|e| e.kv.mod_revision)
            .collect::<Vec<_>>()
    };
    assert_eq!(revs(b"a"), [3, 6]);
    assert_eq!(revs(b"b"), Vec::<i64>::new());
    assert_eq!(revs(b"c"), [7, 8], "history above the compaction stays");
    let at5 = s
        .range(&RangeRequest {
            revision: 5,
            ..range("\0", "\0")
        })
        .expect("range");
    assert_eq!(keys(&at5), ["a"]);
    assert_eq!(at5.kvs[0].value, b"2");
    ok(&s, Command::Compact { revision: 8 });
    assert_eq!(revs(b"a"), [6]);
    assert_eq!(revs(b"c"), Vec::<i64>::new());
}

#[test]
fn put_options() {
    let s = store();
    let put_with = |request: PutRequest| Command::Put(request);
    assert_eq!(err(&s, put_with(put_req("", "v"))), Error::EmptyKey);
    assert_eq!(
        err(
            &s,
            put_with(PutRequest {
                ignore_value: true,
                ..put_req("a", "")
            })
        ),
        Error::KeyNotFound
    );
    assert_eq!(
        err(
            &s,
            put_with(PutRequest {
                ignore_lease: true,
                ..put_req("a", "x")
            })
        ),
        Error::KeyNotFound
    );
    assert!(matches!(
        err(
            &s,
            put_with(PutRequest {
                ignore_value: true,
                ..put_req("a", "x")
            })
        ),
        Error::InvalidRequest(_)
    ));
    assert!(matches!(
        err(
            &s,
            put_with(PutRequest {
                ignore_lease: true,
                lease: 5,
                ..put_req("a", "x")
            })
        ),
        Error::InvalidRequest(_)
    ));
    assert_eq!(
        err(
            &s,
            put_with(PutRequest {
                lease: 5,
                ..put_req("a", "x")
            })
        ),
        Error::LeaseNotFound { id: 5 }
    );
    ok(&s, Command::LeaseGrant { id: 5, ttl: 10 });
    ok(
        &s,
        put_with(PutRequest {
            lease: 5,
            ..put_req("a", "x")
        }),
    );
    let (_, resp) = ok(
        &s,
        put_with(PutRequest {
            ignore_value: true,
            prev_kv: true,
            ..put_req("a", "")
        }),
    );
    let CommandResponse::Put(PutResponse {
        prev_kv: Some(prev),
    }) = resp
    else {
        panic!("no prev_kv: {resp:?}")
    };
    assert_eq!(prev.value, b"x");
    let kv = get(&s, "a").expect("a");
    assert_eq!(
        (kv.value.as_slice(), kv.lease, kv.version),
        (&b"x"[..], 0, 2)
    );
    assert_eq!(
        s.lease(5).expect("lease").expect("lease").keys,
        Vec::<Vec<u8>>::new()
    );
    ok(
        &s,
        put_with(PutRequest {
            lease: 5,
            ..put_req("a", "y")
        }),
    );
    ok(
        &s,
        put_with(PutRequest {
            ignore_lease: true,
            ..put_req("a", "z")
        }),
    );
    let kv = get(&s, "a").expect("a");
    assert_eq!((kv.value.as_slice(), kv.lease), (&b"z"[..], 5));
    assert_eq!(
        s.lease(5).expect("lease").expect("lease").keys,
        vec![b"a".to_vec()]
    );
}

#[test]
fn request_too_large() {
    let s = Store::temporary(Config {
        max_request_bytes: 100,
        ..Config::default()
    })
    .expect("store");
    let big = "x".repeat(200);
    let e = err(&s, Command::Put(put_req("a", &big)));
    assert!(
        matches!(e, Error::RequestTooLarge { limit: 100, .. }),
        "{e:?}"
    );
    assert!(s.validate(&Command::Put(put_req("a", &big))).is_err());
    assert!(s.validate(&Command::Put(put_req("a", "small"))).is_ok());
}

fn cmp(key: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare {
        result,
        target,
        key: key.into(),
        range_end: vec![],
    }
}

#[test]
fn txn_one_revision_sub_revisions_and_own_writes() {
    let s = store();
    put(&s, "a", "1"); // 2
    let (rev, resp) = txn(
        &s,
        TxnRequest {
            compare: vec![cmp(
                "a",
                CompareResult::Equal,
                CompareTarget::Value(b"1".to_vec()),
            )],
            success: vec![
                RequestOp::Put(put_req("b", "2")),
                RequestOp::Range(range("\0", "\0")),
                RequestOp::DeleteRange(del_req("a", "")),
                RequestOp::Range(range("\0", "\0")),
                RequestOp::Put(put_req("c", "3")),
            ],
            failure: vec![],
        },
    );
    assert_eq!(rev, 3);
    assert!(resp.succeeded);
    let ResponseOp::Range(first) = &resp.responses[1] else {
        panic!()
    };
    assert_eq!(keys(first), ["a", "b"]);
    let ResponseOp::Range(second) = &resp.responses[3] else {
        panic!()
    };
    assert_eq!(keys(second), ["b"]);
    assert_eq!(second.kvs[0].mod_revision, 3);
    let subs: Vec<_> = ["b", "a", "c"]
        .iter()
        .map(|k| {
            s.history(k.as_bytes())
                .expect("h")
                .last()
                .cloned()
                .expect("event")
        })
        .map(|e| (e.kind, e.kv.mod_revision))
        .collect();
    assert_eq!(
        subs,
        [
            (EventType::Put, 3),
            (EventType::Delete, 3),
            (EventType::Put, 3)
        ]
    );
    // The watch log keeps sub-revision order.
    let mut watcher = s
        .watch(WatchRequest {
            key: b"\0".to_vec(),
            range_end: b"\0".to_vec(),
            start_revision: 3,
            ..WatchRequest::default()
        })
        .expect("watch");
    let update = block_on(watcher.next());
    let Some(WatchUpdate::Events { revision, events }) = update else {
        panic!("{update:?}")
    };
    assert_eq!(revision, 3);
    let order: Vec<_> = events.iter().map(|e| e.kv.key.clone()).collect();
    assert_eq!(order, [b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]);
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

#[test]
fn txn_duplicate_keys_rejected_up_front() {
    let s = store();
    put(&s, "a", "1");
    let dup = |ops: Vec<RequestOp>| {
        err(
            &s,
            Command::Txn(TxnRequest {
                success: ops,
                ..TxnRequest::default()
            }),
        )
    };
    assert_eq!(
        dup(vec![
            RequestOp::Put(put_req("x", "1")),
            RequestOp::Put(put_req("x", "2"))
        ]),
        Error::DuplicateKey
    );
    assert_eq!(
        dup(vec![
            RequestOp::Put(put_req("ab", "1")),
            RequestOp::DeleteRange(del_req("a", "b"))
        ]),
        Error::DuplicateKey
    );
    assert_eq!(
        dup(vec![
            RequestOp::DeleteRange(del_req("a", "\0")),
            RequestOp::Put(put_req("zz", "1"))
        ]),
        Error::DuplicateKey
    );
    assert_eq!(
        dup(vec![
            RequestOp::Put(put_req("x", "1")),
            RequestOp::Txn(TxnRequest {
                success: vec![RequestOp::Put(put_req("x", "2"))],
                ..TxnRequest::default()
            })
        ]),
        Error::DuplicateKey
    );
    // Only the branch that runs counts.
    let (_, resp) = txn(
        &s,
        TxnRequest {
            compare: vec![cmp("a", CompareResult::Equal, CompareTarget::Version(7))],
            success: vec![
                RequestOp::Put(put_req("x", "1")),
                RequestOp::Put(put_req("x", "2")),
            ],
            failure: vec![RequestOp::Put(put_req("x", "3"))],
        },
    );
    assert!(!resp.succeeded);
    assert_eq!(get(&s, "x").expect("x").value, b"3");
    // An error in a later op writes nothing of the earlier ones.
    assert_eq!(
        dup(vec![
            RequestOp::Put(put_req("y", "1")),
            RequestOp::Put(PutRequest {
                lease: 42,
                ..put_req("z", "1")
            })
        ]),
        Error::LeaseNotFound { id: 42 }
    );
    assert_eq!(get(&s, "y"), None);
}

#[test]
fn txn_compares_and_nesting() {
    let s = store();
    put(&s, "a", "1"); // 2
    put(&s, "b", "2"); // 3
    let holds = |compare: Compare| {
        txn(
            &s,
            TxnRequest {
                compare: vec![compare],
                ..TxnRequest::default()
            },
        )
        .1
        .succeeded
    };
    use CompareResult::*;
    use CompareTarget::*;
    assert!(holds(cmp("a", Equal, Version(1))));
    assert!(holds(cmp("a", Greater, ModRevision(1))));
    assert!(holds(cmp("a", Less, CreateRevision(3))));
    assert!(holds(cmp("a", NotEqual, Value(b"2".to_vec()))));
    assert!(holds(cmp("a", Equal, Lease(0))));
    assert!(holds(cmp("missing", Equal, Version(0))));
    assert!(holds(cmp("missing", Equal, CreateRevision(0))));
    assert!(!holds(cmp("missing", Equal, Value(vec![]))));
    assert!(!holds(cmp("missing", NotEqual, Value(b"x".to_vec()))));
    let mut over_range = cmp("a", Greater, ModRevision(1));
    over_range.range_end = b"c".to_vec();
    assert!(holds(over_range.clone()));
    over_range.target = ModRevision(2);
    assert!(!holds(over_range));

    let (rev, resp) = txn(
        &s,
        TxnRequest {
            compare: vec![cmp("a", Equal, Value(b"1".to_vec()))],
            success: vec![
                RequestOp::Put(put_req("c", "3")),
                RequestOp::Txn(TxnRequest {
                    compare: vec![cmp("b", Equal, Value(b"nope".to_vec()))],
                    success: vec![RequestOp::Put(put_req("d", "s"))],
                    failure: vec![
                        RequestOp::Put(put_req("d", "f")),
                        RequestOp::Range(range("c", "")),
                    ],
                }),
            ],
            failure: vec![],
        },
    );
    assert_eq!(rev, 4);
    let ResponseOp::Txn(inner) = &resp.responses[1] else {
        panic!()
    };
    assert!(!inner.succeeded);
    let ResponseOp::Range(seen) = &inner.responses[1] else {
        panic!()
    };
    assert_eq!(keys(seen), ["c"], "nested txn sees the outer txn's writes");
    assert_eq!(get(&s, "d").expect("d").value, b"f");
    assert_eq!(get(&s, "d").expect("d").mod_revision, 4);
}

#[test]
fn leases_revoke_deletes_keys_in_one_revision() {
    let s = store();
    assert!(matches!(
        err(&s, Command::LeaseGrant { id: 0, ttl: 5 }),
        Error::InvalidLease(_)
    ));
    assert!(matches!(
        err(&s, Command::LeaseGrant { id: 1, ttl: 0 }),
        Error::InvalidLease(_)
    ));
    let (rev, _) = ok(&s, Command::LeaseGrant { id: 7, ttl: 5 });
    assert_eq!(rev, 1, "granting takes no revision");
    assert_eq!(
        err(&s, Command::LeaseGrant { id: 7, ttl: 5 }),
        Error::LeaseExists { id: 7 }
    );
    ok(&s, Command::LeaseGrant { id: 8, ttl: 5 });
    for key in ["k1", "k2", "k3"] {
        ok(
            &s,
            Command::Put(PutRequest {
                lease: 7,
                ..put_req(key, "v")
            }),
        );
    }
    put(&s, "k4", "unleased");
    del(&s, "k3", "");
    assert_eq!(
        s.leases().expect("leases"),
        vec![LeaseInfo { id: 7, ttl: 5 }, LeaseInfo { id: 8, ttl: 5 }]
    );
    assert_eq!(
        s.lease(7).expect("l").expect("l").keys,
        vec![b"k1".to_vec(), b"k2".to_vec()]
    );
    let (rev, _) = ok(&s, Command::LeaseRevoke { id: 7 });
    assert_eq!(rev, 7);
    assert_eq!(keys(&s.range(&range("\0", "\0")).expect("r")), ["k4"]);
    let deletes: Vec<_> = ["k1", "k2"]
        .iter()
        .map(|k| {
            s.history(k.as_bytes())
                .expect("h")
                .last()
                .cloned()
                .expect("e")
        })
        .map(|e| (e.kind, e.kv.mod_revision))
        .collect();
    assert_eq!(deletes, [(EventType::Delete, 7), (EventType::Delete, 7)]);
    assert_eq!(s.lease(7).expect("l"), None);
    assert_eq!(
        err(&s, Command::LeaseRevoke { id: 7 }),
        Error::LeaseNotFound { id: 7 }
    );
    let (rev, _) = ok(&s, Command::LeaseRevoke { id: 8 });
    assert_eq!(rev, 7, "revoking a lease without keys takes no revision");
    assert!(s.leases().expect("leases").is_empty());
}

#[test]
fn marker_is_recorded_with_the_command() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let s = Store::open(dir.path(), Config::default()).expect("open");
        assert_eq!(s.marker().expect("marker"), None);
        s.apply(&Command::Put(put_req("a", "1")), Some(b"log-1"))
            .expect("apply");
        assert_eq!(s.marker().expect("marker").as_deref(), Some(&b"log-1"[..]));
        let failed = s
            .apply(&Command::Put(put_req("", "1")), Some(b"log-2"))
            .expect("apply");
        assert_eq!(failed.result, Err(Error::EmptyKey));
        assert_eq!(s.marker().expect("marker").as_deref(), Some(&b"log-2"[..]));
        s.set_marker(b"log-3").expect("marker");
        s.flush().expect("flush");
    }
    let s = Store::open(dir.path(), Config::default()).expect("reopen");
    assert_eq!(s.marker().expect("marker").as_deref(), Some(&b"log-3"[..]));
    assert_eq!(s.current_revision(), 2);
    assert_eq!(get(&s, "a").expect("a").value, b"1");
    s.clear_marker().expect("clear");
    assert_eq!(s.marker().expect("marker"), None);
    assert_eq!(
        s.current_revision(),
        2,
        "clearing the marker keeps the keyspace"
    );
    assert_eq!(get(&s, "a").expect("a").value, b"1");
}

/// A run of puts goes into sled key by key between an open mark and its removal: a keyspace
/// closed between runs is whole; one cut short inside a run says so (`torn`), and `clear`
/// starts it again from nothing.
#[test]
fn a_keyspace_cut_short_inside_a_run_is_reported_torn() {
    let dir = tempfile::tempdir().expect("dir");
    let commands: Vec<Command> = (0..5)
        .map(|i| Command::Put(put_req(&format!("k{i}"), "v")))
        .collect();
    {
        let s = Store::open(dir.path(), Config::default()).expect("open");
        let applied = s.apply_batch(&commands, Some(b"log-1")).expect("apply");
        assert!(applied.iter().all(|a| a.result.is_ok()));
        assert!(!s.torn().expect("torn"));
    }
    {
        let s = Store::open(dir.path(), Config::default()).expect("reopen");
        assert!(!s.torn().expect("torn"), "a whole run reopens whole");
        assert_eq!(s.current_revision(), 6);
        assert_eq!(get(&s, "k4").expect("k4").value, b"v");
        s.cut_short_for_tests(b"k9", b"half").expect("cut short");
    }
    let s = Store::open(dir.path(), Config::default()).expect("reopen");
    assert!(s.torn().expect("torn"));
    s.clear().expect("clear");
    assert!(!s.torn().expect("torn"));
    assert_eq!(s.current_revision(), 1);
    assert_eq!(s.marker().expect("marker"), None);
    assert_eq!(get(&s, "k4"), None);
}

fn populated() -> Store {
    let s = store();
    ok(&s, Command::LeaseGrant { id: 3, ttl: 9 });
    for i in 0..50 {
        ok(
            &s,
            Command::Put(PutRequest {
                lease: if i % 7 == 0 { 3 } else { 0 },
                ..put_req(&format!("key/{}", i % 13), &format!("v{i}"))
            }),
        );
    }
    del(&s, "key/1", "key/3");
    ok(&s, Command::Compact { revision: 20 });
    s.set_marker(b"marker").expect("marker");
    s
}

#[test]
fn export_import_round_trip() {
    let source = populated();
    let mut stream = Vec::new();
    let written = source.export(&mut stream).expect("export");
    assert_eq!(written, stream.len() as u64);
    let target = store();
    put(&target, "other", "state");
    target.import(&mut stream.as_slice()).expect("import");
    assert_eq!(target.hash_kv(0).expect("h"), source.hash_kv(0).expect("h"));
    assert_eq!(target.current_revision(), source.current_revision());
    assert_eq!(target.compact_revision(), 20);
    assert_eq!(target.marker().expect("m").as_deref(), Some(&b"marker"[..]));
    assert_eq!(target.leases().expect("l"), source.leases().expect("l"));
    assert_eq!(
        target.range(&range("\0", "\0")).expect("r"),
        source.range(&range("\0", "\0")).expect("r")
    );
    // Writes go on from the imported revision.
    assert_eq!(put(&target, "new", "1"), source.current_revision() + 1);
}

#[test]
fn truncated_or_corrupt_snapshot_leaves_old_state() {
    let source = populated();
    let mut stream = Vec::new();
    source.export(&mut stream).expect("export");
    let target = store();
    put(&target, "mine", "1");
    let before = target.hash_kv(0).expect("h");
    for cut in [0, 5, 12, stream.len() / 2, stream.len() - 1] {
        let e = target.import(&mut &stream[..cut]).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{cut}: {e:?}");
    }
    let mut flipped = stream.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    assert!(matches!(
        target.import(&mut flipped.as_slice()).unwrap_err(),
        Error::Corrupt(_)
    ));
    assert_eq!(target.hash_kv(0).expect("h"), before);
    assert_eq!(get(&target, "mine").expect("mine").value, b"1");
    assert_eq!(put(&target, "mine", "2"), 3);
}

/// Paginated reads at the current revision take a path that decodes only the returned values;
/// it must answer exactly what the general path (forced here by a filter every key passes)
/// answers.
#[test]
fn paginated_reads_agree_with_the_general_path() {
    let store = store();
    for i in 0..50 {
        put(&store, &format!("p/{i:02}"), &format!("value {i}"));
    }
    put(&store, "q", "outside");
    ok(&store, Command::DeleteRange(del_req("p/10", "p/20")));
    for (limit, keys_only, count_only) in [
        (1, false, false),
        (7, true, false),
        (40, false, false),
        (100, false, false),
        (0, false, true),
        (5, false, true),
    ] {
        let fast = RangeRequest {
            limit,
            keys_only,
            count_only,
            ..range("p/", "p0")
        };
        let general = RangeRequest {
            min_mod_revision: 1,
            ..fast.clone()
        };
        let (a, b) = (store.range(&fast).unwrap(), store.range(&general).unwrap());
        assert_eq!(
            a, b,
            "limit {limit} keys_only {keys_only} count_only {count_only}"
        );
        assert_eq!(a.count, 40);
    }
}

/// etcd's dbSize is never 0; neither is a new keyspace's size on disk, before or right after
/// its first write (whose run sled writes out only in its background flush).
#[test]
fn a_new_keyspace_has_a_size_on_disk_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path(), Config::default()).expect("open");
    assert!(store.size_on_disk().unwrap() > 0, "just opened");
    let applied = store
        .apply_batch(&[Command::Put(put_req("m", "v"))], Some(b"entry-1"))
        .expect("storage");
    assert!(applied[0].result.is_ok());
    assert!(store.size_on_disk().unwrap() > 0, "after the first write");
}
