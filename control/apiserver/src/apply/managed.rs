//! `metadata.managedFields`: who owns which fields, and how writes move ownership
//! (k8s.io/apimachinery's managedfields and structured-merge-diff's `Updater`).
//!
//! An entry is one manager's set for one operation: `Apply` entries are keyed by manager and
//! subresource, `Update` entries also by apiVersion. An update takes every field it added or
//! changed from the other managers and gives them to its own entry; fields it removed leave
//! every set. An apply owns exactly the fields of its configuration: fields it applied
//! before and no longer applies are removed from the object unless another manager owns
//! them, and taking a field another manager owns with a different value is a conflict
//! unless forced. Empty entries go; at most ten `Update` entries stay (older ones merge into
//! `ancient-changes`), as kube caps them.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use super::diff::{compare, field_set};
use super::fields::{Element, Path, Set};
use super::merge::{merge, prune};
use super::shape::Schema;

/// How many `Update` entries an object keeps.
const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager of what was on an object before its first apply, when nothing tracked it.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// What wrote a set of fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or a non-apply patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who writes: the key of a managedFields entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The field manager.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The version written (part of the key for updates only).
    pub api_version: String,
    /// The subresource written ("" for the object itself).
    pub subresource: String,
}

impl Identity {
    fn matches(&self, entry: &Entry) -> bool {
        entry.id.manager == self.manager
            && entry.id.operation == self.operation
            && entry.id.subresource == self.subresource
            && (self.operation == Operation::Apply || entry.id.api_version == self.api_version)
    }

    /// As kube's conflict messages name a manager: `"kubectl" using apps/v1` for an update,
    /// `"mgr"` for an applier, `... with subresource "status"`.
    pub fn describe(&self) -> String {
        let mut text = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            text = format!("{text} with subresource {:?}", self.subresource);
        }
        if self.operation == Operation::Update {
            text = format!("{text} using {}", self.api_version);
        }
        text
    }
}

/// One managedFields entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Its key.
    pub id: Identity,
    /// When its manager last changed the object.
    pub time: Option<String>,
    /// The fields it owns.
    pub set: Set,
}

/// An object's managedFields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Managed {
    /// The entries.
    pub entries: Vec<Entry>,
}

/// A field another manager owns that an apply would change.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// The owner.
    pub owner: Identity,
    /// The field.
    pub path: Path,
}

/// Why an apply failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyError {
    /// Fields other managers own, not forced.
    Conflicts(Vec<Conflict>),
    /// The configuration does not fit the schema (an item without its key, a duplicate).
    Invalid(String),
}

/// Whether a write's managedFields ask for a reset: an empty list, or one empty entry.
pub fn is_reset(fields: Option<&Value>) -> bool {
    match fields.and_then(Value::as_array) {
        Some(list) if list.is_empty() => true,
        Some(list) => list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty),
        None => false,
    }
}

impl Managed {
    /// Reads managedFields (absent or null: none); an error says which entry is malformed.
    pub fn decode(fields: Option<&Value>) -> Result<Managed, String> {
        let Some(list) = fields.filter(|f| !f.is_null()) else {
            return Ok(Managed::default());
        };
        let list = list
            .as_array()
            .ok_or_else(|| "managedFields must be a list".to_owned())?;
        let mut managed = Managed::default();
        for (i, entry) in list.iter().enumerate() {
            let text = |field: &str| entry[field].as_str().unwrap_or("").to_owned();
            let operation = match entry["operation"].as_str() {
                Some("Apply") => Operation::Apply,
                Some("Update") => Operation::Update,
                _ => return Err("operation must be `Apply` or `Update`".into()),
            };
            if text("apiVersion").is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match entry["fieldsType"].as_str().unwrap_or("") {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => {
                    return Err(format!(
                        "invalid fieldsType {other:?} in managed fields entry {i}"
                    ))
                }
            }
            let set = match entry.get("fieldsV1") {
                None | Some(Value::Null) => Set::default(),
                Some(fields) => {
                    Set::from_fields_v1(fields).map_err(|e| format!("error decoding set: {e}"))?
                }
            };
            let id = Identity {
                manager: text("manager"),
                operation,
                api_version: text("apiVersion"),
                subresource: text("subresource"),
            };
            let time = entry["time"].as_str().map(str::to_owned);
            match managed.entries.iter_mut().find(|e| id.matches(e)) {
                Some(existing) => {
                    existing.set = set;
                    existing.time = time;
                }
                None => managed.entries.push(Entry { id, time, set }),
            }
        }
        Ok(managed)
    }

