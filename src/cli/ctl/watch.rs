//! `keelctl watch KEY [RANGE_END]`: prints each event as etcdctl does (`PUT`, key, value)
//! until interrupted, or until the server cancels the watch (compaction).
//!
//! `keelctl watch KEY -- COMMAND ARGS…` also runs COMMAND once per event, as etcdctl does, with
//! `ETCD_WATCH_EVENT_TYPE`, `ETCD_WATCH_KEY`, `ETCD_WATCH_VALUE` and `ETCD_WATCH_REVISION` (the
//! response's revision) in its environment; the first three are quoted as etcdctl's Go `%q`
//! quotes them (`"PUT"`, `"/a"`), so scripts written for etcdctl keep working.

use anyhow::{bail, Context as _};
use clap::Args;

use super::printer::Printer;
use super::range_end;
use crate::api::models::{Event, EventType, WatchCreateRequest};
use crate::client::{Client, Error};

/// Flags of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The key, or the first key of the range.
    pub key: String,
    /// End of the range (exclusive).
    pub range_end: Option<String>,
    /// Every key with KEY as prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Start from this revision (0: from now).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Print the previous key-value of each event.
    #[arg(long)]
    pub prev_kv: bool,
    /// A command to run per event (after `--`), with the event in its environment.
    #[arg(last = true)]
    pub command: Vec<String>,
}

impl WatchArgs {
    /// The create request these flags describe.
    pub fn request(&self) -> WatchCreateRequest {
        let key = self.key.as_bytes().to_vec();
        WatchCreateRequest {
            range_end: match &self.range_end {
                Some(end) => end.as_bytes().to_vec(),
                None => range_end(&key, self.prefix, false),
            },
            key,
            start_revision: self.rev,
            prev_kv: self.prev_kv,
            ..Default::default()
        }
    }

    /// Runs `watch` until interrupted. When the member serving it goes away, the watch
    /// resumes on the next endpoint from the revision after the last one seen, so no event
    /// is lost or repeated (etcd's client does the same).
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let mut request = self.request();
        let mut watch = client.watch(request.clone()).await?;
        let mut resumes_without_news = 0;
        loop {
            let response = match watch.next().await {
                Some(Ok(response)) => response,
                Some(Err(Error::Unreachable(_))) | None => {
                    // A member that keeps accepting and dropping the stream (shutting down)
                    // must not turn this into a busy loop.
                    resumes_without_news += 1;
                    if resumes_without_news > 10 {
                        bail!("the watch stream keeps closing; giving up");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(
                        100 * resumes_without_news,
                    ))
                    .await;
                    // The member went away: resume elsewhere (an error here is final).
                    watch = client.watch(request.clone()).await?;
                    continue;
                }
                Some(Err(other)) => return Err(other.into()),
            };
            if !response.created {
                resumes_without_news = 0;
            }
            if response.created && request.start_revision == 0 {
                request.start_revision = response.header.revision + 1;
            }
            // etcdctl prints whole responses (one JSON line, or a header and its events).
            if !response.events.is_empty() {
                printer.watch_response(&response);
            }
            for event in &response.events {
                request.start_revision = event.kv.mod_revision + 1;
                if !self.command.is_empty() {
                    self.run_command(event, response.header.revision).await?;
                }
            }
            if response.canceled {
                if response.compact_revision != 0 {
                    bail!(
                        "watch canceled: revision {} has been compacted (compacted up to {})",
                        request.start_revision,
                        response.compact_revision
                    );
                }
                bail!("watch canceled by the server: {}", response.cancel_reason);
            }
        }
    }
}

impl WatchArgs {
    /// Runs the `--` command for `event`, its output going where keelctl's goes.
    async fn run_command(&self, event: &Event, revision: i64) -> anyhow::Result<()> {
        let (program, args) = self.command.split_first().expect("a command");
        let status = tokio::process::Command::new(program)
            .args(args)
            .envs(command_env(event, revision))
            .status()
            .await
            .with_context(|| format!("cannot run {program}"))?;
        if !status.success() {
            bail!("command {:?} failed ({status})", self.command);
        }
        Ok(())
    }
}

/// The environment etcdctl gives the `--` command of `watch`.
fn command_env(event: &Event, revision: i64) -> [(&'static str, String); 4] {
    let quoted = |bytes: &[u8]| format!("{:?}", String::from_utf8_lossy(bytes));
    let kind = match event.kind {
        EventType::Put => "PUT",
        EventType::Delete => "DELETE",
    };
    [
        ("ETCD_WATCH_REVISION", revision.to_string()),
        ("ETCD_WATCH_EVENT_TYPE", format!("{kind:?}")),
        ("ETCD_WATCH_KEY", quoted(&event.kv.key)),
        ("ETCD_WATCH_VALUE", quoted(&event.kv.value)),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use super::*;
    use clap::Parser;

    #[test]
    fn parses_into_a_create_request() {
        let ctl = Ctl::try_parse_from([
            "keelctl",
            "watch",
            "a",
            "--prefix",
            "--rev",
            "3",
            "--prev-kv",
        ])
        .unwrap();
        let Command::Watch(args) = ctl.command else {
            panic!("not watch")
        };
        let r = args.request();
        assert_eq!(
            (r.key.as_slice(), r.range_end.as_slice(), r.start_revision),
            (&b"a"[..], &b"b"[..], 3)
        );
        assert!(r.prev_kv);
        assert!(args.command.is_empty());
    }

    #[test]
    fn parses_a_command_after_the_double_dash() {
        let ctl =
            Ctl::try_parse_from(["keelctl", "watch", "a", "--", "sh", "-c", "echo $X"]).unwrap();
        let Command::Watch(args) = ctl.command else {
            panic!("not watch")
        };
        assert_eq!(args.key, "a");
        assert_eq!(args.range_end, None);
        assert_eq!(args.command, ["sh", "-c", "echo $X"]);
    }

    #[test]
    fn the_command_environment_is_quoted_as_etcdctl_quotes_it() {
        let event = Event {
            kind: EventType::Delete,
            kv: crate::api::models::KeyValue {
                key: b"/a".to_vec(),
                value: b"x\"y".to_vec(),
                ..Default::default()
            },
            prev_kv: None,
        };
        let env = command_env(&event, 7);
        assert_eq!(env[0], ("ETCD_WATCH_REVISION", "7".to_owned()));
        assert_eq!(env[1], ("ETCD_WATCH_EVENT_TYPE", "\"DELETE\"".to_owned()));
        assert_eq!(env[2], ("ETCD_WATCH_KEY", "\"/a\"".to_owned()));
        assert_eq!(env[3], ("ETCD_WATCH_VALUE", "\"x\\\"y\"".to_owned()));
    }
}
