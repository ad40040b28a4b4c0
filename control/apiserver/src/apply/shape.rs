//! What each field of an object is to server-side apply: a struct, a map, a list of some
//! type, or a scalar. It decides how apply merges a field and how a field set names it.
//!
//! kube-apiserver reads this from its OpenAPI models. Here:
//! - a custom resource's schema says it: `properties` make a struct, `additionalProperties`
//!   (or `x-kubernetes-preserve-unknown-fields`) a map, `x-kubernetes-map-type: atomic`
//!   replaces one whole; arrays are atomic unless `x-kubernetes-list-type` is `set` or `map`
//!   (keyed by `x-kubernetes-list-map-keys`, whose `default`s fill in a missing key);
//! - a built-in kind's lists come from the strategic-merge-patch table (a `patchMergeKey`
//!   makes a keyed list, `merge` without a key a set, as kube falls back to them when
//!   `x-kubernetes-list-type` is unset), with the lists kube keys by two fields (container
//!   ports, Service ports); its maps and atomic structs (label selectors, references) are
//!   named below, and any other object is a struct.

use serde_json::Value;

use crate::registry::Resource;

/// How a list merges and names its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced whole, owned as one field.
    Atomic,
    /// Scalars, each an item named by its value.
    Set,
    /// Objects, each named by these key fields.
    Map(Vec<String>),
}

/// The shape of one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// An object of named fields; `atomic` ones are replaced whole.
    Struct {
        /// Replaced and owned whole.
        atomic: bool,
    },
    /// An object of arbitrary keys (labels, data); `atomic` ones are replaced whole.
    Map {
        /// Replaced and owned whole.
        atomic: bool,
    },
    /// A list.
    List(ListType),
    /// A string, number, boolean or null.
    Scalar,
}

impl Shape {
    /// Whether the value is owned and replaced as one field.
    pub fn is_leaf(&self) -> bool {
        matches!(
            self,
            Shape::Scalar
                | Shape::Struct { atomic: true }
                | Shape::Map { atomic: true }
                | Shape::List(ListType::Atomic)
        )
    }
}

/// Where in an object's schema a walk stands.
#[derive(Clone, Debug)]
pub enum Schema<'a> {
    /// A built-in kind, at this path of field names (list items add none).
    BuiltIn {
        /// The kind.
        kind: &'a str,
        /// Field names from the root.
        path: Vec<String>,
    },
    /// A custom resource's schema node (`None`: not described, shapes read from values).
    Custom {
        /// The schema node.
        node: Option<&'a Value>,
        /// Whether this is the object's root (whose `metadata` is ObjectMeta).
        root: bool,
    },
}

impl<'a> Schema<'a> {
    /// The root of `resource`'s objects.
    pub fn of(resource: &'a Resource) -> Schema<'a> {
        match &resource.custom {
            Some(custom) => Schema::Custom {
                node: Some(&custom.schema),
                root: true,
            },
            None => Schema::BuiltIn {
                kind: resource.kind,
                path: Vec::new(),
            },
        }
    }

    /// The schema of field `name` of this object.
    pub fn field(&self, name: &str) -> Schema<'a> {
        match self {
            Schema::BuiltIn { kind, path } => {
                let mut path = path.clone();
                path.push(name.to_owned());
                Schema::BuiltIn { kind, path }
            }
            Schema::Custom { root: true, .. } if name == "metadata" => Schema::BuiltIn {
                kind: "",
                path: vec!["metadata".into()],
            },
            Schema::Custom { node, .. } => {
                let child = node.and_then(|n| {
                    n.get("properties")
                        .and_then(|p| p.get(name))
                        .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
                });
                Schema::Custom {
                    node: child,
                    root: false,
                }
            }
        }
    }

    /// The schema of this list's items.
    pub fn item(&self) -> Schema<'a> {
        match self {
            Schema::BuiltIn { .. } => self.clone(),
            Schema::Custom { node, .. } => Schema::Custom {
                node: node.and_then(|n| n.get("items")),
                root: false,
            },
        }
    }

    /// The shape of `value` here.
    pub fn shape(&self, value: &Value) -> Shape {
        match self {
            Schema::BuiltIn { kind, path } => built_in_shape(kind, path, value),
            Schema::Custom { node, .. } => custom_shape(*node, value),
        }
    }

    /// The value a list item's missing key field takes (kube fills in defaulted keys).
    pub fn key_default(&self, key: &str) -> Option<Value> {
        match self {
            Schema::BuiltIn { .. } => (key == "protocol").then(|| Value::from("TCP")),
            Schema::Custom { node, .. } => node
                .and_then(|n| n.get("items"))
                .and_then(|items| items.get("properties"))
                .and_then(|p| p.get(key))
                .and_then(|k| k.get("default"))
                .cloned(),
        }
    }
}

