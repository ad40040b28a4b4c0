//! Randomized client traffic recorded into the history: key-value clients (put, linearizable
//! get, delete, txn compare-and-swap), lease clients (grant, attach keys, revoke or let
//! expire) and watchers (from revision 1 or from the current revision, reopening on another
//! member from the revision after their last event when a stream breaks).
//!
//! Each client draws from its own generator seeded from the run's seed, so a seed gives the
//! same mix of operations (their interleaving with faults still depends on timing).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::api::models::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, EventType, PutRequest, RangeRequest,
    RequestOp, ResponseOp, TxnRequest, WatchCreateRequest,
};
use keel::client::{Client, Error};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cluster::options;
use super::history::{Op, Outcome, Recorder, WatchEvent, WatchRecord};

/// Keys of the key-value clients: few, so operations contend.
pub const KV_PREFIX: &str = "kv/";
/// Keys attached to leases: `lease/<id>/<n>`.
pub const LEASE_PREFIX: &str = "lease/";

/// What the traffic tasks share.
#[derive(Clone)]
pub struct Shared {
    /// The history.
    pub recorder: Recorder,
    /// Client URLs of the current members (membership changes update it).
    pub endpoints: Arc<Mutex<Vec<String>>>,
    /// Operations still to start; clients stop at zero once the faults are done.
    pub budget: Arc<AtomicI64>,
    /// Set when the fault schedule has ended.
    pub faults_done: Arc<AtomicBool>,
    /// Set when the run winds down: lease clients and watchers stop.
    pub stop: Arc<AtomicBool>,
    /// How many keys the key-value clients use.
    pub keys: usize,
}

impl Shared {
    /// A client of the current members, starting at a random one.
    fn client(&self, rng: &mut StdRng) -> Client {
        let mut endpoints = self.endpoints.lock().unwrap().clone();
        let first = rng.gen_range(0..endpoints.len());
        endpoints.rotate_left(first);
        Client::new(endpoints, options()).unwrap()
    }

    fn take_one(&self) -> bool {
        self.budget.fetch_sub(1, Ordering::SeqCst) > 0 || !self.faults_done.load(Ordering::SeqCst)
    }
}

