//! Lease routes, the keepalive stream, and expiry with paused time.

use std::sync::Arc;
use std::time::Duration;

use keel::lessor::Lessor;
use keel_store::{Command, Store};
use serde_json::{json, Value};

use crate::{assert_error, b64, must_post, node, post, settle, InlineReplica};

#[tokio::test]
async fn grant_timetolive_leases_revoke() {
    let api = node();
    let granted = must_post(&api, "/v3/lease/grant", json!({"TTL": 60})).await;
    let id: i64 = granted["ID"].as_str().unwrap().parse().unwrap();
    assert!(id > 0, "server-chosen ids are positive: {granted}");
    assert_eq!(granted["TTL"], "60");

    let short = must_post(&api, "/v3/lease/grant", json!({"TTL": "0", "ID": "1001"})).await;
    assert_eq!(short["TTL"], "2", "raised to the minimum TTL: {short}");
    let duplicate = post(&api, "/v3/lease/grant", json!({"TTL": "5", "ID": "1001"})).await;
    assert_error(&duplicate, 412, 9, "etcdserver: lease already exists");
    let too_long = post(&api, "/v3/lease/grant", json!({"TTL": "99999999999"})).await;
    assert_error(&too_long, 400, 11, "too large lease TTL");

    must_post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("lk"), "value": b64("v"), "lease": id.to_string()}),
    )
    .await;
    for path in ["/v3/lease/timetolive", "/v3/kv/lease/timetolive"] {
        let ttl = must_post(&api, path, json!({"ID": id.to_string(), "keys": true})).await;
        assert_eq!(ttl["grantedTTL"], "60");
        let left: i64 = ttl["TTL"].as_str().unwrap().parse().unwrap();
        assert!((59..=60).contains(&left), "{ttl}");
        assert_eq!(ttl["keys"], json!([b64("lk")]));
    }
    let missing = must_post(&api, "/v3/lease/timetolive", json!({"ID": "999"})).await;
    assert_eq!(missing["TTL"], "-1");
    assert!(missing.get("grantedTTL").is_none());

    for path in ["/v3/lease/leases", "/v3/kv/lease/leases"] {
        let list = must_post(&api, path, json!({})).await;
        let mut ids: Vec<&str> = list["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ID"].as_str().unwrap())
            .collect();
        ids.sort();
        let mut expected = vec!["1001".to_owned(), id.to_string()];
        expected.sort();
        assert_eq!(ids, expected);
    }

    let absent = post(&api, "/v3/lease/revoke", json!({"ID": "999"})).await;
    assert_error(&absent, 404, 5, "etcdserver: requested lease not found");
    let revoked = must_post(&api, "/v3/kv/lease/revoke", json!({"ID": id.to_string()})).await;
    assert!(revoked["header"]["revision"].is_string());
    let gone = must_post(&api, "/v3/kv/range", json!({"key": b64("lk")})).await;
    assert!(
        gone.get("kvs").is_none(),
        "the lease's keys went with it: {gone}"
    );
    assert!(api.lessor.remaining(id).is_none());
}

#[tokio::test]
async fn keepalive_answers_each_message_on_the_stream() {
    let api = node();
    must_post(&api, "/v3/lease/grant", json!({"TTL": "30", "ID": "77"})).await;
    let response = warp::test::request()
        .method("POST")
        .path("/v3/lease/keepalive")
        .body(r#"{"ID":"77"} {"ID":78}"#)
        .reply(&keel::api::routes(api.clone()))
        .await;
    assert_eq!(response.status(), 200);
    let lines: Vec<Value> = String::from_utf8_lossy(response.body())
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["result"]["ID"], "77");
    assert_eq!(lines[0]["result"]["TTL"], "30");
    assert!(lines[0]["result"]["header"]["revision"].is_string());
    assert_eq!(lines[1]["result"]["ID"], "78");
    assert!(
        lines[1]["result"].get("TTL").is_none(),
        "unknown lease: TTL 0, omitted"
    );
}

pub(crate) fn apply(store: &Store, command: Command) {
    store.apply(&command, None).unwrap().result.unwrap();
}

#[tokio::test(start_paused = true)]
async fn leases_expire_unless_kept_alive() {
    let store = Store::temporary(keel_store::Config::default()).unwrap();
    let replica = Arc::new(InlineReplica {
        store: store.clone(),
    });
    let lessor = Arc::new(Lessor::new(1));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let expiry = tokio::spawn(lessor.clone().run_expiry(replica.clone(), async {
        let _ = stopped.await;
    }));
    settle().await;

    apply(&store, Command::LeaseGrant { id: 5, ttl: 10 });
    lessor.grant(5, 10);
    apply(
        &store,
        Command::Put(keel_store::PutRequest {
            key: b"leased".to_vec(),
            lease: 5,
            ..Default::default()
        }),
    );

    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(lessor.renew(5), Some(10), "keepalive restarts the clock");
    tokio::time::advance(Duration::from_secs(6)).await;
    settle().await;
    assert!(
        store.lease(5).unwrap().is_some(),
        "12 s after grant, 6 after renewal"
    );
    assert_eq!(lessor.remaining(5), Some(3));

    tokio::time::advance(Duration::from_secs(5)).await;
    settle().await;
    assert!(
        store.lease(5).unwrap().is_none(),
        "expired 10 s after the renewal"
    );
    let range = store
        .range(&keel_store::RangeRequest {
            key: b"leased".to_vec(),
            ..Default::default()
        })
        .unwrap();
    assert!(range.kvs.is_empty(), "its key was deleted with it");
    assert!(lessor.is_empty());

    let _ = stop.send(());
    expiry.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_gives_every_lease_its_full_ttl() {
    let store = Store::temporary(keel_store::Config::default()).unwrap();
    // Granted long "ago", under an earlier leader: the deadline was not replicated.
    apply(&store, Command::LeaseGrant { id: 6, ttl: 10 });
    tokio::time::advance(Duration::from_secs(60)).await;

    let replica = Arc::new(InlineReplica {
        store: store.clone(),
    });
    let lessor = Arc::new(Lessor::new(1));
    let expiry = tokio::spawn(
        lessor
            .clone()
            .run_expiry(replica, std::future::pending::<()>()),
    );
    settle().await;
    assert_eq!(lessor.remaining(6), Some(9));
    tokio::time::advance(Duration::from_secs(8)).await;
    settle().await;
    assert!(store.lease(6).unwrap().is_some(), "not expired early");
    tokio::time::advance(Duration::from_secs(3)).await;
    settle().await;
    assert!(
        store.lease(6).unwrap().is_none(),
        "expired a full TTL after leadership began"
    );
    expiry.abort();
}
