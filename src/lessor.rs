//! Lease deadlines. The store keeps leases as data and never reads a clock; the leader keeps
//! the deadlines here and proposes [`Command::LeaseRevoke`] through the [`Replica`] when one
//! passes, so expiry is replicated like any other write.
//!
//! Deadlines are not replicated: when a member becomes leader (and at start) every lease gets
//! its full TTL again, as etcd does, so a failover can extend a lease but never expire it early.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keel_store::{Command, LeaseInfo};
use tokio::time::Instant;

use crate::replica::{Replica, ReplicaError};

/// etcd's largest TTL (`MaxLeaseTTL`, 9,000,000,000 s).
pub const MAX_TTL: i64 = 9_000_000_000;

/// How often the expiry loop checks leadership and deadlines when nothing is due sooner.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// How often the leader compares its deadlines with the store's lease table, adopting leases
/// granted through other members and dropping revoked ones.
const RECONCILE_EVERY: Duration = Duration::from_secs(2);

/// After a failed revoke proposal (no leader, say), wait this long before retrying.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
struct Deadline {
    ttl: i64,
    at: Instant,
}

/// The deadlines of every lease this member knows, valid while it leads.
pub struct Lessor {
    /// std, not tokio: the lock is never held across an await.
    deadlines: std::sync::Mutex<HashMap<i64, Deadline>>,
    min_ttl: i64,
    changed: tokio::sync::Notify,
}

