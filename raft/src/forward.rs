//! Writes and linearizable reads on every member, as etcd serves them: a follower or learner
//! hands the request to the leader and answers with the leader's result.
//!
//! This module holds both ends of that exchange:
//!
//! - the leader's: [`leader_write`], [`leader_writes`] and [`leader_read_index`], which the
//!   peer routes (`/raft/forward`, `/raft/forward-batch`, `/raft/read-index`, see
//!   [`crate::network`]) and the test router call;
//! - the link a member reaches its leader through: [`LeaderLink`], implemented by
//!   [`crate::HttpNetworkFactory`] and by the router of feature `testing`; a member's
//!   concurrent forwarded writes share requests ([`crate::forwarder`]).
//!
//! The retry rules live in [`crate::RaftNode::write`] and
//! [`crate::RaftNode::linearizable_barrier`].
//!
//! # A forwarded write is never applied twice
//!
//! A write is sent again only when the leader provably did not take it:
//!
//! - it answered [`Refusal::ForwardToLeader`], which [`leader_write`] answers only for a
//!   request it never handed to openraft (it did not believe it led, see
//!   [`crate::proposer`]);
//! - [`LinkError::NotSent`]: the request never reached the leader's handler (connection refused,
//!   a 400/404 answer, a message the router dropped before delivery).
//!
//! openraft's own ForwardToLeader is not such a proof: it also answers an entry the leader
//! appended and then truncated after losing its leadership, and a truncated entry may still be
//! committed, by a later leader that had a copy (the chaos suite's 5-member run found a put
//! applied twice that way). Once handed to openraft, a write that is refused is indeterminate.
//!
//! A request that was sent but got no answer ([`LinkError::NoAnswer`]) may still commit; the
//! caller gets [`crate::Error::Indeterminate`], as etcd answers "request timed out".

use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{CheckIsLeaderError, RaftError};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::proposer::Proposer;
use crate::read_index::ReadIndex;
use crate::types::{KeelNode, LogId, Raft};

/// What the leader answers a forwarded write with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// What applying the command returned on the leader.
    pub applied: keel_store::Applied,
    /// The log index of the entry, so the forwarding member can wait until it has applied it
    /// too (read-your-writes on the member the client talks to).
    pub log_index: u64,
}

/// Why the leader did not run a forwarded request; the error half of the peer routes' answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The receiver is not the leader (any more): the request was not taken, send it to `leader`.
    #[error("not the leader; leader is {leader_id:?}")]
    ForwardToLeader {
        /// The leader the receiver knows of.
        leader_id: Option<u64>,
        /// Its addresses.
        leader: Option<KeelNode>,
    },
    /// The leader could not reach a quorum.
    #[error("no quorum: {0}")]
    Unavailable(String),
    /// The leader failed while running the request (e.g. its Raft stopped); a write may or may
    /// not have been applied.
    #[error("the leader failed: {0}")]
    Failed(String),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        match e {
            Error::ForwardToLeader { leader_id, leader } => {
                Refusal::ForwardToLeader { leader_id, leader }
            }
            Error::Unavailable(reason) => Refusal::Unavailable(reason),
            other => Refusal::Failed(other.to_string()),
        }
    }
}

/// Why a forwarded request got no answer from the leader.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The request provably did not reach the leader's handler; sending it again is safe.
    #[error("not delivered: {0}")]
    NotSent(String),
    /// The request was sent but no answer came back in time; it may have been run.
    #[error("no answer: {0}")]
    NoAnswer(String),
}

/// How a member reaches its leader's side of this module. Implemented by the network factory a
/// member is opened with, so forwarding goes wherever openraft's RPCs go.
pub trait LeaderLink: Send + Sync + 'static {
    /// Sends `commands` to member `leader` (at `node`) to be written through its Raft, in
    /// order, waiting at most `timeout` for the answer: one outcome per command, in order.
    fn forward_writes(
        &self,
        leader: u64,
        node: &KeelNode,
        commands: Vec<keel_store::Command>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Result<Written, Refusal>>, LinkError>>;

    /// Asks member `leader` (at `node`) for its read index, waiting at most `timeout`.
    fn read_index(
        &self,
        leader: u64,
        node: &KeelNode,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Result<Option<LogId>, Refusal>, LinkError>>;

    /// Asks member `target` (at `node`) to start an election now, for a leadership transfer
    /// (see [`crate::RaftNode::transfer_leadership`]), waiting at most `timeout` for its answer.
    fn campaign(
        &self,
        target: u64,
        node: &KeelNode,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Result<(), Refusal>, LinkError>>;
}

/// Writes `command` through `proposer`'s Raft, which must be the leader: returns once a quorum
/// has the entry holding it (with the other writes waiting then, see [`crate::proposer`]) and
/// the leader's state machine has applied it. [`Error::ForwardToLeader`] otherwise.
pub async fn leader_write(
    proposer: &Proposer,
    command: keel_store::Command,
) -> Result<Written, Error> {
    proposer.write(command).await
}

/// [`leader_write`] for each of `commands`, a follower's forwarded request: they are queued
/// for the proposer in order, so they share an entry unless it fills, and each gets its own
/// outcome.
pub async fn leader_writes(
    proposer: &Proposer,
    commands: Vec<keel_store::Command>,
) -> Vec<Result<Written, Refusal>> {
    // join_all polls the writes in order, and each queues its command on its first poll.
    futures::future::join_all(
        commands
            .into_iter()
            .map(|command| async move { proposer.write(command).await.map_err(Refusal::from) }),
    )
    .await
}

/// The leader's half of a linearizable read: confirms with a quorum that `raft` still leads and
/// returns the log id a reader's state machine must have applied before it reads.
///
/// Unlike `ensure_linearizable` it does not wait for the leader's own state machine: the reader
/// waits for its own.
///
/// Concurrent calls on one [`ReadIndex`] share a round (see [`crate::read_index`]).
pub async fn leader_read_index(read_index: &ReadIndex) -> Result<Option<LogId>, Error> {
    match read_index.round().await {
        Ok((read_log_id, _applied)) => Ok(read_log_id),
        Err(e) => Err(read_error(e)),
    }
}

/// The transferee's half of a leadership transfer: starts an election on `raft` now, without
/// waiting for its election timeout.
pub async fn campaign(raft: &Raft) -> Result<(), Error> {
    raft.trigger().elect().await.map_err(Error::from)
}

pub(crate) fn read_error(e: RaftError<u64, CheckIsLeaderError<u64, KeelNode>>) -> Error {
    match e {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => f.into(),
        RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)) => {
            Error::Unavailable(e.to_string())
        }
        RaftError::Fatal(e) => e.into(),
    }
}
