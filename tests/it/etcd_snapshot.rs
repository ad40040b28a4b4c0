//! Migration both ways between etcd and keel, with the real etcd 3.4 binaries
//! (`scripts/install-test-deps.sh` installs `etcd` and `etcdctl`):
//!
//! - keel → etcd: `etcdctl snapshot save` against keel (the Snapshot RPC answers in etcd's
//!   format) and `keelctl snapshot save --format etcd` give files `etcdctl snapshot status`
//!   accepts with keel's revision; `etcdctl snapshot restore` makes a data dir an etcd serves
//!   keel's keys from, revisions, versions, leases and users included.
//! - etcd → keel: an etcd with puts, overwrites, a delete, a compaction, a lease and auth
//!   (users, a role, enabled) is saved with `etcdctl snapshot save`; `keel snapshot restore`
//!   makes a member that serves the same keys and revisions, the lease with its keys, and
//!   lets the same users in with the same passwords and permissions.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use keel::cli::dev::DevCluster;
use keel::config::Config;
use keel::member;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(30);

async fn run(program: &str, args: &[&str]) -> Output {
    tokio::time::timeout(
        DEADLINE,
        Command::new(program)
            .args(args)
            .env("ETCDCTL_API", "3")
            .env_remove("ETCDCTL_ENDPOINTS")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} {args:?} ran past {DEADLINE:?}"))
    .unwrap_or_else(|e| panic!("{program} runs (scripts/install-test-deps.sh): {e}"))
}

