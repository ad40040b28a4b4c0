//! NodeName: a pod that names its node (`spec.nodeName`) fits that node only.

use crate::cache::NodeInfo;
use crate::framework::{FilterPlugin, PodInfo, Status};

/// The filter reason.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

/// The NodeName filter.
pub struct NodeName;

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.node_name() {
            Some(wanted) if wanted != node.name => Status::unresolvable(ERR_REASON),
            _ => Status::success(),
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
            ("no host specified", pod("p"), Status::success()),
            ("host matches", pod("p").node("foo"), Status::success()),
            (
                "host doesn't match",
                pod("p").node("bar"),
                Status::unresolvable(ERR_REASON),
            ),
        ];
        for (name, p, want) in cases {
            let got = NodeName.filter(&p.info(), &node("foo").info(vec![]));
            assert_eq!(got, want, "{name}");
        }
    }
}
