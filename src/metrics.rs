//! Prometheus metrics of the API layer, served as text on `GET /metrics`.
//!
//! Counters and histograms are fed as requests pass; gauges that mirror state elsewhere
//! (database size, leader, leases, Raft indexes) are read when scraped, so they are never stale.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::replica::ReplicaStatus;

/// Labels of a request: the etcd RPC name and the gRPC code it ended with.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The RPC, e.g. `Range`.
    pub method: String,
    /// `OK` or the gRPC code number.
    pub code: String,
}

/// Labels naming an RPC.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// The RPC, e.g. `Range`.
    pub method: String,
}

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// Every metric keel's server exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    watchers: Gauge,
    leases: Gauge,
    db_size: Gauge,
    has_leader: Gauge,
    is_leader: Gauge,
    proposals_committed: Gauge<i64, AtomicI64>,
    proposals_applied: Gauge<i64, AtomicI64>,
    proposals_failed: Counter,
    proposals_pending: Gauge<i64, AtomicI64>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~16 s, the span of etcd's request histograms.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            watchers: Gauge::default(),
            leases: Gauge::default(),
            db_size: Gauge::default(),
            has_leader: Gauge::default(),
            is_leader: Gauge::default(),
            proposals_committed: Gauge::default(),
            proposals_applied: Gauge::default(),
            proposals_failed: Counter::default(),
            proposals_pending: Gauge::default(),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "keel_api_requests",
            "Client API requests handled, by RPC and gRPC code",
            metrics.requests.clone(),
        );
        registry.register(
            "keel_api_request_duration_seconds",
            "Client API request latency, by RPC",
            metrics.latency.clone(),
        );
        registry.register(
            "etcd_debugging_mvcc_watcher_total",
            "Watchers open on this member",
            metrics.watchers.clone(),
        );
        registry.register(
            "keel_leases",
            "Leases whose deadline this member keeps (non-zero on the leader only)",
            metrics.leases.clone(),
        );
        registry.register(
            "etcd_mvcc_db_total_size_in_bytes",
            "Database size on disk, bytes",
            metrics.db_size.clone(),
        );
        registry.register(
            "etcd_server_has_leader",
            "1 if the cluster has a leader, else 0",
            metrics.has_leader.clone(),
        );
        registry.register(
            "etcd_server_is_leader",
            "1 if this member is the leader, else 0",
            metrics.is_leader.clone(),
        );
        registry.register(
            "etcd_server_proposals_committed",
            "Last committed Raft index",
            metrics.proposals_committed.clone(),
        );
        registry.register(
            "etcd_server_proposals_applied",
            "Last applied Raft index",
            metrics.proposals_applied.clone(),
        );
        registry.register(
            "etcd_server_proposals_failed",
            "Proposals the replica could not commit",
            metrics.proposals_failed.clone(),
        );
        registry.register(
            "etcd_server_proposals_pending",
            "Entries in this member's log not applied yet",
            metrics.proposals_pending.clone(),
        );
        metrics
    }

    /// [`Metrics::new`] plus the consensus's own measurements, when the member has them.
    pub fn observing(observer: Option<keel_raft::Observer>) -> Self {
        let mut metrics = Metrics::new();
        let Some(observer) = observer else {
            return metrics;
        };
        let registry = &mut metrics.registry;
        registry.register(
            "etcd_server_apply_duration_seconds",
            "Seconds to apply one committed entry",
            observer.apply_duration,
        );
        registry.register(
            "etcd_disk_wal_fsync_duration_seconds",
            "Seconds one fsync of the Raft log took",
            observer.log_fsync_duration,
        );
        // prometheus-client appends `_total` to a counter's name.
        registry.register(
            "etcd_server_leader_changes_seen",
            "Leader changes this member has seen",
            observer.leader_changes,
        );
        metrics
    }

    /// Records one finished request.
    pub fn observe(&self, method: &str, code: Option<i32>, seconds: f64) {
        let code = code.map_or_else(|| "OK".to_owned(), |c| c.to_string());
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                code,
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts a proposal the replica refused or lost.
    pub fn proposal_failed(&self) {
        self.proposals_failed.inc();
    }

    /// A watcher opened (+1) or closed (-1).
    pub fn watchers_add(&self, delta: i64) {
        self.watchers.inc_by(delta);
    }

    /// Renders the text exposition, refreshing the state gauges first.
    pub fn render(&self, status: &ReplicaStatus, leases: usize, db_size: u64) -> String {
        self.leases.set(leases as i64);
        self.db_size.set(db_size as i64);
        self.has_leader.set(i64::from(status.leader.is_some()));
        self.is_leader.set(i64::from(status.is_leader()));
        self.proposals_committed.set(status.raft_index as i64);
        self.proposals_applied.set(status.applied_index as i64);
        self.proposals_pending
            .set(status.raft_index.saturating_sub(status.applied_index) as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
