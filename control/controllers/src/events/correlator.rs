//! client-go's `EventCorrelator`, which every kube-controller-manager recorder runs before it
//! writes: similar events aggregated, repeats counted, and a spam filter per object.
//!
//! - **Aggregation**: events that differ only in their message (same source, object, type and
//!   reason) are similar. From the tenth distinct message within ten minutes on, the event
//!   written is one aggregate, `(combined from similar events): <latest message>`.
//! - **Counting**: an event identical to one already written (or the aggregate again) is not
//!   created anew; the existing Event is patched with the new count, last timestamp and
//!   message.
//! - **Spam filter**: each source and object has a token bucket of 25 writes, refilled one
//!   every five minutes; past it events are not written (their occurrences still count).
//!
//! So a ReplicaSet creating 1,000 pods writes 25 Events (nine `Created pod: …` and one
//! aggregate counted up), not 1,000, and `kubectl describe` shows the same as against
//! kube-controller-manager. The correlator is pure: the caller passes the time, so tests
//! drive it without waiting.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::time::Instant;

/// Distinct keys each cache keeps (client-go's LRU size).
pub const CACHE_ENTRIES: usize = 4096;
/// Distinct messages of similar events before they are aggregated.
pub const AGGREGATE_AFTER: usize = 10;
/// How long similar events are remembered for aggregation.
pub const AGGREGATE_INTERVAL: Duration = Duration::from_secs(600);
/// Events a source may write about one object at once.
pub const SPAM_BURST: f64 = 25.0;
/// How often the spam filter gives a source one more event about an object.
pub const SPAM_REFILL: Duration = Duration::from_secs(300);
/// The prefix of an aggregate event's message.
pub const AGGREGATE_PREFIX: &str = "(combined from similar events): ";

/// What to send for one recorded event.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// A new Event.
    Create(Event),
    /// The Event of this name exists: patch its `count`, `lastTimestamp` and `message` (create
    /// it, should it be gone).
    Patch(Event),
}

/// A map that keeps at most [`CACHE_ENTRIES`] keys, dropping the least recently used half
/// when full (client-go uses an LRU; half at once keeps the eviction cost amortized).
#[derive(Debug)]
struct Bounded<V> {
    entries: HashMap<String, (u64, V)>,
    tick: u64,
}

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Bounded {
            entries: HashMap::new(),
            tick: 0,
        }
    }
}

impl<V> Bounded<V> {
    /// The value of `key`, made with `make` if absent, marked as just used.
    fn entry(&mut self, key: String, make: impl FnOnce() -> V) -> &mut V {
        self.tick += 1;
        if self.entries.len() >= CACHE_ENTRIES && !self.entries.contains_key(&key) {
            let mut ages: Vec<u64> = self.entries.values().map(|(used, _)| *used).collect();
            let middle = ages.len() / 2;
            let (_, cutoff, _) = ages.select_nth_unstable(middle);
            let cutoff = *cutoff;
            self.entries.retain(|_, (used, _)| *used > cutoff);
        }
        let tick = self.tick;
        let slot = self.entries.entry(key).or_insert_with(|| (tick, make()));
        slot.0 = tick;
        &mut slot.1
    }

    #[cfg(test)]
    fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(_, v)| v)
    }
}

/// Similar events seen lately.
#[derive(Debug)]
struct Similar {
    messages: HashSet<String>,
    last: Instant,
}

