//! `keel bench`: etcd benchmark's load generator for keel and etcd alike (see [`crate::bench`]).
//!
//! ```text
//! keel bench --endpoints http://127.0.0.1:2379 --clients 64 --conns 64 put --total 20000 --val-size 256
//! keel bench range --consistency s --key-space-size 1000 -w json
//! keel bench watch --watchers 100 --total 1000 --rate 200
//! keel bench --protocol grpc --clients 64 --conns 8 put --total 20000
//! keel bench density --nodes 100 --pods-per-node 30 --qps 20 -w json
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
    /// ClusterLoader2's density test on hollow nodes, through the Kubernetes API (the etcd
    /// flags do not apply).
    Density(DensityArgs),
}

/// Flags of `keel bench density`.
#[derive(Debug, Args)]
pub struct DensityArgs {
    /// Hollow nodes to register.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub nodes: u64,
    /// Pods per node.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub pods_per_node: u64,
    /// Pods per Deployment.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub pods_per_deployment: u64,
    /// Deployments created (later scaled down, then deleted) per second.
    #[arg(long, default_value_t = 20.0)]
    pub qps: f64,
    /// Members of the control plane started in this process.
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Run against the cluster of this kubeconfig instead of starting one.
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Seconds pods may take to all run, and to all go.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

impl DensityArgs {
    /// The run these flags ask for.
    pub fn options(&self, progress: bool) -> anyhow::Result<bench::density::Options> {
        anyhow::ensure!(
            self.qps.is_finite() && self.qps > 0.0,
            "--qps must be a number above 0"
        );
        anyhow::ensure!(
            self.members % 2 == 1 && self.members <= 7,
            "--members must be an odd number from 1 to 7"
        );
        Ok(bench::density::Options {
            nodes: self.nodes as usize,
            pods_per_node: self.pods_per_node as usize,
            pods_per_deployment: self.pods_per_deployment as usize,
            qps: self.qps,
            members: self.members,
            kubeconfig: self.kubeconfig.clone(),
            timeout: std::time::Duration::from_secs(self.timeout),
            progress,
        })
    }
}

impl BenchArgs {
    /// The engine's options and workload (none for `density`, which is not etcd's).
    pub fn plan(&self) -> Option<(Workload, Options)> {
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
            WorkloadCommand::Density(_) => return None,
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
        Some((workload, options))
    }

    /// Runs the workload and prints its report.
    pub async fn execute(self) -> anyhow::Result<()> {
        if let WorkloadCommand::Density(density) = &self.workload {
            let json = self.write_out == Format::Json;
            // The bar goes to stderr, so it stays out of a piped JSON report.
            let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let report = bench::density::run(&density.options(progress)?).await?;
            match json {
                true => println!("{}", serde_json::to_string(&report)?),
                false => print!("{}", report.table()),
            }
            if report.errors > 0 {
                anyhow::bail!("the run had {} errors", report.errors);
            }
            return Ok(());
        }
        let (workload, options) = self.plan().expect("an etcd workload");
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
        let (workload, options) = args.plan().unwrap();
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
        assert_eq!(grpc.plan().unwrap().1.protocol, Protocol::Grpc);
        assert!(Cli::try_parse_from(["keel", "bench", "--protocol", "http3", "put"]).is_err());

        let range = parse(&["keel", "bench", "range", "--consistency", "s"]);
        assert_eq!(
            range.plan().unwrap().0,
            Workload::Range { serializable: true }
        );
        let watch = parse(&[
            "keel",
            "bench",
            "watch",
            "--watchers",
            "100",
            "--rate",
            "50",
        ]);
        assert_eq!(watch.plan().unwrap().0, Workload::Watch { watchers: 100 });
        assert_eq!(watch.plan().unwrap().1.rate, 50);
        let txn = parse(&[
            "keel",
            "bench",
            "txn-put",
            "--txn-ops",
            "4",
            "--key-space-size",
            "9",
        ]);
        assert_eq!(txn.plan().unwrap().0, Workload::TxnPut { ops: 4 });
    }

    #[test]
    fn density_takes_its_own_flags() {
        let args = parse(&[
            "keel",
            "bench",
            "density",
            "--nodes",
            "5",
            "--pods-per-node",
            "2",
            "--qps",
            "50",
            "-w",
            "json",
        ]);
        assert!(args.plan().is_none(), "not an etcd workload");
        let super::WorkloadCommand::Density(density) = &args.workload else {
            panic!("parsed as {:?}", args.workload);
        };
        let options = density.options(false).unwrap();
        assert_eq!(
            (options.nodes, options.pods_per_node, options.qps),
            (5, 2, 50.0)
        );
        assert_eq!((options.members, options.pods_per_deployment), (3, 30));
        assert_eq!(args.write_out, super::Format::Json);
        assert!(Cli::try_parse_from(["keel", "bench", "density", "--nodes", "0"]).is_err());
        let zero_qps = parse(&["keel", "bench", "density", "--qps", "0"]);
        let super::WorkloadCommand::Density(zero_qps) = &zero_qps.workload else {
            unreachable!()
        };
        assert!(zero_qps.options(false).is_err());
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
