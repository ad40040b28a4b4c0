//! [`RaftConfig`]: the `[raft]` section of keel's configuration.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// 4 MiB: large enough that per-RPC overhead is negligible, small enough to be a modest buffer.
const DEFAULT_SNAPSHOT_CHUNK_BYTES: u64 = 4 << 20;
/// A chunk is one request body, held whole in memory on both sides; 256 MiB is already far
/// more than a peer should buffer per request.
const MAX_SNAPSHOT_CHUNK_BYTES: u64 = 256 << 20;

/// Timing and log-compaction settings of a member. Every member of a cluster should use the
/// same values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RaftConfig {
    /// How often the leader sends heartbeats, ms.
    pub heartbeat_interval_ms: u64,
    /// A follower that hears no leader for a random time in `[min, max)` ms starts an election.
    pub election_timeout_min_ms: u64,
    /// Upper end of the election timeout, ms.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot (and purge the log before it) after this many entries since the last one.
    pub snapshot_logs_since_last: u64,
    /// How many entries before the last snapshot are kept in the log, so a slightly lagging
    /// follower is caught up from the log rather than by a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// Most entries sent in one append-entries RPC.
    pub max_payload_entries: u64,
    /// Timeout of one install-snapshot RPC (one chunk; for the last, receiving it and installing
    /// the snapshot), ms.
    pub install_snapshot_timeout_ms: u64,
    /// Largest piece of a snapshot sent in one install-snapshot RPC, bytes. A snapshot goes to
    /// a lagging follower as a series of these, so neither side holds more than one chunk of
    /// it in memory.
    pub snapshot_chunk_bytes: u64,
    /// How long a write or linearizable read waits for the leader's answer, ms (when this member
    /// forwards it, and when it is the leader itself). A write that times out fails as
    /// indeterminate: it may still be applied.
    pub request_timeout_ms: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_logs_since_last: 10_000,
            logs_kept_after_snapshot: 1000,
            max_payload_entries: 300,
            install_snapshot_timeout_ms: 200_000,
            snapshot_chunk_bytes: DEFAULT_SNAPSHOT_CHUNK_BYTES,
            request_timeout_ms: 5000,
        }
    }
}

impl RaftConfig {
    /// Checks the settings against each other; the message names the offending keys.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(msg));
        if self.heartbeat_interval_ms == 0 {
            return fail("heartbeat-interval-ms must be > 0".into());
        }
        if self.election_timeout_min_ms <= self.heartbeat_interval_ms {
            return fail(format!(
                "election-timeout-min-ms ({}) must be greater than heartbeat-interval-ms ({}), \
                 or followers start elections between heartbeats",
                self.election_timeout_min_ms, self.heartbeat_interval_ms
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return fail(format!(
                "election-timeout-max-ms ({}) must be greater than election-timeout-min-ms ({})",
                self.election_timeout_max_ms, self.election_timeout_min_ms
            ));
        }
        if self.snapshot_logs_since_last == 0 {
            return fail("snapshot-logs-since-last must be > 0".into());
        }
        if self.max_payload_entries == 0 {
            return fail("max-payload-entries must be > 0".into());
        }
        if self.install_snapshot_timeout_ms == 0 {
            return fail("install-snapshot-timeout-ms must be > 0".into());
        }
        if self.snapshot_chunk_bytes == 0 || self.snapshot_chunk_bytes > MAX_SNAPSHOT_CHUNK_BYTES {
            return fail(format!(
                "snapshot-chunk-bytes ({}) must be between 1 and {MAX_SNAPSHOT_CHUNK_BYTES}",
                self.snapshot_chunk_bytes
            ));
        }
        if self.request_timeout_ms <= self.heartbeat_interval_ms {
            return fail(format!(
                "request-timeout-ms ({}) must be greater than heartbeat-interval-ms ({}), \
                 or a healthy leader cannot confirm a read or commit a write in time",
                self.request_timeout_ms, self.heartbeat_interval_ms
            ));
        }
        Ok(())
    }

    /// The openraft configuration these settings stand for (validated by both).
    pub fn to_openraft(&self) -> Result<Arc<openraft::Config>> {
        self.validate()?;
        let config = openraft::Config {
            cluster_name: "keel".to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            max_payload_entries: self.max_payload_entries,
            install_snapshot_timeout: self.install_snapshot_timeout_ms,
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            ..Default::default()
        };
        let config = config
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_keys_are_kebab_case() {
        RaftConfig::default().to_openraft().unwrap();
        let text = toml::to_string(&RaftConfig::default()).unwrap();
        assert!(text.contains("heartbeat-interval-ms = 100"), "{text}");
        let parsed: RaftConfig = toml::from_str("election-timeout-min-ms = 1500").unwrap();
        assert_eq!(parsed.election_timeout_min_ms, 1500);
        assert_eq!(parsed.heartbeat_interval_ms, 100);
    }

    #[test]
    fn inverted_election_timeouts_are_rejected_with_their_names() {
        let config = RaftConfig {
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 400,
            ..Default::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("election-timeout-max-ms"), "{err}");
    }

    #[test]
    fn request_timeout_must_exceed_heartbeat() {
        let config = RaftConfig {
            request_timeout_ms: 100,
            ..Default::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("request-timeout-ms"), "{err}");
    }

    #[test]
    fn snapshot_chunk_size_is_bounded_and_reaches_openraft() {
        let parsed: RaftConfig = toml::from_str("snapshot-chunk-bytes = 65536").unwrap();
        assert_eq!(parsed.to_openraft().unwrap().snapshot_max_chunk_size, 65536);
        assert_eq!(RaftConfig::default().snapshot_chunk_bytes, 4 << 20);
        for bad in [0, MAX_SNAPSHOT_CHUNK_BYTES + 1] {
            let config = RaftConfig {
                snapshot_chunk_bytes: bad,
                ..Default::default()
            };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("snapshot-chunk-bytes"), "{err}");
        }
    }

    #[test]
    fn election_timeout_must_exceed_heartbeat() {
        let config = RaftConfig {
            heartbeat_interval_ms: 1000,
            election_timeout_min_ms: 1000,
            ..Default::default()
        };
        assert!(config.validate().is_err());
    }
}
