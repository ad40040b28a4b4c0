//! `keelctl inspect DATA_DIR get|ls|history|status`: reads a member's keyspace offline
//! (`DATA_DIR/kv`), straight from sled, without a running cluster; `status` also shows its
//! Raft log's state (`DATA_DIR/raft`: vote, last, committed and purged index) and the last
//! log id applied to the keyspace.
//!
//! The member must be stopped: sled holds an exclusive lock on its directory, and reading
//! a live member's files behind its back could show a state no client ever saw. This is
//! also where `history` lives: the gateway has no route for a key's past versions, and
//! walking `get --rev` over every revision of a remote cluster would be slow and still miss
//! deletes, whereas the store keeps each key's history indexed.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};

use super::ls::{branches, print_branches};
use super::printer::{human_bytes, lease_hex, show_value, Printer, RangeView};
use super::{range_end, range_key, OutputFormat};
use crate::api::models::{KeyValue, RangeResponse};

/// Flags of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The member's data directory (the one given to `keel serve --data-dir`).
    pub data_dir: PathBuf,
    /// What to show.
    #[command(subcommand)]
    pub what: InspectCommand,
}

/// What `inspect` shows.
#[derive(Debug, Subcommand)]
pub enum InspectCommand {
    /// Keys, as `get` prints them.
    Get {
        /// The key, or the first key.
        key: String,
        /// Every key with KEY as prefix.
        #[arg(long)]
        prefix: bool,
        /// Read at this revision (0: the latest).
        #[arg(long, default_value_t = 0)]
        rev: i64,
    },
    /// The tree of `keelctl ls`.
    Ls {
        /// Only keys with this prefix.
        #[arg(default_value = "")]
        prefix: String,
        /// Segments per branch.
        #[arg(long, default_value_t = 1)]
        depth: usize,
        /// Only the N biggest branches.
        #[arg(long, default_value_t = 0)]
        top: usize,
    },
    /// Every retained version of a key (puts and deletes), oldest first.
    History {
        /// The key.
        key: String,
    },
    /// Revisions, size, leases and hash.
    Status,
}

impl InspectArgs {
    fn open(&self) -> anyhow::Result<keel_store::Store> {
        let path = self.data_dir.join("kv");
        // sled would create an empty keyspace where none is; a typo must not look empty.
        if !path.is_dir() {
            bail!(
                "{} holds no keyspace (no kv directory): is it a keel data dir?",
                self.data_dir.display()
            );
        }
        let store = keel_store::Store::open(&path, keel_store::Config::default()).map_err(|e| {
            let text = e.to_string();
            if text.contains("lock")
                || text.contains("WouldBlock")
                || text.contains("temporarily unavailable")
            {
                anyhow::anyhow!(
                    "{} is in use by a running member; stop it first ({text})",
                    path.display()
                )
            } else {
                anyhow::anyhow!("cannot open {}: {text}", path.display())
            }
        })?;
        if store.torn()? {
            eprintln!(
                "warning: {} was cut short by a crash part-way through a Raft entry, and may \
                 hold part of it; the member rebuilds it from its last snapshot and log when it \
                 starts",
                path.display()
            );
        }
        Ok(store)
    }

    /// The Raft log's state (`DATA_DIR/raft`); `None` when the member has none (`--single`).
    fn raft_summary(&self) -> anyhow::Result<Option<keel_raft::LogSummary>> {
        let path = self.data_dir.join("raft");
        keel_raft::LogStore::inspect(&path)
            .with_context(|| format!("cannot read {}", path.display()))
    }

