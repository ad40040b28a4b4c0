//! A real three-member cluster in this process (the same code `keel dev` runs), spoken to
//! over HTTP on 127.0.0.1 with ports picked by the kernel.

use std::time::{Duration, Instant};

use base64::Engine as _;
use keel::cli::dev::{DevArgs, DevCluster};
use serde_json::{json, Value};

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn unb64(value: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .expect("base64 from the server");
    String::from_utf8(bytes).expect("utf-8 value")
}

/// A cluster and an HTTP client, with helpers that fail with the member and the answer.
struct TestCluster {
    cluster: DevCluster,
    http: reqwest::Client,
}

impl TestCluster {
    async fn start(size: usize, data_dir: Option<std::path::PathBuf>) -> TestCluster {
        let args = DevArgs {
            size,
            data_dir,
            ..DevArgs::on_free_ports(size)
        };
        let cluster = DevCluster::start(&args).await.expect("cluster starts");
        TestCluster {
            cluster,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, member: usize) -> String {
        format!("http://{}", self.cluster.members[member].client_addr)
    }

    async fn post(&self, member: usize, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url(member)))
            .timeout(Duration::from_secs(20))
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("member {member} {path}: {e}"));
        let status = response.status().as_u16();
        let value = response.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    async fn must_post(&self, member: usize, path: &str, body: Value) -> Value {
        let (status, value) = self.post(member, path, body.clone()).await;
        assert_eq!(status, 200, "member {member} POST {path} {body}: {value}");
        value
    }

    async fn must_put(&self, member: usize, key: &str, value: &str) -> i64 {
        let answer = self
            .must_post(
                member,
                "/v3/kv/put",
                json!({"key": b64(key), "value": b64(value)}),
            )
            .await;
        revision(&answer)
    }

    /// A linearizable read of one key on `member`: `None` if absent.
    async fn must_get(&self, member: usize, key: &str) -> Option<String> {
        let answer = self
            .must_post(member, "/v3/kv/range", json!({"key": b64(key)}))
            .await;
        answer["kvs"]
            .as_array()
            .and_then(|kvs| kvs.first())
            .map(|kv| unb64(&kv["value"]))
    }

    /// Polls (no fixed sleeps) until every running member agrees on a leader.
    async fn wait_for_leader(&self, deadline: Duration) -> usize {
        let start = Instant::now();
        loop {
            let leaders: Vec<Option<u64>> = self
                .cluster
                .members
                .iter()
                .map(|m| m.replica.node().current_leader())
                .collect();
            if let Some(Some(leader)) = leaders.first() {
                if leaders.iter().all(|l| *l == Some(*leader)) {
                    if let Some(i) = self.cluster.members.iter().position(|m| m.id == *leader) {
                        return i;
                    }
                }
            }
            assert!(start.elapsed() < deadline, "no agreed leader: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until every member reports the same hash of its keyspace at `revision`.
    async fn assert_converged(&self, revision: i64) {
        let start = Instant::now();
        loop {
            let hashes: Vec<_> = self
                .cluster
                .members
                .iter()
                .map(|m| m.replica.node().store().hash_kv(revision).ok())
                .collect();
            if hashes[0].is_some() && hashes.iter().all(|h| *h == hashes[0]) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "members disagree at revision {revision}: {hashes:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn revision(answer: &Value) -> i64 {
    answer["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no header.revision in {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_on_every_member_agree() {
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut last = 0;
    for member in 0..3 {
        // Followers forward writes to the leader, as etcd members do.
        let rev = cluster
            .must_put(member, &format!("/k/{member}"), &format!("v{member}"))
            .await;
        assert!(rev > last, "revisions grow: {rev} after {last}");
        last = rev;
    }
    for member in 0..3 {
        for key in 0..3 {
            assert_eq!(
                cluster.must_get(member, &format!("/k/{key}")).await,
                Some(format!("v{key}")),
                "member {member} (leader is {leader}) key {key}"
            );
        }
    }
    // Every member's client URL reaches the membership (through the leader), so any member
    // lists all of them, as etcd does once members have published themselves.
    let mut expected: Vec<String> = (0..3).map(|m| cluster.url(m)).collect();
    expected.sort();
    let start = Instant::now();
    loop {
        let listed = cluster
            .must_post(1, "/v3/cluster/member/list", json!({}))
            .await;
        let members = listed["members"].as_array().cloned().unwrap_or_default();
        assert_eq!(members.len(), 3, "{listed}");
        let mut urls: Vec<String> = members
            .iter()
            .filter_map(|m| m["clientURLs"][0].as_str().map(str::to_owned))
            .collect();
        urls.sort();
        if urls == expected {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "client URLs never all listed: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.assert_converged(last).await;
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_swap_races_between_clients_lose_no_increment() {
    let cluster = TestCluster::start(3, None).await;
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    cluster.must_put(0, "counter", "0").await;

    // Four clients on different members each try to increment the counter by reading it and
    // swapping on its mod revision; a lost race retries. Every success must be counted once.
    let cluster = std::sync::Arc::new(cluster);
    let mut tasks = Vec::new();
    for client in 0..4usize {
        let cluster = cluster.clone();
        tasks.push(tokio::spawn(async move {
            let member = client % 3;
            let mut done = 0;
            while done < 5 {
                let read = cluster
                    .must_post(member, "/v3/kv/range", json!({"key": b64("counter")}))
                    .await;
                let kv = &read["kvs"][0];
                let n: i64 = unb64(&kv["value"]).parse().unwrap();
                let txn = json!({
                    "compare": [{"key": b64("counter"), "target": "MOD", "result": "EQUAL",
                                 "mod_revision": kv["mod_revision"]}],
                    "success": [{"request_put": {"key": b64("counter"), "value": b64(&(n + 1).to_string())}}],
                });
                let answer = cluster.must_post(member, "/v3/kv/txn", txn).await;
                if answer["succeeded"] == true {
                    done += 1;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(cluster.must_get(2, "counter").await.as_deref(), Some("20"));
    let cluster = std::sync::Arc::into_inner(cluster).expect("tasks are done");
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_leader_keeps_every_acknowledged_write() {
    let mut cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut written = Vec::new();
    for i in 0..20 {
        cluster.must_put(leader, &format!("before/{i}"), "x").await;
        written.push(format!("before/{i}"));
    }

    let stopped = cluster.cluster.members.remove(leader);
    cluster.cluster.configs.remove(leader);
    stopped.stop().await.unwrap();

    // The two survivors elect a new leader; clients retry until it answers.
    let start = Instant::now();
    let mut i = 0;
    while i < 20 {
        let member = i % 2;
        let (status, answer) = cluster
            .post(
                member,
                "/v3/kv/put",
                json!({"key": b64(&format!("after/{i}")), "value": b64("y")}),
            )
            .await;
        if status == 200 {
            written.push(format!("after/{i}"));
            i += 1;
        } else {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no write succeeded after losing the leader: {status} {answer}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for key in &written {
        for member in 0..2 {
            assert!(
                cluster.must_get(member, key).await.is_some(),
                "{key} lost on member {member}"
            );
        }
    }
    cluster.cluster.stop().await.unwrap();
}

/// Concurrent puts of one key through every member (the followers' forwarded to the leader)
/// share Raft entries, yet each answer carries its own revision and the value it replaced;
/// a put naming an unknown lease fails alone; and the batches replay after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_share_entries_keep_their_own_answers_and_survive_a_restart() {
    const WRITERS: usize = 48;
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let entries_before = cluster.cluster.members[leader]
        .replica
        .node()
        .status()
        .last_log_index;
    let answers = futures::future::join_all((0..WRITERS).map(|i| {
        let body = if i % 10 == 3 {
            json!({"key": b64("shared"), "value": b64(&i.to_string()), "prev_kv": true, "lease": "999"})
        } else {
            json!({"key": b64("shared"), "value": b64(&i.to_string()), "prev_kv": true})
        };
        let cluster = &cluster;
        async move { cluster.post(i % 3, "/v3/kv/put", body).await }
    }))
    .await;
    // (revision, previous mod revision, previous value, own value) of each put that succeeded.
    let mut chain = Vec::new();
    for (i, (status, answer)) in answers.iter().enumerate() {
        if i % 10 == 3 {
            assert_ne!(*status, 200, "put {i} with an unknown lease: {answer}");
            assert!(
                answer.to_string().contains("lease not found"),
                "put {i}: {answer}"
            );
            continue;
        }
        assert_eq!(*status, 200, "put {i}: {answer}");
        let prev = &answer["prev_kv"];
        let prev_revision = prev["mod_revision"].as_str().and_then(|r| r.parse().ok());
        let prev_value = prev.get("value").map(unb64);
        chain.push((revision(answer), prev_revision, prev_value, i.to_string()));
    }
    chain.sort();
    for pair in chain.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert_eq!(
            after.0,
            before.0 + 1,
            "revisions are distinct and consecutive: {chain:?}"
        );
        assert_eq!(
            after.1,
            Some(before.0),
            "the put at {} replaced the one before",
            after.0
        );
        assert_eq!(
            after.2.as_ref(),
            Some(&before.3),
            "the put at {} saw its predecessor's value",
            after.0
        );
    }
    let entries = cluster.cluster.members[leader]
        .replica
        .node()
        .status()
        .last_log_index
        - entries_before;
    assert!(
        entries < WRITERS as u64,
        "{WRITERS} concurrent puts took {entries} entries"
    );
    let last = chain.last().expect("some puts succeeded").0;
    cluster.assert_converged(last).await;
    let history = cluster.cluster.members[0]
        .replica
        .node()
        .store()
        .history(b"shared")
        .unwrap();
    assert_eq!(history.len(), chain.len());

    let cluster = TestCluster {
        cluster: cluster.cluster.restart().await.unwrap(),
        http: cluster.http,
    };
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    cluster.assert_converged(last).await;
    for member in &cluster.cluster.members {
        assert_eq!(
            member.replica.node().store().history(b"shared").unwrap(),
            history
        );
    }
    let latest = &chain.last().expect("some puts succeeded").3;
    assert_eq!(cluster.must_get(1, "shared").await.as_ref(), Some(latest));
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_cluster_serves_what_it_had() {
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut rev = 0;
    for i in 0..10 {
        rev = cluster
            .must_put(leader, &format!("k{i}"), &format!("{i}"))
            .await;
    }
    cluster.assert_converged(rev).await;
    let before = cluster.cluster.members[0]
        .replica
        .node()
        .store()
        .hash_kv(rev)
        .unwrap();
    let cluster = TestCluster {
        cluster: cluster.cluster.restart().await.unwrap(),
        http: cluster.http,
    };
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    for member in 0..3 {
        assert_eq!(cluster.must_get(member, "k9").await.as_deref(), Some("9"));
    }
    cluster.assert_converged(rev).await;
    let after = cluster.cluster.members[2]
        .replica
        .node()
        .store()
        .hash_kv(rev)
        .unwrap();
    assert_eq!(before, after);
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_is_added_catches_up_is_promoted_and_removed() {
    let mut cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    for i in 0..10 {
        cluster.must_put(leader, &format!("k{i}"), "v").await;
    }

    // etcd's flow: `member add` on the cluster first, then start the new member with
    // initial-cluster-state=existing.
    let client = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client_url = format!("http://{}", client.local_addr().unwrap());
    let peer_url = format!("http://{}", peer.local_addr().unwrap());
    let added = cluster
        .must_post(
            leader,
            "/v3/cluster/member/add",
            json!({"peerURLs": [peer_url], "isLearner": true}),
        )
        .await;
    assert_eq!(added["member"]["isLearner"], true, "{added}");
    let new_id: u64 = added["member"]["ID"].as_str().unwrap().parse().unwrap();

    let mut config = cluster.cluster.configs[0].clone();
    let dir = tempfile::tempdir().unwrap();
    config.name = "n4".into();
    config.data_dir = dir.path().join("n4");
    config.listen_client_urls = vec![client_url.clone()];
    config.advertise_client_urls = vec![client_url];
    config.listen_peer_urls = vec![peer_url.clone()];
    config.initial_advertise_peer_urls = vec![peer_url.clone()];
    config.initial_cluster = format!("{},n4={peer_url}", config.initial_cluster);
    config.initial_cluster_state = keel::config::ClusterState::Existing;
    let learner = keel::member::start(&config, client, peer).await.unwrap();
    assert_eq!(
        learner.id, new_id,
        "the new member derives the id member add gave it"
    );
    cluster.cluster.members.push(learner);
    cluster.cluster.configs.push(config);

    // The learner catches up from the leader (serializable reads are served locally).
    let start = Instant::now();
    loop {
        let (status, answer) = cluster
            .post(
                3,
                "/v3/kv/range",
                json!({"key": b64("k9"), "serializable": true}),
            )
            .await;
        if status == 200 && answer["count"] == "1" {
            // It learned the cluster's id from a peer rather than deriving its own from an
            // initial-cluster that names it too.
            let (_, founder) = cluster
                .post(leader, "/v3/kv/range", json!({"key": b64("k9")}))
                .await;
            assert_eq!(
                answer["header"]["cluster_id"], founder["header"]["cluster_id"],
                "{answer} {founder}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "learner never caught up: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let promoted = cluster
        .must_post(
            leader,
            "/v3/cluster/member/promote",
            json!({"ID": new_id.to_string()}),
        )
        .await;
    let members = promoted["members"].as_array().unwrap();
    assert_eq!(members.len(), 4, "{promoted}");
    assert!(members.iter().all(|m| m["isLearner"] != true), "{promoted}");
    // A voter now: it can take writes (forwarded) like any member.
    cluster.must_put(3, "from-n4", "x").await;

    let removed = cluster
        .must_post(
            leader,
            "/v3/cluster/member/remove",
            json!({"ID": new_id.to_string()}),
        )
        .await;
    assert_eq!(
        removed["members"].as_array().map(Vec::len),
        Some(3),
        "{removed}"
    );
    let learner = cluster.cluster.members.pop().unwrap();
    learner.stop().await.unwrap();
    assert_eq!(cluster.must_get(0, "from-n4").await.as_deref(), Some("x"));
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_named_voter_and_not_to_a_stranger() {
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    cluster.must_put(leader, "before", "1").await;
    let follower = (leader + 1) % 3;
    let target = (leader + 2) % 3;
    let target_id = cluster.cluster.members[target].id;

    // Sent to a follower: forwarded to the leader, which answers once the target leads.
    let moved = cluster
        .must_post(
            follower,
            "/v3/maintenance/transfer-leadership",
            json!({"targetID": target_id.to_string()}),
        )
        .await;
    assert!(moved["header"].is_object(), "{moved}");
    assert_eq!(
        cluster.wait_for_leader(Duration::from_secs(20)).await,
        target,
        "{moved}"
    );
    cluster.must_put(follower, "after", "2").await;
    assert_eq!(
        cluster.must_get(leader, "before").await.as_deref(),
        Some("1")
    );

    let (status, refused) = cluster
        .post(
            target,
            "/v3/maintenance/transfer-leadership",
            json!({"targetID": "12345"}),
        )
        .await;
    assert_ne!(status, 200, "{refused}");
    assert_eq!(refused["code"], 9, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("bad leader transferee")),
        "{refused}"
    );
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_update_replaces_a_peer_url_and_refuses_one_in_use() {
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let follower_id = cluster.cluster.members[follower].id.to_string();
    let list = cluster
        .must_post(leader, "/v3/cluster/member/list", json!({}))
        .await;
    let peer_url_of = |list: &Value, id: &str| -> String {
        list["members"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["ID"] == id))
            .and_then(|m| m["peerURLs"][0].as_str())
            .unwrap_or_else(|| panic!("no member {id} in {list}"))
            .to_owned()
    };
    let old_url = peer_url_of(&list, &follower_id);
    let leader_url = peer_url_of(&list, &cluster.cluster.members[leader].id.to_string());

    let (status, refused) = cluster
        .post(
            leader,
            "/v3/cluster/member/update",
            json!({"ID": follower_id, "peerURLs": [leader_url]}),
        )
        .await;
    assert_ne!(status, 200, "{refused}");
    assert_eq!(refused["code"], 9, "{refused}");

    // Sent to the follower itself: forwarded to the leader.
    let updated = cluster
        .must_post(
            follower,
            "/v3/cluster/member/update",
            json!({"ID": follower_id, "peerURLs": ["http://127.0.0.1:1"]}),
        )
        .await;
    assert_eq!(peer_url_of(&updated, &follower_id), "http://127.0.0.1:1");
    let listed = cluster
        .must_post(leader, "/v3/cluster/member/list", json!({}))
        .await;
    assert_eq!(peer_url_of(&listed, &follower_id), "http://127.0.0.1:1");

    // Back to the real address: the follower is replicated to again.
    cluster
        .must_post(
            leader,
            "/v3/cluster/member/update",
            json!({"ID": follower_id, "peerURLs": [old_url]}),
        )
        .await;
    cluster.must_put(leader, "after-update", "x").await;
    assert_eq!(
        cluster.must_get(follower, "after-update").await.as_deref(),
        Some("x")
    );
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_raft_durations_and_leader_changes_after_writes() {
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    for i in 0..5 {
        cluster.must_put(leader, &format!("m{i}"), "v").await;
    }
    // The follower applies the writes too (a linearizable read waits for it).
    assert_eq!(cluster.must_get(follower, "m4").await.as_deref(), Some("v"));
    let text = cluster
        .http
        .get(format!("{}/metrics", cluster.url(follower)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert!(
        value("etcd_server_apply_duration_seconds_count") >= 5.0,
        "{text}"
    );
    assert!(
        value("etcd_disk_wal_fsync_duration_seconds_count") >= 5.0,
        "{text}"
    );
    assert!(
        value("etcd_server_leader_changes_seen_total") >= 1.0,
        "{text}"
    );
    assert!(value("etcd_server_proposals_pending") >= 0.0, "{text}");
    cluster.cluster.stop().await.unwrap();
}

/// A watch over HTTP: the response lines of `POST /v3/watch`, whose stream stays open after
/// the one create request in the body.
struct HttpWatch {
    chunks: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: Vec<u8>,
}

impl HttpWatch {
    async fn open(cluster: &TestCluster, member: usize, create: Value) -> HttpWatch {
        let response = cluster
            .http
            .post(format!("{}/v3/watch", cluster.url(member)))
            .body(json!({ "create_request": create }).to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("member {member} watch: {e}"));
        assert_eq!(response.status().as_u16(), 200, "member {member} watch");
        HttpWatch {
            chunks: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
        }
    }

    /// The next response's `result`, failing after 10 s instead of hanging.
    async fn next(&mut self) -> Value {
        use futures::StreamExt as _;
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let value: Value = serde_json::from_slice(&line).expect("a JSON line");
                return value.get("result").cloned().unwrap_or(value);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.chunks.next())
                .await
                .expect("a watch response within 10 s")
                .expect("the watch stream is open")
                .expect("the watch stream is readable");
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_a_follower_replays_every_event_in_order() {
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let first = cluster.must_put(leader, "w/0", "0").await;
    for i in 1..10 {
        cluster
            .must_put((leader + i) % 3, &format!("w/{i}"), &i.to_string())
            .await;
    }
    let mut watch = HttpWatch::open(
        &cluster,
        follower,
        json!({"key": b64("w/"), "range_end": b64("w0"), "start_revision": first.to_string()}),
    )
    .await;
    assert_eq!(watch.next().await["created"], true);
    // A write after the watch opened follows the replayed ones.
    cluster.must_put(leader, "w/10", "10").await;
    let mut events = Vec::new();
    while events.len() < 11 {
        let update = watch.next().await;
        events.extend(update["events"].as_array().cloned().unwrap_or_default());
    }
    for (i, event) in events.iter().enumerate() {
        assert_eq!(unb64(&event["kv"]["key"]), format!("w/{i}"), "{events:?}");
        let mod_revision: i64 = event["kv"]["mod_revision"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(mod_revision, first + i as i64, "{events:?}");
    }
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_watch_on_a_follower_ends_with_the_compact_revision() {
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let first = cluster.must_put(leader, "c", "1").await;
    cluster.must_put(leader, "c", "2").await;
    let last = cluster.must_put(leader, "c", "3").await;
    cluster
        .must_post(
            leader,
            "/v3/kv/compaction",
            json!({"revision": last.to_string(), "physical": true}),
        )
        .await;
    cluster.assert_converged(last).await;
    let mut watch = HttpWatch::open(
        &cluster,
        follower,
        json!({"key": b64("c"), "start_revision": first.to_string()}),
    )
    .await;
    let mut answer = watch.next().await;
    if answer["created"] == true && answer["canceled"] != true {
        answer = watch.next().await;
    }
    assert_eq!(answer["canceled"], true, "{answer}");
    assert_eq!(answer["compact_revision"], last.to_string(), "{answer}");
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_takes_its_key_from_every_member() {
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let granted = cluster
        .must_post(follower, "/v3/lease/grant", json!({"ID": "7", "TTL": "2"}))
        .await;
    // The TTL may be raised to the minimum the election timeout allows, as etcd does.
    let ttl: u64 = granted["TTL"].as_str().unwrap().parse().unwrap();
    cluster
        .must_post(
            follower,
            "/v3/kv/put",
            json!({"key": b64("leased"), "value": b64("x"), "lease": "7"}),
        )
        .await;
    for member in 0..3 {
        assert_eq!(
            cluster.must_get(member, "leased").await.as_deref(),
            Some("x")
        );
    }
    let deadline = Instant::now() + Duration::from_secs(ttl + 15);
    for member in 0..3 {
        loop {
            let (status, answer) = cluster
                .post(
                    member,
                    "/v3/kv/range",
                    json!({"key": b64("leased"), "serializable": true}),
                )
                .await;
            if status == 200 && answer.get("count").is_none() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member {member} still has the key {ttl} s after: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    cluster.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linearizable_read_on_a_follower_sees_a_write_through_another_member() {
    let cluster = TestCluster::start(3, None).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let writer = (leader + 1) % 3;
    let reader = (leader + 2) % 3;
    for i in 0..10 {
        let value = i.to_string();
        cluster.must_put(writer, "lin", &value).await;
        assert_eq!(
            cluster.must_get(reader, "lin").await.as_deref(),
            Some(value.as_str()),
            "write {i} through member {writer}, read on member {reader}"
        );
    }
    cluster.cluster.stop().await.unwrap();
}
