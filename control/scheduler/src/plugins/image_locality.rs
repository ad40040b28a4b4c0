//! ImageLocality: prefers nodes that already have the pod's images (from the node's
//! `status.images`), so the pod starts without pulling. Each image present counts its size
//! scaled by the share of nodes that have it (an image every node has does not set one node
//! apart); the sum is clamped between 23 MB and 1000 MB per container and mapped to 0..=100.

use std::collections::HashMap;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, PodInfo, ScorePlugin, MAX_NODE_SCORE};

const MB: i64 = 1024 * 1024;
/// Below this the score is 0 (`minThreshold`, 23 MB).
pub const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container, at and above this the score is 100 (`maxContainerThreshold`, 1000 MB).
pub const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// The ImageLocality score.
pub struct ImageLocality;

/// `normalizedImageName`: `nginx` is `nginx:latest`; names with a tag or digest stay.
pub fn normalized_image_name(name: &str) -> String {
    let last_colon = name.rfind(':');
    let last_slash = name.rfind('/');
    if last_colon.is_none() || last_colon < last_slash {
        format!("{name}:latest")
    } else {
        name.to_owned()
    }
}

/// `calculatePriority`: the summed image score clamped and scaled to 0..=100.
pub fn calculate_priority(sum: i64, containers: usize) -> i64 {
    let max = MAX_CONTAINER_THRESHOLD * containers.max(1) as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

/// Per-image scores of the pod's containers on the node, with image counts from `cache`.
fn image_sum(pod: &PodInfo, node: &NodeInfo, cache: &Cache, total_nodes: usize) -> i64 {
    let spec = pod.spec();
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .filter_map(|c| c.image.as_deref())
        .filter_map(|image| {
            let name = normalized_image_name(image);
            let size = node.image_size(&name)?;
            let spread = cache.nodes_with_image(&name) as f64 / total_nodes.max(1) as f64;
            Some((size as f64 * spread) as i64)
        })
        .sum()
}

/// Each feasible node's score, worked out in the pre-score where the cluster is at hand.
#[derive(Clone)]
struct Scores(HashMap<String, i64>);

impl ScorePlugin for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }

    fn score(&self, _pod: &PodInfo, _node: &NodeInfo) -> i64 {
        0
    }

    fn pre_score_in(
        &self,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        cache: &Cache,
        state: &mut CycleState,
    ) -> bool {
        if !cache.any_images() {
            return false;
        }
        let total = cache.nodes().len();
        let containers =
            pod.spec().init_containers.as_ref().map_or(0, Vec::len) + pod.spec().containers.len();
        let scores = nodes
            .iter()
            .map(|n| {
                let sum = image_sum(pod, n, cache, total);
                (n.name.clone(), calculate_priority(sum, containers))
            })
            .collect();
        state.write(Scores(scores));
        true
    }

    fn score_in(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        state
            .read::<Scores>()
            .and_then(|s| s.0.get(&node.name).copied())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cache_of, node, pod, PodBuilder};

    const MB: i64 = 1024 * 1024;

    fn scores(cache: &Cache, incoming: PodBuilder) -> Vec<i64> {
        let pod = incoming.info();
        let nodes = cache.nodes();
        let mut state = CycleState::default();
        assert!(ImageLocality.pre_score_in(&pod, &nodes, cache, &mut state));
        nodes
            .iter()
            .map(|n| ImageLocality.score_in(&state, &pod, n))
            .collect()
    }

    #[test]
    fn names_are_normalized() {
        for (name, want) in [
            ("nginx", "nginx:latest"),
            ("nginx:1.27", "nginx:1.27"),
            ("registry:5000/app", "registry:5000/app:latest"),
            ("registry:5000/app:v1", "registry:5000/app:v1"),
            ("gcr.io/x/app@sha256:abc", "gcr.io/x/app@sha256:abc"),
        ] {
            assert_eq!(normalized_image_name(name), want);
        }
    }

    #[test]
    fn score() {
        // kube's TestImageLocalityPriority: node1 has 40 MB of gcr.io/40 and 300 MB of
        // gcr.io/300, node2 250 MB of gcr.io/250 and 2 GB of gcr.io/2000; node3 nothing.
        let cache = cache_of(
            vec![
                node("node1")
                    .image(&["gcr.io/40:latest", "gcr.io/40:v1"], 40 * MB)
                    .image(&["gcr.io/300:latest", "gcr.io/300:v1"], 300 * MB),
                node("node2")
                    .image(&["gcr.io/250:latest"], 250 * MB)
                    .image(&["gcr.io/2000:latest"], 2000 * MB),
                node("node3"),
            ],
            vec![],
        );
        let cases: Vec<(&str, PodBuilder, Vec<i64>)> = vec![
            (
                "40 MB on node1 and 250 MB on node2, one node each of three",
                pod("p").image("gcr.io/40").image("gcr.io/250"),
                // node1: 40/3 MB ≈ 13 < 23 → 0; node2: 250/3 ≈ 83 MB → (83-23)/(2000-23).
                vec![0, 3, 0],
            ),
            (
                "300 MB on node1, 2000 MB on node2",
                pod("p").image("gcr.io/300").image("gcr.io/2000"),
                vec![3, 32, 0],
            ),
            (
                "an untagged image is :latest, a missing image scores nothing",
                pod("p").image("gcr.io/2000").image("gcr.io/10"),
                vec![0, 32, 0],
            ),
        ];
        for (name, incoming, want) in cases {
            assert_eq!(scores(&cache, incoming), want, "{name}");
        }
        assert_eq!(calculate_priority(0, 1), 0);
        assert_eq!(calculate_priority(2000 * MB, 1), 100);
    }
}
