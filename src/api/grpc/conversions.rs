//! prost messages <-> the gateway's [`models`](crate::api::models), so both front ends run
//! the same handlers. Requests convert fallibly (an enum number etcd does not define, an empty
//! oneof), answered as InvalidArgument like any malformed request; responses always convert.

use super::proto::etcdserverpb as pb;
use super::proto::mvccpb;
use crate::api::error::ApiError;
use crate::api::models as m;

/// A proto enum field's value, or the error naming the field.
fn known<E: TryFrom<i32>>(value: i32, field: &str) -> Result<E, ApiError> {
    E::try_from(value)
        .map_err(|_| ApiError::invalid_argument(format!("unknown value {value} for {field}")))
}

// ---- requests ----

impl TryFrom<pb::RangeRequest> for m::RangeRequest {
    type Error = ApiError;
    fn try_from(r: pb::RangeRequest) -> Result<Self, ApiError> {
        use pb::range_request::{SortOrder, SortTarget};
        Ok(m::RangeRequest {
            key: r.key,
            range_end: r.range_end,
            limit: r.limit,
            revision: r.revision,
            sort_order: match known(r.sort_order, "sort_order")? {
                SortOrder::None => m::SortOrder::None,
                SortOrder::Ascend => m::SortOrder::Ascend,
                SortOrder::Descend => m::SortOrder::Descend,
            },
            sort_target: match known(r.sort_target, "sort_target")? {
                SortTarget::Key => m::SortTarget::Key,
                SortTarget::Version => m::SortTarget::Version,
                SortTarget::Create => m::SortTarget::Create,
                SortTarget::Mod => m::SortTarget::Mod,
                SortTarget::Value => m::SortTarget::Value,
            },
            serializable: r.serializable,
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: r.min_mod_revision,
            max_mod_revision: r.max_mod_revision,
            min_create_revision: r.min_create_revision,
            max_create_revision: r.max_create_revision,
        })
    }
}

impl From<pb::PutRequest> for m::PutRequest {
    fn from(r: pb::PutRequest) -> Self {
        m::PutRequest {
            key: r.key,
            value: r.value,
            lease: r.lease,
            prev_kv: r.prev_kv,
            ignore_value: r.ignore_value,
            ignore_lease: r.ignore_lease,
        }
    }
}

impl From<pb::DeleteRangeRequest> for m::DeleteRangeRequest {
    fn from(r: pb::DeleteRangeRequest) -> Self {
        m::DeleteRangeRequest {
            key: r.key,
            range_end: r.range_end,
            prev_kv: r.prev_kv,
        }
    }
}

impl TryFrom<pb::Compare> for m::Compare {
    type Error = ApiError;
    fn try_from(c: pb::Compare) -> Result<Self, ApiError> {
        use pb::compare::{CompareResult, CompareTarget, TargetUnion};
        let mut compare = m::Compare {
            result: match known(c.result, "compare result")? {
                CompareResult::Equal => m::CompareResult::Equal,
                CompareResult::Greater => m::CompareResult::Greater,
                CompareResult::Less => m::CompareResult::Less,
                CompareResult::NotEqual => m::CompareResult::NotEqual,
            },
            target: match known(c.target, "compare target")? {
                CompareTarget::Version => m::CompareTarget::Version,
                CompareTarget::Create => m::CompareTarget::Create,
                CompareTarget::Mod => m::CompareTarget::Mod,
                CompareTarget::Value => m::CompareTarget::Value,
                CompareTarget::Lease => m::CompareTarget::Lease,
            },
            key: c.key,
            range_end: c.range_end,
            ..Default::default()
        };
        // The model keeps every operand and lets `target` pick, as the JSON does.
        match c.target_union {
            Some(TargetUnion::Version(v)) => compare.version = v,
            Some(TargetUnion::CreateRevision(v)) => compare.create_revision = v,
            Some(TargetUnion::ModRevision(v)) => compare.mod_revision = v,
            Some(TargetUnion::Value(v)) => compare.value = v,
            Some(TargetUnion::Lease(v)) => compare.lease = v,
            None => {}
        }
        Ok(compare)
    }
}

