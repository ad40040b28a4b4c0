//! The resolver over hand-fed stores: the names and types the specification lists.

use k8s_openapi::serde_json::{self, json};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;

use super::*;

fn resolver(services: Vec<serde_json::Value>, slices: Vec<serde_json::Value>) -> Resolver {
    let mut service_writer = Writer::<Service>::default();
    for s in services {
        service_writer.apply_watcher_event(&Event::Apply(serde_json::from_value(s).unwrap()));
    }
    let mut slice_writer = Writer::<EndpointSlice>::default();
    for s in slices {
        slice_writer.apply_watcher_event(&Event::Apply(serde_json::from_value(s).unwrap()));
    }
    Resolver {
        catalog: Catalog {
            services: service_writer.as_reader(),
            slices: slice_writer.as_reader(),
        },
        domain: "cluster.local".into(),
        ttl: 5,
    }
}

fn answers(resolution: Resolution) -> (ResponseCode, Vec<String>) {
    match resolution {
        Resolution::Answer { code, answers, .. } => {
            (code, answers.iter().map(|r| r.data().to_string()).collect())
        }
        Resolution::NotOurs => panic!("not ours"),
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

#[test]
fn the_specifications_names_answer() {
    let r = resolver(
        vec![
            json!({"metadata": {"name": "web", "namespace": "a"},
                "spec": {"clusterIP": "169.254.64.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
            json!({"metadata": {"name": "ext", "namespace": "a"},
                "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
            json!({"metadata": {"name": "hl", "namespace": "a"},
                "spec": {"clusterIP": "None", "publishNotReadyAddresses": true}}),
        ],
        vec![json!({"metadata": {"name": "hl-1", "namespace": "a",
                "labels": {"kubernetes.io/service-name": "hl"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["169.254.1.7"], "conditions": {"ready": false}}]})],
    );
    let ok = |records: &[&str]| {
        (
            ResponseCode::NoError,
            records.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        answers(r.resolve(&name("WEB.a.svc.cluster.local."), RecordType::A)),
        ok(&["169.254.64.20"])
    );
    assert_eq!(
        answers(r.resolve(&name("20.64.254.169.in-addr.arpa."), RecordType::PTR)),
        ok(&["web.a.svc.cluster.local."])
    );
    assert_eq!(
        answers(r.resolve(&name("ext.a.svc.cluster.local."), RecordType::A)),
        ok(&["db.example.com."])
    );
    // Not ready, but the service publishes not-ready addresses.
    assert_eq!(
        answers(r.resolve(&name("hl.a.svc.cluster.local."), RecordType::A)),
        ok(&["169.254.1.7"])
    );
    assert_eq!(
        answers(r.resolve(&name("169-254-9-9.a.pod.cluster.local."), RecordType::A)),
        ok(&["169.254.9.9"])
    );
    assert_eq!(
        answers(r.resolve(&name("a.svc.cluster.local."), RecordType::A)),
        ok(&[])
    );
    assert_eq!(
        answers(r.resolve(
            &name("_https._tcp.web.a.svc.cluster.local."),
            RecordType::SRV
        ))
        .0,
        ResponseCode::NXDomain
    );
    assert_eq!(
        answers(r.resolve(&name("web.b.svc.cluster.local."), RecordType::A)).0,
        ResponseCode::NXDomain
    );
    assert_eq!(
        answers(r.resolve(&name("x.y.cluster.local."), RecordType::A)).0,
        ResponseCode::NXDomain
    );
    assert_eq!(
        r.resolve(&name("web.a.svc.cluster.local.example."), RecordType::A),
        Resolution::NotOurs
    );
    assert_eq!(
        r.resolve(&name("1.0.0.127.in-addr.arpa."), RecordType::PTR),
        Resolution::NotOurs
    );
}
