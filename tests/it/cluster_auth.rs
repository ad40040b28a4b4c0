//! Auth over a real three-member cluster in this process: permissions, tokens that every
//! member accepts, and what happens to them when their user is deleted.

use std::time::{Duration, Instant};

use base64::Engine as _;
use keel::cli::dev::{DevArgs, DevCluster};
use serde_json::{json, Value};

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

const DEADLINE: Duration = Duration::from_secs(20);

struct Cluster {
    cluster: DevCluster,
    http: reqwest::Client,
}

impl Cluster {
    async fn start() -> Cluster {
        let args = DevArgs::on_free_ports(3);
        // bcrypt's lowest cost: a debug build hashes at the default cost for seconds.
        let cluster = DevCluster::start_tuned(&args, false, |config| config.bcrypt_cost = 4)
            .await
            .expect("cluster starts");
        Cluster {
            cluster,
            http: reqwest::Client::new(),
        }
    }

    async fn post(
        &self,
        member: usize,
        token: Option<&str>,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let url = format!("http://{}{path}", self.cluster.members[member].client_addr);
        let mut request = self.http.post(url).timeout(DEADLINE).body(body.to_string());
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("member {member} {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn must(&self, member: usize, token: Option<&str>, path: &str, body: Value) -> Value {
        let (status, value) = self.post(member, token, path, body.clone()).await;
        assert_eq!(status, 200, "member {member} POST {path} {body}: {value}");
        value
    }

    async fn token(&self, member: usize, name: &str, password: &str) -> String {
        let answer = self
            .must(
                member,
                None,
                "/v3/auth/authenticate",
                json!({"name": name, "password": password}),
            )
            .await;
        answer["token"].as_str().expect("a token").to_owned()
    }

    /// Polls `path` on `member` until it answers `status` (members apply the log a moment
    /// apart), failing with the last answer past the deadline.
    async fn eventually(
        &self,
        member: usize,
        token: Option<&str>,
        path: &str,
        body: Value,
        status: u16,
    ) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (got, value) = self.post(member, token, path, body.clone()).await;
            if got == status {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "member {member} {path} still answers {got} {value}, not {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first line of a watch of `key` on `member`.
    async fn first_watch_line(&self, member: usize, token: &str, key: &str) -> Value {
        let url = format!(
            "http://{}/v3/watch",
            self.cluster.members[member].client_addr
        );
        let mut response = self
            .http
            .post(url)
            .header("authorization", token)
            .body(json!({"create_request": {"key": b64(key)}}).to_string())
            .send()
            .await
            .expect("watch opens");
        let mut buffer = Vec::new();
        let read = tokio::time::timeout(DEADLINE, async {
            while !buffer.contains(&b'\n') {
                match response.chunk().await.expect("watch body") {
                    Some(chunk) => buffer.extend_from_slice(&chunk),
                    None => break,
                }
            }
        });
        read.await.expect("a watch line in time");
        let line = buffer.split(|b| *b == b'\n').next().unwrap_or_default();
        serde_json::from_slice(line).unwrap_or_else(|e| panic!("watch line {line:?}: {e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_across_a_three_member_cluster() {
    let c = Cluster::start().await;

    // Enabling without root is refused, with etcd's words.
    let (status, answer) = c.post(1, None, "/v3/auth/enable", json!({})).await;
    assert_eq!(
        (status, answer["code"].as_i64()),
        (412, Some(9)),
        "{answer}"
    );
    assert_eq!(answer["message"], "etcdserver: root user does not exist");

    // Set up through different members: every change goes through the log.
    c.must(
        0,
        None,
        "/v3/auth/user/add",
        json!({"name": "root", "password": "rootpw"}),
    )
    .await;
    c.must(
        1,
        None,
        "/v3/auth/user/grant",
        json!({"user": "root", "role": "root"}),
    )
    .await;
    c.must(2, None, "/v3/auth/role/add", json!({"name": "app"}))
        .await;
    c.must(
        0,
        None,
        "/v3/auth/role/grant",
        json!({"name": "app", "perm": {"permType": "READ", "key": b64("/app/"), "range_end": b64("/app0")}}),
    )
    .await;
    c.must(
        1,
        None,
        "/v3/auth/user/add",
        json!({"name": "alice", "password": "alicepw"}),
    )
    .await;
    c.must(
        2,
        None,
        "/v3/auth/user/grant",
        json!({"user": "alice", "role": "app"}),
    )
    .await;
    c.must(
        0,
        None,
        "/v3/kv/put",
        json!({"key": b64("/app/x"), "value": b64("1")}),
    )
    .await;
    c.must(
        0,
        None,
        "/v3/kv/put",
        json!({"key": b64("/other"), "value": b64("2")}),
    )
    .await;
    c.must(2, None, "/v3/auth/enable", json!({})).await;
    for member in 0..3 {
        let status = c.must(member, None, "/v3/auth/status", json!({})).await;
        assert_eq!(status["enabled"], true, "member {member}: {status}");
    }

    // A token issued by one member works on every member.
    let alice = c.token(1, "alice", "alicepw").await;
    for member in 0..3 {
        let read = c
            .must(
                member,
                Some(&alice),
                "/v3/kv/range",
                json!({"key": b64("/app/x")}),
            )
            .await;
        assert_eq!(read["kvs"][0]["value"], b64("1"), "member {member}");
        let (status, answer) = c
            .post(
                member,
                Some(&alice),
                "/v3/kv/put",
                json!({"key": b64("/app/x"), "value": b64("3")}),
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_i64()),
            (403, Some(7)),
            "member {member}: {answer}"
        );
        assert_eq!(answer["message"], "etcdserver: permission denied");
        let (status, _) = c
            .post(
                member,
                Some(&alice),
                "/v3/kv/range",
                json!({"key": b64("/other")}),
            )
            .await;
        assert_eq!(status, 403, "member {member} let alice read /other");
        let (status, _) = c
            .post(member, Some(&alice), "/v3/cluster/member/list", json!({}))
            .await;
        assert_eq!(status, 403, "member {member} let alice list members");
    }
    let refused = c.first_watch_line(2, &alice, "/other").await;
    assert_eq!(refused["result"]["canceled"], true, "{refused}");
    assert!(
        refused["result"]["cancel_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("permission denied"),
        "{refused}"
    );
    let allowed = c.first_watch_line(2, &alice, "/app/x").await;
    assert!(allowed["result"].get("canceled").is_none(), "{allowed}");

    // Root may do everything, membership included; lease calls a follower forwards to the
    // leader carry the caller's token.
    let root = c.token(0, "root", "rootpw").await;
    for member in 0..3 {
        let members = c
            .must(member, Some(&root), "/v3/cluster/member/list", json!({}))
            .await;
        assert_eq!(members["members"].as_array().unwrap().len(), 3);
        let lease = c
            .must(
                member,
                Some(&alice),
                "/v3/lease/grant",
                json!({"TTL": "30"}),
            )
            .await;
        assert!(lease["ID"].as_str().is_some(), "{lease}");
        let (status, _) = c
            .post(member, None, "/v3/lease/grant", json!({"TTL": "30"}))
            .await;
        assert_eq!(status, 400, "member {member} granted a lease to nobody");
    }

    // Deleting the user kills its token on every member.
    c.must(
        1,
        Some(&root),
        "/v3/auth/user/delete",
        json!({"name": "alice"}),
    )
    .await;
    for member in 0..3 {
        let answer = c
            .eventually(
                member,
                Some(&alice),
                "/v3/kv/range",
                json!({"key": b64("/app/x")}),
                401,
            )
            .await;
        assert_eq!(answer["message"], "etcdserver: invalid auth token");
    }

    // Auth and its signing secret are durable: after a restart of every member, auth is
    // still on and a token issued before still works.
    let Cluster { cluster, http } = c;
    let c = Cluster {
        cluster: cluster.restart().await.expect("cluster restarts"),
        http,
    };
    for member in 0..3 {
        c.eventually(
            member,
            Some(&root),
            "/v3/cluster/member/list",
            json!({}),
            200,
        )
        .await;
        let (status, _) = c
            .post(member, None, "/v3/kv/range", json!({"key": b64("/app/x")}))
            .await;
        assert_eq!(
            status, 400,
            "member {member} serves anonymous reads after a restart"
        );
    }
    c.cluster.stop().await.expect("cluster stops");
}
