//! The linearizability checker of the KV model, and the durability check of acknowledged
//! writes against the committed history.
//!
//! Every operation of a chaos run touches one key, so the history is checked key by key
//! (linearizability is compositional: a history is linearizable iff each key's sub-history is).
//! Per key the search is Wing & Gong's, with Lowe's memoization: a configuration is the set of
//! operations linearized so far and the model's state (the key's value); one already seen is
//! not explored again. An operation may be linearized next if it was invoked before every
//! pending definite operation returned. The search succeeds once every definite operation is
//! linearized: an indefinite one (its answer never came) may take effect at any point after its
//! invocation, or never, so it is a candidate forever and never required.
//!
//! Indefinite writes, made cheap: values are unique, so an indefinite write whose value some
//! answer showed did take effect, before that answer returned; it is searched as a definite
//! operation with that return. One whose value nobody saw is first left out (it never took
//! effect, one of its possible outcomes, so a linearization found is one of the whole
//! history); only if that fails is the search repeated with it as a candidate forever
//! (a delete that reported removing the key may have needed it). An indefinite put whose
//! value nobody observed, on a key no delete ever reported removing, is always left out: a
//! linearization using it has no observer between it and the next write.
//!
//! Indefinite operations settled by the committed history. After a run every member serves
//! every event from revision 1 (the run checks they agree), and that is what did happen: an
//! indefinite write whose value is there took effect (searched as definite, answering by the
//! end of the history at the latest), one whose value is not never did (left out, so a read
//! of it fails the check). A committed delete no acknowledged delete accounts for was made by
//! one of the key's indefinite deletes (attributed earliest-invoked first, which constrains
//! the search least), and the indefinite deletes left over removed nothing or never ran, so
//! they are left out. etcd's robustness suite settles its histories with watch events the same
//! way; it leaves the search almost nothing to guess.
//!
//! The search has a budget of configurations; running out is reported as undecided, which the
//! run treats as a failure to decide, not as a pass.

use std::collections::{HashMap, HashSet};

use super::history::{Entry, Op, Outcome, WatchEvent};

/// Why a history is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// No linearization of `key`'s operations exists; `entries` is the shortest prefix of
    /// the key's history (by time) that already has none, and `last` the operation whose
    /// answer made it impossible.
    NotLinearizable {
        key: String,
        last: Entry,
        entries: Vec<Entry>,
    },
    /// The search of `key` ran out of budget after `explored` configurations.
    Undecided { key: String, explored: u64 },
}

/// The result of checking a whole history.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// Keys checked.
    pub keys: usize,
    /// Operations the search considered (after dropping failed ones and pruning).
    pub operations: usize,
    /// Configurations explored over all keys.
    pub explored: u64,
    /// What was wrong, one per key at most.
    pub problems: Vec<Problem>,
}

/// Checks every key of `entries`, each within `budget` configurations. With the `committed`
/// history (every event from revision 1), indefinite operations are first settled by it.
pub fn check(entries: &[Entry], committed: Option<&[WatchEvent]>, budget: u64) -> Checked {
    let settled;
    let entries = match committed {
        Some(committed) => {
            settled = settle(entries, committed);
            &settled[..]
        }
        None => entries,
    };
    let mut by_key: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for entry in entries {
        by_key.entry(entry.op.key()).or_default().push(entry);
    }
    let mut keys: Vec<_> = by_key.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    let mut checked = Checked::default();
    for (key, entries) in keys {
        checked.keys += 1;
        checked.operations += entries.len();
        match Calls::decide(&entries, budget) {
            Search::Linearizable(explored) => checked.explored += explored,
            Search::Undecided(explored) => {
                checked.explored += explored;
                checked.problems.push(Problem::Undecided {
                    key: key.to_owned(),
                    explored,
                });
            }
            Search::Impossible(explored) => {
                checked.explored += explored;
                let (last, prefix) = shortest_failing_prefix(&entries, budget);
                checked.problems.push(Problem::NotLinearizable {
                    key: key.to_owned(),
                    last,
                    entries: prefix,
                });
            }
        }
    }
    checked
}

