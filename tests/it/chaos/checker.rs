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
//! Pruning: an indefinite put whose value nobody ever observed (no read, no failed compare, no
//! successful compare saw it) is dropped before the search. Dropping it loses no
//! linearization: a linearization using it has no observer between it and the next write, so
//! without it the same order still explains every answer, unless a delete that reported
//! removing the key was its only witness; keys with such deletes keep their indefinite writes.
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

/// Checks every key of `entries`, each within `budget` configurations.
pub fn check(entries: &[Entry], budget: u64) -> Checked {
    let mut by_key: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for entry in entries {
        by_key.entry(entry.op.key()).or_default().push(entry);
    }
    let mut keys: Vec<_> = by_key.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    let mut checked = Checked::default();
    for (key, entries) in keys {
        checked.keys += 1;
        let calls = Calls::of(&entries);
        checked.operations += calls.calls.len();
        match calls.search(budget) {
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
        matches!(Calls::of(&refs).search(budget), Search::Impossible(_))
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
    (last, cut_at(time))
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
    fn of(entries: &[&Entry]) -> Calls {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut id = |value: &Option<String>| -> Option<u32> {
            value.as_ref().map(|v| {
                let next = ids.len() as u32;
                *ids.entry(v.clone()).or_insert(next)
            })
        };
        let mut observed: HashSet<Option<u32>> = HashSet::new();
        let mut removal_seen = false;
        let mut calls = Vec::new();
        let mut prunable: Vec<(usize, u32)> = Vec::new();
        for entry in entries {
            let indefinite = matches!(entry.outcome, Outcome::Indefinite(_));
            let step = match (&entry.op, &entry.outcome) {
                // Failed writes were not applied; failed reads changed nothing.
                (_, Outcome::Failed(_)) => continue,
                (Op::Get { .. }, Outcome::Indefinite(_)) => continue,
                (Op::Get { .. }, Outcome::Read { value }) => {
                    let value = id(value);
                    observed.insert(value);
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
                                observed.insert(expected);
                            } else {
                                observed.insert(current);
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
            if indefinite {
                match step {
                    Step::Put(value) | Step::Cas { new: value, .. } => {
                        prunable.push((calls.len(), value))
                    }
                    _ => {}
                }
            }
            calls.push(Call {
                invoked: entry.invoked,
                returned: if indefinite {
                    u64::MAX
                } else {
                    entry.completed
                },
                step,
            });
        }
        if !removal_seen {
            let dropped: HashSet<usize> = prunable
                .into_iter()
                .filter(|(_, value)| !observed.contains(&Some(*value)))
                .map(|(index, _)| index)
                .collect();
            let mut index = 0;
            calls.retain(|_| {
                index += 1;
                !dropped.contains(&(index - 1))
            });
        }
        calls.sort_by_key(|c| c.invoked);
        let definite = calls.iter().filter(|c| c.returned != u64::MAX).count();
        Calls { calls, definite }
    }

    fn search(&self, budget: u64) -> Search {
        let words = self.calls.len().div_ceil(64);
        // (linearized set, state, definite operations linearized)
        let mut stack: Vec<(Vec<u64>, Option<u32>, usize)> = vec![(vec![0; words], None, 0)];
        let mut seen: HashSet<(Vec<u64>, Option<u32>)> = HashSet::new();
        let mut explored = 0;
        while let Some((done, state, definite_done)) = stack.pop() {
            if definite_done == self.definite {
                return Search::Linearizable(explored);
            }
            explored += 1;
            if explored > budget {
                return Search::Undecided(explored);
            }
            let is_done = |i: usize| done[i / 64] & (1 << (i % 64)) != 0;
            let deadline = (0..self.calls.len())
                .filter(|&i| !is_done(i))
                .map(|i| self.calls[i].returned)
                .min()
                .unwrap_or(u64::MAX);
            let mut next = Vec::new();
            for (i, call) in self.calls.iter().enumerate() {
                if call.invoked > deadline {
                    break;
                }
                if is_done(i) {
                    continue;
                }
                if let Some(after) = call.step.apply(state) {
                    let mut set = done.clone();
                    set[i / 64] |= 1 << (i % 64);
                    if seen.insert((set.clone(), after)) {
                        let definite = usize::from(call.returned != u64::MAX);
                        next.push((set, after, definite_done + definite));
                    }
                }
            }
            // Earliest-invoked candidates are explored first.
            stack.extend(next.into_iter().rev());
        }
        Search::Impossible(explored)
    }
}

/// Acknowledged writes against the committed history (every event, from revision 1, as a
/// member reports it after the run): each acknowledged put, removing delete and successful
/// compare-and-swap must be there at the revision it was acknowledged with, and no value may
/// appear that no client wrote, or twice (a write applied twice).
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
        check(entries, 100_000).problems
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
        // Many concurrent writes and a read that fits none: every order is tried.
        let mut ops: Vec<_> = (0..12)
            .map(|i| (i, put(&format!("v{i}")), 0, 100, written(i as i64)))
            .collect();
        ops.push((99, get(), 0, 100, read(Some("v-none"))));
        let problems = check(&history(ops), 50).problems;
        assert!(
            matches!(&problems[..], [Problem::Undecided { key, .. }] if key == "k"),
            "{problems:?}"
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
        let checked = check(&entries, 1000);
        assert_eq!((checked.keys, checked.problems.len()), (2, 0));
    }
}
