//! The Endpoints and EndpointSlice controllers (kube-controller-manager's `endpoint` and
//! `endpointslice`): every Service with a selector gets EndpointSlices and an Endpoints
//! object listing the pods it selects.
//!
//! ```text
//! Service events ─┐                       ┌─▶ slices::sync   (EndpointSlices, ≤100 each)
//! Pod events ─────┼─▶ service keys ─▶ reconcile(key) ─┤
//! resync tick ────┘   (deduplicated)      └─▶ legacy::sync   (the Endpoints object)
//! ```
//!
//! A pod event triggers the Services of its namespace that select it now and those whose
//! endpoints listed it last time (so a pod relabelled away leaves). Each reconcile reads the
//! Service and pods from the informer caches and the Service's current slices and Endpoints
//! live from the API (so a slice written a moment ago is never made twice), computes what
//! they should be ([`desired`]) and writes only what differs. A Service that is gone has its
//! slices and Endpoints deleted. Services without a selector are left alone (their users
//! manage their Endpoints), and so is `default/kubernetes` (the API server's own).

pub mod desired;
mod legacy;
mod slices;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::events::{EventType, Recorder};

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// The label kube puts on the endpoints of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// When the change that led to the last write happened.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// kube's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// A Service's namespace and name.
pub type Key = (String, String);

/// What the controllers share.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every Service.
    pub services: Store<Service>,
    /// Every pod.
    pub pods: Store<Pod>,
    /// Events of the Endpoints controller (`endpoint-controller`).
    pub endpoints_recorder: Recorder,
    /// Events of the EndpointSlice controller (`endpoint-slice-controller`).
    pub slices_recorder: Recorder,
    /// The safety-net resync of every Service.
    pub resync: Duration,
    /// Endpoints per slice.
    pub max_endpoints_per_slice: usize,
    /// The pods each Service's endpoints listed at its last reconcile.
    listed: Mutex<HashMap<Key, HashSet<String>>>,
}

impl Context {
    /// A context; `listed` starts empty.
    pub fn new(
        client: kube::Client,
        services: Store<Service>,
        pods: Store<Pod>,
        identity: &str,
        resync: Duration,
    ) -> Context {
        Context {
            endpoints_recorder: Recorder::new(client.clone(), "endpoint-controller", identity),
            slices_recorder: Recorder::new(client.clone(), "endpoint-slice-controller", identity),
            client,
            services,
            pods,
            resync,
            max_endpoints_per_slice: MAX_ENDPOINTS_PER_SLICE,
            listed: Mutex::new(HashMap::new()),
        }
    }
}

/// Runs both controllers until the future is dropped.
pub async fn run(
    ctx: Arc<Context>,
    services: impl Stream<Item = Result<Service, watcher::Error>> + Send + 'static,
    pods: impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
) {
    let (queue, mut keys) = mpsc::unbounded_channel::<Key>();
    for key in startup_keys(&ctx).await {
        let _ = queue.send(key);
    }
    let service_keys = services.filter_map(|s| async move {
        s.ok()
            .map(|s| (s.namespace().unwrap_or_default(), s.name_any()))
    });
    let pod_ctx = Arc::clone(&ctx);
    let pod_keys = pods
        .filter_map(|p| futures::future::ready(p.ok()))
        .flat_map(move |pod| futures::stream::iter(services_of(&pod_ctx, &pod)));
    let resync_ctx = Arc::clone(&ctx);
    let resync = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + ctx.resync,
        ctx.resync,
    ))
    .flat_map(move |_| futures::stream::iter(all_services(&resync_ctx)));
    let feeder = queue.clone();
    let feed = async move {
        let mut triggers = std::pin::pin!(futures::stream::select(
            service_keys,
            futures::stream::select(pod_keys, resync)
        ));
        while let Some(key) = triggers.next().await {
            let _ = feeder.send(key);
        }
    };
    let work = async move {
        while let Some(first) = keys.recv().await {
            // Everything queued meanwhile is handled once.
            let mut batch = BTreeSet::from([first]);
            while let Ok(key) = keys.try_recv() {
                batch.insert(key);
            }
            for key in batch {
                if let Err(e) = reconcile(&ctx, &key).await {
                    tracing::debug!(service = ?key, error = %e, "endpoints reconcile failed; retrying");
                    let queue = queue.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let _ = queue.send(key);
                    });
                }
            }
        }
    };
    tokio::join!(feed, work);
}

