//! What a density run reports: percentiles, API call latency from both sides, the SLOs, and
//! its table and JSON forms.
//!
//! Server-side latency is read from the API servers' own `apiserver_request_duration_seconds`
//! histograms, summed over members and scopes, with Prometheus' `histogram_quantile`
//! interpolation, as ClusterLoader2's API responsiveness measurement reads it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::cluster::MemberStats;

/// Kubernetes' SLO: mutating API calls p99 at most 1 s.
pub const SLO_MUTATING_MS: f64 = 1_000.0;
/// Kubernetes' SLO: non-streaming list calls p99 at most 30 s.
pub const SLO_LIST_MS: f64 = 30_000.0;
/// Kubernetes' SLO: pod startup p99 at most 5 s (images pre-pulled).
pub const SLO_POD_STARTUP_MS: f64 = 5_000.0;

/// Rows of each API call table (the busiest); JSON has them all.
const TABLE_ROWS: usize = 20;

/// The metric verbs that write.
const MUTATING: &[&str] = &[
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// Percentiles of a sample, in its unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values in the sample.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `values` (nearest rank).
    pub fn of(mut values: Vec<f64>) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            round(values[rank - 1])
        };
        Percentiles {
            count: values.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: round(values[values.len() - 1]),
        }
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// Latency of one verb on one resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallLatency {
    /// kube's metric verb (GET, LIST, POST, PUT, PATCH, DELETE…).
    pub verb: String,
    /// Resource, with `/subresource` when there is one.
    pub resource: String,
    /// Calls.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

impl CallLatency {
    fn is_mutating(&self) -> bool {
        MUTATING.contains(&self.verb.as_str())
    }
}

/// Client-side latencies, from the run's own calls (verbs named as the server's metrics name
/// them).
pub fn client_latencies(
    latencies: BTreeMap<(&'static str, &'static str), Vec<f64>>,
) -> Vec<CallLatency> {
    latencies
        .into_iter()
        .map(|((verb, resource), values)| {
            let p = Percentiles::of(values);
            CallLatency {
                verb: verb.to_owned(),
                resource: resource.to_owned(),
                count: p.count as u64,
                p50_ms: p.p50,
                p99_ms: p.p99,
            }
        })
        .collect()
}

/// Cumulative bucket counts by (verb, resource) and upper bound, summed over servers and
/// scopes.
pub type Histograms = BTreeMap<(String, String), BTreeMap<String, u64>>;

/// Server-side latencies of the calls served between the `before` and `after` scrapes of
/// each API server's `/metrics`; WATCH and CONNECT are left out (their durations are not
/// call latencies).
pub fn server_latencies(before: &[String], after: &[String]) -> Vec<CallLatency> {
    let mut served = histograms(after);
    for ((verb, resource), buckets) in histograms(before) {
        if let Some(now) = served.get_mut(&(verb, resource)) {
            for (le, n) in buckets {
                if let Some(count) = now.get_mut(&le) {
                    *count = count.saturating_sub(n);
                }
            }
        }
    }
    latencies(served)
}

/// The request duration histograms of `scrapes`.
pub fn histograms(scrapes: &[String]) -> Histograms {
    let mut histograms = Histograms::new();
    for text in scrapes {
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_duration_seconds_bucket{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let labels = parse_labels(labels);
            let verb = labels.get("verb").cloned().unwrap_or_default();
            if verb == "WATCH" || verb == "CONNECT" {
                continue;
            }
            let mut resource = labels.get("resource").cloned().unwrap_or_default();
            if let Some(sub) = labels.get("subresource").filter(|s| !s.is_empty()) {
                resource = format!("{resource}/{sub}");
            }
            let le = labels.get("le").cloned().unwrap_or_default();
            let count: u64 = value.trim().parse().unwrap_or(0);
            *histograms
                .entry((verb, resource))
                .or_default()
                .entry(le)
                .or_default() += count;
        }
    }
    histograms
}

