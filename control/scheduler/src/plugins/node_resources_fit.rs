//! NodeResourcesFit: the node must have room for the pod's requests — cpu, memory,
//! ephemeral-storage, scalar (extended) resources, and one more pod — next to the requests
//! of the pods already there (filter); with the LeastAllocated strategy (the default),
//! emptier nodes score higher, with MostAllocated fuller ones, with RequestedToCapacityRatio
//! the utilization maps through a broken-line shape (score).
//!
//! A shortage is *unresolvable* (preemption cannot help) when the pod asks for more than the
//! node has allocatable at all.

use crate::cache::NodeInfo;
use crate::framework::{Code, FilterPlugin, PodInfo, ScorePlugin, Status, MAX_NODE_SCORE};

/// The NodeResourcesFit filter and its LeastAllocated score.
pub struct NodeResourcesFit;

/// One resource the node is short of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsufficientResource {
    /// The resource (`cpu`, `pods`, `example.com/gpu`).
    pub name: String,
    /// `Insufficient cpu`, `Too many pods`.
    pub reason: String,
    /// What the pod asks for.
    pub requested: i64,
    /// What the node's pods already ask for.
    pub used: i64,
    /// The node's allocatable amount.
    pub capacity: i64,
    /// The pod asks for more than the node has at all.
    pub unresolvable: bool,
}

fn shortage(name: &str, requested: i64, used: i64, capacity: i64) -> Option<InsufficientResource> {
    (requested > 0 && requested > capacity.saturating_sub(used)).then(|| InsufficientResource {
        name: name.to_owned(),
        reason: format!("Insufficient {name}"),
        requested,
        used,
        capacity,
        unresolvable: requested > capacity,
    })
}

/// `fitsRequest`: every resource the node cannot give the pod, in kube's order.
pub fn fits_request(pod: &PodInfo, node: &NodeInfo) -> Vec<InsufficientResource> {
    let mut short = Vec::new();
    let allowed_pods = node.allocatable.allowed_pods;
    if node.pods.len() as i64 + 1 > allowed_pods {
        short.push(InsufficientResource {
            name: "pods".into(),
            reason: "Too many pods".into(),
            requested: 1,
            used: node.pods.len() as i64,
            capacity: allowed_pods,
            unresolvable: false,
        });
    }
    let wanted = &pod.requests;
    if wanted.is_zero() {
        return short;
    }
    let (allocatable, requested) = (&node.allocatable, &node.requested);
    short.extend(shortage(
        "cpu",
        wanted.milli_cpu,
        requested.milli_cpu,
        allocatable.milli_cpu,
    ));
    short.extend(shortage(
        "memory",
        wanted.memory,
        requested.memory,
        allocatable.memory,
    ));
    short.extend(shortage(
        "ephemeral-storage",
        wanted.ephemeral_storage,
        requested.ephemeral_storage,
        allocatable.ephemeral_storage,
    ));
    for (name, &amount) in &wanted.scalar {
        short.extend(shortage(
            name,
            amount,
            requested.scalar(name),
            allocatable.scalar(name),
        ));
    }
    short
}

/// `leastRequestedScore`: the unused share of `capacity`, 0..=100.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let short = fits_request(pod, node);
        if short.is_empty() {
            return Status::success();
        }
        Status {
            code: if short.iter().any(|s| s.unresolvable) {
                Code::UnschedulableAndUnresolvable
            } else {
                Code::Unschedulable
            },
            reasons: short.into_iter().map(|s| s.reason).collect(),
        }
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    /// LeastAllocated over cpu and memory (weight 1 each), counting containers without
    /// requests as 100m / 200Mi.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        ScoringStrategy::default().score(pod, node)
    }
}

/// How NodeResourcesFit scores (`scoringStrategy.type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrategyKind {
    /// Emptier nodes score higher (the default).
    LeastAllocated,
    /// Fuller nodes score higher (bin packing).
    MostAllocated,
    /// The score follows a broken-line function of the utilization, given as points
    /// (utilization 0..=100, score 0..=10).
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

/// `scoringStrategy`: the kind and the weighted resources it looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoringStrategy {
    /// The kind.
    pub kind: StrategyKind,
    /// (resource name, weight); cpu and memory at 1 by default.
    pub resources: Vec<(String, i64)>,
}

impl Default for ScoringStrategy {
    fn default() -> ScoringStrategy {
        ScoringStrategy {
            kind: StrategyKind::LeastAllocated,
            resources: vec![("cpu".into(), 1), ("memory".into(), 1)],
        }
    }
}

