use std::collections::BTreeSet;

use crate::fixture::{eventually, fast_config, node_addr, put, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_to_five_to_three() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(3, fast_config()).await?;
    for i in 0..10 {
        cluster.write(put(&format!("a{i}"), "1")).await?;
    }
    let leader = cluster.leader().await?;

    // Two new members join as learners, catch up, and are promoted.
    for id in [4, 5] {
        cluster.open(id).await?;
        cluster.node(leader).add_learner(id, node_addr(id)).await?;
    }
    cluster.assert_converged(&cluster.ids()).await?;
    let five: BTreeSet<u64> = (1..=5).collect();
    cluster.node(leader).change_membership(five.clone()).await?;
    let voters: BTreeSet<u64> = cluster
        .node(leader)
        .metrics()
        .borrow()
        .membership_config
        .voter_ids()
        .collect();
    assert_eq!(voters, five);
    for i in 0..10 {
        cluster.write(put(&format!("b{i}"), "2")).await?;
    }
    cluster.assert_converged(&cluster.ids()).await?;

    // Two members other than the leader are removed: one original, one newcomer.
    let removed: Vec<u64> = [1, 2, 3]
        .into_iter()
        .filter(|id| *id != leader)
        .take(1)
        .chain([5])
        .collect();
    let three: BTreeSet<u64> = five
        .iter()
        .copied()
        .filter(|id| !removed.contains(id))
        .collect();
    cluster
        .node(leader)
        .change_membership(three.clone())
        .await?;
    for id in &removed {
        cluster.stop(*id).await?;
    }
    for i in 0..10 {
        cluster.write(put(&format!("c{i}"), "3")).await?;
    }
    let remaining: Vec<u64> = three.iter().copied().collect();
    cluster.assert_converged(&remaining).await?;
    eventually("every member to see the 3-voter membership", || async {
        remaining
            .iter()
            .all(|id| {
                let voters: BTreeSet<u64> = cluster
                    .node(*id)
                    .metrics()
                    .borrow()
                    .membership_config
                    .voter_ids()
                    .collect();
                voters == three
                    && cluster
                        .node(*id)
                        .metrics()
                        .borrow()
                        .membership_config
                        .membership()
                        .learner_ids()
                        .count()
                        == 0
            })
            .then_some(())
    })
    .await?;
    cluster.shutdown().await
}

/// The helpers the server's `member` commands use: a learner is listed as one, writes through
/// it are forwarded, promotion makes it a voter, and removal (of a voter, or of a learner)
/// takes it out of every member's list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_is_listed_promoted_and_removed() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(3, fast_config()).await?;
    let leader = cluster.leader().await?;
    for id in [4, 5] {
        cluster.open(id).await?;
        cluster.node(leader).add_learner(id, node_addr(id)).await?;
    }
    let listed = |cluster: &Cluster, of: u64, id: u64| {
        cluster
            .node(of)
            .members()
            .into_iter()
            .find(|m| m.id == id)
            .map(|m| (m.node, m.is_learner))
    };
    assert_eq!(listed(&cluster, leader, 4), Some((node_addr(4), true)));
    assert_eq!(listed(&cluster, leader, 1), Some((node_addr(1), false)));

    // A learner's write goes to the leader, and the learner sees it at once.
    cluster.node(4).write(put("from-learner", "v")).await?;
    assert_eq!(cluster.get(4, "from-learner")?.as_deref(), Some(&b"v"[..]));

    let promoted = cluster.node(leader).promote_learner(1).await;
    assert!(
        matches!(promoted, Err(keel_raft::Error::Membership(_))),
        "promoted a voter: {promoted:?}"
    );
    cluster.node(leader).promote_learner(4).await?;
    assert_eq!(listed(&cluster, leader, 4), Some((node_addr(4), false)));
    assert_eq!(listed(&cluster, leader, 5), Some((node_addr(5), true)));
    let status = cluster.node(leader).status();
    assert_eq!(status.leader, Some(leader));
    assert_eq!(status.members.len(), 5);
    assert!(status.term >= 1 && status.applied_index >= 1, "{status:?}");
    assert!(status.last_log_index >= status.applied_index, "{status:?}");

    for id in [4, 5] {
        cluster.node(leader).remove_node(id).await?;
        assert_eq!(listed(&cluster, leader, id), None, "{id} still listed");
        cluster.stop(id).await?;
    }
    let missing = cluster.node(leader).remove_node(9).await;
    assert!(
        matches!(missing, Err(keel_raft::Error::Membership(_))),
        "{missing:?}"
    );
    cluster.write(put("after", "removal")).await?;
    let remaining = cluster.ids();
    cluster.assert_converged(&remaining).await?;
    eventually("every member to list three voters", || async {
        remaining
            .iter()
            .all(|id| {
                let members = cluster.node(*id).members();
                members.len() == 3 && members.iter().all(|m| !m.is_learner)
            })
            .then_some(())
    })
    .await?;
    cluster.shutdown().await
}
