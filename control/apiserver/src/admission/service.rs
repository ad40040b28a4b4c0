//! Services: ports, types, cluster IPs and IP families, and the fields an update may not change.

use serde_json::{json, Value};

use super::containers::{port_num_or_name, validate_protocol};
use super::field::{
    child, duplicate, forbidden, go_string_slice, index, invalid, not_supported, required, Bad,
    PORT_RANGE_MSG,
};
use super::json::{int, list, map, opt_text, present, scalar_text, text};
use super::meta::validate_labels;
use super::names::{dns1123_label, dns1123_subdomain, qualified_name, valid_port};
use super::FieldError;
use crate::admission::defaults::service::externally_accessible;
use crate::go_format::go_quote;

fn cluster_ips(spec: &Value) -> Vec<String> {
    let ips: Vec<String> = list(spec, "clusterIPs").iter().map(scalar_text).collect();
    if ips.is_empty() && !text(spec, "clusterIP").is_empty() {
        vec![text(spec, "clusterIP").to_owned()]
    } else {
        ips
    }
}

fn valid_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

pub(super) fn validate_service(svc: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &svc["spec"];
    let service_type = text(spec, "type");
    let ips = cluster_ips(spec);
    let headless = ips.first().is_some_and(|ip| ip == "None");

    if let Some(old) = old {
        let old_spec = &old["spec"];
        let old_ips = cluster_ips(old_spec);
        let old_headless = old_ips.first().is_some_and(|ip| ip == "None");
        let external_name =
            service_type == "ExternalName" || text(old_spec, "type") == "ExternalName";
        // An update that leaves clusterIP out keeps the allocated one (kube copies it over).
        if !(external_name || ips.is_empty() || (headless && old_headless)) {
            let bad = Bad::Raw(go_string_slice(Some(
                &ips.iter().map(|i| json!(i)).collect(),
            )));
            let changed = if ips.len() >= old_ips.len() {
                old_ips.iter().zip(&ips).position(|(o, n)| o != n)
            } else {
                (ips.first() != old_ips.first()).then_some(0)
            };
            if let Some(i) = changed {
                errs.push(invalid(
                    &index("spec.clusterIPs", i),
                    bad,
                    "may not change once set",
                ));
            }
        }
    }

    if list(spec, "ports").is_empty() && !headless && service_type != "ExternalName" {
        errs.push(required("spec.ports", ""));
    }
    match service_type {
        "LoadBalancer" | "NodePort" if headless => errs.push(invalid(
            "spec.clusterIPs[0]",
            Bad::str("None"),
            &format!("may not be set to 'None' for {service_type} services"),
        )),
        "ExternalName" => {
            if !list(spec, "clusterIPs").is_empty() {
                errs.push(forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !list(spec, "ipFamilies").is_empty() {
                errs.push(forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if present(spec, "ipFamilyPolicy") {
                errs.push(forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = text(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(required("spec.externalName", ""));
            } else {
                for m in dns1123_subdomain(cname) {
                    errs.push(invalid("spec.externalName", Bad::str(cname), &m));
                }
            }
        }
        _ => {}
    }

    let ports = list(spec, "ports");
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index("spec.ports", i);
        let name = text(port, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(required(&child(&p, "name"), ""));
        } else if !name.is_empty() {
            for m in dns1123_label(name) {
                errs.push(invalid(&child(&p, "name"), Bad::str(name), &m));
            }
            if names.contains(&name) {
                errs.push(duplicate(&child(&p, "name"), Bad::str(name)));
            } else {
                names.push(name);
            }
        }
        let number = int(port, "port").unwrap_or(0);
        if !valid_port(number) {
            errs.push(invalid(
                &child(&p, "port"),
                Bad::Int(number),
                PORT_RANGE_MSG,
            ));
        }
        validate_protocol(port, &p, errs);
        port_num_or_name(port.get("targetPort"), &child(&p, "targetPort"), errs);
        if let Some(app) = opt_text(port, "appProtocol") {
            for m in qualified_name(app) {
                errs.push(invalid(&child(&p, "appProtocol"), Bad::str(app), &m));
            }
        }
    }
    if present(spec, "selector") {
        validate_labels(map(spec, "selector"), "spec.selector", errs);
    }
    match text(spec, "sessionAffinity") {
        "" => errs.push(required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let timeout = &spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"];
            match timeout.as_i64() {
                None => errs.push(required(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    "when session affinity type is ClientIP",
                )),
                Some(t) if !(1..=86400).contains(&t) => errs.push(invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    Bad::Int(t),
                    "must be greater than 0 and less than 86400",
                )),
                Some(_) => {}
            }
        }
        "None" => {
            if present(spec, "sessionAffinityConfig") {
                errs.push(forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(not_supported(
            "spec.sessionAffinity",
            Bad::str(other),
            &["ClientIP", "None"],
        )),
    }
    if service_type != "ExternalName" {
        for (i, ip) in ips.iter().enumerate() {
            if !(valid_ip(ip) || (i == 0 && ip == "None")) {
                errs.push(invalid(
                    &index("spec.clusterIPs", i),
                    Bad::str(ip),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ));
            }
        }
    }
    for (i, ip) in list(spec, "externalIPs").iter().enumerate() {
        let ip = scalar_text(ip);
        if !valid_ip(&ip) {
            errs.push(invalid(
                &index("spec.externalIPs", i),
                Bad::str(&ip),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if service_type.is_empty() {
        errs.push(required("spec.type", ""));
    } else if !TYPES.contains(&service_type) {
        errs.push(not_supported("spec.type", Bad::str(service_type), TYPES));
    }
    if service_type == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int(port, "nodePort").unwrap_or(0) != 0 {
                errs.push(forbidden(
                    &child(&index("spec.ports", i), "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports: Vec<(String, i64)> = Vec::new();
    let mut seen_ports: Vec<(String, i64)> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = text(port, "protocol").to_owned();
        let node_port = int(port, "nodePort").unwrap_or(0);
        if node_port != 0 {
            let k = (protocol.clone(), node_port);
            if node_ports.contains(&k) {
                errs.push(duplicate(
                    &child(&index("spec.ports", i), "nodePort"),
                    Bad::Int(node_port),
                ));
            }
            node_ports.push(k);
        }
        let number = int(port, "port").unwrap_or(0);
        let k = (protocol.clone(), number);
        if seen_ports.contains(&k) {
            errs.push(duplicate(
                &index("spec.ports", i),
                Bad::Raw(format!(
                    "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{number}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    go_quote(&protocol)
                )),
            ));
        }
        seen_ports.push(k);
    }
    if present(spec, "allocateLoadBalancerNodePorts") && service_type != "LoadBalancer" {
        errs.push(forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if service_type == "LoadBalancer" && !present(spec, "allocateLoadBalancerNodePorts") {
        // kube reports this one without the "spec." prefix.
        errs.push(required("allocateLoadBalancerNodePorts", ""));
    }
    let external_policy = text(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !external_policy.is_empty() {
            errs.push(invalid(
                "spec.externalTrafficPolicy",
                Bad::str(external_policy),
                "may only be set for externally-accessible services",
            ));
        }
    } else if external_policy.is_empty() {
        errs.push(required("spec.externalTrafficPolicy", ""));
    } else if external_policy != "Cluster" && external_policy != "Local" {
        errs.push(not_supported(
            "spec.externalTrafficPolicy",
            Bad::str(external_policy),
            &["Cluster", "Local"],
        ));
    }
    match spec.get("internalTrafficPolicy").filter(|v| !v.is_null()) {
        None => {
            if matches!(service_type, "NodePort" | "LoadBalancer" | "ClusterIP") {
                errs.push(required("spec.internalTrafficPolicy", ""));
            }
        }
        Some(policy) => {
            let policy = scalar_text(policy);
            if policy != "Cluster" && policy != "Local" {
                errs.push(not_supported(
                    "spec.internalTrafficPolicy",
                    Bad::str(&policy),
                    &["Cluster", "Local"],
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{create_errors, update_errors};

    #[test]
    fn services_need_ports_unless_headless() {
        assert_eq!(
            create_errors(
                "Service",
                json!({"metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}}})
            ),
            ["spec.ports: Required value"]
        );
        assert!(create_errors(
            "Service",
            json!({"metadata": {"name": "s"}, "spec": {"clusterIP": "None"}})
        )
        .is_empty());
        assert!(create_errors(
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "db.example.com."}})
        )
        .is_empty());
    }

    #[test]
    fn service_ports_are_checked() {
        let errs = create_errors(
            "Service",
            json!({"spec": {"ports": [
                {"name": "http", "port": 80},
                {"name": "http", "port": 0, "protocol": "QUIC"},
                {"port": 81, "targetPort": "Web"}
            ]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.ports[1].name: Duplicate value: \"http\"",
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].protocol: Unsupported value: \"QUIC\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                // targetPort was defaulted from the bad port, so kube flags it too.
                "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[2].name: Required value",
                "spec.ports[2].targetPort: Invalid value: \"Web\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            ]
        );
    }

    #[test]
    fn service_type_and_cluster_ip_rules() {
        assert_eq!(
            create_errors(
                "Service",
                json!({"spec": {"type": "Internal", "ports": [{"port": 80}]}})
            ),
            [
                "spec.type: Unsupported value: \"Internal\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
            ]
        );
        assert_eq!(
            create_errors(
                "Service",
                json!({"spec": {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]}})
            ),
            [
                "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
            ]
        );
        assert_eq!(
            create_errors(
                "Service",
                json!({"spec": {"clusterIP": "169.254.0.300", "ports": [{"port": 80}]}})
            ),
            [
                "spec.clusterIPs[0]: Invalid value: \"169.254.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            ]
        );
        let old = json!({"spec": {"clusterIP": "169.254.0.5", "ports": [{"port": 80}]}});
        let moved = json!({"spec": {"clusterIP": "169.254.0.6", "ports": [{"port": 80}]}});
        assert_eq!(
            update_errors("Service", old.clone(), moved),
            ["spec.clusterIPs[0]: Invalid value: []string{\"169.254.0.6\"}: may not change once set"]
        );
        let omitted = json!({"spec": {"ports": [{"port": 8080}]}});
        assert!(update_errors("Service", old, omitted).is_empty());
        assert_eq!(
            create_errors(
                "Service",
                json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}})
            ),
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }
}
