//! The keyspace against an in-memory model of every revision: random puts, deletes, txns,
//! compactions, leases and restarts; after each step ranges at the current and at a random
//! retained revision agree with the model, and a watcher sees exactly the model's events.

use std::collections::{BTreeMap, BTreeSet};

use keel_store::*;
use proptest::prelude::*;

const KEYS: [&str; 6] = ["a", "aa", "ab", "b", "ba", "c"];
const LEASES: i64 = 3;

#[derive(Clone, Debug)]
enum Op {
    Put {
        key: usize,
        value: u8,
        lease: i64,
    },
    Delete {
        key: usize,
    },
    DeletePrefix {
        prefix: usize,
    },
    Txn {
        compare_key: usize,
        version: i64,
        success: Vec<TxnOp>,
        failure: Vec<TxnOp>,
    },
    Compact {
        at: u64,
    },
    Grant {
        id: i64,
    },
    Revoke {
        id: i64,
    },
    Restart,
}

#[derive(Clone, Debug)]
enum TxnOp {
    Put { key: usize, value: u8 },
    Delete { key: usize },
    Range { prefix: usize },
}

fn txn_op() -> impl Strategy<Value = TxnOp> {
    prop_oneof![
        3 => (0..KEYS.len(), any::<u8>()).prop_map(|(key, value)| TxnOp::Put { key, value }),
        1 => (0..KEYS.len()).prop_map(|key| TxnOp::Delete { key }),
        1 => (0..3usize).prop_map(|prefix| TxnOp::Range { prefix }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..KEYS.len(), any::<u8>(), 0..=LEASES)
            .prop_map(|(key, value, lease)| Op::Put { key, value, lease }),
        2 => (0..KEYS.len()).prop_map(|key| Op::Delete { key }),
        1 => (0..3usize).prop_map(|prefix| Op::DeletePrefix { prefix }),
        3 => (
            0..KEYS.len(),
            0..3i64,
            prop::collection::vec(txn_op(), 0..4),
            prop::collection::vec(txn_op(), 0..4)
        )
            .prop_map(|(compare_key, version, success, failure)| Op::Txn {
                compare_key,
                version,
                success,
                failure
            }),
        1 => any::<u64>().prop_map(|at| Op::Compact { at }),
        2 => (1..=LEASES).prop_map(|id| Op::Grant { id }),
        1 => (1..=LEASES).prop_map(|id| Op::Revoke { id }),
        1 => Just(Op::Restart),
    ]
}

/// The prefix ranges the ops use: "a*", "b*", everything.
fn prefix_range(prefix: usize) -> (Vec<u8>, Vec<u8>) {
    match prefix {
        0 => (b"a".to_vec(), b"b".to_vec()),
        1 => (b"b".to_vec(), b"c".to_vec()),
        _ => (b"\0".to_vec(), b"\0".to_vec()),
    }
}

fn in_range(key: &[u8], (start, end): &(Vec<u8>, Vec<u8>)) -> bool {
    key >= start.as_slice() && (end.as_slice() == b"\0" || key < end.as_slice())
}

type State = BTreeMap<Vec<u8>, KeyValue>;

#[derive(Default)]
struct Model {
    /// `states[r]` is the keyspace at revision r (index 0 unused).
    states: Vec<State>,
    compacted: i64,
    leases: BTreeSet<i64>,
    /// Every event with the key's previous value.
    events: Vec<(EventType, KeyValue, Option<KeyValue>)>,
}

/// One command's writes against the model, built like the store builds its batch.
struct Writes<'a> {
    state: State,
    revision: i64,
    events: Vec<(EventType, KeyValue, Option<KeyValue>)>,
    leases: &'a BTreeSet<i64>,
}

