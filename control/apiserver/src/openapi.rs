//! OpenAPI v3 as kube-apiserver serves it, generated from the registry and the kinds' schemas
//! ([`crate::schema`]):
//!
//! - `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=H"},
//!   "apis/apps/v1": {...}}}`, one entry per served group version;
//! - `/openapi/v3/api/v1`, `/openapi/v3/apis/G/V`: the paths of that group version's resources
//!   with their operations, and the schemas they use under `components.schemas`.
//!
//! `H` is the document's content hash, also its ETag. Asked for with the current hash, a
//! document may be cached for good (`Cache-Control: public, immutable`); with an old one, the
//! client is sent to the current URL. `If-None-Match` gets 304.
//!
//! What kubectl reads: `apply`, `create -f` and `replace -f` validate only if some `patch`
//! operation carries the kind's `x-kubernetes-group-version-kind` and a `fieldValidation` query
//! parameter (they then send `fieldValidation=Strict`); `kubectl explain` finds the path of the
//! resource, takes the kind from its operations, and reads the schema whose
//! `x-kubernetes-group-version-kind` lists it. `/openapi/v2` is made from these documents
//! ([`crate::openapi_v2`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};

use crate::registry::{Registry, Resource, Subresource};
use crate::schema::{subresource_kind, Gvk, Schemas, REF_PREFIX};

/// The OpenAPI documents of a registry, built on first use.
#[derive(Debug)]
pub struct OpenApi {
    /// The built-in resources (the custom ones' documents are `custom`'s, rebuilt as CRDs
    /// change, while these are built once).
    registry: Registry,
    custom: crate::crd::CustomTable,
    schemas: OnceLock<Schemas>,
    documents: OnceLock<Documents>,
    v2: OnceLock<crate::openapi_v2::Documents>,
}

#[derive(Debug)]
struct Documents {
    index: Document,
    by_path: BTreeMap<String, Document>,
}

/// A served document and its content hash.
#[derive(Debug)]
pub(crate) struct Document {
    /// The JSON text.
    pub(crate) body: Bytes,
    /// Its hash (and ETag).
    pub(crate) hash: String,
}

impl Document {
    /// The document of `value`.
    pub(crate) fn new(value: &Value) -> Document {
        let body = Bytes::from(value.to_string());
        // kube-openapi's ETag: SHA-512 of the document, in upper-case hex.
        let hash = Sha512::digest(&body)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        Document { body, hash }
    }
}

/// The answer to an OpenAPI request.
#[derive(Debug, PartialEq, Eq)]
pub struct Served {
    /// 200, 304, or 301 to the current hash.
    pub status: u16,
    /// The document (empty unless 200).
    pub body: Bytes,
    /// The quoted ETag.
    pub etag: String,
    /// `public, immutable` for a document asked for by its current hash.
    pub cache_control: &'static str,
    /// Where a 301 sends the client.
    pub location: Option<String>,
}

impl OpenApi {
    /// The documents of what `registry` serves.
    pub fn new(registry: Registry) -> OpenApi {
        OpenApi {
            custom: registry.custom().clone(),
            registry: Registry::default(),
            schemas: OnceLock::new(),
            documents: OnceLock::new(),
            v2: OnceLock::new(),
        }
    }

    /// The schemas of the served kinds.
    pub fn schemas(&self) -> &Schemas {
        self.schemas.get_or_init(|| Schemas::of(&self.registry))
    }

    fn documents(&self) -> &Documents {
        self.documents.get_or_init(|| {
            let schemas = self.schemas();
            let mut by_path = BTreeMap::new();
            for (group, versions) in self.registry.groups() {
                for version in versions {
                    let document = group_version_document(&self.registry, schemas, group, version);
                    by_path.insert(group_version_path(group, version), Document::new(&document));
                }
            }
            let paths: Map<String, Value> = by_path
                .iter()
                .map(|(path, document)| {
                    let url = format!("/openapi/v3/{path}?hash={}", document.hash);
                    (path.clone(), json!({"serverRelativeURL": url}))
                })
                .collect();
            Documents {
                index: Document::new(&json!({"paths": paths})),
                by_path,
            }
        })
    }

