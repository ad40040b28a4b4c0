//! `fieldValidation`: what create, update and patch do with fields a kind's schema does not
//! have and with keys a JSON object repeats, as kube-apiserver's strict decoding does.
//!
//! - `Strict`: the request fails (400 for a body, 422 for a patch) and nothing is stored.
//! - `Warn`, kube's default: the request goes through and each problem becomes a warning.
//! - `Ignore`: nothing is said.
//!
//! Whatever the mode, the object stored has no unknown fields, as decoding into kube's Go types
//! drops them, and of a repeated key the last value wins.
//!
//! Problems are found in one pass over the JSON text, in document order, worded as
//! `sigs.k8s.io/json` words them: `unknown field "spec.foo"`, `duplicate field "spec.paused"`,
//! `[0]` for list items. A field both unknown and repeated is reported once, as unknown. Maps
//! (`additionalProperties`) take any key; objects with neither properties nor
//! `additionalProperties` (RawExtension), and int-or-string values, are taken whole.

use std::collections::HashSet;
use std::fmt;
use std::result::Result as StdResult;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::admission::FieldError;
use crate::error::{ApiError, Result};
use crate::go_format::go_quote;
use crate::patch::PatchType;
use crate::request::Query;
use crate::rest::{Api, Call};
use crate::schema::{Gvk, Schemas};

/// What `fieldValidation` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown and duplicate fields pass silently.
    Ignore,
    /// Each one is a warning; the request goes through.
    Warn,
    /// Any one fails the request.
    Strict,
}

impl FieldValidation {
    /// From the query; `options` names the options kind in the error for a value kube does not
    /// know (`CreateOptions`, `UpdateOptions`, `PatchOptions`).
    pub fn from_query(query: &Query, options: &str) -> Result<FieldValidation> {
        match query.get("fieldValidation").unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(ApiError::invalid(
                options,
                "meta.k8s.io",
                "",
                &[FieldError {
                    reason: "FieldValueNotSupported",
                    field: "fieldValidation".into(),
                    message: format!(
                        "Unsupported value: {}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"",
                        go_quote(other)
                    ),
                }],
            )),
        }
    }
}

/// More problems than this are not reported (as in `sigs.k8s.io/json`).
const MAX_PROBLEMS: usize = 100;

/// Reads `json` against `schema` (resolved through `schemas`): the value without unknown
/// fields, and the problems in document order.
pub fn decode(
    schemas: &Schemas,
    schema: &Value,
    json: &[u8],
) -> serde_json::Result<(Value, Vec<String>)> {
    let mut problems = Problems::default();
    let shape = Shape::of(schemas, schema);
    let value = read(json, schemas, shape, &mut problems)?;
    Ok((value, problems.list))
}

/// The keys `json` repeats, whatever it is (a merge or strategic merge patch).
pub fn duplicates(schemas: &Schemas, json: &[u8]) -> serde_json::Result<Vec<String>> {
    let mut problems = Problems::default();
    read(json, schemas, Shape::Untyped, &mut problems)?;
    Ok(problems.list)
}

