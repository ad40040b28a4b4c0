//! An event recorder writing core/v1 Events, the ones `kubectl describe` and
//! `kubectl get events` read (`kube::runtime::events` writes events.k8s.io/v1, which keel
//! stores apart). Recording never fails a reconcile: an event that cannot be written (the
//! namespace is going away, the server is busy) is logged and dropped, as client-go's
//! broadcaster drops them.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Resource;

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

/// Records Events about objects for one component (`replicaset-controller`, ...).
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: &'static str,
    instance: String,
}

impl Recorder {
    /// A recorder for `component`, run by `instance` (the leader's identity).
    pub fn new(client: kube::Client, component: &'static str, instance: &str) -> Recorder {
        Recorder {
            client,
            component,
            instance: instance.to_owned(),
        }
    }

    /// Records an event about `object` without waiting for it to be written.
    pub fn record<K>(&self, object: &K, kind: EventType, reason: &str, message: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = self.event(object, kind, reason, message);
        let namespace = event
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        tokio::spawn(async move {
            if let Err(e) = events.create(&PostParams::default(), &event).await {
                tracing::debug!(reason = ?event.reason, error = %e, "event dropped");
            }
        });
    }

    /// The Event `record` writes.
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
