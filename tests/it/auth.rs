//! Auth routes through `warp::test::request()`: etcd's rules and wording, permissions on
//! KV, txn, watch, lease and admin calls, tokens, and identification by certificate.

use keel::api::Shared;
use keel::identity::ClientCertificate;
use serde_json::{json, Value};

use crate::{assert_error, b64, must_post, node_with, post};

/// A node whose password hashes are cheap (bcrypt's lowest cost), as tests want.
fn node() -> Shared {
    node_with(|api| api.auth.bcrypt_cost = 4)
}

/// How a request says who it is from.
enum As<'a> {
    Token(&'a str),
    Certificate(&'a str),
}

async fn post_as(api: &Shared, who: As<'_>, path: &str, body: Value) -> (u16, Value) {
    let request = warp::test::request()
        .method("POST")
        .path(path)
        .body(body.to_string());
    let request = match who {
        As::Token(token) => request.header("authorization", token),
        As::Certificate(name) => request.extension(ClientCertificate {
            common_name: name.to_owned(),
        }),
    };
    let response = request.reply(&keel::api::routes(api.clone())).await;
    let status = response.status().as_u16();
    let value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (status, value)
}

async fn must_post_as(api: &Shared, who: As<'_>, path: &str, body: Value) -> Value {
    let (status, value) = post_as(api, who, path, body.clone()).await;
    assert_eq!(status, 200, "POST {path} {body} answered {value}");
    value
}

/// `root` (password `rootpw`) with the root role; `alice` (password `alicepw`) with role
/// `app`, which may read the prefix `/app/`; auth enabled.
async fn secured() -> Shared {
    let api = node();
    for (name, password) in [("root", "rootpw"), ("alice", "alicepw")] {
        must_post(
            &api,
            "/v3/auth/user/add",
            json!({"name": name, "password": password}),
        )
        .await;
    }
    must_post(
        &api,
        "/v3/auth/user/grant",
        json!({"user": "root", "role": "root"}),
    )
    .await;
    must_post(&api, "/v3/auth/role/add", json!({"name": "app"})).await;
    must_post(
        &api,
        "/v3/auth/role/grant",
        json!({"name": "app", "perm": {"permType": "READ", "key": b64("/app/"), "range_end": b64("/app0")}}),
    )
    .await;
    must_post(
        &api,
        "/v3/auth/user/grant",
        json!({"user": "alice", "role": "app"}),
    )
    .await;
    must_post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("/app/x"), "value": b64("1")}),
    )
    .await;
    must_post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("/other"), "value": b64("2")}),
    )
    .await;
    must_post(&api, "/v3/auth/enable", json!({})).await;
    api
}