    /// The managedFields list, in kube's order (operation, time, manager, apiVersion,
    /// subresource); `None` when there is no entry.
    pub fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| {
            a.id.operation
                .cmp(&b.id.operation)
                .then_with(|| compare_times(a.time.as_deref(), b.time.as_deref()))
                .then_with(|| a.id.manager.cmp(&b.id.manager))
                .then_with(|| a.id.api_version.cmp(&b.id.api_version))
                .then_with(|| a.id.subresource.cmp(&b.id.subresource))
        });
        let list = entries
            .into_iter()
            .map(|entry| {
                let mut out = json!({
                    "manager": entry.id.manager,
                    "operation": entry.id.operation.as_str(),
                    "apiVersion": entry.id.api_version,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": entry.set.to_fields_v1(),
                });
                if let Some(time) = &entry.time {
                    out["time"] = json!(time);
                }
                if !entry.id.subresource.is_empty() {
                    out["subresource"] = json!(entry.id.subresource);
                }
                out
            })
            .collect();
        Some(Value::Array(list))
    }

    fn entry_mut(&mut self, id: &Identity) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| id.matches(e))
    }

    fn set_of(&self, id: &Identity) -> Set {
        self.entries
            .iter()
            .find(|e| id.matches(e))
            .map(|e| e.set.clone())
            .unwrap_or_default()
    }

    fn drop_empty(&mut self) {
        self.entries.retain(|e| !e.set.is_empty());
    }

    /// Records an update by `id` from `old` (`None`: a create) to `new`.
    pub fn record_update(
        &mut self,
        old: Option<&Value>,
        new: &Value,
        schema: &Schema<'_>,
        id: &Identity,
        now: &str,
    ) {
        let comparison = compare(old, Some(new), schema);
        let changed = comparison.changed();
        if !self.entries.is_empty() {
            let taken = changed.union(&comparison.removed);
            for entry in &mut self.entries {
                entry.set = entry.set.difference(&taken);
            }
        }
        let owned = strip_meta(&changed);
        if !owned.is_empty() {
            match self.entry_mut(id) {
                Some(entry) => {
                    entry.set = entry.set.union(&owned);
                    entry.time = Some(now.to_owned());
                }
                None => self.entries.push(Entry {
                    id: id.clone(),
                    time: Some(now.to_owned()),
                    set: owned,
                }),
            }
        }
        self.drop_empty();
        self.cap_update_managers();
    }

    /// Applies `config` by `id` to `live` (`None`: the object does not exist yet), returning
    /// the new object.
    pub fn apply(
        &mut self,
        live: Option<&Value>,
        config: &Value,
        schema: &Schema<'_>,
        id: &Identity,
        force: bool,
        now: &str,
    ) -> Result<Value, ApplyError> {
        let empty = json!({});
        let live = live.unwrap_or(&empty);
        if self.entries.is_empty() && live != &empty {
            let before = Identity {
                manager: BEFORE_FIRST_APPLY.into(),
                operation: Operation::Update,
                ..id.clone()
            };
            self.record_update(None, live, schema, &before, now);
        }
        let mut merged = merge(live, config, schema).map_err(ApplyError::Invalid)?;
        let last = self.set_of(id);
        let applied = field_set(config, schema).map_err(ApplyError::Invalid)?;
        match self.entry_mut(id) {
            Some(entry) => entry.set = applied.clone(),
            None => self.entries.push(Entry {
                id: id.clone(),
                time: None,
                set: applied.clone(),
            }),
        }
        if !last.is_empty() {
            let keep = self
                .entries
                .iter()
                .fold(Set::default(), |all, e| all.union(&e.set));
            prune(&mut merged, &last, Some(&keep), schema);
        }
        let comparison = compare(Some(live), Some(&merged), schema);
        let changed = comparison.changed();
        let mut conflicts = Vec::new();
        for entry in self.entries.iter().filter(|e| !id.matches(e)) {
            for path in entry.set.intersection(&changed).paths() {
                conflicts.push(Conflict {
                    owner: entry.id.clone(),
                    path,
                });
            }
        }
        if !conflicts.is_empty() && !force {
            conflicts
                .sort_by(|a, b| order_owners(&a.owner, &b.owner).then_with(|| a.path.cmp(&b.path)));
            return Err(ApplyError::Conflicts(conflicts));
        }
        let taken = changed.union(&comparison.removed);
        for entry in self.entries.iter_mut().filter(|e| !id.matches(e)) {
            entry.set = entry.set.difference(&taken);
        }
        if let Some(entry) = self.entry_mut(id) {
            entry.set = strip_meta(&entry.set);
            if &merged != live {
                entry.time = Some(now.to_owned());
            }
        }
        self.drop_empty();
        Ok(merged)
    }

    /// Folds the oldest `Update` entries into `ancient-changes` (one per apiVersion) when
    /// there are more than ten.
    fn cap_update_managers(&mut self) {
        let updaters = || {
            self.entries
                .iter()
                .filter(|e| e.id.operation == Operation::Update)
                .count()
        };
        let mut excess = updaters().saturating_sub(MAX_UPDATE_MANAGERS);
        if excess == 0 {
            return;
        }
        let mut order: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].id.operation == Operation::Update)
            .collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.entries[a], &self.entries[b]);
            compare_times(a.time.as_deref(), b.time.as_deref())
                .then_with(|| a.id.manager.cmp(&b.id.manager))
        });
        let mut folded = Vec::new();
        let mut buckets: Vec<Entry> = Vec::new();
        for i in order {
            if excess == 0 {
                break;
            }
            let entry = self.entries[i].clone();
            match buckets
                .iter_mut()
                .find(|b| b.id.api_version == entry.id.api_version)
            {
                Some(bucket) => {
                    bucket.set = bucket.set.union(&entry.set);
                    bucket.time = entry.time.clone();
                    excess -= 1;
                }
                None => buckets.push(Entry {
                    id: Identity {
                        manager: "ancient-changes".into(),
                        operation: Operation::Update,
                        api_version: entry.id.api_version.clone(),
                        subresource: String::new(),
                    },
                    ..entry
                }),
            }
            folded.push(i);
        }
        let mut index = 0;
        self.entries.retain(|_| {
            let keep = !folded.contains(&index);
            index += 1;
            keep
        });
        self.entries.extend(buckets);
    }
}

