//! The Maintenance service: status, hashes, a streamed snapshot, alarms, defragment.

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::Filter;

use super::error::{ApiError, Code};
use super::models::{
    AlarmAction, AlarmMember, AlarmRequest, AlarmResponse, AlarmType, DefragmentResponse,
    HashKvRequest, HashKvResponse, HashResponse, LeaseId, MoveLeaderRequest, MoveLeaderResponse,
    SnapshotResponse, StatusResponse,
};
use super::{
    blocking, credentials, exact_path, guarded, server_version, stream_line, streaming_reply,
    unary, unary_on_leader, Shared,
};
use crate::auth::{Access, Credentials};
pub use keel_store::SnapshotFormat;

/// Snapshot chunk size: etcd sends 32 KiB blobs.
const SNAPSHOT_CHUNK: usize = 32 * 1024;

/// `POST /v3/maintenance/{status,hash,hashkv,snapshot,alarm,defragment,transfer-leadership}`.
pub fn routes(api: &Shared) -> BoxedFilter<(warp::reply::Response,)> {
    let snapshot = {
        let api = api.clone();
        exact_path("v3/maintenance/snapshot")
            .and(warp::post())
            .and(credentials())
            .and(warp::header::optional::<String>(SNAPSHOT_FORMAT_HEADER))
            .and_then(move |credentials: Credentials, format: Option<String>| {
                let api = api.clone();
                async move {
                    // The whole keyspace is root's to copy.
                    if let Err(e) = api.auth.authorize(&credentials, &Access::Admin) {
                        return Err(warp::reject::custom(e));
                    }
                    let format = snapshot_format(format.as_deref(), SnapshotFormat::Keel)
                        .map_err(warp::reject::custom)?;
                    snapshot(api, format).await
                }
            })
    };
    // Status stays open, as in etcd: health checks and `endpoint status` need no user. The
    // rest is root's once auth is enabled.
    guarded(
        api,
        "v3/maintenance/status",
        "Status",
        |_| Access::Open,
        status,
    )
    .or(unary(api, "v3/maintenance/hash", "Hash", hash))
    .unify()
    .or(unary(api, "v3/maintenance/hashkv", "HashKV", hash_kv))
    .unify()
    .or(unary(api, "v3/maintenance/alarm", "Alarm", alarm))
    .unify()
    .or(unary(
        api,
        "v3/maintenance/defragment",
        "Defragment",
        defragment,
    ))
    .unify()
    .or(unary_on_leader(
        api,
        "v3/maintenance/transfer-leadership",
        "MoveLeader",
        move_leader,
    ))
    .unify()
    .or(snapshot)
    .unify()
    .boxed()
}

/// This member's status.
pub async fn status(api: Shared, _request: LeaseId) -> Result<StatusResponse, ApiError> {
    let store = api.replica.store().clone();
    let (size, revision, armed) = blocking(move || {
        Ok((
            store.size_on_disk()?,
            store.current_revision(),
            store.alarms(keel_store::AlarmType::None)?,
        ))
    })
    .await?;
    let status = api.replica.status();
    Ok(StatusResponse {
        header: api.header(revision),
        version: server_version(),
        db_size: size as i64,
        leader: status.leader.unwrap_or(0),
        raft_index: status.raft_index,
        raft_term: status.raft_term,
        raft_applied_index: status.applied_index,
        errors: armed.iter().map(alarm_text).collect(),
        db_size_in_use: size as i64,
        is_learner: status.is_learner,
    })
}

/// A checksum of the keyspace (etcd hashes its whole backend; here it is the history's hash).
pub async fn hash(api: Shared, _request: LeaseId) -> Result<HashResponse, ApiError> {
    let store = api.replica.store().clone();
    let (hash, revision) =
        blocking(move || Ok((store.hash_kv(0)?, store.current_revision()))).await?;
    Ok(HashResponse {
        header: api.header(revision),
        hash: hash.hash,
    })
}

/// A checksum of the history up to a revision (0: the current one), comparable across
/// members; the header carries the current revision, `hash_revision` the one hashed.
pub async fn hash_kv(api: Shared, request: HashKvRequest) -> Result<HashKvResponse, ApiError> {
    let store = api.replica.store().clone();
    let (hash, revision) =
        blocking(move || Ok((store.hash_kv(request.revision)?, store.current_revision()))).await?;
    Ok(HashKvResponse {
        header: api.header(revision),
        hash: hash.hash,
        compact_revision: hash.compact_revision,
        hash_revision: hash.revision,
    })
}

/// etcd's text form of an alarm in `status` errors (its protobuf's `String()`: fields at their
/// zero value left out, each followed by a space).
fn alarm_text(alarm: &keel_store::Alarm) -> String {
    let mut text = String::new();
    if alarm.member_id != 0 {
        text.push_str(&format!("memberID:{} ", alarm.member_id));
    }
    let kind = match alarm.alarm {
        keel_store::AlarmType::None => "",
        keel_store::AlarmType::NoSpace => "alarm:NOSPACE ",
        keel_store::AlarmType::Corrupt => "alarm:CORRUPT ",
    };
    text.push_str(kind);
    text
}

