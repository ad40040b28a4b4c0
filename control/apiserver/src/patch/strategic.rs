//! Strategic merge patch: the merge, after `strategicpatch.mergeMap` and friends
//! (server side: `StrategicMergeMapPatch`). Maps merge key by key; lists merge as the
//! strategy table says, through [`super::lists`] and [`super::directives`].

use serde_json::{Map, Value};

use super::directives::{
    apply_list_directives, apply_retain_keys, clean_new_value, clean_replacement,
    clean_replacement_map, extract_directive_key, DELETE_FROM_PRIMITIVE_LIST_PREFIX,
    DIRECTIVE_MARKER, SET_ELEMENT_ORDER_PREFIX,
};
use super::lists::{
    element_kind, find_by_merge_key, normalize_element_order, partition_by_presence,
    validate_patch_with_set_order, ElementKind,
};
use super::messages::{
    bad_arg_type, bad_patch_type, json_type_name, no_merge_key, GO_MAP_TYPE, GO_SLICE_TYPE,
};
use super::strategy::{merge_strategy, Strategy, BUILT_IN_KINDS};
use super::PatchError;

/// The patch types a custom resource endpoint lists in its 415 answer
/// (CBOR apply is behind a feature gate that is off in 1.32).
const CUSTOM_RESOURCE_PATCH_TYPES: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

pub(super) fn apply_strategic_merge_patch(
    kind: &str,
    original: &Value,
    body: &[u8],
) -> Result<Value, PatchError> {
    if !BUILT_IN_KINDS.contains(&kind) {
        return Err(PatchError::new(
            415,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {CUSTOM_RESOURCE_PATCH_TYPES}"
            ),
        ));
    }
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| PatchError::bad_request(e.to_string()))?;
    let patch = match patch {
        Value::Object(patch) => patch,
        // Go decodes `null` into a nil map, which merges as no change.
        Value::Null => return Ok(original.clone()),
        other => {
            return Err(PatchError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type {GO_MAP_TYPE}",
                json_type_name(&other)
            )))
        }
    };
    let Value::Object(original) = original.clone() else {
        return Err(PatchError::bad_request("invalid JSON document"));
    };
    let merger = StrategicMerge { kind };
    let mut path = Vec::new();
    merger
        .merge_map(original, patch, &mut path)
        .map(Value::Object)
}

struct StrategicMerge<'k> {
    kind: &'k str,
}

