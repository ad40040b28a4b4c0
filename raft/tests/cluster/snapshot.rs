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

/// A member that crashed part-way through installing a received snapshot (the keyspace holds
/// the new snapshot, the sidecar still names the previous one, the log ends before both)
/// starts again, with a snapshot that covers its keyspace. openraft closes the hole between
/// the log and the keyspace by purging the log up to the keyspace, and panicked at startup on
/// a log purged past its snapshot (found by the chaos suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restarts_after_a_crash_in_the_middle_of_a_snapshot_install() -> anyhow::Result<()>
{
    use crate::fixture::{open_state_machine as open, put_entries as puts};
    use openraft::storage::RaftStateMachine as _;
    use openraft::RaftSnapshotBuilder as _;

    // The leader's side: a snapshot at 5, then one at 10.
    let leader_dir = tempfile::TempDir::new()?;
    let mut leader = open(leader_dir.path())?;
    leader.apply(puts(1..=5)).await?;
    let first = leader.get_snapshot_builder().await.build_snapshot().await?;
    leader.apply(puts(6..=10)).await?;
    let second = leader.get_snapshot_builder().await.build_snapshot().await?;

    // Member 2 installed the first, then crashed installing the second after the import, before
    // its sidecar named it (a sidecar that cannot be written stops the install at that point).
    let dir = tempfile::TempDir::new()?;
    let member_dir = dir.path().join("node-2");
    {
        let mut member = open(&member_dir)?;
        member.install_snapshot(&first.meta, first.snapshot).await?;
        let blocker = member_dir.join("snapshot/current.meta.tmp");
        std::fs::create_dir_all(&blocker)?;
        assert!(member
            .install_snapshot(&second.meta, second.snapshot)
            .await
            .is_err());
        std::fs::remove_dir(&blocker)?;
    }

    let cluster = Cluster::reopen_in(dir.path(), &[2], fast_config()).await?;
    let node = cluster.node(2);
    let covered = second.meta.last_log_id;
    node.raft()
        .wait(Some(crate::fixture::DEADLINE))
        .metrics(
            |m| m.running_state.is_ok() && m.last_applied == covered && m.snapshot == covered,
            "member 2 running, with a snapshot covering its keyspace",
        )
        .await?;
    assert_eq!(cluster.get(2, "k10")?, Some(b"v10".to_vec()));
    cluster.shutdown().await
}
