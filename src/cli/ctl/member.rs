//! `keelctl member list|add|remove|promote`.

use anyhow::bail;
use clap::Subcommand;

use super::printer::Printer;
use super::OutputFormat;
use crate::client::Client;

/// The member subcommands.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Every member.
    List,
    /// Add a member by its peer URLs.
    Add {
        /// The new member's name (informational: keel learns it when the member starts).
        /// Checked in `execute`, not by clap, to fail in etcdctl's words.
        name: Option<String>,
        /// Anything after the name: a mistake, most often a URL meant for --peer-urls.
        #[arg(hide = true)]
        extra: Vec<String>,
        /// Comma-separated peer URLs.
        #[arg(long, value_delimiter = ',')]
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

/// A member id as etcdctl takes it: hex.
pub fn parse_member_id(text: &str) -> Result<u64, String> {
    u64::from_str_radix(text, 16)
        .map_err(|_| format!("bad member ID {text:?}, expecting a hexadecimal ID"))
}

impl MemberCommand {
    /// Runs the subcommand.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        match self {
            MemberCommand::List => {
                let response = client.member_list().await?;
                printer.members(&response);
            }
            MemberCommand::Add {
                name,
                extra,
                peer_urls,
                learner,
            } => {
                let name = check_add_arguments(name.as_deref(), extra, peer_urls)?;
                // Refused before anything changes: etcdctl would add the member, then fail.
                if matches!(printer.format, OutputFormat::Table | OutputFormat::Fields) {
                    bail!(
                        "{} not supported as output format",
                        format_name(printer.format)
                    );
                }
                let mut response = client.member_add(peer_urls.clone(), *learner).await?;
                // etcd answers with the members after the change; an older server may not.
                if response.members.is_empty() {
                    response.members = client.member_list().await?.members;
                }
                printer.member_added(name, &response);
            }
            MemberCommand::Remove { id } => {
                let response = client.member_remove(*id).await?;
                match printer.format {
                    OutputFormat::Json => printer.json(&response),
                    _ => printer.line(&format!(
                        "Member {id:x} removed from cluster {:x}",
                        response.header.cluster_id
                    )),
                }
            }
            MemberCommand::Promote { id } => {
                let response = client.member_promote(*id).await?;
                match printer.format {
                    OutputFormat::Json => printer.json(&response),
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

/// etcdctl's checks of `member add`'s arguments, in its words; returns the name.
fn check_add_arguments<'a>(
    name: Option<&'a str>,
    extra: &[String],
    peer_urls: &[String],
) -> anyhow::Result<&'a str> {
    let Some(name) = name else {
        bail!("member name not provided");
    };
    if !extra.is_empty() {
        let mut message = String::from("too many arguments");
        for argument in std::iter::once(name).chain(extra.iter().map(String::as_str)) {
            if argument.to_lowercase().starts_with("http") {
                message.push_str(&format!(", did you mean --peer-urls={argument}"));
            }
        }
        bail!("{message}");
    }
    if peer_urls.is_empty() {
        bail!("member peer urls not provided");
    }
    Ok(name)
}

/// The `-w` value as it is spelled on the command line.
fn format_name(format: OutputFormat) -> String {
    use clap::ValueEnum as _;
    format
        .to_possible_value()
        .map(|value| value.get_name().to_owned())
        .unwrap_or_default()
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
        let urls = ["http://a:1".to_owned()];
        assert_eq!(check_add_arguments(Some("n4"), &[], &urls).unwrap(), "n4");
        let error = |name, extra: &[String], urls: &[String]| {
            check_add_arguments(name, extra, urls)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(error(None, &[], &urls), "member name not provided");
        assert_eq!(error(Some("n4"), &[], &[]), "member peer urls not provided");
        assert_eq!(
            error(Some("n4"), &urls, &[]),
            "too many arguments, did you mean --peer-urls=http://a:1"
        );
    }
}
