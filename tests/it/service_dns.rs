//! Issue 22's proof: pods find each other by name. Two Deployments (web, client) in namespace
//! `ns`; the client pod reaches `http://web.ns.svc.cluster.local` and `http://web` (the
//! search path), resolved by keel's cluster DNS run as `keel dev` runs it
//! ([`keel::cli::dns::ClusterDns`]: keel-dns on loopback, the `kube-system/kube-dns` Service at
//! the range's tenth address, the node proxy's frontends for it) and reached at that ClusterIP
//! through the node proxy over UDP, by busybox's resolver reading the resolv.conf the agent
//! wrote. SRV records, a headless service's pod records, and NXDOMAIN once the Service is
//! deleted. Root (the host runtime), as `service_proxy.rs`, whose fixture it shares.
//!
//! Also: a node's credentials may list and watch what the proxy follows (its RBAC, no root).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::kube_api::ControlPlane;
use crate::poll::eventually;
use crate::service_proxy::{
    answers, client, container_of, exec, ready_pods, web, wget, HostNames, ServiceNode,
};

const NAMES: HostNames = HostNames {
    node: "dns-node",
    pod_cidr: "169.254.45.0/24",
    bridge: "keelit-dnsbr",
    proxy_link: "keelit-dns0",
};

const NAMESPACE: &str = "ns";

fn service(value: serde_json::Value) -> Service {
    serde_json::from_value(value).unwrap()
}

