//! Leases on a three-member cluster: whichever member a client talks to, grants, keepalives
//! and time-to-live are answered by the leader, which keeps the deadlines.

use std::time::Duration;

use keel::cli::dev::DevCluster;
use serde_json::Value;

#[tokio::test]
async fn a_follower_forwards_lease_calls_to_the_leader() {
    let cluster = DevCluster::start_on_free_ports(3)
        .await
        .expect("cluster starts");
    let mut leader = None;
    for _ in 0..250 {
        leader = cluster.members[0].replica.node().current_leader();
        if leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader = leader.expect("a leader within 5 s");
    let follower = cluster
        .members
        .iter()
        .find(|m| m.id != leader)
        .expect("a follower");
    let url = format!("http://{}", follower.client_addr);
    let http = reqwest::Client::new();
    let post = |path: &str, body: &str| {
        http.post(format!("{url}{path}"))
            .timeout(Duration::from_secs(20))
            .body(body.to_owned())
            .send()
    };

    let granted: Value = post("/v3/lease/grant", r#"{"ID":"42","TTL":"30"}"#)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(granted["TTL"], "30", "{granted}");

    let keepalive = post("/v3/lease/keepalive", r#"{"ID":"42"}"#)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line: Value = serde_json::from_str(keepalive.lines().next().unwrap()).unwrap();
    assert_eq!(line["result"]["TTL"], "30", "{keepalive}");

    let ttl: Value = post("/v3/lease/timetolive", r#"{"ID":"42"}"#)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let left: i64 = ttl["TTL"].as_str().unwrap().parse().unwrap();
    assert!((28..=30).contains(&left), "the leader's clock: {ttl}");
    assert_eq!(ttl["grantedTTL"], "30");

    cluster.stop().await.unwrap();
}