    /// The `/openapi/v2` document, made from the v3 group-version documents on first use.
    pub fn v2(&self) -> &crate::openapi_v2::Documents {
        self.v2.get_or_init(|| {
            let v3: Vec<Value> = (self.documents().by_path.values())
                .filter_map(|document| serde_json::from_slice(&document.body).ok())
                .collect();
            crate::openapi_v2::Documents::of(&v3)
        })
    }

    /// Answers `/openapi/<rest>`: `None` for what is not served (404).
    pub fn serve(
        &self,
        rest: &str,
        hash: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Option<Served> {
        let documents = self.documents();
        let rest = rest.trim_end_matches('/');
        let custom_paths = self.custom.openapi_paths();
        let merged_index;
        let custom_document;
        let (document, immutable) = if rest == "v3" {
            if custom_paths.is_empty() {
                (&documents.index, false)
            } else {
                merged_index = self.index_with(documents, &custom_paths);
                (&merged_index, false)
            }
        } else {
            let path = rest.strip_prefix("v3/")?;
            let document = match documents.by_path.get(path) {
                Some(document) => document,
                None => {
                    let (body, hash) = self.custom.openapi(path)?;
                    custom_document = Document { body, hash };
                    &custom_document
                }
            };
            match hash.filter(|h| !h.is_empty()) {
                None => (document, false),
                Some(h) if h == document.hash => (document, true),
                Some(_) => {
                    return Some(Served {
                        status: 301,
                        body: Bytes::new(),
                        etag: quoted(&document.hash),
                        cache_control: "no-cache, private",
                        location: Some(format!("/openapi/v3/{path}?hash={}", document.hash)),
                    })
                }
            }
        };
        let cache_control = if immutable {
            "public, immutable"
        } else {
            "no-cache, private"
        };
        let not_modified = if_none_match.is_some_and(|tags| matches_etag(tags, &document.hash));
        Some(Served {
            status: if not_modified { 304 } else { 200 },
            body: if not_modified {
                Bytes::new()
            } else {
                document.body.clone()
            },
            etag: quoted(&document.hash),
            cache_control,
            location: None,
        })
    }
}

impl OpenApi {
    /// The index of the built-in documents and of the custom ones at `custom_paths`.
    fn index_with(&self, documents: &Documents, custom_paths: &[(String, String)]) -> Document {
        let mut paths: Map<String, Value> = documents
            .by_path
            .iter()
            .map(|(path, document)| (path.clone(), document.hash.clone()))
            .chain(custom_paths.iter().cloned())
            .map(|(path, hash)| {
                let url = format!("/openapi/v3/{path}?hash={hash}");
                (path, json!({"serverRelativeURL": url}))
            })
            .collect();
        paths.sort_keys();
        Document::new(&json!({"paths": paths}))
    }
}

fn quoted(hash: &str) -> String {
    format!("\"{hash}\"")
}

/// Whether an `If-None-Match` list names `hash` (or is `*`).
fn matches_etag(tags: &str, hash: &str) -> bool {
    tags.split(',').map(str::trim).any(|tag| {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*" || tag.trim_matches('"') == hash
    })
}

/// `api/v1` or `apis/G/V`.
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// One group version's document.
fn group_version_document(
    registry: &Registry,
    schemas: &Schemas,
    group: &'static str,
    version: &'static str,
) -> Value {
    let mut paths = Map::new();
    let mut used: Vec<String> = [
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    ]
    .map(str::to_owned)
    .into();
    for resource in &registry.in_group_version(group, version) {
        let Some(paths_of) = ResourcePaths::new(resource, schemas) else {
            continue;
        };
        used.extend(paths_of.schema_names());
        paths_of.add_to(&mut paths);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::server::KUBERNETES_VERSION},
        "paths": paths,
        "components": {
            "schemas": schemas.closure(used.iter().map(String::as_str)),
            "securitySchemes": {"BearerToken": {
                "type": "apiKey", "name": "authorization", "in": "header",
                "description": "Bearer token: \"Bearer <token>\"",
            }},
        },
        "security": [{"BearerToken": []}],
    })
}

