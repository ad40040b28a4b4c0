//! OpenAPI v3 (the index, documents by hash, ETags) and `fieldValidation` on the wire.

use serde_json::{json, Value};

use super::{call, https, ControlPlane};

#[tokio::test]
async fn openapi_documents_are_cached_by_hash_and_etag() {
    let cp = ControlPlane::start(1).await;
    let client = https(&cp, true);
    let base = cp.server(0);

    let index: Value = call(client.get(format!("{base}/openapi/v3"))).await.1;
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 is listed")
        .to_owned();
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");

    let response = client.get(format!("{base}{url}")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("public, immutable")
    );
    let etag = header(&response, "etag").expect("an ETag");
    let hash = url.split_once("?hash=").unwrap().1;
    assert_eq!(etag, format!("\"{hash}\""));
    let document: Value = response.json().await.unwrap();
    let patch =
        &document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );

    let again = client
        .get(format!("{base}{url}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    assert!(again.bytes().await.unwrap().is_empty());

    let unhashed = client
        .get(format!("{base}/openapi/v3/apis/apps/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&unhashed, "cache-control").as_deref(),
        Some("no-cache, private")
    );
    // v2 is Swagger 2.0 from the same schemas: JSON, or protobuf when asked as kubectl does.
    let v2: serde_json::Value = client
        .get(format!("{base}/openapi/v2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["swagger"], "2.0");
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    let v2 = client
        .get(format!("{base}/openapi/v2"))
        .header(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&v2, "content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(
        v2.bytes().await.unwrap()[..2],
        [0x0a, 3],
        "field 1: \"2.0\""
    );
    cp.stop().await;
}

#[tokio::test]
async fn field_validation_warns_refuses_or_ignores_unknown_fields() {
    let cp = ControlPlane::start(1).await;
    let client = https(&cp, true);
    let maps = format!("{}/api/v1/namespaces/default/configmaps", cp.server(0));
    let body = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "colour": "red"},
            "data": {"a": "b"}, "extra": 1})
    };
    let warnings = |response: &reqwest::Response| -> Vec<String> {
        response
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };

    // Warn, kube's default: stored without the unknown fields, one warning each.
    let response = client
        .post(&maps)
        .json(&body("warned"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(
        warnings(&response),
        [
            r#"299 - "unknown field \"extra\"""#,
            r#"299 - "unknown field \"metadata.colour\"""#
        ]
    );
    let stored: Value = response.json().await.unwrap();
    assert!(stored.get("extra").is_none());
    assert!(stored["metadata"].get("colour").is_none());
    assert_eq!(stored["data"]["a"], "b");

    // Strict: 400 with kube's message, and nothing stored.
    let response = client
        .post(format!("{maps}?fieldValidation=Strict"))
        .json(&body("refused"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let status: Value = response.json().await.unwrap();
    assert_eq!(
        status["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "extra", unknown field "metadata.colour""#
    );
    assert_eq!(status["reason"], "BadRequest");
    let missing = client.get(format!("{maps}/refused")).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // A repeated key is a problem too; Ignore says nothing.
    let repeated = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"twice"},"data":{"a":"1","a":"2"}}"#;
    let response = client
        .post(format!("{maps}?fieldValidation=Ignore"))
        .header("content-type", "application/json")
        .body(repeated)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert!(warnings(&response).is_empty());
    let stored: Value = response.json().await.unwrap();
    assert_eq!(stored["data"]["a"], "2");

    // A patch that adds an unknown field: refused under Strict, dropped with a warning under Warn.
    let patch = |query: &str| {
        client
            .patch(format!("{maps}/warned{query}"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"data":{"c":"d"},"spec":{"x":1}}"#)
            .send()
    };
    let response = patch("?fieldValidation=Strict").await.unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let status: Value = response.json().await.unwrap();
    let message = status["message"].as_str().unwrap();
    assert!(
        message.ends_with(r#"strict decoding error: unknown field "spec""#),
        "{message}"
    );
    let response = patch("").await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(warnings(&response), [r#"299 - "unknown field \"spec\"""#]);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["data"], json!({"a": "b", "c": "d"}));
    assert!(patched.get("spec").is_none());
    cp.stop().await;
}
