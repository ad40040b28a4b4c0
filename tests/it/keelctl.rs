//! The real `keelctl` binary against a real in-process three-member cluster, pointed at
//! every member (so its failover must get past any member that answers "not leader"), then
//! `inspect` on a stopped member's data directory.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use keel::cli::dev::{DevArgs, DevCluster};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// Any one command taking longer than this is a failure, not something to wait out.
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// Runs keelctl with `--endpoints endpoints`, `args` and `stdin`.
pub(crate) async fn run(endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .env_remove("KEELCTL_ENDPOINTS")
        .env_remove("ETCDCTL_ENDPOINTS")
        .env_remove("ETCDCTL_USER")
        .env_remove("ETCDCTL_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("keelctl starts");
    let mut input = child.stdin.take().expect("piped stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("stdin");
    }
    drop(input);
    tokio::time::timeout(COMMAND_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("keelctl {args:?} ran past {COMMAND_DEADLINE:?}"))
        .expect("keelctl runs")
}

/// Runs keelctl and insists on success; returns stdout.
pub(crate) async fn must(endpoints: &str, args: &[&str], stdin: Option<&str>) -> String {
    let output = run(endpoints, args, stdin).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "keelctl {args:?} failed ({}): stdout {stdout:?} stderr {:?}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn must_json(endpoints: &str, args: &[&str]) -> Value {
    let mut all = vec!["-w", "json"];
    all.extend_from_slice(args);
    let text = must(endpoints, &all, None).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed {text:?}: {e}"))
}

fn int(value: &Value) -> i64 {
    match value {
        Value::String(s) => s.parse().expect("an integer string"),
        Value::Number(n) => n.as_i64().expect("an integer"),
        Value::Null => 0,
        other => panic!("not an integer: {other}"),
    }
}

/// Member and cluster ids: u64s, which the gateway writes as strings.
fn uint(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.parse().expect("an unsigned integer string"),
        Value::Number(n) => n.as_u64().expect("an unsigned integer"),
        Value::Null => 0,
        other => panic!("not an unsigned integer: {other}"),
    }
}

