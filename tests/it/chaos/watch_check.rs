//! The watch checker: what each watcher saw against the committed history.
//!
//! The committed history is every event from revision 1, read back from a member after the
//! run (and compared between members). Each watcher must have seen, from the revision it
//! started at up to the last event it got, exactly the committed events of its prefix, in
//! order: revisions never go back, no event twice, none missing (a gap), none that was never
//! committed. Watchers are therefore identical to each other on the revisions they share,
//! whichever member served them. A watcher canceled as compacted must have asked for a
//! revision below the compacted one.

use super::history::{WatchEvent, WatchRecord};

/// Every problem of `watch` against `committed` (empty: none).
pub fn check_watch(watch: &WatchRecord, committed: &[WatchEvent]) -> Vec<String> {
    let mut problems = Vec::new();
    let name = format!(
        "watcher {} of {:?} from revision {}",
        watch.watcher, watch.prefix, watch.start_revision
    );
    for pair in watch.events.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        if after.revision < before.revision {
            problems.push(format!(
                "{name}: revision went back from {} to {}: {after:?}",
                before.revision, after.revision
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for event in &watch.events {
        if !seen.insert((event.revision, event.key.as_str())) {
            problems.push(format!("{name}: duplicate event {event:?}"));
        }
    }
    if let Some((asked, compact_revision)) = watch.compacted {
        if asked >= compact_revision {
            problems.push(format!(
                "{name}: canceled as compacted at {compact_revision} though it asked for {asked}"
            ));
        }
    }
    let Some(last) = watch.events.iter().map(|e| e.revision).max() else {
        return problems;
    };
    let expected: Vec<&WatchEvent> = committed
        .iter()
        .filter(|e| e.key.starts_with(&watch.prefix))
        .filter(|e| e.revision >= watch.start_revision && e.revision <= last)
        .collect();
    let got: Vec<&WatchEvent> = watch.events.iter().collect();
    if got != expected {
        // Name the first difference: a gap (committed, not seen) or an event never committed.
        let first = got
            .iter()
            .zip(&expected)
            .position(|(g, e)| g != e)
            .unwrap_or(got.len().min(expected.len()));
        let describe = |events: &[&WatchEvent]| format!("{:?}", events.get(first));
        problems.push(format!(
            "{name}: event {first} is {} but the committed history has {} ({} events seen, {} committed in its range up to revision {last})",
            describe(&got),
            describe(&expected),
            got.len(),
            expected.len()
        ));
    }
    problems
}

/// Differences between the committed histories members report (`(member, events)`).
pub fn check_members_agree(histories: &[(String, Vec<WatchEvent>)]) -> Vec<String> {
    let Some((first_member, first)) = histories.first() else {
        return Vec::new();
    };
    histories[1..]
        .iter()
        .filter(|(_, events)| events != first)
        .map(|(member, events)| {
            let at = events
                .iter()
                .zip(first)
                .position(|(a, b)| a != b)
                .unwrap_or(events.len().min(first.len()));
            format!(
                "{member}'s history differs from {first_member}'s at event {at}: {:?} vs {:?} ({} vs {} events)",
                events.get(at),
                first.get(at),
                events.len(),
                first.len()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(revision: i64, key: &str, value: Option<&str>) -> WatchEvent {
        WatchEvent {
            revision,
            key: key.into(),
            value: value.map(Into::into),
        }
    }

    fn committed() -> Vec<WatchEvent> {
        vec![
            event(2, "a/1", Some("x")),
            event(3, "b/1", Some("y")),
            event(4, "a/2", Some("z")),
            event(5, "a/1", None),
            event(6, "a/2", Some("w")),
        ]
    }

    fn watcher(start_revision: i64, events: Vec<WatchEvent>) -> WatchRecord {
        WatchRecord {
            watcher: 1,
            prefix: "a/".into(),
            start_revision,
            events,
            ..Default::default()
        }
    }

    #[test]
    fn a_watcher_that_saw_its_range_in_order_passes() {
        let whole = watcher(
            1,
            vec![
                event(2, "a/1", Some("x")),
                event(4, "a/2", Some("z")),
                event(5, "a/1", None),
            ],
        );
        assert_eq!(check_watch(&whole, &committed()), Vec::<String>::new());
        let late = watcher(5, vec![event(5, "a/1", None), event(6, "a/2", Some("w"))]);
        assert_eq!(check_watch(&late, &committed()), Vec::<String>::new());
    }

    #[test]
    fn a_duplicate_event_is_caught() {
        let twice = watcher(
            1,
            vec![
                event(2, "a/1", Some("x")),
                event(4, "a/2", Some("z")),
                event(4, "a/2", Some("z")),
            ],
        );
        let problems = check_watch(&twice, &committed());
        assert!(problems[0].contains("duplicate event"), "{problems:?}");
    }

    #[test]
    fn a_gap_is_caught() {
        let gap = watcher(1, vec![event(2, "a/1", Some("x")), event(5, "a/1", None)]);
        let problems = check_watch(&gap, &committed());
        assert!(
            problems[0].contains("event 1 is") && problems[0].contains("revision: 4"),
            "{problems:?}"
        );
    }

    #[test]
    fn going_back_and_phantom_events_are_caught() {
        let back = watcher(
            1,
            vec![event(4, "a/2", Some("z")), event(2, "a/1", Some("x"))],
        );
        assert!(check_watch(&back, &committed())[0].contains("went back"));
        let phantom = watcher(1, vec![event(2, "a/1", Some("other"))]);
        assert_eq!(check_watch(&phantom, &committed()).len(), 1);
    }

    #[test]
    fn compacted_only_below_the_compacted_revision() {
        let mut fine = watcher(2, vec![]);
        fine.compacted = Some((2, 4));
        assert_eq!(check_watch(&fine, &committed()), Vec::<String>::new());
        let mut wrong = watcher(4, vec![]);
        wrong.compacted = Some((4, 4));
        assert_eq!(check_watch(&wrong, &committed()).len(), 1);
    }

    #[test]
    fn members_must_agree_on_the_history() {
        let same = vec![("n1".into(), committed()), ("n2".into(), committed())];
        assert_eq!(check_members_agree(&same), Vec::<String>::new());
        let mut short = committed();
        short.pop();
        let differ = vec![("n1".into(), committed()), ("n2".into(), short)];
        assert_eq!(check_members_agree(&differ).len(), 1);
    }
}
