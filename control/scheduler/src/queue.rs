//! The scheduling queue, after kube-scheduler's `PriorityQueue`: pods waiting to be tried,
//! in three places.
//!
//! - *active*: ready now, highest `spec.priority` first, then the longest waiting;
//! - *backoff*: failed recently, waiting out 1 s after the first attempt, doubling per
//!   attempt up to 10 s;
//! - *unschedulable*: fit no node when last tried; they stay until something changes that
//!   might make them fit — a node added or changed, a pod leaving a node — and the event's
//!   queueing hint (here: "the pod would fit that node now") says so, or five minutes pass.
//!
//! A pod being tried is *in flight*; events that arrive meanwhile are remembered, so a pod
//! that turns out unschedulable goes to backoff instead of waiting for an event it missed.
//! Pods with `schedulingGates` are held (*gated*) until their gates are removed.
//!
//! Every method takes the time as an argument, so the queue is a plain data structure.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use crate::framework::PodInfo;

/// How long a pod may stay unschedulable without any event before it is tried again
/// (`podMaxInUnschedulablePodsDuration`).
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// A pod in the queue with its scheduling history.
#[derive(Clone, Debug)]
pub struct QueuedPod {
    /// The pod as last seen.
    pub info: Arc<PodInfo>,
    /// How many times it was tried.
    pub attempts: u32,
    /// When it entered the queue or last failed: orders equal priorities, starts backoff.
    pub timestamp: Instant,
    /// When it was first tried.
    pub initial_attempt: Option<Instant>,
}

/// Where a queued pod is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Ready to be tried.
    Active,
    /// Waiting out its backoff.
    Backoff,
    /// Fit nowhere; waits for a cluster event.
    Unschedulable,
    /// Has scheduling gates.
    Gated,
    /// Being tried now.
    InFlight {
        /// An event that might make it fit arrived meanwhile.
        event: bool,
        /// It was deleted (or bound by someone else) meanwhile.
        deleted: bool,
    },
}

#[derive(Debug)]
struct Entry {
    pod: QueuedPod,
    place: Place,
    /// Identifies the entry's current heap item; older items are stale.
    seq: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    uid: String,
}