impl Writes<'_> {
    fn put(&mut self, key: &[u8], value: u8, lease: i64) -> Result<()> {
        if lease != 0 && !self.leases.contains(&lease) {
            return Err(Error::LeaseNotFound { id: lease });
        }
        let prev = self.state.get(key).cloned();
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision: prev.as_ref().map_or(self.revision, |p| p.create_revision),
            mod_revision: self.revision,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: vec![value],
            lease,
        };
        self.state.insert(key.to_vec(), kv.clone());
        self.events.push((EventType::Put, kv, prev));
        Ok(())
    }

    fn delete(&mut self, range: &(Vec<u8>, Vec<u8>)) {
        let doomed: Vec<Vec<u8>> = self
            .state
            .keys()
            .filter(|k| in_range(k, range))
            .cloned()
            .collect();
        for key in doomed {
            let prev = self.state.remove(&key);
            let kv = KeyValue {
                key,
                mod_revision: self.revision,
                ..KeyValue::default()
            };
            self.events.push((EventType::Delete, kv, prev));
        }
    }
}

impl Model {
    fn new() -> Model {
        Model {
            states: vec![State::new(), State::new()],
            ..Model::default()
        }
    }

    fn current(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    fn writes(&self) -> Writes<'_> {
        Writes {
            state: self.states[self.states.len() - 1].clone(),
            revision: self.current() + 1,
            events: Vec::new(),
            leases: &self.leases,
        }
    }

    fn commit(&mut self, state: State, events: Vec<(EventType, KeyValue, Option<KeyValue>)>) {
        if !events.is_empty() {
            self.states.push(state);
            self.events.extend(events);
        }
    }

    /// What the store should answer (Ok(()) or the client error).
    fn apply(&mut self, op: &Op) -> Result<()> {
        match op {
            Op::Put { key, value, lease } => {
                let mut w = self.writes();
                w.put(KEYS[*key].as_bytes(), *value, *lease)?;
                let (state, events) = (w.state, w.events);
                self.commit(state, events);
            }
            Op::Delete { key } => {
                let mut w = self.writes();
                w.delete(&(KEYS[*key].as_bytes().to_vec(), {
                    let mut end = KEYS[*key].as_bytes().to_vec();
                    end.push(0);
                    end
                }));
                let (state, events) = (w.state, w.events);
                self.commit(state, events);
            }
            Op::DeletePrefix { prefix } => {
                let mut w = self.writes();
                w.delete(&prefix_range(*prefix));
                let (state, events) = (w.state, w.events);
                self.commit(state, events);
            }
            Op::Txn {
                compare_key,
                version,
                success,
                failure,
            } => {
                let current = &self.states[self.states.len() - 1];
                let actual = current
                    .get(KEYS[*compare_key].as_bytes())
                    .map_or(0, |kv| kv.version);
                let branch = if actual == *version { success } else { failure };
                let mut puts = BTreeSet::new();
                for op in branch {
                    if let TxnOp::Put { key, .. } = op {
                        if !puts.insert(*key) {
                            return Err(Error::DuplicateKey);
                        }
                    }
                }
                for op in branch {
                    if let TxnOp::Delete { key } = op {
                        if puts.contains(key) {
                            return Err(Error::DuplicateKey);
                        }
                    }
                }
                let mut w = self.writes();
                for op in branch {
                    match op {
                        TxnOp::Put { key, value } => w.put(KEYS[*key].as_bytes(), *value, 0)?,
                        TxnOp::Delete { key } => {
                            let mut end = KEYS[*key].as_bytes().to_vec();
                            end.push(0);
                            w.delete(&(KEYS[*key].as_bytes().to_vec(), end));
                        }
                        TxnOp::Range { .. } => {}
                    }
                }
                let (state, events) = (w.state, w.events);
                self.commit(state, events);
            }
            Op::Compact { at } => {
                let revision = self.compact_target(*at);
                if revision <= self.compacted {
                    return Err(Error::Compacted {
                        compact_revision: self.compacted,
                    });
                }
                self.compacted = revision;
            }
            Op::Grant { id } => {
                if !self.leases.insert(*id) {
                    return Err(Error::LeaseExists { id: *id });
                }
            }
            Op::Revoke { id } => {
                if !self.leases.contains(id) {
                    return Err(Error::LeaseNotFound { id: *id });
                }
                let mut w = self.writes();
                let attached: Vec<Vec<u8>> = w
                    .state
                    .values()
                    .filter(|kv| kv.lease == *id)
                    .map(|kv| kv.key.clone())
                    .collect();
                for key in attached {
                    let mut end = key.clone();
                    end.push(0);
                    w.delete(&(key, end));
                }
                let (state, events) = (w.state, w.events);
                self.commit(state, events);
                self.leases.remove(id);
            }
            Op::Restart => {}
        }
        Ok(())
    }