async fn token(api: &Shared, name: &str, password: &str) -> String {
    let answer = must_post(
        api,
        "/v3/auth/authenticate",
        json!({"name": name, "password": password}),
    )
    .await;
    answer["token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn enable_needs_root_with_the_root_role() {
    let api = node();
    let answer = post(&api, "/v3/auth/enable", json!({})).await;
    assert_error(&answer, 412, 9, "etcdserver: root user does not exist");
    must_post(
        &api,
        "/v3/auth/user/add",
        json!({"name": "root", "password": "pw"}),
    )
    .await;
    let answer = post(&api, "/v3/auth/enable", json!({})).await;
    assert_error(
        &answer,
        412,
        9,
        "etcdserver: root user does not have root role",
    );
    let status = must_post(&api, "/v3/auth/status", json!({})).await;
    assert!(status.get("enabled").is_none(), "disabled: {status}");
    must_post(
        &api,
        "/v3/auth/user/grant",
        json!({"user": "root", "role": "root"}),
    )
    .await;
    must_post(&api, "/v3/auth/enable", json!({})).await;
    let status = must_post(&api, "/v3/auth/status", json!({})).await;
    assert_eq!(status["enabled"], true);
    assert!(
        status["auth_revision"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 3
    );
}

#[tokio::test]
async fn a_prefix_reader_reads_it_and_nothing_else() {
    let api = secured().await;
    let alice = token(&api, "alice", "alicepw").await;
    let alice = As::Token(&alice);

    let read = must_post_as(&api, alice, "/v3/kv/range", json!({"key": b64("/app/x")})).await;
    assert_eq!(read["kvs"][0]["value"], b64("1"));
    let alice_token = token(&api, "alice", "alicepw").await;
    let who = || As::Token(&alice_token);
    let prefix = json!({"key": b64("/app/"), "range_end": b64("/app0")});
    must_post_as(&api, who(), "/v3/kv/range", prefix).await;

    let denied = |path: &'static str, body: Value| {
        let api = api.clone();
        let token = alice_token.clone();
        async move {
            let answer = post_as(&api, As::Token(&token), path, body).await;
            assert_error(&answer, 403, 7, "etcdserver: permission denied");
        }
    };
    denied(
        "/v3/kv/put",
        json!({"key": b64("/app/x"), "value": b64("2")}),
    )
    .await;
    denied("/v3/kv/range", json!({"key": b64("/other")})).await;
    denied(
        "/v3/kv/range",
        json!({"key": b64("/app/"), "range_end": b64("/app1")}),
    )
    .await;
    denied("/v3/kv/deleterange", json!({"key": b64("/app/x")})).await;
    // A txn is checked whole: a write in the branch that would not run still counts.
    denied(
        "/v3/kv/txn",
        json!({"compare": [{"key": b64("/app/x"), "target": "VERSION", "result": "GREATER", "version": "0"}],
               "success": [{"request_range": {"key": b64("/app/x")}}],
               "failure": [{"request_put": {"key": b64("/app/x"), "value": b64("3")}}]}),
    )
    .await;
    denied(
        "/v3/kv/txn",
        json!({"compare": [{"key": b64("/other"), "target": "VERSION", "result": "GREATER", "version": "0"}]}),
    )
    .await;
    let read_only_txn = json!({
        "compare": [{"key": b64("/app/x"), "target": "VERSION", "result": "GREATER", "version": "0"}],
        "success": [{"request_range": {"key": b64("/app/x")}}]});
    let answer = must_post_as(&api, who(), "/v3/kv/txn", read_only_txn).await;
    assert_eq!(answer["succeeded"], true);

    // Admin calls are root's.
    denied("/v3/cluster/member/list", json!({})).await;
    denied("/v3/maintenance/hashkv", json!({})).await;
    denied("/v3/auth/user/list", json!({})).await;
    denied("/v3/auth/user/get", json!({"name": "root"})).await;
    // But a user may look at itself and its roles.
    let me = must_post_as(&api, who(), "/v3/auth/user/get", json!({"name": "alice"})).await;
    assert_eq!(me["roles"], json!(["app"]));
    must_post_as(&api, who(), "/v3/auth/role/get", json!({"role": "app"})).await;
    must_post_as(&api, who(), "/v3/maintenance/status", json!({})).await;
    // Compaction needs only a user, as in etcd 3.4.
    must_post_as(&api, who(), "/v3/kv/compaction", json!({"revision": "1"})).await;

    // Nothing written by the refused requests.
    let root = token(&api, "root", "rootpw").await;
    let read = must_post_as(
        &api,
        As::Token(&root),
        "/v3/kv/range",
        json!({"key": b64("/app/x")}),
    )
    .await;
    assert_eq!(read["kvs"][0]["value"], b64("1"));
    must_post_as(&api, As::Token(&root), "/v3/cluster/member/list", json!({})).await;
    must_post_as(
        &api,
        As::Token(&root),
        "/v3/kv/put",
        json!({"key": b64("/other"), "value": b64("3")}),
    )
    .await;
}

#[tokio::test]
async fn requests_without_valid_credentials_are_refused() {
    let api = secured().await;
    let answer = post(&api, "/v3/kv/range", json!({"key": b64("/app/x")})).await;
    assert_error(&answer, 400, 3, "etcdserver: user name is empty");
    let answer = post_as(
        &api,
        As::Token("forged.1.2.3"),
        "/v3/kv/range",
        json!({"key": b64("/app/x")}),
    )
    .await;
    assert_error(&answer, 401, 16, "etcdserver: invalid auth token");
    let answer = post(
        &api,
        "/v3/auth/authenticate",
        json!({"name": "alice", "password": "wrong"}),
    )
    .await;
    assert_error(
        &answer,
        400,
        3,
        "etcdserver: authentication failed, invalid user ID or password",
    );
    let answer = post(
        &api,
        "/v3/auth/authenticate",
        json!({"name": "nobody", "password": "x"}),
    )
    .await;
    assert_error(&answer, 400, 3, "invalid user ID or password");
    // Status and authenticate stay open.
    must_post(&api, "/v3/auth/status", json!({})).await;
}

#[tokio::test]
async fn a_token_is_refused_after_its_user_is_deleted() {
    let api = secured().await;
    let alice = token(&api, "alice", "alicepw").await;
    must_post_as(
        &api,
        As::Token(&alice),
        "/v3/kv/range",
        json!({"key": b64("/app/x")}),
    )
    .await;
    let root = token(&api, "root", "rootpw").await;
    must_post_as(
        &api,
        As::Token(&root),
        "/v3/auth/user/delete",
        json!({"name": "alice"}),
    )
    .await;
    let answer = post_as(
        &api,
        As::Token(&alice),
        "/v3/kv/range",
        json!({"key": b64("/app/x")}),
    )
    .await;
    assert_error(&answer, 401, 16, "etcdserver: invalid auth token");
    // Root cannot be deleted while auth is on.
    let answer = post_as(
        &api,
        As::Token(&root),
        "/v3/auth/user/delete",
        json!({"name": "root"}),
    )
    .await;
    assert_error(&answer, 400, 3, "etcdserver: invalid auth management");
}

#[tokio::test]
async fn a_watch_on_a_range_the_user_cannot_read_is_refused() {
    let api = secured().await;
    let alice = token(&api, "alice", "alicepw").await;
    // A session stays open for as long as its client, so read its first line off the stream.
    let line = first_watch_line(&api, &alice, "/other").await;
    let result = &line["result"];
    assert_eq!(result["created"], true, "{line}");
    assert_eq!(result["canceled"], true, "{line}");
    assert_eq!(result["watch_id"], "-1", "etcd's invalid watch id: {line}");
    assert!(
        result["cancel_reason"]
            .as_str()
            .unwrap()
            .contains("etcdserver: permission denied"),
        "{line}"
    );
    let allowed = first_watch_line(&api, &alice, "/app/x").await;
    assert_eq!(allowed["result"]["created"], true, "{allowed}");
    assert!(allowed["result"].get("canceled").is_none(), "{allowed}");
}

/// The first line a watch session answers `create_request {key}` with, as `token`'s user.
async fn first_watch_line(api: &Shared, token: &str, key: &str) -> Value {
    use futures::StreamExt as _;
    let body = json!({"create_request": {"key": b64(key)}}).to_string();
    let chunks =
        futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes::Bytes::from(body))]);
    let credentials = keel::auth::Credentials::new(Some(token.to_owned()), None);
    let mut lines = Box::pin(keel::api::watch::watch_stream(
        api.clone(),
        credentials,
        chunks,
    ));
    let line = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next())
        .await
        .expect("a watch answers")
        .expect("a line");
    serde_json::from_slice(&line).unwrap()
}

