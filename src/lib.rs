//! keel: an etcd-compatible server on keel-store (and, for clusters, keel-raft).
//!
//! Requests arrive on the etcd v3 JSON gateway ([`api`]), which reaches the keyspace only
//! through a [`replica::Replica`]: writes are proposed, reads wait for a read barrier.
//!
//! # Layout
//!
//! - [`config`]: the one configuration tree of `keel serve`, its TOML file and validation.
//! - [`replica`]: the `Replica` trait the API is written against, and `LocalReplica` (one member).
//! - [`raft_replica`]: `RaftReplica`, the `Replica` of a cluster member over keel-raft.
//! - [`member`]: a running member: Raft node, peer server and client API, from bound listeners.
//! - [`control_plane`]: a member's Kubernetes API server (keel-apiserver) over its replica.
//! - [`kubeconfig`]: kubeconfig files for kubectl and client libraries.
//! - [`lessor`]: lease deadlines kept by the leader; expiry proposed as a revoke.
//! - [`compactor`]: automatic compaction (periodic or by revision), proposed by the leader.
//! - [`api_storage`]: keel-apiserver's `Storage` over a `Replica`, in-process.
//! - [`api`]: the warp routes, handlers and JSON models, one file per etcd service.
//! - [`auth`]: credentials, tokens and the permission check every request passes.
//! - [`metrics`]: Prometheus metrics served on `/metrics`.
//! - [`node_agent`]: the node agent's wiring (runtimes, `keel agent` nodes, `keel dev`'s agents).
//! - [`node_join`]: `keel agent --join`: CA discovery by pin, the bootstrap CSR, rotation.
//! - [`server`]: wiring: `run(config, listener, replica, shutdown)`.
//! - [`client`]: the typed client of the JSON gateway (failover across endpoints, streams).
//! - [`bench`]: the load generator of `keel bench` (etcd benchmark's workloads).
//! - [`cli`]: the `keel` and `keelctl` command lines, one file per subcommand.
//! - [`pki`]: a CA, node and client certificates for TLS (`keel pki`), and reading them back.
//! - [`transport`]: the listeners' accept loop: plain TCP or TLS, HTTP/1 and HTTP/2, graceful
//!   shutdown, the verified client certificate handed to each request.
//! - `h2_authority`: the connection wrapper that lets etcdctl 3.4's URL-as-`:authority`
//!   through h2.
//! - [`identity`]: who a request comes from (a verified client certificate).
//! - [`error`]: the crate's error enum.

pub mod api;
pub mod api_storage;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod compactor;
pub mod config;
pub mod control_plane;
pub mod error;
mod h2_authority;
pub mod identity;
pub mod kubeconfig;
pub mod lessor;
pub mod member;
pub mod metrics;
pub mod node_agent;
pub mod node_join;
pub mod pki;
pub mod raft_replica;
pub mod replica;
pub mod server;
pub mod transport;

pub use error::{Error, Result};
