//! Group commit on the leader: writes that wait at the same time share one Raft entry.
//!
//! openraft 0.9 makes every `client_write` an entry of its own and appends it alone
//! (`RaftCore::write_entry` hands the log store `vec![entry]`), so each write cost one `append`
//! and one fsync of the log, one after the other on the Raft core: writes were bounded by the
//! disk's fsyncs per second. etcd puts every proposal that is waiting when its Raft loop
//! comes round into one WAL write; a [`Proposer`] does the same for keel.
//!
//! Writes are queued, and one task takes them: everything queued, up to
//! [`MAX_BATCH_COMMANDS`] commands and [`MAX_BATCH_BYTES`] bytes, becomes one entry (a
//! [`Request`] of several commands), as long as fewer than [`MAX_IN_FLIGHT`] of its entries
//! are still waiting to be committed. It never waits for more writes to arrive: a write that
//! finds the queue empty and an entry slot free is proposed at once, so a lone write gains no
//! latency. Under load, the writes that arrive while the entries in flight commit make up the
//! next entry, so the batch grows with the load.
//!
//! Each caller gets its own command's outcome: the state machine applies the commands in
//! order, each at its own revision with its own result ([`keel_store::Store::apply_batch`]),
//! so a command that fails (a put with an unknown lease) fails alone. What befalls the entry
//! as a whole (this member does not lead, its Raft stopped) befalls every caller in it.
//! [`Error::ForwardToLeader`] is answered only for an entry never handed to openraft (this
//! member did not believe it led), so every caller may send its write again; once handed
//! over, openraft's own ForwardToLeader is indeterminate, since an entry truncated here may
//! still be committed by a later leader holding a copy (see [`crate::forward`]).

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::Error;
use crate::forward::Written;
use crate::types::{Raft, Request};

/// Most commands in one entry: enough that a few hundred concurrent clients share a handful of
/// fsyncs, few enough that one entry stays quick to apply and to replicate.
pub const MAX_BATCH_COMMANDS: usize = 256;

/// Most encoded bytes of commands in one entry (a single larger command still goes, alone):
/// keeps an entry, and the append RPC carrying it, well inside a request timeout.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Entries proposed and not yet committed, at most. One: the writes that arrive while an
/// entry commits make up the next, so under load every entry carries everything that waited.
/// A second entry in flight overlapped the leader's fsync with the followers', but split the
/// waiting writes into twice the entries, each costing an fsync on every member, a write into
/// every keyspace and its replication round trips. Measured side by side (3 members on one
/// 2-core machine, 64 clients): one entry in flight, 4458 and 4151 puts/s at 11.5 CPU-seconds
/// per 30k puts; two, 3774 and 3934 puts/s at 13.8 and 13.1. Again once the keyspace took a
/// run's writes key by key: one, 5154 to 5905 puts/s at 7.6 to 8.8; two, 4875 to 5294 at 9.0
/// to 9.6.
pub const MAX_IN_FLIGHT: usize = 1;

/// A write waiting to be proposed.
struct Proposal {
    command: keel_store::Command,
    size: usize,
    answer: oneshot::Sender<Result<Written, Error>>,
}

/// The queue of writes to propose through one Raft. Cheap to clone; clones share the queue.
/// Its task stops when the last clone is dropped.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::UnboundedSender<Proposal>,
}

impl Proposer {
    /// Starts proposing through `raft`, which need not lead yet (a write to a member that does
    /// not lead gets [`Error::ForwardToLeader`]). Must be called within a tokio runtime.
    pub fn new(raft: Raft) -> Proposer {
        let (queue, proposals) = mpsc::unbounded_channel();
        tokio::spawn(propose_batches(raft, proposals));
        Proposer { queue }
    }

