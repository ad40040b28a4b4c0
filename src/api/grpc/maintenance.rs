//! `etcdserverpb.Maintenance` over the gateway's maintenance handlers.

use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::{admin, unary, ResponseStream, Rpc};
use crate::api::{maintenance, models, Shared};
use crate::auth::Access;

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
        let credentials = super::credentials(&request);
        let request = models::AlarmRequest::try_from(request.into_inner())?;
        let path = "v3/maintenance/alarm";
        let rpc = Rpc {
            path,
            method: "Alarm",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, maintenance::alarm).await
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/maintenance/status";
        let rpc = Rpc {
            path,
            method: "Status",
            on_leader: false,
            access: |_| Access::Open,
        };
        unary(&self.api, rpc, credentials, request, maintenance::status).await
    }

    async fn defragment(
        &self,
        request: Request<pb::DefragmentRequest>,
    ) -> Result<Response<pb::DefragmentResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/maintenance/defragment";
        let handler = maintenance::defragment;
        let rpc = Rpc {
            path,
            method: "Defragment",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, handler).await
    }

    async fn hash(
        &self,
        request: Request<pb::HashRequest>,
    ) -> Result<Response<pb::HashResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::LeaseId::from(request.into_inner());
        let path = "v3/maintenance/hash";
        let rpc = Rpc {
            path,
            method: "Hash",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, maintenance::hash).await
    }

    async fn hash_kv(
        &self,
        request: Request<pb::HashKvRequest>,
    ) -> Result<Response<pb::HashKvResponse>, Status> {
        let credentials = super::credentials(&request);
        let request = models::HashKvRequest::from(request.into_inner());
        let path = "v3/maintenance/hashkv";
        let rpc = Rpc {
            path,
            method: "HashKV",
            on_leader: false,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, maintenance::hash_kv).await
    }

    type SnapshotStream = ResponseStream<pb::SnapshotResponse>;

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        // The whole keyspace is root's to copy.
        let credentials = super::credentials(&request);
        self.api.auth.authorize(&credentials, &Access::Admin)?;
        let asked = request
            .metadata()
            .get(maintenance::SNAPSHOT_FORMAT_HEADER)
            .and_then(|value| value.to_str().ok());
        let format = maintenance::snapshot_format(asked, maintenance::SnapshotFormat::Etcd)?;
        let data = maintenance::export_snapshot(&self.api, format).await?;
        let (data, digest) = match format {
            maintenance::SnapshotFormat::Keel => etcd_framed(data),
            maintenance::SnapshotFormat::Etcd => split_digest(data),
        };
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
        let credentials = super::credentials(&request);
        let request = models::MoveLeaderRequest::from(request.into_inner());
        // Only the leader can hand its leadership over.
        let path = "v3/maintenance/transfer-leadership";
        let handler = maintenance::move_leader;
        let rpc = Rpc {
            path,
            method: "MoveLeader",
            on_leader: true,
            access: admin,
        };
        unary(&self.api, rpc, credentials, request, handler).await
    }
}

/// An etcd snapshot file as its stream carries it: the database, then its SHA-256 alone.
fn split_digest(mut file: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let digest = file.split_off(file.len().saturating_sub(32));
    (file, digest)
}

/// keel's own snapshot as etcd's gRPC stream carries it: the database padded to whole 512-byte pages
/// (etcd's is a bbolt file), and the SHA-256 of that, sent last. etcdctl's `snapshot save`
/// refuses a stream that is not so; keel's import reads its own format and ignores what
/// follows it, so such a file restores with `keel snapshot restore`.
fn etcd_framed(mut data: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    use sha2::Digest as _;
    data.resize(data.len().div_ceil(512) * 512, 0);
    let digest = sha2::Sha256::digest(&data).to_vec();
    (data, digest)
}