impl TryFrom<pb::RequestOp> for m::RequestOp {
    type Error = ApiError;
    fn try_from(op: pb::RequestOp) -> Result<Self, ApiError> {
        use pb::request_op::Request;
        Ok(match op.request {
            Some(Request::RequestRange(r)) => m::RequestOp::RequestRange(r.try_into()?),
            Some(Request::RequestPut(r)) => m::RequestOp::RequestPut(r.into()),
            Some(Request::RequestDeleteRange(r)) => m::RequestOp::RequestDeleteRange(r.into()),
            Some(Request::RequestTxn(r)) => m::RequestOp::RequestTxn(r.try_into()?),
            None => return Err(ApiError::invalid_argument("txn operation has no request")),
        })
    }
}

fn ops(ops: Vec<pb::RequestOp>) -> Result<Vec<m::RequestOp>, ApiError> {
    ops.into_iter().map(TryInto::try_into).collect()
}

impl TryFrom<pb::TxnRequest> for m::TxnRequest {
    type Error = ApiError;
    fn try_from(t: pb::TxnRequest) -> Result<Self, ApiError> {
        Ok(m::TxnRequest {
            compare: t
                .compare
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            success: ops(t.success)?,
            failure: ops(t.failure)?,
        })
    }
}

impl From<pb::CompactionRequest> for m::CompactionRequest {
    fn from(r: pb::CompactionRequest) -> Self {
        m::CompactionRequest {
            revision: r.revision,
            physical: r.physical,
        }
    }
}

impl From<pb::LeaseGrantRequest> for m::LeaseGrantRequest {
    fn from(r: pb::LeaseGrantRequest) -> Self {
        m::LeaseGrantRequest {
            ttl: r.ttl,
            id: r.id,
        }
    }
}

impl From<pb::LeaseRevokeRequest> for m::LeaseId {
    fn from(r: pb::LeaseRevokeRequest) -> Self {
        m::LeaseId { id: r.id }
    }
}

impl From<pb::LeaseKeepAliveRequest> for m::LeaseId {
    fn from(r: pb::LeaseKeepAliveRequest) -> Self {
        m::LeaseId { id: r.id }
    }
}

impl From<pb::LeaseTimeToLiveRequest> for m::LeaseTimeToLiveRequest {
    fn from(r: pb::LeaseTimeToLiveRequest) -> Self {
        m::LeaseTimeToLiveRequest {
            id: r.id,
            keys: r.keys,
        }
    }
}

/// Requests without fields map to the gateway's empty request.
macro_rules! empty_request {
    ($($message:ident),+) => {
        $(impl From<pb::$message> for m::LeaseId {
            fn from(_: pb::$message) -> Self {
                m::LeaseId::default()
            }
        })+
    };
}

empty_request!(
    LeaseLeasesRequest,
    MemberListRequest,
    StatusRequest,
    HashRequest,
    DefragmentRequest
);

impl TryFrom<pb::WatchRequest> for m::WatchRequest {
    type Error = ApiError;
    fn try_from(r: pb::WatchRequest) -> Result<Self, ApiError> {
        use pb::watch_create_request::FilterType;
        use pb::watch_request::RequestUnion;
        Ok(match r.request_union {
            Some(RequestUnion::CreateRequest(c)) => {
                let filters = c
                    .filters
                    .iter()
                    .map(|f| {
                        Ok(match known(*f, "watch filter")? {
                            FilterType::Noput => m::FilterType::NoPut,
                            FilterType::Nodelete => m::FilterType::NoDelete,
                        })
                    })
                    .collect::<Result<_, ApiError>>()?;
                m::WatchRequest::CreateRequest(m::WatchCreateRequest {
                    key: c.key,
                    range_end: c.range_end,
                    start_revision: c.start_revision,
                    progress_notify: c.progress_notify,
                    filters,
                    prev_kv: c.prev_kv,
                    watch_id: c.watch_id,
                    fragment: c.fragment,
                })
            }
            Some(RequestUnion::CancelRequest(c)) => {
                m::WatchRequest::CancelRequest(m::WatchCancelRequest {
                    watch_id: c.watch_id,
                })
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                m::WatchRequest::ProgressRequest(m::WatchProgressRequest {})
            }
            None => return Err(ApiError::invalid_argument("watch request is empty")),
        })
    }
}

