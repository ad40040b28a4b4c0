//! The Cluster service: the member list, and membership changes through the replica (a
//! single member answers those with Unimplemented).

use warp::filters::BoxedFilter;
use warp::Filter;

use super::error::ApiError;
use super::models::{
    LeaseId, MemberAddRequest, MemberAddResponse, MemberId, MemberListResponse, MemberUpdateRequest,
};
use super::{unary, Shared};
use crate::replica::Member;

/// `POST /v3/cluster/member/{list,add,remove,update,promote}`.
pub fn routes(api: &Shared) -> BoxedFilter<(warp::reply::Response,)> {
    unary(api, "v3/cluster/member/list", "MemberList", list)
        .or(unary(api, "v3/cluster/member/add", "MemberAdd", add))
        .unify()
        .or(unary(
            api,
            "v3/cluster/member/remove",
            "MemberRemove",
            remove,
        ))
        .unify()
        .or(unary(
            api,
            "v3/cluster/member/update",
            "MemberUpdate",
            update,
        ))
        .unify()
        .or(unary(
            api,
            "v3/cluster/member/promote",
            "MemberPromote",
            promote,
        ))
        .unify()
        .boxed()
}

/// Member responses carry no revision in etcd 3.4.
fn member_list(api: &Shared, members: Vec<Member>) -> MemberListResponse {
    MemberListResponse {
        header: api.header(0),
        members: members.into_iter().map(Into::into).collect(),
    }
}

/// Every member.
pub async fn list(api: Shared, _request: LeaseId) -> Result<MemberListResponse, ApiError> {
    let members = api.replica.members().await?;
    Ok(member_list(&api, members))
}

/// Adds a member.
pub async fn add(api: Shared, request: MemberAddRequest) -> Result<MemberAddResponse, ApiError> {
    if request.peer_urls.is_empty() {
        return Err(ApiError::invalid_argument(
            "etcdserver: member peer URLs are not provided",
        ));
    }
    let (member, members) = api
        .replica
        .add_member(request.peer_urls, request.is_learner)
        .await?;
    Ok(MemberAddResponse {
        header: api.header(0),
        member: member.into(),
        members: members.into_iter().map(Into::into).collect(),
    })
}

/// Removes a member.
pub async fn remove(api: Shared, request: MemberId) -> Result<MemberListResponse, ApiError> {
    let members = api.replica.remove_member(request.id).await?;
    Ok(member_list(&api, members))
}

/// Changes a member's peer URLs.
pub async fn update(
    api: Shared,
    request: MemberUpdateRequest,
) -> Result<MemberListResponse, ApiError> {
    let members = api
        .replica
        .update_member(request.id, request.peer_urls)
        .await?;
    Ok(member_list(&api, members))
}

/// Promotes a learner.
pub async fn promote(api: Shared, request: MemberId) -> Result<MemberListResponse, ApiError> {
    let members = api.replica.promote_member(request.id).await?;
    Ok(member_list(&api, members))
}