fn read<'s>(
    json: &[u8],
    schemas: &'s Schemas,
    shape: Shape<'s>,
    problems: &mut Problems,
) -> serde_json::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = Walker {
        schemas,
        shape,
        path: String::new(),
        problems,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

impl Api {
    /// The body of a create or update (of `gvk`): the object without unknown fields, after
    /// `fieldValidation` has had its say.
    pub(crate) fn typed_body(&self, call: &Call<'_>, options: &str, gvk: Gvk) -> Result<Value> {
        let validation = FieldValidation::from_query(call.query, options)?;
        // Malformed bodies and wrong media types get the errors they always got.
        let plain = call.json_body()?;
        let schemas = self.openapi.schemas();
        let (object, problems) = match &call.resource.custom {
            Some(custom) if gvk == Gvk::of(call.resource) => {
                let mut object = plain.clone();
                let problems = crate::crd::objects::prune(custom, &mut object);
                (object, problems)
            }
            _ => {
                let Some(schema) = schemas.kind(gvk) else {
                    return Ok(plain);
                };
                decode(schemas, schema, call.body)
                    .map_err(|e| ApiError::bad_request(format!("json parse error: {e}")))?
            }
        };
        if problems.is_empty() {
            return Ok(object);
        }
        match validation {
            FieldValidation::Ignore => {}
            FieldValidation::Warn => problems.iter().for_each(|p| call.warnings.add(p.clone())),
            FieldValidation::Strict => {
                // The kind and version the body claims, as kube's decoder reports them.
                let kind = plain["kind"].as_str().filter(|k| !k.is_empty());
                let version = plain["apiVersion"]
                    .as_str()
                    .map(|v| v.rsplit('/').next().unwrap_or(v));
                return Err(ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                    kind.unwrap_or(gvk.kind),
                    version.filter(|v| !v.is_empty()).unwrap_or(gvk.version),
                    gvk.kind,
                    problems.join(", ")
                )));
            }
        }
        Ok(object)
    }

    /// The problems of a patch's own text: repeated keys, and for a JSON patch operations
    /// with fields an operation does not have. Checked once, before the patch is applied.
    pub(crate) fn patch_problems(
        &self,
        validation: FieldValidation,
        patch_type: PatchType,
        body: &[u8],
    ) -> Vec<String> {
        if validation == FieldValidation::Ignore {
            return Vec::new();
        }
        let schemas = self.openapi.schemas();
        let found = match patch_type {
            PatchType::Json => decode(schemas, &json_patch_schema(), body).map(|(_, found)| {
                found
                    .into_iter()
                    .map(|p| format!("json patch {p}"))
                    .collect()
            }),
            PatchType::Merge | PatchType::StrategicMerge => duplicates(schemas, body),
        };
        // A patch that does not parse fails when it is applied, with its own message.
        found.unwrap_or_default()
    }

    /// A patched object (of `gvk`) without unknown fields, after `fieldValidation` has had its
    /// say about them and about `patch_problems`.
    pub(crate) fn checked_patch(
        &self,
        call: &Call<'_>,
        validation: FieldValidation,
        patch_type: PatchType,
        patch_problems: &[String],
        gvk: Gvk,
        patched: Value,
    ) -> Result<Value> {
        let schemas = self.openapi.schemas();
        let (object, found) = match &call.resource.custom {
            Some(custom) if gvk == Gvk::of(call.resource) => {
                let mut object = patched.clone();
                let found = crate::crd::objects::prune(custom, &mut object);
                (object, found)
            }
            _ => {
                let Some(schema) = schemas.kind(gvk) else {
                    return Ok(patched);
                };
                // The patched object is read back from its JSON text, keys in sorted order:
                // the order kube reports the unknown fields of a patched object in.
                let text = serde_json::to_vec(&patched).map_err(ApiError::internal)?;
                decode(schemas, schema, &text).map_err(ApiError::internal)?
            }
        };
        let problems: Vec<String> = patch_problems.iter().cloned().chain(found).collect();
        if problems.is_empty() {
            return Ok(object);
        }
        match validation {
            FieldValidation::Ignore => {}
            FieldValidation::Warn => problems.iter().for_each(|p| call.warnings.add(p.clone())),
            FieldValidation::Strict => {
                // kube shows the patch as Go prints a map (strategic merge) or the patched
                // object as Go encodes it (JSON and merge patches).
                let shown = match patch_type {
                    PatchType::StrategicMerge => serde_json::from_slice::<Value>(call.body)
                        .map(|patch| go_print(&patch))
                        .unwrap_or_default(),
                    PatchType::Json | PatchType::Merge => go_json(&patched),
                };
                return Err(ApiError::invalid(
                    "",
                    "",
                    "",
                    &[FieldError {
                        reason: "FieldValueInvalid",
                        field: "patch".into(),
                        message: format!(
                            "Invalid value: {}: strict decoding error: {}",
                            go_quote(&shown),
                            problems.join(", ")
                        ),
                    }],
                ));
            }
        }
        Ok(object)
    }
}

/// A JSON patch as kube decodes it strictly: a list of operations with these fields.
fn json_patch_schema() -> Value {
    let text = json!({"type": "string"});
    json!({"type": "array", "items": {"type": "object", "properties": {
        "op": text, "path": text, "from": text, "value": {},
    }}})
}

#[derive(Default)]
struct Problems {
    list: Vec<String>,
    seen: HashSet<String>,
}

impl Problems {
    fn unknown(&mut self, path: &str) {
        self.push(format!("unknown field {}", go_quote(path)));
    }

    fn duplicate(&mut self, path: &str) {
        self.push(format!("duplicate field {}", go_quote(path)));
    }

    fn push(&mut self, problem: String) {
        if self.list.len() < MAX_PROBLEMS && self.seen.insert(problem.clone()) {
            self.list.push(problem);
        }
    }
}

/// What the walker knows of a value.
#[derive(Clone, Copy)]
enum Shape<'s> {
    /// Described by a (resolved) schema.
    Typed(&'s Value),
    /// Any JSON: only repeated keys are problems.
    Untyped,
    /// Taken whole, unchecked.
    Opaque,
}

