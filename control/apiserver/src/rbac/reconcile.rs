//! Keeping the stored policy right: the bootstrap policy reconciled at start (kube's
//! `rbac/bootstrap-roles` post-start hook) and ClusterRole aggregation (kube's
//! clusterrole-aggregation controller).
//!
//! Reconciliation creates a missing bootstrap object and, unless the stored one is annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"`, adds the rules, labels,
//! annotations and subjects it lacks (it never takes any away, as kube's does not).
//!
//! Aggregation fills a ClusterRole that has an `aggregationRule` with the rules of every other
//! ClusterRole its selectors select, in name order, duplicates dropped. It runs in each API
//! server over the member's watch cache rather than in the controller manager, so that it
//! works from the first request and needs no identity of its own; every member computes the
//! same rules from the same objects, so members racing to write converge at once (the loser's
//! write is a no-op or a conflict it retries on the next change).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::policy::{cluster_role_bindings, cluster_roles, AUTOUPDATE};
use crate::admission::rbac::label_selector_selects;
use crate::error::{ApiError, Result};
use crate::object::Part;
use crate::request::Query;
use crate::rest::{Api, Call};
use crate::warning::Warnings;

const CLUSTER_ROLES: &str = "/registry/clusterroles/";

async fn write(api: &Api, plural: &str, name: &str, object: &Value, create: bool) -> Result<()> {
    let resource = api
        .registry
        .find("rbac.authorization.k8s.io", "v1", plural)
        .expect("RBAC resources are built in");
    let body = object.to_string();
    let query = Query::default();
    let warnings = Warnings::default();
    let call = Call {
        resource: &resource,
        namespace: None,
        name: if create { "" } else { name },
        query: &query,
        body: body.as_bytes(),
        content_type: None,
        warnings: &warnings,
        user_agent: Some("kube-apiserver"),
    };
    if create {
        api.create(&call).await.map(drop)
    } else {
        api.update(&call, Part::Main).await.map(drop)
    }
}

async fn read(api: &Api, plural: &str, name: &str) -> Result<Option<Value>> {
    let key = format!("/registry/{plural}/{name}");
    Ok(crate::object::read(&*api.storage, &key)
        .await?
        .map(|current| current.object))
}

