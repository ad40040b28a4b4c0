//! `keelctl snapshot save FILE`: streams a member's state into FILE (written to FILE.part
//! first, so an interrupted save never leaves a file that looks complete).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use super::printer::{human_bytes, Printer};
use crate::client::Client;

/// The snapshot subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save a snapshot of the first endpoint that answers.
    Save {
        /// Where to write it.
        file: PathBuf,
    },
}

impl SnapshotCommand {
    /// Runs the subcommand.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let SnapshotCommand::Save { file } = self;
        let part = file.with_extension("part");
        let mut out = tokio::fs::File::create(&part)
            .await
            .with_context(|| format!("cannot create {}", part.display()))?;
        let size = client.snapshot(&mut out).await?;
        out.sync_all().await?;
        drop(out);
        tokio::fs::rename(&part, file)
            .await
            .with_context(|| format!("cannot rename {} to {}", part.display(), file.display()))?;
        let bytes = tokio::fs::read(file).await?;
        let crc = crc32fast::hash(&bytes);
        printer.line(&format!(
            "Snapshot saved at {} ({}, crc32 {crc:08x})",
            file.display(),
            human_bytes(size)
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use super::*;
    use clap::Parser;

    #[test]
    fn parses_save() {
        let ctl = Ctl::try_parse_from(["keelctl", "snapshot", "save", "/tmp/x.db"]).unwrap();
        let Command::Snapshot(SnapshotCommand::Save { file }) = ctl.command else {
            panic!("not save")
        };
        assert_eq!(file, PathBuf::from("/tmp/x.db"));
    }
}
