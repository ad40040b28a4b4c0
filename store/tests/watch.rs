//! Watches: replay then live with no gap or duplicate, compaction, filters, prev_kv, slow
//! watchers, import.

use std::time::Duration;

use keel_store::*;

fn put_req(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..PutRequest::default()
    }
}

fn put(store: &Store, key: &str, value: &str) -> i64 {
    let applied = store
        .apply(&Command::Put(put_req(key, value)), None)
        .expect("storage");
    assert!(applied.result.is_ok(), "{applied:?}");
    applied.revision
}

fn delete(store: &Store, key: &str) -> i64 {
    let applied = store
        .apply(
            &Command::DeleteRange(DeleteRangeRequest {
                key: key.into(),
                ..DeleteRangeRequest::default()
            }),
            None,
        )
        .expect("storage");
    assert!(applied.result.is_ok(), "{applied:?}");
    applied.revision
}

fn all_keys(start_revision: i64) -> WatchRequest {
    WatchRequest {
        key: b"\0".to_vec(),
        range_end: b"\0".to_vec(),
        start_revision,
        ..WatchRequest::default()
    }
}

/// Next update, failing the test instead of hanging.
async fn next(watcher: &mut Watcher) -> Option<WatchUpdate> {
    tokio::time::timeout(Duration::from_secs(20), watcher.next())
        .await
        .expect("watcher stalled")
}

/// Collects events until the watcher has covered `through`, checking the update invariants.
async fn collect(watcher: &mut Watcher, through: i64) -> Vec<Event> {
    let mut events = Vec::new();
    let mut last_revision = 0;
    while watcher.next_revision() <= through {
        match next(watcher).await {
            Some(WatchUpdate::Events {
                revision,
                events: batch,
            }) => {
                assert!(!batch.is_empty(), "empty update");
                assert!(revision > last_revision, "update revisions go up");
                assert!(batch.len() <= 1000 + 64, "update of {} events", batch.len());
                let first = batch[0].kv.mod_revision;
                assert!(first > last_revision, "event revisions overlap updates");
                assert!(batch.iter().all(|e| e.kv.mod_revision <= revision));
                assert_eq!(watcher.next_revision(), revision + 1);
                last_revision = revision;
                events.extend(batch);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    events
}

fn revisions(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.kv.mod_revision).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_live_without_gap_or_duplicate() {
    // A small ring, so the watcher crosses from disk to the ring and back.
    let store = Store::temporary(Config {
        watch_cache_revisions: 64,
        ..Config::default()
    })
    .expect("store");
    for i in 0..2500 {
        put(&store, &format!("k{}", i % 50), "v");
    }
    let mut watcher = store.watch(all_keys(2)).expect("watch");
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..2500 {
                put(&store, &format!("k{}", i % 50), "w");
            }
        })
    };
    let events = collect(&mut watcher, 5001).await;
    writer.join().expect("writer");
    assert_eq!(revisions(&events), (2..=5001).collect::<Vec<_>>());
}

#[tokio::test]
async fn start_revision_zero_follows_from_next_write() {
    let store = Store::temporary(Config::default()).expect("store");
    put(&store, "a", "1");
    let mut watcher = store.watch(all_keys(0)).expect("watch");
    assert_eq!(watcher.next_revision(), 3);
    let waiting = tokio::spawn(async move {
        let update = next(&mut watcher).await;
        (update, watcher)
    });
    tokio::task::yield_now().await;
    put(&store, "b", "2");
    let (update, _watcher) = waiting.await.expect("task");
    let Some(WatchUpdate::Events { revision, events }) = update else {
        panic!("{update:?}")
    };
    assert_eq!((revision, events.len()), (3, 1));
    assert_eq!(events[0].kv.key, b"b");
}

#[tokio::test]
async fn compacted_start() {
    let store = Store::temporary(Config::default()).expect("store");
    for i in 0..6 {
        put(&store, "k", &i.to_string());
    }
    store
        .apply(&Command::Compact { revision: 5 }, None)
        .expect("storage")
        .result
        .expect("compact");
    let mut old = store.watch(all_keys(3)).expect("watch");
    assert_eq!(
        next(&mut old).await,
        Some(WatchUpdate::Compacted {
            compact_revision: 5
        })
    );
    assert_eq!(next(&mut old).await, None, "the watch is over");
    let mut at_compaction = store.watch(all_keys(5)).expect("watch");
    let events = collect(&mut at_compaction, 7).await;
    assert_eq!(revisions(&events), [5, 6, 7]);
}

