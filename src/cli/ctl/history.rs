//! `keelctl history KEY`: every version of a key the cluster still holds, oldest first.
//!
//! The gateway has no history route, so this walks back with `get --rev`: from the key's
//! current version, read it again just before that version's mod revision, and so on down
//! to its create revision. That costs one request per version and sees only the key's
//! current life (a delete ends a life; versions from before it are not reachable this way),
//! and it stops at the compaction point. `keelctl inspect DATA_DIR history KEY` reads the
//! store's own index instead and shows deletes too, but needs the member stopped.

use anyhow::bail;
use clap::Args;

use super::printer::{lease_hex, show_value, Printer};
use super::OutputFormat;
use crate::api::models::{KeyValue, RangeRequest};
use crate::client::{Client, Error};

/// Flags of `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The key.
    pub key: String,
    /// Start from the version current at this revision (0: the latest).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
}

/// The key's versions oldest first, and the compacted revision if the walk hit it.
pub async fn walk(
    client: &Client,
    key: &[u8],
    revision: i64,
) -> anyhow::Result<(Vec<KeyValue>, Option<i64>)> {
    let mut versions = Vec::new();
    let mut at = revision;
    let mut compacted = None;
    loop {
        let request = RangeRequest {
            key: key.to_vec(),
            revision: at,
            ..Default::default()
        };
        match client.range(&request).await {
            Ok(response) => match response.kvs.into_iter().next() {
                Some(kv) => {
                    let first = kv.version <= 1;
                    at = kv.mod_revision - 1;
                    versions.push(kv);
                    if first || at <= 0 {
                        break;
                    }
                }
                None => break,
            },
            Err(Error::Api { message, .. }) if message.contains("compacted") => {
                compacted = Some(at);
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    versions.reverse();
    Ok((versions, compacted))
}

impl HistoryArgs {
    /// Runs `history`.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let (versions, compacted) = walk(client, self.key.as_bytes(), self.rev).await?;
        if versions.is_empty() {
            bail!(
                "key {:?} not found (a deleted key's past shows in `keelctl inspect DATA_DIR history`)",
                self.key
            );
        }
        match printer.format {
            OutputFormat::Json => printer
                .json(&serde_json::json!({"versions": versions, "compacted_before": compacted})),
            _ => {
                let rows = versions
                    .iter()
                    .map(|kv| {
                        vec![
                            kv.mod_revision.to_string(),
                            kv.version.to_string(),
                            if kv.lease == 0 {
                                String::new()
                            } else {
                                lease_hex(kv.lease)
                            },
                            if printer.hex {
                                super::printer::hex(&kv.value)
                            } else {
                                show_value(&kv.value)
                            },
                        ]
                    })
                    .collect();
                printer.table(&["MOD REV", "VERSION", "LEASE", "VALUE"], rows);
                if let Some(revision) = compacted {
                    printer.line(&format!(
                        "(older versions were compacted: revision {revision} is gone)"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use clap::Parser;

    #[test]
    fn parses_key_and_revision() {
        let ctl = Ctl::try_parse_from(["keelctl", "history", "k", "--rev", "9"]).unwrap();
        let Command::History(args) = ctl.command else {
            panic!("not history")
        };
        assert_eq!((args.key.as_str(), args.rev), ("k", 9));
    }
}
