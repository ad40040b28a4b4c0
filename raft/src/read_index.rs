//! Read-index rounds shared by concurrent linearizable reads.
//!
//! openraft 0.9's `get_read_log_id` confirms leadership with a heartbeat round to every
//! voter per call, so N concurrent reads cost N rounds of RPCs on the leader. [`ReadIndex`]
//! runs one round at a time and hands its answer to every read that arrived before the round
//! started; reads arriving meanwhile wait for the next round. That is what makes it safe: a
//! round that starts after a read arrived returns a commit index at least as new as any write
//! acknowledged before the read, which is all linearizability asks of a read index (the same
//! batching etcd's `linearizableReadLoop` does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::sync::oneshot;

use crate::types::{KeelNode, LogId, Raft};

/// What `get_read_log_id` answers: the read log id and the leader's applied log id.
pub(crate) type RoundAnswer =
    Result<(Option<LogId>, Option<LogId>), RaftError<u64, CheckIsLeaderError<u64, KeelNode>>>;

#[derive(Default)]
struct Queue {
    /// A task is running rounds; it takes the waiting reads before each one.
    running: bool,
    waiting: Vec<oneshot::Sender<RoundAnswer>>,
}

/// Shares read-index rounds of one [`Raft`] among the reads waiting for them.
#[derive(Clone)]
pub struct ReadIndex {
    raft: Raft,
    queue: Arc<Mutex<Queue>>,
    rounds: Arc<AtomicU64>,
}

impl ReadIndex {
    /// Read-index rounds of `raft`.
    pub fn new(raft: Raft) -> ReadIndex {
        ReadIndex {
            raft,
            queue: Arc::default(),
            rounds: Arc::default(),
        }
    }

    /// How many rounds ran: fewer than the reads they answered when reads overlap.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Nothing panics while holding it; a poisoned queue is still a valid queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer of a read-index round that started after this call did.
    pub(crate) async fn round(&self) -> RoundAnswer {
        let (sender, answer) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.waiting.push(sender);
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(self.clone().run_rounds());
        }
        match answer.await {
            Ok(answer) => answer,
            // The round task died (the runtime is shutting down): ask openraft directly.
            Err(_) => self.raft.get_read_log_id().await,
        }
    }

    /// Runs rounds until no read waits.
    async fn run_rounds(self) {
        loop {
            let batch = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    queue.running = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let answer = self.raft.get_read_log_id().await;
            self.rounds.fetch_add(1, Ordering::Relaxed);
            for reader in batch {
                // A reader that gave up (timed out) is simply not told.
                let _ = reader.send(answer.clone());
            }
        }
    }
}
