//! `etcdserverpb.KV` over the gateway's KV handlers.

use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::unary;
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
        let request = models::RangeRequest::try_from(request.into_inner())?;
        unary(&self.api, "v3/kv/range", "Range", false, request, kv::range).await
    }

    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        let request = models::PutRequest::from(request.into_inner());
        unary(&self.api, "v3/kv/put", "Put", false, request, kv::put).await
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let request = models::DeleteRangeRequest::from(request.into_inner());
        let path = "v3/kv/deleterange";
        unary(
            &self.api,
            path,
            "DeleteRange",
            false,
            request,
            kv::delete_range,
        )
        .await
    }

    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnResponse>, Status> {
        let request = models::TxnRequest::try_from(request.into_inner())?;
        unary(&self.api, "v3/kv/txn", "Txn", false, request, kv::txn).await
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let request = models::CompactionRequest::from(request.into_inner());
        let path = "v3/kv/compaction";
        unary(&self.api, path, "Compact", false, request, kv::compaction).await
    }
}
