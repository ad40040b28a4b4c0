//! Informers: a `kube::runtime::watcher` per resource, turned into add/update/delete changes
//! with the previous version of each object at hand, as client-go's informers hand their
//! event handlers `(old, new)`. A relist (first list, or after the watch expired) is diffed
//! against what was known, so objects deleted while the watch was down are reported too.
//!
//! Objects lose `metadata.managedFields` as they arrive (kube-scheduler's informers do the
//! same with their transform func): no plugin reads them, and they are most of a small
//! object's bytes, so the cache holds less and its clones cost less.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt as _;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// One change of a watched resource.
#[derive(Debug)]
pub enum Change<K> {
    /// Added (`old` none) or updated.
    Applied {
        /// The version before, if the object was known.
        old: Option<Arc<K>>,
        /// The version now.
        new: Arc<K>,
    },
    /// Deleted; the last version seen.
    Deleted(Arc<K>),
    /// A (re)list has been applied: the view is complete.
    Synced,
}

/// Records `new` and reports it as added or updated.
fn apply<K: Resource>(
    known: &mut HashMap<String, Arc<K>>,
    new: Arc<K>,
    handle: &mut impl FnMut(Change<K>),
) {
    let old = known.insert(key(&*new), Arc::clone(&new));
    match old {
        // The same name with another uid: the old object went, a new one came.
        Some(old) if old.meta().uid != new.meta().uid => {
            handle(Change::Deleted(old));
            handle(Change::Applied { old: None, new });
        }
        old => handle(Change::Applied { old, new }),
    }
}

fn key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or(""),
        object.meta().name.as_deref().unwrap_or("")
    )
}

/// Watches `api` with `config` for as long as the returned future runs, handing every change
/// to `handle`. Watch errors are retried with kube-runtime's default backoff.
pub async fn inform<K>(api: Api<K>, config: watcher::Config, mut handle: impl FnMut(Change<K>))
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut known: HashMap<String, Arc<K>> = HashMap::new();
    let mut relist: Option<HashMap<String, Arc<K>>> = None;
    let stream = watcher::watcher(api, config)
        .modify(|object: &mut K| object.meta_mut().managed_fields = None)
        .default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(object)) => apply(&mut known, Arc::new(object), &mut handle),
            Ok(Event::Delete(object)) => {
                let gone = known
                    .remove(&key(&object))
                    .unwrap_or_else(|| Arc::new(object));
                handle(Change::Deleted(gone));
            }
            Ok(Event::Init) => relist = Some(HashMap::new()),
            Ok(Event::InitApply(object)) => {
                relist
                    .get_or_insert_with(HashMap::new)
                    .insert(key(&object), Arc::new(object));
            }
            Ok(Event::InitDone) => {
                let listed = relist.take().unwrap_or_default();
                let gone: Vec<String> = known
                    .keys()
                    .filter(|k| !listed.contains_key(*k))
                    .cloned()
                    .collect();
                for k in gone {
                    if let Some(old) = known.remove(&k) {
                        handle(Change::Deleted(old));
                    }
                }
                for (_, object) in listed {
                    apply(&mut known, object, &mut handle);
                }
                handle(Change::Synced);
            }
            Err(error) => tracing::warn!(%error, "watch failed; retrying"),
        }
    }
}
