//! Field sets of values and the difference of two values, walked by the schema
//! (structured-merge-diff's `ToFieldSet` and `Compare`).
//!
//! A value's field set holds its scalars, its atomic lists, maps and structs, the items of
//! its keyed lists and sets, map entries, and empty or null fields: what an applier owns.
//! A comparison sorts the paths of two versions of an object into added, modified and
//! removed: what an update takes from other managers.
//!
//! One difference from kube: a built-in kind's struct is never added or removed itself
//! (only what is in it). kube compares against a Go zero value, where most structs already
//! exist empty; a custom object's structs are added and removed as kube does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::fields::{key_element, Element, Path, Set};
use super::shape::{ListType, Schema, Shape};

/// The element naming `item` of a list of `list_type`.
pub fn item_element(
    item: &Value,
    list_type: &ListType,
    schema: &Schema<'_>,
) -> Result<Element, String> {
    match list_type {
        ListType::Set => Ok(Element::Value(item.to_string())),
        ListType::Map(keys) => {
            let object = item.as_object().ok_or_else(|| {
                format!("associative list with keys may not have non-map elements: {item}")
            })?;
            if keys.is_empty() {
                return Err(
                    "associative list without keys has an element that is a map type".into(),
                );
            }
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                let value = match object.get(key) {
                    Some(value) => value.clone(),
                    None => schema.item().key_default(key).ok_or_else(|| {
                        format!(
                            "associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
                        )
                    })?,
                };
                fields.push((key.clone(), value));
            }
            Ok(key_element(fields))
        }
        ListType::Atomic => Err("atomic lists have no item elements".into()),
    }
}

/// The items of a keyed list or set with their elements; an error for an item without its
/// key or a duplicate, as kube refuses them.
pub fn index_items<'v>(
    items: &'v [Value],
    list_type: &ListType,
    schema: &Schema<'_>,
) -> Result<Vec<(Element, &'v Value)>, String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let element =
            item_element(item, list_type, schema).map_err(|e| format!("element {i}: {e}"))?;
        if !seen.insert(element.clone()) {
            return Err(format!("duplicate entries for key {element}"));
        }
        out.push((element, item));
    }
    Ok(out)
}

/// The field set of `value` (an object at the root of `schema`).
pub fn field_set(value: &Value, schema: &Schema<'_>) -> Result<Set, String> {
    let mut set = Set::default();
    collect(value, schema, &Path::default(), &mut set)?;
    Ok(set)
}

fn collect(value: &Value, schema: &Schema<'_>, path: &Path, set: &mut Set) -> Result<(), String> {
    let shape = schema.shape(value);
    match (value, &shape) {
        (_, shape) if shape.is_leaf() => set.insert(path),
        (Value::Object(map), Shape::Struct { .. } | Shape::Map { .. }) => {
            for (key, child) in map {
                let child_path = path.child(Element::Field(key.clone()));
                collect(child, &schema.field(key), &child_path, set)
                    .map_err(|e| prefixed(&child_path, e))?;
                let empty = child.as_object().is_some_and(Map::is_empty);
                if child.is_null() || empty || matches!(shape, Shape::Map { .. }) {
                    set.insert(&child_path);
                }
            }
        }
        (Value::Array(items), Shape::List(list_type)) => {
            let item_schema = schema.item();
            for (element, item) in
                index_items(items, list_type, schema).map_err(|e| prefixed(path, e))?
            {
                let item_path = path.child(element);
                collect(item, &item_schema, &item_path, set)?;
                set.insert(&item_path);
            }
        }
        _ => set.insert(path),
    }
    Ok(())
}

fn prefixed(path: &Path, error: String) -> String {
    if error.starts_with('.') || path.0.is_empty() {
        error
    } else {
        format!("{path}: {error}")
    }
}

/// What changed from one version of an object to the next.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Paths only the new version has.
    pub added: Set,
    /// Paths whose value changed.
    pub modified: Set,
    /// Paths only the old version has.
    pub removed: Set,
}

impl Comparison {
    /// Added and modified: what the writer of the new version set.
    pub fn changed(&self) -> Set {
        self.added.union(&self.modified)
    }
}