fn latencies(histograms: Histograms) -> Vec<CallLatency> {
    histograms
        .into_iter()
        .filter_map(|((verb, resource), buckets)| {
            let mut bounds: Vec<(f64, u64)> = buckets
                .into_iter()
                .map(|(le, n)| {
                    let bound = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or(f64::INFINITY)
                    };
                    (bound, n)
                })
                .collect();
            bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
            let total = bounds.last()?.1;
            (total > 0).then(|| CallLatency {
                verb,
                resource,
                count: total,
                p50_ms: round(histogram_quantile(0.5, &bounds) * 1000.0),
                p99_ms: round(histogram_quantile(0.99, &bounds) * 1000.0),
            })
        })
        .collect()
}

/// Prometheus' `histogram_quantile` over cumulative `(upper bound, count)` buckets, in the
/// bounds' unit: linear within the bucket the rank falls in, the highest finite bound when it
/// falls in +Inf.
pub fn histogram_quantile(q: f64, buckets: &[(f64, u64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return 0.0;
    };
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            if bound.is_infinite() {
                return lower.0;
            }
            let in_bucket = (count - lower.1) as f64;
            if in_bucket == 0.0 {
                return bound;
            }
            return lower.0 + (bound - lower.0) * (rank - lower.1 as f64) / in_bucket;
        }
        lower = (bound, count);
    }
    lower.0
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else {
            break;
        };
        labels.insert(
            name.trim_start_matches(',').trim().to_owned(),
            after[..end].to_owned(),
        );
        rest = &after[end + 1..];
    }
    labels
}

/// The run's Kubernetes SLOs and whether each held.
#[derive(Clone, Debug, Serialize)]
pub struct Slos {
    /// Largest p99 of a mutating verb on a resource, server side, ms (SLO: 1,000).
    pub mutating_p99_ms: f64,
    /// Largest p99 of LIST on a resource, server side, ms (SLO: 30,000).
    pub list_p99_ms: f64,
    /// Pod startup p99, ms (SLO: 5,000).
    pub pod_startup_p99_ms: f64,
    /// All three held, with no errors.
    pub met: bool,
}

impl Slos {
    /// The SLOs of `server` latencies (client ones when the server's are missing).
    pub fn of(
        server: &[CallLatency],
        client: &[CallLatency],
        startup_p99: f64,
        errors: u64,
    ) -> Slos {
        let calls = if server.is_empty() { client } else { server };
        let worst = |keep: &dyn Fn(&CallLatency) -> bool| {
            calls
                .iter()
                .filter(|c| keep(c))
                .map(|c| c.p99_ms)
                .fold(0.0, f64::max)
        };
        let mutating_p99_ms = worst(&CallLatency::is_mutating);
        let list_p99_ms = worst(&|c| c.verb == "LIST");
        Slos {
            mutating_p99_ms,
            list_p99_ms,
            pod_startup_p99_ms: startup_p99,
            met: errors == 0
                && mutating_p99_ms <= SLO_MUTATING_MS
                && list_p99_ms <= SLO_LIST_MS
                && startup_p99 <= SLO_POD_STARTUP_MS,
        }
    }
}

/// The scheduler's pace, from the times pods were seen bound.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Throughput {
    /// Pods bound per second, first binding to last.
    pub mean_pods_per_s: f64,
    /// Most pods bound in one second.
    pub peak_pods_per_s: u64,
}

impl Throughput {
    /// From the seconds (since any origin) at which pods were scheduled.
    pub fn of(mut seconds: Vec<f64>) -> Throughput {
        if seconds.len() < 2 {
            return Throughput::default();
        }
        seconds.sort_by(f64::total_cmp);
        let span = seconds[seconds.len() - 1] - seconds[0];
        let mut per_second: BTreeMap<i64, u64> = BTreeMap::new();
        for s in &seconds {
            *per_second.entry(s.floor() as i64).or_default() += 1;
        }
        Throughput {
            mean_pods_per_s: if span > 0.0 {
                ((seconds.len() as f64 / span) * 10.0).round() / 10.0
            } else {
                0.0
            },
            peak_pods_per_s: per_second.values().copied().max().unwrap_or(0),
        }
    }
}

/// How far the slowest pod watcher trails the fastest.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct WatchLag {
    /// Watchers (one per API server).
    pub watchers: usize,
    /// Most resourceVersions between the fastest and slowest watcher at a sample.
    pub max_revisions: i64,
    /// Per event, how much later the slowest watcher delivered it than the fastest, ms.
    pub delivery_ms: Percentiles,
}

