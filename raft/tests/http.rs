//! The peer network over real loopback HTTP: reqwest client, warp server, bincode bodies.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use keel_raft::{
    peer_routes, Error, HttpNetworkFactory, KeelNode, LeaderLink, LinkError, RaftConfig, RaftNode,
};
use keel_store::{Command, PutRequest, RangeRequest};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use warp::Filter;

const DEADLINE: Duration = Duration::from_secs(20);

struct Member {
    node: RaftNode,
    addr: SocketAddr,
    stop_server: Option<oneshot::Sender<()>>,
}

fn serve(node: &RaftNode, listener: TcpListener) -> oneshot::Sender<()> {
    serve_counting_chunks(node, listener, Arc::default())
}

/// [`serve`], counting the install-snapshot requests (snapshot chunks) the member receives.
fn serve_counting_chunks(
    node: &RaftNode,
    listener: TcpListener,
    chunks: Arc<AtomicUsize>,
) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let counted = warp::log::custom(move |info| {
        if info.path() == "/raft/install-snapshot" {
            chunks.fetch_add(1, Ordering::Relaxed);
        }
    });
    let server = warp::serve(peer_routes(node.peer_endpoints()).with(counted))
        .incoming(listener)
        .graceful(async move {
            let _ = stopped.await;
        });
    tokio::spawn(server.run());
    stop
}

fn put(key: &str) -> Command {
    Command::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: b"v".to_vec(),
        ..Default::default()
    })
}

