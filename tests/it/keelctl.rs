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
async fn run(endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .env_remove("KEELCTL_ENDPOINTS")
        .env_remove("ETCDCTL_ENDPOINTS")
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
async fn must(endpoints: &str, args: &[&str], stdin: Option<&str>) -> String {
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
    let words: Vec<&str> = first.split(' ').collect();
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
