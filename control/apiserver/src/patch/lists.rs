//! Merging lists in a strategic merge patch: the kind of their elements, items found by
//! their merge key, and the order `$setElementOrder` asks for.

use serde_json::Value;

use super::directives::{DIRECTIVE_MARKER, SET_ELEMENT_ORDER_PREFIX};
use super::messages::{bad_arg_type, go_format, no_merge_key, GO_MAP_TYPE};
use super::PatchError;

/// The kind of the elements of a list, as far as merging cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ElementKind {
    Map,
    String,
    Number,
    Bool,
    Null,
}

/// Index of the first item whose `merge_key` equals `value`. Like kube, every
/// item scanned must be an object.
pub(super) fn find_by_merge_key(
    list: &[Value],
    merge_key: &str,
    value: &Value,
) -> Result<Option<usize>, PatchError> {
    for (index, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(PatchError::internal(format!(
                "value for key {index} is not a map"
            )));
        };
        if map.get(merge_key) == Some(value) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// The element kind shared by both lists, None when both are empty. As in
/// strategicpatch.sliceElementType, a list as the first element is the 422
/// "lists of lists", and any other mix of kinds is an (untranslated) error.
pub(super) fn element_kind(
    first: &[Value],
    second: &[Value],
) -> Result<Option<ElementKind>, PatchError> {
    let mut kind: Option<ElementKind> = None;
    for value in first.iter().chain(second.iter()) {
        let this = match value {
            Value::Object(_) => Some(ElementKind::Map),
            Value::String(_) => Some(ElementKind::String),
            Value::Number(_) => Some(ElementKind::Number),
            Value::Bool(_) => Some(ElementKind::Bool),
            Value::Null => Some(ElementKind::Null),
            Value::Array(_) if kind.is_none() => {
                return Err(PatchError::unprocessable(
                    "lists of lists are not supported",
                ))
            }
            Value::Array(_) => None,
        };
        match (kind, this) {
            (None, Some(this)) => kind = Some(this),
            (Some(previous), Some(this)) if previous == this => {}
            _ => {
                let both = Value::Array(vec![
                    Value::Array(first.to_vec()),
                    Value::Array(second.to_vec()),
                ]);
                return Err(PatchError::internal(format!(
                    "list element types are not identical: {}",
                    go_format(&both)
                )));
            }
        }
    }
    Ok(kind)
}

/// Splits `merged` into the items present in `by` and the rest (server-only),
/// by merge key for lists of objects and by value otherwise.
pub(super) fn partition_by_presence(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::with_capacity(merged.len());
    let mut server_only = Vec::with_capacity(merged.len());
    for item in merged {
        let found = if merge_key.is_empty() {
            by.contains(&item)
        } else {
            let key_value = merge_key_value(&item, merge_key)?;
            find_by_merge_key(by, merge_key, key_value)?.is_some()
        };
        if found {
            present.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((present, server_only))
}

fn merge_key_value<'v>(item: &'v Value, merge_key: &str) -> Result<&'v Value, PatchError> {
    let Value::Object(map) = item else {
        return Err(PatchError::internal(bad_arg_type(GO_MAP_TYPE, item)));
    };
    map.get(merge_key)
        .ok_or_else(|| PatchError::internal(no_merge_key(item, merge_key)))
}

/// strategicpatch.validatePatchWithSetOrderList: the patch items (deletions
/// and other directives aside) must appear in the `$setElementOrder` list, in
/// the same relative order.
pub(super) fn validate_patch_with_set_order(
    patch: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut items: Vec<&Value> = Vec::with_capacity(patch.len());
    for item in patch {
        if !merge_key.is_empty() {
            let Value::Object(map) = item else {
                return Err(PatchError::internal(bad_arg_type(GO_MAP_TYPE, item)));
            };
            if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        items.push(item);
    }
    let (mut patch_index, mut order_index) = (0, 0);
    while let (Some(item), Some(ordered)) = (items.get(patch_index), order.get(order_index)) {
        if item.get(DIRECTIVE_MARKER).is_some() {
            patch_index += 1;
            continue;
        }
        if merge_key_equal(item, ordered, merge_key)? {
            patch_index += 1;
        }
        order_index += 1;
    }
    if patch_index < items.len() && order_index >= order.len() {
        return Err(PatchError::internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_format(&Value::Array(patch.to_vec())),
            go_format(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    Ok(merge_key_value(left, merge_key)? == merge_key_value(right, merge_key)?)
}

/// Position of `item` in `list`: by merge key for objects, by value otherwise.
fn position_in(list: &[Value], item: &Value, merge_key: &str, kind: ElementKind) -> Option<usize> {
    if kind == ElementKind::Map {
        let key = item.get(merge_key);
        list.iter().position(|v| v.get(merge_key) == key)
    } else {
        list.iter().position(|v| v == item)
    }
}

/// strategicpatch.normalizeElementOrder.
pub(super) fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = sort_by_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

/// Stable sort of `items` by their position in `order`.
fn sort_by_order(
    mut items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>, PatchError> {
    if kind == ElementKind::Map {
        for item in items.iter().chain(order.iter()) {
            merge_key_value(item, merge_key)?;
        }
    }
    items
        .sort_by_cached_key(|item| position_in(order, item, merge_key, kind).unwrap_or(usize::MAX));
    Ok(items)
}

/// strategicpatch.mergeSortedSlice: walks both sorted lists and takes the
/// server-only item first only when both are in the live list and it came
/// first there. An item new to the live list therefore goes before the
/// server-only items still waiting, which is why kube puts an item added
/// without `$setElementOrder` at the front of the list.
fn merge_sorted(
    server_only: Vec<Value>,
    patch_items: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(server_only.len() + patch_items.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!(
                (
                    position_in(server_order, l, merge_key, kind),
                    position_in(server_order, r, merge_key, kind),
                ),
                (Some(li), Some(ri)) if li < ri
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {

    use crate::patch::fixtures::{names, smp, smp_err};
    use serde_json::json;

    #[test]
    fn new_list_item_without_set_element_order_goes_first() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"name": "new", "image": "x"}]}}),
        );
        assert_eq!(
            names(&result["spec"]["containers"], "name"),
            vec![json!("new"), json!("a"), json!("b")]
        );
    }

    #[test]
    fn patch_order_wins_over_live_order_for_items_it_names() {
        let pod = json!({"spec": {"containers": [
            {"name": "one"}, {"name": "two", "image": "b"}, {"name": "three"}
        ]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"name": "three", "image": "c"}, {"name": "one", "image": "a"}]}}),
        );
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "two", "image": "b"}, {"name": "three", "image": "c"}, {"name": "one", "image": "a"}])
        );
    }

    #[test]
    fn set_element_order_interleaves_server_only_items() {
        let pod = json!({"spec": {"containers": [
            {"name": "1"}, {"name": "2"}, {"name": "9"}, {"name": "3"}, {"name": "4"}
        ]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"$setElementOrder/containers": [{"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}]}}),
        );
        assert_eq!(
            names(&result["spec"]["containers"], "name"),
            ["2", "1", "9", "4", "3"].map(|n| json!(n)).to_vec()
        );
    }

    #[test]
    fn set_element_order_places_new_items() {
        let pod = json!({"spec": {"initContainers": [{"name": "a"}, {"name": "b", "image": "x"}]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {
                "$setElementOrder/initContainers": [{"name": "d"}, {"name": "a"}, {"name": "b"}, {"name": "c"}],
                "initContainers": [{"name": "d", "image": "4"}, {"name": "c", "image": "3"}]
            }}),
        );
        assert_eq!(
            result["spec"]["initContainers"],
            json!([{"name": "d", "image": "4"}, {"name": "a"}, {"name": "b", "image": "x"}, {"name": "c", "image": "3"}])
        );
    }

    #[test]
    fn set_element_order_that_contradicts_the_patch_is_an_error() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let e = smp_err(
            "Pod",
            pod,
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b", "image": "1"}, {"name": "a", "image": "2"}]
            }}),
        );
        assert_eq!(e.code, 500);
        assert!(
            e.message.contains("doesn't match $setElementOrder list"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_merge_key_is_a_500_like_kube() {
        let pod = json!({"spec": {"containers": [{"name": "a"}]}});
        let e = smp_err(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"image": "x"}]}}),
        );
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            "map: map[image:x] does not contain declared merge key: name"
        );
    }

    #[test]
    fn lists_of_lists_are_422_and_mixed_lists_500() {
        let doc = json!({"metadata": {"finalizers": [["a"]]}});
        let e = smp_err("Pod", doc, json!({"metadata": {"finalizers": [["b"]]}}));
        assert_eq!(
            (e.code, e.message.as_str()),
            (422, "lists of lists are not supported")
        );
        let doc = json!({"metadata": {"finalizers": ["a"]}});
        let e = smp_err("Pod", doc, json!({"metadata": {"finalizers": [1]}}));
        assert_eq!(e.code, 500);
        assert_eq!(e.message, "list element types are not identical: [[a] [1]]");
    }
}