    /// A compaction target: usually a retained revision, sometimes an already compacted one.
    fn compact_target(&self, at: u64) -> i64 {
        let span = (self.current() + 1) as u64;
        (at % span) as i64
    }
}

fn command(op: &Op, model: &Model) -> Option<Command> {
    let put = |key: usize, value: u8, lease: i64| PutRequest {
        key: KEYS[key].into(),
        value: vec![value],
        lease,
        ..PutRequest::default()
    };
    Some(match op {
        Op::Put { key, value, lease } => Command::Put(put(*key, *value, *lease)),
        Op::Delete { key } => Command::DeleteRange(DeleteRangeRequest {
            key: KEYS[*key].into(),
            ..DeleteRangeRequest::default()
        }),
        Op::DeletePrefix { prefix } => {
            let (key, range_end) = prefix_range(*prefix);
            Command::DeleteRange(DeleteRangeRequest {
                key,
                range_end,
                prev_kv: true,
            })
        }
        Op::Txn {
            compare_key,
            version,
            success,
            failure,
        } => {
            let ops = |ops: &[TxnOp]| {
                ops.iter()
                    .map(|op| match op {
                        TxnOp::Put { key, value } => RequestOp::Put(put(*key, *value, 0)),
                        TxnOp::Delete { key } => RequestOp::DeleteRange(DeleteRangeRequest {
                            key: KEYS[*key].into(),
                            ..DeleteRangeRequest::default()
                        }),
                        TxnOp::Range { prefix } => {
                            let (key, range_end) = prefix_range(*prefix);
                            RequestOp::Range(RangeRequest {
                                key,
                                range_end,
                                ..RangeRequest::default()
                            })
                        }
                    })
                    .collect()
            };
            Command::Txn(TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Equal,
                    target: CompareTarget::Version(*version),
                    key: KEYS[*compare_key].into(),
                    range_end: Vec::new(),
                }],
                success: ops(success),
                failure: ops(failure),
            })
        }
        Op::Compact { at } => Command::Compact {
            revision: model.compact_target(*at),
        },
        Op::Grant { id } => Command::LeaseGrant { id: *id, ttl: 10 },
        Op::Revoke { id } => Command::LeaseRevoke { id: *id },
        Op::Restart => return None,
    })
}

fn all_at(store: &Store, revision: i64) -> Vec<KeyValue> {
    store
        .range(&RangeRequest {
            key: b"\0".to_vec(),
            range_end: b"\0".to_vec(),
            revision,
            ..RangeRequest::default()
        })
        .expect("range")
        .kvs
}

fn watch_from(store: &Store, start_revision: i64) -> Watcher {
    store
        .watch(WatchRequest {
            key: b"\0".to_vec(),
            range_end: b"\0".to_vec(),
            start_revision,
            prev_kv: true,
            ..WatchRequest::default()
        })
        .expect("watch")
}

/// Reads updates until the watcher has delivered as many events as the model holds (an
/// update always carries events, so waiting for more would hang).
fn drain(
    runtime: &tokio::runtime::Runtime,
    watcher: &mut Watcher,
    expected: usize,
    seen: &mut Vec<(EventType, KeyValue, Option<KeyValue>)>,
) {
    while seen.len() < expected {
        let update = runtime
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(5), watcher.next()).await
            })
            .unwrap_or_else(|_| {
                panic!(
                    "watcher stalled at {} with {} of {expected} events",
                    watcher.next_revision(),
                    seen.len()
                )
            });
        match update {
            Some(WatchUpdate::Events { events, .. }) => {
                seen.extend(events.into_iter().map(|e| (e.kind, e.kv, e.prev_kv)));
            }
            other => panic!("watcher: unexpected {other:?}"),
        }
    }
}

