//! `etcdserverpb.Lease` over the gateway's lease handlers; the keepalive stream is the
//! gateway's keepalive session, forwarding to the leader as it does.

use futures::StreamExt as _;
use tonic::{Request, Response, Status, Streaming};

use super::proto::etcdserverpb as pb;
use super::{unary, ResponseStream, Rpc};
use crate::api::error::{ApiError, Code};
use crate::api::{lease, models, Shared};

/// The Lease service.
pub struct LeaseService {
    api: Shared,
}

impl LeaseService {
    /// Lease over `api`.
    pub fn new(api: &Shared) -> Self {
        LeaseService { api: api.clone() }
    }
}

#[tonic::async_trait]
impl pb::lease_server::Lease for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::LeaseGrantRequest::from(request.into_inner());
        // The leader keeps lease deadlines, so grants and revokes are made there.
        let path = "v3/lease/grant";
        let rpc = Rpc {
            path,
            method: "LeaseGrant",
            on_leader: true,
            access: lease::authenticated,
        };
        unary(&self.api, rpc, credentials, request, lease::grant).await
    }

    async fn lease_revoke(
        &self,
        request: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/lease/revoke";
        let rpc = Rpc {
            path,
            method: "LeaseRevoke",
            on_leader: true,
            access: lease::revoke_access,
        };
        unary(&self.api, rpc, credentials, request, lease::revoke).await
    }

    type LeaseKeepAliveStream = ResponseStream<pb::LeaseKeepAliveResponse>;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let credentials = super::credentials(&request);
        let requests = request.into_inner().map(|message| match message {
            Ok(message) => Ok(models::LeaseId::from(message)),
            Err(status) => Err(ApiError::new(
                Code::from_number(status.code() as i32),
                status.message().to_owned(),
            )),
        });
        let answers = lease::keepalive_session(self.api.clone(), credentials, false, requests)
            .map(|answer| answer.map(Into::into).map_err(Into::into));
        Ok(Response::new(Box::pin(answers)))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::LeaseTimeToLiveRequest::from(request.into_inner());
        let path = "v3/lease/timetolive";
        let method = "LeaseTimeToLive";
        let rpc = Rpc {
            path,
            method,
            on_leader: false,
            access: lease::authenticated,
        };
        unary(&self.api, rpc, credentials, request, lease::time_to_live).await
    }

    async fn lease_leases(
        &self,
        request: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/lease/leases";
        let rpc = Rpc {
            path,
            method: "LeaseLeases",
            on_leader: false,
            access: lease::authenticated,
        };
        unary(&self.api, rpc, credentials, request, lease::leases).await
    }
}
