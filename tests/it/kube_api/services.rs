//! Services' cluster IPs and node ports, and the `kubernetes` service, through kubectl and
//! kube-rs against in-process control planes.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::kubectl::Kubectl;
use super::ControlPlane;

fn status_of(error: kube::Error) -> kube::core::Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn service(name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn cluster_ip(svc: &Service) -> String {
    svc.spec.as_ref().unwrap().cluster_ip.clone().unwrap()
}

fn node_port(svc: &Service) -> Option<i32> {
    svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].node_port
}

fn in_dev_range(ip: &str) -> bool {
    let ip: Ipv4Addr = ip.parse().unwrap();
    let [a, b, c, _] = ip.octets();
    a == 169 && b == 254 && (64..80).contains(&c)
}

/// Polls `check` every 20 ms until it returns `Some`, failing with `what` after `seconds`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    seconds: u64,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_addresses_are_allocated_checked_and_freed() {
    let cp = ControlPlane::start(1).await;
    let kubectl = Kubectl::new(&cp);
    let services: Api<Service> = Api::namespaced(cp.client.clone(), "default");

    // kubectl's typed create commands send protobuf, which keel's API server does not read
    // yet: their objects go through `kubectl create -f` as JSON.
    let create = |args: &[&str]| {
        let object = kubectl.ok(&[args, &["--dry-run=client", "-o", "json"]].concat());
        kubectl.ok_with(&["create", "-f", "-"], Some(&object));
    };
    create(&[
        "create",
        "deployment",
        "web",
        "--image=registry.invalid/web",
        "--port=8080",
    ]);
    kubectl.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ]);
    let web = services.get("web").await.unwrap();
    let spec = web.spec.clone().unwrap();
    let ip = cluster_ip(&web);
    assert!(in_dev_range(&ip), "{ip}");
    assert_eq!(spec.cluster_ips, Some(vec![ip.clone()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_owned()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));

    create(&["create", "service", "nodeport", "np", "--tcp=80:8080"]);
    let np = services.get("np").await.unwrap();
    let port = node_port(&np).unwrap();
    assert!((30000..=32767).contains(&port), "{port}");
    assert!(in_dev_range(&cluster_ip(&np)));

    create(&[
        "create",
        "service",
        "clusterip",
        "headless",
        "--clusterip=None",
    ]);
    assert_eq!(cluster_ip(&services.get("headless").await.unwrap()), "None");

    // Someone else's address, an address outside the range, and someone else's node port.
    let post = PostParams::default();
    let taken = service("taken", json!({"clusterIP": ip, "ports": [{"port": 80}]}));
    let status = status_of(services.create(&post, &taken).await.unwrap_err());
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        format!("Service \"taken\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated")
    );
    let far = service(
        "far",
        json!({"clusterIP": "169.254.1.1", "ports": [{"port": 80}]}),
    );
    let status = status_of(services.create(&post, &far).await.unwrap_err());
    assert!(
        status.message.ends_with("failed to allocate IP 169.254.1.1: the provided IP (169.254.1.1) is not in the valid range. The range of valid IPs is 169.254.64.0/20"),
        "{}",
        status.message
    );
    let clash = service(
        "clash",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}),
    );
    let status = status_of(services.create(&post, &clash).await.unwrap_err());
    assert_eq!(
        status.message,
        format!("Service \"clash\" is invalid: spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated")
    );
    // The refused creates left nothing claimed: their would-be addresses are free.
    assert!(services.get_opt("taken").await.unwrap().is_none());

    // A cluster IP may not change.
    let other = "169.254.64.200";
    let moved = json!({"spec": {"clusterIP": other, "clusterIPs": [other]}});
    let status = status_of(
        services
            .patch("web", &PatchParams::default(), &Patch::Merge(&moved))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        status.message,
        format!("Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: []string{{\"{other}\"}}: may not change once set")
    );

    // Turning the NodePort service into a ClusterIP one frees its node port.
    let to_cluster_ip = json!({"spec": {"type": "ClusterIP"}});
    let np = services
        .patch("np", &PatchParams::default(), &Patch::Merge(&to_cluster_ip))
        .await
        .unwrap();
    assert_eq!(node_port(&np), None);
    services.create(&post, &clash).await.unwrap();

    // Deleting a service frees its address for the next one that asks.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let again = services.create(&post, &taken).await.unwrap();
    assert_eq!(cluster_ip(&again), ip);

    let kubernetes = eventually(20, "the kubernetes service", || {
        let services = services.clone();
        async move { services.get_opt("kubernetes").await.unwrap() }
    })
    .await;
    assert_eq!(cluster_ip(&kubernetes), "169.254.64.1");
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_through_three_members_never_share_an_address() {
    let cp = ControlPlane::start(3).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push(cp.client_of_member(i).await);
    }
    let creates = (0..60).map(|i| {
        let services: Api<Service> = Api::namespaced(clients[i % 3].clone(), "default");
        let kind = if i % 2 == 0 { "NodePort" } else { "ClusterIP" };
        async move {
            let svc = service(
                &format!("s{i}"),
                json!({"type": kind, "ports": [{"port": 80}]}),
            );
            services.create(&PostParams::default(), &svc).await.unwrap()
        }
    });
    futures::future::join_all(creates).await;
    let all: Api<Service> = Api::namespaced(cp.client.clone(), "default");
    let stored = all.list(&ListParams::default()).await.unwrap().items;
    let mine: Vec<&Service> = stored
        .iter()
        .filter(|s| s.metadata.name.as_deref().unwrap().starts_with('s'))
        .collect();
    assert_eq!(mine.len(), 60);
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for svc in &stored {
        assert!(ips.insert(cluster_ip(svc)), "{} shared", cluster_ip(svc));
        if let Some(port) = node_port(svc) {
            assert!(ports.insert(port), "node port {port} shared");
        }
    }
    assert_eq!(ports.len(), 30);
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_range_answers_kubes_error() {
    let cp = ControlPlane::start_tuned(1, |c| {
        c.service_cluster_ip_range = "169.254.64.0/28".into();
    })
    .await;
    let services: Api<Service> = Api::namespaced(cp.client.clone(), "default");
    eventually(20, "the kubernetes service", || {
        let services = services.clone();
        async move { services.get_opt("kubernetes").await.unwrap() }
    })
    .await;
    // 14 usable addresses, the first the kubernetes service's.
    let post = PostParams::default();
    for i in 0..13 {
        let svc = service(&format!("s{i}"), json!({"ports": [{"port": 80}]}));
        services.create(&post, &svc).await.unwrap();
    }
    let one_more = service("one-more", json!({"ports": [{"port": 80}]}));
    let status = status_of(services.create(&post, &one_more).await.unwrap_err());
    assert_eq!(status.code, 500);
    assert_eq!(status.reason, "InternalError");
    assert_eq!(
        status.message,
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    );
    let freed = cluster_ip(&services.get("s3").await.unwrap());
    services
        .delete("s3", &DeleteParams::default())
        .await
        .unwrap();
    let created = services.create(&post, &one_more).await.unwrap();
    assert_eq!(cluster_ip(&created), freed);
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_on_start_restores_lost_claims() {
    let cp = ControlPlane::start(1).await;
    let services: Api<Service> = Api::namespaced(cp.client.clone(), "default");
    let post = PostParams::default();
    let keep = service("keep", json!({"type": "NodePort", "ports": [{"port": 80}]}));
    let keep = services.create(&post, &keep).await.unwrap();
    let (ip, port) = (cluster_ip(&keep), node_port(&keep).unwrap());
    // Lose every claim, as a store written before claims existed would have none.
    let store =
        keel::client::Client::new(vec![cp.cluster.endpoints()], Default::default()).unwrap();
    for prefix in ["/registry/ipaddresses/", "/registry/servicenodeports/"] {
        let start = prefix.as_bytes().to_vec();
        let mut end = start.clone();
        *end.last_mut().unwrap() += 1;
        store
            .delete_range(&keel::api::models::DeleteRangeRequest {
                key: start,
                range_end: end,
                prev_kv: false,
            })
            .await
            .unwrap();
    }
    // The API servers restart over the same members (repair runs where the API server does).
    let ControlPlane { mut cluster, .. } = cp;
    for apiserver in cluster.apiservers.drain(..) {
        apiserver.stop().await;
    }
    let cp = ControlPlane::on(cluster).await;
    let store =
        keel::client::Client::new(vec![cp.cluster.endpoints()], Default::default()).unwrap();
    let claim = format!("/registry/ipaddresses/{ip}");
    eventually(20, "repair restored the claim", || {
        let (store, claim) = (store.clone(), claim.clone());
        async move {
            let request = keel::api::models::RangeRequest {
                key: claim.into_bytes(),
                ..Default::default()
            };
            (!store.range(&request).await.unwrap().kvs.is_empty()).then_some(())
        }
    })
    .await;
    let services: Api<Service> = Api::namespaced(cp.client.clone(), "default");
    let same_ip = service("same-ip", json!({"clusterIP": ip, "ports": [{"port": 80}]}));
    let status = status_of(services.create(&post, &same_ip).await.unwrap_err());
    assert!(
        status.message.ends_with("provided IP is already allocated"),
        "{}",
        status.message
    );
    let same_port = service(
        "same-port",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}),
    );
    let status = status_of(services.create(&post, &same_port).await.unwrap_err());
    assert!(
        status
            .message
            .ends_with("provided port is already allocated"),
        "{}",
        status.message
    );
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_service_lists_the_live_members() {
    let mut cp = ControlPlane::start(3).await;
    let services: Api<Service> = Api::namespaced(cp.client.clone(), "default");
    let kubernetes = eventually(20, "the kubernetes service", || {
        let services = services.clone();
        async move { services.get_opt("kubernetes").await.unwrap() }
    })
    .await;
    assert_eq!(cluster_ip(&kubernetes), "169.254.64.1");
    let port = &kubernetes.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("https"), 443));

    let members = |cp: &ControlPlane| -> HashSet<String> {
        cp.cluster
            .apiservers
            .iter()
            .map(|a| a.addr.to_string())
            .collect()
    };
    let endpoints: Api<Endpoints> = Api::namespaced(cp.client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(cp.client.clone(), "default");
    let listed = || {
        let (endpoints, slices) = (endpoints.clone(), slices.clone());
        async move {
            let ep = endpoints.get_opt("kubernetes").await.unwrap()?;
            let from_endpoints: HashSet<String> = ep
                .subsets
                .unwrap_or_default()
                .iter()
                .flat_map(|s| {
                    let port = s.ports.as_ref().unwrap()[0].port;
                    s.addresses
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |a| format!("{}:{port}", a.ip))
                })
                .collect();
            let selector = ListParams::default().labels("kubernetes.io/service-name=kubernetes");
            let from_slices: HashSet<String> = slices
                .list(&selector)
                .await
                .unwrap()
                .items
                .iter()
                .flat_map(|s| {
                    let port = s.ports.as_ref().unwrap()[0].port.unwrap();
                    s.endpoints
                        .iter()
                        .flat_map(move |e| e.addresses.iter().map(move |a| format!("{a}:{port}")))
                })
                .collect();
            Some((from_endpoints, from_slices))
        }
    };
    let all = members(&cp);
    eventually(20, "the endpoints list every member", || {
        let (listed, all) = (listed(), all.clone());
        async move {
            let (e, s) = listed.await?;
            (e == all && s == all).then_some(())
        }
    })
    .await;

    // A member that stops leaves the endpoints.
    cp.cluster.apiservers.pop().unwrap().stop().await;
    let left = members(&cp);
    assert_eq!(left.len(), 2);
    eventually(20, "the stopped member left the endpoints", || {
        let (listed, left) = (listed(), left.clone());
        async move {
            let (e, s) = listed.await?;
            (e == left && s == left).then_some(())
        }
    })
    .await;
    cp.stop().await;
}
