//! What the proxy should serve, computed from the watched Services and EndpointSlices: one
//! [`Frontend`] (address, port, protocol) per ClusterIP port and per NodePort on each node
//! address, each with the ready endpoints behind it.
//!
//! ```text
//!  Service ns/web  clusterIP 169.254.64.7  ports [http 80→8080 nodePort 30080]
//!  EndpointSlices labelled kubernetes.io/service-name=web, port "http" 8080, ready endpoints
//!      ──▶ 169.254.64.7:80/TCP    → [169.254.42.2:8080, 169.254.42.3:8080]
//!      ──▶ 127.0.0.1:30080/TCP    → the same backends
//! ```
//!
//! Pure data in, data out, so the rules (which endpoints count, how ports match) are unit
//! tested without sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label tying an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// kube's default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
const DEFAULT_AFFINITY_SECONDS: u64 = 10_800;

/// A transport protocol the proxy carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP: a listener per frontend, one backend connection per client connection.
    Tcp,
    /// UDP: a socket per frontend, one backend socket per client address.
    Udp,
}

impl Protocol {
    fn parse(text: Option<&str>) -> Option<Protocol> {
        match text.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            // SCTP is not carried.
            _ => None,
        }
    }
}

/// Where clients connect: a ClusterIP or node address, a port and a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frontend {
    /// The ClusterIP, or a node address for a NodePort.
    pub address: IpAddr,
    /// The service port, or the NodePort.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl std::fmt::Display for Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{:?}",
            SocketAddr::new(self.address, self.port),
            self.protocol
        )
    }
}

/// One service port as the proxy serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/service:port` for logs (kube-proxy's service port name).
    pub name: String,
    /// The ready endpoints, sorted (kube-proxy's order does not matter; a stable one makes
    /// round robin fair across updates that change nothing).
    pub backends: Vec<SocketAddr>,
    /// Every endpoint the slices list for this port, ready or not, sorted. Connections already
    /// made to an endpoint live while it is listed (a terminating pod drains them); once it
    /// leaves, its pod is gone and they are ended, as kube-proxy's conntrack cleanup ends them.
    pub listed: Vec<SocketAddr>,
    /// How long a client sticks to its backend (`sessionAffinity: ClientIP`), if it does.
    pub affinity: Option<Duration>,
}

/// Everything the proxy should serve.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    /// Frontends and what stands behind them.
    pub frontends: BTreeMap<Frontend, ServicePort>,
}

impl Table {
    /// The ClusterIPs among the frontends: the addresses the proxy must own.
    pub fn cluster_ips(&self, node_addresses: &[IpAddr]) -> BTreeSet<Ipv4Addr> {
        self.frontends
            .keys()
            .filter(|f| !node_addresses.contains(&f.address))
            .filter_map(|f| match f.address {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect()
    }
}

/// The table for `services` and `slices`, NodePorts served on `node_addresses`.
pub fn build(
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    node_addresses: &[IpAddr],
) -> Table {
    // Slices by (namespace, service name), so each service finds its own at once.
    let mut slices_of: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let labels = slice.metadata.labels.as_ref();
        let (Some(namespace), Some(service)) = (
            slice.metadata.namespace.clone(),
            labels.and_then(|l| l.get(SERVICE_NAME_LABEL)).cloned(),
        ) else {
            continue;
        };
        slices_of
            .entry((namespace, service))
            .or_default()
            .push(slice);
    }
    let mut table = Table::default();
    for service in services {
        let (Some(namespace), Some(name)) = (
            service.metadata.namespace.as_deref(),
            service.metadata.name.as_deref(),
        ) else {
            continue;
        };
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let cluster_ips: Vec<IpAddr> = cluster_ips(service);
        let node_ports = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
        let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            let seconds = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(DEFAULT_AFFINITY_SECONDS);
            Duration::from_secs(seconds)
        });
        let own_slices = slices_of
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for port in spec.ports.iter().flatten() {
            let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
                continue;
            };
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            let port_name = port.name.clone().unwrap_or_default();
            let endpoints = endpoints(own_slices, &port_name, protocol);
            let service_port = ServicePort {
                name: if port_name.is_empty() {
                    format!("{namespace}/{name}")
                } else {
                    format!("{namespace}/{name}:{port_name}")
                },
                backends: endpoints.ready,
                listed: endpoints.listed,
                affinity,
            };
            for address in &cluster_ips {
                table.frontends.insert(
                    Frontend {
                        address: *address,
                        port: number,
                        protocol,
                    },
                    service_port.clone(),
                );
            }
            let node_port = port.node_port.and_then(|p| u16::try_from(p).ok());
            if let (true, Some(node_port)) = (node_ports, node_port) {
                for address in node_addresses {
                    table.frontends.insert(
                        Frontend {
                            address: *address,
                            port: node_port,
                            protocol,
                        },
                        service_port.clone(),
                    );
                }
            }
        }
    }
    table
}

/// The service's IPv4 ClusterIPs (none when headless).
fn cluster_ips(service: &Service) -> Vec<IpAddr> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<&String> = spec.cluster_ips.iter().flatten().collect();
    if ips.is_empty() {
        ips.extend(spec.cluster_ip.as_ref());
    }
    ips.into_iter()
        .filter_map(|ip| ip.parse::<Ipv4Addr>().ok())
        .map(IpAddr::V4)
        .collect()
}

/// A service port's endpoints: those new connections go to, and every one listed.
struct Endpoints {
    ready: Vec<SocketAddr>,
    listed: Vec<SocketAddr>,
}

