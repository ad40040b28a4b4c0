//! The OpenAPI schemas of the served kinds, taken from `k8s-openapi`: its `schemars` feature
//! gives each type of the Kubernetes 1.33 API the schema of kube's own spec (descriptions,
//! properties, required fields). Nothing here is written by hand except the `<Kind>List`
//! wrappers, which kube also derives the same way for every kind.
//!
//! One generator walks every kind the registry serves (and the kinds of their subresources);
//! the definitions it collects serve both the OpenAPI documents ([`crate::openapi`]) and field
//! validation ([`crate::field_validation`]).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{apps, autoscaling, batch, coordination, core, discovery, events};
use k8s_openapi::api::{node, policy, rbac};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use k8s_openapi::schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::registry::{Registry, Resource, Subresource};

/// Where references point: `#/components/schemas/<name>`.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// A kind: its group ("" for core), version and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gvk {
    /// Group.
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
}

impl Gvk {
    /// The kind a resource serves.
    pub fn of(resource: &Resource) -> Gvk {
        Gvk {
            group: resource.group,
            version: resource.version,
            kind: resource.kind,
        }
    }

    /// The `x-kubernetes-group-version-kind` object of an operation.
    pub fn to_json(self) -> Value {
        json!({"group": self.group, "version": self.version, "kind": self.kind})
    }
}

/// The kind a subresource reads and writes, given its resource's kind.
pub fn subresource_kind(sub: Subresource, main: Gvk) -> Gvk {
    match sub {
        Subresource::Status | Subresource::Finalize | Subresource::Approval | Subresource::Log => {
            main
        }
        Subresource::Exec => Gvk {
            group: "",
            version: "v1",
            kind: "PodExecOptions",
        },
        Subresource::Attach => Gvk {
            group: "",
            version: "v1",
            kind: "PodAttachOptions",
        },
        Subresource::PortForward => Gvk {
            group: "",
            version: "v1",
            kind: "PodPortForwardOptions",
        },
        Subresource::Scale => Gvk {
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
        },
        Subresource::Binding => Gvk {
            group: "",
            version: "v1",
            kind: "Binding",
        },
        Subresource::Eviction => Gvk {
            group: "policy",
            version: "v1",
            kind: "Eviction",
        },
        Subresource::Token => Gvk {
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
        },
    }
}

/// The schemas of the served kinds and of every type they reference.
#[derive(Debug)]
pub struct Schemas {
    definitions: Map<String, Value>,
    kinds: BTreeMap<Gvk, String>,
    lists: BTreeMap<Gvk, String>,
}

impl Schemas {
    /// The schemas of what `registry` serves.
    pub fn of(registry: &Registry) -> Schemas {
        let mut generator = SchemaSettings::openapi3().into_generator();
        let mut kinds = BTreeMap::new();
        for resource in registry.built_in() {
            let main = Gvk::of(resource);
            let subresource_kinds = resource
                .subresources
                .iter()
                .map(|sub| subresource_kind(*sub, main));
            for gvk in std::iter::once(main).chain(subresource_kinds) {
                if let Some(name) = kind_definition(&mut generator, gvk) {
                    kinds.insert(gvk, name);
                }
            }
        }
        // What the operations of every document name besides the kinds.
        for name in [
            definition::<meta::ListMeta>(&mut generator),
            definition::<meta::DeleteOptions>(&mut generator),
            definition::<meta::Status>(&mut generator),
            definition::<meta::Patch>(&mut generator),
        ] {
            debug_assert!(name.is_some());
        }
        let mut definitions = generator.take_definitions(true);
        let list_meta = definition_name::<meta::ListMeta>();
        let mut lists = BTreeMap::new();
        for resource in registry.built_in() {
            let gvk = Gvk::of(resource);
            let Some(name) = kinds.get(&gvk) else {
                continue;
            };
            let list = format!("{name}List");
            definitions.insert(list.clone(), list_schema(gvk, name, &list_meta));
            lists.insert(gvk, list);
        }
        add_patch_tags(&mut definitions, &kinds);
        for (gvk, name) in &kinds {
            if let Some(Value::Object(schema)) = definitions.get_mut(name) {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{"group": gvk.group, "kind": gvk.kind, "version": gvk.version}]),
                );
            }
        }
        Schemas {
            definitions,
            kinds,
            lists,
        }
    }

    /// The definition name of a kind's schema, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub fn name_of(&self, gvk: Gvk) -> Option<&str> {
        self.kinds.get(&gvk).map(String::as_str)
    }

    /// The definition name of a kind's list.
    pub fn list_name_of(&self, gvk: Gvk) -> Option<&str> {
        self.lists.get(&gvk).map(String::as_str)
    }

    /// A kind's schema.
    pub fn kind(&self, gvk: Gvk) -> Option<&Value> {
        self.definitions.get(self.name_of(gvk)?)
    }

    /// A definition by name.
    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.definitions.get(name)
    }

    /// The schema itself behind references: `{"$ref": ...}` and the `{"allOf": [{"$ref":
    /// ...}], "description": ...}` a described field of a named type is.
    pub fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..8 {
            if let Some(name) = ref_name(schema) {
                match self.definitions.get(name) {
                    Some(target) => schema = target,
                    None => return schema,
                }
            } else if let Some([only]) = schema
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                schema = only;
            } else {
                return schema;
            }
        }
        schema
    }

    /// The definitions named, with every definition they reference, directly or not.
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> Map<String, Value> {
        let mut pending: Vec<String> = roots.into_iter().map(str::to_owned).collect();
        let mut seen = BTreeSet::new();
        let mut out = Map::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(schema) = self.definitions.get(&name) {
                collect_refs(schema, &mut pending);
                out.insert(name, schema.clone());
            }
        }
        out
    }
}

