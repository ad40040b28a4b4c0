//! Automatic compaction, as etcd's `--auto-compaction-mode` / `--auto-compaction-retention`:
//! the leader proposes [`Command::Compact`] through the [`Replica`], so every member drops
//! the same history.
//!
//! - revision mode keeps the last N revisions: every 5 minutes it compacts to `current - N`.
//! - periodic mode keeps a time window: it samples the revision every tenth of the window and
//!   compacts to the newest sample at least one window old.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use keel_store::Command;
use tokio::time::Instant;

use crate::config::Retention;
use crate::replica::Replica;

/// How often revision mode compacts (etcd: 5 minutes).
pub const REVISION_MODE_INTERVAL: Duration = Duration::from_secs(300);

/// Compacts `replica` per `retention` while it leads, until `shutdown` resolves.
pub async fn run(
    replica: Arc<dyn Replica>,
    retention: Retention,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let tick = match retention {
        Retention::Revisions(_) => REVISION_MODE_INTERVAL,
        Retention::Period(window) => (window / 10).max(Duration::from_secs(1)),
    };
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // (when, revision) samples for periodic mode, oldest first.
    let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        if !replica.status().is_leader() {
            // A new leader starts its window afresh rather than trusting stale samples.
            samples.clear();
            continue;
        }
        let store = replica.store();
        let current = store.current_revision();
        let target = match retention {
            Retention::Revisions(keep) => current - keep as i64,
            Retention::Period(window) => {
                let now = Instant::now();
                samples.push_back((now, current));
                let mut target = 0;
                while let Some(&(at, revision)) = samples.front() {
                    if now.duration_since(at) < window {
                        break;
                    }
                    target = revision;
                    samples.pop_front();
                }
                target
            }
        };
        if target <= store.compact_revision() {
            continue;
        }
        match replica.write(Command::Compact { revision: target }).await {
            Ok(applied) => match applied.result {
                Ok(_) => tracing::info!(revision = target, "auto-compacted"),
                Err(e) => tracing::debug!(revision = target, "auto-compaction skipped: {e}"),
            },
            Err(e) => tracing::warn!(revision = target, "auto-compaction failed: {e}"),
        }
    }
}
