//! `keelctl snapshot save FILE`: streams a member's state into FILE (written to FILE.part
//! first, so an interrupted save never leaves a file that looks complete). Like etcdctl,
//! stdout gets only `Snapshot saved at FILE`; the size and a CRC-32 of what reached the disk
//! go to stderr, with a progress bar while it downloads when stderr is a terminal.
//! `--format etcd` saves an etcd v3 snapshot file (bbolt and its SHA-256) instead of keel's
//! own: etcd's `etcdctl snapshot status|restore` accept it. `keelctl snapshot status FILE`
//! reads either offline.

use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::printer::{human_bytes, Printer};
use super::OutputFormat;
use crate::client::Client;

/// The snapshot subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save a snapshot of the first endpoint that answers.
    Save {
        /// Where to write it.
        file: PathBuf,
        /// keel's own format (restores fastest), or an etcd v3 snapshot for etcd's tools.
        #[arg(long, value_enum, default_value_t = FileFormat::Keel)]
        format: FileFormat,
    },
    /// Hash, revision, key count and size of a saved snapshot (read offline).
    Status {
        /// The snapshot file.
        file: PathBuf,
    },
}

/// The format `snapshot save` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// keel's own.
    Keel,
    /// etcd v3 (a bbolt database and its SHA-256).
    Etcd,
}

impl From<FileFormat> for keel_store::SnapshotFormat {
    fn from(format: FileFormat) -> Self {
        match format {
            FileFormat::Keel => keel_store::SnapshotFormat::Keel,
            FileFormat::Etcd => keel_store::SnapshotFormat::Etcd,
        }
    }
}

/// What `snapshot status` reports, in etcdctl's JSON names.
#[derive(Debug, serde::Serialize)]
pub struct SnapshotStatus {
    /// The keyspace's hash, as `endpoint hashkv` computes it: equal to the serving
    /// member's at the snapshot's revision.
    pub hash: u32,
    /// The snapshot's revision.
    pub revision: i64,
    /// Keys in the snapshot (live keys; etcd counts its backend's entries).
    #[serde(rename = "totalKey")]
    pub total_key: i64,
    /// The file's size in bytes.
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

/// `snapshot status FILE`: imports the file (either format) into a throw-away keyspace,
/// which also proves that it can be restored.
pub fn status(file: &Path, printer: &Printer) -> anyhow::Result<()> {
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let total_size = input.metadata()?.len();
    let store = keel_store::Store::temporary(keel_store::Config::default())?;
    let mut input = std::io::BufReader::new(input);
    let head = std::io::BufRead::fill_buf(&mut input)?;
    let imported =
        if keel_store::SnapshotFormat::detect(head) == Some(keel_store::SnapshotFormat::Etcd) {
            // The keyspace is thrown away, so the token secret auth would need signs nothing.
            let options = keel_store::EtcdImportOptions {
                token_secret: b"unused".to_vec(),
                ..Default::default()
            };
            store.import_etcd(input, &options).map(|_| ())
        } else {
            store.import(&mut input)
        };
    imported.with_context(|| format!("cannot read snapshot {}", file.display()))?;
    let count = store.range(&keel_store::RangeRequest {
        key: vec![0],
        range_end: vec![0],
        count_only: true,
        ..Default::default()
    })?;
    let status = SnapshotStatus {
        hash: store.hash_kv(0)?.hash,
        revision: store.current_revision(),
        total_key: count.count,
        total_size,
    };
    match printer.format {
        OutputFormat::Json => printer.json(&status),
        OutputFormat::Fields => {
            printer.line(&format!("\"Hash\" : {}", status.hash));
            printer.line(&format!("\"Revision\" : {}", status.revision));
            printer.line(&format!("\"Keys\" : {}", status.total_key));
            printer.line(&format!("\"Size\" : {}", status.total_size));
        }
        OutputFormat::Table => printer.table(
            &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"],
            vec![vec![
                format!("{:x}", status.hash),
                status.revision.to_string(),
                status.total_key.to_string(),
                human_bytes(status.total_size),
            ]],
        ),
        OutputFormat::Simple => printer.line(&format!(
            "{:x}, {}, {}, {}",
            status.hash,
            status.revision,
            status.total_key,
            human_bytes(status.total_size)
        )),
    }
    Ok(())
}

impl SnapshotCommand {
    /// Runs the subcommand; the download is bounded by `timeout` when there is one.
    pub async fn execute(
        &self,
        client: &Client,
        printer: &Printer,
        timeout: Option<Duration>,
    ) -> anyhow::Result<()> {
        let (file, format) = match self {
            SnapshotCommand::Save { file, format } => (file, *format),
            SnapshotCommand::Status { file } => return status(file, printer),
        };
        let part = part_path(file);
        let started = Instant::now();
        let mut out = tokio::fs::File::create(&part)
            .await
            .with_context(|| format!("cannot create {}", part.display()))?;
        let bar = download_bar();
        let download = client.snapshot_with_progress(&mut out, format.into(), |written, total| {
            bar.set_length(total);
            bar.set_position(written);
        });
        let saved = match timeout {
            None => download.await.map_err(anyhow::Error::from),
            Some(limit) => match tokio::time::timeout(limit, download).await {
                Ok(saved) => saved.map_err(anyhow::Error::from),
                Err(_) => Err(anyhow::anyhow!("command timed out after {limit:?}")),
            },
        };
        bar.finish_and_clear();
        let size = match saved {
            Ok(size) => size,
            Err(e) => {
                drop(out);
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
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
        let Command::Snapshot(SnapshotCommand::Save { file, format }) = ctl.command else {
            panic!("not save")
        };
        assert_eq!(file, PathBuf::from("/tmp/x.db"));
        assert_eq!(format, FileFormat::Keel);
        let ctl = Ctl::try_parse_from(["keelctl", "snapshot", "save", "--format", "etcd", "x"]);
        assert!(matches!(
            ctl.unwrap().command,
            Command::Snapshot(SnapshotCommand::Save {
                format: FileFormat::Etcd,
                ..
            })
        ));
        assert!(
            Ctl::try_parse_from(["keelctl", "snapshot", "save", "--format", "zip", "x"]).is_err()
        );
        assert_eq!(part_path(&file), PathBuf::from("/tmp/x.db.part"));
        let ctl = Ctl::try_parse_from(["keelctl", "snapshot", "status", "/tmp/x.db"]).unwrap();
        assert!(matches!(
            ctl.command,
            Command::Snapshot(SnapshotCommand::Status { .. })
        ));
    }
}
