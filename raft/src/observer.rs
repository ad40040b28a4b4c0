//! [`Observer`]: what a member measures about its own Raft, for the server's `/metrics`.
//!
//! The log store times its fsyncs and the state machine its applies into the observer the
//! [`crate::RaftNode`] hands them; the node counts leader changes from openraft's metrics. The
//! server registers the same (shared) histograms and counter in its registry, so nothing is
//! copied when scraped.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// Durations and counts of one member's Raft. Cheap to clone; clones share the values.
#[derive(Clone, Debug)]
pub struct Observer {
    /// Seconds to apply one committed entry to the keyspace (etcd's
    /// `etcd_server_apply_duration_seconds`).
    pub apply_duration: Histogram,
    /// Seconds one fsync of the Raft log took (etcd's `etcd_disk_wal_fsync_duration_seconds`).
    pub log_fsync_duration: Histogram,
    /// Leader changes this member has seen (etcd's `etcd_server_leader_changes_seen_total`).
    pub leader_changes: Counter,
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            // etcd's buckets: 0.1 ms to ~3.3 s for applies, 1 ms to ~8 s for fsyncs.
            apply_duration: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            log_fsync_duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            leader_changes: Counter::default(),
        }
    }
}

impl Observer {
    pub(crate) fn applied(&self, took: Duration) {
        self.apply_duration.observe(took.as_secs_f64());
    }

    pub(crate) fn log_synced(&self, took: Duration) {
        self.log_fsync_duration.observe(took.as_secs_f64());
    }
}
