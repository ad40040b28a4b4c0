//! InterPodAffinity: a pod's required pod affinity and anti-affinity terms, and the required
//! anti-affinity terms of the pods already placed, decide where it may go (filter); preferred
//! terms on both sides (and the placed pods' required affinity, at `hardPodAffinityWeight`)
//! weigh the topology domains (score).
//!
//! A term selects pods by labels in some namespaces (`namespaces`, `namespaceSelector`, or the
//! term owner's own namespace) and applies per topology domain: the nodes sharing the value of
//! its `topologyKey`. `matchLabelKeys` / `mismatchLabelKeys` narrow the selector to pods with
//! the same (a different) value of those labels as the term's owner.
//!
//! The pre-filter counts, per (topology key, value), the placed pods matching all the
//! incoming pod's affinity terms, those matching each anti-affinity term, and the placed pods
//! whose anti-affinity terms match the incoming pod; the filter then looks only at the
//! node's labels. Assumed pods are on their nodes in the cache, so they count.
//!
//! The first pod of a group with affinity to itself would never find a match: when no pod in
//! the cluster matches its affinity terms and it matches them itself, any node with the
//! topology labels fits.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{PodAffinityTerm, WeightedPodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{
    CycleState, FilterPlugin, PodInfo, PreFilter, ScorePlugin, Status, MAX_NODE_SCORE,
};
use crate::label_selector::{self, Labels};

/// The incoming pod's required affinity terms are not satisfied on the node.
pub const ERR_REASON_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
/// The incoming pod's required anti-affinity terms are not satisfied on the node.
pub const ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't match pod anti-affinity rules";
/// A placed pod's required anti-affinity terms reject the incoming pod on the node.
pub const ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// `hardPodAffinityWeight`'s default.
pub const DEFAULT_HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// The InterPodAffinity filter and score.
#[derive(Clone, Copy, Debug)]
pub struct InterPodAffinity {
    /// The score a placed pod's *required* affinity term matching the incoming pod adds.
    pub hard_pod_affinity_weight: i64,
}

impl Default for InterPodAffinity {
    fn default() -> InterPodAffinity {
        InterPodAffinity {
            hard_pod_affinity_weight: DEFAULT_HARD_POD_AFFINITY_WEIGHT,
        }
    }
}

/// A topology domain: a topology key and a node's value of it.
type Domain = (String, String);

/// A pod affinity term made ready to match pods.
#[derive(Clone, Debug)]
pub struct Term {
    namespaces: BTreeSet<String>,
    namespace_selector: Option<LabelSelector>,
    selector: Option<LabelSelector>,
    topology_key: String,
    weight: i64,
}

impl Term {
    /// `term` of a pod in `namespace` with `labels` (for `matchLabelKeys`).
    pub fn new(
        term: &PodAffinityTerm,
        namespace: &str,
        labels: Option<&Labels>,
        weight: i64,
    ) -> Term {
        let mut namespaces: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.insert(namespace.to_owned());
        }
        let mut selector = term.label_selector.clone();
        let narrow = |selector: Option<LabelSelector>, keys: Option<&Vec<String>>, operator| {
            let (Some(mut selector), Some(labels)) = (selector, labels) else {
                return None;
            };
            for key in keys.into_iter().flatten() {
                if let Some(value) = labels.get(key) {
                    selector = label_selector::with_requirement(
                        &selector,
                        key,
                        operator,
                        vec![value.clone()],
                    );
                }
            }
            Some(selector)
        };
        if term.match_label_keys.is_some() && selector.is_some() {
            selector = narrow(selector, term.match_label_keys.as_ref(), "In");
        }
        if term.mismatch_label_keys.is_some() && selector.is_some() {
            selector = narrow(selector, term.mismatch_label_keys.as_ref(), "NotIn");
        }
        Term {
            namespaces,
            namespace_selector: term.namespace_selector.clone(),
            selector,
            topology_key: term.topology_key.clone(),
            weight,
        }
    }

    /// Whether the term selects `pod` (its namespace, then its labels).
    pub fn matches(&self, pod: &PodInfo, cache: &Cache) -> bool {
        let in_namespace = self.namespaces.contains(&pod.namespace)
            || self.namespace_selector.as_ref().is_some_and(|selector| {
                let empty = Labels::new();
                let labels = cache.namespaces().get(&pod.namespace).unwrap_or(&empty);
                label_selector::matches(Some(selector), Some(labels))
            });
        in_namespace
            && label_selector::matches(self.selector.as_ref(), pod.pod.metadata.labels.as_ref())
    }

    fn domain(&self, node: &NodeInfo) -> Option<Domain> {
        let value = node.labels()?.get(&self.topology_key)?;
        Some((self.topology_key.clone(), value.clone()))
    }
}

