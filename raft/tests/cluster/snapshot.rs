use keel_raft::RaftConfig;

use crate::fixture::{eventually, fast_config, put, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_by_snapshot() -> anyhow::Result<()> {
    let config = RaftConfig {
        snapshot_logs_since_last: 20,
        logs_kept_after_snapshot: 0,
        // A few KiB of keyspace in many chunks, so the router carries a chunked transfer too.
        snapshot_chunk_bytes: 512,
        ..fast_config()
    };
    let cluster = Cluster::start(3, config).await?;
    let leader = cluster.leader().await?;
    let lagging = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.router.isolate(lagging);
    for i in 0..100 {
        cluster
            .write_via(leader, put(&format!("k{i:03}"), &format!("v{i}")))
            .await?;
    }
    // The leader has purged the log the lagging member is missing.
    let purged = eventually("the leader to purge its log", || async {
        let metrics = cluster.node(leader).metrics().borrow().clone();
        metrics.purged.filter(|p| p.index > 20)
    })
    .await?;
    let lagging_last = cluster
        .node(lagging)
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0);
    assert!(
        lagging_last < purged.index,
        "member {lagging} is not behind the purge point"
    );

    cluster.router.heal();
    cluster.assert_converged(&cluster.ids()).await?;
    let installed = cluster.node(lagging).metrics().borrow().snapshot;
    assert!(
        installed.is_some_and(|s| s.index > lagging_last),
        "member {lagging} caught up without a snapshot: {installed:?}"
    );
    assert_eq!(cluster.get(lagging, "k099")?.as_deref(), Some(&b"v99"[..]));
    cluster.shutdown().await
}