/// A pod IP's dashed form, as DNS names it (`169-254-45-2`).
fn dashed(ip: &str) -> String {
    ip.replace('.', "-")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_reach_services_by_name_through_cluster_dns() {
    let node = ServiceNode::start(NAMES, true).await;
    let (host, admin) = (node.host.clone(), node.admin.clone());
    let dns_ip = node.dns.as_ref().unwrap().service_ip.to_string();
    assert_eq!(dns_ip, "169.254.64.10", "keel dev's cluster DNS address");

    let post = PostParams::default();
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&post, &namespace)
        .await
        .unwrap();
    let deployments = Api::namespaced(admin.clone(), NAMESPACE);
    deployments.create(&post, &web(NAMES.node)).await.unwrap();
    deployments
        .create(&post, &client(NAMES.node))
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(admin.clone(), NAMESPACE);
    let web_service = services
        .create(
            &post,
            &service(json!({
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"},
                         "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
            })),
        )
        .await
        .unwrap();
    let cluster_ip = web_service.spec.unwrap().cluster_ip.unwrap();
    services
        .create(
            &post,
            &service(json!({
                "metadata": {"name": "web-headless"},
                "spec": {"clusterIP": "None", "selector": {"app": "web"},
                         "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}
            })),
        )
        .await
        .unwrap();

    // The DNS Service is there for kubectl, at the address pods are told.
    let kube_dns = Api::<Service>::namespaced(admin.clone(), "kube-system")
        .get("kube-dns")
        .await
        .unwrap();
    assert_eq!(kube_dns.spec.unwrap().cluster_ip.as_deref(), Some(&*dns_ip));

    let pods: Api<Pod> = Api::namespaced(admin.clone(), NAMESPACE);
    let backends = ready_pods(&pods, "web", 2).await;
    let names: BTreeSet<String> = backends
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    let pod_ips: BTreeSet<String> = backends
        .iter()
        .map(|p| p.status.as_ref().unwrap().pod_ip.clone().unwrap())
        .collect();
    let client_id = container_of(&ready_pods(&pods, "client", 1).await[0]);

    // The resolv.conf the agent wrote (dnsPolicy ClusterFirst).
    let (code, resolv) = exec(&host, &client_id, &["busybox", "cat", "/etc/resolv.conf"]).await;
    assert_eq!(code, 0, "{resolv}");
    for line in [
        format!("nameserver {dns_ip}"),
        "search ns.svc.cluster.local svc.cluster.local cluster.local".to_owned(),
        "options ndots:5".to_owned(),
    ] {
        assert!(resolv.lines().any(|l| l == line), "{line:?} in {resolv}");
    }

    // By name: the full name, and the short one through the search path. Requests spread
    // over both web pods, as by ClusterIP.
    let full = "http://web.ns.svc.cluster.local/";
    eventually(
        "web.ns.svc.cluster.local to answer from both web pods",
        || async {
            let mut seen = BTreeSet::new();
            for _ in 0..2 {
                let (code, body) = wget(&host, &client_id, full).await;
                if code != 0 {
                    return None;
                }
                seen.insert(body);
            }
            (seen == names).then_some(())
        },
    )
    .await;
    let short: BTreeSet<String> = answers(&host, &client_id, "http://web/", 4)
        .await
        .into_iter()
        .collect();
    assert_eq!(short, names, "http://web/ through the search path");

    // What the resolver is told, asked at the DNS ClusterIP (nslookup reads resolv.conf too).
    let nslookup = |args: &'static [&'static str]| {
        let host = host.clone();
        let client_id = client_id.clone();
        async move {
            let mut argv = vec!["busybox", "nslookup"];
            argv.extend(args);
            exec(&host, &client_id, &argv).await
        }
    };
    let (code, out) = nslookup(&["web.ns.svc.cluster.local."]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("Server:\t\t{dns_ip}")), "{out}");
    assert!(out.contains(&format!("Address: {cluster_ip}")), "{out}");
    // SRV: one per port of the service.
    let (code, out) = nslookup(&["-type=SRV", "_http._tcp.web.ns.svc.cluster.local."]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" 80 web.ns.svc.cluster.local"), "{out}");
    // Headless: the ready pods' addresses, each pod by its dashed address, and SRV per pod.
    let (code, out) = nslookup(&["web-headless.ns.svc.cluster.local."]).await;
    assert_eq!(code, 0, "{out}");
    for ip in &pod_ips {
        assert!(out.contains(&format!("Address: {ip}")), "{ip} in {out}");
    }
    let (code, out) =
        nslookup(&["-type=SRV", "_http._tcp.web-headless.ns.svc.cluster.local."]).await;
    assert_eq!(code, 0, "{out}");
    for ip in &pod_ips {
        let target = format!(" 8080 {}.web-headless.ns.svc.cluster.local", dashed(ip));
        assert!(out.contains(&target), "{target} in {out}");
    }
    let one = pod_ips.first().unwrap();
    let record = format!("{}.web-headless.ns.svc.cluster.local.", dashed(one));
    let (code, out) = exec(&host, &client_id, &["busybox", "nslookup", &record]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("Address: {one}")), "{out}");
    // The DNS Service names itself.
    let (code, out) = nslookup(&["kube-dns.kube-system.svc.cluster.local."]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("Address: {dns_ip}")), "{out}");

    // The Service deleted: its name is NXDOMAIN within the records' TTL, and wget by name fails.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("web.ns.svc.cluster.local to be NXDOMAIN", || async {
        let (code, out) = nslookup(&["web.ns.svc.cluster.local."]).await;
        (code != 0 && out.contains("NXDOMAIN")).then_some(())
    })
    .await;
    let (code, out) = wget(&host, &client_id, full).await;
    assert_ne!(code, 0, "{out}");
    // The headless one still answers.
    let (code, _) = nslookup(&["web-headless.ns.svc.cluster.local."]).await;
    assert_eq!(code, 0);

    node.stop().await;
}

/// The node's credentials (`system:node:<name>`, `system:nodes`), which `keel agent --proxy`
/// runs its proxy with, may list and watch Services and EndpointSlices cluster-wide
/// (kube's `system:node-proxier`, bound to nodes too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_credentials_read_what_the_proxy_follows() {
    let cp = ControlPlane::start(1).await;
    let node = cp.cluster.apiservers[0].client("system:node:n1", &["system:nodes"]);
    let services: Api<Service> = Api::all(node.clone());
    let slices: Api<EndpointSlice> = Api::all(node.clone());
    let listed = services.list(&ListParams::default()).await.unwrap();
    assert!(listed
        .items
        .iter()
        .any(|s| s.metadata.name.as_deref() == Some("kubernetes")));
    slices.list(&ListParams::default()).await.unwrap();
    // Watching is proven by the proxy itself: service_proxy.rs runs it as the node.
    // Writing stays the controllers' job.
    let refused = Api::<EndpointSlice>::namespaced(node, "default")
        .delete("kubernetes", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused:?}"
    );
    cp.stop().await;
}