fn unb64(value: &Value) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keelctl_drives_a_three_member_cluster_then_inspects_a_stopped_member() {
    let data = tempfile::tempdir().expect("temp dir");
    let cluster = DevCluster::start(&DevArgs {
        size: 3,
        data_dir: Some(data.path().to_owned()),
        ..DevArgs::on_free_ports(3)
    })
    .await
    .expect("cluster starts");
    let all = cluster.endpoints();
    let e = all.as_str();

    // put / get, simple and json.
    assert_eq!(
        must(e, &["put", "greeting", "hello world"], None).await,
        "OK\n"
    );
    assert_eq!(
        must(e, &["get", "greeting"], None).await,
        "greeting\nhello world\n"
    );
    let got = must_json(e, &["get", "greeting"]).await;
    assert_eq!(unb64(&got["kvs"][0]["value"]), "hello world");
    assert_eq!(int(&got["count"]), 1);
    assert_eq!(must(e, &["put", "from-stdin"], Some("piped")).await, "OK\n");
    assert_eq!(
        must(e, &["get", "from-stdin", "--print-value-only"], None).await,
        "piped\n"
    );

    // ranges.
    for (key, value) in [("ls/a/1", "x"), ("ls/a/2", "yy"), ("ls/b/1", "zzzz")] {
        must(e, &["put", key, value], None).await;
    }
    assert_eq!(
        must(e, &["get", "ls/", "--prefix", "--keys-only"], None).await,
        "ls/a/1\n\nls/a/2\n\nls/b/1\n\n"
    );
    assert_eq!(
        must(
            e,
            &["get", "ls/", "--prefix", "--limit", "2", "--keys-only"],
            None
        )
        .await,
        "ls/a/1\n\nls/a/2\n\n"
    );
    // An empty key with --prefix is every key, as etcdctl sends it (key "\0").
    assert_eq!(
        must(e, &["get", "", "--prefix", "--count-only"], None).await,
        must(e, &["get", "", "--from-key", "--count-only"], None).await
    );
    let every = must_json(e, &["get", "", "--prefix", "--keys-only"]).await;
    assert!(int(&every["count"]) >= 5, "{every}");
    assert_eq!(
        must(e, &["get", "ls/", "--prefix", "--count-only"], None).await,
        "3\n"
    );

    // ls totals.
    let tree = must_json(e, &["ls", "ls/"]).await;
    assert_eq!(tree["total"]["keys"], 3, "{tree}");
    assert_eq!(tree["total"]["value_bytes"], 7, "{tree}");
    assert_eq!(
        tree["branches"][0]["path"], "ls/b/",
        "biggest first: {tree}"
    );
    assert_eq!(tree["branches"][1]["keys"], 2, "{tree}");

    // del --prefix.
    for key in ["tmp/1", "tmp/2", "tmp/3"] {
        must(e, &["put", key, "v"], None).await;
    }
    assert_eq!(must(e, &["del", "tmp/", "--prefix"], None).await, "3\n");
    assert_eq!(
        must(e, &["get", "tmp/", "--prefix", "--count-only"], None).await,
        "0\n"
    );

    // txn: a compare-and-swap that holds, then the same one failing.
    must(e, &["put", "cas", "v1"], None).await;
    let swap = "value(\"cas\") = \"v1\"\n\nput cas v2\n\nput cas lost\n";
    assert_eq!(must(e, &["txn"], Some(swap)).await, "SUCCESS\n\nOK\n");
    assert_eq!(
        must(e, &["get", "cas", "--print-value-only"], None).await,
        "v2\n"
    );
    assert_eq!(must(e, &["txn"], Some(swap)).await, "FAILURE\n\nOK\n");
    assert_eq!(
        must(e, &["get", "cas", "--print-value-only"], None).await,
        "lost\n"
    );

    // history walks back through the versions of the key's current life.
    let history = must_json(e, &["history", "cas"]).await;
    let values: Vec<String> = history["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|kv| unb64(&kv["value"]))
        .collect();
    assert_eq!(values, ["v1", "v2", "lost"], "{history}");

    // watch: from the next revision, so the event is delivered however late it starts.
    let revision = int(&must_json(e, &["get", "cas"]).await["header"]["revision"]);
    let start = (revision + 1).to_string();
    let mut watch = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .args(["--endpoints", e, "watch", "watched", "--rev", &start])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("keelctl watch starts");
    must(e, &["put", "watched", "seen"], None).await;
    let mut lines = BufReader::new(watch.stdout.take().expect("piped")).lines();
    let mut printed = Vec::new();
    let deadline = Instant::now() + COMMAND_DEADLINE;
    while printed.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, lines.next_line()).await {
            Ok(Ok(Some(line))) => printed.push(line),
            Ok(_) => panic!("watch ended early after {printed:?}"),
            Err(_) => panic!("no watch event within {COMMAND_DEADLINE:?}: {printed:?}"),
        }
    }
    assert_eq!(printed, ["PUT", "watched", "seen"]);
    watch.kill().await.expect("kill watch");

    // leases.
    let granted = must(e, &["lease", "grant", "600"], None).await;
    let lease = granted
        .strip_prefix("lease ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("lease grant printed {granted:?}"))
        .to_owned();
    assert!(granted.contains("granted with TTL(600s)"), "{granted}");
    must(e, &["put", "leased", "v", "--lease", &lease], None).await;
    let ttl = must(e, &["lease", "timetolive", &lease, "--keys"], None).await;
    assert!(ttl.contains("attached keys([leased])"), "{ttl}");
    assert!(ttl.contains("granted with TTL(600s)"), "{ttl}");
    let list = must(e, &["lease", "list"], None).await;
    assert!(list.contains(&lease), "{list}");
    assert_eq!(
        must(e, &["lease", "keep-alive", "--once", &lease], None).await,
        format!("lease {lease} keepalived with TTL(600)\n")
    );
    assert_eq!(
        must(e, &["lease", "revoke", &lease], None).await,
        format!("lease {lease} revoked\n")
    );
    assert_eq!(
        must(e, &["get", "leased", "--count-only"], None).await,
        "0\n"
    );
    let gone = run(e, &["lease", "revoke", &lease], None).await;
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(
        !gone.status.success() && stderr.contains("lease not found"),
        "{stderr}"
    );

    // members and endpoints.
    let members = must(e, &["member", "list"], None).await;
    assert_eq!(members.lines().count(), 3, "{members}");
    let status = must_json(e, &["endpoint", "status"]).await;
    let entries = status.as_array().expect("an array");
    assert_eq!(entries.len(), 3, "{status}");
    let endpoints: Vec<&str> = entries
        .iter()
        .map(|s| s["Endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(endpoints, all.split(',').collect::<Vec<_>>());
    let leaders = entries
        .iter()
        .filter(|s| s["Status"]["leader"] == s["Status"]["header"]["member_id"])
        .count();
    assert_eq!(leaders, 1, "{status}");
    let table = must(e, &["-w", "table", "endpoint", "status"], None).await;
    assert!(table.contains("IS LEADER"), "{table}");
    // Followers may be unhealthy until they can serve linearizable reads (read forwarding);
    // the leader must be healthy.
    let leader = entries
        .iter()
        .find(|s| s["Status"]["leader"] == s["Status"]["header"]["member_id"])
        .expect("a leader")["Endpoint"]
        .as_str()
        .unwrap();
    let health = must(leader, &["endpoint", "health"], None).await;
    assert!(
        health.starts_with(&format!("{leader} is healthy")),
        "{health}"
    );

    // snapshot save writes the file and says so in etcdctl's words on stdout; its size and
    // checksum go to stderr (with no progress bar: stderr is not a terminal).
    let snapshot = data.path().join("backup.db");
    let snapshot = snapshot.to_str().expect("utf-8 path");
    let saved = run(e, &["snapshot", "save", snapshot], None).await;
    assert!(saved.status.success(), "{saved:?}");
    assert_eq!(
        String::from_utf8_lossy(&saved.stdout),
        format!("Snapshot saved at {snapshot}\n")
    );
    let written = std::fs::read(snapshot).expect("snapshot file");
    assert!(!written.is_empty());
    let stderr = String::from_utf8_lossy(&saved.stderr);
    assert_eq!(
        stderr,
        format!(
            "fetched snapshot: {} ({} bytes) in {}, crc32 {:08x}\n",
            keel::cli::ctl::printer::human_bytes(written.len() as u64),
            written.len(),
            stderr
                .split(" in ")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .unwrap_or("?"),
            crc32fast::hash(&written)
        )
    );
    assert!(!std::path::Path::new(&format!("{snapshot}.part")).exists());
    // snapshot status reads it back offline: its revision and key count are what the
    // cluster served when it was taken (nothing was written since).
    let status = must_json(e, &["snapshot", "status", snapshot]).await;
    let now = must_json(e, &["get", "", "--prefix", "--count-only"]).await;
    assert_eq!(
        int(&status["revision"]),
        int(&now["header"]["revision"]),
        "{status}"
    );
    assert_eq!(int(&status["totalKey"]), int(&now["count"]), "{status}");
    assert_eq!(status["totalSize"].as_u64(), Some(written.len() as u64));
    // Its hash is the serving member's (the first endpoint answered the snapshot).
    let served_by = all.split(',').next().expect("an endpoint");
    let hashes = must_json(served_by, &["endpoint", "hashkv"]).await;
    assert_eq!(
        status["hash"], hashes[0]["HashKV"]["hash"],
        "{status} {hashes}"
    );
    let simple = must(e, &["snapshot", "status", snapshot], None).await;
    assert_eq!(
        simple,
        format!(
            "{:x}, {}, {}, {}\n",
            status["hash"].as_u64().expect("a hash"),
            int(&status["revision"]),
            int(&status["totalKey"]),
            keel::cli::ctl::printer::human_bytes(written.len() as u64)
        )
    );
    let not_a_snapshot = data.path().join("not-a-snapshot");
    std::fs::write(&not_a_snapshot, b"hello").expect("write");
    let not_a_snapshot = not_a_snapshot.to_str().expect("utf-8 path");
    let refused = run(e, &["snapshot", "status", not_a_snapshot], None).await;
    assert_fails_with(&refused, &format!("cannot read snapshot {not_a_snapshot}"));

    // other output forms.
    let table = must(e, &["-w", "table", "get", "greeting"], None).await;
    assert!(
        table.contains("hello world") && table.contains("MOD REV"),
        "{table}"
    );
    assert_eq!(
        must(e, &["--hex", "get", "cas"], None).await,
        "\\x63\\x61\\x73\n\\x6c\\x6f\\x73\\x74\n"
    );

    // a compacted revision is an error naming the cause.
    must(e, &["compaction", &revision.to_string()], None).await;
    let old = (revision - 1).to_string();
    let compacted = run(e, &["get", "cas", "--rev", &old], None).await;
    assert!(!compacted.status.success());
    let stderr = String::from_utf8_lossy(&compacted.stderr);
    assert!(
        stderr.starts_with("Error: ") && stderr.contains("compacted"),
        "{stderr}"
    );

    // Before stopping, let every member apply everything the cluster acknowledged, so the
    // offline view of any one of them is the whole story.
    let served = must_json(e, &["get", "ls/", "--prefix"]).await;
    let final_revision = int(&served["header"]["revision"]);
    let deadline = Instant::now() + COMMAND_DEADLINE;
    for endpoint in all.split(',') {
        loop {
            let local =
                must_json(endpoint, &["get", "ls/", "--prefix", "--consistency", "s"]).await;
            if int(&local["header"]["revision"]) >= final_revision {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{endpoint} never applied {final_revision}"
            );
            tokio::task::yield_now().await;
        }
    }
    // Every member holds the same history.
    let hashes = must(e, &["endpoint", "hashkv"], None).await;
    let values: Vec<&str> = hashes
        .lines()
        .filter_map(|l| l.split(", ").nth(1))
        .collect();
    assert_eq!(values.len(), 3, "{hashes}");
    assert!(values.iter().all(|h| *h == values[0]), "{hashes}");

    let member_dir = cluster.configs[0].data_dir.clone();
    let member_dir = member_dir.to_str().expect("utf-8 path");
    // sled's lock keeps inspect off a running member.
    let refused = run(e, &["inspect", member_dir, "status"], None).await;
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("in use by a running member"), "{stderr}");
    cluster.stop().await.expect("cluster stops");

    let offline = must(e, &["inspect", member_dir, "get", "ls/", "--prefix"], None).await;
    assert_eq!(offline, "ls/a/1\nx\nls/a/2\nyy\nls/b/1\nzzzz\n");
    let status = must_json(e, &["inspect", member_dir, "status"]).await;
    assert!(int(&status["revision"]) >= final_revision, "{status}");
    // The Raft log's state and what the keyspace says was applied from it.
    let raft = &status["raft"];
    assert!(int(&raft["term"]) >= 1, "{status}");
    assert!(raft["voted_for"].is_u64(), "{status}");
    let (last, committed) = (int(&raft["last_index"]), int(&raft["committed_index"]));
    let applied = int(&status["applied_index"]);
    assert!(
        last >= committed && committed >= applied && applied > 0,
        "{status}"
    );
    let table = must(e, &["-w", "table", "inspect", member_dir, "status"], None).await;
    assert!(
        table.contains("RAFT TERM") && table.contains("APPLIED"),
        "{table}"
    );
    let tree = must_json(e, &["inspect", member_dir, "ls", "ls/"]).await;
    assert_eq!(tree["total"]["keys"], 3, "{tree}");
    let history = must_json(e, &["inspect", member_dir, "history", "cas"]).await;
    let values: Vec<String> = history
        .as_array()
        .expect("events")
        .iter()
        .map(|event| unb64(&event["kv"]["value"]))
        .collect();
    assert_eq!(values.last().map(String::as_str), Some("lost"), "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_with_one_line_naming_it() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let output = run(&endpoint, &["--dial-timeout", "1s", "get", "k"], None).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.contains(&endpoint), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    // version asks no endpoint, and prints etcdctl's two lines.
    let version = must(&endpoint, &["version"], None).await;
    let lines: Vec<&str> = version.lines().collect();
    assert_eq!(
        lines,
        [
            format!("keelctl version: {}", env!("CARGO_PKG_VERSION")).as_str(),
            "API version: 3.4"
        ]
    );

    // A snapshot that cannot be fetched leaves nothing behind, not even FILE.part.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("never.db");
    let file = file.to_str().expect("utf-8 path");
    let output = run(&endpoint, &["snapshot", "save", file], None).await;
    assert_fails_with(&output, &endpoint);
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);

    // etcdctl's environment variable is honoured when keelctl's own is unset.
    let output = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .args(["--dial-timeout", "1s", "get", "k"])
        .env_remove("KEELCTL_ENDPOINTS")
        .env("ETCDCTL_ENDPOINTS", &endpoint)
        .output()
        .await
        .expect("keelctl runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&endpoint), "{stderr}");
}

/// Reads `count` lines from a running keelctl, failing after [`COMMAND_DEADLINE`].
async fn read_lines(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    count: usize,
) -> Vec<String> {
    let mut printed = Vec::new();
    let deadline = Instant::now() + COMMAND_DEADLINE;
    while printed.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, lines.next_line()).await {
            Ok(Ok(Some(line))) => printed.push(line),
            Ok(_) => panic!("output ended after {printed:?}"),
            Err(_) => panic!("no output within {COMMAND_DEADLINE:?}: {printed:?}"),
        }
    }
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_on_another_endpoint_when_its_member_stops() {
    let mut cluster = DevCluster::start_on_free_ports(3)
        .await
        .expect("cluster starts");
    let leader = cluster.members[0]
        .wait_for_leader(COMMAND_DEADLINE)
        .await
        .expect("a leader");
    // Stopping a follower keeps the leader, so the test is about the watch alone.
    let follower = cluster
        .members
        .iter()
        .position(|m| m.id != leader)
        .expect("a follower");
    let url = |m: &keel::member::RunningMember| format!("http://{}", m.client_addr);
    let others: Vec<String> = cluster
        .members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != follower)
        .map(|(_, m)| url(m))
        .collect();
    let others = others.join(",");
    let watch_endpoints = format!("{},{others}", url(&cluster.members[follower]));

    let revision = int(&must_json(&others, &["get", "resumed"]).await["header"]["revision"]);
    let start = (revision + 1).to_string();
    let mut watch = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .args([
            "--endpoints",
            &watch_endpoints,
            "watch",
            "resumed",
            "--rev",
            &start,
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("keelctl watch starts");
    let mut lines = BufReader::new(watch.stdout.take().expect("piped")).lines();
    must(&others, &["put", "resumed", "one"], None).await;
    assert_eq!(read_lines(&mut lines, 3).await, ["PUT", "resumed", "one"]);

    cluster
        .members
        .remove(follower)
        .stop()
        .await
        .expect("follower stops");
    must(&others, &["put", "resumed", "two"], None).await;
    assert_eq!(read_lines(&mut lines, 3).await, ["PUT", "resumed", "two"]);
    watch.kill().await.expect("kill watch");
    cluster.stop().await.expect("cluster stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_runs_a_command_per_event_with_the_event_in_its_environment() {
    let cluster = DevCluster::start_on_free_ports(3)
        .await
        .expect("cluster starts");
    let e = &cluster.endpoints();
    let put = must_json(e, &["put", "/w/a", "one"]).await;
    let first = int(&put["header"]["revision"]);
    must(e, &["del", "/w/a"], None).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("events");
    let script = format!(
        "printf '%s %s %s %s\\n' \"$ETCD_WATCH_EVENT_TYPE\" \"$ETCD_WATCH_KEY\" \
         \"$ETCD_WATCH_VALUE\" \"$ETCD_WATCH_REVISION\" >> {}",
        out.display()
    );
    let rev = first.to_string();
    let mut watch = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .args(["--endpoints", e, "watch", "/w/", "--prefix", "--rev", &rev])
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("keelctl watch starts");
    let start = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= 2 {
            break lines;
        }
        assert!(
            start.elapsed() < COMMAND_DEADLINE,
            "the command ran for {lines:?} only"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    watch.kill().await.expect("kill keelctl watch");
    let [put_line, del_line] = &lines[..] else {
        panic!("expected two events: {lines:?}")
    };
    let fields: Vec<&str> = put_line.split(' ').collect();
    assert_eq!(
        &fields[..3],
        ["\"PUT\"", "\"/w/a\"", "\"one\""],
        "{put_line}"
    );
    assert!(fields[3].parse::<i64>().expect("a revision") >= first);
    assert!(
        del_line.starts_with("\"DELETE\" \"/w/a\" \"\" "),
        "{del_line}"
    );
    cluster.stop().await.expect("cluster stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defrag_and_alarm_list_and_disarm() {
    use keel::api::models::{AlarmAction, AlarmRequest, AlarmType};
    use keel::client::{Client, Options};

    let cluster = DevCluster::start_on_free_ports(3)
        .await
        .expect("cluster starts");
    let e = &cluster.endpoints();

    let defragged = must(e, &["defrag"], None).await;
    for endpoint in e.split(',') {
        assert!(
            defragged.contains(&format!("Finished defragmenting etcd member[{endpoint}]")),
            "{defragged}"
        );
    }
    assert_eq!(must(e, &["alarm", "list"], None).await, "");
    // --cluster: one endpoint given, every member defragmented (once each member has told
    // the cluster its client URL).
    let first = e.split(',').next().expect("an endpoint");
    let deadline = Instant::now() + COMMAND_DEADLINE;
    loop {
        let members = must_json(first, &["member", "list"]).await;
        let members = members["members"].as_array().cloned().unwrap_or_default();
        if members.iter().all(|m| m["clientURLs"].is_array()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "client URLs never known: {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let healthy = must(first, &["endpoint", "health", "--cluster"], None).await;
    assert_eq!(healthy.lines().count(), 3, "{healthy}");
    for endpoint in e.split(',') {
        assert!(
            healthy.contains(&format!("{endpoint} is healthy")),
            "{healthy}"
        );
    }
    let defragged = must(first, &["defrag", "--cluster"], None).await;
    assert_eq!(defragged.lines().count(), 3, "{defragged}");
    for endpoint in e.split(',') {
        assert!(
            defragged.contains(&format!("Finished defragmenting etcd member[{endpoint}]")),
            "{defragged}"
        );
    }

    // Raise NOSPACE for the second member through the first, as etcd lets any member do.
    let member_id = cluster.members[1].replica.node().id();
    Client::new(vec![first.to_owned()], Options::default())
        .expect("client")
        .alarm(&AlarmRequest {
            action: AlarmAction::Activate,
            member_id,
            alarm: AlarmType::NoSpace,
        })
        .await
        .expect("alarm raised");
    let line = format!("memberID:{member_id} alarm:NOSPACE \n");
    assert_eq!(must(e, &["alarm", "list"], None).await, line);
    let alarms = must_fields(e, &["alarm", "list"]).await;
    assert_eq!(field(&alarms, "MemberID"), [member_id.to_string().as_str()]);
    assert_eq!(field(&alarms, "AlarmType"), ["NOSPACE"]);
    // Alarms are replicated, as in etcd: every member lists it, so every member is
    // unhealthy, in etcdctl's words.
    let health = run(e, &["endpoint", "health"], None).await;
    let stderr = String::from_utf8_lossy(&health.stderr);
    assert_eq!(health.status.code(), Some(1), "{stderr}");
    for endpoint in e.split(',') {
        assert!(
            stderr.contains(&format!(
                "{endpoint} is unhealthy: failed to commit proposal: Active Alarm(s): NOSPACE"
            )),
            "{stderr}"
        );
    }
    assert_eq!(must(e, &["alarm", "disarm"], None).await, line);
    assert_eq!(must(e, &["alarm", "list"], None).await, "");
    cluster.stop().await.expect("cluster stops");
}

/// `endpoint status` as JSON: (endpoint, member id, leader id) per endpoint.
async fn statuses(endpoints: &str) -> Vec<(String, u64, u64)> {
    let status = must_json(endpoints, &["endpoint", "status"]).await;
    status
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| {
            (
                s["Endpoint"].as_str().expect("an endpoint").to_owned(),
                uint(&s["Status"]["header"]["member_id"]),
                uint(&s["Status"]["leader"]),
            )
        })
        .collect()
}

/// Asserts a failed run: exit status 1 and one `Error: …` line containing `text`.
fn assert_fails_with(output: &Output, text: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("Error: ") && stderr.contains(text),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_leader_and_member_add_print_what_etcdctl_prints() {
    let cluster = DevCluster::start_on_free_ports(3)
        .await
        .expect("cluster starts");
    cluster.members[0]
        .wait_for_leader(COMMAND_DEADLINE)
        .await
        .expect("a leader");
    let e = &cluster.endpoints();
    let before = statuses(e).await;
    let (_, leader, _) = before
        .iter()
        .find(|(_, id, leader)| id == leader)
        .cloned()
        .expect("a leader");
    let (follower_endpoint, follower, _) = before
        .iter()
        .find(|(_, id, _)| *id != leader)
        .cloned()
        .expect("a follower");

    // The leader is found among the endpoints and hands over to the follower.
    let target = format!("{follower:x}");
    assert_eq!(
        must(e, &["move-leader", &target], None).await,
        format!("Leadership transferred from {leader:x} to {follower:x}\n")
    );
    let deadline = Instant::now() + COMMAND_DEADLINE;
    while !statuses(e).await.iter().all(|(_, _, now)| *now == follower) {
        assert!(
            Instant::now() < deadline,
            "{follower:x} never led everywhere"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A target that is not a voter, and endpoints without the leader, in etcdctl's words.
    let stranger = run(e, &["move-leader", "1234"], None).await;
    assert_fails_with(&stranger, "etcdserver: bad leader transferee");
    let others: Vec<&str> = e
        .split(',')
        .filter(|url| *url != follower_endpoint)
        .collect();
    let without_leader = run(&others.join(","), &["move-leader", &target], None).await;
    assert_fails_with(
        &without_leader,
        &format!("no leader endpoint given at [{}]", others.join(" ")),
    );

    // member add: etcdctl 3.4's lines, parsed back.
    let peer = "http://127.0.0.1:1";
    let added = must(
        e,
        &["member", "add", "n4", "--learner", "--peer-urls", peer],
        None,
    )
    .await;
    let lines: Vec<&str> = added.lines().collect();
    let [first, "", name, initial, advertise, state] = lines[..] else {
        panic!("member add printed {added:?}")
    };
    let words: Vec<&str> = first.split_whitespace().collect();
    let ["Member", id, "added", "to", "cluster", cluster_id] = words[..] else {
        panic!("first line {first:?}")
    };
    let id = u64::from_str_radix(id, 16).expect("a hex member id");
    let status = must_json(e, &["endpoint", "status"]).await;
    let header = &status[0]["Status"]["header"];
    assert_eq!(
        u64::from_str_radix(cluster_id, 16).expect("a hex cluster id"),
        uint(&header["cluster_id"])
    );
    assert_eq!(name, "ETCD_NAME=\"n4\"");
    let members = must_json(e, &["member", "list"]).await;
    let members = members["members"].as_array().expect("members");
    assert_eq!(members.len(), 4, "{members:?}");
    let mut cluster_urls = Vec::new();
    for member in members {
        let this = uint(&member["ID"]);
        let name = if this == id {
            assert_eq!(member["isLearner"], true, "{member}");
            "n4"
        } else {
            member["name"].as_str().expect("a started member's name")
        };
        for url in member["peerURLs"].as_array().expect("peer URLs") {
            cluster_urls.push(format!("{name}={}", url.as_str().expect("a URL")));
        }
    }
    assert_eq!(
        initial,
        format!("ETCD_INITIAL_CLUSTER=\"{}\"", cluster_urls.join(","))
    );
    assert_eq!(
        advertise,
        format!("ETCD_INITIAL_ADVERTISE_PEER_URLS=\"{peer}\"")
    );
    assert_eq!(state, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"");

    // Mistakes fail before anything changes.
    let again = run(e, &["member", "add", "n5", "--peer-urls", peer], None).await;
    assert_fails_with(&again, "Peer URLs already exists");
    let table = run(
        e,
        &[
            "-w",
            "table",
            "member",
            "add",
            "n5",
            "--peer-urls",
            "http://127.0.0.1:2",
        ],
        None,
    )
    .await;
    assert_fails_with(&table, "table not supported as output format");
    let positional = run(e, &["member", "add", "n5", "http://127.0.0.1:2"], None).await;
    assert_fails_with(
        &positional,
        "too many arguments, did you mean --peer-urls=http://127.0.0.1:2",
    );
    let no_urls = run(e, &["member", "add", "n5"], None).await;
    assert_fails_with(&no_urls, "member peer urls not provided");
    let members = must_json(e, &["member", "list"]).await;
    assert_eq!(members["members"].as_array().map(Vec::len), Some(4));

    // member update: the new peer URL replaces the old; one another member uses is refused.
    let hex_id = format!("{id:x}");
    let moved = "http://127.0.0.1:3";
    assert_eq!(
        must(
            e,
            &["member", "update", &hex_id, "--peer-urls", moved],
            None
        )
        .await,
        format!("Member {id:16x} updated in cluster {cluster_id:>16}\n")
    );
    let members = must_json(e, &["member", "list"]).await;
    let updated = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| uint(&m["ID"]) == id)
        .expect("the updated member")
        .clone();
    assert_eq!(updated["peerURLs"], serde_json::json!([moved]), "{members}");
    let taken = cluster_urls
        .iter()
        .find(|url| !url.starts_with("n4="))
        .and_then(|url| url.split_once('='))
        .map(|(_, url)| url.to_owned())
        .expect("another member's peer URL");
    let clash = run(
        e,
        &["member", "update", &hex_id, "--peer-urls", &taken],
        None,
    )
    .await;
    assert_fails_with(&clash, "Peer URLs already exists");

    // member remove, refused in a form etcdctl lacks, then done in etcdctl's words.
    let fields = run(e, &["-w", "fields", "member", "remove", &hex_id], None).await;
    assert_fails_with(&fields, "fields not supported as output format");
    assert_eq!(
        must(e, &["member", "remove", &hex_id], None).await,
        format!("Member {id:16x} removed from cluster {cluster_id:>16}\n")
    );
    let members = must_json(e, &["member", "list"]).await;
    assert_eq!(members["members"].as_array().map(Vec::len), Some(3));
    let gone = run(e, &["member", "remove", &hex_id], None).await;
    assert_fails_with(&gone, "member not found");
    cluster.stop().await.expect("cluster stops");
}

/// `-w fields` output as (name, value) pairs, quoted values unquoted (Go's `%q` of ASCII is
/// a JSON string); blank separator lines are dropped.
fn fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line
                .split_once(" : ")
                .or_else(|| line.strip_suffix(" :").map(|name| (name, "")))
                .unwrap_or_else(|| panic!("not a field line: {line:?} in {text}"));
            let name: String = serde_json::from_str(name).expect("a quoted field name");
            let value = if value.starts_with('"') {
                serde_json::from_str(value).expect("a quoted value")
            } else {
                value.to_owned()
            };
            (name, value)
        })
        .collect()
}

/// Every value of the field `name`.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

async fn must_fields(endpoints: &str, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["-w", "fields"];
    all.extend_from_slice(args);
    fields(&must(endpoints, &all, None).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_output_parses_back_and_health_fails_when_a_member_is_down() {
    let mut cluster = DevCluster::start_on_free_ports(3)
        .await
        .expect("cluster starts");
    let leader = cluster.members[0]
        .wait_for_leader(COMMAND_DEADLINE)
        .await
        .expect("a leader");
    let e = &cluster.endpoints();
    let put = must_json(e, &["put", "f/key", "first"]).await;
    let cluster_id = uint(&put["header"]["cluster_id"]).to_string();

    let got = must_fields(e, &["get", "f/key"]).await;
    assert_eq!(field(&got, "ClusterID"), [cluster_id.as_str()], "{got:?}");
    assert_eq!(field(&got, "Key"), ["f/key"]);
    assert_eq!(field(&got, "Value"), ["first"]);
    assert_eq!(field(&got, "Version"), ["1"]);
    assert_eq!(field(&got, "Count"), ["1"]);
    assert_eq!(field(&got, "More"), ["false"]);
    let put = must_fields(e, &["put", "f/key", "say \"hi\"", "--prev-kv"]).await;
    assert_eq!(field(&put, "PrevValue"), ["first"], "{put:?}");
    let got = must_fields(e, &["get", "f/key"]).await;
    assert_eq!(field(&got, "Value"), ["say \"hi\""], "{got:?}");
    let txn = must(
        e,
        &["-w", "fields", "txn"],
        Some("value(\"f/key\") = \"say \\\"hi\\\"\"\n\nput f/other x\n\n\n"),
    )
    .await;
    let txn = fields(&txn);
    assert_eq!(field(&txn, "Succeeded"), ["true"], "{txn:?}");
    let deleted = must_fields(e, &["del", "f/", "--prefix", "--prev-kv"]).await;
    assert_eq!(field(&deleted, "Deleted"), ["2"], "{deleted:?}");
    assert_eq!(field(&deleted, "PrevKey"), ["f/key", "f/other"]);

    // Leases: ids in decimal, as etcdctl's fields form writes them.
    let granted = must_fields(e, &["lease", "grant", "600"]).await;
    let [id] = field(&granted, "ID")[..] else {
        panic!("{granted:?}")
    };
    assert_eq!(field(&granted, "TTL"), ["600"]);
    let hex = format!("{:x}", id.parse::<i64>().expect("a decimal lease id"));
    must(e, &["put", "f/leased", "v", "--lease", &hex], None).await;
    let ttl = must_fields(e, &["lease", "timetolive", &hex, "--keys"]).await;
    assert_eq!(field(&ttl, "ID"), [id]);
    assert_eq!(field(&ttl, "GrantedTTL"), ["600"]);
    assert_eq!(field(&ttl, "Key"), ["f/leased"]);
    let leases = must_fields(e, &["lease", "list"]).await;
    assert!(field(&leases, "ID").contains(&id), "{leases:?}");
    let kept = must_fields(e, &["lease", "keep-alive", "--once", &hex]).await;
    assert_eq!(field(&kept, "TTL"), ["600"], "{kept:?}");
    let revoked = must_fields(e, &["lease", "revoke", &hex]).await;
    assert_eq!(field(&revoked, "ClusterID"), [cluster_id.as_str()]);

    // Members and endpoints.
    let members = must_fields(e, &["member", "list"]).await;
    assert_eq!(field(&members, "ID").len(), 3, "{members:?}");
    assert!(field(&members, "ID").contains(&leader.to_string().as_str()));
    assert_eq!(field(&members, "IsLearner"), ["false"; 3]);
    let status = must_fields(e, &["endpoint", "status"]).await;
    assert_eq!(field(&status, "Endpoint"), e.split(',').collect::<Vec<_>>());
    assert_eq!(field(&status, "Leader"), [leader.to_string().as_str(); 3]);
    assert_eq!(field(&status, "Errors"), ["[]"; 3]);
    let hashes = must_fields(e, &["endpoint", "hashkv"]).await;
    assert_eq!(field(&hashes, "Hash").len(), 3, "{hashes:?}");
    for hash in field(&hashes, "Hash") {
        hash.parse::<u32>().expect("a u32 hash");
    }
    let health = must_fields(e, &["endpoint", "health"]).await;
    assert_eq!(field(&health, "Health"), ["true"; 3], "{health:?}");
    assert_eq!(field(&health, "Error"), [""; 3]);

    // A watch prints each response's header, then its events.
    let revision = int(&must_json(e, &["get", "f/watched"]).await["header"]["revision"]);
    let start = (revision + 1).to_string();
    let mut watch = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .args(["--endpoints", e, "-w", "fields", "watch", "f/watched"])
        .args(["--rev", &start])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("keelctl watch starts");
    let mut lines = BufReader::new(watch.stdout.take().expect("piped")).lines();
    must(e, &["put", "f/watched", "seen"], None).await;
    let event = fields(&read_lines(&mut lines, 11).await.join("\n"));
    assert_eq!(field(&event, "Type"), ["PUT"], "{event:?}");
    assert_eq!(field(&event, "Key"), ["f/watched"]);
    assert_eq!(field(&event, "Value"), ["seen"]);
    watch.kill().await.expect("kill watch");

    // With a member down the cluster is unhealthy: the others say so on stdout, the stopped
    // one on stderr, and the exit status is 1.
    let follower = cluster
        .members
        .iter()
        .position(|m| m.id != leader)
        .expect("a follower");
    let stopped = format!("http://{}", cluster.members[follower].client_addr);
    cluster
        .members
        .remove(follower)
        .stop()
        .await
        .expect("follower stops");
    let output = run(e, &["endpoint", "health"], None).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout} {stderr}");
    let healthy: Vec<&str> = stdout.lines().collect();
    assert_eq!(healthy.len(), 2, "{stdout}");
    for line in healthy {
        assert!(
            line.contains(" is healthy: successfully committed proposal: took = "),
            "{line}"
        );
        assert!(!line.starts_with(&stopped), "{line}");
    }
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{stopped} is unhealthy: failed to commit proposal: "
        )),
        "{stderr}"
    );
    assert_eq!(lines[1], "Error: unhealthy cluster");
    cluster.stop().await.expect("cluster stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_gives_up_after_the_command_timeout_on_a_member_that_never_answers() {
    // The kernel accepts connections into the backlog, so requests are sent, but nothing
    // ever reads them: every command must give up on its own.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", silent.local_addr().expect("addr"));
    let dir = tempfile::tempdir().expect("temp dir");
    let snapshot = dir.path().join("never.db");
    let snapshot = snapshot.to_str().expect("utf-8 path");
    let commands: [&[&str]; 14] = [
        &["get", "k"],
        &["put", "k", "v"],
        &["del", "k"],
        &["lease", "grant", "10"],
        &["lease", "keep-alive", "1"],
        &["watch", "k"],
        &["member", "list"],
        &["endpoint", "status"],
        &["endpoint", "hashkv"],
        &["move-leader", "12"],
        &["alarm", "list"],
        &["defrag"],
        &["compaction", "1"],
        &["snapshot", "save", snapshot],
    ];
    for command in commands {
        let mut args = vec!["--command-timeout", "300ms"];
        args.extend_from_slice(command);
        let output = run(&endpoint, &args, None).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("Error: ")
                && (stderr.contains("timed out") || stderr.contains("command timeout")),
            "{command:?}: {stderr}"
        );
        if command == ["defrag"] {
            assert!(
                stderr.starts_with(&format!("Failed to defragment etcd member[{endpoint}] (")),
                "{stderr}"
            );
        }
    }
    // The timed-out snapshot left nothing behind.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    let health = run(
        &endpoint,
        &["--command-timeout", "300ms", "endpoint", "health"],
        None,
    )
    .await;
    let stderr = String::from_utf8_lossy(&health.stderr);
    assert_eq!(health.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "{endpoint} is unhealthy: failed to commit proposal: "
        )) && stderr.contains("timed out")
            && stderr.ends_with("Error: unhealthy cluster\n"),
        "{stderr}"
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dial_timeout_bounds_connecting_to_a_member_whose_backlog_is_full() {
    // A listener with a backlog of one that never accepts: once its queue is full, Linux
    // drops further SYNs, so a new connection hangs in connect, which only the dial
    // timeout ends.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let listener = socket.listen(0).expect("listen");
    let address = listener.local_addr().expect("addr");
    let mut queued = Vec::new();
    let full = loop {
        match std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            Ok(stream) => queued.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break true,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        if queued.len() > 16 {
            break false;
        }
    };
    assert!(
        full,
        "the backlog never filled: {} connections",
        queued.len()
    );
    let endpoint = format!("http://{address}");
    let output = run(
        &endpoint,
        &[
            "--dial-timeout",
            "300ms",
            "--command-timeout",
            "25s",
            "get",
            "k",
        ],
        None,
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // Ended by the dial timeout, not by the (much longer) command timeout.
    assert!(
        stderr.contains(&format!("{endpoint}: ")) && !stderr.contains("command timed out"),
        "{stderr}"
    );
    drop(queued);
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_on_a_stopped_member_agrees_with_what_the_live_cluster_served() {
    let data = tempfile::tempdir().expect("temp dir");
    let cluster = DevCluster::start(&DevArgs {
        size: 3,
        data_dir: Some(data.path().to_owned()),
        ..DevArgs::on_free_ports(3)
    })
    .await
    .expect("cluster starts");
    let e = &cluster.endpoints();
    for (key, value) in [
        ("p/a/1", "x"),
        ("p/a/2", "yyyy"),
        ("p/a/deep/3", "zz"),
        ("p/b/x", "one"),
        ("p/b/x", "two"),
        ("p/c", "doomed"),
        ("p/b/x", "three"),
    ] {
        must(e, &["put", key, value], None).await;
    }
    must(e, &["del", "p/c"], None).await;
    let granted = must_json(e, &["lease", "grant", "600"]).await;
    let lease = format!("{:x}", int(&granted["ID"]));
    must(e, &["put", "p/leased", "held", "--lease", &lease], None).await;
    let swap = "value(\"p/a/1\") = \"x\"\n\nput p/a/1 swapped\n\n\n";
    assert_eq!(must(e, &["txn"], Some(swap)).await, "SUCCESS\n\nOK\n");

    // What the live cluster serves.
    let live = must_json(e, &["get", "p/", "--prefix"]).await;
    let revision = int(&live["header"]["revision"]);
    let live_tree = must_json(e, &["ls", "p/", "--depth", "2"]).await;
    let live_history = must_json(e, &["history", "p/b/x"]).await;
    let live_values: Vec<String> = live_history["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|kv| unb64(&kv["value"]))
        .collect();
    assert_eq!(live_values, ["one", "two", "three"]);

    // The member to inspect has applied everything; its own hash is the one to match.
    let member = cluster.configs[0].data_dir.clone();
    let member = member.to_str().expect("utf-8 path").to_owned();
    let endpoint = e.split(',').next().expect("an endpoint");
    let deadline = Instant::now() + COMMAND_DEADLINE;
    loop {
        let local = must_json(endpoint, &["get", "p/", "--consistency", "s"]).await;
        if int(&local["header"]["revision"]) >= revision {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{endpoint} never applied {revision}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hashes = must_json(endpoint, &["endpoint", "hashkv"]).await;
    let live_hash = hashes[0]["HashKV"]["hash"].as_u64().expect("a hash");
    cluster.stop().await.expect("cluster stops");

    // Keys, values, revisions, versions and leases, exactly as served.
    let offline = must_json(e, &["inspect", &member, "get", "p/", "--prefix"]).await;
    assert_eq!(offline["kvs"], live["kvs"], "offline {offline} live {live}");
    assert_eq!(int(&offline["count"]), int(&live["count"]));
    assert_eq!(offline["kvs"].as_array().map(Vec::len), Some(5));
    let status = must_json(e, &["inspect", &member, "status"]).await;
    assert_eq!(int(&status["revision"]), revision, "{status}");
    assert_eq!(status["hash"].as_u64(), Some(live_hash), "{status}");
    assert_eq!(int(&status["leases"]), 1, "{status}");
    // The same tree, key counts and value bytes per branch.
    let offline_tree = must_json(e, &["inspect", &member, "ls", "p/", "--depth", "2"]).await;
    assert_eq!(offline_tree, live_tree);
    // The key's history, with the delete that `get --rev` cannot see for p/c.
    let history = must_json(e, &["inspect", &member, "history", "p/b/x"]).await;
    let values: Vec<String> = history
        .as_array()
        .expect("events")
        .iter()
        .map(|event| unb64(&event["kv"]["value"]))
        .collect();
    assert_eq!(values, live_values);
    let deleted = must_json(e, &["inspect", &member, "history", "p/c"]).await;
    let kinds: Vec<&str> = deleted
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["type"].as_str().unwrap_or("PUT"))
        .collect();
    assert_eq!(kinds, ["PUT", "DELETE"], "{deleted}");
}

/// Runs etcdctl (3.4, from scripts/install-test-deps.sh) with `args`; returns stdout.
async fn etcdctl(endpoint: &str, args: &[&str]) -> String {
    String::from_utf8(etcdctl_output(endpoint, args).await.stdout).expect("utf-8")
}

/// Runs etcdctl with `args` and insists on success.
async fn etcdctl_output(endpoint: &str, args: &[&str]) -> Output {
    let output = Command::new("etcdctl")
        .arg("--endpoints")
        .arg(endpoint)
        .args(args)
        .env("ETCDCTL_API", "3")
        .env_remove("ETCDCTL_ENDPOINTS")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(COMMAND_DEADLINE, output)
        .await
        .unwrap_or_else(|_| panic!("etcdctl {args:?} ran past {COMMAND_DEADLINE:?}"))
        .expect("etcdctl runs (scripts/install-test-deps.sh installs it)");
    assert!(
        output.status.success(),
        "etcdctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keelctl_prints_what_etcdctl_prints_against_a_real_etcd() {
    let data = tempfile::tempdir().expect("temp dir");
    let (client_port, peer_port) = (crate::free_port(), crate::free_port());
    let endpoint = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let mut etcd = Command::new("etcd")
        .args(["--name", "parity", "--data-dir"])
        .arg(data.path().join("etcd"))
        .args(["--listen-client-urls", &endpoint])
        .args(["--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("parity={peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("etcd starts (scripts/install-test-deps.sh installs it)");
    let e = endpoint.as_str();
    let deadline = Instant::now() + COMMAND_DEADLINE;
    while !run(e, &["--dial-timeout", "200ms", "get", "x"], None)
        .await
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "etcd never served {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The same writes through both clients print the same.
    for args in [
        &["put", "a", "b"][..],
        &["put", "dir/one", "1"],
        &["put", "dir/two", "say \"2\""],
        &["put", "a", "b", "--prev-kv"],
        &["del", "missing"],
    ] {
        assert_eq!(
            must(e, args, None).await,
            etcdctl(e, args).await,
            "{args:?}"
        );
    }
    let lease = etcdctl(e, &["lease", "grant", "600"]).await;
    let lease = lease
        .split_whitespace()
        .nth(1)
        .expect("a lease id")
        .to_owned();
    etcdctl(e, &["put", "dir/leased", "v", "--lease", &lease]).await;
    let leader = etcdctl(e, &["member", "list"]).await;
    let leader = leader.split(',').next().expect("a member id").to_owned();

    // Reads of a state nothing changes in between: the same bytes.
    let reads: &[&[&str]] = &[
        &["get", "a"],
        &["get", "", "--prefix"],
        &["get", "", "--prefix", "--keys-only"],
        &["get", "", "--prefix", "--print-value-only"],
        &["get", "dir/", "--prefix", "--limit", "1"],
        &[
            "get",
            "",
            "--from-key",
            "--sort-by",
            "MODIFY",
            "--order",
            "DESCEND",
        ],
        &["get", "a", "--rev", "2"],
        &["--hex", "get", "dir/one"],
        &["-w", "fields", "get", "", "--prefix"],
        &["-w", "fields", "get", "dir/", "--prefix", "--limit", "1"],
        &["-w", "fields", "del", "missing"],
        &["member", "list"],
        &["-w", "fields", "member", "list"],
        &["-w", "table", "member", "list"],
        &["-w", "table", "endpoint", "status"],
        &["-w", "fields", "endpoint", "status"],
        // (no `endpoint hashkv`: etcd 3.4's gateway maps HashKV and Hash to one path, and
        // serves Hash there)
        &["alarm", "list"],
        &["lease", "list"],
        &["-w", "fields", "lease", "list"],
        &["move-leader", &leader],
        &["defrag"],
    ];
    for args in reads {
        let ours = must(e, args, None).await;
        let theirs = etcdctl(e, args).await;
        assert_eq!(ours, theirs, "{args:?}");
    }
    // A write in the fields form: the same fields, the same values but for the revisions
    // the first write moved on.
    let put = ["-w", "fields", "put", "a", "b", "--prev-kv"];
    let moved = ["Revision", "PrevModRevision", "PrevVersion"];
    let without_revisions = |pairs: Vec<(String, String)>| -> Vec<(String, String)> {
        pairs
            .into_iter()
            .map(|(name, value)| {
                let value = if moved.contains(&name.as_str()) {
                    String::new()
                } else {
                    value
                };
                (name, value)
            })
            .collect()
    };
    assert_eq!(
        without_revisions(fields(&must(e, &put, None).await)),
        without_revisions(fields(&etcdctl(e, &put).await))
    );

    // A txn whose compare fails leaves the state alone, so both take the same branch.
    let txn = "value(\"a\") = \"nope\"\n\nput a changed\n\nget a\nget dir/one\n\n";
    let theirs = {
        let mut child = Command::new("etcdctl")
            .args(["--endpoints", e, "txn"])
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("etcdctl runs");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(txn.as_bytes()).await.expect("stdin");
        drop(input);
        let output = child.wait_with_output().await.expect("etcdctl txn");
        String::from_utf8(output.stdout).expect("utf-8")
    };
    assert_eq!(must(e, &["txn"], Some(txn)).await, theirs);
    // Health differs only in how long it took, and in where it goes: etcdctl 3.4 writes
    // healthy lines to stderr, keelctl (like etcdctl 3.5) to stdout.
    let took = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.contains(" is healthy: "))
            .map(|line| line.split(" took = ").next().unwrap_or_default().to_owned())
            .collect()
    };
    let theirs = etcdctl_output(e, &["endpoint", "health"]).await;
    let theirs = took(&String::from_utf8_lossy(&theirs.stderr));
    assert_eq!(theirs.len(), 1);
    assert_eq!(took(&must(e, &["endpoint", "health"], None).await), theirs);
    // Leases: the same lines, the remaining time aside (a second may pass in between).
    let remaining = |text: String| {
        text.split(", remaining")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let ttl = ["lease", "timetolive", &lease, "--keys"];
    assert_eq!(
        remaining(must(e, &ttl, None).await),
        remaining(etcdctl(e, &ttl).await)
    );
    let kept = ["lease", "keep-alive", "--once", &lease];
    assert_eq!(must(e, &kept, None).await, etcdctl(e, &kept).await);
    let granted = must(e, &["lease", "grant", "60"], None).await;
    let theirs = etcdctl(e, &["lease", "grant", "60"]).await;
    let shape = |text: &str| -> Vec<usize> { text.split(' ').map(str::len).collect() };
    assert_eq!(shape(&granted), shape(&theirs), "{granted} {theirs}");

    // A watch replaying the whole history prints the same events.
    let revision = int(&must_json(e, &["get", "a"]).await["header"]["revision"]);
    let events = |program: &str| {
        let mut command = Command::new(program);
        command
            .args(["--endpoints", e, "watch", "", "--prefix", "--rev", "1"])
            .env("ETCDCTL_API", "3")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command
    };
    let mut printed = Vec::new();
    for program in [env!("CARGO_BIN_EXE_keelctl"), "etcdctl"] {
        let mut watch = events(program).spawn().expect("watch starts");
        let mut lines = BufReader::new(watch.stdout.take().expect("piped")).lines();
        // Three lines (PUT, key, value) per write after the first revision.
        printed.push(read_lines(&mut lines, 3 * (revision as usize - 1)).await);
        watch.kill().await.expect("kill watch");
    }
    assert_eq!(printed[0], printed[1]);

    // snapshot save: the same closing line, for files of the same size.
    let (ours, theirs) = (data.path().join("ours.db"), data.path().join("theirs.db"));
    let (ours, theirs) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
    assert_eq!(
        must(e, &["snapshot", "save", ours], None).await,
        format!("Snapshot saved at {ours}\n")
    );
    assert_eq!(
        etcdctl(e, &["snapshot", "save", theirs]).await,
        format!("Snapshot saved at {theirs}\n")
    );
    etcd.kill().await.expect("etcd stops");
}
