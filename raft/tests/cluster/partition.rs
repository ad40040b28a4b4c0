use std::time::Duration;

use crate::fixture::{fast_config, put, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_is_replaced_and_writes_continue() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, fast_config()).await?;
    cluster.write(put("before", "1")).await?;
    let old = cluster.leader().await?;
    cluster.router.isolate(old);
    let rest: Vec<u64> = cluster.ids().into_iter().filter(|id| *id != old).collect();
    let new = cluster.leader_among(&rest).await?;
    assert_ne!(new, old);
    for i in 0..10 {
        cluster
            .write_via(new, put(&format!("during{i}"), "2"))
            .await?;
    }
    cluster.assert_converged(&rest).await?;
    cluster.router.heal();
    cluster.assert_converged(&cluster.ids()).await?;
    assert_eq!(cluster.get(old, "during9")?.as_deref(), Some(&b"2"[..]));
    cluster.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_cannot_commit_majority_continues_and_heal_converges() -> anyhow::Result<()> {
    let cluster = Cluster::start(5, fast_config()).await?;
    cluster.write(put("before", "1")).await?;
    let old = cluster.leader().await?;
    let ids = cluster.ids();
    let other = *ids.iter().find(|id| **id != old).unwrap();
    let minority = [old, other];
    let majority: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !minority.contains(id))
        .collect();
    cluster.router.partition(&[&minority, &majority]);

    // The old leader cannot commit: the write neither succeeds nor is applied anywhere.
    let lost = tokio::time::timeout(
        Duration::from_secs(2),
        cluster.node(old).write(put("minority", "lost")),
    )
    .await;
    assert!(
        !matches!(lost, Ok(Ok(_))),
        "the minority committed a write: {lost:?}"
    );

    let new = cluster.leader_among(&majority).await?;
    for i in 0..10 {
        cluster
            .write_via(new, put(&format!("majority{i}"), "ok"))
            .await?;
    }
    cluster.assert_converged(&majority).await?;
    for id in minority {
        assert_eq!(
            cluster.get(id, "majority0")?,
            None,
            "member {id} saw a write across the partition"
        );
    }

    cluster.router.heal();
    cluster.write_via(new, put("after", "1")).await?;
    cluster.assert_converged(&ids).await?;
    for id in &ids {
        assert_eq!(
            cluster.get(*id, "minority")?,
            None,
            "member {id} applied an uncommitted write"
        );
        assert_eq!(
            cluster.get(*id, "majority9")?.as_deref(),
            Some(&b"ok"[..]),
            "member {id}"
        );
    }
    cluster.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_through_drops_and_delay() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, fast_config()).await?;
    cluster.router.set_drop_rate(0.2);
    cluster.router.set_delay(Duration::from_millis(5));
    for i in 0..30 {
        cluster.write(put(&format!("k{i}"), "v")).await?;
    }
    cluster.router.heal();
    cluster.assert_converged(&cluster.ids()).await?;
    cluster.shutdown().await
}