/// The paths of one resource and its subresources.
pub(crate) struct ResourcePaths<'a> {
    resource: &'a Resource,
    gvk: Gvk,
    kind_name: String,
    list_name: String,
    subresources: Vec<(Subresource, Gvk, String)>,
    /// `/api/v1` or `/apis/G/V`.
    prefix: String,
    /// `apps_v1`.
    tag: String,
    /// `AppsV1`, as operation ids spell the group version.
    id_group: String,
}

impl<'a> ResourcePaths<'a> {
    fn new(resource: &'a Resource, schemas: &Schemas) -> Option<ResourcePaths<'a>> {
        let gvk = Gvk::of(resource);
        let kind_name = schemas.name_of(gvk)?.to_owned();
        let list_name = schemas.list_name_of(gvk)?.to_owned();
        Some(ResourcePaths::named(
            resource, schemas, kind_name, list_name,
        ))
    }

    /// The paths of `resource`, whose kind and list have the definitions named.
    pub(crate) fn named(
        resource: &'a Resource,
        schemas: &Schemas,
        kind_name: String,
        list_name: String,
    ) -> ResourcePaths<'a> {
        let gvk = Gvk::of(resource);
        let subresources = resource
            .subresources
            .iter()
            .filter_map(|sub| {
                let sub_gvk = subresource_kind(*sub, gvk);
                let name = if sub_gvk == gvk {
                    kind_name.clone()
                } else {
                    schemas.name_of(sub_gvk)?.to_owned()
                };
                Some((*sub, sub_gvk, name))
            })
            .collect();
        let group_words = if resource.group.is_empty() {
            "core".to_owned()
        } else {
            resource
                .group
                .strip_suffix(".k8s.io")
                .unwrap_or(resource.group)
                .to_owned()
        };
        let id_group: String = group_words
            .split('.')
            .chain([resource.version])
            .map(capitalized)
            .collect();
        ResourcePaths {
            resource,
            gvk,
            kind_name,
            list_name,
            subresources,
            prefix: format!("/{}", group_version_path(resource.group, resource.version)),
            tag: format!("{}_{}", group_words.replace('.', "_"), resource.version),
            id_group,
        }
    }

    pub(crate) fn schema_names(&self) -> Vec<String> {
        let mut names = vec![self.kind_name.clone(), self.list_name.clone()];
        names.extend(self.subresources.iter().map(|(_, _, name)| name.clone()));
        names
    }

