//! Server-side apply and `metadata.managedFields`, as kube-apiserver 1.32 has them.
//!
//! Every write records who set which fields: a create, update or non-apply patch is an
//! `Update` by the `?fieldManager=` of the request (or its User-Agent's program name), a
//! `PATCH` with `Content-Type: application/apply-patch+yaml` an `Apply` by its required
//! field manager. An apply merges its configuration into the live object by the schema
//! (keyed lists by key, atomic ones whole), owns exactly the fields it names, removes the
//! ones it named before and no longer does (unless another manager owns them), and fails
//! with 409 `Conflict` (causes `FieldManagerConflict`) when it would change a field
//! another manager owns, unless `?force=true`. An apply to a missing object creates it.
//!
//! A write that sends managedFields replaces them (a client may edit ownership) when they
//! decode; an empty list or a list of one empty entry resets them; malformed ones are
//! ignored and the live object's kept. Writes to subresources never take the client's.
//!
//! # Layout
//!
//! - `fields`: paths, field sets and their `FieldsV1` form.
//! - `shape`: what each field is (struct, map, list type) for built-in kinds and CRDs.
//! - `diff`: the field set of a value, and what changed between two values.
//! - `merge`: merging a configuration into an object, and pruning dropped fields.
//! - `managed`: managedFields entries and how updates and applies move ownership.
//! - `request`: the apply PATCH handler and the tracking every write does.

mod diff;
mod fields;
mod managed;
mod merge;
mod request;
mod shape;

pub use managed::{is_reset, ApplyError, Identity, Managed, Operation};
pub use request::{check_field_manager, is_apply, manager_name, Tracking};
pub use shape::Schema;

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::object::metadata_mut;

/// The 409 an apply with unforced conflicts gets, worded as kube-apiserver words it.
pub fn conflict_error(conflicts: &[managed::Conflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"type": "FieldManagerConflict",
                "message": format!("conflict with {}", c.owner.describe()),
                "field": c.path.to_string()})
        })
        .collect();
    let message = match conflicts {
        [one] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.owner.describe(),
            one.path
        ),
        _ => {
            let mut lines = Vec::new();
            let mut owner: Option<&Identity> = None;
            for conflict in conflicts {
                if owner != Some(&conflict.owner) {
                    lines.push(format!("conflicts with {}:", conflict.owner.describe()));
                    owner = Some(&conflict.owner);
                }
                lines.push(format!("- {}", conflict.path));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    };
    ApiError {
        code: 409,
        reason: "Conflict",
        message,
        details: Some(json!({"causes": causes})),
        retry_after: None,
    }
}

/// `object` without its managedFields (they are never part of a comparison).
fn without_managed_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    copy
}

/// Sets (or, for none, removes) an object's managedFields.
fn store_managed_fields(object: &mut Value, managed: &Managed) {
    let metadata = metadata_mut(object);
    match managed.encode() {
        Some(list) => {
            metadata.insert("managedFields".into(), list);
        }
        None => {
            metadata.remove("managedFields");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::fields::{Element, Path};

    fn conflict(manager: &str, operation: Operation, field: &str) -> managed::Conflict {
        managed::Conflict {
            owner: Identity {
                manager: manager.into(),
                operation,
                api_version: "apps/v1".into(),
                subresource: String::new(),
            },
            path: Path(vec![
                Element::Field("spec".into()),
                Element::Field(field.into()),
            ]),
        }
    }

    #[test]
    fn conflict_messages() {
        let one = conflict_error(&[conflict(
            "kubectl-client-side-apply",
            Operation::Update,
            "replicas",
        )]);
        assert_eq!(one.code, 409);
        assert_eq!(one.reason, "Conflict");
        assert_eq!(
            one.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        assert_eq!(
            one.details.unwrap()["causes"],
            json!([{"type": "FieldManagerConflict",
                "message": "conflict with \"kubectl-client-side-apply\" using apps/v1",
                "field": ".spec.replicas"}])
        );
        let many = conflict_error(&[
            conflict("a", Operation::Apply, "paused"),
            conflict("a", Operation::Apply, "replicas"),
            conflict("b", Operation::Update, "replicas"),
        ]);
        assert_eq!(
            many.message,
            "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.paused\n- .spec.replicas\nconflicts with \"b\" using apps/v1:\n- .spec.replicas"
        );
    }
}