fn run(ops: Vec<Op>, picks: Vec<u64>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let config = Config {
        watch_cache_revisions: 16,
        ..Config::default()
    };
    let mut store = Store::open(dir.path(), config.clone()).expect("open");
    let mut model = Model::new();
    let mut watcher = watch_from(&store, 1);
    let mut seen = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match command(op, &model) {
            None => {
                drain(&runtime, &mut watcher, model.events.len(), &mut seen);
                let next = watcher.next_revision();
                drop(watcher);
                drop(store);
                store = Store::open(dir.path(), config.clone()).expect("reopen");
                watcher = watch_from(&store, next);
            }
            Some(command) => {
                let expected = model.apply(op);
                let applied = store.apply(&command, None).expect("storage");
                assert_eq!(
                    applied.result.as_ref().err(),
                    expected.as_ref().err(),
                    "step {step}: {op:?}"
                );
                assert_eq!(applied.revision, model.current(), "step {step}: {op:?}");
            }
        }
        assert_eq!(store.current_revision(), model.current());
        assert_eq!(store.compact_revision(), model.compacted);
        let current: Vec<KeyValue> = model.states[model.states.len() - 1]
            .values()
            .cloned()
            .collect();
        assert_eq!(all_at(&store, 0), current, "step {step}: current state");
        let oldest = model.compacted.max(1);
        let pick = picks[step % picks.len()];
        let revision = oldest + (pick % (model.current() - oldest + 1) as u64) as i64;
        let expected: Vec<KeyValue> = model.states[revision as usize].values().cloned().collect();
        assert_eq!(
            all_at(&store, revision),
            expected,
            "step {step}: state at revision {revision}"
        );
        for id in 1..=LEASES {
            let keys = store.lease(id).expect("lease").map(|l| l.keys);
            let expected = model.leases.contains(&id).then(|| {
                current
                    .iter()
                    .filter(|kv| kv.lease == id)
                    .map(|kv| kv.key.clone())
                    .collect::<Vec<_>>()
            });
            assert_eq!(keys, expected, "step {step}: lease {id}");
        }
        drain(&runtime, &mut watcher, model.events.len(), &mut seen);
    }
    assert_eq!(seen, model.events, "watched events");
}

/// The same commands applied one by one and as batches (as Raft entries carry them, where
/// runs of puts, deletes and txns share one sled batch) give the same outcomes and revisions,
/// the same state at every retained revision, and the same watch events.
fn batches_apply_like_one_by_one(ops: Vec<Op>, sizes: Vec<usize>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let config = Config {
        watch_cache_revisions: 16,
        ..Config::default()
    };
    let one_by_one = Store::temporary(config.clone()).expect("store");
    let batched = Store::temporary(config).expect("store");
    let mut watchers = [watch_from(&one_by_one, 1), watch_from(&batched, 1)];
    let mut seen = [Vec::new(), Vec::new()];
    let mut model = Model::new();
    let mut ops = ops
        .iter()
        .filter(|op| !matches!(op, Op::Restart))
        .peekable();
    for (entry, size) in sizes.iter().cycle().enumerate() {
        let mut commands = Vec::new();
        // A compaction starts an entry: the watchers, drained after each entry, would find
        // the events of the entry's earlier writes compacted away before they read them.
        while let Some(op) = ops.next_if(|op| {
            commands.len() < *size && (commands.is_empty() || !matches!(op, Op::Compact { .. }))
        }) {
            commands.extend(command(op, &model));
            let _ = model.apply(op);
        }
        if commands.is_empty() {
            break;
        }
        let expected: Vec<Applied> = commands
            .iter()
            .map(|c| one_by_one.apply(c, None).expect("storage"))
            .collect();
        let marker = format!("entry-{entry}");
        let applied = batched
            .apply_batch(&commands, Some(marker.as_bytes()))
            .expect("storage");
        assert_eq!(applied, expected, "entry {entry}: {commands:?}");
        assert_eq!(batched.current_revision(), model.current());
        assert_eq!(batched.compact_revision(), model.compacted);
        assert_eq!(batched.marker().expect("marker"), Some(marker.into_bytes()));
        for (watcher, seen) in watchers.iter_mut().zip(&mut seen) {
            drain(&runtime, watcher, model.events.len(), seen);
        }
    }
    for revision in model.compacted.max(1)..=model.current() {
        assert_eq!(
            all_at(&batched, revision),
            all_at(&one_by_one, revision),
            "revision {revision}"
        );
    }
    assert_eq!(batched.hash_kv(0).unwrap(), one_by_one.hash_kv(0).unwrap());
    assert_eq!(seen[1], seen[0], "watched events");
    assert_eq!(seen[0], model.events, "watched events");
}