fn custom_shape(node: Option<&Value>, value: &Value) -> Shape {
    let Some(node) = node else {
        return deduced_shape(value);
    };
    if node["x-kubernetes-int-or-string"] == true {
        return Shape::Scalar;
    }
    let atomic = node["x-kubernetes-map-type"] == "atomic";
    match (node["type"].as_str(), value) {
        (Some("object"), _) | (None, Value::Object(_)) => {
            if node.get("properties").is_some() || node["x-kubernetes-embedded-resource"] == true {
                Shape::Struct { atomic }
            } else {
                Shape::Map { atomic }
            }
        }
        (Some("array"), _) | (None, Value::Array(_)) => {
            Shape::List(match node["x-kubernetes-list-type"].as_str() {
                Some("set") => ListType::Set,
                Some("map") => ListType::Map(
                    node["x-kubernetes-list-map-keys"]
                        .as_array()
                        .map(|keys| {
                            keys.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => ListType::Atomic,
            })
        }
        _ => Shape::Scalar,
    }
}

/// A value no schema describes: objects are granular maps, lists atomic (as
/// structured-merge-diff's deduced type has them).
fn deduced_shape(value: &Value) -> Shape {
    match value {
        Value::Object(_) => Shape::Map { atomic: false },
        Value::Array(_) => Shape::List(ListType::Atomic),
        _ => Shape::Scalar,
    }
}

/// Map-typed fields of the built-in kinds (`map[string]...` in the Go types).
fn is_built_in_map(kind: &str, path: &[String]) -> bool {
    let Some(last) = path.last() else {
        return false;
    };
    match last.as_str() {
        "labels" | "annotations" => path.len() >= 2 && path[path.len() - 2] == "metadata",
        "matchLabels" | "nodeSelector" | "limits" | "requests" | "capacity" | "allocatable"
        | "hard" | "used" | "claims" => true,
        "data" | "binaryData" | "stringData" => path.len() == 1,
        "parameters" => kind == "StorageClass",
        "selector" => matches!(kind, "Service" | "ReplicationController") && path.len() == 2,
        _ => false,
    }
}

/// Structs kube marks `+structType=atomic`: label and node selectors, references.
fn is_built_in_atomic_struct(kind: &str, path: &[String]) -> bool {
    let Some(last) = path.last() else {
        return false;
    };
    match last.as_str() {
        "selector" => !matches!(kind, "Service" | "ReplicationController"),
        "namespaceSelector" | "labelSelector" | "podSelector" | "configMapKeyRef"
        | "secretKeyRef" | "fieldRef" | "resourceFieldRef" | "targetRef" | "involvedObject"
        | "dataSource" | "dataSourceRef" | "roleRef" => true,
        "requiredDuringSchedulingIgnoredDuringExecution" => {
            path.len() >= 2 && path[path.len() - 2] == "nodeAffinity"
        }
        _ => false,
    }
}

fn built_in_shape(kind: &str, path: &[String], value: &Value) -> Shape {
    match value {
        Value::Object(_) if is_built_in_atomic_struct(kind, path) => Shape::Struct { atomic: true },
        Value::Object(_) if is_built_in_map(kind, path) => Shape::Map { atomic: false },
        Value::Object(_) => Shape::Struct { atomic: false },
        Value::Array(_) => Shape::List(built_in_list(kind, path)),
        _ => Shape::Scalar,
    }
}

fn built_in_list(kind: &str, path: &[String]) -> ListType {
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    // Keyed by two fields in kube's OpenAPI (`+listMapKey` twice), one in the patch tags.
    match (kind, names.as_slice()) {
        ("Service", ["spec", "ports"]) => {
            return ListType::Map(vec!["port".into(), "protocol".into()])
        }
        (_, [.., "containers" | "initContainers" | "ephemeralContainers", "ports"]) => {
            return ListType::Map(vec!["containerPort".into(), "protocol".into()])
        }
        _ => {}
    }
    match crate::patch::patch_tags(kind, &names) {
        Some((strategy, Some(key))) if strategy.starts_with("merge") => {
            ListType::Map(vec![key.to_owned()])
        }
        Some((strategy, None)) if strategy.starts_with("merge") => ListType::Set,
        _ => ListType::Atomic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn built_in<'a>(kind: &'a str, path: &[&str]) -> Schema<'a> {
        path.iter().fold(
            Schema::BuiltIn {
                kind,
                path: Vec::new(),
            },
            |s, f| s.field(f),
        )
    }

    #[test]
    fn built_in_shapes() {
        let object = json!({});
        let list = json!([]);
        let cases = [
            (
                "Deployment",
                vec!["spec"],
                &object,
                Shape::Struct { atomic: false },
            ),
            (
                "Deployment",
                vec!["spec", "selector"],
                &object,
                Shape::Struct { atomic: true },
            ),
            (
                "Service",
                vec!["spec", "selector"],
                &object,
                Shape::Map { atomic: false },
            ),
            (
                "ConfigMap",
                vec!["data"],
                &object,
                Shape::Map { atomic: false },
            ),
            (
                "ConfigMap",
                vec!["metadata", "labels"],
                &object,
                Shape::Map { atomic: false },
            ),
            (
                "Deployment",
                vec!["spec", "template", "spec", "containers"],
                &list,
                Shape::List(ListType::Map(vec!["name".into()])),
            ),
            (
                "Pod",
                vec!["spec", "containers", "ports"],
                &list,
                Shape::List(ListType::Map(vec![
                    "containerPort".into(),
                    "protocol".into(),
                ])),
            ),
            (
                "Service",
                vec!["spec", "ports"],
                &list,
                Shape::List(ListType::Map(vec!["port".into(), "protocol".into()])),
            ),
            (
                "Pod",
                vec!["metadata", "finalizers"],
                &list,
                Shape::List(ListType::Set),
            ),
            (
                "Pod",
                vec!["spec", "tolerations"],
                &list,
                Shape::List(ListType::Atomic),
            ),
            (
                "Pod",
                vec!["spec", "containers", "args"],
                &list,
                Shape::List(ListType::Atomic),
            ),
        ];
        for (kind, path, value, shape) in cases {
            assert_eq!(built_in(kind, &path).shape(value), shape, "{kind} {path:?}");
        }
    }

    #[test]
    fn custom_shapes_follow_the_schema() {
        let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "hosts": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "rules": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name", "port"],
                "items": {"type": "object", "properties": {"name": {"type": "string"},
                    "port": {"type": "integer", "default": 80}}}},
            "args": {"type": "array", "items": {"type": "string"}},
            "limits": {"type": "object", "additionalProperties": {"type": "string"}},
            "ref": {"type": "object", "x-kubernetes-map-type": "atomic",
                "properties": {"name": {"type": "string"}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        }}}});
        let root = Schema::Custom {
            node: Some(&schema),
            root: true,
        };
        let spec = root.field("spec");
        assert_eq!(spec.shape(&json!({})), Shape::Struct { atomic: false });
        assert_eq!(
            spec.field("hosts").shape(&json!([])),
            Shape::List(ListType::Set)
        );
        let rules = spec.field("rules");
        assert_eq!(
            rules.shape(&json!([])),
            Shape::List(ListType::Map(vec!["name".into(), "port".into()]))
        );
        assert_eq!(rules.key_default("port"), Some(json!(80)));
        assert_eq!(
            spec.field("args").shape(&json!([])),
            Shape::List(ListType::Atomic)
        );
        assert_eq!(
            spec.field("limits").shape(&json!({})),
            Shape::Map { atomic: false }
        );
        assert_eq!(
            spec.field("ref").shape(&json!({})),
            Shape::Struct { atomic: true }
        );
        assert_eq!(
            spec.field("free").shape(&json!({})),
            Shape::Map { atomic: false }
        );
        assert_eq!(
            spec.field("free").field("x").shape(&json!({"a": 1})),
            Shape::Map { atomic: false }
        );
        assert_eq!(
            root.field("metadata").field("labels").shape(&json!({})),
            Shape::Map { atomic: false }
        );
    }
}
