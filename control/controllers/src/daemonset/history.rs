//! A DaemonSet's history: one ControllerRevision per pod template it has had, as kube's
//! daemon controller keeps them and `kubectl rollout history|undo ds/NAME` reads them.
//!
//! A revision is named `<ds>-<hash>` (the template hash with `status.collisionCount` mixed
//! in), labelled with the template's labels plus `controller-revision-hash: <hash>`, carries
//! the DaemonSet's annotations (so `kubernetes.io/change-cause` shows in the history), and
//! holds as `data` the strategic merge patch that puts the template back:
//! `{"spec": {"template": {..., "$patch": "replace"}}}` — exactly what `kubectl rollout undo`
//! sends. The current template's revision always has the highest number: returning to an old
//! template renumbers its revision rather than making a new one. Old revisions beyond
//! `revisionHistoryLimit` go, oldest first, unless a live pod still runs their template.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt as _;
use serde_json::{json, Value};

use super::Context;
use crate::deployment::hash::{normalized, pod_template_hash};
use crate::error::{is_conflict, is_not_found, Error, Result};
use crate::ownership::controller_reference;

/// The label naming the revision a pod or revision belongs to.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// The DaemonSet annotation the API server counts template changes in.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// The pod label carrying that count, for pods made before revisions existed.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

fn template_of(ds: &DaemonSet) -> PodTemplateSpec {
    ds.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

/// The revision `data` of the DaemonSet's current template (kube's `getPatch`).
pub fn revision_data(ds: &DaemonSet) -> Value {
    let mut template = serde_json::to_value(template_of(ds)).unwrap_or_else(|_| json!({}));
    template["$patch"] = json!("replace");
    json!({"spec": {"template": template}})
}

/// The template a revision restores, normalized for comparison.
fn restored_template(revision: &ControllerRevision) -> Option<Value> {
    let mut template = revision
        .data
        .as_ref()?
        .0
        .get("spec")?
        .get("template")?
        .clone();
    template.as_object_mut()?.remove("$patch");
    normalized(&template)
}

/// Whether `revision` holds the DaemonSet's current template (kube's `Match`, compared as
/// normalized JSON rather than bytes, so a client's field order does not matter).
pub fn matches(ds: &DaemonSet, revision: &ControllerRevision) -> bool {
    let current = serde_json::to_value(template_of(ds))
        .ok()
        .and_then(|v| normalized(&v));
    current.is_some() && restored_template(revision) == current
}

/// The hash label value of the DaemonSet's current template.
pub fn current_hash(ds: &DaemonSet) -> String {
    let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
    pod_template_hash(&template_of(ds), collisions)
}

/// The template generation the API server recorded, if any.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)?
        .parse()
        .ok()
}

/// Whether a pod runs the current template: its revision hash or its template generation
/// matches (kube's `IsPodUpdated`).
pub fn is_pod_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key));
    let hash_matches = !hash.is_empty() && label(REVISION_HASH_LABEL).is_some_and(|h| h == hash);
    let generation_matches = generation
        .is_some_and(|g| label(TEMPLATE_GENERATION_LABEL).is_some_and(|l| *l == g.to_string()));
    hash_matches || generation_matches
}

