//! A Service's EndpointSlices: one family per resolved port set, at most
//! `max_endpoints_per_slice` endpoints each, in pod-name order; a Service selecting no pod
//! keeps one empty slice (kube's placeholder). The current slices are paired with the
//! wanted ones of the same ports, written only when their endpoints, ports, labels or owner
//! differ; the wanted ones left over are created (`generateName: <service>-`), the current
//! ones left over deleted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::ResourceExt as _;

use super::desired::{self, PodEndpoint, ResolvedPort};
use super::{
    labels_of, trigger_time, Context, MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL,
    TRIGGER_TIME_ANNOTATION,
};
use crate::error::{is_not_found, Result};
use crate::ownership::controller_reference;

/// The slices this controller manages for `namespace/service`.
async fn current(ctx: &Context, namespace: &str, service: &str) -> Result<Vec<EndpointSlice>> {
    let slices: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("{SERVICE_NAME_LABEL}={service},{MANAGED_BY_LABEL}={MANAGED_BY}");
    let mut items = slices
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    items.sort_by_key(|s| s.name_any());
    Ok(items)
}

/// Deletes every slice of a Service that is gone.
pub async fn delete_all(ctx: &Context, namespace: &str, service: &str) -> Result<()> {
    let slices: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), namespace);
    for slice in current(ctx, namespace, service).await? {
        match slices
            .delete(&slice.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {
                tracing::info!(%namespace, %service, slice = %slice.name_any(), "endpoint slice deleted")
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn slice_ports(ports: &[ResolvedPort]) -> Vec<EndpointPort> {
    ports
        .iter()
        .map(|p| EndpointPort {
            name: Some(p.name.clone()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

fn slice_endpoint(endpoint: &PodEndpoint, publish_not_ready: bool) -> Endpoint {
    let pod = &endpoint.pod.metadata;
    Endpoint {
        addresses: vec![endpoint.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(endpoint.ready(publish_not_ready)),
            serving: Some(endpoint.serving),
            terminating: Some(endpoint.terminating),
        }),
        hostname: endpoint.hostname.clone(),
        node_name: endpoint.node_name.clone(),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            ..ObjectReference::default()
        }),
        ..Endpoint::default()
    }
}

/// What one wanted slice holds.
struct Wanted {
    ports: Vec<EndpointPort>,
    endpoints: Vec<Endpoint>,
}

fn wanted(
    ctx: &Context,
    service: &Service,
    groups: &BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>>,
) -> Vec<Wanted> {
    let publish = desired::publishes_not_ready(service);
    let mut slices = Vec::new();
    for (ports, endpoints) in groups {
        for chunk in endpoints.chunks(ctx.max_endpoints_per_slice.max(1)) {
            slices.push(Wanted {
                ports: slice_ports(ports),
                endpoints: chunk.iter().map(|e| slice_endpoint(e, publish)).collect(),
            });
        }
    }
    if slices.is_empty() {
        slices.push(Wanted {
            ports: Vec::new(),
            endpoints: Vec::new(),
        });
    }
    slices
}

/// The slice's labels: the Service's, its name and the manager.
fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = labels_of(service);
    labels.insert(SERVICE_NAME_LABEL.into(), service.name_any());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

/// Makes the Service's slices hold `groups`.
pub async fn sync(
    ctx: &Context,
    service: &Service,
    groups: &BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>>,
) -> Result<()> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut existing = current(ctx, &namespace, &name).await?;
    let labels = slice_labels(service);
    let owner = controller_reference("v1", "Service", &service.metadata);
    for want in wanted(ctx, service, groups) {
        let same_ports = existing
            .iter()
            .position(|s| s.ports.as_deref().unwrap_or_default() == want.ports.as_slice());
        let Some(index) = same_ports else {
            let slice = EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(generate_name(&name)),
                    namespace: Some(namespace.clone()),
                    labels: Some(labels.clone()),
                    annotations: Some(BTreeMap::from([(
                        TRIGGER_TIME_ANNOTATION.into(),
                        trigger_time(),
                    )])),
                    owner_references: Some(vec![owner.clone()]),
                    ..ObjectMeta::default()
                },
                address_type: "IPv4".into(),
                endpoints: want.endpoints,
                ports: Some(want.ports),
            };
            let made = api.create(&PostParams::default(), &slice).await?;
            tracing::info!(%namespace, service = %name, slice = %made.name_any(), "endpoint slice created");
            continue;
        };
        let mut slice = existing.remove(index);
        let unchanged = slice.endpoints == want.endpoints
            && slice.metadata.labels.as_ref() == Some(&labels)
            && slice.metadata.owner_references.as_deref() == Some(std::slice::from_ref(&owner))
            && slice.address_type == "IPv4";
        if unchanged {
            continue;
        }
        slice.endpoints = want.endpoints;
        slice.metadata.labels = Some(labels.clone());
        slice.metadata.owner_references = Some(vec![owner.clone()]);
        slice
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(TRIGGER_TIME_ANNOTATION.into(), trigger_time());
        api.replace(&slice.name_any(), &PostParams::default(), &slice)
            .await?;
        tracing::debug!(%namespace, service = %name, slice = %slice.name_any(), "endpoint slice updated");
    }
    for stale in existing {
        match api
            .delete(&stale.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// kube's slice name prefix: the Service's name and a dash, cut to leave room for the
/// generated suffix.
fn generate_name(service: &str) -> String {
    let prefix: String = service.chars().take(57).collect();
    format!("{prefix}-")
}
