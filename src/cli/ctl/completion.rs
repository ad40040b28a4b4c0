//! `keelctl completion bash|zsh|fish`: a completion script generated from the clap tree.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Ctl;

/// Flags of `completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

impl CompletionArgs {
    /// Prints the script.
    pub fn execute(&self) -> anyhow::Result<()> {
        clap_complete::generate(
            self.shell,
            &mut Ctl::command(),
            "keelctl",
            &mut std::io::stdout(),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use clap::{CommandFactory, Parser};

    #[test]
    fn parses_a_shell_and_generates() {
        let ctl = Ctl::try_parse_from(["keelctl", "completion", "bash"]).unwrap();
        let Command::Completion(args) = ctl.command else {
            panic!("not completion")
        };
        let mut script = Vec::new();
        clap_complete::generate(args.shell, &mut Ctl::command(), "keelctl", &mut script);
        assert!(String::from_utf8(script).unwrap().contains("keelctl"));
        assert!(Ctl::try_parse_from(["keelctl", "completion", "tcsh"]).is_err());
    }
}
