//! `etcdserverpb.Cluster` over the gateway's member handlers.

use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::unary;
use crate::api::{cluster, models, Shared};

/// The Cluster service.
pub struct ClusterService {
    api: Shared,
}

impl ClusterService {
    /// Cluster over `api`.
    pub fn new(api: &Shared) -> Self {
        ClusterService { api: api.clone() }
    }
}

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        let request = models::MemberAddRequest::from(request.into_inner());
        let path = "v3/cluster/member/add";
        unary(&self.api, path, "MemberAdd", false, request, cluster::add).await
    }

    async fn member_remove(
        &self,
        request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        let request = models::MemberId::from(request.into_inner());
        let path = "v3/cluster/member/remove";
        unary(
            &self.api,
            path,
            "MemberRemove",
            false,
            request,
            cluster::remove,
        )
        .await
    }

    async fn member_update(
        &self,
        request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        let request = models::MemberUpdateRequest::from(request.into_inner());
        let path = "v3/cluster/member/update";
        unary(
            &self.api,
            path,
            "MemberUpdate",
            false,
            request,
            cluster::update,
        )
        .await
    }

    async fn member_list(
        &self,
        request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/cluster/member/list";
        unary(&self.api, path, "MemberList", false, request, cluster::list).await
    }

    async fn member_promote(
        &self,
        request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        let request = models::MemberId::from(request.into_inner());
        let path = "v3/cluster/member/promote";
        unary(
            &self.api,
            path,
            "MemberPromote",
            false,
            request,
            cluster::promote,
        )
        .await
    }
}