/// Compares two versions of an object (`None`: it did not exist); `metadata.managedFields`
/// is not compared.
pub fn compare(old: Option<&Value>, new: Option<&Value>, schema: &Schema<'_>) -> Comparison {
    let mut comparison = Comparison::default();
    walk(
        old,
        new,
        schema,
        &mut Path::default(),
        false,
        &mut comparison,
    );
    comparison
}

fn leaf(old: Option<&Value>, new: Option<&Value>, path: &Path, out: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) if a != b => out.modified.insert(path),
        _ => {}
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    )
}

/// `item`: the value is a list item, which is always added or removed itself. `path` is where
/// the walk stands; it grows and shrinks back as the walk goes down and up.
fn walk(
    old: Option<&Value>,
    new: Option<&Value>,
    schema: &Schema<'_>,
    path: &mut Path,
    item: bool,
    out: &mut Comparison,
) {
    let Some(probe) = new.or(old) else {
        return;
    };
    if let (Some(a), Some(b)) = (old, new) {
        // Nothing under an unchanged value is added, modified or removed: an update that
        // touches one field walks only the path to it.
        if a == b {
            return;
        }
        if !same_kind(a, b) {
            return leaf(old, new, path, out);
        }
    }
    let shape = schema.shape(probe);
    if shape.is_leaf() {
        return leaf(old, new, path, out);
    }
    match (&shape, probe) {
        (Shape::Struct { .. } | Shape::Map { .. }, Value::Object(_)) => {
            let empty = Map::new();
            let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
            let new_map = new.and_then(Value::as_object).unwrap_or(&empty);
            // A built-in struct exists empty in kube's zero value; see the module doc.
            let built_in_struct = !item
                && matches!(schema, Schema::BuiltIn { .. })
                && matches!(shape, Shape::Struct { .. });
            let bare =
                |map: &Map<String, Value>| map.keys().all(|key| is_managed_fields(path, key));
            if bare(old_map) && bare(new_map) {
                if !built_in_struct {
                    leaf(old, new, path, out);
                }
                return;
            }
            let keys: BTreeSet<&String> = old_map.keys().chain(new_map.keys()).collect();
            for key in keys {
                if is_managed_fields(path, key) {
                    continue;
                }
                path.0.push(Element::Field(key.clone()));
                walk(
                    old_map.get(key),
                    new_map.get(key),
                    &schema.field(key),
                    path,
                    false,
                    out,
                );
                path.0.pop();
            }
            if !built_in_struct {
                leaf_presence(old, new, path, out);
            }
        }
        (Shape::List(list_type), Value::Array(_)) => {
            let none: Vec<Value> = Vec::new();
            let old_items = old.and_then(Value::as_array).unwrap_or(&none);
            let new_items = new.and_then(Value::as_array).unwrap_or(&none);
            if old_items.is_empty() && new_items.is_empty() {
                return leaf(old, new, path, out);
            }
            let (Ok(old_index), Ok(new_index)) = (
                index_items(old_items, list_type, schema),
                index_items(new_items, list_type, schema),
            ) else {
                // Items without keys or with duplicates: the list is compared whole.
                return leaf(old, new, path, out);
            };
            let old_by: BTreeMap<&Element, &Value> =
                old_index.iter().map(|(e, v)| (e, *v)).collect();
            let new_by: BTreeMap<&Element, &Value> =
                new_index.iter().map(|(e, v)| (e, *v)).collect();
            let item_schema = schema.item();
            let elements: BTreeSet<&Element> =
                old_by.keys().chain(new_by.keys()).copied().collect();
            for element in elements {
                path.0.push(element.clone());
                walk(
                    old_by.get(element).copied(),
                    new_by.get(element).copied(),
                    &item_schema,
                    path,
                    true,
                    out,
                );
                path.0.pop();
            }
            leaf_presence(old, new, path, out);
        }
        _ => leaf(old, new, path, out),
    }
}

/// Whether `key` under `path` is `metadata.managedFields`, which comparisons skip: the
/// bookkeeping is never part of what a write changed.
fn is_managed_fields(path: &Path, key: &str) -> bool {
    key == "managedFields" && matches!(path.0.as_slice(), [Element::Field(m)] if m == "metadata")
}