async fn write(members: &BTreeMap<u64, Member>, command: Command) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut via = *members.keys().next().unwrap();
    loop {
        match tokio::time::timeout(
            Duration::from_secs(3),
            members[&via].node.write(command.clone()),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(Error::ForwardToLeader {
                leader_id: Some(leader),
                ..
            })) => via = leader,
            Ok(Err(Error::ForwardToLeader { .. } | Error::Unavailable(_))) | Err(_) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
        if start.elapsed() > DEADLINE {
            bail!("write not committed in {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn converged(members: &BTreeMap<u64, Member>, ids: &[u64]) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let applied: BTreeSet<_> = ids
            .iter()
            .map(|id| members[id].node.metrics().borrow().last_applied)
            .collect();
        let logs: BTreeSet<_> = ids
            .iter()
            .map(|id| members[id].node.metrics().borrow().last_log_index)
            .collect();
        if applied.len() == 1
            && logs.len() == 1
            && logs.first().copied().flatten() == applied.first().unwrap().map(|l| l.index)
        {
            let hashes: BTreeSet<_> = ids
                .iter()
                .map(|id| {
                    members[id]
                        .node
                        .store()
                        .hash_kv(0)
                        .map(|h| (h.hash, h.revision))
                })
                .collect::<Result<_, _>>()?;
            anyhow::ensure!(
                hashes.len() == 1,
                "same log applied, different keyspaces: {hashes:?}"
            );
            return Ok(());
        }
        if start.elapsed() > DEADLINE {
            bail!("members {ids:?} did not converge: applied {applied:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Members 1..=3 on loopback listeners, each serving [`peer_routes`], initialized by member 1.
async fn start(dir: &std::path::Path, config: RaftConfig) -> anyhow::Result<BTreeMap<u64, Member>> {
    let client = HttpNetworkFactory::default_client()?;
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let network = HttpNetworkFactory::new(id, client.clone());
        let node = RaftNode::open(id, dir.join(id.to_string()), config.clone(), network).await?;
        let stop_server = Some(serve(&node, listener));
        members.insert(
            id,
            Member {
                node,
                addr,
                stop_server,
            },
        );
    }
    let cluster: BTreeMap<u64, KeelNode> = members
        .iter()
        .map(|(id, m)| (*id, KeelNode::new(format!("http://{}", m.addr), "")))
        .collect();
    members[&1].node.initialize(cluster).await?;
    Ok(members)
}

async fn shutdown(members: BTreeMap<u64, Member>) -> anyhow::Result<()> {
    for mut member in members.into_values() {
        member.node.shutdown().await?;
        if let Some(stop) = member.stop_server.take() {
            let _ = stop.send(());
        }
    }
    Ok(())
}

/// The leader every member agrees on.
async fn leader(members: &BTreeMap<u64, Member>) -> anyhow::Result<u64> {
    let start = Instant::now();
    loop {
        let leaders: BTreeSet<_> = members.values().map(|m| m.node.current_leader()).collect();
        if let [Some(leader)] = leaders.into_iter().collect::<Vec<_>>()[..] {
            return Ok(leader);
        }
        if start.elapsed() > DEADLINE {
            bail!("no leader within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_config() -> RaftConfig {
    RaftConfig {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        ..RaftConfig::default()
    }
}

fn get(member: &Member, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let response = member.node.store().range(&RangeRequest {
        key: key.as_bytes().to_vec(),
        ..Default::default()
    })?;
    Ok(response.kvs.into_iter().next().map(|kv| kv.value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_replicate_and_snapshot_over_http() -> anyhow::Result<()> {
    let dir = tempfile::TempDir::new()?;
    let config = RaftConfig {
        snapshot_logs_since_last: 10,
        logs_kept_after_snapshot: 0,
        ..fast_config()
    };
    let mut members = start(dir.path(), config).await?;
    for i in 0..20 {
        write(&members, put(&format!("a{i}"))).await?;
    }
    converged(&members, &[1, 2, 3]).await?;

    // A follower's server goes away: the other two keep committing, and the leader purges
    // its log past what the follower has.
    let leader = members[&1].node.current_leader().context("a leader")?;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let _ = members
        .get_mut(&follower)
        .unwrap()
        .stop_server
        .take()
        .unwrap()
        .send(());
    for i in 0..50 {
        write(&members, put(&format!("b{i}"))).await?;
    }
    let follower_last = await_purged_past(&members, leader, follower).await?;

    // Back on the same address, the follower catches up through /raft/install-snapshot.
    let listener = TcpListener::bind(members[&follower].addr).await?;
    let stop = serve(&members[&follower].node, listener);
    members.get_mut(&follower).unwrap().stop_server = Some(stop);
    converged(&members, &[1, 2, 3]).await?;
    let snapshot = members[&follower].node.metrics().borrow().snapshot;
    assert!(
        snapshot.is_some_and(|s| s.index > follower_last),
        "no snapshot installed: {snapshot:?}"
    );

    shutdown(members).await
}

/// Waits until the leader has purged its log past `follower`'s last entry, so only a snapshot
/// can catch it up.
async fn await_purged_past(
    members: &BTreeMap<u64, Member>,
    leader: u64,
    follower: u64,
) -> anyhow::Result<u64> {
    let follower_last = members[&follower]
        .node
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0);
    let start = Instant::now();
    loop {
        let purged = members[&leader]
            .node
            .metrics()
            .borrow()
            .purged
            .map(|p| p.index)
            .unwrap_or(0);
        if purged > follower_last {
            return Ok(follower_last);
        }
        if start.elapsed() > DEADLINE {
            bail!("leader purged only up to {purged}, follower has {follower_last}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A snapshot many times the chunk size reaches a lagging follower as many install-snapshot
/// requests, and the follower ends with the leader's keyspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_snapshot_goes_over_http_in_chunks() -> anyhow::Result<()> {
    const CHUNK: u64 = 64 << 10;
    const VALUE: usize = 64 << 10;
    const VALUES: usize = 40;
    let dir = tempfile::TempDir::new()?;
    let config = RaftConfig {
        snapshot_logs_since_last: 10,
        logs_kept_after_snapshot: 0,
        snapshot_chunk_bytes: CHUNK,
        ..fast_config()
    };
    let mut members = start(dir.path(), config).await?;
    write(&members, put("first")).await?;
    converged(&members, &[1, 2, 3]).await?;

    let leader = leader(&members).await?;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let _ = members
        .get_mut(&follower)
        .unwrap()
        .stop_server
        .take()
        .unwrap()
        .send(());
    // About 2.5 MiB of values, none alike.
    for i in 0..VALUES {
        let value: Vec<u8> = (0..VALUE).map(|j| (i * 31 + j * 7) as u8).collect();
        let command = Command::Put(PutRequest {
            key: format!("big{i:02}").into_bytes(),
            value,
            ..Default::default()
        });
        write(&members, command).await?;
    }
    let follower_last = await_purged_past(&members, leader, follower).await?;

    let chunks = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind(members[&follower].addr).await?;
    let stop = serve_counting_chunks(&members[&follower].node, listener, chunks.clone());
    members.get_mut(&follower).unwrap().stop_server = Some(stop);
    converged(&members, &[1, 2, 3]).await?;

    let installed = members[&follower].node.metrics().borrow().snapshot;
    assert!(
        installed.is_some_and(|s| s.index > follower_last),
        "no snapshot installed: {installed:?}"
    );
    let exported = VALUES * VALUE;
    let received = chunks.load(Ordering::Relaxed);
    assert!(
        received >= exported / CHUNK as usize,
        "{exported} bytes of values arrived in {received} chunks of at most {CHUNK}"
    );
    assert_eq!(
        members[&follower].node.store().hash_kv(0)?,
        members[&leader].node.store().hash_kv(0)?
    );
    let value = get(&members[&follower], "big39")?.context("big39 on the follower")?;
    assert_eq!(value.len(), VALUE);
    shutdown(members).await
}

/// etcd serves writes and linearizable reads on every member: so does a follower here, through
/// `/raft/forward` and `/raft/read-index`, and it answers only once it has applied the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_serves_writes_and_linearizable_reads_over_http() -> anyhow::Result<()> {
    let dir = tempfile::TempDir::new()?;
    let members = start(dir.path(), fast_config()).await?;
    let leader = leader(&members).await?;
    let followers: Vec<u64> = members.keys().copied().filter(|id| *id != leader).collect();
    for (i, follower) in followers.iter().enumerate() {
        let key = format!("via-{follower}");
        let applied = members[follower].node.write(put(&key)).await?;
        assert!(applied.result.is_ok(), "{applied:?}");
        assert_eq!(
            get(&members[follower], &key)?.as_deref(),
            Some(&b"v"[..]),
            "member {follower} does not see its own write"
        );
        // A write through the leader, then a linearizable read on the other follower.
        let other = followers[1 - i];
        let key = format!("then-read-on-{other}");
        members[&leader].node.write(put(&key)).await?;
        let read = members[&other].node.linearizable_barrier().await?;
        assert!(read.is_some(), "no read index");
        assert_eq!(
            get(&members[&other], &key)?.as_deref(),
            Some(&b"v"[..]),
            "a linearizable read on {other} missed {key}"
        );
    }
    converged(&members, &[1, 2, 3]).await?;
    for (id, member) in &members {
        for follower in &followers {
            let key = format!("via-{follower}");
            assert_eq!(
                get(member, &key)?.as_deref(),
                Some(&b"v"[..]),
                "member {id}"
            );
        }
    }
    shutdown(members).await
}

/// Runs 64 overlapping linearizable reads on `reader`, each after a write acknowledged by the
/// leader, and checks that each saw its write; returns how far `rounds` (a counter of
/// `reader`'s) moved meanwhile.
async fn overlapping_reads(
    members: &Arc<BTreeMap<u64, Member>>,
    leader: u64,
    reader: u64,
    rounds: fn(&Member) -> u64,
) -> anyhow::Result<u64> {
    let before = rounds(&members[&reader]);
    let mut reads = Vec::new();
    for i in 0..OVERLAPPING_READS {
        let members = members.clone();
        reads.push(tokio::spawn(async move {
            let key = format!("read-{i}");
            // Acknowledged by the leader: a follower has not necessarily applied it yet.
            members[&leader].node.write(put(&key)).await?;
            members[&reader].node.linearizable_barrier().await?;
            let value = get(&members[&reader], &key)?;
            anyhow::ensure!(value.as_deref() == Some(&b"v"[..]), "read {i} missed {key}");
            anyhow::Ok(())
        }));
    }
    for read in reads {
        read.await??;
    }
    Ok(rounds(&members[&reader]) - before)
}

const OVERLAPPING_READS: u64 = 64;

/// Concurrent linearizable reads on the leader share read-index rounds, and each still sees
/// every write acknowledged before it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_linearizable_reads_share_rounds_and_see_acknowledged_writes(
) -> anyhow::Result<()> {
    let dir = tempfile::TempDir::new()?;
    let members = Arc::new(start(dir.path(), fast_config()).await?);
    let leader = leader(&members).await?;
    let rounds = overlapping_reads(&members, leader, leader, |member| {
        member.node.read_index().rounds()
    })
    .await?;
    assert!(
        (1..OVERLAPPING_READS).contains(&rounds),
        "{OVERLAPPING_READS} overlapping reads took {rounds} rounds"
    );
    let members = Arc::try_unwrap(members).map_err(|_| anyhow::anyhow!("members still shared"))?;
    shutdown(members).await
}

/// Concurrent linearizable reads on a follower share their read-index requests to the
/// leader, and each still sees every write acknowledged (anywhere) before it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_linearizable_reads_on_a_follower_share_requests_to_the_leader(
) -> anyhow::Result<()> {
    let dir = tempfile::TempDir::new()?;
    let members = Arc::new(start(dir.path(), fast_config()).await?);
    let leader = leader(&members).await?;
    let follower = *members
        .keys()
        .find(|id| **id != leader)
        .expect("a follower");
    let rounds = overlapping_reads(&members, leader, follower, |member| {
        member.node.forwarded_read_rounds()
    })
    .await?;
    assert!(
        (1..OVERLAPPING_READS).contains(&rounds),
        "{OVERLAPPING_READS} overlapping reads sent {rounds} requests to the leader"
    );
    let members = Arc::try_unwrap(members).map_err(|_| anyhow::anyhow!("members still shared"))?;
    shutdown(members).await
}

/// What a forwarding member may retry: a refused connection never reached the leader; a
/// request that was sent and not answered may have been run.
#[tokio::test]
async fn forward_link_tells_not_sent_from_no_answer() -> anyhow::Result<()> {
    let network = HttpNetworkFactory::new(1, HttpNetworkFactory::default_client()?);
    let command = put("k");
    let timeout = Duration::from_millis(300);

    let closed = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let node = KeelNode::new(format!("http://{closed}"), "");
    let refused = network
        .forward_writes(2, &node, vec![command.clone()], timeout)
        .await;
    assert!(matches!(refused, Err(LinkError::NotSent(_))), "{refused:?}");

    // Accepts and reads, never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await?;
    let node = KeelNode::new(format!("http://{}", silent.local_addr()?), "");
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let unanswered = network
        .forward_writes(2, &node, vec![command], timeout)
        .await;
    assert!(
        matches!(unanswered, Err(LinkError::NoAnswer(_))),
        "{unanswered:?}"
    );
    let read = network.read_index(2, &node, timeout).await;
    assert!(matches!(read, Err(LinkError::NoAnswer(_))), "{read:?}");
    holder.abort();
    Ok(())
}

/// A leader of a keel from before batched forwarding has no `/raft/forward-batch`: a
/// follower's batch reaches it one write per request, and each write gets its own answer.
#[tokio::test]
async fn forwarded_writes_reach_a_leader_without_the_batch_route() -> anyhow::Result<()> {
    let dir = tempfile::TempDir::new()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let node_addr = KeelNode::new(format!("http://{}", listener.local_addr()?), "");
    let network = HttpNetworkFactory::new(1, HttpNetworkFactory::default_client()?);
    let node = RaftNode::open(1, dir.path(), fast_config(), network).await?;
    let no_batch_route = warp::path!("raft" / "forward-batch")
        .map(|| warp::reply::with_status("", warp::http::StatusCode::NOT_FOUND));
    let singles = Arc::new(AtomicUsize::new(0));
    let counted = {
        let singles = singles.clone();
        warp::log::custom(move |info| {
            if info.path() == "/raft/forward" {
                singles.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let routes = no_batch_route
        .or(peer_routes(node.peer_endpoints()))
        .with(counted);
    let server = warp::serve(routes).incoming(listener).graceful(async move {
        let _ = stopped.await;
    });
    tokio::spawn(server.run());
    node.initialize(BTreeMap::from([(1, node_addr.clone())]))
        .await?;
    let start = Instant::now();
    while node.current_leader() != Some(1) {
        anyhow::ensure!(start.elapsed() < DEADLINE, "no leader in {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let follower = HttpNetworkFactory::new(2, HttpNetworkFactory::default_client()?);
    let answers = follower
        .forward_writes(1, &node_addr, vec![put("a"), put("b")], DEADLINE)
        .await?;
    let revisions = answers
        .into_iter()
        .map(|answer| {
            let written = answer?;
            written
                .applied
                .result
                .map(|_| written.applied.revision)
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    assert_eq!(revisions, vec![2, 3]);
    assert_eq!(singles.load(Ordering::Relaxed), 2);

    node.shutdown().await?;
    let _ = stop.send(());
    Ok(())
}

#[tokio::test]
async fn garbage_body_is_a_bad_request() -> anyhow::Result<()> {
    let dir = tempfile::TempDir::new()?;
    let network = HttpNetworkFactory::new(1, HttpNetworkFactory::default_client()?);
    let node = RaftNode::open(1, dir.path(), RaftConfig::default(), network).await?;
    let routes = peer_routes(node.peer_endpoints());
    for path in [
        "/raft/append",
        "/raft/vote",
        "/raft/install-snapshot",
        "/raft/forward",
        "/raft/forward-batch",
        "/raft/read-index",
    ] {
        let response = warp::test::request()
            .method("POST")
            .path(path)
            .body("not bincode")
            .reply(&routes)
            .await;
        assert_eq!(response.status(), 400, "{path}");
    }
    // No route takes a whole snapshot in one body any more; it goes in chunks.
    for path in ["/raft/elsewhere", "/raft/snapshot"] {
        let response = warp::test::request()
            .method("POST")
            .path(path)
            .body("")
            .reply(&routes)
            .await;
        assert_eq!(response.status(), 404, "{path}");
    }
    node.shutdown().await?;
    Ok(())
}
