//! Field sets: which fields of an object a manager owns, and their wire form, `FieldsV1`.
//!
//! A path runs from the object's root through elements: a field name (`f:spec`), a list item
//! named by its key fields (`k:{"name":"nginx"}`), an item of a set named by its value
//! (`v:"example.com/finalizer"`), or an index (`i:0`, accepted on decode; this server never
//! makes one). A [`Set`] is a tree of them as sigs.k8s.io/structured-merge-diff keeps it:
//! at each node, the elements that are members of the set themselves, and the children
//! under which deeper members lie. In `FieldsV1` a member with children carries `".": {}`:
//!
//! ```text
//! {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
//!  "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    /// A field of an object.
    Field(String),
    /// An item of an associative list, by its key fields (sorted by name; values as JSON).
    Key(Vec<(String, String)>),
    /// An item of a set list, by its value (as JSON).
    Value(String),
    /// A list item by position.
    Index(i64),
}

impl Element {
    /// The `FieldsV1` key: `f:name`, `k:{...}`, `v:...`, `i:N`.
    fn encode(&self) -> String {
        match self {
            Element::Field(name) => format!("f:{name}"),
            Element::Key(fields) => {
                let object: Map<String, Value> = fields
                    .iter()
                    .map(|(name, json)| {
                        let value = serde_json::from_str(json).unwrap_or(Value::Null);
                        (name.clone(), value)
                    })
                    .collect();
                format!("k:{}", Value::Object(object))
            }
            Element::Value(json) => format!("v:{json}"),
            Element::Index(index) => format!("i:{index}"),
        }
    }

    fn decode(text: &str) -> Result<Element, String> {
        let (prefix, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("unknown path element {text:?}"))?;
        match prefix {
            "f" => Ok(Element::Field(rest.to_owned())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(fields)) => Ok(key_element(fields)),
                _ => Err(format!("parsing key element {rest:?}: not a JSON object")),
            },
            "v" => serde_json::from_str::<Value>(rest)
                .map(|value| Element::Value(value.to_string()))
                .map_err(|e| format!("parsing value element {rest:?}: {e}")),
            "i" => rest
                .parse()
                .map(Element::Index)
                .map_err(|e| format!("parsing index element {rest:?}: {e}")),
            _ => Err(format!("unknown path element {text:?}")),
        }
    }
}

/// The element naming a list item by `fields` (its key fields and their values).
pub fn key_element(fields: impl IntoIterator<Item = (String, Value)>) -> Element {
    let mut fields: Vec<(String, String)> = fields
        .into_iter()
        .map(|(name, value)| (name, value.to_string()))
        .collect();
    fields.sort();
    Element::Key(fields)
}

/// As structured-merge-diff prints a path in conflict messages: `.spec.replicas`,
/// `.spec.containers[name="web"].image`, `.metadata.finalizers[="x"]`.
impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Field(name) => write!(f, ".{name}"),
            Element::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(name, json)| format!("{name}={json}"))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            Element::Value(json) => write!(f, "[={json}]"),
            Element::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path from the object's root.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<Element>);

impl Path {
    /// This path, one element further.
    pub fn child(&self, element: Element) -> Path {
        let mut elements = self.0.clone();
        elements.push(element);
        Path(elements)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|e| write!(f, "{e}"))
    }
}

/// A set of paths, as a tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    /// Elements below this node that are in the set themselves.
    pub members: BTreeSet<Element>,
    /// Elements below this node with members deeper down.
    pub children: BTreeMap<Element, Set>,
}