/// The process's resources over the run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ProcessUse {
    /// Whether the control plane ran in this process (then these are its members',
    /// scheduler's, controllers', hollow nodes' and the load generator's together).
    pub whole_control_plane: bool,
    /// CPU seconds spent during the run.
    pub cpu_seconds: f64,
    /// Peak resident MiB.
    pub peak_rss_mib: f64,
}

/// Seconds each phase took.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Phases {
    /// Hollow nodes registered and Ready.
    pub nodes_ready_s: f64,
    /// Deployments created (at the set QPS).
    pub create_s: f64,
    /// From the first create until every pod was watched Running.
    pub all_running_s: f64,
    /// Scaled to zero until the last pod was watched deleted.
    pub scale_down_s: f64,
    /// Deployments deleted.
    pub delete_s: f64,
}

/// Everything a density run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Hollow nodes.
    pub nodes: usize,
    /// Pods per node asked for.
    pub pods_per_node: usize,
    /// Pods in all.
    pub pods: usize,
    /// Deployments.
    pub deployments: usize,
    /// Deployment creations per second.
    pub qps: f64,
    /// Errors: failed calls, failed pods, broken watches, pods never Running (must be 0).
    pub errors: u64,
    /// The first errors.
    pub error_messages: Vec<String>,
    /// 429s the run retried.
    pub throttled: u64,
    /// Created (first watched) to watched Running, ms.
    pub pod_startup_ms: Percentiles,
    /// Created to watched bound to a node, ms.
    pub create_to_schedule_ms: Percentiles,
    /// Watched bound to watched Running, ms.
    pub schedule_to_running_ms: Percentiles,
    /// The run's own calls, timed by the client.
    pub api_client: Vec<CallLatency>,
    /// Every call the API servers served in the run, from their metrics.
    pub api_server: Vec<CallLatency>,
    /// Kubernetes' SLOs.
    pub slo: Slos,
    /// The scheduler's pace.
    pub scheduler: Throughput,
    /// Watch lag.
    pub watch_lag: WatchLag,
    /// CPU and memory.
    pub process: ProcessUse,
    /// Keys and bytes per member (in-process runs).
    pub members: Vec<MemberStats>,
    /// Phase durations.
    pub phases: Phases,
}