#[tokio::test]
async fn a_lagging_watcher_is_told_compacted() {
    let store = Store::temporary(Config::default()).expect("store");
    let mut watcher = store.watch(all_keys(0)).expect("watch");
    for i in 0..10 {
        put(&store, "k", &i.to_string());
    }
    store
        .apply(&Command::Compact { revision: 8 }, None)
        .expect("storage")
        .result
        .expect("compact");
    assert_eq!(
        next(&mut watcher).await,
        Some(WatchUpdate::Compacted {
            compact_revision: 8
        })
    );
}

#[tokio::test]
async fn filters_by_range_and_kind() {
    let store = Store::temporary(Config::default()).expect("store");
    put(&store, "app/a", "1"); // 2
    put(&store, "other", "1"); // 3
    put(&store, "app/b", "1"); // 4
    delete(&store, "app/a"); // 5
    put(&store, "other", "2"); // 6
    delete(&store, "other"); // 7
    let prefix = |no_put, no_delete| WatchRequest {
        key: b"app/".to_vec(),
        range_end: b"app0".to_vec(),
        start_revision: 1,
        no_put,
        no_delete,
        ..WatchRequest::default()
    };
    let mut all = store.watch(prefix(false, false)).expect("watch");
    let events = collect(&mut all, 7).await;
    assert_eq!(revisions(&events), [2, 4, 5]);
    let mut puts = store.watch(prefix(false, true)).expect("watch");
    assert_eq!(revisions(&collect(&mut puts, 7).await), [2, 4]);
    let mut deletes = store.watch(prefix(true, false)).expect("watch");
    let events = collect(&mut deletes, 7).await;
    assert_eq!(revisions(&events), [5]);
    assert_eq!(events[0].kind, EventType::Delete);
    assert_eq!(events[0].kv.version, 0);
    let mut single = store
        .watch(WatchRequest {
            key: b"other".to_vec(),
            start_revision: 1,
            ..WatchRequest::default()
        })
        .expect("watch");
    assert_eq!(revisions(&collect(&mut single, 7).await), [3, 6, 7]);
}

async fn check_prev_kv(store: &Store, start: i64) {
    let mut watcher = store
        .watch(WatchRequest {
            prev_kv: true,
            ..all_keys(start)
        })
        .expect("watch");
    let events = collect(&mut watcher, 5).await;
    let prev: Vec<_> = events
        .iter()
        .map(|e| e.prev_kv.as_ref().map(|kv| kv.value.clone()))
        .collect();
    assert_eq!(prev, [None, Some(b"1".to_vec()), Some(b"2".to_vec()), None]);
    let mut plain = store.watch(all_keys(start)).expect("watch");
    let events = collect(&mut plain, 5).await;
    assert!(events.iter().all(|e| e.prev_kv.is_none()));
}

#[tokio::test]
async fn prev_kv_from_ring_and_from_disk() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let store = Store::open(dir.path(), Config::default()).expect("open");
        put(&store, "a", "1"); // 2
        put(&store, "a", "2"); // 3
        delete(&store, "a"); // 4
        put(&store, "a", "3"); // 5
        check_prev_kv(&store, 2).await;
    }
    // A reopened store has an empty ring: everything comes from disk.
    let store = Store::open(dir.path(), Config::default()).expect("reopen");
    check_prev_kv(&store, 2).await;
}

#[tokio::test]
async fn slow_watcher_does_not_block_writes_and_catches_up() {
    let store = Store::temporary(Config {
        watch_cache_revisions: 256,
        ..Config::default()
    })
    .expect("store");
    let mut slow = store.watch(all_keys(0)).expect("watch");
    let mut filtered = store
        .watch(WatchRequest {
            key: b"key/9999".to_vec(),
            start_revision: 0,
            ..WatchRequest::default()
        })
        .expect("watch");
    for i in 0..10_000 {
        put(&store, &format!("key/{i}"), "v");
    }
    let events = collect(&mut slow, 10_001).await;
    assert_eq!(revisions(&events), (2..=10_001).collect::<Vec<_>>());
    let mut keys: Vec<_> = events.iter().map(|e| e.kv.key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10_000);
    // A filter that drops almost everything still yields only non-empty updates.
    let only = next(&mut filtered).await;
    let Some(WatchUpdate::Events { revision, events }) = only else {
        panic!("{only:?}")
    };
    assert_eq!((revision, events.len()), (10_001, 1));
}

