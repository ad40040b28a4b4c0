//! A pod's `/etc/resolv.conf`, as kubelet writes it from `dnsPolicy` and `dnsConfig`
//! (kubelet's `pkg/kubelet/network/dns`):
//!
//! | dnsPolicy | pod network | host network |
//! |---|---|---|
//! | ClusterFirst (default) | cluster DNS, search `<ns>.svc.<domain> svc.<domain> <domain>`, `ndots:5` | the node's file |
//! | ClusterFirstWithHostNet | cluster DNS | cluster DNS |
//! | Default | the node's file | the node's file |
//! | None | `dnsConfig` only | `dnsConfig` only |
//!
//! `dnsConfig`'s nameservers and searches are appended (without repeats) and its options
//! override by name. A node with no cluster DNS configured gives ClusterFirst pods the node's
//! file, as kubelet does. `None` (no file of the pod's own) means the node's file as it is.

use k8s_openapi::api::core::v1::{Pod, PodDNSConfig};

/// The most nameservers a resolver reads (glibc's MAXNS); kubelet drops the rest.
const MAX_NAMESERVERS: usize = 3;

/// The node's cluster DNS settings (kubelet's `--cluster-dns`, `--cluster-domain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDns {
    /// The DNS Service's ClusterIPs; empty when the cluster has no DNS.
    pub nameservers: Vec<std::net::IpAddr>,
    /// The cluster domain (`cluster.local`).
    pub domain: String,
}

impl Default for ClusterDns {
    fn default() -> Self {
        ClusterDns {
            nameservers: Vec::new(),
            domain: "cluster.local".into(),
        }
    }
}

/// A resolver configuration: nameservers, search domains, options.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Resolv {
    nameservers: Vec<String>,
    searches: Vec<String>,
    options: Vec<(String, Option<String>)>,
}

impl Resolv {
    fn parse(text: &str) -> Resolv {
        let mut resolv = Resolv::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => resolv.nameservers.extend(words.next().map(str::to_owned)),
                Some("search" | "domain") => {
                    resolv.searches = words.map(str::to_owned).collect();
                }
                Some("options") => {
                    for option in words {
                        resolv.set_option(option);
                    }
                }
                _ => {}
            }
        }
        resolv
    }

    fn set_option(&mut self, option: &str) {
        let (name, value) = match option.split_once(':') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (option, None),
        };
        match self.options.iter_mut().find(|(n, _)| n == name) {
            Some(existing) => existing.1 = value,
            None => self.options.push((name.to_owned(), value)),
        }
    }

    fn merge(&mut self, config: &PodDNSConfig) {
        for nameserver in config.nameservers.iter().flatten() {
            if !self.nameservers.contains(nameserver) {
                self.nameservers.push(nameserver.clone());
            }
        }
        for search in config.searches.iter().flatten() {
            if !self.searches.contains(search) {
                self.searches.push(search.clone());
            }
        }
        for option in config.options.iter().flatten() {
            let Some(name) = option.name.as_deref() else {
                continue;
            };
            match &option.value {
                Some(value) => self.set_option(&format!("{name}:{value}")),
                None => self.set_option(name),
            }
        }
    }

    fn render(&self) -> String {
        let mut text = String::new();
        for nameserver in self.nameservers.iter().take(MAX_NAMESERVERS) {
            text.push_str(&format!("nameserver {nameserver}\n"));
        }
        if !self.searches.is_empty() {
            text.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        if !self.options.is_empty() {
            let options: Vec<String> = self
                .options
                .iter()
                .map(|(name, value)| match value {
                    Some(value) => format!("{name}:{value}"),
                    None => name.clone(),
                })
                .collect();
            text.push_str(&format!("options {}\n", options.join(" ")));
        }
        text
    }
}

