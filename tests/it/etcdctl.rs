//! Debian's etcdctl 3.4 (`/usr/bin/etcdctl`, ETCDCTL_API=3, installed by
//! scripts/install-test-deps.sh) against a real in-process three-member cluster, exactly as
//! it would drive etcd: its gRPC requests land on keel's client port next to the gateway.
//! Every scenario runs twice: over plain HTTP/2, and over TLS with client certificates
//! required (etcdctl's `--cacert --cert --key`, `keel dev --tls`'s certificates).

use std::process::{Output, Stdio};
use std::time::Duration;

use keel::cli::dev::{DevArgs, DevCluster, DevTls};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const ETCDCTL: &str = "/usr/bin/etcdctl";

/// Any one command taking longer than this is a failure, not something to wait out.
const DEADLINE: Duration = Duration::from_secs(30);

/// A three-member cluster as etcdctl sees it: its endpoints and, over TLS, the certificate
/// flags every command carries.
struct Etcdctl {
    cluster: DevCluster,
    tls: Option<DevTls>,
}

impl Etcdctl {
    async fn start(tls: bool) -> Etcdctl {
        let args = DevArgs::on_free_ports(3);
        let cluster = DevCluster::start_with(&args, tls)
            .await
            .expect("cluster starts");
        let tls = cluster.tls.clone();
        Etcdctl { cluster, tls }
    }

    /// One member's endpoint, `http://127.0.0.1:PORT` (`https://` over TLS).
    fn endpoint(&self, member: usize) -> String {
        self.cluster.configs[member].advertise_client_urls[0].clone()
    }

    /// Every member's endpoint, comma-separated.
    fn endpoints(&self) -> String {
        self.cluster.endpoints()
    }

    fn command(&self, endpoints: &str, args: &[&str]) -> Command {
        assert!(
            std::path::Path::new(ETCDCTL).exists(),
            "{ETCDCTL} is missing: run scripts/install-test-deps.sh (apt-get install etcd-client)"
        );
        let mut command = Command::new(ETCDCTL);
        command
            .env("ETCDCTL_API", "3")
            .env_remove("ETCDCTL_ENDPOINTS")
            .arg("--endpoints")
            .arg(endpoints)
            .arg("--command-timeout=20s");
        if let Some(tls) = &self.tls {
            command
                .arg("--cacert")
                .arg(&tls.ca_file)
                .arg("--cert")
                .arg(&tls.client.cert)
                .arg("--key")
                .arg(&tls.client.key);
        }
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, endpoints: &str, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(endpoints, args)
            .spawn()
            .expect("etcdctl starts");
        let mut input = child.stdin.take().expect("piped stdin");
        input.write_all(stdin.as_bytes()).await.expect("stdin");
        drop(input);
        tokio::time::timeout(DEADLINE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("etcdctl {args:?} ran past {DEADLINE:?}"))
            .expect("etcdctl runs")
    }

