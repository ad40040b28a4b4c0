//! PodDisruptionBudgets as preemption reads them (`policy/v1`): which pods a budget covers
//! (its namespace and label selector; a budget with an empty selector covers none, as
//! kube-scheduler reads it), how many more disruptions `status.disruptionsAllowed` permits,
//! and the pods already counted as disrupted (`status.disruptedPods`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::framework::PodInfo;

/// One budget, as preemption needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budget {
    /// The budget's namespace: it covers pods there only.
    pub namespace: String,
    /// `spec.selector`.
    pub selector: Option<LabelSelector>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
    /// `status.disruptedPods`: names of pods whose eviction is already counted.
    pub disrupted_pods: BTreeSet<String>,
}

impl Budget {
    /// Reads a PodDisruptionBudget.
    pub fn of(pdb: &PodDisruptionBudget) -> Budget {
        let status = pdb.status.as_ref();
        Budget {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector: pdb.spec.as_ref().and_then(|s| s.selector.clone()),
            disruptions_allowed: status.map_or(0, |s| s.disruptions_allowed),
            disrupted_pods: status
                .and_then(|s| s.disrupted_pods.as_ref())
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// Whether the budget covers `pod`.
    pub fn covers(&self, pod: &PodInfo) -> bool {
        if pod.namespace != self.namespace {
            return false;
        }
        let Some(selector) = &self.selector else {
            return false;
        };
        let empty = BTreeMap::new();
        let labels = pod.pod.metadata.labels.as_ref().unwrap_or(&empty);
        !selector_is_empty(selector) && selector_matches(selector, labels)
    }
}

fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// `LabelSelectorAsSelector(...).Matches(labels)`; an unknown operator matches nothing.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    by_label
        && selector.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or(&[]);
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// `filterPodsWithPDBViolation`: splits `pods` (in their order) into those whose eviction
/// would take a budget below zero and those it would not, counting down each budget's
/// allowance as pods are taken.
pub fn split_by_violation<'a>(
    pods: &[&'a PodInfo],
    budgets: &[Budget],
) -> (Vec<&'a PodInfo>, Vec<&'a PodInfo>) {
    let mut allowed: Vec<i32> = budgets.iter().map(|b| b.disruptions_allowed).collect();
    let mut violating = Vec::new();
    let mut not_violating = Vec::new();
    for &pod in pods {
        let mut violates = false;
        for (budget, allowed) in budgets.iter().zip(allowed.iter_mut()) {
            if !budget.covers(pod) || budget.disrupted_pods.contains(&pod.name) {
                continue;
            }
            *allowed -= 1;
            if *allowed < 0 {
                violates = true;
            }
        }
        if violates {
            violating.push(pod);
        } else {
            not_violating.push(pod);
        }
    }
    (violating, not_violating)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn budget(labels: &[(&str, &str)], allowed: i32) -> Budget {
        Budget {
            namespace: "default".into(),
            selector: Some(LabelSelector {
                match_labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                ),
                match_expressions: None,
            }),
            disruptions_allowed: allowed,
            disrupted_pods: BTreeSet::new(),
        }
    }

    #[test]
    fn selectors_match_as_label_selectors_do() {
        let labels: BTreeMap<String, String> = [("app".into(), "web".into())].into();
        let expression = |operator: &str, values: &[&str]| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: operator.into(),
                values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
            }]),
        };
        assert!(selector_matches(&expression("In", &["web", "db"]), &labels));
        assert!(!selector_matches(&expression("NotIn", &["web"]), &labels));
        assert!(selector_matches(&expression("Exists", &[]), &labels));
        assert!(!selector_matches(&expression("DoesNotExist", &[]), &labels));
        assert!(!selector_matches(&expression("Gt", &["1"]), &labels));
    }

    #[test]
    fn budgets_count_down_and_skip_pods_already_disrupted() {
        let web = |name: &str| pod(name).label("app", "web").info();
        let (a, b, c, other) = (web("a"), web("b"), web("c"), pod("d").info());
        let pods = [&*a, &*b, &*c, &*other];
        let names = |list: Vec<&PodInfo>| list.iter().map(|p| p.name.clone()).collect::<Vec<_>>();

        let (violating, fine) = split_by_violation(&pods, &[budget(&[("app", "web")], 1)]);
        assert_eq!(names(violating), ["b", "c"]);
        assert_eq!(names(fine), ["a", "d"]);

        let mut disrupted = budget(&[("app", "web")], 1);
        disrupted.disrupted_pods.insert("a".into());
        let (violating, _) = split_by_violation(&pods, &[disrupted]);
        assert_eq!(names(violating), ["c"]);

        let mut elsewhere = budget(&[("app", "web")], 0);
        elsewhere.namespace = "other".into();
        let empty = budget(&[], 0);
        let (violating, _) = split_by_violation(&pods, &[elsewhere, empty]);
        assert!(
            violating.is_empty(),
            "other namespaces and empty selectors cover nothing"
        );
    }
}
