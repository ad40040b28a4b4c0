//! Which nodes a DaemonSet's pod belongs on, as kube's `NodeShouldRunDaemonPod` decides it,
//! and the pod the controller makes for one node.
//!
//! ```text
//! template nodeName names another node ───────────────▶ not here, and not kept
//! nodeSelector / required node affinity do not match ─▶ not here, and not kept
//! an untolerated NoSchedule or NoExecute taint ───────▶ not placed here; a pod already
//!                                                       here stays unless a NoExecute one
//! otherwise ──────────────────────────────────────────▶ one pod here
//! ```
//!
//! Tolerations are the template's plus the ones the controller gives every daemon pod
//! (not-ready and unreachable NoExecute forever; disk, memory and pid pressure and
//! unschedulable NoSchedule; network-unavailable for host-network pods). The pod is placed
//! by the scheduler, pinned to its node by a required `matchFields metadata.name In [NODE]`
//! term that replaces the template's required terms (already checked here).

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};

use crate::node_lifecycle::taints::tolerates;

/// The one field a node selector's `matchFields` can name.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

/// Whether a DaemonSet's pod belongs on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// A pod should be placed there if none is.
    pub should_run: bool,
    /// A pod already there may stay.
    pub should_continue_running: bool,
}

impl Placement {
    const RUN: Placement = Placement {
        should_run: true,
        should_continue_running: true,
    };
    const NEVER: Placement = Placement {
        should_run: false,
        should_continue_running: false,
    };
}

/// The tolerations every daemon pod gets (kube's `AddOrUpdateDaemonPodTolerations`).
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(effect.to_owned()),
        ..Toleration::default()
    };
    let mut tolerations = vec![
        exists("node.kubernetes.io/not-ready", "NoExecute"),
        exists("node.kubernetes.io/unreachable", "NoExecute"),
        exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
        exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
        exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
        exists("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        tolerations.push(exists(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    tolerations
}

/// Adds the daemon tolerations to `spec`: one the spec has with the same key, operator, value
/// and effect is replaced (so a `tolerationSeconds` on it goes), others are appended (kube's
/// `AddOrUpdateTolerationInPodSpec`).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network == Some(true);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for wanted in daemon_tolerations(host_network) {
        let same = |t: &Toleration| {
            t.key == wanted.key
                && t.operator.as_deref().unwrap_or("Equal")
                    == wanted.operator.as_deref().unwrap_or("Equal")
                && t.value.as_deref().unwrap_or("") == wanted.value.as_deref().unwrap_or("")
                && t.effect.as_deref().unwrap_or("") == wanted.effect.as_deref().unwrap_or("")
        };
        match tolerations.iter_mut().find(|t| same(t)) {
            Some(existing) => *existing = wanted,
            None => tolerations.push(wanted),
        }
    }
}

/// Whether a label requirement holds; None when it is invalid (then its term matches
/// nothing, as component-helpers' `nodeaffinity` has it).
fn label_requirement(requirement: &NodeSelectorRequirement, node: &Node) -> Option<bool> {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    let value = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(&requirement.key));
    match requirement.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => None,
        "In" => Some(value.is_some_and(|v| values.contains(v))),
        "NotIn" => Some(!value.is_some_and(|v| values.contains(v))),
        "Exists" | "DoesNotExist" if !values.is_empty() => None,
        "Exists" => Some(value.is_some()),
        "DoesNotExist" => Some(value.is_none()),
        "Gt" | "Lt" => {
            let [bound] = values else { return None };
            let bound: i64 = bound.parse().ok()?;
            let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                return Some(false);
            };
            Some(if requirement.operator == "Gt" {
                actual > bound
            } else {
                actual < bound
            })
        }
        _ => None,
    }
}

/// Whether a field requirement holds (only `metadata.name`, `In`/`NotIn`, one value).
fn field_requirement(requirement: &NodeSelectorRequirement, node: &Node) -> Option<bool> {
    let [value] = requirement.values.as_deref().unwrap_or(&[]) else {
        return None;
    };
    if requirement.key != OBJECT_NAME_FIELD {
        return None;
    }
    let name = node.metadata.name.as_deref().unwrap_or("");
    match requirement.operator.as_str() {
        "In" => Some(name == value),
        "NotIn" => Some(name != value),
        _ => None,
    }
}