    /// Runs etcdctl, insists on success, returns stdout.
    async fn must(&self, endpoints: &str, args: &[&str], stdin: &str) -> String {
        let output = self.run(endpoints, args, stdin).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed ({}): stdout {stdout:?} stderr {:?}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    async fn stop(self) {
        self.cluster.stop().await.unwrap();
    }
}

#[tokio::test]
async fn etcdctl_put_get_del_and_txn_on_every_member() {
    put_get_del_and_txn_on_every_member(false).await;
}

#[tokio::test]
async fn etcdctl_put_get_del_and_txn_on_every_member_over_tls() {
    put_get_del_and_txn_on_every_member(true).await;
}

async fn put_get_del_and_txn_on_every_member(tls: bool) {
    let c = Etcdctl::start(tls).await;
    // Each command asks one member, so followers must serve (and forward) it.
    let (one, two, three) = (c.endpoint(0), c.endpoint(1), c.endpoint(2));
    assert_eq!(c.must(&one, &["put", "/app/name", "web"], "").await, "OK\n");
    assert_eq!(
        c.must(&two, &["get", "/app/name"], "").await,
        "/app/name\nweb\n"
    );
    c.must(&three, &["put", "/app/replicas", "3"], "").await;
    assert_eq!(
        c.must(
            &one,
            &["get", "/app/", "--prefix", "--print-value-only"],
            ""
        )
        .await,
        "web\n3\n"
    );

    // etcdctl's interactive txn: compares, blank line, success ops, blank line, failure ops.
    let swap = "value(\"/app/name\") = \"web\"\n\nput /app/name web2\n\nget /app/name\n\n";
    let answer = c.must(&two, &["txn", "-i"], swap).await;
    assert!(answer.contains("SUCCESS"), "{answer:?}");
    let again = c.must(&three, &["txn", "-i"], swap).await;
    assert!(again.contains("FAILURE"), "{again:?}");
    assert!(again.ends_with("/app/name\nweb2\n"), "{again:?}");

    assert_eq!(
        c.must(&three, &["del", "/app/", "--prefix"], "").await,
        "2\n"
    );
    assert_eq!(c.must(&one, &["get", "/app/", "--prefix"], "").await, "");

    // Errors come back with etcd's text, which etcdctl prints.
    let revision = {
        let out = c.must(&one, &["put", "k", "v", "-w", "json"], "").await;
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        json["header"]["revision"].as_i64().unwrap()
    };
    c.must(&two, &["compact", &revision.to_string()], "").await;
    let old = c.run(&three, &["get", "k", "--rev", "1"], "").await;
    assert!(!old.status.success());
    let stderr = String::from_utf8_lossy(&old.stderr);
    assert!(
        stderr.contains("etcdserver: mvcc: required revision has been compacted"),
        "{stderr}"
    );
    c.stop().await;
}

#[tokio::test]
async fn etcdctl_watch_prints_each_event_as_it_happens() {
    watch_prints_each_event_as_it_happens(false).await;
}

#[tokio::test]
async fn etcdctl_watch_prints_each_event_as_it_happens_over_tls() {
    watch_prints_each_event_as_it_happens(true).await;
}

async fn watch_prints_each_event_as_it_happens(tls: bool) {
    let c = Etcdctl::start(tls).await;
    let watcher = c.endpoint(0);
    let writer = c.endpoint(1);
    let mut child = c
        .command(&watcher, &["watch", "/jobs/", "--prefix"])
        .spawn()
        .expect("etcdctl watch starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("etcdctl watch printed within the deadline")
            .expect("stdout readable")
            .expect("etcdctl watch still running")
    };
    // The watch is created before the first put only if etcdctl has connected: put until
    // the first event shows up, then every later put must show up in order.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut first = None;
    let mut attempt = 0;
    while first.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no event seen");
        attempt += 1;
        c.must(&writer, &["put", "/jobs/warmup", &attempt.to_string()], "")
            .await;
        let line = tokio::time::timeout(Duration::from_millis(500), next_line()).await;
        first = line.ok();
    }
    assert_eq!(first.as_deref(), Some("PUT"));
    assert_eq!(next_line().await, "/jobs/warmup");
    next_line().await;
    // Drain the warm-up puts that raced the watch's creation.
    let mut drained = Vec::new();
    c.must(&writer, &["put", "/jobs/1", "build"], "").await;
    c.must(&writer, &["del", "/jobs/1"], "").await;
    loop {
        let line = next_line().await;
        if line == "/jobs/1" {
            break;
        }
        drained.push(line);
    }
    assert_eq!(
        drained.last().map(String::as_str),
        Some("PUT"),
        "{drained:?}"
    );
    assert_eq!(next_line().await, "build");
    assert_eq!(next_line().await, "DELETE");
    assert_eq!(next_line().await, "/jobs/1");
    child.kill().await.unwrap();
    c.stop().await;
}

#[tokio::test]
async fn etcdctl_lease_grant_attach_keep_alive_once_and_revoke() {
    lease_grant_attach_keep_alive_once_and_revoke(false).await;
}

#[tokio::test]
async fn etcdctl_lease_grant_attach_keep_alive_once_and_revoke_over_tls() {
    lease_grant_attach_keep_alive_once_and_revoke(true).await;
}

