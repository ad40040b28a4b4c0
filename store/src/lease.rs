//! Leases as data: the table of granted leases and the keys attached to each.
//!
//! The store never reads a wall clock. Deadlines live with the Raft leader, which proposes a
//! [`crate::Command::LeaseRevoke`] when a lease expires; applying it here is the same as a revoke.

use serde::{Deserialize, Serialize};

/// A granted lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// Lease id, > 0.
    pub id: i64,
    /// The TTL it was granted with, seconds.
    pub ttl: i64,
}

/// A lease with the keys attached to it (the store's part of etcd's `LeaseTimeToLiveResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseKeys {
    /// The lease.
    pub lease: LeaseInfo,
    /// Attached keys, in key order.
    pub keys: Vec<Vec<u8>>,
}
