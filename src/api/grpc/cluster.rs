//! `etcdserverpb.Cluster` over the gateway's member handlers.

use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::{admin, unary, Rpc};
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
        let credentials = super::credentials(&request);
        let request = models::MemberAddRequest::from(request.into_inner());
        let path = "v3/cluster/member/add";
        let rpc = Rpc {
            path,
            method: "MemberAdd",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, cluster::add).await
    }

    async fn member_remove(
        &self,
        request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::MemberId::from(request.into_inner());
        let path = "v3/cluster/member/remove";
        let rpc = Rpc {
            path,
            method: "MemberRemove",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, cluster::remove).await
    }

    async fn member_update(
        &self,
        request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::MemberUpdateRequest::from(request.into_inner());
        let path = "v3/cluster/member/update";
        let rpc = Rpc {
            path,
            method: "MemberUpdate",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, cluster::update).await
    }

    async fn member_list(
        &self,
        request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/cluster/member/list";
        let rpc = Rpc {
            path,
            method: "MemberList",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, cluster::list).await
    }

    async fn member_promote(
        &self,
        request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::MemberId::from(request.into_inner());
        let path = "v3/cluster/member/promote";
        let rpc = Rpc {
            path,
            method: "MemberPromote",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, cluster::promote).await
    }
}
