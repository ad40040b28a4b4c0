//! keel-dns against an in-process control plane: its answers follow Services and
//! EndpointSlices as they are created, changed and deleted, over UDP and TCP.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ControlPlane;

/// What a query answered: its code and the answer section, as text.
#[derive(Debug, PartialEq)]
struct Answer {
    code: ResponseCode,
    records: Vec<String>,
}

fn query_bytes(name: &str, kind: RecordType) -> Vec<u8> {
    let mut message = Message::new();
    message
        .set_id(rand::random())
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_str(name).unwrap(), kind));
    message.to_vec().unwrap()
}

fn answer_of(bytes: &[u8]) -> Answer {
    let message = Message::from_vec(bytes).unwrap();
    let mut records: Vec<String> = message
        .answers()
        .iter()
        .map(|r| {
            assert_eq!(r.ttl(), 5, "{r}");
            match r.data() {
                RData::A(a) => a.0.to_string(),
                RData::SRV(srv) => format!("{} {}", srv.port(), srv.target()),
                RData::PTR(ptr) => ptr.0.to_string(),
                other => format!("{other}"),
            }
        })
        .collect();
    records.sort();
    Answer {
        code: message.response_code(),
        records,
    }
}

async fn udp(server: SocketAddr, name: &str, kind: RecordType) -> Answer {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&query_bytes(name, kind), server)
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buffer))
        .await
        .expect("the DNS server answers within 5 s")
        .unwrap();
    answer_of(&buffer[..len])
}

async fn tcp(server: SocketAddr, name: &str, kind: RecordType) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    let query = query_bytes(name, kind);
    stream
        .write_all(&(query.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&query).await.unwrap();
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).await.unwrap();
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut reply).await.unwrap();
    answer_of(&reply)
}

fn ok(records: &[&str]) -> Answer {
    Answer {
        code: ResponseCode::NoError,
        records: records.iter().map(|r| (*r).to_owned()).collect(),
    }
}

fn code(code: ResponseCode) -> Answer {
    Answer {
        code,
        records: Vec::new(),
    }
}

/// Queries over UDP until the answer is `expected`, failing after 20 s with the last one.
async fn until(server: SocketAddr, name: &str, kind: RecordType, expected: Answer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = udp(server, name, kind).await;
        if got == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} {kind}: {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_follow_services_and_their_endpoints() {
    let cp = ControlPlane::start(1).await;
    let listeners = keel_dns::Listeners::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = listeners.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dns = tokio::spawn(keel_dns::run(
        cp.cluster.apiservers[0].client("system:keel-dns", &["system:masters"]),
        listeners,
        async move {
            let _ = stopped.await;
        },
    ));
    let namespaces: Api<Namespace> = Api::all(cp.client.clone());
    let post = PostParams::default();
    namespaces
        .create(
            &post,
            &serde_json::from_value(json!({"metadata": {"name": "demo"}})).unwrap(),
        )
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(cp.client.clone(), "demo");
    let slices: Api<EndpointSlice> = Api::namespaced(cp.client.clone(), "demo");
    let web_name = "web.demo.svc.cluster.local.";

    // Names outside the cluster domain are refused (no upstream); unknown ones inside are not.
    until(
        server,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
        ok(&["169.254.64.1"]),
    )
    .await;
    assert_eq!(
        udp(server, "example.com.", RecordType::A).await,
        code(ResponseCode::Refused)
    );
    assert_eq!(
        udp(server, web_name, RecordType::A).await,
        code(ResponseCode::NXDomain)
    );

    // A ClusterIP service: A, SRV, PTR, over UDP and TCP.
    let web: Service = serde_json::from_value(json!({"metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}))
    .unwrap();
    let web = services.create(&post, &web).await.unwrap();
    let ip = web.spec.unwrap().cluster_ip.unwrap();
    until(server, web_name, RecordType::A, ok(&[&ip])).await;
    assert_eq!(tcp(server, web_name, RecordType::A).await, ok(&[&ip]));
    assert_eq!(
        udp(
            server,
            "_http._tcp.web.demo.svc.cluster.local.",
            RecordType::SRV
        )
        .await,
        ok(&["80 web.demo.svc.cluster.local."])
    );
    let reverse: Vec<&str> = ip.split('.').rev().collect();
    let reverse = format!("{}.in-addr.arpa.", reverse.join("."));
    assert_eq!(
        udp(server, &reverse, RecordType::PTR).await,
        ok(&[web_name])
    );
    assert_eq!(udp(server, web_name, RecordType::AAAA).await, ok(&[]));

    // A headless service answers its ready endpoints, which follow its EndpointSlices.
    let db: Service = serde_json::from_value(json!({"metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"},
            "ports": [{"name": "pg", "port": 5432}]}}))
    .unwrap();
    services.create(&post, &db).await.unwrap();
    let db_name = "db.demo.svc.cluster.local.";
    until(server, db_name, RecordType::A, ok(&[])).await;
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["169.254.1.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["169.254.1.6"], "conditions": {"ready": false}}],
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}))
    .unwrap();
    slices.create(&post, &slice).await.unwrap();
    until(server, db_name, RecordType::A, ok(&["169.254.1.5"])).await;
    assert_eq!(
        udp(server, "db-0.db.demo.svc.cluster.local.", RecordType::A).await,
        ok(&["169.254.1.5"])
    );
    assert_eq!(
        udp(
            server,
            "169-254-1-5.db.demo.svc.cluster.local.",
            RecordType::A
        )
        .await,
        ok(&["169.254.1.5"])
    );
    assert_eq!(
        udp(
            server,
            "_pg._tcp.db.demo.svc.cluster.local.",
            RecordType::SRV
        )
        .await,
        ok(&["5432 db-0.db.demo.svc.cluster.local."])
    );
    let ready = json!({"endpoints": [
        {"addresses": ["169.254.1.5"], "hostname": "db-0", "conditions": {"ready": true}},
        {"addresses": ["169.254.1.6"], "conditions": {"ready": true}}]});
    slices
        .patch("db-1", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();
    until(
        server,
        db_name,
        RecordType::A,
        ok(&["169.254.1.5", "169.254.1.6"]),
    )
    .await;
    until(
        server,
        "169-254-1-6.db.demo.svc.cluster.local.",
        RecordType::A,
        ok(&["169.254.1.6"]),
    )
    .await;

    // Deleted, the service's name is gone.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    until(
        server,
        web_name,
        RecordType::A,
        code(ResponseCode::NXDomain),
    )
    .await;
    assert_eq!(
        udp(
            server,
            "_http._tcp.web.demo.svc.cluster.local.",
            RecordType::SRV
        )
        .await,
        code(ResponseCode::NXDomain)
    );
    assert_eq!(
        udp(server, &reverse, RecordType::PTR).await,
        code(ResponseCode::Refused)
    );

    let _ = stop.send(());
    dns.await.unwrap();
    cp.stop().await;
}
