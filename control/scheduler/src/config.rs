//! How the scheduler is set up: who it is, which pods are its own, how it weighs nodes, how
//! long it backs off, and the timings of its leader election — kube-scheduler's defaults.

use std::time::Duration;

/// The scheduler name pods get when they name none (`spec.schedulerName`).
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// The Lease the scheduler's instances elect a leader on, in `kube-system`.
pub const LEASE_NAME: &str = "keel-scheduler";
/// The Lease's namespace.
pub const LEASE_NAMESPACE: &str = "kube-system";

/// The weights of the score plugins; kube-scheduler's default profile. 0 turns a score off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreWeights {
    /// TaintToleration (PreferNoSchedule taints): 3.
    pub taint_toleration: i64,
    /// NodeAffinity (preferred terms): 2.
    pub node_affinity: i64,
    /// NodeResourcesFit (LeastAllocated): 1.
    pub node_resources_fit: i64,
    /// NodeResourcesBalancedAllocation: 1.
    pub balanced_allocation: i64,
    /// PodTopologySpread (ScheduleAnyway and default constraints): 2.
    pub pod_topology_spread: i64,
    /// InterPodAffinity (preferred terms): 2.
    pub inter_pod_affinity: i64,
    /// ImageLocality: 1.
    pub image_locality: i64,
}

impl Default for ScoreWeights {
    fn default() -> ScoreWeights {
        ScoreWeights {
            taint_toleration: 3,
            node_affinity: 2,
            node_resources_fit: 1,
            balanced_allocation: 1,
            pod_topology_spread: 2,
            inter_pod_affinity: 2,
            image_locality: 1,
        }
    }
}

/// Leader election timings (kube-scheduler's `--leader-elect-*` defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a leader's claim lasts without renewal: 15 s.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it steps down: 10 s.
    pub renew_deadline: Duration,
    /// How often candidates retry and the leader renews: 2 s.
    pub retry_period: Duration,
}

impl Default for LeaseTimings {
    fn default() -> LeaseTimings {
        LeaseTimings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Everything [`crate::run`] needs besides a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// This instance's identity in the Lease, unique among instances (member name plus a
    /// random suffix, as kube-scheduler uses hostname plus a UUID).
    pub identity: String,
    /// The `spec.schedulerName` of the pods this scheduler places: `default-scheduler`.
    pub scheduler_name: String,
    /// Score plugin weights.
    pub weights: ScoreWeights,
    /// Leader election timings.
    pub lease: LeaseTimings,
    /// Backoff after a pod's first failed attempt: 1 s, doubling per attempt...
    pub initial_backoff: Duration,
    /// ... up to 10 s.
    pub max_backoff: Duration,
    /// The profiles from a configuration file ([`crate::config_file`]); empty: one default
    /// profile for `scheduler_name` scoring with `weights`.
    pub profiles: Vec<crate::profile::Profile>,
}

impl SchedulerConfig {
    /// kube-scheduler's defaults for the instance `identity`.
    pub fn new(identity: &str) -> SchedulerConfig {
        SchedulerConfig {
            identity: identity.to_owned(),
            scheduler_name: DEFAULT_SCHEDULER_NAME.to_owned(),
            weights: ScoreWeights::default(),
            lease: LeaseTimings::default(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            profiles: Vec::new(),
        }
    }

    /// The profiles this scheduler serves, one per scheduler name.
    pub fn profiles(&self) -> Vec<crate::profile::Profile> {
        if self.profiles.is_empty() {
            vec![crate::profile::Profile::with_weights(
                &self.scheduler_name,
                &self.weights,
            )]
        } else {
            self.profiles.clone()
        }
    }

    /// The leader election on `kube-system/keel-scheduler` for this instance.
    pub fn lease_config(&self) -> keel_lease::Config {
        keel_lease::Config {
            lease_duration: self.lease.lease_duration,
            renew_deadline: self.lease.renew_deadline,
            retry_period: self.lease.retry_period,
            ..keel_lease::Config::new(LEASE_NAMESPACE, LEASE_NAME, &self.identity)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kube_schedulers() {
        let config = SchedulerConfig::new("m1-abc");
        assert_eq!(config.scheduler_name, "default-scheduler");
        let lease = config.lease_config();
        assert_eq!(
            (
                lease.namespace.as_str(),
                lease.name.as_str(),
                lease.identity.as_str()
            ),
            ("kube-system", "keel-scheduler", "m1-abc")
        );
        assert_eq!(lease.lease_duration, Duration::from_secs(15));
        assert_eq!(lease.renew_deadline, Duration::from_secs(10));
        assert_eq!(lease.retry_period, Duration::from_secs(2));
        assert_eq!(
            (config.initial_backoff, config.max_backoff),
            (Duration::from_secs(1), Duration::from_secs(10))
        );
        assert_eq!(config.weights.taint_toleration, 3);
        assert_eq!(config.weights.node_affinity, 2);
    }
}
