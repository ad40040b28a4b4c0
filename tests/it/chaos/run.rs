//! One chaos run: a cluster, traffic and the fault schedule at once, then the checks, and a
//! report saved on any violation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel::api::models::WatchCreateRequest;
use keel::client::Client;
use serde::Serialize;

use super::checker::{self, Problem};
use super::cluster::Cluster;
use super::faults::{self, Injected};
use super::history::{Entry, Op, Outcome, WatchEvent, WatchRecord};
use super::traffic::{self, LeaseRecord, Shared, KV_PREFIX, LEASE_PREFIX};
use super::watch_check;

/// What a run does.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// Seeds the traffic and the fault schedule.
    pub seed: u64,
    /// Members (3 or 5).
    pub nodes: usize,
    /// Client operations at least (the clients go on until the faults are done too).
    pub ops: i64,
    /// Faults at least (the schedule goes on until the operations are done too).
    pub faults: usize,
    /// Concurrent key-value clients.
    pub kv_clients: usize,
    /// Concurrent lease clients.
    pub lease_clients: usize,
    /// Distinct keys of the key-value clients.
    pub keys: usize,
    /// `--snapshot-count` of the members.
    pub snapshot_count: u64,
    /// Configurations the linearizability search may explore per key.
    pub search_budget: u64,
}

/// The numbers of a passed run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Operations recorded.
    pub operations: usize,
    /// Of which indefinite.
    pub indefinite: usize,
    /// Faults injected, by kind.
    pub faults: HashMap<String, usize>,
    /// Watch events checked, over all watchers.
    pub watch_events: usize,
    /// Leases granted.
    pub leases: usize,
    /// Install-snapshot chunks members accepted.
    pub snapshot_chunks: u64,
    /// Time of the linearizability check.
    pub check_time: Duration,
    /// Configurations the search explored.
    pub explored: u64,
    /// The last revision.
    pub revision: i64,
    /// Violations found (a passed run has none).
    pub violations: usize,
    /// Acknowledged writes missing from the committed history.
    pub lost_writes: usize,
}

/// Everything a failed run saves.
#[derive(Serialize)]
struct Report<'a> {
    plan: &'a Plan,
    problems: &'a [String],
    faults: &'a [Injected],
    cluster: String,
}

