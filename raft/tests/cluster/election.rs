use std::time::{Duration, Instant};

use keel_raft::RaftConfig;

use crate::fixture::{fast_config, put, Cluster};

async fn elects_and_replicates(size: u64) -> anyhow::Result<()> {
    let cluster = Cluster::start(size, fast_config()).await?;
    let leader = cluster.leader().await?;
    for id in cluster.ids() {
        assert!(cluster.node(id).is_initialized().await?, "member {id}");
        let again = cluster.node(id).initialize(Default::default()).await;
        assert!(
            matches!(again, Err(keel_raft::Error::AlreadyInitialized)),
            "member {id}: {again:?}"
        );
    }
    for i in 0..20 {
        cluster
            .write(put(&format!("k{i}"), &format!("v{i}")))
            .await?;
    }
    // A write on a follower is forwarded to the leader, and a barrier on it passes too.
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.node(follower).write(put("x", "y")).await?;
    assert_eq!(cluster.get(follower, "x")?.as_deref(), Some(&b"y"[..]));
    cluster.node(follower).linearizable_barrier().await?;
    cluster.node(leader).linearizable_barrier().await?;
    cluster.assert_converged(&cluster.ids()).await?;
    for id in cluster.ids() {
        assert_eq!(
            cluster.get(id, "k19")?.as_deref(),
            Some(&b"v19"[..]),
            "member {id}"
        );
    }
    cluster.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_elect_a_leader_and_replicate() -> anyhow::Result<()> {
    elects_and_replicates(3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_elect_a_leader_and_replicate() -> anyhow::Result<()> {
    elects_and_replicates(5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_transfers_to_a_caught_up_voter_only() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, fast_config()).await?;
    let leader = cluster.leader().await?;
    for i in 0..10 {
        cluster.write(put(&format!("t{i}"), "v")).await?;
    }
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let refused = cluster.node(follower).transfer_leadership(leader).await;
    assert!(
        matches!(refused, Err(keel_raft::Error::ForwardToLeader { .. })),
        "only the leader transfers: {refused:?}"
    );
    let stranger = cluster.node(leader).transfer_leadership(99).await;
    assert!(
        matches!(stranger, Err(keel_raft::Error::BadTransferee(99))),
        "{stranger:?}"
    );

    cluster.node(leader).transfer_leadership(follower).await?;
    assert_eq!(cluster.node(leader).current_leader(), Some(follower));
    assert_eq!(cluster.leader().await?, follower);
    cluster.write(put("after", "transfer")).await?;
    cluster.assert_converged(&cluster.ids()).await?;
    cluster.shutdown().await
}

/// etcd hands leadership over at once (the transferee campaigns past the leader lease); a
/// transfer here must not sit out election timeouts either, even right after another one,
/// while every voter's lease on the last leader is fresh, or `move-leader` outlasts etcdctl's
/// 5 s command timeout. Default timings: elections take 1–2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_transfers_each_finish_within_an_election_timeout() -> anyhow::Result<()> {
    let config = RaftConfig::default();
    let election_timeout = Duration::from_millis(config.election_timeout_min_ms);
    let cluster = Cluster::start(3, config).await?;
    for _ in 0..4 {
        let leader = cluster.leader().await?;
        let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
        let start = Instant::now();
        cluster.node(leader).transfer_leadership(follower).await?;
        let took = start.elapsed();
        assert!(
            took < election_timeout,
            "{leader} -> {follower} took {took:?}, more than an election timeout"
        );
    }
    cluster.write(put("after", "transfers")).await?;
    cluster.assert_converged(&cluster.ids()).await?;
    cluster.shutdown().await
}