/// The highest score of a RequestedToCapacityRatio shape point (`MaxCustomPriorityScore`).
pub const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;

/// `mostRequestedScore`: the used share of `capacity`, 0..=100 (over-commitment counts as
/// full).
pub fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

/// The broken-line function through `shape` (utilization, score already scaled to 0..=100)
/// at utilization `p`: flat before the first and after the last point.
pub fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for (i, &(utilization, score)) in shape.iter().enumerate() {
        if p <= utilization {
            if i == 0 {
                return score;
            }
            let (u0, s0) = shape[i - 1];
            return s0 + (score - s0) * (p - u0) / (utilization - u0);
        }
    }
    shape.last().map_or(0, |&(_, score)| score)
}

impl ScoringStrategy {
    /// The node's requested and allocatable amount of `resource` with the pod placed:
    /// cpu and memory as scoring counts them (defaults for containers without requests).
    fn amounts(pod: &PodInfo, node: &NodeInfo, resource: &str) -> (i64, i64) {
        match resource {
            "cpu" => (
                node.non_zero_requested.milli_cpu + pod.non_zero.milli_cpu,
                node.allocatable.milli_cpu,
            ),
            "memory" => (
                node.non_zero_requested.memory + pod.non_zero.memory,
                node.allocatable.memory,
            ),
            "ephemeral-storage" => (
                node.requested.ephemeral_storage + pod.requests.ephemeral_storage,
                node.allocatable.ephemeral_storage,
            ),
            name => (
                node.requested.scalar(name) + pod.requests.scalar(name),
                node.allocatable.scalar(name),
            ),
        }
    }

    /// The node's score, 0..=100: the weighted mean over the resources it has.
    pub fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (mut total, mut weights) = (0i64, 0i64);
        for (resource, weight) in &self.resources {
            let (requested, allocatable) = Self::amounts(pod, node, resource);
            if allocatable == 0 {
                continue;
            }
            let score = match &self.kind {
                StrategyKind::LeastAllocated => least_requested_score(requested, allocatable),
                StrategyKind::MostAllocated => most_requested_score(requested, allocatable),
                StrategyKind::RequestedToCapacityRatio(shape) => {
                    let scaled: Vec<(i64, i64)> = shape
                        .iter()
                        .map(|&(u, s)| (u, s * MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE))
                        .collect();
                    let utilization = if requested > allocatable {
                        100
                    } else {
                        requested * 100 / allocatable
                    };
                    let score = broken_linear(&scaled, utilization);
                    // kube's quirk: a resource scoring 0 does not count in the mean.
                    if score <= 0 {
                        continue;
                    }
                    score
                }
            };
            total += score * weight;
            weights += weight;
        }
        if weights == 0 {
            return 0;
        }
        match self.kind {
            StrategyKind::RequestedToCapacityRatio(_) => {
                (total as f64 / weights as f64).round() as i64
            }
            _ => total / weights,
        }
    }
}

/// The NodeResourcesFit score with a configured strategy.
pub struct FitScore(pub ScoringStrategy);