/// Runs `plan`; on any violation, saves the history and a report and panics naming its path.
pub async fn run(plan: Plan) -> Summary {
    let started = Instant::now();
    let mut cluster = Cluster::start(plan.nodes, plan.snapshot_count).await;
    if let Err(e) = cluster.leader(Duration::from_secs(30)).await {
        panic!("the cluster never elected a leader: {e}");
    }
    let shared = Shared {
        recorder: Default::default(),
        endpoints: cluster.endpoints.clone(),
        budget: Arc::new(AtomicI64::new(plan.ops)),
        faults_done: Arc::new(AtomicBool::new(false)),
        stop: Arc::new(AtomicBool::new(false)),
        keys: plan.keys,
    };
    let now_revision = cluster
        .client()
        .status()
        .await
        .map(|s| s.header.revision)
        .unwrap_or(1);

    // Watchers: everything from revision 1, the key-value keys from now, the lease keys from now.
    let watch_plans = [
        (String::new(), 1, format!("{LEASE_PREFIX}sentinel")),
        (
            KV_PREFIX.to_owned(),
            now_revision + 1,
            format!("{KV_PREFIX}sentinel"),
        ),
        (
            LEASE_PREFIX.to_owned(),
            now_revision + 1,
            format!("{LEASE_PREFIX}sentinel"),
        ),
    ];
    let watchers: Vec<_> = watch_plans
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, (prefix, start, until))| {
            tokio::spawn(traffic::watcher(
                shared.clone(),
                i,
                plan.seed,
                prefix,
                start,
                until,
            ))
        })
        .collect();
    let kv_clients: Vec<_> = (0..plan.kv_clients)
        .map(|i| tokio::spawn(traffic::kv_client(shared.clone(), i, plan.seed)))
        .collect();
    let lease_clients: Vec<_> = (0..plan.lease_clients)
        .map(|i| tokio::spawn(traffic::lease_client(shared.clone(), 100 + i, plan.seed)))
        .collect();

    let mut injected = Vec::new();
    let mut stuck = None;
    for (n, (fault, hold, gap)) in faults::schedule(plan.seed, 10_000).into_iter().enumerate() {
        if n >= plan.faults && shared.budget.load(Ordering::SeqCst) <= 0 {
            break;
        }
        let at_ms = started.elapsed().as_millis() as u64;
        match faults::inject(&mut cluster, fault, hold).await {
            Ok(targets) => injected.push(Injected {
                fault,
                targets,
                at_ms,
                held_ms: hold.as_millis() as u64,
            }),
            Err(e) => {
                stuck = Some(format!("before {fault:?} at {at_ms} ms: {e}"));
                break;
            }
        }
        tokio::time::sleep(gap).await;
    }
    if stuck.is_some() {
        // The cluster did not recover from the last fault: stop the traffic now.
        shared.budget.store(0, Ordering::SeqCst);
    }
    shared.faults_done.store(true, Ordering::SeqCst);
    for client in kv_clients {
        client.await.expect("a key-value client panicked");
    }
    let mut leases: Vec<LeaseRecord> = Vec::new();
    for client in lease_clients {
        leases.extend(client.await.expect("a lease client panicked"));
    }
    shared.stop.store(true, Ordering::SeqCst);

    let mut problems = Vec::new();
    let settled = match stuck {
        Some(e) => Err(e),
        None => settle(&mut cluster, &shared, &plan, &mut problems).await,
    };
    let finish = match settled {
        Ok(finish) => finish,
        Err(e) => {
            problems.push(format!("the cluster did not recover: {e}"));
            println!("faults injected: {injected:?}\n{}", cluster.log_tails(25));
            let path = save_report(
                &plan,
                &problems,
                &injected,
                &shared.recorder.entries(),
                &[],
                &leases,
                &[],
                &cluster,
            );
            panic!(
                "chaos run with seed {}: {}; report and history in {}",
                plan.seed,
                problems.join("; "),
                path.display()
            );
        }
    };
    let mut watches = Vec::new();
    let mut received = Vec::new();
    for watcher in watchers {
        match tokio::time::timeout(Duration::from_secs(60), watcher).await {
            Ok(Ok((record, times))) => {
                watches.push(record);
                received.push(times);
            }
            Ok(Err(e)) => problems.push(format!("a watcher panicked: {e}")),
            Err(_) => problems.push("a watcher never saw the end of the run".into()),
        }
    }

    // The committed history, as each member has it.
    let mut histories = Vec::new();
    for index in 0..cluster.nodes.len() {
        let name = cluster.nodes[index].name.clone();
        match committed_history(&cluster.client_of(index), finish).await {
            Ok(events) => histories.push((name, events)),
            Err(e) => problems.push(format!("{name}: cannot read the committed history: {e}")),
        }
    }
    problems.extend(watch_check::check_members_agree(&histories));
    let committed = histories.first().map(|h| h.1.clone()).unwrap_or_default();

    // Every member agrees on the keyspace at the last revision.
    let mut hashes = Vec::new();
    for index in 0..cluster.nodes.len() {
        match cluster.client_of(index).hash_kv(finish).await {
            Ok(answer) => hashes.push((cluster.nodes[index].name.clone(), answer.hash)),
            Err(e) => problems.push(format!("hashkv on {}: {e}", cluster.nodes[index].name)),
        }
    }
    if hashes.windows(2).any(|w| w[0].1 != w[1].1) {
        problems.push(format!(
            "members disagree on hashkv at {finish}: {hashes:?}"
        ));
    }

    let entries = shared.recorder.entries();
    let kv_entries: Vec<Entry> = entries
        .iter()
        .filter(|e| e.op.key().starts_with(KV_PREFIX))
        .cloned()
        .collect();
    let check_start = Instant::now();
    let committed_known = (!histories.is_empty()).then_some(&committed[..]);
    let checked = checker::check(&kv_entries, committed_known, plan.search_budget);
    let check_time = check_start.elapsed();
    for problem in &checked.problems {
        problems.push(match problem {
            Problem::NotLinearizable { key, last, entries } => format!(
                "{key} is not linearizable once {last:?} answered; the {} operations of {key} up to then:\n{}",
                entries.len(),
                entries
                    .iter()
                    .map(|e| format!("  {e:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            Problem::Undecided { key, explored } => format!(
                "{key}: linearizability undecided after {explored} configurations (budget)"
            ),
        });
    }
    let lost = checker::lost_writes(&entries, &committed);
    let lost_writes = lost.len();
    problems.extend(lost);
    for watch in &watches {
        problems.extend(watch_check::check_watch(watch, &committed));
    }
    problems.extend(check_leases(&leases, &committed, &watches, &received));
    problems.extend(check_compaction(&cluster, finish, &committed).await);

    let mut faults_by_kind: HashMap<String, usize> = HashMap::new();
    for fault in &injected {
        *faults_by_kind
            .entry(format!("{:?}", fault.fault))
            .or_default() += 1;
    }
    let summary = Summary {
        operations: entries.len(),
        indefinite: entries
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Indefinite(_)))
            .count(),
        faults: faults_by_kind,
        watch_events: watches.iter().map(|w| w.events.len()).sum(),
        leases: leases.len(),
        snapshot_chunks: cluster
            .nodes
            .iter()
            .chain(&cluster.retired)
            .map(|n| cluster.links.snapshot_chunks(n.id))
            .sum(),
        check_time,
        explored: checked.explored,
        revision: finish,
        violations: problems.len(),
        lost_writes,
    };
    if !problems.is_empty() {
        let path = save_report(
            &plan, &problems, &injected, &entries, &watches, &leases, &committed, &cluster,
        );
        panic!(
            "chaos run with seed {} found {} problem(s); report and history in {}:\n{}",
            plan.seed,
            problems.len(),
            path.display(),
            problems.join("\n")
        );
    }
    summary
}

