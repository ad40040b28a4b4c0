//! What the verbs do differently for custom objects, called from the built-in paths where a
//! resource's [`CustomResource`] is set:
//!
//! - bodies are pruned against the schema instead of decoded against a k8s-openapi type, the
//!   pruned fields reported as `fieldValidation` asks (`unknown field "spec.foo"`);
//! - defaults come from the schema, validation is the schema's plus metadata's;
//! - objects are stored at the storage version and shown at the version asked for (with
//!   `conversion: None` only `apiVersion` differs);
//! - strategic merge patch is refused (there are no patch strategies without Go types);
//! - no new objects while the CRD is being deleted.

use serde_json::{json, Value};

use super::{structural, CustomResource};
use crate::admission::{self, FieldError};
use crate::error::{ApiError, Result};
use crate::registry::Resource;

/// Removes the fields `custom`'s schema does not know from a custom object; their paths.
pub fn prune(custom: &CustomResource, object: &mut Value) -> Vec<String> {
    structural::prune_object(&custom.schema, object)
        .into_iter()
        .map(|path| format!("unknown field \"{path}\""))
        .collect()
}

/// Applies the schema's defaults.
pub fn apply_defaults(custom: &CustomResource, object: &mut Value) {
    structural::apply_defaults(&custom.schema, object);
}

/// Metadata's rules and the schema's, for a custom object.
pub fn validate(custom: &CustomResource, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let mut errs = admission::validate_name("", name);
    // "" is no built-in kind: only the metadata rules apply.
    errs.extend(admission::validate("", object, old));
    errs.extend(structural::check(&custom.schema, object, ""));
    errs
}

/// Sets `apiVersion` to `resource`'s version, as objects of a custom resource are shown.
pub fn to_version(resource: &Resource, object: &mut Value) {
    if resource.custom.is_some()
        && object.get("kind").and_then(Value::as_str) == Some(resource.kind)
    {
        object["apiVersion"] = json!(resource.api_version());
    }
}

/// Sets `apiVersion` to the storage version, as objects are stored.
pub fn to_storage_version(resource: &Resource, object: &mut Value) {
    if let Some(custom) = &resource.custom {
        object["apiVersion"] = json!(format!("{}/{}", resource.group, custom.storage_version));
    }
}

/// The 415 kube answers a strategic merge patch of a custom object with.
pub fn strategic_merge_refused() -> ApiError {
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType",
        ..ApiError::bad_request(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )
    }
}

/// A create of a custom object while its CRD is being deleted.
pub fn check_not_terminating(resource: &Resource) -> Result<()> {
    match &resource.custom {
        Some(custom) if custom.terminating => Err(ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            ..ApiError::bad_request(
                "create not allowed while custom resource definition is terminating",
            )
        }),
        _ => Ok(()),
    }
}

impl crate::rest::Api {
    /// The last step before an object of `resource` is stored: a CRD gets its server-owned
    /// status (and, when created, the cleanup finalizer); a custom object its storage version.
    pub(crate) fn before_write(&self, resource: &Resource, object: &mut Value, creating: bool) {
        if crate::object::is_crd(resource) {
            if creating {
                let finalizers = crate::object::metadata_mut(object)
                    .entry("finalizers")
                    .or_insert_with(|| json!([]));
                if let Some(list) = finalizers.as_array_mut() {
                    if !list.iter().any(|f| f == super::CLEANUP_FINALIZER) {
                        list.push(json!(super::CLEANUP_FINALIZER));
                    }
                }
            }
            let others = self
                .cache
                .shard(&resource.prefix())
                .map(|shard| shard.list(&resource.prefix()).0)
                .unwrap_or_default();
            super::definition::set_status(object, &others);
        }
        to_storage_version(resource, object);
    }
}

impl crate::rest::Api {
    /// After a CRD write: waits (briefly) until this member serves what it says, so that a
    /// client that saw it Established can use its resource here at once.
    pub(crate) async fn after_write(&self, resource: &Resource, stored: &Value) {
        if !crate::object::is_crd(resource) {
            return;
        }
        let revision = stored["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0);
        let _ = self
            .registry
            .custom()
            .wait_synced(revision, std::time::Duration::from_secs(2))
            .await;
    }
}

/// The `autoscaling/v1 Scale` of a custom object, read at the CRD's scale paths.
pub fn to_scale(custom: &CustomResource, object: &Value) -> Option<Value> {
    let scale = custom.scale.as_ref()?;
    let read = |path: &str| -> Option<Value> {
        super::printer::JsonPath::parse(path)
            .ok()?
            .find(object)
            .first()
            .map(|v| (*v).clone())
    };
    let metadata = &object["metadata"];
    let mut status = json!({
        "replicas": read(&scale.status_replicas).and_then(|v| v.as_i64()).unwrap_or(0),
    });
    if let Some(selector) = scale.label_selector.as_deref().and_then(read) {
        status["selector"] = selector;
    }
    Some(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": read(&scale.spec_replicas).and_then(|v| v.as_i64()).unwrap_or(0)},
        "status": status,
    }))
}

/// Writes `replicas` at the CRD's spec replicas path (`.spec.replicas`), creating the objects
/// on the way.
pub fn set_replicas(custom: &CustomResource, object: &mut Value, replicas: i64) {
    let Some(scale) = &custom.scale else {
        return;
    };
    let mut target = object;
    let fields: Vec<&str> = scale
        .spec_replicas
        .trim_start_matches('.')
        .split('.')
        .collect();
    for (i, field) in fields.iter().enumerate() {
        if !target.is_object() {
            *target = json!({});
        }
        if i + 1 == fields.len() {
            target[*field] = json!(replicas);
            return;
        }
        target = &mut target[*field];
    }
}