/// A map or list that appeared or went is itself added or removed.
fn leaf_presence(old: Option<&Value>, new: Option<&Value>, path: &Path, out: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Schema<'static> {
        Schema::BuiltIn {
            kind: "Deployment",
            path: Vec::new(),
        }
    }

    #[test]
    fn field_sets_of_applied_objects() {
        let cases = [
            (
                json!({"spec": {"replicas": 2}}),
                json!({"f:spec": {"f:replicas": {}}}),
            ),
            (
                json!({"metadata": {"labels": {"app": "web"}}}),
                json!({"f:metadata": {"f:labels": {"f:app": {}}}}),
            ),
            (
                json!({"spec": {"selector": {"matchLabels": {"app": "web"}}}}),
                json!({"f:spec": {"f:selector": {}}}),
            ),
            (
                json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx",
                    "ports": [{"containerPort": 80}]}]}}}}),
                json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                    ".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}}),
            ),
            (
                json!({"spec": {"strategy": {}}}),
                json!({"f:spec": {"f:strategy": {}}}),
            ),
            (
                json!({"metadata": {"finalizers": ["a/b"]}}),
                json!({"f:metadata": {"f:finalizers": {"v:\"a/b\"": {}}}}),
            ),
        ];
        for (object, fields) in cases {
            let set = field_set(&object, &deployment()).unwrap();
            assert_eq!(set.to_fields_v1(), fields, "{object}");
        }
    }

    #[test]
    fn keyed_lists_need_their_keys_once() {
        let missing = json!({"spec": {"template": {"spec": {"containers": [{"image": "nginx"}]}}}});
        let err = field_set(&missing, &deployment()).unwrap_err();
        assert_eq!(
            err,
            ".spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
        );
        let twice =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        let err = field_set(&twice, &deployment()).unwrap_err();
        assert_eq!(
            err,
            ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
        );
    }

    #[test]
    fn comparisons() {
        let old = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1, "paused": true,
            "template": {"spec": {"containers": [{"name": "web", "image": "v1"}]}}}});
        let new = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 3,
            "template": {"spec": {"containers": [{"name": "web", "image": "v1"}, {"name": "side", "image": "s"}]}}}});
        let cmp = compare(Some(&old), Some(&new), &deployment());
        assert_eq!(
            cmp.added.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:b": {}}}, "f:spec": {"f:template": {"f:spec": {
                "f:containers": {"k:{\"name\":\"side\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
        assert_eq!(
            cmp.modified.to_fields_v1(),
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert_eq!(
            cmp.removed.to_fields_v1(),
            json!({"f:spec": {"f:paused": {}}})
        );
        // A map that appears is itself added; a built-in struct is not.
        let created = compare(
            None,
            Some(&json!({"metadata": {"labels": {"a": "1"}}})),
            &deployment(),
        );
        assert_eq!(
            created.added.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
        );
        assert!(compare(Some(&new), Some(&new), &deployment())
            .changed()
            .is_empty());
    }

    #[test]
    fn comparisons_skip_managed_fields() {
        let managed = json!([{"manager": "m", "operation": "Update", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        let plain = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let mut tracked = plain.clone();
        tracked["metadata"]["managedFields"] = managed.clone();
        let cmp = compare(Some(&plain), Some(&tracked), &deployment());
        assert_eq!(cmp, Comparison::default());
        let cmp = compare(Some(&tracked), Some(&plain), &deployment());
        assert_eq!(cmp, Comparison::default());
        // Metadata holding only managedFields is as good as none.
        let only = json!({"metadata": {"managedFields": managed}, "spec": {"replicas": 1}});
        let cmp = compare(
            Some(&only),
            Some(&json!({"spec": {"replicas": 1}})),
            &deployment(),
        );
        assert_eq!(cmp, Comparison::default());
        // A created object's field set leaves them out; the rest is all there.
        let created = compare(None, Some(&tracked), &deployment());
        assert_eq!(
            created.added.to_fields_v1(),
            json!({"f:metadata": {"f:name": {}}, "f:spec": {"f:replicas": {}}})
        );
    }
}
