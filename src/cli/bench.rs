//! `keel bench`: etcd benchmark's load generator for keel and etcd alike (see [`crate::bench`]).
//!
//! ```text
//! keel bench --endpoints http://127.0.0.1:2379 --clients 64 --conns 64 put --total 20000 --val-size 256
//! keel bench range --consistency s --key-space-size 1000 -w json
//! keel bench watch --watchers 100 --total 1000 --rate 200
//! keel bench --protocol grpc --clients 64 --conns 8 put --total 20000
//! ```

use clap::{Args, Subcommand, ValueEnum};

use crate::bench::{self, Options, Protocol, Workload};

/// Flags of `keel bench`; they may come before or after the workload.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Client URLs (comma-separated); connections are spread over them in turn.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        env = "ETCDCTL_ENDPOINTS",
        default_value = "http://127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// Concurrent workers (watch: ignored; lease-keepalive: one lease each).
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients: u64,
    /// Connections the workers share (gateway: HTTP/1.1 keep-alive, one request at a time;
    /// grpc: HTTP/2, calls multiplexed); worker i uses connection i % conns.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub conns: u64,
    /// Operations in all (watch: puts by the writer).
    #[arg(long, global = true, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub total: u64,
    /// Bytes per key.
    #[arg(long, global = true, default_value_t = 8)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, global = true, default_value_t = 8)]
    pub val_size: usize,
    /// How many distinct keys operations draw from.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub key_space_size: u64,
    /// Keys in order, wrapping at the key space, instead of at random.
    #[arg(long, global = true)]
    pub sequential_keys: bool,
    /// Operations per second in all; 0 means as fast as the workers go.
    #[arg(long, global = true, default_value_t = 0)]
    pub rate: u64,
    /// The API to drive: etcd's v3 JSON gateway or its gRPC API.
    #[arg(long, global = true, value_enum, default_value_t = Protocol::Gateway)]
    pub protocol: Protocol,
    /// Output: etcd's text summary or one JSON object.
    #[arg(short = 'w', long = "write-out", global = true, value_enum, default_value_t = Format::Simple)]
    pub write_out: Format,
    /// The workload.
    #[command(subcommand)]
    pub workload: WorkloadCommand,
}

/// How the report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// etcd benchmark's summary, histogram and percentiles.
    Simple,
    /// The whole report as one JSON object.
    Json,
}

/// Read consistency of `range` (etcd's `--consistency`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    /// Linearizable: the member confirms it is current first (a read barrier).
    L,
    /// Serializable: the member answers from its own keyspace.
    S,
}

/// The workloads.
#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Puts.
    Put,
    /// Single-key ranges over the key space (run `put` with the same key flags first).
    Range {
        /// l (linearizable) or s (serializable).
        #[arg(long, value_enum, default_value_t = Consistency::L)]
        consistency: Consistency,
    },
    /// Txns whose success branch puts keys.
    TxnPut {
        /// Puts per txn.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        txn_ops: u64,
    },
    /// Watchers on a prefix, one writer at --rate; latency from the put's ack to delivery.
    Watch {
        /// Watch streams, spread over the endpoints.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        watchers: u64,
    },
    /// Lease renewals over keep-alive streams, one lease per client.
    LeaseKeepalive,
}

impl BenchArgs {
    /// The engine's options and workload.
    pub fn plan(&self) -> (Workload, Options) {
        let workload = match &self.workload {
            WorkloadCommand::Put => Workload::Put,
            WorkloadCommand::Range { consistency } => Workload::Range {
                serializable: *consistency == Consistency::S,
            },
            WorkloadCommand::TxnPut { txn_ops } => Workload::TxnPut {
                ops: *txn_ops as usize,
            },
            WorkloadCommand::Watch { watchers } => Workload::Watch {
                watchers: *watchers as usize,
            },
            WorkloadCommand::LeaseKeepalive => Workload::LeaseKeepalive,
        };
        let options = Options {
            endpoints: self.endpoints.clone(),
            clients: self.clients as usize,
            conns: self.conns as usize,
            total: self.total,
            key_size: self.key_size,
            val_size: self.val_size,
            key_space_size: self.key_space_size,
            sequential_keys: self.sequential_keys,
            rate: self.rate,
            protocol: self.protocol,
        };
        (workload, options)
    }

    /// Runs the workload and prints its report.
    pub async fn execute(self) -> anyhow::Result<()> {
        let (workload, options) = self.plan();
        let report = bench::run(&workload, &options).await?;
        match self.write_out {
            Format::Simple => print!("{}", report.text()),
            Format::Json => println!("{}", serde_json::to_string(&report)?),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::bench::{Protocol, Workload};
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> super::BenchArgs {
        match Cli::try_parse_from(args).unwrap().command {
            Some(Command::Bench(args)) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn flags_go_before_or_after_the_workload() {
        let args = parse(&[
            "keel",
            "bench",
            "--endpoints",
            "a:1,b:2",
            "--clients",
            "64",
            "put",
            "--conns",
            "8",
            "--total",
            "500",
            "--sequential-keys",
            "--key-space-size",
            "100",
            "-w",
            "json",
        ]);
        let (workload, options) = args.plan();
        assert_eq!(workload, Workload::Put);
        assert_eq!(options.endpoints, ["a:1", "b:2"]);
        assert_eq!(
            (options.clients, options.conns, options.total),
            (64, 8, 500)
        );
        assert!(options.sequential_keys);
        assert_eq!(options.key_space_size, 100);
        assert_eq!(args.write_out, super::Format::Json);
        assert_eq!(options.protocol, Protocol::Gateway, "the default");
        let grpc = parse(&["keel", "bench", "lease-keepalive", "--protocol", "grpc"]);
        assert_eq!(grpc.plan().1.protocol, Protocol::Grpc);
        assert!(Cli::try_parse_from(["keel", "bench", "--protocol", "http3", "put"]).is_err());

        let range = parse(&["keel", "bench", "range", "--consistency", "s"]);
        assert_eq!(range.plan().0, Workload::Range { serializable: true });
        let watch = parse(&[
            "keel",
            "bench",
            "watch",
            "--watchers",
            "100",
            "--rate",
            "50",
        ]);
        assert_eq!(watch.plan().0, Workload::Watch { watchers: 100 });
        assert_eq!(watch.plan().1.rate, 50);
        let txn = parse(&[
            "keel",
            "bench",
            "txn-put",
            "--txn-ops",
            "4",
            "--key-space-size",
            "9",
        ]);
        assert_eq!(txn.plan().0, Workload::TxnPut { ops: 4 });
    }

    #[test]
    fn zero_clients_or_an_unknown_consistency_are_refused() {
        assert!(Cli::try_parse_from(["keel", "bench", "--clients", "0", "put"]).is_err());
        assert!(Cli::try_parse_from(["keel", "bench", "range", "--consistency", "x"]).is_err());
        assert!(
            Cli::try_parse_from(["keel", "bench"]).is_err(),
            "a workload is required"
        );
    }
}
