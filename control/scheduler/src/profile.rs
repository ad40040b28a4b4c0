//! A scheduling profile: the scheduler name it serves, the filter and score plugins it runs
//! (score plugins with weights) and the plugins' arguments — kube-scheduler's
//! `KubeSchedulerProfile` after defaults are merged. [`Profile::with_weights`] is the default
//! profile; [`crate::config_file`] reads others from a `KubeSchedulerConfiguration`.

use crate::config::ScoreWeights;
use crate::framework::{FilterPlugin, ScorePlugin};
use crate::plugins::inter_pod_affinity::{InterPodAffinity, DEFAULT_HARD_POD_AFFINITY_WEIGHT};
use crate::plugins::node_resources_fit::{FitScore, ScoringStrategy};
use crate::plugins::pod_topology_spread::{
    system_default_constraints, DefaultConstraint, PodTopologySpread,
};
use crate::plugins::{
    balanced_allocation, image_locality, node_affinity, node_name, node_ports, node_resources_fit,
    node_unschedulable, taint_toleration,
};

/// The filter plugins this scheduler has, in the default profile's order.
pub const FILTER_PLUGINS: &[&str] = &[
    "NodeUnschedulable",
    "NodeName",
    "TaintToleration",
    "NodeAffinity",
    "NodePorts",
    "NodeResourcesFit",
    "PodTopologySpread",
    "InterPodAffinity",
];

/// The score plugins this scheduler has, in the default profile's order.
pub const SCORE_PLUGINS: &[&str] = &[
    "TaintToleration",
    "NodeAffinity",
    "NodeResourcesFit",
    "PodTopologySpread",
    "InterPodAffinity",
    "NodeResourcesBalancedAllocation",
    "ImageLocality",
];

/// kube-scheduler's other in-tree plugins, which a configuration may name: keel has no
/// volumes to bind, no gates and its own queue sort, binder and preemption, so these are
/// accepted and have no effect.
pub const KNOWN_WITHOUT_EFFECT: &[&str] = &[
    "PrioritySort",
    "SchedulingGates",
    "DefaultBinder",
    "DefaultPreemption",
    "VolumeBinding",
    "VolumeRestrictions",
    "VolumeZone",
    "NodeVolumeLimits",
    "EBSLimits",
    "GCEPDLimits",
    "AzureDiskLimits",
    "CinderLimits",
    "DynamicResources",
];

/// A score plugin with its weight.
pub type WeightedScore = (Box<dyn ScorePlugin>, i64);

/// One profile, defaults merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The `spec.schedulerName` of the pods it places.
    pub scheduler_name: String,
    /// Filter plugins, in order.
    pub filters: Vec<String>,
    /// Score plugins with their weights.
    pub scores: Vec<(String, i64)>,
    /// NodeResourcesFit's `scoringStrategy`.
    pub fit_strategy: ScoringStrategy,
    /// PodTopologySpread's `defaultConstraints` for pods without constraints.
    pub spread_defaults: Vec<DefaultConstraint>,
    /// Whether those are the system defaults (`defaultingType: System`).
    pub spread_system_defaulted: bool,
    /// InterPodAffinity's `hardPodAffinityWeight`.
    pub hard_pod_affinity_weight: i64,
    /// `percentageOfNodesToScore`; `None` for the adaptive percentage.
    pub percentage_of_nodes_to_score: Option<u32>,
}

