//! Table tests of DefaultPreemption: verdicts, victims on one node, and the node picked.

use super::*;
use crate::framework::Framework;
use crate::testing::{node, pod, NodeBuilder, PodBuilder};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Nodes with the pods on them.
type Nodes = Vec<(NodeBuilder, Vec<PodBuilder>)>;

fn cpus(name: &str, cpu: &str) -> NodeBuilder {
    node(name).allocatable(&[("cpu", cpu), ("memory", "4Gi"), ("pods", "110")])
}

fn two_cpu() -> NodeBuilder {
    cpus("n", "2")
}

/// The nodes with their pods, the diagnosis every node failing as the filters say, and the
/// PostFilter's conclusion.
fn run(
    p: &Arc<PodInfo>,
    nodes: Vec<(NodeBuilder, Vec<PodBuilder>)>,
    budgets: &[Budget],
) -> Preemption {
    let framework = Framework::new(&Default::default());
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
        let status = framework.run_filters(p, n);
        assert!(!status.is_success(), "{} fits", n.name);
        diagnosis.statuses.insert(n.name.clone(), status);
    }
    post_filter(p, &diagnosis, &refs, budgets, None, |n| {
        framework.run_filters(p, n)
    })
}

fn nominated(preemption: Preemption) -> (String, Vec<String>, usize) {
    match preemption {
        Preemption::Nominate(c) => (
            c.node,
            c.victims.into_iter().map(|v| v.name).collect(),
            c.pdb_violations,
        ),
        Preemption::Failed(message) => panic!("no candidate: {message}"),
    }
}

fn web_budget(allowed: i32) -> Budget {
    Budget {
        namespace: "default".into(),
        selector: Some(LabelSelector {
            match_labels: Some([("app".to_owned(), "web".to_owned())].into()),
            match_expressions: None,
        }),
        disruptions_allowed: allowed,
        ..Budget::default()
    }
}

#[test]
fn verdicts_when_preemption_cannot_help() {
    let cases: Vec<(&str, PodBuilder, Nodes, &str)> = vec![
        (
            "only unresolvable failures",
            pod("p").req(&[("cpu", "1")]),
            vec![
                (two_cpu().taint("a", "b", "NoSchedule"), vec![]),
                (node("m").taint("a", "b", "NoSchedule"), vec![]),
            ],
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
        ),
        (
            "a full node without lower-priority pods",
            pod("p").req(&[("cpu", "1")]),
            vec![
                (two_cpu(), vec![pod("big").req(&[("cpu", "2")])]),
                (node("m").taint("a", "b", "NoSchedule"), vec![]),
            ],
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.",
        ),
        (
            "lower-priority pods whose removal is not enough",
            pod("p").req(&[("cpu", "2")]).priority(10),
            vec![(
                two_cpu(),
                vec![
                    pod("low").req(&[("cpu", "500m")]),
                    pod("same").req(&[("cpu", "1")]).priority(10),
                ],
            )],
            "preemption: 0/1 nodes are available: 1 Insufficient cpu.",
        ),
        (
            "preemptionPolicy Never",
            pod("p")
                .req(&[("cpu", "2")])
                .priority(10)
                .preemption_policy("Never"),
            vec![(two_cpu(), vec![pod("low").req(&[("cpu", "1")])])],
            "preemption: not eligible due to preemptionPolicy=Never.",
        ),
    ];
    for (name, p, nodes, want) in cases {
        assert_eq!(
            run(&p.info(), nodes, &[]),
            Preemption::Failed(want.to_owned()),
            "{name}"
        );
    }
}

