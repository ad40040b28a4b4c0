//! The verbs on one object: get, create, update, patch, delete, and the subresources
//! (status, scale, binding; eviction is [`crate::eviction`]'s).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::{success_status, ApiError, Result, Target};
use crate::field_validation::FieldValidation;
use crate::object::{self, meta_str, metadata_mut, Current, Part, WRITE_RETRIES};
use crate::patch::{self, PatchType};
use crate::registry::{Resource, Subresource};
use crate::request::Query;
use crate::schema::{self, Gvk};
use crate::storage::Storage;
use crate::warning::Warnings;
use crate::watch_cache::WatchCache;
use crate::{admission, apply, selector};

/// Bodies larger than this are refused with 413 (kube-apiserver's limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What a handler answers: a JSON object with its status code, or a stream of lines.
pub enum Reply {
    /// A JSON body.
    Object(u16, Value),
    /// A JSON body with its own Content-Type (aggregated discovery is read by it).
    Typed(u16, Value, &'static str),
    /// A JSON body already serialized (a list written from shared objects).
    Json(u16, Vec<u8>),
    /// A watch: lines as they come, with the stream's Content-Type.
    Stream(tokio::sync::mpsc::Receiver<bytes::Bytes>, &'static str),
}

/// The server's state every handler shares.
pub struct Api {
    /// The keyspace.
    pub storage: Arc<dyn Storage>,
    /// The resources served.
    pub registry: crate::registry::Registry,
    /// The watch cache of the whole registry.
    pub cache: Arc<WatchCache>,
    /// The key service account tokens are signed with (none: no TokenRequest, no such tokens).
    pub service_accounts: Option<Arc<crate::service_account::ServiceAccountKeys>>,
    /// The OpenAPI documents and the kinds' schemas.
    pub openapi: crate::openapi::OpenApi,
    /// Services' cluster IPs and node ports.
    pub services: crate::allocator::ServiceAllocator,
    /// The LimitRanger and ResourceQuota plugins' state.
    pub quota: crate::quota::QuotaAdmission,
    /// kube-apiserver's metrics of this server (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// One request on one resource.
pub struct Call<'a> {
    /// The resource.
    pub resource: &'a Resource,
    /// The namespace from the URL.
    pub namespace: Option<&'a str>,
    /// The object's name from the URL (empty for collections).
    pub name: &'a str,
    /// The query.
    pub query: &'a Query,
    /// The raw body.
    pub body: &'a [u8],
    /// The request's Content-Type.
    pub content_type: Option<&'a str>,
    /// The warnings the response carries.
    pub warnings: &'a Warnings,
    /// The request's User-Agent (names the field manager when the query does not).
    pub user_agent: Option<&'a str>,
}

impl Call<'_> {
    /// How messages name the object.
    pub fn target(&self) -> Target<'_> {
        Target {
            resource: self.resource.plural,
            group: self.resource.group,
            name: self.name,
        }
    }

    /// The field manager a write is recorded under.
    pub fn manager(&self) -> String {
        apply::manager_name(self.query.get("fieldManager"), self.user_agent)
    }

    fn key(&self) -> String {
        self.resource.key(self.namespace, self.name)
    }

    fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    /// The body as a JSON object (a missing Content-Type is JSON, as clients send it).
    pub fn json_body(&self) -> Result<Value> {
        let media = self
            .content_type
            .map(|c| c.split(';').next().unwrap_or("").trim())
            .unwrap_or("application/json");
        if media != "application/json" && !media.is_empty() && media != "*/*" {
            return Err(ApiError::unsupported_media_type(media));
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(MAX_BODY_BYTES));
        }
        let value: Value = serde_json::from_slice(self.body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        Ok(value)
    }
}

impl Api {
    /// GET of one object.
    pub async fn get(&self, call: &Call<'_>) -> Result<Value> {
        Ok(
            object::must_read(&*self.storage, &call.key(), &call.target())
                .await?
                .object,
        )
    }

