//! `keelctl`: etcdctl's commands and flags over keel's typed [`crate::client`], plus a few
//! of its own (`ls`, `history`, `inspect`). One file per subcommand, each with its clap
//! definition, request building, execution and a parsing test; every line of output goes
//! through [`printer::Printer`].
//!
//! ```sh
//! export KEELCTL_ENDPOINTS=http://127.0.0.1:2379,http://127.0.0.1:12379,http://127.0.0.1:22379
//! keelctl put /app/config '{"replicas":3}'
//! keelctl get /app --prefix -w table
//! printf 'value("/app/config") = "x"\n\nput /app/config y\n\nget /app/config\n' | keelctl txn
//! keelctl watch /app --prefix                 # PUT / key / value per event
//! keelctl lease grant 60 && keelctl put k v --lease 694d77aa9e38260f
//! keelctl -w table endpoint status            # every endpoint, with a leader column
//! keelctl ls / --depth 2 --top 10             # where the keys and bytes are
//! keelctl history /app/config                 # the key's versions (walks get --rev)
//! keelctl inspect /var/lib/keel history /app/config   # offline, member stopped
//! keelctl watch /app --prefix -- sh -c 'echo $ETCD_WATCH_KEY'   # a command per event
//! keelctl defrag && keelctl alarm list        # every endpoint
//! keelctl move-leader 8e9e05c52164694d        # hand the leadership over
//! ```
//!
//! Endpoints are tried in order: one that cannot be reached, or answers "not leader", is
//! skipped. Every failure is one `Error: …` line on stderr and exit status 1.

pub mod alarm;
pub mod compaction;
pub mod completion;
pub mod defrag;
pub mod del;
pub mod endpoint;
pub mod get;
pub mod history;
pub mod inspect;
pub mod lease;
pub mod ls;
pub mod member;
pub mod move_leader;
pub mod printer;
pub mod put;
pub mod snapshot;
pub mod txn;
pub mod watch;

use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::client::{Client, Options};
use printer::Printer;

/// keelctl: a command line client of keel (and of etcd's v3 JSON gateway).
#[derive(Debug, Parser)]
#[command(name = "keelctl", version)]
pub struct Ctl {
    /// Global flags.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// etcdctl's global flags.
#[derive(Clone, Debug, clap::Args)]
pub struct GlobalArgs {
    /// Comma-separated client URLs, tried in order.
    #[arg(
        long,
        global = true,
        env = "KEELCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// Time allowed to connect to one endpoint (e.g. 2s, 500ms).
    #[arg(long, global = true, default_value = "2s", value_parser = parse_duration)]
    pub dial_timeout: Duration,
    /// Time allowed for one command, across every endpoint tried.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    pub command_timeout: Duration,
    /// Output format.
    #[arg(short = 'w', long, global = true, value_enum, default_value = "simple")]
    pub write_out: OutputFormat,
    /// Print keys and values as hex.
    #[arg(long, global = true)]
    pub hex: bool,
}

/// `-w`: how responses are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// etcdctl's plain lines.
    Simple,
    /// The gateway's JSON.
    Json,
    /// A table.
    Table,
    /// `"Field" : value` lines.
    Fields,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Get a key or a range of keys.
    Get(get::GetArgs),
    /// Put a key.
    Put(put::PutArgs),
    /// Delete a key or a range of keys.
    Del(del::DelArgs),
    /// Run a transaction read from stdin (compares, blank line, success ops, blank line,
    /// failure ops).
    Txn(txn::TxnArgs),
    /// Watch a key or a range and print its events.
    Watch(watch::WatchArgs),
    /// Lease commands.
    #[command(subcommand)]
    Lease(lease::LeaseCommand),
    /// Membership commands.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Hand the leadership to another voter (hex member id).
    MoveLeader(move_leader::MoveLeaderArgs),
    /// Per-endpoint commands.
    Endpoint(endpoint::EndpointArgs),
    /// Compact the history up to a revision.
    Compaction(compaction::CompactionArgs),
    /// Snapshot commands.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// A tree of the keyspace split on `/`: key counts, value bytes, revisions per branch.
    Ls(ls::LsArgs),
    /// Every retained version of a key, walked back with `get --rev`.
    History(history::HistoryArgs),
    /// Defragment every endpoint's database.
    Defrag(defrag::DefragArgs),
    /// Alarm commands.
    #[command(subcommand)]
    Alarm(alarm::AlarmCommand),
    /// Read a stopped member's data directory offline.
    Inspect(inspect::InspectArgs),
    /// Print a shell completion script.
    Completion(completion::CompletionArgs),
}

