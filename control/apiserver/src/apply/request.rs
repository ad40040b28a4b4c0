//! The apply PATCH (`application/apply-patch+yaml`) and the managedFields bookkeeping of
//! every other write, wired into the verbs of `rest`.
//!
//! An apply decodes its YAML (or JSON) body, checks it as kube-apiserver does (a field
//! manager is required; the version must be the URL's; no managedFields; the name and
//! namespace must be the URL's), then either merges it into the live object through the
//! same update path as any patch, or, when the object does not exist, builds it and sends it
//! through the create path (admission, defaults, validation).

use serde_json::{json, Value};

use super::managed::{ApplyError, Identity, Managed, Operation};
use super::{conflict_error, is_reset, store_managed_fields, without_managed_fields, Schema};
use crate::admission::FieldError;
use crate::error::{ApiError, Result};
use crate::field_validation::FieldValidation;
use crate::object::{self, meta_str, metadata_mut, Part};
use crate::patch::PatchType;
use crate::registry::Resource;
use crate::rest::{Api, Call, Reply, MAX_BODY_BYTES};
use crate::schema::Gvk;

/// kube's limit on a field manager's length.
const MAX_MANAGER_BYTES: usize = 128;

/// Whether a PATCH's Content-Type is server-side apply.
pub fn is_apply(content_type: Option<&str>) -> bool {
    content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .is_some_and(|media| media.eq_ignore_ascii_case("application/apply-patch+yaml"))
}

