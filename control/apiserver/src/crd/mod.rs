//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`), served as kube-apiextensions-server
//! serves them, inside this API server.
//!
//! A CRD is a built-in resource (a row of the static table); what makes it more is this
//! module. Its objects live at `/registry/apiextensions.k8s.io/customresourcedefinitions/<name>`
//! like any other, so every member's watch cache sees every CRD: [`sync`] turns the cached CRDs
//! into the [`CustomTable`] the registry looks custom resources up in, adds a watch cache shard
//! for each (`/registry/<group>/<plural>/`) and rebuilds their OpenAPI documents. A CRD written
//! through one member is thus served by the others as soon as their caches see it.
//!
//! # Layout
//!
//! - [`definition`]: the CRD itself: kube's validation, its defaults, and the status the server
//!   sets on every write (`NamesAccepted`, `Established`, `acceptedNames`, `storedVersions`).
//! - [`structural`]: custom objects against their `openAPIV3Schema`: pruning, defaults,
//!   validation with kube's messages.
//! - [`objects`]: the verbs' hooks for custom objects (what differs from built-ins).
//! - [`printer`]: Tables from `additionalPrinterColumns` (kube's JSONPath subset).
//! - [`openapi`]: the OpenAPI v3 document of each custom group version.
//! - [`sync`]: cached CRDs → served resources; the cleanup of deleted CRDs.
//!
//! Out of scope: CEL rules (`x-kubernetes-validations` are accepted and not evaluated), webhook
//! conversion (only `conversion: None`: a version's objects differ by `apiVersion` alone).

pub mod definition;
pub mod objects;
pub mod openapi;
pub mod printer;
pub mod structural;
pub mod sync;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use serde_json::Value;

use crate::registry::{Resource, Subresource};

/// The finalizer that holds a deleted CRD until its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// What a CustomResourceDefinition says of one served version of its resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomResource {
    /// The CRD's name (`<plural>.<group>`).
    pub crd_name: String,
    /// The version objects are stored at.
    pub storage_version: String,
    /// The list kind (`<Kind>List` unless the CRD says otherwise).
    pub list_kind: String,
    /// This version's `openAPIV3Schema`.
    pub schema: Value,
    /// This version's `additionalPrinterColumns`.
    pub columns: Vec<Value>,
    /// The `/scale` subresource's paths, when declared.
    pub scale: Option<ScalePaths>,
    /// Whether the CRD is being deleted (no new objects then).
    pub terminating: bool,
}

/// Where `/scale` reads and writes in a custom object (JSON paths as the CRD gives them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// `.spec.replicas`, typically.
    pub spec_replicas: String,
    /// `.status.replicas`, typically.
    pub status_replicas: String,
    /// `.status.selector`, when given.
    pub label_selector: Option<String>,
}

/// The custom resources served now, and their group versions' OpenAPI documents; shared by
/// the registry, the OpenAPI server and [`sync`], which replaces the contents as CRDs change.
#[derive(Clone, Debug)]
pub struct CustomTable {
    served: Arc<RwLock<Served>>,
    /// The revision of the CRDs the table reflects: a CRD write waits for it, so that on the
    /// member that took the write, Established means served.
    synced: Arc<tokio::sync::watch::Sender<i64>>,
}