    /// Namespaced objects need their namespace to exist and not be terminating.
    async fn check_namespace_open(&self, call: &Call<'_>) -> Result<()> {
        let Some(namespace) = call.namespace.filter(|_| call.resource.namespaced) else {
            return Ok(());
        };
        let key = format!("/registry/namespaces/{namespace}");
        let target = Target {
            resource: "namespaces",
            group: "",
            name: namespace,
        };
        // The watch cache answers for a namespace it has seen open (as kube-apiserver's
        // lifecycle admission reads its informer); only one it does not know, or sees
        // terminating, is read from the store, since the cache may lag a change just made.
        let cached = self
            .cache
            .shard("/registry/namespaces/")
            .and_then(|shard| shard.get(&key));
        if cached.is_some_and(|ns| {
            ns["metadata"]
                .get("deletionTimestamp")
                .is_none_or(Value::is_null)
        }) {
            return Ok(());
        }
        let ns = object::must_read(&*self.storage, &key, &target).await?;
        if ns.object["metadata"]
            .get("deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            return Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                call.resource.plural,
                meta_str(&ns.object, "name").unwrap_or(namespace)
            )));
        }
        Ok(())
    }

    /// POST of a new object.
    pub async fn create(&self, call: &Call<'_>) -> Result<Reply> {
        apply::check_field_manager(call, "CreateOptions", false)?;
        let object = self.typed_body(call, "CreateOptions", Gvk::of(call.resource))?;
        self.create_object(call, object, &apply::Tracking::of(call, Part::Main))
            .await
    }

    /// Creates `object` (a request's body, or what an apply built), recording its fields.
    pub(crate) async fn create_object(
        &self,
        call: &Call<'_>,
        mut object: Value,
        tracking: &apply::Tracking,
    ) -> Result<Reply> {
        let resource = call.resource;
        let requested = object["metadata"].get("managedFields").cloned();
        object::check_type(resource, &mut object, resource.kind)?;
        object::check_namespace(resource, &mut object, call.namespace)?;
        let name = meta_str(&object, "name").unwrap_or("").to_owned();
        let generate = meta_str(&object, "generateName").unwrap_or("").to_owned();
        if name.is_empty() && generate.is_empty() {
            return Err(ApiError::invalid(
                resource.kind,
                resource.group,
                "",
                &[admission::FieldError {
                    reason: "FieldValueRequired",
                    field: "metadata.name".into(),
                    message: "Required value: name or generateName is required".into(),
                }],
            ));
        }
        if resource.kind != "Namespace" {
            self.check_namespace_open(call).await?;
        }
        crate::crd::objects::check_not_terminating(resource)?;
        object::prepare_for_create(resource, &mut object);
        for attempt in 0..WRITE_RETRIES {
            let mut candidate = object.clone();
            if name.is_empty() {
                let generated = format!("{generate}{}", object::name_suffix());
                metadata_mut(&mut candidate).insert("name".into(), json!(generated));
            }
            // After the name: some defaults derive from it (a Job's job-name label).
            object::apply_defaults(resource, &mut candidate);
            crate::certificates::fill_requester(resource, &mut candidate);
            object::set_template_generation(resource, &mut candidate, None);
            self.default_from_limit_ranges(resource, call.namespace, &mut candidate)
                .await?;
            admission::add_default_tolerations(resource.kind, &mut candidate);
            self.admit_pod_priority(resource, &mut candidate).await?;
            tracking.record(
                resource,
                Part::Main,
                None,
                &mut candidate,
                requested.clone(),
            );
            let candidate_name = meta_str(&candidate, "name").unwrap_or("").to_owned();
            object::validate(resource, &candidate, None)?;
            self.admit_priority_class(resource, &candidate, false)?;
            self.check_limit_ranges(resource, call.namespace, &candidate)
                .await?;
            self.charge_quotas(resource, call.namespace, &candidate, call.dry_run())
                .await?;
            self.before_write(resource, &mut candidate, true);
            let claimed = self
                .allocate_service(resource, &mut candidate, None, call.dry_run())
                .await?;
            if call.dry_run() {
                return Ok(Reply::Object(201, candidate));
            }
            let key = resource.key(call.namespace, &candidate_name);
            let written = object::write(&*self.storage, &key, candidate.clone(), 0).await;
            if !matches!(written, Ok(Ok(_))) {
                self.release_service(resource, &candidate, &claimed).await;
            }
            match written? {
                Ok(stored) => {
                    self.after_write(resource, &stored).await;
                    return Ok(Reply::Object(201, stored));
                }
                Err(_) if name.is_empty() && attempt + 1 < WRITE_RETRIES => continue,
                Err(_) => {
                    return Err(ApiError::already_exists(&Target {
                        name: &candidate_name,
                        ..call.target()
                    }))
                }
            }
        }
        Err(ApiError::internal("no free generated name"))
    }

    /// PUT of an object (or of its status).
    pub async fn update(&self, call: &Call<'_>, part: Part) -> Result<Reply> {
        apply::check_field_manager(call, "UpdateOptions", false)?;
        let resource = call.resource;
        let mut new = self.typed_body(call, "UpdateOptions", Gvk::of(resource))?;
        object::check_type(resource, &mut new, resource.kind)?;
        object::check_namespace(resource, &mut new, call.namespace)?;
        match meta_str(&new, "name") {
            Some(n) if n != call.name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({})",
                    call.name
                )))
            }
            _ => {
                metadata_mut(&mut new).insert("name".into(), json!(call.name));
            }
        }
        let precondition = meta_str(&new, "resourceVersion")
            .filter(|rv| !rv.is_empty())
            .map(str::to_owned);
        let tracking = apply::Tracking::of(call, part);
        self.write_over(call, part, precondition, &tracking, |_| Ok(new.clone()))
            .await
            .map(|(code, object)| Reply::Object(code, object))
    }

    /// Reads the object, computes its next state with `change`, and writes it if nobody wrote
    /// in between; retries when `precondition` (a resourceVersion the client named) is unset.
    pub(crate) async fn write_over(
        &self,
        call: &Call<'_>,
        part: Part,
        precondition: Option<String>,
        tracking: &apply::Tracking,
        change: impl Fn(&Current) -> Result<Value>,
    ) -> Result<(u16, Value)> {
        let resource = call.resource;
        let key = call.key();
        let target = call.target();
        for _ in 0..WRITE_RETRIES {
            let mut current = object::must_read(&*self.storage, &key, &target).await?;
            // A custom object is changed as the version asked for shows it.
            let stored = current.object.clone();
            crate::crd::objects::to_version(resource, &mut current.object);
            if let Some(rv) = &precondition {
                if *rv != current.revision.to_string() {
                    return Err(ApiError::modified(&target));
                }
            }
            let mut new = change(&current)?;
            let requested = new["metadata"].get("managedFields").cloned();
            let new_uid = meta_str(&new, "uid").filter(|u| !u.is_empty());
            let old_uid = meta_str(&current.object, "uid");
            if let (Some(new_uid), Some(old_uid)) = (new_uid, old_uid) {
                if new_uid != old_uid {
                    return Err(ApiError::conflict(
                        &target,
                        &format!("Precondition failed: UID in precondition: {new_uid}, UID in object meta: {old_uid}"),
                    ));
                }
            }
            object::check_type(resource, &mut new, resource.kind)?;
            let mut new = object::prepare_for_update(resource, part, new, &current.object);
            object::apply_defaults(resource, &mut new);
            object::set_template_generation(resource, &mut new, Some(&current.object));
            if part == Part::Main {
                Api::prepare_service_update(resource, &mut new, &current.object);
            }
            tracking.record(resource, part, Some(&current.object), &mut new, requested);
            if part == Part::Main {
                Api::keep_pod_priority(resource, &mut new, &current.object);
            }
            if part != Part::Binding {
                object::validate(resource, &new, Some(&current.object))?;
            }
            if part == Part::Main {
                self.admit_priority_class(resource, &new, true)?;
            }
            self.before_write(resource, &mut new, false);
            if new == stored {
                return Ok((200, current.object));
            }
            let claimed = match part {
                Part::Main => {
                    self.allocate_service(resource, &mut new, Some(&current.object), call.dry_run())
                        .await?
                }
                _ => Default::default(),
            };
            if call.dry_run() {
                return Ok((200, new));
            }
            if object::ready_to_delete(&new) {
                let removed = object::remove(&*self.storage, &key, current.revision).await;
                match removed {
                    Ok(Some(_)) => self.release_replaced(resource, &current.object, None).await,
                    _ => self.release_service(resource, &new, &claimed).await,
                }
                match removed? {
                    Some(revision) => {
                        crate::watch_cache::set_resource_version(&mut new, revision);
                        return Ok((200, new));
                    }
                    None if precondition.is_some() => return Err(ApiError::modified(&target)),
                    None => continue,
                }
            }
            let written = object::write(&*self.storage, &key, new.clone(), current.revision).await;
            match &written {
                Ok(Ok(stored)) => {
                    self.release_replaced(resource, &current.object, Some(stored))
                        .await
                }
                _ => self.release_service(resource, &new, &claimed).await,
            }
            match written? {
                Ok(stored) => {
                    self.after_write(resource, &stored).await;
                    return Ok((200, stored));
                }
                Err(_) if precondition.is_none() => continue,
                Err(_) => return Err(ApiError::modified(&target)),
            }
        }
        Err(ApiError::modified(&target))
    }

    /// PATCH of an object (or of its status).
    pub async fn patch(&self, call: &Call<'_>, part: Part) -> Result<Reply> {
        if apply::is_apply(call.content_type) {
            return self.server_side_apply(call, part).await;
        }
        apply::check_field_manager(call, "PatchOptions", false)?;
        let patch_type = self.patch_type(call)?;
        if call.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(MAX_BODY_BYTES));
        }
        let validation = FieldValidation::from_query(call.query, "PatchOptions")?;
        let problems = self.patch_problems(validation, patch_type, call.body);
        let gvk = Gvk::of(call.resource);
        let tracking = apply::Tracking::of(call, part);
        let precondition = patch_precondition(call.body);
        let (code, object) = self
            .write_over(call, part, precondition, &tracking, |current| {
                let mut patched = patch::apply(gvk.kind, &current.object, patch_type, call.body)
                    .map_err(|e| patch_error(&call.target(), e))?;
                metadata_mut(&mut patched).insert("name".into(), json!(call.name));
                self.checked_patch(call, validation, patch_type, &problems, gvk, patched)
            })
            .await?;
        Ok(Reply::Object(code, object))
    }

    fn patch_type(&self, call: &Call<'_>) -> Result<PatchType> {
        let content_type = call.content_type.unwrap_or("application/json");
        match PatchType::from_content_type(content_type) {
            Some(PatchType::StrategicMerge) if call.resource.custom.is_some() => {
                Err(crate::crd::objects::strategic_merge_refused())
            }
            Some(t) => Ok(t),
            None if content_type.starts_with("application/apply-patch") => {
                Err(ApiError::unsupported_media_type(
                    "application/apply-patch+yaml (apply to the scale subresource is not served)",
                ))
            }
            None => Err(ApiError::unsupported_media_type(content_type)),
        }
    }

    /// DELETE of an object: immediate, or marked with a deletionTimestamp while finalizers or
    /// a pod's grace period hold it.
    pub async fn delete(&self, call: &Call<'_>) -> Result<Reply> {
        let options = delete_options(call)?;
        let key = call.key();
        let target = call.target();
        for _ in 0..WRITE_RETRIES {
            let current = object::must_read(&*self.storage, &key, &target).await?;
            check_preconditions(&options, &current, &target)?;
            let marked = mark_for_deletion(call.resource, &current.object, &options);
            if call.dry_run() {
                return Ok(Reply::Object(200, marked.unwrap_or(current.object)));
            }
            if let Some(marked) = marked {
                if marked == current.object {
                    return Ok(Reply::Object(200, current.object));
                }
                match object::write(&*self.storage, &key, marked, current.revision).await? {
                    Ok(stored) => return Ok(Reply::Object(200, stored)),
                    Err(_) => continue,
                }
            }
            if let Some(revision) = object::remove(&*self.storage, &key, current.revision).await? {
                self.release_replaced(call.resource, &current.object, None)
                    .await;
                let mut last = current.object;
                crate::watch_cache::set_resource_version(&mut last, revision);
                if call.resource.kind == "Pod" {
                    return Ok(Reply::Object(200, last));
                }
                return Ok(Reply::Object(
                    200,
                    success_status(&target, meta_str(&last, "uid")),
                ));
            }
        }
        Err(ApiError::modified(&target))
    }

    /// The `/scale` subresource: GET, PUT and PATCH through an `autoscaling/v1 Scale`.
    pub async fn scale(&self, call: &Call<'_>, verb: crate::request::Verb) -> Result<Reply> {
        use crate::request::Verb;
        let current = object::must_read(&*self.storage, &call.key(), &call.target()).await?;
        let scale = match &call.resource.custom {
            Some(custom) => crate::crd::objects::to_scale(custom, &current.object)
                .ok_or_else(ApiError::no_route)?,
            None => to_scale(&current.object),
        };
        let scale_kind = schema::subresource_kind(Subresource::Scale, Gvk::of(call.resource));
        let (new_scale, precondition) = match verb {
            Verb::Get => return Ok(Reply::Object(200, scale)),
            Verb::Update => {
                let body = self.typed_body(call, "UpdateOptions", scale_kind)?;
                let rv = meta_str(&body, "resourceVersion")
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned);
                (body, rv)
            }
            Verb::Patch => {
                let patch_type = self.patch_type(call)?;
                let validation = FieldValidation::from_query(call.query, "PatchOptions")?;
                let problems = self.patch_problems(validation, patch_type, call.body);
                let patched = patch::apply("Scale", &scale, patch_type, call.body)
                    .map_err(|e| patch_error(&call.target(), e))?;
                let patched = self
                    .checked_patch(call, validation, patch_type, &problems, scale_kind, patched)?;
                let rv = patch_precondition(call.body);
                (patched, rv)
            }
            other => return Err(ApiError::method_not_allowed(other.as_str(), "scale")),
        };
        let replicas = match &new_scale["spec"]["replicas"] {
            Value::Null => 0,
            v => v.as_i64().filter(|r| *r >= 0).ok_or_else(|| {
                ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    call.name,
                    &[admission::FieldError {
                        reason: "FieldValueInvalid",
                        field: "spec.replicas".into(),
                        message: format!("Invalid value: {v}: must be greater than or equal to 0"),
                    }],
                )
            })?,
        };
        let tracking = apply::Tracking::Update {
            manager: call.manager(),
            subresource: "scale",
        };
        let (_, object) = self
            .write_over(call, Part::Main, precondition, &tracking, |current| {
                let mut next = current.object.clone();
                match &call.resource.custom {
                    Some(custom) => crate::crd::objects::set_replicas(custom, &mut next, replicas),
                    None => next["spec"]["replicas"] = json!(replicas),
                }
                Ok(next)
            })
            .await?;
        match &call.resource.custom {
            Some(custom) => crate::crd::objects::to_scale(custom, &object)
                .map(|scale| Reply::Object(200, scale))
                .ok_or_else(ApiError::no_route),
            None => Ok(Reply::Object(200, to_scale(&object))),
        }
    }

    /// `pods/NAME/binding`: assigns the pod to a node, once.
    pub async fn bind(&self, call: &Call<'_>) -> Result<Reply> {
        let binding = call.json_body()?;
        let node = binding["target"]["name"].as_str().unwrap_or("").to_owned();
        if node.is_empty() {
            return Err(ApiError::invalid(
                "Binding",
                "",
                call.name,
                &[admission::FieldError {
                    reason: "FieldValueRequired",
                    field: "target.name".into(),
                    message: "Required value".into(),
                }],
            ));
        }
        let target = call.target();
        let untracked = apply::Tracking::Untracked;
        self.write_over(call, Part::Binding, None, &untracked, |current| {
            let assigned = current.object["spec"]["nodeName"].as_str().unwrap_or("");
            if !assigned.is_empty() {
                return Err(ApiError::conflict(
                    &target,
                    &format!(
                        "pod {} is already assigned to node \"{assigned}\"",
                        call.name
                    ),
                ));
            }
            if current.object["metadata"]
                .get("deletionTimestamp")
                .is_some_and(|t| !t.is_null())
            {
                return Err(ApiError::conflict(
                    &target,
                    &format!(
                        "pod {} is being deleted, cannot be assigned to a host",
                        call.name
                    ),
                ));
            }
            let mut next = current.object.clone();
            next["spec"]["nodeName"] = json!(node);
            set_pod_scheduled(&mut next);
            Ok(next)
        })
        .await?;
        Ok(Reply::Object(
            201,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }

    /// Dispatches a request on one named object.
    pub async fn object_call(
        &self,
        call: &Call<'_>,
        verb: crate::request::Verb,
        subresource: Option<&str>,
    ) -> Result<Reply> {
        use crate::request::Verb;
        let resource = call.resource;
        let sub = match subresource {
            None => None,
            Some(name) => Some(
                resource
                    .subresources
                    .iter()
                    .copied()
                    .find(|s| s.name() == name)
                    .ok_or_else(ApiError::no_route)?,
            ),
        };
        match (sub, verb) {
            (None, Verb::Get) => Ok(Reply::Object(200, self.get(call).await?)),
            (None, Verb::Update) => self.update(call, Part::Main).await,
            (None, Verb::Patch) => self.patch(call, Part::Main).await,
            (None, Verb::Delete) => self.delete(call).await,
            (Some(Subresource::Status), Verb::Get) => Ok(Reply::Object(200, self.get(call).await?)),
            (Some(Subresource::Status), Verb::Update) => self.update(call, Part::Status).await,
            (Some(Subresource::Status), Verb::Patch) => self.patch(call, Part::Status).await,
            (Some(Subresource::Scale), _) => self.scale(call, verb).await,
            (Some(Subresource::Binding), Verb::Create) => self.bind(call).await,
            (Some(Subresource::Eviction), Verb::Create) => self.evict(call).await,
            (Some(Subresource::Token), Verb::Create) => self.token(call).await,
            (Some(Subresource::Finalize), Verb::Update) => self.update(call, Part::Finalize).await,
            (Some(Subresource::Approval), Verb::Get) => {
                Ok(Reply::Object(200, self.get(call).await?))
            }
            (Some(Subresource::Approval), Verb::Update) => self.update(call, Part::Approval).await,
            (Some(Subresource::Approval), Verb::Patch) => self.patch(call, Part::Approval).await,
            (_, verb) => Err(ApiError::method_not_allowed(
                verb.as_str(),
                &match subresource {
                    Some(s) => format!("{}/{s}", resource.plural),
                    None => resource.plural.to_owned(),
                },
            )),
        }
    }
}

/// A patch that names a resourceVersion makes it a precondition, as kube-apiserver does.
fn patch_precondition(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value
        .get("metadata")?
        .get("resourceVersion")?
        .as_str()
        .filter(|rv| !rv.is_empty())
        .map(str::to_owned)
}

fn patch_error(target: &Target<'_>, error: patch::PatchError) -> ApiError {
    let message = error.message;
    match error.code {
        415 => ApiError::unsupported_media_type(&message),
        422 => ApiError::invalid(
            target.resource,
            target.group,
            target.name,
            &[admission::FieldError {
                reason: "FieldValueInvalid",
                field: "patch".into(),
                message,
            }],
        ),
        413 => ApiError {
            code: 413,
            reason: "RequestEntityTooLarge",
            ..ApiError::bad_request(message)
        },
        500 => ApiError::internal(message),
        _ => ApiError::bad_request(message),
    }
}

/// The `autoscaling/v1 Scale` view of a workload.
fn to_scale(object: &Value) -> Value {
    let metadata = &object["metadata"];
    let selector = object["spec"]["selector"].clone();
    let selector = selector::LabelSelector::from_json(&selector)
        .map(|s| s.to_string())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

/// DeleteOptions, from the body or the query.
fn delete_options(call: &Call<'_>) -> Result<Value> {
    let mut options = if call.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        call.json_body()?
    };
    if let Some(grace) = call
        .query
        .integer("gracePeriodSeconds")
        .map_err(ApiError::bad_request)?
    {
        options["gracePeriodSeconds"] = json!(grace);
    }
    if let Some(policy) = call.query.non_empty("propagationPolicy") {
        options["propagationPolicy"] = json!(policy);
    }
    match options["propagationPolicy"].as_str() {
        None | Some("Orphan" | "Background" | "Foreground") => Ok(options),
        Some(other) => Err(ApiError::invalid(
            "DeleteOptions",
            "",
            "",
            &[admission::FieldError {
                reason: "FieldValueNotSupported",
                field: "propagationPolicy".into(),
                message: format!(
                    "Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            }],
        )),
    }
}

fn check_preconditions(options: &Value, current: &Current, target: &Target<'_>) -> Result<()> {
    let preconditions = &options["preconditions"];
    if let Some(uid) = preconditions["uid"].as_str() {
        let actual = meta_str(&current.object, "uid").unwrap_or("");
        if uid != actual {
            return Err(ApiError::conflict(
                target,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = preconditions["resourceVersion"].as_str() {
        if rv != current.revision.to_string() {
            return Err(ApiError::conflict(
                target,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    current.revision
                ),
            ));
        }
    }
    Ok(())
}

/// The object as a delete leaves it when something still holds it: finalizers (kept, plus
/// `orphan`/`foregroundDeletion` as the propagation policy asks), a namespace's own finalizers,
/// or a running pod's grace period. `None`: delete it now.
fn mark_for_deletion(resource: &Resource, object: &Value, options: &Value) -> Option<Value> {
    let mut marked = object.clone();
    let already = object["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let mut finalizers: Vec<Value> = object["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !already {
        let extra = match options["propagationPolicy"].as_str() {
            Some("Orphan") => Some("orphan"),
            Some("Foreground") => Some("foregroundDeletion"),
            _ => None,
        };
        if let Some(extra) = extra {
            if !finalizers.iter().any(|f| f == extra) {
                finalizers.push(json!(extra));
            }
        }
    }
    let namespace_held = resource.kind == "Namespace"
        && object["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
    let grace = if resource.kind == "Pod" {
        pod_grace_seconds(object, options)
    } else {
        0
    };
    if finalizers.is_empty() && !namespace_held && grace == 0 {
        return None;
    }
    let metadata = metadata_mut(&mut marked);
    if !finalizers.is_empty() {
        metadata.insert("finalizers".into(), Value::Array(finalizers));
    }
    if !already || grace > 0 {
        metadata.insert("deletionTimestamp".into(), json!(object::rfc3339_in(grace)));
        metadata.insert("deletionGracePeriodSeconds".into(), json!(grace));
    }
    if resource.kind == "Namespace" {
        marked["status"]["phase"] = json!("Terminating");
    }
    Some(marked)
}

/// A binding's mark on the pod, as kube-apiserver's `assignPod` sets it: condition
/// `PodScheduled=True`, its transition time moved when the status changes (from an earlier
/// `False, Unschedulable`).
fn set_pod_scheduled(pod: &mut Value) {
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let Some(conditions) = pod["status"]["conditions"].as_array_mut() else {
        return;
    };
    let scheduled = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": object::now_rfc3339()});
    match conditions.iter_mut().find(|c| c["type"] == "PodScheduled") {
        Some(old) if old["status"] == "True" => {}
        Some(old) => *old = scheduled,
        None => conditions.push(scheduled),
    }
}

/// How long a pod's delete waits for its agent: 0 for a pod no node runs (or that finished),
/// else the delete's grace period or the pod's own, never longer than one already set.
fn pod_grace_seconds(pod: &Value, options: &Value) -> i64 {
    let on_node = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if !on_node || finished {
        return 0;
    }
    let requested = options["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30)
        .max(0);
    match pod["metadata"]["deletionGracePeriodSeconds"].as_i64() {
        Some(set) => requested.min(set),
        None => requested,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn a_running_pod_is_marked_and_an_unscheduled_one_goes() {
        let registry = Registry::default();
        let pods = &registry.find("", "v1", "pods").unwrap();
        let running = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1",
            "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
        let marked = mark_for_deletion(pods, &running, &json!({})).unwrap();
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
        assert!(mark_for_deletion(pods, &running, &json!({"gracePeriodSeconds": 0})).is_none());
        let pending = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(mark_for_deletion(pods, &pending, &json!({})).is_none());
    }

    #[test]
    fn finalizers_hold_an_object() {
        let registry = Registry::default();
        let cms = &registry.find("", "v1", "configmaps").unwrap();
        let held = json!({"metadata": {"name": "c", "finalizers": ["x"]}});
        let marked = mark_for_deletion(cms, &held, &json!({})).unwrap();
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        let orphaned = mark_for_deletion(
            cms,
            &json!({"metadata": {"name": "c"}}),
            &json!({"propagationPolicy": "Orphan"}),
        )
        .unwrap();
        assert_eq!(orphaned["metadata"]["finalizers"], json!(["orphan"]));
        assert!(mark_for_deletion(cms, &json!({"metadata": {"name": "c"}}), &json!({})).is_none());
    }

    #[test]
    fn a_binding_marks_the_pod_scheduled() {
        let mut pending = json!({"metadata": {"name": "p"}, "spec": {},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
                "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available."}]}});
        set_pod_scheduled(&mut pending);
        let conditions = pending["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0]["status"], "True");
        assert!(conditions[0].get("reason").is_none());
        assert!(conditions[0]["lastTransitionTime"].is_string());
        let mut fresh = json!({"metadata": {"name": "p"}, "spec": {}});
        set_pod_scheduled(&mut fresh);
        assert_eq!(fresh["status"]["conditions"][0]["type"], "PodScheduled");
    }

    #[test]
    fn scale_reads_replicas_and_selector() {
        let deployment = json!({"metadata": {"name": "w", "namespace": "d", "resourceVersion": "5"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "w"}}},
            "status": {"replicas": 2}});
        let scale = to_scale(&deployment);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=w");
        assert_eq!(scale["metadata"]["resourceVersion"], "5");
    }
}
