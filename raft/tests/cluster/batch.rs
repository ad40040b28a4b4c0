//! Group commit: concurrent writes share Raft entries, yet each keeps its own revision and its
//! own outcome, on every member and after a replay of the log.

use futures::future::join_all;
use keel_store::{Applied, Command, CommandResponse, Error as StoreError, PutRequest};

use crate::fixture::{fast_config, Cluster};

const WRITERS: usize = 64;

/// Writer `i`'s put of the one shared key, asking for the value it replaced; every tenth names
/// a lease that does not exist.
fn shared_put(i: usize) -> Command {
    Command::Put(PutRequest {
        key: b"shared".to_vec(),
        value: format!("{i}").into_bytes(),
        prev_kv: true,
        lease: if i % 10 == 7 { 999 } else { 0 },
        ..PutRequest::default()
    })
}

/// The writes that succeeded, by revision: each must have replaced exactly the one before it.
fn check_chain(results: &[Applied]) -> anyhow::Result<()> {
    let mut succeeded: Vec<(i64, Option<i64>, Vec<u8>)> = Vec::new();
    for (i, applied) in results.iter().enumerate() {
        match &applied.result {
            Err(StoreError::LeaseNotFound { id: 999 }) => {
                assert_eq!(i % 10, 7, "writer {i} failed: {applied:?}")
            }
            Ok(CommandResponse::Put(put)) => {
                assert_ne!(i % 10, 7, "writer {i} with an unknown lease succeeded");
                let prev = put.prev_kv.as_ref();
                succeeded.push((
                    applied.revision,
                    prev.map(|kv| kv.mod_revision),
                    prev.map(|kv| kv.value.clone()).unwrap_or_default(),
                ));
            }
            other => anyhow::bail!("writer {i}: unexpected {other:?}"),
        }
    }
    succeeded.sort();
    let revisions: Vec<i64> = succeeded.iter().map(|(r, _, _)| *r).collect();
    let first = revisions[0];
    assert_eq!(
        revisions,
        (first..first + revisions.len() as i64).collect::<Vec<_>>(),
        "every successful write has its own revision, none skipped"
    );
    for pair in succeeded.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert_eq!(
            after.1,
            Some(before.0),
            "the write at {} saw the one at {} as its previous value",
            after.0,
            before.0
        );
        // The value written at `before.0` is whichever writer got that revision.
        let writer = results
            .iter()
            .position(|a| a.revision == before.0 && a.result.is_ok())
            .expect("a writer at that revision");
        assert_eq!(after.2, format!("{writer}").into_bytes());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_entries_and_keep_their_own_outcomes() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, fast_config()).await?;
    let leader = cluster.leader().await?;
    let node = cluster.node(leader);
    let entries_before = node.status().last_log_index;

    let results: Vec<Applied> = join_all((0..WRITERS).map(|i| node.write(shared_put(i))))
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    check_chain(&results)?;

    let entries = node.status().last_log_index - entries_before;
    assert!(
        entries <= (WRITERS / 4) as u64,
        "{WRITERS} concurrent writes took {entries} entries"
    );
    // Followers applied the same batches to the same keyspace.
    cluster.assert_converged(&cluster.ids()).await?;
    for id in cluster.ids() {
        let history = cluster.node(id).store().history(b"shared")?;
        let failed = (0..WRITERS).filter(|i| i % 10 == 7).count();
        assert_eq!(history.len(), WRITERS - failed, "member {id}");
    }
    cluster.shutdown().await
}

/// A member whose keyspace is lost rebuilds it from the log, batch entries and all (the entries
/// are still in the log: no snapshot was taken), and ends with the same history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_entries_replay_from_the_log() -> anyhow::Result<()> {
    let dir = tempfile::TempDir::new()?;
    let mut cluster = Cluster::start_in(dir.path(), 3, fast_config()).await?;
    let leader = cluster.leader().await?;
    let results: Vec<Applied> = {
        let node = cluster.node(leader);
        join_all((0..WRITERS).map(|i| node.write(shared_put(i))))
            .await
            .into_iter()
            .collect::<Result<_, _>>()?
    };
    check_chain(&results)?;
    cluster.assert_converged(&cluster.ids()).await?;
    let follower = *cluster
        .ids()
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let history = cluster.node(leader).store().history(b"shared")?;

    cluster.stop(follower).await?;
    std::fs::remove_dir_all(dir.path().join(format!("node-{follower}")).join("kv"))?;
    cluster.open(follower).await?;
    cluster.assert_converged(&cluster.ids()).await?;
    assert_eq!(cluster.node(follower).store().history(b"shared")?, history);
    cluster.shutdown().await
}
