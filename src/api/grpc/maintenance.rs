//! `etcdserverpb.Maintenance` over the gateway's maintenance handlers.

use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::{unary, ResponseStream};
use crate::api::{maintenance, models, Shared};

/// The Maintenance service.
pub struct MaintenanceService {
    api: Shared,
}

impl MaintenanceService {
    /// Maintenance over `api`.
    pub fn new(api: &Shared) -> Self {
        MaintenanceService { api: api.clone() }
    }
}

#[tonic::async_trait]
impl pb::maintenance_server::Maintenance for MaintenanceService {
    async fn alarm(
        &self,
        request: Request<pb::AlarmRequest>,
    ) -> Result<Response<pb::AlarmResponse>, Status> {
        let request = models::AlarmRequest::try_from(request.into_inner())?;
        let path = "v3/maintenance/alarm";
        unary(&self.api, path, "Alarm", false, request, maintenance::alarm).await
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/maintenance/status";
        unary(
            &self.api,
            path,
            "Status",
            false,
            request,
            maintenance::status,
        )
        .await
    }

    async fn defragment(
        &self,
        request: Request<pb::DefragmentRequest>,
    ) -> Result<Response<pb::DefragmentResponse>, Status> {
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/maintenance/defragment";
        let handler = maintenance::defragment;
        unary(&self.api, path, "Defragment", false, request, handler).await
    }

    async fn hash(
        &self,
        request: Request<pb::HashRequest>,
    ) -> Result<Response<pb::HashResponse>, Status> {
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/maintenance/hash";
        unary(&self.api, path, "Hash", false, request, maintenance::hash).await
    }

    async fn hash_kv(
        &self,
        request: Request<pb::HashKvRequest>,
    ) -> Result<Response<pb::HashKvResponse>, Status> {
        let request = models::HashKvRequest::from(request.into_inner());
        let path = "v3/maintenance/hashkv";
        unary(
            &self.api,
            path,
            "HashKV",
            false,
            request,
            maintenance::hash_kv,
        )
        .await
    }

    type SnapshotStream = ResponseStream<pb::SnapshotResponse>;

    async fn snapshot(
        &self,
        _request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let data = maintenance::export_snapshot(&self.api).await?;
        let (data, digest) = etcd_framed(data);
        let mut chunks = maintenance::snapshot_chunks(&data);
        // etcd sends the digest as a message of its own, after the database.
        chunks.push(models::SnapshotResponse {
            remaining_bytes: 0,
            blob: digest,
        });
        let messages = chunks.into_iter().map(|chunk| Ok(chunk.into()));
        Ok(Response::new(Box::pin(futures::stream::iter(messages))))
    }

    async fn move_leader(
        &self,
        request: Request<pb::MoveLeaderRequest>,
    ) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        let request = models::MoveLeaderRequest::from(request.into_inner());
        // Only the leader can hand its leadership over.
        let path = "v3/maintenance/transfer-leadership";
        let handler = maintenance::move_leader;
        unary(&self.api, path, "MoveLeader", true, request, handler).await
    }
}

/// A snapshot as etcd's gRPC stream carries it: the database padded to whole 512-byte pages
/// (etcd's is a bbolt file), and the SHA-256 of that, sent last. etcdctl's `snapshot save`
/// refuses a stream that is not so; keel's import reads its own format and ignores what
/// follows it, so such a file restores with `keel snapshot restore`.
fn etcd_framed(mut data: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    use sha2::Digest as _;
    data.resize(data.len().div_ceil(512) * 512, 0);
    let digest = sha2::Sha256::digest(&data).to_vec();
    (data, digest)
}
