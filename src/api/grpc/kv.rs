//! `etcdserverpb.KV` over the gateway's KV handlers.

use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::{admin, unary, Rpc};
use crate::api::{kv, models, Shared};

/// The KV service.
pub struct KvService {
    api: Shared,
}

impl KvService {
    /// KV over `api`.
    pub fn new(api: &Shared) -> Self {
        KvService { api: api.clone() }
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for KvService {
    async fn range(
        &self,
        request: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::RangeRequest::try_from(request.into_inner())?;
        let rpc = Rpc {
            path: "v3/kv/range",
            method: "Range",
            on_leader: false,
            access: kv::range_access,
        };
        unary(&self.api, rpc, credentials, request, kv::range).await
    }

    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::PutRequest::from(request.into_inner());
        let rpc = Rpc {
            path: "v3/kv/put",
            method: "Put",
            on_leader: false,
            access: kv::put_access,
        };
        unary(&self.api, rpc, credentials, request, kv::put).await
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::DeleteRangeRequest::from(request.into_inner());
        let path = "v3/kv/deleterange";
        let rpc = Rpc {
            path,
            method: "DeleteRange",
            on_leader: false,
            access: kv::delete_range_access,
        };
        unary(&self.api, rpc, credentials, request, kv::delete_range).await
    }

    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::TxnRequest::try_from(request.into_inner())?;
        let rpc = Rpc {
            path: "v3/kv/txn",
            method: "Txn",
            on_leader: false,
            access: kv::txn_access,
        };
        unary(&self.api, rpc, credentials, request, kv::txn).await
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::CompactionRequest::from(request.into_inner());
        let path = "v3/kv/compaction";
        let rpc = Rpc {
            path,
            method: "Compact",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, kv::compaction).await
    }
}