/// Whether a term matches: every requirement holds; an empty or invalid term matches nothing.
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = expressions.iter().map(|r| label_requirement(r, node));
    let fields = fields.iter().map(|r| field_requirement(r, node));
    labels
        .chain(fields)
        .try_fold(true, |all, r| r.map(|m| all && m))
        .unwrap_or(false)
}

/// `nodeSelector` and the required node affinity terms (kube's `GetRequiredNodeAffinity`).
pub fn required_affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    if let Some(selector) = &spec.node_selector {
        let labels = node.metadata.labels.as_ref();
        if !selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        {
            return false;
        }
    }
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|s| s.node_selector_terms.as_slice());
    match terms {
        None => true,
        Some(terms) => terms.iter().any(|t| term_matches(t, node)),
    }
}

/// Whether one of `taints` with an effect `effects` accepts is tolerated by none of
/// `tolerations` (kube's `FindMatchingUntoleratedTaint`).
fn has_untolerated(taints: &[Taint], tolerations: &[Toleration], effects: &[&str]) -> bool {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .any(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// Whether `ds` should run a pod on `node`, and whether a pod already there may stay.
pub fn node_should_run(ds: &DaemonSet, node: &Node) -> Placement {
    let Some(mut spec) = ds.spec.as_ref().and_then(|s| s.template.spec.clone()) else {
        return Placement::NEVER;
    };
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return Placement::NEVER;
    }
    if !required_affinity_matches(&spec, node) {
        return Placement::NEVER;
    }
    add_daemon_tolerations(&mut spec);
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    if has_untolerated(taints, tolerations, &["NoSchedule", "NoExecute"]) {
        return Placement {
            should_run: false,
            should_continue_running: !has_untolerated(taints, tolerations, &["NoExecute"]),
        };
    }
    Placement::RUN
}

/// The required node affinity that pins a pod to `node`, replacing the required terms of
/// `affinity` and keeping the rest (kube's `ReplaceDaemonSetPodNodeNameNodeAffinity`).
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let pinned = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: OBJECT_NAME_FIELD.to_owned(),
                operator: "In".to_owned(),
                values: Some(vec![node.to_owned()]),
            }]),
            match_expressions: None,
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default)
        .required_during_scheduling_ignored_during_execution = Some(pinned);
    affinity
}