/// The resolv.conf `pod` gets on a node with `cluster` DNS, `host_resolv` reading the node's
/// own file when a policy needs it; `None` when the pod simply sees the node's file.
pub fn resolv_conf(
    pod: &Pod,
    cluster: &ClusterDns,
    host_resolv: impl FnOnce() -> String,
) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let host_network = spec.host_network == Some(true);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster_first = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    } && !cluster.nameservers.is_empty();
    let mut resolv = if cluster_first {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let domain = &cluster.domain;
        let host = Resolv::parse(&host_resolv());
        let mut searches = vec![
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.clone(),
        ];
        for search in host.searches {
            if !searches.contains(&search) {
                searches.push(search);
            }
        }
        Resolv {
            nameservers: cluster
                .nameservers
                .iter()
                .map(|ip| ip.to_string())
                .collect(),
            searches,
            options: vec![("ndots".into(), Some("5".into()))],
        }
    } else if policy == "None" {
        Resolv::default()
    } else if spec.dns_config.is_some() {
        Resolv::parse(&host_resolv())
    } else {
        return None;
    };
    if let Some(config) = &spec.dns_config {
        resolv.merge(config);
    }
    Some(resolv.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": spec}),
        )
        .unwrap()
    }

    fn cluster() -> ClusterDns {
        ClusterDns {
            nameservers: vec!["169.254.64.10".parse().unwrap()],
            domain: "cluster.local".into(),
        }
    }

    const HOST: &str = "nameserver 127.0.0.53\nsearch corp.example\noptions edns0\n";

    #[test]
    fn cluster_first_points_pods_at_the_cluster_dns() {
        let text = resolv_conf(&pod(json!({"containers": []})), &cluster(), || HOST.into());
        assert_eq!(
            text.as_deref(),
            Some(
                "nameserver 169.254.64.10\n\
                 search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n\
                 options ndots:5\n"
            )
        );
        // Host-network pods keep the node's file unless they ask for the cluster's.
        let host_net = pod(json!({"hostNetwork": true, "containers": []}));
        assert_eq!(resolv_conf(&host_net, &cluster(), || HOST.into()), None);
        let with_host_net = pod(json!({"hostNetwork": true,
            "dnsPolicy": "ClusterFirstWithHostNet", "containers": []}));
        assert!(resolv_conf(&with_host_net, &cluster(), || HOST.into())
            .unwrap()
            .starts_with("nameserver 169.254.64.10\n"));
        // No cluster DNS configured: the node's file, as kubelet falls back.
        let plain = pod(json!({"containers": []}));
        assert_eq!(
            resolv_conf(&plain, &ClusterDns::default(), || HOST.into()),
            None
        );
    }

    #[test]
    fn dns_config_merges_and_none_uses_it_alone() {
        let config = json!({"nameservers": ["169.254.9.9", "169.254.64.10"],
            "searches": ["extra.local"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "single-request"}]});
        let merged = pod(json!({"dnsConfig": config, "containers": []}));
        assert_eq!(
            resolv_conf(&merged, &cluster(), || HOST.into()).unwrap(),
            "nameserver 169.254.64.10\nnameserver 169.254.9.9\n\
             search shop.svc.cluster.local svc.cluster.local cluster.local corp.example extra.local\n\
             options ndots:2 single-request\n"
        );
        let none = pod(json!({"dnsPolicy": "None", "dnsConfig": config, "containers": []}));
        assert_eq!(
            resolv_conf(&none, &cluster(), || HOST.into()).unwrap(),
            "nameserver 169.254.9.9\nnameserver 169.254.64.10\nsearch extra.local\n\
             options ndots:2 single-request\n"
        );
        let default = pod(json!({"dnsPolicy": "Default",
            "dnsConfig": {"searches": ["extra.local"]}, "containers": []}));
        assert_eq!(
            resolv_conf(&default, &cluster(), || HOST.into()).unwrap(),
            "nameserver 127.0.0.53\nsearch corp.example extra.local\noptions edns0\n"
        );
    }
}
