//! `keelctl txn`: a transaction in etcdctl's syntax, read from stdin:
//!
//! ```text
//! mod("key1") > "0"          compares, one per line: value|version|create|mod|lease
//! value("key2") = "x"        ("KEY") then = != < > and a quoted operand
//!
//! put key1 "new value"       success ops: put KEY VALUE, get KEY [END], del KEY [END]
//!
//! get key2                   failure ops
//! ```
//!
//! Blank lines separate the three sections, as etcdctl's non-interactive mode reads them;
//! `-i` prompts for each section instead.

use std::io::{BufRead, Read as _, Write};

use anyhow::{bail, Context as _};
use clap::Args;

use super::printer::Printer;
use crate::api::models::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};
use crate::client::Client;

/// Flags of `txn`.
#[derive(Debug, Args)]
pub struct TxnArgs {
    /// Prompt for each section instead of reading blank-line-separated sections.
    #[arg(short, long)]
    pub interactive: bool,
}

impl TxnArgs {
    /// Runs `txn`.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let request = if self.interactive {
            read_interactive(std::io::stdin().lock(), std::io::stderr())?
        } else {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the transaction from stdin")?;
            parse_txn(&text)?
        };
        printer.txn(&client.txn(&request).await?);
        Ok(())
    }
}

/// `txn -i`: prompts for each section (on stderr, so stdout stays the answer alone) and
/// reads its lines up to a blank line or the end of input.
pub fn read_interactive(
    mut input: impl BufRead,
    mut prompts: impl Write,
) -> anyhow::Result<TxnRequest> {
    let mut sections: [Vec<String>; 3] = Default::default();
    let titles = [
        "compares:",
        "success requests (get, put, del):",
        "failure requests (get, put, del):",
    ];
    for (title, section) in titles.iter().zip(sections.iter_mut()) {
        writeln!(prompts, "{title}")?;
        loop {
            let mut line = String::new();
            if input.read_line(&mut line).context("cannot read stdin")? == 0
                || line.trim().is_empty()
            {
                break;
            }
            section.push(line.trim().to_owned());
        }
    }
    parse_sections(&sections[0], &sections[1], &sections[2])
}

/// Parses the three blank-line-separated sections.
pub fn parse_txn(text: &str) -> anyhow::Result<TxnRequest> {
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            // Every blank line ends a section, so a leading one means "no compares"; blank
            // lines after the failure section are trailing noise.
            if sections.len() < 3 {
                sections.push(Vec::new());
            }
        } else {
            sections.last_mut().expect("never empty").push(line);
        }
    }
    sections.resize(3, Vec::new());
    parse_sections(&sections[0], &sections[1], &sections[2])
}

/// Builds the request from the lines of each section.
fn parse_sections<S: AsRef<str>>(
    compares: &[S],
    success: &[S],
    failure: &[S],
) -> anyhow::Result<TxnRequest> {
    let compare = compares
        .iter()
        .map(|l| parse_compare(l.as_ref()))
        .collect::<anyhow::Result<_>>()?;
    let success = success
        .iter()
        .map(|l| parse_op(l.as_ref()))
        .collect::<anyhow::Result<_>>()?;
    let failure = failure
        .iter()
        .map(|l| parse_op(l.as_ref()))
        .collect::<anyhow::Result<_>>()?;
    Ok(TxnRequest {
        compare,
        success,
        failure,
    })
}

/// Splits on whitespace, keeping double-quoted strings (with `\"` and `\\`) whole.
fn tokens(line: &str) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut token = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => token.extend(chars.next()),
                    Some(c) => token.push(c),
                    None => bail!("unterminated quote in {line:?}"),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                token.push(c);
                chars.next();
            }
        }
        tokens.push(token);
    }
    Ok(tokens)
}

