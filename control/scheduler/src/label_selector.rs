//! `metav1.LabelSelector` as apimachinery evaluates it (`LabelSelectorAsSelector`): the
//! `matchLabels` and `matchExpressions` are ANDed; an empty selector selects everything, a
//! missing one nothing; a selector with an invalid requirement selects nothing (kube's
//! scheduler drops terms whose selector fails to parse).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// The labels of an object, possibly absent.
pub type Labels = BTreeMap<String, String>;

/// Whether `selector` selects an object with `labels`.
pub fn matches(selector: Option<&LabelSelector>, labels: Option<&Labels>) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    let get = |key: &str| labels.and_then(|l| l.get(key));
    for (key, value) in selector.match_labels.iter().flatten() {
        if get(key) != Some(value) {
            return false;
        }
    }
    selector
        .match_expressions
        .iter()
        .flatten()
        .all(|r| requirement_matches(r, get(&r.key)) == Some(true))
}

/// One requirement against the label's value; `None` when the requirement is invalid.
fn requirement_matches(
    requirement: &LabelSelectorRequirement,
    value: Option<&String>,
) -> Option<bool> {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    match requirement.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => None,
        "In" => Some(value.is_some_and(|v| values.contains(v))),
        "NotIn" => Some(!value.is_some_and(|v| values.contains(v))),
        "Exists" | "DoesNotExist" if !values.is_empty() => None,
        "Exists" => Some(value.is_some()),
        "DoesNotExist" => Some(value.is_none()),
        _ => None,
    }
}

/// `selector` with one more requirement: `key` `operator` `values` (how `matchLabelKeys`
/// and `mismatchLabelKeys` narrow a term's selector to the incoming pod's label values).
pub fn with_requirement(
    selector: &LabelSelector,
    key: &str,
    operator: &str,
    values: Vec<String>,
) -> LabelSelector {
    let mut selector = selector.clone();
    selector
        .match_expressions
        .get_or_insert_with(Vec::new)
        .push(LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: Some(values),
        });
    selector
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(list: &[(&str, &str)]) -> Labels {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn selectors_match_as_apimachinery_does() {
        let pod = labels(&[("app", "web"), ("tier", "front")]);
        let cases: Vec<(&str, Option<LabelSelector>, bool)> = vec![
            ("a missing selector selects nothing", None, false),
            (
                "an empty selector selects everything",
                Some(LabelSelector::default()),
                true,
            ),
            (
                "matchLabels",
                Some(LabelSelector {
                    match_labels: Some(labels(&[("app", "web")])),
                    ..LabelSelector::default()
                }),
                true,
            ),
            (
                "matchLabels and expressions are ANDed",
                Some(LabelSelector {
                    match_labels: Some(labels(&[("app", "web")])),
                    match_expressions: Some(vec![expression("tier", "NotIn", &["front"])]),
                }),
                false,
            ),
            (
                "In, Exists, DoesNotExist",
                Some(LabelSelector {
                    match_expressions: Some(vec![
                        expression("app", "In", &["db", "web"]),
                        expression("tier", "Exists", &[]),
                        expression("zone", "DoesNotExist", &[]),
                    ]),
                    ..LabelSelector::default()
                }),
                true,
            ),
            (
                "an invalid requirement selects nothing",
                Some(LabelSelector {
                    match_expressions: Some(vec![expression("app", "Exists", &["web"])]),
                    ..LabelSelector::default()
                }),
                false,
            ),
        ];
        for (name, selector, want) in cases {
            assert_eq!(matches(selector.as_ref(), Some(&pod)), want, "{name}");
        }
        let narrowed = with_requirement(&LabelSelector::default(), "app", "In", vec!["db".into()]);
        assert!(!matches(Some(&narrowed), Some(&pod)));
        assert!(!matches(Some(&narrowed), None));
    }
}
