//! Service defaults: ports, session affinity, traffic policies, the IP family policy and
//! `clusterIPs` mirrored from `clusterIP`.

use serde_json::{json, Value};

use super::default_status;
use crate::admission::json::{
    default_field, each_mut, is_blank, list, map, obj_mut, present, text,
};
use crate::admission::Obj;

/// `ExternallyAccessible` in pkg/api/v1/service.
pub(crate) fn externally_accessible(spec: &Value) -> bool {
    match text(spec, "type") {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => !list(spec, "externalIPs").is_empty(),
        _ => false,
    }
}

pub(crate) fn default_service(svc: &mut Value) {
    if obj_mut(svc, "spec").is_none() {
        return;
    }
    let spec = &mut svc["spec"];
    if is_blank(spec.get("sessionAffinity")) {
        spec["sessionAffinity"] = json!("None");
    }
    match text(spec, "sessionAffinity") {
        "None" => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        "ClientIP" => {
            let timeout = &spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"];
            if timeout.is_null() {
                spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 10800}});
            }
        }
        _ => {}
    }
    if is_blank(spec.get("type")) {
        spec["type"] = json!("ClusterIP");
    }
    each_mut(spec, "ports", |p| {
        if !p.is_object() {
            return;
        }
        default_field(p, "protocol", json!("TCP"));
        let target = p.get("targetPort");
        let unset = match target {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(n) => n.as_i64() == Some(0),
        };
        if unset {
            if let Some(port) = p.get("port").cloned() {
                p["targetPort"] = port;
            }
        }
    });
    let service_type = text(spec, "type").to_owned();
    if externally_accessible(spec) && is_blank(spec.get("externalTrafficPolicy")) {
        spec["externalTrafficPolicy"] = json!("Cluster");
    }
    if matches!(
        service_type.as_str(),
        "NodePort" | "LoadBalancer" | "ClusterIP"
    ) {
        default_field(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        default_field(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    // The strategy keeps clusterIP and clusterIPs[0] in step.
    let cluster_ip = text(spec, "clusterIP").to_owned();
    let first_ip = list(spec, "clusterIPs")
        .first()
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (cluster_ip.is_empty(), first_ip) {
        (false, None) => spec["clusterIPs"] = json!([cluster_ip]),
        (true, Some(first)) => spec["clusterIP"] = json!(first),
        _ => {}
    }
    // The IP-family allocator's choice for a single-stack cluster; headless services without a
    // selector ask for every family.
    if service_type != "ExternalName" {
        let policy = if text(spec, "clusterIP") == "None"
            && map(spec, "selector").is_none_or(Obj::is_empty)
        {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        default_field(spec, "ipFamilyPolicy", json!(policy));
    }
    if service_type == "LoadBalancer" {
        if let Some(ingress) = svc
            .get_mut("status")
            .and_then(|s| s.get_mut("loadBalancer"))
            .and_then(|l| l.get_mut("ingress"))
            .and_then(Value::as_array_mut)
        {
            for i in ingress.iter_mut() {
                if present(i, "ip") {
                    default_field(i, "ipMode", json!("VIP"));
                }
            }
        }
    }
    default_status(svc, json!({"loadBalancer": {}}));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::defaulted;

    #[test]
    fn service_defaults_match_kube() {
        let s = defaulted(
            "Service",
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
                "ports": [{"port": 80}, {"port": 443, "targetPort": "https", "protocol": "TCP"}]}}),
        );
        let spec = &s["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ports"][1]["targetPort"], "https");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(s["status"], json!({"loadBalancer": {}}));

        let lb = defaulted(
            "Service",
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(lb["status"], json!({"loadBalancer": {}}));
        assert_eq!(
            lb["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );

        let headless = defaulted("Service", json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");

        let external = defaulted(
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        );
        assert!(external["spec"].get("ipFamilyPolicy").is_none());
        assert!(external["spec"].get("internalTrafficPolicy").is_none());
    }
}