/// An Event written (or about to be) and how often it occurred.
#[derive(Clone, Debug)]
struct Logged {
    count: i32,
    name: String,
    first_timestamp: Option<Time>,
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Bucket {
        Bucket {
            tokens: SPAM_BURST,
            at: now,
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        let refilled = now.duration_since(self.at).as_secs_f64() / SPAM_REFILL.as_secs_f64();
        self.tokens = (self.tokens + refilled).min(SPAM_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The correlator of one recorder.
#[derive(Debug, Default)]
pub struct Correlator {
    similar: Bounded<Similar>,
    logged: Bounded<Logged>,
    spam: Bounded<Bucket>,
}

fn join(parts: &[&str]) -> String {
    parts.concat()
}

fn object_key(event: &Event) -> String {
    let source = event.source.clone().unwrap_or_default();
    let object = &event.involved_object;
    join(&[
        source.component.as_deref().unwrap_or(""),
        source.host.as_deref().unwrap_or(""),
        object.kind.as_deref().unwrap_or(""),
        object.namespace.as_deref().unwrap_or(""),
        object.name.as_deref().unwrap_or(""),
        object.uid.as_deref().unwrap_or(""),
        object.api_version.as_deref().unwrap_or(""),
    ])
}

/// Source, object, type and reason (client-go's `EventAggregatorByReasonFunc`).
fn similar_key(event: &Event) -> String {
    join(&[
        &object_key(event),
        event.type_.as_deref().unwrap_or(""),
        event.reason.as_deref().unwrap_or(""),
        event.reporting_component.as_deref().unwrap_or(""),
        event.reporting_instance.as_deref().unwrap_or(""),
    ])
}

/// Everything that makes two events the same one (client-go's `getEventKey`).
fn event_key(event: &Event) -> String {
    join(&[
        &object_key(event),
        event.involved_object.field_path.as_deref().unwrap_or(""),
        event.type_.as_deref().unwrap_or(""),
        event.reason.as_deref().unwrap_or(""),
        event.message.as_deref().unwrap_or(""),
    ])
}

impl Correlator {
    /// What to write for `event` (made now, named and stamped), or nothing when the spam
    /// filter holds it back.
    pub fn correlate(&mut self, mut event: Event, now: Instant) -> Option<Write> {
        let key = self.aggregate(&mut event, now);
        let write = self.observe(event, key);
        let spam_key = match &write {
            Write::Create(e) | Write::Patch(e) => object_key(e),
        };
        let bucket = self.spam.entry(spam_key, || Bucket::full(now));
        bucket.try_take(now).then_some(write)
    }

    /// Turns `event` into the aggregate when it is one similar event too many; the key it is
    /// counted under.
    fn aggregate(&mut self, event: &mut Event, now: Instant) -> String {
        let key = similar_key(event);
        let message = event.message.clone().unwrap_or_default();
        let similar = self.similar.entry(key.clone(), || Similar {
            messages: HashSet::new(),
            last: now,
        });
        if now.duration_since(similar.last) > AGGREGATE_INTERVAL {
            similar.messages.clear();
        }
        similar.last = now;
        similar.messages.insert(message.clone());
        if similar.messages.len() < AGGREGATE_AFTER {
            return event_key(event);
        }
        // Kept one short of the threshold, so that every further new message aggregates
        // while a message seen before may still count on its own (as client-go does).
        if let Some(any) = similar.messages.iter().next().cloned() {
            similar.messages.remove(&any);
        }
        event.message = Some(format!("{AGGREGATE_PREFIX}{message}"));
        key
    }

    /// Counts `event` under `key`: a create the first time, a patch of the same Event after.
    fn observe(&mut self, mut event: Event, key: String) -> Write {
        let made = Logged {
            count: 0,
            name: event.metadata.name.clone().unwrap_or_default(),
            first_timestamp: event.first_timestamp.clone(),
        };
        let logged = self.logged.entry(key, || made);
        logged.count += 1;
        event.count = Some(logged.count);
        if logged.count == 1 {
            return Write::Create(event);
        }
        event.metadata.name = Some(logged.name.clone());
        event.first_timestamp = logged.first_timestamp.clone();
        Write::Patch(event)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EventSource, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    /// A `SuccessfulCreate` about ReplicaSet `rs`, as a recorder makes it.
    fn created(rs: &str, pod: &str) -> Event {
        let now = Timestamp::now();
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{rs}.{:x}", now.as_nanosecond())),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("ReplicaSet".into()),
                name: Some(rs.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{rs}")),
                ..ObjectReference::default()
            },
            reason: Some("SuccessfulCreate".into()),
            message: Some(format!("Created pod: {pod}")),
            type_: Some("Normal".into()),
            source: Some(EventSource {
                component: Some("replicaset-controller".into()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            ..Event::default()
        }
    }

    fn name_of(write: &Write) -> String {
        match write {
            Write::Create(e) | Write::Patch(e) => e.metadata.name.clone().unwrap(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_creates_becomes_one_counted_event_then_stops() {
        let mut c = Correlator::default();
        let writes: Vec<Option<Write>> = (0..40)
            .map(|i| c.correlate(created("web", &format!("web-{i}")), Instant::now()))
            .collect();
        // Nine events of their own, as they were.
        for (i, write) in writes[..9].iter().enumerate() {
            let Some(Write::Create(e)) = write else {
                panic!("event {i}: {write:?}");
            };
            assert_eq!(
                e.message.as_deref(),
                Some(format!("Created pod: web-{i}").as_str())
            );
            assert_eq!(e.count, Some(1));
        }
        // The tenth distinct message makes the aggregate...
        let Some(Write::Create(aggregate)) = &writes[9] else {
            panic!("{:?}", writes[9]);
        };
        assert_eq!(
            aggregate.message.as_deref(),
            Some("(combined from similar events): Created pod: web-9")
        );
        let name = aggregate.metadata.name.clone().unwrap();
        // ...which the next ones patch, counting up, until 25 writes in all.
        for (i, write) in writes[10..25].iter().enumerate() {
            let Some(Write::Patch(e)) = write else {
                panic!("event {}: {write:?}", i + 10);
            };
            assert_eq!(e.metadata.name.as_deref(), Some(name.as_str()));
            assert_eq!(e.count, Some(i as i32 + 2));
            assert_eq!(e.first_timestamp, aggregate.first_timestamp);
            assert_eq!(
                e.message.as_deref(),
                Some(
                    format!(
                        "(combined from similar events): Created pod: web-{}",
                        i + 10
                    )
                    .as_str()
                )
            );
        }
        assert!(
            writes[25..].iter().all(Option::is_none),
            "{:?}",
            &writes[25..]
        );

        // Another object has its own budget.
        assert!(matches!(
            c.correlate(created("api", "api-0"), Instant::now()),
            Some(Write::Create(_))
        ));
        // Five minutes later one more write is allowed; its count has every occurrence.
        tokio::time::advance(SPAM_REFILL).await;
        let Some(Write::Patch(later)) = c.correlate(created("web", "web-40"), Instant::now())
        else {
            panic!("no write after the refill");
        };
        assert_eq!(later.metadata.name.as_deref(), Some(name.as_str()));
        assert_eq!(later.count, Some(32));
        assert!(c
            .correlate(created("web", "web-41"), Instant::now())
            .is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_identical_event_patches_the_first_ones_count() {
        let mut c = Correlator::default();
        let first = c
            .correlate(created("web", "web-0"), Instant::now())
            .unwrap();
        assert!(matches!(first, Write::Create(_)));
        tokio::time::advance(Duration::from_secs(1)).await;
        let Some(Write::Patch(again)) = c.correlate(created("web", "web-0"), Instant::now()) else {
            panic!("not a patch");
        };
        assert_eq!(name_of(&Write::Patch(again.clone())), name_of(&first));
        assert_eq!(again.count, Some(2));
        assert_eq!(again.message.as_deref(), Some("Created pod: web-0"));
    }

    #[tokio::test(start_paused = true)]
    async fn similar_events_are_forgotten_after_ten_minutes() {
        let mut c = Correlator::default();
        for i in 0..9 {
            c.correlate(created("web", &format!("web-{i}")), Instant::now());
        }
        tokio::time::advance(AGGREGATE_INTERVAL + Duration::from_secs(1)).await;
        let Some(Write::Create(e)) = c.correlate(created("web", "web-9"), Instant::now()) else {
            panic!("not a create");
        };
        assert_eq!(e.message.as_deref(), Some("Created pod: web-9"));
    }

    #[test]
    fn the_caches_stay_bounded() {
        let mut cache: Bounded<u32> = Bounded::default();
        for i in 0..3 * CACHE_ENTRIES {
            *cache.entry(format!("k{i}"), || 0) += 1;
            // The first key stays in use, so it is never the one dropped.
            *cache.entry("k0".into(), || 0) += 1;
        }
        assert!(cache.entries.len() <= CACHE_ENTRIES);
        assert!(cache.get("k0").is_some());
        assert!(cache.get(&format!("k{}", 3 * CACHE_ENTRIES - 1)).is_some());
    }
}
