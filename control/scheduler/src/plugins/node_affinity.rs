//! NodeAffinity: `spec.nodeSelector` and required node affinity terms decide which nodes a
//! pod may go to (filter); preferred terms add their weights to the nodes they match (score).
//!
//! Terms are ORed, the requirements of a term ANDed; an empty term matches nothing, and a term
//! with an invalid requirement is ignored, as component-helpers' `nodeaffinity` does.
//! `matchFields` knows `metadata.name` only, with `In`/`NotIn` and exactly one value.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, PodSpec};

use crate::cache::NodeInfo;
use crate::framework::{FilterPlugin, PodInfo, PreFilter, ScorePlugin, Status};
use crate::plugins::default_normalize_score;

/// The filter reason.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
/// The pre-filter reason when the required terms name no node in common.
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";
/// The one field `matchFields` can select on.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

/// The NodeAffinity filter and score.
pub struct NodeAffinity;

/// Whether one label requirement holds; `None` when the requirement is invalid.
fn label_requirement_matches(
    requirement: &NodeSelectorRequirement,
    labels: Option<&BTreeMap<String, String>>,
) -> Option<bool> {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    let value = labels.and_then(|l| l.get(&requirement.key));
    match requirement.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => None,
        "In" => Some(value.is_some_and(|v| values.contains(v))),
        "NotIn" => Some(!value.is_some_and(|v| values.contains(v))),
        "Exists" | "DoesNotExist" if !values.is_empty() => None,
        "Exists" => Some(value.is_some()),
        "DoesNotExist" => Some(value.is_none()),
        "Gt" | "Lt" => {
            let [bound] = values else { return None };
            let bound: i64 = bound.parse().ok()?;
            let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                return Some(false);
            };
            Some(if requirement.operator == "Gt" {
                actual > bound
            } else {
                actual < bound
            })
        }
        _ => None,
    }
}

/// Whether one field requirement holds; `None` when the requirement is invalid.
fn field_requirement_matches(requirement: &NodeSelectorRequirement, node: &str) -> Option<bool> {
    let [value] = requirement.values.as_deref().unwrap_or(&[]) else {
        return None;
    };
    let actual = if requirement.key == OBJECT_NAME_FIELD {
        node
    } else {
        ""
    };
    match requirement.operator.as_str() {
        "In" => Some(actual == value),
        "NotIn" => Some(actual != value),
        _ => None,
    }
}

fn is_empty_term(term: &NodeSelectorTerm) -> bool {
    term.match_expressions.as_ref().is_none_or(Vec::is_empty)
        && term.match_fields.as_ref().is_none_or(Vec::is_empty)
}

/// Whether a node selector term matches the node (empty and invalid terms match nothing).
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    if is_empty_term(term) {
        return false;
    }
    let mut all = true;
    for requirement in term.match_expressions.iter().flatten() {
        match label_requirement_matches(requirement, node.labels()) {
            None => return false,
            Some(matched) => all &= matched,
        }
    }
    for requirement in term.match_fields.iter().flatten() {
        match field_requirement_matches(requirement, &node.name) {
            None => return false,
            Some(matched) => all &= matched,
        }
    }
    all
}

/// `nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)`: the node selector and the
/// required terms.
pub fn required_matches(spec: &PodSpec, node: &NodeInfo) -> bool {
    if let Some(selector) = &spec.node_selector {
        let labels = node.labels();
        let all = selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !all {
            return false;
        }
    }
    match required_terms(spec) {
        None => true,
        Some(terms) => terms.iter().any(|t| term_matches(t, node)),
    }
}

