//! The load generator behind `keel bench`, in the style of etcd's `benchmark` tool.
//!
//! It speaks the v3 JSON gateway, which etcd 3.4 serves at `/v3/...` too, or etcd's gRPC API
//! (`--protocol grpc`, [`grpc`]), so the same generator drives keel and etcd and their numbers
//! can be compared side by side (`benches/compare-etcd.sh`). Over the gateway, unary workloads
//! (`put`, `range`, `txn-put`, `lease-keepalive`) run `--clients` workers over `--conns`
//! keep-alive connections of [`connection`] and `watch` opens one connection per watcher; over
//! gRPC every workload shares `--conns` HTTP/2 connections, as etcd's benchmark does.
//!
//! Errors are `anyhow`'s: a load generator's failures are reported to the person running
//! it, and no caller matches on them.
//!
//! # Layout
//!
//! - [`connection`]: HTTP/1.1 keep-alive connections shared by the workers.
//! - [`grpc`]: the workloads over etcd's gRPC API.
//! - [`workload`]: what each workload sends, and the watch workload's delivery check.
//! - [`report`]: latency histogram, percentiles, etcd's text summary and JSON.
//! - [`density`]: `keel bench density`, ClusterLoader2's density test through the Kubernetes
//!   API on hollow nodes (not etcd's).

pub mod connection;
pub mod density;
pub mod grpc;
pub mod report;
pub mod workload;

pub use report::Report;

/// The flags every workload shares (etcd benchmark's names).
#[derive(Clone, Debug)]
pub struct Options {
    /// Gateway URLs; connection `i` goes to endpoint `i % endpoints.len()`.
    pub endpoints: Vec<String>,
    /// Concurrent workers.
    pub clients: usize,
    /// Connections; worker `i` uses connection `i % conns`.
    pub conns: usize,
    /// Operations in the run (for watch: puts by the writer).
    pub total: u64,
    /// Bytes of each key.
    pub key_size: usize,
    /// Bytes of each value.
    pub val_size: usize,
    /// Keys are drawn from this many distinct keys.
    pub key_space_size: u64,
    /// Keys in order (0, 1, 2, … modulo the key space) instead of at random.
    pub sequential_keys: bool,
    /// Operations per second across all workers; 0 is as fast as they go.
    pub rate: u64,
    /// The API the operations go through.
    pub protocol: Protocol,
}

/// Which of etcd's two client APIs a run speaks (`keel bench --protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// The v3 JSON gateway (`POST /v3/...`), over HTTP/1.1.
    #[default]
    Gateway,
    /// etcd's gRPC API, over HTTP/2.
    Grpc,
}

impl Default for Options {
    fn default() -> Self {
        // etcd benchmark's defaults.
        Options {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            clients: 1,
            conns: 1,
            total: 10_000,
            key_size: 8,
            val_size: 8,
            key_space_size: 1,
            sequential_keys: false,
            rate: 0,
            protocol: Protocol::Gateway,
        }
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Puts of `--val-size` values.
    Put,
    /// Single-key ranges; `serializable` reads the local member without a read barrier.
    Range {
        /// etcd's `--consistency s`.
        serializable: bool,
    },
    /// Txns without compares whose success branch puts `ops` keys.
    TxnPut {
        /// Puts per txn.
        ops: usize,
    },
    /// `watchers` watchers on one prefix while one writer puts `--total` keys under it at
    /// `--rate`; latency runs from the put's ack to each delivery.
    Watch {
        /// Watch streams, spread over the endpoints.
        watchers: usize,
    },
    /// One lease and one keep-alive stream per client, renewed `--total` times in all.
    LeaseKeepalive,
}

impl Workload {
    /// The name a report carries.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Range {
                serializable: false,
            } => "range-linearizable",
            Workload::Range { serializable: true } => "range-serializable",
            Workload::TxnPut { .. } => "txn-put",
            Workload::Watch { .. } => "watch",
            Workload::LeaseKeepalive => "lease-keepalive",
        }
    }
}

/// Runs `workload` to completion and reports what it measured.
pub async fn run(workload: &Workload, options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(!options.endpoints.is_empty(), "no endpoints given");
    anyhow::ensure!(options.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(options.conns > 0, "--conns must be at least 1");
    anyhow::ensure!(
        options.key_space_size > 0,
        "--key-space-size must be at least 1"
    );
    if options.protocol == Protocol::Grpc {
        return grpc::run(workload, options).await;
    }
    match workload {
        Workload::Put => workload::put(options).await,
        Workload::Range { serializable } => workload::range(options, *serializable).await,
        Workload::TxnPut { ops } => workload::txn_put(options, *ops).await,
        Workload::Watch { watchers } => workload::watch(options, *watchers).await,
        Workload::LeaseKeepalive => workload::lease_keepalive(options).await,
    }
}
