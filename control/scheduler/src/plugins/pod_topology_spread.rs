//! PodTopologySpread: a pod's `topologySpreadConstraints` keep the pods a selector picks
//! evenly spread over topology domains (the nodes sharing a value of `topologyKey`).
//! `whenUnsatisfiable: DoNotSchedule` constraints filter: placing the pod in a domain must
//! not make it exceed the least-loaded domain by more than `maxSkew` (with fewer domains
//! than `minDomains`, the least load counts as 0); a node without the key fails unresolvably.
//! `ScheduleAnyway` constraints score: domains with fewer matching pods score higher.
//!
//! Only nodes matching the pod's node selector / required node affinity count as domains
//! (`nodeAffinityPolicy: Honor`, the default); taints are ignored unless
//! `nodeTaintsPolicy: Honor`. `matchLabelKeys` narrow the selector to the pod's own values.
//! Pods count when they are in the incoming pod's namespace and not being deleted; assumed
//! pods are on their nodes in the cache, so they count.
//!
//! A pod without constraints gets the plugin's default constraints — kube's system defaults
//! are `kubernetes.io/hostname` maxSkew 3 and `topology.kubernetes.io/zone` maxSkew 5, both
//! ScheduleAnyway — over the selectors of the Services, ReplicationController, ReplicaSet or
//! StatefulSet that select or own it; with no such selector, it gets none.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::cache::{Cache, ControllerKind, NodeInfo};
use crate::framework::{
    CycleState, FilterPlugin, PodInfo, PreFilter, ScorePlugin, Status, MAX_NODE_SCORE,
};
use crate::label_selector;
use crate::plugins::node_affinity::required_matches;
use crate::plugins::taint_toleration::find_untolerated_taint;

/// Placing the pod on the node would exceed a constraint's `maxSkew`.
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
/// The node lacks a constraint's topology key.
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// The hostname label, whose domains are single nodes (counted per node when scoring).
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// The zone label.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// A default constraint of the plugin's arguments (`defaultConstraints`), which carries no
/// selector: the pod's Services and controller supply it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultConstraint {
    /// `maxSkew`.
    pub max_skew: i32,
    /// `topologyKey`.
    pub topology_key: String,
    /// `DoNotSchedule` or `ScheduleAnyway`.
    pub when_unsatisfiable: String,
}

/// kube's system default constraints (`defaultingType: System`).
pub fn system_default_constraints() -> Vec<DefaultConstraint> {
    vec![
        DefaultConstraint {
            max_skew: 3,
            topology_key: LABEL_HOSTNAME.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
        },
        DefaultConstraint {
            max_skew: 5,
            topology_key: LABEL_ZONE.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
        },
    ]
}

/// The PodTopologySpread filter and score.
#[derive(Clone, Debug)]
pub struct PodTopologySpread {
    /// Constraints for pods that have none.
    pub default_constraints: Vec<DefaultConstraint>,
    /// Whether those are the system defaults (then scoring does not require nodes to have
    /// every topology key, so nodes without a zone still spread by hostname).
    pub system_defaulted: bool,
}

impl Default for PodTopologySpread {
    fn default() -> PodTopologySpread {
        PodTopologySpread {
            default_constraints: system_default_constraints(),
            system_defaulted: true,
        }
    }
}

/// A constraint made ready to count pods.
#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: Option<LabelSelector>,
    min_domains: usize,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

impl Constraint {
    /// Whether the node counts as a domain for this constraint (`matchNodeInclusionPolicies`).
    fn includes(&self, pod: &PodInfo, node: &NodeInfo) -> bool {
        if self.honor_node_affinity && !required_matches(pod.spec(), node) {
            return false;
        }
        let tolerations = pod.spec().tolerations.as_deref().unwrap_or(&[]);
        !(self.honor_node_taints && find_untolerated_taint(node.taints(), tolerations).is_some())
    }

    /// The node's pods this constraint counts.
    fn count(&self, node: &NodeInfo, namespace: &str) -> i64 {
        node.pods
            .values()
            .filter(|p| {
                p.namespace == namespace
                    && p.pod.metadata.deletion_timestamp.is_none()
                    && label_selector::matches(
                        self.selector.as_ref(),
                        p.pod.metadata.labels.as_ref(),
                    )
            })
            .count() as i64
    }
}