impl StrategicMerge<'_> {
    fn strategy(&self, path: &[String], field: &str) -> Strategy {
        let mut full: Vec<&str> = path.iter().map(String::as_str).collect();
        full.push(field);
        merge_strategy(self.kind, &full)
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE_MARKER).cloned() {
            return match directive.as_str() {
                Some("replace") => {
                    patch.remove(DIRECTIVE_MARKER);
                    Ok(clean_replacement_map(patch))
                }
                Some("delete") => Ok(Map::new()),
                // kube accepts no `$patch: merge` on a map: merging is the default.
                _ => Err(bad_patch_type(&directive, &patch)),
            };
        }

        apply_retain_keys(&mut original, &mut patch)?;
        self.merge_ordered_lists(&mut original, &mut patch, path)?;

        for (key, patch_value) in patch {
            let (field, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                let field = extract_directive_key(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?;
                (if field.is_empty() { key } else { field }, true)
            } else {
                (key, false)
            };

            if patch_value.is_null() {
                original.remove(&field);
                continue;
            }
            let Some(original_value) = original.remove(&field) else {
                // Deleting from a list that is not there is a no-op.
                if !is_delete_list {
                    if let Some(value) = clean_new_value(patch_value) {
                        original.insert(field, value);
                    }
                }
                continue;
            };

            let merged = match (original_value, patch_value) {
                (Value::Object(current), Value::Object(update)) => {
                    if self.strategy(path, &field) == Strategy::Replace {
                        Some(Value::Object(clean_replacement_map(update)))
                    } else {
                        path.push(field.clone());
                        let merged = self.merge_map(current, update, path);
                        path.pop();
                        Some(Value::Object(merged?))
                    }
                }
                (Value::Array(current), Value::Array(update)) => {
                    let strategy = self.strategy(path, &field);
                    path.push(field.clone());
                    let merged =
                        self.merge_list_field(current, update, strategy, is_delete_list, path);
                    path.pop();
                    Some(Value::Array(merged?))
                }
                (current, update) if json_type_name(&current) == json_type_name(&update) => {
                    clean_new_value(update)
                }
                // A delete list against a field of another type leaves it alone.
                (current, _) if is_delete_list => Some(current),
                (_, update) => clean_new_value(update),
            };
            if let Some(value) = merged {
                original.insert(field, value);
            }
        }
        Ok(original)
    }

    fn merge_list_field(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        strategy: Strategy,
        is_delete_list: bool,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        match strategy {
            Strategy::MergeKey(merge_key) => {
                self.merge_list(original, patch, merge_key, is_delete_list, path)
            }
            Strategy::MergeSet => self.merge_list(original, patch, "", is_delete_list, path),
            // A `$deleteFromPrimitiveList` applies whatever the field's strategy.
            _ if is_delete_list => self.merge_list(original, patch, "", true, path),
            _ => Ok(patch.into_iter().map(clean_replacement).collect()),
        }
    }

    /// strategicpatch.mergeSlice: union of scalars, or item-by-item merge of
    /// objects on `merge_key`, then kube's ordering: patch items in patch
    /// order, interleaved with server-only items by their original positions.
    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        merge_key: &str,
        is_delete_list: bool,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        let Some(kind) = element_kind(&original, &patch)? else {
            return Ok(original);
        };
        if kind != ElementKind::Map {
            if is_delete_list {
                return Ok(original
                    .into_iter()
                    .filter(|v| !patch.contains(v))
                    .collect());
            }
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for value in original.iter().chain(patch.iter()) {
                if !merged.contains(value) {
                    merged.push(value.clone());
                }
            }
            let (patch_items, server_only) = partition_by_presence(merged, &patch, merge_key)?;
            return normalize_element_order(
                patch_items,
                server_only,
                &patch,
                &original,
                merge_key,
                kind,
            );
        }
        if merge_key.is_empty() {
            return Err(PatchError::internal(format!(
                "cannot merge lists without merge key for {}",
                path.last().map(String::as_str).unwrap_or_default()
            )));
        }
        let (original, patch) = apply_list_directives(original, patch, merge_key)?;
        let merged = self.merge_list_items(original.clone(), patch.clone(), merge_key, path)?;
        let (patch_items, server_only) = partition_by_presence(merged, &patch, merge_key)?;
        normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
    }

    fn merge_list_items(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        merge_key: &str,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        for item in patch {
            let Value::Object(item) = item else {
                return Err(PatchError::internal(bad_arg_type(GO_MAP_TYPE, &item)));
            };
            let Some(key_value) = item.get(merge_key).cloned() else {
                return Err(PatchError::internal(no_merge_key(
                    &Value::Object(item),
                    merge_key,
                )));
            };
            match find_by_merge_key(&original, merge_key, &key_value)? {
                Some(index) => {
                    if let Some(slot) = original.get_mut(index) {
                        let Value::Object(current) = std::mem::take(slot) else {
                            return Err(PatchError::internal(format!(
                                "value for key {index} is not a map"
                            )));
                        };
                        *slot = Value::Object(self.merge_map(current, item, path)?);
                    }
                }
                None => original.push(clean_replacement(Value::Object(item))),
            }
        }
        Ok(original)
    }

    /// strategicpatch.mergePatchIntoOriginal: each `$setElementOrder/<field>`
    /// merges `<field>` now and orders the result by the list given, then by
    /// the patch, then by the live object.
    fn merge_ordered_lists(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<(), PatchError> {
        let directives: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        for directive in directives {
            let Some(order) = patch.remove(&directive) else {
                continue;
            };
            let Value::Array(order) = order else {
                return Err(PatchError::internal(bad_arg_type(GO_SLICE_TYPE, &order)));
            };
            let field = extract_directive_key(&directive, SET_ELEMENT_ORDER_PREFIX)?;
            let original_list = take_list(original, &field, true)?;
            let patch_list = take_list(patch, &field, false)?;

            let strategy = self.strategy(path, &field);
            let merge_key = match strategy {
                Strategy::MergeKey(merge_key) => merge_key,
                _ => "",
            };
            validate_patch_with_set_order(
                patch_list.as_deref().unwrap_or_default(),
                &order,
                merge_key,
            )?;
            let kind = element_kind(
                original_list.as_deref().unwrap_or_default(),
                patch_list.as_deref().unwrap_or_default(),
            )?;
            let server_order = original_list.clone().unwrap_or_default();
            let merged = match (original_list, patch_list) {
                (Some(current), None) => current,
                (None, Some(update)) => update.into_iter().filter_map(clean_new_value).collect(),
                (Some(current), Some(update)) => {
                    path.push(field.clone());
                    let merged = self.merge_list_field(current, update, strategy, false, path);
                    path.pop();
                    merged?
                }
                (None, None) => continue,
            };
            // kube errors on two empty lists; a live object never holds one
            // there, so an empty list is simply kept as it is.
            let Some(kind) = kind else {
                original.insert(field, Value::Array(merged));
                continue;
            };
            let (patch_items, server_only) = partition_by_presence(merged, &order, merge_key)?;
            let ordered = normalize_element_order(
                patch_items,
                server_only,
                &order,
                &server_order,
                merge_key,
                kind,
            )?;
            original.insert(field, Value::Array(ordered));
        }
        Ok(())
    }
}