    pub(crate) fn add_to(&self, paths: &mut Map<String, Value>) {
        let resource = self.resource;
        let kind = resource.kind;
        let namespaced = resource.namespaced;
        let scope = if namespaced { "Namespaced" } else { "" };
        let collection = if namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}",
                self.prefix, resource.plural
            )
        } else {
            format!("{}/{}", self.prefix, resource.plural)
        };
        let scope_parameters: Vec<Value> = if namespaced {
            vec![path_parameter("namespace", "The object's namespace.")]
        } else {
            Vec::new()
        };
        let with_scope = |mut operations: Map<String, Value>, extra: Option<Value>| {
            let mut parameters = scope_parameters.clone();
            parameters.extend(extra);
            operations.insert("parameters".into(), Value::Array(parameters));
            Value::Object(operations)
        };

        let mut operations = Map::new();
        operations.insert(
            "get".into(),
            self.operation(
                self.gvk,
                "list",
                format!("list{}{scope}{kind}", self.id_group),
                format!("list or watch objects of kind {kind}"),
                list_parameters(),
                None,
                &[(200, &self.list_name)],
            ),
        );
        operations.insert(
            "post".into(),
            self.operation(
                self.gvk,
                "post",
                format!("create{}{scope}{kind}", self.id_group),
                format!("create a {kind}"),
                write_parameters(),
                Some(body(&self.kind_name)),
                &[
                    (200, &self.kind_name),
                    (201, &self.kind_name),
                    (202, &self.kind_name),
                ],
            ),
        );
        let mut delete_collection = list_parameters();
        delete_collection.extend(delete_parameters());
        operations.insert(
            "delete".into(),
            self.operation(
                self.gvk,
                "deletecollection",
                format!("delete{}Collection{scope}{kind}", self.id_group),
                format!("delete collection of {kind}"),
                delete_collection,
                Some(body("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")),
                &[(200, "io.k8s.apimachinery.pkg.apis.meta.v1.Status")],
            ),
        );
        paths.insert(collection.clone(), with_scope(operations, None));

        let name = path_parameter("name", &format!("The name of the {kind}."));
        let item = format!("{collection}/{{name}}");
        let mut operations = self.item_operations(self.gvk, &self.kind_name, "");
        operations.insert(
            "delete".into(),
            self.operation(
                self.gvk,
                "delete",
                format!("delete{}{scope}{kind}", self.id_group),
                format!("delete a {kind}"),
                delete_parameters(),
                Some(body("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")),
                &[
                    (200, "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
                    (202, "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
                ],
            ),
        );
        paths.insert(item.clone(), with_scope(operations, Some(name.clone())));

        for (sub, sub_gvk, sub_name) in &self.subresources {
            let suffix = capitalized(sub.name());
            let operations = match sub {
                Subresource::Status
                | Subresource::Scale
                | Subresource::Finalize
                | Subresource::Approval => self.item_operations(*sub_gvk, sub_name, &suffix),
                // Streams, not objects: no operations to validate or explain.
                Subresource::Log
                | Subresource::Exec
                | Subresource::Attach
                | Subresource::PortForward => continue,
                Subresource::Binding | Subresource::Eviction | Subresource::Token => {
                    let mut operations = Map::new();
                    operations.insert(
                        "post".into(),
                        self.operation(
                            *sub_gvk,
                            "post",
                            format!("create{}{scope}{kind}{suffix}", self.id_group),
                            format!("create {} of a {kind}", sub.name()),
                            write_parameters(),
                            Some(body(sub_name)),
                            &[(200, sub_name), (201, sub_name), (202, sub_name)],
                        ),
                    );
                    operations
                }
            };
            paths.insert(
                format!("{item}/{}", sub.name()),
                with_scope(operations, Some(name.clone())),
            );
        }

        if namespaced {
            let mut operations = Map::new();
            operations.insert(
                "get".into(),
                self.operation(
                    self.gvk,
                    "list",
                    format!("list{}{kind}ForAllNamespaces", self.id_group),
                    format!("list or watch objects of kind {kind}"),
                    list_parameters(),
                    None,
                    &[(200, &self.list_name)],
                ),
            );
            paths.insert(
                format!("{}/{}", self.prefix, resource.plural),
                Value::Object(operations),
            );
        }
    }

    /// get, put and patch of one object (or of its status or scale, by `suffix`).
    fn item_operations(&self, gvk: Gvk, schema: &str, suffix: &str) -> Map<String, Value> {
        let kind = self.resource.kind;
        let scope = if self.resource.namespaced {
            "Namespaced"
        } else {
            ""
        };
        let what = match suffix {
            "" => format!("the specified {kind}"),
            s => format!("{} of the specified {kind}", s.to_lowercase()),
        };
        let mut operations = Map::new();
        operations.insert(
            "get".into(),
            self.operation(
                gvk,
                "get",
                format!("read{}{scope}{kind}{suffix}", self.id_group),
                format!("read {what}"),
                Vec::new(),
                None,
                &[(200, schema)],
            ),
        );
        operations.insert(
            "put".into(),
            self.operation(
                gvk,
                "put",
                format!("replace{}{scope}{kind}{suffix}", self.id_group),
                format!("replace {what}"),
                write_parameters(),
                Some(body(schema)),
                &[(200, schema), (201, schema)],
            ),
        );
        let mut patch_parameters = write_parameters();
        patch_parameters.push(query_parameter(
            "force",
            "boolean",
            "Force an apply request to take fields other managers own.",
        ));
        operations.insert(
            "patch".into(),
            self.operation(
                gvk,
                "patch",
                format!("patch{}{scope}{kind}{suffix}", self.id_group),
                format!("partially update {what}"),
                patch_parameters,
                Some(patch_body(self.resource.custom.is_none())),
                &[(200, schema), (201, schema)],
            ),
        );
        operations
    }

    #[allow(clippy::too_many_arguments)]
    fn operation(
        &self,
        gvk: Gvk,
        action: &str,
        id: String,
        description: String,
        parameters: Vec<Value>,
        request: Option<Value>,
        responses: &[(u16, &str)],
    ) -> Value {
        let mut answers = Map::new();
        for (code, schema) in responses {
            answers.insert(
                code.to_string(),
                json!({"description": reason(*code), "content": content(schema)}),
            );
        }
        answers.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut operation = json!({
            "tags": [self.tag],
            "description": description,
            "operationId": id,
            "parameters": parameters,
            "responses": answers,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk.to_json(),
        });
        if let Some(request) = request {
            operation["requestBody"] = request;
        }
        operation
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        _ => "",
    }
}

