//! `keelctl compaction REV`: discard the history before a revision.

use clap::Args;

use super::printer::Printer;
use crate::client::Client;

/// Flags of `compaction`.
#[derive(Debug, Args)]
pub struct CompactionArgs {
    /// Compact up to this revision.
    pub revision: i64,
    /// Wait until the compaction is durable (every keel compaction is).
    #[arg(long)]
    pub physical: bool,
}

impl CompactionArgs {
    /// Runs `compaction`.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let response = client.compact(self.revision, self.physical).await?;
        printer.compacted(self.revision, &response);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use clap::Parser;

    #[test]
    fn parses_the_revision() {
        let ctl = Ctl::try_parse_from(["keelctl", "compaction", "42", "--physical"]).unwrap();
        let Command::Compaction(args) = ctl.command else {
            panic!("not compaction")
        };
        assert_eq!(args.revision, 42);
        assert!(args.physical);
        assert!(Ctl::try_parse_from(["keelctl", "compaction", "x"]).is_err());
    }
}