impl Set {
    /// Whether no path is in the set.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// Adds `path` (the empty path, the root, is never a member).
    pub fn insert(&mut self, path: &Path) {
        let Some((last, parents)) = path.0.split_last() else {
            return;
        };
        let mut node = self;
        for element in parents {
            node = node.children.entry(element.clone()).or_default();
        }
        node.members.insert(last.clone());
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &Path) -> bool {
        let Some((last, parents)) = path.0.split_last() else {
            return false;
        };
        let mut node = self;
        for element in parents {
            match node.children.get(element) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    /// Every path in this set or `other`.
    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (element, child) in &other.children {
            let merged = match out.children.get(element) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(element.clone(), merged);
        }
        out
    }

    /// The paths of this set that are not in `other`.
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            let left = match other.children.get(element) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !left.is_empty() {
                children.insert(element.clone(), left);
            }
        }
        Set { members, children }
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(element.clone(), both);
                }
            }
        }
        Set { members, children }
    }

    /// Every member path, in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&Path::default(), &mut out);
        out
    }

    fn collect(&self, prefix: &Path, out: &mut Vec<Path>) {
        let elements: BTreeSet<&Element> =
            self.members.iter().chain(self.children.keys()).collect();
        for element in elements {
            let path = prefix.child(element.clone());
            if self.members.contains(element) {
                out.push(path.clone());
            }
            if let Some(child) = self.children.get(element) {
                child.collect(&path, out);
            }
        }
    }

    /// The `FieldsV1` form.
    pub fn to_fields_v1(&self) -> Value {
        let mut object = Map::new();
        for member in &self.members {
            if self.children.get(member).is_none_or(Set::is_empty) {
                object.insert(member.encode(), Value::Object(Map::new()));
            }
        }
        for (element, child) in &self.children {
            if child.is_empty() {
                continue;
            }
            let mut encoded = child.to_fields_v1();
            if self.members.contains(element) {
                if let Some(map) = encoded.as_object_mut() {
                    map.insert(".".into(), Value::Object(Map::new()));
                }
            }
            object.insert(element.encode(), encoded);
        }
        Value::Object(object)
    }

    /// Reads `FieldsV1`; an error names what does not parse.
    pub fn from_fields_v1(fields: &Value) -> Result<Set, String> {
        let object = fields
            .as_object()
            .ok_or_else(|| "FieldsV1 must be a JSON object".to_owned())?;
        let mut set = Set::default();
        for (key, value) in object {
            if key == "." {
                continue;
            }
            let element = Element::decode(key)?;
            let inner = value
                .as_object()
                .ok_or_else(|| format!("the value of {key:?} must be a JSON object"))?;
            if inner.is_empty() || inner.contains_key(".") {
                set.members.insert(element.clone());
            }
            let child = Set::from_fields_v1(value)?;
            if !child.is_empty() {
                set.children.insert(element, child);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str) -> Element {
        Element::Field(name.into())
    }

    fn path(elements: &[Element]) -> Path {
        Path(elements.to_vec())
    }

    #[test]
    fn fields_v1_round_trips() {
        let cases = [
            json!({"f:spec": {"f:replicas": {}}}),
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}),
            json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}}}),
            json!({"f:metadata": {"f:finalizers": {".": {}, "v:\"example.com/x\"": {}}}}),
            json!({"f:list": {"i:0": {}}}),
        ];
        for case in cases {
            let set = Set::from_fields_v1(&case).unwrap();
            assert_eq!(set.to_fields_v1(), case, "{case}");
        }
    }

    #[test]
    fn bad_fields_v1_is_refused() {
        for (bad, why) in [
            (json!([]), "must be a JSON object"),
            (json!({"x:y": {}}), "unknown path element"),
            (json!({"k:notjson": {}}), "parsing key element"),
            (json!({"f:a": 1}), "must be a JSON object"),
        ] {
            let err = Set::from_fields_v1(&bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn paths_print_as_structured_merge_diff_does() {
        let key = key_element([("name".to_owned(), json!("web"))]);
        let ports = key_element([
            ("protocol".to_owned(), json!("TCP")),
            ("port".to_owned(), json!(80)),
        ]);
        let cases = [
            (path(&[field("spec"), field("replicas")]), ".spec.replicas"),
            (
                path(&[field("spec"), field("containers"), key, field("image")]),
                ".spec.containers[name=\"web\"].image",
            ),
            (
                path(&[field("spec"), field("ports"), ports]),
                ".spec.ports[port=80,protocol=\"TCP\"]",
            ),
            (
                path(&[
                    field("metadata"),
                    field("finalizers"),
                    Element::Value("\"x\"".into()),
                ]),
                ".metadata.finalizers[=\"x\"]",
            ),
        ];
        for (path, printed) in cases {
            assert_eq!(path.to_string(), printed);
        }
    }

    #[test]
    fn set_algebra() {
        let a = path(&[field("spec"), field("replicas")]);
        let b = path(&[field("spec"), field("paused")]);
        let c = path(&[field("metadata"), field("labels"), field("app")]);
        let mut left = Set::default();
        left.insert(&a);
        left.insert(&b);
        let mut right = Set::default();
        right.insert(&b);
        right.insert(&c);
        assert_eq!(
            left.union(&right).paths(),
            vec![c.clone(), b.clone(), a.clone()]
        );
        assert_eq!(left.difference(&right).paths(), vec![a.clone()]);
        assert_eq!(left.intersection(&right).paths(), vec![b.clone()]);
        assert!(left.difference(&left).is_empty());
        assert!(left.has(&a) && !left.has(&c) && !left.has(&Path::default()));
    }
}
