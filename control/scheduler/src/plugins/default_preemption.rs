//! DefaultPreemption, the PostFilter: after no node fit, it looks for a node where removing
//! pods of lower priority would make room, and chooses which pods (the victims) as
//! kube-scheduler does.
//!
//! ```text
//! eligible?  preemptionPolicy Never, or lower-priority pods of an earlier preemption still
//!            terminating on the nominated node: no ("preemption: not eligible due to ...")
//! per node   that failed resolvably (up to max(10% of nodes, 100), from a random offset):
//!            remove every lower-priority pod (from the node and from the cluster-wide
//!            anti-affinity and spread counts); the pod must fit then (else the node's
//!            status says why); add the removed pods back, most important first
//!            (priority, then earliest start), PDB-violating ones before the others, each
//!            staying only if the pod still fits: the rest are the victims
//! pick       fewest PDB violations, lowest highest-victim priority, smallest priority sum,
//!            fewest victims, latest start among the highest-priority victims, first found
//! ```
//!
//! With no candidate, the verdict ends the `FailedScheduling` message
//! (`preemption: 0/3 nodes are available: ...`); with one, the scheduler nominates the
//! node, evicts the victims ([`crate::preemption`]) and the message ends after the filters.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;
use std::sync::Arc;

use rand::Rng as _;

use crate::cache::NodeInfo;
use crate::disruption::{split_by_violation, Budget};
use crate::framework::{Code, FitError, PodInfo, Status};

/// The verdict for a node whose failure preemption cannot fix.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// The verdict for a node with no pod of lower priority.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
/// A pod that may not preempt.
pub const NOT_ELIGIBLE_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
/// A pod whose earlier victims are still going.
pub const NOT_ELIGIBLE_TERMINATING: &str =
    "not eligible due to a terminating pod on the nominated node.";
/// The condition a victim gets before it is deleted, and its reason.
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";
/// The `DisruptionTarget` reason of a pod the scheduler preempts.
pub const REASON_PREEMPTION_BY_SCHEDULER: &str = "PreemptionByScheduler";

/// At least this percentage of the nodes are tried as candidates...
const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
/// ... and at least this many.
const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;