/// A pod's terms, by kind.
#[derive(Clone, Debug, Default)]
pub struct Terms {
    /// Required affinity.
    pub required_affinity: Vec<Term>,
    /// Required anti-affinity.
    pub required_anti_affinity: Vec<Term>,
    /// Preferred affinity, with weights.
    pub preferred_affinity: Vec<Term>,
    /// Preferred anti-affinity, with weights.
    pub preferred_anti_affinity: Vec<Term>,
}

impl Terms {
    /// The terms of `pod`.
    pub fn of(pod: &PodInfo) -> Terms {
        let Some(affinity) = pod.spec().affinity.as_ref() else {
            return Terms::default();
        };
        let labels = pod.pod.metadata.labels.as_ref();
        let required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<Term> {
            terms
                .into_iter()
                .flatten()
                .map(|t| Term::new(t, &pod.namespace, labels, 0))
                .collect()
        };
        let preferred = |terms: Option<&Vec<WeightedPodAffinityTerm>>| -> Vec<Term> {
            terms
                .into_iter()
                .flatten()
                .filter(|t| t.weight != 0)
                .map(|t| {
                    Term::new(
                        &t.pod_affinity_term,
                        &pod.namespace,
                        labels,
                        i64::from(t.weight),
                    )
                })
                .collect()
        };
        let pod_affinity = affinity.pod_affinity.as_ref();
        let anti = affinity.pod_anti_affinity.as_ref();
        Terms {
            required_affinity: required(pod_affinity.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti_affinity: required(anti.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: preferred(pod_affinity.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti_affinity: preferred(anti.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
        }
    }

    fn has_required(&self) -> bool {
        !self.required_affinity.is_empty() || !self.required_anti_affinity.is_empty()
    }

    fn has_preferred(&self) -> bool {
        !self.preferred_affinity.is_empty() || !self.preferred_anti_affinity.is_empty()
    }
}

/// What the pre-filter counted.
#[derive(Clone, Debug, Default)]
struct FilterState {
    terms: Terms,
    /// Placed pods matching all the incoming pod's affinity terms, per domain of each term.
    affinity: HashMap<Domain, i64>,
    /// Placed pods matching each anti-affinity term, per domain.
    anti_affinity: HashMap<Domain, i64>,
    /// Placed pods whose required anti-affinity terms match the incoming pod, per domain.
    existing_anti_affinity: HashMap<Domain, i64>,
    /// Whether the incoming pod matches all its own affinity terms.
    matches_own_affinity: bool,
}

/// `satisfyPodAffinity`: every affinity term's domain on the node holds a matching pod, or
/// this is the first pod of a group with affinity to itself.
fn satisfies_affinity(state: &FilterState, node: &NodeInfo) -> bool {
    let mut pods_exist = true;
    for term in &state.terms.required_affinity {
        match term.domain(node) {
            None => return false,
            Some(domain) => {
                if state.affinity.get(&domain).copied().unwrap_or(0) <= 0 {
                    pods_exist = false;
                }
            }
        }
    }
    pods_exist || (state.affinity.is_empty() && state.matches_own_affinity)
}

fn satisfies_anti_affinity(state: &FilterState, node: &NodeInfo) -> bool {
    !state.terms.required_anti_affinity.iter().any(|term| {
        term.domain(node)
            .is_some_and(|d| state.anti_affinity.get(&d).copied().unwrap_or(0) > 0)
    })
}

fn satisfies_existing_anti_affinity(state: &FilterState, node: &NodeInfo) -> bool {
    if state.existing_anti_affinity.is_empty() {
        return true;
    }
    !node.labels().into_iter().flatten().any(|(key, value)| {
        state
            .existing_anti_affinity
            .get(&(key.clone(), value.clone()))
            .is_some_and(|&count| count > 0)
    })
}

fn add(counts: &mut HashMap<Domain, i64>, domain: Option<Domain>, value: i64) {
    if let Some(domain) = domain {
        *counts.entry(domain).or_default() += value;
    }
}

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    /// Without the cluster's counts, nothing is known against the node.
    fn filter(&self, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }

    fn pre_filter_in(&self, pod: &PodInfo, cache: &Cache, state: &mut CycleState) -> PreFilter {
        let terms = pod.affinity_terms();
        if !terms.has_required() && !cache.any_pod_with_required_anti_affinity() {
            return PreFilter::AllNodes;
        }
        let nodes = cache.nodes();
        let mut counted = FilterState {
            matches_own_affinity: !terms.required_affinity.is_empty()
                && terms
                    .required_affinity
                    .iter()
                    .all(|t| t.matches(pod, cache)),
            ..FilterState::default()
        };
        for node in &nodes {
            if node.pods_with_required_anti_affinity > 0 {
                for existing in node.pods.values() {
                    let their = existing.affinity_terms();
                    for term in &their.required_anti_affinity {
                        if term.matches(pod, cache) {
                            add(&mut counted.existing_anti_affinity, term.domain(node), 1);
                        }
                    }
                }
            }
            if !terms.has_required() {
                continue;
            }
            for existing in node.pods.values() {
                if !terms.required_affinity.is_empty()
                    && terms
                        .required_affinity
                        .iter()
                        .all(|t| t.matches(existing, cache))
                {
                    for term in &terms.required_affinity {
                        add(&mut counted.affinity, term.domain(node), 1);
                    }
                }
                for term in &terms.required_anti_affinity {
                    if term.matches(existing, cache) {
                        add(&mut counted.anti_affinity, term.domain(node), 1);
                    }
                }
            }
        }
        counted.terms = terms.clone();
        state.write(counted);
        PreFilter::AllNodes
    }

    /// `updateWithPod(-1)`: the counts without `removed`.
    fn remove_pod_in(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
        cache: &Cache,
    ) {
        let Some(counted) = state.read_mut::<FilterState>() else {
            return;
        };
        for term in &removed.affinity_terms().required_anti_affinity {
            if term.matches(pod, cache) {
                add(&mut counted.existing_anti_affinity, term.domain(node), -1);
            }
        }
        let affinity = &counted.terms.required_affinity;
        if !affinity.is_empty() && affinity.iter().all(|t| t.matches(removed, cache)) {
            for term in affinity {
                add(&mut counted.affinity, term.domain(node), -1);
            }
        }
        for term in &counted.terms.required_anti_affinity {
            if term.matches(removed, cache) {
                add(&mut counted.anti_affinity, term.domain(node), -1);
            }
        }
        for counts in [
            &mut counted.affinity,
            &mut counted.anti_affinity,
            &mut counted.existing_anti_affinity,
        ] {
            counts.retain(|_, count| *count != 0);
        }
    }

    /// Affinity first (unresolvable: removing pods cannot create a match), then the pod's
    /// anti-affinity, then the placed pods' anti-affinity.
    fn filter_in(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(state) = state.read::<FilterState>() else {
            return Status::success();
        };
        if !satisfies_affinity(state, node) {
            return Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH);
        }
        if !satisfies_anti_affinity(state, node) {
            return Status::unschedulable(
                vec![ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH.to_owned()],
            );
        }
        if !satisfies_existing_anti_affinity(state, node) {
            return Status::unschedulable(vec![
                ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH.to_owned()
            ]);
        }
        Status::success()
    }
}

/// What the pre-score summed: per topology key, per value, the score of that domain.
#[derive(Clone, Debug, Default)]
struct ScoreState {
    topology_score: BTreeMap<String, HashMap<String, i64>>,
}

impl ScoreState {
    fn add(&mut self, term: &Term, node: &NodeInfo, weight: i64) {
        let Some(value) = node.labels().and_then(|l| l.get(&term.topology_key)) else {
            return;
        };
        // Called for every matching placed pod: no copies of a domain already counted.
        if let Some(score) = self
            .topology_score
            .get_mut(&term.topology_key)
            .and_then(|values| values.get_mut(value))
        {
            *score += weight;
            return;
        }
        *self
            .topology_score
            .entry(term.topology_key.clone())
            .or_default()
            .entry(value.clone())
            .or_default() += weight;
    }
}

impl InterPodAffinity {
    /// `processExistingPod`: what one placed pod on `node` adds to or takes from the domains.
    fn process_existing(
        &self,
        scores: &mut ScoreState,
        incoming: &PodInfo,
        terms: &Terms,
        existing: &PodInfo,
        node: &NodeInfo,
        cache: &Cache,
    ) {
        for term in &terms.preferred_affinity {
            if term.matches(existing, cache) {
                scores.add(term, node, term.weight);
            }
        }
        for term in &terms.preferred_anti_affinity {
            if term.matches(existing, cache) {
                scores.add(term, node, -term.weight);
            }
        }
        if existing.spec().affinity.is_none() {
            return;
        }
        let theirs = existing.affinity_terms();
        if self.hard_pod_affinity_weight > 0 {
            for term in &theirs.required_affinity {
                if term.matches(incoming, cache) {
                    scores.add(term, node, self.hard_pod_affinity_weight);
                }
            }
        }
        for term in &theirs.preferred_affinity {
            if term.matches(incoming, cache) {
                scores.add(term, node, term.weight);
            }
        }
        for term in &theirs.preferred_anti_affinity {
            if term.matches(incoming, cache) {
                scores.add(term, node, -term.weight);
            }
        }
    }
}

impl ScorePlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn score(&self, _pod: &PodInfo, _node: &NodeInfo) -> i64 {
        0
    }

    /// Sums the terms over the placed pods: all of them when the incoming pod has preferred
    /// terms, else only those with affinity terms of their own.
    fn pre_score_in(
        &self,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        cache: &Cache,
        state: &mut CycleState,
    ) -> bool {
        let terms = pod.affinity_terms();
        let has_preferred = terms.has_preferred();
        if !has_preferred && !cache.any_pod_with_affinity() {
            return false;
        }
        let all = cache.nodes();
        let mut scores = ScoreState::default();
        for node in all {
            if !has_preferred && node.pods_with_affinity == 0 {
                continue;
            }
            for existing in node.pods.values() {
                self.process_existing(&mut scores, pod, terms, existing, node, cache);
            }
        }
        if scores.topology_score.is_empty() {
            return false;
        }
        state.write(scores);
        true
    }

    fn score_in(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (Some(state), Some(labels)) = (state.read::<ScoreState>(), node.labels()) else {
            return 0;
        };
        state
            .topology_score
            .iter()
            .filter_map(|(key, values)| values.get(labels.get(key)?))
            .sum()
    }

    /// Min-max to 0..=100; all equal scores are all 0.
    fn normalize(&self, scores: &mut [i64]) {
        let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else {
            return;
        };
        let spread = max - min;
        for score in scores.iter_mut() {
            *score = if spread > 0 {
                (MAX_NODE_SCORE as f64 * ((*score - min) as f64 / spread as f64)) as i64
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{affinity_term, cache_of, node, pod, NodeBuilder, PodBuilder};

    const ZONE: &str = "topology.kubernetes.io/zone";
    const HOST: &str = "kubernetes.io/hostname";

    fn nodes() -> Vec<NodeBuilder> {
        ["n1", "n2", "n3"]
            .into_iter()
            .zip(["z1", "z1", "z2"])
            .map(|(name, zone)| {
                node(name)
                    .label(HOST, name)
                    .label(ZONE, zone)
                    .allocatable(&[("pods", "110")])
            })
            .collect()
    }

    /// Each node's status for `incoming` with `placed` bound.
    fn filter_all(incoming: PodBuilder, placed: Vec<PodBuilder>) -> Vec<Status> {
        let cache = cache_of(nodes(), placed);
        let plugin = InterPodAffinity::default();
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
        let affinity = || Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH);
        let anti = || Status::unschedulable(vec![ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH.into()]);
        let existing = || {
            Status::unschedulable(vec![
                ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH.into()
            ])
        };
        let web = |name: &str, node: &str| pod(name).label("app", "web").node(node);
        let cases: Vec<(&str, PodBuilder, Vec<PodBuilder>, Vec<Status>)> = vec![
            (
                "no terms, no placed anti-affinity",
                pod("p"),
                vec![web("w", "n1")],
                vec![ok(), ok(), ok()],
            ),
            (
                "affinity to a zone: the zone of the matching pod",
                pod("p").pod_affinity(affinity_term("app", "web", ZONE)),
                vec![web("w", "n1"), pod("other").label("app", "db").node("n3")],
                vec![ok(), ok(), affinity()],
            ),
            (
                "affinity to a pod in another namespace does not match",
                pod("p").pod_affinity(affinity_term("app", "web", ZONE)),
                vec![web("w", "n1").namespace("other"), web("x", "n3")],
                vec![affinity(), affinity(), ok()],
            ),
            (
                "affinity with namespaces lists them",
                pod("p").pod_affinity(PodAffinityTerm {
                    namespaces: Some(vec!["other".into()]),
                    ..affinity_term("app", "web", HOST)
                }),
                vec![web("w", "n2").namespace("other")],
                vec![affinity(), ok(), affinity()],
            ),
            (
                "an empty namespaceSelector selects every namespace",
                pod("p").pod_affinity(PodAffinityTerm {
                    namespace_selector: Some(LabelSelector::default()),
                    ..affinity_term("app", "web", HOST)
                }),
                vec![web("w", "n3").namespace("other")],
                vec![affinity(), affinity(), ok()],
            ),
            (
                "affinity on a topology key no node has",
                pod("p").pod_affinity(affinity_term("app", "web", "rack")),
                vec![web("w", "n1")],
                vec![affinity(), affinity(), affinity()],
            ),
            (
                "the first pod of a group with affinity to itself goes anywhere",
                pod("p")
                    .label("app", "web")
                    .pod_affinity(affinity_term("app", "web", ZONE)),
                vec![pod("other").label("app", "db").node("n1")],
                vec![ok(), ok(), ok()],
            ),
            (
                "but not the first pod of a group that does not match itself",
                pod("p").pod_affinity(affinity_term("app", "web", ZONE)),
                vec![],
                vec![affinity(), affinity(), affinity()],
            ),
            (
                "all affinity terms must match the same pod",
                pod("p")
                    .pod_affinity(affinity_term("app", "web", ZONE))
                    .pod_affinity(affinity_term("tier", "front", ZONE)),
                vec![web("w", "n1"), pod("f").label("tier", "front").node("n3")],
                vec![affinity(), affinity(), affinity()],
            ),
            (
                "anti-affinity per host",
                pod("p").pod_anti_affinity(affinity_term("app", "web", HOST)),
                vec![web("w", "n1")],
                vec![anti(), ok(), ok()],
            ),
            (
                "anti-affinity per zone",
                pod("p").pod_anti_affinity(affinity_term("app", "web", ZONE)),
                vec![web("w", "n2")],
                vec![anti(), anti(), ok()],
            ),
            (
                "a placed pod's anti-affinity keeps the incoming pod out of its zone",
                pod("p").label("app", "web"),
                vec![pod("db")
                    .node("n3")
                    .pod_anti_affinity(affinity_term("app", "web", ZONE))],
                vec![ok(), ok(), existing()],
            ),
            (
                "a placed pod's anti-affinity in another namespace does not see the pod",
                pod("p").label("app", "web"),
                vec![pod("db")
                    .namespace("other")
                    .node("n3")
                    .pod_anti_affinity(affinity_term("app", "web", ZONE))],
                vec![ok(), ok(), ok()],
            ),
            (
                "affinity is judged before anti-affinity",
                pod("p")
                    .pod_affinity(affinity_term("app", "web", HOST))
                    .pod_anti_affinity(affinity_term("app", "db", HOST)),
                vec![web("w", "n1"), pod("d").label("app", "db").node("n1")],
                vec![anti(), affinity(), affinity()],
            ),
            (
                "matchLabelKeys: only pods with the same value count",
                pod("p")
                    .label("version", "v2")
                    .pod_anti_affinity(PodAffinityTerm {
                        match_label_keys: Some(vec!["version".into()]),
                        ..affinity_term("app", "web", HOST)
                    }),
                vec![
                    web("old", "n1").label("version", "v1"),
                    web("new", "n2").label("version", "v2"),
                ],
                vec![ok(), anti(), ok()],
            ),
        ];
        for (name, incoming, placed, want) in cases {
            assert_eq!(filter_all(incoming, placed), want, "{name}");
        }
    }

    #[test]
    fn assumed_pods_count() {
        let mut cache = cache_of(nodes(), vec![]);
        let replica = || {
            pod("r")
                .label("app", "web")
                .pod_anti_affinity(affinity_term("app", "web", HOST))
        };
        cache.assume(replica().info(), "n2");
        let plugin = InterPodAffinity::default();
        let incoming = PodInfo::new(std::sync::Arc::new(
            pod("r2")
                .label("app", "web")
                .pod_anti_affinity(affinity_term("app", "web", HOST))
                .build(),
        ));
        let mut state = CycleState::default();
        plugin.pre_filter_in(&incoming, &cache, &mut state);
        let fits: Vec<bool> = cache
            .nodes()
            .into_iter()
            .map(|n| plugin.filter_in(&state, &incoming, n).is_success())
            .collect();
        assert_eq!(fits, [true, false, true]);
    }

    fn scores(incoming: PodBuilder, placed: Vec<PodBuilder>) -> Vec<i64> {
        let cache = cache_of(nodes(), placed);
        let plugin = InterPodAffinity::default();
        let pod = incoming.info();
        let nodes = cache.nodes();
        let mut state = CycleState::default();
        if !plugin.pre_score_in(&pod, &nodes, &cache, &mut state) {
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
        let web = |name: &str, node: &str| pod(name).label("app", "web").node(node);
        let cases: Vec<(&str, PodBuilder, Vec<PodBuilder>, Vec<i64>)> =
            vec![
            ("no terms anywhere: skipped", pod("p"), vec![web("w", "n1")], vec![]),
            (
                "preferred affinity to a zone",
                pod("p").preferred_pod_affinity(5, affinity_term("app", "web", ZONE)),
                vec![web("w", "n1")],
                vec![100, 100, 0],
            ),
            (
                "weights add up per domain",
                pod("p")
                    .preferred_pod_affinity(5, affinity_term("app", "web", HOST))
                    .preferred_pod_affinity(3, affinity_term("tier", "db", HOST)),
                vec![web("w", "n1"), pod("d").label("tier", "db").node("n2")],
                vec![100, 60, 0],
            ),
            (
                "preferred anti-affinity lowers the domain",
                pod("p").preferred_pod_anti_affinity(4, affinity_term("app", "web", ZONE)),
                vec![web("w", "n3")],
                vec![100, 100, 0],
            ),
            (
                "a placed pod's required affinity to the incoming pod counts hardPodAffinityWeight",
                pod("p").label("app", "web"),
                vec![pod("d")
                    .node("n2")
                    .pod_affinity(affinity_term("app", "web", HOST))],
                vec![0, 100, 0],
            ),
            (
                "a placed pod's preferred anti-affinity to the incoming pod",
                pod("p").label("app", "web"),
                vec![pod("d")
                    .node("n1")
                    .preferred_pod_anti_affinity(10, affinity_term("app", "web", ZONE))],
                vec![0, 0, 100],
            ),
        ];
        for (name, incoming, placed, want) in cases {
            assert_eq!(scores(incoming, placed), want, "{name}");
        }
    }

    #[test]
    fn removing_pods_takes_them_out_of_the_counts() {
        let cache = cache_of(
            nodes(),
            vec![
                pod("w").label("app", "web").node("n1"),
                pod("db")
                    .node("n3")
                    .pod_anti_affinity(affinity_term("app", "web", ZONE)),
            ],
        );
        let framework = crate::framework::Framework::new(&crate::config::ScoreWeights::default());
        let incoming = pod("p")
            .label("app", "web")
            .pod_anti_affinity(affinity_term("app", "web", HOST))
            .info();
        let state = framework.pre_filter_state(&incoming, &cache).unwrap();
        let n1 = cache.node("n1").unwrap();
        let n3 = cache.node("n3").unwrap();
        assert!(!framework.run_filters_in(&state, &incoming, n1).is_success());
        assert!(!framework.run_filters_in(&state, &incoming, n3).is_success());
        let web = n1.pods.values().next().unwrap();
        let db = n3.pods.values().next().unwrap();
        let without = |node, victim: &PodInfo| {
            framework
                .run_filters_without(&state, &incoming, &cache, node, &[victim])
                .is_success()
        };
        assert!(without(n1, web), "the matching pod evicted");
        assert!(without(n3, db), "the pod with the anti-affinity evicted");
        assert!(!without(n3, web), "a pod elsewhere does not count here");
    }
}