    /// Writes `command` through the Raft, in an entry with whatever other writes are waiting:
    /// returns once a quorum has the entry and this member has applied it, with what applying
    /// `command` returned. [`Error::ForwardToLeader`] if this member does not lead.
    pub async fn write(&self, command: keel_store::Command) -> Result<Written, Error> {
        // A command whose size cannot be computed will not encode either; it goes alone and
        // fails there, with openraft's error.
        let size = command.encoded_len().unwrap_or(MAX_BATCH_BYTES);
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Proposal {
                command,
                size,
                answer,
            })
            .map_err(|_| Error::Fatal("the proposer stopped".into()))?;
        answered
            .await
            .map_err(|_| Error::Fatal("the proposer stopped before answering".into()))?
    }
}

/// The proposer task: takes what is queued into entries until every [`Proposer`] is dropped.
async fn propose_batches(raft: Raft, proposals: mpsc::UnboundedReceiver<Proposal>) {
    run_batches(
        proposals,
        MAX_IN_FLIGHT,
        |proposal| proposal.size,
        |_, _| true,
        move |batch| {
            let raft = raft.clone();
            async move { commit(&raft, batch).await }
        },
    )
    .await
}

/// Runs batches of what is queued until the queue closes, with at most `in_flight` running:
/// takes the first waiting item, waits for a slot (while more queue up behind it), then takes
/// whatever waits behind it, up to [`MAX_BATCH_COMMANDS`] items and [`MAX_BATCH_BYTES`] bytes
/// by `size` (a single larger item goes alone), and hands them to `run` on a task of its own.
/// An item that does not `join` the first ends the batch and starts the next. Never waits for
/// more items to arrive. Shared by the proposer and the [`crate::forwarder`].
pub(crate) async fn run_batches<T, Run, Done>(
    mut queue: mpsc::UnboundedReceiver<T>,
    in_flight: usize,
    size: impl Fn(&T) -> usize,
    joins: impl Fn(&T, &T) -> bool,
    run: Run,
) where
    T: Send + 'static,
    Run: Fn(Vec<T>) -> Done,
    Done: std::future::Future<Output = ()> + Send + 'static,
{
    let in_flight = Arc::new(Semaphore::new(in_flight));
    let mut carried: Option<T> = None;
    loop {
        let first = match carried.take() {
            Some(item) => item,
            None => match queue.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        // While the batches in flight run, more items queue up behind `first`.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = size(&first);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_COMMANDS {
            match queue.try_recv() {
                Ok(next) if !joins(&batch[0], &next) || bytes + size(&next) > MAX_BATCH_BYTES => {
                    carried = Some(next);
                    break;
                }
                Ok(next) => {
                    bytes += size(&next);
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let done = run(batch);
        tokio::spawn(async move {
            done.await;
            drop(slot);
        });
    }
}

/// Proposes `batch` as one entry and answers each of its writers.
async fn commit(raft: &Raft, batch: Vec<Proposal>) {
    let count = batch.len();
    let (commands, answers): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|proposal| (proposal.command, proposal.answer))
        .unzip();
    // Never proposed while this member does not believe it leads, which is what makes that
    // refusal safe to send elsewhere.
    let elsewhere = crate::node::led_elsewhere(&raft.metrics().borrow());
    if let Some((leader_id, leader)) = elsewhere {
        for answer in answers {
            let _ = answer.send(Err(Error::ForwardToLeader {
                leader_id,
                leader: leader.clone(),
            }));
        }
        return;
    }
    match raft.client_write(Request { commands }).await {
        Ok(response) => {
            let log_index = response.log_id.index;
            let returned = response.data.0.len();
            let mut applied = response.data.0.into_iter();
            for answer in answers {
                let written = applied
                    .next()
                    .map(|applied| Written { applied, log_index })
                    .ok_or_else(|| {
                        Error::Fatal(format!(
                            "entry {} carried {count} commands but applying it returned {returned} results",
                            response.log_id
                        ))
                    });
                // A writer that stopped waiting (its request timed out) needs no answer.
                let _ = answer.send(written);
            }
        }
        Err(e) => {
            let error = || match &e {
                RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => Error::Indeterminate(
                    "leadership changed while the write was pending; it may still be committed"
                        .into(),
                ),
                other => crate::node::write_error(other.clone()),
            };
            for answer in answers {
                let _ = answer.send(Err(error()));
            }
        }
    }
}