/// `entries` with every indefinite outcome the committed history decides replaced by what it
/// shows (see the module doc).
fn settle(entries: &[Entry], committed: &[WatchEvent]) -> Vec<Entry> {
    let applied: HashMap<&str, i64> = committed
        .iter()
        .filter_map(|e| Some((e.value.as_deref()?, e.revision)))
        .collect();
    // Per key, the committed deletes no acknowledged delete accounts for: each was made by one
    // of the key's indefinite deletes.
    let acknowledged: HashSet<(&str, i64)> = entries
        .iter()
        .filter_map(|e| match (&e.op, &e.outcome) {
            (
                Op::Delete { key },
                Outcome::Written {
                    revision,
                    deleted: true,
                },
            ) => Some((key.as_str(), *revision)),
            _ => None,
        })
        .collect();
    let mut unaccounted: HashMap<&str, Vec<i64>> = HashMap::new();
    for event in committed.iter().filter(|e| e.value.is_none()) {
        if !acknowledged.contains(&(event.key.as_str(), event.revision)) {
            unaccounted
                .entry(&event.key)
                .or_default()
                .push(event.revision);
        }
    }
    // Which indefinite delete made which: the earliest invoked the lowest revision, and so on.
    // Any other attribution only invokes some delete later, so this one leaves the search the
    // most freedom; the indefinite deletes left over removed nothing, or never ran.
    let mut delete_revision: HashMap<usize, i64> = HashMap::new();
    for (key, revisions) in &mut unaccounted {
        revisions.sort_unstable();
        let mut indefinite: Vec<&Entry> = entries
            .iter()
            .filter(|e| {
                e.op == Op::Delete {
                    key: key.to_string(),
                }
            })
            .filter(|e| matches!(e.outcome, Outcome::Indefinite(_)))
            .collect();
        indefinite.sort_by_key(|e| e.invoked);
        for (entry, revision) in indefinite.iter().zip(revisions.iter()) {
            delete_revision.insert(entry.id, *revision);
        }
    }
    let end = entries.iter().map(|e| e.completed).max().unwrap_or(0) + 1;
    entries
        .iter()
        .map(|entry| {
            let mut entry = entry.clone();
            if !matches!(entry.outcome, Outcome::Indefinite(_)) {
                return entry;
            }
            let revision = match &entry.op {
                Op::Put { value, .. } | Op::Cas { new: value, .. } => {
                    applied.get(value.as_str()).copied()
                }
                Op::Delete { .. } => delete_revision.get(&entry.id).copied(),
                Op::Get { .. } => return entry,
            };
            entry.outcome = match (revision, &entry.op) {
                (None, _) => Outcome::Failed("not in the committed history".into()),
                (Some(revision), Op::Cas { .. }) => Outcome::Swapped {
                    succeeded: true,
                    revision,
                    current: None,
                },
                (Some(revision), Op::Delete { .. }) => Outcome::Written {
                    revision,
                    deleted: true,
                },
                (Some(revision), _) => Outcome::Written {
                    revision,
                    deleted: false,
                },
            };
            entry.completed = end;
            entry
        })
        .collect()
}

