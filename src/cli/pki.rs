//! `keel pki`: make a cluster's certificates and show what a directory holds.
//!
//! ```sh
//! keel pki init --dir pki --nodes n1=10.0.0.1,n2=10.0.0.2,n3=node3.example
//! keel pki node --dir pki --nodes n4=10.0.0.4   # a member added later, same CA
//! keel pki client alice --dir pki        # pki/alice.crt, CN alice (the user name)
//! keel pki show --dir pki
//! keel pki kubeconfig --dir pki --server https://10.0.0.1:6443   # admin.kubeconfig
//! ```

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::pki::{self, CertificateInfo, Options, Validity};

/// `keel pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Make a CA and a certificate per node (serverAuth + clientAuth, the node's SANs).
    Init(InitArgs),
    /// Make node certificates signed by the directory's CA (for a member added later).
    Node(InitArgs),
    /// Make a client certificate signed by the directory's CA; its CN is the user name.
    Client(ClientArgs),
    /// Print each certificate of a directory: subject, issuer, SANs, usages, validity.
    Show(ShowArgs),
    /// Make a Kubernetes user's client certificate (CN the user, O its groups) and a
    /// kubeconfig for the cluster's API server; by default the admin (system:masters).
    Kubeconfig(KubeconfigArgs),
}

/// Flags of `keel pki kubeconfig`.
#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// The API server's URL, e.g. https://10.0.0.1:6443 (or a load balancer in front).
    #[arg(long)]
    pub server: String,
    /// The user (the certificate's CN).
    #[arg(long, default_value = "kubernetes-admin")]
    pub user: String,
    /// The user's groups (O entries), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "system:masters")]
    pub groups: Vec<String>,
    /// The certificate's file name in the directory (FILE.crt, FILE.key).
    #[arg(long, default_value = "admin")]
    pub file: String,
    /// Where to write the kubeconfig.
    #[arg(long, default_value = "admin.kubeconfig")]
    pub out: PathBuf,
    /// Shared flags.
    #[command(flatten)]
    pub issue: IssueArgs,
}

/// Flags every certificate-making subcommand shares.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Where the files are (ca.crt, ca.key, NAME.crt, NAME.key).
    #[arg(long, default_value = "pki")]
    pub dir: PathBuf,
    /// Validity in days from now; 0 or less makes an already expired certificate (for
    /// testing that it is refused).
    #[arg(long, default_value_t = 365, allow_negative_numbers = true)]
    pub days: i64,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

impl IssueArgs {
    fn options(&self, localhost: bool) -> Options {
        Options {
            validity: Validity::days(self.days),
            force: self.force,
            localhost,
        }
    }
}

/// Flags of `keel pki init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The nodes and their addresses: name=IP or name=DNS name, comma-separated; repeat a
    /// name to give it several addresses (n1=10.0.0.1,n1=n1.example).
    #[arg(long)]
    pub nodes: String,
    /// Also make every node certificate valid for 127.0.0.1, ::1 and localhost.
    #[arg(long)]
    pub localhost: bool,
    /// Shared flags.
    #[command(flatten)]
    pub issue: IssueArgs,
}

/// Flags of `keel pki client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The user name (the certificate's common name, and its file name).
    pub name: String,
    /// Shared flags.
    #[command(flatten)]
    pub issue: IssueArgs,
}

/// Flags of `keel pki show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The directory whose `*.crt` files to show.
    #[arg(long, default_value = "pki")]
    pub dir: PathBuf,
    /// Show these certificate files instead.
    pub files: Vec<PathBuf>,
}

