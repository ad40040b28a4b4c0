//! `keel image import FILE.tar | ls | rm REF`: the node's local image store, which the
//! `embedded` runtime runs containers from (keel_runtime::image). The store is
//! `<data dir>/images`: `--data-dir` is the agent's (`keel agent --data-dir`, default
//! /var/lib/keel-agent) or `keel dev`'s, whose agents all share `<dev data dir>/images`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use keel_runtime::image::{ImageRecord, ImageStore};

/// The image subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import the images of an OCI layout tar or a docker-archive tar (`docker save`).
    Import(ImportArgs),
    /// List the images in the store.
    #[command(alias = "list")]
    Ls(StoreArgs),
    /// Remove an image by reference (and the layers no other image uses).
    #[command(alias = "remove")]
    Rm(RemoveArgs),
}

/// Where the store is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The agent's (or `keel dev`'s) data dir; the store is its `images/`.
    #[arg(long, default_value = "/var/lib/keel-agent")]
    pub data_dir: PathBuf,
}

/// Flags of `keel image import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The archive (`.tar`, or gzip-compressed).
    pub file: PathBuf,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Flags of `keel image rm`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The image's reference (`busybox` is `docker.io/library/busybox:latest`).
    #[arg(required = true)]
    pub references: Vec<String>,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

impl StoreArgs {
    fn open(&self) -> anyhow::Result<ImageStore> {
        let root = self.data_dir.join("images");
        ImageStore::open(&root)
            .with_context(|| format!("opening the image store {}", root.display()))
    }
}

impl ImageCommand {
    /// Runs the subcommand (the store's file work happens off the async workers).
    pub async fn execute(self) -> anyhow::Result<()> {
        tokio::task::spawn_blocking(move || self.run(&mut std::io::stdout())).await?
    }

    fn run(self, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
        match self {
            ImageCommand::Import(args) => {
                let store = args.store.open()?;
                let records = store.import(&args.file)?;
                for record in records {
                    writeln!(out, "imported {} ({})", record.reference, record.manifest)?;
                }
            }
            ImageCommand::Ls(args) => {
                let images = args.open()?.list()?;
                write!(out, "{}", table(&images))?;
            }
            ImageCommand::Rm(args) => {
                let store = args.store.open()?;
                for reference in &args.references {
                    let removed = store.remove(reference)?;
                    writeln!(out, "Deleted: {}", removed.reference)?;
                }
            }
        }
        Ok(())
    }
}

/// `crictl images`' columns: the reference, the image id (config digest, 13 hex digits) and
/// the size.
fn table(images: &[ImageRecord]) -> String {
    let rows: Vec<[String; 3]> = images
        .iter()
        .map(|image| {
            let id = image.config.trim_start_matches("sha256:");
            [
                image.reference.clone(),
                id[..id.len().min(13)].to_owned(),
                human_size(image.size),
            ]
        })
        .collect();
    let header = ["REFERENCE".to_owned(), "IMAGE ID".into(), "SIZE".into()];
    let width = |i: usize| {
        std::iter::once(&header)
            .chain(&rows)
            .map(|row| row[i].len())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0), width(1));
    std::iter::once(&header)
        .chain(&rows)
        .map(|[a, b, c]| format!("{a:<w0$}   {b:<w1$}   {c}\n"))
        .collect()
}

/// Bytes as Docker prints them (`1.02MB`, decimal units).
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + units[unit]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ImageCommand,
    }

    fn run(args: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(std::iter::once("image").chain(args.iter().copied()))?;
        let mut out = Vec::new();
        cli.command.run(&mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn an_empty_store_lists_nothing_and_bad_input_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        assert_eq!(
            run(&["ls", "--data-dir", data]).unwrap(),
            "REFERENCE   IMAGE ID   SIZE\n"
        );
        let missing = run(&["rm", "busybox", "--data-dir", data]).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("\"docker.io/library/busybox:latest\" is not in the local image store"),
            "{missing}"
        );
        let not_tar = dir.path().join("x.tar");
        std::fs::write(&not_tar, b"plain text, no tar here").unwrap();
        let error = run(&["import", not_tar.to_str().unwrap(), "--data-dir", data]).unwrap_err();
        assert!(error.to_string().contains("x.tar"), "{error}");
        let absent = run(&["import", "/nonexistent.tar", "--data-dir", data]).unwrap_err();
        assert!(absent.to_string().contains("No such file"), "{absent}");
    }

    #[test]
    fn sizes_read_as_dockers() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_020_000), "1.02MB");
        assert_eq!(human_size(2_000_000_000), "2GB");
    }
}
