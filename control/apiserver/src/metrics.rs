//! kube-apiserver's own metrics, in its names, on `GET /metrics` (Prometheus text format), so
//! the dashboards and ClusterLoader2 queries written for kube-apiserver read keel's too.
//!
//! ```text
//! request ──► Server::handle ──► Metrics::observe ──► series (verb, group, version, resource,
//!                                                     subresource, scope): codes + histogram
//! watch event sent ──► WatchCounter (one atomic per kind)
//! scrape ──► Metrics::render (+ object counts read from the watch cache then)
//! ```
//!
//! A series is found by hashing its borrowed labels, so a request allocates nothing once its
//! series exists; the histogram and counters are atomics, and only the (rare) first request
//! of a new label set and the code list take a short lock.
//!
//! Served: `apiserver_request_total`, `apiserver_request_duration_seconds` (kube's buckets;
//! a WATCH is timed to its response head, since its body lasts as long as the client wants),
//! `apiserver_current_inflight_requests`, `apiserver_watch_events_total`,
//! `apiserver_storage_objects`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::request::{ResourceRequest, Verb};

/// kube-apiserver's buckets of `apiserver_request_duration_seconds` (chosen there for the
/// API call latency SLO: fine below 1 s, coarse up to the 60 s request timeout).
pub const DURATION_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// The labels of one request, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestLabels<'a> {
    /// kube's metric verb: GET, LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE,
    /// DELETECOLLECTION, CONNECT.
    pub verb: &'static str,
    /// API group ("" for core).
    pub group: &'a str,
    /// Version.
    pub version: &'a str,
    /// Plural resource.
    pub resource: &'a str,
    /// Subresource ("" for none).
    pub subresource: &'a str,
    /// `resource` (a named object, or a create), `namespace` or `cluster`.
    pub scope: &'static str,
    /// Whether the request was a dry run (kube's `dry_run` label: "All" or "").
    pub dry_run: bool,
}

impl<'a> RequestLabels<'a> {
    /// The labels kube-apiserver gives `request`; `apply` when a PATCH carried an apply
    /// patch (kube reports those as APPLY).
    pub fn of(request: &'a ResourceRequest, apply: bool, dry_run: bool) -> RequestLabels<'a> {
        let connect = matches!(
            request.subresource.as_deref(),
            Some("exec" | "attach" | "portforward" | "proxy")
        );
        let verb = match request.verb {
            _ if connect => "CONNECT",
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch if apply => "APPLY",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
        };
        // kube's CleanScope.
        let scope = if request.name.is_some() || request.verb == Verb::Create {
            "resource"
        } else if request.namespace.is_some() {
            "namespace"
        } else {
            "cluster"
        };
        RequestLabels {
            verb,
            group: &request.group,
            version: &request.version,
            resource: &request.resource,
            subresource: request.subresource.as_deref().unwrap_or(""),
            scope,
            dry_run,
        }
    }

    fn key(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

/// The owned labels a series keeps.
#[derive(Debug)]
struct OwnedLabels {
    verb: &'static str,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    scope: &'static str,
    dry_run: bool,
}

impl OwnedLabels {
    fn matches(&self, labels: &RequestLabels<'_>) -> bool {
        self.verb == labels.verb
            && self.group == labels.group
            && self.version == labels.version
            && self.resource == labels.resource
            && self.subresource == labels.subresource
            && self.scope == labels.scope
            && self.dry_run == labels.dry_run
    }

    /// The label pairs, in kube's order, for the text format.
    fn write(&self, out: &mut String) {
        let _ = write!(
            out,
            "component=\"apiserver\",dry_run=\"{}\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"",
            if self.dry_run { "All" } else { "" },
            self.group,
            self.resource,
            self.scope,
            self.subresource,
            self.verb,
            self.version
        );
    }
}

/// One label set's counts and latency histogram.
#[derive(Debug)]
struct Series {
    labels: OwnedLabels,
    /// Requests by response code (a handful per series).
    codes: Mutex<Vec<(u16, u64)>>,
    /// Cumulative-on-render bucket counts; the last is +Inf.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Series {
    fn new(labels: OwnedLabels) -> Series {
        Series {
            labels,
            codes: Mutex::new(Vec::new()),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, code: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        match codes.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => codes.push((code, 1)),
        }
    }
}

/// Which of kube's two in-flight limits a request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// GET, LIST (WATCH holds no slot).
    ReadOnly,
    /// Everything that writes.
    Mutating,
}

/// The apiserver's metrics; one per API server.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<HashMap<u64, Vec<Arc<Series>>>>,
    in_flight_read_only: AtomicI64,
    in_flight_mutating: AtomicI64,
    watch_events: Mutex<Vec<(WatchKind, Arc<AtomicU64>)>>,
}

/// `apiserver_watch_events_total`'s labels.
#[derive(Clone, Debug, PartialEq, Eq)]
struct WatchKind {
    group: String,
    version: String,
    kind: String,
}

/// Counts the events one watch sends (`apiserver_watch_events_total` of its kind).
#[derive(Clone, Debug)]
pub struct WatchCounter(Arc<AtomicU64>);

impl WatchCounter {
    /// One more event sent.
    pub fn sent(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Holds one in-flight slot of the gauge until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Records one answered request.
    pub fn observe(&self, labels: &RequestLabels<'_>, code: u16, elapsed: Duration) {
        let key = labels.key();
        let series = {
            let mut map = self.series.lock().unwrap_or_else(|e| e.into_inner());
            let bucket = map.entry(key).or_default();
            match bucket.iter().find(|s| s.labels.matches(labels)) {
                Some(series) => Arc::clone(series),
                None => {
                    let series = Arc::new(Series::new(OwnedLabels {
                        verb: labels.verb,
                        group: labels.group.to_owned(),
                        version: labels.version.to_owned(),
                        resource: labels.resource.to_owned(),
                        subresource: labels.subresource.to_owned(),
                        scope: labels.scope,
                        dry_run: labels.dry_run,
                    }));
                    bucket.push(Arc::clone(&series));
                    series
                }
            }
        };
        series.observe(code, elapsed);
    }

    /// Counts a request in `apiserver_current_inflight_requests` while the guard lives.
    pub fn in_flight(&self, kind: RequestKind) -> InFlight<'_> {
        let gauge = match kind {
            RequestKind::ReadOnly => &self.in_flight_read_only,
            RequestKind::Mutating => &self.in_flight_mutating,
        };
        gauge.fetch_add(1, Ordering::Relaxed);
        InFlight(gauge)
    }

