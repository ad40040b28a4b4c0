use keel_raft::RaftConfig;

use crate::fixture::{fast_config, put, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_restarts_with_its_state() -> anyhow::Result<()> {
    let config = RaftConfig {
        snapshot_logs_since_last: 25,
        ..fast_config()
    };
    let mut cluster = Cluster::start(3, config).await?;
    for i in 0..40 {
        cluster
            .write(put(&format!("k{i:02}"), &format!("v{i}")))
            .await?;
    }
    cluster.assert_converged(&cluster.ids()).await?;
    let ids = cluster.ids();
    let mut before = Vec::new();
    for id in &ids {
        let snapshot = cluster
            .node(*id)
            .raft()
            .get_snapshot()
            .await?
            .map(|s| s.meta);
        before.push((cluster.node(*id).store().hash_kv(0)?, snapshot));
    }
    assert!(
        before.iter().all(|(_, s)| s.is_some()),
        "no snapshot was built: {before:?}"
    );

    for id in &ids {
        cluster.stop(*id).await?;
    }
    for id in &ids {
        cluster.open(*id).await?;
    }
    // Before any new write, each member's keyspace and snapshot are what they were.
    for (id, (hash, snapshot)) in ids.iter().zip(&before) {
        assert_eq!(
            cluster.node(*id).store().hash_kv(0)?,
            *hash,
            "member {id} keyspace"
        );
        let reopened = cluster
            .node(*id)
            .raft()
            .get_snapshot()
            .await?
            .map(|s| s.meta);
        assert_eq!(reopened, *snapshot, "member {id} snapshot");
    }
    cluster.leader().await?;
    cluster.write(put("after", "restart")).await?;
    cluster.assert_converged(&ids).await?;
    for id in &ids {
        assert_eq!(
            cluster.get(*id, "k39")?.as_deref(),
            Some(&b"v39"[..]),
            "member {id}"
        );
    }
    cluster.shutdown().await
}

/// `stopped` stays pending while the core runs and writes go through (it follows the server
/// metrics, which writes do not change), and resolves with the reason once the core stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_resolves_when_the_core_stops() -> anyhow::Result<()> {
    use futures::FutureExt as _;
    let cluster = Cluster::start(1, fast_config()).await?;
    cluster.leader().await?;
    let node = cluster.node(1);
    let mut stopped = Box::pin(node.stopped());
    assert!((&mut stopped).now_or_never().is_none());
    for i in 0..10 {
        cluster.write(put(&format!("k{i}"), "v")).await?;
    }
    assert!((&mut stopped).now_or_never().is_none());
    node.raft().shutdown().await?;
    let reason = tokio::time::timeout(crate::fixture::DEADLINE, stopped).await?;
    assert!(reason.contains("raft stopped"), "{reason}");
    Ok(())
}
