//! `keelctl version`: etcdctl's two lines, so scripts that parse `etcdctl version` work. The
//! API version is that of the gateway keelctl speaks (etcd 3.4's), not keel's own version.

use clap::Args;

use super::printer::Printer;

/// The etcd API keelctl speaks.
pub const API_VERSION: &str = "3.4";

/// Flags of `version`.
#[derive(Debug, Args)]
pub struct VersionArgs {}

impl VersionArgs {
    /// Prints the versions (no endpoint is asked).
    pub fn execute(&self, printer: &Printer) -> anyhow::Result<()> {
        printer.line(&format!("keelctl version: {}", env!("CARGO_PKG_VERSION")));
        printer.line(&format!("API version: {API_VERSION}"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use clap::Parser;

    #[test]
    fn parses_version() {
        let ctl = Ctl::try_parse_from(["keelctl", "version"]).unwrap();
        assert!(matches!(ctl.command, Command::Version(_)));
        assert!(Ctl::try_parse_from(["keelctl", "version", "x"]).is_err());
    }
}
