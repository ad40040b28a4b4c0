//! `keelctl user add|get|list|delete|passwd|grant-role|revoke-role`, as etcdctl spells them.
//!
//! A password comes from `NAME:PASSWORD`, `--new-user-password`, or else one line of stdin
//! (no prompt when it is given, so scripts never hang on a terminal).

use std::io::BufRead as _;

use anyhow::{bail, Context as _};
use clap::Subcommand;

use super::printer::Printer;
use crate::client::Client;

/// The user subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user: `user add NAME[:PASSWORD]`.
    Add {
        /// `name` or `name:password` (its own id: the global `--user` is `user`).
        #[arg(id = "new_user", value_name = "NAME[:PASSWORD]")]
        user: String,
        /// The password (instead of `name:password` or stdin).
        #[arg(long)]
        new_user_password: Option<String>,
        /// A user without a password, identified only by its client certificate.
        #[arg(long)]
        no_password: bool,
    },
    /// A user's roles.
    Get {
        /// The user.
        name: String,
    },
    /// Every user.
    List,
    /// Delete a user (its tokens stop working).
    Delete {
        /// The user.
        name: String,
    },
    /// Change a user's password.
    Passwd {
        /// The user.
        name: String,
        /// The new password (instead of stdin).
        #[arg(long)]
        new_user_password: Option<String>,
    },
    /// Grant a role to a user.
    GrantRole {
        /// The user.
        name: String,
        /// The role.
        role: String,
    },
    /// Revoke a role from a user.
    RevokeRole {
        /// The user.
        name: String,
        /// The role.
        role: String,
    },
}

/// Reads a password: one line of stdin, with `prompt` on stderr when stdin is a terminal.
pub fn read_password(prompt: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given (use NAME:PASSWORD, --new-user-password, or a line on stdin)");
    }
    Ok(password)
}

/// Splits `name[:password]`; the password is `None` when not given.
pub fn split_user(text: &str) -> anyhow::Result<(String, Option<String>)> {
    let (name, password) = match text.split_once(':') {
        Some((name, password)) => (name, Some(password.to_owned())),
        None => (text, None),
    };
    if name.is_empty() {
        bail!("user name is empty in {text:?}");
    }
    Ok((name.to_owned(), password))
}

impl UserCommand {
    /// Runs the subcommand.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        match self {
            UserCommand::Add {
                user,
                new_user_password,
                no_password,
            } => {
                let (name, inline) = split_user(user)?;
                let password = match (inline, new_user_password, no_password) {
                    (_, _, true) => String::new(),
                    (Some(password), _, _) => password,
                    (None, Some(password), _) => password.clone(),
                    (None, None, false) => read_password(&format!("Password of {name}: "))?,
                };
                let response = client.user_add(&name, &password, *no_password).await?;
                printer.done(&format!("User {name} created"), &response);
            }
            UserCommand::Get { name } => printer.user(name, &client.user_get(name).await?),
            UserCommand::List => {
                let response = client.user_list().await?;
                printer.names(&response.users, &response);
            }
            UserCommand::Delete { name } => {
                let response = client.user_delete(name).await?;
                printer.done(&format!("User {name} deleted"), &response);
            }
            UserCommand::Passwd {
                name,
                new_user_password,
            } => {
                let password = match new_user_password {
                    Some(password) => password.clone(),
                    None => read_password(&format!("New password of {name}: "))?,
                };
                let response = client.user_change_password(name, &password).await?;
                printer.done("Password updated", &response);
            }
            UserCommand::GrantRole { name, role } => {
                let response = client.user_grant_role(name, role).await?;
                printer.done(&format!("Role {role} is granted to user {name}"), &response);
            }
            UserCommand::RevokeRole { name, role } => {
                let response = client.user_revoke_role(name, role).await?;
                printer.done(
                    &format!("Role {role} is revoked from user {name}"),
                    &response,
                );
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
    fn parses_subcommands_and_user_passwords() {
        let ctl = Ctl::try_parse_from(["keelctl", "user", "add", "alice:s3cret:x"]).unwrap();
        assert_eq!(
            ctl.global.user, None,
            "the global --user is not the new user"
        );
        let Command::User(UserCommand::Add { user, .. }) = ctl.command else {
            panic!("not add")
        };
        assert_eq!(
            split_user(&user).unwrap(),
            ("alice".to_owned(), Some("s3cret:x".to_owned()))
        );
        assert_eq!(split_user("bob").unwrap(), ("bob".to_owned(), None));
        assert!(split_user(":pw").is_err());
        let ctl = Ctl::try_parse_from(["keelctl", "user", "grant-role", "alice", "app"]).unwrap();
        assert!(matches!(
            ctl.command,
            Command::User(UserCommand::GrantRole { ref name, ref role }) if name == "alice" && role == "app"
        ));
        let ctl =
            Ctl::try_parse_from(["keelctl", "user", "add", "cn-only", "--no-password"]).unwrap();
        assert!(matches!(
            ctl.command,
            Command::User(UserCommand::Add {
                no_password: true,
                ..
            })
        ));
        assert!(Ctl::try_parse_from(["keelctl", "user", "revoke-role", "alice"]).is_err());
    }
}
