//! Events about pods, as kube-scheduler records them: `FailedScheduling` (Warning, action
//! `Scheduling`) with the scheduling failure's message, `Scheduled` (Normal, action
//! `Binding`) with `Successfully assigned NS/NAME to NODE`. Written as core/v1 Events
//! reported by the scheduler's name (`reportingComponent: default-scheduler`); a repeat of
//! the same event for the same pod bumps the first one's `count` instead of adding another.

use std::collections::HashMap;
use std::sync::Mutex;

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

    /// Records an event about `pod`; the same one again bumps its count.
    pub async fn record(
        &self,
        pod: &Pod,
        type_: &str,
        reason: &str,
        action: &str,
        message: &str,
    ) -> Result<()> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = (reason.to_owned(), message.to_owned());
        let repeat = {
            let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            recorded
                .get_mut(&uid)
                .and_then(|events| events.get_mut(&key))
                .map(|r| {
                    r.count += 1;
                    (r.namespace.clone(), r.name.clone(), r.count)
                })
        };
        if let Some((namespace, name, count)) = repeat {
            let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let patch = json!({"count": count, "lastTimestamp": Time(Timestamp::now())});
            match events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Expired or deleted: write a new one.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(Error::api(format!("event {namespace}/{name}"), e)),
            }
        }
        let event = self.event(pod, type_, reason, action, message);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let name = event.metadata.name.clone().unwrap_or_default();
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        events
            .create(&PostParams::default(), &event)
            .await
            .map_err(|e| Error::api(format!("event {namespace}/{name}"), e))?;
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(uid)
            .or_default()
            .insert(
                key,
                Recorded {
                    namespace,
                    name,
                    count: 1,
                },
            );
        Ok(())
    }

    /// Forgets the events of a pod that is gone or bound.
    pub fn forget(&self, uid: &str) {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_as_kube_cuts_them() {
        assert_eq!(truncate_message("short"), "short");
        let long = "x".repeat(2000);
        let cut = truncate_message(&long);
        assert_eq!(cut.len(), NOTE_LENGTH_LIMIT);
        assert!(cut.ends_with("x ..."));
    }
}
