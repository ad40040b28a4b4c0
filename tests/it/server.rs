//! A real server on port 0: requests over TCP, a streamed watch, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::b64;

#[tokio::test]
async fn serves_over_tcp_and_shuts_down_with_open_watches() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let replica = Arc::new(keel::replica::LocalReplica::temporary().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = keel::config::Config::default();
    let server = tokio::spawn(async move {
        keel::server::run(&config, listener, replica, async {
            let _ = stopped.await;
        })
        .await
    });

    let client = reqwest::Client::new();
    let put: Value = client
        .post(format!("{url}/v3/kv/put"))
        .body(json!({"key": b64("k"), "value": b64("v")}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(put["header"]["revision"], "2");

    let (requests, response) = crate::open_watch(&client, &url, "k").await;
    let mut lines = response.bytes_stream();
    let created = tokio::time::timeout(Duration::from_secs(5), lines.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let created: Value = serde_json::from_slice(&created).unwrap();
    assert_eq!(created["result"]["created"], true);

    let health = client.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), r#"{"health":"true"}"#);

    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("graceful shutdown does not wait for open watches");
    result.unwrap().unwrap();
    drop(requests);
}

#[tokio::test]
async fn a_single_member_resumes_from_its_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = keel::config::Config {
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    {
        let replica = keel::server::local_replica(&config).unwrap();
        let api = keel::server::api(&config, Arc::new(replica));
        crate::put(&api, "k", "v").await;
        crate::put(&api, "k", "w").await;
        api.replica.store().flush().unwrap();
    }
    let replica = keel::server::local_replica(&config).unwrap();
    let api = keel::server::api(&config, Arc::new(replica));
    let status = crate::must_post(&api, "/v3/maintenance/status", json!({})).await;
    assert_eq!(
        status["raftIndex"], "2",
        "the index survives a restart: {status}"
    );
    let range = crate::must_post(&api, "/v3/kv/range", json!({"key": b64("k")})).await;
    assert_eq!(range["kvs"][0]["value"], b64("w"));
    assert_eq!(range["kvs"][0]["version"], "2");
}
