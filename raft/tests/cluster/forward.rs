//! Writes and linearizable reads on followers, forwarded to the leader over the router.

use std::time::{Duration, Instant};

use keel_raft::{Error, RaftConfig};

use crate::fixture::{fast_config, put, Cluster};

/// Longer than any bounded failure of `write` under `fast_config`: four attempts, each waiting at
/// most two election timeouts for a leader.
const BOUND: Duration = Duration::from_secs(10);

async fn follower_of(cluster: &Cluster) -> anyhow::Result<(u64, u64)> {
    let leader = cluster.leader().await?;
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    Ok((leader, follower))
}

/// Slow heartbeats, so a message to a member can be delayed by [`LAG`] without openraft timing
/// it out (it waits one heartbeat interval for an append-entries answer).
fn lagging_config() -> RaftConfig {
    RaftConfig {
        heartbeat_interval_ms: 250,
        election_timeout_min_ms: 1500,
        election_timeout_max_ms: 3000,
        ..fast_config()
    }
}

/// How late every message reaches the lagging member: it learns of an entry [`LAG`] after the
/// leader sent it, and that it is committed [`LAG`] after that.
const LAG: Duration = Duration::from_millis(150);

/// The follower applies everything well after the leader: `write` on it must wait for its own
/// state machine, or the read right after misses the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_write_is_forwarded_and_read_back_on_the_follower() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, lagging_config()).await?;
    let (leader, follower) = follower_of(&cluster).await?;
    cluster.router.delay_to(follower, LAG);
    for i in 0..5 {
        let key = format!("f{i}");
        let applied = cluster.node(follower).write(put(&key, "v")).await?;
        assert!(applied.result.is_ok(), "{applied:?}");
        assert_eq!(
            cluster.get(follower, &key)?.as_deref(),
            Some(&b"v"[..]),
            "member {follower} does not see its own write of {key}"
        );
    }
    // Committed once: the leader's revision moved by exactly the five puts.
    let before = cluster.node(leader).store().hash_kv(0)?.revision;
    cluster.node(follower).write(put("last", "v")).await?;
    assert_eq!(
        cluster.node(leader).store().hash_kv(0)?.revision,
        before + 1
    );
    cluster.router.heal();
    cluster.assert_converged(&cluster.ids()).await?;
    for id in cluster.ids() {
        assert_eq!(
            cluster.get(id, "f4")?.as_deref(),
            Some(&b"v"[..]),
            "member {id}"
        );
    }
    cluster.shutdown().await
}

/// A write made through the leader is applied on the follower [`LAG`] or two later; a barrier
/// on the follower waits for it, so the local read after it sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_barrier_waits_until_it_has_applied_the_read_index() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, lagging_config()).await?;
    let (leader, follower) = follower_of(&cluster).await?;
    cluster.router.delay_to(follower, LAG);
    for i in 0..3 {
        let key = format!("r{i}");
        cluster.write_via(leader, put(&key, "v")).await?;
        assert_eq!(
            cluster.get(follower, &key)?,
            None,
            "member {follower} is not lagging; the test shows nothing"
        );
        let read = cluster.node(follower).linearizable_barrier().await?;
        let applied = cluster.node(follower).status().applied_index;
        assert!(
            read.is_some_and(|r| r.index <= applied),
            "read index {read:?}, applied {applied}"
        );
        assert_eq!(
            cluster.get(follower, &key)?.as_deref(),
            Some(&b"v"[..]),
            "a linearizable read on {follower} missed {key}"
        );
    }
    cluster.shutdown().await
}

