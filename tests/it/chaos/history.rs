//! The history a chaos run records: every client operation with its invocation and completion
//! times (nanoseconds since the run started) and its outcome, and every watcher's events.
//!
//! An outcome is one of three things, and the checker treats them differently: a definite
//! answer (the cluster said what happened), a definite failure (the client's contract says the
//! write was not applied: no member took it), or an indefinite outcome (the request may have
//! been applied, at any time after its invocation, or never: `client::Error::Uncertain`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One key-value operation a client invoked. Every written value is unique in a run, so a
/// read names the write it saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `put key value`.
    Put { key: String, value: String },
    /// A linearizable `get key`.
    Get { key: String },
    /// `del key`.
    Delete { key: String },
    /// A txn: if the key's value is `expected` (`None`: the key is absent, version 0) put
    /// `new`, else read the key.
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
}

impl Op {
    /// The one key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Get { key } | Op::Delete { key } | Op::Cas { key, .. } => key,
        }
    }
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// A put or delete was applied at `revision` (for a delete, whether it removed the key).
    Written { revision: i64, deleted: bool },
    /// A read saw `value` (`None`: absent).
    Read { value: Option<String> },
    /// A txn compare-and-swap: succeeded at `revision`, or failed and read `current`.
    Swapped {
        succeeded: bool,
        revision: i64,
        current: Option<String>,
    },
    /// Surely not applied (a read that failed has no effect either).
    Failed(String),
    /// Maybe applied, maybe not: no answer came after the request was sent.
    Indefinite(String),
}

/// One operation of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the history (the order of completion records).
    pub id: usize,
    /// The client that ran it.
    pub client: usize,
    /// What it asked.
    pub op: Op,
    /// When it was invoked, ns since the start of the run.
    pub invoked: u64,
    /// When its answer came, ns since the start of the run.
    pub completed: u64,
    /// What came back.
    pub outcome: Outcome,
}

/// One event a watcher received (or the committed history holds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// The revision of the change.
    pub revision: i64,
    /// The key.
    pub key: String,
    /// The value after a put; `None` for a delete.
    pub value: Option<String>,
}

/// Everything one watcher saw, over all its sessions (it reopens from the revision after the
/// last event it got when a stream breaks).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRecord {
    /// Which watcher.
    pub watcher: usize,
    /// The key prefix it watched.
    pub prefix: String,
    /// The revision it first asked to start from.
    pub start_revision: i64,
    /// The events, in the order they arrived.
    pub events: Vec<WatchEvent>,
    /// Members it was connected to, in order (for the report).
    pub members: Vec<String>,
    /// A cancelation because the start revision was compacted: (asked start revision,
    /// compact_revision in the answer).
    pub compacted: Option<(i64, i64)>,
}

/// The history of a run, shared by its clients.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            start: Instant::now(),
            entries: Arc::default(),
        }
    }
}

impl Recorder {
    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records an operation that completed now and was invoked at `invoked`.
    pub fn record(&self, client: usize, op: Op, invoked: u64, outcome: Outcome) {
        let completed = self.now();
        // A std mutex: held for a push, never across an await.
        let mut entries = self.entries.lock().expect("no recorder panics");
        let id = entries.len();
        entries.push(Entry {
            id,
            client,
            op,
            invoked,
            completed,
            outcome,
        });
    }

    /// The history so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries.lock().expect("no recorder panics").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_keeps_completion_order_and_times() {
        let recorder = Recorder::default();
        let invoked = recorder.now();
        let get = Op::Get { key: "k".into() };
        recorder.record(3, get.clone(), invoked, Outcome::Read { value: None });
        recorder.record(4, get, invoked, Outcome::Indefinite("timeout".into()));
        let entries = recorder.entries();
        assert_eq!(entries.iter().map(|e| e.id).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(entries[1].client, 4);
        assert!(entries.iter().all(|e| e.invoked <= e.completed));
    }
}