#[test]
fn victims_are_the_pods_that_cannot_be_reprieved() {
    struct Case {
        name: &'static str,
        pod: PodBuilder,
        on_node: Vec<PodBuilder>,
        budgets: Vec<Budget>,
        victims: &'static [&'static str],
        violations: usize,
    }
    let cases = vec![
        Case {
            name: "the highest-priority pods are reprieved first",
            pod: pod("p").req(&[("cpu", "2")]).priority(10),
            on_node: vec![
                pod("low1").req(&[("cpu", "1")]).priority(1),
                pod("low3").req(&[("cpu", "2")]).priority(3),
                pod("low2").req(&[("cpu", "1")]).priority(2),
            ],
            budgets: vec![],
            victims: &["low2", "low1"],
            violations: 0,
        },
        Case {
            name: "pods of equal or higher priority are never victims",
            pod: pod("p").req(&[("cpu", "2")]).priority(10),
            on_node: vec![
                pod("same").req(&[("cpu", "1")]).priority(10),
                pod("higher").req(&[("cpu", "1")]).priority(20),
                pod("low").req(&[("cpu", "2")]).priority(1),
            ],
            budgets: vec![],
            victims: &["low"],
            violations: 0,
        },
        Case {
            name: "among equals the earlier started is reprieved",
            pod: pod("p").req(&[("cpu", "3")]).priority(10),
            on_node: vec![
                pod("late").req(&[("cpu", "1")]).started(2_000),
                pod("early").req(&[("cpu", "1")]).started(1_000),
                pod("unstarted").req(&[("cpu", "1")]),
            ],
            budgets: vec![],
            victims: &["late", "unstarted"],
            violations: 0,
        },
        Case {
            name: "pods a budget protects are reprieved before the others",
            pod: pod("p").req(&[("cpu", "3")]).priority(10),
            on_node: vec![
                pod("guarded").req(&[("cpu", "1")]).label("app", "web"),
                pod("free").req(&[("cpu", "1")]).started(1),
            ],
            budgets: vec![web_budget(0)],
            victims: &["free"],
            violations: 0,
        },
        Case {
            name: "a protected pod that must go counts as a violation",
            pod: pod("p").req(&[("cpu", "4")]).priority(10),
            on_node: vec![
                pod("guarded").req(&[("cpu", "1")]).label("app", "web"),
                pod("free").req(&[("cpu", "1")]),
            ],
            budgets: vec![web_budget(0)],
            victims: &["guarded", "free"],
            violations: 1,
        },
    ];
    let framework = Framework::new(&Default::default());
    for case in cases {
        let p = case.pod.info();
        let info = cpus("n", "4").info(
            case.on_node
                .into_iter()
                .map(|q| q.node("n").build())
                .collect(),
        );
        let (victims, violations) =
            select_victims_on_node(&p, &info, &case.budgets, |n| framework.run_filters(&p, n))
                .unwrap_or_else(|s| panic!("{}: {s:?}", case.name));
        let names: Vec<&str> = victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, case.victims, "{}", case.name);
        assert_eq!(violations, case.violations, "{}", case.name);
    }
}

#[test]
fn the_node_is_picked_in_kubes_order() {
    let cases: Vec<(&str, Nodes, Vec<Budget>, &str)> = vec![
        (
            "fewest PDB violations",
            vec![
                (
                    cpus("a", "1"),
                    vec![pod("a1").req(&[("cpu", "1")]).label("app", "web")],
                ),
                (
                    cpus("b", "1"),
                    vec![pod("b1").req(&[("cpu", "1")]).priority(5)],
                ),
            ],
            vec![web_budget(0)],
            "b",
        ),
        (
            "lowest highest-victim priority",
            vec![
                (
                    cpus("a", "1"),
                    vec![pod("a1").req(&[("cpu", "1")]).priority(5)],
                ),
                (
                    cpus("b", "1"),
                    vec![pod("b1").req(&[("cpu", "1")]).priority(3)],
                ),
            ],
            vec![],
            "b",
        ),
        (
            "smallest sum of priorities",
            vec![
                (
                    cpus("a", "2"),
                    vec![
                        pod("a1").req(&[("cpu", "1")]).priority(3),
                        pod("a2").req(&[("cpu", "1")]).priority(3),
                    ],
                ),
                (
                    cpus("b", "2"),
                    vec![
                        pod("b1").req(&[("cpu", "1")]).priority(3),
                        pod("b2").req(&[("cpu", "1")]).priority(1),
                    ],
                ),
            ],
            vec![],
            "b",
        ),
        (
            "latest start among the highest-priority victims",
            vec![
                (
                    cpus("a", "1"),
                    vec![pod("a1").req(&[("cpu", "1")]).started(100)],
                ),
                (
                    cpus("b", "1"),
                    vec![pod("b1").req(&[("cpu", "1")]).started(200)],
                ),
            ],
            vec![],
            "b",
        ),
    ];
    for (name, nodes, budgets, want) in cases {
        for order in [false, true] {
            let mut nodes = nodes.clone();
            if order {
                nodes.reverse();
            }
            let p = pod("p").req(&[("cpu", "1")]).priority(10).info();
            let (node, victims, _) = nominated(run(&p, nodes, &budgets));
            assert_eq!(node, want, "{name}");
            assert!(!victims.is_empty(), "{name}");
        }
    }
}

#[test]
fn a_pod_waits_for_its_earlier_victims() {
    let framework = Framework::new(&Default::default());
    let p = pod("p").req(&[("cpu", "2")]).priority(10).info();
    let info = two_cpu().info(vec![
        pod("going")
            .req(&[("cpu", "1")])
            .preempted()
            .node("n")
            .build(),
        pod("low").req(&[("cpu", "1")]).node("n").build(),
    ]);
    let refs = vec![&info];
    let mut diagnosis = FitError {
        num_all_nodes: 1,
        ..FitError::default()
    };
    diagnosis
        .statuses
        .insert("n".into(), framework.run_filters(&p, &info));
    let filters = |n: &NodeInfo| framework.run_filters(&p, n);
    assert_eq!(
        post_filter(&p, &diagnosis, &refs, &[], Some("n"), filters),
        Preemption::Failed(
            "preemption: not eligible due to a terminating pod on the nominated node.".into()
        )
    );
    let Preemption::Nominate(candidate) = post_filter(&p, &diagnosis, &refs, &[], None, filters)
    else {
        panic!("not nominated yet: preempts");
    };
    assert_eq!(candidate.node, "n");
    assert_eq!(candidate.victims.len(), 2);
}
