//! keel's snapshot format against etcd's, side by side: export and import of one keyspace,
//! alternating the two formats round by round so the machine's noise falls on both alike.
//! Prints each format's median time and size, and the ratio etcd / keel.
//!
//! How to run:
//! `CARGO_TARGET_DIR=/tmp/keel-release cargo bench -p keel-store --bench snapshot_formats`
//! (`KEYS=200000 ROUNDS=9` to change the keyspace's size and the rounds).

use std::io::Cursor;
use std::time::{Duration, Instant};

use keel_store::{Command, Config, EtcdImportOptions, PutRequest, Store};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `keys` keys of 100 bytes, a quarter of them written twice, in batches as Raft applies.
fn keyspace(keys: usize) -> Store {
    let store = Store::temporary(Config::default()).expect("store");
    let puts: Vec<Command> = (0..keys)
        .chain((0..keys).step_by(4))
        .map(|i| {
            Command::Put(PutRequest {
                key: format!("/registry/pods/default/pod-{i:08}").into_bytes(),
                value: vec![b'v'; 100],
                ..PutRequest::default()
            })
        })
        .collect();
    for batch in puts.chunks(256) {
        store.apply_batch(batch, None).expect("apply");
    }
    store
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // as a smoke test, which a small keyspace and one round serve.
    let benching = std::env::args().any(|arg| arg == "--bench");
    let keys = env_or("KEYS", if benching { 100_000 } else { 1_000 });
    let rounds = env_or("ROUNDS", if benching { 7 } else { 1 });
    let store = keyspace(keys);
    let (mut keel_export, mut etcd_export) = (Vec::new(), Vec::new());
    let (mut keel_import, mut etcd_import) = (Vec::new(), Vec::new());
    let (mut keel_size, mut etcd_size) = (0, 0);
    for _ in 0..rounds {
        let started = Instant::now();
        let mut keel = Vec::new();
        store.export(&mut keel).expect("keel export");
        keel_export.push(started.elapsed());

        let started = Instant::now();
        let point = store.export_point().expect("export point");
        let (_, etcd) = point
            .write_etcd(Cursor::new(Vec::new()))
            .expect("etcd export");
        etcd_export.push(started.elapsed());
        let etcd = etcd.into_inner();

        let target = Store::temporary(Config::default()).expect("store");
        let started = Instant::now();
        target.import(&mut &keel[..]).expect("keel import");
        target.flush().expect("flush");
        keel_import.push(started.elapsed());

        let target = Store::temporary(Config::default()).expect("store");
        let started = Instant::now();
        target
            .import_etcd(Cursor::new(&etcd[..]), &EtcdImportOptions::default())
            .expect("etcd import");
        target.flush().expect("flush");
        etcd_import.push(started.elapsed());
        (keel_size, etcd_size) = (keel.len(), etcd.len());
    }
    let report = |what: &str, keel: Duration, etcd: Duration| {
        println!(
            "{what:<7} keel {keel:>10.2?}  etcd {etcd:>10.2?}  etcd/keel {:.2}",
            etcd.as_secs_f64() / keel.as_secs_f64()
        );
    };
    println!(
        "{keys} keys ({} writes), {rounds} rounds, medians",
        keys + keys / 4
    );
    report("export", median(keel_export), median(etcd_export));
    report("import", median(keel_import), median(etcd_import));
    println!(
        "size    keel {keel_size} bytes  etcd {etcd_size} bytes  etcd/keel {:.2}",
        etcd_size as f64 / keel_size as f64
    );
}
