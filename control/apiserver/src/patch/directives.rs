//! The directives of a strategic merge patch: `$patch` (replace, delete, merge),
//! `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`, and
//! cleaning them out of values the patch inserts.

use serde_json::{Map, Value};

use super::messages::{bad_arg_type, bad_patch_type, no_merge_key, GO_MAP_TYPE};
use super::PatchError;

pub(super) const DIRECTIVE_MARKER: &str = "$patch";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
pub(super) const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
pub(super) const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";

/// strategicpatch.applyRetainKeysDirective: every key the patch sets must be
/// listed, and keys of the original that are not listed are dropped.
pub(super) fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let bad_format = || PatchError::bad_request("invalid patch format of retainKeys");
    let Value::Array(retain) = retain else {
        return Err(bad_format());
    };
    let listed = |key: &str| retain.iter().any(|v| v.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !listed(key) {
            return Err(bad_format());
        }
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// Splits "<prefix>/<field>"; anything else is the directive's 400.
pub(super) fn extract_directive_key(key: &str, prefix: &str) -> Result<String, PatchError> {
    let mut parts = key.splitn(2, '/');
    let head = parts.next().unwrap_or_default();
    match parts.next() {
        Some(field) if head == prefix => Ok(field.to_string()),
        _ if prefix == SET_ELEMENT_ORDER_PREFIX => Err(PatchError::bad_request(
            "invalid patch format of setElementOrder list",
        )),
        _ => Err(PatchError::bad_request(
            "invalid patch format of primitive list",
        )),
    }
}

/// strategicpatch.mergeSliceWithSpecialElements: `$patch: delete` items remove
/// every original item with that key, `$patch: replace` makes the remaining
/// patch items the whole list.
pub(super) fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut kept = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        if item.get(DIRECTIVE_MARKER).is_none() {
            kept.push(item);
            continue;
        }
        let directive = item.get(DIRECTIVE_MARKER).unwrap_or(&Value::Null);
        match directive.as_str() {
            Some("delete") => {
                let Some(key_value) = item.get(merge_key) else {
                    return Err(PatchError::internal(no_merge_key(&item, merge_key)));
                };
                original.retain(|o| o.get(merge_key) != Some(key_value));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::internal(
                    "merging lists cannot yet be specified in the patch",
                ))
            }
            _ => {
                let Value::Object(map) = &item else {
                    return Err(PatchError::internal(bad_arg_type(GO_MAP_TYPE, &item)));
                };
                return Err(bad_patch_type(directive, map));
            }
        }
    }
    if replace {
        return Ok((
            kept.into_iter().map(clean_replacement).collect(),
            Vec::new(),
        ));
    }
    Ok((original, kept))
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE_MARKER
        || key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// A patch value stored where the original had nothing to merge with. kube
/// drops its nulls and every object that carries `$patch` (strategicpatch's
/// discardNullValuesFromPatch and removeDirectives); the other directive keys
/// vanish when the result is decoded into the Go type. None: drop the field.
pub(super) fn clean_new_value(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.get(DIRECTIVE_MARKER).is_some_and(|d| !d.is_null()) {
                return None;
            }
            Some(Value::Object(
                map.into_iter()
                    .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
                    .filter_map(|(k, v)| clean_new_value(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(clean_new_value).collect(),
        )),
        other => Some(other),
    }
}

/// A patch value kube stores as sent (a replaced list or map, an appended list
/// item): decoding into the Go type is what drops its nulls and directive
/// keys, while items carrying `$patch` stay.
pub(super) fn clean_replacement(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(clean_replacement_map(map)),
        Value::Array(items) => Value::Array(items.into_iter().map(clean_replacement).collect()),
        other => other,
    }
}

pub(super) fn clean_replacement_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
        .map(|(k, v)| (k, clean_replacement(v)))
        .collect()
}

#[cfg(test)]
mod tests {

    use crate::patch::fixtures::{deployment, smp, smp_err};
    use serde_json::json;

    #[test]
    fn list_replace_directive_replaces_the_whole_list() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "z", "image": "2", "bogus": null}]}}),
        );
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "z", "image": "2"}])
        );
    }

    #[test]
    fn map_directives_replace_and_delete() {
        let pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}});
        let result = smp(
            "Pod",
            pod,
            json!({"metadata": {
                "labels": {"$patch": "replace", "c": "3"},
                "annotations": {"$patch": "delete"}
            }}),
        );
        assert_eq!(
            result["metadata"],
            json!({"labels": {"c": "3"}, "annotations": {}})
        );
    }

    #[test]
    fn explicit_merge_directives_are_refused_like_kube() {
        let pod =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "a"}]}});
        let e = smp_err(
            "Pod",
            pod.clone(),
            json!({"metadata": {"labels": {"$patch": "merge", "b": "2"}}}),
        );
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            "unknown patch type: merge in map: map[$patch:merge b:2]"
        );
        let e = smp_err(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}}),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (500, "merging lists cannot yet be specified in the patch")
        );
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
        let pod = json!({"metadata": {"finalizers": ["a", "b"]}});
        let added = smp("Pod", pod, json!({"metadata": {"finalizers": ["c", "a"]}}));
        assert_eq!(added["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let removed = smp(
            "Pod",
            added,
            json!({"metadata": {
                "$setElementOrder/finalizers": ["a", "b"],
                "$deleteFromPrimitiveList/finalizers": ["c"]
            }}),
        );
        assert_eq!(removed["metadata"]["finalizers"], json!(["a", "b"]));
        // Deleting from a list that is not there leaves it absent.
        let untouched = smp(
            "Pod",
            json!({"metadata": {}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        );
        assert_eq!(untouched, json!({"metadata": {}}));
    }

    #[test]
    fn volume_retain_keys_switches_the_volume_source() {
        let pod = json!({"spec": {"volumes": [
            {"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "emptyDir": {}}
        ]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {"volumes": [
                {"$retainKeys": ["name", "secret"], "name": "v", "secret": {"secretName": "s"}, "configMap": null}
            ]}}),
        );
        assert_eq!(
            result["spec"]["volumes"],
            json!([{"name": "v", "secret": {"secretName": "s"}}, {"name": "w", "emptyDir": {}}])
        );
    }

    #[test]
    fn retain_keys_must_list_every_key_the_patch_sets() {
        let e = smp_err(
            "Deployment",
            deployment(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "invalid patch format of retainKeys")
        );
        let e = smp_err(
            "Deployment",
            deployment(),
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
        );
        assert_eq!(e.code, 400);
    }

    #[test]
    fn bad_directive_prefixes_are_400() {
        let pod = json!({"metadata": {"finalizers": ["a"]}});
        let e = smp_err(
            "Pod",
            pod.clone(),
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "invalid patch format of primitive list")
        );
        let e = smp_err("Pod", pod, json!({"metadata": {"$setElementOrder": ["a"]}}));
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "invalid patch format of setElementOrder list")
        );
    }

    #[test]
    fn new_values_lose_nulls_and_directives() {
        let pod = json!({"spec": {"containers": [{"name": "a"}]}});
        let result = smp(
            "Pod",
            pod,
            json!({"spec": {
                "securityContext": {"runAsUser": 1, "fsGroup": null, "seLinuxOptions": {"$patch": "delete"}},
                "containers": [{"name": "b", "env": [{"name": "E", "value": null}], "$setElementOrder/env": [{"name": "E"}]}]
            }}),
        );
        assert_eq!(result["spec"]["securityContext"], json!({"runAsUser": 1}));
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "b", "env": [{"name": "E"}]}, {"name": "a"}])
        );
    }
}
