//! Services and networking: Services (cluster, external IPs and ports), Endpoints,
//! EndpointSlices, Ingresses, IngressClasses and NetworkPolicies.

use serde_json::{json, Value};

use super::cells::{
    age, at, format_label_selector, format_labels, int, join_host_port, list, list_with_more, name,
    text,
};
use super::{col, wide, Column, AGE, NAME};

pub(super) const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
    ),
    col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    ),
    col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    ),
];

/// Load balancer ingress points, sorted and deduplicated (kube uses a set);
/// the apiserver prints wide, so nothing is clipped.
fn load_balancer_ingress(object: &Value) -> Vec<String> {
    let mut points: Vec<String> = list(object, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            let ip = text(i, &["ip"]);
            let host = text(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    points.sort();
    points.dedup();
    points
}

pub(super) fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

pub(super) fn service_cells(object: &Value, now: i64) -> Vec<Value> {
    // Stored services are defaulted to ClusterIP; tolerate undefaulted ones.
    let service_type = at(object, &["spec", "type"])
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let cluster_ip = list(object, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            at(object, &["spec", "clusterIP"])
                .and_then(Value::as_str)
                .filter(|ip| !ip.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "<none>".to_string());
    let external_ips = strings(list(object, &["spec", "externalIPs"]));
    let external = match service_type.as_str() {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut points = load_balancer_ingress(object);
            if !external_ips.is_empty() {
                points.extend(external_ips);
                points.join(",")
            } else if !points.is_empty() {
                points.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => text(object, &["spec", "externalName"]),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list(object, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int(p, &["port"]);
            let protocol = at(p, &["protocol"])
                .and_then(Value::as_str)
                .unwrap_or("TCP");
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name(object),
        Value::from(service_type),
        Value::from(cluster_ip),
        Value::from(external),
        Value::from(ports),
        age(object, now),
        Value::from(format_labels(at(object, &["spec", "selector"]))),
    ]
}

pub(super) const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    AGE,
];

/// formatEndpoints: ready addresses (with each port), at most three shown.
pub(super) fn endpoints_cells(object: &Value, now: i64) -> Vec<Value> {
    let subsets = list(object, &["subsets"]);
    let formatted = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        const MAX: usize = 3;
        let mut shown = Vec::new();
        let mut more = false;
        let mut count = 0usize;
        for subset in subsets {
            let addresses = list(subset, &["addresses"]);
            let ports = list(subset, &["ports"]);
            if ports.is_empty() {
                count += addresses.len();
                for address in addresses {
                    if shown.len() == MAX {
                        more = true;
                        break;
                    }
                    shown.push(text(address, &["ip"]));
                }
                continue;
            }
            for port in ports {
                count += addresses.len();
                for address in addresses {
                    if shown.len() == MAX {
                        more = true;
                        break;
                    }
                    shown.push(join_host_port(
                        &text(address, &["ip"]),
                        int(port, &["port"]),
                    ));
                }
            }
        }
        let joined = shown.join(",");
        if more {
            format!("{joined} + {} more...", count.saturating_sub(MAX))
        } else {
            joined
        }
    };
    vec![name(object), Value::from(formatted), age(object, now)]
}

pub(super) const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
    ),
    col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.",
    ),
    col(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    ),
    AGE,
];

pub(super) fn endpoint_slice_cells(object: &Value, now: i64) -> Vec<Value> {
    let ports: Vec<String> = list(object, &["ports"])
        .iter()
        .map(|p| match at(p, &["port"]).and_then(Value::as_i64) {
            Some(port) => port.to_string(),
            None => at(p, &["name"])
                .and_then(Value::as_str)
                .map_or_else(|| "*".to_string(), str::to_string),
        })
        .collect();
    let addresses: Vec<String> = list(object, &["endpoints"])
        .iter()
        .flat_map(|e| strings(list(e, &["addresses"])))
        .collect();
    vec![
        name(object),
        Value::from(text(object, &["addressType"])),
        Value::from(list_with_more(&ports, 3)),
        Value::from(list_with_more(&addresses, 3)),
        age(object, now),
    ]
}

pub(super) const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

