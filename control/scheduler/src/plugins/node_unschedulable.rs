//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate
//! the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use crate::cache::NodeInfo;
use crate::framework::{FilterPlugin, PodInfo, Status};
use crate::plugins::taint_toleration::tolerations_tolerate_taint;

/// The filter reason.
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// The taint a cordoned node is treated as having.
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The NodeUnschedulable filter.
pub struct NodeUnschedulable;

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable() {
            return Status::success();
        }
        let taint = Taint {
            key: TAINT_NODE_UNSCHEDULABLE.into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        if tolerations_tolerate_taint(pod.spec().tolerations.as_deref().unwrap_or(&[]), &taint) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_UNSCHEDULABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn filter() {
        let cases = [
            ("schedulable node", pod("p"), node("n"), Status::success()),
            (
                "unschedulable node",
                pod("p"),
                node("n").unschedulable(),
                Status::unresolvable(ERR_REASON_UNSCHEDULABLE),
            ),
            (
                "unschedulable node, pod tolerates the unschedulable taint",
                pod("p").toleration(TAINT_NODE_UNSCHEDULABLE, "Exists", "", "NoSchedule"),
                node("n").unschedulable(),
                Status::success(),
            ),
            (
                "a toleration of every taint tolerates cordoning too",
                pod("p").toleration("", "Exists", "", ""),
                node("n").unschedulable(),
                Status::success(),
            ),
        ];
        for (name, p, n, want) in cases {
            assert_eq!(
                NodeUnschedulable.filter(&p.info(), &n.info(vec![])),
                want,
                "{name}"
            );
        }
    }
}
