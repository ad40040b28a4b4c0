//! The KV service: range, put, delete range, txn, compaction.
//!
//! Reads are linearizable unless the request says `serializable`: the handler waits for the
//! replica's read barrier first. Writes go through the replica; the store's verdict comes
//! back in [`keel_store::Applied`] and is either the response or the client's error.

use keel_store::{Applied, Command, CommandResponse};
use warp::filters::BoxedFilter;
use warp::Filter;

use super::error::{ApiError, Code};
use super::models::RequestOp;
use super::models::{
    CompactionRequest, DeleteRangeRequest, DeleteRangeResponse, HeaderOnly, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use super::{blocking, guarded, Shared};
use crate::auth::{Access, KeyAccess};

/// `POST /v3/kv/{range,put,deleterange,txn,compaction}`. Once auth is enabled, compaction
/// needs only a user (as in etcd 3.4); the others need permissions on their keys.
pub fn routes(api: &Shared) -> BoxedFilter<(warp::reply::Response,)> {
    guarded(api, "v3/kv/range", "Range", range_access, range)
        .or(guarded(api, "v3/kv/put", "Put", put_access, put))
        .unify()
        .or(guarded(
            api,
            "v3/kv/deleterange",
            "DeleteRange",
            delete_range_access,
            delete_range,
        ))
        .unify()
        .or(guarded(api, "v3/kv/txn", "Txn", txn_access, txn))
        .unify()
        .or(guarded(
            api,
            "v3/kv/compaction",
            "Compact",
            |_| Access::Authenticated,
            compaction,
        ))
        .unify()
        .boxed()
}

/// A range needs read on it.
pub fn range_access(request: &RangeRequest) -> Access {
    Access::read(&request.key, &request.range_end)
}

/// A put needs write on its key (and read, if it returns the previous value).
pub fn put_access(request: &PutRequest) -> Access {
    Access::Keys(vec![KeyAccess::put(&request.key, request.prev_kv)])
}

/// A delete needs write on its range (and read, if it returns what it deleted).
pub fn delete_range_access(request: &DeleteRangeRequest) -> Access {
    let access = KeyAccess::delete(&request.key, &request.range_end, request.prev_kv);
    Access::Keys(vec![access])
}

/// A txn needs read for its compares and ranges and write for its puts and deletes, in both
/// branches and every nested txn, whichever branch would run (as etcd checks).
pub fn txn_access(request: &TxnRequest) -> Access {
    fn walk(txn: &TxnRequest, keys: &mut Vec<KeyAccess>) {
        for compare in &txn.compare {
            keys.push(KeyAccess::read(&compare.key, &compare.range_end));
        }
        for op in txn.success.iter().chain(&txn.failure) {
            match op {
                RequestOp::RequestRange(r) => keys.push(KeyAccess::read(&r.key, &r.range_end)),
                RequestOp::RequestPut(p) => keys.push(KeyAccess::put(&p.key, p.prev_kv)),
                RequestOp::RequestDeleteRange(d) => {
                    keys.push(KeyAccess::delete(&d.key, &d.range_end, d.prev_kv))
                }
                RequestOp::RequestTxn(nested) => walk(nested, keys),
            }
        }
    }
    let mut keys = Vec::new();
    walk(request, &mut keys);
    Access::Keys(keys)
}

/// Proposes `command`, counting a failed proposal, and unwraps the store's verdict.
/// Requests the store can refuse without the keyspace (empty key, too large) are refused
/// before proposing, so they never take a log entry.
pub(crate) async fn propose(
    api: &Shared,
    command: Command,
) -> Result<(i64, CommandResponse), ApiError> {
    api.replica.store().validate(&command)?;
    api.check_alarms(&command).await?;
    let Applied { revision, result } = api.replica.write(command).await.map_err(|e| {
        api.metrics.proposal_failed();
        ApiError::from(e)
    })?;
    Ok((revision, result?))
}

/// Whether a command can grow the database: what etcd refuses under the NOSPACE alarm
/// (deletes, revokes and compactions, which free space, stay allowed).
pub(crate) fn adds_data(command: &Command) -> bool {
    fn txn_puts(txn: &keel_store::TxnRequest) -> bool {
        txn.success.iter().chain(&txn.failure).any(|op| match op {
            keel_store::RequestOp::Put(_) => true,
            keel_store::RequestOp::Txn(nested) => txn_puts(nested),
            _ => false,
        })
    }
    match command {
        Command::Put(_) | Command::LeaseGrant { .. } => true,
        Command::Txn(txn) => txn_puts(txn),
        // Auth records are tiny, and etcd lets them through under the alarm too.
        Command::DeleteRange(_)
        | Command::Compact { .. }
        | Command::LeaseRevoke { .. }
        | Command::Auth(_)
        | Command::Alarm(_) => false,
    }
}

pub(crate) fn unexpected(response: CommandResponse) -> ApiError {
    ApiError::new(
        Code::Internal,
        format!("store answered with the wrong response: {response:?}"),
    )
}

/// Reads a range.
pub async fn range(api: Shared, request: RangeRequest) -> Result<RangeResponse, ApiError> {
    if !request.serializable {
        api.replica.read_barrier().await?;
    }
    let store = api.replica.store().clone();
    let (response, revision) = blocking(move || {
        let response = store.range(&request.into())?;
        // Read after the range, so the header is never older than what it returned.
        Ok((response, store.current_revision()))
    })
    .await?;
    Ok(RangeResponse::new(api.header(revision), response))
}

/// Writes a key.
pub async fn put(api: Shared, request: PutRequest) -> Result<PutResponse, ApiError> {
    match propose(&api, Command::Put(request.into())).await? {
        (revision, CommandResponse::Put(r)) => Ok(PutResponse::new(api.header(revision), r)),
        (_, other) => Err(unexpected(other)),
    }
}

/// Deletes a range.
pub async fn delete_range(
    api: Shared,
    request: DeleteRangeRequest,
) -> Result<DeleteRangeResponse, ApiError> {
    match propose(&api, Command::DeleteRange(request.into())).await? {
        (revision, CommandResponse::DeleteRange(r)) => {
            Ok(DeleteRangeResponse::new(api.header(revision), r))
        }
        (_, other) => Err(unexpected(other)),
    }
}

/// Runs a transaction. Read-only ones go through the log too: simpler, and as linearizable.
pub async fn txn(api: Shared, request: TxnRequest) -> Result<TxnResponse, ApiError> {
    match propose(&api, Command::Txn(request.into())).await? {
        (revision, CommandResponse::Txn(t)) => {
            Ok(TxnResponse::new(api.header(revision), t, revision))
        }
        (_, other) => Err(unexpected(other)),
    }
}

/// Compacts history up to a revision.
pub async fn compaction(api: Shared, request: CompactionRequest) -> Result<HeaderOnly, ApiError> {
    let command = Command::Compact {
        revision: request.revision,
    };
    match propose(&api, command).await? {
        (revision, CommandResponse::Compact) => Ok(HeaderOnly {
            header: api.header(revision),
        }),
        (_, other) => Err(unexpected(other)),
    }
}
