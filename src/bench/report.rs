//! What a run measured: counts, throughput, the latency histogram and its percentiles, in
//! etcd benchmark's text layout or as JSON (`-w json`) for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// How many distinct error messages a report keeps (each with its count): a failing run
/// repeats the same few, and thousands of copies help nobody.
const ERROR_KINDS_KEPT: usize = 10;

/// Latencies of one worker (or of a whole run, once merged), in microseconds.
pub struct Recorder {
    latencies: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    error_count: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            // 1 µs to 1 h at 3 significant digits; larger values are clamped, not lost.
            latencies: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant bounds are valid"),
            errors: BTreeMap::new(),
            error_count: 0,
        }
    }
}

impl Recorder {
    /// Records one successful operation.
    pub fn success(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies.saturating_record(micros.max(1));
    }

    /// Records one failed operation and why.
    pub fn failure(&mut self, message: impl Into<String>) {
        self.error_count += 1;
        let message = message.into();
        if let Some(count) = self.errors.get_mut(&message) {
            *count += 1;
        } else if self.errors.len() < ERROR_KINDS_KEPT {
            self.errors.insert(message, 1);
        }
    }

    /// Adds another recorder's counts to this one.
    pub fn merge(&mut self, other: Recorder) {
        self.latencies
            .add(&other.latencies)
            .expect("recorders share their bounds");
        self.error_count += other.error_count;
        for (message, count) in other.errors {
            if let Some(mine) = self.errors.get_mut(&message) {
                *mine += count;
            } else if self.errors.len() < ERROR_KINDS_KEPT {
                self.errors.insert(message, count);
            }
        }
    }

    /// How many operations succeeded.
    pub fn successes(&self) -> u64 {
        self.latencies.len()
    }

    /// The report of a run of `workload` that took `elapsed`.
    pub fn report(&self, workload: &str, elapsed: Duration) -> Report {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let ok = self.successes();
        let seconds = elapsed.as_secs_f64();
        let h = &self.latencies;
        let latency_ms = if ok == 0 {
            Latency::default()
        } else {
            Latency {
                fastest: ms(h.min()),
                slowest: ms(h.max()),
                average: h.mean() / 1000.0,
                stddev: h.stdev() / 1000.0,
                p10: ms(h.value_at_quantile(0.10)),
                p25: ms(h.value_at_quantile(0.25)),
                p50: ms(h.value_at_quantile(0.50)),
                p75: ms(h.value_at_quantile(0.75)),
                p90: ms(h.value_at_quantile(0.90)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                p999: ms(h.value_at_quantile(0.999)),
            }
        };
        Report {
            workload: workload.to_owned(),
            total: ok + self.error_count,
            ok,
            errors: self.error_count,
            error_messages: self.errors.clone(),
            seconds,
            ops_per_second: if seconds > 0.0 {
                ok as f64 / seconds
            } else {
                0.0
            },
            latency_ms,
            histogram: buckets(h),
            watch: None,
        }
    }
}

/// etcd's benchmark shows ten linear buckets from the fastest to the slowest operation.
fn buckets(h: &Histogram<u64>) -> Vec<Bucket> {
    if h.is_empty() {
        return Vec::new();
    }
    let (low, high) = (h.min(), h.max());
    let width = ((high - low) / 10).max(1);
    let mut result = Vec::new();
    let mut below = 0;
    let mut edge = low;
    while below < h.len() {
        let upto = (edge + width).min(high);
        let count = h.count_between(0, upto) - below;
        below += count;
        result.push(Bucket {
            upto_ms: upto as f64 / 1000.0,
            count,
        });
        if upto == high {
            break;
        }
        edge = upto;
    }
    result
}

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Latency {
    pub fastest: f64,
    pub slowest: f64,
    pub average: f64,
    pub stddev: f64,
    pub p10: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
}

/// Operations that took at most `upto_ms` (and more than the previous bucket's bound).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The bucket's upper bound, in milliseconds.
    pub upto_ms: f64,
    /// How many operations fell in it.
    pub count: u64,
}

/// What the watch workload checked beyond latency: every event seen exactly once.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WatchCheck {
    /// Watchers.
    pub watchers: u64,
    /// Puts acknowledged to the writer: each watcher must see each of them once.
    pub puts_acked: u64,
    /// Events delivered to all watchers together.
    pub events_delivered: u64,
    /// (watcher, put) pairs never delivered.
    pub missing: u64,
    /// Events delivered to a watcher more than once.
    pub duplicates: u64,
    /// Events whose revision went backwards on a watcher's stream.
    pub out_of_order: u64,
}

