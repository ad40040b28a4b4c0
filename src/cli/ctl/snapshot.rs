//! `keelctl snapshot save FILE`: streams a member's state into FILE (written to FILE.part
//! first, so an interrupted save never leaves a file that looks complete). Like etcdctl,
//! stdout gets only `Snapshot saved at FILE`; the size and a CRC-32 of what reached the disk
//! go to stderr, with a progress bar while it downloads when stderr is a terminal.

use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
        let part = part_path(file);
        let started = Instant::now();
        let mut out = tokio::fs::File::create(&part)
            .await
            .with_context(|| format!("cannot create {}", part.display()))?;
        let bar = download_bar();
        let saved = client
            .snapshot_with_progress(&mut out, |written, total| {
                bar.set_length(total);
                bar.set_position(written);
            })
            .await;
        bar.finish_and_clear();
        let size = match saved {
            Ok(size) => size,
            Err(e) => {
                drop(out);
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e.into());
            }
        };
        // On disk before it is called saved.
        out.sync_all().await?;
        drop(out);
        tokio::fs::rename(&part, file)
            .await
            .with_context(|| format!("cannot rename {} to {}", part.display(), file.display()))?;
        let bytes = tokio::fs::read(file).await?;
        let crc = crc32fast::hash(&bytes);
        eprintln!(
            "fetched snapshot: {} ({size} bytes) in {:?}, crc32 {crc:08x}",
            human_bytes(size),
            started.elapsed()
        );
        printer.line(&format!("Snapshot saved at {}", file.display()));
        Ok(())
    }
}

/// `FILE.part`, as etcdctl names the file being written.
fn part_path(file: &Path) -> PathBuf {
    let mut name = OsString::from(file.as_os_str());
    name.push(".part");
    PathBuf::from(name)
}

/// A byte-count bar on stderr, drawn only when a person is watching: a pipe or a log file
/// gets nothing but the closing lines.
fn download_bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template(
            "fetching snapshot {bar:40} {binary_bytes}/{binary_total_bytes}",
        )
        .expect("a valid template"),
    );
    bar
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
        assert_eq!(part_path(&file), PathBuf::from("/tmp/x.db.part"));
    }
}
