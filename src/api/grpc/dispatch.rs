//! One client port for both front ends: [`Dispatch`] sends gRPC requests (`content-type:
//! application/grpc`, `application/grpc+proto`, ...) to the tonic router and everything else
//! to the warp gateway. [`crate::transport::serve`] runs it on hyper-util's auto builder,
//! which speaks HTTP/1.1 and HTTP/2 (cleartext h2c too, what gRPC clients use without TLS)
//! on one listener, plain or TLS.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper::http;
use tower::{Service, ServiceExt as _};

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