impl Report {
    /// The human form.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "density: {} nodes, {} pods ({} per node) in {} deployments, {} creations/s",
            self.nodes, self.pods, self.pods_per_node, self.deployments, self.qps
        );
        let _ = writeln!(
            out,
            "errors: {} (throttled and retried: {})",
            self.errors, self.throttled
        );
        for message in &self.error_messages {
            let _ = writeln!(out, "  {message}");
        }
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        table.set_header(["", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"]);
        for (name, p) in [
            ("pod startup", &self.pod_startup_ms),
            ("  created → scheduled", &self.create_to_schedule_ms),
            ("  scheduled → running", &self.schedule_to_running_ms),
            ("watch delivery spread", &self.watch_lag.delivery_ms),
        ] {
            table.add_row([
                name.to_owned(),
                p.count.to_string(),
                p.p50.to_string(),
                p.p90.to_string(),
                p.p99.to_string(),
                p.max.to_string(),
            ]);
        }
        let _ = writeln!(out, "{table}");
        for (title, calls) in [
            ("client side", &self.api_client),
            ("server side", &self.api_server),
        ] {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header([
                format!("API calls, {title}"),
                "count".into(),
                "p50 ms".into(),
                "p99 ms".into(),
            ]);
            let mut calls: Vec<&CallLatency> = calls.iter().collect();
            calls.sort_by_key(|c| std::cmp::Reverse(c.count));
            let more = calls.len().saturating_sub(TABLE_ROWS);
            for c in calls.into_iter().take(TABLE_ROWS) {
                table.add_row([
                    format!("{} {}", c.verb, c.resource),
                    c.count.to_string(),
                    c.p50_ms.to_string(),
                    c.p99_ms.to_string(),
                ]);
            }
            let _ = writeln!(out, "{table}");
            if more > 0 {
                let _ = writeln!(out, " ({more} more in -w json)");
            }
        }
        let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
        let _ = writeln!(
            out,
            "SLOs: mutating p99 {} ms (≤ 1000: {}), list p99 {} ms (≤ 30000: {}), pod startup p99 {} ms (≤ 5000: {})",
            self.slo.mutating_p99_ms,
            verdict(self.slo.mutating_p99_ms <= SLO_MUTATING_MS),
            self.slo.list_p99_ms,
            verdict(self.slo.list_p99_ms <= SLO_LIST_MS),
            self.slo.pod_startup_p99_ms,
            verdict(self.slo.pod_startup_p99_ms <= SLO_POD_STARTUP_MS),
        );
        let _ = writeln!(
            out,
            "scheduler: {} pods/s mean, {} peak; slowest watcher: {} revisions behind at most",
            self.scheduler.mean_pods_per_s,
            self.scheduler.peak_pods_per_s,
            self.watch_lag.max_revisions
        );
        let _ = writeln!(
            out,
            "process{}: {:.1} CPU-seconds, peak RSS {:.0} MiB",
            if self.process.whole_control_plane {
                " (all members, scheduler, controllers, hollow nodes and the load in one)"
            } else {
                " (the load generator and hollow nodes)"
            },
            self.process.cpu_seconds,
            self.process.peak_rss_mib
        );
        for m in &self.members {
            let _ = writeln!(
                out,
                "member {}: {} keys, db {:.1} MiB, data dir {:.1} MiB",
                m.name,
                m.keys,
                m.db_bytes as f64 / 1048576.0,
                m.data_dir_bytes as f64 / 1048576.0
            );
        }
        let p = &self.phases;
        let _ = writeln!(
            out,
            "phases: nodes ready {:.1} s, create {:.1} s, all running {:.1} s, scale down {:.1} s, delete {:.1} s",
            p.nodes_ready_s, p.create_s, p.all_running_s, p.scale_down_s, p.delete_s
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (p.count, p.p50, p.p90, p.p99, p.max),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Percentiles::of(Vec::new()).count, 0);
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let buckets = [(0.1, 50), (0.2, 100), (f64::INFINITY, 100)];
        assert!((histogram_quantile(0.5, &buckets) - 0.1).abs() < 1e-9);
        assert!((histogram_quantile(0.75, &buckets) - 0.15).abs() < 1e-9);
        let overflow = [(0.1, 1), (f64::INFINITY, 10)];
        assert_eq!(histogram_quantile(0.99, &overflow), 0.1);
    }

    #[test]
    fn server_latencies_sum_members_and_scopes() {
        let scrape = |scope: &str, fast: u64, all: u64| {
            format!(
                "apiserver_request_duration_seconds_bucket{{component=\"apiserver\",dry_run=\"\",group=\"apps\",resource=\"deployments\",scope=\"{scope}\",subresource=\"\",verb=\"POST\",version=\"v1\",le=\"0.005\"}} {fast}\n\
                 apiserver_request_duration_seconds_bucket{{component=\"apiserver\",dry_run=\"\",group=\"apps\",resource=\"deployments\",scope=\"{scope}\",subresource=\"\",verb=\"POST\",version=\"v1\",le=\"+Inf\"}} {all}\n\
                 apiserver_request_duration_seconds_bucket{{component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"pods\",scope=\"namespace\",subresource=\"\",verb=\"WATCH\",version=\"v1\",le=\"+Inf\"}} 3\n"
            )
        };
        let calls = server_latencies(
            &[],
            &[scrape("resource", 10, 10), scrape("resource", 10, 10)],
        );
        assert_eq!(calls.len(), 1, "watches are left out: {calls:?}");
        assert_eq!(
            (
                calls[0].verb.as_str(),
                calls[0].resource.as_str(),
                calls[0].count
            ),
            ("POST", "deployments", 20)
        );
        assert!(calls[0].p99_ms <= 5.0);
        let slo = Slos::of(&calls, &[], 100.0, 0);
        assert!(slo.met);
        assert!(!Slos::of(&calls, &[], 5_001.0, 0).met);
        assert!(!Slos::of(&calls, &[], 100.0, 1).met);
        // Only what was served between the scrapes counts.
        let between = server_latencies(&[scrape("resource", 4, 5)], &[scrape("resource", 10, 12)]);
        assert_eq!(between[0].count, 7);
    }
}