/// After the traffic: waits for a leader and for every lease to be gone, reads every key once
/// more, and writes the sentinels the watchers stop at. Returns the last revision, or why the
/// cluster could not get there.
async fn settle(
    cluster: &mut Cluster,
    shared: &Shared,
    plan: &Plan,
    problems: &mut Vec<String>,
) -> Result<i64, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    cluster.leader(Duration::from_secs(30)).await?;
    let client = cluster.client();
    loop {
        match client.leases().await {
            Ok(answer) if answer.leases.is_empty() => break,
            _ if Instant::now() > deadline => {
                problems.push("leases never all expired after the run".into());
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // Final reads make the last value of every key part of the history.
    for key in 0..plan.keys {
        let op = Op::Get {
            key: format!("{KV_PREFIX}{key}"),
        };
        let invoked = shared.recorder.now();
        let outcome = traffic::execute(&client, &op).await;
        shared.recorder.record(10_000, op, invoked, outcome);
    }
    let mut last = 0;
    for (n, key) in [KV_PREFIX, LEASE_PREFIX].iter().enumerate() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let op = Op::Put {
                key: format!("{key}sentinel"),
                value: format!("sentinel-{n}-{attempt}"),
            };
            let invoked = shared.recorder.now();
            let outcome = traffic::execute(&client, &op).await;
            shared.recorder.record(10_001, op, invoked, outcome.clone());
            if let Outcome::Written { revision, .. } = outcome {
                last = revision;
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("no write succeeded within 60 s: {outcome:?}"));
            }
        }
    }
    Ok(last)
}