/// Adds what `expected` has and `current` lacks in the string maps `labels`/`annotations`.
fn merge_map(current: &mut Value, expected: &Value, field: &str) -> bool {
    let Some(wanted) = expected["metadata"][field].as_object() else {
        return false;
    };
    let metadata = crate::object::metadata_mut(current);
    let have = metadata
        .entry(field)
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(have) = have else { return false };
    let mut changed = false;
    for (k, v) in wanted {
        if !have.contains_key(k) {
            have.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// Adds each item of `expected[field]` missing from `current[field]`.
fn merge_list(
    current: &mut Value,
    expected: &Value,
    field: &str,
    same: fn(&Value, &Value) -> bool,
) -> bool {
    let Some(wanted) = expected.get(field).and_then(Value::as_array) else {
        return false;
    };
    if !current.get(field).is_some_and(Value::is_array) {
        current[field] = json!([]);
    }
    let have = current[field].as_array_mut().expect("made an array");
    let mut changed = false;
    for item in wanted {
        if !have.iter().any(|h| same(h, item)) {
            have.push(item.clone());
            changed = true;
        }
    }
    changed
}

fn same_subject(a: &Value, b: &Value) -> bool {
    ["kind", "name", "namespace"]
        .iter()
        .all(|k| a[*k].as_str().unwrap_or("") == b[*k].as_str().unwrap_or(""))
}

fn same_rule(a: &Value, b: &Value) -> bool {
    super::rules::PolicyRule::from_json(a) == super::rules::PolicyRule::from_json(b)
}

async fn reconcile_one(api: &Api, plural: &str, expected: Value) -> Result<()> {
    let name = expected["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let Some(mut current) = read(api, plural, &name).await? else {
        return match write(api, plural, &name, &expected, true).await {
            Err(e) if e.code == 409 => Ok(()),
            other => other,
        };
    };
    if current["metadata"]["annotations"][AUTOUPDATE].as_str() == Some("false") {
        return Ok(());
    }
    let mut changed = merge_map(&mut current, &expected, "labels");
    changed |= merge_map(&mut current, &expected, "annotations");
    if plural == "clusterroles" {
        if current["aggregationRule"].is_null() {
            // Aggregated roles' rules are the aggregation's to write.
            changed |= merge_list(&mut current, &expected, "rules", same_rule);
        }
        if !expected["aggregationRule"].is_null() {
            let mut rule = current["aggregationRule"].clone();
            if rule.is_null() {
                rule = json!({});
            }
            changed |= merge_list(
                &mut rule,
                &expected["aggregationRule"],
                "clusterRoleSelectors",
                |a, b| a == b,
            );
            current["aggregationRule"] = rule;
        }
    } else {
        changed |= merge_list(&mut current, &expected, "subjects", same_subject);
    }
    if changed {
        match write(api, plural, &name, &current, false).await {
            // Another member reconciled it in between; the next start looks again.
            Err(e) if e.code == 409 => {}
            other => other?,
        }
    }
    Ok(())
}

impl Api {
    /// Creates or completes the bootstrap ClusterRoles and ClusterRoleBindings.
    pub async fn reconcile_bootstrap_policy(&self) -> Result<()> {
        for role in cluster_roles() {
            reconcile_one(self, "clusterroles", role.to_object()).await?;
        }
        for binding in cluster_role_bindings() {
            reconcile_one(self, "clusterrolebindings", binding.to_object()).await?;
        }
        Ok(())
    }

    /// Aggregates ClusterRoles for as long as the server runs: once now, then whenever a
    /// ClusterRole changes.
    pub async fn run_cluster_role_aggregation(self: Arc<Self>) {
        let Some(shard) = self.cache.shard(CLUSTER_ROLES) else {
            return;
        };
        let mut changed = shard.subscribe();
        loop {
            changed.borrow_and_update();
            if let Err(e) = self.aggregate_cluster_roles().await {
                tracing::debug!("clusterrole aggregation: {}", e.message);
                // A conflict or an unavailable store: look again shortly even if nothing moves.
                let _ = tokio::time::timeout(Duration::from_millis(200), changed.changed()).await;
                continue;
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// One pass over the cached ClusterRoles, writing each aggregated one whose rules differ.
    pub async fn aggregate_cluster_roles(&self) -> Result<()> {
        let shard = self
            .cache
            .shard(CLUSTER_ROLES)
            .ok_or_else(|| ApiError::internal("no clusterrole cache"))?;
        let (roles, _) = shard.list(CLUSTER_ROLES);
        let mut result = Ok(());
        for role in roles.iter().filter(|r| !r["aggregationRule"].is_null()) {
            let rules = aggregated_rules(role, &roles);
            if role["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]) == rules.as_slice() {
                continue;
            }
            let mut updated = (**role).clone();
            updated["rules"] = json!(rules);
            let name = role["metadata"]["name"].as_str().unwrap_or("");
            if let Err(e) = write(self, "clusterroles", name, &updated, false).await {
                result = Err(e);
            }
        }
        result
    }
}

/// The rules `role`'s aggregationRule gathers from `roles` (sorted by name).
fn aggregated_rules(role: &Value, roles: &[Arc<Value>]) -> Vec<Value> {
    let name = &role["metadata"]["name"];
    let mut rules: Vec<Value> = Vec::new();
    let selectors = role["aggregationRule"]["clusterRoleSelectors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for selector in selectors {
        for other in roles {
            if other["metadata"]["name"] == *name || !label_selector_selects(selector, other) {
                continue;
            }
            for rule in other["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_gathers_selected_rules_once_in_name_order() {
        let label = "rbac.authorization.k8s.io/aggregate-to-view";
        let view = json!({"metadata": {"name": "view"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}});
        let a = json!({"metadata": {"name": "a", "labels": {label: "true"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]});
        let b = json!({"metadata": {"name": "b", "labels": {label: "true"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                      {"verbs": ["list"], "apiGroups": ["x.io"], "resources": ["widgets"]}]});
        let c = json!({"metadata": {"name": "c"}, "rules": [{"verbs": ["*"]}]});
        let roles: Vec<Arc<Value>> = [a, b, c, view.clone()].into_iter().map(Arc::new).collect();
        let rules = aggregated_rules(&view, &roles);
        assert_eq!(
            rules,
            [
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
                json!({"verbs": ["list"], "apiGroups": ["x.io"], "resources": ["widgets"]}),
            ]
        );
    }

    #[test]
    fn merging_adds_only_what_is_missing() {
        let mut current = json!({"metadata": {"labels": {"mine": "1"}}, "subjects": [{"kind": "User", "name": "a"}]});
        let expected = json!({"metadata": {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "subjects": [{"kind": "User", "name": "a", "apiGroup": "rbac.authorization.k8s.io"}, {"kind": "Group", "name": "g"}]});
        assert!(merge_map(&mut current, &expected, "labels"));
        assert!(merge_list(
            &mut current,
            &expected,
            "subjects",
            same_subject
        ));
        assert_eq!(current["subjects"].as_array().unwrap().len(), 2);
        assert_eq!(current["metadata"]["labels"]["mine"], "1");
        assert!(!merge_list(
            &mut current,
            &expected,
            "subjects",
            same_subject
        ));
    }
}