pub(super) fn ingress_cells(object: &Value, now: i64) -> Vec<Value> {
    let class = at(object, &["spec", "ingressClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<none>")
        .to_string();
    let rules = list(object, &["spec", "rules"]);
    const MAX: usize = 3;
    let mut hosts = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = text(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let ports = if list(object, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(object),
        Value::from(class),
        Value::from(hosts),
        Value::from(load_balancer_ingress(object).join(",")),
        Value::from(ports),
        age(object, now),
    ]
}

pub(super) const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

pub(super) fn ingress_class_cells(object: &Value, now: i64) -> Vec<Value> {
    let parameters = match at(object, &["spec", "parameters"]).filter(|p| p.is_object()) {
        Some(p) => {
            let mut kind = text(p, &["kind"]);
            if let Some(group) = at(p, &["apiGroup"]).and_then(Value::as_str) {
                kind = format!("{kind}.{group}");
            }
            format!("{kind}/{}", text(p, &["name"]))
        }
        None => "<none>".to_string(),
    };
    vec![
        name(object),
        Value::from(text(object, &["spec", "controller"])),
        Value::from(parameters),
        age(object, now),
    ]
}

pub(super) const NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Pod-Selector",
        "string",
        "Selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.",
    ),
    AGE,
];

pub(super) fn network_policy_cells(object: &Value, now: i64) -> Vec<Value> {
    // podSelector is a struct, never nil, so absent means "everything".
    let selector = at(object, &["spec", "podSelector"])
        .cloned()
        .unwrap_or_else(|| json!({}));
    vec![
        name(object),
        Value::from(format_label_selector(Some(&selector))),
        age(object, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::fixtures::{ago, cell, cells, column_names, tab};

    #[test]
    fn service_cells_and_ports() {
        let service = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(60)},
            "spec": {"type": "NodePort", "clusterIPs": ["169.254.96.10"],
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}],
                "selector": {"app": "web", "tier": "fe"}}
        });
        let table = tab("Service", "v1", service);
        assert_eq!(
            column_names(&table),
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector"
            ]
        );
        assert_eq!(
            cells(&table),
            vec![
                json!("web"),
                json!("NodePort"),
                json!("169.254.96.10"),
                json!("<none>"),
                json!("80/TCP,443:30443/TCP"),
                json!("60s"),
                json!("app=web,tier=fe")
            ]
        );
        let pending = json!({"spec": {"type": "LoadBalancer", "clusterIP": "169.254.0.1"}});
        assert_eq!(cell("Service", "v1", pending, "External-IP"), "<pending>");
        let balanced = json!({"spec": {"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}}});
        assert_eq!(
            cell("Service", "v1", balanced, "External-IP"),
            "5.6.7.8,lb.example,9.9.9.9"
        );
        let external = json!({"spec": {"type": "ExternalName", "externalName": "db.example"}});
        assert_eq!(
            cell("Service", "v1", external.clone(), "External-IP"),
            "db.example"
        );
        assert_eq!(cell("Service", "v1", external.clone(), "Port(s)"), "<none>");
        assert_eq!(cell("Service", "v1", external, "Cluster-IP"), "<none>");
    }

    #[test]
    fn endpoints_and_slices() {
        let endpoints = json!({"subsets": [
            {"addresses": [{"ip": "169.254.0.1"}, {"ip": "169.254.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]}
        ]});
        let table = tab("Endpoints", "v1", endpoints);
        assert_eq!(column_names(&table), ["Name", "Endpoints", "Age"]);
        assert_eq!(
            cells(&table)[1],
            "169.254.0.1:80,169.254.0.2:80,169.254.0.1:443 + 2 more..."
        );
        assert_eq!(cell("Endpoints", "v1", json!({}), "Endpoints"), "<none>");
        let v6 = json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(cell("Endpoints", "v1", v6, "Endpoints"), "[fd00::1]:80");

        let slice = json!({"addressType": "IPv4", "ports": [{"port": 80}, {"name": "dns"}, {}],
            "endpoints": [{"addresses": ["169.254.0.1"]}, {"addresses": ["169.254.0.2", "169.254.0.3", "169.254.0.4"]}]});
        let table = tab("EndpointSlice", "discovery.k8s.io/v1", slice);
        assert_eq!(
            column_names(&table),
            ["Name", "AddressType", "Ports", "Endpoints", "Age"]
        );
        assert_eq!(
            cells(&table)[1..4],
            [
                json!("IPv4"),
                json!("80,dns,*"),
                json!("169.254.0.1,169.254.0.2,169.254.0.3 + 1 more...")
            ]
        );
        assert_eq!(
            cell(
                "EndpointSlice",
                "discovery.k8s.io/v1",
                json!({}),
                "Endpoints"
            ),
            "<unset>"
        );
    }
}
