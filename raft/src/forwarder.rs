//! Group forwarding on a follower: writes forwarded to the leader at the same time share one
//! request, as the leader's writes share one entry ([`crate::proposer`]).
//!
//! Each forwarded write was a request of its own: the follower sent, and the leader parsed,
//! routed and answered, one HTTP request per write, for two of every three writes when
//! clients spread over three members. etcd's followers hand proposals to the leader as Raft
//! messages batched on one stream; a [`Forwarder`] does the like for keel.
//!
//! Writes are queued with the leader they go to, and one task takes them: everything queued
//! for the same leader, up to [`MAX_BATCH_COMMANDS`](crate::proposer::MAX_BATCH_COMMANDS)
//! commands and [`MAX_BATCH_BYTES`] bytes, becomes one request, as long as fewer than
//! [`MAX_IN_FLIGHT`] requests await their answers. It never waits for more writes to arrive, so a lone write is sent at once. The leader hands
//! the commands to its proposer in order ([`crate::network::peer_routes`]), where they usually
//! share an entry, and answers each command with its own outcome.
//!
//! The forwarding rules of [`crate::forward`] hold per command: each command's refusal is its
//! own, and what befalls the request ([`LinkError`]) befalls every command in it. A command
//! whose caller stopped waiting before its request was made up is not sent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::forward::{LeaderLink, LinkError, Refusal, Written};
use crate::proposer::{run_batches, MAX_BATCH_BYTES};
use crate::types::KeelNode;

/// Requests awaiting the leader's answer, at most. Two: the next request reaches the leader's
/// proposer while the previous one's entry commits, so it joins the next entry rather than
/// waiting a round trip after it.
pub const MAX_IN_FLIGHT: usize = 2;

/// What the leader answered for one command, or why the request got no answer.
pub(crate) type Answer = Result<Result<Written, Refusal>, LinkError>;

/// A write waiting to be forwarded.
struct Pending {
    leader: u64,
    node: KeelNode,
    command: keel_store::Command,
    size: usize,
    answer: oneshot::Sender<Answer>,
}

/// The queue of writes to forward through one link. Cheap to clone; clones share the queue.
/// Its task stops when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Forwarder {
    queue: mpsc::UnboundedSender<Pending>,
    timeout: Duration,
}

impl Forwarder {
    /// Starts forwarding through `link`, each request waiting at most `timeout` for its
    /// answer. Must be called within a tokio runtime.
    pub(crate) fn new(link: Arc<dyn LeaderLink>, timeout: Duration) -> Forwarder {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(forward_batches(link, timeout, pending));
        Forwarder { queue, timeout }
    }

    /// Forwards `command` to member `leader` (at `node`), in a request with whatever other
    /// writes to it are waiting, and returns the leader's answer for `command`. Waits at most
    /// the timeout, queueing included: a write not answered by then may still be applied.
    pub(crate) async fn forward(
        &self,
        leader: u64,
        node: &KeelNode,
        command: keel_store::Command,
    ) -> Answer {
        // A command whose size cannot be computed will not encode either; it goes alone and
        // fails there.
        let size = command.encoded_len().unwrap_or(MAX_BATCH_BYTES);
        let (answer, answered) = oneshot::channel();
        let queued = self.queue.send(Pending {
            leader,
            node: node.clone(),
            command,
            size,
            answer,
        });
        if queued.is_err() {
            return Err(LinkError::NotSent("the forwarder stopped".into()));
        }
        match tokio::time::timeout(self.timeout, answered).await {
            Ok(Ok(answer)) => answer,
            // The task dropped the write: it stopped (the member is shutting down).
            Ok(Err(_)) => Err(LinkError::NoAnswer("the forwarder stopped".into())),
            Err(_) => Err(LinkError::NoAnswer(format!(
                "{leader} did not answer within {:?}",
                self.timeout
            ))),
        }
    }
}

/// The forwarder task: takes what is queued into requests until every [`Forwarder`] is dropped.
async fn forward_batches(
    link: Arc<dyn LeaderLink>,
    timeout: Duration,
    queue: mpsc::UnboundedReceiver<Pending>,
) {
    run_batches(
        queue,
        MAX_IN_FLIGHT,
        |pending| pending.size,
        |first, next| first.leader == next.leader,
        move |mut batch: Vec<Pending>| {
            let link = link.clone();
            async move {
                // Writers that stopped waiting before their request was made up.
                batch.retain(|pending| !pending.answer.is_closed());
                if let Some(first) = batch.first() {
                    let (leader, node) = (first.leader, first.node.clone());
                    send(&*link, leader, &node, batch, timeout).await;
                }
            }
        },
    )
    .await
}

