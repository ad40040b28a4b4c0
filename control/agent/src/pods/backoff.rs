//! CrashLoopBackOff: how long a container that exited waits before its next start. The
//! first restart is at once; then 10 s, doubling to 5 min; a container that ran 10 min
//! before exiting starts over (kubelet's defaults, shortened by tests through
//! [`Timings`](crate::config::Timings)).

use std::time::Duration;

use crate::config::Timings;

/// One container's back-off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the next restart after the next exit (zero before the first exit).
    next: Duration,
}

impl Backoff {
    /// The container exited after running `ran` and must restart: the wait before it does.
    pub fn on_exit(&mut self, ran: Duration, timings: &Timings) -> Duration {
        if ran >= timings.backoff_reset {
            self.next = Duration::ZERO;
        }
        let wait = self.next;
        self.next = if wait.is_zero() {
            timings.backoff_initial
        } else {
            (wait * 2).min(timings.backoff_max)
        };
        wait
    }
}

/// kubelet's waiting message for a container in back-off.
pub fn message(wait: Duration, container: &str, pod: &str, namespace: &str, uid: &str) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={pod}_{namespace}({uid})",
        go_duration(wait)
    )
}

/// A duration as Go's `time.Duration.String` writes whole seconds: `10s`, `1m20s`, `5m0s`.
pub fn go_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let millis = duration.subsec_millis();
    if seconds == 0 && millis > 0 {
        return format!("{millis}ms");
    }
    match (seconds / 3600, seconds / 60 % 60, seconds % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets_after_a_long_run() {
        let timings = Timings::default();
        let mut backoff = Backoff::default();
        let short = Duration::from_secs(1);
        let waits: Vec<u64> = (0..8)
            .map(|_| backoff.on_exit(short, &timings).as_secs())
            .collect();
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(
            backoff.on_exit(Duration::from_secs(600), &timings),
            Duration::ZERO
        );
        assert_eq!(backoff.on_exit(short, &timings), Duration::from_secs(10));
    }

    #[test]
    fn messages_read_as_kubelets() {
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(
            message(Duration::from_secs(10), "app", "web", "default", "u1"),
            "back-off 10s restarting failed container=app pod=web_default(u1)"
        );
    }
}
