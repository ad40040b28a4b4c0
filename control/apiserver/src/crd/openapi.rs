//! The OpenAPI v3 document of each custom group version (`/openapi/v3/apis/<group>/<version>`),
//! from the CRD versions' schemas, shaped as kube-apiextensions-server publishes them: the
//! kind under `<reversed group>.<version>.<Kind>` (`com.example.v1.Widget`) with `apiVersion`,
//! `kind` and `metadata` (ObjectMeta) added and its `x-kubernetes-group-version-kind`, its list
//! beside it, and the operations of its paths, whose `patch` names the kind and takes
//! `fieldValidation`: what `kubectl apply` looks for before it validates, and what `kubectl
//! explain` reads.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::openapi::{group_version_path, Document, ResourcePaths};
use crate::registry::Resource;
use crate::schema::{Schemas, REF_PREFIX};

/// `example.com` → `com.example`.
fn reversed(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

/// The documents of the served custom resources, by path, each with its hash.
pub fn documents(schemas: &Schemas, resources: &[Resource]) -> BTreeMap<String, (Bytes, String)> {
    let mut by_group_version: BTreeMap<String, Vec<&Resource>> = BTreeMap::new();
    for resource in resources {
        by_group_version
            .entry(group_version_path(resource.group, resource.version))
            .or_default()
            .push(resource);
    }
    by_group_version
        .into_iter()
        .map(|(path, resources)| {
            let mut own = Map::new();
            let mut named = Vec::new();
            for resource in resources {
                let Some(custom) = &resource.custom else {
                    continue;
                };
                let prefix = format!("{}.{}", reversed(resource.group), resource.version);
                let kind_name = format!("{prefix}.{}", resource.kind);
                let list_name = format!("{prefix}.{}", custom.list_kind);
                own.insert(kind_name.clone(), kind_schema(resource, &custom.schema));
                own.insert(
                    list_name.clone(),
                    list_schema(resource, &custom.list_kind, &kind_name),
                );
                named.push(((*resource).clone(), kind_name, list_name));
            }
            let document = Document::new(&custom_document(schemas, &named, own));
            (path, (document.body, document.hash))
        })
        .collect()
}

fn gvk(resource: &Resource, kind: &str) -> Value {
    json!([{"group": resource.group, "version": resource.version, "kind": kind}])
}

fn kind_schema(resource: &Resource, schema: &Value) -> Value {
    let mut schema = if schema.is_object() {
        schema.clone()
    } else {
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
    };
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    schema["properties"]["apiVersion"] = json!({"type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values."});
    schema["properties"]["kind"] = json!({"type": "string",
        "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to."});
    schema["properties"]["metadata"] = json!({"allOf": [{"$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")}],
        "description": "Standard object's metadata."});
    schema["x-kubernetes-group-version-kind"] = gvk(resource, resource.kind);
    schema
}

fn list_schema(resource: &Resource, list_kind: &str, item: &str) -> Value {
    json!({
        "description": format!("{list_kind} is a list of {}", resource.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": format!("{REF_PREFIX}{item}")}},
            "metadata": {"$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")},
        },
        "x-kubernetes-group-version-kind": gvk(resource, list_kind),
    })
}

/// One custom group version's document: `resources` (with their kinds' and lists' definition
/// names) and `own` definitions, plus the built-in definitions they reference.
fn custom_document(
    schemas: &Schemas,
    resources: &[(Resource, String, String)],
    own: Map<String, Value>,
) -> Value {
    let mut paths = Map::new();
    let mut used: Vec<String> = [
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
    ]
    .map(str::to_owned)
    .into();
    for (resource, kind_name, list_name) in resources {
        let paths_of =
            ResourcePaths::named(resource, schemas, kind_name.clone(), list_name.clone());
        used.extend(
            paths_of
                .schema_names()
                .into_iter()
                .filter(|name| !own.contains_key(name)),
        );
        paths_of.add_to(&mut paths);
    }
    let mut definitions = schemas.closure(used.iter().map(String::as_str));
    definitions.extend(own);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {"BearerToken": {
                "type": "apiKey", "name": "authorization", "in": "header",
                "description": "Bearer token: \"Bearer <token>\"",
            }},
        },
        "security": [{"BearerToken": []}],
    })
}
