//! `keelctl watch KEY [RANGE_END]`: prints each event as etcdctl does (`PUT`, key, value)
//! until interrupted, or until the server cancels the watch (compaction).

use anyhow::bail;
use clap::Args;

use super::printer::Printer;
use super::{range_end, OutputFormat};
use crate::api::models::WatchCreateRequest;
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
            // etcdctl's json form is one whole response per line.
            if printer.format == OutputFormat::Json && !response.events.is_empty() {
                printer.json(&response);
            }
            for event in &response.events {
                if printer.format != OutputFormat::Json {
                    printer.event(event);
                }
                request.start_revision = event.kv.mod_revision + 1;
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

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
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
    }
}