/// The definition a `$ref` schema names.
pub fn ref_name(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix(REF_PREFIX)
}

/// Marks the fields strategic merge patch merges (rather than replaces) as kube's spec does,
/// from the server's own table ([`crate::patch::patch_tags`]): kubectl computes `apply`'s
/// patches from these marks, so they must say what the server applies.
fn add_patch_tags(definitions: &mut Map<String, Value>, kinds: &BTreeMap<Gvk, String>) {
    let mut tags = Vec::new();
    for (gvk, name) in kinds {
        collect_patch_tags(definitions, gvk.kind, name, &mut Vec::new(), &mut tags);
    }
    for (definition, field, (strategy, merge_key)) in tags {
        let property = definitions
            .get_mut(&definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(&field))
            .and_then(Value::as_object_mut);
        if let Some(property) = property {
            property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
            if let Some(key) = merge_key {
                property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            }
        }
    }
}

type PatchTag = (String, String, (&'static str, Option<&'static str>));

/// The tags of the fields of definition `name`, reached from `kind` along `path`, and of the
/// definitions below it.
fn collect_patch_tags(
    definitions: &Map<String, Value>,
    kind: &str,
    name: &str,
    path: &mut Vec<String>,
    into: &mut Vec<PatchTag>,
) {
    // The served kinds nest no deeper; the bound keeps a recursive type from looping.
    if path.len() > 12 {
        return;
    }
    let Some(properties) = definitions
        .get(name)
        .and_then(|d| d.get("properties"))
        .and_then(Value::as_object)
    else {
        return;
    };
    for (field, schema) in properties {
        path.push(field.clone());
        let fields: Vec<&str> = path.iter().map(String::as_str).collect();
        if let Some(tags) = crate::patch::patch_tags(kind, &fields) {
            into.push((name.to_owned(), field.clone(), tags));
        }
        // A field of a named type, or a list of one.
        let values = schema.get("items").unwrap_or(schema);
        let named = ref_name(values).or_else(|| values.get("allOf")?.get(0).and_then(ref_name));
        if let Some(named) = named {
            collect_patch_tags(definitions, kind, named, path, into);
        }
        path.pop();
    }
}

fn collect_refs(schema: &Value, into: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = ref_name(schema) {
                into.push(name.to_owned());
            }
            map.values().for_each(|v| collect_refs(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, into)),
        _ => {}
    }
}

fn definition<T: JsonSchema>(generator: &mut SchemaGenerator) -> Option<String> {
    ref_name(generator.subschema_for::<T>().as_value()).map(str::to_owned)
}

fn definition_name<T: JsonSchema>() -> String {
    T::schema_name().into_owned()
}