impl Ctl {
    /// Parses the command line, reading `ETCDCTL_ENDPOINTS` when neither `--endpoints` nor
    /// `KEELCTL_ENDPOINTS` is given, so that scripts written for etcdctl work unchanged.
    pub fn parse_with_env() -> Ctl {
        let matches = Ctl::command().get_matches();
        let mut ctl = Ctl::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if matches.value_source("endpoints") == Some(ValueSource::DefaultValue) {
            if let Ok(endpoints) = std::env::var("ETCDCTL_ENDPOINTS") {
                ctl.global.endpoints = endpoints.split(',').map(str::to_owned).collect();
            }
        }
        ctl
    }

    /// Runs the chosen subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        let global = self.global;
        let printer = Printer::new(global.write_out, global.hex);
        // Offline and local commands need no client.
        match self.command {
            Command::Inspect(args) => return args.execute(&printer),
            Command::Completion(args) => return args.execute(),
            _ => {}
        }
        let client = Client::new(
            global.endpoints.clone(),
            Options {
                dial_timeout: global.dial_timeout,
                command_timeout: global.command_timeout,
            },
        )?;
        match self.command {
            Command::Get(args) => args.execute(&client, &printer).await,
            Command::Put(args) => args.execute(&client, &printer).await,
            Command::Del(args) => args.execute(&client, &printer).await,
            Command::Txn(args) => args.execute(&client, &printer).await,
            Command::Watch(args) => args.execute(&client, &printer).await,
            Command::Lease(command) => command.execute(&client, &printer).await,
            Command::Member(command) => command.execute(&client, &printer).await,
            Command::Endpoint(args) => args.execute(&client, &printer).await,
            Command::MoveLeader(args) => args.execute(&client, &printer).await,
            Command::Compaction(args) => args.execute(&client, &printer).await,
            Command::Snapshot(command) => command.execute(&client, &printer).await,
            Command::Ls(args) => args.execute(&client, &printer).await,
            Command::History(args) => args.execute(&client, &printer).await,
            Command::Defrag(args) => args.execute(&client, &printer).await,
            Command::Alarm(command) => command.execute(&client, &printer).await,
            Command::Inspect(_) | Command::Completion(_) => unreachable!("handled above"),
        }
    }
}

/// Parses `5s`, `500ms`, `1m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("invalid duration unit in {text:?} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// The `range_end` etcdctl sends: the key after every key with this prefix for `--prefix`,
/// `"\0"` (every key from `key` on) for `--from-key`, none for one key.
pub fn range_end(key: &[u8], prefix: bool, from_key: bool) -> Vec<u8> {
    if from_key {
        return vec![0];
    }
    if !prefix {
        return Vec::new();
    }
    let mut end = key.to_vec();
    // Increment the last byte below 0xff; a prefix of only 0xff bytes (or empty) means
    // "to the end of the keyspace", which etcd spells "\0".
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_flags_parse() {
        let ctl = Ctl::try_parse_from([
            "keelctl",
            "--endpoints",
            "http://a:1,http://b:2",
            "-w",
            "json",
            "--command-timeout",
            "500ms",
            "get",
            "k",
        ])
        .unwrap();
        assert_eq!(ctl.global.endpoints, ["http://a:1", "http://b:2"]);
        assert_eq!(ctl.global.write_out, OutputFormat::Json);
        assert_eq!(ctl.global.command_timeout, Duration::from_millis(500));
    }

    #[test]
    fn prefix_range_ends() {
        assert_eq!(range_end(b"a/", true, false), b"a0");
        assert_eq!(range_end(b"a\xff", true, false), b"b");
        assert_eq!(range_end(b"", true, false), b"\0");
        assert_eq!(range_end(b"a", false, true), b"\0");
        assert!(range_end(b"a", false, false).is_empty());
        assert!(parse_duration("2x").is_err());
    }
}