#[tokio::test]
async fn a_certificate_common_name_identifies_the_user() {
    let api = secured().await;
    let read = must_post_as(
        &api,
        As::Certificate("alice"),
        "/v3/kv/range",
        json!({"key": b64("/app/x")}),
    )
    .await;
    assert_eq!(read["kvs"][0]["value"], b64("1"));
    let answer = post_as(
        &api,
        As::Certificate("alice"),
        "/v3/kv/range",
        json!({"key": b64("/other")}),
    )
    .await;
    assert_error(&answer, 403, 7, "etcdserver: permission denied");
    must_post_as(
        &api,
        As::Certificate("root"),
        "/v3/cluster/member/list",
        json!({}),
    )
    .await;
    let answer = post_as(
        &api,
        As::Certificate("mallory"),
        "/v3/kv/range",
        json!({"key": b64("/app/x")}),
    )
    .await;
    assert_error(&answer, 403, 7, "etcdserver: permission denied");
}

#[tokio::test]
async fn leases_need_a_user_and_revoke_needs_write_on_the_keys() {
    let api = secured().await;
    let root = token(&api, "root", "rootpw").await;
    let alice = token(&api, "alice", "alicepw").await;
    let answer = post(&api, "/v3/lease/grant", json!({"TTL": "60"})).await;
    assert_error(&answer, 400, 3, "etcdserver: user name is empty");
    let granted = must_post_as(
        &api,
        As::Token(&alice),
        "/v3/lease/grant",
        json!({"TTL": "60"}),
    )
    .await;
    let id = granted["ID"].as_str().unwrap().to_owned();
    must_post_as(
        &api,
        As::Token(&alice),
        "/v3/lease/timetolive",
        json!({"ID": id}),
    )
    .await;
    must_post_as(
        &api,
        As::Token(&root),
        "/v3/kv/put",
        json!({"key": b64("/app/leased"), "value": b64("v"), "lease": id}),
    )
    .await;
    let answer = post_as(
        &api,
        As::Token(&alice),
        "/v3/lease/revoke",
        json!({"ID": id}),
    )
    .await;
    assert_error(&answer, 403, 7, "etcdserver: permission denied");
    must_post_as(
        &api,
        As::Token(&root),
        "/v3/lease/revoke",
        json!({"ID": id}),
    )
    .await;
}