impl Ord for ActiveItem {
    /// The greatest item is popped first: higher priority, then earlier timestamp.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.timestamp.cmp(&self.timestamp))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The queue.
#[derive(Debug)]
pub struct SchedulingQueue {
    entries: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    unschedulable: HashSet<String>,
    in_flight: HashSet<String>,
    next_seq: u64,
    initial_backoff: Duration,
    max_backoff: Duration,
}

fn backoff_duration(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let mut duration = initial;
    for _ in 1..attempts {
        if duration > max.saturating_sub(duration) {
            return max;
        }
        duration += duration;
    }
    duration.min(max)
}

fn gated(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

/// Whether an update of a waiting pod could change where it fits (not a status write).
fn changed_for_scheduling(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

impl SchedulingQueue {
    /// An empty queue with these backoff bounds.
    pub fn new(initial_backoff: Duration, max_backoff: Duration) -> SchedulingQueue {
        SchedulingQueue {
            entries: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            unschedulable: HashSet::new(),
            in_flight: HashSet::new(),
            next_seq: 0,
            initial_backoff,
            max_backoff,
        }
    }

    /// How many pods the queue holds, in flight included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the queue holds no pod.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the pod `uid` is.
    pub fn place(&self, uid: &str) -> Option<Place> {
        self.entries.get(uid).map(|e| e.place)
    }

    /// The pod `uid` as queued.
    pub fn get(&self, uid: &str) -> Option<&QueuedPod> {
        self.entries.get(uid).map(|e| &e.pod)
    }

    /// `initialBackoff * 2^(attempts-1)`, at most the max.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        backoff_duration(self.initial_backoff, self.max_backoff, attempts)
    }

    fn backoff_expiry(&self, pod: &QueuedPod) -> Instant {
        pod.timestamp + self.backoff_duration(pod.attempts)
    }

    fn set_place(&mut self, uid: &str, place: Place) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let Some(entry) = self.entries.get_mut(uid) else {
            return;
        };
        match entry.place {
            Place::Unschedulable => {
                self.unschedulable.remove(uid);
            }
            Place::InFlight { .. } => {
                self.in_flight.remove(uid);
            }
            _ => {}
        }
        entry.place = place;
        entry.seq = seq;
        match place {
            Place::Active => self.active.push(ActiveItem {
                priority: entry.pod.info.priority,
                timestamp: entry.pod.timestamp,
                seq,
                uid: uid.to_owned(),
            }),
            Place::Backoff => {
                let expiry = entry.pod.timestamp
                    + backoff_duration(self.initial_backoff, self.max_backoff, entry.pod.attempts);
                self.backoff.push(Reverse((expiry, seq, uid.to_owned())));
            }
            Place::Unschedulable => {
                self.unschedulable.insert(uid.to_owned());
            }
            Place::InFlight { .. } => {
                self.in_flight.insert(uid.to_owned());
            }
            Place::Gated => {}
        }
    }

    /// Active if its backoff is over, else backoff.
    fn activate_or_back_off(&mut self, uid: &str, now: Instant) {
        let Some(entry) = self.entries.get(uid) else {
            return;
        };
        let place = if self.backoff_expiry(&entry.pod) > now {
            Place::Backoff
        } else {
            Place::Active
        };
        self.set_place(uid, place);
    }

    /// A pod to schedule was added or changed. True when it moved (to active or backoff).
    pub fn add(&mut self, info: Arc<PodInfo>, now: Instant) -> bool {
        let uid = info.uid.clone();
        let is_gated = gated(&info.pod);
        let Some(entry) = self.entries.get_mut(&uid) else {
            self.entries.insert(
                uid.clone(),
                Entry {
                    pod: QueuedPod {
                        info,
                        attempts: 0,
                        timestamp: now,
                        initial_attempt: None,
                    },
                    place: Place::Gated,
                    seq: 0,
                },
            );
            if is_gated {
                return false;
            }
            self.set_place(&uid, Place::Active);
            return true;
        };
        let relevant = changed_for_scheduling(&entry.pod.info.pod, &info.pod);
        entry.pod.info = info;
        let place = entry.place;
        if place == Place::Gated && !is_gated {
            entry.pod.timestamp = now;
        }
        match place {
            Place::Gated if !is_gated => {
                self.set_place(&uid, Place::Active);
                true
            }
            Place::Unschedulable if relevant => {
                self.activate_or_back_off(&uid, now);
                true
            }
            _ => false,
        }
    }

    /// The pod left the queue's concern: deleted, or bound. A pod in flight is dropped when
    /// its attempt ends.
    pub fn delete(&mut self, uid: &str) {
        match self.entries.get_mut(uid) {
            Some(Entry {
                place: Place::InFlight { deleted, .. },
                ..
            }) => *deleted = true,
            Some(_) => {
                self.unschedulable.remove(uid);
                self.entries.remove(uid);
            }
            None => {}
        }
    }

    /// Moves pods whose backoff ended to active, and pods unschedulable for too long too.
    fn flush(&mut self, now: Instant) {
        while let Some(Reverse((expiry, seq, uid))) = self.backoff.peek().cloned() {
            if expiry > now {
                break;
            }
            self.backoff.pop();
            if self
                .entries
                .get(&uid)
                .is_some_and(|e| e.seq == seq && e.place == Place::Backoff)
            {
                self.set_place(&uid, Place::Active);
            }
        }
        let stale: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|uid| {
                self.entries
                    .get(*uid)
                    .is_some_and(|e| now.duration_since(e.pod.timestamp) >= MAX_IN_UNSCHEDULABLE)
            })
            .cloned()
            .collect();
        for uid in stale {
            self.activate_or_back_off(&uid, now);
        }
    }

    /// The next pod to try, now in flight; `None` when none is ready.
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPod> {
        self.flush(now);
        while let Some(item) = self.active.pop() {
            let current = self
                .entries
                .get(&item.uid)
                .is_some_and(|e| e.seq == item.seq && e.place == Place::Active);
            if !current {
                continue;
            }
            self.set_place(
                &item.uid,
                Place::InFlight {
                    event: false,
                    deleted: false,
                },
            );
            let entry = self.entries.get_mut(&item.uid)?;
            entry.pod.attempts += 1;
            entry.pod.initial_attempt.get_or_insert(now);
            return Some(entry.pod.clone());
        }
        None
    }

