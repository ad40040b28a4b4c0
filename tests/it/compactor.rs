//! Automatic compaction with paused time.

use std::sync::Arc;
use std::time::Duration;

use keel::config::Retention;
use keel_store::{Command, PutRequest, Store};

use crate::lease::apply;
use crate::{settle, InlineReplica};

fn put(store: &Store) {
    let put = PutRequest {
        key: b"k".to_vec(),
        ..Default::default()
    };
    apply(store, Command::Put(put));
}

#[tokio::test(start_paused = true)]
async fn revision_mode_keeps_the_last_revisions() {
    let store = Store::temporary(keel_store::Config::default()).unwrap();
    for _ in 0..20 {
        put(&store);
    }
    let replica = Arc::new(InlineReplica {
        store: store.clone(),
    });
    let task = tokio::spawn(keel::compactor::run(
        replica,
        Retention::Revisions(5),
        std::future::pending::<()>(),
    ));
    settle().await;
    assert_eq!(store.current_revision(), 21);
    assert_eq!(store.compact_revision(), 16);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn periodic_mode_keeps_a_time_window() {
    let store = Store::temporary(keel_store::Config::default()).unwrap();
    let replica = Arc::new(InlineReplica {
        store: store.clone(),
    });
    let task = tokio::spawn(keel::compactor::run(
        replica,
        Retention::Period(Duration::from_secs(100)),
        std::future::pending::<()>(),
    ));
    // One write per 10 s sample: revision r is sampled at about (r - 1) * 10 s.
    for _ in 0..15 {
        settle().await;
        put(&store);
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    settle().await;
    let compacted = store.compact_revision();
    let current = store.current_revision();
    assert!(compacted > 1, "something old enough was compacted");
    assert!(
        current - compacted >= 9,
        "about 100 s of history is kept: compacted {compacted}, current {current}"
    );
    task.abort();
}