/// Finds the DaemonSet's current revision (creating it, or renumbering it to come last) and
/// its old ones (kube's `constructHistory`). `owned` are the revisions it controls.
pub async fn construct(
    ds: &DaemonSet,
    owned: Vec<Arc<ControllerRevision>>,
    ctx: &Context,
) -> Result<(ControllerRevision, Vec<ControllerRevision>)> {
    let namespace = ds.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut current: Vec<ControllerRevision> = Vec::new();
    let mut old: Vec<ControllerRevision> = Vec::new();
    for revision in owned {
        let mut revision = (*revision).clone();
        // A revision without its hash label (made by someone else) gets its name as one.
        let has_label = revision
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(REVISION_HASH_LABEL));
        if !has_label {
            let patch = json!({"metadata": {"labels": {REVISION_HASH_LABEL: revision.name_any()}}});
            revision = api
                .patch(
                    &revision.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await?;
        }
        if matches(ds, &revision) {
            current.push(revision);
        } else {
            old.push(revision);
        }
    }
    let next = old.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
    let current = match current.len() {
        0 => snapshot(ds, next, ctx).await?,
        _ => {
            let keep = dedup(current, &api).await?;
            if keep.revision < next {
                let patch = json!({"revision": next});
                api.patch(
                    &keep.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await?
            } else {
                keep
            }
        }
    };
    Ok((current, old))
}

/// Keeps the highest-numbered of several revisions of the current template and deletes the
/// others (kube also relabels their pods; here the pods keep their hash, which the next
/// rollout replaces).
async fn dedup(
    mut current: Vec<ControllerRevision>,
    api: &Api<ControllerRevision>,
) -> Result<ControllerRevision> {
    current.sort_by_key(|r| r.revision);
    let keep = current.pop().expect("at least one current revision");
    for duplicate in current {
        match api
            .delete(&duplicate.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(keep)
}

/// Creates the revision of the current template numbered `revision` (kube's `snapshot`). A
/// name already taken by another template raises the DaemonSet's `collisionCount`, so the
/// next reconcile hashes to another name.
async fn snapshot(ds: &DaemonSet, revision: i64, ctx: &Context) -> Result<ControllerRevision> {
    let namespace = ds.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &namespace);
    let hash = current_hash(ds);
    let name = format!("{}-{hash}", ds.name_any());
    let mut labels = template_of(ds)
        .metadata
        .and_then(|m| m.labels)
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_owned(), hash);
    let object = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![controller_reference(
                "apps/v1",
                "DaemonSet",
                &ds.metadata,
            )]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(revision_data(ds))),
        revision,
    };
    match api.create(&PostParams::default(), &object).await {
        Ok(created) => Ok(created),
        Err(e) if is_conflict(&e) => {
            let existing = api.get(&name).await?;
            if matches(ds, &existing) {
                return Ok(existing);
            }
            let collisions = ds
                .status
                .as_ref()
                .and_then(|s| s.collision_count)
                .unwrap_or(0);
            let daemonsets: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &namespace);
            let patch = json!({"status": {"collisionCount": collisions + 1}});
            daemonsets
                .patch_status(
                    &ds.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await?;
            Err(Error::HashCollision(ds.name_any()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes old revisions past `revisionHistoryLimit`, oldest first, sparing those whose
/// template a live pod still runs (kube's `cleanupHistory`).
pub async fn cleanup(
    ds: &DaemonSet,
    mut old: Vec<ControllerRevision>,
    pods: &[Arc<Pod>],
    ctx: &Context,
) -> Result<()> {
    let limit = ds
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let mut excess = old.len().saturating_sub(limit);
    if excess == 0 {
        return Ok(());
    }
    let live: HashSet<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.labels.as_ref()?.get(REVISION_HASH_LABEL))
        .map(String::as_str)
        .collect();
    let api: Api<ControllerRevision> =
        Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    old.sort_by_key(|r| r.revision);
    for revision in old {
        if excess == 0 {
            break;
        }
        let hash = revision
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_HASH_LABEL));
        if hash.is_some_and(|h| live.contains(h.as_str())) {
            continue;
        }
        match api
            .delete(&revision.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        excess -= 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon_set(image: &str) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "ds", "namespace": "default",
                "annotations": {TEMPLATE_GENERATION_ANNOTATION: "3"}},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "c", "image": image}]}}},
        }))
        .unwrap()
    }

    #[test]
    fn a_revision_restores_its_template_with_a_replace_patch() {
        let ds = daemon_set("busybox:1");
        let data = revision_data(&ds);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            data["spec"]["template"]["spec"]["containers"][0]["image"],
            "busybox:1"
        );
        let revision = ControllerRevision {
            data: Some(RawExtension(data)),
            ..ControllerRevision::default()
        };
        assert!(matches(&ds, &revision));
        assert!(!matches(&daemon_set("busybox:2"), &revision));
        assert_ne!(current_hash(&ds), current_hash(&daemon_set("busybox:2")));
    }

    #[test]
    fn a_pod_is_updated_by_hash_or_generation() {
        let ds = daemon_set("busybox:1");
        let generation = template_generation(&ds);
        assert_eq!(generation, Some(3));
        let pod = |labels: Value| -> Pod {
            serde_json::from_value(json!({"metadata": {"labels": labels}})).unwrap()
        };
        assert!(is_pod_updated(
            &pod(json!({REVISION_HASH_LABEL: "abc"})),
            "abc",
            None
        ));
        assert!(!is_pod_updated(
            &pod(json!({REVISION_HASH_LABEL: "old"})),
            "abc",
            None
        ));
        assert!(is_pod_updated(
            &pod(json!({TEMPLATE_GENERATION_LABEL: "3"})),
            "abc",
            generation
        ));
        assert!(!is_pod_updated(&pod(json!({})), "", None));
    }
}
