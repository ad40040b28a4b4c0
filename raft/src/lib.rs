//! keel-raft: keel's replication layer, openraft 0.9 over a write-ahead log and keel-store.
//!
//! A [`RaftNode`] owns one member's share of the cluster: a Raft log (a write-ahead log of segment files), a state machine
//! that applies committed [`keel_store::Command`]s to a [`keel_store::Store`], and a network
//! client to its peers. The server talks to the cluster only through [`RaftNode`].
//!
//! As in etcd, every member serves writes and linearizable reads: [`RaftNode::write`] and
//! [`RaftNode::linearizable_barrier`] on a follower or learner forward to the leader over the
//! peer network and wait until this member has applied the result, so a read from
//! [`RaftNode::store`] right after sees it. Membership changes ([`RaftNode::add_learner`],
//! [`RaftNode::promote_learner`], [`RaftNode::remove_node`]) run on the leader only.
//!
//! # Layout
//!
//! - [`types`]: the openraft type configuration ([`TypeConfig`], [`KeelNode`], [`Request`], [`Response`]).
//! - [`codec`]: the one wire and disk format (bincode 2); nothing else calls bincode.
//! - [`log_store`]: the Raft log, vote and committed id (`<data_dir>/raft`), kept in the
//!   segment files of `wal` (crate-private): one `write` and one `fdatasync` per append.
//! - [`state_machine`]: applies entries to keel-store (`<data_dir>/kv`), builds and installs snapshots
//!   as files streamed to and from keel-store's export (`<data_dir>/snapshot`).
//! - [`forward`]: writes and linearizable reads on every member: the leader's side, and
//!   [`LeaderLink`], how a follower reaches it.
//! - [`read_index`]: concurrent linearizable reads share one leadership-confirming round on the
//!   leader, and one request for the read index on a follower.
//! - [`proposer`]: concurrent writes on the leader share one log entry (group commit).
//! - [`forwarder`]: concurrent writes a follower forwards to the leader share one request.
//! - [`network`]: the peer network, an HTTP client (reqwest) and the server side as a warp filter;
//!   snapshots travel in chunks of [`RaftConfig::snapshot_chunk_bytes`].
//! - [`config`]: [`RaftConfig`], the `[raft]` section of keel's config.
//! - [`node`]: [`RaftNode`], the facade the server uses.
//! - [`error`]: the one error enum.
//! - `router` (feature `testing`): an in-process network that can isolate, partition, drop and delay.
//!
//! # Durability
//!
//! A log entry is acknowledged (to openraft, hence to the leader) only after its
//! `fdatasync` returned.
//! The keyspace is not flushed per entry: each applied entry records its log id in the same
//! atomic batch as its command, so after a crash the keyspace is a consistent prefix of the log
//! and openraft re-applies the rest from the log. The log is purged only up to what both the
//! flushed keyspace and the durable current snapshot cover, because openraft needs a snapshot
//! for what is no longer in the log (see [`LogStore::gated_by`]).
//!
//! # Example
//!
//! One member of a three-member cluster, serving its peers on a bound listener:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use std::collections::BTreeMap;
//! use keel_raft::{peer_routes, HttpNetworkFactory, KeelNode, RaftConfig, RaftNode};
//!
//! let network = HttpNetworkFactory::new(1, HttpNetworkFactory::default_client()?);
//! let node = RaftNode::open(1, "/var/lib/keel", RaftConfig::default(), network).await?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:2380").await?;
//! tokio::spawn(warp::serve(peer_routes(node.peer_endpoints())).incoming(listener).run());
//!
//! let members: BTreeMap<u64, KeelNode> = (1..=3)
//!     .map(|id| (id, KeelNode::new(format!("http://10.0.0.{id}:2380"), format!("http://10.0.0.{id}:2379"))))
//!     .collect();
//! node.initialize(members).await?; // on one member, once
//! let put = keel_store::Command::Put(keel_store::PutRequest {
//!     key: b"greeting".to_vec(),
//!     value: b"hello".to_vec(),
//!     ..Default::default()
//! });
//! let applied = node.write(put).await?; // on any member
//! println!("written at revision {}", applied.revision);
//! # Ok(())
//! # }
//! ```
//!
//! # What this crate must not depend on
//!
//! The root `keel` crate (server, API, CLI). It knows keel-store's commands, not etcd's API.

pub mod codec;
pub mod config;
pub mod error;
pub mod forward;
pub mod forwarder;
pub mod log_store;
pub mod network;
pub mod node;
pub mod observer;
pub mod proposer;
pub mod read_index;
#[cfg(feature = "testing")]
pub mod router;
pub mod state_machine;
pub mod types;
mod wal;

pub use config::RaftConfig;
pub use error::{Error, Result, WriteError};
pub use forward::{LeaderLink, LinkError, Refusal, Written};
pub use log_store::{LogStore, LogSummary};
pub use network::{peer_routes, HttpNetwork, HttpNetworkFactory, PeerEndpoints};
pub use node::{Member, RaftNode, Status};
pub use observer::Observer;
pub use openraft::ServerState;
pub use proposer::Proposer;
pub use read_index::ReadIndex;
pub use state_machine::StateMachine;
pub use types::{KeelNode, Request, Response, TypeConfig};
