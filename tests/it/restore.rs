//! `keel snapshot restore`: a snapshot of one cluster becomes the first state of a new one,
//! on new ports and new data dirs, serving the same keys and continuing its revisions.

use std::process::Output;
use std::time::{Duration, Instant};

use keel::cli::dev::DevCluster;
use keel::config::Config;
use keel::member::{self, RunningMember};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::Command;

const DEADLINE: Duration = Duration::from_secs(30);

async fn run(program: &str, args: &[&str]) -> Output {
    tokio::time::timeout(
        DEADLINE,
        Command::new(program)
            .args(args)
            .env_remove("ETCDCTL_ENDPOINTS")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} {args:?} ran past {DEADLINE:?}"))
    .expect("the binary runs")
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

async fn ctl_json(endpoints: &str, args: &[&str]) -> Value {
    let mut all = vec!["--endpoints", endpoints, "-w", "json"];
    all.extend_from_slice(args);
    let text = must(env!("CARGO_BIN_EXE_keelctl"), &all).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed {text:?}: {e}"))
}

fn int(value: &Value) -> i64 {
    match value {
        Value::String(s) => s.parse().expect("an integer string"),
        Value::Number(n) => n.as_i64().expect("an integer"),
        other => panic!("not an integer: {other}"),
    }
}

fn unb64(value: &Value) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

/// Every key under `/r/` with its value, as one endpoint serves them.
async fn keys(endpoint: &str) -> Vec<(String, String)> {
    let got = ctl_json(endpoint, &["get", "/r/", "--prefix"]).await;
    got["kvs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|kv| (unb64(&kv["key"]), unb64(&kv["value"])))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_snapshot_starts_a_new_cluster_with_the_same_keys_and_revisions() {
    let old = DevCluster::start_on_free_ports(3)
        .await
        .expect("old cluster starts");
    let old_endpoints = old.endpoints();
    let ctl = env!("CARGO_BIN_EXE_keelctl");
    for i in 0..20 {
        let key = format!("/r/k{i:02}");
        let value = format!("v{i}");
        must(ctl, &["--endpoints", &old_endpoints, "put", &key, &value]).await;
    }
    must(ctl, &["--endpoints", &old_endpoints, "del", "/r/k05"]).await;
    let expected = keys(&old_endpoints).await;
    assert_eq!(expected.len(), 19);
    let work = tempfile::tempdir().expect("temp dir");
    let snapshot = work.path().join("backup.snap");
    let snapshot = snapshot.to_str().expect("utf-8 path");
    must(
        ctl,
        &["--endpoints", &old_endpoints, "snapshot", "save", snapshot],
    )
    .await;
    old.stop().await.expect("old cluster stops");
    let revision = {
        let store = keel_store::Store::temporary(keel_store::Config::default()).unwrap();
        let mut file = std::io::BufReader::new(std::fs::File::open(snapshot).unwrap());
        store.import(&mut file).unwrap();
        store.current_revision()
    };

    // A new cluster on new ports: restore every member's data dir from the same file.
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let client = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listeners.push((client, peer));
    }
    let urls: Vec<(String, String)> = listeners
        .iter()
        .map(|(c, p)| {
            (
                format!("http://{}", c.local_addr().unwrap()),
                format!("http://{}", p.local_addr().unwrap()),
            )
        })
        .collect();
    let initial_cluster = urls
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("m{}={peer}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut configs = Vec::new();
    for (i, (client, peer)) in urls.iter().enumerate() {
        let name = format!("m{}", i + 1);
        let data_dir = work.path().join(&name);
        must(
            env!("CARGO_BIN_EXE_keel"),
            &[
                "snapshot",
                "restore",
                snapshot,
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--name",
                &name,
                "--initial-cluster",
                &initial_cluster,
                "--initial-cluster-token",
                "restored",
                "--initial-advertise-peer-urls",
                peer,
            ],
        )
        .await;
        configs.push(Config {
            name,
            data_dir,
            listen_client_urls: vec![client.clone()],
            advertise_client_urls: vec![client.clone()],
            listen_peer_urls: vec![peer.clone()],
            initial_advertise_peer_urls: vec![peer.clone()],
            initial_cluster: initial_cluster.clone(),
            initial_cluster_token: "restored".into(),
            ..Config::default()
        });
    }
    // The restored keyspace claims no applied log entries, and there is no log yet.
    let status = ctl_json(
        "http://127.0.0.1:1",
        &["inspect", configs[0].data_dir.to_str().unwrap(), "status"],
    )
    .await;
    assert_eq!(int(&status["revision"]), revision, "{status}");
    assert!(status["applied_index"].is_null(), "{status}");
    assert!(status["raft"].is_null(), "{status}");
    // A non-empty data dir is refused.
    let again = run(
        env!("CARGO_BIN_EXE_keel"),
        &[
            "snapshot",
            "restore",
            snapshot,
            "--data-dir",
            configs[0].data_dir.to_str().unwrap(),
            "--name",
            "m1",
            "--initial-cluster",
            &initial_cluster,
        ],
    )
    .await;
    assert!(!again.status.success(), "restore into a used data dir");

    let mut members: Vec<RunningMember> = Vec::new();
    for (config, (client, peer)) in configs.iter().zip(listeners) {
        members.push(member::start(config, client, peer).await.expect("starts"));
    }
    for member in &members {
        member
            .wait_for_leader(DEADLINE)
            .await
            .expect("the restored cluster elects a leader");
    }

    for (client, _) in &urls {
        assert_eq!(keys(client).await, expected, "keys served by {client}");
    }
    let hashes: Vec<_> = members
        .iter()
        .map(|m| m.replica.node().store().hash_kv(revision).expect("hash"))
        .collect();
    assert!(
        hashes.iter().all(|h| h == &hashes[0]),
        "members disagree at {revision}: {hashes:?}"
    );

    let new_endpoints = urls
        .iter()
        .map(|(c, _)| c.as_str())
        .collect::<Vec<_>>()
        .join(",");
    must(ctl, &["--endpoints", &new_endpoints, "put", "/r/new", "x"]).await;
    let got = ctl_json(&new_endpoints, &["get", "/r/new"]).await;
    assert_eq!(int(&got["kvs"][0]["mod_revision"]), revision + 1);
    // Every member applies it, and still agrees.
    let start = Instant::now();
    loop {
        let revisions: Vec<i64> = members
            .iter()
            .map(|m| m.replica.node().store().current_revision())
            .collect();
        if revisions.iter().all(|r| *r == revision + 1) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "revisions {revisions:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for member in members {
        member.stop().await.expect("stops");
    }
}
