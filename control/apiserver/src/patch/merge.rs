//! JSON merge patch (RFC 7386): the `json-patch` crate's `merge`, after trimming the
//! `null`s that evanphx drops from newly inserted values.

use serde_json::{Map, Value};

use super::messages::json_type_name;
use super::{require_object, PatchError};

pub(super) fn apply_merge_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::bad_request(format!("error decoding patch: {e}")))?;
    let patch = match patch {
        Value::Object(patch) => patch,
        // evanphx refuses a null document with this exact message.
        Value::Null => return Err(PatchError::bad_request("Invalid JSON Patch")),
        // Field validation decodes the body into a map first, so a non-object
        // is a 400 here rather than RFC 7386's "replace the whole target".
        other => {
            return Err(PatchError::bad_request(format!(
                "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type_name(&other)
            )))
        }
    };
    let patch = prune_merge_patch(original.as_object(), patch);
    let mut doc = original.clone();
    // The json-patch crate, not the sibling module of the same name.
    ::json_patch::merge(&mut doc, &Value::Object(patch));
    require_object(doc)
}

/// Drops the nulls evanphx drops: inside any value that lands where the target
/// has no object to merge into (it prunes nested objects, arrays included),
/// but not inside a non-object that replaces an object (it keeps those as
/// sent). `null` members that delete target keys stay.
fn prune_merge_patch(
    target: Option<&Map<String, Value>>,
    patch: Map<String, Value>,
) -> Map<String, Value> {
    patch
        .into_iter()
        .map(|(key, value)| {
            let current = target.and_then(|t| t.get(&key)).filter(|v| !v.is_null());
            let value = match (current, value) {
                (_, Value::Null) => Value::Null,
                (Some(Value::Object(current)), Value::Object(value)) => {
                    Value::Object(prune_merge_patch(Some(current), value))
                }
                (Some(Value::Object(_)), value) => value,
                (_, value) => prune_nulls(value),
            };
            (key, value)
        })
        .collect()
}

fn prune_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, prune_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {

    use crate::patch::fixtures::{deployment, patch_ok};
    use crate::patch::{apply, PatchType};
    use serde_json::json;

    #[test]
    fn label_merge_patch_sets_and_removes_labels() {
        let pod = json!({"metadata": {"name": "p", "labels": {"c": "d", "keep": "me"}}});
        let result = patch_ok(
            "Pod",
            &pod,
            PatchType::Merge,
            &json!({"metadata": {"labels": {"a": "b", "c": null}}}),
        );
        assert_eq!(
            result["metadata"]["labels"],
            json!({"a": "b", "keep": "me"})
        );
    }

    #[test]
    fn scale_merge_patch_sets_replicas() {
        let result = patch_ok(
            "Deployment",
            &deployment(),
            PatchType::Merge,
            &json!({"spec": {"replicas": 5}}),
        );
        assert_eq!(result["spec"]["replicas"], json!(5));
        assert_eq!(result["spec"]["strategy"], deployment()["spec"]["strategy"]);
    }

    #[test]
    fn merge_patch_replaces_lists_and_drops_nulls_inside_new_values() {
        let pod = json!({"spec": {"tolerations": [{"key": "a"}], "nodeSelector": "oops"}});
        let result = patch_ok(
            "Pod",
            &pod,
            PatchType::Merge,
            &json!({"spec": {
                "tolerations": [{"key": "b", "value": null}],
                "nodeSelector": {"disk": "ssd", "zone": null},
                "affinity": {"a": [{"x": null, "y": 1}]}
            }}),
        );
        // The target list is not an object, so evanphx prunes inside the array.
        assert_eq!(result["spec"]["tolerations"], json!([{"key": "b"}]));
        assert_eq!(result["spec"]["nodeSelector"], json!({"disk": "ssd"}));
        assert_eq!(result["spec"]["affinity"], json!({"a": [{"y": 1}]}));
    }

    #[test]
    fn merge_patch_keeps_nulls_in_an_array_that_replaces_an_object() {
        let doc = json!({"a": {"b": 1}});
        let result = patch_ok(
            "ConfigMap",
            &doc,
            PatchType::Merge,
            &json!({"a": [{"x": null}]}),
        );
        assert_eq!(result, json!({"a": [{"x": null}]}));
    }

    #[test]
    fn merge_patch_rejects_non_objects() {
        let doc = json!({"a": 1});
        let array = apply("Pod", &doc, PatchType::Merge, b"[1]").expect_err("array refused");
        assert_eq!(array.code, 400);
        assert_eq!(
            array.message,
            "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        let null = apply("Pod", &doc, PatchType::Merge, b"null").expect_err("null refused");
        assert_eq!(
            (null.code, null.message.as_str()),
            (400, "Invalid JSON Patch")
        );
        let malformed = apply("Pod", &doc, PatchType::Merge, b"{\"a\":").expect_err("malformed");
        assert_eq!(malformed.code, 400);
        assert!(
            malformed
                .message
                .starts_with("error decoding patch: EOF while parsing"),
            "{}",
            malformed.message
        );
    }
}
