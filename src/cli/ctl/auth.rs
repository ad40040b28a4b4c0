//! `keelctl auth enable|disable|status`.

use clap::Subcommand;

use super::printer::Printer;
use crate::client::Client;

/// The auth subcommands.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Turn authentication on (a `root` user with the `root` role must exist).
    Enable,
    /// Turn authentication off (as root).
    Disable,
    /// Whether authentication is on, and the auth revision.
    Status,
}

impl AuthCommand {
    /// Runs the subcommand.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        match self {
            AuthCommand::Enable => {
                let response = client.auth_enable().await?;
                printer.done("Authentication Enabled", &response);
            }
            AuthCommand::Disable => {
                let response = client.auth_disable().await?;
                printer.done("Authentication Disabled", &response);
            }
            AuthCommand::Status => printer.auth_status(&client.auth_status().await?),
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
    fn parses_subcommands_and_the_user_flags() {
        let ctl = Ctl::try_parse_from(["keelctl", "--user", "root:pw", "auth", "enable"]).unwrap();
        assert!(matches!(ctl.command, Command::Auth(AuthCommand::Enable)));
        assert_eq!(ctl.global.user.as_deref(), Some("root:pw"));
        let ctl = Ctl::try_parse_from([
            "keelctl",
            "auth",
            "status",
            "--user",
            "root",
            "--password",
            "pw",
        ])
        .unwrap();
        assert_eq!(ctl.global.password.as_deref(), Some("pw"));
        assert!(Ctl::try_parse_from(["keelctl", "auth", "on"]).is_err());
    }
}
