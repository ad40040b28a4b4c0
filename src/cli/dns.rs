//! `keel dns`: the cluster DNS (keel-dns) for the cluster a kubeconfig names, on one address
//! for UDP and TCP, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

/// `keel dns --kubeconfig F --listen ADDR`.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// The kubeconfig of the cluster to serve (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Where to answer, UDP and TCP (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:5353")]
    pub listen: SocketAddr,
}

impl DnsArgs {
    /// Serves until Ctrl-C.
    pub async fn execute(self) -> anyhow::Result<()> {
        let client = match &self.kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let config = kube::Config::from_custom_kubeconfig(
                    file,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await?;
                kube::Client::try_from(config)?
            }
            None => kube::Client::try_default().await?,
        };
        let listeners = keel_dns::Listeners::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        println!(
            "keel dns: {} answering *.svc.{} on {} (udp and tcp)",
            client.default_namespace(),
            keel_dns::CLUSTER_DOMAIN,
            listeners.local_addr()?
        );
        keel_dns::run(client, listeners, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn dns_takes_a_kubeconfig_and_an_address() {
        let cli = Cli::parse_from([
            "keel",
            "dns",
            "--kubeconfig",
            "k.yaml",
            "--listen",
            "127.0.0.1:0",
        ]);
        let Some(Command::Dns(args)) = cli.command else {
            panic!("not dns");
        };
        assert_eq!(args.kubeconfig.unwrap().to_str(), Some("k.yaml"));
        assert_eq!(args.listen.port(), 0);
    }
}
