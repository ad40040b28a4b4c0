//! `etcdserverpb.Watch`: the gateway's watch session with prost messages in and out, so any
//! number of watches share one stream, with the same ids, cancels, progress answers,
//! compaction cancels, fragments and per-watch access checks.

use futures::StreamExt as _;
use tonic::{Request, Response, Status, Streaming};

use super::proto::etcdserverpb as pb;
use super::{requests, ResponseStream};
use crate::api::{models, watch, Shared};

/// The Watch service.
pub struct WatchService {
    api: Shared,
}

impl WatchService {
    /// Watch over `api`.
    pub fn new(api: &Shared) -> Self {
        WatchService { api: api.clone() }
    }
}

#[tonic::async_trait]
impl pb::watch_server::Watch for WatchService {
    type WatchStream = ResponseStream<pb::WatchResponse>;

    async fn watch(
        &self,
        request: Request<Streaming<pb::WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let credentials = super::credentials(&request);
        let requests = requests::<_, models::WatchRequest>(request.into_inner());
        let responses = watch::watch_session(self.api.clone(), credentials, requests)
            .map(|message| message.map(Into::into).map_err(Into::into));
        Ok(Response::new(Box::pin(responses)))
    }
}