async fn must(program: &str, args: &[&str]) -> String {
    let output = run(program, args).await;
    assert!(
        output.status.success(),
        "{program} {args:?} failed: stdout {:?} stderr {:?}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `etcdctl --endpoints endpoint args...`.
async fn etcdctl(endpoint: &str, args: &[&str]) -> String {
    let all = [&["--endpoints", endpoint][..], args].concat();
    must("etcdctl", &all).await
}

async fn etcdctl_json(endpoint: &str, args: &[&str]) -> Value {
    let all = [&["-w", "json"][..], args].concat();
    let text = etcdctl(endpoint, &all).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed {text:?}: {e}"))
}

/// Every key with its revisions, version, value and lease, as etcdctl prints them.
async fn all_kvs(endpoint: &str, auth: &[&str]) -> Value {
    let args = [auth, &["get", "", "--prefix"][..]].concat();
    etcdctl_json(endpoint, &args).await["kvs"].clone()
}

fn loopback_url() -> String {
    format!("http://127.0.0.1:{}", crate::free_port())
}

/// A real etcd on loopback ports, killed when dropped.
struct Etcd {
    child: Child,
    endpoint: String,
}

impl Etcd {
    /// Starts etcd on `data_dir` (new, or made by `etcdctl snapshot restore` for `peer`).
    async fn start(data_dir: &Path, peer: &str) -> Etcd {
        let endpoint = loopback_url();
        let child = Command::new("etcd")
            .args(["--name", "snap", "--data-dir"])
            .arg(data_dir)
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", peer])
            .args(["--initial-advertise-peer-urls", peer])
            .args(["--initial-cluster", &format!("snap={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("etcd starts (scripts/install-test-deps.sh installs it)");
        let deadline = Instant::now() + DEADLINE;
        loop {
            let args = ["--endpoints", &endpoint, "--dial-timeout", "200ms"];
            let health = [&args[..], &["endpoint", "health"]].concat();
            if run("etcdctl", &health).await.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "etcd never served {endpoint}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Etcd { child, endpoint }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn int(value: &Value) -> i64 {
    match value {
        Value::String(s) => s.parse().expect("an integer string"),
        Value::Number(n) => n.as_i64().expect("an integer"),
        other => panic!("not an integer: {other}"),
    }
}

/// `lease timetolive ID --keys` without the remaining time, which moves on.
fn granted(timetolive: &str) -> String {
    match timetolive.split_once("remaining(") {
        Some((before, after)) => {
            let after = after.split_once(')').map_or(after, |(_, rest)| rest);
            format!("{before}{after}")
        }
        None => timetolive.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keels_snapshot_restores_into_a_real_etcd_with_its_revisions() {
    let cluster = DevCluster::start_on_free_ports(1)
        .await
        .expect("keel starts");
    let keel = cluster.endpoints();
    let k = keel.as_str();
    etcdctl(k, &["put", "a", "1"]).await;
    etcdctl(k, &["put", "a", "2"]).await;
    etcdctl(k, &["put", "b", "1"]).await;
    let deleted = etcdctl_json(k, &["del", "b"]).await;
    // History up to the delete goes: `a`'s second put stays, `b` goes whole.
    let compact_at = int(&deleted["header"]["revision"]);
    etcdctl(k, &["compaction", &compact_at.to_string()]).await;
    let lease = etcdctl_json(k, &["lease", "grant", "600"]).await;
    let lease = format!("{:x}", int(&lease["ID"]));
    etcdctl(k, &["put", "leased", "x", "--lease", &lease]).await;
    etcdctl(k, &["user", "add", "alice:alice-pw"]).await;
    etcdctl(k, &["role", "add", "reader"]).await;
    etcdctl(k, &["role", "grant-permission", "reader", "read", "a"]).await;
    etcdctl(k, &["user", "grant-role", "alice", "reader"]).await;
    let last = etcdctl_json(k, &["put", "c", "3"]).await;
    let revision = int(&last["header"]["revision"]);
    let expected = all_kvs(k, &[]).await;
    let lease_keys = granted(&etcdctl(k, &["lease", "timetolive", &lease, "--keys"]).await);

    let work = tempfile::tempdir().expect("temp dir");
    let by_etcdctl = work.path().join("etcdctl.db");
    let by_etcdctl = by_etcdctl.to_str().expect("utf-8 path");
    etcdctl(k, &["snapshot", "save", by_etcdctl]).await;
    let by_keelctl = work.path().join("keelctl.db");
    let by_keelctl = by_keelctl.to_str().expect("utf-8 path");
    let keelctl = env!("CARGO_BIN_EXE_keelctl");
    must(
        keelctl,
        &[
            "--endpoints",
            k,
            "snapshot",
            "save",
            "--format",
            "etcd",
            by_keelctl,
        ],
    )
    .await;
    cluster.stop().await.expect("keel stops");

    // etcd's own check of the file (bbolt's consistency check, then every bucket).
    let status = must("etcdctl", &["-w", "json", "snapshot", "status", by_etcdctl]).await;
    let status: Value = serde_json::from_str(&status).expect("json");
    assert_eq!(int(&status["revision"]), revision, "{status}");
    // Every bucket entry: the `key` bucket's a@2, leased, c; the lease; consistent index and
    // the two compaction revisions; the auth switch and revision; alice; reader.
    assert_eq!(int(&status["totalKey"]), 3 + 1 + 3 + 2 + 1 + 1, "{status}");
    let again = must("etcdctl", &["-w", "json", "snapshot", "status", by_keelctl]).await;
    let again: Value = serde_json::from_str(&again).expect("json");
    assert_eq!(again, status, "keelctl's etcd file is the RPC's");

    // Restored into an etcd, it serves keel's keys and revisions.
    let data_dir = work.path().join("etcd");
    let peer = loopback_url();
    must(
        "etcdctl",
        &[
            "snapshot",
            "restore",
            by_etcdctl,
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--name",
            "snap",
            "--initial-cluster",
            &format!("snap={peer}"),
            "--initial-advertise-peer-urls",
            &peer,
        ],
    )
    .await;
    let etcd = Etcd::start(&data_dir, &peer).await;
    let e = etcd.endpoint.as_str();
    assert_eq!(all_kvs(e, &[]).await, expected);
    let read = etcdctl_json(e, &["get", "a", "--rev", &compact_at.to_string()]).await;
    assert_eq!(int(&read["kvs"][0]["version"]), 2, "{read}");
    let compacted = run(
        "etcdctl",
        &[
            "--endpoints",
            e,
            "get",
            "a",
            "--rev",
            &(compact_at - 1).to_string(),
        ],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&compacted.stderr).contains("compacted"),
        "{compacted:?}"
    );
    let served = granted(&etcdctl(e, &["lease", "timetolive", &lease, "--keys"]).await);
    assert_eq!(served, lease_keys);
    assert!(etcdctl(e, &["user", "get", "alice"])
        .await
        .contains("reader"));
    let role = etcdctl(e, &["role", "get", "reader"]).await;
    assert!(role.contains("Read:") && role.contains("\ta\n"), "{role:?}");
    // Writes go on from keel's revision.
    let next = etcdctl_json(e, &["put", "after", "1"]).await;
    assert_eq!(int(&next["header"]["revision"]), revision + 1);
    etcd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_snapshot_restores_into_keel_with_revisions_leases_and_users() {
    let work = tempfile::tempdir().expect("temp dir");
    let etcd = Etcd::start(&work.path().join("etcd"), &loopback_url()).await;
    let e = etcd.endpoint.as_str();
    etcdctl(e, &["put", "a", "1"]).await;
    etcdctl(e, &["put", "a", "2"]).await;
    etcdctl(e, &["put", "b", "1"]).await;
    let deleted = etcdctl_json(e, &["del", "b"]).await;
    let compact_at = int(&deleted["header"]["revision"]);
    etcdctl(e, &["put", "a", "3"]).await;
    etcdctl(e, &["compaction", &compact_at.to_string()]).await;
    let lease = etcdctl_json(e, &["lease", "grant", "600"]).await;
    let lease = format!("{:x}", int(&lease["ID"]));
    etcdctl(e, &["put", "leased", "x", "--lease", &lease]).await;
    for args in [
        &["role", "add", "root"][..],
        &["user", "add", "root:root-pw"],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "alice:alice-pw"],
        &["role", "add", "reader"],
        &["role", "grant-permission", "reader", "read", "a"],
        &["user", "grant-role", "alice", "reader"],
        &["auth", "enable"],
    ] {
        etcdctl(e, args).await;
    }
    let root = ["--user", "root:root-pw"];
    let expected = all_kvs(e, &root).await;
    let revision =
        int(&etcdctl_json(e, &[&root[..], &["get", "a"]].concat()).await["header"]["revision"]);
    let lease_keys = granted(
        &etcdctl(
            e,
            &[&root[..], &["lease", "timetolive", &lease, "--keys"]].concat(),
        )
        .await,
    );
    let file = work.path().join("etcd.db");
    let file = file.to_str().expect("utf-8 path");
    etcdctl(e, &[&root[..], &["snapshot", "save", file]].concat()).await;
    etcd.stop().await;

    // A corrupted copy is refused before anything is written.
    let mut damaged = std::fs::read(file).expect("read");
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    let damaged_file = work.path().join("damaged.db");
    std::fs::write(&damaged_file, damaged).expect("write");
    let client = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client_url = format!("http://{}", client.local_addr().unwrap());
    let peer_url = format!("http://{}", peer.local_addr().unwrap());
    let initial_cluster = format!("k1={peer_url}");
    let data_dir = work.path().join("keel");
    let restore = |from: String| {
        let data_dir = data_dir.to_str().unwrap().to_owned();
        let initial_cluster = initial_cluster.clone();
        async move {
            run(
                env!("CARGO_BIN_EXE_keel"),
                &[
                    "snapshot",
                    "restore",
                    &from,
                    "--data-dir",
                    &data_dir,
                    "--name",
                    "k1",
                    "--initial-cluster",
                    &initial_cluster,
                ],
            )
            .await
        }
    };
    let refused = restore(damaged_file.to_str().unwrap().to_owned()).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("SHA-256 mismatch"),
        "{refused:?}"
    );
    std::fs::remove_dir_all(&data_dir).ok();
    let restored = restore(file.to_owned()).await;
    assert!(restored.status.success(), "{restored:?}");

    let config = Config {
        name: "k1".into(),
        data_dir: data_dir.clone(),
        listen_client_urls: vec![client_url.clone()],
        advertise_client_urls: vec![client_url.clone()],
        listen_peer_urls: vec![peer_url.clone()],
        initial_advertise_peer_urls: vec![peer_url.clone()],
        initial_cluster: initial_cluster.clone(),
        ..Config::default()
    };
    let member = member::start(&config, client, peer)
        .await
        .expect("keel starts");
    member.wait_for_leader(DEADLINE).await.expect("a leader");
    let k = client_url.as_str();

    // Auth is on, with etcd's users and their passwords.
    let anonymous = run("etcdctl", &["--endpoints", k, "get", "a"]).await;
    assert!(
        !anonymous.status.success(),
        "auth carried over: {anonymous:?}"
    );
    assert_eq!(all_kvs(k, &root).await, expected);
    let header = etcdctl_json(k, &[&root[..], &["get", "a"]].concat()).await;
    assert_eq!(int(&header["header"]["revision"]), revision);
    let alice = ["--user", "alice:alice-pw"];
    let read = etcdctl_json(k, &[&alice[..], &["get", "a"]].concat()).await;
    assert_eq!(int(&read["kvs"][0]["version"]), 3, "{read}");
    let write = run(
        "etcdctl",
        &[&["--endpoints", k][..], &alice, &["put", "a", "no"]].concat(),
    )
    .await;
    assert!(!write.status.success(), "alice only reads: {write:?}");
    // Reads at old revisions: the compaction came along.
    let at = etcdctl_json(
        k,
        &[&root[..], &["get", "a", "--rev", &compact_at.to_string()]].concat(),
    )
    .await;
    assert_eq!(int(&at["kvs"][0]["version"]), 2, "{at}");
    let before = run(
        "etcdctl",
        &[
            &["--endpoints", k][..],
            &root,
            &["get", "a", "--rev", &(compact_at - 1).to_string()],
        ]
        .concat(),
    )
    .await;
    assert!(
        String::from_utf8_lossy(&before.stderr).contains("compacted"),
        "{before:?}"
    );
    let served = granted(
        &etcdctl(
            k,
            &[&root[..], &["lease", "timetolive", &lease, "--keys"]].concat(),
        )
        .await,
    );
    assert_eq!(served, lease_keys);
    let next = etcdctl_json(k, &[&root[..], &["put", "after", "1"]].concat()).await;
    assert_eq!(int(&next["header"]["revision"]), revision + 1);
    member.stop().await.expect("stops");
}