/// An export fixed at a point is the keyspace at that point, however many puts, deletes and
/// transactions land while it is written: restored elsewhere, it equals a keyspace that
/// applied only the commands before the point.
fn export_at_a_point_ignores_later_writes(ops: Vec<Op>, split: prop::sample::Index) {
    let ops: Vec<Op> = ops
        .into_iter()
        .filter(|op| !matches!(op, Op::Restart))
        .collect();
    let split = split.index(ops.len() + 1);
    let source = Store::temporary(Config::default()).expect("store");
    let reference = Store::temporary(Config::default()).expect("store");
    let mut model = Model::new();
    for op in &ops[..split] {
        if let Some(command) = command(op, &model) {
            let applied = source.apply(&command, Some(b"before")).expect("storage");
            assert_eq!(
                reference.apply(&command, Some(b"before")).expect("storage"),
                applied
            );
        }
        let _ = model.apply(op);
    }
    let point = source.export_point().expect("export point");
    assert_eq!(point.revision(), reference.current_revision());
    // What may land while an export is written: compactions, leases and auth wait for it.
    for op in &ops[split..] {
        if let Some(command @ (Command::Put(_) | Command::DeleteRange(_) | Command::Txn(_))) =
            command(op, &model)
        {
            source
                .apply_batch(std::slice::from_ref(&command), Some(b"after"))
                .expect("storage");
            let _ = model.apply(op);
        }
    }
    let mut stream = Vec::new();
    point.write(&mut stream).expect("export");
    let restored = Store::temporary(Config::default()).expect("store");
    restored.import(&mut stream.as_slice()).expect("import");

    let export = |store: &Store| {
        let mut out = Vec::new();
        store.export(&mut out).expect("export");
        out
    };
    assert!(export(&restored) == export(&reference), "exports differ");
    assert_eq!(restored.marker().unwrap(), reference.marker().unwrap());
    assert_eq!(restored.current_revision(), reference.current_revision());
    assert_eq!(restored.compact_revision(), reference.compact_revision());
    assert_eq!(restored.hash_kv(0).unwrap(), reference.hash_kv(0).unwrap());
    assert_eq!(restored.leases().unwrap(), reference.leases().unwrap());
    for revision in reference.compact_revision().max(1)..=reference.current_revision() {
        assert_eq!(
            all_at(&restored, revision),
            all_at(&reference, revision),
            "revision {revision}"
        );
    }
    for id in 1..=LEASES {
        assert_eq!(restored.lease(id).unwrap(), reference.lease(id).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn an_export_is_the_keyspace_at_its_point(
        ops in prop::collection::vec(op(), 1..150),
        split in any::<prop::sample::Index>(),
    ) {
        export_at_a_point_ignores_later_writes(ops, split);
    }

    #[test]
    fn a_batch_applies_like_its_commands_one_by_one(
        ops in prop::collection::vec(op(), 1..200),
        sizes in prop::collection::vec(1..12usize, 1..8),
    ) {
        batches_apply_like_one_by_one(ops, sizes);
    }

    #[test]
    fn keyspace_matches_model(
        ops in prop::collection::vec(op(), 1..200),
        picks in prop::collection::vec(any::<u64>(), 1..16),
    ) {
        run(ops, picks);
    }
}
