//! `keelctl move-leader TARGET_MEMBER_ID`: hands the leadership to another voter, as
//! etcdctl does: the current leader is found among --endpoints by asking each its status,
//! and the transfer is asked of it alone.

use anyhow::{anyhow, Context as _};
use clap::Args;

use super::member::parse_member_id;
use super::printer::Printer;
use crate::client::Client;

/// Flags of `move-leader`.
#[derive(Debug, Args)]
pub struct MoveLeaderArgs {
    /// The member to hand the leadership to (hex, as `member list` prints it).
    #[arg(value_parser = parse_member_id)]
    pub target: u64,
}

impl MoveLeaderArgs {
    /// Finds the leader among the endpoints and asks it to transfer the leadership.
    pub async fn execute(&self, client: &Client, printer: &Printer) -> anyhow::Result<()> {
        let (leader_endpoint, leader_id) = find_leader(client).await?;
        let response = client
            .for_endpoint(&leader_endpoint)
            .move_leader(self.target)
            .await?;
        printer.moved_leader(leader_id, self.target, &response);
        Ok(())
    }
}

/// The endpoint whose member says it leads, and its id. Unlike etcdctl, an endpoint that
/// cannot be reached is passed over (the leader may be among the others); its reason is
/// kept for the error when no endpoint leads.
async fn find_leader(client: &Client) -> anyhow::Result<(String, u64)> {
    let mut reasons = Vec::new();
    for endpoint in client.endpoints() {
        match client.for_endpoint(endpoint).status().await {
            Ok(status) if status.leader != 0 && status.leader == status.header.member_id => {
                return Ok((endpoint.clone(), status.leader))
            }
            Ok(_) => {}
            Err(e) => reasons.push(e.to_string()),
        }
    }
    // etcdctl's words, with Go's rendering of the endpoint list.
    let error = anyhow!(
        "no leader endpoint given at [{}]",
        client.endpoints().join(" ")
    );
    if reasons.is_empty() {
        Err(error)
    } else {
        Err(anyhow!("{}", reasons.join("; "))).context(error)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Ctl};
    use clap::Parser;

    #[test]
    fn parses_a_hex_target() {
        let ctl = Ctl::try_parse_from(["keelctl", "move-leader", "8e9e05c52164694d"]).unwrap();
        let Command::MoveLeader(args) = ctl.command else {
            panic!("not move-leader")
        };
        assert_eq!(args.target, 0x8e9e05c52164694d);
        assert!(Ctl::try_parse_from(["keelctl", "move-leader", "zz"]).is_err());
        assert!(Ctl::try_parse_from(["keelctl", "move-leader"]).is_err());
    }
}
