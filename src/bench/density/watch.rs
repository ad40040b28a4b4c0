//! The watches that measure a density run: one pod watcher per API server, all on the
//! run's pods.
//!
//! ```text
//! watcher 0 ──► each pod's times: first seen (created), nodeName seen (scheduled), phase
//!               Running seen (running) ──► pod startup; counts of present and Running pods
//! watcher i ──► when it saw each resourceVersion ──► how far the slowest trails the fastest
//! ```
//!
//! Times are this process's clock as the watch delivers events, so "created" is when the
//! first watcher saw the pod (the ReplicaSet controller creates it, not the bench); the
//! watch's own delay is measured separately as the lag between watchers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt as _;

use super::calls::Calls;

/// When watcher 0 saw a pod's transitions.
#[derive(Clone, Copy, Debug)]
pub struct PodTimes {
    /// First seen (ADDED).
    pub created: Instant,
    /// First seen with `spec.nodeName`.
    pub scheduled: Option<Instant>,
    /// First seen with phase Running.
    pub running: Option<Instant>,
    /// Seen deleted.
    pub gone: Option<Instant>,
}

/// How many of the run's pods exist and how many run, as watcher 0 sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pods that exist.
    pub present: usize,
    /// Of those, Running.
    pub running: usize,
}

/// What one watcher saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// The latest resourceVersion it delivered.
    pub latest: AtomicI64,
    /// When it delivered each resourceVersion.
    pub at: Mutex<HashMap<i64, Instant>>,
}

/// Everything the run's watchers saw.
pub struct Watches {
    /// Pod times by uid (watcher 0).
    pub pods: Mutex<HashMap<String, PodTimes>>,
    /// Counts, moved on by watcher 0.
    pub counts: tokio::sync::watch::Sender<Counts>,
    /// Per watcher.
    pub seen: Vec<Arc<Seen>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Watches {
    /// Starts one watcher per client on the pods of `namespace` labelled `selector`.
    pub fn start(
        clients: &[kube::Client],
        namespace: &str,
        selector: &str,
        calls: Arc<Calls>,
    ) -> Arc<Watches> {
        let seen: Vec<Arc<Seen>> = clients.iter().map(|_| Arc::default()).collect();
        let watches = Arc::new(Watches {
            pods: Mutex::default(),
            counts: tokio::sync::watch::channel(Counts::default()).0,
            seen,
            tasks: Mutex::default(),
        });
        let tasks = clients
            .iter()
            .enumerate()
            .map(|(i, client)| {
                let api = kube::Api::<Pod>::namespaced(client.clone(), namespace);
                let config = watcher::Config::default().labels(selector);
                let watches = Arc::clone(&watches);
                let calls = Arc::clone(&calls);
                tokio::spawn(async move {
                    let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
                    while let Some(event) = stream.next().await {
                        match event {
                            Ok(event) => watches.observe(i, event, &calls),
                            Err(e) => calls.error(format!("pod watcher {i}: {e}")),
                        }
                    }
                })
            })
            .collect();
        *watches.tasks.lock().expect("not poisoned") = tasks;
        watches
    }

    fn observe(&self, watcher: usize, event: Event<Pod>, calls: &Calls) {
        let now = Instant::now();
        let (pod, deleted) = match event {
            Event::Apply(pod) | Event::InitApply(pod) => (pod, false),
            Event::Delete(pod) => (pod, true),
            Event::Init | Event::InitDone => return,
        };
        let rv = pod
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let seen = &self.seen[watcher];
        seen.latest.fetch_max(rv, Ordering::Relaxed);
        seen.at
            .lock()
            .expect("not poisoned")
            .entry(rv)
            .or_insert(now);
        if watcher != 0 {
            return;
        }
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase == Some("Failed") {
            calls.error(format!(
                "pod {} failed",
                pod.metadata.name.as_deref().unwrap_or("?")
            ));
        }
        let mut pods = self.pods.lock().expect("not poisoned");
        let mut counts = *self.counts.borrow();
        let times = pods.entry(uid).or_insert_with(|| {
            counts.present += 1;
            PodTimes {
                created: now,
                scheduled: None,
                running: None,
                gone: None,
            }
        });
        if times.gone.is_some() {
            return;
        }
        let on_node = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
        if on_node && times.scheduled.is_none() {
            times.scheduled = Some(now);
        }
        if phase == Some("Running") && times.running.is_none() {
            times.running = Some(now);
            counts.running += 1;
        }
        if deleted {
            times.gone = Some(now);
            counts.present -= 1;
            if times.running.is_some() {
                counts.running -= 1;
            }
        }
        // Sent under the pods' lock, so counts move in the order events came.
        self.counts.send_replace(counts);
    }

    /// How far the slowest watcher trails the fastest now, in resourceVersions.
    pub fn revision_spread(&self) -> i64 {
        let latest: Vec<i64> = self
            .seen
            .iter()
            .map(|s| s.latest.load(Ordering::Relaxed))
            .collect();
        latest.iter().max().unwrap_or(&0) - latest.iter().min().unwrap_or(&0)
    }

    /// For every resourceVersion all watchers saw: how much later the slowest saw it than the
    /// fastest, in milliseconds.
    pub fn delivery_spreads(&self) -> Vec<f64> {
        let maps: Vec<_> = self
            .seen
            .iter()
            .map(|s| s.at.lock().expect("not poisoned").clone())
            .collect();
        let Some((first, rest)) = maps.split_first() else {
            return Vec::new();
        };
        first
            .iter()
            .filter_map(|(rv, at)| {
                let mut earliest = *at;
                let mut latest = *at;
                for other in rest {
                    let t = other.get(rv)?;
                    earliest = earliest.min(*t);
                    latest = latest.max(*t);
                }
                Some((latest - earliest).as_secs_f64() * 1000.0)
            })
            .collect()
    }

    /// Stops the watchers.
    pub fn stop(&self) {
        for task in self.tasks.lock().expect("not poisoned").drain(..) {
            task.abort();
        }
    }
}