/// The manager a write is recorded under: `?fieldManager=`, else the User-Agent's program
/// (the text before the first `/`, printable characters only, at most 128 bytes), else
/// `unknown`.
pub fn manager_name(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(manager) = field_manager.filter(|m| !m.is_empty()) {
        return manager.to_owned();
    }
    let program = user_agent.unwrap_or("").split('/').next().unwrap_or("");
    let mut name = String::new();
    for c in program.chars().filter(|c| !c.is_control()) {
        if name.len() + c.len_utf8() > MAX_MANAGER_BYTES {
            break;
        }
        name.push(c);
    }
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

/// Checks `?fieldManager=` as kube validates the write's options (`options`: `PatchOptions`,
/// `UpdateOptions`, `CreateOptions`); `apply` requires one.
pub fn check_field_manager(call: &Call<'_>, options: &str, apply: bool) -> Result<()> {
    let manager = call.query.get("fieldManager").unwrap_or("");
    let mut errors = Vec::new();
    if apply && manager.is_empty() {
        errors.push(FieldError {
            reason: "FieldValueRequired",
            field: "fieldManager".into(),
            message: "Required value: is required for apply patch".into(),
        });
    }
    if !apply && options == "PatchOptions" && call.query.get("force").is_some() {
        errors.push(FieldError {
            reason: "FieldValueForbidden",
            field: "force".into(),
            message: "Forbidden: may not be specified for non-apply patch".into(),
        });
    }
    if manager.len() > MAX_MANAGER_BYTES {
        errors.push(FieldError {
            reason: "FieldValueTooLong",
            field: "fieldManager".into(),
            message: format!("Too long: may not be more than {MAX_MANAGER_BYTES} bytes"),
        });
    }
    for (i, c) in manager.chars().enumerate() {
        if c.is_control() {
            errors.push(FieldError {
                reason: "FieldValueInvalid",
                field: "fieldManager".into(),
                message: format!(
                    "Invalid value: {manager:?}: invalid character U+{:04X} (at position {i})",
                    c as u32
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(options, "meta.k8s.io", "", &errors))
    }
}

/// How a write records managedFields.
#[derive(Clone, Debug)]
pub enum Tracking {
    /// An update by this manager, to the object or a subresource.
    Update {
        /// The field manager.
        manager: String,
        /// The subresource written ("" for the object).
        subresource: &'static str,
    },
    /// An apply, which computed the managedFields the object carries.
    Applied,
    /// Not recorded (a binding).
    Untracked,
}

impl Tracking {
    /// An update of `part` by the request's manager.
    pub fn of(call: &Call<'_>, part: Part) -> Tracking {
        let subresource = match part {
            Part::Main => "",
            Part::Status => "status",
            Part::Finalize => "finalize",
            Part::Approval => "approval",
            Part::Binding => return Tracking::Untracked,
        };
        Tracking::Update {
            manager: call.manager(),
            subresource,
        }
    }

    /// Sets `new`'s managedFields for a write of `part` over `old` (`None`: a create);
    /// `requested` is what the request's object carried.
    pub fn record(
        &self,
        resource: &Resource,
        part: Part,
        old: Option<&Value>,
        new: &mut Value,
        requested: Option<Value>,
    ) {
        match self {
            Tracking::Untracked => {}
            Tracking::Applied => {
                let metadata = metadata_mut(new);
                match requested {
                    Some(fields) => metadata.insert("managedFields".into(), fields),
                    None => metadata.remove("managedFields"),
                };
            }
            Tracking::Update {
                manager,
                subresource,
            } => {
                let live = || {
                    old.map(|o| Managed::decode(o["metadata"].get("managedFields")))
                        .and_then(|m| m.ok())
                        .unwrap_or_default()
                };
                // A client may set managedFields on the object itself (never through a
                // subresource); malformed or empty ones leave the live object's.
                let mut managed = if !subresource.is_empty() || part != Part::Main {
                    live()
                } else if is_reset(requested.as_ref()) {
                    Managed::default()
                } else {
                    match Managed::decode(requested.as_ref()) {
                        Ok(m) if !m.entries.is_empty() => m,
                        _ => live(),
                    }
                };
                // An object that exists untracked stays so until an apply (as kube skips it).
                if managed.entries.is_empty() && old.is_some() {
                    metadata_mut(new).remove("managedFields");
                    return;
                }
                let id = Identity {
                    manager: manager.clone(),
                    operation: Operation::Update,
                    api_version: resource.api_version(),
                    subresource: (*subresource).to_owned(),
                };
                // The comparison skips managedFields: no copies of the objects without them.
                managed.record_update(old, new, &Schema::of(resource), &id, &object::now_rfc3339());
                store_managed_fields(new, &managed);
            }
        }
    }
}

/// The body of an apply as JSON: YAML, of which JSON is a part.
fn decode_body(body: &[u8]) -> Result<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let value: Value = serde_yaml::from_str(text).map_err(|e| {
        ApiError::bad_request(format!(
            "error encoding patch: error converting YAML to JSON: yaml: {e}"
        ))
    })?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(json!({})),
        other => Err(ApiError::bad_request(format!(
            "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_json_type(&other)
        ))),
    }
}

fn go_json_type(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "object",
    }
}

/// The name (and namespace) of an applied object must be the URL's.
fn check_name(call: &Call<'_>, object: &mut Value) -> Result<()> {
    let name = meta_str(object, "name").unwrap_or("");
    if name != call.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            call.name
        )));
    }
    object::check_namespace(call.resource, object, call.namespace)
}

