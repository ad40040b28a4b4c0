//! Label selectors as the controllers use them: a missing or unparsable selector selects
//! nothing (as `metav1.LabelSelectorAsSelector(nil)` gives `labels.Nothing()`), an empty one
//! everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt as _};

/// A parsed selector; `None` selects nothing.
#[derive(Clone, Debug)]
pub struct LabelMatcher(Option<Selector>);

impl LabelMatcher {
    /// Parses `selector`; a missing or malformed one matches nothing.
    pub fn new(selector: Option<&LabelSelector>) -> LabelMatcher {
        LabelMatcher(selector.and_then(|s| Selector::try_from(s.clone()).ok()))
    }

    /// Whether `labels` are selected.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        self.0
            .as_ref()
            .is_some_and(|s| s.matches(labels.unwrap_or(&empty)))
    }

    /// Whether the selector is present and selects every object (an empty selector).
    pub fn selects_all(&self) -> bool {
        self.0.as_ref().is_some_and(Selector::selects_all)
    }

    /// Whether the selector could be parsed at all.
    pub fn is_valid(&self) -> bool {
        self.0.is_some()
    }
}

/// Whether every label of `wanted` is on `labels` with the same value (a pod is "fully
/// labeled" when it carries all of its template's labels).
pub fn has_all(
    labels: Option<&BTreeMap<String, String>>,
    wanted: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(wanted) = wanted else { return true };
    let Some(labels) = labels else {
        return wanted.is_empty();
    };
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn missing_selects_nothing_and_empty_selects_everything() {
        let app = labels(&[("app", "web")]);
        assert!(!LabelMatcher::new(None).matches(Some(&app)));
        let all = LabelMatcher::new(Some(&LabelSelector::default()));
        assert!(all.selects_all());
        assert!(all.matches(Some(&app)));
        assert!(all.matches(None));
    }

    #[test]
    fn match_labels_and_expressions() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["front".into()]),
            }]),
        };
        let m = LabelMatcher::new(Some(&selector));
        assert!(m.matches(Some(&labels(&[("app", "web"), ("tier", "front")]))));
        assert!(!m.matches(Some(&labels(&[("app", "web")]))));
        assert!(!m.matches(Some(&labels(&[("app", "db"), ("tier", "front")]))));
    }

    #[test]
    fn fully_labeled() {
        let template = labels(&[("app", "web")]);
        assert!(has_all(
            Some(&labels(&[("app", "web"), ("x", "y")])),
            Some(&template)
        ));
        assert!(!has_all(Some(&labels(&[("app", "db")])), Some(&template)));
        assert!(has_all(None, None));
    }
}