fn compare_times(a: Option<&str>, b: Option<&str>) -> Ordering {
    // RFC 3339 in UTC with seconds: text order is time order; no time sorts first.
    a.unwrap_or("").cmp(b.unwrap_or(""))
}

fn order_owners(a: &Identity, b: &Identity) -> Ordering {
    a.manager
        .cmp(&b.manager)
        .then_with(|| a.operation.cmp(&b.operation))
        .then_with(|| a.api_version.cmp(&b.api_version))
        .then_with(|| a.subresource.cmp(&b.subresource))
}

/// Fields no manager owns: the type, identity and server-kept metadata.
fn strip_meta(set: &Set) -> Set {
    let mut strip = Set::default();
    let field = |name: &str| Element::Field(name.into());
    strip.insert(&Path(vec![field("apiVersion")]));
    strip.insert(&Path(vec![field("kind")]));
    strip.insert(&Path(vec![field("metadata")]));
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        strip.insert(&Path(vec![field("metadata"), field(name)]));
    }
    set.difference(&strip)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-05T22:00:00Z";

    fn schema() -> Schema<'static> {
        Schema::BuiltIn {
            kind: "Deployment",
            path: Vec::new(),
        }
    }

    fn id(manager: &str, operation: Operation) -> Identity {
        Identity {
            manager: manager.into(),
            operation,
            api_version: "apps/v1".into(),
            subresource: String::new(),
        }
    }

    fn fields_of(managed: &Managed, manager: &str) -> Value {
        managed
            .entries
            .iter()
            .find(|e| e.id.manager == manager)
            .map(|e| e.set.to_fields_v1())
            .unwrap_or(Value::Null)
    }

    #[test]
    fn updates_take_fields_from_others() {
        let mut managed = Managed::default();
        let created =
            json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 1}});
        managed.record_update(
            None,
            &created,
            &schema(),
            &id("kubectl-create", Operation::Update),
            NOW,
        );
        assert_eq!(
            fields_of(&managed, "kubectl-create"),
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}}})
        );
        let scaled =
            json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 3}});
        managed.record_update(
            Some(&created),
            &scaled,
            &schema(),
            &id("kubectl-scale", Operation::Update),
            NOW,
        );
        assert_eq!(
            fields_of(&managed, "kubectl-create"),
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
        );
        assert_eq!(
            fields_of(&managed, "kubectl-scale"),
            json!({"f:spec": {"f:replicas": {}}})
        );
        // Removing the last field a manager owns removes its entry.
        let bare = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3}});
        managed.record_update(
            Some(&scaled),
            &bare,
            &schema(),
            &id("editor", Operation::Update),
            NOW,
        );
        assert!(managed
            .entries
            .iter()
            .all(|e| e.id.manager != "kubectl-create"));
        assert!(managed.entries.iter().all(|e| e.id.manager != "editor"));
    }

    #[test]
    fn apply_conflicts_shares_forces_and_prunes() {
        let mut managed = Managed::default();
        let live = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "paused": false}});
        managed.record_update(
            None,
            &live,
            &schema(),
            &id("kubectl-client-side-apply", Operation::Update),
            NOW,
        );
        let applier = id("mgr", Operation::Apply);
        // Same value: shared, no conflict.
        let same = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let merged = managed
            .apply(Some(&live), &same, &schema(), &applier, false, NOW)
            .unwrap();
        assert_eq!(merged, live);
        assert_eq!(
            fields_of(&managed, "mgr"),
            json!({"f:spec": {"f:replicas": {}}})
        );
        // A different value: a conflict naming the owner.
        let more = json!({"metadata": {"name": "web"}, "spec": {"replicas": 5, "paused": true}});
        let Err(ApplyError::Conflicts(conflicts)) =
            managed
                .clone()
                .apply(Some(&live), &more, &schema(), &applier, false, NOW)
        else {
            panic!("expected conflicts");
        };
        let printed: Vec<String> = conflicts
            .iter()
            .map(|c| format!("{} {}", c.owner.describe(), c.path))
            .collect();
        assert_eq!(
            printed,
            [
                "\"kubectl-client-side-apply\" using apps/v1 .spec.paused",
                "\"kubectl-client-side-apply\" using apps/v1 .spec.replicas"
            ]
        );
        // Forced: the applier takes both fields.
        let merged = managed
            .apply(Some(&live), &more, &schema(), &applier, true, NOW)
            .unwrap();
        assert_eq!(merged["spec"], json!({"replicas": 5, "paused": true}));
        assert!(managed
            .entries
            .iter()
            .all(|e| e.id.manager != "kubectl-client-side-apply"));
        // Applying without paused removes it: nobody else owns it.
        let fewer = json!({"metadata": {"name": "web"}, "spec": {"replicas": 5}});
        let pruned = managed
            .apply(Some(&merged), &fewer, &schema(), &applier, false, NOW)
            .unwrap();
        assert_eq!(pruned["spec"], json!({"replicas": 5}));
    }

    #[test]
    fn managed_fields_round_trip_and_refuse_bad_entries() {
        let list = json!([
            {"manager": "mgr", "operation": "Apply", "apiVersion": "apps/v1", "time": NOW,
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "time": NOW,
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:replicas": {}}}, "subresource": "status"},
        ]);
        let managed = Managed::decode(Some(&list)).unwrap();
        assert_eq!(managed.encode(), Some(list));
        for (bad, why) in [
            (
                json!([{"manager": "m", "operation": "Delete", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
                "operation must be `Apply` or `Update`",
            ),
            (
                json!([{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1"}]),
                "apiVersion must not be empty",
            ),
            (
                json!([{"manager": "m", "operation": "Apply", "apiVersion": "v1"}]),
                "missing fieldsType in managed fields entry 0",
            ),
            (
                json!([{"manager": "m", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"}]),
                "invalid fieldsType \"FieldsV2\" in managed fields entry 0",
            ),
        ] {
            assert_eq!(Managed::decode(Some(&bad)).unwrap_err(), why);
        }
        assert!(is_reset(Some(&json!([]))) && is_reset(Some(&json!([{}]))));
        assert!(!is_reset(None) && !is_reset(Some(&json!([{"manager": "m"}]))));
    }

    #[test]
    fn update_managers_are_capped() {
        let mut managed = Managed::default();
        let mut old = json!({"metadata": {"name": "web"}});
        for i in 0..12 {
            let mut new = old.clone();
            new["metadata"]["annotations"][format!("a{i}")] = json!("x");
            let time = format!("2026-12-05T22:00:{i:02}Z");
            managed.record_update(
                Some(&old),
                &new,
                &schema(),
                &id(&format!("m{i:02}"), Operation::Update),
                &time,
            );
            old = new;
        }
        assert_eq!(managed.entries.len(), 10);
        let ancient = managed
            .entries
            .iter()
            .find(|e| e.id.manager == "ancient-changes")
            .unwrap();
        assert_eq!(
            ancient.set.to_fields_v1(),
            json!({"f:metadata": {"f:annotations": {".": {}, "f:a0": {}, "f:a1": {}, "f:a2": {}}}})
        );
    }
}
