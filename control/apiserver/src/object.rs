//! Reading and writing one object: create, update, delete and the metadata rules kube-apiserver
//! applies on the way (uid, creationTimestamp, generation, the spec/status split, finalizers,
//! graceful deletion), each write a compare-and-swap on the object's revision.

use serde_json::{json, Map, Value};

use crate::admission;
use crate::error::{ApiError, Result, Target};
use crate::registry::Resource;
use crate::storage::{self, Storage, StoredValue, Written};
use crate::watch_cache::{decode, set_resource_version};

/// How many times a write that lost a race to another writer is retried when the client did
/// not ask for a specific resourceVersion (patch, unconditional update, delete).
pub const WRITE_RETRIES: usize = 8;

/// An object as stored, with its revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Current {
    /// The object, `metadata.resourceVersion` set.
    pub object: Value,
    /// Its mod revision.
    pub revision: i64,
}

/// Reads one object linearizably.
pub async fn read(storage: &dyn Storage, key: &str) -> Result<Option<Current>> {
    let stored = storage::get(storage, key.as_bytes()).await?;
    Ok(stored.and_then(|s| current(&s)))
}

fn current(stored: &StoredValue) -> Option<Current> {
    decode(stored).map(|object| Current {
        object,
        revision: stored.mod_revision,
    })
}

/// Reads one object or answers 404.
pub async fn must_read(storage: &dyn Storage, key: &str, target: &Target<'_>) -> Result<Current> {
    read(storage, key)
        .await?
        .ok_or_else(|| ApiError::not_found(target))
}

/// The bytes stored for an object: its JSON without `resourceVersion` (the revision is it).
pub fn encode(object: &Value) -> Result<Vec<u8>> {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("resourceVersion");
        metadata.remove("selfLink");
    }
    serde_json::to_vec(&object).map_err(ApiError::internal)
}

/// `metadata` of an object, created if missing.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// The current time as kube writes timestamps (RFC 3339, seconds, UTC).
pub fn now_rfc3339() -> String {
    rfc3339_in(0)
}

/// The time `seconds` from now, as [`now_rfc3339`] writes it.
pub fn rfc3339_in(seconds: i64) -> String {
    let then = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    then.format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// A random UUID (version 4), as kube gives every object.
pub fn new_uid() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut b = bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// kube's 5 characters after a generateName prefix (no vowels, so no words).
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random::<usize>() % ALPHABET.len()] as char)
        .collect()
}

/// Checks `apiVersion` and `kind` of a body against the resource, filling them in if absent.
pub fn check_type(resource: &Resource, object: &mut Value, expected_kind: &str) -> Result<()> {
    let api_version = resource.api_version();
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body of the request must be a JSON object"))?;
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
        _ => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != expected_kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({expected_kind})"
            )))
        }
        _ => {}
    }
    map.insert("apiVersion".into(), json!(api_version));
    map.insert("kind".into(), json!(expected_kind));
    Ok(())
}

/// Puts the URL's namespace into the body, refusing a body that names another one.
pub fn check_namespace(
    resource: &Resource,
    object: &mut Value,
    namespace: Option<&str>,
) -> Result<()> {
    let metadata = metadata_mut(object);
    if !resource.namespaced {
        metadata.remove("namespace");
        return Ok(());
    }
    let namespace = namespace.ok_or_else(|| {
        ApiError::bad_request(format!(
            "{} is namespaced: the request must name a namespace",
            resource.plural
        ))
    })?;
    match metadata.get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() && ns != namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            metadata.insert("namespace".into(), json!(namespace));
            Ok(())
        }
    }
}

/// What a write changed besides spec and status: compared to decide on a generation bump.
fn desired_state(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for field in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(field);
        }
    }
    copy
}

fn without_metadata(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for field in ["metadata", "apiVersion", "kind"] {
            map.remove(field);
        }
    }
    copy
}

/// Fields a client may not set on create, and the ones the server fills in.
pub fn prepare_for_create(resource: &Resource, object: &mut Value) {
    let kind = resource.kind;
    let uid = new_uid();
    let metadata = metadata_mut(object);
    metadata.insert("uid".into(), json!(uid));
    metadata.insert("creationTimestamp".into(), json!(now_rfc3339()));
    metadata.insert("generation".into(), json!(1));
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        metadata.remove(field);
    }
    // Status belongs to controllers and agents; a create starts it afresh, except for a node,
    // whose agent registers it with its capacity.
    if resource.has_status() && kind != "Node" {
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
    }
    match kind {
        "Namespace" => {
            object["status"] = json!({"phase": "Active"});
            object["spec"] = json!({"finalizers": ["kubernetes"]});
        }
        "Pod" => {
            object["status"] = json!({"phase": "Pending", "qosClass": qos_class(object)});
        }
        _ => {}
    }
}

