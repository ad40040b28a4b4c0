//! The Endpoints and EndpointSlice controllers: a Service's slice lists the pods it selects
//! with their readiness (a pod turning not-ready moves, a terminating one is marked), its
//! named targetPort resolved per pod; a deleted pod leaves; 150 pods make two slices; the
//! Service's deletion takes its slices and Endpoints; kubectl shows them. The test plays
//! kubelet: it gives pods their podIP and Ready condition through `pods/status`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt as _;
use serde_json::json;

use super::{wait_for, Harness};
use crate::kube_api::kubectl::Kubectl;

const NAMESPACE: &str = "shop";

async fn create_service(h: &Harness, name: &str, app: &str) -> Service {
    let services: Api<Service> = Api::namespaced(h.client.clone(), NAMESPACE);
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"tier": "front"}},
        "spec": {"selector": {"app": app}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http", "appProtocol": "http"},
        ]},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap()
}

async fn create_pod(pods: &Api<Pod>, name: &str, app: &str, http_port: Option<i32>) {
    let ports: Vec<_> = http_port
        .map(|p| json!({"name": "http", "containerPort": p}))
        .into_iter()
        .collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx", "ports": ports}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

/// Plays kubelet: the pod runs at `ip`, Ready or not.
async fn set_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

async fn slices_of(h: &Harness, service: &str) -> Vec<EndpointSlice> {
    let slices: Api<EndpointSlice> = Api::namespaced(h.client.clone(), NAMESPACE);
    let selector = format!("kubernetes.io/service-name={service}");
    slices
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
}

/// Every endpoint of the Service's slices: pod name → (ready, serving, terminating).
fn conditions(slices: &[EndpointSlice]) -> BTreeMap<String, (bool, bool, bool)> {
    slices
        .iter()
        .flat_map(|s| &s.endpoints)
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            let pod = e.target_ref.as_ref().and_then(|r| r.name.clone()).unwrap();
            (
                pod,
                (
                    c.ready.unwrap_or(false),
                    c.serving.unwrap_or(false),
                    c.terminating.unwrap_or(false),
                ),
            )
        })
        .collect()
}

/// Waits until the Service's slices show exactly `want`.
async fn wait_for_conditions(
    h: &Harness,
    service: &str,
    want: &[(&str, (bool, bool, bool))],
) -> Vec<EndpointSlice> {
    let want: BTreeMap<String, _> = want.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect();
    wait_for(
        &format!("{service}'s slices to show {want:?}"),
        30,
        || async {
            let slices = slices_of(h, service).await;
            (conditions(&slices) == want).then_some(slices)
        },
    )
    .await
}

