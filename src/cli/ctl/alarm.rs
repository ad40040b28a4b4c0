//! `keelctl alarm list|disarm`: the raised alarms (keel raises NOSPACE when a member's
//! database outgrows its quota). A keel member keeps its own alarm, so both subcommands ask
//! every endpoint rather than the first that answers.

use anyhow::bail;
use clap::Subcommand;

use super::printer::Printer;
use crate::api::models::{AlarmAction, AlarmMember, AlarmRequest, AlarmType};
use crate::client::Client;

/// The alarm subcommands.
#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// List the raised alarms.
    List,
    /// Clear every raised alarm.
    Disarm,
}

impl AlarmCommand {
    /// Runs the subcommand on every endpoint; fails when any did not answer.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let mut alarms: Vec<AlarmMember> = Vec::new();
        let mut failures = Vec::new();
        for endpoint in client.endpoints() {
            let member = client.for_endpoint(endpoint);
            match raised(&member, self).await {
                Ok(found) => {
                    for alarm in found {
                        if !alarms.contains(&alarm) {
                            alarms.push(alarm);
                        }
                    }
                }
                Err(e) => failures.push(format!("{endpoint}: {e}")),
            }
        }
        printer.alarms(&alarms);
        if !failures.is_empty() {
            bail!("no answer from {}", failures.join("; "));
        }
        Ok(())
    }
}

/// The alarms one member has raised; for `disarm`, each is cleared (and returned, as etcdctl
/// prints what it disarmed).
async fn raised(member: &Client, command: &AlarmCommand) -> anyhow::Result<Vec<AlarmMember>> {
    let listed = member
        .alarm(&request(AlarmAction::Get, 0, AlarmType::None))
        .await?;
    if let AlarmCommand::Disarm = command {
        for alarm in &listed.alarms {
            member
                .alarm(&request(
                    AlarmAction::Deactivate,
                    alarm.member_id,
                    alarm.alarm,
                ))
                .await?;
        }
    }
    Ok(listed.alarms)
}

fn request(action: AlarmAction, member_id: u64, alarm: AlarmType) -> AlarmRequest {
    AlarmRequest {
        action,
        member_id,
        alarm,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use super::*;
    use clap::Parser;

    #[test]
    fn parses_list_and_disarm() {
        let ctl = Ctl::try_parse_from(["keelctl", "alarm", "list"]).unwrap();
        assert!(matches!(ctl.command, Command::Alarm(AlarmCommand::List)));
        let ctl = Ctl::try_parse_from(["keelctl", "alarm", "disarm"]).unwrap();
        assert!(matches!(ctl.command, Command::Alarm(AlarmCommand::Disarm)));
        assert!(Ctl::try_parse_from(["keelctl", "alarm"]).is_err());
        assert!(Ctl::try_parse_from(["keelctl", "alarm", "arm"]).is_err());
    }
}