/// Every event from revision 1 to `last`, from one member.
async fn committed_history(client: &Client, last: i64) -> Result<Vec<WatchEvent>, String> {
    let request = WatchCreateRequest {
        key: Vec::new(),
        range_end: vec![0],
        start_revision: 1,
        ..Default::default()
    };
    let mut watch = client.watch(request).await.map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    let collect = async {
        while let Some(response) = watch.next().await {
            let response = response.map_err(|e| e.to_string())?;
            for event in response.events {
                let revision = event.kv.mod_revision;
                events.push(WatchEvent {
                    revision,
                    key: String::from_utf8_lossy(&event.kv.key).into_owned(),
                    value: (event.kind == keel::api::models::EventType::Put)
                        .then(|| String::from_utf8_lossy(&event.kv.value).into_owned()),
                });
                if revision >= last {
                    return Ok(());
                }
            }
        }
        Err("the watch ended early".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .map_err(|_| format!("no event up to revision {last} within 60 s"))??;
    Ok(events)
}

/// Lease-attached keys vanished exactly when their lease went: all of a lease's keys in one
/// delete revision, the revoke's when it was acknowledged, and never before the TTL ran out
/// when the lease expired (a watcher saw the delete no sooner than grant + TTL).
fn check_leases(
    leases: &[LeaseRecord],
    committed: &[WatchEvent],
    watches: &[WatchRecord],
    received: &[Vec<u64>],
) -> Vec<String> {
    let mut first_seen: HashMap<(i64, &str), u64> = HashMap::new();
    for (watch, times) in watches.iter().zip(received) {
        for (event, time) in watch.events.iter().zip(times) {
            let seen = first_seen
                .entry((event.revision, event.key.as_str()))
                .or_insert(*time);
            *seen = (*seen).min(*time);
        }
    }
    let mut problems = Vec::new();
    for lease in leases {
        let mut deletes = Vec::new();
        for key in &lease.keys {
            let events: Vec<&WatchEvent> = committed.iter().filter(|e| &e.key == key).collect();
            match events.as_slice() {
                [] => {} // the put was not applied
                [put, delete] if put.value.is_some() && delete.value.is_none() => {
                    deletes.push(*delete)
                }
                other => problems.push(format!(
                    "lease {:x}: key {key} should be put once and deleted once, has {other:?}",
                    lease.id
                )),
            }
        }
        let Some(first) = deletes.first() else {
            continue;
        };
        if deletes.iter().any(|d| d.revision != first.revision) {
            problems.push(format!(
                "lease {:x}: its keys vanished at different revisions: {deletes:?}",
                lease.id
            ));
        }
        match &lease.revoke {
            Some(Outcome::Written { revision, .. }) if *revision != first.revision => problems
                .push(format!(
                    "lease {:x} was revoked at {revision} but its keys vanished at {}",
                    lease.id, first.revision
                )),
            None => {
                let expires = lease.granted + lease.ttl as u64 * 1_000_000_000;
                if let Some(seen) = first_seen.get(&(first.revision, first.key.as_str())) {
                    if *seen < expires {
                        problems.push(format!(
                            "lease {:x} (TTL {} s) expired {} ms early",
                            lease.id,
                            lease.ttl,
                            (expires - seen) / 1_000_000
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    problems
}

/// Compaction at the end: a watch from below the compacted revision is canceled as compacted,
/// one from above it is served, and matches the committed history.
async fn check_compaction(cluster: &Cluster, last: i64, committed: &[WatchEvent]) -> Vec<String> {
    let at = (last / 2).max(2);
    let client = cluster.patient_client(Duration::from_secs(30));
    if let Err(e) = client.compact(at, true).await {
        return vec![format!("compaction at {at} failed: {e}")];
    }
    let mut problems = Vec::new();
    // From just above the compacted revision: as in etcd, a delete at exactly the compacted
    // revision is compacted away with its key.
    for (index, start) in [(0, at / 2), (cluster.nodes.len() - 1, at + 1)] {
        let mut record = WatchRecord {
            watcher: 1000 + index,
            start_revision: start,
            ..Default::default()
        };
        let member = cluster.client_of(index);
        let request = WatchCreateRequest {
            key: Vec::new(),
            range_end: vec![0],
            start_revision: start,
            ..Default::default()
        };
        let first = async {
            let mut watch = member.watch(request).await.ok()?;
            // The created answer, then either the cancelation or the first events.
            let mut answers = Vec::new();
            while answers.len() < 2 {
                answers.push(watch.next().await?.ok()?);
            }
            Some(answers)
        };
        let Ok(Some(answers)) = tokio::time::timeout(Duration::from_secs(10), first).await else {
            problems.push(format!(
                "a watch from {start} after compacting at {at} never answered"
            ));
            continue;
        };
        for answer in answers {
            if answer.canceled && answer.compact_revision > 0 {
                record.compacted = Some((start, answer.compact_revision));
            }
            for event in answer.events {
                record.events.push(WatchEvent {
                    revision: event.kv.mod_revision,
                    key: String::from_utf8_lossy(&event.kv.key).into_owned(),
                    value: (event.kind == keel::api::models::EventType::Put)
                        .then(|| String::from_utf8_lossy(&event.kv.value).into_owned()),
                });
            }
        }
        match (start < at, record.compacted) {
            (true, None) => problems.push(format!(
                "a watch from {start} was not told that {at} was compacted"
            )),
            (true, Some((_, revision))) if revision != at => problems.push(format!(
                "a watch from {start} was told of compaction at {revision}, not {at}"
            )),
            _ => {}
        }
        problems.extend(watch_check::check_watch(&record, committed));
    }
    problems
}

#[allow(clippy::too_many_arguments)]
fn save_report(
    plan: &Plan,
    problems: &[String],
    faults: &[Injected],
    entries: &[Entry],
    watches: &[WatchRecord],
    leases: &[LeaseRecord],
    committed: &[WatchEvent],
    cluster: &Cluster,
) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "keel-chaos-seed{}-{}-{}",
        plan.seed,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).expect("a report dir");
    let write = |name: &str, value: &dyn erased::Json| {
        std::fs::write(dir.join(name), value.json()).expect("the report is written")
    };
    let report = Report {
        plan,
        problems,
        faults,
        cluster: cluster.describe(),
    };
    write("report.json", &report);
    write("history.json", &entries);
    write("watches.json", &watches);
    write("leases.json", &leases);
    write("committed.json", &committed);
    for log in cluster.logs() {
        if let Some(name) = log.file_name() {
            let _ = std::fs::copy(&log, dir.join(name));
        }
    }
    dir
}

/// Serializing the report's parts through one closure.
mod erased {
    /// Anything the report saves.
    pub trait Json {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string_pretty(self).expect("report parts serialize")
        }
    }
}