fn reference(schema: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{schema}")})
}

fn content(schema: &str) -> Value {
    json!({"application/json": {"schema": reference(schema)}})
}

fn body(schema: &str) -> Value {
    json!({"content": content(schema), "required": true})
}

/// The patch formats the server applies: strategic merge patch only for built-in kinds
/// (kubectl's client-side apply sends it to a kind whose operation lists it, and a merge patch
/// otherwise, as custom resources need).
fn patch_body(strategic: bool) -> Value {
    let patch = json!({"schema": reference("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")});
    let mut content = json!({
        "application/json-patch+json": patch,
        "application/merge-patch+json": patch,
    });
    if strategic {
        content["application/strategic-merge-patch+json"] = patch;
    }
    json!({"content": content, "required": true})
}

fn path_parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true,
        "schema": {"type": "string", "uniqueItems": true}})
}

fn query_parameter(name: &str, kind: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description,
        "schema": {"type": kind, "uniqueItems": true}})
}

/// The parameters of create, update and patch.
fn write_parameters() -> Vec<Value> {
    vec![
        query_parameter(
            "dryRun",
            "string",
            "`All`: check and answer the request without storing anything.",
        ),
        query_parameter(
            "fieldManager",
            "string",
            "The name of the actor making the change.",
        ),
        query_parameter(
            "fieldValidation",
            "string",
            "What to do with fields the schema does not know and with repeated fields: \
             `Ignore` drops them silently, `Warn` (the default) drops them with a warning \
             for each, `Strict` fails the request.",
        ),
    ]
}

fn delete_parameters() -> Vec<Value> {
    vec![
        query_parameter(
            "dryRun",
            "string",
            "`All`: check and answer the request without deleting anything.",
        ),
        query_parameter(
            "gracePeriodSeconds",
            "integer",
            "Seconds the object has to finish before it is deleted.",
        ),
        query_parameter(
            "propagationPolicy",
            "string",
            "What happens to dependents: `Orphan`, `Background` or `Foreground`.",
        ),
    ]
}

