//! `keelctl get KEY [RANGE_END]`: etcdctl's get.

use clap::{Args, ValueEnum};

use super::printer::{Printer, RangeView};
use super::{range_end, range_key};
use crate::api::models::{RangeRequest, SortOrder, SortTarget};
use crate::client::Client;

/// Flags of `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The key, or the first key of the range.
    pub key: String,
    /// End of the range (exclusive).
    pub range_end: Option<String>,
    /// Every key with KEY as prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Every key from KEY on.
    #[arg(long)]
    pub from_key: bool,
    /// Most keys to return (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Read at this revision (0: the latest).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Sort by this field.
    #[arg(long, value_enum)]
    pub sort_by: Option<SortBy>,
    /// Sort order.
    #[arg(long, value_enum)]
    pub order: Option<Order>,
    /// Keys only.
    #[arg(long)]
    pub keys_only: bool,
    /// The count only.
    #[arg(long)]
    pub count_only: bool,
    /// Values only.
    #[arg(long)]
    pub print_value_only: bool,
    /// l: linearizable, s: serializable (a member's local state, possibly stale).
    #[arg(long, default_value = "l", value_parser = ["l", "s"])]
    pub consistency: String,
}

/// `--sort-by`.
#[derive(Clone, Copy, Debug, ValueEnum)]
#[allow(missing_docs)]
#[value(rename_all = "UPPER")]
pub enum SortBy {
    Create,
    Key,
    Modify,
    Value,
    Version,
}

/// `--order`.
#[derive(Clone, Copy, Debug, ValueEnum)]
#[allow(missing_docs)]
#[value(rename_all = "UPPER")]
pub enum Order {
    Ascend,
    Descend,
}

impl GetArgs {
    /// The range request these flags describe.
    pub fn request(&self) -> RangeRequest {
        let typed = self.key.as_bytes();
        let key = range_key(typed, self.prefix, self.from_key);
        let end = match &self.range_end {
            Some(end) => end.as_bytes().to_vec(),
            None => range_end(typed, self.prefix, self.from_key),
        };
        let sort_target = match self.sort_by {
            None | Some(SortBy::Key) => SortTarget::Key,
            Some(SortBy::Create) => SortTarget::Create,
            Some(SortBy::Modify) => SortTarget::Mod,
            Some(SortBy::Value) => SortTarget::Value,
            Some(SortBy::Version) => SortTarget::Version,
        };
        let sort_order = match (self.order, self.sort_by) {
            (Some(Order::Ascend), _) => SortOrder::Ascend,
            (Some(Order::Descend), _) => SortOrder::Descend,
            // etcdctl ascends when only a sort field is given.
            (None, Some(_)) => SortOrder::Ascend,
            (None, None) => SortOrder::None,
        };
        RangeRequest {
            key,
            range_end: end,
            limit: self.limit,
            revision: self.rev,
            sort_order,
            sort_target,
            serializable: self.consistency == "s",
            keys_only: self.keys_only,
            count_only: self.count_only,
            ..Default::default()
        }
    }

    /// Runs `get`.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let response = client.range(&self.request()).await?;
        printer.range(
            &response,
            RangeView {
                keys_only: self.keys_only,
                values_only: self.print_value_only,
                count_only: self.count_only,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use super::*;
    use clap::Parser;

    #[test]
    fn parses_into_a_range_request() {
        let ctl = Ctl::try_parse_from([
            "keelctl",
            "get",
            "a/",
            "--prefix",
            "--limit",
            "2",
            "--rev",
            "7",
            "--sort-by",
            "MODIFY",
            "--consistency",
            "s",
            "--keys-only",
        ])
        .unwrap();
        let Command::Get(args) = ctl.command else {
            panic!("not get")
        };
        let r = args.request();
        assert_eq!(
            (r.key.as_slice(), r.range_end.as_slice()),
            (&b"a/"[..], &b"a0"[..])
        );
        assert_eq!((r.limit, r.revision), (2, 7));
        assert_eq!(
            (r.sort_target, r.sort_order),
            (SortTarget::Mod, SortOrder::Ascend)
        );
        assert!(r.serializable && r.keys_only);
    }
}