/// How a failed write is recorded: only what the client says did not reach the cluster (or a
/// definite error answer) is a failure; a lost answer is indefinite.
fn write_failure(error: Error) -> Outcome {
    match error {
        Error::Uncertain { .. } | Error::Malformed { .. } => Outcome::Indefinite(error.to_string()),
        _ => Outcome::Failed(error.to_string()),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `op` against the cluster and classifies the answer.
pub async fn execute(client: &Client, op: &Op) -> Outcome {
    match op {
        Op::Put { key, value } => {
            let request = PutRequest {
                key: key.clone().into_bytes(),
                value: value.clone().into_bytes(),
                ..Default::default()
            };
            match client.put(&request).await {
                Ok(answer) => Outcome::Written {
                    revision: answer.header.revision,
                    deleted: false,
                },
                Err(e) => write_failure(e),
            }
        }
        Op::Get { key } => {
            let request = RangeRequest {
                key: key.clone().into_bytes(),
                ..Default::default()
            };
            match client.range(&request).await {
                Ok(answer) => Outcome::Read {
                    value: answer.kvs.first().map(|kv| text(&kv.value)),
                },
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
        Op::Delete { key } => {
            let request = DeleteRangeRequest {
                key: key.clone().into_bytes(),
                ..Default::default()
            };
            match client.delete_range(&request).await {
                Ok(answer) => Outcome::Written {
                    revision: answer.header.revision,
                    deleted: answer.deleted > 0,
                },
                Err(e) => write_failure(e),
            }
        }
        Op::Cas { key, expected, new } => {
            let compare = match expected {
                Some(value) => Compare {
                    result: CompareResult::Equal,
                    target: CompareTarget::Value,
                    key: key.clone().into_bytes(),
                    value: value.clone().into_bytes(),
                    ..Default::default()
                },
                None => Compare {
                    result: CompareResult::Equal,
                    target: CompareTarget::Version,
                    key: key.clone().into_bytes(),
                    version: 0,
                    ..Default::default()
                },
            };
            let request = TxnRequest {
                compare: vec![compare],
                success: vec![RequestOp::RequestPut(PutRequest {
                    key: key.clone().into_bytes(),
                    value: new.clone().into_bytes(),
                    ..Default::default()
                })],
                failure: vec![RequestOp::RequestRange(RangeRequest {
                    key: key.clone().into_bytes(),
                    ..Default::default()
                })],
            };
            match client.txn(&request).await {
                Ok(answer) => {
                    let current = match answer.responses.first() {
                        Some(ResponseOp::ResponseRange(range)) => {
                            range.kvs.first().map(|kv| text(&kv.value))
                        }
                        _ => None,
                    };
                    Outcome::Swapped {
                        succeeded: answer.succeeded,
                        revision: answer.header.revision,
                        current,
                    }
                }
                Err(e) => write_failure(e),
            }
        }
    }
}

/// A key-value client: operations on random keys until the budget is spent.
pub async fn kv_client(shared: Shared, client_id: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(client_id as u64));
    let mut last_seen: HashMap<String, Option<String>> = HashMap::new();
    let mut sequence = 0;
    while shared.take_one() {
        let key = format!("{KV_PREFIX}{}", rng.gen_range(0..shared.keys));
        sequence += 1;
        let value = format!("c{client_id}-{sequence}");
        let op = match rng.gen_range(0..100) {
            0..=29 => Op::Put {
                key: key.clone(),
                value,
            },
            30..=59 => Op::Get { key: key.clone() },
            60..=69 => Op::Delete { key: key.clone() },
            _ => Op::Cas {
                key: key.clone(),
                expected: last_seen.get(&key).cloned().flatten(),
                new: value,
            },
        };
        let client = shared.client(&mut rng);
        let invoked = shared.recorder.now();
        let outcome = execute(&client, &op).await;
        // Remember what this client last knew of the key, for its next compare.
        match (&op, &outcome) {
            (Op::Put { value, .. }, Outcome::Written { .. }) => {
                last_seen.insert(key, Some(value.clone()));
            }
            (Op::Get { .. }, Outcome::Read { value }) => {
                last_seen.insert(key, value.clone());
            }
            (Op::Delete { .. }, Outcome::Written { .. }) => {
                last_seen.insert(key, None);
            }
            (
                Op::Cas { new, .. },
                Outcome::Swapped {
                    succeeded, current, ..
                },
            ) => {
                let now = if *succeeded {
                    Some(new.clone())
                } else {
                    current.clone()
                };
                last_seen.insert(key, now);
            }
            _ => {}
        }
        shared.recorder.record(client_id, op, invoked, outcome);
    }
}

/// A lease and what was attached to it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LeaseRecord {
    /// The lease id.
    pub id: i64,
    /// The TTL it was granted with, seconds.
    pub ttl: i64,
    /// When the grant was invoked, ns since the start.
    pub granted: u64,
    /// Keys put with it (acknowledged or not).
    pub keys: Vec<String>,
    /// A revoke: its outcome (`Written` with the revision when acknowledged).
    pub revoke: Option<Outcome>,
}

/// A lease client: grants short leases, attaches keys, then revokes some and lets the others
/// expire, until the run stops. Key puts go into the history (they are writes like any other).
pub async fn lease_client(shared: Shared, client_id: usize, seed: u64) -> Vec<LeaseRecord> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(7919).wrapping_add(client_id as u64));
    let mut leases = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) && shared.take_one() {
        let client = shared.client(&mut rng);
        let granted = shared.recorder.now();
        let ttl = rng.gen_range(2..=3);
        let Ok(grant) = client.lease_grant(ttl, 0).await else {
            // An unacknowledged grant may exist; it holds no keys and simply expires.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut record = LeaseRecord {
            id: grant.id,
            ttl: grant.ttl,
            granted,
            keys: Vec::new(),
            revoke: None,
        };
        for n in 0..rng.gen_range(1..=3) {
            let key = format!("{LEASE_PREFIX}{:x}/{n}", grant.id);
            let value = format!("l{client_id}-{:x}-{n}", grant.id);
            let request = PutRequest {
                key: key.clone().into_bytes(),
                value: value.clone().into_bytes(),
                lease: grant.id,
                ..Default::default()
            };
            let invoked = shared.recorder.now();
            let outcome = match client.put(&request).await {
                Ok(answer) => Outcome::Written {
                    revision: answer.header.revision,
                    deleted: false,
                },
                Err(e) => write_failure(e),
            };
            record.keys.push(key.clone());
            shared
                .recorder
                .record(client_id, Op::Put { key, value }, invoked, outcome);
        }
        if rng.gen_bool(0.5) {
            let outcome = match client.lease_revoke(grant.id).await {
                Ok(answer) => Outcome::Written {
                    revision: answer.header.revision,
                    deleted: true,
                },
                Err(e) => write_failure(e),
            };
            record.revoke = Some(outcome);
        }
        leases.push(record);
    }
    leases
}

/// A watcher of `prefix` from `start_revision` until it has seen `until` (a key the run puts
/// last) after the run stopped.
pub async fn watcher(
    shared: Shared,
    watcher_id: usize,
    seed: u64,
    prefix: String,
    start_revision: i64,
    until: String,
) -> (WatchRecord, Vec<u64>) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(104_729).wrapping_add(watcher_id as u64));
    let mut record = WatchRecord {
        watcher: watcher_id,
        prefix: prefix.clone(),
        start_revision,
        ..Default::default()
    };
    let mut received = Vec::new();
    let mut next = start_revision;
    let range_end = prefix_end(prefix.as_bytes());
    'sessions: loop {
        let endpoints = shared.endpoints.lock().unwrap().clone();
        let endpoint = endpoints[rng.gen_range(0..endpoints.len())].clone();
        let client = Client::new(vec![endpoint.clone()], options()).unwrap();
        let request = WatchCreateRequest {
            key: prefix.clone().into_bytes(),
            range_end: range_end.clone(),
            start_revision: next,
            ..Default::default()
        };
        let mut watch = match client.watch(request).await {
            Ok(watch) => watch,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        record.members.push(endpoint);
        // A quiet stream may be a member cut off from the others: move on now and then.
        while let Ok(Some(Ok(response))) =
            tokio::time::timeout(Duration::from_secs(3), watch.next()).await
        {
            if response.canceled && response.compact_revision > 0 {
                record.compacted = Some((next, response.compact_revision));
                break 'sessions;
            }
            for event in response.events {
                let key = text(&event.kv.key);
                let done = key == until && shared.stop.load(Ordering::SeqCst);
                next = event.kv.mod_revision + 1;
                record.events.push(WatchEvent {
                    revision: event.kv.mod_revision,
                    key,
                    value: (event.kind == EventType::Put).then(|| text(&event.kv.value)),
                });
                received.push(shared.recorder.now());
                if done {
                    break 'sessions;
                }
            }
        }
    }
    (record, received)
}

/// The end of the range of every key starting with `prefix` (etcd's `--prefix`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every key: etcd's "\0".
    vec![0]
}
