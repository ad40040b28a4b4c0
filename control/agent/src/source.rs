//! The one pod watch of an agent process, shared by all its nodes: `spec.nodeName=<node>`
//! for one node, `spec.nodeName!=` (every bound pod) for a hollow agent of many, each event
//! routed to the manager of the pod's node. So a thousand hollow nodes cost one watch, not a
//! thousand.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt as _;
use tokio::sync::mpsc;

use crate::pods::PodEvent;

/// Where each node's pod events go.
pub type Routes = HashMap<String, mpsc::UnboundedSender<PodEvent>>;

/// The field selector of the pods of `nodes`.
pub fn field_selector(nodes: &[String]) -> String {
    match nodes {
        [one] => format!("spec.nodeName={one}"),
        _ => "spec.nodeName!=".to_owned(),
    }
}

/// Watches pods (relisting on errors, with kube's backoff) and routes them until every route
/// is closed or the task is dropped.
pub async fn run(client: kube::Client, routes: Routes) {
    let nodes: Vec<String> = routes.keys().cloned().collect();
    let config = watcher::Config::default().fields(&field_selector(&nodes));
    let pods: Api<Pod> = Api::all(client);
    let mut stream = std::pin::pin!(watcher(pods, config).default_backoff());
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!("pod watch: {e}");
                continue;
            }
        };
        match event {
            Event::Init => broadcast(&routes, PodEvent::Relist),
            Event::InitDone => broadcast(&routes, PodEvent::RelistDone),
            Event::InitApply(pod) | Event::Apply(pod) => route(&routes, PodEvent::Apply, pod),
            Event::Delete(pod) => route(&routes, PodEvent::Delete, pod),
        }
        if routes.values().all(|r| r.is_closed()) {
            return;
        }
    }
}

fn broadcast(routes: &Routes, event: PodEvent) {
    for route in routes.values() {
        let _ = route.send(event.clone());
    }
}

fn route(routes: &Routes, make: fn(Arc<Pod>) -> PodEvent, pod: Pod) {
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    if let Some(route) = node.and_then(|n| routes.get(n)) {
        let _ = route.send(make(Arc::new(pod)));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_node_watches_its_own_pods_many_watch_every_bound_pod() {
        assert_eq!(super::field_selector(&["n1".into()]), "spec.nodeName=n1");
        assert_eq!(
            super::field_selector(&["a".into(), "b".into()]),
            "spec.nodeName!="
        );
    }
}