/// The node a daemon pod is for: its `nodeName` once bound, else the node its required
/// affinity pins it to (kube's `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name.to_owned());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == OBJECT_NAME_FIELD && r.operator == "In")
        .and_then(|r| match r.values.as_deref() {
            Some([one]) => Some(one.clone()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn node(labels: Value, taints: Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": labels},
            "spec": {"taints": taints},
        }))
        .unwrap()
    }

    fn daemon_set(pod_spec: Value) -> DaemonSet {
        let mut spec = json!({"containers": [{"name": "c", "image": "i"}]});
        spec.as_object_mut()
            .unwrap()
            .extend(pod_spec.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "metadata": {"name": "ds", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}}, "spec": spec}},
        }))
        .unwrap()
    }

    fn required(terms: Value) -> Value {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": terms}}}})
    }

    #[test]
    fn placement_follows_kube() {
        const RUN: (bool, bool) = (true, true);
        const NEVER: (bool, bool) = (false, false);
        const STAY: (bool, bool) = (false, true);
        let taint = |key: &str, effect: &str| json!([{"key": key, "effect": effect}]);
        // What, the node's labels, the pod spec's extra fields, the node's taints, and
        // (should run, should continue running).
        type Case = (&'static str, Value, Value, Value, (bool, bool));
        let cases: Vec<Case> = vec![
            ("plain node", json!({}), json!({}), json!([]), RUN),
            (
                "nodeSelector matches",
                json!({"disk": "ssd"}),
                json!({"nodeSelector": {"disk": "ssd"}}),
                json!([]),
                RUN,
            ),
            (
                "nodeSelector does not match",
                json!({"disk": "hdd"}),
                json!({"nodeSelector": {"disk": "ssd"}}),
                json!([]),
                NEVER,
            ),
            (
                "required affinity In matches",
                json!({"zone": "a"}),
                required(json!([{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a", "b"]}]}])),
                json!([]),
                RUN,
            ),
            (
                "required affinity: the second term matches",
                json!({"zone": "c"}),
                required(json!([
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                    {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}])),
                json!([]),
                RUN,
            ),
            (
                "required affinity DoesNotExist fails",
                json!({"gpu": "1"}),
                required(json!([{"matchExpressions": [
                    {"key": "gpu", "operator": "DoesNotExist"}]}])),
                json!([]),
                NEVER,
            ),
            (
                "required affinity on another node's name",
                json!({}),
                required(json!([{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n2"]}]}])),
                json!([]),
                NEVER,
            ),
            (
                "an empty term matches nothing",
                json!({}),
                required(json!([{}])),
                json!([]),
                NEVER,
            ),
            (
                "template nodeName names another node",
                json!({}),
                json!({"nodeName": "n2"}),
                json!([]),
                NEVER,
            ),
            (
                "untolerated NoSchedule: pods stay",
                json!({}),
                json!({}),
                taint("dedicated", "NoSchedule"),
                STAY,
            ),
            (
                "untolerated NoExecute: pods go",
                json!({}),
                json!({}),
                taint("dedicated", "NoExecute"),
                NEVER,
            ),
            (
                "PreferNoSchedule is ignored",
                json!({}),
                json!({}),
                taint("dedicated", "PreferNoSchedule"),
                RUN,
            ),
            (
                "a tolerated taint",
                json!({}),
                json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
                taint("dedicated", "NoExecute"),
                RUN,
            ),
            (
                "unschedulable is tolerated by every daemon pod",
                json!({}),
                json!({}),
                taint("node.kubernetes.io/unschedulable", "NoSchedule"),
                RUN,
            ),
            (
                "unreachable NoExecute is tolerated by every daemon pod",
                json!({}),
                json!({}),
                taint("node.kubernetes.io/unreachable", "NoExecute"),
                RUN,
            ),
            (
                "not-ready NoSchedule is not: pods stay",
                json!({}),
                json!({}),
                taint("node.kubernetes.io/not-ready", "NoSchedule"),
                STAY,
            ),
            (
                "network-unavailable only for host-network pods",
                json!({}),
                json!({}),
                taint("node.kubernetes.io/network-unavailable", "NoSchedule"),
                STAY,
            ),
            (
                "network-unavailable with hostNetwork",
                json!({}),
                json!({"hostNetwork": true}),
                taint("node.kubernetes.io/network-unavailable", "NoSchedule"),
                RUN,
            ),
        ];
        for (what, labels, pod_spec, taints, (should_run, should_continue_running)) in cases {
            let placement = node_should_run(&daemon_set(pod_spec), &node(labels, taints));
            assert_eq!(
                placement,
                Placement {
                    should_run,
                    should_continue_running
                },
                "{what}"
            );
        }
    }

    #[test]
    fn daemon_tolerations_replace_their_namesakes() {
        let mut spec: PodSpec = serde_json::from_value(json!({"containers": [], "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "mine", "operator": "Exists"},
        ]}))
        .unwrap();
        add_daemon_tolerations(&mut spec);
        let tolerations = spec.tolerations.unwrap();
        assert_eq!(tolerations.len(), 7);
        assert_eq!(tolerations[0].toleration_seconds, None);
        assert_eq!(tolerations[1].key.as_deref(), Some("mine"));
        // Applying twice changes nothing.
        let mut again = PodSpec {
            tolerations: Some(tolerations.clone()),
            ..PodSpec::default()
        };
        add_daemon_tolerations(&mut again);
        assert_eq!(again.tolerations.unwrap(), tolerations);
    }

    #[test]
    fn pinning_replaces_required_terms_and_names_the_target() {
        let spec: PodSpec = serde_json::from_value(json!({"containers": [],
            "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference":
                    {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]}}}))
        .unwrap();
        let affinity = pin_to_node(spec.affinity, "n7");
        let node_affinity = affinity.node_affinity.as_ref().unwrap();
        assert!(node_affinity
            .preferred_during_scheduling_ignored_during_execution
            .is_some());
        let pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(affinity.clone()),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        let terms = &node_affinity
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .node_selector_terms;
        assert_eq!(terms.len(), 1);
        assert!(term_matches(
            &terms[0],
            &node(json!({}), json!([])).with_name("n7")
        ));
        assert!(!term_matches(&terms[0], &node(json!({}), json!([]))));
        let mut bound = pod;
        bound.spec.as_mut().unwrap().node_name = Some("n9".into());
        assert_eq!(target_node(&bound).as_deref(), Some("n9"));
    }

    trait WithName {
        fn with_name(self, name: &str) -> Self;
    }

    impl WithName for Node {
        fn with_name(mut self, name: &str) -> Node {
            self.metadata.name = Some(name.into());
            self
        }
    }
}