impl Profile {
    /// The default profile for `scheduler_name`, scoring with `weights` (0 leaves a score
    /// plugin out).
    pub fn with_weights(scheduler_name: &str, weights: &ScoreWeights) -> Profile {
        let weight = |name: &str| match name {
            "TaintToleration" => weights.taint_toleration,
            "NodeAffinity" => weights.node_affinity,
            "NodeResourcesFit" => weights.node_resources_fit,
            "PodTopologySpread" => weights.pod_topology_spread,
            "InterPodAffinity" => weights.inter_pod_affinity,
            "NodeResourcesBalancedAllocation" => weights.balanced_allocation,
            "ImageLocality" => weights.image_locality,
            _ => 0,
        };
        Profile {
            scheduler_name: scheduler_name.to_owned(),
            filters: FILTER_PLUGINS.iter().map(|n| (*n).to_owned()).collect(),
            scores: SCORE_PLUGINS
                .iter()
                .map(|n| ((*n).to_owned(), weight(n)))
                .filter(|(_, w)| *w > 0)
                .collect(),
            fit_strategy: ScoringStrategy::default(),
            spread_defaults: system_default_constraints(),
            spread_system_defaulted: true,
            hard_pod_affinity_weight: DEFAULT_HARD_POD_AFFINITY_WEIGHT,
            percentage_of_nodes_to_score: None,
        }
    }

    /// kube-scheduler's default profile for `scheduler_name`.
    pub fn default_for(scheduler_name: &str) -> Profile {
        Profile::with_weights(scheduler_name, &ScoreWeights::default())
    }

    fn spread(&self) -> PodTopologySpread {
        PodTopologySpread {
            default_constraints: self.spread_defaults.clone(),
            system_defaulted: self.spread_system_defaulted,
        }
    }

    fn filter_plugin(&self, name: &str) -> Option<Box<dyn FilterPlugin>> {
        Some(match name {
            "NodeUnschedulable" => Box::new(node_unschedulable::NodeUnschedulable),
            "NodeName" => Box::new(node_name::NodeName),
            "TaintToleration" => Box::new(taint_toleration::TaintToleration),
            "NodeAffinity" => Box::new(node_affinity::NodeAffinity),
            "NodePorts" => Box::new(node_ports::NodePorts),
            "NodeResourcesFit" => Box::new(node_resources_fit::NodeResourcesFit),
            "PodTopologySpread" => Box::new(self.spread()),
            "InterPodAffinity" => Box::new(InterPodAffinity {
                hard_pod_affinity_weight: self.hard_pod_affinity_weight,
            }),
            _ => return None,
        })
    }

    fn score_plugin(&self, name: &str) -> Option<Box<dyn ScorePlugin>> {
        Some(match name {
            "TaintToleration" => Box::new(taint_toleration::TaintToleration),
            "NodeAffinity" => Box::new(node_affinity::NodeAffinity),
            "NodeResourcesFit" => Box::new(FitScore(self.fit_strategy.clone())),
            "PodTopologySpread" => Box::new(self.spread()),
            "InterPodAffinity" => Box::new(InterPodAffinity {
                hard_pod_affinity_weight: self.hard_pod_affinity_weight,
            }),
            "NodeResourcesBalancedAllocation" => Box::new(balanced_allocation::BalancedAllocation),
            "ImageLocality" => Box::new(image_locality::ImageLocality),
            _ => return None,
        })
    }

    /// The profile's plugins, built with its arguments (names without a plugin here are
    /// the [`KNOWN_WITHOUT_EFFECT`] ones and are skipped).
    pub fn plugins(&self) -> (Vec<Box<dyn FilterPlugin>>, Vec<WeightedScore>) {
        let filters = self
            .filters
            .iter()
            .filter_map(|n| self.filter_plugin(n))
            .collect();
        let scores = self
            .scores
            .iter()
            .filter(|(_, w)| *w > 0)
            .filter_map(|(n, w)| Some((self.score_plugin(n)?, *w)))
            .collect();
        (filters, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_is_kube_schedulers() {
        let profile = Profile::default_for("default-scheduler");
        assert_eq!(profile.filters.len(), FILTER_PLUGINS.len());
        let weights: Vec<(&str, i64)> = profile
            .scores
            .iter()
            .map(|(n, w)| (n.as_str(), *w))
            .collect();
        assert_eq!(
            weights,
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1),
            ]
        );
        let (filters, scores) = profile.plugins();
        let names: Vec<&str> = filters.iter().map(|f| f.name()).collect();
        assert_eq!(names, FILTER_PLUGINS);
        assert_eq!(scores.len(), SCORE_PLUGINS.len());
    }
}
