//! `keelctl member list|add|remove|promote`.

use clap::Subcommand;

use super::printer::Printer;
use crate::client::Client;

/// The member subcommands.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Every member.
    List,
    /// Add a member by its peer URLs.
    Add {
        /// The new member's name (informational: keel learns it when the member starts).
        name: String,
        /// Comma-separated peer URLs.
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
        /// Add as a learner.
        #[arg(long)]
        learner: bool,
    },
    /// Remove a member.
    Remove {
        /// Member id (hex).
        #[arg(value_parser = parse_member_id)]
        id: u64,
    },
    /// Promote a learner to a voter.
    Promote {
        /// Member id (hex).
        #[arg(value_parser = parse_member_id)]
        id: u64,
    },
}

fn parse_member_id(text: &str) -> Result<u64, String> {
    u64::from_str_radix(text, 16)
        .map_err(|_| format!("bad member ID {text:?}, expecting a hexadecimal ID"))
}

impl MemberCommand {
    /// Runs the subcommand.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        match self {
            MemberCommand::List => {
                let response = client.member_list().await?;
                printer.members(&response.members, &response);
            }
            MemberCommand::Add {
                name,
                peer_urls,
                learner,
            } => {
                let response = client.member_add(peer_urls.clone(), *learner).await?;
                if printer.format != super::OutputFormat::Json {
                    printer.line(&format!(
                        "Member {:x} added to cluster {:x}",
                        response.member.id, response.header.cluster_id
                    ));
                    printer.line(&format!("ETCD_NAME=\"{name}\""));
                }
                printer.members(&response.members, &response);
            }
            MemberCommand::Remove { id } => {
                let response = client.member_remove(*id).await?;
                match printer.format {
                    super::OutputFormat::Json => printer.json(&response),
                    _ => printer.line(&format!(
                        "Member {id:x} removed from cluster {:x}",
                        response.header.cluster_id
                    )),
                }
            }
            MemberCommand::Promote { id } => {
                let response = client.member_promote(*id).await?;
                match printer.format {
                    super::OutputFormat::Json => printer.json(&response),
                    _ => printer.line(&format!(
                        "Member {id:x} promoted in cluster {:x}",
                        response.header.cluster_id
                    )),
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
        let ctl = Ctl::try_parse_from([
            "keelctl",
            "member",
            "add",
            "n4",
            "--peer-urls",
            "http://a:1,http://b:2",
        ])
        .unwrap();
        let Command::Member(MemberCommand::Add { peer_urls, .. }) = ctl.command else {
            panic!("not add")
        };
        assert_eq!(peer_urls.len(), 2);
        let ctl = Ctl::try_parse_from(["keelctl", "member", "remove", "8e9e05c52164694d"]).unwrap();
        assert!(matches!(
            ctl.command,
            Command::Member(MemberCommand::Remove {
                id: 0x8e9e05c52164694d
            })
        ));
        assert!(Ctl::try_parse_from(["keelctl", "member", "promote", "zz"]).is_err());
    }
}