impl PkiCommand {
    /// Runs the subcommand, printing what it made or found.
    pub fn execute(self) -> anyhow::Result<()> {
        match self {
            PkiCommand::Init(args) => {
                let nodes = pki::parse_nodes(&args.nodes)?;
                let issued =
                    pki::init(&args.issue.dir, &nodes, &args.issue.options(args.localhost))?;
                for files in &issued {
                    println!("wrote {} and {}", files.cert.display(), files.key.display());
                }
                Ok(())
            }
            PkiCommand::Node(args) => {
                let nodes = pki::parse_nodes(&args.nodes)?;
                let issued =
                    pki::issue_nodes(&args.issue.dir, &nodes, &args.issue.options(args.localhost))?;
                for files in &issued {
                    println!("wrote {} and {}", files.cert.display(), files.key.display());
                }
                Ok(())
            }
            PkiCommand::Client(args) => {
                let files =
                    pki::issue_client(&args.issue.dir, &args.name, &args.issue.options(false))?;
                println!("wrote {} and {}", files.cert.display(), files.key.display());
                Ok(())
            }
            PkiCommand::Kubeconfig(args) => {
                if !args.server.starts_with("https://") {
                    anyhow::bail!(
                        "--server {}: the Kubernetes API is served over https only",
                        args.server
                    );
                }
                if args.out.exists() && !args.issue.force {
                    anyhow::bail!("{} exists (--force overwrites it)", args.out.display());
                }
                let groups: Vec<&str> = args
                    .groups
                    .iter()
                    .map(String::as_str)
                    .filter(|g| !g.is_empty())
                    .collect();
                let dir = &args.issue.dir;
                let files = pki::issue_user(
                    dir,
                    &args.file,
                    &args.user,
                    &groups,
                    &args.issue.options(false),
                )?;
                let read = |p: &std::path::Path| {
                    std::fs::read(p)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
                };
                crate::kubeconfig::Kubeconfig {
                    name: "keel",
                    server: &args.server,
                    ca_pem: &read(&dir.join("ca.crt"))?,
                    cert_pem: &read(&files.cert)?,
                    key_pem: &read(&files.key)?,
                }
                .write(&args.out)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.out.display()))?;
                println!(
                    "wrote {}, {} and {}",
                    files.cert.display(),
                    files.key.display(),
                    args.out.display()
                );
                println!("export KUBECONFIG={}", args.out.display());
                Ok(())
            }
            PkiCommand::Show(args) => {
                let infos = if args.files.is_empty() {
                    pki::describe_dir(&args.dir)?
                } else {
                    args.files
                        .iter()
                        .map(|f| pki::describe(f))
                        .collect::<Result<_, _>>()?
                };
                if infos.is_empty() {
                    anyhow::bail!("no .crt files in {}", args.dir.display());
                }
                // Written, not print!ed: `keel pki show | head` must not panic on a closed pipe.
                let mut out = std::io::stdout().lock();
                for info in &infos {
                    std::io::Write::write_all(&mut out, render(info).as_bytes())?;
                }
                Ok(())
            }
        }
    }
}

/// The lines `show` prints for one certificate.
pub fn render(info: &CertificateInfo) -> String {
    let format = &time::format_description::well_known::Rfc3339;
    let date = |t: time::OffsetDateTime| t.format(format).unwrap_or_else(|_| t.to_string());
    let hosts: Vec<String> = info.hosts.iter().map(ToString::to_string).collect();
    let kind = if info.is_ca {
        "CA".to_owned()
    } else {
        info.usages.join("+")
    };
    format!(
        "{}\n  subject  CN={}\n  issuer   CN={}\n  kind     {}\n  SANs     {}\n  valid    {} .. {}{}\n  serial   {}\n",
        info.path.display(),
        info.subject,
        info.issuer,
        if kind.is_empty() { "-" } else { &kind },
        if hosts.is_empty() { "-".to_owned() } else { hosts.join(", ") },
        date(info.not_before),
        date(info.not_after),
        if info.is_expired() { "  EXPIRED" } else { "" },
        info.serial,
    )
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    use super::PkiCommand;

    fn pki(args: &[&str]) -> PkiCommand {
        let cli = Cli::try_parse_from(["keel", "pki"].iter().chain(args)).unwrap();
        let Some(Command::Pki(command)) = cli.command else {
            panic!("parsed as another subcommand");
        };
        command
    }

    #[test]
    fn flags_parse_and_commands_run() {
        let dir = tempfile::tempdir().unwrap();
        let dir_arg = dir.path().to_str().unwrap();
        let PkiCommand::Init(init) = pki(&[
            "init",
            "--dir",
            dir_arg,
            "--nodes",
            "n1=10.0.0.1",
            "--days",
            "30",
            "--localhost",
        ]) else {
            panic!("not init");
        };
        assert_eq!(
            (init.issue.days, init.localhost, init.issue.force),
            (30, true, false)
        );
        PkiCommand::Init(init).execute().unwrap();

        let PkiCommand::Client(client) =
            pki(&["client", "alice", "--dir", dir_arg, "--days", "-2"])
        else {
            panic!("not client");
        };
        assert_eq!((client.name.as_str(), client.issue.days), ("alice", -2));
        PkiCommand::Client(client).execute().unwrap();

        let shown = crate::pki::describe_dir(dir.path()).unwrap();
        let text: String = shown.iter().map(super::render).collect();
        assert!(text.contains("CN=n1"), "{text}");
        assert!(
            text.contains("10.0.0.1, 127.0.0.1, ::1, localhost"),
            "{text}"
        );
        assert!(text.contains("EXPIRED"), "{text}");

        let err = pki(&["init", "--dir", dir_arg, "--nodes", "n1=10.0.0.1"])
            .execute()
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        pki(&["node", "--dir", dir_arg, "--nodes", "n4=10.0.0.4"])
            .execute()
            .unwrap();
        assert!(dir.path().join("n4.key").exists());
        let err = pki(&["init", "--dir", dir_arg, "--nodes", "n1=1.2.3"])
            .execute()
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"n1=1.2.3\""), "{err}");
    }
}