fn required_terms(spec: &PodSpec) -> Option<&[NodeSelectorTerm]> {
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .map(|s| s.node_selector_terms.as_slice())
}

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    /// Terms that all pin `metadata.name` narrow the search to those nodes; terms that pin
    /// disjoint names can never match.
    fn pre_filter(&self, pod: &PodInfo) -> PreFilter {
        let Some(terms) = required_terms(pod.spec()) else {
            return PreFilter::AllNodes;
        };
        if terms.is_empty() {
            return PreFilter::AllNodes;
        }
        let mut names = BTreeSet::new();
        for term in terms {
            let mut term_names: Option<BTreeSet<String>> = None;
            for requirement in term.match_fields.iter().flatten() {
                if requirement.key == OBJECT_NAME_FIELD && requirement.operator == "In" {
                    let these: BTreeSet<String> =
                        requirement.values.iter().flatten().cloned().collect();
                    term_names = Some(match term_names {
                        None => these,
                        Some(before) => before.intersection(&these).cloned().collect(),
                    });
                }
            }
            match term_names {
                // A term without a name requirement may match any node.
                None => return PreFilter::AllNodes,
                Some(term_names) => names.extend(term_names),
            }
        }
        if names.is_empty() {
            PreFilter::Reject(Status::unresolvable(ERR_REASON_CONFLICT))
        } else {
            PreFilter::Nodes(names)
        }
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        if required_matches(pod.spec(), node) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn pre_score(&self, pod: &PodInfo) -> bool {
        pod.spec()
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some()
    }

    /// The sum of the weights of the preferred terms the node matches.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        pod.spec()
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|t| t.weight != 0 && term_matches(&t.preference, node))
            .map(|t| i64::from(t.weight))
            .sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize_score(false, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{field_term, node, pod, term, NodeBuilder, PodBuilder};

    fn labelled() -> NodeBuilder {
        node("node1").label("foo", "bar").label("kernel", "5")
    }

    #[test]
    fn filter() {
        let unmatched = Status::unresolvable(ERR_REASON_POD);
        let cases: Vec<(&str, PodBuilder, NodeBuilder, Status)> = vec![
            ("no selector", pod("p"), labelled(), Status::success()),
            (
                "nodeSelector matches",
                pod("p").node_selector("foo", "bar"),
                labelled(),
                Status::success(),
            ),
            (
                "nodeSelector does not match",
                pod("p").node_selector("foo", "baz"),
                labelled(),
                unmatched.clone(),
            ),
            (
                "nodeSelector on a missing label",
                pod("p").node_selector("zone", "a"),
                labelled(),
                unmatched.clone(),
            ),
            (
                "In matches",
                pod("p").required_terms(vec![term(&[("foo", "In", &["value1", "bar"])])]),
                labelled(),
                Status::success(),
            ),
            (
                "NotIn on an absent label matches",
                pod("p").required_terms(vec![term(&[("zone", "NotIn", &["a"])])]),
                labelled(),
                Status::success(),
            ),
            (
                "NotIn of the label's value",
                pod("p").required_terms(vec![term(&[("foo", "NotIn", &["bar"])])]),
                labelled(),
                unmatched.clone(),
            ),
            (
                "Exists and DoesNotExist",
                pod("p").required_terms(vec![term(&[
                    ("foo", "Exists", &[]),
                    ("zone", "DoesNotExist", &[]),
                ])]),
                labelled(),
                Status::success(),
            ),
            (
                "Gt compares integers",
                pod("p").required_terms(vec![term(&[("kernel", "Gt", &["4"])])]),
                labelled(),
                Status::success(),
            ),
            (
                "Lt compares integers",
                pod("p").required_terms(vec![term(&[("kernel", "Lt", &["5"])])]),
                labelled(),
                unmatched.clone(),
            ),
            (
                "Gt on a non-integer label",
                pod("p").required_terms(vec![term(&[("foo", "Gt", &["1"])])]),
                labelled(),
                unmatched.clone(),
            ),
            (
                "expressions of a term are ANDed",
                pod("p").required_terms(vec![term(&[
                    ("foo", "In", &["bar"]),
                    ("kernel", "In", &["6"]),
                ])]),
                labelled(),
                unmatched.clone(),
            ),
            (
                "terms are ORed",
                pod("p").required_terms(vec![
                    term(&[("kernel", "In", &["6"])]),
                    term(&[("foo", "In", &["bar"])]),
                ]),
                labelled(),
                Status::success(),
            ),
            (
                "an empty term matches nothing",
                pod("p").required_terms(vec![NodeSelectorTerm::default()]),
                labelled(),
                unmatched.clone(),
            ),
            (
                "an invalid term is ignored: In without values",
                pod("p").required_terms(vec![
                    term(&[("foo", "In", &[])]),
                    term(&[("foo", "Exists", &[])]),
                ]),
                labelled(),
                Status::success(),
            ),
            (
                "nodeSelector and affinity must both match",
                pod("p")
                    .node_selector("foo", "bar")
                    .required_terms(vec![term(&[("kernel", "In", &["6"])])]),
                labelled(),
                unmatched.clone(),
            ),
            (
                "matchFields on metadata.name",
                pod("p").required_terms(vec![field_term(&[("metadata.name", "In", &["node1"])])]),
                labelled(),
                Status::success(),
            ),
            (
                "matchFields on another node",
                pod("p").required_terms(vec![field_term(&[("metadata.name", "In", &["node2"])])]),
                labelled(),
                unmatched.clone(),
            ),
            (
                "matchFields NotIn",
                pod("p").required_terms(vec![field_term(&[(
                    "metadata.name",
                    "NotIn",
                    &["node1"],
                )])]),
                labelled(),
                unmatched.clone(),
            ),
            (
                "matchFields and matchExpressions in one term",
                pod("p").required_terms(vec![NodeSelectorTerm {
                    match_fields: field_term(&[("metadata.name", "In", &["node1"])]).match_fields,
                    match_expressions: term(&[("foo", "In", &["bar"])]).match_expressions,
                }]),
                labelled(),
                Status::success(),
            ),
        ];
        for (name, p, n, want) in cases {
            assert_eq!(
                NodeAffinity.filter(&p.info(), &n.info(vec![])),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn pre_filter() {
        let names =
            |list: &[&str]| -> BTreeSet<String> { list.iter().map(|n| (*n).to_owned()).collect() };
        let cases: Vec<(&str, PodBuilder, PreFilter)> = vec![
            ("no affinity", pod("p"), PreFilter::AllNodes),
            (
                "a term without names",
                pod("p").required_terms(vec![term(&[("foo", "In", &["bar"])])]),
                PreFilter::AllNodes,
            ),
            (
                "names of each term are united",
                pod("p").required_terms(vec![
                    field_term(&[("metadata.name", "In", &["a"])]),
                    field_term(&[("metadata.name", "In", &["b"])]),
                ]),
                PreFilter::Nodes(names(&["a", "b"])),
            ),
            (
                "one term without names opens every node",
                pod("p").required_terms(vec![
                    field_term(&[("metadata.name", "In", &["a"])]),
                    term(&[("foo", "In", &["bar"])]),
                ]),
                PreFilter::AllNodes,
            ),
            (
                "requirements of one term are intersected; disjoint ones conflict",
                pod("p").required_terms(vec![field_term(&[
                    ("metadata.name", "In", &["a"]),
                    ("metadata.name", "In", &["b"]),
                ])]),
                PreFilter::Reject(Status::unresolvable(ERR_REASON_CONFLICT)),
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(NodeAffinity.pre_filter(&p.info()), want, "{name}");
        }
    }

    #[test]
    fn score() {
        let preferring = pod("p")
            .preferred_term(2, term(&[("foo", "In", &["bar"])]))
            .preferred_term(4, term(&[("key", "In", &["value"])]))
            .preferred_term(5, term(&[("az", "In", &["az1"])]))
            .info();
        let nodes = [
            node("n1").label("foo", "bar"),
            node("n2").label("key", "value"),
            node("n3")
                .label("foo", "bar")
                .label("key", "value")
                .label("az", "az1"),
            node("n4"),
        ];
        assert!(NodeAffinity.pre_score(&preferring));
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| NodeAffinity.score(&preferring, &n.clone().info(vec![])))
            .collect();
        assert_eq!(scores, [2, 4, 11, 0]);
        NodeAffinity.normalize(&mut scores);
        assert_eq!(scores, [18, 36, 100, 0]);
        assert!(!NodeAffinity.pre_score(&pod("p").info()));
    }
}
