//! `keelctl ls [PREFIX] --depth N --top N`: where the keyspace's keys and bytes are.
//!
//! Keys under PREFIX are grouped by their first N `/`-separated segments after it; each
//! branch shows its key count, value bytes and the range of its mod revisions, biggest
//! first. The whole range is fetched in one request, so this is for looking, not for
//! keyspaces larger than a request may answer.

use std::collections::BTreeMap;

use clap::Args;

use super::printer::{human_bytes, Printer};
use super::{range_end, OutputFormat};
use crate::api::models::{KeyValue, RangeRequest};
use crate::client::Client;

/// Flags of `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only keys with this prefix (all keys when omitted).
    #[arg(default_value = "")]
    pub prefix: String,
    /// How many `/` segments below the prefix make a branch.
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Show only the N biggest branches (0: all).
    #[arg(long, default_value_t = 0)]
    pub top: usize,
}

/// One branch of the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Branch {
    /// The branch: the prefix and the first segments of its keys.
    pub path: String,
    /// Keys in it.
    pub keys: u64,
    /// Bytes of their values.
    pub value_bytes: u64,
    /// Smallest mod revision.
    pub min_mod_revision: i64,
    /// Largest mod revision.
    pub max_mod_revision: i64,
}

/// Groups `kvs` into branches, biggest (value bytes, then keys) first; also the total.
pub fn branches(kvs: &[KeyValue], prefix: &str, depth: usize) -> (Vec<Branch>, Branch) {
    let mut by_path: BTreeMap<String, Branch> = BTreeMap::new();
    let mut total = Branch {
        path: format!("{prefix}* (total)"),
        ..Default::default()
    };
    for kv in kvs {
        let key = String::from_utf8_lossy(&kv.key);
        let rest = key.strip_prefix(prefix).unwrap_or(&key);
        // Keep the separators so a branch reads as a key prefix ("a/b/").
        let mut cut = 0;
        let mut segments = 0;
        for (at, c) in rest.char_indices() {
            if c == '/' {
                segments += 1;
                if segments == depth.max(1) {
                    cut = at + 1;
                    break;
                }
            }
        }
        let path = if cut == 0 {
            rest.to_owned()
        } else {
            rest[..cut].to_owned()
        };
        let path = format!("{prefix}{path}");
        for branch in [
            by_path.entry(path.clone()).or_insert_with(|| Branch {
                path,
                ..Default::default()
            }),
            &mut total,
        ] {
            branch.keys += 1;
            branch.value_bytes += kv.value.len() as u64;
            branch.min_mod_revision = match branch.min_mod_revision {
                0 => kv.mod_revision,
                min => min.min(kv.mod_revision),
            };
            branch.max_mod_revision = branch.max_mod_revision.max(kv.mod_revision);
        }
    }
    let mut branches: Vec<Branch> = by_path.into_values().collect();
    branches.sort_by(|a, b| {
        (b.value_bytes, b.keys)
            .cmp(&(a.value_bytes, a.keys))
            .then(a.path.cmp(&b.path))
    });
    (branches, total)
}

/// Prints branches and the total.
pub fn print_branches(printer: &Printer, mut branches: Vec<Branch>, total: Branch, top: usize) {
    if top > 0 {
        branches.truncate(top);
    }
    if printer.format == OutputFormat::Json {
        return printer.json(&serde_json::json!({"branches": branches, "total": total}));
    }
    let row = |b: &Branch| {
        vec![
            b.path.clone(),
            b.keys.to_string(),
            human_bytes(b.value_bytes),
            b.min_mod_revision.to_string(),
            b.max_mod_revision.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = branches.iter().map(row).collect();
    rows.push(row(&total));
    printer.table(
        &[
            "BRANCH",
            "KEYS",
            "VALUE BYTES",
            "MIN MOD REV",
            "MAX MOD REV",
        ],
        rows,
    );
}

impl LsArgs {
    /// Runs `ls`.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let key = self.prefix.as_bytes().to_vec();
        let request = RangeRequest {
            range_end: range_end(&key, true, false),
            key: if key.is_empty() { vec![0] } else { key },
            ..Default::default()
        };
        let response = client.range(&request).await?;
        let (branches, total) = branches(&response.kvs, &self.prefix, self.depth);
        print_branches(printer, branches, total, self.top);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use super::*;
    use clap::Parser;

    fn kv(key: &str, value: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            mod_revision: rev,
            ..Default::default()
        }
    }

    #[test]
    fn groups_by_segments_biggest_first() {
        let kvs = [
            kv("/a/x", "1", 2),
            kv("/a/y", "22", 5),
            kv("/b/z", "12345", 3),
            kv("top", "", 9),
        ];
        let (branches, total) = branches(&kvs, "", 2);
        assert_eq!(branches[0].path, "/b/");
        assert_eq!(
            (
                branches[1].path.as_str(),
                branches[1].keys,
                branches[1].value_bytes
            ),
            ("/a/", 2, 3)
        );
        assert_eq!(
            (branches[1].min_mod_revision, branches[1].max_mod_revision),
            (2, 5)
        );
        assert_eq!(
            (total.keys, total.value_bytes, total.max_mod_revision),
            (4, 8, 9)
        );
        let ctl =
            Ctl::try_parse_from(["keelctl", "ls", "/a/", "--depth", "2", "--top", "3"]).unwrap();
        let Command::Ls(args) = ctl.command else {
            panic!("not ls")
        };
        assert_eq!((args.prefix.as_str(), args.depth, args.top), ("/a/", 2, 3));
    }
}