impl From<pb::MemberAddRequest> for m::MemberAddRequest {
    fn from(r: pb::MemberAddRequest) -> Self {
        m::MemberAddRequest {
            peer_urls: r.peer_ur_ls,
            is_learner: r.is_learner,
        }
    }
}

impl From<pb::MemberRemoveRequest> for m::MemberId {
    fn from(r: pb::MemberRemoveRequest) -> Self {
        m::MemberId { id: r.id }
    }
}

impl From<pb::MemberPromoteRequest> for m::MemberId {
    fn from(r: pb::MemberPromoteRequest) -> Self {
        m::MemberId { id: r.id }
    }
}

impl From<pb::MemberUpdateRequest> for m::MemberUpdateRequest {
    fn from(r: pb::MemberUpdateRequest) -> Self {
        m::MemberUpdateRequest {
            id: r.id,
            peer_urls: r.peer_ur_ls,
        }
    }
}

impl TryFrom<pb::AlarmRequest> for m::AlarmRequest {
    type Error = ApiError;
    fn try_from(r: pb::AlarmRequest) -> Result<Self, ApiError> {
        use pb::alarm_request::AlarmAction;
        Ok(m::AlarmRequest {
            action: match known(r.action, "alarm action")? {
                AlarmAction::Get => m::AlarmAction::Get,
                AlarmAction::Activate => m::AlarmAction::Activate,
                AlarmAction::Deactivate => m::AlarmAction::Deactivate,
            },
            member_id: r.member_id,
            alarm: match known(r.alarm, "alarm")? {
                pb::AlarmType::None => m::AlarmType::None,
                pb::AlarmType::Nospace => m::AlarmType::NoSpace,
                pb::AlarmType::Corrupt => m::AlarmType::Corrupt,
            },
        })
    }
}

impl From<pb::HashKvRequest> for m::HashKvRequest {
    fn from(r: pb::HashKvRequest) -> Self {
        m::HashKvRequest {
            revision: r.revision,
        }
    }
}

impl From<pb::MoveLeaderRequest> for m::MoveLeaderRequest {
    fn from(r: pb::MoveLeaderRequest) -> Self {
        m::MoveLeaderRequest {
            target_id: r.target_id,
        }
    }
}

// ---- responses ----

impl From<m::ResponseHeader> for pb::ResponseHeader {
    fn from(h: m::ResponseHeader) -> Self {
        pb::ResponseHeader {
            cluster_id: h.cluster_id,
            member_id: h.member_id,
            revision: h.revision,
            raft_term: h.raft_term,
        }
    }
}

fn header(h: m::ResponseHeader) -> Option<pb::ResponseHeader> {
    Some(h.into())
}