/// Removes `field` from `map` as a list. In the live object a null counts as
/// absent, since a typed Go object never holds one; in the patch it is an
/// error, as in kube.
fn take_list(
    map: &mut Map<String, Value>,
    field: &str,
    null_is_absent: bool,
) -> Result<Option<Vec<Value>>, PatchError> {
    match map.remove(field) {
        None => Ok(None),
        Some(Value::Null) if null_is_absent => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(PatchError::internal(bad_arg_type(GO_SLICE_TYPE, &other))),
    }
}

#[cfg(test)]
mod tests {

    use crate::patch::fixtures::{deployment, patch_ok, smp, smp_err};
    use crate::patch::{apply, PatchType};
    use serde_json::json;

    #[test]
    fn kubectl_apply_body_for_a_deployment() {
        let body = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"..."},"labels":{"tier":null}},
 "spec":{"replicas":null,
  "strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"},
  "template":{"spec":{
   "$setElementOrder/containers":[{"name":"d"},{"name":"c"}],
   "$setElementOrder/volumes":[{"name":"v1"}],
   "containers":[{"name":"c","args":["-a"],
     "$setElementOrder/env":[{"name":"B"}],"env":[{"name":"B","value":"3"},{"$patch":"delete","name":"A"}],
     "$setElementOrder/ports":[{"containerPort":80}],"ports":[{"$patch":"delete","containerPort":443}],
     "$setElementOrder/volumeMounts":[{"mountPath":"/a"}],"volumeMounts":[{"$patch":"delete","mountPath":"/b"}]}],
   "tolerations":[{"key":"b","operator":"Exists"}],
   "volumes":[{"$patch":"delete","name":"v2"}]}}}}"#;
        let result = apply(
            "Deployment",
            &deployment(),
            PatchType::StrategicMerge,
            body.as_bytes(),
        )
        .expect("kubectl's body applies");
        let expected = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "..."}
            },
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "Recreate"},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "d", "image": "busybox"},
                            {
                                "name": "c",
                                "image": "nginx",
                                "args": ["-a"],
                                "env": [{"name": "B", "value": "3"}],
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "volumeMounts": [{"name": "v1", "mountPath": "/a"}]
                            }
                        ],
                        "tolerations": [{"key": "b", "operator": "Exists"}],
                        "volumes": [{"name": "v1", "emptyDir": {}}]
                    }
                }
            }
        });
        assert_eq!(result, expected);
    }

    #[test]
    fn rollout_restart_adds_a_template_annotation() {
        let result = smp(
            "Deployment",
            deployment(),
            json!({"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}),
        );
        assert_eq!(
            result["spec"]["template"]["metadata"],
            json!({
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
            })
        );
        assert_eq!(
            result["spec"]["template"]["spec"],
            deployment()["spec"]["template"]["spec"]
        );
    }

    #[test]
    fn cordon_and_uncordon_a_node() {
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "169.254.0.0/24"}});
        let cordoned = smp(
            "Node",
            node.clone(),
            json!({"spec": {"unschedulable": true}}),
        );
        assert_eq!(
            cordoned["spec"],
            json!({"podCIDR": "169.254.0.0/24", "unschedulable": true})
        );
        let uncordoned = smp("Node", cordoned, json!({"spec": {"unschedulable": null}}));
        assert_eq!(uncordoned, node);
    }

    #[test]
    fn strategic_merge_of_a_custom_resource_is_415() {
        let e = smp_err("Widget", json!({}), json!({"spec": {}}));
        assert_eq!(e.code, 415);
        assert_eq!(
            e.message,
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        );
        // JSON and merge patches still work for it.
        let result = patch_ok(
            "Widget",
            &json!({"spec": {"a": 1}}),
            PatchType::Merge,
            &json!({"spec": {"b": 2}}),
        );
        assert_eq!(result, json!({"spec": {"a": 1, "b": 2}}));
    }

    #[test]
    fn strategic_merge_body_that_is_not_an_object() {
        let pod = json!({"metadata": {"name": "p"}});
        let e = apply("Pod", &pod, PatchType::StrategicMerge, b"[1]").expect_err("array refused");
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert_eq!(
            apply("Pod", &pod, PatchType::StrategicMerge, b"null"),
            Ok(pod.clone())
        );
        let e = apply("Pod", &pod, PatchType::StrategicMerge, b"{,}").expect_err("malformed");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("line 1 column 2"), "{}", e.message);
    }

    #[test]
    fn a_value_of_another_type_replaces_the_original() {
        let doc = json!({"spec": {"nodeSelector": {"a": "b"}, "priority": 1}});
        let result = smp(
            "Pod",
            doc,
            json!({"spec": {"nodeSelector": "x", "priority": {"v": null, "w": 2}}}),
        );
        assert_eq!(
            result["spec"],
            json!({"nodeSelector": "x", "priority": {"w": 2}})
        );
    }
}