impl<'s> Shape<'s> {
    fn of(schemas: &'s Schemas, schema: &'s Value) -> Shape<'s> {
        let schema = schemas.resolve(schema);
        let flag = |name: &str| schema.get(name).and_then(Value::as_bool) == Some(true);
        if flag("x-kubernetes-preserve-unknown-fields") || flag("x-kubernetes-int-or-string") {
            Shape::Opaque
        } else if schema.get("type").is_none()
            && schema.get("properties").is_none()
            && schema.get("items").is_none()
        {
            Shape::Untyped
        } else {
            Shape::Typed(schema)
        }
    }
}

/// How the keys of one object are checked.
#[derive(Clone, Copy)]
enum Keys<'s> {
    /// A struct: these properties, nothing else.
    Fields(&'s Map<String, Value>),
    /// A map: any key, each value of this shape.
    Map(Shape<'s>),
    /// A free-form object, taken whole.
    Whole,
}

struct Walker<'s, 'p> {
    schemas: &'s Schemas,
    shape: Shape<'s>,
    path: String,
    problems: &'p mut Problems,
}

impl<'s> Walker<'s, '_> {
    fn keys(&self) -> Keys<'s> {
        let schema = match self.shape {
            Shape::Typed(schema) => schema,
            Shape::Untyped => return Keys::Map(Shape::Untyped),
            Shape::Opaque => return Keys::Whole,
        };
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            return Keys::Fields(properties);
        }
        match schema.get("additionalProperties") {
            Some(values @ Value::Object(_)) => Keys::Map(Shape::of(self.schemas, values)),
            _ => Keys::Whole,
        }
    }

    fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walker<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> StdResult<Value, D::Error> {
        match self.shape {
            Shape::Opaque => Value::deserialize(deserializer),
            _ => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Walker<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> StdResult<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> StdResult<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> StdResult<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> StdResult<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> StdResult<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> StdResult<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> StdResult<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> StdResult<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> StdResult<Value, A::Error> {
        let items = match self.shape {
            Shape::Typed(schema) => schema
                .get("items")
                .map_or(Shape::Opaque, |items| Shape::of(self.schemas, items)),
            shape => shape,
        };
        let mut out = Vec::new();
        loop {
            let walker = Walker {
                schemas: self.schemas,
                shape: items,
                path: format!("{}[{}]", self.path, out.len()),
                problems: &mut *self.problems,
            };
            match seq.next_element_seed(walker)? {
                Some(value) => out.push(value),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> StdResult<Value, A::Error> {
        let keys = self.keys();
        let mut out = Map::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = self.child(&key);
            let shape = match keys {
                Keys::Fields(properties) => match properties.get(&key) {
                    Some(property) => Shape::of(self.schemas, property),
                    None => {
                        self.problems.unknown(&path);
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                },
                Keys::Map(shape) => shape,
                Keys::Whole => {
                    out.insert(key, map.next_value()?);
                    continue;
                }
            };
            if !seen.insert(key.clone()) {
                self.problems.duplicate(&path);
            }
            let walker = Walker {
                schemas: self.schemas,
                shape,
                path,
                problems: &mut *self.problems,
            };
            out.insert(key, map.next_value_seed(walker)?);
        }
        Ok(Value::Object(out))
    }
}

/// A JSON value as Go's `%+v` prints the map it decodes to: `map[a:1 b:[x y]]`, keys sorted.
fn go_print(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => go_float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_print).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

/// Go's `%v` of a float64: the shortest digits, with an exponent below 1e-4 and from 1e6 up.
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        f.to_string()
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// A value as Go's `json.Marshal` writes it: compact, keys sorted, `<`, `>` and `&` escaped.
fn go_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    const DEPLOYMENT: Gvk = Gvk {
        group: "apps",
        version: "v1",
        kind: "Deployment",
    };

    fn schemas() -> Schemas {
        Schemas::of(&Registry::default())
    }

    /// kube's own case (test/integration/apiserver/field_validation_test.go): the same
    /// problems, in the same order.
    #[test]
    fn a_body_reports_what_kube_reports_in_document_order() {
        let body = r#"{
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "dupename", "name": "d", "labels": {"app": "nginx"},
                         "unknownMeta": "metaVal"},
            "spec": {
                "unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
                "paused": true, "paused": false,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{
                    "name": "nginx", "image": "nginx:latest", "unknownNested": "val1",
                    "imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}}}}"#;
        let schemas = schemas();
        let schema = schemas.kind(DEPLOYMENT).unwrap();
        let (object, problems) = decode(&schemas, schema, body.as_bytes()).unwrap();
        assert_eq!(
            problems.join(", "),
            r#"duplicate field "metadata.name", unknown field "metadata.unknownMeta", unknown field "spec.unknown1", unknown field "spec.unknownDupe", duplicate field "spec.paused", unknown field "spec.template.spec.containers[0].unknownNested", duplicate field "spec.template.spec.containers[0].imagePullPolicy""#
        );
        assert_eq!(object["metadata"]["name"], "d");
        assert_eq!(object["spec"]["paused"], false);
        assert!(object["spec"].get("unknown1").is_none());
        let container = &object["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["imagePullPolicy"], "Never");
        assert!(container.get("unknownNested").is_none());
    }

    /// A patch re-reads the whole stored object, defaults included: they must all be known.
    #[test]
    fn defaulted_objects_have_only_known_fields() {
        let schemas = schemas();
        let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
                "resources": {"limits": {"cpu": "1"}}}],
            "volumes": [{"name": "v", "secret": {"secretName": "s"}}]}});
        let selector = json!({"matchLabels": {"app": "x"}});
        let objects = [
            ("", "Pod", template["spec"].clone()),
            (
                "apps",
                "Deployment",
                json!({"selector": selector, "template": template}),
            ),
            (
                "apps",
                "ReplicaSet",
                json!({"selector": selector, "template": template}),
            ),
            (
                "apps",
                "DaemonSet",
                json!({"selector": selector, "template": template}),
            ),
            (
                "apps",
                "StatefulSet",
                json!({"selector": selector, "template": template,
                "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {}}]}),
            ),
            ("batch", "Job", json!({"template": template})),
            (
                "batch",
                "CronJob",
                json!({"schedule": "* * * * *",
                "jobTemplate": {"spec": {"template": template}}}),
            ),
            (
                "",
                "Service",
                json!({"ports": [{"port": 80}], "selector": {"app": "x"}}),
            ),
            ("", "Namespace", json!({})),
            ("", "Node", json!({})),
        ];
        for (group, kind, spec) in objects {
            let gvk = Gvk {
                group,
                version: "v1",
                kind,
            };
            let mut object = json!({"metadata": {"name": "x", "namespace": "d"}, "spec": spec});
            crate::admission::apply_defaults(kind, &mut object);
            let text = serde_json::to_vec(&object).unwrap();
            let (_, problems) = decode(&schemas, schemas.kind(gvk).unwrap(), &text).unwrap();
            assert!(problems.is_empty(), "{kind}: {problems:?}");
        }
    }

    #[test]
    fn maps_raw_extensions_and_int_or_strings_take_any_key() {
        let schemas = schemas();
        let pod = schemas
            .kind(Gvk {
                group: "",
                version: "v1",
                kind: "Pod",
            })
            .unwrap();
        let body = r#"{"metadata": {"annotations": {"any/key": "x"},
            "managedFields": [{"fieldsV1": {"f:spec": {"f:anything": {}}}}]},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 1}},
                "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"port": "http"}}}]}}"#;
        let (object, problems) = decode(&schemas, pod, body.as_bytes()).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            object["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"],
            json!({"f:anything": {}})
        );
    }

    #[test]
    fn a_patch_reports_its_repeated_keys_and_a_json_patch_its_extra_fields() {
        let schemas = schemas();
        let merge = r#"{"spec": {"paused": true, "paused": false, "x": [{"a": 1, "a": 2}]}}"#;
        assert_eq!(
            duplicates(&schemas, merge.as_bytes()).unwrap(),
            [
                r#"duplicate field "spec.paused""#,
                r#"duplicate field "spec.x[0].a""#
            ]
        );
        let ops = r#"[{"op": "add", "path": "/spec/a", "value": 1, "foo": "bar"},
                      {"op": "add", "path": "/a", "path": "/b", "value": 1}]"#;
        let (_, problems) = decode(&schemas, &json_patch_schema(), ops.as_bytes()).unwrap();
        assert_eq!(
            problems,
            [
                r#"unknown field "[0].foo""#,
                r#"duplicate field "[1].path""#
            ]
        );
    }

    #[test]
    fn unknown_field_validation_values_are_refused() {
        let query = Query::parse(Some("fieldValidation=Loud"));
        let error = FieldValidation::from_query(&query, "CreateOptions").unwrap_err();
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": supported values: "", "Ignore", "Strict", "Warn""#
        );
        assert_eq!(
            FieldValidation::from_query(&Query::default(), "CreateOptions").unwrap(),
            FieldValidation::Warn
        );
    }

    #[test]
    fn values_print_as_go_prints_them() {
        let patch = json!({"spec": {"b": [1, "x", null], "a": 1.5, "big": 1e21, "t": true}});
        assert_eq!(
            go_print(&patch),
            "map[spec:map[a:1.5 b:[1 x <nil>] big:1e+21 t:true]]"
        );
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(
            go_json(&json!({"a": "<&>"})),
            r#"{"a":"\u003c\u0026\u003e"}"#
        );
    }
}
