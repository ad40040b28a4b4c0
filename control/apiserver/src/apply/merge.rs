//! Merging an applied configuration into the live object, and removing the fields an
//! applier stopped applying (structured-merge-diff's `Merge` and its prune).
//!
//! Structs and granular maps merge field by field; keyed lists and sets merge item by item
//! (items matched by key, merged recursively; items only the live object has stay); atomic
//! lists, maps and structs and scalars take the applied value. Keyed list order: the applied
//! items in the applied order, live-only items where they were among them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::diff::{index_items, item_element};
use super::fields::{Element, Set};
use super::shape::{Schema, Shape};

/// `live` with `config` merged in.
pub fn merge(live: &Value, config: &Value, schema: &Schema<'_>) -> Result<Value, String> {
    merge_value(Some(live), config, schema)
}

fn merge_value(live: Option<&Value>, config: &Value, schema: &Schema<'_>) -> Result<Value, String> {
    let Some(live) = live else {
        return Ok(config.clone());
    };
    let shape = schema.shape(config);
    if shape.is_leaf() {
        return Ok(config.clone());
    }
    match (&shape, live, config) {
        (Shape::Struct { .. } | Shape::Map { .. }, Value::Object(old), Value::Object(new)) => {
            let mut out = old.clone();
            for (key, value) in new {
                let merged = merge_value(old.get(key), value, &schema.field(key))?;
                out.insert(key.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Shape::List(list_type), Value::Array(old), Value::Array(new)) => {
            let applied = index_items(new, list_type, schema)?;
            // A live list that is not a proper keyed list is replaced.
            let Ok(current) = index_items(old, list_type, schema) else {
                return Ok(config.clone());
            };
            let live_by: BTreeMap<&Element, &Value> =
                current.iter().map(|(e, v)| (e, *v)).collect();
            let applied_at: BTreeMap<&Element, usize> = applied
                .iter()
                .enumerate()
                .map(|(i, (e, _))| (e, i))
                .collect();
            let item_schema = schema.item();
            let mut out = Vec::with_capacity(old.len().max(new.len()));
            let mut emitted = BTreeSet::new();
            let mut next = 0;
            let mut emit_through = |end: usize, out: &mut Vec<Value>| -> Result<(), String> {
                while next <= end && next < applied.len() {
                    let (element, value) = &applied[next];
                    if emitted.insert(element.clone()) {
                        out.push(merge_value(
                            live_by.get(element).copied(),
                            value,
                            &item_schema,
                        )?);
                    }
                    next += 1;
                }
                Ok(())
            };
            for (element, value) in &current {
                match applied_at.get(element) {
                    Some(&at) => emit_through(at, &mut out)?,
                    None => out.push((*value).clone()),
                }
            }
            emit_through(applied.len(), &mut out)?;
            Ok(Value::Array(out))
        }
        _ => Ok(config.clone()),
    }
}

/// Removes from `value` the fields of `last` (what an applier applied before) that no
/// manager keeps (`keep`: the applier's new set and every other manager's), whole subtrees
/// when nothing under them is kept.
pub fn prune(value: &mut Value, last: &Set, keep: Option<&Set>, schema: &Schema<'_>) {
    let elements: BTreeSet<&Element> = last.members.iter().chain(last.children.keys()).collect();
    for element in elements {
        let kept_member = keep.is_some_and(|k| k.members.contains(element));
        let kept_below = keep.and_then(|k| k.children.get(element));
        if !kept_member && kept_below.is_none() {
            remove_child(value, element, schema);
        } else if let Some(last_below) = last.children.get(element) {
            if let Some((child, child_schema)) = child_mut(value, element, schema) {
                prune(child, last_below, kept_below, &child_schema);
            }
        }
    }
}

fn child_mut<'v, 's>(
    value: &'v mut Value,
    element: &Element,
    schema: &Schema<'s>,
) -> Option<(&'v mut Value, Schema<'s>)> {
    let shape = schema.shape(value);
    match (element, value) {
        (Element::Field(name), Value::Object(map)) => {
            let child_schema = schema.field(name);
            map.get_mut(name).map(|v| (v, child_schema))
        }
        (_, Value::Array(items)) => {
            let Shape::List(list_type) = shape else {
                return None;
            };
            let item_schema = schema.item();
            items
                .iter_mut()
                .find(|item| item_element(item, &list_type, schema).as_ref() == Ok(element))
                .map(|item| (item, item_schema))
        }
        _ => None,
    }
}

fn remove_child(value: &mut Value, element: &Element, schema: &Schema<'_>) {
    let shape = schema.shape(value);
    match (element, value) {
        (Element::Field(name), Value::Object(map)) => {
            map.remove(name);
        }
        (Element::Index(index), Value::Array(items)) => {
            if let Ok(index) = usize::try_from(*index) {
                if index < items.len() {
                    items.remove(index);
                }
            }
        }
        (_, Value::Array(items)) => {
            if let Shape::List(list_type) = shape {
                items.retain(|item| item_element(item, &list_type, schema).as_ref() != Ok(element));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::diff::field_set;
    use serde_json::json;

    fn deployment() -> Schema<'static> {
        Schema::BuiltIn {
            kind: "Deployment",
            path: Vec::new(),
        }
    }

    #[test]
    fn merges() {
        let containers = |c: Value| json!({"spec": {"template": {"spec": {"containers": c}}}});
        let cases = [
            // scalars and structs, field by field
            (
                json!({"spec": {"replicas": 1, "paused": true}}),
                json!({"spec": {"replicas": 3}}),
                json!({"spec": {"replicas": 3, "paused": true}}),
            ),
            // an atomic struct is replaced whole
            (
                json!({"spec": {"selector": {"matchLabels": {"a": "1", "b": "2"}}}}),
                json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}}),
                json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}}),
            ),
            // keyed items merge; live-only items stay in place
            (
                containers(
                    json!([{"name": "a", "image": "1", "tty": true}, {"name": "b", "image": "2"}]),
                ),
                containers(json!([{"name": "a", "image": "9"}, {"name": "c", "image": "3"}])),
                containers(
                    json!([{"name": "a", "image": "9", "tty": true}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}]),
                ),
            ),
            // applied order wins for shared items
            (
                containers(json!([{"name": "a"}, {"name": "b"}])),
                containers(json!([{"name": "b"}, {"name": "a"}])),
                containers(json!([{"name": "b"}, {"name": "a"}])),
            ),
            // atomic lists are replaced
            (
                json!({"spec": {"template": {"spec": {"tolerations": [{"key": "a"}]}}}}),
                json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}}),
                json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}}),
            ),
            // sets are unions
            (
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"finalizers": ["c"]}}),
                json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            ),
        ];
        for (live, config, merged) in cases {
            assert_eq!(
                merge(&live, &config, &deployment()).unwrap(),
                merged,
                "{config}"
            );
        }
    }

    #[test]
    fn prune_removes_what_nobody_keeps() {
        let mut live = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"replicas": 3, "paused": true, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}]}}}});
        let last = field_set(
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 3, "paused": true,
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}]}}}}),
            &deployment(),
        )
        .unwrap();
        let now = field_set(
            &json!({"metadata": {"labels": {"a": "1"}}, "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}),
            &deployment(),
        )
        .unwrap();
        // Another manager keeps spec.replicas.
        let other = field_set(&json!({"spec": {"replicas": 3}}), &deployment()).unwrap();
        prune(&mut live, &last, Some(&now.union(&other)), &deployment());
        assert_eq!(
            live,
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 3,
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
        );
    }
}
