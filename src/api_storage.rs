//! keel-apiserver's `Storage` over a member's [`Replica`], in-process: writes are proposed
//! through Raft as etcd txns comparing the key's revision, reads wait for the read barrier
//! (linearizable) unless they name a revision, watches are the store's own.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use keel_apiserver::storage::{
    Change, Page, Storage, StorageError, StorageResult, StoredValue, WatchBatch, Written,
};
use keel_store::{
    Command, CommandResponse, Compare, CompareResult, CompareTarget, DeleteRangeRequest, KeyValue,
    PutRequest, RangeRequest, RequestOp, ResponseOp, TxnRequest, WatchRequest, WatchUpdate,
};

use crate::replica::{Replica, ReplicaError};

/// How long a call waits out an election (no leader) before answering unavailable.
const LEADER_WAIT: Duration = Duration::from_secs(5);

/// The apiserver's storage on one member.
pub struct ReplicaStorage {
    replica: Arc<dyn Replica>,
}

impl ReplicaStorage {
    /// Storage over `replica`.
    pub fn new(replica: Arc<dyn Replica>) -> ReplicaStorage {
        ReplicaStorage { replica }
    }

    /// Proposes `command`, retrying while the cluster has no leader (nothing was proposed
    /// then, so a retry cannot apply it twice).
    async fn write(&self, command: Command) -> StorageResult<(i64, CommandResponse)> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            match self.replica.write(command.clone()).await {
                Ok(applied) => {
                    let response = applied.result.map_err(store_error)?;
                    return Ok((applied.revision, response));
                }
                Err(ReplicaError::NoLeader | ReplicaError::NotLeader { .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(StorageError::Unavailable(e.to_string())),
            }
        }
    }

    async fn barrier(&self) -> StorageResult<()> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            match self.replica.read_barrier().await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(StorageError::Unavailable(e.to_string()))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// A compare-and-swap txn on `key`: `compare` holds → `then`, else read the key.
    async fn swap(
        &self,
        key: Vec<u8>,
        compare: CompareTarget,
        then: RequestOp,
    ) -> StorageResult<Written> {
        let txn = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal,
                target: compare,
                key: key.clone(),
                range_end: Vec::new(),
            }],
            success: vec![then],
            failure: vec![RequestOp::Range(RangeRequest {
                key,
                ..Default::default()
            })],
        };
        let (revision, response) = self.write(Command::Txn(txn)).await?;
        let CommandResponse::Txn(txn) = response else {
            return Err(StorageError::Unavailable(
                "unexpected response to a txn".into(),
            ));
        };
        if txn.succeeded {
            return Ok(Written::Done { revision });
        }
        let current = match txn.responses.into_iter().next() {
            Some(ResponseOp::Range(range)) => range.kvs.into_iter().next().map(stored),
            _ => None,
        };
        Ok(Written::Conflict { current })
    }
}

fn stored(kv: KeyValue) -> StoredValue {
    StoredValue {
        key: kv.key,
        value: kv.value,
        mod_revision: kv.mod_revision,
    }
}

fn store_error(e: keel_store::Error) -> StorageError {
    match e {
        keel_store::Error::Compacted { compact_revision } => {
            StorageError::Compacted { compact_revision }
        }
        keel_store::Error::FutureRevision { .. } => StorageError::FutureRevision,
        other => StorageError::Unavailable(other.to_string()),
    }
}

impl Storage for ReplicaStorage {
    fn range(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        revision: i64,
        limit: i64,
    ) -> BoxFuture<'_, StorageResult<Page>> {
        Box::pin(async move {
            if revision <= 0 {
                self.barrier().await?;
            }
            let store = self.replica.store().clone();
            tokio::task::spawn_blocking(move || {
                // The revision is read before the range, so a write landing in between makes
                // the page newer than it says, never older: a watch from it may repeat an
                // event, never miss one.
                let at = if revision > 0 {
                    revision
                } else {
                    store.current_revision()
                };
                let response = store
                    .range(&RangeRequest {
                        key: start,
                        range_end: end,
                        limit,
                        revision: at,
                        ..Default::default()
                    })
                    .map_err(store_error)?;
                Ok(Page {
                    items: response.kvs.into_iter().map(stored).collect(),
                    revision: at,
                    more: response.more,
                })
            })
            .await
            .map_err(|e| StorageError::Unavailable(format!("read task failed: {e}")))?
        })
    }

    fn create(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFuture<'_, StorageResult<Written>> {
        Box::pin(async move {
            let put = RequestOp::Put(PutRequest {
                key: key.clone(),
                value,
                ..Default::default()
            });
            self.swap(key, CompareTarget::CreateRevision(0), put).await
        })
    }

    fn update(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> BoxFuture<'_, StorageResult<Written>> {
        Box::pin(async move {
            let put = RequestOp::Put(PutRequest {
                key: key.clone(),
                value,
                ..Default::default()
            });
            self.swap(key, CompareTarget::ModRevision(expected_revision), put)
                .await
        })
    }

    fn delete(
        &self,
        key: Vec<u8>,
        expected_revision: i64,
    ) -> BoxFuture<'_, StorageResult<Written>> {
        Box::pin(async move {
            let delete = RequestOp::DeleteRange(DeleteRangeRequest {
                key: key.clone(),
                ..Default::default()
            });
            self.swap(key, CompareTarget::ModRevision(expected_revision), delete)
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
            let watcher = self
                .replica
                .store()
                .watch(WatchRequest {
                    key: start,
                    range_end: end,
                    start_revision,
                    prev_kv: true,
                    ..Default::default()
                })
                .map_err(store_error)?;
            let stream = futures::stream::unfold(watcher, |mut watcher| async move {
                let update = watcher.next().await?;
                Some((batch(update), watcher))
            });
            Ok(Box::pin(stream) as BoxStream<'static, WatchBatch>)
        })
    }
}

fn batch(update: WatchUpdate) -> WatchBatch {
    match update {
        WatchUpdate::Events { revision, events } => WatchBatch::Changes {
            revision,
            changes: events
                .into_iter()
                .map(|event| match event.kind {
                    keel_store::EventType::Put => Change::Put {
                        value: stored(event.kv),
                        previous: event.prev_kv.map(stored),
                    },
                    keel_store::EventType::Delete => Change::Delete {
                        revision: event.kv.mod_revision,
                        key: event.kv.key,
                        previous: event.prev_kv.map(stored),
                    },
                })
                .collect(),
        },
        WatchUpdate::Compacted { compact_revision } => WatchBatch::Compacted { compact_revision },
    }
}
