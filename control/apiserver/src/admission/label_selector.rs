//! Label selectors (`ValidateLabelSelector`), what they mean once validated, and the selector
//! rules workload controllers share: matching the template's labels, immutability on update.

use serde_json::Value;

use super::field::{
    child, forbidden, go_label_selector, go_string_map, index, invalid, required, Bad,
    IMMUTABLE_MSG,
};
use super::json::{list, map, scalar_text, sem_eq, sorted_entries, text};
use super::meta::validate_labels;
use super::names::{label_value, qualified_name};
use super::{FieldError, Obj};

const SELECTOR_MISMATCH_MSG: &str = "`selector` does not match template `labels`";

/// What `metav1.LabelSelectorAsSelector` makes of a selector.
pub(super) enum Selector<'a> {
    /// A nil selector selects nothing.
    Nothing,
    /// An empty selector selects everything.
    Everything,
    Parsed(&'a Value),
    /// The selector has errors; kube skips matching it.
    Invalid,
}

/// `ValidateLabelSelector` with strict label values, returning what the selector means.
pub(super) fn validate_label_selector<'a>(
    selector: Option<&'a Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Selector<'a> {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return Selector::Nothing;
    };
    let before = errs.len();
    validate_labels(
        map(selector, "matchLabels"),
        &child(path, "matchLabels"),
        errs,
    );
    let exprs_path = child(path, "matchExpressions");
    for (i, expr) in list(selector, "matchExpressions").iter().enumerate() {
        let p = index(&exprs_path, i);
        let values = list(expr, "values");
        match text(expr, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(invalid(
                &child(&p, "operator"),
                Bad::str(op),
                "not a valid selector operator",
            )),
        }
        for m in qualified_name(text(expr, "key")) {
            errs.push(invalid(&child(&p, "key"), Bad::str(text(expr, "key")), &m));
        }
        for (j, v) in values.iter().enumerate() {
            let v = scalar_text(v);
            for m in label_value(&v) {
                errs.push(invalid(&index(&child(&p, "values"), j), Bad::str(&v), &m));
            }
        }
    }
    if errs.len() > before {
        return Selector::Invalid;
    }
    let empty = map(selector, "matchLabels").is_none_or(Obj::is_empty)
        && list(selector, "matchExpressions").is_empty();
    if empty {
        Selector::Everything
    } else {
        Selector::Parsed(selector)
    }
}

pub(super) fn selector_matches(selector: &Value, labels: Option<&Obj>) -> bool {
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(scalar_text);
    let labels_ok = sorted_entries(map(selector, "matchLabels"))
        .into_iter()
        .all(|(k, v)| label(k) == Some(scalar_text(v)));
    labels_ok
        && list(selector, "matchExpressions").iter().all(|e| {
            let values: Vec<String> = list(e, "values").iter().map(scalar_text).collect();
            let current = label(text(e, "key"));
            match text(e, "operator") {
                "In" => current.is_some_and(|c| values.contains(&c)),
                "NotIn" => current.is_none_or(|c| !values.contains(&c)),
                "Exists" => current.is_some(),
                "DoesNotExist" => current.is_none(),
                _ => false,
            }
        })
}

/// Whether a (possibly nil) selector selects a pod template's labels; `Everything` and
/// `Invalid` are not checked, as in kube.
pub(super) fn selector_mismatch(selector: &Selector, labels: Option<&Obj>) -> bool {
    match selector {
        Selector::Nothing => true,
        Selector::Parsed(s) => !selector_matches(s, labels),
        Selector::Everything | Selector::Invalid => false,
    }
}

pub(super) fn mismatch_error(template: &Value, path: &str) -> FieldError {
    invalid(
        &child(path, "metadata.labels"),
        Bad::Raw(go_string_map(map(&template["metadata"], "labels"))),
        SELECTOR_MISMATCH_MSG,
    )
}

/// The selector immutability apps/v1 and batch/v1 strategies enforce on update.
pub(super) fn immutable_selector(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let new_selector = new["spec"].get("selector");
    if !sem_eq(new_selector, old["spec"].get("selector")) {
        errs.push(invalid(
            "spec.selector",
            Bad::Raw(new_selector.map_or_else(|| "null".into(), go_label_selector)),
            IMMUTABLE_MSG,
        ));
    }
}
