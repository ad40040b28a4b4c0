//! The delay before a Job replaces failed pods: 10 s after the first failure since the last
//! success, doubling with each further one, capped at 6 minutes (kube's pod failure
//! back-off, as its documentation states it). The base and the cap are configurable so tests
//! run in milliseconds.
//!
//! Failures are noticed as the Job's `status.failed` grows (each failed pod is counted there
//! exactly once), so a reconcile that runs twice over the same pods does not count them
//! twice. The record lives in memory: a controller manager that takes over starts a Job's
//! back-off afresh.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The back-off's timings.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// The delay after one failure (10 s).
    pub base: Duration,
    /// The longest delay (6 minutes).
    pub max: Duration,
}

/// The delay after `failures` failures in a row.
pub fn delay(timings: Timings, failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let doublings = (failures - 1).min(31);
    timings
        .base
        .checked_mul(1u32 << doublings)
        .map_or(timings.max, |d| d.min(timings.max))
}

#[derive(Debug)]
struct Record {
    failed_seen: i32,
    succeeded_seen: i32,
    failures_in_a_row: u32,
    last_failure: Instant,
}

/// Every Job's record, by uid.
#[derive(Debug)]
pub struct Backoffs {
    timings: Timings,
    records: Mutex<HashMap<String, Record>>,
}

impl Backoffs {
    /// No Job has failed yet.
    pub fn new(timings: Timings) -> Backoffs {
        Backoffs {
            timings,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// Takes in Job `uid`'s counts and answers how long its new pods must still wait.
    /// The first sight of a Job only sets where its counts stand.
    pub fn observe(&self, uid: &str, failed: i32, succeeded: i32, now: Instant) -> Duration {
        let mut records = self.records.lock().expect("backoff lock");
        let record = records.entry(uid.to_owned()).or_insert(Record {
            failed_seen: failed,
            succeeded_seen: succeeded,
            failures_in_a_row: 0,
            last_failure: now,
        });
        if succeeded > record.succeeded_seen {
            record.failures_in_a_row = 0;
        }
        if failed > record.failed_seen {
            record.failures_in_a_row += u32::try_from(failed - record.failed_seen).unwrap_or(0);
            record.last_failure = now;
        }
        record.failed_seen = failed;
        record.succeeded_seen = succeeded;
        let wait = delay(self.timings, record.failures_in_a_row);
        wait.saturating_sub(now.duration_since(record.last_failure))
    }

    /// Forgets Job `uid` (it finished or went away).
    pub fn forget(&self, uid: &str) {
        self.records.lock().expect("backoff lock").remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBE: Timings = Timings {
        base: Duration::from_secs(10),
        max: Duration::from_secs(360),
    };

    #[test]
    fn the_delay_doubles_from_ten_seconds_to_six_minutes() {
        let secs: Vec<u64> = (0..8).map(|n| delay(KUBE, n).as_secs()).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 320, 360]);
        assert_eq!(delay(KUBE, 1000), Duration::from_secs(360));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_in_a_row_wait_longer_and_a_success_resets_them() {
        let backoffs = Backoffs::new(KUBE);
        let t0 = Instant::now();
        // First sight: what happened before is not held against the Job.
        assert_eq!(backoffs.observe("j", 2, 0, t0), Duration::ZERO);
        assert_eq!(backoffs.observe("j", 3, 0, t0), Duration::from_secs(10));
        let later = t0 + Duration::from_secs(4);
        assert_eq!(backoffs.observe("j", 3, 0, later), Duration::from_secs(6));
        // Seen twice, the same count is one failure, not two.
        assert_eq!(backoffs.observe("j", 3, 0, later), Duration::from_secs(6));
        assert_eq!(backoffs.observe("j", 4, 0, later), Duration::from_secs(20));
        let t1 = later + Duration::from_secs(25);
        assert_eq!(backoffs.observe("j", 4, 0, t1), Duration::ZERO);
        // A success starts the count again.
        assert_eq!(backoffs.observe("j", 4, 1, t1), Duration::ZERO);
        assert_eq!(backoffs.observe("j", 5, 1, t1), Duration::from_secs(10));
        backoffs.forget("j");
        assert_eq!(backoffs.observe("j", 5, 1, t1), Duration::ZERO);
    }
}
