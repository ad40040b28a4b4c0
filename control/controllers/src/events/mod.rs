//! An event recorder writing core/v1 Events, the ones `kubectl describe` and
//! `kubectl get events` read (`kube::runtime::events` writes events.k8s.io/v1, which keel
//! stores apart).
//!
//! Events pass through client-go's correlator first (see [`correlator`]): a burst of similar
//! events about one object becomes one Event with a count, patched, and a spam filter bounds
//! what one object costs the API server. One task per recorder writes them in order (a patch
//! must follow the create of its Event). Recording never fails a reconcile: an event that
//! cannot be written (the namespace is going away, the server is busy) is logged and dropped,
//! as client-go's broadcaster drops them after its retries.

pub mod correlator;

use std::sync::{Arc, Mutex, OnceLock};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Resource;
use tokio::sync::mpsc;

use crate::error::is_not_found;
use correlator::{Correlator, Write};

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Something went as intended.
    Normal,
    /// Something failed or looks wrong.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Records Events about objects for one component (`replicaset-controller`, ...). Clones
/// share one correlator and one writer.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: &'static str,
    instance: String,
    shared: Arc<Shared>,
}

/// What the clones of one recorder share.
struct Shared {
    correlator: Mutex<Correlator>,
    /// The writer task's queue, started with the first event (inside a runtime).
    writer: OnceLock<mpsc::UnboundedSender<Write>>,
}

impl Recorder {
    /// A recorder for `component`, run by `instance` (the leader's identity).
    pub fn new(client: kube::Client, component: &'static str, instance: &str) -> Recorder {
        Recorder {
            client,
            component,
            instance: instance.to_owned(),
            shared: Arc::new(Shared {
                correlator: Mutex::new(Correlator::default()),
                writer: OnceLock::new(),
            }),
        }
    }

    /// Records an event about `object` without waiting for it to be written.
    pub fn record<K>(&self, object: &K, kind: EventType, reason: &str, message: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = self.event(object, kind, reason, message);
        let write = self
            .shared
            .correlator
            .lock()
            .expect("event correlator")
            .correlate(event, tokio::time::Instant::now());
        let Some(write) = write else {
            return;
        };
        let writer = self.shared.writer.get_or_init(|| {
            let (queue, writes) = mpsc::unbounded_channel();
            tokio::spawn(write_events(self.client.clone(), writes));
            queue
        });
        // The writer only stops once every recorder clone is gone.
        let _ = writer.send(write);
    }

    /// The Event `record` writes before correlation.
    pub fn event<K>(&self, object: &K, kind: EventType, reason: &str, message: String) -> Event
    where
        K: Resource<DynamicType = ()>,
    {
        let meta = object.meta();
        let now = Timestamp::now();
        let name = meta.name.clone().unwrap_or_default();
        Event {
            metadata: ObjectMeta {
                // client-go's name: the object's name and the time in nanoseconds, in hex.
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(meta.namespace.clone().unwrap_or_else(|| "default".into())),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                name: Some(name),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_owned()),
            message: Some(message),
            type_: Some(kind.as_str().to_owned()),
            source: Some(EventSource {
                component: Some(self.component.to_owned()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            event_time: None::<MicroTime>,
            reporting_component: Some(self.component.to_owned()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

/// Writes the correlated events one after another until every recorder clone is dropped.
async fn write_events(client: kube::Client, mut writes: mpsc::UnboundedReceiver<Write>) {
    while let Some(write) = writes.recv().await {
        if let Err(e) = write_event(&client, write).await {
            tracing::debug!(error = %e, "event dropped");
        }
    }
}

/// One write: a create, or a patch of the count (a create again if the Event is gone, as
/// events expire after an hour).
async fn write_event(client: &kube::Client, write: Write) -> Result<(), kube::Error> {
    let (event, patch) = match write {
        Write::Create(event) => (event, false),
        Write::Patch(event) => (event, true),
    };
    let namespace = event
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if patch {
        let name = event.metadata.name.clone().unwrap_or_default();
        let body = serde_json::json!({
            "count": event.count,
            "lastTimestamp": event.last_timestamp,
            "message": event.message,
        });
        match events
            .patch(&name, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    events
        .create(&PostParams::default(), &event)
        .await
        .map(|_| ())
}