fn addresses(
    subset_addresses: Option<&Vec<k8s_openapi::api::core::v1::EndpointAddress>>,
) -> Vec<String> {
    subset_addresses
        .map(|a| a.iter().map(|a| a.ip.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_services_slices_and_endpoints_follow_its_pods() {
    let h = Harness::start().await;
    h.namespace(NAMESPACE).await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), NAMESPACE);
    let service = create_service(&h, "web", "web").await;
    for (name, port) in [("web-a", 8080), ("web-b", 8080), ("web-c", 8081)] {
        create_pod(&pods, name, "web", Some(port)).await;
    }
    create_pod(&pods, "web-noport", "web", None).await;
    create_pod(&pods, "db", "db", Some(5432)).await;
    create_pod(&pods, "web-pending", "web", Some(8080)).await;
    set_status(&pods, "web-a", "169.254.10.1", true).await;
    set_status(&pods, "web-b", "169.254.10.2", true).await;
    set_status(&pods, "web-c", "169.254.10.3", false).await;
    set_status(&pods, "web-noport", "169.254.10.4", true).await;
    set_status(&pods, "db", "169.254.10.5", true).await;

    // Every selected pod with an IP; the one without the named port in a slice of its own
    // without ports; web-pending (no IP yet) and db (not selected) absent.
    let slices = wait_for_conditions(
        &h,
        "web",
        &[
            ("web-a", (true, true, false)),
            ("web-b", (true, true, false)),
            ("web-c", (false, false, false)),
            ("web-noport", (true, true, false)),
        ],
    )
    .await;
    assert_eq!(slices.len(), 3, "one slice per port set: {slices:#?}");
    for slice in &slices {
        assert_eq!(slice.address_type, "IPv4");
        assert!(slice.metadata.generate_name.as_deref() == Some("web-"));
        let labels = slice.labels();
        assert_eq!(
            labels["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(labels["tier"], "front");
        let owner = &slice.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Service", service.uid().unwrap().as_str(), Some(true))
        );
        assert!(slice
            .annotations()
            .contains_key("endpoints.kubernetes.io/last-change-trigger-time"));
        let ports = slice.ports.clone().unwrap_or_default();
        let pods: Vec<_> = slice
            .endpoints
            .iter()
            .filter_map(|e| e.target_ref.as_ref()?.name.clone())
            .collect();
        match pods.first().map(String::as_str) {
            Some("web-noport") => assert!(ports.is_empty(), "{ports:?}"),
            Some("web-a") => {
                assert_eq!(pods, ["web-a", "web-b"]);
                assert_eq!(
                    (
                        ports[0].name.as_deref(),
                        ports[0].port,
                        ports[0].app_protocol.as_deref()
                    ),
                    (Some("http"), Some(8080), Some("http"))
                );
                assert_eq!(slice.endpoints[0].node_name.as_deref(), Some("node-1"));
            }
            Some("web-c") => assert_eq!(ports[0].port, Some(8081)),
            other => panic!("unexpected slice {other:?}"),
        }
    }

    let endpoints_api: Api<Endpoints> = Api::namespaced(h.client.clone(), NAMESPACE);
    let endpoints = endpoints_api.get("web").await.unwrap();
    let subsets = endpoints.subsets.unwrap();
    let port_8080 = subsets
        .iter()
        .find(|s| s.ports.as_ref().is_some_and(|p| p[0].port == 8080))
        .unwrap();
    assert_eq!(
        addresses(port_8080.addresses.as_ref()),
        ["169.254.10.1", "169.254.10.2"]
    );
    let port_8081 = subsets
        .iter()
        .find(|s| s.ports.as_ref().is_some_and(|p| p[0].port == 8081))
        .unwrap();
    assert_eq!(
        addresses(port_8081.not_ready_addresses.as_ref()),
        ["169.254.10.3"]
    );
    assert_eq!(port_8081.addresses, None);

    // web-b's Ready turns False: not ready in its slice, a notReadyAddress in Endpoints.
    set_status(&pods, "web-b", "169.254.10.2", false).await;
    wait_for_conditions(
        &h,
        "web",
        &[
            ("web-a", (true, true, false)),
            ("web-b", (false, false, false)),
            ("web-c", (false, false, false)),
            ("web-noport", (true, true, false)),
        ],
    )
    .await;
    wait_for("web-b among the not-ready addresses", 30, || async {
        let e = endpoints_api.get("web").await.unwrap();
        e.subsets?
            .iter()
            .any(|s| addresses(s.not_ready_addresses.as_ref()) == ["169.254.10.2"])
            .then_some(())
    })
    .await;

    // web-a terminating (a finalizer holds it): serving, not ready, terminating in its slice;
    // gone from Endpoints. Then deleted for good: gone from the slice.
    let finalizer = json!({"metadata": {"finalizers": ["example.com/hold"]}});
    pods.patch("web-a", &PatchParams::default(), &Patch::Merge(finalizer))
        .await
        .unwrap();
    pods.delete("web-a", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_conditions(
        &h,
        "web",
        &[
            ("web-a", (false, true, true)),
            ("web-b", (false, false, false)),
            ("web-c", (false, false, false)),
            ("web-noport", (true, true, false)),
        ],
    )
    .await;
    let e = endpoints_api.get("web").await.unwrap();
    assert!(
        !serde_json::to_string(&e).unwrap().contains("169.254.10.1"),
        "{e:?}"
    );
    let release = json!({"metadata": {"finalizers": null}});
    pods.patch("web-a", &PatchParams::default(), &Patch::Merge(release))
        .await
        .unwrap();
    let _ = pods
        .delete("web-a", &DeleteParams::default().grace_period(0))
        .await;
    wait_for_conditions(
        &h,
        "web",
        &[
            ("web-b", (false, false, false)),
            ("web-c", (false, false, false)),
            ("web-noport", (true, true, false)),
        ],
    )
    .await;

    // kubectl shows them.
    let kubectl = Kubectl::new(&h.cp);
    let (slices_out, endpoints_out) = tokio::task::spawn_blocking(move || {
        (
            kubectl.ok(&["get", "endpointslices", "-n", NAMESPACE]),
            kubectl.ok(&["get", "endpoints", "web", "-n", NAMESPACE]),
        )
    })
    .await
    .unwrap();
    let header: Vec<&str> = slices_out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]);
    assert!(
        slices_out.contains("IPv4")
            && slices_out.contains("8081")
            && slices_out.contains("169.254.10.3"),
        "{slices_out}"
    );
    let header: Vec<&str> = endpoints_out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "ENDPOINTS", "AGE"]);
    // Only ready addresses are shown: web-noport's (no port) and none of the not-ready ones.
    assert!(endpoints_out.contains("169.254.10.4"), "{endpoints_out}");
    assert!(!endpoints_out.contains("169.254.10.2"), "{endpoints_out}");

    // The Service goes: its slices and Endpoints go with it.
    let services: Api<Service> = Api::namespaced(h.client.clone(), NAMESPACE);
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("web's slices and endpoints to go", 30, || async {
        let gone = slices_of(&h, "web").await.is_empty()
            && endpoints_api.get_opt("web").await.unwrap().is_none();
        gone.then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_hundred_and_fifty_pods_make_two_slices_and_scale_down_removes_addresses() {
    let h = Harness::start().await;
    h.namespace(NAMESPACE).await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), NAMESPACE);
    create_service(&h, "big", "big").await;
    for i in 0..150 {
        let name = format!("big-{i:03}");
        create_pod(&pods, &name, "big", Some(8080)).await;
        set_status(&pods, &name, &format!("169.254.20.{}", i + 1), true).await;
    }
    let slices = wait_for("150 endpoints in big's slices", 60, || async {
        let slices = slices_of(&h, "big").await;
        (conditions(&slices).len() == 150).then_some(slices)
    })
    .await;
    let mut sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [50, 100]);

    // Scale down to 30: the addresses of the deleted pods leave, one slice remains.
    for i in 30..150 {
        pods.delete(
            &format!("big-{i:03}"),
            &DeleteParams::default().grace_period(0),
        )
        .await
        .unwrap();
    }
    let slices = wait_for("30 endpoints in big's slices", 60, || async {
        let slices = slices_of(&h, "big").await;
        (conditions(&slices).len() == 30 && slices.len() == 1).then_some(slices)
    })
    .await;
    let endpoints: Api<Endpoints> = Api::namespaced(h.client.clone(), NAMESPACE);
    let e = wait_for("30 addresses in big's Endpoints", 30, || async {
        let e = endpoints.get("big").await.unwrap();
        let n: usize = e
            .subsets
            .iter()
            .flatten()
            .map(|s| addresses(s.addresses.as_ref()).len())
            .sum();
        (n == 30).then_some(e)
    })
    .await;
    assert!(!serde_json::to_string(&e)
        .unwrap()
        .contains("169.254.20.31\""));
    assert_eq!(slices[0].endpoints.len(), 30);
    h.stop().await;
}
