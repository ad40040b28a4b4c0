//! One client port for both front ends: [`Dispatch`] sends gRPC requests (`content-type:
//! application/grpc`, `application/grpc+proto`, ...) to the tonic router and everything else
//! to the warp gateway, and [`serve`] runs it on hyper-util's auto builder, which speaks
//! HTTP/1.1 and cleartext HTTP/2 (h2c, what gRPC clients use without TLS) on one listener.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper::http;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt as _};

use crate::api::Shared;

/// Routes each request to gRPC or to the gateway, both answering with tonic's body type.
#[derive(Clone)]
pub struct Dispatch<H> {
    grpc: tonic::service::Routes,
    http: H,
}

impl<H> Dispatch<H> {
    /// gRPC requests to `grpc`, the rest to `http`.
    pub fn new(grpc: tonic::service::Routes, http: H) -> Self {
        Dispatch { grpc, http }
    }
}

/// Whether a request is gRPC: its content type is `application/grpc` or a `+codec` of it.
pub fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value == "application/grpc"
                || value.starts_with("application/grpc+")
                || value.starts_with("application/grpc;")
        })
}

impl<H, HB> Service<http::Request<Incoming>> for Dispatch<H>
where
    H: Service<http::Request<Incoming>, Response = http::Response<HB>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    H::Future: Send + 'static,
    HB: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    HB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both inner services are always ready; each call readies its own clone (oneshot).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Incoming>) -> Self::Future {
        if is_grpc(&request) {
            let grpc = self.grpc.clone();
            Box::pin(grpc.oneshot(request))
        } else {
            let http = self.http.clone();
            Box::pin(async move {
                let response = http.oneshot(request).await?;
                Ok(response.map(tonic::body::Body::new))
            })
        }
    }
}

/// Serves the gateway and gRPC for `api` on `listener` until `shutdown` resolves, then stops
/// accepting and waits for open connections to finish (streams end through `api.closing`,
/// which the caller's shutdown sets).
pub async fn serve(
    api: Shared,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let gateway = warp::service(crate::api::routes(api.clone()));
    let service = Dispatch::new(super::router(&api), gateway);
    serve_service(listener, service, shutdown).await;
}

/// The accept loop: each connection served by `service` over HTTP/1.1 or HTTP/2.
pub async fn serve_service<S>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    S: Service<
            http::Request<Incoming>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service.clone()),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("client connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
