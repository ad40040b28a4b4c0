//! keel-dns: queries answered per second with 1,000 Services (and 1,000 headless ones with an
//! EndpointSlice each) in its stores, from query bytes to answer (no socket: the resolver and
//! the wire format are what this measures).
//!
//! How to run: `cargo bench --bench dns -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::str::FromStr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use keel_dns::{Catalog, DnsServer, Resolver};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use serde_json::json;

const SERVICES: usize = 1000;

fn server() -> DnsServer {
    let mut services = Writer::<Service>::default();
    let mut slices = Writer::<EndpointSlice>::default();
    for i in 0..SERVICES {
        let ip = format!("169.254.{}.{}", 64 + i / 250, 1 + i % 250);
        let svc = json!({"metadata": {"name": format!("web-{i}"), "namespace": "bench"},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}});
        services.apply_watcher_event(&Event::Apply(serde_json::from_value(svc).unwrap()));
        let headless = json!({"metadata": {"name": format!("db-{i}"), "namespace": "bench"},
            "spec": {"clusterIP": "None"}});
        services.apply_watcher_event(&Event::Apply(serde_json::from_value(headless).unwrap()));
        let slice = json!({"metadata": {"name": format!("db-{i}-x"), "namespace": "bench",
                "labels": {"kubernetes.io/service-name": format!("db-{i}")}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [format!("169.254.{}.{}", i / 250, 1 + i % 250)],
                "conditions": {"ready": true}}]});
        slices.apply_watcher_event(&Event::Apply(serde_json::from_value(slice).unwrap()));
    }
    DnsServer {
        resolver: Resolver {
            catalog: Catalog {
                services: services.as_reader(),
                slices: slices.as_reader(),
            },
            domain: "cluster.local".into(),
            ttl: 5,
        },
        forwarder: None,
    }
}

fn query(name: &str) -> Vec<u8> {
    let mut message = Message::new();
    message.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    message.to_vec().unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let server = server();
    let cluster_ip: Vec<Vec<u8>> = (0..SERVICES)
        .map(|i| query(&format!("web-{i}.bench.svc.cluster.local.")))
        .collect();
    let headless: Vec<Vec<u8>> = (0..SERVICES)
        .map(|i| query(&format!("db-{i}.bench.svc.cluster.local.")))
        .collect();
    let mut group = c.benchmark_group("dns, 1000 services");
    group.throughput(Throughput::Elements(1));
    for (label, queries) in [("ClusterIP A", &cluster_ip), ("headless A", &headless)] {
        let mut next = 0;
        group.bench_function(label, |b| {
            b.iter(|| {
                next = (next + 1) % SERVICES;
                let answer = runtime.block_on(server.answer(&queries[next])).unwrap();
                assert_eq!(answer.answers().len(), 1);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
