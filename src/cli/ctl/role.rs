//! `keelctl role add|get|list|delete|grant-permission|revoke-permission`, in etcdctl's
//! syntax: `role grant-permission ROLE read|write|readwrite KEY [END]` with `--prefix` or
//! `--from-key` instead of END.

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};

use super::printer::Printer;
use crate::api::auth_models::{Permission, PermissionType};
use crate::client::Client;

/// The role subcommands.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Add a role.
    Add {
        /// The role.
        name: String,
    },
    /// A role's permissions.
    Get {
        /// The role.
        name: String,
    },
    /// Every role.
    List,
    /// Delete a role (and take it from every user).
    Delete {
        /// The role.
        name: String,
    },
    /// Grant a permission on a key or range to a role.
    GrantPermission {
        /// The role.
        name: String,
        /// What the permission allows.
        #[arg(value_enum, ignore_case = true)]
        kind: Kind,
        /// The key range.
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Revoke the permission on a key or range from a role.
    RevokePermission {
        /// The role.
        name: String,
        /// The key range.
        #[command(flatten)]
        range: RangeArgs,
    },
}

/// `read`, `write` or `readwrite`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Ranges and watches.
    Read,
    /// Puts and deletes.
    Write,
    /// Both.
    Readwrite,
}

impl From<Kind> for PermissionType {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Read => PermissionType::Read,
            Kind::Write => PermissionType::Write,
            Kind::Readwrite => PermissionType::ReadWrite,
        }
    }
}

/// A key, an optional end, `--prefix` or `--from-key`.
#[derive(Clone, Debug, Args)]
pub struct RangeArgs {
    /// The key.
    pub key: String,
    /// End of the range, exclusive.
    pub end: Option<String>,
    /// Every key with the prefix KEY.
    #[arg(long)]
    pub prefix: bool,
    /// Every key from KEY on.
    #[arg(long)]
    pub from_key: bool,
}

impl RangeArgs {
    /// The key and range_end to send.
    pub fn bounds(&self) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let key = self.key.as_bytes().to_vec();
        let range_end = match (&self.end, self.prefix, self.from_key) {
            (Some(_), true, _) | (Some(_), _, true) => {
                bail!("an end key cannot be combined with --prefix or --from-key")
            }
            (_, true, true) => bail!("--prefix and --from-key cannot be combined"),
            (Some(end), false, false) => end.as_bytes().to_vec(),
            (None, prefix, from_key) => super::range_end(&key, prefix, from_key),
        };
        Ok((key, range_end))
    }
}

impl RoleCommand {
    /// Runs the subcommand.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        match self {
            RoleCommand::Add { name } => {
                let response = client.role_add(name).await?;
                printer.done(&format!("Role {name} created"), &response);
            }
            RoleCommand::Get { name } => printer.role(name, &client.role_get(name).await?),
            RoleCommand::List => {
                let response = client.role_list().await?;
                printer.names(&response.roles, &response);
            }
            RoleCommand::Delete { name } => {
                let response = client.role_delete(name).await?;
                printer.done(&format!("Role {name} deleted"), &response);
            }
            RoleCommand::GrantPermission { name, kind, range } => {
                let (key, range_end) = range.bounds()?;
                let permission = Permission {
                    perm_type: (*kind).into(),
                    key,
                    range_end,
                };
                let response = client.role_grant_permission(name, permission).await?;
                printer.done(&format!("Role {name} updated"), &response);
            }
            RoleCommand::RevokePermission { name, range } => {
                let (key, range_end) = range.bounds()?;
                let response = client
                    .role_revoke_permission(name, &key, &range_end)
                    .await?;
                let what = if range_end.is_empty() {
                    format!("key {}", printer.text(&key))
                } else {
                    format!("range {}", printer.permission_range(&key, &range_end))
                };
                printer.done(
                    &format!("Permission of {what} is revoked from role {name}"),
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
    fn grant_permission_takes_etcdctls_syntax() {
        let parse = |args: &[&str]| {
            let mut all = vec!["keelctl", "role"];
            all.extend_from_slice(args);
            Ctl::try_parse_from(all).map(|ctl| ctl.command)
        };
        let Ok(Command::Role(RoleCommand::GrantPermission { name, kind, range })) =
            parse(&["grant-permission", "app", "readwrite", "/app/", "--prefix"])
        else {
            panic!("not grant-permission")
        };
        assert_eq!((name.as_str(), kind), ("app", Kind::Readwrite));
        assert_eq!(
            range.bounds().unwrap(),
            (b"/app/".to_vec(), b"/app0".to_vec())
        );
        let Ok(Command::Role(RoleCommand::GrantPermission { range, .. })) =
            parse(&["grant-permission", "app", "READ", "a", "c"])
        else {
            panic!("not grant-permission")
        };
        assert_eq!(range.bounds().unwrap(), (b"a".to_vec(), b"c".to_vec()));
        let Ok(Command::Role(RoleCommand::RevokePermission { range, .. })) =
            parse(&["revoke-permission", "app", "k", "--from-key"])
        else {
            panic!("not revoke-permission")
        };
        assert_eq!(range.bounds().unwrap(), (b"k".to_vec(), vec![0]));
        let Ok(Command::Role(RoleCommand::RevokePermission { range, .. })) =
            parse(&["revoke-permission", "app", "a", "c", "--prefix"])
        else {
            panic!("not revoke-permission")
        };
        assert!(range.bounds().is_err());
        assert!(parse(&["grant-permission", "app", "admin", "k"]).is_err());
    }
}
