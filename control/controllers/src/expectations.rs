//! Expectations: what a ReplicaSet's last reconcile did that its pod cache has not shown yet.
//!
//! The controller reads pods from a watch cache that lags the API server. Right after it
//! creates two pods, a reconcile that counted the cache would see two too few and create
//! them again; right after it deletes one, it would delete another. So each create records
//! the new pod's name and each delete the pod's uid, and a ReplicaSet is only scaled again
//! once the cache shows every created pod and no longer shows (or shows terminating) every
//! deleted one — or once the expectations are older than a timeout (kube's 5 minutes), so a
//! lost event cannot wedge a ReplicaSet forever.
//!
//! Unlike kube's counters, the pending set is checked against the cache itself, so an event
//! that raced the recording (the pod appeared before the create call returned) is not missed.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Pending creations and deletions, per controller key (`namespace/name`).
#[derive(Debug)]
pub struct Expectations {
    timeout: Duration,
    pending: Mutex<HashMap<String, Pending>>,
}

#[derive(Debug)]
struct Pending {
    /// Names of pods created but not yet seen.
    creations: HashSet<String>,
    /// Pod name to uid, deleted but still seen alive.
    deletions: HashMap<String, String>,
    /// When the oldest still-pending change was recorded.
    since: Instant,
}

/// What the cache says of one pod, as [`Expectations::satisfied`] asks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not in the cache.
    Absent,
    /// In the cache with this uid; `terminating` when it has a deletionTimestamp.
    Present {
        /// The cached pod's uid.
        uid: String,
        /// Whether it is being deleted.
        terminating: bool,
    },
}

impl Expectations {
    /// Expectations that lapse after `timeout`.
    pub fn new(timeout: Duration) -> Expectations {
        Expectations {
            timeout,
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, key: &str, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut pending = self.pending.lock().expect("expectations lock");
        let entry = pending.entry(key.to_owned()).or_insert_with(|| Pending {
            creations: HashSet::new(),
            deletions: HashMap::new(),
            since: Instant::now(),
        });
        if entry.creations.is_empty() && entry.deletions.is_empty() {
            entry.since = Instant::now();
        }
        f(entry)
    }

    /// `key` created the pod `name`.
    pub fn created(&self, key: &str, name: &str) {
        self.with(key, |p| p.creations.insert(name.to_owned()));
    }

    /// `key` asked for the pod `name` (uid `uid`) to be deleted.
    pub fn deleting(&self, key: &str, name: &str, uid: &str) {
        self.with(key, |p| p.deletions.insert(name.to_owned(), uid.to_owned()));
    }

    /// The delete of `name` failed: the cache will not show it gone.
    pub fn delete_failed(&self, key: &str, name: &str) {
        self.with(key, |p| p.deletions.remove(name));
    }

    /// The informer saw the pod `name`: a creation is observed.
    pub fn observed(&self, key: &str, name: &str) {
        let mut pending = self.pending.lock().expect("expectations lock");
        if let Some(p) = pending.get_mut(key) {
            p.creations.remove(name);
        }
    }

    /// Whether `key` may act on its cache now. `seen` looks a pod name up in the cache;
    /// changes the cache already shows are dropped. Expired expectations are dropped whole.
    pub fn satisfied(&self, key: &str, seen: impl Fn(&str) -> Seen) -> bool {
        let mut pending = self.pending.lock().expect("expectations lock");
        let Some(p) = pending.get_mut(key) else {
            return true;
        };
        p.creations.retain(|name| seen(name) == Seen::Absent);
        p.deletions.retain(|name, uid| match seen(name) {
            Seen::Absent => false,
            Seen::Present {
                uid: cached,
                terminating,
            } => cached == *uid && !terminating,
        });
        let done = p.creations.is_empty() && p.deletions.is_empty();
        if done || p.since.elapsed() >= self.timeout {
            if !done {
                tracing::warn!(%key, creations = p.creations.len(), deletions = p.deletions.len(), "expectations expired");
            }
            pending.remove(key);
            return true;
        }
        false
    }

    /// The controller `key` is gone.
    pub fn forget(&self, key: &str) {
        self.pending.lock().expect("expectations lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn creations_wait_for_the_cache_and_lapse() {
        let e = Expectations::new(Duration::from_secs(300));
        assert!(e.satisfied("ns/rs", |_| Seen::Absent));
        e.created("ns/rs", "rs-a");
        e.created("ns/rs", "rs-b");
        assert!(!e.satisfied("ns/rs", |_| Seen::Absent));
        let present = |name: &str| {
            if name == "rs-a" {
                Seen::Present {
                    uid: "u".into(),
                    terminating: false,
                }
            } else {
                Seen::Absent
            }
        };
        assert!(!e.satisfied("ns/rs", present));
        e.observed("ns/rs", "rs-b");
        assert!(e.satisfied("ns/rs", |_| Seen::Absent));

        e.created("ns/rs", "rs-c");
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(!e.satisfied("ns/rs", |_| Seen::Absent));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(e.satisfied("ns/rs", |_| Seen::Absent));
    }

    #[tokio::test(start_paused = true)]
    async fn deletions_wait_until_gone_or_terminating() {
        let e = Expectations::new(Duration::from_secs(300));
        e.deleting("ns/rs", "rs-a", "u1");
        e.deleting("ns/rs", "rs-b", "u2");
        let alive = |name: &str| Seen::Present {
            uid: if name == "rs-a" { "u1" } else { "u2" }.into(),
            terminating: false,
        };
        assert!(!e.satisfied("ns/rs", alive));
        // rs-a terminating, rs-b replaced by a namesake with another uid.
        let later = |name: &str| Seen::Present {
            uid: if name == "rs-a" { "u1" } else { "u9" }.into(),
            terminating: name == "rs-a",
        };
        assert!(e.satisfied("ns/rs", later));

        e.deleting("ns/rs", "rs-c", "u3");
        e.delete_failed("ns/rs", "rs-c");
        assert!(e.satisfied("ns/rs", alive));
    }
}
