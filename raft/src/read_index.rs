//! Read-index rounds shared by concurrent linearizable reads.
//!
//! openraft 0.9's `get_read_log_id` confirms leadership with a heartbeat round to every
//! voter per call, so N concurrent reads cost N rounds of RPCs on the leader; on a follower,
//! each read would cost a request to the leader. [`SharedRounds`] runs one round at a time and
//! hands its answer to every read that arrived before the round started; reads arriving
//! meanwhile wait for the next round. That is what makes it safe: a round that starts after a
//! read arrived returns a commit index at least as new as any write acknowledged before the
//! read, which is all linearizability asks of a read index (the same batching etcd's
//! `linearizableReadLoop` does). [`ReadIndex`] shares the leader's own rounds; a follower
//! shares its requests to the leader the same way ([`crate::RaftNode::linearizable_barrier`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::sync::oneshot;

use crate::types::{KeelNode, LogId, Raft};

/// What `get_read_log_id` answers: the read log id and the leader's applied log id.
pub(crate) type RoundAnswer =
    Result<(Option<LogId>, Option<LogId>), RaftError<u64, CheckIsLeaderError<u64, KeelNode>>>;

/// Asks one round's question of `K` (whom to ask), e.g. a leader's id and address.
type Ask<K, A> = Arc<dyn Fn(K) -> BoxFuture<'static, A> + Send + Sync>;

struct Queue<K, A> {
    /// A task is running rounds; it takes the waiting reads before each one.
    running: bool,
    waiting: Vec<(K, oneshot::Sender<A>)>,
}

/// One question (`ask`) asked in rounds, each round's answer shared by every caller that was
/// waiting when it started. Callers name whom they ask (`K`); a round asks one of them, for
/// the callers that named it, and the rest wait for a round of their own.
pub(crate) struct SharedRounds<K, A> {
    ask: Ask<K, A>,
    queue: Arc<Mutex<Queue<K, A>>>,
    rounds: Arc<AtomicU64>,
}

impl<K, A> Clone for SharedRounds<K, A> {
    fn clone(&self) -> Self {
        SharedRounds {
            ask: self.ask.clone(),
            queue: self.queue.clone(),
            rounds: self.rounds.clone(),
        }
    }
}

impl<K, A> SharedRounds<K, A>
where
    K: Clone + PartialEq + Send + 'static,
    A: Clone + Send + 'static,
{
    pub(crate) fn new(ask: impl Fn(K) -> BoxFuture<'static, A> + Send + Sync + 'static) -> Self {
        SharedRounds {
            ask: Arc::new(ask),
            queue: Arc::new(Mutex::new(Queue {
                running: false,
                waiting: Vec::new(),
            })),
            rounds: Arc::default(),
        }
    }

    /// How many rounds ran: fewer than the callers they answered when calls overlap.
    pub(crate) fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<K, A>> {
        // Nothing panics while holding it; a poisoned queue is still a valid queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer of a round asking `whom` that started after this call did.
    pub(crate) async fn round(&self, whom: K) -> A {
        let (sender, answer) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.waiting.push((whom.clone(), sender));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(self.clone().run_rounds());
        }
        match answer.await {
            Ok(answer) => answer,
            // The round task died (the runtime is shutting down): ask directly.
            Err(_) => (self.ask)(whom).await,
        }
    }

    /// Runs rounds until no caller waits.
    async fn run_rounds(self) {
        loop {
            let (whom, batch) = {
                let mut queue = self.lock();
                let Some((whom, _)) = queue.waiting.first() else {
                    queue.running = false;
                    return;
                };
                let whom = whom.clone();
                let (batch, rest) = std::mem::take(&mut queue.waiting)
                    .into_iter()
                    .partition(|(asked, _)| *asked == whom);
                queue.waiting = rest;
                (whom, batch)
            };
            let answer = (self.ask)(whom).await;
            self.rounds.fetch_add(1, Ordering::Relaxed);
            for (_, caller) in batch {
                // A caller that gave up (timed out) is simply not told.
                let _ = caller.send(answer.clone());
            }
        }
    }
}

/// Shares read-index rounds of one [`Raft`] among the reads waiting for them.
#[derive(Clone)]
pub struct ReadIndex {
    rounds: SharedRounds<(), RoundAnswer>,
}

impl ReadIndex {
    /// Read-index rounds of `raft`.
    pub fn new(raft: Raft) -> ReadIndex {
        let ask = move |()| -> BoxFuture<'static, RoundAnswer> {
            let raft = raft.clone();
            Box::pin(async move { raft.get_read_log_id().await })
        };
        ReadIndex {
            rounds: SharedRounds::new(ask),
        }
    }

    /// How many rounds ran: fewer than the reads they answered when reads overlap.
    pub fn rounds(&self) -> u64 {
        self.rounds.rounds()
    }

    /// The answer of a read-index round that started after this call did.
    pub(crate) async fn round(&self) -> RoundAnswer {
        self.rounds.round(()).await
    }
}
