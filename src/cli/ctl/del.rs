//! `keelctl del KEY [RANGE_END]`: etcdctl's del; prints the number of keys deleted.

use clap::Args;

use super::printer::Printer;
use super::{range_end, range_key};
use crate::api::models::DeleteRangeRequest;
use crate::client::Client;

/// Flags of `del`.
#[derive(Debug, Args)]
pub struct DelArgs {
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
    /// Print the deleted key-values.
    #[arg(long)]
    pub prev_kv: bool,
}

impl DelArgs {
    /// The delete request these flags describe.
    pub fn request(&self) -> DeleteRangeRequest {
        let typed = self.key.as_bytes();
        let key = range_key(typed, self.prefix, self.from_key);
        let end = match &self.range_end {
            Some(end) => end.as_bytes().to_vec(),
            None => range_end(typed, self.prefix, self.from_key),
        };
        DeleteRangeRequest {
            key,
            range_end: end,
            prev_kv: self.prev_kv,
        }
    }

    /// Runs `del`.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        printer.delete(&client.delete_range(&self.request()).await?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use clap::Parser;

    #[test]
    fn parses_a_prefix_delete() {
        let ctl = Ctl::try_parse_from(["keelctl", "del", "a", "--prefix", "--prev-kv"]).unwrap();
        let Command::Del(args) = ctl.command else {
            panic!("not del")
        };
        let r = args.request();
        assert_eq!(
            (r.key.as_slice(), r.range_end.as_slice()),
            (&b"a"[..], &b"b"[..])
        );
        assert!(r.prev_kv);
    }
}
