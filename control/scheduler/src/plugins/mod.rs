//! The plugins of kube-scheduler's default profile, one file each with its table tests
//! (`pkg/scheduler/framework/plugins/`): their filter reasons are kube's exact strings, which
//! the `FailedScheduling` message counts.

pub mod balanced_allocation;
pub mod default_preemption;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use crate::framework::MAX_NODE_SCORE;

/// `helper.DefaultNormalizeScore`: scales scores so the highest is 100 (and, `reverse`d,
/// turns "more is worse" counts into scores where 0 is worst).
pub fn default_normalize_score(reverse: bool, scores: &mut [i64]) {
    let max = scores.iter().copied().max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for score in scores.iter_mut() {
        let scaled = MAX_NODE_SCORE * *score / max;
        *score = if reverse {
            MAX_NODE_SCORE - scaled
        } else {
            scaled
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_scales_to_the_highest() {
        let cases: &[(&[i64], bool, &[i64])] = &[
            (&[1, 2, 3, 4], false, &[25, 50, 75, 100]),
            (&[1, 2, 3, 4], true, &[75, 50, 25, 0]),
            (&[0, 0, 0], false, &[0, 0, 0]),
            (&[0, 0, 0], true, &[100, 100, 100]),
            (&[1000, 10, 20, 30], false, &[100, 1, 2, 3]),
            (&[0, 1, 1, 1], true, &[100, 0, 0, 0]),
        ];
        for (scores, reverse, want) in cases {
            let mut got = scores.to_vec();
            default_normalize_score(*reverse, &mut got);
            assert_eq!(&got, want, "{scores:?} reverse={reverse}");
        }
    }
}