/// Sends `batch` as one request and answers each of its writers.
async fn send(
    link: &dyn LeaderLink,
    leader: u64,
    node: &KeelNode,
    batch: Vec<Pending>,
    timeout: Duration,
) {
    let count = batch.len();
    let (commands, answers): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|pending| (pending.command, pending.answer))
        .unzip();
    match link.forward_writes(leader, node, commands, timeout).await {
        Ok(results) if results.len() == count => {
            for (answer, result) in answers.into_iter().zip(results) {
                // A writer that stopped waiting needs no answer.
                let _ = answer.send(Ok(result));
            }
        }
        Ok(results) => {
            // The leader ran the commands but its answer does not say which outcome is whose.
            let reason = format!("{leader} answered {} of {count} writes", results.len());
            for answer in answers {
                let _ = answer.send(Err(LinkError::NoAnswer(reason.clone())));
            }
        }
        Err(e) => {
            for answer in answers {
                let _ = answer.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;

    use super::*;
    use crate::types::LogId;

    /// A leader that records each request's commands and answers every command with its
    /// position in the request, after `release` lets it.
    struct Recording {
        requests: Mutex<Vec<Vec<keel_store::Command>>>,
        release: tokio::sync::watch::Receiver<bool>,
    }

    impl LeaderLink for Recording {
        fn forward_writes(
            &self,
            _leader: u64,
            _node: &KeelNode,
            commands: Vec<keel_store::Command>,
            _timeout: Duration,
        ) -> BoxFuture<'static, Result<Vec<Result<Written, Refusal>>, LinkError>> {
            let count = commands.len();
            self.requests.lock().unwrap().push(commands);
            let mut release = self.release.clone();
            Box::pin(async move {
                let _ = release.wait_for(|go| *go).await;
                Ok((0..count)
                    .map(|position| {
                        Ok(Written {
                            applied: keel_store::Applied {
                                revision: position as i64,
                                result: Err(keel_store::Error::InvalidRequest("test".into())),
                            },
                            log_index: 1,
                        })
                    })
                    .collect())
            })
        }

        fn read_index(
            &self,
            _leader: u64,
            _node: &KeelNode,
            _timeout: Duration,
        ) -> BoxFuture<'static, Result<Result<Option<LogId>, Refusal>, LinkError>> {
            unimplemented!("not used")
        }

        fn campaign(
            &self,
            _target: u64,
            _node: &KeelNode,
            _timeout: Duration,
        ) -> BoxFuture<'static, Result<Result<(), Refusal>, LinkError>> {
            unimplemented!("not used")
        }
    }

    fn lease_grant(id: i64) -> keel_store::Command {
        keel_store::Command::LeaseGrant { id, ttl: 10 }
    }

    /// Writes that wait while the requests in flight are answered go together in the next
    /// request, in order, and each writer gets the answer for its own command.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_writes_share_a_request_and_get_their_own_answers() {
        let (release, released) = tokio::sync::watch::channel(false);
        let link = Arc::new(Recording {
            requests: Mutex::new(Vec::new()),
            release: released,
        });
        let forwarder = Forwarder::new(link.clone(), Duration::from_secs(10));
        let node = KeelNode::new("http://127.0.0.1:1", "");
        let write = |id: i64| {
            let (forwarder, node) = (forwarder.clone(), node.clone());
            tokio::spawn(async move { forwarder.forward(9, &node, lease_grant(id)).await })
        };
        let requests = || link.requests.lock().unwrap().clone();
        // One thread: each lone write is sent at once, until MAX_IN_FLIGHT requests await
        // the leader's answer.
        let mut writes = Vec::new();
        for id in 0..MAX_IN_FLIGHT as i64 {
            writes.push(write(id));
            while requests().len() <= id as usize {
                tokio::task::yield_now().await;
            }
        }
        // These wait for a request to be answered.
        let waiting = 5;
        for id in 0..waiting {
            writes.push(write(MAX_IN_FLIGHT as i64 + id));
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(requests().len(), MAX_IN_FLIGHT);
        release.send_replace(true);
        let mut positions = Vec::new();
        for write in writes {
            let written = write.await.unwrap().unwrap().unwrap();
            positions.push(written.applied.revision);
        }
        let requests = requests();
        let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
        let mut expected_sizes = vec![1; MAX_IN_FLIGHT];
        expected_sizes.push(waiting as usize);
        assert_eq!(sizes, expected_sizes);
        let sent: Vec<_> = requests.into_iter().flatten().collect();
        let total = MAX_IN_FLIGHT as i64 + waiting;
        assert_eq!(sent, (0..total).map(lease_grant).collect::<Vec<_>>());
        // Each writer's answer is its command's place in its request.
        let expected: Vec<i64> = sizes.iter().flat_map(|size| 0..*size as i64).collect();
        assert_eq!(positions, expected);
    }
}
