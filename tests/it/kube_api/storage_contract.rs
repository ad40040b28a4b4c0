//! The apiserver's `Storage` contract, run against keel (in-process, over a member) and against
//! a real etcd 3.4 (over its gRPC API): the same calls must give the same outcomes, which
//! proves keel's storage semantics are etcd's where kube-apiserver relies on them.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use keel_apiserver::storage::{
    prefix_end, Change, Page, Storage, StorageError, StorageResult, StoredValue, WatchBatch,
    Written,
};

use crate::bench::Etcd;

/// keel-apiserver's storage over etcd's gRPC API.
struct EtcdStorage {
    client: etcd_client::Client,
}

fn unavailable(e: etcd_client::Error) -> StorageError {
    let text = e.to_string();
    if text.contains("required revision has been compacted") {
        // etcd does not say where it compacted in this error; callers only need the kind.
        return StorageError::Compacted {
            compact_revision: 0,
        };
    }
    if text.contains("future revision") {
        return StorageError::FutureRevision;
    }
    StorageError::Unavailable(text)
}

fn stored(kv: &etcd_client::KeyValue) -> StoredValue {
    StoredValue {
        key: kv.key().to_vec(),
        value: kv.value().to_vec(),
        mod_revision: kv.mod_revision(),
    }
}

impl EtcdStorage {
    async fn swap(&self, key: Vec<u8>, compare: Compare, then: TxnOp) -> StorageResult<Written> {
        let txn = Txn::new()
            .when([compare])
            .and_then([then])
            .or_else([TxnOp::get(key, None)]);
        let response = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(unavailable)?;
        let revision = response.header().map_or(0, |h| h.revision());
        if response.succeeded() {
            return Ok(Written::Done { revision });
        }
        let current = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().map(stored),
            _ => None,
        });
        Ok(Written::Conflict { current })
    }
}

impl Storage for EtcdStorage {
    fn range(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        revision: i64,
        limit: i64,
    ) -> BoxFuture<'_, StorageResult<Page>> {
        Box::pin(async move {
            let mut options = GetOptions::new()
                .with_limit(limit)
                .with_revision(revision.max(0));
            if !end.is_empty() {
                options = options.with_range(end);
            }
            let response = self
                .client
                .kv_client()
                .get(start, Some(options))
                .await
                .map_err(unavailable)?;
            Ok(Page {
                items: response.kvs().iter().map(stored).collect(),
                revision: if revision > 0 {
                    revision
                } else {
                    response.header().map_or(0, |h| h.revision())
                },
                more: response.more(),
            })
        })
    }

    fn create(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFuture<'_, StorageResult<Written>> {
        Box::pin(async move {
            let compare = Compare::create_revision(key.clone(), CompareOp::Equal, 0);
            self.swap(key.clone(), compare, TxnOp::put(key, value, None))
                .await
        })
    }

    fn update(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        expected: i64,
    ) -> BoxFuture<'_, StorageResult<Written>> {
        Box::pin(async move {
            let compare = Compare::mod_revision(key.clone(), CompareOp::Equal, expected);
            self.swap(key.clone(), compare, TxnOp::put(key, value, None))
                .await
        })
    }

    fn delete(&self, key: Vec<u8>, expected: i64) -> BoxFuture<'_, StorageResult<Written>> {
        Box::pin(async move {
            let compare = Compare::mod_revision(key.clone(), CompareOp::Equal, expected);
            self.swap(key.clone(), compare, TxnOp::delete(key, None))
                .await
        })
    }

    fn watch(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        start_revision: i64,
    ) -> BoxFuture<'_, StorageResult<BoxStream<'static, WatchBatch>>> {
        Box::pin(async move {
            let options = WatchOptions::new()
                .with_range(end)
                .with_start_revision(start_revision)
                .with_prev_key();
            let stream = self
                .client
                .watch_client()
                .watch(start, Some(options))
                .await
                .map_err(unavailable)?;
            let batches = stream.filter_map(move |response| {
                let batch = match response {
                    Ok(r) if r.compact_revision() > 0 => Some(WatchBatch::Compacted {
                        compact_revision: r.compact_revision(),
                    }),
                    Ok(r) if r.events().is_empty() => None,
                    Ok(r) => Some(WatchBatch::Changes {
                        revision: r.header().map_or(0, |h| h.revision()),
                        changes: r
                            .events()
                            .iter()
                            .filter_map(|e| {
                                let kv = e.kv()?;
                                Some(match e.event_type() {
                                    EventType::Put => Change::Put {
                                        value: stored(kv),
                                        previous: e.prev_kv().map(stored),
                                    },
                                    EventType::Delete => Change::Delete {
                                        key: kv.key().to_vec(),
                                        revision: kv.mod_revision(),
                                        previous: e.prev_kv().map(stored),
                                    },
                                })
                            })
                            .collect(),
                    }),
                    Err(_) => None,
                };
                futures::future::ready(batch)
            });
            Ok(Box::pin(batches) as BoxStream<'static, WatchBatch>)
        })
    }
}