    /// The counter a new watch of `group/version` `kind` adds its events to.
    pub fn watch_counter(&self, group: &str, version: &str, kind: &str) -> WatchCounter {
        let wanted = WatchKind {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
        };
        let mut counters = self.watch_events.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, counter)) = counters.iter().find(|(k, _)| *k == wanted) {
            return WatchCounter(Arc::clone(counter));
        }
        let counter = Arc::new(AtomicU64::new(0));
        counters.push((wanted, Arc::clone(&counter)));
        WatchCounter(counter)
    }

    /// The text exposition; `objects` are `(resource label, count)` pairs read now.
    pub fn render(&self, objects: &[(String, usize)]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let mut all: Vec<Arc<Series>> = {
            let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
            map.values().flatten().cloned().collect()
        };
        all.sort_by(|a, b| {
            (a.labels.resource.as_str(), a.labels.verb, a.labels.scope).cmp(&(
                b.labels.resource.as_str(),
                b.labels.verb,
                b.labels.scope,
            ))
        });

        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        for series in &all {
            let mut codes = series
                .codes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            codes.sort_unstable();
            for (code, n) in codes {
                let _ = write!(out, "apiserver_request_total{{code=\"{code}\",");
                series.labels.write(&mut out);
                let _ = writeln!(out, "}} {n}");
            }
        }

        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.\n");
        out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
        for series in &all {
            let mut cumulative = 0;
            for (i, bound) in DURATION_BUCKETS
                .iter()
                .map(|b| format!("{b}"))
                .chain(std::iter::once("+Inf".to_owned()))
                .enumerate()
            {
                cumulative += series.buckets[i].load(Ordering::Relaxed);
                out.push_str("apiserver_request_duration_seconds_bucket{");
                series.labels.write(&mut out);
                let _ = writeln!(out, ",le=\"{bound}\"}} {cumulative}");
            }
            out.push_str("apiserver_request_duration_seconds_sum{");
            series.labels.write(&mut out);
            let sum = series.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "}} {sum}");
            out.push_str("apiserver_request_duration_seconds_count{");
            series.labels.write(&mut out);
            let _ = writeln!(out, "}} {}", series.count.load(Ordering::Relaxed));
        }

        out.push_str("# HELP apiserver_current_inflight_requests Maximal number of currently used inflight request limit of this apiserver per request kind in last second.\n");
        out.push_str("# TYPE apiserver_current_inflight_requests gauge\n");
        let _ = writeln!(
            out,
            "apiserver_current_inflight_requests{{request_kind=\"mutating\"}} {}",
            self.in_flight_mutating.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "apiserver_current_inflight_requests{{request_kind=\"readOnly\"}} {}",
            self.in_flight_read_only.load(Ordering::Relaxed)
        );

        out.push_str(
            "# HELP apiserver_watch_events_total Number of events sent in watch clients\n",
        );
        out.push_str("# TYPE apiserver_watch_events_total counter\n");
        let counters = self
            .watch_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (kind, counter) in counters {
            let _ = writeln!(
                out,
                "apiserver_watch_events_total{{group=\"{}\",kind=\"{}\",version=\"{}\"}} {}",
                kind.group,
                kind.kind,
                kind.version,
                counter.load(Ordering::Relaxed)
            );
        }

        out.push_str("# HELP apiserver_storage_objects Number of stored objects at the time of last check split by kind.\n");
        out.push_str("# TYPE apiserver_storage_objects gauge\n");
        for (resource, count) in objects {
            let _ = writeln!(
                out,
                "apiserver_storage_objects{{resource=\"{resource}\"}} {count}"
            );
        }
        out
    }
}

