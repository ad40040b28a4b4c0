//! Eviction rate limiting, as kube's node lifecycle controller limits it for one zone (keel
//! has no zones, so the whole cluster is one).
//!
//! Putting the NoExecute taint on a node is what evicts its pods, so those taints are handed
//! out by a token bucket (burst 1): `--node-eviction-rate` (0.1 a second) while the cluster is
//! healthy; `--secondary-node-eviction-rate` (0.01) when more than
//! `--unhealthy-zone-threshold` (55 %) of the nodes, and more than two, are not ready in a
//! cluster larger than `--large-cluster-size-threshold` (50), none at all in a smaller one;
//! and when every node is down the controller assumes the fault is its own (a partition of
//! the control plane) and stops evicting, removing the NoExecute taints it set.

use tokio::time::Instant;

/// How sick the cluster is (kube's `ZoneState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disruption {
    /// At most the threshold's share (or at most two) of the nodes not ready.
    Normal,
    /// More than the threshold's share, and more than two, not ready.
    Partial,
    /// Nodes exist and none is ready.
    Full,
}

/// The cluster's state for `ready` and `not_ready` node counts (kube's `ComputeZoneState`).
pub fn disruption(ready: usize, not_ready: usize, unhealthy_threshold: f64) -> Disruption {
    if not_ready > 0 && ready == 0 {
        Disruption::Full
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= unhealthy_threshold
    {
        Disruption::Partial
    } else {
        Disruption::Normal
    }
}

/// The eviction limits (ControllersConfig's node fields).
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    /// Nodes tainted per second in a healthy cluster.
    pub primary: f64,
    /// Nodes tainted per second in a large, partly disrupted cluster.
    pub secondary: f64,
    /// The node count past which a cluster is large.
    pub large_cluster: usize,
}

impl Rates {
    /// The tainting rate in `state` for a cluster of `size` nodes (kube's
    /// `setLimiterInZone`); a fully disrupted cluster is not tainted at all (the caller's job).
    pub fn rate(&self, state: Disruption, size: usize) -> f64 {
        match state {
            Disruption::Normal | Disruption::Full => self.primary,
            Disruption::Partial if size > self.large_cluster => self.secondary,
            Disruption::Partial => 0.0,
        }
    }
}

/// A token bucket of burst 1, as client-go's `NewTokenBucketRateLimiter(qps, 1)`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` tokens a second.
    pub fn new(rate: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: 1.0,
            last: now,
        }
    }

    /// Changes the rate; like kube's `SwapLimiter`, a new rate starts with a full bucket
    /// (none at rate 0).
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        if rate != self.rate {
            *self = TokenBucket::new(rate, now);
            if rate <= 0.0 {
                self.tokens = 0.0;
            }
        }
    }

    /// Takes a token if one is there.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(1.0);
        self.last = now;
        if self.rate > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn states_follow_kubes_thresholds() {
        assert_eq!(disruption(10, 0, 0.55), Disruption::Normal);
        assert_eq!(disruption(1, 1, 0.55), Disruption::Normal);
        // Two down of three is 67 %, but kube wants more than two.
        assert_eq!(disruption(1, 2, 0.55), Disruption::Normal);
        assert_eq!(disruption(2, 3, 0.55), Disruption::Partial);
        assert_eq!(disruption(3, 3, 0.55), Disruption::Normal);
        assert_eq!(disruption(0, 1, 0.55), Disruption::Full);
        assert_eq!(disruption(0, 0, 0.55), Disruption::Normal);
        let rates = Rates {
            primary: 0.1,
            secondary: 0.01,
            large_cluster: 50,
        };
        assert_eq!(rates.rate(Disruption::Normal, 5), 0.1);
        assert_eq!(rates.rate(Disruption::Partial, 5), 0.0);
        assert_eq!(rates.rate(Disruption::Partial, 51), 0.01);
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_hands_out_one_token_per_period() {
        let mut bucket = TokenBucket::new(0.1, Instant::now());
        assert!(bucket.try_take(Instant::now()));
        assert!(!bucket.try_take(Instant::now()));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!bucket.try_take(Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(bucket.try_take(Instant::now()));
        bucket.set_rate(0.0, Instant::now());
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(!bucket.try_take(Instant::now()));
    }
}