/// Adds a kind's schema to `generator`, returning its definition name; `None` for a kind the
/// table does not know.
fn kind_definition(generator: &mut SchemaGenerator, gvk: Gvk) -> Option<String> {
    let g = generator;
    match (gvk.group, gvk.version, gvk.kind) {
        ("", "v1", "Namespace") => definition::<core::v1::Namespace>(g),
        ("", "v1", "Node") => definition::<core::v1::Node>(g),
        ("", "v1", "Pod") => definition::<core::v1::Pod>(g),
        ("", "v1", "Binding") => definition::<core::v1::Binding>(g),
        ("", "v1", "Service") => definition::<core::v1::Service>(g),
        ("", "v1", "Endpoints") => definition::<core::v1::Endpoints>(g),
        ("", "v1", "ConfigMap") => definition::<core::v1::ConfigMap>(g),
        ("", "v1", "Secret") => definition::<core::v1::Secret>(g),
        ("", "v1", "ServiceAccount") => definition::<core::v1::ServiceAccount>(g),
        ("", "v1", "Event") => definition::<core::v1::Event>(g),
        ("certificates.k8s.io", "v1", "CertificateSigningRequest") => {
            definition::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>(g)
        }
        ("", "v1", "LimitRange") => definition::<core::v1::LimitRange>(g),
        ("", "v1", "ResourceQuota") => definition::<core::v1::ResourceQuota>(g),
        ("apps", "v1", "Deployment") => definition::<apps::v1::Deployment>(g),
        ("apps", "v1", "ReplicaSet") => definition::<apps::v1::ReplicaSet>(g),
        ("apps", "v1", "DaemonSet") => definition::<apps::v1::DaemonSet>(g),
        ("apps", "v1", "StatefulSet") => definition::<apps::v1::StatefulSet>(g),
        ("apps", "v1", "ControllerRevision") => definition::<apps::v1::ControllerRevision>(g),
        ("autoscaling", "v1", "Scale") => definition::<autoscaling::v1::Scale>(g),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => {
            definition::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(g)
        }
        ("batch", "v1", "Job") => definition::<batch::v1::Job>(g),
        ("batch", "v1", "CronJob") => definition::<batch::v1::CronJob>(g),
        ("coordination.k8s.io", "v1", "Lease") => definition::<coordination::v1::Lease>(g),
        ("discovery.k8s.io", "v1", "EndpointSlice") => {
            definition::<discovery::v1::EndpointSlice>(g)
        }
        ("events.k8s.io", "v1", "Event") => definition::<events::v1::Event>(g),
        ("node.k8s.io", "v1", "RuntimeClass") => definition::<node::v1::RuntimeClass>(g),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => {
            definition::<rbac::v1::ClusterRole>(g)
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            definition::<rbac::v1::ClusterRoleBinding>(g)
        }
        ("rbac.authorization.k8s.io", "v1", "Role") => definition::<rbac::v1::Role>(g),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => {
            definition::<rbac::v1::RoleBinding>(g)
        }
        ("policy", "v1", "PodDisruptionBudget") => definition::<policy::v1::PodDisruptionBudget>(g),
        ("scheduling.k8s.io", "v1", "PriorityClass") => {
            definition::<k8s_openapi::api::scheduling::v1::PriorityClass>(g)
        }
        ("policy", "v1", "Eviction") => definition::<policy::v1::Eviction>(g),
        ("authentication.k8s.io", "v1", "TokenRequest") => {
            definition::<k8s_openapi::api::authentication::v1::TokenRequest>(g)
        }
        _ => None,
    }
}

/// `<Kind>List`, shaped as kube generates it for every kind.
fn list_schema(gvk: Gvk, item: &str, list_meta: &str) -> Value {
    let reference = |name: &str| json!({"$ref": format!("{REF_PREFIX}{name}")});
    json!({
        "description": format!("{}List is a list of {}.", gvk.kind, gvk.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string",
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents.",
                "type": "string",
            },
            "metadata": {
                "description": "Standard list metadata.",
                "allOf": [reference(list_meta)],
            },
            "items": {
                "description": format!("List of {}.", gvk.kind),
                "type": "array",
                "items": reference(item),
            },
        },
        "x-kubernetes-group-version-kind": [
            {"group": gvk.group, "kind": format!("{}List", gvk.kind), "version": gvk.version}
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: Gvk = Gvk {
        group: "apps",
        version: "v1",
        kind: "Deployment",
    };

    #[test]
    fn every_served_kind_has_a_schema() {
        let registry = Registry::default();
        let schemas = Schemas::of(&registry);
        for resource in registry.built_in() {
            let gvk = Gvk::of(resource);
            let schema = schemas.kind(gvk).unwrap_or_else(|| panic!("{gvk:?}"));
            assert_eq!(
                schema["x-kubernetes-group-version-kind"][0]["kind"],
                resource.kind
            );
            assert!(schemas.list_name_of(gvk).is_some());
        }
    }

    #[test]
    fn fields_of_named_types_resolve_to_their_definitions() {
        let schemas = Schemas::of(&Registry::default());
        let deployment = schemas.kind(DEPLOYMENT).unwrap();
        assert_eq!(
            schemas.name_of(DEPLOYMENT),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        let spec = &deployment["properties"]["spec"];
        assert!(spec["allOf"].is_array(), "{spec}");
        assert!(spec["description"].is_string());
        let spec = schemas.resolve(spec);
        assert_eq!(spec["required"], json!(["selector", "template"]));
        assert!(spec["properties"]["replicas"]["description"]
            .as_str()
            .unwrap()
            .starts_with("Number of desired pods"));
        let containers =
            &schemas.definition("io.k8s.api.core.v1.PodSpec").unwrap()["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        let volumes =
            &schemas.definition("io.k8s.api.core.v1.PodSpec").unwrap()["properties"]["volumes"];
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        let ports =
            &schemas.definition("io.k8s.api.core.v1.Container").unwrap()["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        assert_eq!(
            schemas.resolve(spec)["properties"]["strategy"]["x-kubernetes-patch-strategy"],
            "retainKeys"
        );
        let closure = schemas.closure(["io.k8s.api.apps.v1.Deployment"]);
        assert!(closure.contains_key("io.k8s.api.core.v1.PodSpec"));
        assert!(closure.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert!(!closure.contains_key("io.k8s.api.core.v1.Node"));
    }
}