/// The contract: what kube-apiserver needs of its storage.
async fn contract(storage: Arc<dyn Storage>) {
    let key = |n: &str| format!("/registry/contract/{n}").into_bytes();
    let prefix = b"/registry/contract/".to_vec();
    let end = prefix_end(&prefix);
    let mut watch = storage
        .watch(prefix.clone(), end.clone(), 0)
        .await
        .expect("watch");

    let Written::Done { revision: first } = storage.create(key("a"), b"1".to_vec()).await.unwrap()
    else {
        panic!("a fresh create is done");
    };
    match storage.create(key("a"), b"2".to_vec()).await.unwrap() {
        Written::Conflict {
            current: Some(current),
        } => {
            assert_eq!(
                (current.value.as_slice(), current.mod_revision),
                (&b"1"[..], first)
            );
        }
        other => panic!("a second create must conflict with the current value: {other:?}"),
    }
    assert!(matches!(
        storage
            .update(key("a"), b"x".to_vec(), first + 100)
            .await
            .unwrap(),
        Written::Conflict { .. }
    ));
    let Written::Done { revision: second } = storage
        .update(key("a"), b"3".to_vec(), first)
        .await
        .unwrap()
    else {
        panic!("an update at the current revision is done");
    };
    assert!(second > first);
    storage.create(key("b"), b"b".to_vec()).await.unwrap();
    storage.create(key("c"), b"c".to_vec()).await.unwrap();

    // Ranges: current, limited with `more`, and at an old revision.
    let page = storage
        .range(prefix.clone(), end.clone(), 0, 0)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    let limited = storage
        .range(prefix.clone(), end.clone(), 0, 2)
        .await
        .unwrap();
    assert_eq!((limited.items.len(), limited.more), (2, true));
    let old = storage.range(key("a"), Vec::new(), first, 0).await.unwrap();
    assert_eq!(old.items[0].value, b"1");
    assert_eq!(old.revision, first);

    match storage.delete(key("a"), first).await.unwrap() {
        Written::Conflict {
            current: Some(current),
        } => assert_eq!(current.mod_revision, second),
        other => panic!("a stale delete conflicts: {other:?}"),
    }
    let Written::Done { revision: deleted } = storage.delete(key("a"), second).await.unwrap()
    else {
        panic!("a delete at the current revision is done");
    };
    assert!(matches!(
        storage.delete(key("a"), second).await.unwrap(),
        Written::Conflict { current: None }
    ));

    // The watch saw every change, in order, with previous values.
    let mut changes = Vec::new();
    while changes.len() < 5 {
        match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
            Ok(Some(WatchBatch::Changes { changes: batch, .. })) => changes.extend(batch),
            other => panic!("watch stalled after {changes:?}: {other:?}"),
        }
    }
    assert_eq!(
        changes
            .iter()
            .map(Change::revision)
            .collect::<Vec<_>>()
            .last(),
        Some(&deleted)
    );
    match &changes[1] {
        Change::Put {
            value,
            previous: Some(previous),
        } => {
            assert_eq!(
                (value.value.as_slice(), previous.value.as_slice()),
                (&b"3"[..], &b"1"[..])
            );
        }
        other => panic!("the update carries its previous value: {other:?}"),
    }
    assert!(matches!(&changes[4], Change::Delete { previous: Some(p), .. } if p.value == b"3"));

    // A watch from an old revision replays from there.
    let mut replay = storage
        .watch(prefix.clone(), end.clone(), second)
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), replay.next()).await {
        Ok(Some(WatchBatch::Changes { changes, .. })) => assert_eq!(changes[0].revision(), second),
        other => panic!("no replay: {other:?}"),
    }
}

#[tokio::test]
async fn keel_meets_the_storage_contract() {
    let cluster = keel::cli::dev::DevCluster::start_on_free_ports(1)
        .await
        .expect("cluster");
    let replica: Arc<dyn keel::replica::Replica> = cluster.members[0].replica.clone();
    contract(Arc::new(keel::api_storage::ReplicaStorage::new(replica))).await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn etcd_meets_the_same_storage_contract() {
    let etcd = Etcd::start().await;
    let client = etcd_client::Client::connect([etcd.endpoint.as_str()], None)
        .await
        .expect("etcd client");
    contract(Arc::new(EtcdStorage { client })).await;
}