fn list_parameters() -> Vec<Value> {
    vec![
        query_parameter(
            "allowWatchBookmarks",
            "boolean",
            "Ask a watch for BOOKMARK events.",
        ),
        query_parameter(
            "continue",
            "string",
            "The token of the previous page of a paged list.",
        ),
        query_parameter(
            "fieldSelector",
            "string",
            "Only objects whose fields match this selector.",
        ),
        query_parameter(
            "labelSelector",
            "string",
            "Only objects whose labels match this selector.",
        ),
        query_parameter(
            "limit",
            "integer",
            "At most this many objects; the rest through `continue`.",
        ),
        query_parameter(
            "resourceVersion",
            "string",
            "The resourceVersion the list or watch starts from.",
        ),
        query_parameter(
            "resourceVersionMatch",
            "string",
            "How `resourceVersion` applies to a list: `Exact` or `NotOlderThan`.",
        ),
        query_parameter(
            "sendInitialEvents",
            "boolean",
            "Start a watch with the current objects, then a bookmark.",
        ),
        query_parameter(
            "timeoutSeconds",
            "integer",
            "End the list or watch after this many seconds.",
        ),
        query_parameter("watch", "boolean", "Watch for changes instead of listing."),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(openapi: &OpenApi, path: &str) -> Value {
        let served = openapi.serve(&format!("v3/{path}"), None, None).unwrap();
        serde_json::from_slice(&served.body).unwrap()
    }

    #[test]
    fn the_index_lists_every_group_version_by_hash() {
        let openapi = OpenApi::new(Registry::default());
        let served = openapi.serve("v3", None, None).unwrap();
        assert_eq!(served.status, 200);
        let index: Value = serde_json::from_slice(&served.body).unwrap();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let hash = url.split_once("?hash=").unwrap().1;
        assert_eq!(hash.len(), 128);
        assert!(index["paths"]["api/v1"].is_object());
        assert!(index["paths"]["apis/policy/v1"].is_object());

        let current = openapi.serve("v3/apis/apps/v1", Some(hash), None).unwrap();
        assert_eq!(
            (current.status, current.cache_control),
            (200, "public, immutable")
        );
        assert_eq!(current.etag, format!("\"{hash}\""));
        let cached = openapi
            .serve("v3/apis/apps/v1", Some(hash), Some(&current.etag))
            .unwrap();
        assert_eq!((cached.status, cached.body.len()), (304, 0));
        let old = openapi.serve("v3/apis/apps/v1", Some("0FF"), None).unwrap();
        assert_eq!(old.status, 301);
        assert_eq!(old.location.unwrap(), url);
        let plain = openapi.serve("v3/apis/apps/v1", None, None).unwrap();
        assert_eq!(plain.cache_control, "no-cache, private");

        assert!(openapi.serve("v2", None, None).is_none());
        assert!(openapi.serve("v3/apis/nope/v1", None, None).is_none());
    }

    #[test]
    fn patch_operations_carry_the_kind_and_field_validation() {
        let openapi = OpenApi::new(Registry::default());
        let apps = document(&openapi, "apis/apps/v1");
        let item = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        let patch = &item["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Scale"
        );
        assert!(apps["paths"]["/apis/apps/v1/deployments"]["get"].is_object());

        let schemas = apps["components"]["schemas"].as_object().unwrap();
        assert_eq!(
            schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        assert!(schemas.contains_key("io.k8s.api.core.v1.PodSpec"));
        assert!(schemas.contains_key("io.k8s.api.autoscaling.v1.Scale"));
        assert!(!schemas.contains_key("io.k8s.api.core.v1.Node"));
        // Every reference resolves inside the document.
        let text = apps.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let name = reference.split('"').next().unwrap();
            let name = name.strip_prefix(REF_PREFIX).unwrap();
            assert!(schemas.contains_key(name), "{name}");
        }

        let core = document(&openapi, "api/v1");
        assert!(core["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
        assert_eq!(
            core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/binding"]["post"]
                ["operationId"],
            "createCoreV1NamespacedPodBinding"
        );
        let leases = document(&openapi, "apis/coordination.k8s.io/v1");
        assert_eq!(
            leases["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"]["get"]
                ["operationId"],
            "listCoordinationV1NamespacedLease"
        );
    }
}