impl crate::rest::Api {
    /// `GET /metrics`'s body: the request metrics, with the watch cache's object counts
    /// labelled as kube labels them (`pods`, `deployments.apps`).
    pub fn metrics_text(&self) -> String {
        let counts = self.cache.object_counts();
        let mut objects: Vec<(String, usize)> = self
            .registry
            .resources()
            .iter()
            .filter_map(|resource| {
                let prefix = resource.prefix();
                let (_, count) = counts.iter().find(|(p, _)| *p == prefix)?;
                let label = if resource.group.is_empty() {
                    resource.plural.to_owned()
                } else {
                    format!("{}.{}", resource.plural, resource.group)
                };
                Some((label, *count))
            })
            .collect();
        objects.sort();
        objects.dedup_by(|a, b| a.0 == b.0);
        self.metrics.render(&objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{route, Query};

    fn labels_of(method: &str, path: &str) -> (ResourceRequest, &'static str, &'static str) {
        let crate::request::Route::Resource(request) = route(method, path, &Query::default())
        else {
            panic!("{path} is not a resource request");
        };
        let l = RequestLabels::of(&request, false, false);
        let (verb, scope) = (l.verb, l.scope);
        (request, verb, scope)
    }

    #[test]
    fn verbs_and_scopes_follow_kube() {
        let cases = [
            ("GET", "/api/v1/namespaces/a/pods/p", "GET", "resource"),
            ("GET", "/api/v1/namespaces/a/pods", "LIST", "namespace"),
            ("GET", "/api/v1/pods", "LIST", "cluster"),
            ("POST", "/api/v1/namespaces/a/pods", "POST", "resource"),
            ("PUT", "/api/v1/nodes/n/status", "PUT", "resource"),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/a/deployments/d",
                "PATCH",
                "resource",
            ),
            (
                "DELETE",
                "/api/v1/namespaces/a/pods",
                "DELETECOLLECTION",
                "namespace",
            ),
            (
                "GET",
                "/api/v1/namespaces/a/pods/p/exec",
                "CONNECT",
                "resource",
            ),
        ];
        for (method, path, verb, scope) in cases {
            let (_, v, s) = labels_of(method, path);
            assert_eq!((v, s), (verb, scope), "{method} {path}");
        }
        let (patch, _, _) = labels_of("PATCH", "/apis/apps/v1/namespaces/a/deployments/d");
        assert_eq!(RequestLabels::of(&patch, true, false).verb, "APPLY");
    }

    #[test]
    fn requests_land_in_kube_buckets_and_codes() {
        let metrics = Metrics::default();
        let (request, _, _) = labels_of("POST", "/apis/apps/v1/namespaces/a/deployments");
        let labels = RequestLabels::of(&request, false, false);
        metrics.observe(&labels, 201, Duration::from_millis(3));
        metrics.observe(&labels, 201, Duration::from_millis(300));
        metrics.observe(&labels, 409, Duration::from_secs(61));
        let text = metrics.render(&[("pods".into(), 7)]);
        let series = "component=\"apiserver\",dry_run=\"\",group=\"apps\",resource=\"deployments\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"";
        for line in [
            format!("apiserver_request_total{{code=\"201\",{series}}} 2"),
            format!("apiserver_request_total{{code=\"409\",{series}}} 1"),
            format!("apiserver_request_duration_seconds_bucket{{{series},le=\"0.005\"}} 1"),
            format!("apiserver_request_duration_seconds_bucket{{{series},le=\"0.2\"}} 1"),
            format!("apiserver_request_duration_seconds_bucket{{{series},le=\"0.4\"}} 2"),
            format!("apiserver_request_duration_seconds_bucket{{{series},le=\"60\"}} 2"),
            format!("apiserver_request_duration_seconds_bucket{{{series},le=\"+Inf\"}} 3"),
            format!("apiserver_request_duration_seconds_count{{{series}}} 3"),
            "apiserver_storage_objects{resource=\"pods\"} 7".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
    }

    #[test]
    fn in_flight_and_watch_counters() {
        let metrics = Metrics::default();
        let guard = metrics.in_flight(RequestKind::Mutating);
        let watch = metrics.watch_counter("", "v1", "Pod");
        watch.sent();
        metrics.watch_counter("", "v1", "Pod").sent();
        let text = metrics.render(&[]);
        assert!(text.contains("apiserver_current_inflight_requests{request_kind=\"mutating\"} 1"));
        assert!(
            text.contains("apiserver_watch_events_total{group=\"\",kind=\"Pod\",version=\"v1\"} 2")
        );
        drop(guard);
        let text = metrics.render(&[]);
        assert!(text.contains("apiserver_current_inflight_requests{request_kind=\"mutating\"} 0"));
    }
}
