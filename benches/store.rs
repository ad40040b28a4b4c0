//! keel-store micro-benchmarks: put, range (1 key, 1000 keys), txn, watch fan-out, and 64 puts
//! applied one by one against the same puts as one batch (a Raft entry of 64 writes).
//!
//! How to run: `cargo bench --bench store -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use keel_store::{
    Command, Compare, CompareResult, CompareTarget, Config, PutRequest, RangeRequest, RequestOp,
    Store, TxnRequest, WatchRequest, WatchUpdate,
};

fn put(key: String, value: Vec<u8>) -> Command {
    Command::Put(PutRequest {
        key: key.into_bytes(),
        value,
        ..PutRequest::default()
    })
}

fn apply(store: &Store, command: &Command) {
    let applied = store.apply(command, None).expect("storage");
    assert!(applied.result.is_ok(), "{applied:?}");
}

fn store_with_keys(count: usize) -> Store {
    let store = Store::temporary(Config::default()).expect("store");
    for i in 0..count {
        apply(&store, &put(format!("bench/{i:06}"), vec![7; 100]));
    }
    store
}

/// The same keys written as a Raft member applies them: 64 puts to an entry, so the event log
/// holds them in groups.
fn store_with_keys_in_entries(count: usize) -> Store {
    let store = Store::temporary(Config::default()).expect("store");
    let puts: Vec<Command> = (0..count)
        .map(|i| put(format!("bench/{i:06}"), vec![7; 100]))
        .collect();
    for entry in puts.chunks(64) {
        let applied = store.apply_batch(entry, None).expect("storage");
        assert!(applied.iter().all(|a| a.result.is_ok()));
    }
    store
}

fn writes(c: &mut Criterion) {
    let store = Store::temporary(Config::default()).expect("store");
    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("put", |b| {
        b.iter(|| {
            i += 1;
            apply(&store, &put(format!("put/{}", i % 10_000), vec![1; 100]));
        })
    });
    // Kubernetes' GuaranteedUpdate: swap on the mod revision, read the key back on failure.
    group.bench_function("txn compare-and-swap", |b| {
        b.iter(|| {
            i += 1;
            let key = format!("cas/{}", i % 10_000).into_bytes();
            let txn = TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Greater,
                    target: CompareTarget::ModRevision(-1),
                    key: key.clone(),
                    range_end: Vec::new(),
                }],
                success: vec![RequestOp::Put(PutRequest {
                    key: key.clone(),
                    value: vec![2; 100],
                    ..PutRequest::default()
                })],
                failure: vec![RequestOp::Range(RangeRequest {
                    key,
                    ..RangeRequest::default()
                })],
            };
            apply(&store, &Command::Txn(txn));
        })
    });
    // A put plus a limited read of a prefix that the put is in (the slow path: the read must
    // merge the transaction's own write with up to 10k committed keys).
    group.bench_function("txn put + prefix read", |b| {
        b.iter(|| {
            i += 1;
            let key = format!("txn/{}", i % 10_000);
            let txn = TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Greater,
                    target: CompareTarget::Version(-1),
                    key: key.clone().into_bytes(),
                    range_end: Vec::new(),
                }],
                success: vec![
                    RequestOp::Put(PutRequest {
                        key: key.into_bytes(),
                        value: vec![2; 100],
                        ..PutRequest::default()
                    }),
                    RequestOp::Range(RangeRequest {
                        key: b"txn/".to_vec(),
                        range_end: b"txn0".to_vec(),
                        limit: 1,
                        ..RangeRequest::default()
                    }),
                ],
                failure: Vec::new(),
            };
            apply(&store, &Command::Txn(txn));
        })
    });
    group.finish();
}

fn reads(c: &mut Criterion) {
    let store = store_with_keys(10_000);
    let mut group = c.benchmark_group("range");
    group.throughput(Throughput::Elements(1));
    let one = RangeRequest {
        key: b"bench/004242".to_vec(),
        ..RangeRequest::default()
    };
    group.bench_function("1 key", |b| {
        b.iter(|| assert_eq!(store.range(&one).expect("range").kvs.len(), 1))
    });
    let thousand = RangeRequest {
        key: b"bench/001000".to_vec(),
        range_end: b"bench/002000".to_vec(),
        ..RangeRequest::default()
    };
    group.bench_function("1000 keys", |b| {
        b.iter(|| assert_eq!(store.range(&thousand).expect("range").kvs.len(), 1000))
    });
    let old = RangeRequest {
        revision: 5_000,
        ..thousand.clone()
    };
    group.bench_function("1000 keys at an old revision", |b| {
        b.iter(|| store.range(&old).expect("range"))
    });
    let in_entries = store_with_keys_in_entries(10_000);
    group.bench_function(
        "1000 keys at an old revision, written 64 to an entry",
        |b| b.iter(|| in_entries.range(&old).expect("range")),
    );
    group.finish();
}

fn watch_fan_out(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = Store::temporary(Config::default()).expect("store");
    let mut watchers: Vec<_> = (0..100)
        .map(|_| {
            store
                .watch(WatchRequest {
                    key: b"watched".to_vec(),
                    ..WatchRequest::default()
                })
                .expect("watch")
        })
        .collect();
    let mut group = c.benchmark_group("watch");
    group.throughput(Throughput::Elements(1));
    group.bench_function("100 watchers, one put", |b| {
        b.iter_batched(
            || put("watched".into(), vec![3; 100]),
            |command| {
                apply(&store, &command);
                runtime.block_on(async {
                    for watcher in &mut watchers {
                        match watcher.next().await {
                            Some(WatchUpdate::Events { .. }) => {}
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                });
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// 64 puts as the state machine applies them: 64 entries of one command each (with the Raft
/// marker each time), against one entry of 64 commands.
fn batch_apply(c: &mut Criterion) {
    const BATCH: usize = 64;
    let store = Store::temporary(Config::default()).expect("store");
    let mut group = c.benchmark_group("apply 64 puts");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut i = 0u64;
    let mut next_puts = || -> Vec<Command> {
        (0..BATCH)
            .map(|_| {
                i += 1;
                put(format!("batch/{}", i % 10_000), vec![1; 100])
            })
            .collect()
    };
    let marker = [9u8; 48];
    group.bench_function("one by one", |b| {
        b.iter_batched(
            &mut next_puts,
            |puts| {
                for command in &puts {
                    let applied = store.apply(command, Some(&marker)).expect("storage");
                    assert!(applied.result.is_ok(), "{applied:?}");
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("apply_batch", |b| {
        b.iter_batched(
            &mut next_puts,
            |puts| {
                let applied = store.apply_batch(&puts, Some(&marker)).expect("storage");
                assert!(applied.iter().all(|a| a.result.is_ok()));
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, writes, reads, watch_fan_out, batch_apply);
criterion_main!(benches);
