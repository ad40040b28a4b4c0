//! The fault schedule: drawn from the seed, it cycles through every kind of fault (in an
//! order and with hold times the seed decides), each held for a while and then healed, with a
//! quiet gap between faults. Only the schedule's own hold and gap times are sleeps; waiting for
//! the cluster (a leader, a caught-up member) polls with a deadline.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::cluster::{Cluster, ELECTION_TIMEOUT_MS};

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Fault {
    /// SIGKILL of the leader, restarted after the hold.
    KillLeader,
    /// SIGKILL of a follower, restarted after the hold.
    KillFollower,
    /// SIGSTOP of the leader for longer than the election timeout, then SIGCONT.
    PauseLeader,
    /// SIGSTOP of a follower, then SIGCONT.
    PauseFollower,
    /// The leader cut off from every other member.
    IsolateLeader,
    /// A minority (1 of 3, 2 of 5) cut off from the majority.
    SplitMinority,
    /// A follower killed for long enough that the leader's log moves past it (snapshots
    /// every few entries, few kept): on restart it is caught up by an install-snapshot.
    LagFollower,
    /// Under load: a follower removed, a fresh member added as a learner, started, promoted.
    ReplaceMember,
}

/// Every kind, each of which a run of at least this many faults injects.
pub const ALL: [Fault; 8] = [
    Fault::KillLeader,
    Fault::KillFollower,
    Fault::PauseLeader,
    Fault::PauseFollower,
    Fault::IsolateLeader,
    Fault::SplitMinority,
    Fault::LagFollower,
    Fault::ReplaceMember,
];

/// One injected fault, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct Injected {
    /// What.
    pub fault: Fault,
    /// The members it hit.
    pub targets: Vec<String>,
    /// When it started, ms since the run started.
    pub at_ms: u64,
    /// How long it was held, ms.
    pub held_ms: u64,
}

/// The faults of a run with `seed`, `count` long: every kind once per round, shuffled.
pub fn schedule(seed: u64, count: usize) -> Vec<(Fault, Duration, Duration)> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
    let mut faults = Vec::new();
    while faults.len() < count {
        let mut round = ALL.to_vec();
        round.shuffle(&mut rng);
        faults.extend(round);
    }
    faults.truncate(count);
    faults
        .into_iter()
        .map(|fault| {
            let election = ELECTION_TIMEOUT_MS;
            let hold = match fault {
                // Longer than two election timeouts: the others must act without it.
                Fault::PauseLeader | Fault::PauseFollower => {
                    rng.gen_range(election * 2..election * 4)
                }
                Fault::LagFollower => rng.gen_range(election * 6..election * 8),
                _ => rng.gen_range(election * 2..election * 5),
            };
            let gap = rng.gen_range(election..election * 2);
            (
                fault,
                Duration::from_millis(hold),
                Duration::from_millis(gap),
            )
        })
        .collect()
}

/// Injects one fault, holds it for `hold`, and heals it. Returns the members hit.
pub async fn inject(cluster: &mut Cluster, fault: Fault, hold: Duration) -> Vec<String> {
    let settle = Duration::from_secs(30);
    let leader = cluster.leader(settle).await;
    let size = cluster.nodes.len();
    let follower = (leader + 1) % size;
    let name = |cluster: &Cluster, i: usize| cluster.nodes[i].name.clone();
    match fault {
        Fault::KillLeader | Fault::KillFollower | Fault::LagFollower => {
            let target = if fault == Fault::KillLeader {
                leader
            } else {
                follower
            };
            cluster.nodes[target].kill();
            tokio::time::sleep(hold).await;
            cluster.restart(target);
            vec![name(cluster, target)]
        }
        Fault::PauseLeader | Fault::PauseFollower => {
            let target = if fault == Fault::PauseLeader {
                leader
            } else {
                follower
            };
            cluster.nodes[target].signal_pause(true);
            tokio::time::sleep(hold).await;
            cluster.nodes[target].signal_pause(false);
            vec![name(cluster, target)]
        }
        Fault::IsolateLeader | Fault::SplitMinority => {
            let ids: Vec<u64> = cluster.nodes.iter().map(|n| n.id).collect();
            let minority: Vec<usize> = if fault == Fault::IsolateLeader {
                vec![leader]
            } else {
                // 1 of 3, 2 of 5: with the leader on either side.
                (0..size.saturating_sub(1) / 2)
                    .map(|k| (follower + k) % size)
                    .collect()
            };
            let cut: Vec<u64> = minority.iter().map(|&i| ids[i]).collect();
            let rest: Vec<u64> = (0..size)
                .filter(|i| !minority.contains(i))
                .map(|i| ids[i])
                .collect();
            cluster.links.partition(&cut, &rest);
            tokio::time::sleep(hold).await;
            cluster.links.heal();
            minority.iter().map(|&i| name(cluster, i)).collect()
        }
        Fault::ReplaceMember => {
            let gone = name(cluster, follower);
            let id = cluster.replace_member(follower, settle).await;
            let newcomer = cluster
                .nodes
                .iter()
                .find(|n| n.id == id)
                .map(|n| n.name.clone())
                .unwrap_or_default();
            vec![gone, newcomer]
        }
    }
}
