//! When a CronJob is due: its schedule parsed as kube's (five fields, or a descriptor such as
//! `@hourly`; day-of-month and day-of-week OR'ed as in Vixie cron), and the most recent time
//! it should have started, as kube's `mostRecentScheduleTime` finds it. Times are UTC: the
//! `timeZone` field needs a time zone database this controller does not carry.

use croner::parser::{CronParser, Seconds};
use croner::Cron;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule(Cron);

/// What the schedule says at a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The latest start time in (earliest, now], if any.
    pub most_recent: Option<Timestamp>,
    /// How many start times fell in (earliest, now].
    pub missed: u64,
    /// The first start time after now.
    pub next: Option<Timestamp>,
}

impl Schedule {
    /// Parses `text`; the error is the parser's.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let parser = CronParser::builder().seconds(Seconds::Disallowed).build();
        parser
            .parse(text.trim())
            .map(Schedule)
            .map_err(|e| e.to_string())
    }

    fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let zoned = t.to_zoned(TimeZone::UTC);
        self.0
            .find_next_occurrence(&zoned, false)
            .ok()
            .map(|z| z.timestamp())
    }

    fn latest_until(&self, t: Timestamp) -> Option<Timestamp> {
        let zoned = t.to_zoned(TimeZone::UTC);
        self.0
            .find_previous_occurrence(&zoned, true)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The start times due between `earliest` (exclusive) and `now` (inclusive): the latest
    /// of them, how many there were (estimated from the spacing of the first two, as kube
    /// does, so a schedule years behind costs no more than one in time), and the next one.
    pub fn due(&self, earliest: Timestamp, now: Timestamp) -> Due {
        let next = self.next_after(now);
        let Some(first) = self.next_after(earliest).filter(|t| *t <= now) else {
            return Due {
                most_recent: None,
                missed: 0,
                next,
            };
        };
        let most_recent = self.latest_until(now).filter(|t| *t > earliest);
        let missed = match self.next_after(first) {
            Some(second) if second > first => {
                let spacing = second.duration_since(first).as_secs().max(1);
                let elapsed = now.duration_since(first).as_secs().max(0);
                u64::try_from(elapsed / spacing).unwrap_or(0) + 1
            }
            _ => 1,
        };
        Due {
            most_recent,
            missed,
            next,
        }
    }
}

/// `earliest` moved up to `now − startingDeadlineSeconds` when that is later: start times
/// older than the deadline are not looked at (kube's `mostRecentScheduleTime`).
pub fn earliest_considered(
    last_schedule: Timestamp,
    starting_deadline_seconds: Option<i64>,
    now: Timestamp,
) -> Timestamp {
    match starting_deadline_seconds {
        Some(s) => last_schedule.max(now - SignedDuration::from_secs(s)),
        None => last_schedule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_schedule_is_five_fields_or_a_descriptor() {
        for ok in [
            "*/5 * * * *",
            "0 0 1,15 * MON",
            "@hourly",
            "@daily",
            "30 4 * * sun",
        ] {
            assert!(Schedule::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "* * * *", "0 */5 * * * *", "61 * * * *", "nonsense"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_recent_start_time_since_the_last_one() {
        let every_5 = Schedule::parse("*/5 * * * *").unwrap();
        let due = every_5.due(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:17:30Z"));
        assert_eq!(due.most_recent, Some(at("2026-01-01T10:15:00Z")));
        assert_eq!(due.missed, 3);
        assert_eq!(due.next, Some(at("2026-01-01T10:20:00Z")));
        // Nothing new since the last start.
        let due = every_5.due(at("2026-01-01T10:15:00Z"), at("2026-01-01T10:17:30Z"));
        assert_eq!((due.most_recent, due.missed), (None, 0));
        // A start time exactly now is due.
        let due = every_5.due(at("2026-01-01T10:15:00Z"), at("2026-01-01T10:20:00Z"));
        assert_eq!(due.most_recent, Some(at("2026-01-01T10:20:00Z")));
        // Years behind: one run, counted cheaply.
        let due = every_5.due(at("2020-01-01T00:00:00Z"), at("2026-01-01T00:01:00Z"));
        assert_eq!(due.most_recent, Some(at("2026-01-01T00:00:00Z")));
        assert!(due.missed > 600_000);
    }

    #[test]
    fn a_starting_deadline_hides_older_start_times() {
        let now = at("2026-01-01T10:17:30Z");
        let last = at("2026-01-01T09:00:00Z");
        assert_eq!(earliest_considered(last, None, now), last);
        assert_eq!(
            earliest_considered(last, Some(60), now),
            at("2026-01-01T10:16:30Z")
        );
        let every_5 = Schedule::parse("*/5 * * * *").unwrap();
        let due = every_5.due(earliest_considered(last, Some(60), now), now);
        assert_eq!(due.most_recent, None);
    }
}