impl Api {
    /// `PATCH` with `application/apply-patch+yaml`, of the object or its status.
    pub(crate) async fn server_side_apply(&self, call: &Call<'_>, part: Part) -> Result<Reply> {
        let resource = call.resource;
        let subresource = match part {
            Part::Main => "",
            Part::Status => "status",
            _ => {
                return Err(ApiError::unsupported_media_type(
                    "application/apply-patch+yaml",
                ))
            }
        };
        if call.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(MAX_BODY_BYTES));
        }
        check_field_manager(call, "PatchOptions", true)?;
        let validation = FieldValidation::from_query(call.query, "PatchOptions")?;
        let config = decode_body(call.body)?;
        let api_version = resource.api_version();
        let claimed_version = config["apiVersion"].as_str().unwrap_or("");
        if claimed_version != api_version {
            return Err(ApiError::bad_request(format!(
                "Incorrect version specified in apply patch. Specified patch version: {claimed_version}, expected: {api_version}"
            )));
        }
        let kind = config["kind"].as_str().unwrap_or("");
        if kind != resource.kind {
            return Err(ApiError::internal(format!(
                "failed to create typed patch object ({}/{}; {api_version}, Kind={kind}): no corresponding type for {api_version}, Kind={kind}",
                call.namespace.unwrap_or(""),
                call.name
            )));
        }
        if config["metadata"]
            .get("managedFields")
            .is_some_and(|f| !f.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        // Unknown fields are dropped (or refused, or warned of) as on any write.
        let config = self.checked_patch(
            call,
            validation,
            PatchType::Merge,
            &[],
            Gvk::of(resource),
            config,
        )?;
        let config = part_of(resource, part, config);
        let precondition = meta_str(&config, "resourceVersion")
            .filter(|rv| !rv.is_empty())
            .map(str::to_owned);
        let id = Identity {
            manager: call.query.get("fieldManager").unwrap_or("").to_owned(),
            operation: Operation::Apply,
            api_version,
            subresource: subresource.to_owned(),
        };
        let force = call.query.flag("force");
        let schema = Schema::of(resource);
        let updated = self
            .write_over(call, part, precondition, &Tracking::Applied, |current| {
                let mut managed = Managed::decode(current.object["metadata"].get("managedFields"))
                    .map_err(|e| {
                        ApiError::internal(format!("failed to decode managed fields: {e}"))
                    })?;
                let live = without_managed_fields(&current.object);
                let mut merged = apply_upgrading(&mut managed, &live, &config, &schema, &id, force)
                    .map_err(|e| apply_error(call, e))?;
                keep_last_applied(&id, &config, &mut merged);
                check_name(call, &mut merged)?;
                store_managed_fields(&mut merged, &managed);
                Ok(merged)
            })
            .await;
        match updated {
            Ok((code, object)) => Ok(Reply::Object(code, object)),
            Err(missing) if missing.code == 404 && part == Part::Main => {
                if let Some(uid) = meta_str(&config, "uid").filter(|u| !u.is_empty()) {
                    return Err(ApiError::conflict(
                        &call.target(),
                        &format!("uid mismatch: the provided object specified uid {uid}, and no existing object was found"),
                    ));
                }
                let mut managed = Managed::default();
                let mut created = managed
                    .apply(None, &config, &schema, &id, force, &object::now_rfc3339())
                    .map_err(|e| apply_error(call, e))?;
                check_name(call, &mut created)?;
                store_managed_fields(&mut created, &managed);
                self.create_object(call, created, &Tracking::Applied).await
            }
            Err(error) => Err(error),
        }
    }
}

/// What an apply to `part` may set: a resource with a status subresource takes its status
/// only through it, and the subresource takes nothing else (kube's reset fields).
fn part_of(resource: &Resource, part: Part, mut config: Value) -> Value {
    match part {
        Part::Main if resource.has_status() => {
            if let Some(map) = config.as_object_mut() {
                map.remove("status");
            }
            config
        }
        Part::Status => {
            let mut metadata = serde_json::Map::new();
            for field in ["name", "namespace", "resourceVersion", "uid"] {
                if let Some(value) = config["metadata"].get(field) {
                    metadata.insert(field.into(), value.clone());
                }
            }
            json!({"apiVersion": config["apiVersion"], "kind": config["kind"],
                "metadata": metadata, "status": config.get("status").cloned().unwrap_or(json!({}))})
        }
        _ => config,
    }
}

