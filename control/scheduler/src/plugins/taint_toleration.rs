//! TaintToleration: a node's `NoSchedule` and `NoExecute` taints keep off pods that do not
//! tolerate them (filter); untolerated `PreferNoSchedule` taints make a node less preferred
//! (score: the count, normalized so fewer is better).

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::cache::NodeInfo;
use crate::framework::{FilterPlugin, PodInfo, ScorePlugin, Status};
use crate::plugins::default_normalize_score;

/// The TaintToleration filter and score.
pub struct TaintToleration;

/// `Toleration.ToleratesTaint`: effect and key match when set; `Exists` takes any value,
/// `Equal` (or no operator) the same value.
pub fn toleration_tolerates_taint(toleration: &Toleration, taint: &Taint) -> bool {
    let set = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(effect) = set(&toleration.effect) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = set(&toleration.key) {
        if key != taint.key {
            return false;
        }
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub fn tolerations_tolerate_taint(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations
        .iter()
        .any(|t| toleration_tolerates_taint(t, taint))
}

/// The first `NoSchedule`/`NoExecute` taint the tolerations do not tolerate.
pub fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tolerations_tolerate_taint(tolerations, taint)
    })
}

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.spec().tolerations.as_deref().unwrap_or(&[])
}

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        match find_untolerated_taint(node.taints(), tolerations(pod)) {
            None => Status::success(),
            Some(taint) => Status::unresolvable(&format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            )),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        // Tolerations with no effect tolerate PreferNoSchedule too.
        let preferring: Vec<Toleration> = tolerations(pod)
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .cloned()
            .collect();
        node.taints()
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|t| !tolerations_tolerate_taint(&preferring, t))
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize_score(true, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn filter() {
        let cases = [
            (
                "a pod with no tolerations on a node with no taints",
                pod("p"),
                node("n"),
                Status::success(),
            ),
            (
                "a pod with no tolerations on a tainted node",
                pod("p"),
                node("n").taint("dedicated", "user1", "NoSchedule"),
                Status::unresolvable("node(s) had untolerated taint {dedicated: user1}"),
            ),
            (
                "a taint without a value",
                pod("p"),
                node("n").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),
                Status::unresolvable(
                    "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
                ),
            ),
            (
                "an Equal toleration of the same key and value",
                pod("p").toleration("dedicated", "Equal", "user1", "NoSchedule"),
                node("n").taint("dedicated", "user1", "NoSchedule"),
                Status::success(),
            ),
            (
                "an Equal toleration of another value",
                pod("p").toleration("dedicated", "Equal", "user2", "NoSchedule"),
                node("n").taint("dedicated", "user1", "NoSchedule"),
                Status::unresolvable("node(s) had untolerated taint {dedicated: user1}"),
            ),
            (
                "an Exists toleration takes any value",
                pod("p").toleration("foo", "Exists", "", "NoSchedule"),
                node("n").taint("foo", "bar", "NoSchedule"),
                Status::success(),
            ),
            (
                "an empty key with Exists tolerates everything",
                pod("p").toleration("", "Exists", "", ""),
                node("n")
                    .taint("a", "1", "NoSchedule")
                    .taint("b", "2", "NoExecute"),
                Status::success(),
            ),
            (
                "a toleration of another effect does not count",
                pod("p").toleration("foo", "Equal", "bar", "PreferNoSchedule"),
                node("n").taint("foo", "bar", "NoSchedule"),
                Status::unresolvable("node(s) had untolerated taint {foo: bar}"),
            ),
            (
                "a toleration with no effect tolerates every effect",
                pod("p").toleration("foo", "Equal", "bar", ""),
                node("n").taint("foo", "bar", "NoExecute"),
                Status::success(),
            ),
            (
                "PreferNoSchedule taints do not filter",
                pod("p"),
                node("n").taint("foo", "bar", "PreferNoSchedule"),
                Status::success(),
            ),
            (
                "NoExecute is filtered too; the first untolerated taint is reported",
                pod("p").toleration("a", "Exists", "", "NoSchedule"),
                node("n")
                    .taint("a", "x", "NoSchedule")
                    .taint("b", "y", "NoExecute")
                    .taint("c", "z", "NoSchedule"),
                Status::unresolvable("node(s) had untolerated taint {b: y}"),
            ),
        ];
        for (name, p, n, want) in cases {
            assert_eq!(
                TaintToleration.filter(&p.info(), &n.info(vec![])),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn score() {
        let cases = [
            (
                "a node without taints is preferred",
                pod("p"),
                vec![
                    node("clean"),
                    node("tainted").taint("foo", "bar", "PreferNoSchedule"),
                ],
                vec![100, 0],
            ),
            (
                "tolerated PreferNoSchedule taints do not count",
                pod("p")
                    .toleration("foo", "Equal", "bar", "PreferNoSchedule")
                    .toleration("cpu-type", "Equal", "arm64", ""),
                vec![
                    node("n1").taint("foo", "bar", "PreferNoSchedule"),
                    node("n2").taint("cpu-type", "arm64", "PreferNoSchedule"),
                    node("n3"),
                ],
                vec![100, 100, 100],
            ),
            (
                "the more untolerated taints, the lower the score",
                pod("p").toleration("foo", "Equal", "bar", "PreferNoSchedule"),
                vec![
                    node("n1").taint("foo", "bar", "PreferNoSchedule"),
                    node("n2").taint("foo", "bar", "PreferNoSchedule").taint(
                        "cpu-type",
                        "arm64",
                        "PreferNoSchedule",
                    ),
                    node("n3")
                        .taint("foo", "bar", "PreferNoSchedule")
                        .taint("cpu-type", "arm64", "PreferNoSchedule")
                        .taint("disk-type", "ssd", "PreferNoSchedule"),
                ],
                vec![100, 50, 0],
            ),
            (
                "NoSchedule taints are the filter's business",
                pod("p"),
                vec![node("n1").taint("a", "b", "NoSchedule"), node("n2")],
                vec![100, 100],
            ),
        ];
        for (name, p, nodes, want) in cases {
            let p = p.info();
            let mut got: Vec<i64> = nodes
                .into_iter()
                .map(|n| TaintToleration.score(&p, &n.info(vec![])))
                .collect();
            TaintToleration.normalize(&mut got);
            assert_eq!(got, want, "{name}");
        }
    }
}
