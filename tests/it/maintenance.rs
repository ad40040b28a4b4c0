//! Maintenance, cluster and plain HTTP routes.

use serde_json::{json, Value};

use crate::{assert_error, b64, must_post, node, post, put};

async fn get(api: &keel::api::Shared, path: &str) -> (u16, String) {
    let response = warp::test::request()
        .method("GET")
        .path(path)
        .reply(&keel::api::routes(api.clone()))
        .await;
    (
        response.status().as_u16(),
        String::from_utf8_lossy(response.body()).into_owned(),
    )
}

#[tokio::test]
async fn status_hash_alarm_defragment() {
    let api = node();
    put(&api, "a", "1").await;
    let status = must_post(&api, "/v3/maintenance/status", json!({})).await;
    assert_eq!(status["header"]["revision"], "2");
    assert_eq!(status["version"], "3.4.0");
    assert_eq!(status["leader"], status["header"]["member_id"]);
    assert_eq!(status["raftIndex"], "1");
    assert_eq!(status["raftAppliedIndex"], "1");
    assert_eq!(status["raftTerm"], "1");
    assert!(status["dbSize"].is_string());

    let hash = must_post(&api, "/v3/maintenance/hash", json!({})).await;
    assert!(hash["hash"].is_u64(), "uint32 is a JSON number: {hash}");
    let hash_kv = must_post(&api, "/v3/maintenance/hashkv", json!({"revision": "2"})).await;
    assert!(hash_kv["hash"].is_u64());
    let future = post(&api, "/v3/maintenance/hashkv", json!({"revision": "9"})).await;
    assert_error(&future, 400, 11, "future revision");

    assert_eq!(
        must_post(&api, "/v3/maintenance/alarm", json!({"action": "GET"})).await,
        json!({})
    );
    assert_eq!(
        must_post(&api, "/v3/maintenance/defragment", json!({})).await,
        json!({})
    );
}

#[tokio::test]
async fn snapshot_streams_an_importable_export() {
    let api = node();
    put(&api, "a", "1").await;
    put(&api, "b", "2").await;
    let response = warp::test::request()
        .method("POST")
        .path("/v3/maintenance/snapshot")
        .reply(&keel::api::routes(api.clone()))
        .await;
    assert_eq!(response.status(), 200);
    let mut data = Vec::new();
    for line in String::from_utf8_lossy(response.body()).lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        use base64::Engine as _;
        let blob = line["result"]["blob"].as_str().unwrap();
        data.extend(
            base64::engine::general_purpose::STANDARD
                .decode(blob)
                .unwrap(),
        );
    }
    let copy = keel_store::Store::temporary(keel_store::Config::default()).unwrap();
    copy.import(&mut data.as_slice()).unwrap();
    assert_eq!(
        copy.hash_kv(0).unwrap(),
        api.replica.store().hash_kv(0).unwrap()
    );
}

#[tokio::test]
async fn member_list_and_unsupported_changes() {
    let api = node();
    let list = must_post(&api, "/v3/cluster/member/list", json!({})).await;
    assert!(
        list["header"].get("revision").is_none(),
        "etcd leaves it out: {list}"
    );
    assert_eq!(list["members"][0]["name"], "default");
    assert_eq!(
        list["members"][0]["peerURLs"],
        json!(["http://127.0.0.1:2380"])
    );
    assert_eq!(list["members"][0]["ID"], list["header"]["member_id"]);
    let add = post(
        &api,
        "/v3/cluster/member/add",
        json!({"peerURLs": ["http://127.0.0.1:2390"], "isLearner": true}),
    )
    .await;
    assert_error(&add, 501, 12, "not supported");
    let no_urls = post(&api, "/v3/cluster/member/add", json!({})).await;
    assert_error(&no_urls, 400, 3, "peer URLs are not provided");
    let remove = post(&api, "/v3/cluster/member/remove", json!({"ID": "5"})).await;
    assert_error(&remove, 501, 12, "not supported");
}