/// A pod's quality-of-service class, from its containers' requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| pod["spec"][f].as_array())
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for container in containers {
        let requests = container["resources"]["requests"].as_object();
        let limits = container["resources"]["limits"].as_object();
        any |= requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty());
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but status (for resources with a status subresource).
    Main,
    /// The status subresource: status only.
    Status,
    /// A pod's binding: the server sets `spec.nodeName`, which a user's update may not.
    Binding,
    /// A namespace's finalize subresource: `spec.finalizers` only.
    Finalize,
    /// A CertificateSigningRequest's approval subresource: its conditions only
    /// ([`crate::certificates`]).
    Approval,
}

/// The object a write of `new` over `old` stores: server-owned metadata kept, the other part
/// left as it was, generation bumped when the desired state changed.
pub fn prepare_for_update(resource: &Resource, part: Part, mut new: Value, old: &Value) -> Value {
    if part == Part::Finalize {
        let mut merged = old.clone();
        merged["spec"]["finalizers"] = new["spec"]
            .get("finalizers")
            .cloned()
            .unwrap_or_else(|| json!([]));
        return merged;
    }
    if matches!(part, Part::Status | Part::Approval) {
        let mut merged = old.clone();
        merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if merged["status"].is_null() {
            if let Some(map) = merged.as_object_mut() {
                map.remove("status");
            }
        }
        crate::certificates::prepare_for_update(resource, part, &mut merged, old);
        return merged;
    }
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let kept = old.get("metadata").and_then(|m| m.get(field)).cloned();
        let metadata = metadata_mut(&mut new);
        match kept {
            Some(value) => metadata.insert(field.into(), value),
            None => metadata.remove(field),
        };
    }
    if resource.kind == "Service" {
        keep_allocations(&mut new, old);
    }
    // A binding writes spec.nodeName and the PodScheduled condition together.
    if resource.has_status() && part != Part::Binding {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
    // A CSR's spec never changes after its create.
    crate::certificates::prepare_for_update(resource, part, &mut new, old);
    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
    // A custom resource without a status subresource has no spec/status split: any change
    // but metadata's moves its generation, as kube's strategy for custom resources has it.
    let changed = if resource.custom.is_some() && !resource.has_status() {
        without_metadata(&new) != without_metadata(old)
    } else {
        desired_state(&new) != desired_state(old)
    };
    let generation = if changed { generation + 1 } else { generation };
    metadata_mut(&mut new).insert("generation".into(), json!(generation));
    new
}

/// A Service update that leaves out its cluster IPs or node ports keeps the allocated ones,
/// as kube-apiserver's service REST does before validating.
fn keep_allocations(new: &mut Value, old: &Value) {
    for field in ["clusterIP", "clusterIPs"] {
        if new["spec"].get(field).is_none_or(Value::is_null) {
            if let Some(value) = old["spec"].get(field).filter(|v| !v.is_null()) {
                new["spec"][field] = value.clone();
            }
        }
    }
    let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
    if let Some(ports) = new["spec"]["ports"].as_array_mut() {
        for port in ports {
            if port.get("nodePort").is_some_and(|p| !p.is_null()) {
                continue;
            }
            let same = old_ports
                .iter()
                .find(|o| o["port"] == port["port"] && o["protocol"] == port["protocol"]);
            if let Some(node_port) = same
                .and_then(|o| o.get("nodePort"))
                .filter(|p| !p.is_null())
            {
                port["nodePort"] = node_port.clone();
            }
        }
    }
}

/// Checks a create or update against the kind's rules, answering 422 with every cause.
pub fn validate(resource: &Resource, object: &Value, old: Option<&Value>) -> Result<()> {
    let name = meta_str(object, "name").unwrap_or("");
    let errors = match &resource.custom {
        Some(custom) => crate::crd::objects::validate(custom, object, old),
        None => {
            let mut errors = admission::validate_name(resource.kind, name);
            errors.extend(admission::validate(resource.kind, object, old));
            if is_crd(resource) {
                errors.extend(crate::crd::definition::validate(object, old));
            }
            errors
        }
    };
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            resource.kind,
            resource.group,
            name,
            &errors,
        ))
    }
}

/// Fills in the defaults of `resource`'s kind (a custom resource's from its schema).
pub fn apply_defaults(resource: &Resource, object: &mut Value) {
    match &resource.custom {
        Some(custom) => crate::crd::objects::apply_defaults(custom, object),
        None if is_crd(resource) => crate::crd::definition::apply_defaults(object),
        None => admission::apply_defaults(resource.kind, object),
    }
}

/// The annotation an apps/v1 DaemonSet carries its template generation in.
pub const DAEMON_SET_TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// kube's DaemonSet strategy: the template generation starts at 1 and counts the changes of
/// `spec.template`; a client cannot set it. apps/v1 shows it as an annotation, which the
/// daemonset controller copies onto its pods as `pod-template-generation`. Call it after the
/// defaults, so a template only counts as changed when it is.
pub fn set_template_generation(resource: &Resource, new: &mut Value, old: Option<&Value>) {
    if resource.kind != "DaemonSet" || resource.group != "apps" || !new.is_object() {
        return;
    }
    let generation = match old {
        None => 1,
        Some(old) => {
            let before = old["metadata"]["annotations"][DAEMON_SET_TEMPLATE_GENERATION]
                .as_str()
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            let changed = new["spec"].get("template") != old["spec"].get("template");
            before + i64::from(changed)
        }
    };
    let metadata = metadata_mut(new);
    if !metadata.get("annotations").is_some_and(Value::is_object) {
        metadata.insert("annotations".into(), json!({}));
    }
    metadata["annotations"][DAEMON_SET_TEMPLATE_GENERATION] = json!(generation.to_string());
}

