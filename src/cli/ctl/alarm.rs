//! `keelctl alarm list|disarm`: the armed alarms (keel arms NOSPACE when a write finds the
//! database over its quota). Alarms are replicated, so one member answers for the cluster;
//! `disarm` clears each listed alarm and prints what it cleared, as etcdctl does.

use clap::Subcommand;

use super::printer::Printer;
use crate::api::models::{AlarmAction, AlarmRequest, AlarmType};
use crate::client::Client;

/// The alarm subcommands.
#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// List the armed alarms.
    List,
    /// Clear every armed alarm.
    Disarm,
}

impl AlarmCommand {
    /// Lists the alarms, and for `disarm` clears each one.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let listed = client
            .alarm(&request(AlarmAction::Get, 0, AlarmType::None))
            .await?;
        let alarms = match self {
            AlarmCommand::List => listed.alarms,
            AlarmCommand::Disarm => {
                let mut disarmed = Vec::new();
                for alarm in &listed.alarms {
                    let answer = client
                        .alarm(&request(
                            AlarmAction::Deactivate,
                            alarm.member_id,
                            alarm.alarm,
                        ))
                        .await?;
                    disarmed.extend(answer.alarms);
                }
                disarmed
            }
        };
        printer.alarms(&alarms);
        Ok(())
    }
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
