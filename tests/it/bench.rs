//! `keel bench` against a real in-process three-member cluster, over the JSON gateway and
//! over gRPC: every workload runs its operations, counts them and their errors, and `-w json`
//! prints a report that parses; the gRPC mode also drives a real etcd 3.4. No timing is
//! asserted: speed is what the benchmark reports, not what a test may check.

mod density;

use std::time::Duration;

use keel::bench::{self, Options, Protocol, Report, Workload};
use keel::cli::dev::DevCluster;
use keel::client::Client;

fn options(cluster: &DevCluster, total: u64) -> Options {
    Options {
        endpoints: cluster.endpoints().split(',').map(str::to_owned).collect(),
        clients: 8,
        conns: 3,
        total,
        key_space_size: 50,
        ..Options::default()
    }
}

fn assert_clean(report: &Report, total: u64) {
    assert_eq!(
        (report.total, report.ok, report.errors),
        (total, total, 0),
        "{}",
        report.text()
    );
    let bucketed: u64 = report.histogram.iter().map(|b| b.count).sum();
    assert_eq!(bucketed, total, "{:?}", report.histogram);
    assert!(report.latency_ms.p50 <= report.latency_ms.p99, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_its_operations_on_every_member() {
    every_workload_runs_its_operations(Protocol::Gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_its_operations_on_every_member_over_grpc() {
    every_workload_runs_its_operations(Protocol::Grpc).await;
}

async fn every_workload_runs_its_operations(protocol: Protocol) {
    let cluster = DevCluster::start_on_free_ports(3).await.expect("cluster");
    let options = Options {
        sequential_keys: true,
        protocol,
        ..options(&cluster, 300)
    };
    let put = bench::run(&Workload::Put, &options).await.unwrap();
    assert_clean(&put, 300);
    // Sequential keys over a space of 50: the 300 puts wrote each key six times.
    let client = Client::new(options.endpoints.clone(), Default::default()).unwrap();
    let written = client
        .range(&keel::api::models::RangeRequest {
            key: bench::workload::key_of(0, 8),
            range_end: bench::workload::key_of(50, 8),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(written.count, 50);
    assert!(written.kvs.iter().all(|kv| kv.version == 6), "{written:?}");

    for serializable in [false, true] {
        let range = bench::run(&Workload::Range { serializable }, &options)
            .await
            .unwrap();
        assert_clean(&range, 300);
    }
    let txn = bench::run(&Workload::TxnPut { ops: 3 }, &options)
        .await
        .unwrap();
    assert_clean(&txn, 300);
    let keepalive = bench::run(&Workload::LeaseKeepalive, &options)
        .await
        .unwrap();
    assert_clean(&keepalive, 300);
    assert!(
        client.leases().await.unwrap().leases.is_empty(),
        "leases revoked"
    );

    let watch_options = Options {
        total: 100,
        rate: 500,
        ..options.clone()
    };
    let watch = bench::run(&Workload::Watch { watchers: 5 }, &watch_options)
        .await
        .unwrap();
    let check = watch.watch.clone().expect("the watch check");
    assert_eq!(
        (
            check.puts_acked,
            check.events_delivered,
            check.missing,
            check.duplicates
        ),
        (100, 500, 0, 0),
        "{}",
        watch.text()
    );
    assert_clean(&watch, 500);
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_and_dead_endpoints_are_counted_as_errors() {
    refused_requests_and_dead_endpoints_are_counted(Protocol::Gateway, "cannot connect").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_and_dead_endpoints_are_counted_as_errors_over_grpc() {
    refused_requests_and_dead_endpoints_are_counted(Protocol::Grpc, "gRPC Unavailable").await;
}

/// `dead` is what the failure of an operation on a dead endpoint's connection says.
async fn refused_requests_and_dead_endpoints_are_counted(protocol: Protocol, dead: &str) {
    let cluster = DevCluster::start_on_free_ports(1).await.expect("cluster");
    // Larger than --max-request-bytes (1.5 MiB) but within what gRPC decodes (0.5 MiB more):
    // every put is refused by keel, none is applied.
    let too_large = Options {
        val_size: 1_700_000,
        protocol,
        ..options(&cluster, 20)
    };
    let report = bench::run(&Workload::Put, &too_large).await.unwrap();
    assert_eq!((report.total, report.ok, report.errors), (20, 0, 20));
    let (message, count) = report.error_messages.iter().next().unwrap();
    assert!(message.contains("request is too large"), "{message}");
    assert_eq!(*count, 20);
    assert!(report.histogram.is_empty());

    // Half the connections go to a port nobody listens on. Paced, because a refused connect
    // returns at once: unpaced, the dead worker could take every operation before the live
    // one is first scheduled.
    let unbound = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", unbound.local_addr().unwrap());
    drop(unbound);
    let half_dead = Options {
        endpoints: vec![cluster.endpoints(), dead_url],
        clients: 2,
        conns: 2,
        total: 40,
        rate: 200,
        protocol,
        ..Options::default()
    };
    let report = bench::run(&Workload::Put, &half_dead).await.unwrap();
    assert_eq!(report.total, 40);
    assert!(report.ok > 0 && report.errors > 0, "{}", report.text());
    assert!(
        report.error_messages.keys().all(|m| m.contains(dead)),
        "{:?}",
        report.error_messages
    );
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_a_json_report() {
    let cluster = DevCluster::start_on_free_ports(1).await.expect("cluster");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args([
            "bench",
            "--endpoints",
            &cluster.endpoints(),
            "--clients",
            "4",
        ])
        .args([
            "txn-put",
            "--total",
            "50",
            "--key-space-size",
            "10",
            "-w",
            "json",
        ])
        .env_remove("ETCDCTL_ENDPOINTS")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("keel bench finishes")
        .expect("keel bench runs");
    assert!(output.status.success(), "{output:?}");
    let report: Report = serde_json::from_slice(&output.stdout).expect("one JSON report");
    assert_eq!(report.workload, "txn-put");
    assert_eq!((report.total, report.ok, report.errors), (50, 50, 0));
    assert!(report.ops_per_second > 0.0);
    cluster.stop().await.unwrap();
}

/// A single-member etcd 3.4 (`/usr/bin/etcd`, installed by scripts/install-test-deps.sh) in a
/// temporary directory, killed when dropped.
pub struct Etcd {
    /// Its client URL.
    pub endpoint: String,
    _process: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts it and waits until it serves.
    pub async fn start() -> Etcd {
        const ETCD: &str = "/usr/bin/etcd";
        assert!(
            std::path::Path::new(ETCD).exists(),
            "{ETCD} is missing: run scripts/install-test-deps.sh (apt-get install etcd-server)"
        );
        // etcd binds its own ports: take two free ones and hand them over (another process
        // could grab one in between; then etcd fails to start and the test says so).
        let free = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let (client, peer) = (free(), free());
        let dir = tempfile::tempdir().unwrap();
        let (client_url, peer_url) = (format!("http://{client}"), format!("http://{peer}"));
        let process = tokio::process::Command::new(ETCD)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--name", "bench", "--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .arg(format!("--initial-cluster=bench={peer_url}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("etcd starts");
        let etcd = Etcd {
            endpoint: client_url,
            _process: process,
            _dir: dir,
        };
        let client = Client::new(vec![etcd.endpoint.clone()], Default::default()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let probe = keel::api::models::RangeRequest {
            key: b"probe".to_vec(),
            ..Default::default()
        };
        while client.range(&probe).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "etcd at {} is not serving after 30 s",
                etcd.endpoint
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        etcd
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_mode_drives_a_real_etcd() {
    let etcd = Etcd::start().await;
    let options = Options {
        endpoints: vec![etcd.endpoint.clone()],
        clients: 4,
        conns: 2,
        total: 100,
        key_space_size: 20,
        sequential_keys: true,
        protocol: Protocol::Grpc,
        ..Options::default()
    };
    for workload in [
        Workload::Put,
        Workload::Range {
            serializable: false,
        },
        Workload::Range { serializable: true },
        Workload::TxnPut { ops: 2 },
        Workload::LeaseKeepalive,
    ] {
        let report = bench::run(&workload, &options).await.unwrap();
        assert_eq!(report.workload, workload.name());
        assert_clean(&report, 100);
    }
    let written = Client::new(options.endpoints.clone(), Default::default())
        .unwrap()
        .range(&keel::api::models::RangeRequest {
            key: bench::workload::key_of(0, 8),
            range_end: bench::workload::key_of(20, 8),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(written.count, 20, "the puts reached etcd");
    let watch = Options {
        total: 50,
        rate: 500,
        ..options
    };
    let report = bench::run(&Workload::Watch { watchers: 3 }, &watch)
        .await
        .unwrap();
    let check = report.watch.clone().expect("the watch check");
    assert_eq!((check.events_delivered, check.missing), (150, 0));
    assert_clean(&report, 150);
}
