//! `keelctl endpoint status|health|hashkv`: asks every endpoint on its own (no failover),
//! so the answers can be compared; fails when any endpoint did not answer (`health`: when
//! any is unhealthy, with etcdctl's "unhealthy cluster").

use std::time::Instant;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::printer::{alarm_name, EndpointHealth, EndpointRow, Printer};
use crate::api::models::{AlarmAction, AlarmRequest, AlarmType, RangeRequest};
use crate::client::Client;

/// The gRPC code of "permission denied".
const CODE_PERMISSION_DENIED: i32 = 7;

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
                let checks = client
                    .endpoints()
                    .iter()
                    .map(|endpoint| health(client.for_endpoint(endpoint)));
                // Together, so that a member that does not answer costs one command timeout
                // rather than one per member.
                let rows = futures::future::join_all(checks).await;
                printer.endpoint_health(&rows);
                if rows.iter().any(|row| !row.health) {
                    bail!("unhealthy cluster");
                }
            }
            EndpointCommand::Hashkv { rev } => {
                let mut rows = Vec::new();
                for endpoint in client.endpoints() {
                    match client.for_endpoint(endpoint).hash_kv(*rev).await {
                        Ok(answer) => rows.push(EndpointRow {
                            endpoint: endpoint.clone(),
                            answer,
                        }),
                        Err(e) => failures.push(format!("{endpoint}: {e}")),
                    }
                }
                printer.endpoint_hashes(&rows);
            }
        }
        if !failures.is_empty() {
            bail!("{}", failures.join("; "));
        }
        Ok(())
    }
}

/// etcdctl's health check of one endpoint: a linearizable read of the key `health` (which
/// needs a leader and a quorum; "permission denied" still proves both), then no raised alarm.
async fn health(member: Client) -> EndpointHealth {
    let endpoint = member.endpoints()[0].clone();
    let started = Instant::now();
    let read = member
        .range(&RangeRequest {
            key: b"health".to_vec(),
            ..Default::default()
        })
        .await;
    let took = format!("{:?}", started.elapsed());
    let error = match read {
        Err(e) if e.code() != Some(CODE_PERMISSION_DENIED) => e.to_string(),
        _ => match member
            .alarm(&AlarmRequest {
                action: AlarmAction::Get,
                member_id: 0,
                alarm: AlarmType::None,
            })
            .await
        {
            Ok(answer) if answer.alarms.is_empty() => String::new(),
            Ok(answer) => {
                let names: Vec<String> = answer.alarms.iter().map(alarm_name).collect();
                format!("Active Alarm(s): {} ", names.join(" "))
            }
            Err(_) => "Unable to fetch the alarm list".into(),
        },
    };
    EndpointHealth {
        endpoint,
        health: error.is_empty(),
        took,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl, OutputFormat};
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