    /// When a pod next becomes ready by itself (a backoff ends, or the unschedulable pods'
    /// periodic retry is due).
    pub fn next_wake(&self) -> Option<Instant> {
        let backoff = self
            .backoff
            .iter()
            .filter(|Reverse((_, seq, uid))| {
                self.entries
                    .get(uid)
                    .is_some_and(|e| e.seq == *seq && e.place == Place::Backoff)
            })
            .map(|Reverse((expiry, _, _))| *expiry)
            .min();
        let leftover = self
            .unschedulable
            .iter()
            .filter_map(|uid| self.entries.get(uid))
            .map(|e| e.pod.timestamp + MAX_IN_UNSCHEDULABLE)
            .min();
        backoff.into_iter().chain(leftover).min()
    }

    /// The attempt succeeded (the pod is bound): it leaves the queue.
    pub fn done(&mut self, uid: &str) {
        if matches!(self.place(uid), Some(Place::InFlight { .. })) {
            self.in_flight.remove(uid);
            self.entries.remove(uid);
        }
    }

    /// The attempt found no node: the pod waits for an event, or backs off at once if one
    /// came while it was in flight.
    pub fn requeue_unschedulable(&mut self, uid: &str, now: Instant) {
        self.requeue(uid, now, false);
    }

    /// The attempt failed for another reason (the binding failed, the API erred): back off.
    pub fn requeue_after_error(&mut self, uid: &str, now: Instant) {
        self.requeue(uid, now, true);
    }

    fn requeue(&mut self, uid: &str, now: Instant, error: bool) {
        let Some(entry) = self.entries.get_mut(uid) else {
            return;
        };
        let Place::InFlight { event, deleted } = entry.place else {
            return;
        };
        if deleted {
            self.in_flight.remove(uid);
            self.entries.remove(uid);
            return;
        }
        entry.pod.timestamp = now;
        let place = if error || event {
            Place::Backoff
        } else {
            Place::Unschedulable
        };
        self.set_place(uid, place);
    }

    /// A cluster event happened: unschedulable pods that `hint` says may fit now go back to
    /// active (or backoff); pods in flight remember it. True when a pod moved (the scheduling
    /// loop then looks again at what is ready and when).
    pub fn move_all(&mut self, hint: impl Fn(&PodInfo) -> bool, now: Instant) -> bool {
        let candidates: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|uid| self.entries.get(*uid).is_some_and(|e| hint(&e.pod.info)))
            .cloned()
            .collect();
        let moved = !candidates.is_empty();
        for uid in candidates {
            self.activate_or_back_off(&uid, now);
        }
        for uid in &self.in_flight {
            if let Some(entry) = self.entries.get_mut(uid) {
                if let Place::InFlight { event, .. } = &mut entry.place {
                    if !*event && hint(&entry.pod.info) {
                        *event = true;
                    }
                }
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    const SECOND: Duration = Duration::from_secs(1);

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(SECOND, 10 * SECOND)
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let q = queue();
        let got: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn active_pods_pop_by_priority_then_age() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(pod("low-old").info(), t0);
        q.add(pod("high").priority(100).info(), t0 + SECOND);
        q.add(pod("low-new").info(), t0 + 2 * SECOND);
        let order: Vec<String> = std::iter::from_fn(|| q.pop(t0 + 3 * SECOND))
            .map(|p| p.info.name.clone())
            .collect();
        assert_eq!(order, ["high", "low-old", "low-new"]);
        assert!(q.pop(t0 + 3 * SECOND).is_none());
        assert_eq!(q.len(), 3, "in flight until done or requeued");
        q.done("uid-high");
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn unschedulable_pods_wait_for_an_event_then_back_off() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(pod("p").info(), t0);
        let p = q.pop(t0).unwrap();
        assert_eq!(p.attempts, 1);
        q.requeue_unschedulable("uid-p", t0);
        assert_eq!(q.place("uid-p"), Some(Place::Unschedulable));
        assert!(q.pop(t0 + 5 * SECOND).is_none(), "no event, no retry");

        // An event the hint rejects leaves it there.
        assert!(!q.move_all(|_| false, t0 + 5 * SECOND));
        assert_eq!(q.place("uid-p"), Some(Place::Unschedulable));

        // An event within the backoff (1 s after the first attempt) goes to backoff...
        q.move_all(|_| true, t0 + SECOND / 2);
        assert_eq!(q.place("uid-p"), Some(Place::Backoff));
        assert_eq!(q.next_wake(), Some(t0 + SECOND));
        assert!(q.pop(t0 + SECOND / 2).is_none());
        // ... and to active once it is over.
        let p = q.pop(t0 + SECOND).unwrap();
        assert_eq!(p.attempts, 2);

        // The second failure backs off 2 s.
        q.requeue_unschedulable("uid-p", t0 + SECOND);
        assert!(q.move_all(|_| true, t0 + 4 * SECOND));
        assert_eq!(q.place("uid-p"), Some(Place::Active), "backoff over");
        assert_eq!(q.pop(t0 + 4 * SECOND).unwrap().attempts, 3);
    }

    #[test]
    fn an_event_during_the_attempt_is_not_missed() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(pod("p").info(), t0);
        q.pop(t0).unwrap();
        q.move_all(|_| true, t0);
        q.requeue_unschedulable("uid-p", t0);
        assert_eq!(q.place("uid-p"), Some(Place::Backoff));
        assert_eq!(q.pop(t0 + SECOND).unwrap().info.name, "p");
    }

