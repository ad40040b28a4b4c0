//! PriorityClasses (`scheduling.k8s.io/v1`) and the `Priority` admission plugin, the parts
//! that need no store: a class's defaults and validation (`value` at most 1,000,000,000 for
//! user classes, the `system-` prefix reserved for the two system classes, `value` and
//! `preemptionPolicy` fixed once created), and resolving a new pod's `priorityClassName` to
//! `spec.priority` and `spec.preemptionPolicy` against the classes a caller looks up.
//!
//! The caller (`crate::priority`) reads the classes from the watch cache and turns the
//! [`Forbidden`] messages here into 403s, as kube's plugin does through its lister.

use serde_json::{json, Value};

use super::field::{forbidden, invalid, not_supported, Bad, IMMUTABLE_MSG};
use super::json::{default_field, flag, int, opt_text, text};
use super::FieldError;

/// Names with this prefix are reserved for the system classes.
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";
/// The highest value a user's class may have (`HighestUserDefinablePriority`).
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;
/// `system-cluster-critical`'s value (`SystemCriticalPriority`).
pub const SYSTEM_CRITICAL_PRIORITY: i64 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;

/// The classes every cluster has, with their values and descriptions, as kube-apiserver
/// creates them at start.
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        SYSTEM_CRITICAL_PRIORITY + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        SYSTEM_CRITICAL_PRIORITY,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// The preemption policies a class or pod may name.
const PREEMPTION_POLICIES: &[&str] = &["Never", "PreemptLowerPriority"];
/// The policy of a class that names none, and of pods when no class applies.
pub const PREEMPT_LOWER_PRIORITY: &str = "PreemptLowerPriority";

/// A PriorityClass's v1 default: `preemptionPolicy: PreemptLowerPriority`.
pub(super) fn default_priority_class(class: &mut Value) {
    default_field(class, "preemptionPolicy", json!(PREEMPT_LOWER_PRIORITY));
}

/// `ValidatePriorityClass` on create, `ValidatePriorityClassUpdate` on update.
pub(super) fn validate_priority_class(
    class: &Value,
    old: Option<&Value>,
    errs: &mut Vec<FieldError>,
) {
    let value = int(class, "value").unwrap_or(0);
    if let Some(old) = old {
        if value != int(old, "value").unwrap_or(0) {
            errs.push(forbidden("value", "may not be changed in an update."));
        }
        let policy = opt_text(class, "preemptionPolicy");
        if policy != opt_text(old, "preemptionPolicy") {
            let bad = policy.map_or(Bad::Raw("null".into()), Bad::str);
            errs.push(invalid("preemptionPolicy", bad, IMMUTABLE_MSG));
        }
        return;
    }
    let name = text(&class["metadata"], "name");
    if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
        if let Err(why) = known_system_class(name, value, flag(class, "globalDefault")) {
            errs.push(forbidden(
                "metadata.name",
                &format!("priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: {why}"),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(forbidden(
            "value",
            &format!(
                "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
            ),
        ));
    }
    if let Some(policy) = opt_text(class, "preemptionPolicy") {
        if !PREEMPTION_POLICIES.contains(&policy) {
            errs.push(not_supported(
                "preemptionPolicy",
                Bad::str(policy),
                PREEMPTION_POLICIES,
            ));
        }
    }
}

/// `IsKnownSystemPriorityClass`: a `system-` class must be one of the system classes, as is.
fn known_system_class(name: &str, value: i64, global_default: bool) -> Result<(), String> {
    let Some((_, want, _)) = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, ..)| *n == name) else {
        return Err(format!("{name} is not a known system priority class"));
    };
    if value != *want {
        return Err(format!("value of {name} PriorityClass must be {want}"));
    }
    if global_default {
        return Err(format!(
            "globalDefault of {name} PriorityClass must be false"
        ));
    }
    Ok(())
}

/// What admission needs of a stored PriorityClass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityClassInfo {
    /// `metadata.name`.
    pub name: String,
    /// `value`.
    pub value: i64,
    /// `globalDefault`.
    pub global_default: bool,
    /// `preemptionPolicy` (set on every class the server stored).
    pub preemption_policy: Option<String>,
}

impl PriorityClassInfo {
    /// Reads a stored PriorityClass.
    pub fn of(class: &Value) -> PriorityClassInfo {
        PriorityClassInfo {
            name: text(&class["metadata"], "name").to_owned(),
            value: int(class, "value").unwrap_or(0),
            global_default: flag(class, "globalDefault"),
            preemption_policy: opt_text(class, "preemptionPolicy").map(str::to_owned),
        }
    }
}

