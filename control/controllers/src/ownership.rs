//! ownerReferences: who controls an object, the reference a controller puts on what it
//! creates, and the strategic merge patches that adopt an orphan or release a child, as
//! kube's `ControllerRefManager` sends them (the object's uid rides along as a precondition,
//! so a patch never lands on a namesake created in between).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::{json, Value};

use crate::labels::LabelMatcher;

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// The owners of kind `K` an event of a child concerns, as kube's controllers resolve them:
/// the child's controller if that is a `K`, else (an orphan one of them may adopt) every `K` of
/// the child's namespace whose `selector` matches the child's labels.
pub fn owners_of_child<K>(
    owners: &Store<K>,
    child: &ObjectMeta,
    selector: impl Fn(&K) -> Option<&LabelSelector>,
) -> Vec<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let namespace = child.namespace.clone().unwrap_or_default();
    if let Some(owner) = controller_of(child) {
        return if owner.kind == K::kind(&()) {
            vec![ObjectRef::new(&owner.name).within(&namespace)]
        } else {
            Vec::new()
        };
    }
    owners
        .state()
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(namespace.as_str()))
        .filter(|o| LabelMatcher::new(selector(o)).matches(child.labels.as_ref()))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// Whether `meta` is controlled by the object with `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// A controller reference to an owner: `controller` and `blockOwnerDeletion` both true, as
/// `metav1.NewControllerRef` makes it.
pub fn controller_reference(api_version: &str, kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The patch that makes `owner` the controller of the object with `uid`.
pub fn adopt_patch(owner: &OwnerReference, uid: &str) -> Value {
    json!({"metadata": {"ownerReferences": [owner], "uid": uid}})
}

/// The patch that removes the reference to `owner_uid` from the object with `uid`.
pub fn release_patch(owner_uid: &str, uid: &str) -> Value {
    json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": uid}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_reference_blocks_owner_deletion() {
        let owner = ObjectMeta {
            name: Some("web".into()),
            uid: Some("u1".into()),
            ..ObjectMeta::default()
        };
        let r = controller_reference("apps/v1", "ReplicaSet", &owner);
        assert_eq!(r.controller, Some(true));
        assert_eq!(r.block_owner_deletion, Some(true));
        let child = ObjectMeta {
            owner_references: Some(vec![r]),
            ..ObjectMeta::default()
        };
        assert!(is_controlled_by(&child, "u1"));
        assert!(!is_controlled_by(&child, "u2"));
        assert_eq!(
            release_patch("u1", "p1"),
            json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "u1"}], "uid": "p1"}})
        );
    }
}
