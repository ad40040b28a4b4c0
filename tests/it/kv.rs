//! KV routes: encodings, omitted defaults, errors, txn compare-and-swap, compaction.

use serde_json::json;

use crate::{assert_error, b64, must_post, node, post, post_raw, put};

#[tokio::test]
async fn put_and_range_use_etcds_encodings() {
    let api = node();
    let first = must_post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("foo"), "value": b64("bar")}),
    )
    .await;
    let header = &first["header"];
    assert_eq!(header["revision"], "2");
    assert!(header["cluster_id"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    assert!(header["member_id"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(header["raft_term"], "1");
    assert_eq!(
        first.as_object().unwrap().len(),
        1,
        "no prev_kv unless asked: {first}"
    );

    let second = must_post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("foo"), "value": b64("baz"), "prev_kv": true}),
    )
    .await;
    assert_eq!(
        second["prev_kv"],
        json!({"key": "Zm9v", "create_revision": "2", "mod_revision": "2", "version": "1", "value": "YmFy"})
    );

    let range = must_post(&api, "/v3/kv/range", json!({"key": b64("foo")})).await;
    assert_eq!(range["header"]["revision"], "3");
    assert_eq!(
        range["kvs"],
        json!([{"key": "Zm9v", "create_revision": "2", "mod_revision": "3", "version": "2", "value": "YmF6"}])
    );
    assert_eq!(range["count"], "1");
    assert!(range.get("more").is_none(), "false is omitted: {range}");

    let missing = must_post(&api, "/v3/kv/range", json!({"key": b64("nope")})).await;
    assert_eq!(
        missing.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["header"]
    );
}

#[tokio::test]
async fn range_options_accept_names_numbers_and_strings() {
    let api = node();
    for key in ["a", "b", "c"] {
        put(&api, key, "v").await;
    }
    let sorted = must_post(
        &api,
        "/v3/kv/range",
        json!({"key": b64("a"), "range_end": b64("z"), "sort_order": "DESCEND",
               "sort_target": "MOD", "limit": 2}),
    )
    .await;
    assert_eq!(sorted["kvs"][0]["key"], b64("c"));
    assert_eq!(sorted["more"], true);
    assert_eq!(sorted["count"], "3");

    let numeric = must_post(
        &api,
        "/v3/kv/range",
        json!({"key": b64("a"), "range_end": b64("z"), "sort_order": 2, "limit": "1",
               "keys_only": true, "serializable": true}),
    )
    .await;
    assert_eq!(
        numeric["kvs"],
        json!([{"key": b64("c"), "create_revision": "4",
        "mod_revision": "4", "version": "1"}])
    );

    let count = must_post(
        &api,
        "/v3/kv/range",
        json!({"key": b64("a"), "range_end": b64("z"), "count_only": true}),
    )
    .await;
    assert!(count.get("kvs").is_none());
    assert_eq!(count["count"], "3");
}

#[tokio::test]
async fn errors_have_etcds_shape_and_codes() {
    let api = node();
    put(&api, "k", "v").await;
    let cases = [
        (
            post(&api, "/v3/kv/range", json!({"key": ""})).await,
            400,
            3,
            "key is not provided",
        ),
        (
            post(&api, "/v3/kv/put", json!({})).await,
            400,
            3,
            "key is not provided",
        ),
        (
            post(
                &api,
                "/v3/kv/range",
                json!({"key": b64("k"), "revision": "100"}),
            )
            .await,
            400,
            11,
            "required revision is a future revision",
        ),
        (
            post_raw(&api, "/v3/kv/range", "{bad json").await,
            400,
            3,
            "key must be a string",
        ),
        (
            post(&api, "/v3/kv/range", json!({"key": "!!"})).await,
            400,
            3,
            "base64",
        ),
        (
            post(
                &api,
                "/v3/kv/range",
                json!({"key": "YQ==", "sort_order": "BOGUS"}),
            )
            .await,
            400,
            3,
            "unknown value",
        ),
        (
            post(&api, "/v3/kv/nothing", json!({})).await,
            404,
            5,
            "Not Found",
        ),
        (
            post(
                &api,
                "/v3/kv/put",
                json!({"key": b64("x"), "lease": "12345"}),
            )
            .await,
            404,
            5,
            "requested lease not found",
        ),
        (
            post(
                &api,
                "/v3/kv/put",
                json!({"key": b64("none"), "ignore_value": true}),
            )
            .await,
            400,
            3,
            "key not found",
        ),
    ];
    for (answer, status, code, text) in &cases {
        assert_error(answer, *status, *code, text);
    }
    // An empty body is the empty message, as in the gateway.
    assert_error(
        &post_raw(&api, "/v3/kv/range", "").await,
        400,
        3,
        "key is not provided",
    );
    // Unknown fields are ignored, as by the gateway.
    must_post(&api, "/v3/kv/range", json!({"key": b64("k"), "nosuch": 1})).await;

    let get = warp::test::request()
        .method("GET")
        .path("/v3/kv/range")
        .reply(&keel::api::routes(api.clone()))
        .await;
    assert_eq!(get.status(), 405);
    let body: serde_json::Value = serde_json::from_slice(get.body()).unwrap();
    assert_eq!(body["code"], 12);
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let config = keel_store::Config {
        max_request_bytes: 1024,
        ..Default::default()
    };
    let store = keel_store::Store::temporary(config).unwrap();
    let replica = keel::replica::LocalReplica::new(store, Default::default()).unwrap();
    let mut api = keel::api::Api::new(
        std::sync::Arc::new(replica),
        std::sync::Arc::new(keel::lessor::Lessor::new(2)),
    );
    api.max_request_bytes = 1024;
    let api = std::sync::Arc::new(api);
    let value = "x".repeat(2000);
    let answer = post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("k"), "value": b64(&value)}),
    )
    .await;
    assert_error(&answer, 400, 3, "etcdserver: request is too large");
    let huge = "y".repeat(api.body_limit() + 1);
    let answer = post(&api, "/v3/kv/put", json!({"key": b64("k"), "value": huge})).await;
    assert_error(&answer, 429, 8, "received message larger than max");
}