/// The default class among `classes`: the global default one, the lowest value first should
/// a race have left two (as kube's plugin picks).
pub fn default_class(classes: &[PriorityClassInfo]) -> Option<&PriorityClassInfo> {
    classes
        .iter()
        .filter(|c| c.global_default)
        .min_by_key(|c| c.value)
}

/// Why admission refused; the caller words it `<resource> "<name>" is forbidden: <reason>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forbidden(pub String);

/// The check of the `Priority` plugin on a PriorityClass create or update: at most one
/// class is the global default. `classes` are the stored ones.
pub fn admit_priority_class(
    class: &Value,
    updating: bool,
    classes: &[PriorityClassInfo],
) -> Result<(), Forbidden> {
    if !flag(class, "globalDefault") {
        return Ok(());
    }
    let name = text(&class["metadata"], "name");
    match default_class(classes) {
        Some(existing) if !updating || existing.name != name => Err(Forbidden(format!(
            "PriorityClass {} is already marked as default. Only one default can exist",
            existing.name
        ))),
        _ => Ok(()),
    }
}

/// Where [`admit_pod`] finds a class: the class named, and the global default.
pub trait PriorityClasses {
    /// The class called `name`, if it exists.
    fn get(&self, name: &str) -> Option<PriorityClassInfo>;
    /// The global default class, if one is marked.
    fn global_default(&self) -> Option<PriorityClassInfo>;
}

