//! Table tests of DefaultPreemption: verdicts, victims on one node, and the node picked.

use super::*;
use crate::cache::Cache;
use crate::framework::Framework;
use crate::testing::{affinity_term, node, pod, NodeBuilder, PodBuilder};
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
    let mut cache = Cache::default();
    for info in infos {
        cache.insert_node_info(info);
    }
    let refs: Vec<&NodeInfo> = cache.nodes();
    let state = framework.pre_filter_state(p, &cache).unwrap_or_default();
    let mut diagnosis = FitError {
        num_all_nodes: refs.len(),
        ..FitError::default()
    };
    for n in &refs {
        let status = framework.run_filters_in(&state, p, n);
        assert!(!status.is_success(), "{} fits", n.name);
        diagnosis.statuses.insert(n.name.clone(), status);
    }
    post_filter(p, &diagnosis, &refs, budgets, None, |n, removed| {
        framework.run_filters_without(&state, p, &cache, n, removed)
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
            select_victims_on_node(&p, &info, &case.budgets, |n, removed| {
                let mut without = n.clone();
                for victim in removed {
                    without.remove_pod(&victim.uid);
                }
                framework.run_filters(&p, &without)
            })
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
    let filters = |n: &NodeInfo, removed: &[&PodInfo]| {
        let mut without = n.clone();
        for victim in removed {
            without.remove_pod(&victim.uid);
        }
        framework.run_filters(&p, &without)
    };
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

#[test]
fn a_pod_kept_out_only_by_anti_affinity_preempts_the_pod_it_avoids() {
    const HOST: &str = "kubernetes.io/hostname";
    // Room enough on both nodes; only the anti-affinity to app=web keeps the pod out, and
    // the cluster-wide counts the pre-filter made still hold the web pods until the dry
    // run takes them out.
    let p = pod("p")
        .priority(10)
        .pod_anti_affinity(affinity_term("app", "web", HOST))
        .info();
    let nodes = vec![
        (
            cpus("n1", "4").label(HOST, "n1"),
            vec![pod("web-high").label("app", "web").priority(100)],
        ),
        (
            cpus("n2", "4").label(HOST, "n2"),
            vec![
                pod("web-low").label("app", "web").priority(1),
                pod("bystander").priority(1),
            ],
        ),
    ];
    let (node, victims, violations) = nominated(run(&p, nodes, &[]));
    assert_eq!(node, "n2");
    assert_eq!(victims, ["web-low"], "the bystander is reprieved");
    assert_eq!(violations, 0);
}

#[test]
fn a_protected_victim_is_passed_over_for_an_unprotected_one() {
    // Two nodes, each with one low-priority pod the preemptor could replace; the budget
    // allows no disruption of the web pod, so the other node is chosen.
    let p = pod("p").req(&[("cpu", "2")]).priority(10).info();
    let nodes = vec![
        (
            cpus("a", "2"),
            vec![pod("web")
                .req(&[("cpu", "2")])
                .label("app", "web")
                .priority(1)],
        ),
        (
            cpus("b", "2"),
            vec![pod("batch").req(&[("cpu", "2")]).priority(1)],
        ),
    ];
    let (node, victims, violations) = nominated(run(&p, nodes.clone(), &[web_budget(0)]));
    assert_eq!(
        (node.as_str(), victims, violations),
        ("b", vec!["batch".to_owned()], 0)
    );
    // With a disruption to spare, the web pod is as good a victim as any: both nodes tie
    // on every count, and the first found wins, so only the violation count is checked.
    let (_, _, violations) = nominated(run(&p, nodes, &[web_budget(1)]));
    assert_eq!(violations, 0);
}
