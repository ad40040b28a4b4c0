//! Nominated pods (kube-scheduler's nominator): a pod that preempted others waits for its
//! victims to go, and meanwhile the space it freed is held for it. Every filter pass on a
//! node counts the pods nominated there with priority at least the pod's own, so a
//! lower-priority pod cannot take the room (and equal or higher ones see it as taken).
//!
//! A nomination comes from this scheduler's preemption (at once, before the
//! `status.nominatedNodeName` write lands) or from a pod's status as the informer shows it
//! (another instance nominated it); it ends when the pod is scheduled, bound or deleted.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::PodInfo;

/// Pods nominated to nodes.
#[derive(Debug, Default)]
pub struct Nominator {
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
    node_of: HashMap<String, String>,
}

impl Nominator {
    /// Nominates `pod` to `node` (replacing an earlier nomination).
    pub fn nominate(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.remove(&pod.uid);
        self.node_of.insert(pod.uid.clone(), node.to_owned());
        self.by_node.entry(node.to_owned()).or_default().push(pod);
    }

    /// Ends `uid`'s nomination; the node it was nominated to.
    pub fn remove(&mut self, uid: &str) -> Option<String> {
        let node = self.node_of.remove(uid)?;
        if let Some(pods) = self.by_node.get_mut(&node) {
            pods.retain(|p| p.uid != uid);
            if pods.is_empty() {
                self.by_node.remove(&node);
            }
        }
        Some(node)
    }

    /// Whether no pod is nominated anywhere.
    pub fn is_empty(&self) -> bool {
        self.node_of.is_empty()
    }

    /// The node `uid` is nominated to.
    pub fn node_of(&self, uid: &str) -> Option<&str> {
        self.node_of.get(uid).map(String::as_str)
    }

    /// The pods nominated to `node`.
    pub fn on(&self, node: &str) -> &[Arc<PodInfo>] {
        self.by_node.get(node).map_or(&[], Vec::as_slice)
    }

    /// A newer version of an unbound pod as the informer shows it: its
    /// `status.nominatedNodeName` rules when set, or when it was just cleared; a version
    /// that never had one keeps the nomination made here (the status write may still be in
    /// flight).
    pub fn update(&mut self, old: Option<&Pod>, new: Arc<PodInfo>) {
        let status_node = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.nominated_node_name.clone())
                .filter(|n| !n.is_empty())
        };
        match status_node(&new.pod) {
            Some(node) => self.nominate(new, &node),
            None if old.and_then(status_node).is_some() => {
                self.remove(&new.uid);
            }
            None => {
                if let Some(node) = self.node_of(&new.uid).map(str::to_owned) {
                    self.nominate(new, &node);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    #[test]
    fn nominations_follow_the_pod_status_and_survive_a_stale_update() {
        let mut nominator = Nominator::default();
        let p = pod("p").priority(10).info();
        nominator.nominate(Arc::clone(&p), "n1");
        assert_eq!(nominator.on("n1").len(), 1);

        // The informer's version from before the status write: the nomination stays.
        nominator.update(Some(&p.pod), Arc::clone(&p));
        assert_eq!(nominator.node_of("uid-p"), Some("n1"));

        let mut moved = pod("p").priority(10).build();
        moved.status = Some(k8s_openapi::api::core::v1::PodStatus {
            nominated_node_name: Some("n2".into()),
            ..Default::default()
        });
        let moved = Arc::new(PodInfo::new(Arc::new(moved)));
        nominator.update(Some(&p.pod), Arc::clone(&moved));
        assert_eq!(nominator.node_of("uid-p"), Some("n2"));
        assert!(nominator.on("n1").is_empty());

        // Cleared in the status: the nomination ends.
        nominator.update(Some(&moved.pod), pod("p").info());
        assert_eq!(nominator.node_of("uid-p"), None);
        assert!(nominator.on("n2").is_empty());
        assert_eq!(nominator.remove("uid-p"), None);
    }

    #[test]
    fn room_held_for_a_nominated_pod_is_not_taken_by_lower_priority_pods() {
        use crate::cache::Cache;
        use crate::framework::{Framework, Unschedulable};
        use crate::testing::node;

        let framework = Framework::new(&Default::default());
        let mut cache = Cache::default();
        for name in ["a", "b"] {
            cache.add_node(Arc::new(
                node(name)
                    .allocatable(&[("cpu", "2"), ("memory", "4Gi"), ("pods", "110")])
                    .build(),
            ));
        }
        cache.add_pod(pod("busy").req(&[("cpu", "2")]).node("b").info());
        let preemptor = pod("high").req(&[("cpu", "2")]).priority(100).info();
        cache.nominated.nominate(Arc::clone(&preemptor), "a");

        let low = pod("low").req(&[("cpu", "1")]).priority(1).info();
        let Err(Unschedulable::Fit(error)) = framework.schedule(&low, &cache, &mut 0) else {
            panic!("node a is held for the nominated pod");
        };
        assert_eq!(error.statuses.len(), 2, "{error}");
        let higher = pod("higher").req(&[("cpu", "1")]).priority(1000).info();
        assert_eq!(
            framework.schedule(&higher, &cache, &mut 0).unwrap().node,
            "a"
        );

        // The nominee itself goes to its nominated node first.
        let result = framework.schedule(&preemptor, &cache, &mut 1).unwrap();
        assert_eq!((result.node.as_str(), result.evaluated), ("a", 1));
    }
}