/// The history cut at the completion of one of its operations: operations invoked later are
/// gone, and those still running then lose their answers (indefinite). A prefix of a
/// linearizable history is linearizable, so the first cut that fails names the culprit.
fn shortest_failing_prefix(entries: &[&Entry], budget: u64) -> (Entry, Vec<Entry>) {
    let mut cuts: Vec<u64> = entries.iter().map(|e| e.completed).collect();
    cuts.sort_unstable();
    let cut_at = |time: u64| -> Vec<Entry> {
        entries
            .iter()
            .filter(|e| e.invoked <= time)
            .map(|e| {
                let mut e = (*e).clone();
                if e.completed > time {
                    e.outcome = Outcome::Indefinite("still running at the cut".into());
                }
                e
            })
            .collect()
    };
    let fails = |time: u64| {
        let cut = cut_at(time);
        let refs: Vec<&Entry> = cut.iter().collect();
        matches!(Calls::decide(&refs, budget), Search::Impossible(_))
    };
    // The whole history fails; find the first cut that does.
    let (mut low, mut high) = (0, cuts.len() - 1);
    while low < high {
        let middle = (low + high) / 2;
        if fails(cuts[middle]) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    let time = cuts[low];
    let last = entries
        .iter()
        .find(|e| e.completed == time)
        .map(|e| (*e).clone())
        .expect("a cut is some operation's completion");
    (
        last.clone(),
        without_needless_reads(cut_at(time), &last, budget),
    )
}

/// Drops every read (and failed compare) the violation does not need. Sound one way only:
/// an operation that does not change the state can be removed from a linearizable history
/// and it stays linearizable, so if the history still fails without it, it was not part of
/// the problem. Writes are kept: without one, a read it explains would fail for another
/// reason.
fn without_needless_reads(mut entries: Vec<Entry>, last: &Entry, budget: u64) -> Vec<Entry> {
    let reads_only = |e: &Entry| match (&e.op, &e.outcome) {
        (Op::Get { .. }, _) => true,
        (Op::Cas { .. }, Outcome::Swapped { succeeded, .. }) => !succeeded,
        _ => false,
    };
    let mut index = 0;
    while index < entries.len() {
        if entries[index].id == last.id || !reads_only(&entries[index]) {
            index += 1;
            continue;
        }
        let mut fewer = entries.clone();
        fewer.remove(index);
        let refs: Vec<&Entry> = fewer.iter().collect();
        if matches!(Calls::decide(&refs, budget), Search::Impossible(_)) {
            entries = fewer;
        } else {
            index += 1;
        }
    }
    entries
}

/// The revision a write was applied at, if its answer says it changed the key.
fn applied_at(op: &Op, outcome: &Outcome) -> Option<i64> {
    let revision = match (op, outcome) {
        (Op::Put { .. }, Outcome::Written { revision, .. })
        | (
            Op::Delete { .. },
            Outcome::Written {
                revision,
                deleted: true,
            },
        )
        | (
            Op::Cas { .. },
            Outcome::Swapped {
                succeeded: true,
                revision,
                ..
            },
        ) => *revision,
        _ => return None,
    };
    (revision > 0).then_some(revision)
}

/// What one operation does to the key's state and what it must have answered.
#[derive(Clone, Copy, Debug)]
enum Step {
    Put(u32),
    /// `Some(removed)` when the answer came.
    Delete(Option<bool>),
    Get(Option<u32>),
    /// The answer, when it came: succeeded, and the value a failed compare read.
    Cas {
        expected: Option<u32>,
        new: u32,
        answer: Option<(bool, Option<u32>)>,
    },
}

impl Step {
    /// The state after the step, if the step's answer is possible in `state`.
    fn apply(self, state: Option<u32>) -> Option<Option<u32>> {
        match self {
            Step::Put(value) => Some(Some(value)),
            Step::Delete(None) => Some(None),
            Step::Delete(Some(removed)) => (removed == state.is_some()).then_some(None),
            Step::Get(value) => (value == state).then_some(state),
            Step::Cas {
                expected,
                new,
                answer,
            } => {
                let matches = state == expected;
                match answer {
                    None => Some(if matches { Some(new) } else { state }),
                    Some((true, _)) => matches.then_some(Some(new)),
                    Some((false, current)) => (!matches && current == state).then_some(state),
                }
            }
        }
    }
}

struct Call {
    invoked: u64,
    /// `u64::MAX` for an indefinite operation: it never constrains what comes after it.
    returned: u64,
    step: Step,
    /// The revision a write that took effect was applied at, when known (positive).
    revision: Option<i64>,
}

struct Calls {
    /// Sorted by invocation.
    calls: Vec<Call>,
    definite: usize,
}

enum Search {
    Linearizable(u64),
    Impossible(u64),
    Undecided(u64),
}

impl Calls {
    /// The search's view of `entries`. With `drop_unobserved`, every indefinite write whose
    /// value nobody observed is taken never to have happened, which is one of the outcomes it
    /// may have had: a linearization found that way is one of the whole history.
    fn of(entries: &[&Entry], drop_unobserved: bool) -> Calls {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut id = |value: &Option<String>| -> Option<u32> {
            value.as_ref().map(|v| {
                let next = ids.len() as u32;
                *ids.entry(v.clone()).or_insert(next)
            })
        };
        // Each value observed, and when its first observer returned.
        let mut observed: HashMap<u32, u64> = HashMap::new();
        let mut observe = |value: Option<u32>, at: u64| {
            if let Some(value) = value {
                let first = observed.entry(value).or_insert(at);
                *first = (*first).min(at);
            }
        };
        let mut removal_seen = false;
        let mut calls = Vec::new();
        // Every write that took (or may have taken) effect: (call, value, indefinite).
        let mut writes: Vec<(usize, u32, bool)> = Vec::new();
        for entry in entries {
            let indefinite = matches!(entry.outcome, Outcome::Indefinite(_));
            let step = match (&entry.op, &entry.outcome) {
                // Failed writes were not applied; failed reads changed nothing.
                (_, Outcome::Failed(_)) => continue,
                (Op::Get { .. }, Outcome::Indefinite(_)) => continue,
                (Op::Get { .. }, Outcome::Read { value }) => {
                    let value = id(value);
                    observe(value, entry.completed);
                    Step::Get(value)
                }
                (Op::Put { value, .. }, _) => Step::Put(id(&Some(value.clone())).unwrap()),
                (Op::Delete { .. }, Outcome::Written { deleted, .. }) => {
                    removal_seen |= *deleted;
                    Step::Delete(Some(*deleted))
                }
                (Op::Delete { .. }, _) => Step::Delete(None),
                (Op::Cas { expected, new, .. }, outcome) => {
                    let expected = id(expected);
                    let new = id(&Some(new.clone())).unwrap();
                    let answer = match outcome {
                        Outcome::Swapped {
                            succeeded, current, ..
                        } => {
                            let current = id(current);
                            if *succeeded {
                                observe(expected, entry.completed);
                            } else {
                                observe(current, entry.completed);
                            }
                            Some((*succeeded, current))
                        }
                        _ => None,
                    };
                    Step::Cas {
                        expected,
                        new,
                        answer,
                    }
                }
                (op, outcome) => panic!("{op:?} cannot have answered {outcome:?}"),
            };
            match step {
                Step::Put(value)
                | Step::Cas {
                    new: value,
                    answer: None | Some((true, _)),
                    ..
                } => writes.push((calls.len(), value, indefinite)),
                _ => {}
            }
            calls.push(Call {
                invoked: entry.invoked,
                returned: if indefinite {
                    u64::MAX
                } else {
                    entry.completed
                },
                step,
                revision: applied_at(&entry.op, &entry.outcome),
            });
        }
        // A write whose value was observed took effect before its first observer returned
        // (which bounds a write settled by the committed history, too); an indefinite one
        // is then as good as definite, with that return.
        let mut dropped = HashSet::new();
        for (index, value, indefinite) in writes {
            match observed.get(&value) {
                Some(&first_seen) => {
                    let call = &mut calls[index];
                    call.returned = call.returned.min(first_seen);
                    if let Step::Cas { answer, .. } = &mut call.step {
                        *answer = Some((true, None));
                    }
                }
                None if !indefinite => {}
                None if drop_unobserved || !removal_seen => {
                    dropped.insert(index);
                }
                None => {}
            }
        }
        let mut index = 0;
        calls.retain(|_| {
            index += 1;
            !dropped.contains(&(index - 1))
        });
        calls.sort_by_key(|c| c.invoked);
        let definite = calls.iter().filter(|c| c.returned != u64::MAX).count();
        Calls { calls, definite }
    }

    /// Searches with unobserved indefinite writes left out first (quick, and a success is
    /// final), then, if that failed, with them as candidates forever.
    fn decide(entries: &[&Entry], budget: u64) -> Search {
        match Calls::of(entries, true).search(budget) {
            Search::Impossible(first) => match Calls::of(entries, false).search(budget) {
                Search::Linearizable(explored) => Search::Linearizable(first + explored),
                Search::Impossible(explored) => Search::Impossible(first + explored),
                Search::Undecided(explored) => Search::Undecided(first + explored),
            },
            decided => decided,
        }
    }

    fn search(&self, budget: u64) -> Search {
        let count = self.calls.len();
        let words = count.div_ceil(64);
        let is_done = |done: &[u64], i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        let indefinite = |i: usize| self.calls[i].returned == u64::MAX;
        // Indefinite operations stay candidates forever; they are few, so they are kept apart
        // and the definite ones are scanned only in the window from the first pending one.
        let pending_forever: Vec<usize> = (0..count).filter(|&i| indefinite(i)).collect();
        let advance = |done: &[u64], mut i: usize| {
            while i < count && (is_done(done, i) || indefinite(i)) {
                i += 1;
            }
            i
        };
        // Writes whose revision is known take effect in revision order: `rank` is a write's
        // place in it, and only the next one may be linearized. (A history consistent with
        // some other order only is a bug too: revisions are part of what etcd promises.)
        let mut ordered: Vec<usize> = (0..count)
            .filter(|&i| self.calls[i].revision.is_some())
            .collect();
        ordered.sort_by_key(|&i| self.calls[i].revision);
        let mut rank = vec![None; count];
        for (place, &i) in ordered.iter().enumerate() {
            rank[i] = Some(place);
        }
        let start = vec![0; words];
        let first = advance(&start, 0);
        // (linearized set, state, definite operations linearized, first pending definite,
        // ordered writes linearized)
        type Configuration = (Vec<u64>, Option<u32>, usize, usize, usize);
        let mut stack: Vec<Configuration> = vec![(start, None, 0, first, 0)];
        let mut seen: HashSet<(Vec<u64>, Option<u32>)> = HashSet::new();
        let mut explored = 0;
        while let Some((done, state, definite_done, first, ordered_done)) = stack.pop() {
            if definite_done == self.definite {
                return Search::Linearizable(explored);
            }
            explored += 1;
            if explored > budget {
                return Search::Undecided(explored);
            }
            // The earliest return among pending definite operations. They are sorted by
            // invocation and return after it, so none invoked after the running minimum can
            // lower it.
            let mut deadline = u64::MAX;
            let mut i = first;
            while i < count && self.calls[i].invoked <= deadline {
                if !is_done(&done, i) && !indefinite(i) {
                    deadline = deadline.min(self.calls[i].returned);
                }
                i += 1;
            }
            let definite_candidates = (first..count)
                .take_while(|&i| self.calls[i].invoked <= deadline)
                .filter(|&i| !is_done(&done, i) && !indefinite(i));
            let indefinite_candidates = pending_forever
                .iter()
                .copied()
                .take_while(|&i| self.calls[i].invoked <= deadline)
                .filter(|&i| !is_done(&done, i));
            let mut next = Vec::new();
            for i in definite_candidates.chain(indefinite_candidates) {
                if rank[i].is_some_and(|place| place != ordered_done) {
                    continue;
                }
                let call = &self.calls[i];
                if let Some(after) = call.step.apply(state) {
                    let mut set = done.clone();
                    set[i / 64] |= 1 << (i % 64);
                    if seen.insert((set.clone(), after)) {
                        let first = if i == first {
                            advance(&set, first)
                        } else {
                            first
                        };
                        let definite = usize::from(!indefinite(i));
                        let ordered = usize::from(rank[i].is_some());
                        next.push((
                            set,
                            after,
                            definite_done + definite,
                            first,
                            ordered_done + ordered,
                        ));
                    }
                }
            }
            // Earliest-invoked definite candidates are explored first, indefinite ones last
            // (that they never took effect is the likelier story).
            stack.extend(next.into_iter().rev());
        }
        Search::Impossible(explored)
    }
}

/// Acknowledged writes against the committed history (every event, from revision 1, as a
/// member reports it after the run): each acknowledged put, removing delete and successful
/// compare-and-swap must be there at the revision it was acknowledged with; no value may
/// appear twice (a write applied twice), nor one whose write the client reported as not
/// applied (a caller would have believed it failed).
pub fn lost_writes(entries: &[Entry], committed: &[WatchEvent]) -> Vec<String> {
    let mut problems = Vec::new();
    let at: HashMap<(i64, &str), &WatchEvent> = committed
        .iter()
        .map(|e| ((e.revision, e.key.as_str()), e))
        .collect();
    let mut expect = |entry: &Entry, revision: i64, value: Option<&String>| {
        match at.get(&(revision, entry.op.key())) {
            Some(event) if event.value.as_ref() == value => {}
            found => problems.push(format!(
                "acknowledged at revision {revision} but the committed history has {found:?}: {entry:?}"
            )),
        }
    };
    let mut written: HashSet<&str> = HashSet::new();
    let mut failed: HashMap<&str, &Entry> = HashMap::new();
    for entry in entries {
        match (&entry.op, &entry.outcome) {
            (Op::Put { value, .. }, Outcome::Written { revision, .. }) => {
                expect(entry, *revision, Some(value))
            }
            (Op::Delete { .. }, Outcome::Written { revision, deleted }) if *deleted => {
                expect(entry, *revision, None)
            }
            (
                Op::Cas { new, .. },
                Outcome::Swapped {
                    succeeded: true,
                    revision,
                    ..
                },
            ) => expect(entry, *revision, Some(new)),
            _ => {}
        }
        match &entry.op {
            Op::Put { value, .. } | Op::Cas { new: value, .. } => {
                written.insert(value);
                if matches!(entry.outcome, Outcome::Failed(_)) {
                    failed.insert(value, entry);
                }
            }
            _ => {}
        }
    }
    let mut applied: HashMap<&str, i64> = HashMap::new();
    for event in committed {
        let Some(value) = &event.value else { continue };
        if !written.contains(value.as_str()) {
            continue;
        }
        if let Some(entry) = failed.get(value.as_str()) {
            problems.push(format!(
                "reported as not applied, but applied at revision {}: {entry:?}",
                event.revision
            ));
        }
        if let Some(first) = applied.insert(value, event.revision) {
            problems.push(format!(
                "value {value:?} of {} was applied twice: at revisions {first} and {}",
                event.key, event.revision
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made history: (client, op, invoked, completed, outcome).
    fn history(ops: Vec<(usize, Op, u64, u64, Outcome)>) -> Vec<Entry> {
        ops.into_iter()
            .enumerate()
            .map(|(id, (client, op, invoked, completed, outcome))| Entry {
                id,
                client,
                op,
                invoked,
                completed,
                outcome,
            })
            .collect()
    }

    fn put(value: &str) -> Op {
        Op::Put {
            key: "k".into(),
            value: value.into(),
        }
    }

    fn get() -> Op {
        Op::Get { key: "k".into() }
    }

    fn written(revision: i64) -> Outcome {
        Outcome::Written {
            revision,
            deleted: false,
        }
    }

    fn read(value: Option<&str>) -> Outcome {
        Outcome::Read {
            value: value.map(Into::into),
        }
    }

    fn verdict(entries: &[Entry]) -> Vec<Problem> {
        check(entries, None, 100_000).problems
    }

    #[test]
    fn concurrent_reads_may_see_either_value() {
        let entries = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (0, put("b"), 20, 40, written(3)),
            (1, get(), 25, 30, read(Some("b"))),
            (2, get(), 26, 35, read(Some("a"))),
        ]);
        // a, the read of a (after 26), b, the read of b (before 30).
        assert_eq!(verdict(&entries), vec![]);
    }

    #[test]
    fn a_stale_read_is_caught() {
        let entries = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (0, put("b"), 20, 30, written(3)),
            // Invoked after b was acknowledged, it still sees a.
            (1, get(), 40, 50, read(Some("a"))),
        ]);
        let problems = verdict(&entries);
        assert!(
            matches!(&problems[..], [Problem::NotLinearizable { key, last, entries }]
                if key == "k" && last.id == 2 && entries.len() == 3),
            "{problems:?}"
        );
    }

    #[test]
    fn the_report_keeps_only_the_operations_the_violation_needs() {
        let entries = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, get(), 12, 14, read(Some("a"))),
            (2, get(), 15, 18, read(Some("a"))),
            (0, put("b"), 20, 30, written(3)),
            (1, get(), 40, 50, read(Some("a"))),
            (2, get(), 60, 70, read(Some("b"))),
        ]);
        let problems = verdict(&entries);
        let [Problem::NotLinearizable { last, entries, .. }] = &problems[..] else {
            panic!("{problems:?}");
        };
        assert_eq!(last.id, 4);
        let ids: Vec<usize> = entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, [0, 3, 4], "the two reads of a before b are not needed");
    }

    #[test]
    fn a_lost_write_is_caught_by_the_reads_and_by_the_committed_history() {
        let entries = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, get(), 20, 30, read(None)),
        ]);
        assert_eq!(verdict(&entries).len(), 1);
        let committed = vec![];
        let lost = lost_writes(&entries, &committed);
        assert!(lost[0].contains("acknowledged at revision 2"), "{lost:?}");
        let committed = vec![WatchEvent {
            revision: 2,
            key: "k".into(),
            value: Some("a".into()),
        }];
        assert_eq!(lost_writes(&entries, &committed), Vec::<String>::new());
    }

    #[test]
    fn a_write_applied_twice_is_caught() {
        let entries = history(vec![(0, put("a"), 0, 10, written(2))]);
        let event = |revision| WatchEvent {
            revision,
            key: "k".into(),
            value: Some("a".into()),
        };
        let lost = lost_writes(&entries, &[event(2), event(5)]);
        assert!(lost[0].contains("applied twice"), "{lost:?}");
    }

    #[test]
    fn a_write_reported_failed_must_not_be_applied() {
        let failed = Outcome::Failed("no endpoint answered".into());
        let entries = history(vec![(0, put("a"), 0, 10, failed)]);
        let event = WatchEvent {
            revision: 2,
            key: "k".into(),
            value: Some("a".into()),
        };
        let lost = lost_writes(&entries, &[event]);
        assert!(lost[0].contains("reported as not applied"), "{lost:?}");
        assert_eq!(lost_writes(&entries, &[]), Vec::<String>::new());
    }

    #[test]
    fn an_indefinite_write_may_take_effect_late_or_never() {
        let late = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, put("b"), 20, 30, Outcome::Indefinite("timeout".into())),
            (2, get(), 40, 50, read(Some("a"))),
            (2, get(), 60, 70, read(Some("b"))),
        ]);
        assert_eq!(verdict(&late), vec![]);
        let never = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, put("b"), 20, 30, Outcome::Indefinite("timeout".into())),
            (2, get(), 40, 50, read(Some("a"))),
        ]);
        assert_eq!(verdict(&never), vec![]);
        // But not before it was invoked.
        let early = history(vec![
            (2, get(), 0, 10, read(Some("b"))),
            (1, put("b"), 20, 30, Outcome::Indefinite("timeout".into())),
        ]);
        assert_eq!(verdict(&early).len(), 1);
        // And a write that surely failed never takes effect.
        let failed = history(vec![
            (1, put("b"), 0, 10, Outcome::Failed("unreachable".into())),
            (2, get(), 20, 30, read(Some("b"))),
        ]);
        assert_eq!(verdict(&failed).len(), 1);
    }

    #[test]
    fn the_committed_history_settles_indefinite_operations() {
        let lost = || Outcome::Indefinite("timeout".into());
        let event = |revision, value: Option<&str>| WatchEvent {
            revision,
            key: "k".into(),
            value: value.map(Into::into),
        };
        let with = |entries: &[Entry], committed: &[WatchEvent]| {
            check(entries, Some(committed), 100_000).problems.len()
        };
        // A read of b, whose answer was lost: fine unless the cluster never committed b.
        let read_b = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, put("b"), 20, 30, lost()),
            (2, get(), 40, 50, read(Some("b"))),
        ]);
        assert_eq!(verdict(&read_b).len(), 0);
        assert_eq!(
            with(&read_b, &[event(2, Some("a")), event(3, Some("b"))]),
            0
        );
        assert_eq!(with(&read_b, &[event(2, Some("a"))]), 1);
        // b committed before c, but invoked only after c was acknowledged: revisions out of
        // real-time order.
        let out_of_order = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (0, put("c"), 20, 30, written(4)),
            (1, put("b"), 40, 50, lost()),
        ]);
        assert_eq!(verdict(&out_of_order).len(), 0);
        let committed = [
            event(2, Some("a")),
            event(3, Some("b")),
            event(4, Some("c")),
        ];
        assert_eq!(with(&out_of_order, &committed), 1);
        // A read of nothing after a delete whose answer was lost needs that delete committed.
        let deleted = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, Op::Delete { key: "k".into() }, 20, 30, lost()),
            (2, get(), 40, 50, read(None)),
        ]);
        assert_eq!(with(&deleted, &[event(2, Some("a")), event(3, None)]), 0);
        assert_eq!(with(&deleted, &[event(2, Some("a"))]), 1);
    }

    #[test]
    fn writes_take_effect_in_revision_order() {
        // Concurrent puts, and a read of the first after both: fine if a came second, which
        // its revision denies.
        let entries = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, put("b"), 0, 10, written(3)),
            (2, get(), 20, 30, read(Some("a"))),
        ]);
        assert_eq!(verdict(&entries).len(), 1);
        let unknown = history(vec![
            (0, put("a"), 0, 10, written(0)),
            (1, put("b"), 0, 10, written(0)),
            (2, get(), 20, 30, read(Some("a"))),
        ]);
        assert_eq!(verdict(&unknown).len(), 0);
    }

    #[test]
    fn compare_and_swap_follows_the_value() {
        let cas = |expected: Option<&str>, new: &str| Op::Cas {
            key: "k".into(),
            expected: expected.map(Into::into),
            new: new.into(),
        };
        let swapped = |succeeded, current: Option<&str>| Outcome::Swapped {
            succeeded,
            revision: 0,
            current: current.map(Into::into),
        };
        let fine = history(vec![
            (0, cas(None, "a"), 0, 10, swapped(true, None)),
            (1, cas(Some("a"), "b"), 20, 30, swapped(true, None)),
            (2, cas(Some("a"), "c"), 40, 50, swapped(false, Some("b"))),
        ]);
        assert_eq!(verdict(&fine), vec![]);
        // Two compares of the same old value cannot both succeed.
        let twice = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, cas(Some("a"), "b"), 20, 30, swapped(true, None)),
            (2, cas(Some("a"), "c"), 20, 30, swapped(true, None)),
        ]);
        assert_eq!(verdict(&twice).len(), 1);
    }

    #[test]
    fn a_delete_reports_what_it_removed() {
        let delete = || Op::Delete { key: "k".into() };
        let removed = |deleted| Outcome::Written {
            revision: 0,
            deleted,
        };
        let wrong = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, delete(), 20, 30, removed(false)),
        ]);
        assert_eq!(verdict(&wrong).len(), 1);
        let right = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, delete(), 20, 30, removed(true)),
            (1, get(), 40, 50, read(None)),
        ]);
        assert_eq!(verdict(&right), vec![]);
    }

    #[test]
    fn a_search_out_of_budget_is_undecided_not_passed() {
        // Many concurrent writes (of unknown revisions) and a read that fits none: every
        // order is tried.
        let mut ops: Vec<_> = (0..12)
            .map(|i| (i, put(&format!("v{i}")), 0, 100, written(0)))
            .collect();
        ops.push((99, get(), 0, 100, read(Some("v-none"))));
        let problems = check(&history(ops), None, 50).problems;
        assert!(
            matches!(&problems[..], [Problem::Undecided { key, .. }] if key == "k"),
            "{problems:?}"
        );
    }

    /// A long, overlapping, linearizable history (each operation takes effect in the middle of
    /// its own interval, in order, while later ones are already running), with answers lost
    /// as often as in a chaos run (2%).
    fn long_history(operations: usize) -> Vec<Entry> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut value: Option<String> = None;
        let mut ops = Vec::new();
        for i in 0..operations {
            let (invoked, completed) = (10 * i as u64, 10 * i as u64 + rng.gen_range(6..60));
            let (op, outcome) = match rng.gen_range(0..100) {
                0..=39 => {
                    value = Some(format!("v{i}"));
                    (put(&format!("v{i}")), written(i as i64))
                }
                40..=79 => (get(), read(value.as_deref())),
                80..=97 => {
                    let deleted = value.take().is_some();
                    let outcome = Outcome::Written {
                        revision: i as i64,
                        deleted,
                    };
                    (Op::Delete { key: "k".into() }, outcome)
                }
                _ => {
                    value = Some(format!("v{i}"));
                    (put(&format!("v{i}")), Outcome::Indefinite("lost".into()))
                }
            };
            ops.push((i % 7, op, invoked, completed, outcome));
        }
        history(ops)
    }

    #[test]
    fn a_long_history_is_decided_well_within_the_budget() {
        let checked = check(&long_history(5000), None, 200_000);
        assert_eq!(checked.problems, vec![]);
        assert!(
            checked.explored < 50_000,
            "{} configurations",
            checked.explored
        );
    }

    #[test]
    fn keys_are_checked_apart() {
        let other = |value: &str| Op::Put {
            key: "other".into(),
            value: value.into(),
        };
        let entries = history(vec![
            (0, put("a"), 0, 10, written(2)),
            (1, other("x"), 0, 10, written(3)),
            (
                2,
                Op::Get {
                    key: "other".into(),
                },
                20,
                30,
                read(Some("x")),
            ),
            (2, get(), 20, 30, read(Some("a"))),
        ]);
        let checked = check(&entries, None, 1000);
        assert_eq!((checked.keys, checked.problems.len()), (2, 0));
    }
}
