//! Three `keel serve` processes on 127.0.0.1: the leader is killed with SIGKILL mid-stream,
//! clients retry on the survivors, the killed member restarts from its data dir, and no
//! acknowledged write is missing anywhere.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

use crate::free_port;

struct Member {
    name: String,
    client_url: String,
    args: Vec<String>,
    child: Option<Child>,
}

/// `keel serve`'s flags for member `name` of `initial_cluster`, data under `dir`, with Raft
/// timings a few times shorter than the defaults.
fn serve_args(
    dir: &std::path::Path,
    name: &str,
    client_url: &str,
    peer_url: &str,
    initial_cluster: &str,
) -> Vec<String> {
    let data_dir = dir.join(name).display().to_string();
    [
        "serve",
        "--name",
        name,
        "--data-dir",
        &data_dir,
        "--listen-client-urls",
        client_url,
        "--advertise-client-urls",
        client_url,
        "--listen-peer-urls",
        peer_url,
        "--initial-advertise-peer-urls",
        peer_url,
        "--initial-cluster",
        initial_cluster,
        "--heartbeat-interval",
        "50",
        "--election-timeout",
        "500",
    ]
    .map(String::from)
    .to_vec()
}

impl Member {
    fn spawn(&mut self) {
        self.spawn_logging_to(Stdio::null());
    }

    /// Starts the member with its stderr (its log and any fatal error) going to `stderr`.
    fn spawn_logging_to(&mut self, stderr: Stdio) {
        let child = Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(&self.args)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("keel serve starts");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill sends SIGKILL: no shutdown code runs, as in a crash.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

struct ProcessCluster {
    members: Vec<Member>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl ProcessCluster {
    fn start() -> ProcessCluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("n{}=http://127.0.0.1:{peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let name = format!("n{}", i + 1);
                let client_url = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let args = serve_args(dir.path(), &name, &client_url, &peer_url, &initial_cluster);
                let mut member = Member {
                    name,
                    client_url,
                    args,
                    child: None,
                };
                member.spawn();
                member
            })
            .collect();
        ProcessCluster {
            members,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn post(&self, member: usize, path: &str, body: &Value) -> Option<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.members[member].client_url))
            .timeout(Duration::from_secs(5))
            .body(body.to_string())
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// Polls until `member` reports a leader; returns the leader's index in `members`.
    async fn leader(&self, among: &[usize], deadline: Duration) -> usize {
        let start = Instant::now();
        loop {
            let mut ids = Vec::new();
            for &m in among {
                if let Some(status) = self.post(m, "/v3/maintenance/status", &json!({})).await {
                    ids.push((
                        m,
                        status["header"]["member_id"].clone(),
                        status["leader"].clone(),
                    ));
                }
            }
            if let Some((_, _, leader)) = ids.first() {
                if leader.as_str().is_some_and(|l| l != "0")
                    && ids.iter().all(|(_, _, l)| l == leader)
                {
                    if let Some((m, _, _)) = ids.iter().find(|(_, id, _)| id == leader) {
                        return *m;
                    }
                }
            }
            assert!(
                start.elapsed() < deadline,
                "no agreed leader among {among:?}: {ids:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Puts until some member in `among` acknowledges, retrying across members.
    async fn put_with_retry(&self, among: &[usize], key: &str) -> bool {
        let body = json!({"key": b64(key), "value": b64(key)});
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            for &m in among {
                if self.post(m, "/v3/kv/put", &body).await.is_some() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn serializable_get(&self, member: usize, key: &str) -> Option<Value> {
        let body = json!({"key": b64(key), "serializable": true});
        self.post(member, "/v3/kv/range", &body).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_leader_loses_no_acknowledged_write() {
    let mut cluster = ProcessCluster::start();
    let all = [0, 1, 2];
    let leader = cluster.leader(&all, Duration::from_secs(30)).await;
    let survivors: Vec<usize> = all.iter().copied().filter(|m| *m != leader).collect();

    let mut acknowledged = Vec::new();
    for i in 0..30 {
        let key = format!("before/{i}");
        assert!(
            cluster.put_with_retry(&all, &key).await,
            "{key} never acknowledged"
        );
        acknowledged.push(key);
    }
    cluster.members[leader].kill();

    // Clients keep writing through the survivors while they elect a new leader.
    for i in 0..30 {
        let key = format!("after/{i}");
        assert!(
            cluster.put_with_retry(&survivors, &key).await,
            "{key} never acknowledged after the leader ({}) was killed",
            cluster.members[leader].name
        );
        acknowledged.push(key);
    }

    cluster.members[leader].spawn();
    cluster.leader(&all, Duration::from_secs(30)).await;
    for member in all {
        let start = Instant::now();
        for key in &acknowledged {
            // The restarted member catches up from the log; poll its local copy.
            loop {
                let found = cluster
                    .serializable_get(member, key)
                    .await
                    .is_some_and(|answer| answer["count"] == "1");
                if found {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "{key} missing on {} after the restart",
                    cluster.members[member].name
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A member whose Raft core stops (here a storage failure: the snapshot sidecar cannot be
/// written, so the first snapshot build fails) exits non-zero, naming why, rather than serving
/// on from its last state without replicating, voting or applying again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_raft_stops_exits_naming_why() {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut args = serve_args(
        dir.path(),
        "n1",
        &client_url,
        &peer_url,
        &format!("n1={peer_url}"),
    );
    args.extend(["--snapshot-count".into(), "5".into()]);
    let mut member = Member {
        name: "n1".into(),
        client_url: client_url.clone(),
        args,
        child: None,
    };
    member.spawn_logging_to(stderr.into());
    let http = reqwest::Client::new();
    let put = |i: usize| {
        http.post(format!("{client_url}/v3/kv/put"))
            .json(&json!({"key": b64(&format!("k{i}")), "value": b64("v")}))
            .timeout(Duration::from_secs(2))
            .send()
    };
    let start = Instant::now();
    while !put(0).await.is_ok_and(|r| r.status().is_success()) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the member never served a put"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A directory where the sidecar's temp file goes: the next snapshot cannot be recorded.
    std::fs::create_dir_all(dir.path().join("n1/snapshot/current.meta.tmp")).unwrap();
    let mut i = 1;
    let status = loop {
        if let Some(status) = member.child.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the member still runs with its Raft stopped"
        );
        let _ = put(i).await;
        i += 1;
    };
    let said = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(!status.success(), "exited with {status}: {said}");
    assert!(said.contains("Raft stopped"), "stderr: {said}");
    member.child = None;
}
