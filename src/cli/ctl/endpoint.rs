//! `keelctl endpoint status|health|hashkv`: asks every endpoint on its own (no failover),
//! so the answers can be compared; fails when any endpoint did not answer.

use std::time::Instant;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::printer::{EndpointRow, Printer};
use super::OutputFormat;
use crate::client::Client;

/// `endpoint` and its flags.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Ask every member listed by `member list` (its client URLs) instead of --endpoints.
    #[arg(long, global = true)]
    pub cluster: bool,
    /// What to ask.
    #[command(subcommand)]
    pub command: EndpointCommand,
}

impl EndpointArgs {
    /// Runs the subcommand against --endpoints or, with --cluster, every member.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        if !self.cluster {
            return self.command.execute(client, printer).await;
        }
        let members = client.member_list().await?;
        let urls: Vec<String> = members
            .members
            .iter()
            .flat_map(|m| m.client_urls.iter().cloned())
            .collect();
        let unknown: Vec<String> = members
            .members
            .iter()
            .filter(|m| m.client_urls.is_empty())
            .map(|m| format!("{:x}", m.id))
            .collect();
        if !unknown.is_empty() {
            eprintln!(
                "members without client URLs are left out: {}",
                unknown.join(", ")
            );
        }
        let cluster = client.with_endpoints(urls)?;
        self.command.execute(&cluster, printer).await
    }
}

/// The endpoint subcommands.
#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Status of each endpoint (`-w table` shows the leader).
    Status,
    /// Health of each endpoint.
    Health,
    /// The KV hash of each endpoint.
    Hashkv {
        /// Hash up to this revision (0: the latest).
        #[arg(long, default_value_t = 0)]
        rev: i64,
    },
}

impl EndpointCommand {
    /// Runs the subcommand.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        match self {
            EndpointCommand::Status => {
                let mut rows = Vec::new();
                for endpoint in client.endpoints() {
                    match client.for_endpoint(endpoint).status().await {
                        Ok(answer) => rows.push(EndpointRow {
                            endpoint: endpoint.clone(),
                            answer,
                        }),
                        Err(e) => failures.push(format!("{endpoint}: {e}")),
                    }
                }
                printer.endpoint_status(&rows);
            }
            EndpointCommand::Health => {
                let mut rows = Vec::new();
                for endpoint in client.endpoints() {
                    let started = Instant::now();
                    match client.for_endpoint(endpoint).health().await {
                        Ok(health) if health.health == "true" => rows.push((
                            endpoint.clone(),
                            true,
                            format!("took = {:?}", started.elapsed()),
                        )),
                        Ok(health) => {
                            let reason = health.reason.unwrap_or_default();
                            failures.push(format!("{endpoint} is unhealthy: {reason}"));
                            rows.push((endpoint.clone(), false, reason));
                        }
                        Err(e) => {
                            failures.push(format!("{endpoint} is unhealthy: {e}"));
                            rows.push((endpoint.clone(), false, e.to_string()));
                        }
                    }
                }
                match printer.format {
                    OutputFormat::Json => {
                        let entries: Vec<_> = rows
                            .iter()
                            .map(|(endpoint, health, took)| serde_json::json!({"endpoint": endpoint, "health": health, "took": took}))
                            .collect();
                        printer.json(&entries);
                    }
                    OutputFormat::Table => printer.table(
                        &["ENDPOINT", "HEALTH", "TOOK / ERROR"],
                        rows.into_iter()
                            .map(|(e, h, t)| vec![e, h.to_string(), t])
                            .collect(),
                    ),
                    _ => {
                        for (endpoint, health, took) in rows.into_iter().filter(|r| r.1) {
                            debug_assert!(health);
                            printer.line(&format!(
                                "{endpoint} is healthy: successfully committed proposal: {took}"
                            ));
                        }
                    }
                }
            }
            EndpointCommand::Hashkv { rev } => {
                let mut rows = Vec::new();
                for endpoint in client.endpoints() {
                    match client.for_endpoint(endpoint).hash_kv(*rev).await {
                        Ok(answer) => rows.push((endpoint.clone(), answer)),
                        Err(e) => failures.push(format!("{endpoint}: {e}")),
                    }
                }
                match printer.format {
                    OutputFormat::Json => {
                        let entries: Vec<_> = rows
                            .iter()
                            .map(|(endpoint, hash)| serde_json::json!({"Endpoint": endpoint, "HashKV": hash}))
                            .collect();
                        printer.json(&entries);
                    }
                    OutputFormat::Table => printer.table(
                        &["ENDPOINT", "HASH", "COMPACT REVISION"],
                        rows.iter()
                            .map(|(e, h)| {
                                vec![
                                    e.clone(),
                                    h.hash.to_string(),
                                    h.compact_revision.to_string(),
                                ]
                            })
                            .collect(),
                    ),
                    _ => {
                        for (endpoint, hash) in &rows {
                            printer.line(&format!("{endpoint}, {}", hash.hash));
                        }
                    }
                }
            }
        }
        if !failures.is_empty() {
            bail!("{}", failures.join("; "));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use super::*;
    use clap::Parser;

    #[test]
    fn parses_subcommands() {
        let ctl =
            Ctl::try_parse_from(["keelctl", "-w", "table", "endpoint", "status", "--cluster"])
                .unwrap();
        assert!(matches!(
            ctl.command,
            Command::Endpoint(EndpointArgs {
                cluster: true,
                command: EndpointCommand::Status
            })
        ));
        assert_eq!(ctl.global.write_out, OutputFormat::Table);
        let ctl = Ctl::try_parse_from(["keelctl", "endpoint", "hashkv", "--rev", "4"]).unwrap();
        assert!(matches!(
            ctl.command,
            Command::Endpoint(EndpointArgs {
                command: EndpointCommand::Hashkv { rev: 4 },
                ..
            })
        ));
    }
}