/// kubectl's annotation of client-side apply.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// An apply to an existing object. For manager `kubectl`, conflicts on fields that its
/// client-side apply annotation names with the live value are no conflicts: they were
/// kubectl's own, and `kubectl apply --server-side` takes them over (kube's upgrade path).
fn apply_upgrading(
    managed: &mut Managed,
    live: &Value,
    config: &Value,
    schema: &Schema<'_>,
    id: &Identity,
    force: bool,
) -> std::result::Result<Value, ApplyError> {
    let now = object::now_rfc3339();
    let mut attempt = managed.clone();
    match attempt.apply(Some(live), config, schema, id, force, &now) {
        Err(ApplyError::Conflicts(conflicts)) if id.manager == "kubectl" => {
            let allowed = last_applied_fields(live, schema, &id.api_version).unwrap_or_default();
            let left: Vec<_> = conflicts
                .into_iter()
                .filter(|c| !allowed.has(&c.path))
                .collect();
            if !left.is_empty() {
                return Err(ApplyError::Conflicts(left));
            }
            managed.apply(Some(live), config, schema, id, true, &now)
        }
        result => {
            *managed = attempt;
            result
        }
    }
}

/// The fields the live object's last-applied annotation names with their live values.
fn last_applied_fields(
    live: &Value,
    schema: &Schema<'_>,
    api_version: &str,
) -> Option<super::fields::Set> {
    let text = live["metadata"]["annotations"][LAST_APPLIED].as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    if last["apiVersion"] != api_version {
        return None;
    }
    let fields = super::diff::field_set(&last, schema).ok()?;
    let changed = super::diff::compare(Some(&last), Some(live), schema);
    Some(
        fields
            .difference(&changed.modified)
            .difference(&changed.added)
            .difference(&changed.removed),
    )
}

/// An object kubectl applied client-side keeps its annotation current when kubectl applies
/// it server-side (so a later client-side apply computes the right patch).
fn keep_last_applied(id: &Identity, config: &Value, object: &mut Value) {
    let annotated = object["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .is_some_and(|a| !a.is_empty());
    if id.manager != "kubectl" || !annotated {
        return;
    }
    let mut applied = config.clone();
    if let Some(annotations) = applied["metadata"]
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
    }
    object["metadata"]["annotations"][LAST_APPLIED] = json!(applied.to_string());
}

fn apply_error(call: &Call<'_>, error: ApplyError) -> ApiError {
    match error {
        ApplyError::Conflicts(conflicts) => conflict_error(&conflicts),
        ApplyError::Invalid(why) => ApiError::internal(format!(
            "failed to create typed patch object ({}/{}; {}, Kind={}): {why}",
            call.namespace.unwrap_or(""),
            call.name,
            call.resource.api_version(),
            call.resource.kind
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_come_from_the_query_or_the_user_agent() {
        let cases = [
            (Some("mgr"), Some("kubectl/v1.32.0 (linux/amd64)"), "mgr"),
            (
                None,
                Some("kubectl/v1.32.0 (linux/amd64) kubernetes/abc"),
                "kubectl",
            ),
            (
                Some(""),
                Some("OpenAPI-Generator/31.0.0/python"),
                "OpenAPI-Generator",
            ),
            (None, Some("kube-scheduler/v1.32.0"), "kube-scheduler"),
            (None, None, "unknown"),
            (None, Some(""), "unknown"),
        ];
        for (field_manager, user_agent, manager) in cases {
            assert_eq!(manager_name(field_manager, user_agent), manager);
        }
        let long = "x".repeat(300);
        assert_eq!(manager_name(None, Some(&long)).len(), 128);
    }

    #[test]
    fn apply_bodies_are_yaml_or_json() {
        assert_eq!(
            decode_body(b"apiVersion: v1\nkind: ConfigMap\ndata:\n  a: \"1\"\n").unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}})
        );
        assert_eq!(
            decode_body(br#"{"apiVersion": "v1", "kind": "ConfigMap"}"#).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap"})
        );
        let bad = decode_body(b"kind: [unclosed\n").unwrap_err();
        assert_eq!((bad.code, bad.reason), (400, "BadRequest"));
        assert!(bad
            .message
            .starts_with("error encoding patch: error converting YAML to JSON: yaml: "));
        let list = decode_body(b"- a\n- b\n").unwrap_err();
        assert_eq!(
            list.message,
            "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert!(is_apply(Some(
            "application/apply-patch+yaml; charset=utf-8"
        )));
        assert!(!is_apply(Some("application/merge-patch+json")));
    }
}
