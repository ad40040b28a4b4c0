//! NodeResourcesFit: the node must have room for the pod's requests — cpu, memory,
//! ephemeral-storage, scalar (extended) resources, and one more pod — next to the requests
//! of the pods already there (filter); with the LeastAllocated strategy, emptier nodes score
//! higher (score).
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
        let resources = [
            (
                node.non_zero_requested.milli_cpu + pod.non_zero.milli_cpu,
                node.allocatable.milli_cpu,
            ),
            (
                node.non_zero_requested.memory + pod.non_zero.memory,
                node.allocatable.memory,
            ),
        ];
        let (mut total, mut weights) = (0, 0);
        for (requested, allocatable) in resources {
            if allocatable == 0 {
                continue;
            }
            total += least_requested_score(requested, allocatable);
            weights += 1;
        }
        if weights == 0 {
            0
        } else {
            total / weights
        }
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
}