impl From<m::KeyValue> for mvccpb::KeyValue {
    fn from(kv: m::KeyValue) -> Self {
        mvccpb::KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

impl From<m::Event> for mvccpb::Event {
    fn from(e: m::Event) -> Self {
        let kind = match e.kind {
            m::EventType::Put => mvccpb::event::EventType::Put,
            m::EventType::Delete => mvccpb::event::EventType::Delete,
        };
        mvccpb::Event {
            r#type: kind as i32,
            kv: Some(e.kv.into()),
            prev_kv: e.prev_kv.map(Into::into),
        }
    }
}

impl From<m::RangeResponse> for pb::RangeResponse {
    fn from(r: m::RangeResponse) -> Self {
        pb::RangeResponse {
            header: header(r.header),
            kvs: r.kvs.into_iter().map(Into::into).collect(),
            more: r.more,
            count: r.count,
        }
    }
}

impl From<m::PutResponse> for pb::PutResponse {
    fn from(r: m::PutResponse) -> Self {
        pb::PutResponse {
            header: header(r.header),
            prev_kv: r.prev_kv.map(Into::into),
        }
    }
}

impl From<m::DeleteRangeResponse> for pb::DeleteRangeResponse {
    fn from(r: m::DeleteRangeResponse) -> Self {
        pb::DeleteRangeResponse {
            header: header(r.header),
            deleted: r.deleted,
            prev_kvs: r.prev_kvs.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<m::TxnResponse> for pb::TxnResponse {
    fn from(t: m::TxnResponse) -> Self {
        use pb::response_op::Response;
        pb::TxnResponse {
            header: header(t.header),
            succeeded: t.succeeded,
            responses: t
                .responses
                .into_iter()
                .map(|op| pb::ResponseOp {
                    response: Some(match op {
                        m::ResponseOp::ResponseRange(r) => Response::ResponseRange(r.into()),
                        m::ResponseOp::ResponsePut(r) => Response::ResponsePut(r.into()),
                        m::ResponseOp::ResponseDeleteRange(r) => {
                            Response::ResponseDeleteRange(r.into())
                        }
                        m::ResponseOp::ResponseTxn(r) => Response::ResponseTxn(r.into()),
                    }),
                })
                .collect(),
        }
    }
}

/// Responses that are only a header.
macro_rules! header_response {
    ($model:ty => $($message:ident),+) => {
        $(impl From<$model> for pb::$message {
            fn from(r: $model) -> Self {
                pb::$message { header: header(r.header) }
            }
        })+
    };
}

header_response!(m::HeaderOnly => CompactionResponse, LeaseRevokeResponse);
header_response!(m::MoveLeaderResponse => MoveLeaderResponse);

impl From<m::LeaseGrantResponse> for pb::LeaseGrantResponse {
    fn from(r: m::LeaseGrantResponse) -> Self {
        pb::LeaseGrantResponse {
            header: header(r.header),
            id: r.id,
            ttl: r.ttl,
            error: r.error,
        }
    }
}

impl From<m::LeaseKeepAliveResponse> for pb::LeaseKeepAliveResponse {
    fn from(r: m::LeaseKeepAliveResponse) -> Self {
        pb::LeaseKeepAliveResponse {
            header: header(r.header),
            id: r.id,
            ttl: r.ttl,
        }
    }
}

impl From<m::LeaseTimeToLiveResponse> for pb::LeaseTimeToLiveResponse {
    fn from(r: m::LeaseTimeToLiveResponse) -> Self {
        pb::LeaseTimeToLiveResponse {
            header: header(r.header),
            id: r.id,
            ttl: r.ttl,
            granted_ttl: r.granted_ttl,
            keys: r.keys,
        }
    }
}

impl From<m::LeaseLeasesResponse> for pb::LeaseLeasesResponse {
    fn from(r: m::LeaseLeasesResponse) -> Self {
        pb::LeaseLeasesResponse {
            header: header(r.header),
            leases: r
                .leases
                .into_iter()
                .map(|l| pb::LeaseStatus { id: l.id })
                .collect(),
        }
    }
}

impl From<m::WatchResponse> for pb::WatchResponse {
    fn from(r: m::WatchResponse) -> Self {
        pb::WatchResponse {
            header: header(r.header),
            watch_id: r.watch_id,
            created: r.created,
            canceled: r.canceled,
            compact_revision: r.compact_revision,
            cancel_reason: r.cancel_reason,
            fragment: r.fragment,
            events: r.events.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<m::Member> for pb::Member {
    fn from(m: m::Member) -> Self {
        pb::Member {
            id: m.id,
            name: m.name,
            peer_ur_ls: m.peer_urls,
            client_ur_ls: m.client_urls,
            is_learner: m.is_learner,
        }
    }
}

/// The member responses that are a header and the member list.
macro_rules! member_list_response {
    ($($message:ident),+) => {
        $(impl From<m::MemberListResponse> for pb::$message {
            fn from(r: m::MemberListResponse) -> Self {
                pb::$message {
                    header: header(r.header),
                    members: r.members.into_iter().map(Into::into).collect(),
                }
            }
        })+
    };
}

member_list_response!(
    MemberListResponse,
    MemberRemoveResponse,
    MemberUpdateResponse,
    MemberPromoteResponse
);

impl From<m::MemberAddResponse> for pb::MemberAddResponse {
    fn from(r: m::MemberAddResponse) -> Self {
        pb::MemberAddResponse {
            header: header(r.header),
            member: Some(r.member.into()),
            members: r.members.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<m::StatusResponse> for pb::StatusResponse {
    fn from(r: m::StatusResponse) -> Self {
        pb::StatusResponse {
            header: header(r.header),
            version: r.version,
            db_size: r.db_size,
            leader: r.leader,
            raft_index: r.raft_index,
            raft_term: r.raft_term,
            raft_applied_index: r.raft_applied_index,
            errors: r.errors,
            db_size_in_use: r.db_size_in_use,
            is_learner: r.is_learner,
        }
    }
}

impl From<m::HashResponse> for pb::HashResponse {
    fn from(r: m::HashResponse) -> Self {
        pb::HashResponse {
            header: header(r.header),
            hash: r.hash,
        }
    }
}

impl From<m::HashKvResponse> for pb::HashKvResponse {
    fn from(r: m::HashKvResponse) -> Self {
        pb::HashKvResponse {
            header: header(r.header),
            hash: r.hash,
            compact_revision: r.compact_revision,
            hash_revision: r.hash_revision,
        }
    }
}

impl From<m::SnapshotResponse> for pb::SnapshotResponse {
    fn from(r: m::SnapshotResponse) -> Self {
        pb::SnapshotResponse {
            header: None,
            remaining_bytes: r.remaining_bytes,
            blob: r.blob,
            version: String::new(),
        }
    }
}

impl From<m::AlarmResponse> for pb::AlarmResponse {
    fn from(r: m::AlarmResponse) -> Self {
        pb::AlarmResponse {
            header: None,
            alarms: r
                .alarms
                .into_iter()
                .map(|a| pb::AlarmMember {
                    member_id: a.member_id,
                    alarm: match a.alarm {
                        m::AlarmType::None => pb::AlarmType::None,
                        m::AlarmType::NoSpace => pb::AlarmType::Nospace,
                        m::AlarmType::Corrupt => pb::AlarmType::Corrupt,
                    } as i32,
                })
                .collect(),
        }
    }
}

impl From<m::DefragmentResponse> for pb::DefragmentResponse {
    fn from(_: m::DefragmentResponse) -> Self {
        pb::DefragmentResponse { header: None }
    }
}

// ---- Auth ----

use super::proto::authpb;
use crate::api::auth_models as a;

/// Auth requests that carry one name.
macro_rules! name_request {
    ($model:ident { $field:ident } <= $($message:ident . $from:ident),+) => {
        $(impl From<pb::$message> for a::$model {
            fn from(r: pb::$message) -> Self {
                a::$model { $field: r.$from }
            }
        })+
    };
}

name_request!(
    Name { name } <= AuthUserGetRequest.name,
    AuthUserDeleteRequest.name,
    AuthRoleAddRequest.name
);
name_request!(
    RoleName { role } <= AuthRoleGetRequest.role,
    AuthRoleDeleteRequest.role
);

/// Auth requests without fields.
macro_rules! empty_auth_request {
    ($($message:ident),+) => {
        $(impl From<pb::$message> for a::Empty {
            fn from(_: pb::$message) -> Self {
                a::Empty {}
            }
        })+
    };
}

empty_auth_request!(
    AuthEnableRequest,
    AuthDisableRequest,
    AuthStatusRequest,
    AuthUserListRequest,
    AuthRoleListRequest
);

impl From<pb::AuthenticateRequest> for a::AuthenticateRequest {
    fn from(r: pb::AuthenticateRequest) -> Self {
        a::AuthenticateRequest {
            name: r.name,
            password: r.password,
        }
    }
}

impl From<pb::AuthUserAddRequest> for a::UserAddRequest {
    fn from(r: pb::AuthUserAddRequest) -> Self {
        a::UserAddRequest {
            name: r.name,
            password: r.password,
            options: r.options.map(|o| a::UserAddOptions {
                no_password: o.no_password,
            }),
        }
    }
}

impl From<pb::AuthUserChangePasswordRequest> for a::UserChangePasswordRequest {
    fn from(r: pb::AuthUserChangePasswordRequest) -> Self {
        a::UserChangePasswordRequest {
            name: r.name,
            password: r.password,
        }
    }
}

impl From<pb::AuthUserGrantRoleRequest> for a::UserGrantRoleRequest {
    fn from(r: pb::AuthUserGrantRoleRequest) -> Self {
        a::UserGrantRoleRequest {
            user: r.user,
            role: r.role,
        }
    }
}

impl From<pb::AuthUserRevokeRoleRequest> for a::UserRevokeRoleRequest {
    fn from(r: pb::AuthUserRevokeRoleRequest) -> Self {
        a::UserRevokeRoleRequest {
            name: r.name,
            role: r.role,
        }
    }
}

impl TryFrom<authpb::Permission> for a::Permission {
    type Error = ApiError;
    fn try_from(p: authpb::Permission) -> Result<Self, ApiError> {
        use authpb::permission::Type;
        Ok(a::Permission {
            perm_type: match known(p.perm_type, "permission type")? {
                Type::Read => a::PermissionType::Read,
                Type::Write => a::PermissionType::Write,
                Type::Readwrite => a::PermissionType::ReadWrite,
            },
            key: p.key,
            range_end: p.range_end,
        })
    }
}

impl TryFrom<pb::AuthRoleGrantPermissionRequest> for a::RoleGrantPermissionRequest {
    type Error = ApiError;
    fn try_from(r: pb::AuthRoleGrantPermissionRequest) -> Result<Self, ApiError> {
        Ok(a::RoleGrantPermissionRequest {
            name: r.name,
            perm: r.perm.map(TryInto::try_into).transpose()?,
        })
    }
}

impl From<pb::AuthRoleRevokePermissionRequest> for a::RoleRevokePermissionRequest {
    fn from(r: pb::AuthRoleRevokePermissionRequest) -> Self {
        a::RoleRevokePermissionRequest {
            role: r.role,
            key: r.key,
            range_end: r.range_end,
        }
    }
}

header_response!(m::HeaderOnly =>
    AuthEnableResponse, AuthDisableResponse, AuthUserAddResponse, AuthUserDeleteResponse,
    AuthUserChangePasswordResponse, AuthUserGrantRoleResponse, AuthUserRevokeRoleResponse,
    AuthRoleAddResponse, AuthRoleDeleteResponse, AuthRoleGrantPermissionResponse,
    AuthRoleRevokePermissionResponse);

impl From<a::AuthStatusResponse> for pb::AuthStatusResponse {
    fn from(r: a::AuthStatusResponse) -> Self {
        pb::AuthStatusResponse {
            header: header(r.header),
            enabled: r.enabled,
            auth_revision: r.auth_revision,
        }
    }
}

impl From<a::AuthenticateResponse> for pb::AuthenticateResponse {
    fn from(r: a::AuthenticateResponse) -> Self {
        pb::AuthenticateResponse {
            header: header(r.header),
            token: r.token,
        }
    }
}

impl From<a::UserGetResponse> for pb::AuthUserGetResponse {
    fn from(r: a::UserGetResponse) -> Self {
        pb::AuthUserGetResponse {
            header: header(r.header),
            roles: r.roles,
        }
    }
}

impl From<a::UserListResponse> for pb::AuthUserListResponse {
    fn from(r: a::UserListResponse) -> Self {
        pb::AuthUserListResponse {
            header: header(r.header),
            users: r.users,
        }
    }
}

impl From<a::RoleListResponse> for pb::AuthRoleListResponse {
    fn from(r: a::RoleListResponse) -> Self {
        pb::AuthRoleListResponse {
            header: header(r.header),
            roles: r.roles,
        }
    }
}

impl From<a::RoleGetResponse> for pb::AuthRoleGetResponse {
    fn from(r: a::RoleGetResponse) -> Self {
        let kind = |t: a::PermissionType| match t {
            a::PermissionType::Read => authpb::permission::Type::Read,
            a::PermissionType::Write => authpb::permission::Type::Write,
            a::PermissionType::ReadWrite => authpb::permission::Type::Readwrite,
        };
        pb::AuthRoleGetResponse {
            header: header(r.header),
            perm: r
                .perm
                .into_iter()
                .map(|p| authpb::Permission {
                    perm_type: kind(p.perm_type) as i32,
                    key: p.key,
                    range_end: p.range_end,
                })
                .collect(),
        }
    }
}
