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
        base_port: 0,
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
        "ls/a/1\nls/a/2\nls/b/1\n"
    );
    assert_eq!(
        must(
            e,
            &["get", "ls/", "--prefix", "--limit", "2", "--keys-only"],
            None
        )
        .await,
        "ls/a/1\nls/a/2\n"
    );
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

    // snapshot save writes the file and says how big it is.
    let snapshot = data.path().join("backup.db");
    let snapshot = snapshot.to_str().expect("utf-8 path");
    let saved = must(e, &["snapshot", "save", snapshot], None).await;
    let size = std::fs::metadata(snapshot).expect("snapshot file").len();
    assert!(
        size > 0 && saved.starts_with(&format!("Snapshot saved at {snapshot}")),
        "{saved}"
    );
    assert!(saved.contains("crc32"), "{saved}");

    // other output forms.
    let table = must(e, &["-w", "table", "get", "greeting"], None).await;
    assert!(
        table.contains("hello world") && table.contains("MOD REV"),
        "{table}"
    );
    assert_eq!(
        must(e, &["--hex", "get", "cas"], None).await,
        "636173
6c6f7374
"
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

    // Raise NOSPACE on the second member, as its quota check would.
    let second = e.split(',').nth(1).expect("a second member").to_owned();
    let member_id = cluster.members[1].replica.node().id();
    Client::new(vec![second], Options::default())
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
    assert_eq!(must(e, &["alarm", "disarm"], None).await, line);
    assert_eq!(must(e, &["alarm", "list"], None).await, "");
    cluster.stop().await.expect("cluster stops");
}