impl Lessor {
    /// A lessor raising every TTL to at least `min_ttl` seconds (etcd derives it from the
    /// election timeout, so a lease outlives a leader election).
    pub fn new(min_ttl: i64) -> Self {
        Lessor {
            deadlines: Default::default(),
            min_ttl: min_ttl.max(1),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// The shortest TTL granted.
    pub fn min_ttl(&self) -> i64 {
        self.min_ttl
    }

    /// The TTL a grant asking for `ttl` gets: raised to the minimum, as etcd does.
    pub fn effective_ttl(&self, ttl: i64) -> i64 {
        ttl.max(self.min_ttl)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Deadline>> {
        // Every update is a single insert, remove or field write, so a panic elsewhere while
        // holding the lock cannot leave the map half-updated: a poisoned lock is still good.
        self.deadlines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the clock of a freshly granted lease.
    pub fn grant(&self, id: i64, ttl: i64) {
        let deadline = Deadline {
            ttl,
            at: Instant::now() + secs(ttl),
        };
        self.lock().insert(id, deadline);
        self.changed.notify_one();
    }

    /// Restarts the clock of `id`; returns its TTL, or `None` if this member does not know it.
    pub fn renew(&self, id: i64) -> Option<i64> {
        let mut deadlines = self.lock();
        let deadline = deadlines.get_mut(&id)?;
        deadline.at = Instant::now() + secs(deadline.ttl);
        Some(deadline.ttl)
    }

    /// Forgets a revoked lease.
    pub fn forget(&self, id: i64) {
        self.lock().remove(&id);
    }

    /// Whole seconds left for `id`, if known.
    pub fn remaining(&self, id: i64) -> Option<i64> {
        let deadline = *self.lock().get(&id)?;
        let left = deadline.at.saturating_duration_since(Instant::now());
        Some(left.as_secs() as i64)
    }

    /// How many leases have a deadline.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no lease has a deadline.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives every lease in `leases` its full TTL from now and forgets the others: what a
    /// member does when it starts leading.
    pub fn promote(&self, leases: &[LeaseInfo]) {
        let now = Instant::now();
        let mut deadlines = self.lock();
        deadlines.clear();
        for lease in leases {
            deadlines.insert(
                lease.id,
                Deadline {
                    ttl: lease.ttl,
                    at: now + secs(lease.ttl),
                },
            );
        }
        drop(deadlines);
        self.changed.notify_one();
    }

    /// Matches the deadlines to the store's lease table: leases new to this member get a
    /// full TTL, leases gone from the store are forgotten, the others keep their deadline.
    pub fn reconcile(&self, leases: &[LeaseInfo]) {
        let now = Instant::now();
        let mut deadlines = self.lock();
        let live: std::collections::HashSet<i64> = leases.iter().map(|l| l.id).collect();
        deadlines.retain(|id, _| live.contains(id));
        for lease in leases {
            deadlines.entry(lease.id).or_insert(Deadline {
                ttl: lease.ttl,
                at: now + secs(lease.ttl),
            });
        }
    }

    /// Leases whose deadline has passed, and the next deadline after them.
    fn due(&self, now: Instant) -> (Vec<i64>, Option<Instant>) {
        let deadlines = self.lock();
        let mut expired: Vec<i64> = deadlines
            .iter()
            .filter(|(_, d)| d.at <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        let next = deadlines
            .values()
            .map(|d| d.at)
            .filter(|at| *at > now)
            .min();
        (expired, next)
    }

    fn postpone(&self, id: i64, until: Instant) {
        if let Some(deadline) = self.lock().get_mut(&id) {
            deadline.at = until;
        }
    }

    /// Revokes expired leases through `replica` while it leads, until `shutdown` resolves.
    /// On each start of leadership it reloads every lease from the store with a full TTL.
    pub async fn run_expiry(
        self: Arc<Self>,
        replica: Arc<dyn Replica>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut leading = false;
        let mut last_reconcile = Instant::now();
        loop {
            let now = Instant::now();
            let is_leader = replica.status().is_leader();
            if is_leader && !leading {
                match replica.store().leases() {
                    Ok(leases) => self.promote(&leases),
                    Err(e) => tracing::error!("cannot load leases on becoming leader: {e}"),
                }
                last_reconcile = now;
            } else if is_leader && now.duration_since(last_reconcile) >= RECONCILE_EVERY {
                match replica.store().leases() {
                    Ok(leases) => self.reconcile(&leases),
                    Err(e) => tracing::warn!("cannot list leases: {e}"),
                }
                last_reconcile = now;
            }
            leading = is_leader;
            let mut wake = now + IDLE_CHECK;
            if leading {
                let (expired, next) = self.due(now);
                for id in expired {
                    self.revoke_expired(replica.as_ref(), id).await;
                }
                if let Some(next) = next {
                    wake = wake.min(next);
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep_until(wake) => {}
                _ = self.changed.notified() => {}
            }
        }
    }

    async fn revoke_expired(&self, replica: &dyn Replica, id: i64) {
        match replica.write(Command::LeaseRevoke { id }).await {
            Ok(applied) => {
                // Revoked, or already gone (revoked by a client meanwhile): forget it either way.
                if let Err(e) = applied.result {
                    tracing::debug!(lease = id, "expired lease was already gone: {e}");
                }
                self.forget(id);
                tracing::debug!(lease = id, "lease expired");
            }
            Err(ReplicaError::NotLeader { .. }) | Err(ReplicaError::NoLeader) => {
                // Leadership moved; the new leader restarts every deadline.
                self.postpone(id, Instant::now() + RETRY_AFTER);
            }
            Err(e) => {
                tracing::warn!(lease = id, "cannot revoke expired lease: {e}");
                self.postpone(id, Instant::now() + RETRY_AFTER);
            }
        }
    }
}

fn secs(ttl: i64) -> Duration {
    Duration::from_secs(ttl.clamp(0, MAX_TTL) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_grants_and_renewals() {
        let lessor = Lessor::new(2);
        assert_eq!(lessor.effective_ttl(0), 2);
        lessor.grant(7, 10);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(lessor.remaining(7), Some(6));
        assert_eq!(lessor.renew(7), Some(10));
        assert_eq!(lessor.remaining(7), Some(10));
        assert_eq!(lessor.renew(8), None);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(lessor.due(Instant::now()).0, vec![7]);
    }

    #[tokio::test(start_paused = true)]
    async fn promotion_restarts_every_lease_and_reconcile_adopts_new_ones() {
        let lessor = Lessor::new(1);
        lessor.grant(1, 5);
        tokio::time::advance(Duration::from_secs(4)).await;
        lessor.promote(&[LeaseInfo { id: 1, ttl: 5 }, LeaseInfo { id: 2, ttl: 9 }]);
        assert_eq!(lessor.remaining(1), Some(5));
        assert_eq!(lessor.remaining(2), Some(9));
        tokio::time::advance(Duration::from_secs(3)).await;
        lessor.reconcile(&[LeaseInfo { id: 2, ttl: 9 }, LeaseInfo { id: 3, ttl: 4 }]);
        assert_eq!(lessor.remaining(1), None);
        assert_eq!(lessor.remaining(2), Some(6));
        assert_eq!(lessor.remaining(3), Some(4));
    }
}
