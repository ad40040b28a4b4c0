//! The `kubernetes` service in `default` and its endpoints, as kube-apiserver's bootstrap
//! controller and lease endpoint reconciler keep them: every member creates the service if it
//! is missing (the range's first address, port 443), renews its own lease under
//! `/registry/masterleases/<ip>:<port>` each interval, and rewrites the `kubernetes` Endpoints
//! and EndpointSlices to list the members whose lease is live. A member that stops removes its
//! lease at once; one that dies drops out when its lease expires.
//!
//! keel dev's members share one IP on different ports, so members are grouped by port: one
//! Endpoints subset and one EndpointSlice per port (`kubernetes`, then `kubernetes-<port>`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::Result;
use crate::object::{self, Part};
use crate::request::Query;
use crate::rest::{Api, Call};
use crate::storage::{self, Written};
use crate::warning::Warnings;

/// Where members' leases live.
pub const LEASE_PREFIX: &str = "/registry/masterleases/";

/// How often a member renews its lease and how long one lives (kube's 10 s and 15 s).
#[derive(Clone, Copy, Debug)]
pub struct LeaseTimes {
    /// Between renewals.
    pub interval: Duration,
    /// How long after its last renewal a lease still counts.
    pub ttl: Duration,
}

impl Default for LeaseTimes {
    fn default() -> Self {
        LeaseTimes {
            interval: Duration::from_secs(10),
            ttl: Duration::from_secs(15),
        }
    }
}

/// A member's lease as stored.
fn lease_value(address: SocketAddr, now_ms: i64) -> Value {
    json!({"address": address.ip().to_string(), "port": address.port(), "renewTimeMillis": now_ms})
}

fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The live members, by port, from the stored leases.
fn live_members(leases: &[Value], ttl: Duration, now_ms: i64) -> BTreeMap<u16, Vec<String>> {
    let mut by_port: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for lease in leases {
        let renewed = lease["renewTimeMillis"].as_i64().unwrap_or(0);
        let (Some(ip), Some(port)) = (lease["address"].as_str(), lease["port"].as_u64()) else {
            continue;
        };
        if now_ms - renewed > ttl.as_millis() as i64 {
            continue;
        }
        if let Ok(port) = u16::try_from(port) {
            by_port.entry(port).or_default().push(ip.to_owned());
        }
    }
    for ips in by_port.values_mut() {
        ips.sort();
        ips.dedup();
    }
    by_port
}

fn slice_name(index: usize, port: u16) -> String {
    if index == 0 {
        "kubernetes".into()
    } else {
        format!("kubernetes-{port}")
    }
}

