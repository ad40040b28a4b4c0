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