/// Whether `resource` is CustomResourceDefinitions.
pub fn is_crd(resource: &Resource) -> bool {
    resource.group == "apiextensions.k8s.io" && resource.kind == "CustomResourceDefinition"
}

/// Whether a deleted-but-finalized object has nothing left holding it.
pub fn ready_to_delete(object: &Value) -> bool {
    object["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
        && object["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())
        && !(object["kind"] == "Namespace"
            && object["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty()))
}

/// Writes `object` over the revision `expected` (a create when `expected` is 0). Returns the
/// stored object with its new resourceVersion, or `None` when another write got there first.
pub async fn write(
    storage: &dyn Storage,
    key: &str,
    object: Value,
    expected: i64,
) -> Result<std::result::Result<Value, Option<Current>>> {
    let bytes = encode(&object)?;
    let written = if expected == 0 {
        storage.create(key.as_bytes().to_vec(), bytes).await?
    } else {
        storage
            .update(key.as_bytes().to_vec(), bytes, expected)
            .await?
    };
    Ok(match written {
        Written::Done { revision } => {
            let mut object = object;
            set_resource_version(&mut object, revision);
            Ok(object)
        }
        Written::Conflict { current: now } => Err(now.as_ref().and_then(current)),
    })
}

/// Deletes `key` if still at `expected`; `false` when another write got there first.
pub async fn remove(storage: &dyn Storage, key: &str, expected: i64) -> Result<Option<i64>> {
    Ok(
        match storage.delete(key.as_bytes().to_vec(), expected).await? {
            Written::Done { revision } => Some(revision),
            Written::Conflict { .. } => None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn a_daemon_sets_template_generation_counts_template_changes() {
        let registry = Registry::default();
        let resource = &registry.find("apps", "v1", "daemonsets").unwrap();
        let mut created = json!({"metadata": {"name": "ds",
            "annotations": {DAEMON_SET_TEMPLATE_GENERATION: "7"}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}});
        set_template_generation(resource, &mut created, None);
        assert_eq!(
            created["metadata"]["annotations"][DAEMON_SET_TEMPLATE_GENERATION],
            "1"
        );
        let mut scaled = created.clone();
        scaled["spec"]["minReadySeconds"] = json!(5);
        scaled["metadata"]["annotations"][DAEMON_SET_TEMPLATE_GENERATION] = json!("9");
        set_template_generation(resource, &mut scaled, Some(&created));
        assert_eq!(
            scaled["metadata"]["annotations"][DAEMON_SET_TEMPLATE_GENERATION],
            "1"
        );
        let mut retemplated = scaled.clone();
        retemplated["spec"]["template"]["spec"]["containers"][0]["image"] = json!("b");
        set_template_generation(resource, &mut retemplated, Some(&scaled));
        assert_eq!(
            retemplated["metadata"]["annotations"][DAEMON_SET_TEMPLATE_GENERATION],
            "2"
        );
    }

    #[test]
    fn generation_moves_with_the_desired_state_only() {
        let registry = Registry::default();
        let deployments = &registry.find("apps", "v1", "deployments").unwrap();
        let old = json!({"metadata": {"name": "w", "uid": "u", "generation": 3},
            "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let same = prepare_for_update(
            deployments,
            Part::Main,
            json!({"metadata": {"name": "w", "labels": {"a": "b"}}, "spec": {"replicas": 1},
                "status": {"replicas": 9}}),
            &old,
        );
        assert_eq!(same["metadata"]["generation"], 3);
        assert_eq!(same["metadata"]["uid"], "u");
        assert_eq!(
            same["status"]["replicas"], 1,
            "status kept from the old object"
        );
        let scaled = prepare_for_update(
            deployments,
            Part::Main,
            json!({"metadata": {"name": "w"}, "spec": {"replicas": 2}}),
            &old,
        );
        assert_eq!(scaled["metadata"]["generation"], 4);
        let status = prepare_for_update(
            deployments,
            Part::Status,
            json!({"spec": {"replicas": 7}, "status": {"replicas": 2}}),
            &old,
        );
        assert_eq!(status["spec"]["replicas"], 1);
        assert_eq!(status["status"]["replicas"], 2);
    }

    #[test]
    fn qos_follows_requests_and_limits() {
        let pod = |resources: Value| json!({"spec": {"containers": [{"name": "c", "resources": resources}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
    }

    #[test]
    fn uids_look_like_uuids() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
        assert_ne!(uid, new_uid());
        assert_eq!(name_suffix().len(), 5);
    }
}