fn has_all_keys(node: &NodeInfo, constraints: &[Constraint]) -> bool {
    let labels = node.labels();
    constraints
        .iter()
        .all(|c| labels.is_some_and(|l| l.contains_key(&c.topology_key)))
}

/// The pod's own constraints with `when_unsatisfiable`, selectors narrowed by
/// `matchLabelKeys`.
fn own_constraints(
    pod: &PodInfo,
    list: &[TopologySpreadConstraint],
    when: &str,
) -> Vec<Constraint> {
    let labels = pod.pod.metadata.labels.as_ref();
    list.iter()
        .filter(|c| c.when_unsatisfiable == when)
        .map(|c| {
            let mut selector = c.label_selector.clone();
            for key in c.match_label_keys.iter().flatten() {
                if let (Some(s), Some(value)) = (&selector, labels.and_then(|l| l.get(key))) {
                    selector = Some(label_selector::with_requirement(
                        s,
                        key,
                        "In",
                        vec![value.clone()],
                    ));
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                selector,
                min_domains: c.min_domains.map_or(1, |m| m.max(1) as usize),
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect()
}

/// `helper.DefaultSelector`: the union of the selectors of the Services selecting the pod and
/// of its controlling ReplicationController, ReplicaSet or StatefulSet.
pub fn default_selector(pod: &PodInfo, cache: &Cache) -> LabelSelector {
    let labels = pod.pod.metadata.labels.clone().unwrap_or_default();
    let mut selector = LabelSelector::default();
    let mut match_labels = std::collections::BTreeMap::new();
    for service in cache.service_selectors(&pod.namespace) {
        if service.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            match_labels.extend(service.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let owner = pod
        .pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let mut expressions: Vec<LabelSelectorRequirement> = Vec::new();
    if let Some(owner) = owner {
        let kind = match (owner.api_version.as_str(), owner.kind.as_str()) {
            ("v1", "ReplicationController") => Some(ControllerKind::ReplicationController),
            ("apps/v1", "ReplicaSet") => Some(ControllerKind::ReplicaSet),
            ("apps/v1", "StatefulSet") => Some(ControllerKind::StatefulSet),
            _ => None,
        };
        let found = kind.and_then(|k| cache.controller_selector(k, &pod.namespace, &owner.name));
        match (kind, found) {
            (Some(ControllerKind::ReplicationController), Some(rc)) => {
                match_labels.extend(rc.match_labels.clone().unwrap_or_default());
            }
            (Some(_), Some(owned)) => {
                for (key, value) in owned.match_labels.iter().flatten() {
                    expressions.push(LabelSelectorRequirement {
                        key: key.clone(),
                        operator: "In".into(),
                        values: Some(vec![value.clone()]),
                    });
                }
                expressions.extend(owned.match_expressions.iter().flatten().cloned());
            }
            _ => {}
        }
    }
    if !match_labels.is_empty() {
        selector.match_labels = Some(match_labels);
    }
    if !expressions.is_empty() {
        selector.match_expressions = Some(expressions);
    }
    selector
}

impl PodTopologySpread {
    /// The constraints that apply to `pod` for `when` (its own, or the defaults when it has
    /// none at all), and whether they are its own.
    fn constraints(&self, pod: &PodInfo, cache: &Cache, when: &str) -> (Vec<Constraint>, bool) {
        if let Some(list) = pod
            .spec()
            .topology_spread_constraints
            .as_ref()
            .filter(|l| !l.is_empty())
        {
            return (own_constraints(pod, list, when), true);
        }
        let defaults: Vec<&DefaultConstraint> = self
            .default_constraints
            .iter()
            .filter(|c| c.when_unsatisfiable == when)
            .collect();
        if defaults.is_empty() {
            return (Vec::new(), false);
        }
        let selector = default_selector(pod, cache);
        if selector.match_labels.is_none() && selector.match_expressions.is_none() {
            return (Vec::new(), false);
        }
        let constraints = defaults
            .into_iter()
            .map(|c| Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                selector: Some(selector.clone()),
                min_domains: 1,
                honor_node_affinity: true,
                honor_node_taints: false,
            })
            .collect();
        (constraints, false)
    }
}

/// What the pre-filter counted: per constraint, matching pods per domain value.
#[derive(Clone, Debug)]
struct FilterState {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
}

impl FilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    /// Without the cluster's counts, nothing is known against the node.
    fn filter(&self, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }

    fn pre_filter_in(&self, pod: &PodInfo, cache: &Cache, state: &mut CycleState) -> PreFilter {
        let (constraints, _) = self.constraints(pod, cache, "DoNotSchedule");
        if constraints.is_empty() {
            return PreFilter::AllNodes;
        }
        let mut counts = vec![HashMap::new(); constraints.len()];
        for node in cache.nodes() {
            if !has_all_keys(node, &constraints) {
                continue;
            }
            let labels = node.labels().expect("has_all_keys saw labels");
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes(pod, node) {
                    continue;
                }
                *counts[i]
                    .entry(labels[&c.topology_key].clone())
                    .or_insert(0) += c.count(node, &pod.namespace);
            }
        }
        state.write(FilterState {
            constraints,
            counts,
        });
        PreFilter::AllNodes
    }

    /// The counts without `removed` (kube's `RemovePod` extension).
    fn remove_pod_in(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
        _cache: &Cache,
    ) {
        let Some(counted) = state.read_mut::<FilterState>() else {
            return;
        };
        if !has_all_keys(node, &counted.constraints) || removed.namespace != pod.namespace {
            return;
        }
        let labels = node.labels().expect("has_all_keys saw labels");
        for (c, counts) in counted.constraints.iter().zip(counted.counts.iter_mut()) {
            let selected =
                label_selector::matches(c.selector.as_ref(), removed.pod.metadata.labels.as_ref());
            if c.includes(pod, node) && selected {
                if let Some(count) = counts.get_mut(&labels[&c.topology_key]) {
                    *count -= 1;
                }
            }
        }
    }

    /// `matching pods in the node's domain + the pod itself if it matches - the least
    /// loaded domain <= maxSkew`, for every constraint.
    fn filter_in(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(state) = state.read::<FilterState>() else {
            return Status::success();
        };
        for (c, counts) in state.constraints.iter().zip(&state.counts) {
            let Some(value) = node.labels().and_then(|l| l.get(&c.topology_key)) else {
                return Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let min = if counts.len() < c.min_domains {
                0
            } else {
                counts.values().copied().min().unwrap_or(0)
            };
            let self_match = i64::from(label_selector::matches(
                c.selector.as_ref(),
                pod.pod.metadata.labels.as_ref(),
            ));
            let matching = counts.get(value).copied().unwrap_or(0);
            if matching + self_match - min > c.max_skew {
                return Status::unschedulable(vec![ERR_REASON_CONSTRAINTS_NOT_MATCH.to_owned()]);
            }
        }
        Status::success()
    }
}

/// What the pre-score counted.
#[derive(Clone, Debug)]
struct ScoreState {
    constraints: Vec<Constraint>,
    /// Nodes lacking a topology key: they score 0.
    ignored: BTreeSet<String>,
    /// Matching pods per domain (hostname domains are counted per node in score).
    domain_counts: HashMap<(String, String), i64>,
    /// `ln(domains + 2)` per constraint: spreading over more domains weighs more.
    weights: Vec<f64>,
}

impl ScorePlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn score(&self, _pod: &PodInfo, _node: &NodeInfo) -> i64 {
        0
    }

    fn pre_score_in(
        &self,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        cache: &Cache,
        state: &mut CycleState,
    ) -> bool {
        let (constraints, own) = self.constraints(pod, cache, "ScheduleAnyway");
        if constraints.is_empty() || nodes.is_empty() {
            return false;
        }
        let require_all = own || !self.system_defaulted;
        let mut ignored = BTreeSet::new();
        let mut domain_counts: HashMap<(String, String), i64> = HashMap::new();
        let mut sizes = vec![0usize; constraints.len()];
        let value_of = |node: &NodeInfo, key: &str| -> String {
            node.labels()
                .and_then(|l| l.get(key))
                .cloned()
                .unwrap_or_default()
        };
        for node in nodes {
            if require_all && !has_all_keys(node, &constraints) {
                ignored.insert(node.name.clone());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == LABEL_HOSTNAME {
                    continue;
                }
                let pair = (c.topology_key.clone(), value_of(node, &c.topology_key));
                if let std::collections::hash_map::Entry::Vacant(entry) = domain_counts.entry(pair)
                {
                    entry.insert(0);
                    sizes[i] += 1;
                }
            }
        }
        let weights = constraints
            .iter()
            .zip(&sizes)
            .map(|(c, &size)| {
                let size = if c.topology_key == LABEL_HOSTNAME {
                    nodes.len() - ignored.len()
                } else {
                    size
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        for node in cache.nodes() {
            if require_all && !has_all_keys(node, &constraints) {
                continue;
            }
            for c in &constraints {
                if !c.includes(pod, node) {
                    continue;
                }
                let pair = (c.topology_key.clone(), value_of(node, &c.topology_key));
                if let Some(count) = domain_counts.get_mut(&pair) {
                    *count += c.count(node, &pod.namespace);
                }
            }
        }
        state.write(ScoreState {
            constraints,
            ignored,
            domain_counts,
            weights,
        });
        true
    }

    /// Per constraint: matching pods in the node's domain, weighted, plus `maxSkew - 1`.
    fn score_in(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(state) = state.read::<ScoreState>() else {
            return 0;
        };
        if state.ignored.contains(&node.name) {
            return 0;
        }
        let mut score = 0.0;
        for (c, weight) in state.constraints.iter().zip(&state.weights) {
            let Some(value) = node.labels().and_then(|l| l.get(&c.topology_key)) else {
                continue;
            };
            let count = if c.topology_key == LABEL_HOSTNAME {
                c.count(node, &pod.namespace)
            } else {
                state
                    .domain_counts
                    .get(&(c.topology_key.clone(), value.clone()))
                    .copied()
                    .unwrap_or(0)
            };
            score += count as f64 * weight + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    /// Fewer matching pods score higher: `100 * (max + min - score) / max` over the nodes
    /// not ignored; ignored nodes get 0.
    fn normalize_in(&self, state: &CycleState, nodes: &[&NodeInfo], scores: &mut [i64]) {
        let Some(state) = state.read::<ScoreState>() else {
            return;
        };
        let counted = || {
            nodes
                .iter()
                .zip(scores.iter())
                .filter(|(n, _)| !state.ignored.contains(&n.name))
                .map(|(_, &s)| s)
        };
        let min = counted().min().unwrap_or(0);
        let max = counted().max().unwrap_or(0).max(0);
        for (node, score) in nodes.iter().zip(scores.iter_mut()) {
            *score = if state.ignored.contains(&node.name) {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *score) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cache_of, node, pod, selector, NodeBuilder, PodBuilder};

    const ZONE: &str = LABEL_ZONE;
    const HOST: &str = LABEL_HOSTNAME;

    /// n1, n2 in zone z1; n3, n4 in z2.
    fn nodes() -> Vec<NodeBuilder> {
        [("n1", "z1"), ("n2", "z1"), ("n3", "z2"), ("n4", "z2")]
            .into_iter()
            .map(|(name, zone)| node(name).label(HOST, name).label(ZONE, zone))
            .collect()
    }

    fn foo(name: &str, node: &str) -> PodBuilder {
        pod(name).label("foo", "").node(node)
    }

    /// Name, incoming pod, nodes, placed pods, each node's status.
    type FilterCase = (
        &'static str,
        PodBuilder,
        Vec<NodeBuilder>,
        Vec<PodBuilder>,
        Vec<Status>,
    );

    fn filter_all(
        plugin: &PodTopologySpread,
        nodes: Vec<NodeBuilder>,
        incoming: PodBuilder,
        placed: Vec<PodBuilder>,
    ) -> Vec<Status> {
        let cache = cache_of(nodes, placed);
        let pod = incoming.info();
        let mut state = CycleState::default();
        assert_eq!(
            plugin.pre_filter_in(&pod, &cache, &mut state),
            PreFilter::AllNodes
        );
        cache
            .nodes()
            .into_iter()
            .map(|n| plugin.filter_in(&state, &pod, n))
            .collect()
    }

    #[test]
    fn filter() {
        let ok = Status::success;
        let skew = || Status::unschedulable(vec![ERR_REASON_CONSTRAINTS_NOT_MATCH.into()]);
        let label = || Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
        let spread = |skew: i32, key: &str| {
            pod("p")
                .label("foo", "")
                .spread(skew, key, "DoNotSchedule", selector(&[("foo", "")]))
        };
        let cases: Vec<FilterCase> = vec![
            (
                "no existing pods: every node fits",
                spread(1, ZONE),
                nodes(),
                vec![],
                vec![ok(), ok(), ok(), ok()],
            ),
            (
                "zones 3/1: the fuller zone is out at maxSkew 1",
                spread(1, ZONE),
                nodes(),
                vec![
                    foo("a", "n1"),
                    foo("b", "n1"),
                    foo("c", "n2"),
                    foo("d", "n3"),
                ],
                vec![skew(), skew(), ok(), ok()],
            ),
            (
                "zones 2/1 at maxSkew 2: both fit",
                spread(2, ZONE),
                nodes(),
                vec![foo("a", "n1"), foo("b", "n2"), foo("c", "n3")],
                vec![ok(), ok(), ok(), ok()],
            ),
            (
                "per host: only the empty hosts",
                spread(1, HOST),
                nodes(),
                vec![foo("a", "n1"), foo("b", "n2"), foo("c", "n3")],
                vec![skew(), skew(), skew(), ok()],
            ),
            (
                "pods in another namespace or not selected do not count",
                spread(1, HOST),
                nodes(),
                vec![
                    foo("a", "n1").namespace("other"),
                    pod("b").label("bar", "").node("n2"),
                ],
                vec![ok(), ok(), ok(), ok()],
            ),
            (
                "a node without the key is unresolvable",
                spread(1, ZONE),
                vec![node("n1").label(ZONE, "z1"), node("bare")],
                vec![],
                // Nodes by name: "bare", "n1".
                vec![label(), ok()],
            ),
            (
                "an incoming pod the selector does not pick adds no skew",
                pod("p").spread(0, HOST, "DoNotSchedule", selector(&[("foo", "")])),
                nodes(),
                vec![],
                vec![ok(), ok(), ok(), ok()],
            ),
            (
                "minDomains above the domain count makes the minimum 0",
                pod("p")
                    .label("foo", "")
                    .spread_constraint(TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: ZONE.into(),
                        when_unsatisfiable: "DoNotSchedule".into(),
                        label_selector: Some(selector(&[("foo", "")])),
                        min_domains: Some(3),
                        ..TopologySpreadConstraint::default()
                    }),
                nodes(),
                vec![foo("a", "n1"), foo("b", "n3")],
                vec![skew(), skew(), skew(), skew()],
            ),
            (
                "nodes the pod's node selector excludes are no domain",
                spread(1, ZONE).node_selector("disk", "ssd"),
                vec![
                    node("n1").label(ZONE, "z1").label("disk", "ssd"),
                    node("n2").label(ZONE, "z2"),
                ],
                vec![foo("a", "n1")],
                vec![ok(), ok()],
            ),
            (
                "matchLabelKeys: only pods of the same revision count",
                pod("p")
                    .label("foo", "")
                    .label("rev", "2")
                    .spread_constraint(TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: HOST.into(),
                        when_unsatisfiable: "DoNotSchedule".into(),
                        label_selector: Some(selector(&[("foo", "")])),
                        match_label_keys: Some(vec!["rev".into()]),
                        ..TopologySpreadConstraint::default()
                    }),
                nodes(),
                vec![
                    foo("a", "n1").label("rev", "1"),
                    foo("b", "n2").label("rev", "1"),
                    foo("c", "n3").label("rev", "2"),
                ],
                vec![ok(), ok(), skew(), ok()],
            ),
            (
                "ScheduleAnyway constraints do not filter",
                pod("p").label("foo", "").spread(
                    1,
                    HOST,
                    "ScheduleAnyway",
                    selector(&[("foo", "")]),
                ),
                nodes(),
                vec![foo("a", "n1"), foo("b", "n1")],
                vec![ok(), ok(), ok(), ok()],
            ),
        ];
        for (name, incoming, nodes, placed, want) in cases {
            assert_eq!(
                filter_all(&PodTopologySpread::default(), nodes, incoming, placed),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn removing_pods_takes_them_out_of_the_counts() {
        let plugin = PodTopologySpread::default();
        let cache = cache_of(nodes(), vec![foo("a", "n1")]);
        let incoming = pod("p")
            .label("foo", "")
            .spread(1, ZONE, "DoNotSchedule", selector(&[("foo", "")]))
            .info();
        let mut state = CycleState::default();
        plugin.pre_filter_in(&incoming, &cache, &mut state);
        let n1 = cache.node("n1").unwrap();
        assert!(
            !plugin.filter_in(&state, &incoming, n1).is_success(),
            "z1 2, z2 0"
        );
        let victim = n1.pods.values().next().unwrap();
        plugin.remove_pod_in(&mut state, &incoming, victim, n1, &cache);
        assert!(
            plugin.filter_in(&state, &incoming, n1).is_success(),
            "z1 1, z2 0"
        );
    }

    fn scores(plugin: &PodTopologySpread, cache: &Cache, incoming: PodBuilder) -> Vec<i64> {
        let pod = incoming.info();
        let nodes = cache.nodes();
        let mut state = CycleState::default();
        if !plugin.pre_score_in(&pod, &nodes, cache, &mut state) {
            return vec![];
        }
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| plugin.score_in(&state, &pod, n))
            .collect();
        plugin.normalize_in(&state, &nodes, &mut scores);
        scores
    }

    #[test]
    fn score() {
        let plugin = PodTopologySpread::default();
        let anyway = |key: &str| {
            pod("p")
                .label("foo", "")
                .spread(1, key, "ScheduleAnyway", selector(&[("foo", "")]))
        };
        let cases: Vec<(&str, PodBuilder, Vec<PodBuilder>, Vec<i64>)> = vec![
            (
                "no constraints, no owner: skipped",
                pod("p"),
                vec![],
                vec![],
            ),
            (
                "per host: fewer matching pods score higher",
                anyway(HOST),
                vec![foo("a", "n1"), foo("b", "n1"), foo("c", "n2")],
                // ln(6) per pod: n1 2.2→2? scores 4, 2, 0, 0 → 100*(4+0-s)/4.
                vec![0, 50, 100, 100],
            ),
            (
                "per zone",
                anyway(ZONE),
                vec![foo("a", "n1"), foo("b", "n2"), foo("c", "n3")],
                // ln(4) per pod: z1 2*1.386=2.77→3, z2 1.386→1: 100*(3+1-s)/3.
                vec![33, 33, 100, 100],
            ),
        ];
        for (name, incoming, placed, want) in cases {
            let cache = cache_of(nodes(), placed);
            assert_eq!(scores(&plugin, &cache, incoming), want, "{name}");
        }
    }

    #[test]
    fn default_constraints_follow_the_owner_and_services() {
        let plugin = PodTopologySpread::default();
        let mut cache = cache_of(
            nodes(),
            vec![
                pod("a").label("app", "web").node("n1"),
                pod("b").label("app", "web").node("n1"),
            ],
        );
        let replica = || {
            pod("p")
                .label("app", "web")
                .owner("apps/v1", "ReplicaSet", "web-1")
        };
        assert_eq!(
            scores(&plugin, &cache, replica()),
            Vec::<i64>::new(),
            "RS unknown"
        );
        cache.set_controller(
            ControllerKind::ReplicaSet,
            "default",
            "web-1",
            Some(selector(&[("app", "web")])),
        );
        let spread = scores(&plugin, &cache, replica());
        assert_eq!(spread.len(), 4);
        assert!(spread[0] < spread[2], "n1 has the replicas: {spread:?}");
        assert_eq!(spread[2], 100);
        let selected = default_selector(&replica().info(), &cache);
        assert!(label_selector::matches(
            Some(&selected),
            replica().build().metadata.labels.as_ref()
        ));

        let mut services = cache_of(nodes(), vec![pod("a").label("app", "db").node("n3")]);
        services.set_service("default", "db", Some([("app".into(), "db".into())].into()));
        let db = pod("p").label("app", "db").info();
        assert_eq!(
            default_selector(&db, &services).match_labels,
            Some([("app".to_owned(), "db".to_owned())].into())
        );
        let mut state = CycleState::default();
        let nodes = services.nodes();
        assert!(plugin.pre_score_in(&db, &nodes, &services, &mut state));
        // System defaults only score: the filter has nothing to check.
        let mut filter_state = CycleState::default();
        plugin.pre_filter_in(&db, &services, &mut filter_state);
        assert!(filter_state.read::<FilterState>().is_none());
    }
}