    /// Runs `inspect`.
    pub fn execute(&self, printer: &Printer) -> anyhow::Result<()> {
        let store = self.open()?;
        match &self.what {
            InspectCommand::Get { key, prefix, rev } => {
                let typed = key.as_bytes();
                let answer = store
                    .range(&keel_store::RangeRequest {
                        range_end: range_end(typed, *prefix, false),
                        key: range_key(typed, *prefix, false),
                        revision: *rev,
                        ..Default::default()
                    })
                    .context("range")?;
                let response = RangeResponse {
                    kvs: answer.kvs.into_iter().map(Into::into).collect(),
                    more: answer.more,
                    count: answer.count,
                    ..Default::default()
                };
                printer.range(&response, RangeView::default());
            }
            InspectCommand::Ls { prefix, depth, top } => {
                let key = prefix.as_bytes().to_vec();
                let answer = store.range(&keel_store::RangeRequest {
                    range_end: range_end(&key, true, false),
                    key: if key.is_empty() { vec![0] } else { key },
                    ..Default::default()
                })?;
                let kvs: Vec<KeyValue> = answer.kvs.into_iter().map(Into::into).collect();
                let (branches, total) = branches(&kvs, prefix, *depth);
                print_branches(printer, branches, total, *top);
            }
            InspectCommand::History { key } => {
                let events = store.history(key.as_bytes())?;
                if events.is_empty() {
                    bail!("no retained history for key {key:?}");
                }
                let events: Vec<crate::api::models::Event> =
                    events.into_iter().map(Into::into).collect();
                match printer.format {
                    OutputFormat::Json => printer.json(&events),
                    _ => printer.table(
                        &["MOD REV", "TYPE", "VERSION", "CREATE REV", "LEASE", "VALUE"],
                        events
                            .iter()
                            .map(|e| {
                                let put = e.kind == crate::api::models::EventType::Put;
                                vec![
                                    e.kv.mod_revision.to_string(),
                                    if put { "PUT" } else { "DELETE" }.into(),
                                    e.kv.version.to_string(),
                                    e.kv.create_revision.to_string(),
                                    if e.kv.lease == 0 {
                                        String::new()
                                    } else {
                                        lease_hex(e.kv.lease)
                                    },
                                    if put {
                                        show_value(&e.kv.value)
                                    } else {
                                        String::new()
                                    },
                                ]
                            })
                            .collect(),
                    ),
                }
            }
            InspectCommand::Status => {
                let hash = store.hash_kv(0)?;
                let leases = store.leases()?;
                let size = store.size_on_disk()?;
                let applied = keel_raft::state_machine::last_applied(&store)?;
                let raft = self.raft_summary()?;
                let index = |id: Option<keel_raft::types::LogId>| id.map(|id| id.index);
                let vote = raft.as_ref().and_then(|r| r.vote);
                let term = vote.map(|v| v.leader_id.term);
                let voted_for = vote.and_then(|v| v.leader_id.voted_for());
                let last_index = raft.as_ref().and_then(|r| index(r.last_log_id));
                let committed = raft.as_ref().and_then(|r| index(r.committed));
                let purged = raft.as_ref().and_then(|r| index(r.last_purged));
                let status = serde_json::json!({
                    "revision": store.current_revision(),
                    "compact_revision": store.compact_revision(),
                    "db_size": size,
                    "leases": leases.len(),
                    "hash": hash.hash,
                    "raft": raft.as_ref().map(|_| serde_json::json!({
                        "term": term,
                        "voted_for": voted_for,
                        "last_index": last_index,
                        "committed_index": committed,
                        "last_purged_index": purged,
                    })),
                    "applied_index": index(applied),
                    "applied_term": applied.map(|id| id.leader_id.term),
                    "torn": store.torn()?,
                });
                let show = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                match printer.format {
                    OutputFormat::Json => printer.json(&status),
                    _ => printer.table(
                        &[
                            "REVISION",
                            "COMPACT REVISION",
                            "DB SIZE",
                            "LEASES",
                            "HASH",
                            "RAFT TERM",
                            "VOTED FOR",
                            "LAST INDEX",
                            "COMMITTED",
                            "PURGED",
                            "APPLIED",
                        ],
                        vec![vec![
                            store.current_revision().to_string(),
                            store.compact_revision().to_string(),
                            human_bytes(size),
                            leases.len().to_string(),
                            hash.hash.to_string(),
                            show(term),
                            voted_for
                                .map(|id| format!("{id:x}"))
                                .unwrap_or_else(|| "-".into()),
                            show(last_index),
                            show(committed),
                            show(purged),
                            applied
                                .map(|id| format!("{}-{}", id.leader_id.term, id.index))
                                .unwrap_or_else(|| "-".into()),
                        ]],
                    ),
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
    fn parses_and_refuses_a_dir_without_a_keyspace() {
        let ctl =
            Ctl::try_parse_from(["keelctl", "inspect", "/nonexistent", "history", "k"]).unwrap();
        let Command::Inspect(args) = ctl.command else {
            panic!("not inspect")
        };
        assert!(matches!(&args.what, InspectCommand::History { key } if key == "k"));
        let printer = Printer::new(OutputFormat::Simple, false);
        let err = args.execute(&printer).unwrap_err().to_string();
        assert!(err.contains("no kv directory"), "{err}");
    }
}
