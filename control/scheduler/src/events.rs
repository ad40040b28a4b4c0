//! Events about pods, as kube-scheduler records them: `FailedScheduling` (Warning, action
//! `Scheduling`) with the scheduling failure's message, `Scheduled` (Normal, action
//! `Binding`) with `Successfully assigned NS/NAME to NODE`. Written as core/v1 Events
//! reported by the scheduler's name (`reportingComponent: default-scheduler`); a repeat of
//! the same event for the same pod bumps the first one's `count` instead of adding another.
//!
//! Writes happen in the background, as client-go's broadcaster does them: recording an event
//! decides what to write (a new Event or a repeat's count) and queues the write, so a binding
//! never waits for its `Scheduled` event. At most [`MAX_WRITES_IN_FLIGHT`] writes run at
//! once and at most [`MAX_QUEUED_EVENTS`] wait; past that, events are dropped (client-go's
//! `maxQueuedEvents`), because an event is worth less than the scheduling it reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::error::{Error, Result};

/// The longest message an event carries (`validation.NoteLengthLimit`).
pub const NOTE_LENGTH_LIMIT: usize = 1024;
/// The longest `reportingInstance`.
const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
/// Event writes sent to the API server at once.
pub const MAX_WRITES_IN_FLIGHT: usize = 16;
/// Event writes waiting for their turn at most (client-go's `maxQueuedEvents`).
pub const MAX_QUEUED_EVENTS: usize = 1000;

/// `truncateMessage`: at most [`NOTE_LENGTH_LIMIT`] bytes, ending in ` ...` when cut.
pub fn truncate_message(message: &str) -> String {
    if message.len() <= NOTE_LENGTH_LIMIT {
        return message.to_owned();
    }
    let mut end = NOTE_LENGTH_LIMIT - " ...".len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &message[..end])
}

/// An event that was written, to count its repeats.
#[derive(Debug)]
struct Recorded {
    namespace: String,
    name: String,
    count: i32,
}

/// The events written about one pod, by (reason, message).
type PodEvents = HashMap<(String, String), Recorded>;

/// Writes events as one scheduler instance.
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    instance: String,
    /// By pod uid, so that forgetting a pod (once per bound pod) costs one removal, not a
    /// walk over every pod's events.
    recorded: Mutex<HashMap<String, PodEvents>>,
    /// Turns to send a write.
    writers: Arc<Semaphore>,
    /// Writes queued or in flight.
    pending: Arc<AtomicUsize>,
}

/// One write to the API server.
enum Write {
    /// A new Event.
    Create(Box<Event>),
    /// A repeat: the recorded Event's count and last timestamp; a new Event if it is gone.
    Repeat {
        namespace: String,
        name: String,
        count: i32,
        event: Box<Event>,
    },
}

impl EventRecorder {
    /// Events reported by `component` (the scheduler name) from `instance`.
    pub fn new(client: kube::Client, component: &str, instance: &str) -> EventRecorder {
        let mut instance = format!("{component}-{instance}");
        while instance.len() > REPORTING_INSTANCE_LENGTH_LIMIT {
            instance.pop();
        }
        EventRecorder {
            client,
            component: component.to_owned(),
            instance,
            recorded: Mutex::new(HashMap::new()),
            writers: Arc::new(Semaphore::new(MAX_WRITES_IN_FLIGHT)),
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The Event to create for `pod`.
    pub fn event(
        &self,
        pod: &Pod,
        type_: &str,
        reason: &str,
        action: &str,
        message: &str,
    ) -> Event {
        let now = Timestamp::now();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name),
                namespace: Some(namespace),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(truncate_message(message)),
            type_: Some(type_.into()),
            action: Some(action.into()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            event_time: Some(MicroTime(now)),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            ..Event::default()
        }
    }

    /// Records an event about `pod`; the same one again bumps its count. The write happens in
    /// the background (a runtime must be running); a failed one is logged.
    pub fn record(&self, pod: &Pod, type_: &str, reason: &str, action: &str, message: &str) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = (reason.to_owned(), message.to_owned());
        let event = Box::new(self.event(pod, type_, reason, action, message));
        let write = {
            let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            let events = recorded.entry(uid).or_default();
            match events.get_mut(&key) {
                Some(repeat) => {
                    repeat.count += 1;
                    Write::Repeat {
                        namespace: repeat.namespace.clone(),
                        name: repeat.name.clone(),
                        count: repeat.count,
                        event,
                    }
                }
                None => {
                    // Counted from now on: a repeat recorded before this write lands patches
                    // it, or (if it did not land) writes its own.
                    events.insert(
                        key,
                        Recorded {
                            namespace: event.metadata.namespace.clone().unwrap_or_default(),
                            name: event.metadata.name.clone().unwrap_or_default(),
                            count: 1,
                        },
                    );
                    Write::Create(event)
                }
            }
        };
        self.send(write);
    }

    /// Queues `write`, or drops it when too many wait.
    fn send(&self, write: Write) {
        if self.pending.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_EVENTS {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!("event queue full: an event is dropped");
            return;
        }
        let client = self.client.clone();
        let writers = Arc::clone(&self.writers);
        let pending = Arc::clone(&self.pending);
        tokio::spawn(async move {
            let written = match writers.acquire().await {
                Ok(_turn) => write.run(client).await,
                Err(_) => Ok(()),
            };
            pending.fetch_sub(1, Ordering::Relaxed);
            if let Err(error) = written {
                tracing::debug!(%error, "could not record an event");
            }
        });
    }

