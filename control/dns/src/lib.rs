//! keel-dns: the cluster's DNS, as kube-dns/CoreDNS serve it, from Services and EndpointSlices
//! watched through the Kubernetes API with the `kube` crate (no keel crate: it is an outside
//! program of the API, like the scheduler and controllers).
//!
//! # Layout
//!
//! - [`records`]: which records a name answers, from the watched objects.
//! - [`server`]: DNS over UDP and TCP (hickory-proto for the wire format), the forwarding hook.
//!
//! [`run`] puts them together: two reflectors (Services, EndpointSlices) feeding the resolver,
//! and the listeners, until a shutdown future resolves.

pub mod records;
pub mod server;

use std::future::Future;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{reflector, watcher, WatchStreamExt};

pub use records::{Catalog, Resolution, Resolver};
pub use server::{DnsServer, Forwarder, Listeners};

/// The cluster domain kube clusters use.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Every record's TTL, seconds (CoreDNS's `kubernetes` plugin default).
pub const TTL_SECONDS: u32 = 5;

/// Watches Services and EndpointSlices through `client`: the catalog, and the task keeping it
/// (it retries with backoff when the API server is away, and ends when aborted).
pub fn watch(client: kube::Client) -> (Catalog, tokio::task::JoinHandle<()>) {
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let service_stream = reflector(
        services_writer,
        watcher(
            kube::Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .for_each(|event| async move {
        if let Err(e) = event {
            tracing::debug!("dns: services watch: {e}");
        }
    });
    let slice_stream = reflector(
        slices_writer,
        watcher(
            kube::Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .for_each(|event| async move {
        if let Err(e) = event {
            tracing::debug!("dns: endpointslices watch: {e}");
        }
    });
    let task = tokio::spawn(async move {
        futures::join!(service_stream, slice_stream);
    });
    (Catalog { services, slices }, task)
}

/// Serves the cluster DNS on `listeners` from `client`'s view of the cluster until `shutdown`.
pub async fn run(client: kube::Client, listeners: Listeners, shutdown: impl Future<Output = ()>) {
    let (catalog, watching) = watch(client);
    let server = DnsServer {
        resolver: Resolver {
            catalog,
            domain: CLUSTER_DOMAIN.to_owned(),
            ttl: TTL_SECONDS,
        },
        forwarder: None,
    };
    let udp = tokio::spawn(server.clone().serve_udp(listeners.udp));
    let tcp = tokio::spawn(server.serve_tcp(listeners.tcp));
    shutdown.await;
    for task in [watching, udp, tcp] {
        task.abort();
        let _ = task.await;
    }
}