#[tokio::test]
async fn users_and_roles_answer_in_etcds_shapes() {
    let api = node();
    must_post(
        &api,
        "/v3/auth/user/add",
        json!({"name": "bob", "password": "pw"}),
    )
    .await;
    let answer = post(
        &api,
        "/v3/auth/user/add",
        json!({"name": "bob", "password": "pw"}),
    )
    .await;
    assert_error(&answer, 412, 9, "etcdserver: user name already exists");
    let answer = post(
        &api,
        "/v3/auth/user/add",
        json!({"name": "", "password": "pw"}),
    )
    .await;
    assert_error(&answer, 400, 3, "etcdserver: user name is empty");
    let answer = post(&api, "/v3/auth/user/get", json!({"name": "nobody"})).await;
    assert_error(&answer, 412, 9, "etcdserver: user name not found");
    let answer = post(
        &api,
        "/v3/auth/user/grant",
        json!({"user": "bob", "role": "nope"}),
    )
    .await;
    assert_error(&answer, 412, 9, "etcdserver: role name not found");
    must_post(&api, "/v3/auth/role/add", json!({"name": "ops"})).await;
    must_post(
        &api,
        "/v3/auth/role/grant",
        json!({"name": "ops", "perm": {"permType": "READWRITE", "key": b64("/ops/"), "range_end": b64("/ops0")}}),
    )
    .await;
    must_post(
        &api,
        "/v3/auth/role/grant",
        json!({"name": "ops", "perm": {"key": b64("/a")}}),
    )
    .await;
    let role = must_post(&api, "/v3/auth/role/get", json!({"role": "ops"})).await;
    assert_eq!(
        role["perm"],
        json!([{"key": b64("/a")}, {"permType": "READWRITE", "key": b64("/ops/"), "range_end": b64("/ops0")}])
    );
    must_post(
        &api,
        "/v3/auth/user/grant",
        json!({"user": "bob", "role": "ops"}),
    )
    .await;
    let bob = must_post(&api, "/v3/auth/user/get", json!({"name": "bob"})).await;
    assert_eq!(bob["roles"], json!(["ops"]));
    let users = must_post(&api, "/v3/auth/user/list", json!({})).await;
    assert_eq!(users["users"], json!(["bob"]));
    let roles = must_post(&api, "/v3/auth/role/list", json!({})).await;
    assert_eq!(roles["roles"], json!(["ops"]));
    let answer = post(
        &api,
        "/v3/auth/role/revoke",
        json!({"role": "ops", "key": b64("/b")}),
    )
    .await;
    assert_error(
        &answer,
        412,
        9,
        "etcdserver: permission is not granted to the role",
    );
    must_post(
        &api,
        "/v3/auth/role/revoke",
        json!({"role": "ops", "key": b64("/a")}),
    )
    .await;
    must_post(
        &api,
        "/v3/auth/user/revoke",
        json!({"name": "bob", "role": "ops"}),
    )
    .await;
    let answer = post(
        &api,
        "/v3/auth/user/revoke",
        json!({"name": "bob", "role": "ops"}),
    )
    .await;
    assert_error(
        &answer,
        412,
        9,
        "etcdserver: role is not granted to the user",
    );
    must_post(&api, "/v3/auth/role/delete", json!({"role": "ops"})).await;
    must_post(&api, "/v3/auth/user/delete", json!({"name": "bob"})).await;
    let users = must_post(&api, "/v3/auth/user/list", json!({})).await;
    assert!(users.get("users").is_none(), "{users}");
}

#[tokio::test]
async fn passwords_are_stored_hashed_and_can_be_changed() {
    let api = secured().await;
    let stored = api.replica.store().user("alice").unwrap().unwrap();
    let hash = stored.password_hash.expect("a hash");
    assert!(!hash.contains("alicepw"));
    assert!(hash.starts_with("$2"), "a bcrypt hash: {hash}");
    let alice = token(&api, "alice", "alicepw").await;
    must_post_as(
        &api,
        As::Token(&alice),
        "/v3/auth/user/changepw",
        json!({"name": "alice", "password": "new"}),
    )
    .await;
    let answer = post(
        &api,
        "/v3/auth/authenticate",
        json!({"name": "alice", "password": "alicepw"}),
    )
    .await;
    assert_error(&answer, 400, 3, "authentication failed");
    token(&api, "alice", "new").await;
    // Not someone else's.
    let answer = post_as(
        &api,
        As::Token(&alice),
        "/v3/auth/user/changepw",
        json!({"name": "root", "password": "mine"}),
    )
    .await;
    assert_error(&answer, 403, 7, "etcdserver: permission denied");
}

