//! Proof under faults: a real cluster of `keel serve` processes on loopback, randomized client
//! traffic recorded as a history, faults injected on a schedule drawn from a seed, and checks
//! of the history afterwards (linearizability, durability of acknowledged writes, watches,
//! leases, agreement of members).
//!
//! The harness lives here, in the integration-test binary, and both runs use it: the short
//! run CI makes on every change (`chaos::a_short_chaos_run_*`, fixed seeds) and the long run,
//! an ignored test configured by environment variables (the README's "Chaos" paragraph):
//!
//! ```sh
//! CHAOS_OPS=10000 CHAOS_SEED=7 CHAOS_NODES=5 \
//!   cargo test -p keel --test it chaos::long_run -- --ignored --nocapture
//! ```
//!
//! A test module rather than a library module behind a feature or an example: the harness
//! needs the `keel` binary Cargo builds for integration tests (`CARGO_BIN_EXE_keel`), and
//! nothing outside the tests should depend on it.
//!
//! # Layout
//!
//! - [`history`]: operations with invocation and completion times and definite, failed or
//!   indefinite outcomes; watchers' events.
//! - [`checker`]: per-key Wing & Gong search with memoization; acknowledged writes against the
//!   committed history.
//! - [`watch_check`]: each watcher against the committed history; members against each other.
//! - [`proxy`]: the fault-injecting proxy in front of each member's peer listener.
//! - [`cluster`]: `keel serve` processes behind their proxies: kill, restart, pause, replace.
//! - [`traffic`]: key-value clients, lease clients and watchers.
//! - [`faults`]: the seeded fault schedule and how each fault is injected and healed.
//! - [`run`]: one run end to end, its checks, and the report saved on a violation.

pub mod checker;
pub mod cluster;
pub mod faults;
pub mod history;
pub mod proxy;
pub mod run;
pub mod traffic;
pub mod watch_check;

use run::{Plan, Summary};

fn print(plan: &Plan, summary: &Summary) {
    println!(
        "chaos seed {} nodes {}: {} operations ({} indefinite), {} watch events, {} leases, \
         faults {:?}, {} snapshot chunks installed, last revision {}, linearizability check {:?} \
         ({} configurations), violations {}, lost writes {}",
        plan.seed,
        plan.nodes,
        summary.operations,
        summary.indefinite,
        summary.watch_events,
        summary.leases,
        summary.faults,
        summary.snapshot_chunks,
        summary.revision,
        summary.check_time,
        summary.explored,
        summary.violations,
        summary.lost_writes
    );
}

fn plan(seed: u64, nodes: usize, ops: i64, snapshot_count: u64) -> Plan {
    Plan {
        seed,
        nodes,
        ops,
        faults: faults::ALL.len(),
        kv_clients: 4,
        lease_clients: 1,
        keys: 6,
        snapshot_count,
        search_budget: 2_000_000,
    }
}

/// Every fault kind once on three members, and on five, with fixed seeds: no violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_with_fixed_seeds_finds_no_violation() {
    for (seed, nodes) in [(1, 3), (2, 5)] {
        // Snapshots every 25 entries: however few writes the faults leave time for, the
        // lagging follower and the newcomer are behind the leader's log.
        let plan = plan(seed, nodes, 400, 25);
        let summary = run::run(plan.clone()).await;
        print(&plan, &summary);
        for fault in faults::ALL {
            assert!(
                summary.faults.contains_key(&format!("{fault:?}")),
                "{fault:?} was not injected: {:?}",
                summary.faults
            );
        }
        assert!(
            summary.snapshot_chunks > 0,
            "no member was caught up by a snapshot"
        );
    }
}

/// The long run: `CHAOS_OPS` (10,000), `CHAOS_SEED` (7), `CHAOS_NODES` (5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; run by hand (see the module doc)"]
async fn long_run() {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let plan = plan(
        var("CHAOS_SEED", 7),
        var("CHAOS_NODES", 5) as usize,
        var("CHAOS_OPS", 10_000) as i64,
        100,
    );
    let summary = run::run(plan.clone()).await;
    print(&plan, &summary);
    assert_eq!((summary.violations, summary.lost_writes), (0, 0));
}

/// Checks a saved run again (`CHAOS_REPORT=<the report directory a failed run named>`): its
/// history against its committed history, with the checker as it is now.
#[test]
#[ignore = "needs a saved report: CHAOS_REPORT=DIR"]
fn recheck_a_saved_run() {
    let dir = std::path::PathBuf::from(std::env::var("CHAOS_REPORT").expect("CHAOS_REPORT=DIR"));
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let entries: Vec<history::Entry> = serde_json::from_slice(&read("history.json")).unwrap();
    let committed: Vec<history::WatchEvent> =
        serde_json::from_slice(&read("committed.json")).unwrap();
    let kv: Vec<history::Entry> = entries
        .iter()
        .filter(|e| e.op.key().starts_with(traffic::KV_PREFIX))
        .cloned()
        .collect();
    let started = std::time::Instant::now();
    let checked = checker::check(&kv, Some(&committed), 2_000_000);
    println!(
        "{} operations on {} keys: {} configurations in {:?}",
        checked.operations,
        checked.keys,
        checked.explored,
        started.elapsed()
    );
    let lost = checker::lost_writes(&entries, &committed);
    for problem in &checked.problems {
        println!("{problem:?}");
    }
    for problem in &lost {
        println!("{problem}");
    }
    assert!(checked.problems.is_empty() && lost.is_empty());
}