async fn lease_grant_attach_keep_alive_once_and_revoke(tls: bool) {
    let c = Etcdctl::start(tls).await;
    let (one, two) = (c.endpoint(0), c.endpoint(1));
    let granted = c.must(&one, &["lease", "grant", "60"], "").await;
    // "lease 694d7d5c7b0a1234 granted with TTL(60s)"
    let id = granted
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{granted:?}"))
        .to_owned();
    assert!(granted.ends_with("granted with TTL(60s)\n"), "{granted:?}");
    c.must(&two, &["put", "--lease", &id, "/lock", "me"], "")
        .await;
    let kept = c
        .must(&two, &["lease", "keep-alive", "--once", &id], "")
        .await;
    assert_eq!(kept, format!("lease {id} keepalived with TTL(60)\n"));
    let ttl = c
        .must(&one, &["lease", "timetolive", &id, "--keys"], "")
        .await;
    assert!(
        ttl.contains("granted with TTL(60s)") && ttl.contains("/lock"),
        "{ttl:?}"
    );
    let list = c.must(&two, &["lease", "list"], "").await;
    assert!(list.contains(&id), "{list:?}");
    c.must(&two, &["lease", "revoke", &id], "").await;
    assert_eq!(c.must(&one, &["get", "/lock"], "").await, "");
    c.stop().await;
}

#[tokio::test]
async fn etcdctl_member_list_endpoint_status_and_snapshot_save() {
    member_list_endpoint_status_and_snapshot_save(false).await;
}

#[tokio::test]
async fn etcdctl_member_list_endpoint_status_and_snapshot_save_over_tls() {
    member_list_endpoint_status_and_snapshot_save(true).await;
}

async fn member_list_endpoint_status_and_snapshot_save(tls: bool) {
    let c = Etcdctl::start(tls).await;
    let members = c.must(&c.endpoints(), &["member", "list"], "").await;
    assert_eq!(members.lines().count(), 3, "{members:?}");
    for member in &c.cluster.members {
        let id = format!("{:x}, started, ", member.id);
        assert!(members.contains(&id), "{members:?} lacks {id}");
    }

    // Endpoints as every etcd guide writes them, `http://host:port` (`https://` over TLS):
    // etcdctl 3.4's per-endpoint calls (status, hashkv, move-leader) send them whole as the
    // HTTP/2 :authority, which keel's client port accepts as etcd does (src/h2_authority.rs).
    let status = c
        .must(&c.endpoints(), &["endpoint", "status", "-w", "json"], "")
        .await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let status = status.as_array().expect("one entry per endpoint");
    assert_eq!(status.len(), 3);
    let leaders: Vec<_> = status.iter().map(|s| &s["Status"]["leader"]).collect();
    assert!(leaders.iter().all(|l| *l == leaders[0]), "{leaders:?}");
    let leader = c
        .cluster
        .members
        .iter()
        .find(|m| serde_json::json!(m.id) == *leaders[0])
        .expect("the leader is a member")
        .id;

    let hashes = c
        .must(&c.endpoints(), &["endpoint", "hashkv", "-w", "json"], "")
        .await;
    let hashes: serde_json::Value = serde_json::from_str(&hashes).unwrap();
    let hashes = hashes.as_array().expect("one entry per endpoint");
    assert_eq!(hashes.len(), 3, "{hashes:?}");
    for hash in hashes {
        // Each member answered for itself (etcd leaves a zero hash out of the JSON).
        let member = hash["HashKV"]["header"]["member_id"].as_u64();
        assert!(
            c.cluster.members.iter().any(|m| Some(m.id) == member),
            "{hash}"
        );
    }

    let target = c
        .cluster
        .members
        .iter()
        .find(|m| m.id != leader)
        .expect("a follower")
        .id;
    let moved = c
        .must(&c.endpoints(), &["move-leader", &format!("{target:x}")], "")
        .await;
    assert!(
        moved.contains(&format!(
            "Leadership transferred from {leader:x} to {target:x}"
        )),
        "{moved:?}"
    );

    c.must(&c.endpoint(2), &["put", "saved", "yes"], "").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.db");
    let path = path.to_str().unwrap();
    let saved = c
        .must(&c.endpoint(1), &["snapshot", "save", path], "")
        .await;
    assert!(saved.contains("Snapshot saved at"), "{saved:?}");
    // etcdctl checked the digest; the file also restores into keel.
    let file = std::fs::read(path).unwrap();
    let restored = keel_store::Store::temporary(Default::default()).unwrap();
    restored.import(&mut &file[..]).unwrap();
    let range = restored
        .range(&keel_store::RangeRequest {
            key: b"saved".to_vec(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(range.kvs[0].value, b"yes");
    c.stop().await;
}