/// The endpoints of `slices` serving the port named `port_name` over `protocol`. Ready ones as
/// kube-proxy counts them: `ready` unset means ready; terminating endpoints are used only
/// when no endpoint is ready (kube-proxy's ProxyTerminatingEndpoints), as long as they still
/// serve.
fn endpoints(slices: &[&EndpointSlice], port_name: &str, protocol: Protocol) -> Endpoints {
    let mut listed = BTreeSet::new();
    let mut ready = BTreeSet::new();
    let mut serving_terminating = BTreeSet::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let port = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        });
        let Some(number) = port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // kube-proxy uses an endpoint's first address only.
            let Some(address) = endpoint
                .addresses
                .first()
                .and_then(|a| a.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let conditions = endpoint.conditions.as_ref();
            let is_ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(is_ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let backend = SocketAddr::new(address, number);
            listed.insert(backend);
            if is_ready && !terminating {
                ready.insert(backend);
            } else if serving && terminating {
                serving_terminating.insert(backend);
            }
        }
    }
    let ready = if ready.is_empty() {
        serving_terminating
    } else {
        ready
    };
    Endpoints {
        ready: ready.into_iter().collect(),
        listed: listed.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(value: serde_json::Value) -> Arc<Service> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    fn slice(value: serde_json::Value) -> Arc<EndpointSlice> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    fn web() -> Arc<Service> {
        service(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"type": "NodePort", "clusterIP": "169.254.64.7", "clusterIPs": ["169.254.64.7"],
                     "sessionAffinity": "ClientIP",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
                               {"name": "dns", "port": 53, "protocol": "UDP"}]}
        }))
    }

    fn web_slice(endpoints: serde_json::Value) -> Arc<EndpointSlice> {
        slice(json!({
            "metadata": {"name": "web-abc", "namespace": "ns",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                      {"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": endpoints
        }))
    }

    fn frontend(address: &str, port: u16, protocol: Protocol) -> Frontend {
        Frontend {
            address: address.parse().unwrap(),
            port,
            protocol,
        }
    }

    #[test]
    fn cluster_ip_and_node_ports_reach_ready_endpoints_only() {
        let slices = [web_slice(json!([
            {"addresses": ["169.254.42.3"], "conditions": {"ready": true}},
            {"addresses": ["169.254.42.2"]},
            {"addresses": ["169.254.42.4"], "conditions": {"ready": false}},
            {"addresses": ["169.254.42.5"], "conditions": {"ready": false, "serving": true, "terminating": true}}
        ]))];
        let node = ["127.0.0.1".parse().unwrap()];
        let table = build(&[web()], &slices, &node);
        let http = &table.frontends[&frontend("169.254.64.7", 80, Protocol::Tcp)];
        assert_eq!(http.name, "ns/web:http");
        let expected: Vec<SocketAddr> = vec![
            "169.254.42.2:8080".parse().unwrap(),
            "169.254.42.3:8080".parse().unwrap(),
        ];
        assert_eq!(http.backends, expected);
        // Unready and terminating endpoints are still listed: their connections live on.
        assert_eq!(http.listed.len(), 4);
        assert_eq!(http.affinity, Some(Duration::from_secs(10_800)));
        assert_eq!(
            table.frontends[&frontend("127.0.0.1", 30080, Protocol::Tcp)],
            *http
        );
        let dns = &table.frontends[&frontend("169.254.64.7", 53, Protocol::Udp)];
        assert_eq!(dns.backends[0], "169.254.42.2:5353".parse().unwrap());
        assert_eq!(table.frontends.len(), 3);
        let ips: Vec<Ipv4Addr> = table.cluster_ips(&node).into_iter().collect();
        assert_eq!(ips, [Ipv4Addr::new(169, 254, 64, 7)]);
    }

    #[test]
    fn serving_terminating_endpoints_stand_in_only_when_none_is_ready() {
        let slices = [web_slice(json!([
            {"addresses": ["169.254.42.4"], "conditions": {"ready": false}},
            {"addresses": ["169.254.42.5"], "conditions": {"ready": false, "serving": true, "terminating": true}}
        ]))];
        let table = build(&[web()], &slices, &[]);
        let http = &table.frontends[&frontend("169.254.64.7", 80, Protocol::Tcp)];
        assert_eq!(http.backends, ["169.254.42.5:8080".parse().unwrap()]);
    }

    #[test]
    fn headless_external_name_and_other_services_slices_are_left_out() {
        let headless = service(json!({
            "metadata": {"name": "db", "namespace": "ns"},
            "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}
        }));
        let external = service(json!({
            "metadata": {"name": "ext", "namespace": "ns"},
            "spec": {"type": "ExternalName", "externalName": "example.invalid"}
        }));
        let plain = service(json!({
            "metadata": {"name": "api", "namespace": "other"},
            "spec": {"clusterIP": "169.254.64.9", "ports": [{"port": 443, "nodePort": 30443}]}
        }));
        // web's slice sits in namespace ns: api in namespace other must not take it.
        let slices = [web_slice(json!([{"addresses": ["169.254.42.2"]}]))];
        let node = ["127.0.0.1".parse().unwrap()];
        let table = build(&[headless, external, plain], &slices, &node);
        let keys: Vec<Frontend> = table.frontends.keys().copied().collect();
        // A ClusterIP service's nodePort (set by hand) opens nothing: only NodePort types do.
        assert_eq!(keys, [frontend("169.254.64.9", 443, Protocol::Tcp)]);
        let api = &table.frontends[&keys[0]];
        assert!(api.backends.is_empty());
        assert_eq!(api.affinity, None);
        assert_eq!(api.name, "other/api");
    }
}