/// Alarms, replicated through the log as etcd 3.4 does: GET lists the armed alarms of the
/// type asked (NONE: all) after a read barrier; ACTIVATE arms the alarm for the member id
/// given (0 included) and answers with it; DEACTIVATE disarms that one alarm and answers with
/// it, or with nothing if it was not armed. keel arms NOSPACE itself when a write finds the
/// database over its quota ([`super::Api::check_alarms`]).
pub async fn alarm(api: Shared, request: AlarmRequest) -> Result<AlarmResponse, ApiError> {
    use keel_store::{AlarmCommand, Command, CommandResponse};
    let alarm = keel_store::Alarm {
        member_id: request.member_id,
        alarm: store_alarm_type(request.alarm),
    };
    let alarms = match request.action {
        AlarmAction::Get => {
            api.replica.read_barrier().await?;
            let store = api.replica.store().clone();
            blocking(move || Ok(store.alarms(alarm.alarm)?)).await?
        }
        AlarmAction::Activate | AlarmAction::Deactivate => {
            let command = if request.action == AlarmAction::Activate {
                AlarmCommand::Activate(alarm)
            } else {
                AlarmCommand::Deactivate(alarm)
            };
            match super::kv::propose(&api, Command::Alarm(command)).await? {
                (_, CommandResponse::Alarm(alarms)) => alarms,
                (_, other) => return Err(super::kv::unexpected(other)),
            }
        }
    };
    Ok(AlarmResponse {
        alarms: alarms
            .into_iter()
            .map(|alarm| AlarmMember {
                member_id: alarm.member_id,
                alarm: api_alarm_type(alarm.alarm),
            })
            .collect(),
    })
}

fn store_alarm_type(alarm: AlarmType) -> keel_store::AlarmType {
    match alarm {
        AlarmType::None => keel_store::AlarmType::None,
        AlarmType::NoSpace => keel_store::AlarmType::NoSpace,
        AlarmType::Corrupt => keel_store::AlarmType::Corrupt,
    }
}

fn api_alarm_type(alarm: keel_store::AlarmType) -> AlarmType {
    match alarm {
        keel_store::AlarmType::None => AlarmType::None,
        keel_store::AlarmType::NoSpace => AlarmType::NoSpace,
        keel_store::AlarmType::Corrupt => AlarmType::Corrupt,
    }
}

/// Hands the leadership to another voter; the leader answers once the target leads.
pub async fn move_leader(
    api: Shared,
    request: MoveLeaderRequest,
) -> Result<MoveLeaderResponse, ApiError> {
    api.replica.transfer_leadership(request.target_id).await?;
    Ok(MoveLeaderResponse {
        header: api.current_header(),
    })
}

/// Defragment: sled compacts its own files, so there is nothing to do.
pub async fn defragment(_api: Shared, _request: LeaseId) -> Result<DefragmentResponse, ApiError> {
    Ok(DefragmentResponse {})
}

/// The request header (gRPC: metadata key) that chooses a snapshot's format, `keel` or
/// `etcd`. The gRPC Snapshot RPC answers in etcd's format when it is absent, since its callers
/// (etcdctl, etcd's client libraries) save what they get for etcd's tools, and it is the
/// quicker to write and the smaller; the JSON gateway (keelctl) in keel's, which restores
/// faster and keeps the token secret (the README has the measurements). `keel snapshot
/// restore` reads both.
pub const SNAPSHOT_FORMAT_HEADER: &str = "keel-snapshot-format";

/// The format a request asked for in [`SNAPSHOT_FORMAT_HEADER`], or `default`.
pub fn snapshot_format(
    asked: Option<&str>,
    default: SnapshotFormat,
) -> Result<SnapshotFormat, ApiError> {
    match asked.map(str::trim) {
        None => Ok(default),
        Some(name) if name.eq_ignore_ascii_case("keel") => Ok(SnapshotFormat::Keel),
        Some(name) if name.eq_ignore_ascii_case("etcd") => Ok(SnapshotFormat::Etcd),
        Some(other) => Err(ApiError::new(
            Code::InvalidArgument,
            format!("unknown snapshot format {other:?}: keel or etcd"),
        )),
    }
}

/// The whole state as a stream of base64 blobs.
async fn snapshot(
    api: Shared,
    format: SnapshotFormat,
) -> Result<warp::reply::Response, warp::Rejection> {
    let data = export_snapshot(&api, format)
        .await
        .map_err(warp::reject::custom)?;
    let lines: Vec<Bytes> = snapshot_chunks(&data)
        .into_iter()
        .map(stream_line)
        .collect();
    Ok(streaming_reply(futures::stream::iter(lines)))
}

/// The whole state as one consistent cut in `format`, counted as the `Snapshot` RPC. An
/// etcd file ends with its SHA-256.
pub async fn export_snapshot(api: &Shared, format: SnapshotFormat) -> Result<Vec<u8>, ApiError> {
    let started = std::time::Instant::now();
    let store = api.replica.store().clone();
    // Exported whole before streaming: the export must be one consistent cut, and the store
    // writes it synchronously.
    let exported = blocking(move || {
        let point = store.export_point()?;
        match format {
            SnapshotFormat::Keel => {
                let mut out = Vec::new();
                point.write(&mut out)?;
                Ok(out)
            }
            SnapshotFormat::Etcd => {
                let (_, out) = point.write_etcd(std::io::Cursor::new(Vec::new()))?;
                Ok(out.into_inner())
            }
        }
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    match exported {
        Ok(data) if !data.is_empty() => {
            api.metrics.observe("Snapshot", None, seconds);
            Ok(data)
        }
        Ok(_) => Err(ApiError::new(Code::Internal, "empty snapshot")),
        Err(e) => {
            api.metrics
                .observe("Snapshot", Some(e.code as i32), seconds);
            Err(e)
        }
    }
}

/// `data` in etcd's 32 KiB chunks, each telling how much is still to come.
pub fn snapshot_chunks(data: &[u8]) -> Vec<SnapshotResponse> {
    let total = data.len() as u64;
    let mut sent = 0u64;
    data.chunks(SNAPSHOT_CHUNK)
        .map(|chunk| {
            sent += chunk.len() as u64;
            SnapshotResponse {
                remaining_bytes: total - sent,
                blob: chunk.to_vec(),
            }
        })
        .collect()
}