/// A pod to evict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Victim {
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.priority`.
    pub priority: i32,
}

/// The node a preemptor is nominated to and the pods that must go for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The node.
    pub node: String,
    /// The victims, most important first.
    pub victims: Vec<Victim>,
    /// How many of them a PodDisruptionBudget protects.
    pub pdb_violations: usize,
}

/// What the PostFilter concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preemption {
    /// Evict these pods and nominate the node.
    Nominate(Candidate),
    /// Preemption cannot help: the `preemption: ...` message.
    Failed(String),
}

/// A candidate while they are compared.
struct Found {
    node: String,
    victims: Vec<Arc<PodInfo>>,
    pdb_violations: usize,
}

/// `status.startTime` in nanoseconds; a pod not started yet counts as starting now, after
/// every pod that has.
fn start_time(pod: &PodInfo) -> i128 {
    pod.pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or(i128::MAX, |t| t.0.as_nanosecond())
}

/// `MoreImportantPod`: higher priority first, then the one that started earlier.
fn more_important(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| start_time(a).cmp(&start_time(b)))
}

/// Whether `pod` is going because a scheduler preempted it.
fn terminating_by_preemption(pod: &PodInfo) -> bool {
    pod.pod.metadata.deletion_timestamp.is_some()
        && pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions.iter().any(|c| {
                    c.type_ == DISRUPTION_TARGET
                        && c.reason.as_deref() == Some(REASON_PREEMPTION_BY_SCHEDULER)
                })
            })
}

/// `SelectVictimsOnNode`: the victims on `node` (most important first) and how many of them
/// violate a budget, or the node's status when preemption there cannot help.
///
/// `run_filters(node, removed)` runs the filters on `node` with the pods `removed` gone,
/// from the node and from the cycle's cluster-wide counts (kube's `RemovePod` extensions),
/// so a pod that only anti-affinity or topology spread keeps out is judged as it would be
/// once its victims left.
pub fn select_victims_on_node(
    pod: &PodInfo,
    node: &NodeInfo,
    budgets: &[Budget],
    run_filters: impl Fn(&NodeInfo, &[&PodInfo]) -> Status,
) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .values()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    potential.sort_by(|a, b| more_important(a, b));
    let mut removed: Vec<&PodInfo> = potential.iter().map(|p| &**p).collect();
    let status = run_filters(node, &removed);
    if !status.is_success() {
        return Err(status);
    }
    let (violating, not_violating) = split_by_violation(&removed.clone(), budgets);
    let by_uid = |p: &PodInfo| {
        potential
            .iter()
            .find(|q| q.uid == p.uid)
            .cloned()
            .expect("a potential victim")
    };
    let mut victims = Vec::new();
    let mut pdb_violations = 0;
    // Each pod is put back in turn, most important first; it stays a victim only if the
    // pod no longer fits with it back.
    let mut reprieve = |back: &PodInfo, violates: bool| {
        let position = removed.iter().position(|q| q.uid == back.uid);
        let Some(position) = position else { return };
        let taken = removed.remove(position);
        if !run_filters(node, &removed).is_success() {
            removed.insert(position, taken);
            victims.push(by_uid(back));
            if violates {
                pdb_violations += 1;
            }
        }
    };
    let mixed = !violating.is_empty() && !not_violating.is_empty();
    for p in violating {
        reprieve(p, true);
    }
    for p in not_violating {
        reprieve(p, false);
    }
    if mixed {
        victims.sort_by(|a, b| more_important(a, b));
    }
    Ok((victims, pdb_violations))
}

/// `pickOneNodeForPreemption`: fewest PDB violations, then the lowest highest-victim
/// priority, the smallest sum of priorities, the fewest victims, the latest start among
/// the highest-priority victims; the first found on a tie.
fn pick_one_node(candidates: Vec<Found>) -> Option<Found> {
    let highest = |f: &Found| f.victims.first().map_or(i32::MIN, |v| v.priority);
    // Shifted by 2^31 per victim as kube does, so negative priorities still add up.
    let sum = |f: &Found| {
        f.victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum::<i64>()
    };
    let earliest_of_highest = |f: &Found| {
        let top = highest(f);
        f.victims
            .iter()
            .filter(|v| v.priority == top)
            .map(|v| start_time(v))
            .min()
            .unwrap_or(i128::MAX)
    };
    let key = |f: &Found| {
        (
            f.pdb_violations,
            highest(f),
            sum(f),
            f.victims.len(),
            Reverse(earliest_of_highest(f)),
        )
    };
    let mut best: Option<Found> = None;
    for found in candidates {
        if best.as_ref().is_none_or(|b| key(&found) < key(b)) {
            best = Some(found);
        }
    }
    best
}

/// The PostFilter for a pod no node fits (per `diagnosis`). `nominated_node` is where the
/// pod was nominated before, `budgets` the PodDisruptionBudgets, and `run_filters(node,
/// removed)` runs every filter plugin of the profile on a node (with the pods nominated
/// there) as if the pods `removed` were gone from it and from the cluster-wide counts.
pub fn post_filter(
    pod: &PodInfo,
    diagnosis: &FitError,
    all_nodes: &[&NodeInfo],
    budgets: &[Budget],
    nominated_node: Option<&str>,
    run_filters: impl Fn(&NodeInfo, &[&PodInfo]) -> Status,
) -> Preemption {
    if pod.spec().preemption_policy.as_deref() == Some("Never") {
        return Preemption::Failed(format!("preemption: {NOT_ELIGIBLE_NEVER}"));
    }
    let status_code = |name: &str| {
        diagnosis
            .statuses
            .get(name)
            .or(diagnosis.absent.as_ref())
            .map_or(Code::UnschedulableAndUnresolvable, |s| s.code)
    };
    if let Some(nominated) = nominated_node {
        let retry_elsewhere = status_code(nominated) == Code::UnschedulableAndUnresolvable;
        let waiting = all_nodes
            .iter()
            .find(|n| n.name == nominated)
            .is_some_and(|n| {
                n.pods
                    .values()
                    .any(|p| p.priority < pod.priority && terminating_by_preemption(p))
            });
        if !retry_elsewhere && waiting {
            return Preemption::Failed(format!("preemption: {NOT_ELIGIBLE_TERMINATING}"));
        }
    }
    let potential: Vec<&NodeInfo> = all_nodes
        .iter()
        .filter(|n| status_code(&n.name) == Code::Unschedulable)
        .copied()
        .collect();
    let mut statuses = BTreeMap::new();
    let mut found = Vec::new();
    if !potential.is_empty() {
        let wanted = (potential.len() * MIN_CANDIDATE_NODES_PERCENTAGE / 100)
            .max(MIN_CANDIDATE_NODES_ABSOLUTE)
            .min(potential.len());
        let offset = rand::thread_rng().gen_range(0..potential.len());
        let mut not_violating = 0;
        for i in 0..potential.len() {
            if not_violating > 0 && found.len() >= wanted {
                break;
            }
            let node = potential[(offset + i) % potential.len()];
            match select_victims_on_node(pod, node, budgets, &run_filters) {
                Ok((victims, pdb_violations)) if !victims.is_empty() => {
                    if pdb_violations == 0 {
                        not_violating += 1;
                    }
                    found.push(Found {
                        node: node.name.clone(),
                        victims,
                        pdb_violations,
                    });
                }
                Ok(_) => {
                    // Kube reports this as an internal error: the pod fits as the node is.
                    let reason =
                        format!("expected at least one victim pod on node {:?}", node.name);
                    statuses.insert(node.name.clone(), Status::unresolvable(&reason));
                }
                Err(status) => {
                    statuses.insert(node.name.clone(), status);
                }
            }
        }
    }
    if let Some(best) = pick_one_node(found) {
        return Preemption::Nominate(Candidate {
            node: best.node,
            victims: best
                .victims
                .iter()
                .map(|v| Victim {
                    uid: v.uid.clone(),
                    namespace: v.namespace.clone(),
                    name: v.name.clone(),
                    priority: v.priority,
                })
                .collect(),
            pdb_violations: best.pdb_violations,
        });
    }
    let verdict = FitError {
        num_all_nodes: all_nodes.len(),
        statuses,
        absent: Some(Status::unresolvable(NOT_HELPFUL)),
        ..FitError::default()
    };
    Preemption::Failed(format!("preemption: {verdict}"))
}

#[cfg(test)]
#[path = "default_preemption_tests.rs"]
mod tests;
