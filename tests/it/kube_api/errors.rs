//! Bad input gets kube-apiserver's Status, code and reason, and nothing is stored.

use serde_json::{json, Value};

use super::{call, https, ControlPlane};

#[tokio::test]
async fn bad_requests_get_kube_statuses_and_store_nothing() {
    let cp = ControlPlane::start(1).await;
    let client = https(&cp, true);
    let base = cp.server(0);
    let maps = format!("{base}/api/v1/namespaces/default/configmaps");
    let post = |body: &'static str, content_type: &'static str| {
        client
            .post(&maps)
            .header("content-type", content_type)
            .body(body)
    };

    let (code, body) = call(post("{not json", "application/json")).await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(body["kind"], "Status");

    let wrong_kind = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#;
    let (code, body) = call(post(wrong_kind, "application/json")).await;
    assert_eq!(code, 400);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("does not match the expected kind"));

    let other_ns = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"kube-system"}}"#;
    let (code, body) = call(post(other_ns, "application/json")).await;
    assert_eq!(code, 400);
    assert_eq!(
        body["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );

    let bad_name = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_A_Name"}}"#;
    let (code, body) = call(post(bad_name, "application/json")).await;
    assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.name");

    // A protobuf body that does not decode is a 400; a format the server does not read, 415.
    let (code, body) = call(post("k8s\0junk", "application/vnd.kubernetes.protobuf")).await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    let (code, body) = call(post("name: x", "text/plain")).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );

    let huge = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    let response = client.post(&maps).body(huge).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 413);

    let (code, _) = call(client.get(format!("{base}/api/v1/gadgets"))).await;
    assert_eq!(code, 404);
    let (code, body) = call(client.get(format!(
        "{base}/apis/apps/v1/namespaces/default/deployments/nope"
    )))
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (404, Some("deployments.apps \"nope\" not found"))
    );

    // Nothing above was stored.
    let list: Value = call(client.get(&maps)).await.1;
    assert_eq!(list["items"], json!([]));
    assert_eq!(list["kind"], "ConfigMapList");

    // No credentials: 401; health checks stay open.
    let anonymous = https(&cp, false);
    let (code, body) = call(anonymous.get(&maps)).await;
    assert_eq!((code, body["reason"].as_str()), (401, Some("Unauthorized")));
    let health = anonymous
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let version: Value = call(client.get(format!("{base}/version"))).await.1;
    assert!(version["gitVersion"].as_str().unwrap().starts_with("v1."));
    cp.stop().await;
}

#[tokio::test]
async fn a_continue_token_past_compaction_expires() {
    let cp = ControlPlane::start(1).await;
    let client = https(&cp, true);
    let maps = format!("{}/api/v1/namespaces/default/configmaps", cp.server(0));
    for name in ["a", "b", "c"] {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        assert_eq!(
            client
                .post(&maps)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            201
        );
    }
    let page: Value = call(client.get(format!("{maps}?limit=1"))).await.1;
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_owned();
    // Compact the store past the token's revision through keel's etcd API.
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}});
    let created: Value = call(client.post(&maps).json(&body)).await.1;
    let revision: i64 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let etcd = format!(
        "http://{}/v3/kv/compaction",
        cp.cluster.members[0].client_addr
    );
    let compacted = reqwest::Client::new()
        .post(etcd)
        .json(&json!({"revision": revision}))
        .send()
        .await
        .unwrap();
    assert!(compacted.status().is_success());
    let (code, body) = call(client.get(format!("{maps}?limit=1&continue={token}"))).await;
    assert_eq!((code, body["reason"].as_str()), (410, Some("Expired")));
    cp.stop().await;
}

#[tokio::test]
async fn service_account_tokens_authenticate_until_the_account_goes() {
    let cp = ControlPlane::start(1).await;
    let admin = https(&cp, true);
    let base = cp.server(0);
    let accounts = format!("{base}/api/v1/namespaces/default/serviceaccounts");
    let account =
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}});
    assert_eq!(
        admin
            .post(&accounts)
            .json(&account)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
    let short = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 60}});
    let (code, _) = call(admin.post(format!("{accounts}/builder/token")).json(&short)).await;
    assert_eq!(code, 422, "kube's minimum is ten minutes");
    let request =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}});
    let (code, issued) = call(
        admin
            .post(format!("{accounts}/builder/token"))
            .json(&request),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(issued["kind"], "TokenRequest");
    let token = issued["status"]["token"].as_str().unwrap().to_owned();

    // The token authenticates (403 from authorization, naming the account, not 401).
    let anonymous = https(&cp, false);
    let pods = format!("{base}/api/v1/namespaces/default/pods");
    let (code, body) = call(anonymous.get(&pods).bearer_auth(&token)).await;
    assert_eq!(code, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("User \"system:serviceaccount:default:builder\""),
        "{body}"
    );
    let (code, _) = call(anonymous.get(&pods).bearer_auth(format!("{token}x"))).await;
    assert_eq!(code, 401, "a tampered token");

    // Deleting the account revokes its tokens.
    assert!(admin
        .delete(format!("{accounts}/builder"))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let (code, _) = call(anonymous.get(&pods).bearer_auth(&token)).await;
    assert_eq!(code, 401);
    cp.stop().await;
}