/// The `Priority` plugin on a pod create: resolves `priorityClassName` (or the global
/// default, or priority 0 when there is none) into `spec.priority` and
/// `spec.preemptionPolicy`; refuses an unknown class, and a priority or policy the pod sets
/// that differs from what its class gives.
pub fn admit_pod(pod: &mut Value, classes: &impl PriorityClasses) -> Result<(), Forbidden> {
    let Some(spec) = pod.get_mut("spec").filter(|s| s.is_object()) else {
        return Ok(());
    };
    let named = text(spec, "priorityClassName").to_owned();
    let (class_name, priority, policy) = if named.is_empty() {
        match classes.global_default() {
            Some(class) => (class.name, class.value, class.preemption_policy),
            None => (String::new(), 0, Some(PREEMPT_LOWER_PRIORITY.to_owned())),
        }
    } else {
        let Some(class) = classes.get(&named) else {
            return Err(Forbidden(format!(
                "no PriorityClass with name {named} was found"
            )));
        };
        (named, class.value, class.preemption_policy)
    };
    if let Some(given) = int(spec, "priority") {
        if given != priority {
            return Err(Forbidden(format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name")));
        }
    }
    if let Some(policy) = &policy {
        if let Some(given) = opt_text(spec, "preemptionPolicy") {
            if given != policy {
                return Err(Forbidden(format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name")));
            }
        }
    }
    if !class_name.is_empty() {
        spec["priorityClassName"] = json!(class_name);
    }
    spec["priority"] = json!(priority);
    if let Some(policy) = policy {
        spec["preemptionPolicy"] = json!(policy);
    }
    Ok(())
}

/// The `Priority` plugin on a pod update: a pod written back without the priority and
/// policy admission gave it keeps them (pod validation then refuses any other change).
pub fn keep_pod_priority(pod: &mut Value, old: &Value) {
    let Some(spec) = pod.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    for field in ["priority", "preemptionPolicy"] {
        if spec.get(field).is_none_or(Value::is_null) {
            if let Some(kept) = old["spec"].get(field).filter(|v| !v.is_null()) {
                spec[field] = kept.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, value: i64) -> Value {
        json!({"metadata": {"name": name}, "value": value, "preemptionPolicy": PREEMPT_LOWER_PRIORITY})
    }

    fn errors(class: &Value, old: Option<&Value>) -> Vec<String> {
        let mut errs = Vec::new();
        validate_priority_class(class, old, &mut errs);
        errs.iter().map(FieldError::describe).collect::<Vec<_>>()
    }

    #[test]
    fn user_classes_stay_below_a_billion_and_off_the_system_prefix() {
        assert!(errors(&class("high", 1_000_000_000), None).is_empty());
        assert_eq!(
            errors(&class("higher", 1_000_000_001), None),
            ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
        );
        assert_eq!(
            errors(&class("system-mine", 5), None),
            ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"]
        );
        assert_eq!(
            errors(&class("system-node-critical", 7), None),
            ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000"]
        );
        assert!(errors(&class("system-cluster-critical", 2_000_000_000), None).is_empty());
        let mut never = class("bg", 1);
        never["preemptionPolicy"] = json!("Sometimes");
        assert_eq!(
            errors(&never, None),
            ["preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"Never\", \"PreemptLowerPriority\""]
        );
    }

    #[test]
    fn value_and_preemption_policy_are_fixed_once_created() {
        let old = class("high", 10);
        let mut new = class("high", 11);
        new["preemptionPolicy"] = json!("Never");
        assert_eq!(
            errors(&new, Some(&old)),
            [
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"Never\": field is immutable"
            ]
        );
        let mut described = class("high", 10);
        described["description"] = json!("changed");
        assert!(errors(&described, Some(&old)).is_empty());
    }

    #[test]
    fn one_global_default_at_most() {
        let stored = vec![
            PriorityClassInfo::of(&class("low", 1)),
            PriorityClassInfo {
                global_default: true,
                ..PriorityClassInfo::of(&class("normal", 100))
            },
        ];
        let mut second = class("other", 5);
        second["globalDefault"] = json!(true);
        assert_eq!(
            admit_priority_class(&second, false, &stored),
            Err(Forbidden(
                "PriorityClass normal is already marked as default. Only one default can exist"
                    .into()
            ))
        );
        let mut same = class("normal", 100);
        same["globalDefault"] = json!(true);
        assert_eq!(admit_priority_class(&same, true, &stored), Ok(()));
        assert_eq!(admit_priority_class(&class("x", 1), false, &stored), Ok(()));
        assert_eq!(admit_priority_class(&second, false, &stored[..1]), Ok(()));
    }

    struct Stored(Vec<PriorityClassInfo>);

    impl PriorityClasses for Stored {
        fn get(&self, name: &str) -> Option<PriorityClassInfo> {
            self.0.iter().find(|c| c.name == name).cloned()
        }
        fn global_default(&self) -> Option<PriorityClassInfo> {
            default_class(&self.0).cloned()
        }
    }

    #[test]
    fn pods_get_their_class_priority_and_policy() {
        let mut never = PriorityClassInfo::of(&class("batch", 50));
        never.preemption_policy = Some("Never".into());
        let classes = Stored(vec![PriorityClassInfo::of(&class("high", 1000)), never]);

        let mut pod = json!({"spec": {"priorityClassName": "high"}});
        admit_pod(&mut pod, &classes).unwrap();
        assert_eq!(
            pod["spec"],
            json!({"priorityClassName": "high", "priority": 1000, "preemptionPolicy": "PreemptLowerPriority"})
        );

        let mut pod = json!({"spec": {"priorityClassName": "batch", "priority": 50}});
        admit_pod(&mut pod, &classes).unwrap();
        assert_eq!(pod["spec"]["preemptionPolicy"], "Never");

        let mut pod = json!({"spec": {}});
        admit_pod(&mut pod, &classes).unwrap();
        assert_eq!(
            pod["spec"],
            json!({"priority": 0, "preemptionPolicy": "PreemptLowerPriority"})
        );

        let mut pod = json!({"spec": {"priorityClassName": "nope"}});
        assert_eq!(
            admit_pod(&mut pod, &classes),
            Err(Forbidden(
                "no PriorityClass with name nope was found".into()
            ))
        );
        let mut pod = json!({"spec": {"priorityClassName": "high", "priority": 7}});
        assert_eq!(
            admit_pod(&mut pod, &classes),
            Err(Forbidden("the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name".into()))
        );
        let mut pod = json!({"spec": {"priorityClassName": "batch", "preemptionPolicy": "PreemptLowerPriority"}});
        assert!(admit_pod(&mut pod, &classes).unwrap_err().0.starts_with(
            "the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided"
        ));
    }

    #[test]
    fn pods_without_a_class_take_the_global_default() {
        let mut default = PriorityClassInfo::of(&class("normal", 100));
        default.global_default = true;
        let classes = Stored(vec![default]);
        let mut pod = json!({"spec": {"containers": []}});
        admit_pod(&mut pod, &classes).unwrap();
        assert_eq!(pod["spec"]["priorityClassName"], "normal");
        assert_eq!(pod["spec"]["priority"], 100);
    }
}