impl ScorePlugin for FitScore {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        self.0.score(pod, node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{container, node, pod, NodeBuilder, PodBuilder};

    fn node_10_20() -> NodeBuilder {
        node("n").allocatable(&[
            ("cpu", "10m"),
            ("memory", "20"),
            ("pods", "32"),
            ("example.com/foo", "5"),
            ("ephemeral-storage", "20"),
        ])
    }

    fn reasons(code: Code, list: &[&str]) -> Status {
        Status {
            code,
            reasons: list.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn using(cpu: &str, memory: &str) -> PodBuilder {
        pod("running").req(&[("cpu", cpu), ("memory", memory)])
    }

    #[test]
    fn filter() {
        use Code::{Unschedulable, UnschedulableAndUnresolvable};
        let cases: Vec<(&str, PodBuilder, Vec<PodBuilder>, Status)> = vec![
            (
                "no resources requested always fits",
                pod("p"),
                vec![using("10m", "20")],
                Status::success(),
            ),
            (
                "too many resources fails",
                pod("p").req(&[("cpu", "1m"), ("memory", "1")]),
                vec![using("10m", "20")],
                reasons(Unschedulable, &["Insufficient cpu", "Insufficient memory"]),
            ),
            (
                "too many resources fails due to init container cpu",
                pod("p")
                    .init_container(container(&[("cpu", "3m"), ("memory", "1")]))
                    .req(&[("cpu", "1m"), ("memory", "1")]),
                vec![using("8m", "19")],
                reasons(Unschedulable, &["Insufficient cpu"]),
            ),
            (
                "init container with the highest cpu and memory wins",
                pod("p")
                    .init_container(container(&[("cpu", "3m"), ("memory", "1")]))
                    .init_container(container(&[("cpu", "2m"), ("memory", "2")]))
                    .req(&[("cpu", "1m"), ("memory", "1")]),
                vec![using("8m", "19")],
                reasons(Unschedulable, &["Insufficient cpu", "Insufficient memory"]),
            ),
            (
                "init container fits because it is the max, not the sum",
                pod("p")
                    .init_container(container(&[("cpu", "1m"), ("memory", "1")]))
                    .req(&[("cpu", "1m"), ("memory", "1")]),
                vec![using("9m", "19")],
                Status::success(),
            ),
            (
                "both resources fit",
                pod("p").req(&[("cpu", "1m"), ("memory", "1")]),
                vec![using("5m", "5")],
                Status::success(),
            ),
            (
                "one resource memory fits",
                pod("p").req(&[("cpu", "2m"), ("memory", "1")]),
                vec![using("9m", "5")],
                reasons(Unschedulable, &["Insufficient cpu"]),
            ),
            (
                "one resource cpu fits",
                pod("p").req(&[("cpu", "1m"), ("memory", "2")]),
                vec![using("5m", "19")],
                reasons(Unschedulable, &["Insufficient memory"]),
            ),
            (
                "equal edge case",
                pod("p").req(&[("cpu", "5m"), ("memory", "1")]),
                vec![using("5m", "19")],
                Status::success(),
            ),
            (
                "more than the node has at all is unresolvable",
                pod("p").req(&[("cpu", "11m")]),
                vec![],
                reasons(UnschedulableAndUnresolvable, &["Insufficient cpu"]),
            ),
            (
                "one unresolvable shortage makes the status unresolvable",
                pod("p").req(&[("cpu", "11m"), ("memory", "2")]),
                vec![using("0", "19")],
                reasons(
                    UnschedulableAndUnresolvable,
                    &["Insufficient cpu", "Insufficient memory"],
                ),
            ),
            (
                "extended resource fits",
                pod("p").req(&[("example.com/foo", "1")]),
                vec![pod("running").req(&[("example.com/foo", "4")])],
                Status::success(),
            ),
            (
                "extended resource capacity exceeded by running pods",
                pod("p").req(&[("example.com/foo", "2")]),
                vec![pod("running").req(&[("example.com/foo", "4")])],
                reasons(Unschedulable, &["Insufficient example.com/foo"]),
            ),
            (
                "extended resource the node lacks",
                pod("p").req(&[("example.com/bar", "1")]),
                vec![],
                reasons(
                    UnschedulableAndUnresolvable,
                    &["Insufficient example.com/bar"],
                ),
            ),
            (
                "overhead counts",
                pod("p")
                    .req(&[("cpu", "1m"), ("memory", "1")])
                    .overhead(&[("cpu", "3m"), ("memory", "13")]),
                vec![using("5m", "10")],
                reasons(Unschedulable, &["Insufficient memory"]),
            ),
            (
                "ephemeral storage",
                pod("p").req(&[("ephemeral-storage", "25")]),
                vec![],
                reasons(
                    UnschedulableAndUnresolvable,
                    &["Insufficient ephemeral-storage"],
                ),
            ),
        ];
        for (name, p, running, want) in cases {
            let n = node_10_20().info(running.into_iter().map(|q| q.node("n").build()).collect());
            assert_eq!(NodeResourcesFit.filter(&p.info(), &n), want, "{name}");
        }
    }

    #[test]
    fn too_many_pods() {
        let full = node("n")
            .allocatable(&[("cpu", "10"), ("memory", "20Gi"), ("pods", "1")])
            .info(vec![pod("running").node("n").build()]);
        assert_eq!(
            NodeResourcesFit.filter(&pod("p").info(), &full),
            reasons(Code::Unschedulable, &["Too many pods"])
        );
        assert_eq!(
            NodeResourcesFit.filter(&pod("p").req(&[("cpu", "11")]).info(), &full),
            reasons(
                Code::UnschedulableAndUnresolvable,
                &["Too many pods", "Insufficient cpu"]
            )
        );
    }

    #[test]
    fn least_allocated_score() {
        let node = |cpu: &str, memory: &str| {
            crate::testing::node("n").allocatable(&[("cpu", cpu), ("memory", memory)])
        };
        let cases: Vec<(&str, PodBuilder, NodeBuilder, Vec<PodBuilder>, i64)> = vec![
            (
                // Non-zero defaults: 100m and 200Mi on a 4-cpu, 10Gi node.
                "nothing requested",
                pod("p").req(&[]),
                node("4", "10Gi"),
                vec![],
                ((4000 - 100) * 100 / 4000 + (10240 - 200) * 100 / 10240) / 2,
            ),
            (
                "half the cpu and a quarter of the memory used",
                pod("p").req(&[("cpu", "1"), ("memory", "1Gi")]),
                node("4", "8Gi"),
                vec![pod("running").req(&[("cpu", "1"), ("memory", "1Gi")])],
                (50 + 75) / 2,
            ),
            (
                "requested beyond capacity scores 0 for that resource",
                pod("p").req(&[("cpu", "5"), ("memory", "1Gi")]),
                node("4", "4Gi"),
                vec![],
                75 / 2,
            ),
            (
                "no allocatable memory: cpu alone",
                pod("p").req(&[("cpu", "1")]),
                crate::testing::node("n").allocatable(&[("cpu", "4")]),
                vec![],
                75,
            ),
        ];
        for (name, p, n, running, want) in cases {
            let n = n.info(running.into_iter().map(|q| q.node("n").build()).collect());
            assert_eq!(NodeResourcesFit.score(&p.info(), &n), want, "{name}");
        }
    }

    #[test]
    fn scoring_strategies() {
        let node =
            || node("n").allocatable(&[("cpu", "4"), ("memory", "10Gi"), ("example.com/gpu", "4")]);
        let placed = vec![pod("r").req(&[("cpu", "1"), ("memory", "2Gi")]).build()];
        let incoming = pod("p").req(&[("cpu", "1"), ("memory", "3Gi")]).info();
        let info = node().info(placed);
        let strategy = |kind| ScoringStrategy {
            kind,
            ..ScoringStrategy::default()
        };
        // 2 of 4 cpu, 5 of 10Gi memory used with the pod.
        assert_eq!(
            strategy(StrategyKind::LeastAllocated).score(&incoming, &info),
            50
        );
        assert_eq!(
            strategy(StrategyKind::MostAllocated).score(&incoming, &info),
            50
        );
        let bin_packing = ScoringStrategy {
            kind: StrategyKind::MostAllocated,
            resources: vec![("cpu".into(), 3), ("memory".into(), 1)],
        };
        let fuller = pod("p").req(&[("cpu", "3"), ("memory", "3Gi")]).info();
        // cpu 4/4 → 100 (weight 3), memory 5/10 → 50: (300 + 50) / 4.
        assert_eq!(bin_packing.score(&fuller, &info), 87);
        // Over-commitment counts as full for MostAllocated, empty for LeastAllocated.
        let huge = pod("p").req(&[("cpu", "8"), ("memory", "3Gi")]).info();
        assert_eq!(
            strategy(StrategyKind::MostAllocated).score(&huge, &info),
            75
        );
        assert_eq!(
            strategy(StrategyKind::LeastAllocated).score(&huge, &info),
            25
        );
        // Shape 0% → 10, 100% → 0 is LeastAllocated in steps; 0 → 0, 100 → 10 MostAllocated.
        let rising = strategy(StrategyKind::RequestedToCapacityRatio(vec![
            (0, 0),
            (100, 10),
        ]));
        assert_eq!(rising.score(&incoming, &info), 50);
        let steps = strategy(StrategyKind::RequestedToCapacityRatio(vec![
            (0, 0),
            (40, 2),
            (60, 8),
            (100, 10),
        ]));
        // cpu 50% → 20 + (80 - 20) * 10 / 20 = 50; memory 50% → 50.
        assert_eq!(steps.score(&incoming, &info), 50);
        // An extended resource the pod does not ask for still counts when the node has it.
        let gpus = ScoringStrategy {
            kind: StrategyKind::MostAllocated,
            resources: vec![("cpu".into(), 1), ("example.com/gpu".into(), 1)],
        };
        assert_eq!(gpus.score(&incoming, &info), 25);
        assert_eq!(broken_linear(&[(10, 100), (90, 0)], 5), 100);
        assert_eq!(broken_linear(&[(10, 100), (90, 0)], 95), 0);
        assert_eq!(broken_linear(&[(10, 100), (90, 0)], 50), 50);
    }
}