    /// Writes queued or in flight.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Forgets the events of a pod that is gone or bound.
    pub fn forget(&self, uid: &str) {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }
}

impl Write {
    async fn run(self, client: kube::Client) -> Result<()> {
        let event = match self {
            Write::Create(event) => event,
            Write::Repeat {
                namespace,
                name,
                count,
                event,
            } => {
                let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
                let patch = json!({"count": count, "lastTimestamp": Time(Timestamp::now())});
                match events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => return Ok(()),
                    // Expired or deleted: write a new one.
                    Err(kube::Error::Api(status)) if status.code == 404 => event,
                    Err(e) => return Err(Error::api(format!("event {namespace}/{name}"), e)),
                }
            }
        };
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let events: Api<Event> = Api::namespaced(client, &namespace);
        events
            .create(&PostParams::default(), &event)
            .await
            .map(drop)
            .map_err(|e| {
                let name = event.metadata.name.as_deref().unwrap_or_default();
                Error::api(format!("event {namespace}/{name}"), e)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;
    use serde_json::Value;
    use std::time::Duration;

    /// What the in-memory API server saw, and the gate its answers wait behind.
    struct Server {
        /// (method, path, body) of every request answered.
        answered: Mutex<Vec<(String, String, Value)>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
        gate: tokio::sync::Semaphore,
    }

    /// A client whose API server holds each request until `gate` gives it a permit, then
    /// answers as if it stored it.
    fn api() -> (kube::Client, Arc<Server>) {
        use http_body_util::BodyExt as _;
        let server = Arc::new(Server {
            answered: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            gate: tokio::sync::Semaphore::new(0),
        });
        let seen = Arc::clone(&server);
        let service = tower::service_fn(move |request: hyper::Request<kube::client::Body>| {
            let server = Arc::clone(&seen);
            async move {
                let now = server.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                server.most_in_flight.fetch_max(now, Ordering::SeqCst);
                server.gate.acquire().await.unwrap().forget();
                let method = request.method().to_string();
                let path = request.uri().path().to_owned();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let answer = json!({"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": "e", "namespace": "default"}});
                server.answered.lock().unwrap().push((method, path, body));
                server.in_flight.fetch_sub(1, Ordering::SeqCst);
                let response = hyper::Response::builder()
                    .status(201)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(
                        serde_json::to_vec(&answer).unwrap(),
                    ))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        (kube::Client::new(service, "default"), server)
    }

    /// Polls `done` until it holds, for at most 10 s.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn events_are_written_behind_the_caller_a_few_at_a_time() {
        let (client, server) = api();
        let recorder = EventRecorder::new(client, "default-scheduler", "m1");
        let pods: Vec<Pod> = (0..40).map(|i| pod(&format!("p{i}")).build()).collect();
        // The API server answers nothing yet: recording still returns at once.
        for pod in &pods {
            recorder.record(
                pod,
                "Normal",
                "Scheduled",
                "Binding",
                "Successfully assigned",
            );
        }
        assert_eq!(recorder.pending(), 40);
        until("writes in flight", || {
            server.in_flight.load(Ordering::SeqCst) == MAX_WRITES_IN_FLIGHT
        })
        .await;
        server.gate.add_permits(1000);
        until("every write answered", || recorder.pending() == 0).await;
        assert_eq!(
            server.most_in_flight.load(Ordering::SeqCst),
            MAX_WRITES_IN_FLIGHT
        );
        let answered = server.answered.lock().unwrap();
        assert_eq!(answered.len(), 40);
        assert!(answered.iter().all(|(method, path, body)| method == "POST"
            && path == "/api/v1/namespaces/default/events"
            && body["reason"] == "Scheduled"
            && body["count"] == 1));
    }

    #[tokio::test]
    async fn a_repeat_bumps_the_count_and_a_full_queue_drops_events() {
        let (client, server) = api();
        let recorder = EventRecorder::new(client, "default-scheduler", "m1");
        let web = pod("web").build();
        recorder.record(
            &web,
            "Warning",
            "FailedScheduling",
            "Scheduling",
            "0/1 nodes",
        );
        recorder.record(
            &web,
            "Warning",
            "FailedScheduling",
            "Scheduling",
            "0/1 nodes",
        );
        for i in 0..MAX_QUEUED_EVENTS {
            let other = pod(&format!("p{i}")).build();
            recorder.record(&other, "Normal", "Scheduled", "Binding", "assigned");
        }
        // Two for web and every other one but the last two found the queue full.
        assert_eq!(recorder.pending(), MAX_QUEUED_EVENTS);
        server.gate.add_permits(2 * MAX_QUEUED_EVENTS);
        until("every write answered", || recorder.pending() == 0).await;
        let answered = server.answered.lock().unwrap();
        assert_eq!(answered.len(), MAX_QUEUED_EVENTS);
        let about_web: Vec<_> = answered
            .iter()
            .filter(|(_, path, body)| {
                body["involvedObject"]["name"] == "web" || path.contains("/events/web.")
            })
            .collect();
        assert_eq!(about_web.len(), 2);
        let patch = about_web.iter().find(|(m, _, _)| m == "PATCH").unwrap();
        assert_eq!(patch.2["count"], 2);
    }

    #[test]
    fn long_messages_are_cut_as_kube_cuts_them() {
        assert_eq!(truncate_message("short"), "short");
        let long = "x".repeat(2000);
        let cut = truncate_message(&long);
        assert_eq!(cut.len(), NOTE_LENGTH_LIMIT);
        assert!(cut.ends_with("x ..."));
    }
}
