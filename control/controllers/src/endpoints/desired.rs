//! What a Service's endpoints should be, from its pods: pure functions, no API.
//!
//! ```text
//! pods of the namespace ──selector──▶ candidates ──podIP, phase──▶ PodEndpoint
//!        (ready / serving / terminating, hostname, node)
//! service ports × pod containers ──FindPort──▶ the pod's resolved ports
//! group pods by resolved port set ──▶ one EndpointSlice family / one Endpoints subset each
//! ```
//!
//! As kube's `endpointutil.ShouldPodBeInEndpoints`: a pod without a podIP or in a terminal
//! phase is left out; a terminating one is kept for slices (with `terminating: true`) and
//! for Endpoints only when the Service publishes not-ready addresses. A named targetPort
//! resolves to the pod's container port of that name and protocol; a pod without one is left
//! out of that port (as kube's `podutil.FindPort`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::pods;

/// One resolved port of a pod: what both EndpointSlice and Endpoints ports carry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResolvedPort {
    /// The Service port's name ("" for an unnamed single port).
    pub name: String,
    /// The pod's port number.
    pub port: i32,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The Service port's appProtocol.
    pub app_protocol: Option<String>,
}

/// A pod as an endpoint of one Service.
#[derive(Clone, Debug)]
pub struct PodEndpoint {
    /// The pod.
    pub pod: Arc<Pod>,
    /// Its IPv4 address.
    pub ip: String,
    /// Its Ready condition is True.
    pub serving: bool,
    /// It has a deletionTimestamp.
    pub terminating: bool,
    /// The DNS hostname the Service gives it (`spec.hostname` when `spec.subdomain` is the
    /// Service's name).
    pub hostname: Option<String>,
    /// The node it runs on.
    pub node_name: Option<String>,
}

impl PodEndpoint {
    /// EndpointSlice's `ready`: serving and not terminating, or always when the Service
    /// publishes not-ready addresses.
    pub fn ready(&self, publish_not_ready: bool) -> bool {
        publish_not_ready || (self.serving && !self.terminating)
    }

    /// The pod's name.
    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or("")
    }
}

/// The Service's selector if the controllers should manage its endpoints: a non-empty
/// selector on a Service that is not ExternalName.
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Whether `labels` carry every pair of `selector`.
pub fn selects(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    labels.is_some_and(|labels| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// Whether the Service publishes its not-ready pods as ready.
pub fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The pod as an endpoint of `service`, or None when kube leaves it out of EndpointSlices
/// (no IPv4 podIP, or finished).
pub fn endpoint_of(service: &Service, pod: &Arc<Pod>) -> Option<PodEndpoint> {
    let ip = pod.status.as_ref()?.pod_ip.clone()?;
    if ip.parse::<Ipv4Addr>().is_err() || matches!(pods::phase(pod), "Succeeded" | "Failed") {
        return None;
    }
    let spec = pod.spec.as_ref();
    let hostname = spec
        .filter(|s| s.subdomain.is_some() && s.subdomain == service.metadata.name)
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty());
    Some(PodEndpoint {
        pod: Arc::clone(pod),
        ip,
        serving: pods::is_ready(pod),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        hostname,
        node_name: spec.and_then(|s| s.node_name.clone()),
    })
}

/// The pod's number for `port` (kube's `FindPort`): a named targetPort is looked up among
/// the pod's container ports of the same protocol; a number, or no targetPort, is used as is.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec.as_ref()?.containers.iter().find_map(|c| {
                c.ports.as_ref()?.iter().find_map(|p| {
                    let p_protocol = p.protocol.as_deref().unwrap_or("TCP");
                    (p.name.as_deref() == Some(name.as_str()) && p_protocol == protocol)
                        .then_some(p.container_port)
                })
            })
        }
    }
}

/// The Service's ports as this pod serves them, in the Service's order; ports the pod cannot
/// resolve are left out.
pub fn resolved_ports(service: &Service, pod: &Pod) -> Vec<ResolvedPort> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|port| {
            Some(ResolvedPort {
                name: port.name.clone().unwrap_or_default(),
                port: find_port(pod, port)?,
                protocol: port.protocol.clone().unwrap_or_else(|| "TCP".into()),
                app_protocol: port.app_protocol.clone(),
            })
        })
        .collect()
}

/// The endpoints of `service` among `pods` (its namespace's), grouped by their resolved
/// port sets, each group sorted by pod name.
pub fn grouped(
    service: &Service,
    pods: &[Arc<Pod>],
) -> BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>> {
    let mut groups: BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>> = BTreeMap::new();
    let Some(selector) = selector(service) else {
        return groups;
    };
    for pod in pods {
        if !selects(selector, pod.metadata.labels.as_ref()) {
            continue;
        }
        if let Some(endpoint) = endpoint_of(service, pod) {
            groups
                .entry(resolved_ports(service, pod))
                .or_default()
                .push(endpoint);
        }
    }
    for endpoints in groups.values_mut() {
        endpoints.sort_by(|a, b| a.name().cmp(b.name()));
    }
    groups
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "metrics", "port": 9000, "targetPort": 9100, "protocol": "TCP"},
            ]},
        }))
        .unwrap()
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool, http_port: Option<i32>) -> Arc<Pod> {
        let ports: Vec<_> = http_port
            .map(|p| json!({"name": "http", "containerPort": p}))
            .into_iter()
            .collect();
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}],
                         "hostname": name, "subdomain": "web"},
                "status": {"podIP": ip, "phase": "Running", "conditions": [
                    {"type": "Ready", "status": if ready {"True"} else {"False"}}]},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn named_ports_resolve_per_pod_and_pods_without_ip_are_left_out() {
        let pods = vec![
            pod("b", Some("169.254.1.2"), true, Some(8080)),
            pod("a", Some("169.254.1.1"), false, Some(8080)),
            pod("c", Some("169.254.1.3"), true, None),
            pod("d", None, true, Some(8080)),
        ];
        let groups = grouped(&service(), &pods);
        assert_eq!(groups.len(), 2);
        let (ports, endpoints) = groups.iter().find(|(ports, _)| ports.len() == 2).unwrap();
        let names: Vec<&str> = endpoints.iter().map(PodEndpoint::name).collect();
        assert_eq!(ports[0].port, 8080);
        assert_eq!(ports[1].port, 9100);
        assert_eq!(names, ["a", "b"]);
        let only_metrics = groups.iter().find(|(ports, _)| ports.len() == 1).unwrap();
        assert_eq!(only_metrics.0[0].name, "metrics");
        assert_eq!(only_metrics.1[0].name(), "c");
        let a = &groups.values().flatten().find(|e| e.name() == "a").unwrap();
        assert!(!a.ready(false) && a.ready(true));
        assert_eq!(a.hostname.as_deref(), Some("a"));
    }

    #[test]
    fn services_without_selector_or_external_name_are_not_managed() {
        let mut s = service();
        s.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
        assert!(selector(&s).is_none());
        let mut s = service();
        s.spec.as_mut().unwrap().selector = Some(BTreeMap::new());
        assert!(selector(&s).is_none());
        assert!(selector(&service()).is_some());
    }
}