#[tokio::test]
async fn health_version_probes_and_metrics() {
    let api = node();
    assert_eq!(
        get(&api, "/health").await,
        (200, r#"{"health":"true"}"#.to_owned())
    );
    let (status, version) = get(&api, "/version").await;
    assert_eq!(status, 200);
    let version: Value = serde_json::from_str(&version).unwrap();
    assert_eq!(version["etcdcluster"], "3.4.0");
    // Plain MAJOR.MINOR.PATCH, as gateway clients parse it; keel's own version beside it.
    let server = version["etcdserver"].as_str().unwrap();
    assert!(
        server.split('.').all(|part| part.parse::<u32>().is_ok()) && server.starts_with("3.4."),
        "{server}"
    );
    assert_eq!(version["keel"], env!("CARGO_PKG_VERSION"));
    assert_eq!(get(&api, "/livez").await, (200, "ok".to_owned()));
    assert_eq!(get(&api, "/readyz").await, (200, "ok".to_owned()));
    let (status, _) = get(&api, "/nope").await;
    assert_eq!(status, 404);

    put(&api, "m", "1").await;
    post(&api, "/v3/kv/range", json!({"key": ""})).await;
    must_post(&api, "/v3/kv/range", json!({"key": b64("m")})).await;
    let (status, text) = get(&api, "/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        r#"keel_api_requests_total{method="Put",code="OK"} 1"#,
        r#"keel_api_requests_total{method="Range",code="OK"} 1"#,
        r#"keel_api_requests_total{method="Range",code="3"} 1"#,
        "etcd_server_has_leader 1",
        "etcd_server_proposals_applied 1",
        "keel_api_request_duration_seconds_bucket",
        "etcd_mvcc_db_total_size_in_bytes",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
}

#[tokio::test]
async fn exceeding_the_quota_raises_nospace() {
    let api = crate::node_with(|api| {
        api.quota_backend_bytes = 1;
        api.quota_check_interval = std::time::Duration::ZERO;
    });
    // Depending on when sled first writes its files, the first write may still find an
    // empty database; by the second, the quota is exceeded.
    post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("first"), "value": b64("v")}),
    )
    .await;
    let full = post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("k"), "value": b64("v")}),
    )
    .await;
    assert_error(&full, 429, 8, "etcdserver: mvcc: database space exceeded");
    let grant = post(&api, "/v3/lease/grant", json!({"TTL": 5})).await;
    assert_error(&grant, 429, 8, "database space exceeded");
    // Deletes free space and stay allowed.
    must_post(&api, "/v3/kv/deleterange", json!({"key": b64("k")})).await;

    let alarms = must_post(&api, "/v3/maintenance/alarm", json!({})).await;
    assert_eq!(alarms["alarms"][0]["alarm"], "NOSPACE");
    assert!(alarms["alarms"][0]["memberID"].is_string());
    let status = must_post(&api, "/v3/maintenance/status", json!({})).await;
    assert!(status["errors"][0].as_str().unwrap().contains("NOSPACE"));

    // The alarm names the member that found the quota exceeded: deactivating member 0's
    // disarms nothing, deactivating that member's answers with it.
    let member = alarms["alarms"][0]["memberID"].clone();
    let nothing = must_post(
        &api,
        "/v3/maintenance/alarm",
        json!({"action": "DEACTIVATE", "alarm": "NOSPACE"}),
    )
    .await;
    assert_eq!(nothing, json!({}));
    let cleared = must_post(
        &api,
        "/v3/maintenance/alarm",
        json!({"action": "DEACTIVATE", "memberID": member, "alarm": "NOSPACE"}),
    )
    .await;
    assert_eq!(
        cleared,
        json!({"alarms": [{"memberID": member, "alarm": "NOSPACE"}]})
    );
    assert_eq!(
        must_post(&api, "/v3/maintenance/alarm", json!({})).await,
        json!({})
    );
}

#[tokio::test]
async fn alarms_are_kept_by_the_member_id_given() {
    let api = node();
    let alarm = |body: Value| must_post(&api, "/v3/maintenance/alarm", body);
    // Member 0 stays 0 (the field is left out, as etcd's gateway does with zero values).
    assert_eq!(
        alarm(json!({"action": "ACTIVATE", "alarm": "NOSPACE"})).await,
        json!({"alarms": [{"alarm": "NOSPACE"}]})
    );
    assert_eq!(
        alarm(json!({"action": "ACTIVATE", "memberID": "42", "alarm": "NOSPACE"})).await,
        json!({"alarms": [{"memberID": "42", "alarm": "NOSPACE"}]})
    );
    let listed = alarm(json!({"action": "GET"})).await;
    assert_eq!(listed["alarms"].as_array().unwrap().len(), 2, "{listed}");
    let status = must_post(&api, "/v3/maintenance/status", json!({})).await;
    assert_eq!(
        status["errors"],
        json!(["alarm:NOSPACE ", "memberID:42 alarm:NOSPACE "])
    );
    // Under NOSPACE, for any member: puts and grants refused, deletes allowed.
    let full = post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("k"), "value": b64("v")}),
    )
    .await;
    assert_error(&full, 429, 8, "etcdserver: mvcc: database space exceeded");
    must_post(&api, "/v3/kv/deleterange", json!({"key": b64("k")})).await;

    assert_eq!(
        alarm(json!({"action": "DEACTIVATE", "alarm": "NOSPACE"})).await,
        json!({"alarms": [{"alarm": "NOSPACE"}]})
    );
    let refused = post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("k"), "value": b64("v")}),
    )
    .await;
    assert_error(&refused, 429, 8, "database space exceeded");
    assert_eq!(
        alarm(json!({"action": "DEACTIVATE", "memberID": "42", "alarm": "NOSPACE"})).await,
        json!({"alarms": [{"memberID": "42", "alarm": "NOSPACE"}]})
    );
    put(&api, "k", "v").await;

    // CORRUPT refuses every write, deletes too, and leaves reads alone.
    alarm(json!({"action": "ACTIVATE", "memberID": "42", "alarm": "CORRUPT"})).await;
    let delete = post(&api, "/v3/kv/deleterange", json!({"key": b64("k")})).await;
    assert_error(&delete, 500, 15, "etcdserver: corrupt cluster");
    let read = must_post(&api, "/v3/kv/range", json!({"key": b64("k")})).await;
    assert_eq!(read["count"], "1");
    alarm(json!({"action": "DEACTIVATE", "memberID": "42", "alarm": "CORRUPT"})).await;
    must_post(&api, "/v3/kv/deleterange", json!({"key": b64("k")})).await;
}