#[tokio::test]
async fn delete_range_reports_what_it_deleted() {
    let api = node();
    put(&api, "a1", "x").await;
    put(&api, "a2", "y").await;
    let deleted = must_post(
        &api,
        "/v3/kv/deleterange",
        json!({"key": b64("a"), "range_end": b64("b"), "prev_kv": true}),
    )
    .await;
    assert_eq!(deleted["deleted"], "2");
    assert_eq!(deleted["prev_kvs"][1]["value"], b64("y"));
    assert_eq!(deleted["header"]["revision"], "4");
    let nothing = must_post(&api, "/v3/kv/deleterange", json!({"key": b64("a1")})).await;
    assert_eq!(nothing.as_object().unwrap().len(), 1, "{nothing}");
    assert_eq!(nothing["header"]["revision"], "4");
}

#[tokio::test]
async fn txn_compare_and_swap() {
    let api = node();
    put(&api, "k1", "v1").await;
    let swap = |expected: &str| {
        json!({
            "compare": [{"key": b64("k1"), "result": "EQUAL", "target": "VALUE", "value": b64(expected)}],
            "success": [{"request_put": {"key": b64("k1"), "value": b64("v2")}},
                        {"request_range": {"key": b64("k1")}}],
            "failure": [{"request_range": {"key": b64("k1")}}, {"request_txn": {}}]
        })
    };
    let won = must_post(&api, "/v3/kv/txn", swap("v1")).await;
    assert_eq!(won["succeeded"], true);
    assert_eq!(won["header"]["revision"], "3");
    assert_eq!(
        won["responses"][0],
        json!({"response_put": {"header": {"revision": "3"}}})
    );
    assert_eq!(
        won["responses"][1]["response_range"]["kvs"][0]["value"],
        b64("v2")
    );

    let lost = must_post(&api, "/v3/kv/txn", swap("v1")).await;
    assert!(lost.get("succeeded").is_none(), "false is omitted: {lost}");
    assert_eq!(lost["responses"][0]["response_range"]["count"], "1");
    assert_eq!(
        lost["responses"][1],
        json!({"response_txn": {"header": {}, "succeeded": true}})
    );

    let by_revision = must_post(
        &api,
        "/v3/kv/txn",
        json!({"compare": [{"key": b64("k1"), "target": "MOD", "result": "LESS", "mod_revision": "4"}],
               "success": [{"request_delete_range": {"key": b64("k1")}}]}),
    )
    .await;
    assert_eq!(by_revision["succeeded"], true);
    assert_eq!(
        by_revision["responses"][0]["response_delete_range"]["deleted"],
        "1"
    );

    let duplicate = post(
        &api,
        "/v3/kv/txn",
        json!({"success": [{"request_put": {"key": b64("d")}}, {"request_put": {"key": b64("d")}}]}),
    )
    .await;
    assert_error(&duplicate, 400, 3, "duplicate key given in txn request");
}

#[tokio::test]
async fn compaction_makes_old_revisions_unreadable() {
    let api = node();
    put(&api, "k", "1").await;
    put(&api, "k", "2").await;
    let compacted = must_post(&api, "/v3/kv/compaction", json!({"revision": "3"})).await;
    assert_eq!(compacted["header"]["revision"], "3");
    let old = post(
        &api,
        "/v3/kv/range",
        json!({"key": b64("k"), "revision": 2}),
    )
    .await;
    assert_error(
        &old,
        400,
        11,
        "etcdserver: mvcc: required revision has been compacted",
    );
    let again = post(&api, "/v3/kv/compaction", json!({"revision": "3"})).await;
    assert_error(&again, 400, 11, "required revision has been compacted");
    let future = post(&api, "/v3/kv/compaction", json!({"revision": "300"})).await;
    assert_error(&future, 400, 11, "future revision");
}