impl Api {
    /// Keeps the `kubernetes` service and its endpoints until `shutdown`, then removes this
    /// member's lease and rewrites the endpoints without it.
    pub async fn run_kubernetes_service(
        &self,
        advertise: SocketAddr,
        times: LeaseTimes,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        // A failed pass (the `default` namespace not made yet, no leader) is retried soon.
        let mut retry = Duration::from_millis(100);
        loop {
            let wait = match self
                .reconcile_kubernetes_service(advertise, times, true)
                .await
            {
                Ok(()) => times.interval,
                Err(e) => {
                    tracing::debug!("kubernetes service: {}", e.message);
                    retry = (retry * 2).min(times.interval);
                    retry
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        if let Err(e) = self
            .reconcile_kubernetes_service(advertise, times, false)
            .await
        {
            tracing::warn!("kubernetes service, removing this member: {}", e.message);
        }
    }

    /// One pass: the service, this member's lease (renewed, or removed when `alive` is false),
    /// and the endpoints of the live members.
    pub async fn reconcile_kubernetes_service(
        &self,
        advertise: SocketAddr,
        times: LeaseTimes,
        alive: bool,
    ) -> Result<()> {
        if alive {
            self.ensure_kubernetes_service(advertise.port()).await?;
        }
        let key = format!("{LEASE_PREFIX}{advertise}").into_bytes();
        let current = storage::get(&*self.storage, &key).await?;
        match (alive, current) {
            (true, None) => {
                let value = serde_json::to_vec(&lease_value(advertise, now_millis()))
                    .map_err(crate::ApiError::internal)?;
                self.storage.create(key, value).await?;
            }
            (true, Some(c)) => {
                let value = serde_json::to_vec(&lease_value(advertise, now_millis()))
                    .map_err(crate::ApiError::internal)?;
                self.storage.update(key, value, c.mod_revision).await?;
            }
            (false, Some(c)) => {
                self.storage.delete(key, c.mod_revision).await?;
            }
            (false, None) => {}
        }
        // Members write at once: one may write a set read before another's lease arrived,
        // after that one wrote the newer set. So each checks, after writing, that the set it
        // wrote is still the live one, and writes again if not: the last writer is current.
        let mut live = self.live_members(times).await?;
        for _ in 0..5 {
            self.write_kubernetes_endpoints(&live).await?;
            let now = self.live_members(times).await?;
            if now == live {
                break;
            }
            live = now;
        }
        Ok(())
    }

    async fn live_members(&self, times: LeaseTimes) -> Result<BTreeMap<u16, Vec<String>>> {
        let start = LEASE_PREFIX.as_bytes().to_vec();
        let end = storage::prefix_end(&start);
        let leases: Vec<Value> = self
            .storage
            .range(start, end, 0, 0)
            .await?
            .items
            .iter()
            .filter_map(|s| serde_json::from_slice(&s.value).ok())
            .collect();
        Ok(live_members(&leases, times.ttl, now_millis()))
    }

    async fn ensure_kubernetes_service(&self, port: u16) -> Result<()> {
        if object::read(&*self.storage, "/registry/services/default/kubernetes")
            .await?
            .is_some()
        {
            return Ok(());
        }
        let ip = self.services.network.api_service_ip().to_string();
        let body = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}});
        match self
            .internal_write("", "v1", "services", "", &body, false)
            .await
        {
            Ok(()) => {
                tracing::info!(%ip, "created the kubernetes service");
                Ok(())
            }
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn write_kubernetes_endpoints(&self, live: &BTreeMap<u16, Vec<String>>) -> Result<()> {
        let subsets: Vec<Value> = live
            .iter()
            .map(|(port, ips)| {
                json!({"addresses": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(),
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})
            })
            .collect();
        let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": subsets});
        self.put_if_changed("", "v1", "endpoints", endpoints, |o| o["subsets"].clone())
            .await?;
        let mut wanted = Vec::new();
        for (index, (port, ips)) in live.iter().enumerate() {
            let name = slice_name(index, *port);
            let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": name, "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": "IPv4",
                "endpoints": ips.iter().map(|ip| json!({"addresses": [ip],
                    "conditions": {"ready": true}})).collect::<Vec<_>>(),
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]});
            // The ports too: a slice's name passes to another port when members come and go.
            self.put_if_changed("discovery.k8s.io", "v1", "endpointslices", slice, |o| {
                json!([o["endpoints"], o["ports"]])
            })
            .await?;
            wanted.push(name);
        }
        // Slices of ports no live member serves any more.
        let start = b"/registry/endpointslices/default/kubernetes".to_vec();
        let end = b"/registry/endpointslices/default/kubernetes.".to_vec();
        for stored in self.storage.range(start, end, 0, 0).await?.items {
            let key = String::from_utf8_lossy(&stored.key).into_owned();
            let name = key.rsplit('/').next().unwrap_or("").to_owned();
            let ours = name == "kubernetes" || name.starts_with("kubernetes-");
            if ours && !wanted.contains(&name) {
                if let Written::Conflict { .. } = self
                    .storage
                    .delete(stored.key.clone(), stored.mod_revision)
                    .await?
                {
                    tracing::debug!(slice = name, "changed while being removed; next pass");
                }
            }
        }
        Ok(())
    }

    /// Creates `object` in `default`, or replaces the stored one when `part` of it differs.
    async fn put_if_changed(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        mut object: Value,
        part: impl Fn(&Value) -> Value,
    ) -> Result<()> {
        let name = object::meta_str(&object, "name").unwrap_or("").to_owned();
        let resource = self
            .registry
            .find(group, version, plural)
            .expect("a built-in resource");
        let key = resource.key(Some("default"), &name);
        match object::read(&*self.storage, &key).await? {
            None => match self
                .internal_write(group, version, plural, "", &object, false)
                .await
            {
                Err(e) if e.code != 409 => Err(e),
                _ => Ok(()),
            },
            Some(current) if part(&current.object) == part(&object) => Ok(()),
            Some(current) => {
                object["metadata"]["resourceVersion"] = json!(current.revision.to_string());
                match self
                    .internal_write(group, version, plural, &name, &object, true)
                    .await
                {
                    Err(e) if e.code != 409 => Err(e),
                    _ => Ok(()),
                }
            }
        }
    }

    /// A create (or, with `update`, a replace of `name`) in `default` through the verbs, so
    /// defaults, validation and allocation apply as to any client's write.
    async fn internal_write(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        name: &str,
        object: &Value,
        update: bool,
    ) -> Result<()> {
        let resource = self
            .registry
            .find(group, version, plural)
            .expect("a built-in resource");
        let body = object.to_string();
        let (query, warnings) = (Query::default(), Warnings::default());
        let call = Call {
            resource: &resource,
            namespace: Some("default"),
            name,
            query: &query,
            body: body.as_bytes(),
            content_type: None,
            warnings: &warnings,
            user_agent: Some("kube-apiserver"),
        };
        if update {
            self.update(&call, Part::Main).await.map(|_| ())
        } else {
            self.create(&call).await.map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_leases_renewed_within_the_ttl_count() {
        let ttl = Duration::from_secs(15);
        let leases = [
            lease_value("127.0.0.1:6443".parse().unwrap(), 100_000),
            lease_value("127.0.0.2:6443".parse().unwrap(), 90_000),
            lease_value("127.0.0.1:6444".parse().unwrap(), 84_000),
        ];
        let live = live_members(&leases, ttl, 100_000);
        assert_eq!(
            live,
            BTreeMap::from([(6443, vec!["127.0.0.1".to_owned(), "127.0.0.2".to_owned()])])
        );
        assert_eq!(slice_name(0, 6443), "kubernetes");
        assert_eq!(slice_name(1, 6444), "kubernetes-6444");
    }
}
