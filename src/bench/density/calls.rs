//! Client-side timing of the density run's API calls, per verb and resource, and the run's
//! error count.
//!
//! A 429 (the server's in-flight limit) is retried after a second, as client-go retries it
//! after the server's Retry-After; each attempt's latency counts, the retry is counted as
//! `throttled`, and only a call that fails otherwise (or is still refused after
//! [`MAX_ATTEMPTS`]) is an error.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts of one call before a 429 counts as an error.
pub const MAX_ATTEMPTS: usize = 10;

/// How many error messages a report keeps (the count keeps counting).
const KEPT_ERRORS: usize = 20;

/// Every call's latency and every error of a run.
#[derive(Debug, Default)]
pub struct Calls {
    /// Milliseconds per attempt, by (verb, resource).
    latencies: Mutex<BTreeMap<(&'static str, &'static str), Vec<f64>>>,
    errors: AtomicU64,
    throttled: AtomicU64,
    messages: Mutex<Vec<String>>,
}

impl Calls {
    /// Runs `call` (retrying 429s), timing each attempt under `verb` and `resource`; an error
    /// is counted and returned as `None`.
    pub async fn timed<T, F, Fut>(
        &self,
        verb: &'static str,
        resource: &'static str,
        call: F,
    ) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = kube::Result<T>>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let started = Instant::now();
            let result = call().await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            self.latencies
                .lock()
                .expect("not poisoned")
                .entry((verb, resource))
                .or_default()
                .push(ms);
            match result {
                Ok(value) => return Some(value),
                Err(kube::Error::Api(status)) if status.code == 429 => {
                    self.throttled.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    self.error(format!("{verb} {resource}: {e}"));
                    return None;
                }
            }
        }
        self.error(format!(
            "{verb} {resource}: still 429 after {MAX_ATTEMPTS} attempts"
        ));
        None
    }

    /// Counts an error that is not a call's (a pod that failed, a watch that broke).
    pub fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut messages = self.messages.lock().expect("not poisoned");
        if messages.len() < KEPT_ERRORS {
            messages.push(message);
        }
    }

    /// Errors so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// 429s retried so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// The first errors' messages.
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().expect("not poisoned").clone()
    }

    /// Every (verb, resource) and its attempts' latencies in milliseconds.
    pub fn latencies(&self) -> BTreeMap<(&'static str, &'static str), Vec<f64>> {
        self.latencies.lock().expect("not poisoned").clone()
    }
}
