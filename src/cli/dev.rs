//! `keel dev`: a local cluster (3 members by default) in one process, for trying keel out.
//!
//! Every member is a real one — its own Raft log, keyspace, peer server and client API on
//! 127.0.0.1 — so clients see exactly what a three-machine cluster would show them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::member::{self, RunningMember};

/// Flags of `keel dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// How many members (an odd number from 1 to 7).
    #[arg(long, default_value_t = 3, value_parser = parse_size)]
    pub size: usize,
    /// Keep data here (one directory per member); by default a temporary directory that is
    /// removed on exit.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Client port of the first member; member i listens on `base-port + 10000 * i` for
    /// clients and the port after it for peers (2379/2380, 12379/12380, …). 0 picks free ports.
    #[arg(long, default_value_t = 2379)]
    pub base_port: u16,
}

impl Default for DevArgs {
    fn default() -> Self {
        DevArgs {
            size: 3,
            data_dir: None,
            base_port: 2379,
        }
    }
}

fn parse_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n % 2 == 1 && n <= 7 => Ok(n),
        _ => Err(format!(
            "{text:?} is not an odd number of members from 1 to 7"
        )),
    }
}

/// A local cluster started by [`DevCluster::start`].
pub struct DevCluster {
    /// The members, in the order of `initial-cluster`.
    pub members: Vec<RunningMember>,
    /// Their configurations.
    pub configs: Vec<Config>,
    _temp_dir: Option<tempfile::TempDir>,
}

impl DevCluster {
    /// Binds every member's listeners, then starts them all and waits for a leader.
    pub async fn start(args: &DevArgs) -> anyhow::Result<DevCluster> {
        DevCluster::start_with(args, |_| {}).await
    }

    /// [`DevCluster::start`] with each member's configuration changed by `tune` first
    /// (tests lower `bcrypt-cost`, for one).
    pub async fn start_with(
        args: &DevArgs,
        tune: impl Fn(&mut Config),
    ) -> anyhow::Result<DevCluster> {
        let (root, temp_dir) = match &args.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new().prefix("keel-dev-").tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        let mut listeners = Vec::new();
        for i in 0..args.size {
            let (client_port, peer_port) = match args.base_port {
                0 => (0, 0),
                base => {
                    let client = u32::from(base) + 10_000 * i as u32;
                    let client = u16::try_from(client)
                        .ok()
                        .filter(|p| *p < u16::MAX)
                        .with_context(|| {
                            format!("--base-port {base} is too high for {} members", args.size)
                        })?;
                    (client, client + 1)
                }
            };
            let client = bind(client_port).await?;
            let peer = bind(peer_port).await?;
            listeners.push((client, peer));
        }
        let urls: Vec<(String, String)> = listeners
            .iter()
            .map(|(client, peer)| {
                Ok((
                    format!("http://{}", client.local_addr()?),
                    format!("http://{}", peer.local_addr()?),
                ))
            })
            .collect::<std::io::Result<_>>()?;
        let initial_cluster = urls
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("n{}={peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let configs: Vec<Config> = urls
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| Config {
                name: format!("n{}", i + 1),
                data_dir: root.join(format!("n{}", i + 1)),
                listen_client_urls: vec![client.clone()],
                advertise_client_urls: vec![client.clone()],
                listen_peer_urls: vec![peer.clone()],
                initial_advertise_peer_urls: vec![peer.clone()],
                initial_cluster: initial_cluster.clone(),
                ..Config::default()
            })
            .map(|mut config| {
                tune(&mut config);
                config
            })
            .collect();
        DevCluster::launch(configs, listeners, temp_dir).await
    }

    async fn launch(
        configs: Vec<Config>,
        listeners: Vec<(TcpListener, TcpListener)>,
        temp_dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<DevCluster> {
        let mut members = Vec::new();
        for (config, (client, peer)) in configs.iter().zip(listeners) {
            members.push(
                member::start(config, client, peer)
                    .await
                    .with_context(|| format!("cannot start member {}", config.name))?,
            );
        }
        let deadline = Duration::from_secs(30);
        for member in &members {
            member
                .wait_for_leader(deadline)
                .await
                .context("the cluster elected no leader within 30 s")?;
        }
        Ok(DevCluster {
            members,
            configs,
            _temp_dir: temp_dir,
        })
    }

    /// `size` members on free ports of 127.0.0.1 with data in a temporary directory: what
    /// tests and examples want.
    pub async fn start_on_free_ports(size: usize) -> anyhow::Result<DevCluster> {
        DevCluster::start(&DevArgs {
            size,
            data_dir: None,
            base_port: 0,
        })
        .await
    }

    /// Stops every member and starts them again on the same addresses and data directories,
    /// as a machine reboot would.
    pub async fn restart(self) -> anyhow::Result<DevCluster> {
        let addrs: Vec<_> = self
            .members
            .iter()
            .map(|m| (m.client_addr, m.peer_addr))
            .collect();
        let DevCluster {
            members,
            configs,
            _temp_dir: temp_dir,
        } = self;
        for member in members {
            member.stop().await?;
        }
        let mut listeners = Vec::new();
        for (client, peer) in addrs {
            listeners.push((bind_addr(client).await?, bind_addr(peer).await?));
        }
        DevCluster::launch(configs, listeners, temp_dir).await
    }

    /// The client URLs, comma-separated (for `--endpoints` and `ETCDCTL_ENDPOINTS`).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("http://{}", m.client_addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Stops every member.
    pub async fn stop(self) -> anyhow::Result<()> {
        for member in self.members {
            member.stop().await?;
        }
        Ok(())
    }
}

async fn bind_addr(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} again"))
}

async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (is another keel or etcd running? try --base-port)"))
}

impl DevArgs {
    /// Runs the cluster until Ctrl-C or SIGTERM.
    pub async fn execute(self) -> anyhow::Result<()> {
        let cluster = DevCluster::start(&self).await?;
        println!("keel dev: {} members up", cluster.members.len());
        for (member, config) in cluster.members.iter().zip(&cluster.configs) {
            println!(
                "  {}  id {:016x}  client http://{}  peer http://{}  data {}",
                config.name,
                member.id,
                member.client_addr,
                member.peer_addr,
                config.data_dir.display()
            );
        }
        let first = cluster.members[0].client_addr;
        println!();
        println!("export ETCDCTL_ENDPOINTS={}", cluster.endpoints());
        println!(
            "try:  curl -s -X POST http://{first}/v3/kv/put -d '{{\"key\":\"Zm9v\",\"value\":\"YmFy\"}}'"
        );
        println!("      curl -s -X POST http://{first}/v3/kv/range -d '{{\"key\":\"Zm9v\"}}'");
        println!("Ctrl-C stops the cluster.");
        super::serve::shutdown_signal().await;
        cluster.stop().await
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn size_must_be_odd_and_small() {
        let cli = Cli::try_parse_from(["keel", "dev", "--size", "5", "--base-port", "0"]).unwrap();
        let Some(Command::Dev(args)) = cli.command else {
            panic!("parsed as another subcommand");
        };
        assert_eq!((args.size, args.base_port), (5, 0));
        assert!(Cli::try_parse_from(["keel", "dev", "--size", "4"]).is_err());
        assert!(Cli::try_parse_from(["keel", "dev", "--size", "9"]).is_err());
        // No subcommand means `keel dev` with its defaults.
        assert!(Cli::try_parse_from(["keel"]).unwrap().command.is_none());
        let defaults = super::DevArgs::default();
        assert_eq!((defaults.size, defaults.base_port), (3, 2379));
    }
}