#[tokio::test]
async fn watchers_end_when_the_store_is_dropped() {
    let store = Store::temporary(Config::default()).expect("store");
    let mut watcher = store.watch(all_keys(0)).expect("watch");
    let waiting = tokio::spawn(async move { next(&mut watcher).await });
    tokio::task::yield_now().await;
    drop(store);
    assert_eq!(waiting.await.expect("task"), None);
}

#[tokio::test]
async fn import_wakes_watchers() {
    let source = Store::temporary(Config::default()).expect("store");
    for i in 0..10 {
        put(&source, "k", &i.to_string());
    }
    let mut stream = Vec::new();
    source.export(&mut stream).expect("export");

    let target = Store::temporary(Config::default()).expect("store");
    put(&target, "mine", "1");
    let mut live = target.watch(all_keys(0)).expect("watch");
    target.import(&mut stream.as_slice()).expect("import");
    let events = collect(&mut live, 11).await;
    assert_eq!(revisions(&events), (3..=11).collect::<Vec<_>>());

    source
        .apply(&Command::Compact { revision: 9 }, None)
        .expect("storage")
        .result
        .expect("compact");
    let mut stream = Vec::new();
    source.export(&mut stream).expect("export");
    let other = Store::temporary(Config::default()).expect("store");
    put(&other, "mine", "1");
    let mut behind = other.watch(all_keys(0)).expect("watch");
    other.import(&mut stream.as_slice()).expect("import");
    assert_eq!(
        next(&mut behind).await,
        Some(WatchUpdate::Compacted {
            compact_revision: 9
        })
    );
}

/// Puts of 300-byte values, applied as one batch, fill several event-log entries; a reopened
/// store replays them from disk from any revision, with the value each put replaced, before
/// and after a compaction in the middle of an entry.
#[tokio::test]
async fn replay_from_disk_starts_anywhere_in_a_batch() {
    let dir = tempfile::tempdir().expect("dir");
    let value = |i: usize| format!("{i:0>300}");
    let commands: Vec<Command> = (0..40)
        .map(|i| Command::Put(put_req(&format!("k{}", i % 7), &value(i))))
        .collect();
    {
        let store = Store::open(dir.path(), Config::default()).expect("open");
        let applied = store.apply_batch(&commands, None).expect("storage");
        assert!(applied.iter().all(|a| a.result.is_ok()));
        assert_eq!(store.current_revision(), 41);
    }
    // Put i (from 0) is at revision i + 2 and replaced put i - 7, which a compaction at or
    // above revision i + 2 removes.
    let expected_prev = |revision: i64, compacted: i64| {
        let i = (revision - 2) as usize;
        (i >= 7 && revision > compacted).then(|| value(i - 7).into_bytes())
    };
    let check = |store: Store, start: i64, compacted: i64| async move {
        let mut watcher = store
            .watch(WatchRequest {
                prev_kv: true,
                ..all_keys(start)
            })
            .expect("watch");
        let events = collect(&mut watcher, 41).await;
        assert_eq!(revisions(&events), (start..=41).collect::<Vec<_>>());
        for event in &events {
            let revision = event.kv.mod_revision;
            assert_eq!(event.kv.value, value((revision - 2) as usize).into_bytes());
            assert_eq!(
                event.prev_kv.as_ref().map(|kv| kv.value.clone()),
                expected_prev(revision, compacted),
                "prev_kv at {revision}"
            );
        }
    };
    let store = Store::open(dir.path(), Config::default()).expect("reopen");
    for start in [2, 3, 17, 30, 41] {
        check(store.clone(), start, 0).await;
    }
    let compacted = store
        .apply(&Command::Compact { revision: 24 }, None)
        .expect("storage");
    assert!(compacted.result.is_ok(), "{compacted:?}");
    drop(store);
    let store = Store::open(dir.path(), Config::default()).expect("reopen");
    for start in [24, 25, 33] {
        check(store.clone(), start, 24).await;
    }
    let at_24 = store
        .range(&RangeRequest {
            key: b"k".to_vec(),
            range_end: b"l".to_vec(),
            revision: 24,
            ..RangeRequest::default()
        })
        .expect("range at the compacted revision");
    // Key k0 .. k6's last put at or below 24: puts 21, 22, then 16 to 20.
    let revisions_at_24: Vec<_> = at_24.kvs.iter().map(|kv| kv.mod_revision).collect();
    assert_eq!(revisions_at_24, [23, 24, 18, 19, 20, 21, 22]);
}