    #[test]
    fn errors_back_off_and_deleted_pods_leave() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(pod("p").info(), t0);
        q.add(pod("gone").info(), t0 + SECOND);
        q.pop(t0).unwrap();
        q.requeue_after_error("uid-p", t0);
        assert_eq!(q.place("uid-p"), Some(Place::Backoff));

        let next = q.pop(t0 + SECOND / 2).unwrap();
        assert_eq!(next.info.name, "gone", "p is still backing off");
        q.delete("uid-gone");
        assert!(matches!(
            q.place("uid-gone"),
            Some(Place::InFlight { deleted: true, .. })
        ));
        q.requeue_unschedulable("uid-gone", t0 + SECOND);
        assert_eq!(q.place("uid-gone"), None);

        q.delete("uid-p");
        assert!(q.is_empty());
        assert!(q.pop(t0 + 60 * SECOND).is_none());
    }

    #[test]
    fn status_writes_do_not_move_unschedulable_pods_but_spec_changes_do() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(pod("p").info(), t0);
        q.pop(t0).unwrap();
        q.requeue_unschedulable("uid-p", t0);

        let mut with_status = pod("p").build();
        with_status.status = Some(Default::default());
        with_status.metadata.resource_version = Some("7".into());
        assert!(!q.add(
            Arc::new(PodInfo::new(Arc::new(with_status))),
            t0 + 5 * SECOND
        ));
        assert_eq!(q.place("uid-p"), Some(Place::Unschedulable));

        let tolerating = pod("p").toleration("k", "Exists", "", "NoSchedule").info();
        assert!(q.add(tolerating, t0 + 5 * SECOND));
        assert_eq!(q.place("uid-p"), Some(Place::Active));
    }

    #[test]
    fn gated_pods_wait_for_their_gates_to_go() {
        let mut q = queue();
        let t0 = Instant::now();
        let mut gated_pod = pod("g").build();
        gated_pod.spec.as_mut().unwrap().scheduling_gates = Some(vec![Default::default()]);
        assert!(!q.add(Arc::new(PodInfo::new(Arc::new(gated_pod))), t0));
        assert!(q.pop(t0).is_none());
        assert!(q.add(pod("g").info(), t0));
        assert_eq!(q.pop(t0).unwrap().info.name, "g");
    }

    #[test]
    fn unschedulable_pods_are_retried_after_five_minutes() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(pod("p").info(), t0);
        q.pop(t0).unwrap();
        q.requeue_unschedulable("uid-p", t0);
        assert_eq!(q.next_wake(), Some(t0 + MAX_IN_UNSCHEDULABLE));
        assert!(q.pop(t0 + MAX_IN_UNSCHEDULABLE - SECOND).is_none());
        assert!(q.pop(t0 + MAX_IN_UNSCHEDULABLE).is_some());
    }
}
