//! Committed writes per second on three in-process members (router network, real sled with an
//! fsync per log append batch).
//!
//! How to run:
//!
//! ```text
//! cargo run --release -p keel-raft --example raft_bench -- [writes] [concurrency]
//! ```
//!
//! Defaults: 5000 writes from 64 concurrent writers, each a 100-byte put to its own key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use keel_raft::router::Router;
use keel_raft::{KeelNode, RaftConfig, RaftNode};
use keel_store::{Command, PutRequest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let writes: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5000);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64);

    let dir = tempfile::TempDir::new()?;
    let router = Router::new();
    let mut nodes = BTreeMap::new();
    for id in 1..=3u64 {
        let node = RaftNode::open(
            id,
            dir.path().join(id.to_string()),
            RaftConfig::default(),
            router.network(id),
        )
        .await?;
        router.register(id, node.raft().clone());
        nodes.insert(id, node);
    }
    let members = (1..=3u64)
        .map(|id| {
            (
                id,
                KeelNode::new(format!("http://127.0.0.1:{}", 2380 + id), ""),
            )
        })
        .collect();
    nodes[&1].initialize(members).await?;
    let leader = nodes[&1]
        .raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .context("no leader elected")?
        .current_leader
        .context("no leader")?;
    let nodes = Arc::new(nodes);

    let start = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..concurrency {
        let nodes = nodes.clone();
        writers.push(tokio::spawn(async move {
            let mut i = writer;
            while i < writes {
                let command = Command::Put(PutRequest {
                    key: format!("key-{i:08}").into_bytes(),
                    value: vec![b'x'; 100],
                    ..Default::default()
                });
                nodes[&leader].write(command).await?;
                i += concurrency;
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let elapsed = start.elapsed();
    println!(
        "{writes} committed writes, {concurrency} writers, 3 members: {:.2?}, {:.0} writes/s",
        elapsed,
        writes as f64 / elapsed.as_secs_f64()
    );
    for node in nodes.values() {
        node.shutdown().await?;
    }
    Ok(())
}
