//! NodeResourcesBalancedAllocation: prefers nodes where, with the pod placed, cpu and memory
//! would be used in the same proportion: score = (1 - standard deviation of the used
//! fractions) * 100. Counts actual requests (no defaults for empty containers), and has
//! nothing to say about best-effort pods, so those do not all pile onto one node.

use crate::cache::NodeInfo;
use crate::framework::{PodInfo, ScorePlugin, MAX_NODE_SCORE};

/// The NodeResourcesBalancedAllocation score.
pub struct BalancedAllocation;

/// `balancedResourceScorer` over (requested, allocatable) pairs.
pub fn balanced_score(resources: &[(i64, i64)]) -> i64 {
    let fractions: Vec<f64> = resources
        .iter()
        .filter(|(_, allocatable)| *allocatable != 0)
        .map(|(requested, allocatable)| (*requested as f64 / *allocatable as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn pre_score(&self, pod: &PodInfo) -> bool {
        pod.requests.milli_cpu != 0 || pod.requests.memory != 0
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        balanced_score(&[
            (
                node.requested.milli_cpu + pod.requests.milli_cpu,
                node.allocatable.milli_cpu,
            ),
            (
                node.requested.memory + pod.requests.memory,
                node.allocatable.memory,
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, PodBuilder};

    struct Case {
        name: &'static str,
        pod: PodBuilder,
        running: Vec<PodBuilder>,
        allocatable: (&'static str, &'static str),
        want: i64,
    }

    #[test]
    fn score() {
        let cases = vec![
            Case {
                // cpu 3000/4000 = 0.75, memory 5000/10000 = 0.5: std 0.125.
                name: "fractions 0.75 and 0.5",
                pod: pod("p").req(&[("cpu", "3"), ("memory", "5000")]),
                running: vec![],
                allocatable: ("4", "10000"),
                want: 87,
            },
            Case {
                name: "equal fractions score 100",
                pod: pod("p").req(&[("cpu", "1"), ("memory", "1Gi")]),
                running: vec![pod("running").req(&[("cpu", "1"), ("memory", "1Gi")])],
                allocatable: ("4", "4Gi"),
                want: 100,
            },
            Case {
                // cpu 6000/6000 = 1, memory 0/10000 = 0: std 0.5.
                name: "all cpu, no memory",
                pod: pod("p").req(&[("cpu", "3")]),
                running: vec![pod("running").req(&[("cpu", "3")])],
                allocatable: ("6", "10000"),
                want: 50,
            },
            Case {
                name: "fractions above 1 count as 1",
                pod: pod("p").req(&[("cpu", "8"), ("memory", "5000")]),
                running: vec![],
                allocatable: ("4", "10000"),
                want: 75,
            },
        ];
        for case in cases {
            let (cpu, memory) = case.allocatable;
            let n = node("n")
                .allocatable(&[("cpu", cpu), ("memory", memory)])
                .info(
                    case.running
                        .into_iter()
                        .map(|q| q.node("n").build())
                        .collect(),
                );
            let p = case.pod.info();
            assert!(BalancedAllocation.pre_score(&p), "{}", case.name);
            assert_eq!(BalancedAllocation.score(&p, &n), case.want, "{}", case.name);
        }
        assert!(
            !BalancedAllocation.pre_score(&pod("p").req(&[]).info()),
            "best-effort pods are skipped"
        );
    }

    #[test]
    fn std_over_more_than_two_resources() {
        // fractions 0.2, 0.4, 0.6: mean 0.4, std sqrt(0.08/3) ≈ 0.1633.
        assert_eq!(balanced_score(&[(2, 10), (4, 10), (6, 10)]), 83);
        assert_eq!(balanced_score(&[(2, 10), (5, 0)]), 100);
    }
}
