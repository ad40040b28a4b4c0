//! `keelctl put KEY [VALUE]`: etcdctl's put; the value comes from stdin when omitted.

use std::io::Read as _;

use anyhow::Context as _;
use clap::Args;

use super::printer::Printer;
use crate::api::models::PutRequest;
use crate::client::Client;

/// Flags of `put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The key.
    pub key: String,
    /// The value; read from stdin when omitted.
    pub value: Option<String>,
    /// Attach this lease (hex id, as `lease grant` prints it).
    #[arg(long, value_parser = parse_lease_id)]
    pub lease: Option<i64>,
    /// Print the previous key-value.
    #[arg(long)]
    pub prev_kv: bool,
    /// Keep the current value.
    #[arg(long)]
    pub ignore_value: bool,
    /// Keep the current lease.
    #[arg(long)]
    pub ignore_lease: bool,
}

/// Lease ids on the command line are hex, as etcdctl prints and reads them.
pub fn parse_lease_id(text: &str) -> Result<i64, String> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16)
        .map(|id| id as i64)
        .map_err(|_| format!("bad lease ID {text:?}, expecting a hexadecimal ID"))
}

impl PutArgs {
    /// The put request; `stdin` is read only when the value is missing and needed.
    pub fn request(
        &self,
        stdin: impl FnOnce() -> std::io::Result<Vec<u8>>,
    ) -> anyhow::Result<PutRequest> {
        let value = match (&self.value, self.ignore_value) {
            (Some(value), _) => value.as_bytes().to_vec(),
            (None, true) => Vec::new(),
            (None, false) => stdin().context("cannot read the value from stdin")?,
        };
        Ok(PutRequest {
            key: self.key.as_bytes().to_vec(),
            value,
            lease: self.lease.unwrap_or(0),
            prev_kv: self.prev_kv,
            ignore_value: self.ignore_value,
            ignore_lease: self.ignore_lease,
        })
    }

    /// Runs `put`.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let request = self.request(|| {
            let mut value = Vec::new();
            std::io::stdin().read_to_end(&mut value)?;
            Ok(value)
        })?;
        printer.put(&client.put(&request).await?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use clap::Parser;

    #[test]
    fn parses_lease_and_reads_stdin_only_without_a_value() {
        let ctl = Ctl::try_parse_from([
            "keelctl",
            "put",
            "k",
            "--lease",
            "694d77aa9e38260f",
            "--prev-kv",
        ])
        .unwrap();
        let Command::Put(args) = ctl.command else {
            panic!("not put")
        };
        let r = args.request(|| Ok(b"from stdin".to_vec())).unwrap();
        assert_eq!(r.value, b"from stdin");
        assert_eq!(r.lease, 0x694d77aa9e38260f);
        assert!(r.prev_kv);
        let ctl = Ctl::try_parse_from(["keelctl", "put", "k", "v"]).unwrap();
        let Command::Put(args) = ctl.command else {
            panic!("not put")
        };
        let r = args.request(|| panic!("stdin read")).unwrap();
        assert_eq!(r.value, b"v");
        assert!(Ctl::try_parse_from(["keelctl", "put", "k", "v", "--lease", "xyz"]).is_err());
    }
}