/// Every member cut off from every other: a follower's write fails as unavailable within a
/// bound, and nothing is applied. Once the follower can reach a quorum again, it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_write_without_a_leader_fails_promptly_then_succeeds() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, fast_config()).await?;
    let (leader, follower) = follower_of(&cluster).await?;
    let other = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != follower)
        .unwrap();
    cluster
        .router
        .partition(&[&[leader], &[follower], &[other]]);
    let start = Instant::now();
    let lost = tokio::time::timeout(BOUND, cluster.node(follower).write(put("lost", "v")))
        .await
        .map_err(|_| anyhow::anyhow!("write without a leader still pending after {BOUND:?}"))?;
    assert!(matches!(lost, Err(Error::Unavailable(_))), "{lost:?}");
    tracing::info!("failed in {:?}: {lost:?}", start.elapsed());
    let read = tokio::time::timeout(BOUND, cluster.node(follower).linearizable_barrier())
        .await
        .map_err(|_| anyhow::anyhow!("barrier without a leader still pending after {BOUND:?}"))?;
    assert!(matches!(read, Err(Error::Unavailable(_))), "{read:?}");

    // The old leader stays cut off; the two others elect a new one.
    cluster.router.partition(&[&[leader], &[follower, other]]);
    let new = cluster.leader_among(&[follower, other]).await?;
    assert_ne!(new, leader);
    let via = if new == follower { other } else { follower };
    cluster.node(via).write(put("found", "v")).await?;
    assert_eq!(cluster.get(via, "found")?.as_deref(), Some(&b"v"[..]));
    cluster.router.heal();
    cluster.assert_converged(&cluster.ids()).await?;
    for id in cluster.ids() {
        assert_eq!(cluster.get(id, "lost")?, None, "member {id}");
    }
    cluster.shutdown().await
}

/// Five members, `request_timeout_ms` as given, partitioned into the leader with one follower
/// and the other three: the cluster, that follower and the majority.
async fn minority_with_the_leader(
    request_timeout_ms: u64,
) -> anyhow::Result<(Cluster, u64, Vec<u64>)> {
    let config = RaftConfig {
        request_timeout_ms,
        ..fast_config()
    };
    let cluster = Cluster::start(5, config).await?;
    let (leader, follower) = follower_of(&cluster).await?;
    let majority: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader && *id != follower)
        .collect();
    cluster.router.partition(&[&[leader, follower], &majority]);
    Ok((cluster, follower, majority))
}

/// The follower reaches its leader, but the leader is on the minority side: the forwarded write
/// is taken and never answered, which is indeterminate, not a failure the caller may retry
/// blindly. A linearizable read there is unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_forwarded_to_a_minority_leader_is_indeterminate() -> anyhow::Result<()> {
    let (cluster, follower, majority) = minority_with_the_leader(1000).await?;
    let answer = tokio::time::timeout(BOUND, cluster.node(follower).write(put("maybe", "v")))
        .await
        .map_err(|_| anyhow::anyhow!("forwarded write still pending after {BOUND:?}"))?;
    assert!(matches!(answer, Err(Error::Indeterminate(_))), "{answer:?}");
    // Nor can that leader confirm a read index.
    let read = tokio::time::timeout(BOUND, cluster.node(follower).linearizable_barrier())
        .await
        .map_err(|_| anyhow::anyhow!("barrier still pending after {BOUND:?}"))?;
    assert!(matches!(read, Err(Error::Unavailable(_))), "{read:?}");

    // The majority moves on before the partition heals. (Were it healed first, a majority
    // member whose election timer ran out during the partition could still be elected with
    // a shorter log, and would rightly truncate a write the old leader took after the heal.)
    cluster.leader_among(&majority).await?;
    cluster.router.heal();
    cluster.leader().await?;
    cluster.write_via(follower, put("after", "v")).await?;
    cluster.assert_converged(&cluster.ids()).await?;
    cluster.shutdown().await
}

/// A write the leader took, whose leadership then ends before the entry commits, is
/// indeterminate and is not sent again: openraft answers ForwardToLeader when such an entry is
/// truncated, but a copy of it on another member may still be committed by a later leader, so
/// another attempt could apply it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_pending_when_leadership_ends_is_indeterminate_not_retried() -> anyhow::Result<()> {
    let (cluster, follower, majority) = minority_with_the_leader(20_000).await?;
    let pending = cluster.node(follower).write(put("maybe", "v"));
    let elsewhere = async {
        // The majority moves on, then the old leader hears of it and truncates its entry.
        let new_leader = cluster.leader_among(&majority).await?;
        cluster.write_via(new_leader, put("after", "v")).await?;
        cluster.router.heal();
        anyhow::Ok(())
    };
    let (answer, moved_on) =
        tokio::time::timeout(BOUND, async { tokio::join!(pending, elsewhere) })
            .await
            .map_err(|_| anyhow::anyhow!("still pending after {BOUND:?}"))?;
    moved_on?;
    assert!(matches!(answer, Err(Error::Indeterminate(_))), "{answer:?}");
    cluster.leader().await?;
    cluster.assert_converged(&cluster.ids()).await?;
    cluster.shutdown().await
}