/// The result of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Which workload ran (`put`, `range-linearizable`, …).
    pub workload: String,
    /// Operations attempted.
    pub total: u64,
    /// Operations that succeeded (for watch: events delivered and checked).
    pub ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Up to ten distinct error messages, with how often each came.
    pub error_messages: BTreeMap<String, u64>,
    /// Wall-clock time of the run.
    pub seconds: f64,
    /// Successful operations per second.
    pub ops_per_second: f64,
    /// Latency of the successful operations (for watch: from the put's ack to delivery).
    pub latency_ms: Latency,
    /// Ten linear buckets from the fastest to the slowest.
    pub histogram: Vec<Bucket>,
    /// The watch workload's delivery check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchCheck>,
}

impl Report {
    /// etcd benchmark's text summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let l = &self.latency_ms;
        let _ = writeln!(out, "Summary ({}):", self.workload);
        let _ = writeln!(out, "  Total:\t{:.4} secs.", self.seconds);
        let _ = writeln!(out, "  Slowest:\t{:.4} ms.", l.slowest);
        let _ = writeln!(out, "  Fastest:\t{:.4} ms.", l.fastest);
        let _ = writeln!(out, "  Average:\t{:.4} ms.", l.average);
        let _ = writeln!(out, "  Stddev:\t{:.4} ms.", l.stddev);
        let _ = writeln!(out, "  Requests/sec:\t{:.2}", self.ops_per_second);
        let _ = writeln!(out, "  Ok:\t{}", self.ok);
        let _ = writeln!(out, "  Errors:\t{}", self.errors);
        if let Some(watch) = &self.watch {
            let _ = writeln!(
                out,
                "  Watchers:\t{}  puts acked: {}  events delivered: {}  missing: {}  duplicates: {}  out of order: {}",
                watch.watchers,
                watch.puts_acked,
                watch.events_delivered,
                watch.missing,
                watch.duplicates,
                watch.out_of_order
            );
        }
        if !self.histogram.is_empty() {
            let _ = writeln!(out, "\nResponse time histogram:");
            let most = self
                .histogram
                .iter()
                .map(|b| b.count)
                .max()
                .unwrap_or(1)
                .max(1);
            for bucket in &self.histogram {
                let bar = "∎".repeat((bucket.count * 40 / most) as usize);
                let _ = writeln!(out, "  {:.4} [{}]\t|{bar}", bucket.upto_ms, bucket.count);
            }
            let _ = writeln!(out, "\nLatency distribution:");
            for (label, value) in [
                ("10%", l.p10),
                ("25%", l.p25),
                ("50%", l.p50),
                ("75%", l.p75),
                ("90%", l.p90),
                ("95%", l.p95),
                ("99%", l.p99),
                ("99.9%", l.p999),
            ] {
                let _ = writeln!(out, "  {label} in {value:.4} ms.");
            }
        }
        if !self.error_messages.is_empty() {
            let _ = writeln!(out, "\nErrors:");
            for (message, count) in &self.error_messages {
                let _ = writeln!(out, "  {count}× {message}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Recorder;

    #[test]
    fn percentiles_counts_and_buckets_add_up() {
        let mut first = Recorder::default();
        let mut second = Recorder::default();
        for ms in 1..=100u64 {
            let recorder = if ms % 2 == 0 { &mut first } else { &mut second };
            recorder.success(Duration::from_millis(ms));
        }
        second.failure("HTTP 400: too large");
        second.failure("HTTP 400: too large");
        first.failure("connection refused");
        first.merge(second);
        let report = first.report("put", Duration::from_secs(2));
        assert_eq!((report.total, report.ok, report.errors), (103, 100, 3));
        assert_eq!(report.error_messages["HTTP 400: too large"], 2);
        assert_eq!(report.ops_per_second, 50.0);
        // Three significant digits: within 0.1 % of the exact value.
        assert!((report.latency_ms.p50 - 50.0).abs() < 0.1, "{report:?}");
        assert!((report.latency_ms.p99 - 99.0).abs() < 0.1, "{report:?}");
        assert!(
            (report.latency_ms.slowest - 100.0).abs() < 0.1,
            "{report:?}"
        );
        let counted: u64 = report.histogram.iter().map(|b| b.count).sum();
        assert_eq!(counted, 100);
        assert!(report.histogram.len() <= 11, "{:?}", report.histogram);
        let text = report.text();
        assert!(text.contains("Requests/sec:\t50.00"), "{text}");
        assert!(text.contains("2× HTTP 400: too large"), "{text}");
    }

    #[test]
    fn only_ten_kinds_of_error_are_kept_but_all_are_counted() {
        let mut recorder = Recorder::default();
        for i in 0..25 {
            recorder.failure(format!("error {i}"));
        }
        let report = recorder.report("put", Duration::from_secs(1));
        assert_eq!(report.errors, 25);
        assert_eq!(report.error_messages.len(), 10);
        assert_eq!(report.latency_ms, super::Latency::default());
    }
}