impl Default for CustomTable {
    fn default() -> CustomTable {
        CustomTable {
            served: Arc::default(),
            synced: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

/// The contents of a [`CustomTable`].
#[derive(Debug, Default)]
pub struct Served {
    /// One entry per served version of each established CRD.
    pub resources: Vec<Resource>,
    /// OpenAPI documents by path (`apis/<group>/<version>`): the body and its hash.
    pub openapi: BTreeMap<String, (Bytes, String)>,
}

impl CustomTable {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Served> {
        self.served.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Every served custom resource.
    pub fn resources(&self) -> Vec<Resource> {
        self.read().resources.clone()
    }

    /// The custom resource at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        self.read()
            .resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// The OpenAPI document at `path` (`apis/<group>/<version>`): its body and hash.
    pub fn openapi(&self, path: &str) -> Option<(Bytes, String)> {
        self.read().openapi.get(path).cloned()
    }

    /// The paths of the OpenAPI documents, each with its hash.
    pub fn openapi_paths(&self) -> Vec<(String, String)> {
        self.read()
            .openapi
            .iter()
            .map(|(path, (_, hash))| (path.clone(), hash.clone()))
            .collect()
    }

    /// Replaces what is served.
    pub fn replace(&self, served: Served) {
        *self.served.write().unwrap_or_else(|e| e.into_inner()) = served;
    }

    /// Records that the table reflects the CRDs as of `revision`.
    pub fn mark_synced(&self, revision: i64) {
        self.synced.send_if_modified(|synced| {
            let moved = revision > *synced;
            *synced = (*synced).max(revision);
            moved
        });
    }

    /// Waits until the table reflects the CRDs as of `revision`, at most `timeout`.
    pub async fn wait_synced(&self, revision: i64, timeout: std::time::Duration) -> bool {
        let mut synced = self.synced.subscribe();
        tokio::time::timeout(timeout, synced.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// A string that lives as long as the process, so that a custom resource has the same
/// `&'static str` names a built-in row has. Each distinct name is kept once: the memory is
/// bounded by the names CRDs ever used, not by how often they change.
pub fn intern(text: &str) -> &'static str {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(known) = names.get(text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// A list of names, kept as [`intern`] keeps one.
pub fn intern_list(items: &[String]) -> &'static [&'static str] {
    type Lists = HashSet<&'static [&'static str]>;
    static LISTS: Mutex<Option<Lists>> = Mutex::new(None);
    let interned: Vec<&'static str> = items.iter().map(|i| intern(i)).collect();
    let mut lists = LISTS.lock().unwrap_or_else(|e| e.into_inner());
    let lists = lists.get_or_insert_with(HashSet::new);
    if let Some(known) = lists.get(interned.as_slice()) {
        return known;
    }
    let leaked: &'static [&'static str] = Box::leak(interned.into_boxed_slice());
    lists.insert(leaked);
    leaked
}

/// The subresources a CRD version may declare.
fn subresources(status: bool, scale: bool) -> &'static [Subresource] {
    match (status, scale) {
        (false, false) => &[],
        (true, false) => &[Subresource::Status],
        (false, true) => &[Subresource::Scale],
        (true, true) => &[Subresource::Status, Subresource::Scale],
    }
}

/// kube's version priority (`v2` before `v1` before `v1beta2` before `v1beta1` before
/// `v1alpha1`, then other names alphabetically): discovery lists versions in this order and
/// the first is the preferred one.
pub fn version_priority(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (level, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else {
            return None;
        };
        Some((major, level, minor.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, la, na)), Some((mb, lb, nb))) => lb.cmp(&la).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The served resources of a CRD object: one per served version, named by its accepted
/// names; none until it is Established.
pub fn resources_of(crd: &Value) -> Vec<Resource> {
    if !definition::condition_true(crd, "Established") {
        return Vec::new();
    }
    let spec = &crd["spec"];
    let names = if crd["status"]["acceptedNames"]["plural"].is_string() {
        &crd["status"]["acceptedNames"]
    } else {
        &spec["names"]
    };
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let group = text(&spec["group"]);
    let plural = text(&names["plural"]);
    let kind = text(&names["kind"]);
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let singular = match text(&names["singular"]) {
        s if s.is_empty() => kind.to_lowercase(),
        s => s,
    };
    let list_kind = match text(&names["listKind"]) {
        s if s.is_empty() => format!("{kind}List"),
        s => s,
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"] == true)
        .map(|v| text(&v["name"]))
        .unwrap_or_default();
    let terminating = crd["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let storage_name = format!("{group}/{plural}");
    versions
        .iter()
        .filter(|v| v["served"] == true)
        .map(|version| {
            let subresources_spec = &version["subresources"];
            let scale = subresources_spec["scale"]
                .as_object()
                .map(|scale| ScalePaths {
                    spec_replicas: text(
                        &scale.get("specReplicasPath").cloned().unwrap_or_default(),
                    ),
                    status_replicas: text(
                        &scale.get("statusReplicasPath").cloned().unwrap_or_default(),
                    ),
                    label_selector: scale
                        .get("labelSelectorPath")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            let custom = CustomResource {
                crd_name: text(&crd["metadata"]["name"]),
                storage_version: storage_version.clone(),
                list_kind: list_kind.clone(),
                schema: version["schema"]["openAPIV3Schema"].clone(),
                columns: version["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                terminating,
                scale: scale.clone(),
            };
            Resource {
                group: intern(&group),
                version: intern(&text(&version["name"])),
                plural: intern(&plural),
                singular: intern(&singular),
                kind: intern(&kind),
                short_names: intern_list(&list(&names["shortNames"])),
                namespaced: spec["scope"] == "Namespaced",
                categories: intern_list(&list(&names["categories"])),
                subresources: subresources(
                    subresources_spec["status"].is_object(),
                    scale.is_some(),
                ),
                storage_name: intern(&storage_name),
                custom: Some(Arc::new(custom)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_sort_as_kube_sorts_them() {
        let mut versions = vec!["v1alpha1", "foo", "v1beta1", "v2", "v1", "v1beta2", "bar"];
        versions.sort_by(|a, b| version_priority(a, b));
        assert_eq!(
            versions,
            ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "bar", "foo"]
        );
    }

    #[test]
    fn an_established_crd_serves_its_served_versions() {
        let mut crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v1beta1", "served": false, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        assert!(resources_of(&crd).is_empty());
        crd["status"] = json!({"conditions": [{"type": "Established", "status": "True"}]});
        let served = resources_of(&crd);
        assert_eq!(served.len(), 1);
        let widgets = &served[0];
        assert_eq!(
            widgets.key(Some("d"), "w"),
            "/registry/example.com/widgets/d/w"
        );
        assert_eq!(widgets.short_names, ["wd"]);
        assert!(widgets.has_status());
        let custom = widgets.custom.as_ref().unwrap();
        assert_eq!(custom.list_kind, "WidgetList");
        assert_eq!(custom.storage_version, "v1");
        assert!(std::ptr::eq(intern("widgets"), widgets.plural));
    }
}