/// Every cached Service, and the Services of every slice this controller manages (so the
/// slices of a Service deleted while no controller ran go too).
async fn startup_keys(ctx: &Context) -> BTreeSet<Key> {
    let mut keys: BTreeSet<Key> = all_services(ctx).into_iter().collect();
    let slices: Api<EndpointSlice> = Api::all(ctx.client.clone());
    let managed = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    match slices.list(&managed).await {
        Ok(list) => {
            keys.extend(list.items.iter().filter_map(|s| {
                Some((s.namespace()?, s.labels().get(SERVICE_NAME_LABEL)?.clone()))
            }))
        }
        Err(e) => tracing::warn!(error = %e, "listing endpoint slices at startup"),
    }
    keys
}

fn all_services(ctx: &Context) -> Vec<Key> {
    ctx.services
        .state()
        .iter()
        .map(|s| (s.namespace().unwrap_or_default(), s.name_any()))
        .collect()
}

/// The Services a pod event concerns: those selecting it, and those that listed it.
fn services_of(ctx: &Context, pod: &Pod) -> Vec<Key> {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let mut keys: BTreeSet<Key> = ctx
        .services
        .state()
        .iter()
        .filter(|s| s.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|s| {
            desired::selector(s)
                .is_some_and(|sel| desired::selects(sel, pod.metadata.labels.as_ref()))
        })
        .map(|s| (namespace.clone(), s.name_any()))
        .collect();
    let listed = ctx.listed.lock().unwrap_or_else(|e| e.into_inner());
    keys.extend(
        listed
            .iter()
            .filter(|((ns, _), pods)| *ns == namespace && pods.contains(&name))
            .map(|(key, _)| key.clone()),
    );
    keys.into_iter().collect()
}

/// Brings one Service's slices and Endpoints in line with its pods (or removes them).
async fn reconcile(ctx: &Context, key: &Key) -> Result<()> {
    let (namespace, name) = key;
    if namespace == "default" && name == "kubernetes" {
        return Ok(());
    }
    let service = ctx.services.get(&ObjectRef::new(name).within(namespace));
    let Some(service) = service.filter(|s| s.metadata.deletion_timestamp.is_none()) else {
        ctx.listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        slices::delete_all(ctx, namespace, name).await?;
        return legacy::delete(ctx, namespace, name).await;
    };
    if desired::selector(&service).is_none() {
        return Ok(());
    }
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .collect();
    let groups = desired::grouped(&service, &pods);
    let listed: HashSet<String> = groups
        .values()
        .flatten()
        .map(|e| e.name().to_owned())
        .collect();
    ctx.listed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone(), listed);

    let slice_result = slices::sync(ctx, &service, &groups).await;
    if let Err(e) = &slice_result {
        ctx.slices_recorder.record(
            service.as_ref(),
            EventType::Warning,
            "FailedToUpdateEndpointSlices",
            format!("Error updating Endpoint Slices for Service {namespace}/{name}: {e}"),
        );
    }
    let legacy_result = legacy::sync(ctx, &service, &groups).await;
    if let Err(e) = &legacy_result {
        ctx.endpoints_recorder.record(
            service.as_ref(),
            EventType::Warning,
            "FailedToUpdateEndpoint",
            format!("Failed to update endpoint {namespace}/{name}: {e}"),
        );
    }
    slice_result.and(legacy_result)
}

/// The labels kube gives a Service's endpoints: the Service's own, and the headless mark.
fn labels_of(service: &Service) -> std::collections::BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    let headless = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
    if headless {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

/// The trigger-time annotation's value for a write now (RFC 3339, as kube writes it).
fn trigger_time() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}