#[tokio::test]
async fn disable_is_roots_and_then_everything_is_open() {
    let api = secured().await;
    let alice = token(&api, "alice", "alicepw").await;
    let answer = post_as(&api, As::Token(&alice), "/v3/auth/disable", json!({})).await;
    assert_error(&answer, 403, 7, "etcdserver: permission denied");
    let root = token(&api, "root", "rootpw").await;
    must_post_as(&api, As::Token(&root), "/v3/auth/disable", json!({})).await;
    must_post(
        &api,
        "/v3/kv/put",
        json!({"key": b64("/other"), "value": b64("free")}),
    )
    .await;
    let answer = post(
        &api,
        "/v3/auth/authenticate",
        json!({"name": "root", "password": "rootpw"}),
    )
    .await;
    assert_error(&answer, 412, 9, "etcdserver: authentication is not enabled");
}

#[tokio::test]
async fn tokens_die_with_their_ttl() {
    let api = node_with(|api| {
        api.auth.bcrypt_cost = 4;
        api.auth.token_ttl = std::time::Duration::ZERO;
    });
    must_post(
        &api,
        "/v3/auth/user/add",
        json!({"name": "root", "password": "pw"}),
    )
    .await;
    must_post(
        &api,
        "/v3/auth/user/grant",
        json!({"user": "root", "role": "root"}),
    )
    .await;
    must_post(&api, "/v3/auth/enable", json!({})).await;
    let expired = token(&api, "root", "pw").await;
    let answer = post_as(
        &api,
        As::Token(&expired),
        "/v3/cluster/member/list",
        json!({}),
    )
    .await;
    assert_error(&answer, 401, 16, "etcdserver: invalid auth token");
}

#[tokio::test]
async fn keepalive_and_snapshot_streams_are_checked_too() {
    let api = secured().await;
    let routes = keel::api::routes(api.clone());
    let alice = token(&api, "alice", "alicepw").await;
    let root = token(&api, "root", "rootpw").await;
    let granted = must_post_as(
        &api,
        As::Token(&root),
        "/v3/lease/grant",
        json!({"TTL": "60"}),
    )
    .await;
    let id = granted["ID"].as_str().unwrap().to_owned();
    let keepalive = |token: Option<&str>| {
        let request = warp::test::request()
            .method("POST")
            .path("/v3/lease/keepalive")
            .body(json!({"ID": id}).to_string());
        match token {
            Some(token) => request.header("authorization", token),
            None => request,
        }
    };
    let nobody = keepalive(None).reply(&routes).await;
    let line: Value = serde_json::from_slice(nobody.body()).unwrap();
    assert_eq!(line["message"], "etcdserver: user name is empty", "{line}");
    let renewed = keepalive(Some(&alice)).reply(&routes).await;
    let line: Value = serde_json::from_slice(renewed.body()).unwrap();
    assert_eq!(line["result"]["TTL"], "60", "{line}");

    let snapshot = |token: &str| {
        warp::test::request()
            .method("POST")
            .path("/v3/maintenance/snapshot")
            .header("authorization", token)
            .body("{}")
    };
    let refused = snapshot(&alice).reply(&routes).await;
    assert_eq!(refused.status(), 403);
    let taken = snapshot(&root).reply(&routes).await;
    assert_eq!(taken.status(), 200);
    assert!(taken.body().len() > 100, "a snapshot's worth of lines");
}

#[tokio::test]
async fn a_certificate_user_is_forwarded_with_a_token_for_its_name() {
    let api = secured().await;
    let credentials = keel::auth::Credentials::new(
        None,
        Some(ClientCertificate {
            common_name: "alice".into(),
        }),
    );
    // A follower cannot hand the leader the certificate, so it vouches with a token.
    let token = api.auth.forwarding_token(&credentials).expect("a token");
    let state = api.auth.state().unwrap();
    let forwarded = keel::auth::Credentials::new(Some(token), None);
    assert_eq!(api.auth.identify(&state, &forwarded).unwrap().name, "alice");
    let own = keel::auth::Credentials::new(Some("Bearer abc".into()), None);
    assert_eq!(api.auth.forwarding_token(&own).as_deref(), Some("abc"));
    assert_eq!(api.auth.forwarding_token(&Default::default()), None);
}
