//! Three Raft members in-process over the HTTP peer network on loopback, each with its API.

use std::sync::Arc;
use std::time::Duration;

use keel::api::{Api, Shared};
use keel::config::Config;
use keel::lessor::Lessor;
use keel::raft_replica::RaftReplica;
use keel::replica::Replica;
use serde_json::json;

use crate::{b64, must_post};

struct Member {
    replica: Arc<RaftReplica>,
    api: Shared,
    _dir: tempfile::TempDir,
}

async fn start_cluster() -> Vec<Member> {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let urls: Vec<String> = listeners
        .iter()
        .map(|l| format!("http://{}", l.local_addr().unwrap()))
        .collect();
    let initial_cluster = (0..3)
        .map(|i| format!("n{i}={}", urls[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut members = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            name: format!("n{i}"),
            data_dir: dir.path().to_owned(),
            initial_cluster: initial_cluster.clone(),
            initial_advertise_peer_urls: vec![urls[i].clone()],
            listen_peer_urls: vec![urls[i].clone()],
            heartbeat_interval: 50,
            election_timeout: 300,
            ..Config::default()
        };
        config.validate().unwrap();
        let replica = Arc::new(keel::server::cluster_replica(&config).await.unwrap());
        let api = Arc::new(Api::new(replica.clone(), Arc::new(Lessor::new(2))));
        {
            let (replica, api) = (replica.clone(), api.clone());
            tokio::spawn(async move {
                keel::server::serve_peers(&replica, api, listener, std::future::pending()).await
            });
        }
        members.push(Member {
            replica,
            api,
            _dir: dir,
        });
    }
    members
}

async fn leader(members: &[Member]) -> usize {
    for _ in 0..200 {
        if let Some(i) = members.iter().position(|m| m.replica.status().is_leader()) {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no leader within 5 s");
}

#[tokio::test]
async fn writes_go_through_the_leader_and_reach_every_member() {
    let members = start_cluster().await;
    let leader = leader(&members).await;
    let follower = (leader + 1) % 3;

    let put = must_post(
        &members[leader].api,
        "/v3/kv/put",
        json!({"key": b64("k"), "value": b64("v")}),
    )
    .await;
    assert_eq!(put["header"]["revision"], "2");
    assert_ne!(put["header"]["raft_term"], "0");

    // A follower's write reaches the leader, as in etcd.
    let forwarded = must_post(
        &members[follower].api,
        "/v3/kv/put",
        json!({"key": b64("x"), "value": b64("y")}),
    )
    .await;
    assert_eq!(forwarded["header"]["revision"], "3");
    // keel-raft forwards the write; the answer carries the follower's own header, as etcd's.
    assert_eq!(
        forwarded["header"]["member_id"],
        members[follower].replica.status().member_id.to_string()
    );
    let linearizable = must_post(
        &members[follower].api,
        "/v3/kv/range",
        json!({"key": b64("x")}),
    )
    .await;
    assert_eq!(linearizable["kvs"][0]["value"], b64("y"));
    // Leases live on the leader's clock: a follower forwards grants and keepalives there.
    let granted = must_post(
        &members[follower].api,
        "/v3/lease/grant",
        json!({"ID": "42", "TTL": "30"}),
    )
    .await;
    assert_eq!(granted["TTL"], "30");
    let left = members[leader]
        .api
        .lessor
        .remaining(42)
        .expect("the leader keeps the deadline");
    assert!((29..=30).contains(&left), "{left}");
    let keepalive = warp::test::request()
        .method("POST")
        .path("/v3/lease/keepalive")
        .body(r#"{"ID":"42"}"#)
        .reply(&keel::api::routes(members[follower].api.clone()))
        .await;
    let line: serde_json::Value = serde_json::from_slice(keepalive.body()).unwrap();
    assert_eq!(line["result"]["TTL"], "30", "{line}");

    // A serializable read is served from the follower's own copy once it has applied the put.
    let mut value = serde_json::Value::Null;
    for _ in 0..100 {
        value = must_post(
            &members[follower].api,
            "/v3/kv/range",
            json!({"key": b64("k"), "serializable": true}),
        )
        .await;
        if value.get("kvs").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(value["kvs"][0]["value"], b64("v"), "{value}");

    let list = must_post(&members[follower].api, "/v3/cluster/member/list", json!({})).await;
    let mut names: Vec<&str> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["n0", "n1", "n2"]);
    let status = must_post(&members[follower].api, "/v3/maintenance/status", json!({})).await;
    assert_eq!(
        status["leader"],
        members[leader].replica.status().member_id.to_string()
    );

    for member in &members {
        member.replica.node().shutdown().await.unwrap();
    }
}
