//! DefaultPreemption, the PostFilter, as far as its verdict goes: after no node fit, it says
//! whether removing lower-priority pods could help, and that verdict ends the
//! `FailedScheduling` message (`preemption: 0/3 nodes are available: ...`).
//!
//! Nodes that failed unresolvably are not worth it ("Preemption is not helpful for
//! scheduling"); on the others, a pod can only preempt pods of lower priority ("No
//! preemption victims found for incoming pod" when there are none), and the node must fit
//! once they are all gone. Evicting victims (and nominating the node) is not done yet: when
//! preemption would help, there is no verdict and the message ends after the filters.

use std::collections::BTreeMap;

use crate::cache::NodeInfo;
use crate::framework::{Code, FitError, PodInfo, Status};

/// The verdict for a node whose failure preemption cannot fix.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// The verdict for a node with no pod of lower priority.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// The `preemption: ...` message for a pod no node fits (per `diagnosis`), or `None` when
/// removing lower-priority pods would make some node fit. `run_filters` runs every filter
/// plugin of the profile on a node.
pub fn post_filter(
    pod: &PodInfo,
    diagnosis: &FitError,
    all_nodes: &[&NodeInfo],
    run_filters: impl Fn(&NodeInfo) -> Status,
) -> Option<String> {
    if pod.spec().preemption_policy.as_deref() == Some("Never") {
        return Some("preemption: not eligible due to preemptionPolicy=Never.".to_owned());
    }
    let status_code = |node: &NodeInfo| {
        diagnosis
            .statuses
            .get(&node.name)
            .or(diagnosis.absent.as_ref())
            .map_or(Code::UnschedulableAndUnresolvable, |s| s.code)
    };
    let mut statuses = BTreeMap::new();
    for node in all_nodes
        .iter()
        .filter(|n| status_code(n) == Code::Unschedulable)
    {
        let victims: Vec<&str> = node
            .pods
            .values()
            .filter(|p| p.priority < pod.priority)
            .map(|p| p.uid.as_str())
            .collect();
        if victims.is_empty() {
            statuses.insert(node.name.clone(), Status::unresolvable(NO_VICTIMS));
            continue;
        }
        let mut without = (*node).clone();
        for uid in victims {
            without.remove_pod(uid);
        }
        let status = run_filters(&without);
        if status.is_success() {
            tracing::info!(pod = %pod.key(), node = %node.name, "preemption would make room, but evicting pods is not implemented");
            return None;
        }
        statuses.insert(node.name.clone(), status);
    }
    let verdict = FitError {
        num_all_nodes: all_nodes.len(),
        statuses,
        absent: Some(Status::unresolvable(NOT_HELPFUL)),
        ..FitError::default()
    };
    Some(format!("preemption: {verdict}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Framework;
    use crate::testing::{node, pod, NodeBuilder, PodBuilder};

    fn two_cpu() -> NodeBuilder {
        node("n").allocatable(&[("cpu", "2"), ("memory", "4Gi"), ("pods", "110")])
    }

    struct Case {
        name: &'static str,
        pod: PodBuilder,
        nodes: Vec<(NodeBuilder, Vec<PodBuilder>)>,
        want: Option<&'static str>,
    }

    #[test]
    fn verdicts() {
        let cases = vec![
            Case {
                name: "only unresolvable failures",
                pod: pod("p").req(&[("cpu", "1")]),
                nodes: vec![
                    (two_cpu().taint("a", "b", "NoSchedule"), vec![]),
                    (node("m").taint("a", "b", "NoSchedule"), vec![]),
                ],
                want: Some("preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."),
            },
            Case {
                name: "a full node without lower-priority pods",
                pod: pod("p").req(&[("cpu", "1")]),
                nodes: vec![
                    (two_cpu(), vec![pod("big").req(&[("cpu", "2")])]),
                    (node("m").taint("a", "b", "NoSchedule"), vec![]),
                ],
                want: Some("preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."),
            },
            Case {
                name: "lower-priority pods whose removal is not enough",
                pod: pod("p").req(&[("cpu", "2")]).priority(10),
                nodes: vec![(
                    two_cpu(),
                    vec![
                        pod("low").req(&[("cpu", "500m")]),
                        pod("same").req(&[("cpu", "1")]).priority(10),
                    ],
                )],
                want: Some("preemption: 0/1 nodes are available: 1 Insufficient cpu."),
            },
            Case {
                name: "lower-priority pods whose removal makes room",
                pod: pod("p").req(&[("cpu", "2")]).priority(10),
                nodes: vec![(two_cpu(), vec![pod("low").req(&[("cpu", "1")])])],
                want: None,
            },
            Case {
                name: "preemptionPolicy Never",
                pod: pod("p")
                    .req(&[("cpu", "2")])
                    .priority(10)
                    .preemption_policy("Never"),
                nodes: vec![(two_cpu(), vec![pod("low").req(&[("cpu", "1")])])],
                want: Some("preemption: not eligible due to preemptionPolicy=Never."),
            },
        ];
        let framework = Framework::new(&Default::default());
        for Case {
            name,
            pod: p,
            nodes,
            want,
        } in cases
        {
            let p = p.info();
            let infos: Vec<NodeInfo> = nodes
                .into_iter()
                .map(|(n, pods)| {
                    let name = n.clone().build().metadata.name.unwrap();
                    n.info(pods.into_iter().map(|q| q.node(&name).build()).collect())
                })
                .collect();
            let refs: Vec<&NodeInfo> = infos.iter().collect();
            let mut diagnosis = FitError {
                num_all_nodes: refs.len(),
                ..FitError::default()
            };
            for n in &refs {
                let status = framework.run_filters(&p, n);
                assert!(!status.is_success(), "{name}: {} fits", n.name);
                diagnosis.statuses.insert(n.name.clone(), status);
            }
            let got = post_filter(&p, &diagnosis, &refs, |n| framework.run_filters(&p, n));
            assert_eq!(got.as_deref(), want, "{name}");
        }
    }
}
