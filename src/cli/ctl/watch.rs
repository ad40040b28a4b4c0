//! `keelctl watch KEY [RANGE_END]`: prints each event as etcdctl does (`PUT`, key, value)
//! until interrupted, or until the server cancels the watch.

use anyhow::bail;
use clap::Args;

use super::printer::Printer;
use super::range_end;
use crate::api::models::WatchCreateRequest;
use crate::client::Client;

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

    /// Runs `watch` until the stream ends.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let mut watch = client.watch(self.request()).await?;
        while let Some(response) = watch.next().await {
            let response = response?;
            for event in &response.events {
                printer.event(event);
            }
            if response.canceled {
                if response.compact_revision != 0 {
                    bail!(
                        "watch canceled: required revision {} has been compacted (compacted up to {})",
                        self.rev,
                        response.compact_revision
                    );
                }
                bail!("watch canceled by the server: {}", response.cancel_reason);
            }
        }
        bail!("the watch stream was closed by the server")
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
