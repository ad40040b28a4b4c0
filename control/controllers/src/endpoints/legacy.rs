//! A Service's Endpoints object (core/v1, named after the Service): one subset per resolved
//! port set, ready pods under `addresses` and the others under `notReadyAddresses`, each
//! sorted by IP. Terminating pods are left out unless the Service publishes not-ready
//! addresses (then every pod is an address), as kube's endpoints controller does. Written
//! only when its subsets or labels differ.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt as _;

use super::desired::{self, PodEndpoint, ResolvedPort};
use super::{labels_of, trigger_time, Context, TRIGGER_TIME_ANNOTATION};
use crate::error::{is_not_found, Result};

fn address(endpoint: &PodEndpoint) -> EndpointAddress {
    let pod = &endpoint.pod.metadata;
    EndpointAddress {
        ip: endpoint.ip.clone(),
        hostname: endpoint.hostname.clone(),
        node_name: endpoint.node_name.clone(),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            ..ObjectReference::default()
        }),
    }
}

/// The subsets `groups` give.
pub fn subsets(
    service: &Service,
    groups: &BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>>,
) -> Vec<EndpointSubset> {
    let publish = desired::publishes_not_ready(service);
    let mut subsets = Vec::new();
    for (ports, endpoints) in groups {
        let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
        for endpoint in endpoints {
            if publish || (endpoint.serving && !endpoint.terminating) {
                ready.push(address(endpoint));
            } else if !endpoint.terminating {
                not_ready.push(address(endpoint));
            }
        }
        if ready.is_empty() && not_ready.is_empty() {
            continue;
        }
        ready.sort_by(|a, b| a.ip.cmp(&b.ip));
        not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
        let ports: Vec<EndpointPort> = ports
            .iter()
            .map(|p| EndpointPort {
                name: Some(p.name.clone()).filter(|n| !n.is_empty()),
                port: p.port,
                protocol: Some(p.protocol.clone()),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        subsets.push(EndpointSubset {
            addresses: Some(ready).filter(|a| !a.is_empty()),
            not_ready_addresses: Some(not_ready).filter(|a| !a.is_empty()),
            ports: Some(ports).filter(|p| !p.is_empty()),
        });
    }
    subsets
}

/// Makes the Service's Endpoints hold `groups`.
pub async fn sync(
    ctx: &Context,
    service: &Service,
    groups: &BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>>,
) -> Result<()> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
    let subsets = subsets(service, groups);
    let labels = labels_of(service);
    let current = api.get_opt(&name).await?;
    let Some(mut endpoints) = current else {
        let endpoints = Endpoints {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                labels: Some(labels).filter(|l| !l.is_empty()),
                annotations: Some(BTreeMap::from([(
                    TRIGGER_TIME_ANNOTATION.into(),
                    trigger_time(),
                )])),
                ..ObjectMeta::default()
            },
            subsets: Some(subsets).filter(|s| !s.is_empty()),
        };
        api.create(&PostParams::default(), &endpoints).await?;
        tracing::info!(%namespace, service = %name, "endpoints created");
        return Ok(());
    };
    let unchanged = endpoints.subsets.as_deref().unwrap_or_default() == subsets.as_slice()
        && endpoints.metadata.labels.clone().unwrap_or_default() == labels;
    if unchanged {
        return Ok(());
    }
    endpoints.subsets = Some(subsets).filter(|s| !s.is_empty());
    endpoints.metadata.labels = Some(labels).filter(|l| !l.is_empty());
    endpoints
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(TRIGGER_TIME_ANNOTATION.into(), trigger_time());
    api.replace(&name, &PostParams::default(), &endpoints)
        .await?;
    Ok(())
}

/// Deletes the Endpoints of a Service that is gone.
pub async fn delete(ctx: &Context, namespace: &str, name: &str) -> Result<()> {
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
