//! One watch per resource, shared: a watcher feeds a reflector cache (the store every
//! controller reads) and fans every changed object out to the controllers that asked to be
//! triggered by it. So pods are watched once, however many controllers care about them.
//!
//! The watcher relists when the server says the revision was compacted (410) and backs off
//! on errors; a relist's objects are handed on only once the cache has swapped them in, so a
//! triggered reconcile always finds its object in the store.
//!
//! Objects lose `metadata.managedFields` as they arrive, as kube-controller-manager's
//! informers' transform drops them: no controller reads them, and every write adds to them,
//! so they would be most of what the caches hold and every subscriber's copy clones.

use std::fmt::Debug;
use std::hash::Hash;

use futures::{Stream, StreamExt as _};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// A shared watch of one resource: its cache and its subscribers.
pub struct Informer<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    subscribers: Vec<mpsc::UnboundedSender<K>>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// An informer over `api` (usually `Api::all`).
    pub fn new(api: Api<K>) -> Informer<K> {
        Informer {
            api,
            writer: reflector::store::Writer::default(),
            subscribers: Vec::new(),
        }
    }

    /// The cache this informer fills.
    pub fn store(&self) -> Store<K> {
        self.writer.as_reader()
    }

    /// A stream of every object the watch adds, changes or deletes (deleted objects too, so
    /// their owners hear of it), for `Controller::for_stream` and `watches_stream`.
    pub fn subscribe(&mut self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers.push(sender);
        UnboundedReceiverStream::new(receiver).map(Ok)
    }

    /// Runs the watch until the task is dropped. `observe` sees every object added, changed
    /// or deleted once the cache shows it (the ReplicaSet controller's expectations use it):
    /// a relist's objects only when the relist is swapped in, so an expectation is never
    /// met by an object the cache does not hold yet.
    pub async fn run(self, observe: impl Fn(&K) + Send) {
        let Informer {
            api,
            mut writer,
            subscribers,
        } = self;
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|object: &mut K| object.meta_mut().managed_fields = None);
        let mut events = std::pin::pin!(events);
        let mut relisted: Vec<K> = Vec::new();
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                    continue;
                }
            };
            writer.apply_watcher_event(&event);
            let changed = match event {
                watcher::Event::Apply(object) | watcher::Event::Delete(object) => vec![object],
                watcher::Event::Init => {
                    relisted.clear();
                    continue;
                }
                watcher::Event::InitApply(object) => {
                    relisted.push(object);
                    continue;
                }
                watcher::Event::InitDone => std::mem::take(&mut relisted),
            };
            for object in changed {
                observe(&object);
                for subscriber in &subscribers {
                    // A subscriber that went away (its controller stopped) is simply skipped.
                    let _ = subscriber.send(object.clone());
                }
            }
        }
    }
}
