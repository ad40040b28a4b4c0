//! `keelctl defrag`: asks every endpoint to defragment its database, as etcdctl does. keel's
//! sled reclaims space on its own, so a member answers at once; the command exists so that
//! operators' scripts written for etcd run unchanged.

use anyhow::bail;
use clap::Args;

use super::endpoint::cluster_client;
use super::printer::Printer;
use crate::client::Client;

/// Flags of `defrag`.
#[derive(Debug, Args)]
pub struct DefragArgs {
    /// Defragment every member listed by `member list` (its client URLs) instead of
    /// --endpoints.
    #[arg(long)]
    pub cluster: bool,
}

impl DefragArgs {
    /// Runs `defrag` on every endpoint; fails when any did not answer.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let cluster;
        let client = if self.cluster {
            cluster = cluster_client(client).await?;
            &cluster
        } else {
            client
        };
        let mut failures = 0;
        for endpoint in client.endpoints() {
            match client.for_endpoint(endpoint).defragment().await {
                Ok(response) => printer.defragmented(endpoint, &response),
                Err(e) => {
                    eprintln!("Failed to defragment etcd member[{endpoint}] ({e})");
                    failures += 1;
                }
            }
        }
        if failures > 0 {
            bail!("{failures} endpoint(s) could not be defragmented");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use clap::Parser;

    #[test]
    fn parses_defrag() {
        let ctl = Ctl::try_parse_from(["keelctl", "--endpoints", "a:1,b:2", "defrag"]).unwrap();
        assert!(matches!(ctl.command, Command::Defrag(_)));
        assert_eq!(ctl.global.endpoints, ["a:1", "b:2"]);
        assert!(Ctl::try_parse_from(["keelctl", "defrag", "x"]).is_err());
        let ctl = Ctl::try_parse_from(["keelctl", "defrag", "--cluster"]).unwrap();
        assert!(matches!(ctl.command, Command::Defrag(args) if args.cluster));
    }
}
