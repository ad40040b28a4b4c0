//! `keelctl lease grant|revoke|timetolive|list|keep-alive`.

use anyhow::bail;
use clap::Subcommand;

use super::printer::Printer;
use super::put::parse_lease_id;
use crate::client::Client;

/// The lease subcommands.
#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Grant a lease with a TTL in seconds.
    Grant {
        /// TTL, seconds.
        ttl: i64,
    },
    /// Revoke a lease (its keys are deleted).
    Revoke {
        /// Lease id (hex).
        #[arg(value_parser = parse_lease_id)]
        id: i64,
    },
    /// Remaining TTL of a lease.
    Timetolive {
        /// Lease id (hex).
        #[arg(value_parser = parse_lease_id)]
        id: i64,
        /// List the attached keys.
        #[arg(long)]
        keys: bool,
    },
    /// Every lease.
    List,
    /// Keep a lease alive (until interrupted, or once with --once).
    KeepAlive {
        /// Lease id (hex).
        #[arg(value_parser = parse_lease_id)]
        id: i64,
        /// One renewal, then exit.
        #[arg(long)]
        once: bool,
    },
}

impl LeaseCommand {
    /// Runs the subcommand.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        match *self {
            LeaseCommand::Grant { ttl } => printer.lease_grant(&client.lease_grant(ttl, 0).await?),
            LeaseCommand::Revoke { id } => {
                printer.lease_revoked(id, &client.lease_revoke(id).await?);
            }
            LeaseCommand::Timetolive { id, keys } => {
                printer.lease_ttl(&client.lease_time_to_live(id, keys).await?, keys)
            }
            LeaseCommand::List => printer.leases(&client.leases().await?),
            LeaseCommand::KeepAlive { id, once } => {
                let mut stream = client.lease_keep_alive(id).await?;
                loop {
                    let response = stream.renew().await?;
                    if response.ttl <= 0 {
                        bail!("lease {} expired or revoked", super::printer::lease_hex(id));
                    }
                    printer.keep_alive(&response);
                    if once {
                        break;
                    }
                    // Renew at a third of the TTL, as etcd's client does.
                    let wait =
                        std::time::Duration::from_millis((response.ttl as u64 * 1000 / 3).max(500));
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use super::*;
    use clap::Parser;

    #[test]
    fn parses_subcommands() {
        let ctl = Ctl::try_parse_from(["keelctl", "lease", "timetolive", "ff", "--keys"]).unwrap();
        assert!(matches!(
            ctl.command,
            Command::Lease(LeaseCommand::Timetolive {
                id: 255,
                keys: true
            })
        ));
        let ctl = Ctl::try_parse_from(["keelctl", "lease", "keep-alive", "--once", "a"]).unwrap();
        assert!(matches!(
            ctl.command,
            Command::Lease(LeaseCommand::KeepAlive { id: 10, once: true })
        ));
        assert!(Ctl::try_parse_from(["keelctl", "lease", "grant"]).is_err());
    }
}
