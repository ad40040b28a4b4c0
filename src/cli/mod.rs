//! The `keel` command line (and `keelctl`'s, in [`ctl`]): one file per subcommand, each
//! with its clap definition, its execution and a parsing test.

pub mod agent;
pub mod bench;
pub mod ctl;
pub mod dev;
pub mod dns;
pub mod image;
pub mod pki;
pub mod serve;
pub mod snapshot;
pub mod token;

use clap::{Parser, Subcommand};

/// keel: an etcd-compatible replicated key-value store.
#[derive(Debug, Parser)]
#[command(name = "keel", version, about)]
pub struct Cli {
    /// What to do; without a subcommand, `keel` runs `keel dev` (a local 3-member cluster).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
// Parsed once per process, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a member: the etcd v3 JSON API on the client URLs.
    Serve(serve::ServeArgs),
    /// Run a local cluster (3 members by default) on 127.0.0.1 until Ctrl-C.
    Dev(dev::DevCommand),
    /// Load generator in etcd benchmark's style, for keel and etcd alike.
    Bench(bench::BenchArgs),
    /// Serve the cluster DNS (Services and EndpointSlices as <svc>.<ns>.svc.cluster.local).
    Dns(dns::DnsArgs),
    /// Offline snapshot tools (etcdutl's): restore a snapshot file into a new data dir.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Certificates for TLS: a CA, node and client certificates (`init`, `client`, `show`).
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Run the node agent: register a Node and run the pods bound to it.
    Agent(agent::AgentArgs),
    /// Bootstrap tokens for joining nodes (`create` prints the `keel agent --join` command).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// The node's local image store (`import FILE.tar`, `ls`, `rm REF`) for the embedded
    /// runtime.
    #[command(subcommand)]
    Image(image::ImageCommand),
}

impl Cli {
    /// Runs the chosen subcommand to completion.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self.command {
            Some(Command::Serve(args)) => args.execute().await,
            Some(Command::Dev(args)) => args.execute().await,
            Some(Command::Snapshot(command)) => command.execute().await,
            Some(Command::Pki(command)) => command.execute(),
            Some(Command::Bench(args)) => args.execute().await,
            Some(Command::Agent(args)) => args.execute().await,
            Some(Command::Dns(args)) => args.execute().await,
            Some(Command::Image(command)) => command.execute().await,
            Some(Command::Token(command)) => command.execute().await,
            None => dev::DevCommand::default().execute().await,
        }
    }
}