fn parse_compare(line: &str) -> anyhow::Result<Compare> {
    let bad = || format!("malformed comparison {line:?} (e.g. mod(\"key\") > \"0\")");
    let open = line.find('(').with_context(bad)?;
    let close = line.rfind(')').with_context(bad)?;
    let target = line[..open].trim();
    let key = tokens(&line[open + 1..close])?.pop().with_context(bad)?;
    let rest = line[close + 1..].trim();
    let (result, operand) = if let Some(rest) = rest.strip_prefix("!=") {
        (CompareResult::NotEqual, rest)
    } else if let Some(rest) = rest.strip_prefix('=') {
        (CompareResult::Equal, rest)
    } else if let Some(rest) = rest.strip_prefix('<') {
        (CompareResult::Less, rest)
    } else if let Some(rest) = rest.strip_prefix('>') {
        (CompareResult::Greater, rest)
    } else {
        bail!(bad());
    };
    let operand = tokens(operand)?.pop().unwrap_or_default();
    let number = || -> anyhow::Result<i64> {
        operand
            .parse()
            .with_context(|| format!("{operand:?} is not a number in {line:?}"))
    };
    let mut compare = Compare {
        result,
        key: key.into_bytes(),
        ..Default::default()
    };
    match target {
        "value" | "val" => {
            compare.target = CompareTarget::Value;
            compare.value = operand.clone().into_bytes();
        }
        "version" | "ver" => {
            compare.target = CompareTarget::Version;
            compare.version = number()?;
        }
        "create" | "c" => {
            compare.target = CompareTarget::Create;
            compare.create_revision = number()?;
        }
        "mod" | "m" => {
            compare.target = CompareTarget::Mod;
            compare.mod_revision = number()?;
        }
        "lease" => {
            compare.target = CompareTarget::Lease;
            compare.lease = super::put::parse_lease_id(&operand).map_err(anyhow::Error::msg)?;
        }
        other => bail!("unknown comparison target {other:?} in {line:?}"),
    }
    Ok(compare)
}

fn parse_op(line: &str) -> anyhow::Result<RequestOp> {
    let words = tokens(line)?;
    let prefix = words.iter().any(|w| w == "--prefix");
    let args: Vec<&String> = words.iter().filter(|w| !w.starts_with("--")).collect();
    let key = |at: usize| -> anyhow::Result<Vec<u8>> {
        Ok(args
            .get(at)
            .with_context(|| format!("missing key in {line:?}"))?
            .as_bytes()
            .to_vec())
    };
    let end = |key: &[u8]| match args.get(2) {
        Some(end) => end.as_bytes().to_vec(),
        None => super::range_end(key, prefix, false),
    };
    match args.first().map(|w| w.as_str()) {
        Some("put") => Ok(RequestOp::RequestPut(PutRequest {
            key: key(1)?,
            value: args
                .get(2)
                .with_context(|| format!("missing value in {line:?}"))?
                .as_bytes()
                .to_vec(),
            ..Default::default()
        })),
        Some("get") => {
            let key = key(1)?;
            Ok(RequestOp::RequestRange(RangeRequest {
                range_end: end(&key),
                key,
                ..Default::default()
            }))
        }
        Some("del") => {
            let key = key(1)?;
            Ok(RequestOp::RequestDeleteRange(DeleteRangeRequest {
                range_end: end(&key),
                key,
                ..Default::default()
            }))
        }
        _ => bail!("unknown operation {line:?} (put, get or del)"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use super::*;
    use clap::Parser;

    #[test]
    fn parses_etcdctl_txn_syntax() {
        let t = parse_txn("mod(\"k\") > \"0\"\nvalue(\"v\") = \"a b\"\n\nput k \"new value\"\n\nget k --prefix\ndel x\n")
            .unwrap();
        assert_eq!(t.compare.len(), 2);
        assert_eq!(
            (
                t.compare[0].target,
                t.compare[0].result,
                t.compare[0].mod_revision
            ),
            (CompareTarget::Mod, CompareResult::Greater, 0)
        );
        assert_eq!(t.compare[1].value, b"a b");
        let RequestOp::RequestPut(put) = &t.success[0] else {
            panic!("not put")
        };
        assert_eq!(put.value, b"new value");
        let RequestOp::RequestRange(get) = &t.failure[0] else {
            panic!("not get")
        };
        assert_eq!(get.range_end, b"l");
        assert_eq!(t.failure.len(), 2);
        let t = read_interactive(&b"\nput a 1\n\n"[..], std::io::sink()).unwrap();
        assert!(t.compare.is_empty() && t.failure.is_empty());
        assert!(matches!(&t.success[0], RequestOp::RequestPut(p) if p.key == b"a"));
        assert!(parse_txn("bogus(\"k\") = \"1\"\n").is_err());
        assert!(parse_txn("mod(\"k\") = \"x\"\n").is_err());
        assert!(matches!(
            Ctl::try_parse_from(["keelctl", "txn"]).unwrap().command,
            Command::Txn(_)
        ));
    }
}
