//! `keel snapshot restore FILE`: etcdutl's job. Makes a new data dir from a snapshot written by
//! `keelctl snapshot save` (keel-store's export), for the first member of a NEW cluster; or
//! from an etcd 3.4/3.5 snapshot file (`etcdctl snapshot save`), recognised by its content,
//! its SHA-256 checked: keys with their revisions, leases, users, roles and the auth switch,
//! and the compaction revision move into keel.
//!
//! The keyspace is imported as it was, revisions included, so the new cluster's revisions
//! continue from the snapshot's. Its Raft marker (the old cluster's last applied log id and
//! membership) is cleared: the new member's log starts empty, and a keyspace claiming log
//! indexes that log does not have would make the new cluster skip its first entries. Restore
//! every member from the same file and start each with `keel serve --initial-cluster-state new`
//! and the same `--initial-cluster`.

use std::fs::File;
use std::io::{BufReader, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;

/// The snapshot subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Make a new member's data dir from a snapshot file.
    Restore(RestoreArgs),
}

/// Flags of `keel snapshot restore`, named as etcdutl's.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The snapshot file (from `keelctl snapshot save`).
    pub file: PathBuf,
    /// The data dir to create; it must not exist or be empty.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// This member's name in `--initial-cluster`.
    #[arg(long)]
    pub name: String,
    /// The new cluster: name=url,name=url,...
    #[arg(long)]
    pub initial_cluster: String,
    /// The new cluster's token.
    #[arg(long, default_value = "keel-cluster")]
    pub initial_cluster_token: String,
    /// This member's peer URL; it must be its URL in `--initial-cluster`.
    #[arg(long)]
    pub initial_advertise_peer_urls: Option<String>,
    /// Accept an etcd database without its trailing SHA-256 (a copy of `member/snap/db`).
    #[arg(long)]
    pub skip_hash_check: bool,
}

impl SnapshotCommand {
    /// Runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        let SnapshotCommand::Restore(args) = self;
        tokio::task::spawn_blocking(move || args.restore()).await?
    }
}

impl RestoreArgs {
    /// Checks the flags against each other, so a typo fails before anything is written.
    fn check_cluster(&self) -> anyhow::Result<()> {
        let config = Config {
            initial_cluster: self.initial_cluster.clone(),
            ..Config::default()
        };
        let members = config.initial_members()?;
        let member = members
            .iter()
            .find(|m| m.name == self.name)
            .with_context(|| format!("{} is not in --initial-cluster", self.name))?;
        if let Some(url) = &self.initial_advertise_peer_urls {
            let url = url.trim_end_matches('/');
            if !member
                .peer_urls
                .iter()
                .any(|u| u.as_str().trim_end_matches('/') == url)
            {
                bail!(
                    "--initial-advertise-peer-urls {url} is not {}'s URL in --initial-cluster",
                    self.name
                );
            }
        }
        Ok(())
    }

    fn restore(&self) -> anyhow::Result<()> {
        self.check_cluster()?;
        refuse_non_empty(&self.data_dir)?;
        let mut file = File::open(&self.file)
            .with_context(|| format!("cannot open {}", self.file.display()))?;
        let mut head = Vec::new();
        (&mut file)
            .take(keel_store::etcd_format::DETECT_LEN as u64)
            .read_to_end(&mut head)?;
        file.seek(SeekFrom::Start(0))?;
        match keel_store::SnapshotFormat::detect(&head) {
            Some(keel_store::SnapshotFormat::Etcd) => self.restore_etcd(file),
            Some(keel_store::SnapshotFormat::Keel) => self.restore_keel(file),
            None => bail!(
                "{} is neither a keel snapshot nor an etcd one",
                self.file.display()
            ),
        }
    }

    /// The new member's keyspace, created empty.
    fn new_store(&self) -> anyhow::Result<keel_store::Store> {
        let kv = self.data_dir.join("kv");
        keel_store::Store::open(&kv, keel_store::Config::default())
            .with_context(|| format!("cannot create {}", kv.display()))
    }

    fn restore_etcd(&self, file: File) -> anyhow::Result<()> {
        let store = self.new_store()?;
        let options = keel_store::EtcdImportOptions {
            skip_hash_check: self.skip_hash_check,
            // etcd's file has no token secret; a new one signs keel's tokens.
            token_secret: crate::auth::new_token_secret(),
        };
        let imported = store
            .import_etcd(std::io::BufReader::new(file), &options)
            .with_context(|| format!("cannot restore {}", self.file.display()))?;
        store.clear_marker()?;
        store.flush()?;
        eprintln!(
            "restored etcd snapshot {} into {} at revision {} ({} revisions, {} keys, \
             {} leases, {} users, {} roles, compacted at {}); start it with keel serve --name {} \
             --initial-cluster-state new --initial-cluster {}",
            self.file.display(),
            self.data_dir.display(),
            store.current_revision(),
            imported.revisions,
            imported.keys,
            imported.leases,
            imported.users,
            imported.roles,
            store.compact_revision(),
            self.name,
            self.initial_cluster
        );
        Ok(())
    }

    fn restore_keel(&self, file: File) -> anyhow::Result<()> {
        let size = file.metadata()?.len();
        let progress = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        progress.set_style(
            ProgressStyle::with_template("restoring {bar:40} {binary_bytes}/{binary_total_bytes}")
                .expect("a valid template"),
        );
        let mut input = BufReader::new(progress.wrap_read(file));
        let store = self.new_store()?;
        store
            .import(&mut input)
            .with_context(|| format!("cannot restore {}", self.file.display()))?;
        store.clear_marker()?;
        store.flush()?;
        progress.finish_and_clear();
        eprintln!(
            "restored {} into {} at revision {}; start it with keel serve --name {} \
             --initial-cluster-state new --initial-cluster {}",
            self.file.display(),
            self.data_dir.display(),
            store.current_revision(),
            self.name,
            self.initial_cluster
        );
        Ok(())
    }
}

fn refuse_non_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("data dir {} is not empty", dir.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> RestoreArgs {
        let cli = Cli::try_parse_from(args).unwrap();
        let Some(Command::Snapshot(SnapshotCommand::Restore(args))) = cli.command else {
            panic!("not restore")
        };
        args
    }

    #[test]
    fn parses_restore() {
        let args = parse(&[
            "keel",
            "snapshot",
            "restore",
            "b.snap",
            "--data-dir",
            "/d",
            "--name",
            "n1",
            "--initial-cluster",
            "n1=http://a:2380,n2=http://b:2380",
        ]);
        assert_eq!(args.file, PathBuf::from("b.snap"));
        assert_eq!(args.data_dir, PathBuf::from("/d"));
        assert_eq!(args.initial_cluster_token, "keel-cluster");
        args.check_cluster().unwrap();
    }

    #[test]
    fn rejects_a_name_or_url_not_in_the_cluster() {
        let base = [
            "keel",
            "snapshot",
            "restore",
            "b.snap",
            "--data-dir",
            "/d",
            "--initial-cluster",
            "n1=http://a:2380",
        ];
        let mut args = parse(&[&base[..], &["--name", "n9"]].concat());
        assert!(args.check_cluster().is_err());
        args.name = "n1".into();
        args.initial_advertise_peer_urls = Some("http://b:2380".into());
        assert!(args.check_cluster().is_err());
    }

    #[test]
    fn refuses_a_non_empty_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        refuse_non_empty(dir.path()).unwrap();
        refuse_non_empty(&dir.path().join("absent")).unwrap();
        std::fs::write(dir.path().join("x"), b"x").unwrap();
        assert!(refuse_non_empty(dir.path()).is_err());
    }
}
